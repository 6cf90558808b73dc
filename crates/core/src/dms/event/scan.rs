//! The event's usual shape read by a direct, strict scan of its bytes (see
//! [`KinesisBatch::from_json`]).
//!
//! The scan accepts only valid JSON (the strict grammar of [`Cursor`]),
//! nothing but whitespace after the event. Like the serde reading, it does
//! not check that the strings it skips are UTF-8; it checks the keys of the
//! objects it reads and the strings it keeps. What it keeps is read the way
//! the serde reading reads it. Anything else it does not decide: an escape
//! in a key or a kept string, a kept field twice, a missing required field,
//! a value of another type, a payload that is not base64, and so on; it
//! answers `None` and the caller reads the event with serde, which gives
//! the value or the error. So a `Some` is always what serde would give.

use super::{arrival_ms, millis_from_parts, BatchRecord, KinesisBatch, Position};
use crate::dms::cursor::Cursor;

/// The event's records, or `None` when the scan does not decide (see the
/// module docs).
pub(super) fn scan(bytes: &[u8]) -> Option<KinesisBatch> {
    // UTF-8 is checked where serde checks it: keys and kept strings.
    let mut cursor = Cursor::unchecked(bytes);
    cursor.whitespace();
    let mut records = None;
    cursor.object(0, |c, key| match key {
        b"Records" if records.is_none() => {
            records = Some(c.records()?);
            Some(())
        }
        b"Records" => None,
        _ => c.skip_field(key, 1),
    })?;
    if !cursor.at_end() {
        return None;
    }
    Some(KinesisBatch { records: records? })
}

/// `kinesis`, as far as it is read.
#[derive(Default)]
struct Kinesis<'a> {
    arrival_ms: Option<i64>,
    data: Option<Vec<u8>>,
    partition_key: Option<&'a str>,
    sequence_number: Option<&'a str>,
}

impl<'a> Cursor<'a> {
    /// `Records`: an array of record objects.
    fn records(&mut self) -> Option<Vec<BatchRecord>> {
        // The usual event takes about 1.7 kB per record.
        let mut records = Vec::with_capacity(self.bytes.len() / 1024);
        self.sequence(b'[', b']', |c| {
            records.push(c.record()?);
            Some(())
        })?;
        Some(records)
    }

    /// One record: `eventID` (a string or null, optional) and `kinesis`.
    fn record(&mut self) -> Option<BatchRecord> {
        let mut event_id: Option<Option<&'a str>> = None;
        let mut kinesis: Option<Kinesis<'a>> = None;
        self.object(2, |c, key| match key {
            b"eventID" if event_id.is_none() => {
                event_id = Some(if c.peek() == Some(b'n') {
                    c.literal(b"null")?;
                    None
                } else {
                    Some(c.kept_string()?)
                });
                Some(())
            }
            b"kinesis" if kinesis.is_none() => {
                kinesis = Some(c.kinesis()?);
                Some(())
            }
            b"eventID" | b"kinesis" => None,
            _ => c.skip_field(key, 3),
        })?;
        let kinesis = kinesis?;
        Some(BatchRecord {
            position: Position::new(event_id.flatten(), kinesis.sequence_number.unwrap_or("")),
            partition_key: kinesis.partition_key.unwrap_or("").to_owned(),
            approximate_arrival_ms: kinesis.arrival_ms?,
            data: kinesis.data?,
        })
    }

    /// `kinesis`: `data` and `approximateArrivalTimestamp` (required),
    /// `partitionKey` and `sequenceNumber` (optional).
    fn kinesis(&mut self) -> Option<Kinesis<'a>> {
        let mut k = Kinesis::default();
        self.object(3, |c, key| {
            match key {
                b"data" if k.data.is_none() => k.data = Some(c.payload()?),
                b"approximateArrivalTimestamp" if k.arrival_ms.is_none() => {
                    k.arrival_ms = Some(c.arrival()?)
                }
                b"partitionKey" if k.partition_key.is_none() => {
                    k.partition_key = Some(c.kept_string()?)
                }
                b"sequenceNumber" if k.sequence_number.is_none() => {
                    k.sequence_number = Some(c.kept_string()?)
                }
                b"data" | b"approximateArrivalTimestamp" | b"partitionKey" | b"sequenceNumber" => {
                    return None
                }
                _ => c.skip_field(key, 4)?,
            }
            Some(())
        })?;
        Some(k)
    }

    /// The value of a field the serde reading ignores, by its `key`: serde
    /// matches the key as a string, so a key that is not UTF-8 fails there
    /// (the values it skips are not checked).
    fn skip_field(&mut self, key: &[u8], depth: usize) -> Option<()> {
        if !key.is_ascii() {
            std::str::from_utf8(key).ok()?;
        }
        self.skip(depth)
    }

    /// `kinesis.data`: the base64 text decoded into the payload buffer. The
    /// closing quote is searched for alone: a backslash or a control
    /// character before it is no base64, and fails to decode.
    fn payload(&mut self) -> Option<Vec<u8>> {
        self.eat(b'"')?;
        let rest = self.bytes.get(self.at..)?;
        let len = memchr::memchr(b'"', rest)?;
        let text = rest.get(..len)?;
        self.at += len + 1;
        base64_simd::STANDARD.decode_to_vec(text).ok()
    }

    /// `kinesis.approximateArrivalTimestamp` in milliseconds: a plain
    /// decimal read directly, anything else through the serde reading's
    /// own conversion (so both give the same milliseconds).
    fn arrival(&mut self) -> Option<i64> {
        let start = self.at;
        match self.peek()? {
            b'"' => {
                self.plain_string()?;
            }
            b'-' | b'0'..=b'9' => {
                self.number()?;
                let text = self.bytes.get(start..self.at)?;
                if let Some(ms) = plain_decimal_ms(text) {
                    return Some(ms);
                }
            }
            _ => return None,
        }
        let text = self.bytes.get(start..self.at)?;
        arrival_ms(&mut serde_json::Deserializer::from_slice(text)).ok()
    }
}
/// The milliseconds of a non-negative decimal without exponent, of at most
/// 15 digits and no trailing zero in its fraction (`1795170000.21`): such a
/// number is rendered back as exactly its text (15 digits round-trip through
/// an f64), so the serde reading's parts are its own digits. `None` for any
/// other number.
fn plain_decimal_ms(text: &[u8]) -> Option<i64> {
    if text.len() > 16 {
        return None;
    }
    let (whole, frac) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (text.get(..dot)?, text.get(dot + 1..)?),
        None => (text, &[][..]),
    };
    if whole.len() + frac.len() > 15 || frac.last() == Some(&b'0') {
        return None;
    }
    let value = |digits: &[u8]| {
        digits.iter().try_fold(0u64, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
        })
    };
    let whole = value(whole).filter(|_| !whole.is_empty())?;
    millis_from_parts(whole, value(frac)?)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{chrono_millis, LATEST_PLAIN_SECOND};
    use super::*;

    fn serde_ms(text: &str) -> Option<i64> {
        arrival_ms(&mut serde_json::Deserializer::from_str(text)).ok()
    }

    #[test]
    fn plain_decimals_read_as_serde_reads_them() {
        for t in [
            "0",
            "1",
            "0.5",
            "0.05",
            "1795170000.21",
            "1763633700.123",
            "999999999999999",
            "99999999999999.9",
            "1.00000000000001",
            "4294967296.5",
        ] {
            assert_eq!(plain_decimal_ms(t.as_bytes()), serde_ms(t), "{t}");
        }
        for t in [
            "1.0",
            "1.50",
            "-1",
            "1e3",
            "1.000000000000001",
            "1.5E2",
            "1234567890.1234567",
            "0.0",
        ] {
            assert_eq!(plain_decimal_ms(t.as_bytes()), None, "{t}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        /// The direct arithmetic gives chrono's milliseconds, around the
        /// bound where it stops and anywhere below it.
        #[test]
        fn millis_are_chronos(
            whole in prop_oneof![
                0u64..4_000_000_000,
                LATEST_PLAIN_SECOND - 1000..LATEST_PLAIN_SECOND + 1000,
                any::<u64>(),
            ],
            frac in prop_oneof![0u64..1000, 0u64..5000, any::<u64>()],
        ) {
            let nanos = frac.wrapping_mul(1_000_000) as u32;
            prop_assert_eq!(millis_from_parts(whole, frac), chrono_millis(whole, nanos));
        }

        /// Where the direct reading answers, it answers what serde does.
        #[test]
        fn plain_decimal_ms_is_serde_ms(text in "(0|[1-9][0-9]{0,15})(\\.[0-9]{1,16})?") {
            if let Some(ms) = plain_decimal_ms(text.as_bytes()) {
                prop_assert_eq!(Some(ms), serde_ms(&text));
            }
        }
    }
}
