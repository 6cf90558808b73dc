//! Redriving shard ranges that Lambda gave up on.
//!
//! When the event source mapping gives up on a batch (retries or record age
//! exhausted) it sends an on-failure record to SQS/SNS that holds only
//! metadata: the shard and the first and last sequence numbers of the
//! batch. The records must be read again from the stream before retention
//! ends. This module reads such a range ([`RangeReader`]: GetShardIterator
//! `AT_SEQUENCE_NUMBER` at the start, GetRecords until the end sequence
//! number, inclusive and compared numerically), applies it through the same
//! engine and target as the function ([`Engine::process_redrive`](dms_cdc_core::engine::Engine::process_redrive)), and
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
//!
//! The modules (their items are re-exported here), one job each:
//!
//! - `on_failure`: parsing Lambda's on-failure records;
//! - `range`: what a range is ([`Range`], [`Start`]) and what of it is lost
//!   ([`LostRange`], [`Edge`]);
//! - `reader`: reading a range from the stream ([`RangeReader`]), paced,
//!   backing off when throttled, renewing expired iterators;
//! - `shards`: the shards of a stream (the ranges of `--since`) and the
//!   checkpoint-gap check of a manual range;
//! - `apply`: applying a range through the engine, or planning it
//!   ([`redrive_range`], [`dry_plan`]), and its [`RangeReport`];
//! - `progress`: the progress bar and the [`RunSummary`] of a run;
//! - `queue`: where on-failure records come from ([`OnFailureQueue`]: SQS,
//!   a file) and the [`Redrive`] run over them.

mod apply;
mod on_failure;
mod progress;
mod queue;
mod range;
mod reader;
mod shards;

pub use apply::{
    dry_plan, redrive_range, Apply, DryPlan, PlannedWrites, RangeReport, RangeStatus, Redrivable,
};
pub use on_failure::{parse_on_failure, stream_name_of_arn, OnFailure};
pub use progress::{Progress, RunSummary};
pub use queue::{sqs_client, OnFailureQueue, Redrive};
pub use range::{parse_since, Edge, LostRange, Range, Start};
pub use reader::{RangeReader, ReadError, ReadLimits, ReadStats};
pub use shards::{
    checkpoint_gap, first_checkpoint_gap, first_unapplied, list_shards, ranges_since, CheckpointGap,
};
