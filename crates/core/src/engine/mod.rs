//! Driving a batch: the checkpoint skip, the prepare pass, re-queries
//! overlapped with writes in one transaction, bisection down to the record
//! a target rejects, and the response ([`crate::response`]).
//!
//! The engine is generic over a [`Source`] (re-queries) and a [`Target`]
//! (writes); it decides what to do from the [`Fault`] of an error only
//! ([`Classify`]), never from a driver's codes.

use std::collections::BTreeMap;

use aws_lambda_events::streams::KinesisEventResponse;

use crate::dms::Delivery;
use crate::fault::{Classify, Fault, Infrastructure};
use crate::mapping::{DeletePolicy, Mapping, TargetTable, Transforms};
use crate::plan::{add_lookup_results, Action, KeyMatcher, TargetPlan};
use crate::position::{PositionError, SequenceNumber, ShardId};
use crate::prepare::{build_op, prepare_batch, quarantine_of, Build, KeyError, RelatedOn};
use crate::source::{FetchedRows, Source, SourceSnapshot};
use crate::target::{QuarantineClass, TableWrites, Target, TargetTransaction};

pub use crate::response::{build_response, checkpoint, Outcome};

/// Settings of a running engine.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Name of the function (checkpoint and quarantine rows are per function).
    pub function_name: String,
    /// Keys per source query and rows per write statement.
    pub chunk_size: usize,
}

/// Counts of one processed batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchSummary {
    /// Records in the batch.
    pub record_count: usize,
    /// Records at or below the checkpoint, skipped.
    pub redelivered_count: usize,
    /// Records quarantined.
    pub quarantined_count: usize,
    /// Rows upserted, per target table.
    pub upserts: BTreeMap<String, usize>,
    /// Rows deleted, per target table.
    pub deletes: BTreeMap<String, usize>,
    /// SELECTs sent to the source.
    pub source_select_count: usize,
    /// Write transactions attempted (more than one means bisection).
    pub attempt_count: usize,
    /// Records applied (written, or needing no write).
    pub applied_count: usize,
    /// The newest source commit time (UTC) among the applied records that
    /// carry one (`commit-timestamp`; full-load records carry none): the
    /// replication lag is the time since.
    pub newest_commit: Option<chrono::NaiveDateTime>,
}

impl BatchSummary {
    /// Replication lag in milliseconds at `now` (UTC): the time since the
    /// newest applied record was committed on the source (never negative).
    pub fn lag_ms(&self, now: chrono::NaiveDateTime) -> Option<u64> {
        self.newest_commit
            .map(|c| (now - c).num_milliseconds().max(0) as u64)
    }
}

/// The newest of `commit_timestamps` that parse ([`crate::dms::parse_datetime`]).
/// Consecutive records mostly share their commit timestamp (one per
/// transaction): a text equal to the one before is not parsed again.
fn newest_commit<'a>(
    commit_timestamps: impl IntoIterator<Item = &'a str>,
) -> Option<chrono::NaiveDateTime> {
    let mut newest = None;
    let mut last: Option<(&str, Option<chrono::NaiveDateTime>)> = None;
    for text in commit_timestamps {
        let commit = match last {
            Some((read, commit)) if read == text => commit,
            _ => {
                let commit = crate::dms::parse_datetime(text);
                last = Some((text, commit));
                commit
            }
        };
        newest = newest.max(commit);
    }
    newest
}

/// The result of a batch.
#[derive(Debug)]
pub struct BatchReport {
    /// Outcome per delivery, in order.
    pub outcomes: Vec<Outcome>,
    /// The response for Lambda.
    pub response: KinesisEventResponse,
    /// Counts.
    pub summary: BatchSummary,
    /// The retryable error that stopped the batch, if any, as text.
    pub retry_error: Option<String>,
    /// Its fault (never [`Fault::Record`]).
    pub retry_fault: Option<Fault>,
}

/// Why a batch, or one attempt at a part of it, failed.
#[derive(Debug)]
pub enum BatchError {
    /// Writing the target failed (the adapter's error).
    Target(Box<dyn Classify>),
    /// Re-querying the source failed (the adapter's error).
    Source(Box<dyn Classify>),
    /// A planned write has no target key (the mapping cannot evaluate it).
    Key(KeyError),
    /// A delivery's shard id cannot be checkpointed.
    Shard(PositionError),
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Target(e) | BatchError::Source(e) => e.fmt(f),
            BatchError::Key(e) => e.fmt(f),
            BatchError::Shard(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for BatchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The adapters' errors are shown as they are (transparent).
        match self {
            BatchError::Target(e) | BatchError::Source(e) => e.source(),
            BatchError::Key(e) => e.source(),
            BatchError::Shard(_) => None,
        }
    }
}

impl From<KeyError> for BatchError {
    fn from(e: KeyError) -> Self {
        BatchError::Key(e)
    }
}

impl BatchError {
    /// Whose fault it is ([`crate::fault`]).
    pub fn fault(&self) -> Fault {
        match self {
            BatchError::Target(e) | BatchError::Source(e) => e.fault(),
            BatchError::Key(_) => Fault::Record,
            BatchError::Shard(_) => Fault::Infrastructure(Infrastructure::Bookkeeping),
        }
    }

    fn target(e: impl Classify) -> Self {
        BatchError::Target(Box::new(e))
    }

    fn source(e: impl Classify) -> Self {
        BatchError::Source(Box::new(e))
    }
}

/// Drives batches: decode, plan, re-query the source, write the target,
/// respond. Built once per cold start ([`Engine::new`]).
pub struct Engine<S, T> {
    /// The compiled mapping.
    pub mapping: Mapping,
    /// Transforms the mapping uses.
    pub transforms: Transforms,
    /// Where rows are re-queried.
    pub source: S,
    /// Where rows are written.
    pub target: T,
    /// Settings.
    pub settings: Settings,
}

/// The outcome of each slot of an attempt.
type AttemptResult = Result<Vec<(usize, Outcome)>, BatchError>;

impl<S: Source, T: Target> Engine<S, T> {
    /// An engine over a source and a target (the one place engines are made).
    pub fn new(
        mapping: Mapping,
        transforms: Transforms,
        source: S,
        target: T,
        settings: Settings,
    ) -> Self {
        Engine {
            mapping,
            transforms,
            source,
            target,
            settings,
        }
    }

    /// Processes one batch and builds the response. Lambda sends the
    /// records of one shard; an event with several shards (a fixture, a
    /// replay) is processed shard by shard, each with its own checkpoint.
    pub async fn process(&self, deliveries: &[Delivery]) -> BatchReport {
        let mut outcomes = vec![Outcome::Pending; deliveries.len()];
        let mut summary = BatchSummary {
            record_count: deliveries.len(),
            ..Default::default()
        };
        let mut retry = None;
        // Records at or below the shard's checkpoint were applied before.
        let mut todo = Vec::new();
        let mut checkpoints: BTreeMap<ShardId, Option<SequenceNumber>> = BTreeMap::new();
        for (i, d) in deliveries.iter().enumerate() {
            if !checkpoints.contains_key(&d.shard_id) {
                if let Err(e) = ShardId::parse(&d.shard_id.0) {
                    tracing::error!(error = %e, "shard id cannot be checkpointed; batch will be retried");
                    retry = Some(BatchError::Shard(e));
                    break;
                }
                match self.target.checkpoint(&d.shard_id).await {
                    Ok(c) => {
                        checkpoints.insert(d.shard_id.clone(), c);
                    }
                    Err(e) => {
                        tracing::warn!(shard_id = %d.shard_id, error = %e, "checkpoint unreadable; batch will be retried");
                        retry = Some(BatchError::target(e));
                        break;
                    }
                }
            }
            match checkpoints.get(&d.shard_id).cloned().flatten() {
                Some(c) if d.sequence_number <= c => {
                    outcomes[i] = Outcome::Skipped;
                    summary.redelivered_count += 1;
                }
                _ => todo.push(i),
            }
        }
        if retry.is_none() {
            retry = self
                .apply_shards(deliveries, &todo, &mut outcomes, &mut summary)
                .await
                .err();
        }
        report(deliveries, outcomes, summary, retry)
    }

    /// Processes a batch like [`Engine::process`], but without the
    /// checkpoint skip: for redriving records the function gave up on (they
    /// are at or below the shard's checkpoint) and quarantined records.
    ///
    /// Still idempotent: keyed writes, the version guard, re-queries of the
    /// current source, and a checkpoint that only ever moves forward (it
    /// moves to the last record of the batch only if that is above it).
    pub async fn process_redrive(&self, deliveries: &[Delivery]) -> BatchReport {
        let mut outcomes = vec![Outcome::Pending; deliveries.len()];
        let mut summary = BatchSummary {
            record_count: deliveries.len(),
            ..Default::default()
        };
        let todo: Vec<usize> = (0..deliveries.len()).collect();
        let retry = self
            .apply_shards(deliveries, &todo, &mut outcomes, &mut summary)
            .await
            .err();
        report(deliveries, outcomes, summary, retry)
    }

    /// Applies `todo` shard by shard (each shard's transactions carry its
    /// own checkpoint); stops at the first retryable failure.
    async fn apply_shards(
        &self,
        deliveries: &[Delivery],
        todo: &[usize],
        outcomes: &mut [Outcome],
        summary: &mut BatchSummary,
    ) -> Result<(), BatchError> {
        let mut shards: Vec<(&ShardId, Vec<usize>)> = Vec::new();
        for &i in todo {
            let shard = &deliveries[i].shard_id;
            match shards.iter_mut().find(|(s, _)| *s == shard) {
                Some((_, list)) => list.push(i),
                None => shards.push((shard, vec![i])),
            }
        }
        for (_, list) in shards {
            self.apply_range(deliveries, &list, outcomes, summary)
                .await?;
        }
        Ok(())
    }

    /// Applies `todo` (indices into `deliveries`); on a permanent failure
    /// bisects to isolate the record; stops at the first retryable failure.
    fn apply_range<'a>(
        &'a self,
        deliveries: &'a [Delivery],
        todo: &'a [usize],
        outcomes: &'a mut [Outcome],
        summary: &'a mut BatchSummary,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), BatchError>> + Send + 'a>>
    {
        Box::pin(async move {
            let Some(&first) = todo.first() else {
                return Ok(());
            };
            let result = match self.attempt(deliveries, todo, summary).await {
                Err(e) if !e.fault().is_record() => return Err(e),
                Err(e) if todo.len() == 1 => {
                    let d = &deliveries[first];
                    tracing::warn!(shard_id = %d.shard_id, sequence_number = %d.sequence_number, error = %e, "record quarantined");
                    // Storing the quarantine row is bookkeeping: never
                    // the record's fault, never a loop of bisections.
                    self.quarantine_one(deliveries, first, e.to_string(), summary)
                        .await?
                }
                Err(_) => {
                    let (left, right) = todo.split_at(todo.len() / 2);
                    self.apply_range(deliveries, left, outcomes, summary)
                        .await?;
                    return self.apply_range(deliveries, right, outcomes, summary).await;
                }
                Ok(result) => result,
            };
            for (i, o) in result {
                outcomes[i] = o;
            }
            Ok(())
        })
    }

    /// Quarantines one record that the target refused, in its own
    /// transaction with its checkpoint.
    async fn quarantine_one(
        &self,
        deliveries: &[Delivery],
        i: usize,
        reason: String,
        summary: &mut BatchSummary,
    ) -> AttemptResult {
        use crate::dms::decode_record;
        summary.attempt_count += 1;
        let d = &deliveries[i];
        let decoded = decode_record(d, &self.mapping.decode_options()).ok();
        let table = decoded
            .as_ref()
            .and_then(|r| r.table().map(|t| t.to_string()));
        let op = decoded.as_ref().map(|r| r.operation_name().to_owned());
        let q = [quarantine_of(d, table, op, QuarantineClass::Write, reason)];
        let tx = self.target.begin().await.map_err(BatchError::target)?;
        tx.finish(&q, Some((&d.shard_id, &d.sequence_number)))
            .await
            .map_err(BatchError::target)?;
        Ok(vec![(i, Outcome::Quarantined)])
    }

    /// One transaction over `todo`: prepare, then re-query and write.
    async fn attempt(
        &self,
        deliveries: &[Delivery],
        todo: &[usize],
        summary: &mut BatchSummary,
    ) -> AttemptResult {
        summary.attempt_count += 1;
        let last = todo
            .last()
            .map(|i| (&deliveries[*i].shard_id, &deliveries[*i].sequence_number));
        let mut prepared = prepare_batch(&self.mapping, deliveries, todo);
        let needs_source = prepared.needs_source();
        let read_version = prepared.read_version(deliveries, todo);
        let mut plan = std::mem::take(&mut prepared.plan);
        // Re-query what the plan needs, all in one snapshot, and write as the
        // rows become ready: the source reads chunk k+1 of a table's keys
        // while the target writes chunk k, in the batch's one transaction.
        // The target's transaction and the source's snapshot start together.
        let snapshot = async {
            if needs_source {
                self.source
                    .snapshot(&self.mapping, self.settings.chunk_size)
                    .await
                    .map(Some)
                    .map_err(BatchError::source)
            } else {
                Ok(None)
            }
        };
        let (tx, snapshot) = futures_util::future::join(self.target.begin(), snapshot).await;
        let mut tx = tx.map_err(BatchError::target)?;
        let mut snapshot = snapshot?;
        let mut build = Build {
            deliveries,
            todo,
            records: &prepared.records,
            origin: &prepared.origin,
            read_version: read_version.as_ref(),
            transforms: &self.transforms,
            outcomes: &mut prepared.outcomes,
            quarantine: &mut prepared.quarantine,
        };
        // Statements built but not yet written: a table's last ones are
        // written with the next table's first reads.
        let mut carry: Vec<TableWrites> = Vec::new();
        for tp in &mut plan.targets {
            let target = &self.mapping.targets[tp.target];
            if let Some(snap) = snapshot.as_mut() {
                // The previous table's last statements are written while
                // this table's reverse lookups are read.
                let writes = std::mem::take(&mut carry);
                let (looked, written) = futures_util::future::join(
                    resolve_lookups(snap, target, tp),
                    self.write_all(&mut tx, writes, summary),
                )
                .await;
                written?;
                looked?;
            }
            self.write_target(
                target,
                tp,
                snapshot.as_mut(),
                &mut tx,
                &mut build,
                summary,
                &mut carry,
            )
            .await?;
        }
        self.write_all(&mut tx, carry, summary).await?;
        if let Some(snap) = snapshot {
            let stats = snap.finish().await.map_err(BatchError::source)?;
            summary.source_select_count += stats.select_count;
        }
        tx.finish(&prepared.quarantine, last)
            .await
            .map_err(BatchError::target)?;
        let applied = prepared
            .records
            .iter()
            .zip(&prepared.origin)
            .filter(|(_, slot)| {
                prepared.outcomes.get(**slot).map(|o| o.1) == Some(Outcome::Applied)
            })
            .filter_map(|(record, _)| record.metadata.transaction().commit_timestamp);
        let commit = newest_commit(applied);
        if commit > summary.newest_commit {
            summary.newest_commit = commit;
        }
        Ok(prepared.outcomes)
    }

    /// Writes `writes` in order (each names its target table).
    async fn write_all(
        &self,
        tx: &mut T::Transaction,
        writes: Vec<TableWrites>,
        summary: &mut BatchSummary,
    ) -> Result<(), BatchError> {
        for w in writes {
            let target = &self.mapping.targets[w.target];
            count_writes(summary, target, &w);
            if !w.is_empty() {
                tx.write(target, w).await.map_err(BatchError::target)?;
            }
        }
        Ok(())
    }

    /// Builds and writes one target table's rows: rows from images first,
    /// then the rebuilt rows chunk by chunk, as three stages that run at
    /// once and wait only for each other's output, not in step: the source
    /// reads chunk k+2 (one more read chunk may wait in between) while this
    /// process builds the rows of chunk k+1 and the target writes the
    /// statements built so far. A stage that finishes its step goes on with
    /// the next one: the source and the target each work as long as there
    /// is something for them, instead of the slower of the two setting the
    /// pace of every step. The statements left when nothing remains to read
    /// or build go to `carry`, to be written with the next reads (the next
    /// table's, or at the end).
    ///
    /// A stage that fails drops its ends of the queues, so the others stop
    /// at their next hand-over; the error reported is the write's, then the
    /// build's, then the read's, as the first to fail stops the others.
    #[allow(clippy::too_many_arguments)]
    async fn write_target<Snap: SourceSnapshot>(
        &self,
        target: &TargetTable,
        tp: &TargetPlan,
        snapshot: Option<&mut Snap>,
        tx: &mut T::Transaction,
        build: &mut Build<'_>,
        summary: &mut BatchSummary,
        carry: &mut Vec<TableWrites>,
    ) -> Result<(), BatchError> {
        use futures_util::{SinkExt, StreamExt};

        let on = RelatedOn::of(target);
        let no_rows = FetchedRows::default();
        // Rows built from images need no read: they go first.
        let mut ready = TableWrites {
            target: tp.target,
            ..Default::default()
        };
        let mut rebuild = Vec::new();
        for (key, op) in &tp.ops {
            match op.action {
                Action::Rebuild => rebuild.push(key.clone()),
                _ => build_op(build, target, &on, key, op, &no_rows, &mut ready)?,
            }
        }
        // Built rows wait in `ready` until they fill whole statements;
        // the rest goes after the last build.
        let chunk_size = self.settings.chunk_size.max(1);
        if rebuild.is_empty() {
            carry.extend(ready.take_statements(chunk_size, true));
            return Ok(());
        }
        let mut first = std::mem::take(carry);
        first.extend(ready.take_statements(chunk_size, false));
        // One read chunk may wait for the build, and one chunk's statements
        // for the write: with the chunk in each stage, that bounds what is
        // held at once.
        let (mut read_out, mut build_in) = futures_channel::mpsc::channel(0);
        let (mut build_out, mut write_in) = futures_channel::mpsc::channel(0);
        let rebuild = &rebuild;
        let read = async move {
            let mut snapshot = snapshot;
            for keys in rebuild.chunks(chunk_size) {
                let fetched = match snapshot.as_deref_mut() {
                    Some(snap) => snap.fetch(target, keys).await.map_err(BatchError::source)?,
                    None => FetchedRows::default(),
                };
                if read_out.send((keys, fetched)).await.is_err() {
                    break; // the build stopped: its error is reported
                }
            }
            Ok::<(), BatchError>(())
        };
        let written = async move {
            self.write_all(tx, first, summary).await?;
            while let Some(writes) = write_in.next().await {
                self.write_all(tx, writes, summary).await?;
            }
            Ok::<(), BatchError>(())
        };
        let building = &mut ready;
        let on = &on;
        let built = async move {
            while let Some((keys, fetched)) = build_in.next().await {
                for key in keys {
                    if let Some(op) = tp.ops.get(key) {
                        build_op(build, target, on, key, op, &fetched, building)?;
                    }
                }
                drop(fetched);
                if let Some(writes) = building.take_statements(chunk_size, false) {
                    if build_out.send(vec![writes]).await.is_err() {
                        break; // the write stopped: its error is reported
                    }
                }
                // Let the read and the write send their next statements
                // before the next chunk is built.
                YieldNow(false).await;
            }
            Ok::<(), BatchError>(())
        };
        // Polled in this order: whatever the servers can be sent goes out
        // before the build takes the thread.
        let (read, written, built) = futures_util::future::join3(read, written, built).await;
        written?;
        built?;
        read?;
        carry.extend(ready.take_statements(chunk_size, true));
        Ok(())
    }
}

/// Returns `Pending` once (waking itself at once), so that the other
/// futures of a `join` are polled before this one goes on.
struct YieldNow(bool);

impl std::future::Future for YieldNow {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// Resolves a target's reverse lookups in the snapshot: the root rows they
/// find are added to the plan as rebuilds.
async fn resolve_lookups<Snap: SourceSnapshot>(
    snap: &mut Snap,
    target: &TargetTable,
    tp: &mut TargetPlan,
) -> Result<(), BatchError> {
    // Nested children first, the deepest level first (a parent is always
    // declared before its children, so its index is lower): their parents
    // are rows of the level above, whose own parents are asked in turn.
    while let Some(((parent, cols), lookup)) = tp.nested.pop_last() {
        let Some(spec) = target.children.get(parent) else {
            continue;
        };
        let tuples: Vec<_> = lookup.tuples.keys().cloned().collect();
        let select: Vec<String> = spec.on.iter().map(|(c, _)| c.clone()).collect();
        let found = snap
            .lookup_in(&spec.table, &select, &cols, &tuples)
            .await
            .map_err(BatchError::source)?;
        let matcher = KeyMatcher::new(lookup.tuples.keys());
        let earliest = lookup.tuples.values().copied().min().unwrap_or(0);
        for (matched, up) in found {
            let record = matcher
                .matches(&matched)
                .iter()
                .filter_map(|asked| lookup.tuples.get(asked).copied())
                .min()
                .unwrap_or(earliest);
            match spec.parent {
                Some(above) => tp.ask_nested(above, &spec.on, up, record),
                None => tp.ask_parents(target, &spec.on, up, record),
            }
        }
    }
    for (cols, lookup) in std::mem::take(&mut tp.lookups) {
        let tuples: Vec<_> = lookup.tuples.keys().cloned().collect();
        let found = snap
            .reverse_lookup(target, &cols, &tuples)
            .await
            .map_err(BatchError::source)?;
        let matcher = KeyMatcher::new(lookup.tuples.keys());
        // A returned row the source says matches, but whose values match
        // none asked (a collation we do not know), is still a parent to
        // rebuild: blamed on the earliest record of the lookup, so nothing
        // is missed.
        let earliest = lookup.tuples.values().copied().min().unwrap_or(0);
        add_lookup_results(
            tp,
            found.into_iter().map(|(k, t)| {
                let record = matcher
                    .matches(&t)
                    .iter()
                    .filter_map(|asked| lookup.tuples.get(asked).copied())
                    .min()
                    .unwrap_or(earliest);
                (k, record)
            }),
        );
    }
    Ok(())
}

/// Counts a statement's rows in the summary.
fn count_writes(summary: &mut BatchSummary, target: &TargetTable, w: &TableWrites) {
    *summary.upserts.entry(target.table.clone()).or_default() += w.upserts.len();
    // Soft-delete marks of a versioned target are only tombstones.
    let marks = match target.delete {
        DeletePolicy::Soft { .. } => w.tombstones.len(),
        DeletePolicy::Hard => 0,
    };
    *summary.deletes.entry(target.table.clone()).or_default() += w.deletes.len() + marks;
}

/// Counts the quarantined records and builds the response for a batch's outcomes.
pub fn report(
    deliveries: &[Delivery],
    outcomes: Vec<Outcome>,
    mut summary: BatchSummary,
    retry: Option<BatchError>,
) -> BatchReport {
    summary.quarantined_count = outcomes
        .iter()
        .filter(|o| **o == Outcome::Quarantined)
        .count();
    summary.applied_count = outcomes.iter().filter(|o| **o == Outcome::Applied).count();
    let response = build_response(
        deliveries
            .iter()
            .map(|d| &d.sequence_number)
            .zip(outcomes.iter().copied()),
    );
    BatchReport {
        outcomes,
        response,
        summary,
        retry_fault: retry.as_ref().map(BatchError::fault),
        retry_error: retry.map(|e| e.to_string()),
    }
}

#[cfg(test)]
mod adapter_tests;

#[cfg(test)]
mod commit_tests {
    use super::newest_commit;
    use proptest::prelude::*;

    proptest! {
        /// The newest commit is the greatest of the parsed timestamps, with
        /// runs of equal texts (one per transaction) and unparsable ones.
        #[test]
        fn newest_commit_is_the_greatest_parsed(
            texts in proptest::collection::vec(
                prop_oneof![
                    (0u32..3).prop_map(|s| format!("2026-11-20T10:15:0{s}Z")),
                    (0u32..3).prop_map(|s| format!("2026-11-20 10:15:0{s}.5")),
                    Just("not a time".to_owned()),
                ],
                0..10,
            ),
            runs in proptest::collection::vec(1usize..4, 10),
        ) {
            let repeated: Vec<&str> = texts
                .iter()
                .zip(&runs)
                .flat_map(|(t, n)| std::iter::repeat_n(t.as_str(), *n))
                .collect();
            let expected = repeated.iter().filter_map(|t| crate::dms::parse_datetime(t)).max();
            prop_assert_eq!(newest_commit(repeated.iter().copied()), expected);
        }
    }
}
