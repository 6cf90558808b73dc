//! The `dms-cdc` command line: local replay of recorded Kinesis events
//! through the same engine the Lambda functions run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use dms_cdc::mapping::{Mapping, Transforms};
use dms_cdc::replay::{dry_run, event_files, read_event};

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
    },
    /// Validate a mapping file and print what it compiles to.
    CheckMapping {
        /// The mapping file.
        mapping: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let transforms = Transforms::standard();
    match cli.command {
        Command::Replay {
            events,
            mapping,
            dry_run: dry,
        } => {
            let mapping = Mapping::load(&mapping, &transforms)?;
            if !dry {
                anyhow::bail!("replay against databases is not built yet: use --dry-run");
            }
            for file in event_files(&events)? {
                let event = read_event(&file)?;
                let run = dry_run(&mapping, &event, &file)
                    .with_context(|| format!("replaying {}", file.display()))?;
                println!("== {}", file.display());
                print!("{}", run.render(&mapping, &transforms));
            }
            Ok(ExitCode::SUCCESS)
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
