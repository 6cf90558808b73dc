//! The shards of a stream, and the check that a manual range does not move
//! the function's checkpoint past records it has not applied.

use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_kinesis::Client;
use dms_cdc_core::source::Source;
use dms_cdc_core::target::Target;

use super::range::Start;
use super::reader::ReadLimits;
use super::Range;
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
