//! The one prepare pass: deliveries -> decoded records -> (DDL that breaks
//! the mapping) -> plan -> rows. The engine, `dms-cdc replay --dry-run` and
//! `dms-cdc redrive --dry-run` all run it, so a dry run plans exactly the
//! writes the function makes.
//!
//! Pure: no source, no target. Rows that need the source
//! ([`Action::Rebuild`]) are built by [`build_op`] from the rows the engine
//! re-queried; a dry run builds only the rows that come from images.

use std::collections::BTreeMap;

use crate::dms::{decode_record, Delivery, DmsRecord, Payload, Row, TableName, Value};
use crate::mapping::{
    build_row, passes_filter, target_key, toml_scalar, DeletePolicy, EvalError, Mapping, Related,
    TargetTable, Transforms,
};
use crate::plan::{plan_batch, Action, BatchPlan, Image, KeyTuple, PlannedOp};
use crate::response::Outcome;
use crate::source::{row_key, FetchedRows};
use crate::target::{Quarantine, QuarantineClass, TableWrites};
use crate::version::{Kind, Version, VersionError};

/// A batch (or a part of one) after decoding and planning.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The decoded records that go on to the plan.
    pub records: Vec<DmsRecord>,
    /// `records[k]` came from `todo[origin[k]]`.
    pub origin: Vec<usize>,
    /// Per slot of `todo`: (delivery index, outcome so far). Records not
    /// quarantined or skipped here are [`Outcome::Applied`] if the writes
    /// succeed.
    pub outcomes: Vec<(usize, Outcome)>,
    /// Records quarantined by decoding, a breaking DDL or the plan.
    pub quarantine: Vec<Quarantine>,
    /// The plan of `records`.
    pub plan: BatchPlan,
}

/// A target key the mapping cannot produce for a planned write.
#[derive(Debug, thiserror::Error)]
#[error("target key: {0}")]
pub struct KeyError(#[from] pub EvalError);

/// A quarantine entry for one delivery.
pub fn quarantine_of(
    d: &Delivery,
    table: Option<String>,
    operation: Option<String>,
    class: QuarantineClass,
    message: String,
) -> Quarantine {
    Quarantine {
        shard_id: d.shard_id.clone(),
        sequence_number: d.sequence_number.clone(),
        table,
        operation,
        raw: d.data.clone(),
        class,
        message,
    }
}

/// Decodes and plans `todo` (indices into `deliveries`): undecodable
/// records, records after a DDL that breaks the mapping, and records that
/// cannot be planned are quarantined; records that need no write are
/// skipped.
pub fn prepare_batch(mapping: &Mapping, deliveries: &[Delivery], todo: &[usize]) -> Prepared {
    let mut p = Prepared {
        outcomes: todo.iter().map(|i| (*i, Outcome::Applied)).collect(),
        ..Default::default()
    };
    decode_all(&mut p, mapping, deliveries, todo);
    drop_broken(&mut p, mapping, deliveries, todo);
    p.plan = plan_batch(mapping, &p.records);
    for e in &p.plan.errors {
        let slot = p.origin[e.record];
        let d = &deliveries[todo[slot]];
        let op = Some(p.records[e.record].operation_name().to_owned());
        tracing::warn!(shard_id = %d.shard_id, sequence_number = %d.sequence_number, table = %e.table, error = %e, "unplannable record quarantined");
        p.quarantine.push(quarantine_of(
            d,
            Some(e.table.clone()),
            op,
            QuarantineClass::Plan,
            e.reason.clone(),
        ));
        p.outcomes[slot].1 = Outcome::Quarantined;
    }
    for i in &p.plan.no_write {
        p.outcomes[p.origin[*i]].1 = Outcome::Skipped;
    }
    for i in &p.plan.controls {
        if let Payload::Control(c) = &p.records[*i].payload {
            let table = c.table.as_ref().map(|t| t.to_string()).unwrap_or_default();
            tracing::info!(table = %table, operation = %c.operation, "control record");
        }
    }
    p
}

fn decode_all(p: &mut Prepared, mapping: &Mapping, deliveries: &[Delivery], todo: &[usize]) {
    let options = mapping.decode_options();
    // Room for every record at once: grown by doubling, the vector of a
    // 10,000-record batch was moved to new memory twelve times (4 to
    // 16,384 records).
    p.records.reserve_exact(todo.len());
    p.origin.reserve_exact(todo.len());
    for (slot, i) in todo.iter().enumerate() {
        let d = &deliveries[*i];
        match decode_record(d, &options) {
            Ok(r) => {
                p.records.push(r);
                p.origin.push(slot);
            }
            Err(e) => {
                tracing::warn!(shard_id = %d.shard_id, sequence_number = %d.sequence_number, error = %e, "undecodable record quarantined");
                let table = e.table.as_ref().map(|t| t.to_string());
                p.quarantine.push(quarantine_of(
                    d,
                    table,
                    None,
                    QuarantineClass::Decode,
                    e.to_string(),
                ));
                p.outcomes[slot].1 = Outcome::Quarantined;
            }
        }
    }
}

/// A DDL that breaks the mapping: quarantines it and every later record of
/// its table in the batch, with a reason that says so.
fn drop_broken(p: &mut Prepared, mapping: &Mapping, deliveries: &[Delivery], todo: &[usize]) {
    let mut broken: BTreeMap<TableName, String> = BTreeMap::new();
    let mut keep = Vec::with_capacity(p.records.len());
    for (k, r) in p.records.iter().enumerate() {
        let d = &deliveries[todo[p.origin[k]]];
        let table = r.table().cloned();
        let reason = match &r.payload {
            Payload::Control(c) => mapping.broken_by(c).map(|why| {
                if let Some(t) = &table {
                    broken.insert(
                        t.clone(),
                        format!("{why} (sequence number {})", d.sequence_number),
                    );
                }
                format!("{why}: fix the mapping, then redrive the quarantined records")
            }),
            Payload::Data(_) => table.as_ref().and_then(|t| broken.get(t)).map(|why| {
                format!("after a DDL that breaks the mapping: {why}; fix the mapping, then redrive")
            }),
        };
        match reason {
            Some(message) => {
                tracing::warn!(shard_id = %d.shard_id, sequence_number = %d.sequence_number, error = %message, "record quarantined after a breaking DDL");
                p.quarantine.push(quarantine_of(
                    d,
                    table.map(|t| t.to_string()),
                    Some(r.operation_name().to_owned()),
                    QuarantineClass::Ddl,
                    message,
                ));
                p.outcomes[p.origin[k]].1 = Outcome::Quarantined;
            }
            None => keep.push(k),
        }
    }
    if keep.len() < p.records.len() {
        let records = std::mem::take(&mut p.records);
        let mut records: Vec<Option<DmsRecord>> = records.into_iter().map(Some).collect();
        let origin = std::mem::take(&mut p.origin);
        for k in keep {
            if let Some(r) = records[k].take() {
                p.records.push(r);
                p.origin.push(origin[k]);
            }
        }
    }
}

impl Prepared {
    /// Whether any planned write needs the source (a lookup or a rebuild).
    pub fn needs_source(&self) -> bool {
        self.plan.targets.iter().any(|tp| {
            !tp.lookups.is_empty()
                || !tp.nested.is_empty()
                || tp.ops.values().any(|o| matches!(o.action, Action::Rebuild))
        })
    }

    /// The version of a re-queried row: at least as new as every record
    /// of the attempt (all committed before the snapshot), so the newest of
    /// their versions, as a read ([`crate::version`]).
    pub fn read_version(&self, deliveries: &[Delivery], todo: &[usize]) -> Option<Version> {
        Version::newest(
            self.records
                .iter()
                .zip(&self.origin)
                .map(|(r, slot)| (r, &deliveries[todo[*slot]].sequence_number)),
            Kind::Read,
        )
    }
}

/// What building the rows of one attempt reads and records.
pub struct Build<'a> {
    /// The deliveries of the batch.
    pub deliveries: &'a [Delivery],
    /// The attempt's indices into `deliveries`.
    pub todo: &'a [usize],
    /// The decoded records ([`Prepared::records`]).
    pub records: &'a [DmsRecord],
    /// [`Prepared::origin`].
    pub origin: &'a [usize],
    /// The version of re-queried rows ([`Prepared::read_version`]).
    pub read_version: Option<&'a Version>,
    /// The transforms the mapping names.
    pub transforms: &'a Transforms,
    /// [`Prepared::outcomes`]: a record whose row cannot be built is quarantined.
    pub outcomes: &'a mut Vec<(usize, Outcome)>,
    /// [`Prepared::quarantine`].
    pub quarantine: &'a mut Vec<Quarantine>,
}

/// A target's root columns that find its joined and child rows (for
/// nested children, the parent's columns).
#[derive(Debug)]
pub struct RelatedOn {
    joins: Vec<Vec<String>>,
    children: Vec<Vec<String>>,
    /// Per children, whether they are nested in other children.
    nested: Vec<bool>,
}

impl RelatedOn {
    /// The `on` columns of `target`'s joins and children, on the root side.
    pub fn of(target: &TargetTable) -> Self {
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
            nested: target.children.iter().map(|c| c.parent.is_some()).collect(),
        }
    }
}

/// The fetched rows of nested children, found from their parent rows.
#[derive(Debug)]
struct FetchedNested<'a> {
    on: &'a RelatedOn,
    fetched: &'a FetchedRows,
}

impl crate::mapping::NestedRows for FetchedNested<'_> {
    fn rows(&self, index: usize, parent: &Row) -> Vec<&Row> {
        self.on
            .children
            .get(index)
            .and_then(|cols| row_key(parent, cols))
            .and_then(|k| self.fetched.children.get(index)?.get(&k))
            .map(|rows| rows.iter().collect())
            .unwrap_or_default()
    }
}

/// A built row and the version it carries (when the target has one).
type BuiltRow = (Vec<Value>, Option<Version>);

/// Builds the row of one planned write (from its image, or from the
/// re-queried rows in `fetched`) into `w`: an upsert, a delete, or the
/// quarantine of the record that decided it when the row cannot be built.
pub fn build_op(
    build: &mut Build<'_>,
    target: &TargetTable,
    on: &RelatedOn,
    key: &KeyTuple,
    op: &PlannedOp,
    fetched: &FetchedRows,
    w: &mut TableWrites,
) -> Result<(), KeyError> {
    let record = &build.records[op.last_record];
    let sequence_number =
        &build.deliveries[build.todo[build.origin[op.last_record]]].sequence_number;
    // The version a row carries (only computed when the target has one).
    let read_version = build.read_version;
    let version = |kind: Kind| -> Result<Option<Version>, String> {
        if target.version.is_none() {
            return Ok(None);
        }
        match kind {
            Kind::Image => Version::of_record(record, sequence_number, Kind::Image),
            Kind::Read => read_version.cloned().ok_or(VersionError::Missing),
        }
        .map(Some)
        .map_err(|e| e.to_string())
    };
    let built: Result<Option<BuiltRow>, String> = match &op.action {
        Action::Upsert | Action::Tombstone(_) => match op.image(build.records) {
            Some(image) => build_row(target, image, &Related::default(), build.transforms)
                .map_err(|e| e.to_string())
                .and_then(|v| Ok(Some((v, version(Kind::Image)?)))),
            None => Err(format!(
                "the record has no {} image to build the row from",
                op.action.image().map_or("", Image::name)
            )),
        },
        Action::Rebuild => match fetched.roots.get(key) {
            Some(root) if passes_filter(target, root) => {
                rebuild_row(target, on, root, fetched, build.transforms)
                    .and_then(|v| Ok(Some((v, version(Kind::Read)?))))
            }
            _ => Ok(None),
        },
        Action::Delete => Ok(None),
    };
    match built {
        Ok(Some((mut values, version))) => {
            if let (Action::Tombstone(_), DeletePolicy::Soft { column, value }) =
                (&op.action, &target.delete)
            {
                if let Some(p) = target.columns.iter().position(|c| &c.name == column) {
                    values[p] = toml_scalar(value).unwrap_or(Value::Null);
                }
            }
            if let Some(version) = version {
                values.push(Value::Text(version.as_str().to_owned()));
            }
            w.upserts.push(values);
        }
        Ok(None) => {
            let k = target_key(target, &key.values())?;
            // A delete of a versioned row leaves a tombstone, so an older
            // upsert (another shard's rebuild that read before the delete,
            // a redrive) cannot bring it back; a soft delete's mark is
            // guarded by the version and stamps it.
            let kind = match op.action {
                Action::Delete => Kind::Image,
                _ => Kind::Read,
            };
            match version(kind) {
                Ok(Some(v)) => {
                    if matches!(target.delete, DeletePolicy::Hard) {
                        w.deletes.push(k.clone());
                    }
                    w.tombstones.push((k, v.as_str().to_owned()));
                }
                _ => w.deletes.push(k),
            }
        }
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
                QuarantineClass::Evaluate,
                format!("target {}: {e}", target.table),
            ));
            build.outcomes[slot].1 = Outcome::Quarantined;
        }
    }
    Ok(())
}

/// A root row with its joined and child rows, built into a target row.
fn rebuild_row(
    target: &TargetTable,
    on: &RelatedOn,
    root: &Row,
    fetched: &FetchedRows,
    transforms: &Transforms,
) -> Result<Vec<Value>, String> {
    let joins: Vec<Option<&Row>> = on
        .joins
        .iter()
        .zip(&fetched.joins)
        .map(|(on, by)| row_key(root, on).and_then(|k| by.get(&k)))
        .collect();
    let children: Vec<Vec<&Row>> = on
        .children
        .iter()
        .zip(&on.nested)
        .zip(&fetched.children)
        .map(|((cols, nested), by)| {
            if *nested {
                return Vec::new();
            }
            row_key(root, cols)
                .and_then(|k| by.get(&k))
                .map(|rows| rows.iter().collect())
                .unwrap_or_default()
        })
        .collect();
    let nested = FetchedNested { on, fetched };
    build_row(
        target,
        root,
        &Related {
            joins: &joins,
            children: &children,
            nested: Some(&nested),
        },
        transforms,
    )
    .map_err(|e| e.to_string())
}

/// The writes of a batch as far as they can be known without a database:
/// rows built from images, deletes, and the root keys to rebuild from a
/// re-query (per target, in mapping order).
#[derive(Debug, Default)]
pub struct DryWrites {
    /// The prepared batch (records, plan, quarantined records; building
    /// rows from images may quarantine more).
    pub prepared: Prepared,
    /// Per target with anything planned: the rows from images and the deletes.
    pub writes: Vec<TableWrites>,
    /// Per target: root keys to re-query and rebuild (lookups not resolved).
    pub rebuild: Vec<(usize, Vec<KeyTuple>)>,
}

/// Runs the prepare pass over every delivery and builds the rows that come
/// from images, exactly as the engine does before it reads the source.
pub fn dry_writes(
    mapping: &Mapping,
    transforms: &Transforms,
    deliveries: &[Delivery],
) -> DryWrites {
    let todo: Vec<usize> = (0..deliveries.len()).collect();
    let mut prepared = prepare_batch(mapping, deliveries, &todo);
    let read_version = prepared.read_version(deliveries, &todo);
    let plan = std::mem::take(&mut prepared.plan);
    let mut writes = Vec::new();
    let mut rebuild = Vec::new();
    let mut errors = Vec::new();
    {
        let mut build = Build {
            deliveries,
            todo: &todo,
            records: &prepared.records,
            origin: &prepared.origin,
            read_version: read_version.as_ref(),
            transforms,
            outcomes: &mut prepared.outcomes,
            quarantine: &mut prepared.quarantine,
        };
        let none = FetchedRows::default();
        for tp in &plan.targets {
            let target = &mapping.targets[tp.target];
            let on = RelatedOn::of(target);
            let mut w = TableWrites {
                target: tp.target,
                ..Default::default()
            };
            let mut keys = Vec::new();
            for (key, op) in &tp.ops {
                match op.action {
                    Action::Rebuild => keys.push(key.clone()),
                    _ => {
                        if let Err(e) = build_op(&mut build, target, &on, key, op, &none, &mut w) {
                            errors.push((op.last_record, e));
                        }
                    }
                }
            }
            if !w.is_empty() {
                writes.push(w);
            }
            if !keys.is_empty() {
                rebuild.push((tp.target, keys));
            }
        }
    }
    prepared.plan = plan;
    // A planned write without a target key fails the attempt in the engine
    // (the record is then isolated and quarantined): the same here.
    for (record, e) in errors {
        let slot = prepared.origin[record];
        let d = &deliveries[todo[slot]];
        let r = &prepared.records[record];
        prepared.quarantine.push(quarantine_of(
            d,
            r.table().map(|t| t.to_string()),
            Some(r.operation_name().to_owned()),
            QuarantineClass::Write,
            e.to_string(),
        ));
        prepared.outcomes[slot].1 = Outcome::Quarantined;
    }
    DryWrites {
        prepared,
        writes,
        rebuild,
    }
}
