//! Versions of target rows: an exact, total order of source changes, so the
//! writer's guard (`new version >= stored version`) never keeps an older
//! row and never drops a newer one.
//!
//! A version is text whose byte order is the order of changes:
//!
//! ```text
//! 2026-11-20 10:15:02.000000 0000000024:00000000000000005120 0000000003 056<56 digits> 1
//! commit timestamp           log file   : offset in the file record id  sequence number kind
//! ```
//!
//! - the source **commit timestamp** (`commit-timestamp`, else the DMS
//!   `timestamp`), in UTC when the text carries an offset, in whole
//!   seconds (the resolution of commit timestamps: a full-load record's
//!   microseconds would otherwise beat a change of the same second);
//! - the source **log position** from `stream-position` (binlog file number
//!   and offset), zeros when the task does not include transaction details;
//! - the **record's offset in its transaction** (`transaction-record-id`);
//! - the Kinesis **sequence number**, length-prefixed (orders as a number):
//!   within a shard it is the stream's order;
//! - the **kind**: `1` for a row built from the record's image, `2` for a
//!   row re-queried from the source.
//!
//! A re-queried row's version is that of the newest record of its attempt
//! (kind `2`), not the source clock: the snapshot is read after every
//! record of the attempt was committed, so it holds at least their effect.
//! The argument that the target converges (README "Versions"): let z be
//! the last change that affects a target row. Every write for that row
//! was decided by records at or before z, so its version is at most z's;
//! the write decided by z carries z's version and either the image of z
//! (the final row) or a read made after z committed (also the final row);
//! it wins or ties every other write, and a tie is the same content or a
//! later read of the same final state. The old scheme used the source clock
//! at the read (microseconds) against the commit time in the record (whole
//! seconds), so an update in the same second as a re-query was dropped.
//!
//! Within one second the order rests on the log position; without
//! transaction details (`IncludeTransactionDetails`), changes of one row in
//! one second on different shards fall back to their sequence numbers,
//! which order one shard only: include transaction details.

use std::fmt;

use crate::dms::DmsRecord;
use crate::position::SequenceNumber;

/// The version of a target row (see the module docs for the encoding).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(String);

/// The longest version text (a 129-digit sequence number): the version
/// column must hold it (`VARCHAR(255)`).
pub const MAX_VERSION_LEN: usize = 26 + 1 + 31 + 1 + 10 + 1 + 3 + 129 + 1 + 1;

/// Where a row's content came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Built from the record's image.
    Image,
    /// Re-queried from the source after the record was committed.
    Read,
}

/// Why a record has no version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// Neither `commit-timestamp` nor `timestamp` is in the metadata.
    #[error("the record has neither a commit-timestamp nor a timestamp in its metadata: its version cannot be computed")]
    Missing,
    /// The timestamp does not parse.
    #[error("metadata timestamp {0:?} is not a date-time (expected e.g. 2026-11-20T10:15:00.123456Z): its version cannot be computed")]
    Unparsable(String),
}

impl Version {
    /// The version of a row built from `record` (delivered as `sequence_number`).
    pub fn of_record(
        record: &DmsRecord,
        sequence_number: &SequenceNumber,
        kind: Kind,
    ) -> Result<Version, VersionError> {
        Parts::of(record, sequence_number, &mut None).map(|p| p.version(kind))
    }

    /// The newest of the records' versions as `kind` (records without one
    /// left out): the greatest [`Version::of_record`] of them, written once
    /// instead of once per record. Records whose fields all take their
    /// fixed widths (years 0 to 9999, no leap second, log file numbers of up
    /// to 10 digits, sequence numbers of up to 999 digits: the text's byte
    /// order is then the fields' order) are compared by their fields; any
    /// other makes it compare the texts.
    pub fn newest<'r>(
        records: impl IntoIterator<Item = (&'r DmsRecord, &'r SequenceNumber)>,
        kind: Kind,
    ) -> Option<Version> {
        // Consecutive records mostly share their commit timestamp (one per
        // transaction): it is read once for them.
        let mut last = None;
        let parts: Vec<Parts<'r>> = records
            .into_iter()
            .filter_map(|(r, s)| Parts::of(r, s, &mut last).ok())
            .collect();
        if parts.iter().all(Parts::fixed_width) {
            parts
                .iter()
                .max_by(|a, b| a.key().cmp(&b.key()))
                .map(|p| p.version(kind))
        } else {
            parts.iter().map(|p| p.version(kind)).max()
        }
    }

    /// The same position, as a re-queried row.
    pub fn as_read(&self) -> Version {
        let mut text = self.0.clone();
        text.pop();
        text.push('2');
        Version(text)
    }

    /// The text stored in the version column.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a record's version is made of, read and not yet written.
struct Parts<'r> {
    time: chrono::NaiveDateTime,
    file: u64,
    offset: u64,
    record_id: u32,
    seq: &'r str,
}

impl<'r> Parts<'r> {
    /// The parts of `record`'s version; `last` is the timestamp text read
    /// last and its time, taken as it is when this record's text is the same.
    fn of(
        record: &'r DmsRecord,
        sequence_number: &'r SequenceNumber,
        last: &mut Option<(&'r str, chrono::NaiveDateTime)>,
    ) -> Result<Parts<'r>, VersionError> {
        let t = record.metadata.transaction();
        let text = t
            .commit_timestamp
            .or(record.metadata.timestamp())
            .ok_or(VersionError::Missing)?;
        let time = match *last {
            Some((read, time)) if read == text => time,
            _ => {
                let time = parse_timestamp(text)
                    .ok_or_else(|| VersionError::Unparsable(text.chars().take(64).collect()))?;
                *last = Some((text, time));
                time
            }
        };
        let (file, offset) = t.stream_position.and_then(log_position).unwrap_or((0, 0));
        let record_id = t
            .transaction_record_id
            .and_then(|r| r.trim().parse::<u32>().ok())
            .unwrap_or(0);
        Ok(Parts {
            time,
            file,
            offset,
            record_id,
            seq: sequence_number.as_str(),
        })
    }

    /// Whether every field is written at its fixed width (offsets and
    /// record ids always are).
    fn fixed_width(&self) -> bool {
        self.plain_time() && self.file < 10_000_000_000 && self.seq.len() < 1000
    }

    /// Whether the time is written without chrono's `format`: a year of
    /// 0 to 9999 and no leap second.
    fn plain_time(&self) -> bool {
        use chrono::{Datelike, Timelike};
        (0..=9999).contains(&self.time.year()) && self.time.nanosecond() < 1_000_000_000
    }

    /// The fields in the order of the text (the time in whole seconds);
    /// orders fixed-width parts as their texts order.
    fn key(&self) -> (chrono::NaiveDate, u32, u64, u64, u32, usize, &str) {
        use chrono::Timelike;
        (
            self.time.date(),
            self.time.num_seconds_from_midnight(),
            self.file,
            self.offset,
            self.record_id,
            self.seq.len(),
            self.seq,
        )
    }

    fn version(&self, kind: Kind) -> Version {
        let (time, seq) = (&self.time, self.seq);
        // Whole seconds: commit timestamps have that resolution, while a
        // full-load record's `timestamp` (when DMS read the row) has
        // microseconds. Compared as they are, a change committed in the same
        // second after the read would sort below the load and be dropped;
        // floored, the load (no log position) loses the tie to any change
        // of its second, which is safe: every change has its own record.
        let mut text = String::with_capacity(96 + seq.len());
        {
            use crate::mapping::eval::{push_date, push_time, Fraction};
            // chrono's `format` for the rare years and leap seconds.
            if self.plain_time() {
                push_date(&mut text, &time.date());
                text.push(' ');
                push_time(&mut text, &time.time(), Fraction::ZeroMicros);
            } else {
                text = time.format("%Y-%m-%d %H:%M:%S.000000").to_string();
            }
        }
        // " {file:010}:{offset:020} {record_id:010} {len:03}{seq} {kind}",
        // without the formatting machinery (a version per record).
        text.push(' ');
        push_padded(&mut text, self.file, 10);
        text.push(':');
        push_padded(&mut text, self.offset, 20);
        text.push(' ');
        push_padded(&mut text, u64::from(self.record_id), 10);
        text.push(' ');
        push_padded(&mut text, seq.len() as u64, 3);
        text.push_str(seq);
        text.push_str(match kind {
            Kind::Image => " 1",
            Kind::Read => " 2",
        });
        Version(text)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Appends `value` in decimal, zero-padded to `width` digits (what
/// `{value:0width$}` writes: more digits when it has more).
fn push_padded(text: &mut String, value: u64, width: usize) {
    const ZEROS: &str = "00000000000000000000";
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(value);
    let mut pad = width.saturating_sub(digits.len());
    while pad > 0 {
        let n = pad.min(ZEROS.len());
        text.push_str(ZEROS.get(..n).unwrap_or_default());
        pad -= n;
    }
    text.push_str(digits);
}

/// A metadata timestamp as UTC: RFC 3339 with any offset, or DMS's
/// rendering without one (`Z`, a space or `T`, optional fraction).
fn parse_timestamp(text: &str) -> Option<chrono::NaiveDateTime> {
    // The usual one (no offset), without chrono's format machinery.
    crate::dms::plain_datetime(crate::dms::without_z(text)).or_else(|| chrono_timestamp(text))
}

/// [`parse_timestamp`] by chrono's readings: what the fast path does not read.
fn chrono_timestamp(text: &str) -> Option<chrono::NaiveDateTime> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.naive_utc());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(t) = chrono::DateTime::parse_from_str(text, format) {
            return Some(t.naive_utc());
        }
    }
    crate::dms::parse_datetime(text)
}

/// A WAL LSN (`16/B374D848`) as file 0 and one 64-bit number.
fn wal_lsn(text: &str) -> Option<(u64, u64)> {
    let (hi, lo) = text.split_once('/')?;
    let hi = u64::from_str_radix(hi.trim(), 16).ok()?;
    let lo = u64::from_str_radix(lo.trim(), 16).ok()?;
    (hi <= u64::from(u32::MAX) && lo <= u64::from(u32::MAX)).then_some((0, hi << 32 | lo))
}

/// The (file number, offset) of a MySQL `stream-position`
/// (`mysql-bin.000024:5120:...`, or the local capture's `binlog.000001:5120`),
/// or of a PostgreSQL one, whose first part is a WAL LSN (`16/B374D848`):
/// file 0 and the LSN as a 64-bit number, which orders like the WAL.
fn log_position(text: &str) -> Option<(u64, u64)> {
    // The text up to the first `:`, `.` or space (bytes: a search for any
    // of three chars goes char by char).
    let first = text
        .bytes()
        .position(|b| matches!(b, b':' | b'.' | b' '))
        .map_or(Some(text), |end| text.get(..end));
    let lsn = first.and_then(wal_lsn);
    if lsn.is_some() {
        return lsn;
    }
    // `file.number:offset[:...]`, read by bytes.
    let colon = text.bytes().position(|b| b == b':')?;
    let (file, rest) = (text.get(..colon)?, text.get(colon + 1..)?);
    let offset = rest
        .get(..rest.bytes().position(|b| b == b':').unwrap_or(rest.len()))?
        .trim()
        .parse::<u64>()
        .ok()?;
    let number = file
        .get(
            file.bytes()
                .rposition(|b| b == b'.')
                .map_or(0, |dot| dot + 1)..,
        )?
        .parse::<u64>()
        .ok()?;
    (number < 10_000_000_000).then_some((number, offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dms::{decode_payload, DecodeOptions};
    use crate::position::ShardId;
    use proptest::prelude::*;

    fn record(metadata: &str) -> DmsRecord {
        let json = format!(
            r#"{{"data":{{"id":1}},"metadata":{{"record-type":"data","operation":"update","schema-name":"s","table-name":"t"{metadata}}}}}"#
        );
        decode_payload(
            &ShardId("shardId-000000000000".into()),
            &seq("1"),
            json.as_bytes(),
            &DecodeOptions::default(),
        )
        .unwrap()
    }

    fn seq(s: &str) -> SequenceNumber {
        SequenceNumber::parse(s).unwrap()
    }

    fn v(metadata: &str, s: &str, kind: Kind) -> Version {
        Version::of_record(&record(metadata), &seq(s), kind).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// `newest` is the greatest version of the records, whatever they
        /// hold: times in a few seconds (fractions, offsets, a year before
        /// 0 in UTC, a leap second), none or an unparsable one, log files
        /// of up to 11 digits, record ids, sequence numbers of any length.
        #[test]
        fn newest_is_the_greatest_version(
            records in proptest::collection::vec(
                (
                    proptest::prop_oneof![
                        (8u32..10, 0u32..1_000_000).prop_map(|(s, us)| format!(r#","commit-timestamp":"2026-11-20T10:15:5{s}.{us:06}Z""#)),
                        Just(r#","timestamp":"2026-11-20 10:15:59""#.to_owned()),
                        Just(r#","commit-timestamp":"2026-11-20T11:15:59+01:00""#.to_owned()),
                        // A leap second, after 10:15:59 in the text's order.
                        Just(r#","commit-timestamp":"2026-11-20T10:15:60Z""#.to_owned()),
                        Just(r#","commit-timestamp":"2026-11-20T10:16:00Z""#.to_owned()),
                        // The year 10000 in UTC, written `+10000`.
                        Just(r#","commit-timestamp":"9999-12-31T23:30:00-01:00""#.to_owned()),
                        Just(r#","commit-timestamp":"0000-01-01T00:30:00+01:00""#.to_owned()),
                        Just(r#","commit-timestamp":"not a time""#.to_owned()),
                        Just(String::new()),
                    ],
                    proptest::prop_oneof![
                        Just(String::new()),
                        (0u64..2, 0u64..2).prop_map(|(f, o)| format!(r#","stream-position":"mysql-bin.{f:06}:{o}:0""#)),
                        (9_999_999_998u64..10_000_000_002, 0u64..2).prop_map(|(f, o)| format!(r#","stream-position":"mysql-bin.{f}:{o}""#)),
                    ],
                    proptest::prop_oneof![
                        Just(String::new()),
                        (0u32..2).prop_map(|i| format!(r#","transaction-record-id":{i}"#)),
                    ],
                    "[0-9]{1,2}|9[0-9]{1,2}|[1-9][0-9]{54,56}",
                ),
                0..12,
            ),
            read in any::<bool>(),
        ) {
            let kind = if read { Kind::Read } else { Kind::Image };
            let built: Vec<(DmsRecord, SequenceNumber)> = records
                .iter()
                .map(|(time, position, id, s)| (record(&format!("{time}{position}{id}")), seq(s)))
                .collect();
            let expected = built
                .iter()
                .filter_map(|(r, s)| Version::of_record(r, s, kind).ok())
                .max();
            proptest::prop_assert_eq!(
                Version::newest(built.iter().map(|(r, s)| (r, s)), kind),
                expected
            );
        }
    }

    #[test]
    fn a_postgresql_lsn_orders_like_the_wal() {
        let at = |lsn: &str| {
            v(
                &format!(r#","commit-timestamp":"2026-11-20T10:15:02Z","stream-position":"{lsn}""#),
                "1",
                Kind::Image,
            )
        };
        let (a, b, c) = (at("0/16B3748"), at("0/FFFFFFFF"), at("1/0"));
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(
            a.as_str().contains(" 0000000000:00000000000023803720 "),
            "{a}"
        );
    }

    #[test]
    fn the_encoding_is_readable_and_fixed() {
        let got = v(
            r#","timestamp":"2026-11-20T10:15:05.5Z","commit-timestamp":"2026-11-20T10:15:02Z","stream-position":"mysql-bin.000024:5120:0:5188:8324128402:mysql-bin.000024:5000","transaction-record-id":3"#,
            "4959",
            Kind::Image,
        );
        assert_eq!(
            got.as_str(),
            "2026-11-20 10:15:02.000000 0000000024:00000000000000005120 0000000003 0044959 1"
        );
        assert_eq!(got.as_read().as_str().chars().last(), Some('2'));
        let long = v(
            r#","timestamp":"2026-11-20T10:15:05Z""#,
            &"9".repeat(129),
            Kind::Read,
        );
        assert_eq!(long.as_str().len(), MAX_VERSION_LEN);
    }

    #[test]
    fn versions_order_changes() {
        let at = |ts: &str, pos: &str, s: &str, kind| {
            v(
                &format!(r#","commit-timestamp":"{ts}","stream-position":"{pos}""#),
                s,
                kind,
            )
        };
        // In one second, the log position decides, whatever the shard's sequence.
        let a = at(
            "2026-11-20T10:15:02Z",
            "binlog.000001:900",
            "900",
            Kind::Image,
        );
        let b = at(
            "2026-11-20T10:15:02Z",
            "binlog.000001:1000",
            "10",
            Kind::Image,
        );
        let c = at("2026-11-20T10:15:02Z", "binlog.000002:4", "5", Kind::Image);
        assert!(a < b && b < c);
        // A later second wins over any position (a failover restarts the log).
        let d = at("2026-11-20T10:15:03Z", "binlog.000001:4", "1", Kind::Image);
        assert!(c < d);
        // Without positions, one shard's sequence orders one second.
        let e = v(
            r#","commit-timestamp":"2026-11-20T10:15:02Z""#,
            "99",
            Kind::Read,
        );
        let f = v(
            r#","commit-timestamp":"2026-11-20T10:15:02Z""#,
            "100",
            Kind::Image,
        );
        assert!(e < f, "{e} < {f}");
        // The same record: the re-queried row is at least as new as its image.
        assert!(f < f.as_read());
        // A full-load record read at 10:15:02.7 (no log position) sorts
        // below a change committed later in that second.
        let load = v(
            r#","timestamp":"2026-11-20T10:15:02.700000Z""#,
            "1",
            Kind::Image,
        );
        let change = at("2026-11-20T10:15:02Z", "binlog.000001:4", "1", Kind::Image);
        assert!(load < change, "{load} < {change}");
        // Offsets and UTC.
        let g = v(
            r#","commit-timestamp":"2026-11-20T12:15:02+02:00""#,
            "1",
            Kind::Image,
        );
        let h = v(
            r#","commit-timestamp":"2026-11-20 10:15:02Z""#,
            "1",
            Kind::Image,
        );
        assert_eq!(g, h);
        // Rows written by earlier releases ("2026-11-20 10:15:02.000000")
        // sort below every version of that second and later ones.
        assert!("2026-11-20 10:15:02.000000" < h.as_str());
    }

    #[test]
    fn a_missing_or_unparsable_timestamp_is_a_named_error() {
        let r = record("");
        assert_eq!(
            Version::of_record(&r, &seq("1"), Kind::Image),
            Err(VersionError::Missing)
        );
        let r = record(r#","timestamp":"yesterday""#);
        let e = Version::of_record(&r, &seq("1"), Kind::Image).unwrap_err();
        assert!(e.to_string().contains("\"yesterday\""), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// The fast path reads a timestamp as chrono's readings do.
        #[test]
        fn timestamps_read_as_chrono_reads_them(
            text in " ?[0-9]{4}-(0[1-9]|1[0-2]|[0-9]{1,2})-[0-3][0-9][Tt ][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{0,11})?([Zz]|[+-]0[0-9](:[0-5][0-9])?)? ?",
        ) {
            proptest::prop_assert_eq!(parse_timestamp(&text), chrono_timestamp(&text));
        }
    }

    proptest::proptest! {
        #[test]
        fn any_padded_number_is_what_format_writes(
            value in proptest::prop_oneof![proptest::prelude::any::<u64>(), 0u64..100_000],
            width in 0usize..45,
        ) {
            let mut text = String::from("x");
            push_padded(&mut text, value, width);
            proptest::prop_assert_eq!(text, format!("x{value:0width$}"));
        }
    }

    #[test]
    fn padded_numbers_are_what_format_writes() {
        for value in [0, 7, 10, 999, 1000, 4_294_967_295, 9_999_999_999, u64::MAX] {
            for width in [0, 1, 3, 10, 20, 25] {
                let mut text = String::from("x");
                push_padded(&mut text, value, width);
                assert_eq!(text, format!("x{value:0width$}"), "{value} {width}");
            }
        }
    }

    /// `log_position` as it was, with `str` splits.
    fn split_log_position(text: &str) -> Option<(u64, u64)> {
        let lsn = text.split([':', '.', ' ']).next().and_then(wal_lsn);
        if lsn.is_some() {
            return lsn;
        }
        let mut parts = text.split(':');
        let file = parts.next()?;
        let offset = parts.next()?.trim().parse::<u64>().ok()?;
        let number = file.rsplit('.').next()?.parse::<u64>().ok()?;
        (number < 10_000_000_000).then_some((number, offset))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// Read by bytes, a stream position reads as the splits read it.
        #[test]
        fn log_positions_read_as_splits_read_them(
            text in "[a-z.-]{0,6}(\\.[0-9]{1,11})?(:[ 0-9]{0,21}){0,3}|[0-9A-F ]{0,9}/[0-9A-F ]{0,9}[:. ]?[0-9]{0,3}",
        ) {
            proptest::prop_assert_eq!(log_position(&text), split_log_position(&text));
        }
    }
}
