//! Shard ranges to read again, and the records of one that the stream no
//! longer has.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::position::{SequenceNumber, ShardId};

/// Parses a time as `--since` takes it (where a [`Start::Since`] range
/// starts): RFC 3339, or `YYYY-MM-DD HH:MM[:SS]` / `YYYY-MM-DD` in UTC.
pub fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc());
        }
    }
    Err(format!(
        "{text:?} is not a time (RFC 3339, or YYYY-MM-DD HH:MM:SS in UTC)"
    ))
}

/// Where a range starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// At this record (inclusive).
    At(SequenceNumber),
    /// At the first record that arrived at or after this time.
    Since(DateTime<Utc>),
}

/// A shard range to read again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// Stream name.
    pub stream: String,
    /// Shard.
    pub shard: ShardId,
    /// Start.
    pub start: Start,
    /// Last sequence number (inclusive); `None`: up to the newest record.
    pub end: Option<SequenceNumber>,
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.stream, self.shard)?;
        match &self.start {
            Start::At(s) => write!(f, "{s}")?,
            Start::Since(t) => write!(f, "since {}", t.format("%Y-%m-%dT%H:%M:%SZ"))?,
        }
        match &self.end {
            Some(e) => write!(f, " ..= {e}"),
            None => write!(f, " .. newest"),
        }
    }
}

/// One edge of a lost range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edge {
    /// This sequence number is part of the lost range.
    Including(SequenceNumber),
    /// The range ends (or starts) just beside this sequence number.
    Excluding(SequenceNumber),
}

impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Edge::Including(s) => write!(f, "{s} (inclusive)"),
            Edge::Excluding(s) => write!(f, "{s} (exclusive)"),
        }
    }
}

/// Records of a range that are no longer in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostRange {
    /// The shard.
    pub shard: ShardId,
    /// Where the lost records start.
    pub from: Edge,
    /// Where they end.
    pub to: Edge,
    /// What showed it.
    pub reason: String,
}

impl fmt::Display for LostRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LOST: shard {}, sequence numbers from {} to {}: {}",
            self.shard, self.from, self.to, self.reason
        )
    }
}

#[cfg(test)]
mod tests {
    use super::parse_since;

    #[test]
    fn since_takes_rfc_3339_and_utc_dates_and_times() {
        for (text, expected) in [
            ("2024-03-01T10:20:30Z", Some("2024-03-01T10:20:30Z")),
            ("2024-03-01T12:20:30+02:00", Some("2024-03-01T10:20:30Z")),
            ("2024-03-01 10:20:30", Some("2024-03-01T10:20:30Z")),
            ("2024-03-01 10:20", Some("2024-03-01T10:20:00Z")),
            ("2024-03-01T10:20:30", Some("2024-03-01T10:20:30Z")),
            ("2024-03-01", Some("2024-03-01T00:00:00Z")),
            ("yesterday", None),
            ("", None),
        ] {
            let parsed = parse_since(text)
                .ok()
                .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            assert_eq!(parsed.as_deref(), expected, "{text:?}");
        }
    }
}
