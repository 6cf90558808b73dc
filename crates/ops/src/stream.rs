//! Kinesis through the real AWS SDK: clients (AWS or a local emulator),
//! stream creation, ordered puts and reading records as deliveries.

use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, StreamStatus};
use aws_sdk_kinesis::Client;

use crate::dms::Delivery;
use crate::position::{SequenceNumber, ShardId};

/// A Kinesis call failed.
#[derive(Debug, thiserror::Error)]
#[error("kinesis {operation}: {message}")]
pub struct StreamError {
    /// The API operation.
    pub operation: &'static str,
    /// What happened (the SDK's full error context).
    pub message: String,
}

impl StreamError {
    fn of<E: std::error::Error>(operation: &'static str, e: E) -> Self {
        StreamError {
            operation,
            message: aws_sdk_kinesis::error::DisplayErrorContext(e).to_string(),
        }
    }
}

/// A client for AWS (endpoint `None`: the default credential chain and
/// region) or for a local emulator at `endpoint` (static test credentials).
pub async fn client(endpoint: Option<&str>) -> Client {
    match endpoint {
        None => Client::new(&aws_config::load_from_env().await),
        Some(url) => {
            let config = aws_sdk_kinesis::Config::builder()
                .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
                .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
                    "local",
                    "local",
                    None,
                    None,
                    "dms-cdc-local",
                ))
                .endpoint_url(url)
                .build();
            Client::from_conf(config)
        }
    }
}

/// Creates a stream with `shards` shards (if missing) and waits until it is active.
/// Returns its ARN.
pub async fn ensure_stream(
    client: &Client,
    name: &str,
    shards: i32,
) -> Result<String, StreamError> {
    let exists = client
        .describe_stream_summary()
        .stream_name(name)
        .send()
        .await
        .is_ok();
    if !exists {
        client
            .create_stream()
            .stream_name(name)
            .shard_count(shards)
            .send()
            .await
            .map_err(|e| StreamError::of("CreateStream", e))?;
    }
    for _ in 0..600 {
        let summary = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .map_err(|e| StreamError::of("DescribeStreamSummary", e))?;
        if let Some(d) = summary.stream_description_summary() {
            if d.stream_status() == &StreamStatus::Active {
                return Ok(d.stream_arn().to_owned());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(StreamError {
        operation: "CreateStream",
        message: format!("stream {name} did not become active"),
    })
}

/// Puts records in order. On a partial failure everything from the first
/// failed record on is sent again, so per partition key the last write of a
/// key is always its last record (records after the failed one may repeat:
/// delivery is at-least-once). Returns the shard and sequence number of each
/// record's final put, in input order.
pub async fn put_ordered(
    client: &Client,
    stream: &str,
    records: &[(String, Vec<u8>)],
) -> Result<Vec<(ShardId, SequenceNumber)>, StreamError> {
    const MAX_RECORDS: usize = 500;
    const MAX_BYTES: usize = 5 * 1024 * 1024;
    let mut placed = Vec::with_capacity(records.len());
    let mut start = 0;
    let mut attempts = 0;
    while start < records.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < records.len() && end - start < MAX_RECORDS {
            let size = records[end].0.len() + records[end].1.len();
            if end > start && bytes + size > MAX_BYTES {
                break;
            }
            bytes += size;
            end += 1;
        }
        let entries: Vec<PutRecordsRequestEntry> = records[start..end]
            .iter()
            .map(|(key, data)| {
                PutRecordsRequestEntry::builder()
                    .partition_key(key)
                    .data(Blob::new(data.clone()))
                    .build()
                    .map_err(|e| StreamError::of("PutRecords", e))
            })
            .collect::<Result<_, _>>()?;
        let out = client
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| StreamError::of("PutRecords", e))?;
        let mut ok = 0;
        for r in out.records() {
            match (r.shard_id(), r.sequence_number()) {
                (Some(shard), Some(seq)) if r.error_code().is_none() => {
                    let seq =
                        SequenceNumber::parse(seq).map_err(|e| StreamError::of("PutRecords", e))?;
                    placed.push((ShardId(shard.into()), seq));
                    ok += 1;
                }
                _ => break,
            }
        }
        if ok < end - start {
            attempts += 1;
            if attempts > 20 {
                return Err(StreamError {
                    operation: "PutRecords",
                    message: "records kept failing (throttled?) after 20 attempts".to_owned(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50 << attempts.min(5))).await;
        } else {
            attempts = 0;
        }
        start += ok;
    }
    Ok(placed)
}

/// Turns a GetRecords record into a delivery.
pub fn delivery(
    shard: &ShardId,
    record: &aws_sdk_kinesis::types::Record,
) -> Result<Delivery, StreamError> {
    let sequence_number = SequenceNumber::parse(record.sequence_number())
        .map_err(|e| StreamError::of("GetRecords", e))?;
    Ok(Delivery {
        shard_id: shard.clone(),
        sequence_number,
        partition_key: record.partition_key().unwrap_or_default().to_owned(),
        approximate_arrival_ms: record
            .approximate_arrival_timestamp()
            .map(|t| t.secs() * 1000 + i64::from(t.subsec_nanos() / 1_000_000)),
        data: record.data().as_ref().to_vec(),
    })
}
