//! Redriving shard ranges that Lambda gave up on.
//!
//! When the event source mapping gives up on a batch (retries or record age
//! exhausted) it sends an on-failure record to SQS/SNS that holds only
//! metadata: the shard and the first and last sequence numbers of the
//! batch. The records must be read again from the stream before retention
//! ends. This module reads such a range ([`RangeReader`]: GetShardIterator
//! `AT_SEQUENCE_NUMBER` at the start, GetRecords until the end sequence
//! number, inclusive and compared numerically), applies it through the same
//! engine and target as the function ([`Engine::process_redrive`]), and
//! removes the on-failure record (the SQS message, or the line of a file)
//! only after the whole range is durably applied.
//!
//! Idempotent by construction: the redriven records are at or below the
//! shard's checkpoint (the function moved past them), so the engine's
//! checkpoint skip is bypassed, but the writes are keyed upserts and deletes,
//! the version guard keeps an older image from replacing a newer row,
//! re-queried rows read the current source, and the checkpoint never moves
//! backwards. Redriving a range twice, or a range the function already
//! applied, changes nothing.
//!
//! Never skips silently: a range (or part of one) that is no longer in the
//! stream (past retention: an error, an iterator that starts after the
//! range's start, or reads that reach the newest record without reaching
//! the range's end) is reported as a [`LostRange`] naming the exact
//! sequence numbers; the on-failure record is kept and the command exits 3.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_kinesis::Client;
use chrono::{DateTime, Utc};

use crate::dms::Delivery;
use dms_cdc_core::target::QuarantineClass;
use std::future::Future;
use std::pin::Pin;

use crate::engine::{BatchReport, Engine, Outcome};
use crate::mapping::{Mapping, Transforms};
use crate::position::{SequenceNumber, ShardId};
use crate::stream::{delivery, StreamError};
use dms_cdc_core::source::Source;
use dms_cdc_core::target::Target;

// ------------------------------------------------------------------ on-failure records

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
        shard: ShardId(text_of("shardId")?),
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

// ------------------------------------------------------------------ ranges

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

/// Limits of reading a shard again: Kinesis allows 5 GetRecords (and 5
/// GetShardIterator) calls per second per shard, shared with the function.
#[derive(Debug, Clone)]
pub struct ReadLimits {
    /// Records per GetRecords call and per engine batch.
    pub batch_size: usize,
    /// Least time between two calls on the shard (200 ms: 5 per second).
    pub min_interval: Duration,
    /// First wait after a throttled call; doubles per consecutive throttle.
    pub backoff: Duration,
    /// Longest wait after a throttled call.
    pub max_backoff: Duration,
    /// Consecutive throttled calls before the range is given up (retryably).
    pub max_throttled: u32,
    /// Iterator re-acquisitions after ExpiredIteratorException.
    pub max_renewals: u32,
    /// Consecutive empty reads while behind the newest record.
    pub max_empty_reads: u32,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            batch_size: 500,
            min_interval: Duration::from_millis(200),
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            max_throttled: 10,
            max_renewals: 20,
            max_empty_reads: 1000,
        }
    }
}

/// Calls made while reading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// GetShardIterator calls.
    pub get_shard_iterator: usize,
    /// GetRecords calls.
    pub get_records: usize,
    /// Calls answered with a throttling error.
    pub throttled: usize,
    /// Iterators re-acquired after they expired.
    pub renewals: usize,
}

/// Reading a range failed in a way that a later run may not see (nothing is
/// known to be lost).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Still throttled after the backoff.
    #[error(
        "kinesis {operation} on {shard}: still throttled after {attempts} attempts with backoff"
    )]
    Throttled {
        /// The API operation.
        operation: &'static str,
        /// The shard.
        shard: ShardId,
        /// Throttled calls in a row.
        attempts: u32,
    },
    /// The iterator kept expiring.
    #[error("kinesis GetRecords on {shard}: the shard iterator expired {renewals} times")]
    Expiring {
        /// The shard.
        shard: ShardId,
        /// Renewals made.
        renewals: u32,
    },
    /// Reads stayed empty while behind the newest record.
    #[error("kinesis GetRecords on {shard}: {reads} empty reads in a row while behind the newest record")]
    Stalled {
        /// The shard.
        shard: ShardId,
        /// Empty reads.
        reads: u32,
    },
    /// Any other Kinesis error.
    #[error(transparent)]
    Stream(#[from] StreamError),
}

/// Reads one range of one shard, batch by batch, detecting lost records.
pub struct RangeReader<'a> {
    client: &'a Client,
    range: Range,
    limits: ReadLimits,
    iterator: Option<String>,
    started: bool,
    finished: bool,
    reached_end: bool,
    first_seen: Option<SequenceNumber>,
    last_seen: Option<SequenceNumber>,
    last_call: Option<Instant>,
    throttled_in_row: u32,
    empty_in_row: u32,
    lost: Vec<LostRange>,
    stats: ReadStats,
}

fn is_throttling(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ProvisionedThroughputExceededException"
                | "LimitExceededException"
                | "KMSThrottlingException"
                | "ThrottlingException"
        )
    )
}

impl<'a> RangeReader<'a> {
    /// A reader of `range`.
    pub fn new(client: &'a Client, range: Range, limits: ReadLimits) -> Self {
        RangeReader {
            client,
            range,
            limits,
            iterator: None,
            started: false,
            finished: false,
            reached_end: false,
            first_seen: None,
            last_seen: None,
            last_call: None,
            throttled_in_row: 0,
            empty_in_row: 0,
            lost: Vec::new(),
            stats: ReadStats::default(),
        }
    }

    /// The range.
    pub fn range(&self) -> &Range {
        &self.range
    }

    /// Records of the range found missing so far.
    pub fn lost(&self) -> &[LostRange] {
        &self.lost
    }

    /// Calls made so far.
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    /// Whether the end sequence number was reached.
    pub fn reached_end(&self) -> bool {
        self.reached_end
    }

    async fn pace(&mut self) {
        if let Some(t) = self.last_call {
            let wait = self.limits.min_interval.saturating_sub(t.elapsed());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        self.last_call = Some(Instant::now());
    }

    async fn throttled(&mut self, operation: &'static str) -> Result<(), ReadError> {
        self.stats.throttled += 1;
        self.throttled_in_row += 1;
        if self.throttled_in_row > self.limits.max_throttled {
            return Err(ReadError::Throttled {
                operation,
                shard: self.range.shard.clone(),
                attempts: self.throttled_in_row,
            });
        }
        let factor = 1u32 << (self.throttled_in_row - 1).min(16);
        let wait = self
            .limits
            .backoff
            .saturating_mul(factor)
            .min(self.limits.max_backoff);
        tracing::warn!(shard_id = %self.range.shard, operation, wait_ms = wait.as_millis() as u64, "throttled; backing off");
        tokio::time::sleep(wait).await;
        Ok(())
    }

    fn start_edge(&self) -> Option<Edge> {
        match (&self.last_seen, &self.range.start) {
            (Some(last), _) => Some(Edge::Excluding(last.clone())),
            (None, Start::At(s)) => Some(Edge::Including(s.clone())),
            (None, Start::Since(_)) => None,
        }
    }

    /// Records the rest of the range (after the last record seen) as lost.
    fn lose_rest(&mut self, reason: String) {
        self.finished = true;
        let Some(end) = self.range.end.clone() else {
            return;
        };
        if let Some(from) = self.start_edge() {
            self.lost.push(LostRange {
                shard: self.range.shard.clone(),
                from,
                to: Edge::Including(end),
                reason,
            });
        }
    }

    /// GetShardIterator at the start, or after the last record seen.
    async fn acquire(&mut self) -> Result<(), ReadError> {
        loop {
            self.pace().await;
            self.stats.get_shard_iterator += 1;
            let mut req = self
                .client
                .get_shard_iterator()
                .stream_name(&self.range.stream)
                .shard_id(&self.range.shard.0);
            req = match (&self.last_seen, &self.range.start) {
                (Some(last), _) => req
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .starting_sequence_number(last.as_str()),
                (None, Start::At(s)) => req
                    .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                    .starting_sequence_number(s.as_str()),
                (None, Start::Since(t)) => req
                    .shard_iterator_type(ShardIteratorType::AtTimestamp)
                    .timestamp(aws_sdk_kinesis::primitives::DateTime::from_millis(
                        t.timestamp_millis(),
                    )),
            };
            match req.send().await {
                Ok(out) => {
                    self.throttled_in_row = 0;
                    self.iterator = out.shard_iterator().map(str::to_owned);
                    if self.iterator.is_none() {
                        self.closed();
                    }
                    return Ok(());
                }
                Err(e) => {
                    let service = e.as_service_error();
                    let code = service.and_then(aws_sdk_kinesis::error::ProvideErrorMetadata::code);
                    if is_throttling(code) {
                        self.throttled("GetShardIterator").await?;
                        continue;
                    }
                    let message = aws_sdk_kinesis::error::DisplayErrorContext(&e).to_string();
                    if service.is_some_and(|s| {
                        s.is_resource_not_found_exception() || s.is_invalid_argument_exception()
                    }) {
                        // The shard is gone (deleted, or a closed shard past
                        // retention) or the position is not in it any more.
                        self.lose_rest(format!("GetShardIterator refused the position: {message}"));
                        if self.range.end.is_none() {
                            return Err(StreamError {
                                operation: "GetShardIterator",
                                message,
                            }
                            .into());
                        }
                        return Ok(());
                    }
                    return Err(StreamError {
                        operation: "GetShardIterator",
                        message,
                    }
                    .into());
                }
            }
        }
    }

    /// The shard is closed and read to its last record.
    fn closed(&mut self) {
        if self.reached_end || self.finished {
            self.finished = true;
            return;
        }
        let last = self
            .last_seen
            .as_ref()
            .map(|s| format!("its last record is {s}"))
            .unwrap_or_else(|| "no record of the range is in it".to_owned());
        self.lose_rest(format!(
            "the shard is closed (resharded) and {last}, before the end sequence number"
        ));
        self.finished = true;
    }

    /// The next batch of records of the range (never empty), or `None` when
    /// the range is read (see [`RangeReader::lost`] for what was missing).
    pub async fn next_batch(&mut self) -> Result<Option<Vec<Delivery>>, ReadError> {
        if !self.started {
            self.started = true;
            self.acquire().await?;
        }
        let mut renewals = 0;
        loop {
            if self.finished {
                return Ok(None);
            }
            let Some(iterator) = self.iterator.clone() else {
                self.closed();
                return Ok(None);
            };
            self.pace().await;
            self.stats.get_records += 1;
            let out = match self
                .client
                .get_records()
                .shard_iterator(iterator)
                .limit(self.limits.batch_size.clamp(1, 10_000) as i32)
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    let service = e.as_service_error();
                    let code = service.and_then(aws_sdk_kinesis::error::ProvideErrorMetadata::code);
                    if service.is_some_and(|s| s.is_expired_iterator_exception()) {
                        renewals += 1;
                        self.stats.renewals += 1;
                        if renewals > self.limits.max_renewals {
                            return Err(ReadError::Expiring {
                                shard: self.range.shard.clone(),
                                renewals,
                            });
                        }
                        tracing::info!(shard_id = %self.range.shard, "shard iterator expired; re-acquiring after the last record seen");
                        self.acquire().await?;
                        continue;
                    }
                    if is_throttling(code) {
                        self.throttled("GetRecords").await?;
                        continue;
                    }
                    let message = aws_sdk_kinesis::error::DisplayErrorContext(&e).to_string();
                    if service.is_some_and(|s| s.is_resource_not_found_exception()) {
                        self.lose_rest(format!("GetRecords: {message}"));
                        return Ok(None);
                    }
                    return Err(StreamError {
                        operation: "GetRecords",
                        message,
                    }
                    .into());
                }
            };
            self.throttled_in_row = 0;
            let got = out.records().len();
            let behind = out.millis_behind_latest().unwrap_or(0);
            let mut batch = Vec::new();
            for r in out.records() {
                let d = delivery(&self.range.shard, r)?;
                if let Start::At(s) = &self.range.start {
                    if d.sequence_number < *s {
                        continue;
                    }
                }
                if self.first_seen.is_none() {
                    if let Start::At(s) = &self.range.start {
                        if d.sequence_number > *s {
                            // The iterator started after the range's start:
                            // what lies between is past retention.
                            let to = match &self.range.end {
                                Some(e) if d.sequence_number > *e => Edge::Including(e.clone()),
                                _ => Edge::Excluding(d.sequence_number.clone()),
                            };
                            self.lost.push(LostRange {
                                shard: self.range.shard.clone(),
                                from: Edge::Including(s.clone()),
                                to,
                                reason: format!(
                                    "the first record the stream still has at or after the start is {} (past the retention period)",
                                    d.sequence_number
                                ),
                            });
                        }
                    }
                    self.first_seen = Some(d.sequence_number.clone());
                }
                if let Some(e) = &self.range.end {
                    if d.sequence_number > *e {
                        self.reached_end = true;
                        self.finished = true;
                        break;
                    }
                }
                let at_end = self.range.end.as_ref() == Some(&d.sequence_number);
                self.last_seen = Some(d.sequence_number.clone());
                batch.push(d);
                if at_end {
                    self.reached_end = true;
                    self.finished = true;
                    break;
                }
            }
            self.iterator = out.next_shard_iterator().map(str::to_owned);
            if !batch.is_empty() {
                self.empty_in_row = 0;
                return Ok(Some(batch));
            }
            if self.finished {
                return Ok(None);
            }
            if got == 0 {
                if self.iterator.is_none() {
                    self.closed();
                    return Ok(None);
                }
                if behind == 0 {
                    // At the newest record without reaching the end.
                    self.lose_rest(
                        "reads reached the newest record of the shard without reaching the range's end (past the retention period, or not in this shard)"
                            .to_owned(),
                    );
                    return Ok(None);
                }
                self.empty_in_row += 1;
                if self.empty_in_row > self.limits.max_empty_reads {
                    return Err(ReadError::Stalled {
                        shard: self.range.shard.clone(),
                        reads: self.empty_in_row,
                    });
                }
            }
        }
    }
}

// ------------------------------------------------------------------ applying

/// An engine that applies redriven records ([`Engine::process_redrive`]),
/// whatever its source and target.
pub trait Redrivable: Sync {
    /// Applies a batch without the checkpoint skip.
    fn process_redrive<'a>(
        &'a self,
        deliveries: &'a [Delivery],
    ) -> Pin<Box<dyn Future<Output = BatchReport> + Send + 'a>>;
}

impl<S: Source, T: Target> Redrivable for Engine<S, T> {
    fn process_redrive<'a>(
        &'a self,
        deliveries: &'a [Delivery],
    ) -> Pin<Box<dyn Future<Output = BatchReport> + Send + 'a>> {
        Box::pin(Engine::process_redrive(self, deliveries))
    }
}

/// Where the records go.
#[derive(Clone, Copy)]
pub enum Apply<'a> {
    /// Through the engine into the target.
    Engine(&'a dyn Redrivable),
    /// Decode and plan only; touch no database.
    DryRun {
        /// The mapping.
        mapping: &'a Mapping,
        /// Its transforms.
        transforms: &'a Transforms,
    },
}

/// Planned writes of one target table (dry run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlannedWrites {
    /// Rows built from the record's image.
    pub from_image: usize,
    /// Rows rebuilt from a re-query of the source.
    pub requery: usize,
    /// Rows deleted (or soft-deleted).
    pub deletes: usize,
}

/// What a batch would do, without touching a database.
#[derive(Debug, Clone, Default)]
pub struct DryPlan {
    /// Per target table.
    pub tables: BTreeMap<String, PlannedWrites>,
    /// Records that would be quarantined, with the reason.
    pub problems: Vec<String>,
    /// Records that need no write (control records, unmapped tables, unchanged columns).
    pub no_write: usize,
}

/// Decodes and plans a batch and builds the rows that come from images
/// (so a mapping that still rejects a value shows), without any database:
/// the engine's own prepare pass ([`dms_cdc_core::prepare::dry_writes`]).
pub fn dry_plan(mapping: &Mapping, transforms: &Transforms, deliveries: &[Delivery]) -> DryPlan {
    let dry = dms_cdc_core::prepare::dry_writes(mapping, transforms, deliveries);
    let mut out = DryPlan {
        no_write: dry.prepared.plan.no_write.len(),
        ..DryPlan::default()
    };
    for q in &dry.prepared.quarantine {
        out.problems.push(match q.class {
            QuarantineClass::Decode => q.message.clone(),
            QuarantineClass::Ddl => format!("{}: {}", q.sequence_number, q.message),
            _ => format!(
                "{}: {}{}",
                q.sequence_number,
                match &q.table {
                    Some(t) if q.class == QuarantineClass::Plan => format!("target {t}: "),
                    _ => String::new(),
                },
                q.message
            ),
        });
    }
    for w in &dry.writes {
        let counts = out
            .tables
            .entry(mapping.targets[w.target].table.clone())
            .or_default();
        counts.from_image += w.upserts.len();
        counts.deletes += w.deletes.len().max(w.tombstones.len());
    }
    for (target, keys) in &dry.rebuild {
        let counts = out
            .tables
            .entry(mapping.targets[*target].table.clone())
            .or_default();
        counts.requery += keys.len();
    }
    out.tables.retain(|_, c| *c != PlannedWrites::default());
    out
}

/// How a range ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeStatus {
    /// Every record that is in the stream is applied (or, in a dry run, planned), and nothing is lost.
    Applied,
    /// Part of the range is no longer in the stream (reported); the rest is applied.
    Lost,
    /// A retryable failure (the target, the source, Kinesis): run again.
    Failed,
}

/// The result of one range.
#[derive(Debug, Clone)]
pub struct RangeReport {
    /// The range.
    pub range: Range,
    /// Records read that belong to the range.
    pub records: usize,
    /// Outcome counts (engine runs).
    pub applied: usize,
    /// Records that needed no write.
    pub skipped: usize,
    /// Records quarantined.
    pub quarantined: usize,
    /// Rows upserted per target table.
    pub upserts: BTreeMap<String, usize>,
    /// Rows deleted per target table.
    pub deletes: BTreeMap<String, usize>,
    /// Dry run: planned writes per target table.
    pub planned: BTreeMap<String, PlannedWrites>,
    /// Dry run: records that would be quarantined.
    pub problems: Vec<String>,
    /// Records no longer in the stream.
    pub lost: Vec<LostRange>,
    /// The retryable failure that stopped the range.
    pub error: Option<String>,
    /// Kinesis calls.
    pub stats: ReadStats,
}

impl RangeReport {
    fn new(range: Range) -> Self {
        RangeReport {
            range,
            records: 0,
            applied: 0,
            skipped: 0,
            quarantined: 0,
            upserts: BTreeMap::new(),
            deletes: BTreeMap::new(),
            planned: BTreeMap::new(),
            problems: Vec::new(),
            lost: Vec::new(),
            error: None,
            stats: ReadStats::default(),
        }
    }

    /// How it ended.
    pub fn status(&self) -> RangeStatus {
        if self.error.is_some() {
            RangeStatus::Failed
        } else if !self.lost.is_empty() {
            RangeStatus::Lost
        } else {
            RangeStatus::Applied
        }
    }

    /// One line (plus the lost ranges and problems) for a person.
    pub fn render(&self) -> String {
        let status = match self.status() {
            RangeStatus::Applied => "applied",
            RangeStatus::Lost => "INCOMPLETE",
            RangeStatus::Failed => "FAILED",
        };
        let mut out = format!(
            "{status} {}: {} records (applied {}, skipped {}, quarantined {})",
            self.range, self.records, self.applied, self.skipped, self.quarantined
        );
        for (table, n) in &self.upserts {
            let d = self.deletes.get(table).copied().unwrap_or(0);
            out.push_str(&format!("\n  {table}: {n} upserted, {d} deleted"));
        }
        for (table, p) in &self.planned {
            out.push_str(&format!(
                "\n  would write {table}: {} from images, {} re-queried, {} deleted",
                p.from_image, p.requery, p.deletes
            ));
        }
        for p in &self.problems {
            out.push_str(&format!("\n  would quarantine: {p}"));
        }
        for l in &self.lost {
            out.push_str(&format!("\n  {l}"));
        }
        if let Some(e) = &self.error {
            out.push_str(&format!("\n  stopped (retryable, run again): {e}"));
        }
        out
    }
}

/// Reads `range` and applies it batch by batch; stops at the first
/// retryable failure.
pub async fn redrive_range(
    client: &Client,
    range: Range,
    limits: &ReadLimits,
    apply: Apply<'_>,
    progress: &mut Progress,
) -> RangeReport {
    let mut report = RangeReport::new(range.clone());
    let mut reader = RangeReader::new(client, range, limits.clone());
    loop {
        let batch = match reader.next_batch().await {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(e) => {
                report.error = Some(e.to_string());
                break;
            }
        };
        report.records += batch.len();
        match apply {
            Apply::Engine(engine) => {
                let r = engine.process_redrive(&batch).await;
                for o in &r.outcomes {
                    match o {
                        Outcome::Applied => report.applied += 1,
                        Outcome::Skipped => report.skipped += 1,
                        Outcome::Quarantined => report.quarantined += 1,
                        Outcome::Pending => {}
                    }
                }
                for (t, n) in &r.summary.upserts {
                    *report.upserts.entry(t.clone()).or_default() += n;
                }
                for (t, n) in &r.summary.deletes {
                    *report.deletes.entry(t.clone()).or_default() += n;
                }
                if r.retry_error.is_some() || r.outcomes.contains(&Outcome::Pending) {
                    report.error = Some(
                        r.retry_error
                            .unwrap_or_else(|| "records left pending".to_owned()),
                    );
                    progress.records(&report);
                    break;
                }
            }
            Apply::DryRun {
                mapping,
                transforms,
            } => {
                let p = dry_plan(mapping, transforms, &batch);
                for (t, c) in p.tables {
                    let e = report.planned.entry(t).or_default();
                    e.from_image += c.from_image;
                    e.requery += c.requery;
                    e.deletes += c.deletes;
                }
                report.skipped += p.no_write;
                report.problems.extend(p.problems);
            }
        }
        progress.records(&report);
    }
    report.lost = reader.lost().to_vec();
    report.stats = reader.stats().clone();
    report
}

// ------------------------------------------------------------------ progress and summary

/// A progress bar on standard error (only on a terminal).
pub struct Progress {
    enabled: bool,
    total_ranges: Option<usize>,
    ranges_done: usize,
    records_done: usize,
    current: usize,
    applied: usize,
    quarantined: usize,
    last_draw: Option<Instant>,
}

impl Progress {
    /// A progress bar; drawn only when `enabled` and standard error is a terminal.
    pub fn new(enabled: bool, total_ranges: Option<usize>) -> Self {
        Progress {
            enabled: enabled && std::io::stderr().is_terminal(),
            total_ranges,
            ranges_done: 0,
            records_done: 0,
            current: 0,
            applied: 0,
            quarantined: 0,
            last_draw: None,
        }
    }

    /// No output at all.
    pub fn hidden() -> Self {
        Progress::new(false, None)
    }

    fn records(&mut self, r: &RangeReport) {
        self.current = r.records;
        self.draw(false, r.applied, r.quarantined);
    }

    fn range_done(&mut self, r: &RangeReport) {
        self.ranges_done += 1;
        self.records_done += r.records;
        self.applied += r.applied;
        self.quarantined += r.quarantined;
        self.current = 0;
        self.draw(true, 0, 0);
    }

    fn draw(&mut self, force: bool, applied: usize, quarantined: usize) {
        if !self.enabled {
            return;
        }
        if !force
            && self
                .last_draw
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last_draw = Some(Instant::now());
        const WIDTH: usize = 30;
        let bar = match self.total_ranges {
            Some(total) if total > 0 => {
                let filled = (self.ranges_done * WIDTH / total).min(WIDTH);
                format!(
                    "[{}{}] {}/{} ranges",
                    "#".repeat(filled),
                    "-".repeat(WIDTH - filled),
                    self.ranges_done,
                    total
                )
            }
            _ => format!("{} ranges", self.ranges_done),
        };
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r{bar} | {} records read | {} applied | {} quarantined   ",
            self.records_done + self.current,
            self.applied + applied,
            self.quarantined + quarantined
        );
        let _ = err.flush();
    }

    fn finish(&mut self) {
        if self.enabled {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// Counts of a redrive run.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// One report per range, in order.
    pub ranges: Vec<RangeReport>,
    /// On-failure records removed (SQS messages deleted, file lines dropped).
    pub removed: usize,
    /// On-failure records kept (not applied, lost, unreadable, or a dry run).
    pub kept: usize,
    /// On-failure records that could not be parsed (kept).
    pub invalid: Vec<String>,
}

impl RunSummary {
    /// The process exit code: 3 if anything is lost, else 1 if anything
    /// failed or could not be parsed, else 0.
    pub fn exit_code(&self) -> u8 {
        let statuses: Vec<RangeStatus> = self.ranges.iter().map(RangeReport::status).collect();
        if statuses.contains(&RangeStatus::Lost) {
            3
        } else if statuses.contains(&RangeStatus::Failed) || !self.invalid.is_empty() {
            1
        } else {
            0
        }
    }

    /// The final summary for a person.
    pub fn render(&self) -> String {
        let count = |s| self.ranges.iter().filter(|r| r.status() == s).count();
        let sum = |f: fn(&RangeReport) -> usize| self.ranges.iter().map(f).sum::<usize>();
        let mut out = format!(
            "ranges: {} (applied {}, incomplete {}, failed {}); records read {}, applied {}, skipped {}, quarantined {}\n",
            self.ranges.len(),
            count(RangeStatus::Applied),
            count(RangeStatus::Lost),
            count(RangeStatus::Failed),
            sum(|r| r.records),
            sum(|r| r.applied),
            sum(|r| r.skipped),
            sum(|r| r.quarantined),
        );
        let mut tables: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for r in &self.ranges {
            for (t, n) in &r.upserts {
                tables.entry(t).or_default().0 += n;
            }
            for (t, n) in &r.deletes {
                tables.entry(t).or_default().1 += n;
            }
        }
        for (t, (u, d)) in tables {
            out.push_str(&format!("writes {t}: {u} upserted, {d} deleted\n"));
        }
        let lost: Vec<&LostRange> = self.ranges.iter().flat_map(|r| &r.lost).collect();
        for l in &lost {
            out.push_str(&format!("{l}\n"));
        }
        for i in &self.invalid {
            out.push_str(&format!("not an on-failure record (kept): {i}\n"));
        }
        out.push_str(&format!(
            "on-failure records: {} removed, {} kept\n",
            self.removed, self.kept
        ));
        out
    }
}

// ------------------------------------------------------------------ sources of ranges

/// A redrive run: the Kinesis client, where records go, read limits.
pub struct Redrive<'a> {
    /// Kinesis.
    pub kinesis: &'a Client,
    /// Engine or dry run.
    pub apply: Apply<'a>,
    /// Read limits.
    pub limits: ReadLimits,
    /// Stream name (overrides the on-failure record's ARN).
    pub stream: Option<String>,
    /// Print one report per range on standard output.
    pub verbose: bool,
}

impl Redrive<'_> {
    fn range_of(&self, f: &OnFailure) -> Result<Range, String> {
        let stream = match (&self.stream, &f.stream_arn) {
            (Some(s), _) => s.clone(),
            (None, Some(arn)) => stream_name_of_arn(arn)
                .ok_or_else(|| format!("streamArn {arn:?} names no stream"))?
                .to_owned(),
            (None, None) => return Err("no streamArn; pass --stream".to_owned()),
        };
        Ok(Range {
            stream,
            shard: f.shard.clone(),
            start: Start::At(f.start.clone()),
            end: Some(f.end.clone()),
        })
    }

    fn dry(&self) -> bool {
        matches!(self.apply, Apply::DryRun { .. })
    }

    async fn one(&self, range: Range, progress: &mut Progress) -> RangeReport {
        let report = redrive_range(self.kinesis, range, &self.limits, self.apply, progress).await;
        progress.range_done(&report);
        if self.verbose {
            if progress.enabled {
                let _ = write!(std::io::stderr(), "\r");
            }
            println!("{}", report.render());
        }
        report
    }

    /// Ranges given directly (`--shard/--from/--to`, `--since`).
    pub async fn ranges(&self, ranges: Vec<Range>, progress: &mut Progress) -> RunSummary {
        let mut summary = RunSummary::default();
        for range in ranges {
            summary.ranges.push(self.one(range, progress).await);
        }
        progress.finish();
        summary
    }

    /// On-failure records from a file of JSON lines (what `consume
    /// --on-failure-file` writes). A record whose range is applied is
    /// removed from the file right away (the file is rewritten atomically);
    /// the others stay.
    pub async fn file(&self, path: &Path, progress: &mut Progress) -> anyhow::Result<RunSummary> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut lines: Vec<Option<String>> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| Some(l.to_owned()))
            .collect();
        progress.total_ranges = Some(lines.len());
        let mut summary = RunSummary::default();
        for i in 0..lines.len() {
            let Some(line) = lines[i].clone() else {
                continue;
            };
            let range = match parse_on_failure(&line).and_then(|f| self.range_of(&f)) {
                Ok(r) => r,
                Err(e) => {
                    summary
                        .invalid
                        .push(format!("{} line {}: {e}", path.display(), i + 1));
                    summary.kept += 1;
                    continue;
                }
            };
            let report = self.one(range, progress).await;
            if report.status() == RangeStatus::Applied && !self.dry() {
                lines[i] = None;
                summary.removed += 1;
                rewrite(path, &lines)?;
            } else {
                summary.kept += 1;
            }
            summary.ranges.push(report);
        }
        progress.finish();
        Ok(summary)
    }

    /// On-failure records from an SQS queue: each message is hidden while
    /// its range is redriven, deleted only after the range is applied, and
    /// otherwise made visible again at the end of the run.
    pub async fn sqs(
        &self,
        sqs: &aws_sdk_sqs::Client,
        queue_url: &str,
        visibility_timeout: Duration,
        max_messages: Option<usize>,
        progress: &mut Progress,
    ) -> anyhow::Result<RunSummary> {
        let mut summary = RunSummary::default();
        let mut seen = HashSet::new();
        let mut release = Vec::new();
        let result: anyhow::Result<()> = async {
            loop {
                if max_messages.is_some_and(|m| seen.len() >= m) {
                    break;
                }
                let want = max_messages.map_or(10, |m| (m - seen.len()).clamp(1, 10));
                let out = sqs
                    .receive_message()
                    .queue_url(queue_url)
                    .max_number_of_messages(want as i32)
                    .visibility_timeout(visibility_timeout.as_secs().clamp(1, 43_200) as i32)
                    .wait_time_seconds(1)
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "sqs ReceiveMessage {queue_url}: {}",
                            aws_sdk_sqs::error::DisplayErrorContext(e)
                        )
                    })?;
                let messages = out.messages();
                if messages.is_empty() {
                    break;
                }
                let mut new = 0;
                for m in messages {
                    let id = m.message_id().unwrap_or_default().to_owned();
                    let handle = m.receipt_handle().unwrap_or_default().to_owned();
                    if !seen.insert(id.clone()) {
                        continue;
                    }
                    new += 1;
                    let range = match parse_on_failure(m.body().unwrap_or_default())
                        .and_then(|f| self.range_of(&f))
                    {
                        Ok(r) => r,
                        Err(e) => {
                            summary.invalid.push(format!("message {id}: {e}"));
                            summary.kept += 1;
                            release.push(handle);
                            continue;
                        }
                    };
                    let report = self.one(range, progress).await;
                    if report.status() == RangeStatus::Applied && !self.dry() {
                        sqs.delete_message()
                            .queue_url(queue_url)
                            .receipt_handle(&handle)
                            .send()
                            .await
                            .map_err(|e| {
                                anyhow::anyhow!(
                                    "sqs DeleteMessage {queue_url} (range applied; the message will be redriven again, which is harmless): {}",
                                    aws_sdk_sqs::error::DisplayErrorContext(e)
                                )
                            })?;
                        summary.removed += 1;
                    } else {
                        summary.kept += 1;
                        release.push(handle);
                    }
                    summary.ranges.push(report);
                }
                if new == 0 {
                    break;
                }
            }
            Ok(())
        }
        .await;
        // Kept messages become visible again now, for the next run.
        for handle in release {
            if let Err(e) = sqs
                .change_message_visibility()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .visibility_timeout(0)
                .send()
                .await
            {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not make a kept message visible again; it will be after the visibility timeout");
            }
        }
        progress.finish();
        result.map(|()| summary)
    }
}

fn rewrite(path: &Path, lines: &[Option<String>]) -> anyhow::Result<()> {
    let tmp = path.with_extension("redrive-tmp");
    let mut text = String::new();
    for l in lines.iter().flatten() {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// Every shard of a stream (open and closed, parents first as ListShards returns them).
pub async fn list_shards(client: &Client, stream: &str) -> Result<Vec<ShardId>, StreamError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = client.list_shards();
        req = match &token {
            Some(t) => req.next_token(t),
            None => req.stream_name(stream),
        };
        let page = req.send().await.map_err(|e| StreamError {
            operation: "ListShards",
            message: aws_sdk_kinesis::error::DisplayErrorContext(e).to_string(),
        })?;
        out.extend(
            page.shards()
                .iter()
                .map(|s| ShardId(s.shard_id().to_owned())),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// The first record of a shard at a position (skipping empty reads while
/// behind), if there is one.
async fn first_record(
    client: &Client,
    stream: &str,
    shard: &ShardId,
    kind: ShardIteratorType,
    at: Option<&Start>,
    limits: &ReadLimits,
) -> Result<Option<SequenceNumber>, StreamError> {
    let err = |operation| {
        move |e: String| StreamError {
            operation,
            message: e,
        }
    };
    let mut req = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(&shard.0)
        .shard_iterator_type(kind);
    match at {
        Some(Start::At(s)) => req = req.starting_sequence_number(s.as_str()),
        Some(Start::Since(t)) => {
            req = req.timestamp(aws_sdk_kinesis::primitives::DateTime::from_millis(
                t.timestamp_millis(),
            ))
        }
        None => {}
    }
    let out = req
        .send()
        .await
        .map_err(|e| aws_sdk_kinesis::error::DisplayErrorContext(e).to_string())
        .map_err(err("GetShardIterator"))?;
    let mut iterator = out.shard_iterator().map(str::to_owned);
    for _ in 0..limits.max_empty_reads.max(1) {
        let Some(it) = iterator else { return Ok(None) };
        tokio::time::sleep(limits.min_interval).await;
        let out = client
            .get_records()
            .shard_iterator(it)
            .limit(1)
            .send()
            .await
            .map_err(|e| aws_sdk_kinesis::error::DisplayErrorContext(e).to_string())
            .map_err(err("GetRecords"))?;
        if let Some(r) = out.records().first() {
            return Ok(Some(delivery(shard, r)?.sequence_number));
        }
        if out.millis_behind_latest().unwrap_or(0) == 0 {
            return Ok(None);
        }
        iterator = out.next_shard_iterator().map(str::to_owned);
    }
    Ok(None)
}

/// A manual range that ends above the shard's checkpoint would move the
/// checkpoint past every record between the checkpoint and the range's
/// start, and the function would then skip them. Returns the first such
/// record, if any.
pub async fn checkpoint_gap<S: Source, T: Target>(
    client: &Client,
    engine: &Engine<S, T>,
    range: &Range,
    limits: &ReadLimits,
) -> anyhow::Result<Option<(Option<SequenceNumber>, SequenceNumber)>> {
    let checkpoint = engine.target.checkpoint(&range.shard).await?;
    if let (Some(c), Some(e)) = (&checkpoint, &range.end) {
        if e <= c {
            return Ok(None);
        }
    }
    let range_first = match &range.start {
        Start::At(s) => Some(s.clone()),
        Start::Since(_) => {
            first_record(
                client,
                &range.stream,
                &range.shard,
                ShardIteratorType::AtTimestamp,
                Some(&range.start),
                limits,
            )
            .await?
        }
    };
    let Some(range_first) = range_first else {
        return Ok(None);
    };
    if checkpoint.as_ref().is_some_and(|c| *c >= range_first) {
        return Ok(None);
    }
    let unapplied = match &checkpoint {
        Some(c) => {
            first_record(
                client,
                &range.stream,
                &range.shard,
                ShardIteratorType::AfterSequenceNumber,
                Some(&Start::At(c.clone())),
                limits,
            )
            .await?
        }
        None => {
            first_record(
                client,
                &range.stream,
                &range.shard,
                ShardIteratorType::TrimHorizon,
                None,
                limits,
            )
            .await?
        }
    };
    Ok(unapplied
        .filter(|u| *u < range_first)
        .map(|u| (checkpoint, u)))
}

// ------------------------------------------------------------------ command line

/// `dms-cdc redrive`: re-read shard ranges from the stream and apply them.
///
/// Exit codes: 0 every range applied (or planned, with --dry-run) and its
/// on-failure record removed; 1 something failed retryably (target,
/// source or Kinesis down or throttled; an unparsable on-failure record):
/// nothing is lost, the records are kept, run again; 2 usage or
/// configuration error (including a manual range that would move the
/// checkpoint past records the function has not applied); 3 records are
/// lost (no longer in the stream): the exact ranges are printed and the
/// on-failure records kept.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("ranges").required(true).args(["from_queue", "shard", "since"])))]
pub struct RedriveArgs {
    /// On-failure records: an SQS queue URL (http:// or https://), or a file of JSON lines.
    #[arg(long)]
    pub from_queue: Option<String>,
    /// A manual range: the shard id (with --from, optionally --to).
    #[arg(long, requires = "from")]
    pub shard: Option<String>,
    /// First sequence number of the manual range (inclusive).
    #[arg(long, requires = "shard")]
    pub from: Option<String>,
    /// Last sequence number of the manual range (inclusive); default: the newest record.
    #[arg(long, requires = "shard")]
    pub to: Option<String>,
    /// Every shard from this time (RFC 3339, or `YYYY-MM-DD HH:MM:SS` in UTC) to the newest record.
    #[arg(long)]
    pub since: Option<String>,
    /// Stream name (required for --shard and --since; default for queue records: from their streamArn).
    #[arg(long)]
    pub stream: Option<String>,
    /// Kinesis endpoint (a local emulator); default: AWS.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// SQS endpoint (a local emulator); default: AWS.
    #[arg(long)]
    pub sqs_endpoint: Option<String>,
    /// The mapping file.
    #[arg(long)]
    pub mapping: PathBuf,
    /// Source MySQL URL, for re-queries.
    #[arg(
        long,
        required_unless_present = "dry_run",
        env = "DMS_CDC_SOURCE_URL",
        hide_env_values = true
    )]
    pub source: Option<String>,
    /// Target MySQL URL.
    #[arg(
        long,
        required_unless_present = "dry_run",
        env = "DMS_CDC_TARGET_URL",
        hide_env_values = true
    )]
    pub target: Option<String>,
    /// The function's name: checkpoints and quarantined records are kept under it.
    #[arg(long, required_unless_present = "dry_run")]
    pub function_name: Option<String>,
    /// Keys per source query and rows per write statement (1 to 65535; a
    /// statement never binds more than 65,535 values: wide rows get fewer per statement).
    #[arg(long, default_value_t = 500, value_parser = dms_cdc_core::target::parse_chunk_size)]
    pub chunk_size: usize,
    /// Records per GetRecords call and per engine batch.
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
    /// Decode and plan only: print what would be written per target table; remove no on-failure record.
    #[arg(long)]
    pub dry_run: bool,
    /// How long a received SQS message stays hidden while its range is redriven (seconds).
    #[arg(long, default_value_t = 900)]
    pub visibility_timeout: u64,
    /// Stop after this many SQS messages.
    #[arg(long)]
    pub max_messages: Option<usize>,
    /// Apply a manual range even if it moves the checkpoint past records the function has not applied.
    #[arg(long)]
    pub allow_checkpoint_gap: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Parses `--since`: RFC 3339, or `YYYY-MM-DD HH:MM[:SS]` / `YYYY-MM-DD` in UTC.
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

/// An SQS client for AWS (endpoint `None`) or a local emulator.
pub async fn sqs_client(endpoint: Option<&str>) -> aws_sdk_sqs::Client {
    match endpoint {
        None => aws_sdk_sqs::Client::new(&aws_config::load_from_env().await),
        Some(url) => {
            let config = aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .region(aws_sdk_sqs::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                    "local",
                    "local",
                    None,
                    None,
                    "dms-cdc-local",
                ))
                .endpoint_url(url)
                .build();
            aws_sdk_sqs::Client::from_conf(config)
        }
    }
}

/// Runs `dms-cdc redrive`.
pub async fn run_cli(args: RedriveArgs, transforms: Transforms) -> anyhow::Result<ExitCode> {
    let mapping = Mapping::load(&args.mapping, &transforms)?;
    let kinesis = crate::stream::client(args.endpoint.as_deref()).await;
    let limits = ReadLimits {
        batch_size: args.batch_size.clamp(1, 10_000),
        ..ReadLimits::default()
    };
    let engine = if args.dry_run {
        None
    } else {
        let (Some(source), Some(target), Some(function_name)) =
            (&args.source, &args.target, &args.function_name)
        else {
            anyhow::bail!("--source, --target and --function-name are required without --dry-run");
        };
        let endpoints = crate::connect::Endpoints {
            source,
            target,
            function_name,
            chunk_size: args.chunk_size,
        };
        match crate::connect::engine::<dms_cdc_mysql::Mysql>(
            mapping.clone(),
            transforms.clone(),
            &endpoints,
        )
        .await
        {
            Ok(engine) => Some(engine),
            Err(e) => {
                eprintln!("error: {e:#}");
                return Ok(ExitCode::from(e.exit_code()));
            }
        }
    };
    let apply = match &engine {
        Some(e) => Apply::Engine(e),
        None => Apply::DryRun {
            mapping: &mapping,
            transforms: &transforms,
        },
    };
    let redrive = Redrive {
        kinesis: &kinesis,
        apply,
        limits: limits.clone(),
        stream: args.stream.clone(),
        verbose: true,
    };
    let mut progress = Progress::new(!args.quiet, None);
    let summary = if let Some(queue) = &args.from_queue {
        if queue.starts_with("https://") || queue.starts_with("http://") {
            let sqs = sqs_client(args.sqs_endpoint.as_deref()).await;
            redrive
                .sqs(
                    &sqs,
                    queue,
                    Duration::from_secs(args.visibility_timeout),
                    args.max_messages,
                    &mut progress,
                )
                .await?
        } else {
            redrive
                .file(
                    Path::new(queue.trim_start_matches("file://")),
                    &mut progress,
                )
                .await?
        }
    } else {
        let Some(stream) = args.stream.clone() else {
            anyhow::bail!("--stream is required with --shard and --since");
        };
        let ranges = if let Some(shard) = &args.shard {
            let from = SequenceNumber::parse(args.from.as_deref().unwrap_or_default())
                .map_err(|e| anyhow::anyhow!("--from: {e}"))?;
            let to = args
                .to
                .as_deref()
                .map(SequenceNumber::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--to: {e}"))?;
            if to.as_ref().is_some_and(|t| *t < from) {
                anyhow::bail!("--to is before --from");
            }
            vec![Range {
                stream: stream.clone(),
                shard: ShardId(shard.clone()),
                start: Start::At(from),
                end: to,
            }]
        } else {
            let since = parse_since(args.since.as_deref().unwrap_or_default())
                .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
            list_shards(&kinesis, &stream)
                .await?
                .into_iter()
                .map(|shard| Range {
                    stream: stream.clone(),
                    shard,
                    start: Start::Since(since),
                    end: None,
                })
                .collect()
        };
        if let (Some(engine), false) = (&engine, args.allow_checkpoint_gap) {
            for r in &ranges {
                if let Some((checkpoint, first)) =
                    checkpoint_gap(&kinesis, engine, r, &limits).await?
                {
                    eprintln!(
                        "error: {r}: the function's checkpoint is {}; record {first} after it and before the range is not applied yet. \
                         Redriving this range would move the checkpoint past it and the function would skip it. \
                         Start the range at {first} (or earlier), or pass --allow-checkpoint-gap.",
                        checkpoint.map(|c| c.to_string()).unwrap_or_else(|| "unset".into())
                    );
                    return Ok(ExitCode::from(2));
                }
            }
        }
        progress.total_ranges = Some(ranges.len());
        redrive.ranges(ranges, &mut progress).await
    };
    println!("\n== summary");
    print!("{}", summary.render());
    Ok(ExitCode::from(summary.exit_code()))
}
