//! The source side of the engine: re-querying what one change does not
//! carry, and the contract of a source adapter.
//!
//! Contract of every [`Source`]: every read of one batch happens in one
//! read-only snapshot ([`Source::snapshot`]), so a target row is built from
//! one point in time, and each lookup is one query per chunk of keys, never
//! one query per record. A returned row is paired with the key asked for it
//! by [`matched`] (exactly, then ignoring case and trailing spaces, as the
//! source may compare); a row that matches none is [`UnmatchedKey`], never
//! dropped or indexed blindly.

use std::collections::BTreeMap;
use std::future::Future;

use crate::dms::{Row, TableName};
use crate::fault::Classify;
use crate::mapping::{Mapping, TargetTable};
use crate::plan::{KeyMatcher, KeyPart, KeyTuple};

/// A source database: opens one consistent, read-only snapshot per batch.
pub trait Source: Send + Sync {
    /// The adapter's error.
    type Error: Classify;
    /// One batch's snapshot.
    type Snapshot: SourceSnapshot<Error = Self::Error>;

    /// Starts a consistent, read-only snapshot; `chunk_size` bounds the keys
    /// per query; `mapping` says what the tables hold (e.g. JSON columns).
    fn snapshot(
        &self,
        mapping: &Mapping,
        chunk_size: usize,
    ) -> impl Future<Output = Result<Self::Snapshot, Self::Error>> + Send;
}

/// One batch's consistent, read-only view of the source. Dropping it
/// without [`SourceSnapshot::finish`] ends it.
pub trait SourceSnapshot: Send {
    /// The adapter's error.
    type Error: Classify;

    /// Root keys of `target` whose `columns` equal one of `tuples` (a
    /// reverse lookup): `(root key, the columns' values)` per row found.
    fn reverse_lookup(
        &mut self,
        target: &TargetTable,
        columns: &[String],
        tuples: &[KeyTuple],
    ) -> impl Future<Output = Result<Vec<(KeyTuple, KeyTuple)>, Self::Error>> + Send;

    /// Rows of `table` whose `match_columns` equal one of `tuples`: per row
    /// found, `(the match columns' values, the select columns' values)`
    /// (the parents of nested children's rows, level by level).
    fn lookup_in(
        &mut self,
        table: &TableName,
        select: &[String],
        match_columns: &[String],
        tuples: &[KeyTuple],
    ) -> impl Future<Output = Result<Vec<(KeyTuple, KeyTuple)>, Self::Error>> + Send;

    /// Reads the root rows for `keys` (LOB columns included) and their
    /// joined and child rows (nested children after their parents).
    fn fetch(
        &mut self,
        target: &TargetTable,
        keys: &[KeyTuple],
    ) -> impl Future<Output = Result<FetchedRows, Self::Error>> + Send;

    /// Ends the snapshot.
    fn finish(self) -> impl Future<Output = Result<SnapshotStats, Self::Error>> + Send;
}

/// Rows read for one target's keys.
#[derive(Debug, Default)]
pub struct FetchedRows {
    /// Root rows by root key.
    pub roots: BTreeMap<KeyTuple, Row>,
    /// Per join: joined rows by their `on` values (in `on` order).
    pub joins: Vec<BTreeMap<KeyTuple, Row>>,
    /// Per children lookup: child rows by their `on` values.
    pub children: Vec<BTreeMap<KeyTuple, Vec<Row>>>,
}

/// Statistics of a snapshot's reads (reported by [`SourceSnapshot::finish`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotStats {
    /// SELECT statements sent.
    pub select_count: usize,
    /// Rows read.
    pub row_count: usize,
}

/// The source returned a row whose key equals none of the keys asked, not
/// even ignoring case and trailing spaces (a collation or a type comparison
/// the matching does not know): the rows it would build are not trusted.
/// The records whose keys were asked are quarantined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("source table {table}: a returned row's {columns} matches none of the {asked} values asked (compared exactly, and ignoring case and trailing spaces); check the collation and type of {columns} against the column it is joined to")]
pub struct UnmatchedKey {
    /// The table read.
    pub table: String,
    /// The key columns, comma-separated.
    pub columns: String,
    /// How many tuples were asked.
    pub asked: usize,
}

/// Pairs each returned row with the asked tuple(s) its `columns` match (a
/// row matching several loosely is listed for each); a row that matches
/// none is an error, never silently dropped or indexed.
pub fn matched(
    table: &TableName,
    columns: &[String],
    matcher: &KeyMatcher,
    asked: usize,
    rows: Vec<Row>,
) -> Result<Vec<(KeyTuple, Row)>, UnmatchedKey> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let found = row_key(&r, columns);
        let targets = found.as_ref().map(|k| matcher.matches(k)).unwrap_or(&[]);
        match targets {
            [] => {
                return Err(UnmatchedKey {
                    table: table.to_string(),
                    columns: columns.join(", "),
                    asked,
                })
            }
            [one] => out.push((one.clone(), r)),
            many => {
                for t in many {
                    out.push((t.clone(), r.clone()));
                }
            }
        }
    }
    Ok(out)
}

/// The key tuple of `columns` in a row, if all are present and usable.
pub fn row_key(row: &Row, columns: &[String]) -> Option<KeyTuple> {
    columns
        .iter()
        .map(|c| row.get(c).and_then(KeyPart::from_value))
        .collect::<Option<Vec<_>>>()
        .map(KeyTuple)
}
