//! The `dms-cdc` command line: local replay of recorded Kinesis events
//! through the same engine the Lambda functions run, redrive, quarantine,
//! capture, consume and the demo.
//!
//! It is a library: the `dms-cdc` binary calls [`main_with`] with the
//! standard transforms, and a user whose mapping names transforms of its
//! own (registered with `Transforms::register`, as its function does) makes
//! its own binary that calls [`main_with`] with those, so replay, redrive
//! and quarantine redrive evaluate the mapping exactly as the function does:
//!
//! ```no_run
//! use dms_cdc_core::dms::Value;
//! use dms_cdc_core::mapping::Transforms;
//!
//! fn main() -> std::process::ExitCode {
//!     let mut transforms = Transforms::standard();
//!     transforms.register("upper", |args: &[&Value]| {
//!         Ok(match args.first() {
//!             Some(Value::Text(t)) => Value::Text(t.to_uppercase()),
//!             _ => Value::Null,
//!         })
//!     });
//!     tokio::runtime::Runtime::new()
//!         .expect("a runtime")
//!         .block_on(dms_cdc_cli::main_with(transforms))
//! }
//! ```
//!
//! Database URLs come from `--source`/`--target` or `DMS_CDC_SOURCE_URL`/
//! `DMS_CDC_TARGET_URL`; a password from `--source-password-file`/
//! `--target-password-file` is put into the URL, so it need not be on the
//! command line, where every user of the machine can read it (`ps`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use dms_cdc_core::connection::Tls;
use dms_cdc_core::dms::into_deliveries;
use dms_cdc_core::engine::{BatchReport, Outcome};
use dms_cdc_core::mapping::{Mapping, Transforms};
use dms_cdc_mysql::source::pool;
use dms_cdc_mysql::Mysql;
use dms_cdc_ops::connect::{engine, Endpoints};
use dms_cdc_ops::replay::{dry_run, event_files, read_event};

/// Continuous sync from AWS DMS change records on Kinesis into MySQL and PostgreSQL.
#[derive(Parser)]
#[command(name = "dms-cdc", version, about)]
struct Cli {
    /// Read the source password from FILE (one line) into the source URL, instead
    /// of a password in the URL on the command line, which other users can see (ps).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "DMS_CDC_SOURCE_PASSWORD_FILE"
    )]
    source_password_file: Option<PathBuf>,
    /// Read the target password from FILE into the target URL.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "DMS_CDC_TARGET_PASSWORD_FILE"
    )]
    target_password_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay recorded Kinesis events (files or folders of *.json) through the engine.
    ///
    /// Exit codes: 0 every record applied, skipped or quarantined; 1 some
    /// record is still pending (a retryable failure: run again); 2 usage or
    /// configuration error.
    Replay {
        /// Kinesis event files, or folders of them.
        #[arg(required = true)]
        events: Vec<PathBuf>,
        /// The mapping file.
        #[arg(long)]
        mapping: PathBuf,
        /// Decode and plan only: print the planned writes and the response; touch no database.
        #[arg(long)]
        dry_run: bool,
        /// Source MySQL URL (mysql://user@host:port/database), for re-queries.
        #[arg(
            long,
            required_unless_present = "dry_run",
            env = "DMS_CDC_SOURCE_URL",
            hide_env_values = true
        )]
        source: Option<String>,
        /// Target MySQL URL.
        #[arg(
            long,
            required_unless_present = "dry_run",
            env = "DMS_CDC_TARGET_URL",
            hide_env_values = true
        )]
        target: Option<String>,
        /// Name under which checkpoints and quarantined records are kept in the target.
        #[arg(long, default_value = "dms-cdc-replay")]
        function_name: String,
        /// Keys per source query and rows per write statement (1 to 65535; a
        /// statement never binds more than 65,535 values: wide rows get fewer per statement).
        #[arg(long, default_value_t = 500, value_parser = dms_cdc_core::target::parse_chunk_size)]
        chunk_size: usize,
    },
    /// The whole pipeline on this machine with the sample domain: source and
    /// target MariaDB, the Kinesis emulator, capture, consume, a scripted
    /// workload, a summary and a source-vs-target comparison.
    ///
    /// Exit codes: 0 zero differences; 1 differences found; 2 setup error.
    Demo,
    /// A local DMS: read a MySQL/MariaDB binlog and emit DMS-format records
    /// to a Kinesis stream, or to a fixture file (a Lambda Kinesis event).
    Capture {
        /// Source URL (the user needs REPLICATION SLAVE and REPLICATION CLIENT).
        #[arg(long, env = "DMS_CDC_SOURCE_URL", hide_env_values = true)]
        source: String,
        /// The mapping: which tables, LOB/JSON columns, before-image field name.
        #[arg(long)]
        mapping: PathBuf,
        /// Start at this binlog position (`file:pos`); default: the position
        /// file, else the source's current position.
        #[arg(long)]
        from: Option<String>,
        /// Where the position is persisted after every acknowledged put.
        #[arg(long)]
        position_file: Option<PathBuf>,
        /// Write a fixture file instead of putting to a stream.
        #[arg(long, conflicts_with = "stream")]
        to_file: Option<PathBuf>,
        /// Shards to spread a fixture file's records over.
        #[arg(long, default_value_t = 1)]
        shards: usize,
        /// Kinesis stream name.
        #[arg(long, required_unless_present = "to_file")]
        stream: Option<String>,
        /// Kinesis endpoint (a local emulator); default: AWS.
        #[arg(long)]
        endpoint: Option<String>,
        /// Keep following the binlog (default: stop when caught up).
        #[arg(long)]
        follow: bool,
        /// First emit `load` records of every mapped table from one consistent
        /// snapshot, then stream from the snapshot's binlog position.
        #[arg(long, conflicts_with_all = ["from", "position_file"])]
        snapshot: bool,
        /// Before-image columns: pk-only, non-lob or all (DMS `ColumnFilter`).
        #[arg(long, default_value = "non-lob")]
        column_filter: dms_cdc_devkit::capture::ColumnFilter,
        /// No before images (DMS `EnableBeforeImage` false).
        #[arg(long)]
        no_before_image: bool,
        /// Partition keys without the `schema.table.` prefix (DMS `PartitionIncludeSchemaTable` false).
        #[arg(long)]
        no_schema_table_prefix: bool,
        /// Write integers over 16 digits in exponent notation, as DMS does
        /// without `UseLargeIntegerValue`.
        #[arg(long)]
        no_large_integer_value: bool,
    },
    /// A local event source mapping: poll every shard of a stream and hand
    /// batches to the engine, honouring its response like Lambda.
    Consume {
        /// Kinesis stream name.
        #[arg(long)]
        stream: String,
        /// Kinesis endpoint (a local emulator); default: AWS.
        #[arg(long)]
        endpoint: Option<String>,
        /// The mapping file.
        #[arg(long)]
        mapping: PathBuf,
        /// Source MySQL URL.
        #[arg(long, env = "DMS_CDC_SOURCE_URL", hide_env_values = true)]
        source: String,
        /// Target MySQL URL.
        #[arg(long, env = "DMS_CDC_TARGET_URL", hide_env_values = true)]
        target: String,
        /// Name under which checkpoints and quarantined records are kept.
        #[arg(long, default_value = "dms-cdc-consume")]
        function_name: String,
        /// Keys per source query and rows per write statement (1 to 65535; a
        /// statement never binds more than 65,535 values: wide rows get fewer per statement).
        #[arg(long, default_value_t = 500, value_parser = dms_cdc_core::target::parse_chunk_size)]
        chunk_size: usize,
        /// Records per batch.
        #[arg(long, default_value_t = 100)]
        batch_size: usize,
        /// Batching window in milliseconds.
        #[arg(long, default_value_t = 0)]
        batching_window_ms: u64,
        /// Retries of a failing batch before an on-failure record is written.
        #[arg(long, default_value_t = 3)]
        maximum_retry_attempts: u32,
        /// Give up records older than this many seconds.
        #[arg(long)]
        maximum_record_age_s: Option<u64>,
        /// Do not split a batch on a function error.
        #[arg(long)]
        no_bisect: bool,
        /// Where on-failure records go (JSON lines).
        #[arg(long)]
        on_failure_file: Option<PathBuf>,
        /// Where shard positions are persisted.
        #[arg(long)]
        state_file: Option<PathBuf>,
        /// Exit after the stream has been idle this long (default: run until stopped).
        #[arg(long)]
        idle_exit_ms: Option<u64>,
    },
    /// Re-read shard ranges that Lambda gave up on (on-failure records from
    /// SQS or a file, or manual ranges) and apply them through the engine.
    ///
    /// Exit codes: 0 every range applied and its on-failure record removed;
    /// 1 a retryable failure (run again; nothing lost, records kept); 2 usage
    /// or configuration error; 3 records lost (no longer in the stream: the
    /// exact ranges are printed, records kept).
    Redrive(dms_cdc_ops::redrive::RedriveArgs),
    /// Quarantined records: list, show, redrive after a mapping fix, discard.
    ///
    /// Exit codes: 0 done; 1 a redrive left records open; 2 usage or
    /// configuration error, or no such open record.
    #[command(subcommand)]
    Quarantine(dms_cdc_ops::quarantine::QuarantineCommand),
    /// Validate a mapping file and print what it compiles to.
    CheckMapping {
        /// The mapping file.
        mapping: PathBuf,
    },
}

/// Runs the command line (arguments from the process) with `transforms`,
/// the ones the mapping may name. Call it from `main` inside a tokio
/// runtime; for the function's allocator behaviour, the binary sets
/// mimalloc as its global allocator and calls
/// `dms_cdc_lambda::tune_allocator` first, as `dms-cdc` does.
pub async fn main_with(transforms: Transforms) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut cli = Cli::parse();
    warn_about_passwords_in_arguments();
    if let Err(e) = resolve_connections(&mut cli) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    match run(cli, transforms).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Warns (stderr) about each argument that is a URL with a password.
fn warn_about_passwords_in_arguments() {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    for name in dms_cdc_mysql::connection::arguments_with_password(&args) {
        let instead = match ["source", "target"].iter().find(|s| name.contains(*s)) {
            Some(side) => format!(
                "DMS_CDC_{}_URL or --{side}-password-file",
                side.to_ascii_uppercase()
            ),
            None => "DMS_CDC_SOURCE_URL/DMS_CDC_TARGET_URL or --source-password-file/--target-password-file".to_owned(),
        };
        eprintln!(
            "warning: {name}: the URL has a password, and the command line is visible to other \
             users of this machine (ps); use {instead} instead"
        );
    }
}

/// The command's source and target URLs, where it has them.
fn urls_mut(command: &mut Command) -> (Option<&mut String>, Option<&mut String>) {
    use dms_cdc_ops::quarantine::QuarantineCommand as Q;
    match command {
        Command::Replay { source, target, .. } => (source.as_mut(), target.as_mut()),
        Command::Capture { source, .. } => (Some(source), None),
        Command::Consume { source, target, .. } => (Some(source), Some(target)),
        Command::Redrive(args) => (args.source.as_mut(), args.target.as_mut()),
        Command::Quarantine(Q::Redrive { db, source, .. }) => {
            (source.as_mut(), Some(&mut db.target))
        }
        Command::Quarantine(Q::List { db, .. } | Q::Show { db, .. } | Q::Discard { db, .. }) => {
            (None, Some(&mut db.target))
        }
        Command::Demo | Command::CheckMapping { .. } => (None, None),
    }
}

/// Puts the password files' passwords and the TLS variables
/// (`DMS_CDC_{SOURCE,TARGET}_SSL_{MODE,CA}`, as for the function) into the
/// command's URLs.
fn resolve_connections(cli: &mut Cli) -> anyhow::Result<()> {
    use dms_cdc_lambda::{
        tls_from_env, ENV_SOURCE_SSL_CA, ENV_SOURCE_SSL_MODE, ENV_TARGET_SSL_CA,
        ENV_TARGET_SSL_MODE,
    };
    let env = |k: &str| std::env::var(k).ok();
    let source_tls = tls_from_env(env, ENV_SOURCE_SSL_MODE, ENV_SOURCE_SSL_CA)?;
    let target_tls = tls_from_env(env, ENV_TARGET_SSL_MODE, ENV_TARGET_SSL_CA)?;
    let (source, target) = urls_mut(&mut cli.command);
    for (url, password_file, tls, side) in [
        (
            source,
            cli.source_password_file.as_deref(),
            &source_tls,
            "source",
        ),
        (
            target,
            cli.target_password_file.as_deref(),
            &target_tls,
            "target",
        ),
    ] {
        if let Some(url) = url {
            *url = resolve_url(url, password_file, tls, side)?;
        }
    }
    Ok(())
}

fn resolve_url(
    url: &str,
    password_file: Option<&Path>,
    tls: &Tls,
    side: &str,
) -> anyhow::Result<String> {
    use dms_cdc_mysql::connection::{read_password_file, with_password, with_tls};
    let url = match password_file {
        None => url.to_owned(),
        Some(file) => with_password(url, &read_password_file(file)?)
            .with_context(|| format!("--{side}-password-file"))?,
    };
    with_tls(&url, tls).with_context(|| format!("--{side}"))
}

async fn run(cli: Cli, transforms: Transforms) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Replay {
            events,
            mapping,
            dry_run: dry,
            source,
            target,
            function_name,
            chunk_size,
        } => {
            let mapping = Mapping::load(&mapping, &transforms)?;
            let files = event_files(&events)?;
            if dry {
                for file in files {
                    let event = read_event(&file)?;
                    let run = dry_run(&mapping, &transforms, &event, &file)
                        .with_context(|| format!("replaying {}", file.display()))?;
                    println!("== {}", file.display());
                    print!("{}", run.render(&mapping, &transforms));
                }
                return Ok(ExitCode::SUCCESS);
            }
            let (Some(source), Some(target)) = (source, target) else {
                anyhow::bail!("--source and --target are required without --dry-run");
            };
            let endpoints = Endpoints {
                source: &source,
                target: &target,
                function_name: &function_name,
                chunk_size,
            };
            // A target that is down is retryable: nothing was applied, run again.
            let engine = match engine::<Mysql>(mapping, transforms, &endpoints).await {
                Ok(engine) => engine,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return Ok(ExitCode::from(e.exit_code()));
                }
            };
            let mut all_done = true;
            for file in files {
                let event = read_event(&file)?;
                let deliveries =
                    into_deliveries(event).with_context(|| format!("{}", file.display()))?;
                let report = engine.process(&deliveries).await;
                println!("== {}", file.display());
                print!("{}", render_report(&report));
                all_done &= report.response.batch_item_failures.is_empty();
            }
            Ok(if all_done {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Demo => {
            let repo = std::env::current_dir()?;
            let mut stdout = std::io::stdout();
            let report = dms_cdc_devkit::demo::run(&repo, &mut stdout).await?;
            println!("\n== summary");
            println!("changes captured:   {}", report.captured);
            println!("records consumed:   {}", report.consumed);
            for (table, (upserts, deletes)) in &report.writes {
                println!("writes {table}: {upserts} upserted, {deletes} deleted");
            }
            println!("quarantined:        {}", report.quarantined.len());
            for (seq, class, reason) in &report.quarantined {
                println!("  {seq} [{class}] {reason}");
            }
            println!(
                "latency, source commit to target visible: p50 {} ms, p99 {} ms (commit times have 1 s resolution)",
                report.latency_ms.0, report.latency_ms.1
            );
            println!(
                "source vs target: {} rows compared, {} differences",
                report.compared,
                report.differences.len()
            );
            for d in &report.differences {
                println!("  {d}");
            }
            Ok(if report.differences.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Capture {
            source,
            mapping,
            from,
            position_file,
            to_file,
            shards,
            stream,
            endpoint,
            follow,
            snapshot,
            column_filter,
            no_before_image,
            no_schema_table_prefix,
            no_large_integer_value,
        } => {
            use dms_cdc_devkit::capture::{current_position, BinlogPosition, CaptureOptions};
            let mapping = Mapping::load(&mapping, &transforms)?;
            let mut options = CaptureOptions::from_mapping(&mapping);
            options.column_filter = column_filter;
            options.before_image = !no_before_image;
            options.schema_table_prefix = !no_schema_table_prefix;
            options.large_integer_value = !no_large_integer_value;
            let load = if snapshot {
                let tables: Vec<_> = mapping.sources.keys().cloned().collect();
                Some(
                    dms_cdc_devkit::capture::snapshot(&pool(&source, 1)?, &tables, &options)
                        .await?,
                )
            } else {
                None
            };
            let start = match (&from, &position_file) {
                _ if load.is_some() => load
                    .as_ref()
                    .map(|s| s.position.clone())
                    .unwrap_or_else(|| BinlogPosition::new("", 0)),
                (Some(f), _) => f
                    .parse::<BinlogPosition>()
                    .map_err(|e| anyhow::anyhow!("--from: {e}"))?,
                (None, Some(p)) => match dms_cdc_devkit::pipeline::load_position(p)? {
                    Some(pos) => pos,
                    None => current_position(&pool(&source, 1)?).await?,
                },
                (None, None) => current_position(&pool(&source, 1)?).await?,
            };
            let summary = if let Some(path) = to_file {
                let records = load.map(|s| s.records).unwrap_or_default();
                dms_cdc_devkit::pipeline::capture_to_file(
                    &source, start, options, &path, shards, &records,
                )
                .await?
            } else {
                let stream = stream.unwrap_or_default();
                let kinesis = dms_cdc_ops::stream::client(endpoint.as_deref()).await;
                if let Some(snap) = &load {
                    let records: Vec<(String, Vec<u8>)> = snap
                        .records
                        .iter()
                        .map(|r| (r.partition_key.clone(), r.payload.clone()))
                        .collect();
                    dms_cdc_ops::stream::put_ordered(&kinesis, &stream, &records).await?;
                    println!("snapshot: {} load records put", records.len());
                }
                let (_stop, rx) = tokio::sync::watch::channel(false);
                let stop = if follow {
                    dms_cdc_devkit::pipeline::StopAt::Signal(rx)
                } else {
                    dms_cdc_devkit::pipeline::StopAt::CaughtUp
                };
                dms_cdc_devkit::pipeline::capture_to_stream(
                    &source,
                    start,
                    options,
                    &kinesis,
                    &stream,
                    position_file.as_deref(),
                    stop,
                )
                .await?
            };
            println!(
                "captured {} records in {} transactions; next position {}",
                summary.record_count,
                summary.transaction_count,
                summary.position.map(|p| p.to_string()).unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Consume {
            stream,
            endpoint,
            mapping,
            source,
            target,
            function_name,
            chunk_size,
            batch_size,
            batching_window_ms,
            maximum_retry_attempts,
            maximum_record_age_s,
            no_bisect,
            on_failure_file,
            state_file,
            idle_exit_ms,
        } => {
            use dms_cdc_devkit::consume::{ConsumeOptions, Consumer};
            let mapping = Mapping::load(&mapping, &transforms)?;
            let kinesis = dms_cdc_ops::stream::client(endpoint.as_deref()).await;
            let summary = kinesis
                .describe_stream_summary()
                .stream_name(&stream)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "stream {stream}: {}",
                        aws_sdk_kinesis::error::DisplayErrorContext(e)
                    )
                })?;
            let arn = summary
                .stream_description_summary()
                .map(|d| d.stream_arn().to_owned())
                .unwrap_or_default();
            let endpoints = Endpoints {
                source: &source,
                target: &target,
                function_name: &function_name,
                chunk_size,
            };
            let engine = match engine::<Mysql>(mapping, transforms, &endpoints).await {
                Ok(engine) => engine,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return Ok(ExitCode::from(e.exit_code()));
                }
            };
            let mut options = ConsumeOptions::new(&stream, &arn);
            options.batch_size = batch_size;
            options.batching_window = std::time::Duration::from_millis(batching_window_ms);
            options.maximum_retry_attempts = maximum_retry_attempts;
            options.maximum_record_age = maximum_record_age_s.map(std::time::Duration::from_secs);
            options.bisect_on_function_error = !no_bisect;
            options.on_failure_file = on_failure_file;
            options.state_file = state_file;
            let mut consumer = Consumer::new(kinesis, options)?;
            let idle = std::time::Duration::from_millis(idle_exit_ms.unwrap_or(u64::MAX / 4));
            let summary = consumer
                .run_until_idle(&engine, idle, std::time::Duration::from_secs(u64::MAX / 4))
                .await?;
            println!(
                "consumed {} records in {} invocations; {} batches given up (on-failure records)",
                summary.record_count, summary.invocation_count, summary.on_failure_count
            );
            Ok(if summary.on_failure_count == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Redrive(args) => dms_cdc_ops::redrive::run_cli(args, transforms).await,
        Command::Quarantine(command) => dms_cdc_ops::quarantine::run_cli(command, transforms).await,
        Command::CheckMapping { mapping } => {
            let m = Mapping::load(&mapping, &transforms)?;
            for t in &m.targets {
                println!(
                    "target {} <- {} (key {}; {} columns; {} joins; {} children; {})",
                    t.table,
                    t.root,
                    t.key.join(", "),
                    t.columns.len(),
                    t.joins.len(),
                    t.children.len(),
                    if t.requery {
                        "rows re-queried"
                    } else {
                        "rows built from images"
                    }
                );
            }
            for s in m.sources.values() {
                println!("source {}: feeds {} target(s)", s.name, s.touches.len());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn render_report(report: &BatchReport) -> String {
    let s = &report.summary;
    let count = |o: Outcome| report.outcomes.iter().filter(|x| **x == o).count();
    let mut out = format!(
        "records: {} (applied {}, skipped {}, quarantined {}, pending {}); source selects: {}\n",
        s.record_count,
        count(Outcome::Applied),
        count(Outcome::Skipped),
        count(Outcome::Quarantined),
        count(Outcome::Pending),
        s.source_select_count
    );
    for (table, n) in &s.upserts {
        let deletes = s.deletes.get(table).copied().unwrap_or(0);
        out.push_str(&format!("  {table}: {n} upserted, {deletes} deleted\n"));
    }
    if let Some(e) = &report.retry_error {
        out.push_str(&format!("stopped by a retryable error: {e}\n"));
    }
    out.push_str(&format!(
        "response: {}\n",
        serde_json::to_string(&report.response).unwrap_or_default()
    ));
    out
}
