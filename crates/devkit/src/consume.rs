//! A local stand-in for Lambda's Kinesis event source mapping.
//!
//! It polls every shard (ListShards, GetShardIterator, GetRecords; a closed
//! shard's children start once it is drained), assembles batches like Lambda
//! (batch size, batching window, 6 MB), hands them to a [`BatchHandler`] and
//! honours the answer exactly like Lambda with `ReportBatchItemFailures`:
//! checkpoint before the lowest reported sequence number and redeliver from
//! there; on a function error retry the batch, bisecting it when enabled;
//! after the retry limit or the record age limit, write an on-failure record
//! in AWS's JSON shape and move on. Positions are persisted per shard, so a
//! restart resumes.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_lambda_events::streams::KinesisEventResponse;
use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_kinesis::Client;
use serde::{Deserialize, Serialize};

use crate::dms::Delivery;
use crate::position::{SequenceNumber, ShardId};
use crate::stream::{delivery, StreamError};

/// The largest batch payload Lambda accepts (6 MB).
pub const MAX_BATCH_BYTES: usize = 6 * 1024 * 1024;

/// Something that processes a batch like a Lambda function.
pub trait BatchHandler {
    /// Processes a batch; `Err` is a function error (Lambda's 200 with
    /// `X-Amz-Function-Error`).
    fn handle(
        &self,
        batch: &[Delivery],
    ) -> impl std::future::Future<Output = Result<KinesisEventResponse, String>>;
}

impl<S: dms_cdc_core::source::Source, T: dms_cdc_core::target::Target> BatchHandler
    for crate::engine::Engine<S, T>
{
    async fn handle(&self, batch: &[Delivery]) -> Result<KinesisEventResponse, String> {
        Ok(self.process(batch).await.response)
    }
}

/// The event source mapping settings.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// Stream name.
    pub stream_name: String,
    /// Stream ARN (for on-failure records).
    pub stream_arn: String,
    /// Records per batch (1..10,000).
    pub batch_size: usize,
    /// How long to gather records before invoking.
    pub batching_window: Duration,
    /// Retries of a failing batch before it is given up (-1 in AWS: infinite; here always finite).
    pub maximum_retry_attempts: u32,
    /// Records older than this are given up instead of retried.
    pub maximum_record_age: Option<Duration>,
    /// Split a batch in two on a function error.
    pub bisect_on_function_error: bool,
    /// Where on-failure records go (JSON lines).
    pub on_failure_file: Option<PathBuf>,
    /// Where positions are persisted.
    pub state_file: Option<PathBuf>,
    /// Pause between retries.
    pub retry_delay: Duration,
}

impl ConsumeOptions {
    /// Defaults like the SAM template's: batch 100, no window, 3 retries, bisect on.
    pub fn new(stream_name: &str, stream_arn: &str) -> Self {
        ConsumeOptions {
            stream_name: stream_name.to_owned(),
            stream_arn: stream_arn.to_owned(),
            batch_size: 100,
            batching_window: Duration::ZERO,
            maximum_retry_attempts: 3,
            maximum_record_age: None,
            bisect_on_function_error: true,
            on_failure_file: None,
            state_file: None,
            retry_delay: Duration::from_millis(100),
        }
    }
}

/// Persisted per-shard position.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShardState {
    /// Last sequence number that is done (applied or given up).
    pub checkpoint: Option<SequenceNumber>,
    /// The shard is closed and drained.
    pub finished: bool,
}

/// Counts of a consume run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumeSummary {
    /// Records read from the stream.
    pub record_count: usize,
    /// Handler invocations.
    pub invocation_count: usize,
    /// Batches given up (on-failure records written).
    pub on_failure_count: usize,
}

/// Errors of the consumer itself (not of the handler).
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// A Kinesis call failed.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The state or on-failure file.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// The local event source mapping over one stream.
pub struct Consumer {
    client: Client,
    options: ConsumeOptions,
    shards: BTreeMap<ShardId, ShardState>,
    summary: ConsumeSummary,
}

struct ShardCursor {
    iterator: Option<String>,
    pending: VecDeque<Delivery>,
    closed: bool,
}

impl Consumer {
    /// A consumer; loads persisted positions if the state file exists.
    pub fn new(client: Client, options: ConsumeOptions) -> Result<Self, ConsumeError> {
        let shards = match &options.state_file {
            Some(path) if path.exists() => {
                let text = std::fs::read_to_string(path).map_err(|source| ConsumeError::File {
                    path: path.clone(),
                    source,
                })?;
                serde_json::from_str(&text).map_err(|e| ConsumeError::File {
                    path: path.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                })?
            }
            _ => BTreeMap::new(),
        };
        Ok(Consumer {
            client,
            options,
            shards,
            summary: ConsumeSummary::default(),
        })
    }

    /// Positions per shard.
    pub fn positions(&self) -> &BTreeMap<ShardId, ShardState> {
        &self.shards
    }

    fn save(&self) -> Result<(), ConsumeError> {
        if let Some(path) = &self.options.state_file {
            let tmp = path.with_extension("tmp");
            let text = serde_json::to_string_pretty(&self.shards).unwrap_or_default();
            std::fs::write(&tmp, text).map_err(|source| ConsumeError::File {
                path: tmp.clone(),
                source,
            })?;
            std::fs::rename(&tmp, path).map_err(|source| ConsumeError::File {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    async fn list_shards(&self) -> Result<Vec<(ShardId, Option<ShardId>)>, ConsumeError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = self.client.list_shards();
            req = match &token {
                Some(t) => req.next_token(t),
                None => req.stream_name(&self.options.stream_name),
            };
            let page = req.send().await.map_err(|e| StreamError {
                operation: "ListShards",
                message: aws_sdk_kinesis::error::DisplayErrorContext(e).to_string(),
            })?;
            for s in page.shards() {
                out.push((
                    ShardId(s.shard_id().into()),
                    s.parent_shard_id().map(|p| ShardId(p.into())),
                ));
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    async fn iterator(&self, shard: &ShardId) -> Result<Option<String>, ConsumeError> {
        let state = self.shards.get(shard).cloned().unwrap_or_default();
        let mut req = self
            .client
            .get_shard_iterator()
            .stream_name(&self.options.stream_name)
            .shard_id(shard.as_str());
        req = match &state.checkpoint {
            Some(seq) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq.as_str()),
            None => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let out = req.send().await.map_err(|e| StreamError {
            operation: "GetShardIterator",
            message: aws_sdk_kinesis::error::DisplayErrorContext(e).to_string(),
        })?;
        Ok(out.shard_iterator().map(str::to_owned))
    }

    /// Polls until every shard has been idle for `idle` (no records, nothing
    /// pending) or `deadline` passes; returns the counts so far.
    pub async fn run_until_idle<H: BatchHandler>(
        &mut self,
        handler: &H,
        idle: Duration,
        deadline: Duration,
    ) -> Result<ConsumeSummary, ConsumeError> {
        let started = Instant::now();
        let mut cursors: BTreeMap<ShardId, ShardCursor> = BTreeMap::new();
        let mut last_activity = Instant::now();
        while started.elapsed() < deadline {
            // Start shards whose parent is drained (or unknown/expired).
            let shards = self.list_shards().await?;
            for (shard, parent) in &shards {
                let state = self.shards.entry(shard.clone()).or_default().clone();
                if state.finished || cursors.contains_key(shard) {
                    continue;
                }
                let parent_done = match parent {
                    Some(p) => {
                        self.shards.get(p).is_none_or(|s| s.finished)
                            || !shards.iter().any(|(id, _)| id == p)
                    }
                    None => true,
                };
                if parent_done {
                    let iterator = self.iterator(shard).await?;
                    cursors.insert(
                        shard.clone(),
                        ShardCursor {
                            iterator,
                            pending: VecDeque::new(),
                            closed: false,
                        },
                    );
                }
            }
            let mut active = false;
            let shard_ids: Vec<ShardId> = cursors.keys().cloned().collect();
            for shard in shard_ids {
                let Some(cursor) = cursors.get_mut(&shard) else {
                    continue;
                };
                // Fill the pending queue.
                let window_start = Instant::now();
                loop {
                    let Some(it) = cursor.iterator.clone() else {
                        cursor.closed = true;
                        break;
                    };
                    let out = self
                        .client
                        .get_records()
                        .shard_iterator(it)
                        .limit(self.options.batch_size.clamp(1, 10_000) as i32)
                        .send()
                        .await
                        .map_err(|e| StreamError {
                            operation: "GetRecords",
                            message: aws_sdk_kinesis::error::DisplayErrorContext(e).to_string(),
                        })?;
                    let got = out.records().len();
                    for r in out.records() {
                        cursor.pending.push_back(delivery(&shard, r)?);
                    }
                    self.summary.record_count += got;
                    cursor.iterator = out.next_shard_iterator().map(str::to_owned);
                    let behind = out.millis_behind_latest().unwrap_or(0) > 0;
                    if cursor.pending.len() >= self.options.batch_size
                        || window_start.elapsed() >= self.options.batching_window
                        || (got == 0 && !behind)
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                // Invoke for full batches (or what there is).
                while !cursor.pending.is_empty() {
                    active = true;
                    let mut batch = Vec::new();
                    let mut bytes = 0;
                    while let Some(d) = cursor.pending.front() {
                        let size = d.data.len() + d.partition_key.len();
                        if batch.len() >= self.options.batch_size
                            || (!batch.is_empty() && bytes + size > MAX_BATCH_BYTES)
                        {
                            break;
                        }
                        bytes += size;
                        if let Some(d) = cursor.pending.pop_front() {
                            batch.push(d);
                        }
                    }
                    self.deliver(handler, &shard, batch).await?;
                }
                if cursor.closed && cursor.pending.is_empty() {
                    self.shards.entry(shard.clone()).or_default().finished = true;
                    self.save()?;
                    cursors.remove(&shard);
                    active = true;
                }
            }
            if active {
                last_activity = Instant::now();
            } else if last_activity.elapsed() >= idle {
                break;
            } else {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(self.summary.clone())
    }

    /// Delivers one batch until it is done or given up.
    async fn deliver<H: BatchHandler>(
        &mut self,
        handler: &H,
        shard: &ShardId,
        batch: Vec<Delivery>,
    ) -> Result<(), ConsumeError> {
        let mut queue: VecDeque<(Vec<Delivery>, u32)> = VecDeque::from([(batch, 0)]);
        while let Some((batch, attempts)) = queue.pop_front() {
            if batch.is_empty() {
                continue;
            }
            self.summary.invocation_count += 1;
            let result = handler.handle(&batch).await;
            let failed_at = match &result {
                // A reported record that is not in the batch fails the whole batch, as in Lambda.
                Ok(resp) => resp
                    .batch_item_failures
                    .iter()
                    .filter_map(|f| f.item_identifier.as_deref())
                    .filter_map(|s| SequenceNumber::parse(s).ok())
                    .min()
                    .map(|seq| {
                        batch
                            .iter()
                            .position(|d| d.sequence_number == seq)
                            .unwrap_or(0)
                    }),
                Err(_) => Some(0),
            };
            let Some(index) = failed_at else {
                self.checkpoint(shard, batch.last())?;
                continue;
            };
            if index > 0 {
                self.checkpoint(shard, batch.get(index - 1))?;
            }
            let rest: Vec<Delivery> = batch[index..].to_vec();
            let too_old = self.options.maximum_record_age.is_some_and(|age| {
                let now = chrono::Utc::now().timestamp_millis();
                rest.first()
                    .and_then(|d| d.approximate_arrival_ms)
                    .is_some_and(|t| now - t > age.as_millis() as i64)
            });
            if attempts >= self.options.maximum_retry_attempts || too_old {
                let condition = if too_old {
                    "RecordAgeExceeded"
                } else {
                    "RetryAttemptsExhausted"
                };
                self.on_failure(shard, &rest, attempts + 1, condition, result.as_ref().err())?;
                self.checkpoint(shard, rest.last())?;
                continue;
            }
            tokio::time::sleep(self.options.retry_delay).await;
            if result.is_err() && self.options.bisect_on_function_error && rest.len() > 1 {
                let right = rest[rest.len() / 2..].to_vec();
                let left = rest[..rest.len() / 2].to_vec();
                // Halves go first, in order, each with the attempt counted.
                queue.push_front((right, attempts + 1));
                queue.push_front((left, attempts + 1));
            } else {
                queue.push_front((rest, attempts + 1));
            }
        }
        Ok(())
    }

    fn checkpoint(&mut self, shard: &ShardId, last: Option<&Delivery>) -> Result<(), ConsumeError> {
        if let Some(d) = last {
            let state = self.shards.entry(shard.clone()).or_default();
            if state
                .checkpoint
                .as_ref()
                .is_none_or(|c| *c < d.sequence_number)
            {
                state.checkpoint = Some(d.sequence_number.clone());
            }
            self.save()?;
        }
        Ok(())
    }

    fn on_failure(
        &mut self,
        shard: &ShardId,
        batch: &[Delivery],
        invocations: u32,
        condition: &str,
        function_error: Option<&String>,
    ) -> Result<(), ConsumeError> {
        self.summary.on_failure_count += 1;
        let record = on_failure_record(
            &self.options.stream_arn,
            shard,
            batch,
            invocations,
            condition,
            function_error,
        );
        tracing::warn!(shard_id = %shard, sequence_number = %record["KinesisBatchInfo"]["startSequenceNumber"], "batch given up; on-failure record written");
        if let Some(path) = &self.options.on_failure_file {
            use std::io::Write as _;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| ConsumeError::File {
                    path: path.clone(),
                    source,
                })?;
            writeln!(f, "{record}").map_err(|source| ConsumeError::File {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

fn iso_millis(ms: Option<i64>) -> serde_json::Value {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| serde_json::Value::String(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()))
        .unwrap_or(serde_json::Value::Null)
}

/// An on-failure record in the shape Lambda sends to an SQS/SNS destination
/// for a Kinesis event source.
pub fn on_failure_record(
    stream_arn: &str,
    shard: &ShardId,
    batch: &[Delivery],
    invocations: u32,
    condition: &str,
    function_error: Option<&String>,
) -> serde_json::Value {
    let first = batch.first();
    let last = batch.last();
    serde_json::json!({
        "requestContext": {
            "requestId": format!("dms-cdc-consume-{}-{}", shard, first.map(|d| d.sequence_number.to_string()).unwrap_or_default()),
            "functionArn": "arn:aws:lambda:local:000000000000:function:dms-cdc-consume",
            "condition": condition,
            "approximateInvokeCount": invocations
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": if function_error.is_some() { "Unhandled" } else { "" }
        },
        "version": "1.0",
        "timestamp": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "KinesisBatchInfo": {
            "shardId": shard.0,
            "startSequenceNumber": first.map(|d| d.sequence_number.to_string()),
            "endSequenceNumber": last.map(|d| d.sequence_number.to_string()),
            "approximateArrivalOfFirstRecord": iso_millis(first.and_then(|d| d.approximate_arrival_ms)),
            "approximateArrivalOfLastRecord": iso_millis(last.and_then(|d| d.approximate_arrival_ms)),
            "batchSize": batch.len(),
            "streamArn": stream_arn
        }
    })
}
