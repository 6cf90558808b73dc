//! On-failure records: what Lambda sends (to SQS or SNS) when the event
//! source mapping gives up on a batch: the shard and the first and last
//! sequence numbers, not the records.

use crate::position::{SequenceNumber, ShardId};

/// The part of an on-failure record (Lambda's JSON shape for a Kinesis
/// event source) that a redrive needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnFailure {
    /// The shard.
    pub shard: ShardId,
    /// First sequence number of the batch that was given up.
    pub start: SequenceNumber,
    /// Last sequence number of that batch (inclusive).
    pub end: SequenceNumber,
    /// The stream's ARN.
    pub stream_arn: Option<String>,
    /// Records in the batch.
    pub batch_size: Option<u64>,
    /// Why it was given up (`RetryAttemptsExhausted`, `RecordAgeExceeded`, ...).
    pub condition: Option<String>,
}

/// Parses an on-failure record: the JSON Lambda sends (an SQS message body,
/// or a line of `consume --on-failure-file`), also wrapped in an SNS
/// notification (an SNS topic subscribed by a queue without raw delivery).
pub fn parse_on_failure(text: &str) -> Result<OnFailure, String> {
    let mut doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if doc["Type"] == "Notification" {
        if let Some(inner) = doc["Message"].as_str() {
            doc = serde_json::from_str(inner)
                .map_err(|e| format!("SNS notification whose Message is not JSON: {e}"))?;
        }
    }
    let info = doc
        .get("KinesisBatchInfo")
        .ok_or("no KinesisBatchInfo: not an on-failure record of a Kinesis event source")?;
    let text_of = |field: &str| -> Result<String, String> {
        info.get(field)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("KinesisBatchInfo.{field} is missing"))
    };
    let seq = |field: &str| -> Result<SequenceNumber, String> {
        SequenceNumber::parse(&text_of(field)?)
            .map_err(|e| format!("KinesisBatchInfo.{field}: {e}"))
    };
    let start = seq("startSequenceNumber")?;
    let end = seq("endSequenceNumber")?;
    if end < start {
        return Err(format!(
            "KinesisBatchInfo: endSequenceNumber {end} is before startSequenceNumber {start}"
        ));
    }
    Ok(OnFailure {
        shard: ShardId(text_of("shardId")?.into()),
        start,
        end,
        stream_arn: info
            .get("streamArn")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        batch_size: info.get("batchSize").and_then(|v| v.as_u64()),
        condition: doc["requestContext"]["condition"]
            .as_str()
            .map(str::to_owned),
    })
}

/// The stream name in a Kinesis stream ARN (`arn:aws:kinesis:...:stream/NAME`).
pub fn stream_name_of_arn(arn: &str) -> Option<&str> {
    arn.split_once(":stream/")
        .map(|(_, name)| name)
        .filter(|n| !n.is_empty())
}
