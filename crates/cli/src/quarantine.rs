//! `dms-cdc quarantine`: list, show, redrive and discard quarantined
//! records ([`dms_cdc_ops::quarantine`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use dms_cdc_core::adapter::TargetAdapter;
use dms_cdc_core::connection::Tls;
use dms_cdc_core::mapping::{Mapping, Transforms};
use dms_cdc_devkit::capture::Sources;
use dms_cdc_mysql::Mysql;
use dms_cdc_ops::connect::{engine_between, Endpoints, POOL_SIZE};
use dms_cdc_ops::quarantine::{
    discard, dry_redrive, list, redrive, render_list, show, Filter, QuarantineStore, State,
};
use dms_cdc_ops::redrive::parse_since;
use dms_cdc_postgres::Postgres;

use crate::TargetKind;

/// The target database and the function whose quarantine it is.
#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// Target URL (the database with `dms_cdc_quarantine`): mysql://... or
    /// postgres://... (postgresql://); the scheme picks the adapter.
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
                .map(parse_since)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--since: {e}"))?,
            state,
        })
    }
}

/// The state of a quarantined record, as `--state` takes it ([`State`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateArg {
    /// Not applied yet.
    Open,
    /// Redriven and applied.
    Resolved,
    /// Discarded by an operator, with a reason.
    Discarded,
    /// Any state (filter only).
    All,
}

impl From<StateArg> for State {
    fn from(state: StateArg) -> State {
        match state {
            StateArg::Open => State::Open,
            StateArg::Resolved => State::Resolved,
            StateArg::Discarded => State::Discarded,
            StateArg::All => State::All,
        }
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
        state: StateArg,
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
    Redrive(RedriveArgs),
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

/// Arguments of `dms-cdc quarantine redrive`.
#[derive(Debug, clap::Args)]
pub struct RedriveArgs {
    /// Target and function.
    #[command(flatten)]
    pub db: TargetArgs,
    /// Only these row ids (default: every open record matching the filters).
    pub ids: Vec<u64>,
    /// Filters.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// The (fixed) mapping file.
    #[arg(long)]
    pub mapping: PathBuf,
    /// Source URL: mysql://... or postgres://... (the scheme picks the adapter); for a
    /// mapping with [[source.instance]]s, `name=URL` per instance, separated by spaces.
    /// Used for re-queries.
    #[arg(
        long,
        required_unless_present = "dry_run",
        env = "DMS_CDC_SOURCE_URL",
        hide_env_values = true
    )]
    pub source: Option<String>,
    /// Decode, plan and build rows from images only: show whether the mapping now accepts them.
    #[arg(long)]
    pub dry_run: bool,
    /// Keys per source query and rows per write statement (1 to 65535; a
    /// statement never binds more than 65,535 values: wide rows get fewer per statement).
    #[arg(long, default_value_t = 500, value_parser = dms_cdc_core::target::parse_chunk_size)]
    pub chunk_size: usize,
}

impl QuarantineCommand {
    /// The `--target` URL of the command.
    fn target(&self) -> &str {
        match self {
            QuarantineCommand::List { db, .. }
            | QuarantineCommand::Show { db, .. }
            | QuarantineCommand::Discard { db, .. } => &db.target,
            QuarantineCommand::Redrive(args) => &args.db.target,
        }
    }
}

/// Runs `dms-cdc quarantine ...` (exit codes: see [`QuarantineCommand`])
/// against the target of the `--target` URL's scheme.
pub async fn run(command: QuarantineCommand, transforms: Transforms) -> anyhow::Result<ExitCode> {
    match TargetKind::of(command.target())? {
        TargetKind::Mysql => run_on::<Mysql>(command, transforms).await,
        TargetKind::Postgres => run_on::<Postgres>(command, transforms).await,
        TargetKind::OpenSearch => {
            run_on::<dms_cdc_opensearch::OpenSearch>(command, transforms).await
        }
    }
}

/// The function's quarantine in the target at `db`, its bookkeeping
/// tables created if missing.
async fn store<T: TargetAdapter>(db: &TargetArgs) -> anyhow::Result<T::Target> {
    let target = T::target(&db.target, &Tls::default(), POOL_SIZE, &db.function_name, 1)
        .context("--target")?;
    target.open().await?;
    Ok(target)
}

async fn run_on<T: TargetAdapter>(
    command: QuarantineCommand,
    transforms: Transforms,
) -> anyhow::Result<ExitCode> {
    match command {
        QuarantineCommand::List { db, filter, state } => {
            let store = store::<T>(&db).await?;
            let rows = list(&store, &filter.filter(state.into(), vec![])?).await?;
            out!("{}", render_list(&rows));
            Ok(ExitCode::SUCCESS)
        }
        QuarantineCommand::Show { db, id } => show_one::<T>(&db, id).await,
        QuarantineCommand::Discard { db, id, reason } => discard_one::<T>(&db, id, &reason).await,
        QuarantineCommand::Redrive(args) => redrive_open::<T>(args, transforms).await,
    }
}

/// `show`: exit 2 when there is no such record.
async fn show_one<T: TargetAdapter>(db: &TargetArgs, id: u64) -> anyhow::Result<ExitCode> {
    let store = store::<T>(db).await?;
    match show(&store, id).await? {
        Some(r) => {
            out!("{}", r.render());
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

/// `discard`: exit 2 when there is no such open record.
async fn discard_one<T: TargetAdapter>(
    db: &TargetArgs,
    id: u64,
    reason: &str,
) -> anyhow::Result<ExitCode> {
    let store = store::<T>(db).await?;
    if discard(&store, id, reason).await? {
        outln!("record {id} discarded: {reason}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: no open quarantined record {id} for function {} (see `quarantine show {id}`)",
            db.function_name
        );
        Ok(ExitCode::from(2))
    }
}

/// `redrive` (or its dry run): exit 1 when records are left open.
async fn redrive_open<T: TargetAdapter>(
    args: RedriveArgs,
    transforms: Transforms,
) -> anyhow::Result<ExitCode> {
    let mapping = Mapping::load(&args.mapping, &transforms)?;
    let db = &args.db;
    let filter = args.filter.filter(State::Open, args.ids.clone())?;
    if args.dry_run {
        let store = store::<T>(db).await?;
        let rows = list(&store, &filter).await?;
        let dry = dry_redrive(&mapping, &transforms, &rows);
        out!("{}", dry.render());
        return Ok(if dry.still_failing() == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let Some(source) = &args.source else {
        anyhow::bail!("--source is required without --dry-run");
    };
    let endpoints = Endpoints {
        source,
        target: &db.target,
        function_name: &db.function_name,
        chunk_size: args.chunk_size,
    };
    let engine = match engine_between::<Sources, T>(mapping, transforms, &endpoints).await {
        Ok(engine) => engine,
        Err(e) => return Ok(crate::stop(&e)),
    };
    let report = redrive(&engine, &filter).await?;
    out!("{}", report.render());
    Ok(if report.still_failing() == 0 && !report.pending() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
