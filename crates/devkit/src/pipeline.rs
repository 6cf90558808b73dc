//! The local pipeline's glue: capture into a Kinesis stream (position
//! persisted after every acknowledged put) or into a fixture file (a Lambda
//! Kinesis event ready for `dms-cdc replay` and `cargo lambda invoke`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

use crate::capture::{
    current_position, BinlogPosition, Capture, CaptureError, CaptureOptions, CapturedRecord,
};
use crate::stream::{put_ordered, StreamError};

/// Errors of the local pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Capture failed.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// Kinesis failed.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// A position or fixture file.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

fn file_error(path: &Path) -> impl Fn(std::io::Error) -> PipelineError + '_ {
    move |source| PipelineError::File {
        path: path.to_owned(),
        source,
    }
}

/// Reads a persisted binlog position (`file:pos`), if the file exists.
pub fn load_position(path: &Path) -> Result<Option<BinlogPosition>, PipelineError> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(file_error(path))?;
    text.trim()
        .parse::<BinlogPosition>()
        .map(Some)
        .map_err(|e| PipelineError::File {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
        })
}

/// Persists a binlog position atomically.
pub fn save_position(path: &Path, position: &BinlogPosition) -> Result<(), PipelineError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, position.to_string()).map_err(file_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(file_error(path))
}

/// Counts of a capture run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureSummary {
    /// Transactions read.
    pub transaction_count: usize,
    /// Records put (or written).
    pub record_count: usize,
    /// Where the next run resumes.
    pub position: Option<BinlogPosition>,
}

/// When a capture run stops.
#[derive(Debug, Clone)]
pub enum StopAt {
    /// When the position the source had at the start is reached.
    CaughtUp,
    /// When nothing new arrived for this long after `stop` was set (or forever if never set).
    Signal(tokio::sync::watch::Receiver<bool>),
}

/// Captures from `from` into `stream`, persisting the position to
/// `position_file` after every acknowledged put, so a restart loses nothing
/// and repeats at most the last unacknowledged transaction.
pub async fn capture_to_stream(
    source_url: &str,
    from: BinlogPosition,
    options: CaptureOptions,
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    position_file: Option<&Path>,
    stop: StopAt,
) -> Result<CaptureSummary, PipelineError> {
    let pool = crate::source::pool(source_url, 1)
        .map_err(|e| PipelineError::Capture(CaptureError::Setup(format!("source URL: {e}"))))?;
    let opts = crate::connection::opts(source_url)
        .map_err(|e| PipelineError::Capture(CaptureError::Setup(format!("source URL: {e}"))))?;
    let caught_up = current_position(&pool).await?;
    let mut capture = Capture::start(opts, from, options).await?;
    let mut summary = CaptureSummary::default();
    loop {
        let done = match &stop {
            StopAt::CaughtUp => capture.position() >= &caught_up,
            StopAt::Signal(_) => false,
        };
        if done {
            break;
        }
        match capture.next_transaction(Duration::from_millis(200)).await? {
            Some(tx) => {
                let records: Vec<(String, Vec<u8>)> = tx
                    .records
                    .iter()
                    .map(|r| (r.partition_key.clone(), r.payload.clone()))
                    .collect();
                if !records.is_empty() {
                    put_ordered(kinesis, stream, &records).await?;
                }
                summary.transaction_count += 1;
                summary.record_count += records.len();
                if let Some(path) = position_file {
                    save_position(path, &tx.position)?;
                }
            }
            None => {
                if let StopAt::Signal(rx) = &stop {
                    if *rx.borrow() {
                        break;
                    }
                }
            }
        }
    }
    summary.position = Some(capture.position().clone());
    capture.close().await?;
    pool.disconnect().await.ok();
    Ok(summary)
}

/// A Lambda Kinesis event (the JSON Lambda sends) holding `records`, each on
/// the shard its partition key hashes to among `shard_count`, with increasing
/// 56-digit sequence numbers per shard.
pub fn fixture_event(
    records: &[CapturedRecord],
    shard_count: usize,
    stream_arn: &str,
) -> serde_json::Value {
    fixture_event_of(
        records.iter().map(|r| {
            (
                r.partition_key.as_str(),
                r.payload.as_slice(),
                r.commit_time,
            )
        }),
        shard_count,
        stream_arn,
    )
}

/// [`fixture_event`] of (partition key, payload, commit time) triples.
pub fn fixture_event_of<'a>(
    records: impl Iterator<Item = (&'a str, &'a [u8], Option<chrono::DateTime<chrono::Utc>>)>,
    shard_count: usize,
    stream_arn: &str,
) -> serde_json::Value {
    let mut next: Vec<u128> = vec![0; shard_count.max(1)];
    let items: Vec<serde_json::Value> = records
        .map(|(partition_key, payload, commit_time)| {
            let shard = crate::capture::shard_for(partition_key, shard_count);
            next[shard] += 1;
            let seq = format!(
                "4959033827149025660855969253836157109592157598913{:07}",
                next[shard]
            );
            let arrival = commit_time
                .map(|t| t.timestamp_millis() as f64 / 1000.0)
                .unwrap_or(0.0);
            serde_json::json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": partition_key,
                    "sequenceNumber": seq,
                    "data": base64::engine::general_purpose::STANDARD.encode(payload),
                    "approximateArrivalTimestamp": arrival
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("shardId-{shard:012}:{seq}"),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::000000000000:role/dms-cdc-local",
                "awsRegion": "us-east-1",
                "eventSourceARN": stream_arn
            })
        })
        .collect();
    serde_json::json!({ "Records": items })
}

/// Captures up to the source's current position into a fixture file, after
/// `load` (snapshot records, or nothing).
pub async fn capture_to_file(
    source_url: &str,
    from: BinlogPosition,
    options: CaptureOptions,
    path: &Path,
    shard_count: usize,
    load: &[CapturedRecord],
) -> Result<CaptureSummary, PipelineError> {
    let pool = crate::source::pool(source_url, 1)
        .map_err(|e| PipelineError::Capture(CaptureError::Setup(format!("source URL: {e}"))))?;
    let opts = crate::connection::opts(source_url)
        .map_err(|e| PipelineError::Capture(CaptureError::Setup(format!("source URL: {e}"))))?;
    let target = current_position(&pool).await?;
    let mut capture = Capture::start(opts, from, options).await?;
    let transactions = capture
        .transactions_until(&target, Duration::from_secs(120))
        .await?;
    let records: Vec<CapturedRecord> = load
        .iter()
        .cloned()
        .chain(transactions.iter().flat_map(|t| t.records.clone()))
        .collect();
    let event = fixture_event(
        &records,
        shard_count,
        "arn:aws:kinesis:us-east-1:000000000000:stream/dms-cdc-local",
    );
    let text = serde_json::to_string_pretty(&event).unwrap_or_default();
    std::fs::write(path, text + "\n").map_err(file_error(path))?;
    let summary = CaptureSummary {
        transaction_count: transactions.len(),
        record_count: records.len(),
        position: Some(capture.position().clone()),
    };
    capture.close().await?;
    pool.disconnect().await.ok();
    Ok(summary)
}
