//! Shard ranges to read again, and the records of one that the stream no
//! longer has.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::position::{SequenceNumber, ShardId};

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
