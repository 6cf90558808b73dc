//! External versions: the engine's exact version text
//! ([`dms_cdc_core::version`]) as the 64-bit integer OpenSearch compares.
//!
//! OpenSearch orders a document's writes by one signed 64-bit version
//! (`version_type=external_gte`: a write lands when its version is at least
//! the stored one). The version text does not fit 63 bits, so it is mapped
//! by a **monotone** function: a prefix of its fields, each clamped to its
//! width. For any two versions `a <= b` (byte order of the text),
//! `external(a) <= external(b)`: the integer never inverts the order, it
//! only merges neighbours into ties.
//!
//! ```text
//! bit 62 ............ 31 | 30 ......... 14   | 13 ........ 0
//! seconds since          | log file number    | log offset
//! 2000-01-01 00:00:00 UTC| (binlog file; WAL  | / 256 KiB
//! (32 bits, to 2136-02)  | LSN high half)     | (14 bits, 0 to 4 GiB)
//!                        | (17 bits, 131,071) |
//! ```
//!
//! Each field is clamped (a time before 2000 is 0, a file number above
//! 131,071 is 131,071, an offset at or above 4 GiB is 16,383), which keeps
//! the map monotone. MySQL binlog offsets stay below `max_binlog_size`
//! (at most 1 GiB) plus one transaction; a PostgreSQL LSN's low half is
//! below 4 GiB. What the 63 bits do not hold: the offset within
//! 256 KiB of log, the record's place in its transaction, the Kinesis
//! sequence number and the kind (image or re-read). Two writes of one
//! document whose versions differ only there **tie**, and with
//! `external_gte` the one applied last wins. Within one shard that is the
//! stream's order (the engine applies a shard in order). Across shards (a
//! child and its parent on different shards), or for a redrive of old
//! records, two changes of one document committed in the same second within
//! the same 256 KiB of binlog may end in either order; the full text is
//! stored in the version column, so `dms-cdc reconcile` finds and repairs
//! such a document. A version without a log position (tasks without
//! `IncludeTransactionDetails`, full-load records) ties every change of its
//! second.

use chrono::NaiveDateTime;

/// 2000-01-01 00:00:00 UTC in seconds since the Unix epoch.
const EPOCH_2000: i64 = 946_684_800;
const SECOND_BITS: u32 = 32;
const FILE_BITS: u32 = 17;
const OFFSET_BITS: u32 = 14;
/// The binlog offset granule: 256 KiB.
const OFFSET_SHIFT: u32 = 18;

/// The largest external version this encoding gives (`2^63 - 1`).
pub const MAX_EXTERNAL: i64 = i64::MAX;

/// A version text that is not the engine's format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("version {0:?} is not a dms-cdc version (expected `YYYY-MM-DD HH:MM:SS.ffffff FILE:OFFSET ...`)")]
pub struct VersionTextError(pub String);

fn clamp(value: u64, bits: u32) -> u64 {
    value.min((1u64 << bits) - 1)
}

/// The external version of a version text (see the module docs).
pub fn external(text: &str) -> Result<i64, VersionTextError> {
    let bad = || VersionTextError(text.chars().take(64).collect());
    let time = text.get(..26).ok_or_else(bad)?;
    let time = NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M:%S%.6f").map_err(|_| bad())?;
    let seconds = (time.and_utc().timestamp() - EPOCH_2000).max(0) as u64;
    // Versions of releases before log positions end after the time: they
    // sort below every newer version of their second, as position 0:0 does.
    let (file, offset) = match text.get(27..) {
        None | Some("") => (0, 0),
        Some(rest) => {
            let position = rest.split(' ').next().unwrap_or_default();
            let (file, offset) = position.split_once(':').ok_or_else(bad)?;
            let file: u64 = file.parse().map_err(|_| bad())?;
            let offset: u64 = offset.parse().map_err(|_| bad())?;
            (file, offset)
        }
    };
    let value = clamp(seconds, SECOND_BITS) << (FILE_BITS + OFFSET_BITS)
        | clamp(file, FILE_BITS) << OFFSET_BITS
        | clamp(offset >> OFFSET_SHIFT, OFFSET_BITS);
    Ok(value as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(time: &str, file: u64, offset: u64, record: u32, seq: &str, kind: u8) -> String {
        format!(
            "{time}.000000 {file:010}:{offset:020} {record:010} {:03}{seq} {kind}",
            seq.len()
        )
    }

    #[test]
    fn the_integer_never_inverts_the_text_order() {
        let mut texts = vec![
            "1999-12-31 23:59:59.000000".to_owned(),
            "2026-11-20 10:15:02.000000".to_owned(),
            v("2026-11-20 10:15:02", 0, 0, 0, "1", 1),
            v("2026-11-20 10:15:02", 24, 5120, 3, "49590", 1),
            v("2026-11-20 10:15:02", 24, 5120, 3, "49590", 2),
            v("2026-11-20 10:15:02", 24, 300_000, 0, "1", 1),
            v("2026-11-20 10:15:02", 25, 0, 0, "1", 1),
            v("2026-11-20 10:15:02", 9_999_999, 0, 0, "1", 1),
            v("2026-11-20 10:15:03", 0, 0, 0, "1", 1),
            v("2026-11-20 10:15:03", 1, u64::MAX / 2, 0, "1", 1),
            v("2136-02-07 06:28:15", 0, 0, 0, "1", 1),
            v(
                "2200-01-01 00:00:00",
                9_999_999_999,
                99_999_999_999,
                0,
                "1",
                2,
            ),
        ];
        texts.sort();
        let ints: Vec<i64> = texts.iter().map(|t| external(t).unwrap()).collect();
        for pair in ints.windows(2) {
            assert!(pair[0] <= pair[1], "{ints:?}");
        }
        assert!(ints.iter().all(|i| *i >= 0));
    }

    #[test]
    fn seconds_files_and_offset_granules_are_held_the_rest_ties() {
        let a = external(&v("2026-11-20 10:15:02", 24, 5120, 3, "1", 1)).unwrap();
        // The record id, the sequence number and the kind are not held.
        assert_eq!(
            a,
            external(&v("2026-11-20 10:15:02", 24, 5120, 9, "9", 2)).unwrap()
        );
        // Within 256 KiB of binlog: a tie.
        assert_eq!(
            a,
            external(&v("2026-11-20 10:15:02", 24, 200_000, 0, "1", 1)).unwrap()
        );
        assert!(a < external(&v("2026-11-20 10:15:02", 24, 300_000, 0, "1", 1)).unwrap());
        assert!(a < external(&v("2026-11-20 10:15:02", 25, 0, 0, "1", 1)).unwrap());
        assert!(a < external(&v("2026-11-20 10:15:03", 0, 0, 0, "1", 1)).unwrap());
        assert_eq!(external("2000-01-01 00:00:01.000000").unwrap(), 1 << 31);
        let max = v(
            "2200-01-01 00:00:00",
            9_999_999_999,
            99_999_999_999,
            0,
            "1",
            2,
        );
        assert_eq!(external(&max).unwrap(), MAX_EXTERNAL);
    }

    #[test]
    fn other_text_is_refused() {
        for bad in [
            "",
            "v1",
            "2026-11-20",
            "2026-11-20 10:15:02.000000 x:y 1 2 1",
        ] {
            assert!(external(bad).is_err(), "{bad:?}");
        }
    }
}
