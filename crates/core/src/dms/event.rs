//! The Lambda Kinesis event read straight into deliveries: [`KinesisBatch`].
//!
//! `aws_lambda_events`' `KinesisEvent` copies every string of every record
//! into a `String` (the base64 text too, before decoding it into a second
//! buffer), and reads `approximateArrivalTimestamp` through an untagged enum
//! that builds and drops a serde error per record. [`KinesisBatch`] reads
//! only what a [`Delivery`] keeps, borrows the rest from the event bytes,
//! and decodes the base64 text straight into the payload buffer.
//!
//! It reads what `KinesisEvent` reads: `Records` and, per record, `eventID`,
//! `kinesis.partitionKey`, `kinesis.sequenceNumber`, `kinesis.data` and
//! `kinesis.approximateArrivalTimestamp` (the required fields are the same),
//! and gives the same deliveries (a test in `tests.rs` checks this on every
//! fixture event). Fields it does not keep are skipped without being typed.

use std::borrow::Cow;
use std::fmt;

use chrono::TimeZone;
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

use super::{delivery_from, in_shard_order, Delivery, EventError};
use crate::position::{SequenceNumber, ShardId};

mod scan;

/// A Lambda Kinesis event with each record's payload already base64-decoded,
/// read without intermediate copies (see the module docs). Turn it into
/// deliveries with [`KinesisBatch::into_deliveries`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KinesisBatch {
    records: Vec<BatchRecord>,
}

/// One record of the event: what a [`Delivery`] is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BatchRecord {
    position: Position,
    partition_key: String,
    approximate_arrival_ms: i64,
    data: Vec<u8>,
}

/// A record's position, from `eventID` and `kinesis.sequenceNumber`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Position {
    /// The usual record, already checked as [`delivery_from`] checks it:
    /// `eventID` is `<shard>:<sequenceNumber>`, both valid.
    Checked(ShardId, SequenceNumber),
    /// Anything else, as read: [`delivery_from`] checks it and says what is
    /// wrong.
    Unchecked {
        event_id: Option<String>,
        sequence_number: String,
    },
}

impl Position {
    /// The position of a record with this `eventID` and own sequence
    /// number. The usual record is checked here, without copying either
    /// text first; it gives what [`delivery_from`] gives for it.
    fn new(event_id: Option<&str>, own: &str) -> Position {
        // `own` is digits only when it parses, so the colon before it is
        // the last one, where `split_event_id` splits.
        let shard = event_id
            .filter(|_| !own.is_empty())
            .and_then(|id| id.strip_suffix(own))
            .and_then(|rest| rest.strip_suffix(':'))
            .filter(|shard| shard.starts_with("shardId-"));
        if let Some(shard) = shard {
            if let (Ok(shard), Ok(sequence)) = (ShardId::parse(shard), SequenceNumber::parse(own)) {
                return Position::Checked(shard, sequence);
            }
        }
        Position::Unchecked {
            event_id: event_id.map(str::to_owned),
            sequence_number: own.to_owned(),
        }
    }
}

impl KinesisBatch {
    /// The event read from its JSON bytes (the Lambda invocation's body):
    /// the usual shape by a direct, strict scan (`scan.rs`), anything else
    /// (an escape in a kept string, a field twice, a missing field, a value
    /// of another type, invalid JSON...) by the serde reading, which gives
    /// the value or the error. Either way the result is the serde reading's:
    /// `serde_json::from_slice::<KinesisBatch>(bytes)`.
    pub fn from_json(bytes: &[u8]) -> Result<KinesisBatch, serde_json::Error> {
        match scan::scan(bytes) {
            Some(batch) => Ok(batch),
            None => serde_json::from_slice(bytes),
        }
    }

    /// The scan alone (`None` where `from_json` falls back to serde).
    #[cfg(test)]
    pub(super) fn scan_only(bytes: &[u8]) -> Option<KinesisBatch> {
        scan::scan(bytes)
    }

    /// The records in the event.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the event has no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The deliveries, in event order, with the checks of
    /// [`super::into_deliveries`] (positions from `eventID`, agreeing with
    /// `kinesis.sequenceNumber`, increasing per shard).
    pub fn into_deliveries(self) -> Result<Vec<Delivery>, EventError> {
        self.records
            .into_iter()
            .enumerate()
            .map(|(index, r)| match r.position {
                Position::Checked(shard_id, sequence_number) => Ok(Delivery {
                    shard_id,
                    sequence_number,
                    partition_key: r.partition_key,
                    approximate_arrival_ms: Some(r.approximate_arrival_ms),
                    data: r.data,
                }),
                Position::Unchecked {
                    event_id,
                    sequence_number,
                } => delivery_from(
                    index,
                    event_id.as_deref().unwrap_or(""),
                    &sequence_number,
                    r.partition_key,
                    Some(r.approximate_arrival_ms),
                    r.data,
                ),
            })
            .collect::<Result<Vec<_>, _>>()
            .and_then(in_shard_order)
    }
}

impl From<aws_lambda_events::event::kinesis::KinesisEvent> for KinesisBatch {
    fn from(event: aws_lambda_events::event::kinesis::KinesisEvent) -> Self {
        KinesisBatch {
            records: event
                .records
                .into_iter()
                .map(|r| BatchRecord {
                    position: Position::new(r.event_id.as_deref(), &r.kinesis.sequence_number),
                    partition_key: r.kinesis.partition_key,
                    approximate_arrival_ms: r
                        .kinesis
                        .approximate_arrival_timestamp
                        .0
                        .timestamp_millis(),
                    data: r.kinesis.data.0,
                })
                .collect(),
        }
    }
}

/// The event as serde reads it, borrowing its strings from the event bytes.
#[derive(serde::Deserialize)]
struct RawEvent {
    #[serde(rename = "Records", deserialize_with = "records")]
    records: Vec<BatchRecord>,
}

#[derive(serde::Deserialize)]
struct RawRecord<'a> {
    #[serde(default, rename = "eventID", borrow)]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kinesis: RawKinesis<'a>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKinesis<'a> {
    #[serde(deserialize_with = "arrival_ms")]
    approximate_arrival_timestamp: i64,
    #[serde(deserialize_with = "payload")]
    data: Vec<u8>,
    #[serde(default, borrow)]
    partition_key: Cow<'a, str>,
    #[serde(default, borrow)]
    sequence_number: Cow<'a, str>,
}

impl<'de> Deserialize<'de> for KinesisBatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        RawEvent::deserialize(deserializer).map(|raw| KinesisBatch {
            records: raw.records,
        })
    }
}

/// `Records`, each record converted as soon as it is read.
fn records<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<BatchRecord>, D::Error> {
    struct Records;
    impl<'de> Visitor<'de> for Records {
        type Value = Vec<BatchRecord>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence of Kinesis records")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(raw) = seq.next_element::<RawRecord<'de>>()? {
                let k = raw.kinesis;
                out.push(BatchRecord {
                    position: Position::new(raw.event_id.as_deref(), &k.sequence_number),
                    partition_key: k.partition_key.into_owned(),
                    approximate_arrival_ms: k.approximate_arrival_timestamp,
                    data: k.data,
                });
            }
            Ok(out)
        }
    }
    deserializer.deserialize_seq(Records)
}

/// `kinesis.data`: the base64 text, decoded from the event bytes into the
/// payload buffer (taken as bytes: base64 is ASCII, so the text is not
/// checked as UTF-8 first; anything else fails to decode).
fn payload<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    struct Base64;
    impl Visitor<'_> for Base64 {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a base64 string")
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            base64_simd::STANDARD.decode_to_vec(v).map_err(E::custom)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
            self.visit_bytes(v.as_bytes())
        }
    }
    deserializer.deserialize_bytes(Base64)
}

/// `approximateArrivalTimestamp` (seconds, a number or a string) in
/// milliseconds, computed as `aws_lambda_events` computes it: the whole and
/// the fractional digits of the number's shortest rendering, the fraction
/// taken as milliseconds.
fn arrival_ms<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    struct Seconds;
    impl Visitor<'_> for Seconds {
        type Value = f64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("seconds since the epoch, as a number or a string")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            v.parse::<f64>().map_err(E::custom)
        }
    }
    let seconds = deserializer.deserialize_any(Seconds)?;
    let mut text = Rendering::default();
    fmt::write(&mut text, format_args!("{seconds}"))
        .map_err(|_| de::Error::custom("invalid timestamp"))?;
    let text = text
        .as_str()
        .ok_or_else(|| de::Error::custom("invalid timestamp"))?;
    let mut parts = text.split('.').map(|p| p.parse::<u64>());
    let whole = match parts.next() {
        Some(Ok(w)) => w,
        Some(Err(e)) => return Err(de::Error::custom(e)),
        None => return Err(de::Error::custom("invalid timestamp")),
    };
    let mut frac = 0;
    for part in parts {
        frac = part.map_err(de::Error::custom)?;
    }
    millis_from_parts(whole, frac).ok_or_else(|| de::Error::custom("invalid timestamp"))
}

/// The milliseconds of a timestamp rendered `whole.frac` (the fraction's
/// digits read as an integer), as `aws_lambda_events` computes them.
fn millis_from_parts(whole: u64, frac: u64) -> Option<i64> {
    // As aws_lambda_events does it, overflow included (its release build).
    let nanos = frac.wrapping_mul(1_000_000) as u32;
    // Well inside chrono's range and no leap second: its arithmetic, directly.
    if whole < LATEST_PLAIN_SECOND && nanos < 1_000_000_000 {
        return Some(whole as i64 * 1000 + i64::from(nanos / 1_000_000));
    }
    chrono_millis(whole, nanos)
}

/// Seconds since the epoch below which every time is one chrono represents
/// (the year 200,000; chrono's range ends after the year 262,142).
const LATEST_PLAIN_SECOND: u64 = 6_249_223_296_000;

/// The milliseconds chrono gives for these parts.
fn chrono_millis(whole: u64, nanos: u32) -> Option<i64> {
    chrono::Utc
        .timestamp_opt(whole as i64, nanos)
        .latest()
        .map(|t| t.timestamp_millis())
}

/// A number's rendering, on the stack (`None` past 64 bytes: such a number
/// is no timestamp).
struct Rendering {
    bytes: [u8; 64],
    len: usize,
    overflow: bool,
}

impl Default for Rendering {
    fn default() -> Self {
        Rendering {
            bytes: [0; 64],
            len: 0,
            overflow: false,
        }
    }
}

impl Rendering {
    fn as_str(&self) -> Option<&str> {
        if self.overflow {
            return None;
        }
        self.bytes
            .get(..self.len)
            .and_then(|b| std::str::from_utf8(b).ok())
    }
}

impl fmt::Write for Rendering {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match self.bytes.get_mut(self.len..self.len + s.len()) {
            Some(slot) => {
                slot.copy_from_slice(s.as_bytes());
                self.len += s.len();
            }
            None => self.overflow = true,
        }
        Ok(())
    }
}
