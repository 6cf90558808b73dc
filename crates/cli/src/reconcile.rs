//! `dms-cdc reconcile`: whether the target holds what the mapping makes of
//! the source, and `--repair` ([`dms_cdc_devkit::reconcile`]).

use std::path::PathBuf;
use std::process::ExitCode;

use dms_cdc_core::engine::Engine;
use dms_cdc_core::mapping::{Mapping, Transforms};
use dms_cdc_core::quarantine::QuarantineStore;
use dms_cdc_core::target::{Target, TargetRows, TargetSequences};
use dms_cdc_devkit::capture::AnySource;
use dms_cdc_devkit::capture::CaptureOptions;
use dms_cdc_devkit::reconcile::{reconcile, repair, ReconcileOptions, ReconcileReport};
use dms_cdc_ops::connect::Endpoints;

/// What to reconcile: shared with `cutover-check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The mapping file (the function's).
    #[arg(long)]
    pub mapping: PathBuf,
    /// Source URL: mysql://... or postgres://... (the scheme picks the adapter); for a
    /// mapping with [[source.instance]]s, `name=URL` per instance, separated by spaces.
    #[arg(long, env = "DMS_CDC_SOURCE_URL", hide_env_values = true)]
    pub source: String,
    /// Target URL: mysql://... or postgres://... (postgresql://); the scheme picks the adapter.
    #[arg(long, env = "DMS_CDC_TARGET_URL", hide_env_values = true)]
    pub target: String,
    /// The function's name (its checkpoints and quarantined records; a
    /// repair quarantines under it).
    #[arg(long)]
    pub function_name: String,
    /// Only this target table (repeat for several). Default: every target of the mapping.
    #[arg(long = "table")]
    pub tables: Vec<String>,
    /// Root keys per chunk (1 to 65535).
    #[arg(long, default_value_t = 1000, value_parser = dms_cdc_core::target::parse_chunk_size)]
    pub chunk_size: usize,
    /// Check one chunk in N (a quick check of huge tables; extra rows are
    /// found by a full run only). Default: every chunk.
    #[arg(long, value_name = "N")]
    pub sample: Option<usize>,
    /// Chunks checked at once (each reads the source and the target on its
    /// own connections).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
}

impl CheckArgs {
    /// The reconcile options of the arguments.
    pub fn options(&self) -> ReconcileOptions {
        ReconcileOptions {
            chunk: self.chunk_size,
            sample_every: self.sample.filter(|n| *n > 1),
            tables: self.tables.clone(),
            parallel: usize::from(self.parallel),
        }
    }

    /// Where the command reads and writes.
    pub fn endpoints(&self) -> Endpoints<'_> {
        Endpoints {
            source: &self.source,
            target: &self.target,
            function_name: &self.function_name,
            chunk_size: self.chunk_size,
        }
    }
}

/// `dms-cdc reconcile`: compare every target row with what the mapping
/// makes of the source (missing, extra, different columns), and with
/// `--repair` rewrite or delete the rows that differ through the normal
/// write path, then check again.
///
/// Exit codes: 0 no differences (after the repair, with --repair); 1
/// differences; 2 usage or configuration error.
#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {
    /// What to check.
    #[command(flatten)]
    pub check: CheckArgs,
    /// Rewrite missing and different rows and delete extra ones, then check again.
    #[arg(long)]
    pub repair: bool,
    /// The report as JSON on stdout (differences listed in full).
    #[arg(long)]
    pub json: bool,
}

/// Runs `dms-cdc reconcile`.
pub async fn run(args: ReconcileArgs, transforms: Transforms) -> anyhow::Result<ExitCode> {
    let mapping = Mapping::load(&args.check.mapping, &transforms)?;
    let endpoints = args.check.endpoints();
    let verb = Reconcile {
        options: args.check.options(),
        capture: CaptureOptions::from_mapping(&mapping),
        repair: args.repair,
        json: args.json,
    };
    crate::with_engine(mapping, transforms, &endpoints, verb).await
}

struct Reconcile {
    options: ReconcileOptions,
    capture: CaptureOptions,
    repair: bool,
    json: bool,
}

/// Reconciles the targets of `options` with `engine`'s source and target.
pub async fn check<T: Target + TargetRows>(
    engine: &Engine<AnySource, T>,
    capture: &CaptureOptions,
    options: &ReconcileOptions,
) -> anyhow::Result<ReconcileReport> {
    Ok(reconcile(
        &engine.source,
        &engine.target,
        &engine.mapping,
        &engine.transforms,
        capture,
        options,
    )
    .await?)
}

impl crate::EngineVerb for Reconcile {
    async fn run<T: Target + QuarantineStore + TargetRows + TargetSequences>(
        self,
        engine: Engine<AnySource, T>,
    ) -> anyhow::Result<ExitCode> {
        let first = check(&engine, &self.capture, &self.options).await?;
        let mut json = serde_json::json!({ "report": first });
        if !self.json {
            out!("{}", first.render(50));
        }
        let mut last_clean = first.is_clean();
        if self.repair && !first.is_clean() {
            let repaired = repair(&engine, &self.capture, &first.differences).await?;
            let again = check(&engine, &self.capture, &self.options).await?;
            if self.json {
                json["repair"] = serde_json::json!(repaired);
                json["after_repair"] = serde_json::json!(again);
            } else {
                outln!(
                    "\nrepair: {} rows rewritten, {} deleted, {} quarantined{}",
                    repaired.rewritten,
                    repaired.deleted,
                    repaired.quarantined,
                    if repaired.not_repaired.is_empty() {
                        String::new()
                    } else {
                        format!("; not repaired: {}", repaired.not_repaired.join("; "))
                    }
                );
                outln!("checked again:");
                out!("{}", again.render(50));
            }
            last_clean = again.is_clean();
        }
        if self.json {
            outln!("{}", serde_json::to_string_pretty(&json)?);
        }
        Ok(if last_clean {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }
}
