//! Reading one range of one shard again: GetShardIterator at the start,
//! GetRecords until the end (inclusive, compared numerically), paced to the
//! shard's limits, backing off when throttled, re-acquiring expired
//! iterators, and detecting records that are no longer in the stream.

use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::{Record, ShardIteratorType};
use aws_sdk_kinesis::Client;

use super::range::{Edge, LostRange, Range, Start};
use crate::dms::Delivery;
use crate::position::{SequenceNumber, ShardId};
use crate::stream::{delivery, StreamError};

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
                .shard_id(self.range.shard.as_str());
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
            let batch = self.in_range(out.records())?;
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

    /// The records of one GetRecords answer that belong to the range, in
    /// order, up to its end (which finishes the read).
    fn in_range(&mut self, records: &[Record]) -> Result<Vec<Delivery>, ReadError> {
        let mut batch = Vec::new();
        for r in records {
            let d = delivery(&self.range.shard, r)?;
            if let Start::At(s) = &self.range.start {
                if d.sequence_number < *s {
                    continue;
                }
            }
            if self.first_seen.is_none() {
                self.first_in_range(&d.sequence_number);
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
        Ok(batch)
    }

    /// The first record read at or after the start: if it is after a
    /// `Start::At`, the iterator started late and what lies between is
    /// past retention (lost).
    fn first_in_range(&mut self, first: &SequenceNumber) {
        if let Start::At(s) = &self.range.start {
            if first > s {
                let to = match &self.range.end {
                    Some(e) if first > e => Edge::Including(e.clone()),
                    _ => Edge::Excluding(first.clone()),
                };
                self.lost.push(LostRange {
                    shard: self.range.shard.clone(),
                    from: Edge::Including(s.clone()),
                    to,
                    reason: format!(
                        "the first record the stream still has at or after the start is {first} (past the retention period)"
                    ),
                });
            }
        }
        self.first_seen = Some(first.clone());
    }
}
