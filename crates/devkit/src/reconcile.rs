//! `dms-cdc reconcile`: whether the target holds exactly what the mapping
//! makes of the source, table by table, and (`--repair`) fixing it.
//!
//! For each target table, the root table's keys are read in key order,
//! `chunk` at a time; the expected rows of a chunk are built by the engine
//! itself (the same prepare pass, re-queries and rules as the stream, over
//! `load` records of the rows, [`crate::capture::RangeReader`]) into an in-memory
//! target, and the target's rows of the same keys are read back
//! ([`TargetRows`]) and compared column by column (the version column
//! aside), values compared by what they mean (`1` = `true` = `t`, `4.5` =
//! `4.50`, JSON by value). A row the mapping makes and the target lacks is
//! **missing**; one whose columns differ is **different** (the column names
//! are reported, never the values); a target row whose key the mapping
//! does not make (or makes as a filtered-out row) is **extra**, found by a
//! second pass over the target's keys. Rows of a soft-delete target marked
//! deleted count as absent.
//!
//! Repair goes through the normal write path: missing and different rows
//! are rebuilt from fresh `load` records of their root rows, extra rows are
//! deleted by a DMS `delete` record of their key (hard deletes leave a
//! tombstone, soft deletes mark the row), with the version guard; records
//! the target refuses are quarantined. Then the tables are checked again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use dms_cdc_core::dms::{Delivery, TableName, Value};
use dms_cdc_core::engine::{Engine, Settings};
use dms_cdc_core::fault::{Classify, Fault};
use dms_cdc_core::mapping::{ColumnRef, DeletePolicy, Mapping, Rule, TargetTable, Transforms};
use dms_cdc_core::plan::KeyPart;
use dms_cdc_core::position::{SequenceNumber, ShardId};
use dms_cdc_core::target::{
    Quarantine, TableWrites, Target, TargetRows, TargetSequences, TargetTransaction,
};

use crate::backfill::roots_only;
use crate::capture::{CaptureError, CaptureOptions, KeyRange, RangeSource};

/// How a reconcile runs.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// Root keys per chunk.
    pub chunk: usize,
    /// Check one chunk in this many (`None`: every chunk). A sampled run
    /// finds missing and different rows of the chunks it checks; extra
    /// rows only a full run finds.
    pub sample_every: Option<usize>,
    /// Only these target tables (empty: every table of the mapping).
    pub tables: Vec<String>,
    /// Chunks checked at once (each with its own source and target reads).
    pub parallel: usize,
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        ReconcileOptions {
            chunk: 1000,
            sample_every: None,
            tables: Vec::new(),
            parallel: 1,
        }
    }
}

/// What is wrong with one target row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Difference {
    /// The mapping makes the row; the target lacks it.
    Missing {
        /// Target table.
        table: String,
        /// Target key, as text.
        key: Vec<String>,
    },
    /// The target has a row the mapping does not make.
    Extra {
        /// Target table.
        table: String,
        /// Target key, as text.
        key: Vec<String>,
    },
    /// Both have the row; these columns differ.
    Different {
        /// Target table.
        table: String,
        /// Target key, as text.
        key: Vec<String>,
        /// The columns that differ (names, never values).
        columns: Vec<String>,
    },
}

impl Difference {
    /// The target table.
    pub fn table(&self) -> &str {
        match self {
            Difference::Missing { table, .. }
            | Difference::Extra { table, .. }
            | Difference::Different { table, .. } => table,
        }
    }

    /// The target key, as text.
    pub fn key(&self) -> &[String] {
        match self {
            Difference::Missing { key, .. }
            | Difference::Extra { key, .. }
            | Difference::Different { key, .. } => key,
        }
    }
}

/// Counts of one target table.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TableReport {
    /// Target table.
    pub table: String,
    /// Rows the mapping makes (in the chunks checked).
    pub expected: u64,
    /// Target rows read.
    pub compared: u64,
    /// Missing rows.
    pub missing: u64,
    /// Extra rows.
    pub extra: u64,
    /// Different rows.
    pub different: u64,
    /// Chunks checked, of all chunks.
    pub chunks_checked: u64,
    /// All chunks.
    pub chunks: u64,
}

impl TableReport {
    /// Adds the counts of another copy of the same table (another source
    /// instance's).
    fn add(&mut self, other: &TableReport) {
        self.expected += other.expected;
        self.compared += other.compared;
        self.missing += other.missing;
        self.extra += other.extra;
        self.different += other.different;
        self.chunks_checked += other.chunks_checked;
        self.chunks += other.chunks;
    }
}

/// The result of a reconcile.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReconcileReport {
    /// Per target table.
    pub tables: Vec<TableReport>,
    /// Every difference found.
    pub differences: Vec<Difference>,
    /// Whether only a sample was checked.
    pub sampled: bool,
}

impl ReconcileReport {
    /// Rows compared: per table, the rows the mapping makes or the target
    /// rows read, whichever are more.
    pub fn rows_compared(&self) -> u64 {
        self.tables.iter().map(|t| t.expected.max(t.compared)).sum()
    }

    /// Whether the target agrees with the source (in what was checked).
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }

    /// A table for a person, and up to `limit` differences.
    pub fn render(&self, limit: usize) -> String {
        let mut out = format!(
            "{:<28} {:>10} {:>10} {:>8} {:>8} {:>9} {:>10}\n",
            "table", "expected", "compared", "missing", "extra", "different", "chunks"
        );
        for t in &self.tables {
            out.push_str(&format!(
                "{:<28} {:>10} {:>10} {:>8} {:>8} {:>9} {:>10}\n",
                t.table,
                t.expected,
                t.compared,
                t.missing,
                t.extra,
                t.different,
                format!("{}/{}", t.chunks_checked, t.chunks)
            ));
        }
        for d in self.differences.iter().take(limit) {
            out.push_str(&match d {
                Difference::Missing { table, key } => {
                    format!("missing   {table} {}\n", key.join(","))
                }
                Difference::Extra { table, key } => {
                    format!("extra     {table} {}\n", key.join(","))
                }
                Difference::Different {
                    table,
                    key,
                    columns,
                } => format!(
                    "different {table} {}: {}\n",
                    key.join(","),
                    columns.join(", ")
                ),
            });
        }
        if self.differences.len() > limit {
            out.push_str(&format!(
                "... and {} more (--json lists all)\n",
                self.differences.len() - limit
            ));
        }
        let rows = self.rows_compared();
        out.push_str(&format!(
            "{rows} rows compared, {} differences{}\n",
            self.differences.len(),
            if self.sampled {
                " (a sample: extra rows are found by a full run)"
            } else {
                ""
            }
        ));
        out
    }
}

/// Reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Reading the source.
    #[error(transparent)]
    Source(#[from] CaptureError),
    /// Building the expected rows.
    #[error("building the expected rows of {table}: {error}")]
    Build {
        /// Target table.
        table: String,
        /// The engine's error.
        error: String,
    },
    /// Reading or writing the target.
    #[error("target: {0}")]
    Target(String),
    /// The options are wrong.
    #[error("{0}")]
    Usage(String),
}

// ------------------------------------------------------------------ the in-memory target

/// An error that cannot happen.
#[derive(Debug, thiserror::Error)]
#[error("unreachable")]
pub enum Never {}

impl Classify for Never {
    fn fault(&self) -> Fault {
        match *self {}
    }
}

/// A target that keeps what the engine writes, for the expected rows.
#[derive(Debug, Clone, Default)]
struct Collect {
    writes: Arc<Mutex<Vec<TableWrites>>>,
}

struct CollectTx {
    sink: Arc<Mutex<Vec<TableWrites>>>,
    pending: Vec<TableWrites>,
}

impl Target for Collect {
    type Error = Never;
    type Transaction = CollectTx;

    async fn prepare(&self, _mapping: &Mapping) -> Result<(), Never> {
        Ok(())
    }

    async fn checkpoint(&self, _shard: &ShardId) -> Result<Option<SequenceNumber>, Never> {
        Ok(None)
    }

    async fn begin(&self) -> Result<CollectTx, Never> {
        Ok(CollectTx {
            sink: self.writes.clone(),
            pending: Vec::new(),
        })
    }
}

impl TargetTransaction for CollectTx {
    type Error = Never;

    async fn write(&mut self, _table: &TargetTable, writes: TableWrites) -> Result<(), Never> {
        self.pending.push(writes);
        Ok(())
    }

    async fn finish(
        self,
        _quarantine: &[Quarantine],
        _checkpoint: Option<(&ShardId, &SequenceNumber)>,
    ) -> Result<(), Never> {
        if let Ok(mut sink) = self.sink.lock() {
            sink.extend(self.pending);
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ comparing values

/// A key as text, what it identifies (`7` and `"7"` alike).
fn key_text(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .map(|v| match KeyPart::from_value(v) {
            Some(KeyPart::Int(i)) => i.to_string(),
            _ => value_text(v).unwrap_or_default(),
        })
        .collect()
}

fn value_text(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => u8::from(*b).to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Decimal(t) | Value::Lossy(t) | Value::Text(t) | Value::Json(t) => t.clone(),
        Value::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Value::DateTime(d) => d.format("%Y-%m-%d %H:%M:%S%.f").to_string(),
        Value::Date(d) => d.format("%Y-%m-%d").to_string(),
        Value::Time(t) => t.format("%H:%M:%S%.f").to_string(),
    })
}

/// A decimal number's digits without insignificant zeros (`4.50` -> `4.5`).
fn decimal(text: &str) -> Option<String> {
    let t = text.trim();
    let (sign, t) = match t.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", t.strip_prefix('+').unwrap_or(t)),
    };
    if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    if int == "0" && frac.is_empty() {
        return Some("0".to_owned());
    }
    Some(if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    })
}

fn datetime(text: &str) -> Option<chrono::NaiveDateTime> {
    let t = text.trim().trim_end_matches('Z');
    let t = t.split('+').next().unwrap_or(t);
    chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

/// Whether a target value (as text) is what the mapping made.
pub fn same(expected: &Value, actual: Option<&str>) -> bool {
    let Some(actual) = actual else {
        return matches!(expected, Value::Null);
    };
    match expected {
        Value::Null => false,
        Value::Bool(b) => match actual.trim().to_ascii_lowercase().as_str() {
            "1" | "t" | "true" => *b,
            "0" | "f" | "false" => !*b,
            _ => false,
        },
        Value::Int(_) | Value::UInt(_) | Value::Decimal(_) | Value::Lossy(_) => {
            let e = value_text(expected).unwrap_or_default();
            match (decimal(&e), decimal(actual)) {
                (Some(a), Some(b)) => a == b,
                _ => e == actual || actual.parse::<f64>().ok() == e.parse::<f64>().ok(),
            }
        }
        Value::Float(f) => actual
            .trim()
            .parse::<f64>()
            .is_ok_and(|a| a == *f || (a - f).abs() <= f.abs() * 1e-6),
        Value::Text(t) => {
            t == actual
                || datetime(t)
                    .zip(datetime(actual))
                    .is_some_and(|(a, b)| a == b)
                || decimal(t).zip(decimal(actual)).is_some_and(|(a, b)| a == b)
                || serde_json::from_str::<serde_json::Value>(t)
                    .ok()
                    .zip(serde_json::from_str::<serde_json::Value>(actual).ok())
                    .is_some_and(|(a, b)| a == b && !a.is_string())
        }
        Value::Json(t) => {
            match (
                serde_json::from_str::<serde_json::Value>(t),
                serde_json::from_str::<serde_json::Value>(actual),
            ) {
                (Ok(a), Ok(b)) => json_same(&a, &b),
                _ => t == actual,
            }
        }
        Value::Bytes(_) => value_text(expected).is_some_and(|e| e.eq_ignore_ascii_case(actual)),
        Value::DateTime(d) => datetime(actual).is_some_and(|a| {
            // A column of lower precision keeps fewer digits.
            (a - *d)
                .num_microseconds()
                .is_some_and(|us| us.abs() < 1_000_000)
                && (a == *d || a.and_utc().timestamp_subsec_micros() == 0)
        }),
        Value::Date(d) => datetime(actual).is_some_and(|a| a.date() == *d),
        Value::Time(t) => {
            chrono::NaiveTime::parse_from_str(actual.trim(), "%H:%M:%S%.f").is_ok_and(|a| a == *t)
        }
    }
}

/// JSON values alike, numbers by value (`500.00` = `500.0`).
fn json_same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_same(a, b))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_same(v, w)))
        }
        _ => a == b,
    }
}

// ------------------------------------------------------------------ the run

/// The root table's column a target key column copies, when it is a plain copy.
fn root_column_of_key(target: &TargetTable, key: &str) -> Option<String> {
    let column = target.columns.iter().find(|c| c.name == key)?;
    match &column.rule {
        Rule::Copy {
            from: ColumnRef::Root(c),
            convert: None,
            map,
            ..
        } if map.is_empty() => Some(c.clone()),
        _ => None,
    }
}

/// What the mapping makes of one chunk of root rows, per target key.
struct Expected {
    rows: BTreeMap<Vec<String>, Vec<Value>>,
    absent: BTreeSet<Vec<String>>,
}

async fn expected_rows<S: RangeSource>(
    engine: &Engine<S, Collect>,
    index: usize,
    shape: &Shape,
    deliveries: &[Delivery],
) -> Result<Expected, String> {
    if let Ok(mut w) = engine.target.writes.lock() {
        w.clear();
    }
    let report = engine.process_redrive(deliveries).await;
    if let Some(e) = report.retry_error {
        return Err(e);
    }
    let writes = engine
        .target
        .writes
        .lock()
        .map(|mut w| std::mem::take(&mut *w))
        .unwrap_or_default();
    let mut out = Expected {
        rows: BTreeMap::new(),
        absent: BTreeSet::new(),
    };
    for w in writes.into_iter().filter(|w| w.target == index) {
        for row in w.upserts {
            let key: Vec<Value> = shape.key.iter().map(|i| row[*i].clone()).collect();
            out.rows.insert(key_text(&key), row);
        }
        for key in w.deletes {
            out.absent.insert(key_text(&key));
        }
        for (key, _) in w.tombstones {
            out.absent.insert(key_text(&key));
        }
    }
    Ok(out)
}

/// Where a target table's key and soft-delete mark are in its rows
/// ([`TargetTable::column_names`] order), found once per table.
struct Shape {
    key: Vec<usize>,
    /// The soft-delete column and the value that marks a row deleted.
    deleted: Option<(usize, Value)>,
}

impl Shape {
    fn of(target: &TargetTable) -> Shape {
        let names = target.column_names();
        let position = |name: &str| names.iter().position(|c| *c == name);
        let deleted = match &target.delete {
            DeletePolicy::Soft { column, value } => position(column).map(|i| {
                (
                    i,
                    dms_cdc_core::mapping::toml_scalar(value).unwrap_or(Value::Null),
                )
            }),
            DeletePolicy::Hard => None,
        };
        Shape {
            key: target.key.iter().filter_map(|k| position(k)).collect(),
            deleted,
        }
    }

    /// The key of a target row read as text, normalised.
    fn key_of(&self, row: &[Option<String>]) -> Vec<String> {
        let key: Vec<String> = self
            .key
            .iter()
            .map(|i| row[*i].clone().unwrap_or_default())
            .collect();
        normalise_key(&key)
    }

    /// Whether a target row is a soft-deleted one (counts as absent).
    fn marked_deleted(&self, row: &[Option<String>]) -> bool {
        self.deleted
            .as_ref()
            .is_some_and(|(i, marker)| same(marker, row[*i].as_deref()))
    }
}

fn lane(table: &str) -> ShardId {
    ShardId(format!("reconcile-{}", crate::backfill::shard_safe(table)).into())
}

/// What one chunk of root rows came to.
#[derive(Default)]
struct ChunkCheck {
    expected: u64,
    compared: u64,
    differences: Vec<Difference>,
    /// The keys the mapping made (rows, or keys it deletes).
    keys: Vec<Vec<String>>,
}

/// One table being checked: what every chunk needs.
struct TableCheck<'a, T> {
    index: usize,
    table: &'a TargetTable,
    names: Vec<&'a str>,
    shape: Shape,
    target: &'a T,
}

impl<T: TargetRows> TableCheck<'_, T> {
    /// Builds the expected rows of `records` with `engine` and compares the
    /// target's rows of the same keys with them.
    async fn chunk<S: RangeSource>(
        &self,
        engine: &Engine<S, Collect>,
        records: Vec<crate::capture::KeyedRecord>,
    ) -> Result<ChunkCheck, ReconcileError> {
        let table = self.table;
        let shard = lane(&table.table);
        let deliveries: Vec<Delivery> = records
            .into_iter()
            .enumerate()
            .map(|(i, r)| Delivery {
                shard_id: shard.clone(),
                sequence_number: SequenceNumber::parse(&(i + 1).to_string())
                    .expect("a positive integer"),
                partition_key: r.partition_key,
                approximate_arrival_ms: None,
                data: r.payload,
            })
            .collect();
        let expected = expected_rows(engine, self.index, &self.shape, &deliveries)
            .await
            .map_err(|error| ReconcileError::Build {
                table: table.table.clone(),
                error,
            })?;
        let mut out = ChunkCheck {
            expected: expected.rows.len() as u64,
            ..ChunkCheck::default()
        };
        let keys: Vec<Vec<Value>> = expected
            .rows
            .keys()
            .chain(expected.absent.iter())
            .map(|k| k.iter().map(|p| Value::Text(p.clone())).collect())
            .collect();
        let actual = self
            .target
            .rows_by_key(table, &keys)
            .await
            .map_err(|e| ReconcileError::Target(e.to_string()))?;
        out.compared = actual.len() as u64;
        let mut seen = BTreeSet::new();
        for row in &actual {
            let key = self.shape.key_of(row);
            let deleted = self.shape.marked_deleted(row);
            match expected.rows.get(&key) {
                // A row marked deleted that the mapping makes live is missing.
                Some(want) if !deleted => {
                    seen.insert(key.clone());
                    let columns: Vec<String> = self
                        .names
                        .iter()
                        .enumerate()
                        .filter(|(i, c)| {
                            Some(**c) != table.version.as_deref()
                                && !same(&want[*i], row[*i].as_deref())
                        })
                        .map(|(_, c)| (*c).to_owned())
                        .collect();
                    if !columns.is_empty() {
                        out.differences.push(Difference::Different {
                            table: table.table.clone(),
                            key,
                            columns,
                        });
                    }
                }
                Some(_) => {}
                None if deleted => {}
                None => out.differences.push(Difference::Extra {
                    table: table.table.clone(),
                    key,
                }),
            }
        }
        for key in expected.rows.keys() {
            if !seen.contains(key) {
                out.differences.push(Difference::Missing {
                    table: table.table.clone(),
                    key: key.clone(),
                });
            }
        }
        out.keys = expected.rows.into_keys().chain(expected.absent).collect();
        Ok(out)
    }
}

/// Checks the target tables of `options` (see the module docs).
pub async fn reconcile<S: RangeSource, T: Target + TargetRows>(
    source: &S,
    target: &T,
    mapping: &Mapping,
    transforms: &Transforms,
    capture: &CaptureOptions,
    options: &ReconcileOptions,
) -> Result<ReconcileReport, ReconcileError> {
    use futures_util::stream::{self, TryStreamExt};

    let indices: Vec<usize> = if options.tables.is_empty() {
        (0..mapping.targets.len()).collect()
    } else {
        options
            .tables
            .iter()
            .map(|t| {
                mapping
                    .targets
                    .iter()
                    .position(|m| &m.table == t)
                    .ok_or_else(|| {
                        ReconcileError::Usage(format!("--table {t}: not a target of the mapping"))
                    })
            })
            .collect::<Result<_, _>>()?
    };
    // One engine per chunk in flight: each collects its own chunk's rows.
    let parallel = options.parallel.max(1);
    let engines: Vec<tokio::sync::Mutex<Engine<S, Collect>>> = (0..parallel)
        .map(|_| {
            tokio::sync::Mutex::new(Engine::new(
                roots_only(mapping),
                transforms.clone(),
                source.clone(),
                Collect::default(),
                Settings {
                    function_name: "dms-cdc-reconcile".into(),
                    chunk_size: options.chunk.max(1),
                },
            ))
        })
        .collect();
    let mut report = ReconcileReport {
        sampled: options.sample_every.is_some_and(|k| k > 1),
        ..ReconcileReport::default()
    };
    let target_err = |e: &dyn std::fmt::Display| ReconcileError::Target(e.to_string());
    let chunk = options.chunk.max(1);
    let mut expected_by_table: BTreeMap<String, BTreeSet<Vec<String>>> = BTreeMap::new();
    for index in indices {
        let table = &mapping.targets[index];
        let check = TableCheck {
            index,
            table,
            names: table.column_names(),
            shape: Shape::of(table),
            target,
        };
        let reader = source.range_reader(mapping, &table.root, capture).await?;
        let mut counts = TableReport {
            table: table.table.clone(),
            ..TableReport::default()
        };
        // The root table's chunks, read one after the other (each starts
        // after the last key of the one before), numbered from 0.
        let chunks = stream::try_unfold(
            (None::<crate::capture::RootKey>, 0u64, false),
            |(after, no, done)| {
                let reader = &reader;
                async move {
                    if done {
                        return Ok(None);
                    }
                    let range = KeyRange {
                        after: after.as_deref(),
                        ..KeyRange::default()
                    };
                    let records = reader.read(&range, chunk).await?;
                    let short = records.len() < chunk;
                    Ok::<_, ReconcileError>(
                        records
                            .last()
                            .map(|r| r.key.clone())
                            .map(|last| ((no, records), (Some(last), no + 1, short))),
                    )
                }
            },
        );
        let sample = options.sample_every.filter(|k| *k > 1).map(|k| k as u64);
        let checks = chunks
            .map_ok(|(no, records)| {
                let check = &check;
                let engine = &engines[(no % parallel as u64) as usize];
                async move {
                    if sample.is_some_and(|k| no % k != 0) {
                        return Ok(None);
                    }
                    let engine = engine.lock().await;
                    check.chunk(&engine, records).await.map(Some)
                }
            })
            .try_buffered(parallel);
        futures_util::pin_mut!(checks);
        let expected_keys = expected_by_table.entry(table.table.clone()).or_default();
        while let Some(done) = checks.try_next().await? {
            counts.chunks += 1;
            let Some(done) = done else {
                continue;
            };
            counts.chunks_checked += 1;
            counts.expected += done.expected;
            counts.compared += done.compared;
            for d in &done.differences {
                match d {
                    Difference::Missing { .. } => counts.missing += 1,
                    Difference::Extra { .. } => counts.extra += 1,
                    Difference::Different { .. } => counts.different += 1,
                }
            }
            report.differences.extend(done.differences);
            expected_keys.extend(done.keys);
        }
        // Copies of one target (one per source instance) count as one table.
        match report.tables.iter_mut().find(|t| t.table == counts.table) {
            Some(seen) => seen.add(&counts),
            None => report.tables.push(counts),
        }
    }
    // Extra rows: target keys the mapping made nothing of (from any source
    // instance), or a filtered row of.
    if !report.sampled {
        for (name, expected_keys) in &expected_by_table {
            let Some(table) = mapping.targets.iter().find(|t| &t.table == name) else {
                continue;
            };
            let shape = Shape::of(table);
            let counts = report
                .tables
                .iter_mut()
                .find(|t| &t.table == name)
                .expect("every checked table has its counts");
            let mut after: Option<Vec<String>> = None;
            loop {
                let keys = target
                    .keys_after(table, after.as_deref(), chunk)
                    .await
                    .map_err(|e| target_err(&e))?;
                let Some(last) = keys.last().cloned() else {
                    break;
                };
                let unknown: Vec<Vec<Value>> = keys
                    .iter()
                    .map(|k| normalise_key(k))
                    .filter(|k| !expected_keys.contains(k))
                    .map(|k| k.into_iter().map(Value::Text).collect())
                    .collect();
                if !unknown.is_empty() {
                    let rows = target
                        .rows_by_key(table, &unknown)
                        .await
                        .map_err(|e| target_err(&e))?;
                    for row in rows.iter().filter(|r| !shape.marked_deleted(r)) {
                        counts.extra += 1;
                        report.differences.push(Difference::Extra {
                            table: table.table.clone(),
                            key: shape.key_of(row),
                        });
                    }
                }
                after = Some(last);
            }
        }
    }
    Ok(report)
}

/// A target key as text, integers without leading zeros or signs noise.
fn normalise_key(key: &[String]) -> Vec<String> {
    key.iter()
        .map(|k| match k.trim().parse::<i128>() {
            Ok(i) => i.to_string(),
            Err(_) => k.clone(),
        })
        .collect()
}

/// A repair's sequence number: 109 nines and the count in 20 digits, the
/// 129 digits Kinesis allows: longer than Kinesis' sequence numbers (56
/// digits today) and an integer backfill lane's (at most 20), and of the
/// same length as a tuple backfill lane's but greater (those start with 2).
fn repair_sequence(count: u64) -> SequenceNumber {
    SequenceNumber::parse(&format!("{}{count:020}", "9".repeat(109))).expect("129 digits")
}

/// What a repair did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RepairReport {
    /// Rows rewritten (missing or different).
    pub rewritten: u64,
    /// Rows deleted (extra).
    pub deleted: u64,
    /// Records the target refused (quarantined).
    pub quarantined: u64,
    /// Differences that cannot be repaired, and why.
    pub not_repaired: Vec<String>,
}

/// Repairs `differences` through `engine` (the function's mapping, the
/// real target): missing and different rows are rebuilt from fresh `load`
/// records of their root rows, extra rows deleted by `delete` records of
/// their key. Only targets whose key columns copy the root table's primary
/// key (every column of it, any types) can be repaired: the root key is
/// read from the target key.
pub async fn repair<S: RangeSource, T: Target>(
    engine: &Engine<S, T>,
    capture: &CaptureOptions,
    differences: &[Difference],
) -> Result<RepairReport, ReconcileError> {
    let mut out = RepairReport::default();
    // By target (with several source instances: the copy whose
    // discriminator value the key carries).
    let mut by_target: BTreeMap<usize, Vec<&Difference>> = BTreeMap::new();
    for d in differences {
        let found = engine
            .mapping
            .targets
            .iter()
            .position(|t| t.table == d.table() && carries_discriminator(t, d.key()));
        match found {
            Some(i) => by_target.entry(i).or_default().push(d),
            None => out.not_repaired.push(format!(
                "{} ({}): no source instance of the mapping makes this key",
                d.table(),
                d.key().join(",")
            )),
        }
    }
    let now = chrono::Utc::now();
    let mut seq = 0u64;
    for (index, diffs) in by_target {
        let target = &engine.mapping.targets[index];
        let table_name = target.table.as_str();
        let reader = engine
            .source
            .range_reader(&engine.mapping, &target.root, capture)
            .await?;
        // Where each root key column is in the target key (the
        // discriminator column is the instance's, not a copy).
        let discriminator = target.discriminator.as_ref().map(|(c, _)| c.as_str());
        let copies: Option<Vec<(usize, String)>> = target
            .key
            .iter()
            .enumerate()
            .filter(|(_, k)| Some(k.as_str()) != discriminator)
            .map(|(i, k)| root_column_of_key(target, k).map(|c| (i, c)))
            .collect();
        let positions: Option<Vec<usize>> = copies.as_ref().and_then(|copies| {
            (copies.len() == reader.key_columns().len())
                .then(|| {
                    reader
                        .key_columns()
                        .iter()
                        .map(|c| {
                            copies
                                .iter()
                                .find(|(_, k)| k.eq_ignore_ascii_case(c))
                                .map(|(i, _)| *i)
                        })
                        .collect()
                })
                .flatten()
        });
        let Some(positions) = positions else {
            out.not_repaired.push(format!(
                "{table_name}: its key is not a plain copy of the primary key of {} ({}); rebuild it with dms-cdc backfill",
                target.root,
                reader.key_columns().join(", ")
            ));
            continue;
        };
        let root_key = |key: &[String]| -> Vec<String> {
            positions
                .iter()
                .map(|i| key.get(*i).cloned().unwrap_or_default())
                .collect()
        };
        let wanted: Vec<Vec<String>> = diffs
            .iter()
            .map(|d| match d {
                Difference::Missing { key, .. }
                | Difference::Different { key, .. }
                | Difference::Extra { key, .. } => root_key(key),
            })
            .collect();
        let mut found: BTreeMap<Vec<String>, crate::capture::KeyedRecord> = BTreeMap::new();
        for r in reader.read_keys(&wanted).await? {
            found.insert(normalise_key(&root_text(&r.key)), r);
        }
        let shard = ShardId(format!("repair-{}", lane(table_name)).into());
        let mut deliveries = Vec::new();
        for (d, key) in diffs.iter().zip(wanted) {
            let delete = matches!(d, Difference::Extra { .. });
            seq += 1;
            // Above any backfill's or earlier repair's sequence number: a
            // repair read in the same second as the row it replaces (a
            // load of that second) must win the tie; a change the stream
            // committed in that second still sorts above it (it has a log
            // position).
            let sequence_number = repair_sequence(seq);
            match (found.remove(&normalise_key(&key)), delete) {
                (Some(r), false) => {
                    out.rewritten += 1;
                    deliveries.push(Delivery {
                        shard_id: shard.clone(),
                        sequence_number,
                        partition_key: r.partition_key,
                        approximate_arrival_ms: None,
                        data: r.payload,
                    });
                }
                (Some(_), true) | (None, _) => {
                    // The root row is gone (or filtered): delete the target row.
                    out.deleted += 1;
                    deliveries.push(Delivery {
                        shard_id: shard.clone(),
                        sequence_number,
                        partition_key: format!("{}.{}", target.root, key.join(".")),
                        approximate_arrival_ms: None,
                        data: delete_record(&target.root, reader.key_columns(), &key, now),
                    });
                }
            }
        }
        for chunk in deliveries.chunks(500) {
            let report = engine.process_redrive(chunk).await;
            if let Some(e) = report.retry_error {
                return Err(ReconcileError::Target(e));
            }
            out.quarantined += report.summary.quarantined_count as u64;
        }
    }
    Ok(out)
}

/// Whether `key` (a key of `target`'s table) is of `target`'s copy: its
/// discriminator column holds the copy's instance (always, without one).
fn carries_discriminator(target: &TargetTable, key: &[String]) -> bool {
    match &target.discriminator {
        None => true,
        Some((column, value)) => target
            .key
            .iter()
            .position(|k| k == column)
            .and_then(|i| key.get(i))
            .is_some_and(|v| v == value),
    }
}

/// A root key read from the source, as text.
fn root_text(key: &[mysql_async::Value]) -> Vec<String> {
    key.iter()
        .map(|v| match v {
            mysql_async::Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            mysql_async::Value::Int(i) => i.to_string(),
            mysql_async::Value::UInt(u) => u.to_string(),
            other => other.as_sql(true).trim_matches('\'').to_owned(),
        })
        .collect()
}

/// A DMS `delete` record of the root row with key `key` (the values of
/// `columns`, as text), stamped `at`.
fn delete_record(
    root: &TableName,
    columns: &[String],
    key: &[String],
    at: chrono::DateTime<chrono::Utc>,
) -> Vec<u8> {
    let data: serde_json::Map<String, serde_json::Value> = columns
        .iter()
        .zip(key)
        .map(|(c, k)| (c.clone(), serde_json::Value::String(k.clone())))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "data": data,
        "metadata": {
            "timestamp": at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            "record-type": "data",
            "operation": "delete",
            "partition-key-type": "primary-key",
            "schema-name": root.schema,
            "table-name": root.table,
        }
    }))
    .unwrap_or_default()
}

/// One target sequence against the source's keys (the cutover's last step).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SequenceCheck {
    /// Target table.
    pub table: String,
    /// The key column the sequence fills.
    pub column: String,
    /// The next value it gives (after a raise, the new one).
    pub next: i128,
    /// The greatest root key in the source.
    pub source_max: Option<i128>,
    /// Whether it was raised in this run.
    pub raised: bool,
}

impl SequenceCheck {
    /// Whether new target rows cannot collide with migrated keys.
    pub fn is_clear(&self) -> bool {
        self.source_max.is_none_or(|m| self.next > m)
    }
}

/// Every target key column a sequence fills, against the greatest key of
/// its root column in the source; with `raise`, sequences at or below it
/// are moved above it (and above the table's own keys).
pub async fn sequences<S: RangeSource, T: TargetSequences>(
    source: &S,
    target: &T,
    mapping: &Mapping,
    raise: bool,
) -> Result<Vec<SequenceCheck>, ReconcileError> {
    let target_err = |e: &dyn std::fmt::Display| ReconcileError::Target(e.to_string());
    let mut out: Vec<SequenceCheck> = Vec::new();
    for table in &mapping.targets {
        for (column, next) in target.sequences(table).await.map_err(|e| target_err(&e))? {
            let Some(root_column) = root_column_of_key(table, &column) else {
                continue;
            };
            let max = source
                .range_reader(mapping, &table.root, &CaptureOptions::default())
                .await?
                .max_of(&root_column)
                .await?;
            let source_max = max.and_then(|m| m.trim().parse::<i128>().ok());
            let mut check = SequenceCheck {
                table: table.table.clone(),
                column: column.clone(),
                next,
                source_max,
                raised: false,
            };
            if raise && !check.is_clear() {
                let max = source_max.unwrap_or(0);
                target
                    .raise_sequence(table, &column, max)
                    .await
                    .map_err(|e| target_err(&e))?;
                check.raised = true;
                check.next = target
                    .sequences(table)
                    .await
                    .map_err(|e| target_err(&e))?
                    .into_iter()
                    .find(|(c, _)| *c == column)
                    .map_or(max + 1, |(_, n)| n);
            }
            // One line per target table and column (instances share the table).
            match out
                .iter_mut()
                .find(|c| c.table == check.table && c.column == check.column)
            {
                Some(seen) => {
                    seen.source_max = seen.source_max.max(check.source_max);
                    seen.next = check.next;
                    seen.raised |= check.raised;
                }
                None => out.push(check),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_by_what_they_mean() {
        assert!(same(&Value::Bool(true), Some("t")));
        assert!(same(&Value::Bool(true), Some("1")));
        assert!(!same(&Value::Bool(true), Some("0")));
        assert!(same(&Value::Decimal("4.5".into()), Some("4.50")));
        assert!(same(&Value::Int(7), Some("7")));
        assert!(!same(&Value::Int(7), Some("8")));
        assert!(same(
            &Value::Json("[{\"q\": 500.00}]".into()),
            Some("[{\"q\":500.0}]")
        ));
        assert!(!same(&Value::Json("[1,2]".into()), Some("[2,1]")));
        assert!(same(&Value::Bytes(vec![1, 2]), Some("0102")));
        assert!(same(&Value::Null, None));
        assert!(!same(&Value::Null, Some("")));
        assert!(same(&Value::Text("Ann".into()), Some("Ann")));
        assert!(!same(&Value::Text("Ann".into()), Some("ann")));
        let dt = chrono::NaiveDate::from_ymd_opt(2026, 3, 29)
            .unwrap()
            .and_hms_opt(1, 30, 0)
            .unwrap();
        assert!(same(&Value::DateTime(dt), Some("2026-03-29 01:30:00")));
        assert!(!same(&Value::DateTime(dt), Some("2026-03-29 01:31:00")));
    }

    #[test]
    fn decimals_lose_insignificant_zeros() {
        assert_eq!(decimal("004.500").as_deref(), Some("4.5"));
        assert_eq!(decimal("-0.0").as_deref(), Some("0"));
        assert_eq!(
            decimal("18446744073709551610").as_deref(),
            Some("18446744073709551610")
        );
        assert_eq!(decimal("abc"), None);
    }
}
