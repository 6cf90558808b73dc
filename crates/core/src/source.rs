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
            // The tuple as asked: the row's own key when written the same
            // (the usual case), without a copy.
            [one] => match found {
                Some(key) if key.written_as(one) => out.push((key, r)),
                _ => out.push((one.clone(), r)),
            },
            many => {
                for t in many {
                    out.push((t.clone(), r.clone()));
                }
            }
        }
    }
    Ok(out)
}

/// The tuples in order, each once: the last of equal ones, as a set
/// collected from them keeps (equal tuples may be written differently, a
/// text `"7"` and the integer 7). Sorted in place, not inserted one by one.
fn distinct(mut tuples: Vec<KeyTuple>) -> Vec<KeyTuple> {
    // Stable: equal tuples keep their order, the last one stays.
    tuples.sort();
    let mut out: Vec<KeyTuple> = Vec::with_capacity(tuples.len());
    for t in tuples {
        match out.last_mut() {
            Some(last) if *last == t => *last = t,
            _ => out.push(t),
        }
    }
    out
}

/// The matched rows by asked tuple: the first tuple of equal ones with the
/// last of their rows, as inserting them one by one keeps.
fn by_key(pairs: Vec<(KeyTuple, Row)>) -> BTreeMap<KeyTuple, Row> {
    merged(pairs, |row| row, |kept, row| *kept = row)
}

/// The matched rows grouped by asked tuple, each group in the order the
/// source returned its rows (as an entry per tuple, pushed to, keeps).
fn grouped_by_key(pairs: Vec<(KeyTuple, Row)>) -> BTreeMap<KeyTuple, Vec<Row>> {
    merged(pairs, |row| vec![row], |rows, row| rows.push(row))
}

/// The map of `pairs` by tuple, the pairs of equal tuples made one: the
/// first tuple, its value `start`ed, each later value `merge`d into it in
/// their order. Sorted in place (stably; the source mostly returns rows in
/// key order already) and the map built at once, instead of an insertion
/// each.
fn merged<V, W>(
    mut pairs: Vec<(KeyTuple, V)>,
    start: impl Fn(V) -> W,
    mut merge: impl FnMut(&mut W, V),
) -> BTreeMap<KeyTuple, W> {
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(KeyTuple, W)> = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        match out.last_mut() {
            Some((last, kept)) if *last == key => merge(kept, value),
            _ => out.push((key, start(value))),
        }
    }
    out.into_iter().collect()
}

/// The key tuple of `columns` in a row, if all are present and usable.
pub fn row_key(row: &Row, columns: &[String]) -> Option<KeyTuple> {
    columns
        .iter()
        .map(|c| row.get(c).and_then(KeyPart::from_value))
        .collect::<Option<Vec<_>>>()
        .map(KeyTuple)
}

/// The one query a SQL source adapter provides: `SELECT columns FROM table
/// WHERE (key_columns) IN (tuples)`, one statement per chunk of tuples, in
/// the batch's snapshot. [`fetch_rows`], [`reverse_lookup_rows`] and
/// [`lookup_in_rows`] build every read of the engine from it.
pub trait SelectIn: Send {
    /// The adapter's error (an unmatched row is one).
    type Error: From<UnmatchedKey> + Send;

    /// The rows of `table` whose `key_columns` equal one of `tuples`, with
    /// `columns` (which include `key_columns`; the engine gives them in name
    /// order, the order a [`Row`] keeps, so rows built in that order need no
    /// sort).
    fn select_in(
        &mut self,
        table: &TableName,
        columns: &[String],
        key_columns: &[String],
        tuples: &[KeyTuple],
    ) -> impl Future<Output = Result<Vec<Row>, Self::Error>> + Send;
}

/// `columns` and `more`, each once, in name order: the order a [`Row`]
/// keeps its columns in, so that [`Row::from_columns`] only checks the
/// order of a row read in the order of its select list.
fn with(columns: &[String], more: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = columns.to_vec();
    out.extend(more);
    out.sort_unstable();
    out.dedup();
    out
}

/// [`SourceSnapshot::reverse_lookup`] over a [`SelectIn`].
pub async fn reverse_lookup_rows<S: SelectIn>(
    source: &mut S,
    target: &TargetTable,
    columns: &[String],
    tuples: &[KeyTuple],
) -> Result<Vec<(KeyTuple, KeyTuple)>, S::Error> {
    let select = with(&target.root_key, columns.iter().cloned());
    let rows = source
        .select_in(&target.root, &select, columns, tuples)
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((row_key(r, &target.root_key)?, row_key(r, columns)?)))
        .collect())
}

/// [`SourceSnapshot::lookup_in`] over a [`SelectIn`].
pub async fn lookup_in_rows<S: SelectIn>(
    source: &mut S,
    table: &TableName,
    select: &[String],
    match_columns: &[String],
    tuples: &[KeyTuple],
) -> Result<Vec<(KeyTuple, KeyTuple)>, S::Error> {
    let columns = with(match_columns, select.iter().cloned());
    let rows = source
        .select_in(table, &columns, match_columns, tuples)
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((row_key(r, match_columns)?, row_key(r, select)?)))
        .collect())
}

/// [`SourceSnapshot::fetch`] over a [`SelectIn`]: the root rows of `keys`,
/// then each join's rows and each children's rows by the values the rows
/// above hold (nested children after their parents), one query per table
/// per chunk.
pub async fn fetch_rows<S: SelectIn>(
    source: &mut S,
    target: &TargetTable,
    keys: &[KeyTuple],
) -> Result<FetchedRows, S::Error> {
    let mut fetched = FetchedRows::default();
    let columns = with(&target.root_key, target.root_columns.iter().cloned());
    let rows = source
        .select_in(&target.root, &columns, &target.root_key, keys)
        .await?;
    let matcher = KeyMatcher::new(keys);
    fetched.roots = by_key(matched(
        &target.root,
        &target.root_key,
        &matcher,
        keys.len(),
        rows,
    )?);
    for join in &target.joins {
        let on_join: Vec<String> = join.on.iter().map(|(j, _)| j.clone()).collect();
        let on_root: Vec<String> = join.on.iter().map(|(_, r)| r.clone()).collect();
        let tuples = distinct(
            fetched
                .roots
                .values()
                .filter_map(|r| row_key(r, &on_root))
                .collect(),
        );
        let mut by = BTreeMap::new();
        if !tuples.is_empty() {
            let cols = with(&on_join, join.columns.iter().cloned());
            let rows = source
                .select_in(&join.table, &cols, &on_join, &tuples)
                .await?;
            let matcher = KeyMatcher::new(&tuples);
            by = by_key(matched(
                &join.table,
                &on_join,
                &matcher,
                tuples.len(),
                rows,
            )?);
        }
        fetched.joins.push(by);
    }
    for child in &target.children {
        let on_child: Vec<String> = child.on.iter().map(|(c, _)| c.clone()).collect();
        let on_parent: Vec<String> = child.on.iter().map(|(_, r)| r.clone()).collect();
        // Nested children are asked for by the rows of their parent
        // children (always fetched before them), the others by the roots.
        let tuples = distinct(match child.parent {
            None => fetched
                .roots
                .values()
                .filter_map(|r| row_key(r, &on_parent))
                .collect(),
            Some(p) => fetched
                .children
                .get(p)
                .into_iter()
                .flat_map(|by| by.values().flatten())
                .filter_map(|r| row_key(r, &on_parent))
                .collect(),
        });
        let mut by: BTreeMap<KeyTuple, Vec<Row>> = BTreeMap::new();
        if !tuples.is_empty() {
            let cols = with(&on_child, child.columns.iter().cloned());
            let rows = source
                .select_in(&child.table, &cols, &on_child, &tuples)
                .await?;
            let matcher = KeyMatcher::new(&tuples);
            by = grouped_by_key(matched(
                &child.table,
                &on_child,
                &matcher,
                tuples.len(),
                rows,
            )?);
        }
        fetched.children.push(by);
    }
    Ok(fetched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dms::Value;
    use crate::plan::KeyPart;
    use proptest::prelude::*;

    fn arb_tuple() -> impl Strategy<Value = KeyTuple> {
        // Equal tuples written differently: the integer 7 and the text "7".
        (0i128..4, any::<bool>()).prop_map(|(n, text)| {
            KeyTuple(vec![if text {
                KeyPart::Text(n.to_string())
            } else {
                KeyPart::Int(n)
            }])
        })
    }

    proptest! {
        #[test]
        fn built_at_once_as_inserted_one_by_one(tuples in proptest::collection::vec(arb_tuple(), 0..24)) {
            // Rows told apart by their position; compared as written.
            let pairs: Vec<(KeyTuple, Row)> = tuples
                .iter()
                .enumerate()
                .map(|(i, t)| (t.clone(), [("i", Value::Int(i as i64))].into_iter().collect()))
                .collect();
            let mut inserted = BTreeMap::new();
            let mut entries: BTreeMap<KeyTuple, Vec<Row>> = BTreeMap::new();
            for (t, r) in pairs.clone() {
                inserted.insert(t.clone(), r.clone());
                entries.entry(t).or_default().push(r);
            }
            prop_assert_eq!(format!("{:?}", by_key(pairs.clone())), format!("{inserted:?}"));
            prop_assert_eq!(format!("{:?}", grouped_by_key(pairs)), format!("{entries:?}"));
            let set: std::collections::BTreeSet<KeyTuple> = tuples.iter().cloned().collect();
            prop_assert_eq!(
                format!("{:?}", distinct(tuples)),
                format!("{:?}", set.into_iter().collect::<Vec<_>>())
            );
        }

        /// Each row goes with the tuples asked for it, as they were asked
        /// (the row's own key only when written the same), in row order.
        #[test]
        fn rows_matched_with_the_tuples_as_asked(
            asked in proptest::collection::vec(arb_tuple(), 1..8),
            found in proptest::collection::vec(arb_tuple(), 0..8),
        ) {
            let table = TableName::new("s", "t");
            let columns = vec!["id".to_owned()];
            let value = |t: &KeyTuple| t.values().remove(0);
            let rows: Vec<Row> = found
                .iter()
                .enumerate()
                .map(|(i, t)| [("i", Value::Int(i as i64)), ("id", value(t))].into_iter().collect())
                .collect();
            let matcher = KeyMatcher::new(&asked);
            let mut expected = Vec::new();
            let mut unmatched = false;
            for r in &rows {
                let targets = row_key(r, &columns).map(|k| matcher.matches(&k).to_vec()).unwrap_or_default();
                unmatched |= targets.is_empty();
                expected.extend(targets.into_iter().map(|t| (t, r.clone())));
            }
            match matched(&table, &columns, &matcher, asked.len(), rows) {
                Ok(got) => {
                    prop_assert!(!unmatched);
                    prop_assert_eq!(format!("{got:?}"), format!("{expected:?}"));
                }
                Err(_) => prop_assert!(unmatched),
            }
        }
    }
}
