//! The shards of a stream, and the check that a manual range does not move
//! the function's checkpoint past records it has not applied.

use std::fmt;

use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_kinesis::Client;
use chrono::{DateTime, Utc};
use dms_cdc_core::source::Source;
use dms_cdc_core::target::Target;

use super::range::{Range, Start};
use super::reader::ReadLimits;
use crate::engine::Engine;
use crate::position::{SequenceNumber, ShardId};
use crate::stream::{delivery, StreamError};

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
        out.extend(page.shards().iter().map(|s| ShardId(s.shard_id().into())));
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// Every shard of `stream` from `since` to its newest record (`--since`).
pub async fn ranges_since(
    client: &Client,
    stream: &str,
    since: DateTime<Utc>,
) -> Result<Vec<Range>, StreamError> {
    Ok(list_shards(client, stream)
        .await?
        .into_iter()
        .map(|shard| Range {
            stream: stream.to_owned(),
            shard,
            start: Start::Since(since),
            end: None,
        })
        .collect())
}

/// The first record of a shard after `checkpoint` (from the oldest record
/// the stream keeps when `None`): the first one the function has not
/// applied, with its approximate arrival time (Unix milliseconds); `None`
/// when the function is at the newest record.
pub async fn first_unapplied(
    client: &Client,
    stream: &str,
    shard: &ShardId,
    checkpoint: Option<&SequenceNumber>,
    limits: &ReadLimits,
) -> Result<Option<(SequenceNumber, Option<i64>)>, StreamError> {
    let (kind, at) = match checkpoint {
        Some(c) => (
            ShardIteratorType::AfterSequenceNumber,
            Some(Start::At(c.clone())),
        ),
        None => (ShardIteratorType::TrimHorizon, None),
    };
    first_delivery(client, stream, shard, kind, at.as_ref(), limits)
        .await
        .map(|d| d.map(|d| (d.sequence_number, d.approximate_arrival_ms)))
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
    first_delivery(client, stream, shard, kind, at, limits)
        .await
        .map(|d| d.map(|d| d.sequence_number))
}

async fn first_delivery(
    client: &Client,
    stream: &str,
    shard: &ShardId,
    kind: ShardIteratorType,
    at: Option<&Start>,
    limits: &ReadLimits,
) -> Result<Option<crate::dms::Delivery>, StreamError> {
    let err = |operation| {
        move |e: String| StreamError {
            operation,
            message: e,
        }
    };
    let mut req = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard.as_str())
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
            return Ok(Some(delivery(shard, r)?));
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

/// A manual range that would move the function's checkpoint past a record
/// it has not applied ([`checkpoint_gap`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointGap {
    /// The range.
    pub range: Range,
    /// The shard's checkpoint (`None`: unset).
    pub checkpoint: Option<SequenceNumber>,
    /// The first record after the checkpoint and before the range.
    pub first_unapplied: SequenceNumber,
}

impl fmt::Display for CheckpointGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = &self.first_unapplied;
        write!(
            f,
            "{}: the function's checkpoint is {}; record {first} after it and before the range is not applied yet. \
             Redriving this range would move the checkpoint past it and the function would skip it. \
             Start the range at {first} (or earlier)",
            self.range,
            self.checkpoint
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "unset".into())
        )
    }
}

/// The first of `ranges` that has a [`CheckpointGap`], if any.
pub async fn first_checkpoint_gap<S: Source, T: Target>(
    client: &Client,
    engine: &Engine<S, T>,
    ranges: &[Range],
    limits: &ReadLimits,
) -> anyhow::Result<Option<CheckpointGap>> {
    for range in ranges {
        if let Some((checkpoint, first_unapplied)) =
            checkpoint_gap(client, engine, range, limits).await?
        {
            return Ok(Some(CheckpointGap {
                range: range.clone(),
                checkpoint,
                first_unapplied,
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::{CheckpointGap, Range, Start};
    use crate::position::{SequenceNumber, ShardId};

    fn seq(n: u32) -> SequenceNumber {
        SequenceNumber::parse(&n.to_string()).expect("a sequence number")
    }

    #[test]
    fn a_gap_names_the_range_the_checkpoint_and_the_first_unapplied_record() {
        let range = Range {
            stream: "orders".into(),
            shard: ShardId("shardId-000000000000".into()),
            start: Start::At(seq(50)),
            end: Some(seq(60)),
        };
        for (checkpoint, shown) in [(Some(seq(10)), "10"), (None, "unset")] {
            let gap = CheckpointGap {
                range: range.clone(),
                checkpoint,
                first_unapplied: seq(20),
            };
            assert_eq!(
                gap.to_string(),
                format!(
                    "orders shardId-000000000000: 50 ..= 60: the function's checkpoint is {shown}; \
                     record 20 after it and before the range is not applied yet. Redriving this \
                     range would move the checkpoint past it and the function would skip it. \
                     Start the range at 20 (or earlier)"
                )
            );
        }
    }
}
