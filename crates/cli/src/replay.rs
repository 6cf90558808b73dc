//! `dms-cdc replay`: recorded Kinesis events through the engine, or
//! decoded and planned only (`--dry-run`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use dms_cdc_core::dms::into_deliveries;
use dms_cdc_core::mapping::{Mapping, Transforms};
use dms_cdc_ops::connect::Endpoints;
use dms_cdc_ops::replay::{dry_run, event_files, read_event, render_report};

use dms_cdc_core::engine::Engine;
use dms_cdc_core::source::Source;
use dms_cdc_core::target::Target;

use crate::EngineVerb;

/// Arguments of `dms-cdc replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Kinesis event files, or folders of them.
    #[arg(required = true)]
    pub events: Vec<PathBuf>,
    /// The mapping file.
    #[arg(long)]
    pub mapping: PathBuf,
    /// Decode and plan only: print the planned writes and the response; touch no database.
    #[arg(long)]
    pub dry_run: bool,
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
    /// Target URL: mysql://... or postgres://... (postgresql://); the scheme picks the adapter.
    #[arg(
        long,
        required_unless_present = "dry_run",
        env = "DMS_CDC_TARGET_URL",
        hide_env_values = true
    )]
    pub target: Option<String>,
    /// Name under which checkpoints and quarantined records are kept in the target.
    #[arg(long, default_value = "dms-cdc-replay")]
    pub function_name: String,
    /// Keys per source query and rows per write statement (1 to 65535; a
    /// statement never binds more than 65,535 values: wide rows get fewer per statement).
    #[arg(long, default_value_t = 500, value_parser = dms_cdc_core::target::parse_chunk_size)]
    pub chunk_size: usize,
}

/// Runs `dms-cdc replay`: exit 0 when every record is applied, skipped or
/// quarantined, 1 when some record is still pending.
pub async fn run(args: ReplayArgs, transforms: Transforms) -> anyhow::Result<ExitCode> {
    let mapping = Mapping::load(&args.mapping, &transforms)?;
    let files = event_files(&args.events)?;
    if args.dry_run {
        return plan_only(&mapping, &transforms, &files);
    }
    let (Some(source), Some(target)) = (&args.source, &args.target) else {
        anyhow::bail!("--source and --target are required without --dry-run");
    };
    let endpoints = Endpoints {
        source,
        target,
        function_name: &args.function_name,
        chunk_size: args.chunk_size,
    };
    // A target that is down is retryable: nothing was applied, run again.
    crate::with_engine(mapping, transforms, &endpoints, Apply { files: &files }).await
}

/// Applying the files, with an engine into any target.
struct Apply<'a> {
    files: &'a [PathBuf],
}

impl EngineVerb for Apply<'_> {
    async fn run<T: Target>(
        self,
        engine: Engine<dms_cdc_devkit::capture::AnySource, T>,
    ) -> anyhow::Result<ExitCode> {
        apply(&engine, self.files).await
    }
}

/// Prints each file's planned writes and response.
fn plan_only(
    mapping: &Mapping,
    transforms: &Transforms,
    files: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    for file in files {
        let event = read_event(file)?;
        let run = dry_run(mapping, transforms, &event, file)
            .with_context(|| format!("replaying {}", file.display()))?;
        outln!("== {}", file.display());
        out!("{}", run.render(mapping, transforms));
    }
    Ok(ExitCode::SUCCESS)
}

/// Applies each file's records through the engine and prints its report.
async fn apply<S: Source, T: Target>(
    engine: &Engine<S, T>,
    files: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let mut all_done = true;
    for file in files {
        let event = read_event(file)?;
        let deliveries = into_deliveries(event).with_context(|| format!("{}", file.display()))?;
        let report = engine.process(&deliveries).await;
        outln!("== {}", file.display());
        out!("{}", render_report(&report));
        all_done &= report.response.batch_item_failures.is_empty();
    }
    Ok(if all_done {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
