//! Planning a batch: decoded records of one shard, in order, become per
//! target table the keys to upsert, rebuild (re-query) or delete, coalesced
//! so that each key is written once and each source lookup is one batched
//! query.
//!
//! Rules:
//! - many changes to one target key in a batch coalesce into one write (the
//!   last change decides what it is);
//! - an update whose before and after images agree on every column the
//!   mapping reads produces no write;
//! - a root delete deletes the target row; a change to a joined or child row
//!   rebuilds its parents, found from both the before and the after image;
//! - control records and unmapped tables produce no write and are counted;
//! - every write keeps the index of the earliest record it depends on, so a
//!   failure is reported at the right place.

mod key;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::dms::{DataChange, DmsRecord, Operation, Payload, Row, TableName, Value};
use crate::mapping::{passes_filter, DeletePolicy, Mapping, SourceTable, TargetTable, Touch};

pub use key::{canonical_int, KeyMatcher, KeyPart, KeyTuple};

/// What to do with one target row.
///
/// The rows the plan writes from images are not copied into it: an action
/// names the image, of the record that decided it
/// ([`PlannedOp::last_record`]), and [`PlannedOp::image`] finds it among the
/// planned records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Build the row from the deciding record's after image (complete, not
    /// lossy) and upsert it.
    Upsert,
    /// Re-query the root row and its related rows, then upsert (or delete if
    /// the root row is gone or fails the filter).
    Rebuild,
    /// Delete the row (per the target's delete policy; a soft delete marks an
    /// existing row).
    Delete,
    /// Soft delete with a complete image: upsert the row built from this image
    /// of the deciding record with the delete column set, so the result does
    /// not depend on whether the row was written before.
    Tombstone(Image),
}

/// One of a data record's two images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Image {
    /// The after image (`data`; for a delete, the deleted row).
    After,
    /// The before image.
    Before,
}

impl Image {
    /// `after` or `before`.
    pub fn name(self) -> &'static str {
        match self {
            Image::After => "after",
            Image::Before => "before",
        }
    }
}

impl Action {
    /// Short name for summaries.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Upsert => "upsert",
            Action::Rebuild => "rebuild",
            Action::Delete => "delete",
            Action::Tombstone(_) => "tombstone",
        }
    }

    /// The image the row is built from, if the action builds it from one.
    pub fn image(&self) -> Option<Image> {
        match self {
            Action::Upsert => Some(Image::After),
            Action::Tombstone(image) => Some(*image),
            Action::Rebuild | Action::Delete => None,
        }
    }
}

/// A coalesced write on one target key.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedOp {
    /// What to do.
    pub action: Action,
    /// Index (in the planned slice) of the earliest record this write depends on.
    pub first_record: usize,
    /// Index of the record that decided the action.
    pub last_record: usize,
}

impl PlannedOp {
    /// The row an upsert or a tombstone is built from: the image its action
    /// names, of the record that decided it, in `records` (the records the
    /// plan was made from). `None` for the other actions, and where
    /// `records` is not what was planned.
    pub fn image<'r>(&self, records: &'r [DmsRecord]) -> Option<&'r Row> {
        let image = self.action.image()?;
        match &records.get(self.last_record)?.payload {
            Payload::Data(change) => match image {
                Image::After => Some(&change.after),
                Image::Before => change.before.as_ref(),
            },
            Payload::Control(_) => None,
        }
    }
}

/// Parents to find by a reverse lookup: root rows whose `root_columns` equal
/// one of the tuples. One batched query per chunk of tuples.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Lookup {
    /// Tuples, each with the index of the earliest record that asked for it.
    pub tuples: BTreeMap<KeyTuple, usize>,
}

/// The plan for one target table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TargetPlan {
    /// Index of the target in the mapping.
    pub target: usize,
    /// Writes by root key (values in the target's `root_key` order).
    pub ops: BTreeMap<KeyTuple, PlannedOp>,
    /// Reverse lookups by root column list.
    pub lookups: BTreeMap<Vec<String>, Lookup>,
    /// Parents of nested children's rows to find first, level by level:
    /// rows of the children at the index whose columns equal the tuples.
    pub nested: BTreeMap<(usize, Vec<String>), Lookup>,
}

impl TargetPlan {
    /// Coalesces an action on a root key.
    pub fn add(&mut self, key: KeyTuple, action: Action, record: usize) {
        match self.ops.entry(key) {
            std::collections::btree_map::Entry::Occupied(mut e) => {
                let op = e.get_mut();
                op.action = action;
                op.first_record = op.first_record.min(record);
                op.last_record = record;
            }
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(PlannedOp {
                    action,
                    first_record: record,
                    last_record: record,
                });
            }
        }
    }

    /// Whether the plan has nothing to do.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
            && self.lookups.values().all(|l| l.tuples.is_empty())
            && self.nested.values().all(|l| l.tuples.is_empty())
    }

    /// The earliest record any part of this plan depends on.
    pub fn first_record(&self) -> Option<usize> {
        self.ops
            .values()
            .map(|o| o.first_record)
            .chain(
                self.lookups
                    .values()
                    .chain(self.nested.values())
                    .flat_map(|l| l.tuples.values().copied()),
            )
            .min()
    }
}

/// A record the planner could not use, and why (permanent: quarantine it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shard {shard_id}, sequence number {sequence_number}, table {table}: {reason}")]
pub struct PlanError {
    /// Index of the record in the planned slice.
    pub record: usize,
    /// Shard.
    pub shard_id: String,
    /// Sequence number.
    pub sequence_number: String,
    /// `schema.table`.
    pub table: String,
    /// What was wrong.
    pub reason: String,
}

/// Counts of what the planner saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanCounts {
    /// Records planned.
    pub records: usize,
    /// Data records of mapped tables.
    pub mapped: usize,
    /// Data records of tables the mapping does not read.
    pub unmapped: usize,
    /// Control records.
    pub control: usize,
    /// Updates skipped because no column the mapping reads changed.
    pub unchanged: usize,
    /// Updates of related rows without a before image holding the columns
    /// that name the parent: a previous parent cannot be found.
    pub without_before_image: usize,
}

/// The plan of a batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchPlan {
    /// One entry per mapping target, in mapping order.
    pub targets: Vec<TargetPlan>,
    /// Records that cannot be planned.
    pub errors: Vec<PlanError>,
    /// Indices of control records.
    pub controls: Vec<usize>,
    /// Indices of records that need no write (control, unmapped, unchanged).
    pub no_write: Vec<usize>,
    /// Counts.
    pub counts: PlanCounts,
}

fn image_key<'a>(
    row: &Row,
    columns: impl ExactSizeIterator<Item = &'a String>,
) -> Result<Option<KeyTuple>, String> {
    let mut parts = Vec::with_capacity(columns.len());
    for c in columns {
        match row.get(c) {
            None => return Err(format!("column `{c}` is not in the image")),
            Some(Value::Null) => return Ok(None),
            Some(v @ Value::Lossy(_)) => {
                return Err(format!(
                    "key column `{c}` is a {} (DMS rounded a large integer): set UseLargeIntegerValue on the endpoint",
                    v.family()
                ))
            }
            Some(v) => match KeyPart::from_value(v) {
                Some(p) => parts.push(p),
                None => return Err(format!("key column `{c}` holds a {}, which cannot identify a row", v.family())),
            },
        }
    }
    Ok(Some(KeyTuple(parts)))
}

/// Where a touch's columns are in the rows of one layout, found once per
/// touch and layout: by the address of the touch's columns and the
/// identity of the rows' names ([`Row::names_id`]; the planned records
/// keep their rows, so no other names take that identity meanwhile), the
/// index of each column, or `None` when one is missing.
#[derive(Default)]
struct Places(Vec<(usize, usize, Option<Vec<u32>>)>);

impl Places {
    /// How many places are kept (a mapping's touches times the layouts of
    /// a batch's tables is far fewer).
    const KEPT: usize = 64;

    /// The indices of `columns` in `row`'s layout.
    fn of(&mut self, columns: &BTreeSet<String>, row: &Row) -> Option<&[u32]> {
        let key = (std::ptr::from_ref(columns) as usize, row.names_id());
        let at = match self.0.iter().position(|(c, n, _)| (*c, *n) == key) {
            Some(at) => at,
            None => {
                let mut from = 0;
                let indices = columns
                    .iter()
                    .map(|c| {
                        let i = row.seek(from, c).ok()?;
                        from = i + 1;
                        u32::try_from(i).ok()
                    })
                    .collect::<Option<Vec<u32>>>();
                if self.0.len() >= Self::KEPT {
                    self.0.clear();
                }
                self.0.push((key.0, key.1, indices));
                self.0.len() - 1
            }
        };
        self.0.get(at)?.2.as_deref()
    }
}

/// Whether an update changed none of `columns` (needs both images to carry
/// them all). Images that share their names ([`Row::same_names`]) compare
/// the values at the columns' places; others are walked: they and
/// `columns` are in name order.
fn unchanged(
    before: Option<&Row>,
    after: &Row,
    columns: &BTreeSet<String>,
    places: &mut Places,
) -> bool {
    let Some(before) = before else { return false };
    if before.same_names(after) {
        return places.of(columns, after).is_some_and(|indices| {
            indices.iter().all(|&i| {
                let i = i as usize;
                before.value_at(i) == after.value_at(i)
            })
        });
    }
    let (mut b, mut a) = (0, 0);
    for c in columns {
        let Ok(ai) = after.seek(a, c) else {
            return false;
        };
        // The images mostly carry the same columns: the before image's is
        // then at the same place.
        let bi = if before.is_at(ai, c) {
            ai
        } else {
            match before.seek(b, c) {
                Ok(bi) => bi,
                Err(_) => return false,
            }
        };
        if before.value_at(bi) != after.value_at(ai) {
            return false;
        }
        (b, a) = (bi + 1, ai + 1);
    }
    true
}

/// Whether the after image alone can build the target row.
fn image_complete(target: &TargetTable, after: &Row) -> bool {
    !target.requery
        && target
            .root_columns
            .iter()
            .all(|c| after.get(c).is_some_and(|v| !v.is_lossy()))
}

/// How a row leaves the target: a tombstone when the target soft-deletes and
/// the image (`row`, the record's `image`) can build the row, else a delete.
fn delete_action(target: &TargetTable, row: &Row, image: Image) -> Action {
    match target.delete {
        DeletePolicy::Soft { .. } if image_complete(target, row) => Action::Tombstone(image),
        _ => Action::Delete,
    }
}

/// A reverse lookup a record asks for: target, the touch's `on` pairs, tuple.
type LookupTouch<'a> = (usize, &'a [(String, String)], KeyTuple);

/// Target, the parent children's index, `on`, this row's `on` values.
type NestedTouch<'a> = (usize, usize, &'a [(String, String)], KeyTuple);

/// How a related (joined or child) table reaches its target's rows.
struct Link<'m> {
    on: &'m [(String, String)],
    direct: Option<&'m [usize]>,
    via: Option<usize>,
    columns: &'m BTreeSet<String>,
}

/// Plans a batch of decoded records (one shard, in order).
pub fn plan_batch(mapping: &Mapping, records: &[DmsRecord]) -> BatchPlan {
    let mut plan = BatchPlan {
        targets: (0..mapping.targets.len())
            .map(|target| TargetPlan {
                target,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    // One set of touches for the whole batch: its vectors are reused.
    let mut touches = RecordTouches::default();
    // The tables met so far: records of one table mostly share its name
    // (`TableName::shared`), so most are found by pointer, not by name.
    let mut met: Vec<(&Arc<TableName>, Option<&SourceTable>)> = Vec::new();
    for (index, record) in records.iter().enumerate() {
        plan.counts.records += 1;
        let change = match &record.payload {
            Payload::Control(_) => {
                plan.counts.control += 1;
                plan.controls.push(index);
                plan.no_write.push(index);
                continue;
            }
            Payload::Data(change) => change,
        };
        let source = match met.iter().find(|(t, _)| Arc::ptr_eq(t, &change.table)) {
            Some((_, source)) => *source,
            None => {
                let source = mapping.source(&change.table);
                if met.len() < 16 {
                    met.push((&change.table, source));
                }
                source
            }
        };
        let Some(source) = source else {
            plan.counts.unmapped += 1;
            plan.no_write.push(index);
            continue;
        };
        plan.counts.mapped += 1;
        match plan_change(mapping, source, change, &mut plan.counts, &mut touches) {
            Ok(()) => plan.add_record(index, &mut touches),
            Err(reason) => plan.errors.push(PlanError {
                record: index,
                shard_id: record.shard_id.to_string(),
                sequence_number: record.sequence_number.to_string(),
                table: change.table.to_string(),
                reason,
            }),
        }
    }
    plan
}

/// What one data record asks of the targets. Every touch of its table is
/// worked out before any is added to the plan, so that a record is either
/// fully planned or an error.
#[derive(Default)]
struct RecordTouches<'m> {
    /// Writes on known root keys: target, key, action.
    actions: Vec<(usize, KeyTuple, Action)>,
    /// Parents to find by a reverse lookup.
    lookups: Vec<LookupTouch<'m>>,
    /// Parent rows of nested children to find: target, parent children
    /// index, `on`, the tuple of this table's `on` columns.
    nested: Vec<NestedTouch<'m>>,
    /// Touches of the record's table.
    touched: usize,
    /// Touches skipped because no column they read changed.
    skipped: usize,
    /// Where the touches' columns are in the batch's layouts (kept from
    /// record to record).
    places: Places,
}

/// Works out every touch of a data record of a mapped table into
/// `touches` (cleared first); the error is the reason the record cannot be
/// planned.
fn plan_change<'m>(
    mapping: &'m Mapping,
    source: &'m SourceTable,
    change: &DataChange,
    counts: &mut PlanCounts,
    touches: &mut RecordTouches<'m>,
) -> Result<(), String> {
    touches.clear();
    for touch in &source.touches {
        match touch {
            Touch::Root { target } => {
                touches.root(*target, &mapping.targets[*target], change)?;
            }
            Touch::Related {
                target,
                on,
                direct,
                columns,
                via,
            } => touches
                .related(
                    *target,
                    Link {
                        on,
                        direct: direct.as_deref(),
                        via: *via,
                        columns,
                    },
                    change,
                    counts,
                )
                .map_err(|e| {
                    format!(
                        "cannot find the parents in target {:?}: {e}",
                        mapping.targets[*target].table
                    )
                })?,
        }
    }
    Ok(())
}

impl<'m> RecordTouches<'m> {
    /// Empties the touches, keeping their vectors' room for the next record.
    fn clear(&mut self) {
        self.actions.clear();
        self.lookups.clear();
        self.nested.clear();
        self.touched = 0;
        self.skipped = 0;
    }

    /// A change to the root row of target `target` (`t`): write its key
    /// (upsert, rebuild or delete), and delete the old key when the update
    /// changed it.
    fn root(&mut self, target: usize, t: &TargetTable, change: &DataChange) -> Result<(), String> {
        let before = change.before.as_ref();
        let after = &change.after;
        self.touched += 1;
        if change.operation == Operation::Update
            && unchanged(before, after, &t.root_columns, &mut self.places)
        {
            self.skipped += 1;
            return Ok(());
        }
        let key = match image_key(after, t.root_key.iter()) {
            Ok(Some(k)) => k,
            Ok(None) => return Err(format!("a key column of target {:?} is NULL", t.table)),
            Err(e) => return Err(format!("target {:?}: {e}", t.table)),
        };
        if let Some(b) = before {
            if let Ok(Some(old)) = image_key(b, t.root_key.iter()) {
                if old != key {
                    self.actions
                        .push((target, old, delete_action(t, b, Image::Before)));
                }
            }
        }
        let action = match change.operation {
            Operation::Delete => delete_action(t, after, Image::After),
            _ if !image_complete(t, after) => Action::Rebuild,
            _ if passes_filter(t, after) => Action::Upsert,
            _ => delete_action(t, after, Image::After),
        };
        self.actions.push((target, key, action));
        Ok(())
    }

    /// A change to a joined or child row of target `target`: rebuild its
    /// parents, found from both images, directly when `on` holds the root
    /// key, else by a reverse lookup. The error is why the after image
    /// cannot find them.
    fn related(
        &mut self,
        target: usize,
        link: Link<'m>,
        change: &DataChange,
        counts: &mut PlanCounts,
    ) -> Result<(), String> {
        let Link {
            on,
            direct,
            via,
            columns,
        } = link;
        let before = change.before.as_ref();
        let after = &change.after;
        let is_update = change.operation == Operation::Update;
        self.touched += 1;
        if is_update && unchanged(before, after, columns, &mut self.places) {
            self.skipped += 1;
            return Ok(());
        }
        // No before image, or one without the link's columns (an empty
        // `{}`, or the key only: a PostgreSQL table without REPLICA
        // IDENTITY FULL, a pk-only filter): the previous parent is unknown.
        if is_update && !before.is_some_and(|b| on.iter().all(|(c, _)| b.get(c).is_some())) {
            counts.without_before_image += 1;
        }
        let images = std::iter::once(after).chain(before);
        for (i, image) in images.enumerate() {
            let tuple = match image_key(image, on.iter().map(|(c, _)| c)) {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(_) if i > 0 => continue, // a partial before image (pk-only filter)
                Err(e) => return Err(e),
            };
            match (via, direct) {
                (Some(parent), _) => self.nested.push((target, parent, on, tuple)),
                (None, Some(positions)) => {
                    let key = KeyTuple(positions.iter().map(|p| tuple.0[*p].clone()).collect());
                    self.actions.push((target, key, Action::Rebuild));
                }
                (None, None) => self.lookups.push((target, on, tuple)),
            }
        }
        Ok(())
    }
}

impl BatchPlan {
    /// Adds the touches of the record at `index`.
    fn add_record(&mut self, index: usize, touches: &mut RecordTouches<'_>) {
        if touches.touched > 0 && touches.skipped == touches.touched {
            self.counts.unchanged += 1;
            self.no_write.push(index);
        }
        for (target, key, action) in touches.actions.drain(..) {
            self.targets[target].add(key, action, index);
        }
        for (target, on, tuple) in touches.lookups.drain(..) {
            self.targets[target].ask(on, tuple, index);
        }
        for (target, parent, on, tuple) in touches.nested.drain(..) {
            self.targets[target].ask_nested(parent, on, tuple, index);
        }
    }
}

impl TargetPlan {
    /// Asks for the parents whose root columns (the right-hand side of `on`)
    /// equal `tuple`, on behalf of record `record`.
    fn ask(&mut self, on: &[(String, String)], tuple: KeyTuple, record: usize) {
        // Keyed by the root columns: found without building the key.
        let root_cols = || on.iter().map(|(_, r)| r);
        if !self.lookups.keys().any(|cols| cols.iter().eq(root_cols())) {
            self.lookups
                .insert(root_cols().cloned().collect(), Default::default());
        }
        if let Some((_, lookup)) = self
            .lookups
            .iter_mut()
            .find(|(cols, _)| cols.iter().eq(root_cols()))
        {
            lookup.tuples.entry(tuple).or_insert(record);
        }
    }
}

impl TargetPlan {
    /// Asks for the rows of children `parent` whose columns (the right-hand
    /// side of `on`) equal `tuple`, on behalf of record `record`: their own
    /// parents are then found the same way, up to the root.
    pub fn ask_nested(
        &mut self,
        parent: usize,
        on: &[(String, String)],
        tuple: KeyTuple,
        record: usize,
    ) {
        let cols: Vec<String> = on.iter().map(|(_, p)| p.clone()).collect();
        let lookup = self.nested.entry((parent, cols)).or_default();
        let slot = lookup.tuples.entry(tuple).or_insert(record);
        *slot = (*slot).min(record);
    }

    /// Asks for the root rows whose `on` root columns equal `tuple` (a
    /// change of a first-level children or joined row), directly when
    /// they are the root key.
    pub fn ask_parents(
        &mut self,
        target: &TargetTable,
        on: &[(String, String)],
        tuple: KeyTuple,
        record: usize,
    ) {
        let direct = target
            .root_key
            .iter()
            .map(|k| on.iter().position(|(_, root_col)| root_col == k))
            .collect::<Option<Vec<usize>>>()
            .filter(|_| on.len() == target.root_key.len());
        match direct {
            Some(positions) => {
                let key = KeyTuple(positions.iter().map(|p| tuple.0[*p].clone()).collect());
                add_lookup_results(self, [(key, record)]);
            }
            None => self.ask(on, tuple, record),
        }
    }
}

/// Adds the root keys a reverse lookup found as rebuilds.
pub fn add_lookup_results(
    plan: &mut TargetPlan,
    found: impl IntoIterator<Item = (KeyTuple, usize)>,
) {
    for (key, record) in found {
        match plan.ops.get_mut(&key) {
            Some(op) => {
                if op.action != Action::Delete {
                    op.action = Action::Rebuild;
                }
                op.first_record = op.first_record.min(record);
            }
            None => {
                plan.ops.insert(
                    key,
                    PlannedOp {
                        action: Action::Rebuild,
                        first_record: record,
                        last_record: record,
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
