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

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use mysql_async::prelude::*;
use mysql_async::Pool;

use crate::dms::Delivery;
use crate::engine::{Engine, Outcome};
use crate::mapping::{Mapping, Transforms};
use crate::position::{SequenceNumber, ShardId};
use dms_cdc_core::source::Source;
use dms_cdc_core::target::Target;

/// `resolved` value of a resolved row.
pub const RESOLVED: i64 = 1;
/// `resolved` value of a discarded row.
pub const DISCARDED: i64 = 2;

/// The state of a quarantined record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
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

    fn name(self) -> &'static str {
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

// ------------------------------------------------------------------ command line

/// The target database and the function whose quarantine it is.
#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// Target MySQL URL (the database with `dms_cdc_quarantine`).
    #[arg(long, env = "DMS_CDC_TARGET_URL", hide_env_values = true)]
    pub target: String,
    /// The function's name (rows are kept per function).
    #[arg(long)]
    pub function_name: String,
}

/// Filters shared by `list` and `redrive`.
#[derive(Debug, clap::Args)]
pub struct FilterArgs {
    /// Source table (`schema.table`, or the table name).
    #[arg(long)]
    pub table: Option<String>,
    /// Error class: decode, plan, evaluate, write, ddl.
    #[arg(long)]
    pub class: Option<String>,
    /// First quarantined at or after this time (RFC 3339, or `YYYY-MM-DD HH:MM:SS` in UTC).
    #[arg(long)]
    pub since: Option<String>,
}

impl FilterArgs {
    fn filter(&self, state: State, ids: Vec<u64>) -> anyhow::Result<Filter> {
        Ok(Filter {
            ids,
            table: self.table.clone(),
            class: self.class.clone(),
            since: self
                .since
                .as_deref()
                .map(crate::redrive::parse_since)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--since: {e}"))?,
            state,
        })
    }
}

/// `dms-cdc quarantine`: list, show, redrive and discard quarantined records.
///
/// Exit codes: 0 done; 1 a redrive left records open (failed again, or a
/// retryable failure: fix and run again); 2 usage or configuration error,
/// or no such open record.
#[derive(Debug, clap::Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined records (open ones unless --state says otherwise).
    List {
        /// Target and function.
        #[command(flatten)]
        db: TargetArgs,
        /// Filters.
        #[command(flatten)]
        filter: FilterArgs,
        /// Which rows.
        #[arg(long, value_enum, default_value = "open")]
        state: State,
    },
    /// Show one record: raw payload, error, attempts, state.
    Show {
        /// Target and function.
        #[command(flatten)]
        db: TargetArgs,
        /// Row id (from `list`).
        id: u64,
    },
    /// Re-apply open records (after a mapping fix) through the engine:
    /// success marks them resolved; failure increments attempts and records the new error.
    Redrive {
        /// Target and function.
        #[command(flatten)]
        db: TargetArgs,
        /// Only these row ids (default: every open record matching the filters).
        ids: Vec<u64>,
        /// Filters.
        #[command(flatten)]
        filter: FilterArgs,
        /// The (fixed) mapping file.
        #[arg(long)]
        mapping: PathBuf,
        /// Source MySQL URL, for re-queries.
        #[arg(
            long,
            required_unless_present = "dry_run",
            env = "DMS_CDC_SOURCE_URL",
            hide_env_values = true
        )]
        source: Option<String>,
        /// Decode, plan and build rows from images only: show whether the mapping now accepts them.
        #[arg(long)]
        dry_run: bool,
        /// Keys per source query and rows per write statement (1 to 65535; a
        /// statement never binds more than 65,535 values: wide rows get fewer per statement).
        #[arg(long, default_value_t = 500, value_parser = dms_cdc_core::target::parse_chunk_size)]
        chunk_size: usize,
    },
    /// Mark an open record discarded, with a reason (the row is kept for audit).
    Discard {
        /// Target and function.
        #[command(flatten)]
        db: TargetArgs,
        /// Row id.
        id: u64,
        /// Why it is discarded.
        #[arg(long)]
        reason: String,
    },
}

fn short(text: &str, n: usize) -> String {
    let one_line = text.replace('\n', " ");
    if one_line.chars().count() > n {
        format!("{}…", one_line.chars().take(n).collect::<String>())
    } else {
        one_line
    }
}

fn render_list(rows: &[Quarantined]) -> String {
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

fn render_show(r: &Quarantined) -> String {
    let payload = match serde_json::from_slice::<serde_json::Value>(&r.raw) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
        Err(_) => match std::str::from_utf8(&r.raw) {
            Ok(s) => s.to_owned(),
            Err(_) => r.raw.iter().map(|b| format!("{b:02x}")).collect(),
        },
    };
    format!(
        "id:              {}\nstate:           {}\nresolution:      {}\nshard:           {}\nsequence number: {}\ntable:           {}\noperation:       {}\nerror class:     {}\nerror:           {}\nattempts:        {}\nfirst seen:      {} UTC\nlast seen:       {} UTC\nraw payload ({} bytes):\n{}\n",
        r.id,
        r.state.name(),
        r.resolution.as_deref().unwrap_or("-"),
        r.shard_id,
        r.sequence_number,
        r.table.as_deref().unwrap_or("-"),
        r.operation.as_deref().unwrap_or("-"),
        r.class,
        r.message,
        r.attempts,
        r.first_seen,
        r.last_seen,
        r.raw.len(),
        payload
    )
}

async fn target_pool(db: &TargetArgs) -> anyhow::Result<Pool> {
    let pool = crate::source::pool(&db.target, 2).context("--target")?;
    crate::target::MysqlTarget::new(pool.clone(), db.function_name.clone(), 1)
        .prepare()
        .await?;
    Ok(pool)
}

/// Runs `dms-cdc quarantine ...`.
pub async fn run_cli(
    command: QuarantineCommand,
    transforms: Transforms,
) -> anyhow::Result<ExitCode> {
    match command {
        QuarantineCommand::List { db, filter, state } => {
            let pool = target_pool(&db).await?;
            let rows = list(&pool, &db.function_name, &filter.filter(state, vec![])?).await?;
            print!("{}", render_list(&rows));
            Ok(ExitCode::SUCCESS)
        }
        QuarantineCommand::Show { db, id } => {
            let pool = target_pool(&db).await?;
            match show(&pool, &db.function_name, id).await? {
                Some(r) => {
                    print!("{}", render_show(&r));
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!(
                        "error: no quarantined record {id} for function {}",
                        db.function_name
                    );
                    Ok(ExitCode::from(2))
                }
            }
        }
        QuarantineCommand::Discard { db, id, reason } => {
            let pool = target_pool(&db).await?;
            if discard(&pool, &db.function_name, id, &reason).await? {
                println!("record {id} discarded: {reason}");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "error: no open quarantined record {id} for function {} (see `quarantine show {id}`)",
                    db.function_name
                );
                Ok(ExitCode::from(2))
            }
        }
        QuarantineCommand::Redrive {
            db,
            ids,
            filter,
            mapping,
            source,
            dry_run,
            chunk_size,
        } => {
            let mapping = Mapping::load(&mapping, &transforms)?;
            let pool = target_pool(&db).await?;
            let filter = filter.filter(State::Open, ids)?;
            if dry_run {
                let rows = list(&pool, &db.function_name, &filter).await?;
                let mut failing = 0;
                for row in &rows {
                    let plan = crate::redrive::dry_plan(&mapping, &transforms, &[delivery_of(row)]);
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
                        println!(
                            "{}: would apply ({})",
                            row.id,
                            if writes.is_empty() {
                                "no write".to_owned()
                            } else {
                                writes.join("; ")
                            }
                        );
                    } else {
                        failing += 1;
                        println!("{}: still fails: {}", row.id, plan.problems.join("; "));
                    }
                }
                println!(
                    "{} open record(s): {} would apply, {} still fail (re-queried rows are checked only by a real redrive)",
                    rows.len(),
                    rows.len() - failing,
                    failing
                );
                return Ok(if failing == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            let Some(source) = source else {
                anyhow::bail!("--source is required without --dry-run");
            };
            let endpoints = crate::connect::Endpoints {
                source: &source,
                target: &db.target,
                function_name: &db.function_name,
                chunk_size,
            };
            let engine = match crate::connect::engine::<dms_cdc_mysql::Mysql>(
                mapping, transforms, &endpoints,
            )
            .await
            {
                Ok(engine) => engine,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return Ok(ExitCode::from(e.exit_code()));
                }
            };
            let report = redrive(&engine, &pool, &filter).await?;
            for (id, shard, seq, result) in &report.rows {
                match result {
                    RedriveResult::Resolved(o) => println!(
                        "{id} ({shard} {seq}): resolved ({})",
                        if *o == Outcome::Applied {
                            "applied"
                        } else {
                            "no write needed"
                        }
                    ),
                    RedriveResult::StillFailing(e) => {
                        println!("{id} ({shard} {seq}): still failing, attempts incremented: {e}")
                    }
                    RedriveResult::Pending(e) => {
                        println!("{id} ({shard} {seq}): not applied (retryable, run again): {e}")
                    }
                }
            }
            println!(
                "{} record(s): {} resolved, {} still failing{}",
                report.rows.len(),
                report.resolved(),
                report.still_failing(),
                if report.pending() {
                    "; stopped by a retryable failure"
                } else {
                    ""
                }
            );
            Ok(if report.still_failing() == 0 && !report.pending() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
