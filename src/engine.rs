//! Driving a batch and answering Lambda.
//!
//! Lambda's Kinesis event source mapping, with `ReportBatchItemFailures`,
//! checkpoints at the lowest sequence number the function reports and
//! redelivers every record from there. So the response names exactly one
//! record: the earliest whose effect is not durably applied. Records that
//! were quarantined count as done (their payload and reason are stored), so
//! the shard moves on. Complete success is an empty list; an item identifier
//! is never empty.

use aws_lambda_events::streams::KinesisEventResponse;

use crate::dms::Delivery;
use crate::fault::{Fault, Infrastructure};
use crate::position::{SequenceNumber, ShardId};
use crate::source::FetchedRows;
use crate::version::{Kind, Version, VersionError};

/// What became of one record of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Its effect is durably written (together with the checkpoint).
    Applied,
    /// It needed no write (control record, unmapped table, unchanged
    /// columns, or already at or below the checkpoint).
    Skipped,
    /// It was stored in the quarantine table with its payload and reason.
    Quarantined,
    /// Its effect is not durable (a retryable failure, or it was not reached):
    /// Lambda must deliver it again.
    Pending,
}

impl Outcome {
    /// Whether the shard may move past this record.
    pub fn is_done(self) -> bool {
        !matches!(self, Outcome::Pending)
    }
}

/// The record Lambda must resume from: the first not done, if any.
pub fn checkpoint<'a>(
    outcomes: impl IntoIterator<Item = (&'a SequenceNumber, Outcome)>,
) -> Option<&'a SequenceNumber> {
    outcomes
        .into_iter()
        .find(|(_, o)| !o.is_done())
        .map(|(s, _)| s)
}

/// Builds the `ReportBatchItemFailures` response for the outcomes of a batch
/// (in delivery order).
pub fn build_response<'a>(
    outcomes: impl IntoIterator<Item = (&'a SequenceNumber, Outcome)>,
) -> KinesisEventResponse {
    let mut response = KinesisEventResponse::default();
    if let Some(seq) = checkpoint(outcomes) {
        response.add_failure(seq.as_str());
    }
    response
}

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
    pub upserts: std::collections::BTreeMap<String, usize>,
    /// Rows deleted, per target table.
    pub deletes: std::collections::BTreeMap<String, usize>,
    /// SELECTs sent to the source.
    pub source_select_count: usize,
    /// Write transactions attempted (more than one means bisection).
    pub attempt_count: usize,
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
    /// The retryable error that stopped the batch, if any.
    pub retry_error: Option<String>,
    /// Its fault (never [`Fault::Record`]).
    pub retry_fault: Option<Fault>,
}

/// A MySQL-to-MySQL engine: decode, plan, re-query, apply, respond.
pub struct Engine {
    /// The compiled mapping.
    pub mapping: crate::mapping::Mapping,
    /// Transforms the mapping uses.
    pub transforms: crate::mapping::Transforms,
    /// Source pool.
    pub source: mysql_async::Pool,
    /// Target writer.
    pub target: crate::target::MysqlTarget,
    /// Settings.
    pub settings: Settings,
}

/// Why a batch, or one attempt at a part of it, failed.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Writing the target failed.
    #[error(transparent)]
    Target(#[from] crate::target::TargetError),
    /// Re-querying the source failed.
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    /// A planned write has no target key (the mapping cannot evaluate it).
    #[error("target key: {0}")]
    Key(String),
    /// A delivery's shard id cannot be checkpointed.
    #[error("{0}")]
    Shard(crate::position::PositionError),
}

impl BatchError {
    /// Whose fault it is ([`crate::fault`]).
    pub fn fault(&self) -> Fault {
        match self {
            BatchError::Target(e) => e.fault(),
            BatchError::Source(e) => e.fault(),
            BatchError::Key(_) => Fault::Record,
            BatchError::Shard(_) => Fault::Infrastructure(Infrastructure::Bookkeeping),
        }
    }
}

/// A failed attempt: the error and its fault.
struct AttemptError(BatchError);

impl<E: Into<BatchError>> From<E> for AttemptError {
    fn from(e: E) -> Self {
        AttemptError(e.into())
    }
}

impl Engine {
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
        let mut checkpoints: std::collections::BTreeMap<ShardId, Option<SequenceNumber>> =
            Default::default();
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
                        retry = Some(BatchError::Target(e));
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

    /// Applies `todo` shard by shard (each shard's transactions carry its
    /// own checkpoint); stops at the first retryable failure.
    pub(crate) async fn apply_shards(
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
    pub(crate) fn apply_range<'a>(
        &'a self,
        deliveries: &'a [Delivery],
        todo: &'a [usize],
        outcomes: &'a mut [Outcome],
        summary: &'a mut BatchSummary,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), BatchError>> + Send + 'a>>
    {
        Box::pin(async move {
            if todo.is_empty() {
                return Ok(());
            }
            match self.attempt(deliveries, todo, None, summary).await {
                Ok(result) => {
                    for (i, o) in result {
                        outcomes[i] = o;
                    }
                    Ok(())
                }
                Err(AttemptError(e)) if !e.fault().is_record() => Err(e),
                Err(AttemptError(e)) if todo.len() == 1 => {
                    let i = todo[0];
                    let d = &deliveries[i];
                    tracing::warn!(shard_id = %d.shard_id, sequence_number = %d.sequence_number, error = %e, "record quarantined");
                    match self
                        .attempt(deliveries, todo, Some(e.to_string()), summary)
                        .await
                    {
                        Ok(result) => {
                            for (i, o) in result {
                                outcomes[i] = o;
                            }
                            Ok(())
                        }
                        // Storing the quarantine row is bookkeeping: never
                        // the record's fault, never a loop of bisections.
                        Err(AttemptError(e)) => Err(e),
                    }
                }
                Err(AttemptError(_)) => {
                    let (left, right) = todo.split_at(todo.len() / 2);
                    self.apply_range(deliveries, left, outcomes, summary)
                        .await?;
                    self.apply_range(deliveries, right, outcomes, summary).await
                }
            }
        })
    }

    /// One transaction over `todo`. With `poison`, the single record is
    /// quarantined with that reason instead of applied.
    async fn attempt(
        &self,
        deliveries: &[Delivery],
        todo: &[usize],
        poison: Option<String>,
        summary: &mut BatchSummary,
    ) -> Result<Vec<(usize, Outcome)>, AttemptError> {
        use crate::dms::{decode_record, Payload};
        use crate::plan::{add_lookup_results, plan_batch, Action};
        use crate::target::TableWrites;

        summary.attempt_count += 1;
        let options = self.mapping.decode_options();
        let mut result: Vec<(usize, Outcome)> =
            todo.iter().map(|i| (*i, Outcome::Applied)).collect();
        let mut quarantine = Vec::new();
        let last = todo
            .last()
            .map(|i| (&deliveries[*i].shard_id, &deliveries[*i].sequence_number));
        if let Some(reason) = poison {
            let d = &deliveries[todo[0]];
            let decoded = decode_record(d, &options).ok();
            let table = decoded
                .as_ref()
                .and_then(|r| r.table().map(|t| t.to_string()));
            let op = decoded.as_ref().map(|r| r.operation_name().to_owned());
            let q = [quarantine_of(d, table, op, "write", reason)];
            self.target
                .apply(&self.mapping.targets, Vec::new(), &q, last)
                .await?;
            return Ok(vec![(todo[0], Outcome::Quarantined)]);
        }

        let mut records = Vec::new();
        let mut origin = Vec::new(); // records[k] came from deliveries[origin[k]]
        for (slot, i) in todo.iter().enumerate() {
            let d = &deliveries[*i];
            match decode_record(d, &options) {
                Ok(r) => {
                    records.push(r);
                    origin.push(slot);
                }
                Err(e) => {
                    tracing::warn!(shard_id = %d.shard_id, sequence_number = %d.sequence_number, error = %e, "undecodable record quarantined");
                    let table = e.table.as_ref().map(|t| t.to_string());
                    quarantine.push(quarantine_of(d, table, None, "decode", e.to_string()));
                    result[slot].1 = Outcome::Quarantined;
                }
            }
        }
        // A DDL that breaks the mapping: quarantine it and every later record
        // of its table in this batch, with a reason that says so.
        let mut broken: std::collections::BTreeMap<crate::dms::TableName, String> =
            Default::default();
        let mut keep = Vec::with_capacity(records.len());
        for (k, r) in records.iter().enumerate() {
            let d = &deliveries[todo[origin[k]]];
            let table = r.table().cloned();
            let reason = match &r.payload {
                Payload::Control(c) => self.mapping.broken_by(c).map(|why| {
                    if let Some(t) = &table {
                        broken.insert(
                            t.clone(),
                            format!("{why} (sequence number {})", d.sequence_number),
                        );
                    }
                    format!("{why}: fix the mapping, then redrive the quarantined records")
                }),
                Payload::Data(_) => table.as_ref().and_then(|t| broken.get(t)).map(|why| {
                    format!(
                        "after a DDL that breaks the mapping: {why}; fix the mapping, then redrive"
                    )
                }),
            };
            match reason {
                Some(message) => {
                    tracing::warn!(shard_id = %d.shard_id, sequence_number = %d.sequence_number, error = %message, "record quarantined after a breaking DDL");
                    let op = r.operation_name().to_owned();
                    quarantine.push(quarantine_of(
                        d,
                        table.map(|t| t.to_string()),
                        Some(op),
                        "ddl",
                        message,
                    ));
                    result[origin[k]].1 = Outcome::Quarantined;
                }
                None => keep.push(k),
            }
        }
        if keep.len() < records.len() {
            let mut slots = Vec::with_capacity(keep.len());
            let mut kept = Vec::with_capacity(keep.len());
            for k in keep {
                slots.push(origin[k]);
                kept.push(records[k].clone());
            }
            records = kept;
            origin = slots;
        }
        let mut plan = plan_batch(&self.mapping, &records);
        for e in &plan.errors {
            let slot = origin[e.record];
            let d = &deliveries[todo[slot]];
            let op = Some(records[e.record].operation_name().to_owned());
            tracing::warn!(shard_id = %d.shard_id, sequence_number = %d.sequence_number, table = %e.table, error = %e, "unplannable record quarantined");
            quarantine.push(quarantine_of(
                d,
                Some(e.table.clone()),
                op,
                "plan",
                e.reason.clone(),
            ));
            result[slot].1 = Outcome::Quarantined;
        }
        for i in &plan.no_write {
            result[origin[*i]].1 = Outcome::Skipped;
        }
        for i in &plan.controls {
            if let Payload::Control(c) = &records[*i].payload {
                let table = c.table.as_ref().map(|t| t.to_string()).unwrap_or_default();
                tracing::info!(table = %table, operation = %c.operation, "control record");
            }
        }

        // Re-query what the plan needs, all in one snapshot, and write as the
        // rows become ready: the source reads chunk k+1 of a table's keys
        // while the target writes chunk k, in the batch's one transaction.
        let needs_source = plan.targets.iter().any(|tp| {
            !tp.lookups.is_empty() || tp.ops.values().any(|o| matches!(o.action, Action::Rebuild))
        });
        let mut tx = self.target.begin().await?;
        let mut snapshot = if needs_source {
            Some(
                crate::source::Snapshot::begin(
                    &self.source,
                    self.settings.chunk_size,
                    &self.mapping,
                )
                .await?,
            )
        } else {
            None
        };
        // A re-queried row is at least as new as every record of the
        // attempt (all committed before the snapshot): it carries the
        // newest of their versions, as a read (crate::version).
        let read_version = records
            .iter()
            .zip(&origin)
            .filter_map(|(r, slot)| {
                let seq = &deliveries[todo[*slot]].sequence_number;
                Version::of_record(r, seq, Kind::Read).ok()
            })
            .max();
        let mut build = Build {
            deliveries,
            todo,
            records: &records,
            origin: &origin,
            read_version: read_version.as_ref(),
            result: &mut result,
            quarantine: &mut quarantine,
        };
        let no_rows = FetchedRows::default();
        for tp in &mut plan.targets {
            let target = &self.mapping.targets[tp.target];
            if let Some(snap) = snapshot.as_mut() {
                for (cols, lookup) in std::mem::take(&mut tp.lookups) {
                    let tuples: Vec<_> = lookup.tuples.keys().cloned().collect();
                    let found = snap.reverse_lookup(target, &cols, &tuples).await?;
                    let matcher = crate::plan::KeyMatcher::new(lookup.tuples.keys());
                    // A returned row the source says matches, but whose
                    // values match none asked (a collation we do not
                    // know), is still a parent to rebuild: blamed on the
                    // earliest record of the lookup, so nothing is missed.
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
            }
            let on = RelatedOn::of(target);
            // Rows built from images need no read: they go first.
            let mut first = TableWrites {
                target: tp.target,
                ..Default::default()
            };
            let mut rebuild = Vec::new();
            for (key, op) in &tp.ops {
                match op.action {
                    Action::Rebuild => rebuild.push(key.clone()),
                    _ => self.build_op(target, &on, key, op, &no_rows, &mut build, &mut first)?,
                }
            }
            // Built rows wait in `ready` until they fill whole statements;
            // the rest goes after the last read.
            let chunk_size = self.settings.chunk_size.max(1);
            let mut chunks = rebuild.chunks(chunk_size);
            let mut next = chunks.next();
            let mut ready = first;
            let mut pending = ready.take_statements(chunk_size, next.is_none());
            while pending.is_some() || next.is_some() {
                let write = pending.take();
                let keys = next.take();
                if let Some(w) = &write {
                    *summary.upserts.entry(target.table.clone()).or_default() += w.upserts.len();
                    // Soft-delete marks of a versioned target are only tombstones.
                    let marks = match target.delete {
                        crate::mapping::DeletePolicy::Soft { .. } => w.tombstones.len(),
                        crate::mapping::DeletePolicy::Hard => 0,
                    };
                    *summary.deletes.entry(target.table.clone()).or_default() +=
                        w.deletes.len() + marks;
                }
                let (fetched, written) = tokio::join!(
                    async {
                        match (snapshot.as_mut(), keys) {
                            (Some(snap), Some(keys)) => {
                                snap.fetch(target, keys).await.map(|f| Some((keys, f)))
                            }
                            (None, Some(keys)) => Ok(Some((keys, FetchedRows::default()))),
                            (_, None) => Ok(None),
                        }
                    },
                    async {
                        match write {
                            Some(w)
                                if !w.upserts.is_empty()
                                    || !w.deletes.is_empty()
                                    || !w.tombstones.is_empty() =>
                            {
                                tx.write(target, w).await
                            }
                            _ => Ok(()),
                        }
                    }
                );
                written?;
                if let Some((keys, fetched)) = fetched? {
                    for key in keys {
                        if let Some(op) = tp.ops.get(key) {
                            self.build_op(target, &on, key, op, &fetched, &mut build, &mut ready)?;
                        }
                    }
                    next = chunks.next();
                }
                pending = ready.take_statements(chunk_size, next.is_none());
            }
        }
        if let Some(snap) = snapshot {
            let stats = snap.finish().await?;
            summary.source_select_count += stats.select_count;
        }
        tx.finish(&quarantine, last).await?;
        Ok(result)
    }

    /// Builds the row of one planned write (from its image, or from the
    /// re-queried rows) into `w`: an upsert, a delete, or the quarantine of
    /// the record that decided it when the row cannot be built.
    #[allow(clippy::too_many_arguments)]
    fn build_op(
        &self,
        target: &crate::mapping::Target,
        on: &RelatedOn,
        key: &crate::plan::KeyTuple,
        op: &crate::plan::PlannedOp,
        fetched: &FetchedRows,
        build: &mut Build<'_>,
        w: &mut crate::target::TableWrites,
    ) -> Result<(), AttemptError> {
        use crate::mapping::{build_row, passes_filter, target_key, Related};
        use crate::plan::Action;

        let record = &build.records[op.last_record];
        let sequence_number =
            &build.deliveries[build.todo[build.origin[op.last_record]]].sequence_number;
        // The version a row carries (only computed when the target has one).
        let version = |kind: Kind| -> Result<Option<Version>, String> {
            if target.version.is_none() {
                return Ok(None);
            }
            match kind {
                Kind::Image => Version::of_record(record, sequence_number, Kind::Image),
                Kind::Read => build.read_version.cloned().ok_or(VersionError::Missing),
            }
            .map(Some)
            .map_err(|e| e.to_string())
        };
        let built: Result<Option<BuiltRow>, String> = match &op.action {
            Action::Upsert(image) | Action::Tombstone(image) => {
                build_row(target, image, &Related::default(), &self.transforms)
                    .map_err(|e| e.to_string())
                    .and_then(|v| Ok(Some((v, version(Kind::Image)?))))
            }
            Action::Rebuild => match fetched.roots.get(key) {
                Some(root) if passes_filter(target, root) => {
                    let joins: Vec<Option<&crate::dms::Row>> = on
                        .joins
                        .iter()
                        .zip(&fetched.joins)
                        .map(|(on, by)| crate::source::key_of(root, on).and_then(|k| by.get(&k)))
                        .collect();
                    let children: Vec<Vec<&crate::dms::Row>> = on
                        .children
                        .iter()
                        .zip(&fetched.children)
                        .map(|(on, by)| {
                            crate::source::key_of(root, on)
                                .and_then(|k| by.get(&k))
                                .map(|rows| rows.iter().collect())
                                .unwrap_or_default()
                        })
                        .collect();
                    build_row(
                        target,
                        root,
                        &Related {
                            joins: &joins,
                            children: &children,
                        },
                        &self.transforms,
                    )
                    .map_err(|e| e.to_string())
                    .and_then(|v| Ok(Some((v, version(Kind::Read)?))))
                }
                _ => Ok(None),
            },
            Action::Delete => Ok(None),
        };
        match built {
            Ok(Some((mut values, version))) => {
                if let (
                    Action::Tombstone(_),
                    crate::mapping::DeletePolicy::Soft { column, value },
                ) = (&op.action, &target.delete)
                {
                    if let Some(p) = target.columns.iter().position(|c| &c.name == column) {
                        values[p] =
                            crate::mapping::toml_scalar(value).unwrap_or(crate::dms::Value::Null);
                    }
                }
                if let Some(version) = version {
                    values.push(crate::dms::Value::Text(version.as_str().to_owned()));
                }
                w.upserts.push(values);
            }
            Ok(None) => match target_key(target, &key.values()) {
                Ok(k) => {
                    // A delete of a versioned row leaves a tombstone, so an
                    // older upsert (another shard's rebuild that read before
                    // the delete, a redrive) cannot bring it back; a soft
                    // delete's mark is guarded by the version and stamps it.
                    let kind = match op.action {
                        Action::Delete => Kind::Image,
                        _ => Kind::Read,
                    };
                    match version(kind) {
                        Ok(Some(v)) => {
                            let hard = matches!(target.delete, crate::mapping::DeletePolicy::Hard);
                            if hard {
                                w.deletes.push(k.clone());
                            }
                            w.tombstones.push((k, v.as_str().to_owned()));
                        }
                        _ => w.deletes.push(k),
                    }
                }
                Err(e) => return Err(BatchError::Key(e.to_string()).into()),
            },
            Err(e) => {
                // The row cannot be built: quarantine the record that decided it.
                let slot = build.origin[op.last_record];
                let d = &build.deliveries[build.todo[slot]];
                let table = record.table().map(|t| t.to_string());
                tracing::warn!(shard_id = %d.shard_id, sequence_number = %d.sequence_number, error = %e, "row cannot be built; record quarantined");
                build.quarantine.push(quarantine_of(
                    d,
                    table,
                    Some(record.operation_name().to_owned()),
                    "evaluate",
                    format!("target {}: {e}", target.table),
                ));
                build.result[slot].1 = Outcome::Quarantined;
            }
        }
        Ok(())
    }
}

/// A built row and the version it carries (when the target has one).
type BuiltRow = (Vec<crate::dms::Value>, Option<Version>);

/// What building the rows of one attempt reads and records.
struct Build<'a> {
    deliveries: &'a [Delivery],
    todo: &'a [usize],
    records: &'a [crate::dms::DmsRecord],
    origin: &'a [usize],
    read_version: Option<&'a Version>,
    result: &'a mut Vec<(usize, Outcome)>,
    quarantine: &'a mut Vec<crate::target::Quarantine>,
}

/// A target's root columns that find its joined and child rows.
struct RelatedOn {
    joins: Vec<Vec<String>>,
    children: Vec<Vec<String>>,
}

impl RelatedOn {
    fn of(target: &crate::mapping::Target) -> Self {
        RelatedOn {
            joins: target
                .joins
                .iter()
                .map(|j| j.on.iter().map(|(_, r)| r.clone()).collect())
                .collect(),
            children: target
                .children
                .iter()
                .map(|c| c.on.iter().map(|(_, r)| r.clone()).collect())
                .collect(),
        }
    }
}

/// A quarantine entry for one delivery.
fn quarantine_of(
    d: &Delivery,
    table: Option<String>,
    operation: Option<String>,
    class: &'static str,
    message: String,
) -> crate::target::Quarantine {
    crate::target::Quarantine {
        shard_id: d.shard_id.clone(),
        sequence_number: d.sequence_number.clone(),
        table,
        operation,
        raw: d.data.clone(),
        class,
        message,
    }
}

/// Counts the quarantined records and builds the response for a batch's outcomes.
pub(crate) fn report(
    deliveries: &[Delivery],
    outcomes: Vec<Outcome>,
    mut summary: BatchSummary,
    retry: Option<BatchError>,
) -> BatchReport {
    summary.quarantined_count = outcomes
        .iter()
        .filter(|o| **o == Outcome::Quarantined)
        .count();
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seqs(n: usize) -> Vec<SequenceNumber> {
        // Realistic 56-digit sequence numbers, increasing.
        (0..n)
            .map(|i| {
                SequenceNumber::parse(&format!(
                    "4959033827149025660855969253836157109592157598913658{:04}",
                    i * 7
                ))
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn success_is_an_empty_list() {
        let s = seqs(3);
        let r = build_response(s.iter().map(|q| (q, Outcome::Applied)));
        assert!(r.batch_item_failures.is_empty());
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"{"batchItemFailures":[]}"#);
    }

    #[test]
    fn quarantined_and_skipped_records_do_not_hold_the_shard() {
        let s = seqs(4);
        let outcomes = [
            Outcome::Applied,
            Outcome::Quarantined,
            Outcome::Skipped,
            Outcome::Applied,
        ];
        let r = build_response(s.iter().zip(outcomes));
        assert!(r.batch_item_failures.is_empty());
    }

    #[test]
    fn reports_the_first_pending_record_only() {
        let s = seqs(5);
        let outcomes = [
            Outcome::Applied,
            Outcome::Quarantined,
            Outcome::Pending,
            Outcome::Applied,
            Outcome::Pending,
        ];
        let r = build_response(s.iter().zip(outcomes));
        assert_eq!(r.batch_item_failures.len(), 1);
        assert_eq!(
            r.batch_item_failures[0].item_identifier.as_deref(),
            Some(s[2].as_str())
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["batchItemFailures"][0]["itemIdentifier"],
            s[2].as_str()
        );
    }

    proptest! {
        #[test]
        fn checkpoint_is_exactly_the_first_not_applied_record(
            outcomes in proptest::collection::vec(
                prop_oneof![Just(Outcome::Applied), Just(Outcome::Skipped), Just(Outcome::Quarantined), Just(Outcome::Pending)],
                0..60,
            )
        ) {
            let s = seqs(outcomes.len());
            let r = build_response(s.iter().zip(outcomes.iter().copied()));
            let first_pending = outcomes.iter().position(|o| *o == Outcome::Pending);
            match first_pending {
                None => prop_assert!(r.batch_item_failures.is_empty()),
                Some(i) => {
                    prop_assert_eq!(r.batch_item_failures.len(), 1);
                    let id = r.batch_item_failures[0].item_identifier.clone().unwrap();
                    prop_assert!(!id.is_empty());
                    prop_assert_eq!(&id, s[i].as_str());
                    // Lambda redelivers from the reported record: everything before
                    // it is done, and it is not.
                    let reported = SequenceNumber::parse(&id).unwrap();
                    for (q, o) in s.iter().zip(&outcomes) {
                        if *q < reported { prop_assert!(o.is_done()); }
                    }
                }
            }
        }
    }
}
