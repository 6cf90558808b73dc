//! `dms-cdc backfill`: the initial load of a migration (or a reload of
//! some tables), read from the source by ranges of the root tables' primary
//! keys and written through the engine, while the stream runs.
//!
//! Every row becomes a DMS `load` record ([`RangeReader`]) stamped with
//! the source's clock read before the rows, and goes through the same
//! prepare pass, re-queries and target adapter as the stream, version guard
//! included. Why that is safe beside the stream (README, Backfill): a load
//! record's version is its read time in whole seconds, and it loses a tie
//! to any change of that second. A change committed after the read is
//! newer, so the backfill never overwrites it; a change committed before
//! the read is older and already in what was read, so the backfill wins
//! over it with data that contains it. Re-queried rows are read after the
//! load records' time, so they hold at least that state.
//!
//! Progress is the target's own checkpoint: each range is a lane
//! (`backfill-<schema>.<table>-<i>of<N>-<j>of<P>`) whose "sequence
//! number" is the last key written, offset to be non-negative, committed in
//! the same transaction as the rows. A killed backfill resumes after the
//! last committed chunk; a chunk is applied once.
//!
//! A table is split into `N` parts (`--part i/N --keys LO..HI`: one per
//! process or container; every process computes the same boundaries from
//! `LO..HI`, and the first and last parts are open-ended, so no key falls
//! between parts) and each part into `P` ranges read concurrently
//! (`--parallel P`), split at the keys the part held at the first run. The
//! ranges' ends are stored as lanes of their own (`...-end`) at the first
//! run and reused on every resume, so a range never moves (a moved
//! boundary would leave keys between a resumed range and the next one).
//! Resume with the same `N`, `LO..HI` and `P`.

use std::time::{Duration, Instant};

use dms_cdc_core::dms::{Delivery, TableName};
use dms_cdc_core::engine::Engine;
use dms_cdc_core::mapping::{Mapping, Touch};
use dms_cdc_core::position::{SequenceNumber, ShardId};
use dms_cdc_core::target::{Target, TargetTransaction};

use crate::capture::{CaptureError, CaptureOptions, KeyRange, RangeReader, RangeSource, RootKey};

/// How a backfill runs.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// Rows per source read and per target transaction.
    pub chunk: usize,
    /// This process's part, 1-based, of `parts`.
    pub part: usize,
    /// How many parts each table is split into (across processes).
    pub parts: usize,
    /// Ranges of this part read and written concurrently.
    pub parallel: usize,
    /// At most this many rows per second (all ranges together).
    pub rows_per_second: Option<f64>,
    /// Only these root tables (empty: every root table of the mapping).
    pub tables: Vec<TableName>,
    /// The key range `parts` splits (the same in every part): needed with
    /// more than one part, so that every process computes the same
    /// boundaries. Keys below the first or above the last belong to the
    /// first or the last part.
    pub keys: Option<(i128, i128)>,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        BackfillOptions {
            chunk: 1000,
            part: 1,
            parts: 1,
            parallel: 1,
            rows_per_second: None,
            tables: Vec::new(),
            keys: None,
        }
    }
}

/// What a backfill did, per range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeReport {
    /// The root table.
    pub table: String,
    /// The lane (the checkpoint's shard id).
    pub lane: String,
    /// The range's keys, for a person (`id 1..=500`, `every key`).
    pub range: String,
    /// Resumed after this key (a previous run's progress), as text.
    pub resumed_after: Option<String>,
    /// Rows read from the source.
    pub rows: u64,
    /// Records quarantined.
    pub quarantined: u64,
    /// Target transactions.
    pub batches: u64,
}

/// A progress event (after every chunk).
#[derive(Debug, Clone)]
pub struct Progress {
    /// The root table.
    pub table: String,
    /// The lane.
    pub lane: String,
    /// Rows written by this lane so far (this run).
    pub rows: u64,
    /// The share of the lane's key range done (0 to 1).
    pub done: f64,
}

/// The backfill failed.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// Reading the source.
    #[error(transparent)]
    Source(#[from] CaptureError),
    /// The engine could not apply a chunk (after retries).
    #[error("{lane}: the chunk after key {after} was not applied: {error}")]
    Apply {
        /// The lane.
        lane: String,
        /// The last key applied.
        after: String,
        /// The engine's retry error.
        error: String,
    },
    /// The target's checkpoint could not be read or written.
    #[error("{lane}: progress: {error}")]
    Progress {
        /// The lane.
        lane: String,
        /// The target's error.
        error: String,
    },
    /// The options are wrong.
    #[error("{0}")]
    Usage(String),
}

/// The mapping a backfill runs with: a table feeds only the targets it is
/// the root of. Each target is loaded from its own root table, so the
/// reverse lookups a change of a joined or child table triggers on the
/// stream would only rebuild rows the backfill writes anyway.
pub fn roots_only(mapping: &Mapping) -> Mapping {
    let mut m = mapping.clone();
    for source in m.sources.values_mut() {
        source.touches.retain(|t| matches!(t, Touch::Root { .. }));
    }
    m
}

/// The root tables of the mapping's targets, in target order, once each.
pub fn root_tables(mapping: &Mapping) -> Vec<TableName> {
    let mut out: Vec<TableName> = Vec::new();
    for t in &mapping.targets {
        if !out.contains(&t.root) {
            out.push(t.root.clone());
        }
    }
    out
}

/// Keys are offset by 2^63 so that every integer key (signed, or unsigned
/// up to 2^64-1) is a non-negative "sequence number" in key order.
const KEY_OFFSET: i128 = 1 << 63;
/// The smallest and greatest integer key a MySQL column can hold.
const KEY_MIN: i128 = i64::MIN as i128;
const KEY_MAX: i128 = u64::MAX as i128;

fn sequence_of(key: i128) -> SequenceNumber {
    SequenceNumber::parse(&(key + KEY_OFFSET).to_string()).expect("a non-negative integer")
}

fn key_of(sequence: &SequenceNumber) -> Option<i128> {
    sequence
        .as_str()
        .parse::<i128>()
        .ok()
        .map(|s| s - KEY_OFFSET)
}

/// Progress of a lane whose key is not one integer column: the rows done
/// (an ordinal, so that the checkpoint moves forward) and the last key
/// written, in one sequence number of exactly [`MAX_SEQUENCE_DIGITS`]
/// digits: `2`, the ordinal in [`ORDINAL_DIGITS`] digits, then the key as
/// compact JSON, two bytes per five digits (at most [`TUPLE_KEY_BYTES`]
/// bytes; a longer key is not recorded, and a resume restarts its range:
/// rewriting rows is harmless, the version guard keeps newer ones). Being
/// longer than any integer lane's sequence number, it sorts after them.
const ORDINAL_DIGITS: usize = 10;
const TUPLE_KEY_BYTES: usize =
    (dms_cdc_core::position::MAX_SEQUENCE_DIGITS - 1 - ORDINAL_DIGITS) / 5 * 2;

/// A key value as JSON: text as a string, other bytes as `{"x": hex}`,
/// numbers as numbers, dates and times as arrays of their parts.
fn key_json(value: &mysql_async::Value) -> serde_json::Value {
    use mysql_async::Value as V;
    use serde_json::json;
    match value {
        V::NULL => serde_json::Value::Null,
        V::Bytes(b) => match std::str::from_utf8(b) {
            Ok(t) => json!(t),
            Err(_) => json!({"x": b.iter().map(|x| format!("{x:02x}")).collect::<String>()}),
        },
        V::Int(i) => json!(i),
        V::UInt(u) => json!(u),
        V::Float(f) => json!(f),
        V::Double(f) => json!(f),
        V::Date(y, mo, d, h, mi, sec, us) => json!({"d": [y, mo, d, h, mi, sec, us]}),
        V::Time(neg, d, h, mi, sec, us) => json!({"t": [neg, d, h, mi, sec, us]}),
    }
}

fn key_value(json: &serde_json::Value) -> Option<mysql_async::Value> {
    use mysql_async::Value as V;
    use serde_json::Value as J;
    Some(match json {
        J::Null => V::NULL,
        J::String(t) => V::Bytes(t.clone().into_bytes()),
        J::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => V::Int(i),
            (_, Some(u), _) => V::UInt(u),
            (_, _, Some(f)) => V::Double(f),
            _ => return None,
        },
        J::Object(o) => {
            let (tag, parts) = o.iter().next()?;
            let parts = parts.as_array();
            let n = |i: usize| parts.and_then(|p| p.get(i)).and_then(J::as_u64);
            match tag.as_str() {
                "x" => {
                    let hex = o.get("x")?.as_str()?;
                    let bytes: Option<Vec<u8>> = (0..hex.len() / 2)
                        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                        .collect();
                    V::Bytes(bytes?)
                }
                "d" => V::Date(
                    u16::try_from(n(0)?).ok()?,
                    u8::try_from(n(1)?).ok()?,
                    u8::try_from(n(2)?).ok()?,
                    u8::try_from(n(3)?).ok()?,
                    u8::try_from(n(4)?).ok()?,
                    u8::try_from(n(5)?).ok()?,
                    u32::try_from(n(6)?).ok()?,
                ),
                "t" => V::Time(
                    parts?.first()?.as_bool()?,
                    u32::try_from(n(1)?).ok()?,
                    u8::try_from(n(2)?).ok()?,
                    u8::try_from(n(3)?).ok()?,
                    u8::try_from(n(4)?).ok()?,
                    u32::try_from(n(5)?).ok()?,
                ),
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// The sequence number of a tuple lane's row `ordinal` with key `key`.
fn tuple_sequence(ordinal: u64, key: &[mysql_async::Value]) -> SequenceNumber {
    let json = serde_json::Value::Array(key.iter().map(key_json).collect()).to_string();
    let mut bytes = json.into_bytes();
    if bytes.len() > TUPLE_KEY_BYTES {
        // Not recorded: a resume restarts the range.
        bytes.clear();
    }
    bytes.resize(TUPLE_KEY_BYTES, 0);
    let mut digits = format!(
        "2{:0width$}",
        ordinal % 10u64.pow(ORDINAL_DIGITS as u32),
        width = ORDINAL_DIGITS
    );
    for pair in bytes.chunks(2) {
        let v = u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
        digits.push_str(&format!("{v:05}"));
    }
    while digits.len() < dms_cdc_core::position::MAX_SEQUENCE_DIGITS {
        digits.push('0');
    }
    SequenceNumber::parse(&digits).expect("129 digits")
}

/// A tuple lane's progress: the rows done and the last key (`None`: not
/// recorded, or not a tuple lane's sequence number).
fn tuple_of(sequence: &SequenceNumber) -> Option<(u64, Option<RootKey>)> {
    let digits = sequence.as_str();
    if digits.len() != dms_cdc_core::position::MAX_SEQUENCE_DIGITS || !digits.starts_with('2') {
        return None;
    }
    let ordinal: u64 = digits.get(1..=ORDINAL_DIGITS)?.parse().ok()?;
    let mut bytes = Vec::new();
    let body = digits.get(1 + ORDINAL_DIGITS..)?;
    for i in 0..TUPLE_KEY_BYTES / 2 {
        let v: u32 = body.get(5 * i..5 * i + 5)?.parse().ok()?;
        bytes.push((v >> 8) as u8);
        bytes.push((v & 0xff) as u8);
    }
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    let key = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|j| {
            j.as_array()
                .map(|a| a.iter().map(key_value).collect::<Option<Vec<_>>>())
        })
        .flatten();
    Some((ordinal, key))
}

/// A key for a person.
fn key_text(key: &[mysql_async::Value]) -> String {
    key.iter()
        .map(|v| match key_json(v) {
            serde_json::Value::String(t) => t,
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `n` near-equal ranges of `first..=last`; range `i` (0-based).
fn split(first: i128, last: i128, n: usize, i: usize) -> Option<(i128, i128)> {
    let span = last - first + 1;
    let n = n as i128;
    let i = i as i128;
    let lo = first + span * i / n;
    let hi = first + span * (i + 1) / n - 1;
    (lo <= hi).then_some((lo, hi))
}

/// `name` with every character a shard id may not hold (or that would
/// read as a separator) replaced by `_`.
pub(crate) fn shard_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The lane of a range: a shard id Kinesis never uses.
fn lane(table: &TableName, part: usize, parts: usize, range: usize, ranges: usize) -> String {
    let mut id = format!(
        "backfill-{}.{}-{part}of{parts}-{}of{ranges}",
        shard_safe(&table.schema),
        shard_safe(&table.table),
        range + 1
    );
    id.truncate(dms_cdc_core::position::MAX_SHARD_ID_LEN);
    id
}

/// A rate limit shared by the ranges of one run.
struct Throttle {
    started: Instant,
    rows_per_second: Option<f64>,
    rows: std::sync::atomic::AtomicU64,
}

impl Throttle {
    async fn take(&self, rows: u64) {
        let total = self
            .rows
            .fetch_add(rows, std::sync::atomic::Ordering::Relaxed)
            + rows;
        if let Some(rate) = self.rows_per_second.filter(|r| *r > 0.0) {
            let due = Duration::from_secs_f64(total as f64 / rate);
            let elapsed = self.started.elapsed();
            if due > elapsed {
                tokio::time::sleep(due - elapsed).await;
            }
        }
    }
}

/// Runs the backfill of `options` through `engine` (made with
/// [`roots_only`] of the mapping, and the function name under which the
/// progress and quarantined records are kept); `progress` is called after
/// every chunk.
pub async fn backfill<S: RangeSource, T: Target>(
    engine: &Engine<S, T>,
    capture: &CaptureOptions,
    options: &BackfillOptions,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<Vec<RangeReport>, BackfillError> {
    if options.parts == 0 || options.part == 0 || options.part > options.parts {
        return Err(BackfillError::Usage(format!(
            "--part {}/{}: expected i/N with 1 <= i <= N",
            options.part, options.parts
        )));
    }
    let tables = if options.tables.is_empty() {
        root_tables(&engine.mapping)
    } else {
        let roots = root_tables(&engine.mapping);
        for t in &options.tables {
            if !roots.contains(t) {
                return Err(BackfillError::Usage(format!(
                    "--table {t}: not the root table of any target of the mapping (roots: {})",
                    roots
                        .iter()
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        options.tables.clone()
    };
    let throttle = Throttle {
        started: Instant::now(),
        rows_per_second: options.rows_per_second,
        rows: Default::default(),
    };
    if options.parts > 1 && options.keys.is_none() {
        return Err(BackfillError::Usage(format!(
            "--part {}/{} needs --keys LO..HI, the same in every part (e.g. SELECT MIN(id), MAX(id) once): \
             every process must compute the same boundaries",
            options.part, options.parts
        )));
    }
    let mut reports = Vec::new();
    for table in &tables {
        let reader = engine
            .source
            .range_reader(&engine.mapping, table, capture)
            .await?;
        let ranges = options.parallel.max(1);
        if !reader.integer_lead() {
            // One range: keys that are not integers cannot be split here.
            if options.parts > 1 || ranges > 1 {
                return Err(reader.not_integer_lead().into());
            }
            let name = lane(table, 1, 1, 0, 1);
            let report = run_range(
                engine,
                &reader,
                table,
                &name,
                None,
                options.chunk.max(1),
                &throttle,
                progress,
            )
            .await?;
            reports.push(report);
            continue;
        }
        // This part: open-ended at the first and the last part.
        let (part_lo, part_hi) = match options.keys {
            Some((lo, hi)) if options.parts > 1 => {
                let (lo, hi) = (lo.min(hi), lo.max(hi));
                let (a, b) = split(lo, hi, options.parts, options.part - 1).ok_or_else(|| {
                    BackfillError::Usage(format!(
                        "--keys {lo}..{hi} has fewer keys than --part {}/{} has parts",
                        options.part, options.parts
                    ))
                })?;
                (
                    if options.part == 1 { KEY_MIN } else { a },
                    if options.part == options.parts {
                        KEY_MAX
                    } else {
                        b
                    },
                )
            }
            _ => (KEY_MIN, KEY_MAX),
        };
        let names: Vec<String> = (0..ranges)
            .map(|j| lane(table, options.part, options.parts, j, ranges))
            .collect();
        let ends = lane_ends(engine, &reader, &names, (part_lo, part_hi)).await?;
        let mut start = part_lo;
        let mut lanes = Vec::new();
        for (name, end) in names.iter().zip(&ends) {
            if start <= *end {
                lanes.push((name.clone(), start, *end));
            }
            start = end + 1;
        }
        let runs = lanes.iter().map(|(lane, lo, hi)| {
            run_range(
                engine,
                &reader,
                table,
                lane,
                Some((*lo, *hi)),
                options.chunk.max(1),
                &throttle,
                progress,
            )
        });
        for report in futures_util::future::join_all(runs).await {
            reports.push(report?);
        }
    }
    Ok(reports)
}

fn progress_error(lane: &str, error: &dyn std::fmt::Display) -> BackfillError {
    BackfillError::Progress {
        lane: lane.to_owned(),
        error: error.to_string(),
    }
}

/// The key `shard`'s checkpoint holds (a lane's last key written, or a
/// range's stored end), if any.
async fn stored_key<S: RangeSource, T: Target>(
    engine: &Engine<S, T>,
    shard: &ShardId,
    lane: &str,
) -> Result<Option<i128>, BackfillError> {
    let stored = engine
        .target
        .checkpoint(shard)
        .await
        .map_err(|e| progress_error(lane, &e))?;
    Ok(stored.as_ref().and_then(key_of))
}

/// Stores `key` as `shard`'s checkpoint, in a transaction of its own (a
/// checkpoint only moves forward).
async fn store_key<S: RangeSource, T: Target>(
    engine: &Engine<S, T>,
    shard: &ShardId,
    key: i128,
    lane: &str,
) -> Result<(), BackfillError> {
    let tx = engine
        .target
        .begin()
        .await
        .map_err(|e| progress_error(lane, &e))?;
    tx.finish(&[], Some((shard, &sequence_of(key))))
        .await
        .map_err(|e| progress_error(lane, &e))
}

/// The last key of each range of a part: stored at the first run (as the
/// checkpoint of lane `<range>-end`), read back on every later one. At the
/// first run the part's keys are split evenly between its current smallest
/// and greatest key; the last range ends where the part ends.
async fn lane_ends<S: RangeSource, T: Target>(
    engine: &Engine<S, T>,
    reader: &RangeReader,
    names: &[String],
    (part_lo, part_hi): (i128, i128),
) -> Result<Vec<i128>, BackfillError> {
    let end_lane = |name: &str| -> Result<ShardId, BackfillError> {
        let mut id = format!("{name}-end");
        id.truncate(dms_cdc_core::position::MAX_SHARD_ID_LEN);
        ShardId::parse(&id).map_err(|e| BackfillError::Usage(e.to_string()))
    };
    let mut stored = Vec::new();
    for name in names {
        stored.push(stored_key(engine, &end_lane(name)?, name).await?);
    }
    if stored.iter().all(Option::is_some) {
        return Ok(stored.into_iter().flatten().collect());
    }
    let (lo, hi) = match reader.bounds_within(part_lo, part_hi).await? {
        Some((min, max)) => (min, max),
        None => (part_lo, part_hi),
    };
    let n = names.len();
    let ends: Vec<i128> = (0..n)
        .map(|j| {
            if j + 1 == n {
                part_hi
            } else {
                split(lo, hi, n, j).map_or((lo - 1).max(KEY_MIN), |(_, end)| end)
            }
        })
        .collect();
    for ((name, end), stored) in names.iter().zip(&ends).zip(&stored) {
        if stored.is_some() {
            continue;
        }
        store_key(engine, &end_lane(name)?, *end, name).await?;
    }
    // What is stored is what every later run uses (a run killed while
    // storing them kept some ends of an earlier run): read them back.
    // Ranges chain (each starts after the previous end), so ends from two
    // runs can only make ranges overlap, never leave keys between them.
    let mut out = Vec::new();
    for (name, computed) in names.iter().zip(ends) {
        let end = stored_key(engine, &end_lane(name)?, name).await?;
        out.push(end.unwrap_or(computed));
    }
    Ok(out)
}

/// Where a lane resumes: after a key (or from the start of its range),
/// and the ordinal of the next row (tuple lanes).
struct Resume {
    after: Option<RootKey>,
    ordinal: u64,
    /// For the report.
    text: Option<String>,
}

/// A lane's stored progress.
async fn resume_point<S: RangeSource, T: Target>(
    engine: &Engine<S, T>,
    reader: &RangeReader,
    shard: &ShardId,
    lane: &str,
) -> Result<Resume, BackfillError> {
    let stored = engine
        .target
        .checkpoint(shard)
        .await
        .map_err(|e| progress_error(lane, &e))?;
    let Some(stored) = stored else {
        return Ok(Resume {
            after: None,
            ordinal: 0,
            text: None,
        });
    };
    if let Some((ordinal, key)) = tuple_of(&stored) {
        return Ok(Resume {
            text: Some(match &key {
                Some(k) => key_text(k),
                None => {
                    format!("row {ordinal} (its key was too long to record: the range starts over)")
                }
            }),
            after: key,
            ordinal,
        });
    }
    match key_of(&stored) {
        Some(k) if reader.integer_key() => Ok(Resume {
            after: Some(vec![mysql_async::Value::Bytes(k.to_string().into_bytes())]),
            ordinal: 0,
            text: Some(k.to_string()),
        }),
        _ => Err(BackfillError::Progress {
            lane: lane.to_owned(),
            error: format!(
                "the stored progress {} is not this table's (was its primary key changed?); delete the lane's checkpoint row to start over",
                stored.as_str()
            ),
        }),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_range<S: RangeSource, T: Target>(
    engine: &Engine<S, T>,
    reader: &RangeReader,
    table: &TableName,
    lane_id: &str,
    lead: Option<(i128, i128)>,
    chunk: usize,
    throttle: &Throttle,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<RangeReport, BackfillError> {
    let shard = ShardId::parse(lane_id).map_err(|e| BackfillError::Usage(e.to_string()))?;
    let resume = resume_point(engine, reader, &shard, lane_id).await?;
    let lead_column = &reader.key_columns()[0];
    let mut report = RangeReport {
        table: table.to_string(),
        lane: lane_id.to_owned(),
        range: match lead {
            Some((lo, hi)) => format!("{lead_column} {lo}..={hi}"),
            None => "every key".to_owned(),
        },
        resumed_after: resume.text.clone(),
        ..RangeReport::default()
    };
    let mut after = resume.after;
    let mut ordinal = resume.ordinal;
    // Progress is measured over the leading keys the range holds now (its
    // ends may be open), or over the table's estimated rows.
    let measure = match lead {
        Some((lo, hi)) => {
            let (seen_lo, seen_hi) = reader.bounds_within(lo, hi).await?.unwrap_or((lo, hi));
            Measure::Keys(seen_lo, (seen_hi - seen_lo + 1).max(1) as f64)
        }
        None => Measure::Rows(reader.estimated_rows().await?.max(1) as f64),
    };
    let mut done_rows = ordinal;
    loop {
        let range = KeyRange {
            after: after.as_deref(),
            lead_from: lead.map(|(lo, _)| lo),
            lead_upto: lead.map(|(_, hi)| hi),
        };
        let records = reader.read(&range, chunk).await?;
        let Some(last) = records.last().map(|r| (r.key.clone(), r.lead)) else {
            break;
        };
        let deliveries: Vec<Delivery> = records
            .into_iter()
            .map(|r| {
                ordinal += 1;
                Delivery {
                    shard_id: shard.clone(),
                    sequence_number: match (reader.integer_key(), r.lead) {
                        (true, Some(k)) => sequence_of(k),
                        _ => tuple_sequence(ordinal, &r.key),
                    },
                    partition_key: r.partition_key,
                    approximate_arrival_ms: None,
                    data: r.payload,
                }
            })
            .collect();
        let n = deliveries.len() as u64;
        let mut attempt = 0u32;
        loop {
            let result = engine.process(&deliveries).await;
            match result.retry_error {
                None => {
                    report.quarantined += result.summary.quarantined_count as u64;
                    break;
                }
                Some(error) if attempt >= 10 => {
                    return Err(BackfillError::Apply {
                        lane: lane_id.to_owned(),
                        after: after
                            .as_deref()
                            .map(key_text)
                            .unwrap_or_else(|| "(start)".into()),
                        error,
                    })
                }
                Some(error) => {
                    attempt += 1;
                    tracing::warn!(lane = lane_id, attempt, %error, "backfill chunk failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 << attempt.min(5))).await;
                }
            }
        }
        report.rows += n;
        report.batches += 1;
        done_rows += n;
        after = Some(last.0);
        progress(&Progress {
            table: report.table.clone(),
            lane: lane_id.to_owned(),
            rows: report.rows,
            done: match measure {
                Measure::Keys(seen_lo, span) => last
                    .1
                    .map_or(0.0, |k| ((k - seen_lo + 1) as f64 / span).clamp(0.0, 1.0)),
                Measure::Rows(total) => (done_rows as f64 / total).clamp(0.0, 0.99),
            },
        });
        throttle.take(n).await;
        if (n as usize) < chunk {
            break;
        }
    }
    // The range is exhausted (rows inserted later are the stream's): mark
    // an integer range done to its end.
    if let (Some((_, hi)), true) = (lead, reader.integer_key()) {
        if after
            .as_ref()
            .and_then(|k| crate::capture::integer_key(&k[0]))
            != Some(hi)
        {
            store_key(engine, &shard, hi, lane_id).await?;
        }
    }
    Ok(report)
}

/// How a lane's share done is measured.
#[derive(Clone, Copy)]
enum Measure {
    /// Over the leading keys from the first, of a span.
    Keys(i128, f64),
    /// Over the table's estimated rows.
    Rows(f64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_sequence_numbers_in_key_order() {
        let keys = [
            i64::MIN as i128,
            -1,
            0,
            1,
            i64::MAX as i128,
            u64::MAX as i128,
        ];
        for w in keys.windows(2) {
            let (a, b) = (sequence_of(w[0]), sequence_of(w[1]));
            assert!(a < b, "{} < {}", w[0], w[1]);
            assert_eq!(key_of(&a), Some(w[0]));
        }
    }

    #[test]
    fn tuple_progress_keeps_the_key_and_moves_forward_by_row() {
        use mysql_async::Value as V;
        let keys = [
            vec![V::Int(7), V::Bytes(b"en".to_vec())],
            vec![V::Bytes("tag-014-\u{fc}".as_bytes().to_vec())],
            vec![V::Bytes(vec![0xff, 0x00, 0x10]), V::UInt(u64::MAX)],
            vec![V::Date(2026, 12, 6, 7, 41, 18, 5), V::Int(-3)],
            vec![V::Time(true, 1, 2, 3, 4, 5)],
            vec![V::Bytes(b"0f8fad5b-d9cb-469f-a165-70867728950e".to_vec())],
        ];
        let mut before: Option<SequenceNumber> = None;
        for (i, key) in keys.iter().enumerate() {
            let seq = tuple_sequence(i as u64 + 1, key);
            assert_eq!(seq.as_str().len(), 129);
            assert_eq!(tuple_of(&seq), Some((i as u64 + 1, Some(key.clone()))));
            // Later rows are greater whatever their key, and greater than
            // any integer lane's progress.
            assert!(seq > sequence_of(u64::MAX as i128));
            if let Some(b) = before {
                assert!(seq > b);
            }
            before = Some(seq);
        }
        // A key too long to record: the ordinal is kept, the key is not.
        let long = vec![V::Bytes(vec![b'a'; 60])];
        assert_eq!(tuple_of(&tuple_sequence(9, &long)), Some((9, None)));
        assert_eq!(tuple_of(&sequence_of(12)), None);
    }

    #[test]
    fn parts_cover_the_range_once() {
        for (first, last, n) in [(1, 100, 3), (1, 2, 5), (-10, 10, 4), (7, 7, 1)] {
            let mut next = first;
            for i in 0..n {
                if let Some((lo, hi)) = split(first, last, n, i) {
                    assert_eq!(lo, next);
                    next = hi + 1;
                }
            }
            assert_eq!(next, last + 1);
        }
    }

    #[test]
    fn lanes_are_valid_shard_ids() {
        let t = TableName::new("recipes src", "users");
        let id = lane(&t, 2, 4, 0, 3);
        assert_eq!(id, "backfill-recipes_src.users-2of4-1of3");
        assert!(ShardId::parse(&id).is_ok());
    }
}
