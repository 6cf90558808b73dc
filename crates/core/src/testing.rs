//! In-memory adapters for tests of the engine (feature `test-utils`): a
//! [`MemorySource`] holding source rows and a [`MemoryTarget`] holding
//! target rows, checkpoints, quarantined records and tombstones, with the
//! same transaction semantics as a database target (nothing is visible
//! until [`TargetTransaction::finish`]; a dropped transaction leaves no
//! trace) and failures injected by stage and fault.
//!
//! They exercise the engine's failure paths (retry, bisection, quarantine,
//! checkpoint skip, version guard) without a database; the real-server
//! tests of each adapter crate stay the reference.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::dms::{Row, TableName, Value};
use crate::fault::{Classify, Fault};
use crate::mapping::{DeletePolicy, Mapping, TargetTable};
use crate::plan::{KeyMatcher, KeyTuple};
use crate::position::{SequenceNumber, ShardId};
use crate::source::{
    fetch_rows, lookup_in_rows, reverse_lookup_rows, row_key, FetchedRows, SelectIn, SnapshotStats,
    Source, SourceSnapshot, UnmatchedKey,
};
use crate::target::{tombstone_key, Quarantine, TableWrites, Target, TargetTransaction};

/// Where an injected failure strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Opening a source snapshot.
    Snapshot,
    /// A source read (fetch or reverse lookup).
    Read,
    /// Reading a checkpoint.
    Checkpoint,
    /// Beginning a target transaction.
    Begin,
    /// Writing a table's rows.
    Write,
    /// Storing quarantined records, the checkpoint, and committing.
    Finish,
}

/// An error of the in-memory adapters, with the fault it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{stage:?}: {message}")]
pub struct MemoryError {
    /// Where it happened.
    pub stage: Stage,
    /// Whose fault it is.
    pub fault: Fault,
    /// What happened.
    pub message: String,
}

impl Classify for MemoryError {
    fn fault(&self) -> Fault {
        self.fault
    }
}

impl From<UnmatchedKey> for MemoryError {
    fn from(e: UnmatchedKey) -> Self {
        MemoryError {
            stage: Stage::Read,
            fault: Fault::Record,
            message: e.to_string(),
        }
    }
}

/// Failures to inject: each is used once, at the next operation of its
/// stage, or after that many operations of its stage went through.
#[derive(Debug, Default, Clone)]
pub struct Failures(Arc<Mutex<VecDeque<(Stage, usize, Fault)>>>);

impl Failures {
    /// Fails the next operation of `stage` with `fault`.
    pub fn push(&self, stage: Stage, fault: Fault) {
        self.push_after(stage, 0, fault);
    }

    /// Lets `ok` operations of `stage` through, then fails the next one
    /// with `fault` (a failure in the middle of a batch).
    pub fn push_after(&self, stage: Stage, ok: usize, fault: Fault) {
        lock(&self.0).push_back((stage, ok, fault));
    }

    fn take(&self, stage: Stage) -> Result<(), MemoryError> {
        let mut queue = lock(&self.0);
        match queue.iter().position(|(s, _, _)| *s == stage) {
            Some(i) => {
                if let Some((_, ok, _)) = queue.get_mut(i).filter(|(_, ok, _)| *ok > 0) {
                    *ok -= 1;
                    return Ok(());
                }
                let fault = queue.remove(i).map_or(Fault::Record, |(_, _, f)| f);
                Err(MemoryError {
                    stage,
                    fault,
                    message: format!("injected {fault} failure"),
                })
            }
            None => Ok(()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Source rows in memory, by table. A snapshot is a copy: later changes
/// are not seen by it, as in a consistent read.
#[derive(Debug, Default, Clone)]
pub struct MemorySource {
    tables: Arc<Mutex<BTreeMap<TableName, Vec<Row>>>>,
    /// Failures to inject.
    pub failures: Failures,
    reads: Arc<Mutex<Vec<(TableName, usize)>>>,
}

impl MemorySource {
    /// Replaces (by `key` columns) or adds a row of `table`.
    pub fn upsert(&self, table: &TableName, key: &[&str], row: Row) {
        let key: Vec<String> = key.iter().map(|k| k.to_string()).collect();
        let mut tables = lock(&self.tables);
        let rows = tables.entry(table.clone()).or_default();
        let k = row_key(&row, &key);
        rows.retain(|r| k.is_none() || row_key(r, &key) != k);
        rows.push(row);
    }

    /// Deletes the rows of `table` whose `key` columns equal `values`.
    pub fn delete(&self, table: &TableName, key: &[&str], values: &KeyTuple) {
        let key: Vec<String> = key.iter().map(|k| k.to_string()).collect();
        if let Some(rows) = lock(&self.tables).get_mut(table) {
            rows.retain(|r| row_key(r, &key).as_ref() != Some(values));
        }
    }

    /// Every read so far: (table, keys asked).
    pub fn reads(&self) -> Vec<(TableName, usize)> {
        lock(&self.reads).clone()
    }
}

/// A copy of a [`MemorySource`]'s rows.
pub struct MemorySnapshot {
    tables: BTreeMap<TableName, Vec<Row>>,
    failures: Failures,
    reads: Arc<Mutex<Vec<(TableName, usize)>>>,
    stats: SnapshotStats,
}

impl Source for MemorySource {
    type Error = MemoryError;
    type Snapshot = MemorySnapshot;

    async fn snapshot(&self, _: &Mapping, _: usize) -> Result<MemorySnapshot, MemoryError> {
        self.failures.take(Stage::Snapshot)?;
        Ok(MemorySnapshot {
            tables: lock(&self.tables).clone(),
            failures: self.failures.clone(),
            reads: self.reads.clone(),
            stats: SnapshotStats::default(),
        })
    }
}

impl SelectIn for MemorySnapshot {
    type Error = MemoryError;

    /// The rows of `table` whose `key_columns` match one of `tuples` (as a
    /// database would answer `IN (...)`), every column of them.
    async fn select_in(
        &mut self,
        table: &TableName,
        _columns: &[String],
        key_columns: &[String],
        tuples: &[KeyTuple],
    ) -> Result<Vec<Row>, MemoryError> {
        self.failures.take(Stage::Read)?;
        lock(&self.reads).push((table.clone(), tuples.len()));
        self.stats.select_count += 1;
        let matcher = KeyMatcher::new(tuples);
        let rows: Vec<Row> = self
            .tables
            .get(table)
            .map(|rows| {
                rows.iter()
                    .filter(|r| {
                        row_key(r, key_columns).is_some_and(|k| !matcher.matches(&k).is_empty())
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        self.stats.row_count += rows.len();
        Ok(rows)
    }
}

impl SourceSnapshot for MemorySnapshot {
    type Error = MemoryError;

    async fn reverse_lookup(
        &mut self,
        target: &TargetTable,
        columns: &[String],
        tuples: &[KeyTuple],
    ) -> Result<Vec<(KeyTuple, KeyTuple)>, MemoryError> {
        reverse_lookup_rows(self, target, columns, tuples).await
    }

    async fn lookup_in(
        &mut self,
        table: &TableName,
        select: &[String],
        match_columns: &[String],
        tuples: &[KeyTuple],
    ) -> Result<Vec<(KeyTuple, KeyTuple)>, MemoryError> {
        lookup_in_rows(self, table, select, match_columns, tuples).await
    }

    async fn fetch(
        &mut self,
        target: &TargetTable,
        keys: &[KeyTuple],
    ) -> Result<FetchedRows, MemoryError> {
        fetch_rows(self, target, keys).await
    }

    async fn finish(self) -> Result<SnapshotStats, MemoryError> {
        Ok(self.stats)
    }
}

/// A committed row: column names and values, in the target's column order.
pub type MemoryRow = Vec<(String, Value)>;

/// What a [`MemoryTarget`] holds.
#[derive(Debug, Default, Clone)]
pub struct MemoryState {
    /// Rows per target table, by the canonical text of their key
    /// ([`tombstone_key`]): column names and values.
    pub tables: BTreeMap<String, BTreeMap<Vec<u8>, MemoryRow>>,
    /// Checkpoints per shard.
    pub checkpoints: BTreeMap<ShardId, SequenceNumber>,
    /// Quarantined records, by (shard, sequence number); a record
    /// quarantined again replaces its entry.
    pub quarantine: BTreeMap<(ShardId, SequenceNumber), Quarantine>,
    /// Versions of hard-deleted rows, per table and key.
    pub tombstones: BTreeMap<(String, Vec<u8>), String>,
    /// Committed transactions.
    pub commits: usize,
    /// Every committed table write, in order: (target table, writes).
    pub log: Vec<(String, TableWrites)>,
}

/// A target in memory. Rows holding a value equal to [`MemoryTarget::reject`]
/// are refused as the record's fault (like a column rejecting a value).
#[derive(Debug, Default, Clone)]
pub struct MemoryTarget {
    state: Arc<Mutex<MemoryState>>,
    /// Failures to inject.
    pub failures: Failures,
    /// A value the target refuses in any column.
    pub reject: Option<Value>,
}

impl MemoryTarget {
    /// A copy of what is committed.
    pub fn state(&self) -> MemoryState {
        lock(&self.state).clone()
    }

    /// The committed rows of `table`, each as `column = value` pairs.
    pub fn rows(&self, table: &str) -> Vec<MemoryRow> {
        lock(&self.state)
            .tables
            .get(table)
            .map(|rows| rows.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// An open transaction of a [`MemoryTarget`]: the writes wait here until
/// [`TargetTransaction::finish`].
pub struct MemoryTransaction {
    target: MemoryTarget,
    writes: Vec<(TargetTable, TableWrites)>,
}

impl Target for MemoryTarget {
    type Error = MemoryError;
    type Transaction = MemoryTransaction;

    async fn prepare(&self, _: &Mapping) -> Result<(), MemoryError> {
        Ok(())
    }

    async fn checkpoint(&self, shard: &ShardId) -> Result<Option<SequenceNumber>, MemoryError> {
        self.failures.take(Stage::Checkpoint)?;
        Ok(lock(&self.state).checkpoints.get(shard).cloned())
    }

    async fn begin(&self) -> Result<MemoryTransaction, MemoryError> {
        self.failures.take(Stage::Begin)?;
        Ok(MemoryTransaction {
            target: self.clone(),
            writes: Vec::new(),
        })
    }
}

impl TargetTransaction for MemoryTransaction {
    type Error = MemoryError;

    async fn write(&mut self, table: &TargetTable, writes: TableWrites) -> Result<(), MemoryError> {
        self.target.failures.take(Stage::Write)?;
        if let Some(bad) = &self.target.reject {
            if writes.upserts.iter().flatten().any(|v| v == bad) {
                return Err(MemoryError {
                    stage: Stage::Write,
                    fault: Fault::Record,
                    message: format!("table {}: a column rejects a value", table.table),
                });
            }
        }
        self.writes.push((table.clone(), writes));
        Ok(())
    }

    async fn finish(
        self,
        quarantine: &[Quarantine],
        checkpoint: Option<(&ShardId, &SequenceNumber)>,
    ) -> Result<(), MemoryError> {
        self.target.failures.take(Stage::Finish)?;
        let mut state = lock(&self.target.state);
        for (table, writes) in &self.writes {
            apply(&mut state, table, writes);
            state.log.push((table.table.clone(), writes.clone()));
        }
        for q in quarantine {
            state
                .quarantine
                .insert((q.shard_id.clone(), q.sequence_number.clone()), q.clone());
        }
        if let Some((shard, seq)) = checkpoint {
            let entry = state
                .checkpoints
                .entry(shard.clone())
                .or_insert(seq.clone());
            if *entry < *seq {
                *entry = seq.clone();
            }
        }
        state.commits += 1;
        Ok(())
    }
}

/// Applies one table's writes as a database target does: upserts guarded
/// by the version column and by tombstones, hard or soft deletes.
fn apply(state: &mut MemoryState, table: &TargetTable, writes: &TableWrites) {
    let names: Vec<String> = table.column_names().iter().map(|n| n.to_string()).collect();
    let key_of = |row: &[Value]| -> Vec<u8> {
        let key: Vec<Value> = table
            .key
            .iter()
            .filter_map(|k| names.iter().position(|n| n == k))
            .filter_map(|p| row.get(p).cloned())
            .collect();
        tombstone_key(&key)
    };
    let version_of = |row: &[(String, Value)]| -> Option<String> {
        let column = table.version.as_ref()?;
        row.iter()
            .find(|(n, _)| n == column)
            .and_then(|(_, v)| match v {
                Value::Text(t) => Some(t.clone()),
                _ => None,
            })
    };
    for (key, version) in &writes.tombstones {
        let k = (table.table.clone(), tombstone_key(key));
        let old = state.tombstones.get(&k).cloned().unwrap_or_default();
        if *version > old {
            state.tombstones.insert(k, version.clone());
        }
        if let DeletePolicy::Soft { column, value } = &table.delete {
            let rows = state.tables.entry(table.table.clone()).or_default();
            if let Some(row) = rows.get_mut(&tombstone_key(key)) {
                if version_of(row).is_none_or(|v| v <= *version) {
                    for (n, v) in row.iter_mut() {
                        if n == column {
                            *v = crate::mapping::toml_scalar(value).unwrap_or(Value::Null);
                        }
                        if Some(&*n) == table.version.as_ref() {
                            *v = Value::Text(version.clone());
                        }
                    }
                }
            }
        }
    }
    for row in &writes.upserts {
        let key = key_of(row);
        let values: Vec<(String, Value)> = names.iter().cloned().zip(row.iter().cloned()).collect();
        let new = version_of(&values);
        if let (Some(new), Some(tomb)) = (
            &new,
            state.tombstones.get(&(table.table.clone(), key.clone())),
        ) {
            if new < tomb {
                continue;
            }
        }
        let rows = state.tables.entry(table.table.clone()).or_default();
        let keep_old = match (rows.get(&key).and_then(|old| version_of(old)), &new) {
            (Some(old), Some(new)) => *new < old,
            _ => false,
        };
        if !keep_old {
            rows.insert(key, values);
        }
    }
    let rows = state.tables.entry(table.table.clone()).or_default();
    for key in &writes.deletes {
        match &table.delete {
            DeletePolicy::Hard => {
                rows.remove(&tombstone_key(key));
            }
            DeletePolicy::Soft { column, value } => {
                if let Some(row) = rows.get_mut(&tombstone_key(key)) {
                    for (n, v) in row.iter_mut() {
                        if n == column {
                            *v = crate::mapping::toml_scalar(value).unwrap_or(Value::Null);
                        }
                    }
                }
            }
        }
    }
}
