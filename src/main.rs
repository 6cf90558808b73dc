//! The `dms-cdc` command line: local replay of recorded Kinesis events
//! through the same engine the Lambda functions run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use dms_cdc::dms::deliveries;
use dms_cdc::engine::{BatchReport, Engine, Outcome, Settings};
use dms_cdc::mapping::{Mapping, Transforms};
use dms_cdc::replay::{dry_run, event_files, read_event};
use dms_cdc::source::pool;
use dms_cdc::target::MysqlTarget;

/// Continuous sync from AWS DMS change records on Kinesis into MySQL and PostgreSQL.
#[derive(Parser)]
#[command(name = "dms-cdc", version, about)]
struct Cli {
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
        /// Source MySQL URL (mysql://user:password@host:port/database), for re-queries.
        #[arg(long, required_unless_present = "dry_run")]
        source: Option<String>,
        /// Target MySQL URL.
        #[arg(long, required_unless_present = "dry_run")]
        target: Option<String>,
        /// Name under which checkpoints and quarantined records are kept in the target.
        #[arg(long, default_value = "dms-cdc-replay")]
        function_name: String,
        /// Keys per source query and rows per write statement.
        #[arg(long, default_value_t = 500)]
        chunk_size: usize,
    },
    /// Validate a mapping file and print what it compiles to.
    CheckMapping {
        /// The mapping file.
        mapping: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let transforms = Transforms::standard();
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
                    let run = dry_run(&mapping, &event, &file)
                        .with_context(|| format!("replaying {}", file.display()))?;
                    println!("== {}", file.display());
                    print!("{}", run.render(&mapping, &transforms));
                }
                return Ok(ExitCode::SUCCESS);
            }
            let (Some(source), Some(target)) = (source, target) else {
                anyhow::bail!("--source and --target are required without --dry-run");
            };
            let source = pool(&source, 2).context("--source")?;
            let target_pool = pool(&target, 2).context("--target")?;
            let target = MysqlTarget::new(target_pool, function_name.clone(), chunk_size);
            if let Err(e) = target.prepare().await {
                eprintln!("error: preparing the target's bookkeeping tables: {e}");
                // A target that is down is retryable: nothing was applied, run again.
                return Ok(ExitCode::from(if e.is_retryable() { 1 } else { 2 }));
            }
            let engine = Engine {
                mapping,
                transforms,
                source,
                target,
                settings: Settings {
                    function_name,
                    chunk_size,
                },
            };
            let mut all_done = true;
            for file in files {
                let event = read_event(&file)?;
                let deliveries =
                    deliveries(&event).with_context(|| format!("{}", file.display()))?;
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
