//! Operating the quarantine table (`dms_cdc_quarantine`): list, show,
//! redrive after a mapping fix, discard.
//!
//! A row is open (`resolved = 0`), resolved (`1`: redriven and applied;
//! `resolution` says when) or discarded (`2`: `resolution` holds the
//! reason). Rows are never deleted: they stay for audit. A redrive decodes
//! the stored raw payload again and applies it through the engine without
//! the checkpoint skip ([`Engine::process_redrive`]), one record per
//! transaction: success marks the row resolved; a record that fails again
//! is quarantined again by the engine itself, which increments `attempts`
//! and records the new error on the same row.

use anyhow::Context as _;
use mysql_async::prelude::*;
use mysql_async::Pool;

use crate::dms::Delivery;
use crate::engine::{Engine, Outcome};
use crate::mapping::{Mapping, Transforms};
use crate::position::{SequenceNumber, ShardId};
use crate::redrive::{dry_plan, DryPlan};
use dms_cdc_core::source::Source;
use dms_cdc_core::target::Target;

/// `resolved` value of a resolved row.
pub const RESOLVED: i64 = 1;
/// `resolved` value of a discarded row.
pub const DISCARDED: i64 = 2;

/// The state of a quarantined record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not applied yet.
    Open,
    /// Redriven and applied.
    Resolved,
    /// Discarded by an operator, with a reason.
    Discarded,
    /// Any state (filter only).
    All,
}

impl State {
    fn of(resolved: i64) -> State {
        match resolved {
            0 => State::Open,
            RESOLVED => State::Resolved,
            _ => State::Discarded,
        }
    }

    /// How the state is written (`open`, `resolved`, `discarded`, `all`).
    pub fn name(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Resolved => "resolved",
            State::Discarded => "discarded",
            State::All => "all",
        }
    }
}

/// One row of `dms_cdc_quarantine`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// Row id.
    pub id: u64,
    /// Shard.
    pub shard_id: ShardId,
    /// Sequence number.
    pub sequence_number: SequenceNumber,
    /// `schema.table`, when known.
    pub table: Option<String>,
    /// Operation, when known.
    pub operation: Option<String>,
    /// The raw payload.
    pub raw: Vec<u8>,
    /// `decode`, `plan`, `evaluate`, `write`, `ddl`.
    pub class: String,
    /// The latest error.
    pub message: String,
    /// First seen (UTC).
    pub first_seen: String,
    /// Last seen (UTC).
    pub last_seen: String,
    /// Attempts.
    pub attempts: u32,
    /// State.
    pub state: State,
    /// `redriven <time>`, or `discarded <time>: <reason>`.
    pub resolution: Option<String>,
}

/// Which rows.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Only these ids (empty: any).
    pub ids: Vec<u64>,
    /// `schema.table` (or just the table name).
    pub table: Option<String>,
    /// Error class.
    pub class: Option<String>,
    /// First seen at or after this time (UTC).
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// State.
    pub state: State,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            ids: Vec::new(),
            table: None,
            class: None,
            since: None,
            state: State::Open,
        }
    }
}

const COLUMNS: &str = "id, shard_id, sequence_number, table_name, operation, raw_record, error_class, error_message,
     DATE_FORMAT(first_seen, '%Y-%m-%d %H:%i:%s.%f'), DATE_FORMAT(last_seen, '%Y-%m-%d %H:%i:%s.%f'),
     attempts, resolved, resolution";

fn from_row(row: mysql_async::Row) -> Result<Quarantined, mysql_async::Error> {
    fn col<T: mysql_async::prelude::FromValue>(
        row: &mysql_async::Row,
        i: usize,
    ) -> Result<T, mysql_async::Error> {
        match row.get_opt::<T, usize>(i) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(mysql_async::Error::Other(
                format!("dms_cdc_quarantine column {i}: {e}").into(),
            )),
            None => Err(mysql_async::Error::Other(
                format!("dms_cdc_quarantine column {i} missing").into(),
            )),
        }
    }
    let seq: String = col(&row, 2)?;
    Ok(Quarantined {
        id: col(&row, 0)?,
        shard_id: ShardId(col(&row, 1)?),
        sequence_number: SequenceNumber::parse(&seq).map_err(|e| {
            mysql_async::Error::Other(format!("dms_cdc_quarantine.sequence_number: {e}").into())
        })?,
        table: col(&row, 3)?,
        operation: col(&row, 4)?,
        raw: col(&row, 5)?,
        class: col(&row, 6)?,
        message: col(&row, 7)?,
        first_seen: col(&row, 8)?,
        last_seen: col(&row, 9)?,
        attempts: col::<i64>(&row, 10)?.max(0) as u32,
        state: State::of(col(&row, 11)?),
        resolution: col(&row, 12)?,
    })
}

/// Lists rows of `function_name` matching `filter`, in stream order (shard,
/// then sequence number).
pub async fn list(
    pool: &Pool,
    function_name: &str,
    filter: &Filter,
) -> Result<Vec<Quarantined>, mysql_async::Error> {
    let mut sql = format!("SELECT {COLUMNS} FROM dms_cdc_quarantine WHERE function_name = ?");
    let mut params: Vec<mysql_async::Value> = vec![function_name.into()];
    match filter.state {
        State::All => {}
        State::Open => sql.push_str(" AND resolved = 0"),
        State::Resolved => sql.push_str(&format!(" AND resolved = {RESOLVED}")),
        State::Discarded => sql.push_str(&format!(" AND resolved = {DISCARDED}")),
    }
    if !filter.ids.is_empty() {
        sql.push_str(&format!(
            " AND id IN ({})",
            vec!["?"; filter.ids.len()].join(", ")
        ));
        params.extend(filter.ids.iter().map(|i| mysql_async::Value::from(*i)));
    }
    if let Some(t) = &filter.table {
        if t.contains('.') {
            sql.push_str(" AND table_name = ?");
        } else {
            sql.push_str(" AND SUBSTRING_INDEX(table_name, '.', -1) = ?");
        }
        params.push(t.as_str().into());
    }
    if let Some(c) = &filter.class {
        sql.push_str(" AND error_class = ?");
        params.push(c.as_str().into());
    }
    if let Some(s) = &filter.since {
        sql.push_str(" AND first_seen >= ?");
        params.push(s.format("%Y-%m-%d %H:%M:%S%.6f").to_string().into());
    }
    sql.push_str(" ORDER BY shard_id, LENGTH(sequence_number), sequence_number");
    let mut conn = pool.get_conn().await?;
    conn.query_drop("SET time_zone = '+00:00'").await?;
    let rows: Vec<mysql_async::Row> = conn.exec(sql, params).await?;
    rows.into_iter().map(from_row).collect()
}

/// One row by id.
pub async fn show(
    pool: &Pool,
    function_name: &str,
    id: u64,
) -> Result<Option<Quarantined>, mysql_async::Error> {
    let filter = Filter {
        ids: vec![id],
        state: State::All,
        ..Filter::default()
    };
    Ok(list(pool, function_name, &filter).await?.into_iter().next())
}

/// Marks an open row discarded with `reason` (kept for audit). Returns
/// whether an open row was found.
pub async fn discard(
    pool: &Pool,
    function_name: &str,
    id: u64,
    reason: &str,
) -> Result<bool, mysql_async::Error> {
    let mut conn = pool.get_conn().await?;
    conn.query_drop("SET time_zone = '+00:00'").await?;
    conn.exec_drop(
        "UPDATE dms_cdc_quarantine SET resolved = ?, last_seen = NOW(6),
             resolution = LEFT(CONCAT('discarded ', DATE_FORMAT(NOW(), '%Y-%m-%d %H:%i:%s'), ' UTC: ', ?), 200)
         WHERE function_name = ? AND id = ? AND resolved = 0",
        (DISCARDED, reason, function_name, id),
    )
    .await?;
    Ok(conn.affected_rows() == 1)
}

async fn mark_resolved(
    pool: &Pool,
    function_name: &str,
    id: u64,
) -> Result<(), mysql_async::Error> {
    let mut conn = pool.get_conn().await?;
    conn.query_drop("SET time_zone = '+00:00'").await?;
    conn.exec_drop(
        "UPDATE dms_cdc_quarantine SET resolved = ?,
             resolution = CONCAT('redriven ', DATE_FORMAT(NOW(), '%Y-%m-%d %H:%i:%s'), ' UTC')
         WHERE function_name = ? AND id = ? AND resolved = 0",
        (RESOLVED, function_name, id),
    )
    .await
}

/// What became of one redriven row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedriveResult {
    /// Applied (or needed no write): marked resolved.
    Resolved(Outcome),
    /// Failed again: quarantined again with this error (attempts incremented).
    StillFailing(String),
    /// A retryable failure (the target or source is down): left open; run again.
    Pending(String),
}

/// The result of a quarantine redrive.
#[derive(Debug, Clone, Default)]
pub struct RedriveReport {
    /// Per row: id, shard, sequence number, result.
    pub rows: Vec<(u64, ShardId, SequenceNumber, RedriveResult)>,
}

impl RedriveReport {
    /// Rows resolved.
    pub fn resolved(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| matches!(r.3, RedriveResult::Resolved(_)))
            .count()
    }

    /// Rows that failed again.
    pub fn still_failing(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| matches!(r.3, RedriveResult::StillFailing(_)))
            .count()
    }

    /// Whether a retryable failure stopped the redrive.
    pub fn pending(&self) -> bool {
        self.rows
            .iter()
            .any(|r| matches!(r.3, RedriveResult::Pending(_)))
    }
}

fn delivery_of(row: &Quarantined) -> Delivery {
    Delivery {
        shard_id: row.shard_id.clone(),
        sequence_number: row.sequence_number.clone(),
        partition_key: String::new(),
        approximate_arrival_ms: None,
        data: row.raw.clone(),
    }
}

/// Re-applies the open rows matching `filter` through `engine` (which
/// carries the fixed mapping and the function's name), one record per
/// transaction, in stream order. Stops at the first retryable failure.
pub async fn redrive<S: Source, T: Target>(
    engine: &Engine<S, T>,
    pool: &Pool,
    filter: &Filter,
) -> Result<RedriveReport, mysql_async::Error> {
    let function_name = engine.settings.function_name.as_str();
    let filter = Filter {
        state: State::Open,
        ..filter.clone()
    };
    let rows = list(pool, function_name, &filter).await?;
    let mut report = RedriveReport::default();
    for row in rows {
        let d = delivery_of(&row);
        let r = engine.process_redrive(std::slice::from_ref(&d)).await;
        let result = match (r.outcomes.first().copied(), r.retry_error) {
            (_, Some(e)) => RedriveResult::Pending(e),
            (Some(o @ (Outcome::Applied | Outcome::Skipped)), None) => {
                mark_resolved(pool, function_name, row.id).await?;
                RedriveResult::Resolved(o)
            }
            (Some(Outcome::Quarantined), None) => {
                let again = show(pool, function_name, row.id).await?;
                RedriveResult::StillFailing(again.map(|q| q.message).unwrap_or_default())
            }
            (Some(Outcome::Pending) | None, None) => {
                RedriveResult::Pending("the record was left pending".to_owned())
            }
        };
        let stop = matches!(result, RedriveResult::Pending(_));
        report.rows.push((
            row.id,
            row.shard_id.clone(),
            row.sequence_number.clone(),
            result,
        ));
        if stop {
            break;
        }
    }
    Ok(report)
}

/// A pool on the target database of `function_name`'s quarantine, its
/// bookkeeping tables prepared.
pub async fn target_pool(target: &str, function_name: &str) -> anyhow::Result<Pool> {
    let pool = crate::source::pool(target, 2).context("--target")?;
    crate::target::MysqlTarget::new(pool.clone(), function_name.to_owned(), 1)
        .prepare()
        .await?;
    Ok(pool)
}

/// What a redrive of quarantined rows would do with the (fixed) mapping,
/// without any database: per row, its planned writes or why it still fails.
#[derive(Debug, Clone, Default)]
pub struct DryRedrive {
    /// Per row: id and plan.
    pub rows: Vec<(u64, DryPlan)>,
}

/// Decodes and plans each row's raw record with `mapping` and builds the
/// rows that come from images ([`dry_plan`]); re-queried rows are checked
/// only by a real redrive.
pub fn dry_redrive(mapping: &Mapping, transforms: &Transforms, rows: &[Quarantined]) -> DryRedrive {
    DryRedrive {
        rows: rows
            .iter()
            .map(|row| (row.id, dry_plan(mapping, transforms, &[delivery_of(row)])))
            .collect(),
    }
}

impl DryRedrive {
    /// Rows that would fail again.
    pub fn still_failing(&self) -> usize {
        self.rows
            .iter()
            .filter(|(_, plan)| !plan.problems.is_empty())
            .count()
    }

    /// One line per row and a total, for a person.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (id, plan) in &self.rows {
            let writes: Vec<String> = plan
                .tables
                .iter()
                .map(|(t, p)| {
                    format!(
                        "{t}: {} from image, {} re-queried, {} deleted",
                        p.from_image, p.requery, p.deletes
                    )
                })
                .collect();
            if plan.problems.is_empty() {
                out.push_str(&format!(
                    "{id}: would apply ({})\n",
                    if writes.is_empty() {
                        "no write".to_owned()
                    } else {
                        writes.join("; ")
                    }
                ));
            } else {
                out.push_str(&format!(
                    "{id}: still fails: {}\n",
                    plan.problems.join("; ")
                ));
            }
        }
        let failing = self.still_failing();
        out.push_str(&format!(
            "{} open record(s): {} would apply, {} still fail (re-queried rows are checked only by a real redrive)\n",
            self.rows.len(),
            self.rows.len() - failing,
            failing
        ));
        out
    }
}

impl RedriveReport {
    /// One line per row and a total, for a person.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (id, shard, seq, result) in &self.rows {
            out.push_str(&match result {
                RedriveResult::Resolved(o) => format!(
                    "{id} ({shard} {seq}): resolved ({})\n",
                    if *o == Outcome::Applied {
                        "applied"
                    } else {
                        "no write needed"
                    }
                ),
                RedriveResult::StillFailing(e) => {
                    format!("{id} ({shard} {seq}): still failing, attempts incremented: {e}\n")
                }
                RedriveResult::Pending(e) => {
                    format!("{id} ({shard} {seq}): not applied (retryable, run again): {e}\n")
                }
            });
        }
        out.push_str(&format!(
            "{} record(s): {} resolved, {} still failing{}\n",
            self.rows.len(),
            self.resolved(),
            self.still_failing(),
            if self.pending() {
                "; stopped by a retryable failure"
            } else {
                ""
            }
        ));
        out
    }
}

fn short(text: &str, n: usize) -> String {
    let one_line = text.replace('\n', " ");
    if one_line.chars().count() > n {
        format!("{}…", one_line.chars().take(n).collect::<String>())
    } else {
        one_line
    }
}

/// The rows as a table for a person, one line each (the error shortened),
/// and a count.
pub fn render_list(rows: &[Quarantined]) -> String {
    let mut out = format!(
        "{:>6}  {:<9}  {:<22}  {:<56}  {:<26}  {:<8}  {:<8}  {:>3}  {:<19}  error\n",
        "id", "state", "shard", "sequence number", "table", "op", "class", "att", "first seen"
    );
    for r in rows {
        out.push_str(&format!(
            "{:>6}  {:<9}  {:<22}  {:<56}  {:<26}  {:<8}  {:<8}  {:>3}  {:<19}  {}\n",
            r.id,
            r.state.name(),
            r.shard_id.0,
            r.sequence_number.as_str(),
            r.table.as_deref().unwrap_or("-"),
            r.operation.as_deref().unwrap_or("-"),
            r.class,
            r.attempts,
            r.first_seen.get(..19).unwrap_or(&r.first_seen),
            short(&r.message, 100)
        ));
    }
    out.push_str(&format!("{} record(s)\n", rows.len()));
    out
}

impl Quarantined {
    /// Every field of the row and its raw payload (pretty JSON, else text,
    /// else hex), for a person.
    pub fn render(&self) -> String {
        let payload = match serde_json::from_slice::<serde_json::Value>(&self.raw) {
            Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
            Err(_) => match std::str::from_utf8(&self.raw) {
                Ok(s) => s.to_owned(),
                Err(_) => self.raw.iter().map(|b| format!("{b:02x}")).collect(),
            },
        };
        format!(
        "id:              {}\nstate:           {}\nresolution:      {}\nshard:           {}\nsequence number: {}\ntable:           {}\noperation:       {}\nerror class:     {}\nerror:           {}\nattempts:        {}\nfirst seen:      {} UTC\nlast seen:       {} UTC\nraw payload ({} bytes):\n{}\n",
        self.id,
        self.state.name(),
        self.resolution.as_deref().unwrap_or("-"),
        self.shard_id,
        self.sequence_number,
        self.table.as_deref().unwrap_or("-"),
        self.operation.as_deref().unwrap_or("-"),
        self.class,
        self.message,
        self.attempts,
        self.first_seen,
        self.last_seen,
        self.raw.len(),
        payload
    )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redrive::PlannedWrites;

    fn seq(n: u32) -> SequenceNumber {
        SequenceNumber::parse(&n.to_string()).expect("a sequence number")
    }

    #[test]
    fn a_redrive_report_has_a_line_per_row_and_a_total() {
        let shard = ShardId("shardId-000000000000".into());
        let report = RedriveReport {
            rows: vec![
                (
                    1,
                    shard.clone(),
                    seq(10),
                    RedriveResult::Resolved(Outcome::Applied),
                ),
                (
                    2,
                    shard.clone(),
                    seq(11),
                    RedriveResult::Resolved(Outcome::Skipped),
                ),
                (
                    3,
                    shard.clone(),
                    seq(12),
                    RedriveResult::StillFailing("bad".into()),
                ),
                (
                    4,
                    shard.clone(),
                    seq(13),
                    RedriveResult::Pending("down".into()),
                ),
            ],
        };
        assert_eq!(
            report.render(),
            "1 (shardId-000000000000 10): resolved (applied)\n\
             2 (shardId-000000000000 11): resolved (no write needed)\n\
             3 (shardId-000000000000 12): still failing, attempts incremented: bad\n\
             4 (shardId-000000000000 13): not applied (retryable, run again): down\n\
             4 record(s): 2 resolved, 1 still failing; stopped by a retryable failure\n"
        );
        assert_eq!(
            RedriveReport::default().render(),
            "0 record(s): 0 resolved, 0 still failing\n"
        );
    }

    #[test]
    fn a_dry_redrive_shows_what_would_apply_and_what_still_fails() {
        let writes = DryPlan {
            tables: [(
                "users".to_owned(),
                PlannedWrites {
                    from_image: 1,
                    requery: 2,
                    deletes: 0,
                },
            )]
            .into(),
            ..DryPlan::default()
        };
        let failing = DryPlan {
            problems: vec!["10: column x".into(), "10: column y".into()],
            ..DryPlan::default()
        };
        let dry = DryRedrive {
            rows: vec![(1, writes), (2, DryPlan::default()), (3, failing)],
        };
        assert_eq!(dry.still_failing(), 1);
        assert_eq!(
            dry.render(),
            "1: would apply (users: 1 from image, 2 re-queried, 0 deleted)\n\
             2: would apply (no write)\n\
             3: still fails: 10: column x; 10: column y\n\
             3 open record(s): 2 would apply, 1 still fail (re-queried rows are checked only by a real redrive)\n"
        );
    }
}
