//! Positions in a Kinesis stream: shard ids and sequence numbers.
//!
//! Kinesis sequence numbers are decimal strings of up to 129 digits. They are
//! never compared as plain strings (`"9" > "10"`) and never parsed into an
//! integer type (they do not fit one). [`SequenceNumber`] keeps the digits and
//! orders by length first, then digit by digit, which is numeric order for
//! canonical (no leading zero) decimals.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// The longest sequence number Kinesis documents (`^\d{1,129}$`... in practice 56 digits today).
pub const MAX_SEQUENCE_DIGITS: usize = 129;

/// Why a text is not a sequence number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    /// Empty text.
    #[error("sequence number is empty")]
    Empty,
    /// More digits than Kinesis ever produces.
    #[error("sequence number has {0} digits, more than {MAX_SEQUENCE_DIGITS}")]
    TooLong(usize),
    /// A character that is not an ASCII digit.
    #[error("sequence number {0:?} contains a character that is not a decimal digit")]
    NotDecimal(String),
    /// The event id does not have the `shardId-...:sequence` shape.
    #[error("event id {0:?} is not of the form `shardId-...:<sequence number>`")]
    EventId(String),
    /// A shard id Kinesis never produces (longer than 128 characters, or a
    /// character outside `[A-Za-z0-9_.-]`): it could not be checkpointed.
    #[error("shard id {0:?} is not a Kinesis shard id (1 to {MAX_SHARD_ID_LEN} characters of A-Z, a-z, 0-9, `_`, `.`, `-`)")]
    ShardId(String),
}

/// The longest shard id Kinesis produces (its API's limit), and the size of
/// the `shard_id` columns of the bookkeeping tables.
pub const MAX_SHARD_ID_LEN: usize = 128;

/// A Kinesis sequence number, ordered numerically. Shared, not copied: each
/// decoded record, result and checkpoint of a delivery holds the same text
/// (56 digits and more; a copy is an allocation).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SequenceNumber(Arc<str>);

impl SequenceNumber {
    /// Parses a decimal sequence number. Leading zeros are dropped so that
    /// equal numbers compare equal.
    pub fn parse(text: &str) -> Result<Self, PositionError> {
        if text.is_empty() {
            return Err(PositionError::Empty);
        }
        // Folded, not short-circuited: the compiler checks many bytes at once.
        if !text
            .bytes()
            .fold(true, |digits, b| digits & b.is_ascii_digit())
        {
            return Err(PositionError::NotDecimal(text.chars().take(140).collect()));
        }
        let trimmed = text.trim_start_matches('0');
        let canonical = if trimmed.is_empty() { "0" } else { trimmed };
        if canonical.len() > MAX_SEQUENCE_DIGITS {
            return Err(PositionError::TooLong(canonical.len()));
        }
        Ok(SequenceNumber(Arc::from(canonical)))
    }

    /// The canonical decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.as_bytes().cmp(other.0.as_bytes()))
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SequenceNumber({})", self.0)
    }
}

impl TryFrom<String> for SequenceNumber {
    type Error = PositionError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        SequenceNumber::parse(&value)
    }
}

impl From<SequenceNumber> for String {
    fn from(value: SequenceNumber) -> Self {
        value.0.as_ref().to_owned()
    }
}

impl std::str::FromStr for SequenceNumber {
    type Err = PositionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SequenceNumber::parse(s)
    }
}

/// A shard of a stream, e.g. `shardId-000000000000`: short enough to be
/// kept inline (each decoded record holds a copy, without an allocation).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShardId(pub CompactString);

impl ShardId {
    /// A shard id, checked against what Kinesis produces.
    pub fn parse(text: &str) -> Result<ShardId, PositionError> {
        let valid = !text.is_empty()
            && text.len() <= MAX_SHARD_ID_LEN
            && text.bytes().fold(true, |valid, b| {
                valid & (b.is_ascii_alphanumeric() | matches!(b, b'_' | b'.' | b'-'))
            });
        if valid {
            Ok(ShardId(CompactString::from(text)))
        } else {
            Err(PositionError::ShardId(text.chars().take(140).collect()))
        }
    }

    /// The shard id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Splits a Lambda Kinesis `eventID` (`shardId-000000000000:4954...`) into
/// the shard id and the sequence number.
pub fn split_event_id(event_id: &str) -> Result<(ShardId, SequenceNumber), PositionError> {
    let (shard, seq) = event_id
        .rsplit_once(':')
        .filter(|(shard, _)| shard.starts_with("shardId-"))
        .ok_or_else(|| PositionError::EventId(event_id.chars().take(200).collect()))?;
    Ok((ShardId::parse(shard)?, SequenceNumber::parse(seq)?))
}

/// The furthest applied position of one shard for one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPosition {
    /// The shard.
    pub shard_id: ShardId,
    /// The last sequence number whose effect is durable.
    pub sequence_number: SequenceNumber,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seq(s: &str) -> SequenceNumber {
        SequenceNumber::parse(s).unwrap()
    }

    #[test]
    fn orders_numerically_not_lexically() {
        let cases = [
            ("9", "10", Ordering::Less),
            ("10", "9", Ordering::Greater),
            ("0010", "10", Ordering::Equal),
            (
                "49590338271490256608559692538361571095921575989136588898",
                "49590338271490256608559692540925702759324208523137515618",
                Ordering::Less,
            ),
            (
                "1",
                "100000000000000000000000000000000000000000000000000000000000000000000",
                Ordering::Less,
            ),
        ];
        for (a, b, want) in cases {
            assert_eq!(seq(a).cmp(&seq(b)), want, "{a} vs {b}");
        }
    }

    #[test]
    fn rejects_bad_text() {
        assert_eq!(SequenceNumber::parse(""), Err(PositionError::Empty));
        assert!(matches!(
            SequenceNumber::parse("12a"),
            Err(PositionError::NotDecimal(_))
        ));
        assert!(matches!(
            SequenceNumber::parse("-1"),
            Err(PositionError::NotDecimal(_))
        ));
        let long = "1".repeat(130);
        assert_eq!(
            SequenceNumber::parse(&long),
            Err(PositionError::TooLong(130))
        );
        assert!(SequenceNumber::parse(&"9".repeat(129)).is_ok());
    }

    #[test]
    fn shard_ids_are_what_kinesis_produces() {
        assert!(ShardId::parse("shardId-000000000000").is_ok());
        assert!(ShardId::parse(&format!("shardId-{}", "0".repeat(120))).is_ok());
        for bad in [
            String::new(),
            format!("shardId-{}", "0".repeat(121)),
            "shardId-00 0".to_owned(),
            "shardId-0';--".to_owned(),
        ] {
            assert!(
                matches!(ShardId::parse(&bad), Err(PositionError::ShardId(_))),
                "{bad:?}"
            );
        }
        let long = format!(
            "shardId-{}:49590338271490256608559692538361571095921575989136588898",
            "1".repeat(200)
        );
        assert!(matches!(
            split_event_id(&long),
            Err(PositionError::ShardId(_))
        ));
    }

    #[test]
    fn splits_event_ids() {
        let (shard, s) =
            split_event_id("shardId-000000000001:4959033827149025660855969253836157").unwrap();
        assert_eq!(shard.0, "shardId-000000000001");
        assert_eq!(s.as_str(), "4959033827149025660855969253836157");
        assert!(split_event_id("nocolon").is_err());
        assert!(split_event_id("other:123").is_err());
        assert!(split_event_id("shardId-1:").is_err());
    }

    #[test]
    fn json_forms_are_plain_strings() {
        // Shard ids and sequence numbers travel as JSON strings (failure
        // destinations, redrive ranges, replay files): the shared and the
        // inline representations must not show.
        let shard = ShardId::parse("shardId-000000000007").unwrap();
        assert_eq!(
            serde_json::to_string(&shard).unwrap(),
            r#""shardId-000000000007""#
        );
        let long = format!("shardId-{}", "4".repeat(120));
        let shard: ShardId = serde_json::from_str(&format!("{long:?}")).unwrap();
        assert_eq!(shard.as_str(), long);
        let n = seq("0049590338271490256608559692538361571095921575989136588898");
        let copy = n.clone();
        assert_eq!(
            serde_json::to_string(&copy).unwrap(),
            r#""49590338271490256608559692538361571095921575989136588898""#
        );
        let back: SequenceNumber = serde_json::from_str(r#""0012""#).unwrap();
        assert_eq!(
            (back.as_str(), String::from(back.clone())),
            ("12", "12".to_owned())
        );
        assert!(serde_json::from_str::<SequenceNumber>(r#""12a""#).is_err());
        assert_eq!(n, copy);
    }

    proptest! {
        #[test]
        fn order_matches_big_number_order(a in "[1-9][0-9]{0,128}", b in "[1-9][0-9]{0,128}") {
            // Compare as numbers by zero-padding to equal width: an
            // independent oracle for numeric order.
            let width = a.len().max(b.len());
            let pa = format!("{a:0>width$}");
            let pb = format!("{b:0>width$}");
            prop_assert_eq!(seq(&a).cmp(&seq(&b)), pa.cmp(&pb));
        }
    }
}
