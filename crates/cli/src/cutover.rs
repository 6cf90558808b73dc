//! `dms-cdc cutover-check`: the gate before switching to the target.

use std::process::ExitCode;
use std::time::Duration;

use dms_cdc_core::engine::Engine;
use dms_cdc_core::mapping::{Mapping, Transforms};
use dms_cdc_core::quarantine::{Filter, QuarantineStore, State};
use dms_cdc_core::target::{Target, TargetRows, TargetSequences};
use dms_cdc_devkit::capture::AnySource;
use dms_cdc_devkit::capture::CaptureOptions;
use dms_cdc_ops::redrive::{first_unapplied, list_shards, ReadLimits};

use crate::reconcile::CheckArgs;

/// `dms-cdc cutover-check`: passes (exit 0) only when every shard of the
/// stream is applied up to its newest record (within --max-lag-seconds),
/// no quarantined record is open, a reconcile (full, or --sample) finds no
/// difference, and every target key column a sequence fills (an
/// auto-increment, an identity or serial column) gives values above the
/// source's greatest key (--sync-sequences raises those that do not).
/// Prints each check with PASS or FAIL and why.
///
/// Exit codes: 0 every check passed; 1 a check failed; 2 usage or
/// configuration error.
#[derive(Debug, clap::Args)]
pub struct CutoverArgs {
    /// What to reconcile.
    #[command(flatten)]
    pub check: CheckArgs,
    /// The Kinesis stream the function consumes.
    #[arg(long)]
    pub stream: String,
    /// Kinesis endpoint (a local emulator); default: AWS.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Records not applied yet pass when the oldest arrived at most this
    /// many seconds ago (in flight); 0: none may be waiting.
    #[arg(long, default_value_t = 0)]
    pub max_lag_seconds: u64,
    /// Raise target sequences (auto-increments, identity and serial key
    /// columns) that are at or below the source's greatest key: the last
    /// step before the switch, once the source is read-only.
    #[arg(long)]
    pub sync_sequences: bool,
}

/// Runs `dms-cdc cutover-check`.
pub async fn run(args: CutoverArgs, transforms: Transforms) -> anyhow::Result<ExitCode> {
    let mapping = Mapping::load(&args.check.mapping, &transforms)?;
    let endpoints = args.check.endpoints();
    let kinesis = dms_cdc_ops::stream::client(args.endpoint.as_deref()).await;
    let verb = Cutover {
        kinesis,
        stream: args.stream.clone(),
        max_lag: Duration::from_secs(args.max_lag_seconds),
        options: args.check.options(),
        capture: CaptureOptions::from_mapping(&mapping),
        sync_sequences: args.sync_sequences,
    };
    crate::with_engine(mapping, transforms, &endpoints, verb).await
}

struct Cutover {
    kinesis: aws_sdk_kinesis::Client,
    stream: String,
    max_lag: Duration,
    options: dms_cdc_devkit::reconcile::ReconcileOptions,
    capture: CaptureOptions,
    sync_sequences: bool,
}

fn line(pass: bool, check: &str, why: &str) -> bool {
    outln!("{} {check}: {why}", if pass { "PASS" } else { "FAIL" });
    pass
}

impl Cutover {
    /// Every shard applied up to its newest record.
    async fn lag<T: Target>(&self, engine: &Engine<AnySource, T>) -> anyhow::Result<bool> {
        let limits = ReadLimits::default();
        let shards = list_shards(&self.kinesis, &self.stream).await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut behind = Vec::new();
        for shard in &shards {
            let checkpoint = engine.target.checkpoint(shard).await?;
            if let Some((seq, arrival)) = first_unapplied(
                &self.kinesis,
                &self.stream,
                shard,
                checkpoint.as_ref(),
                &limits,
            )
            .await?
            {
                let age = arrival.map(|a| Duration::from_millis((now - a).max(0) as u64));
                if age.is_none_or(|a| a > self.max_lag) {
                    behind.push(format!(
                        "{shard}: not applied from {seq}{}",
                        age.map(|a| format!(" (arrived {} s ago)", a.as_secs()))
                            .unwrap_or_default()
                    ));
                }
            }
        }
        Ok(if behind.is_empty() {
            line(
                true,
                "stream",
                &format!(
                    "{} shard(s) of {} applied up to their newest record",
                    shards.len(),
                    self.stream
                ),
            )
        } else {
            line(false, "stream", &behind.join("; "))
        })
    }
}

impl crate::EngineVerb for Cutover {
    async fn run<T: Target + QuarantineStore + TargetRows + TargetSequences>(
        self,
        engine: Engine<AnySource, T>,
    ) -> anyhow::Result<ExitCode> {
        let lag = self.lag(&engine).await?;
        let open = engine
            .target
            .quarantined(&Filter {
                state: State::Open,
                ..Filter::default()
            })
            .await?;
        let quarantine = line(
            open.is_empty(),
            "quarantine",
            &if open.is_empty() {
                "no open quarantined record".to_owned()
            } else {
                format!(
                    "{} open record(s) (dms-cdc quarantine list --target ... --function-name {}): redrive or discard them",
                    open.len(),
                    engine.settings.function_name
                )
            },
        );
        let report = crate::reconcile::check(&engine, &self.capture, &self.options).await?;
        let rows = report.rows_compared();
        let diff = line(
            report.is_clean(),
            "reconcile",
            &format!(
                "{rows} rows compared, {} differences{}",
                report.differences.len(),
                if report.sampled { " (sampled)" } else { "" }
            ),
        );
        if !report.is_clean() {
            out!("{}", report.render(20));
        }
        let checks = dms_cdc_devkit::reconcile::sequences(
            &engine.source,
            &engine.target,
            &engine.mapping,
            self.sync_sequences,
        )
        .await?;
        let behind: Vec<String> = checks
            .iter()
            .filter(|c| !c.is_clear())
            .map(|c| {
                format!(
                    "{}.{} gives {} next, the source holds keys up to {}",
                    c.table,
                    c.column,
                    c.next,
                    c.source_max.unwrap_or_default()
                )
            })
            .collect();
        let sequences = line(
            behind.is_empty(),
            "sequences",
            &if !behind.is_empty() {
                format!("{} (--sync-sequences raises them)", behind.join("; "))
            } else if checks.is_empty() {
                "no target key column is filled by a sequence".to_owned()
            } else {
                checks
                    .iter()
                    .map(|c| {
                        format!(
                            "{}.{} gives {} next{}",
                            c.table,
                            c.column,
                            c.next,
                            if c.raised { " (raised)" } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        );
        Ok(if lag && quarantine && diff && sequences {
            outln!("cutover-check passed");
            ExitCode::SUCCESS
        } else {
            outln!("cutover-check failed");
            ExitCode::from(1)
        })
    }
}
