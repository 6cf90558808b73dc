//! `dms-cdc redrive`: shard ranges that Lambda gave up on (on-failure
//! records from SQS or a file, or manual ranges), read again from the
//! stream and applied through the engine ([`dms_cdc_ops::redrive`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use dms_cdc_core::engine::Engine;
use dms_cdc_core::mapping::{Mapping, Transforms};
use dms_cdc_core::position::{SequenceNumber, ShardId};
use dms_cdc_core::source::Source;
use dms_cdc_core::target::Target;
use dms_cdc_devkit::capture::AnySource;
use dms_cdc_mysql::MysqlTarget;
use dms_cdc_ops::connect::Endpoints;
use dms_cdc_ops::redrive::{
    first_checkpoint_gap, parse_since, ranges_since, sqs_client, Apply, OnFailureQueue, Progress,
    Range, ReadLimits, Redrive, RunSummary, Start,
};

use crate::EngineVerb;
/// `dms-cdc redrive`: re-read shard ranges from the stream and apply them.
///
/// Exit codes: 0 every range applied (or planned, with --dry-run) and its
/// on-failure record removed; 1 something failed retryably (target,
/// source or Kinesis down or throttled; an unparsable on-failure record):
/// nothing is lost, the records are kept, run again; 2 usage or
/// configuration error (including a manual range that would move the
/// checkpoint past records the function has not applied); 3 records are
/// lost (no longer in the stream): the exact ranges are printed and the
/// on-failure records kept.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("ranges").required(true).args(["from_queue", "shard", "since"])))]
pub struct RedriveArgs {
    /// On-failure records: an SQS queue URL (http:// or https://), or a file of JSON lines.
    #[arg(long)]
    pub from_queue: Option<String>,
    /// A manual range: the shard id (with --from, optionally --to).
    #[arg(long, requires = "from")]
    pub shard: Option<String>,
    /// First sequence number of the manual range (inclusive).
    #[arg(long, requires = "shard")]
    pub from: Option<String>,
    /// Last sequence number of the manual range (inclusive); default: the newest record.
    #[arg(long, requires = "shard")]
    pub to: Option<String>,
    /// Every shard from this time (RFC 3339, or `YYYY-MM-DD HH:MM:SS` in UTC) to the newest record.
    #[arg(long)]
    pub since: Option<String>,
    /// Stream name (required for --shard and --since; default for queue records: from their streamArn).
    #[arg(long)]
    pub stream: Option<String>,
    /// Kinesis endpoint (a local emulator); default: AWS.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// SQS endpoint (a local emulator); default: AWS.
    #[arg(long)]
    pub sqs_endpoint: Option<String>,
    /// The mapping file.
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
    /// Target URL: mysql://... or postgres://... (postgresql://); the scheme picks the adapter.
    #[arg(
        long,
        required_unless_present = "dry_run",
        env = "DMS_CDC_TARGET_URL",
        hide_env_values = true
    )]
    pub target: Option<String>,
    /// The function's name: checkpoints and quarantined records are kept under it.
    #[arg(long, required_unless_present = "dry_run")]
    pub function_name: Option<String>,
    /// Keys per source query and rows per write statement (1 to 65535; a
    /// statement never binds more than 65,535 values: wide rows get fewer per statement).
    #[arg(long, default_value_t = 500, value_parser = dms_cdc_core::target::parse_chunk_size)]
    pub chunk_size: usize,
    /// Records per GetRecords call and per engine batch.
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
    /// Decode and plan only: print what would be written per target table; remove no on-failure record.
    #[arg(long)]
    pub dry_run: bool,
    /// How long a received SQS message stays hidden while its range is redriven (seconds).
    #[arg(long, default_value_t = 900)]
    pub visibility_timeout: u64,
    /// Stop after this many SQS messages.
    #[arg(long)]
    pub max_messages: Option<usize>,
    /// Apply a manual range even if it moves the checkpoint past records the function has not applied.
    #[arg(long)]
    pub allow_checkpoint_gap: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `dms-cdc redrive` (exit codes: see [`RedriveArgs`]).
pub async fn run(args: RedriveArgs, transforms: Transforms) -> anyhow::Result<ExitCode> {
    let mapping = Mapping::load(&args.mapping, &transforms)?;
    let kinesis = dms_cdc_ops::stream::client(args.endpoint.as_deref()).await;
    let limits = ReadLimits {
        batch_size: args.batch_size.clamp(1, 10_000),
        ..ReadLimits::default()
    };
    if args.dry_run {
        let verb = Redriving {
            args: &args,
            mapping: &mapping,
            transforms: &transforms,
            kinesis: &kinesis,
            limits,
        };
        return verb.redrive::<AnySource, MysqlTarget>(None).await;
    }
    let (Some(source), Some(target), Some(function_name)) =
        (&args.source, &args.target, &args.function_name)
    else {
        anyhow::bail!("--source, --target and --function-name are required without --dry-run");
    };
    let endpoints = Endpoints {
        source,
        target,
        function_name,
        chunk_size: args.chunk_size,
    };
    let verb = Redriving {
        args: &args,
        mapping: &mapping,
        transforms: &transforms,
        kinesis: &kinesis,
        limits,
    };
    crate::with_engine(mapping.clone(), transforms.clone(), &endpoints, verb).await
}

/// Redriving the ranges, with an engine into any target or none (dry run).
struct Redriving<'a> {
    args: &'a RedriveArgs,
    mapping: &'a Mapping,
    transforms: &'a Transforms,
    kinesis: &'a aws_sdk_kinesis::Client,
    limits: ReadLimits,
}

impl EngineVerb for Redriving<'_> {
    async fn run<T: Target>(self, engine: Engine<AnySource, T>) -> anyhow::Result<ExitCode> {
        self.redrive(Some(&engine)).await
    }
}

impl Redriving<'_> {
    /// Applies (or, without an engine, plans) the ranges and prints the summary.
    async fn redrive<S: Source, T: Target>(
        self,
        engine: Option<&Engine<S, T>>,
    ) -> anyhow::Result<ExitCode> {
        let args = self.args;
        let apply = match engine {
            Some(e) => Apply::Engine(e),
            None => Apply::DryRun {
                mapping: self.mapping,
                transforms: self.transforms,
            },
        };
        let redrive = Redrive {
            kinesis: self.kinesis,
            apply,
            limits: self.limits,
            stream: args.stream.clone(),
            verbose: true,
        };
        let mut progress = Progress::new(!args.quiet, None);
        let summary = match &args.from_queue {
            Some(queue) => from_queue(args, &redrive, queue, &mut progress).await?,
            None => {
                let ranges = manual_ranges(args, self.kinesis).await?;
                if let (Some(engine), false) = (engine, args.allow_checkpoint_gap) {
                    if let Some(gap) =
                        first_checkpoint_gap(self.kinesis, engine, &ranges, &redrive.limits).await?
                    {
                        eprintln!("error: {gap}, or pass --allow-checkpoint-gap.");
                        return Ok(ExitCode::from(2));
                    }
                }
                redrive.ranges(ranges, &mut progress).await
            }
        };
        outln!("\n== summary");
        out!("{}", summary.render());
        Ok(ExitCode::from(summary.exit_code()))
    }
}

/// Redrives the on-failure records of `--from-queue`.
async fn from_queue(
    args: &RedriveArgs,
    redrive: &Redrive<'_>,
    queue: &str,
    progress: &mut Progress,
) -> anyhow::Result<RunSummary> {
    match OnFailureQueue::parse(queue) {
        OnFailureQueue::Sqs(url) => {
            let sqs = sqs_client(args.sqs_endpoint.as_deref()).await;
            redrive
                .sqs(
                    &sqs,
                    &url,
                    Duration::from_secs(args.visibility_timeout),
                    args.max_messages,
                    progress,
                )
                .await
        }
        OnFailureQueue::File(path) => redrive.file(&path, progress).await,
    }
}

/// The ranges of `--shard/--from/--to`, or of `--since` (every shard).
async fn manual_ranges(
    args: &RedriveArgs,
    kinesis: &aws_sdk_kinesis::Client,
) -> anyhow::Result<Vec<Range>> {
    let Some(stream) = args.stream.clone() else {
        anyhow::bail!("--stream is required with --shard and --since");
    };
    let Some(shard) = &args.shard else {
        let since = parse_since(args.since.as_deref().unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
        return Ok(ranges_since(kinesis, &stream, since).await?);
    };
    let from = SequenceNumber::parse(args.from.as_deref().unwrap_or_default())
        .map_err(|e| anyhow::anyhow!("--from: {e}"))?;
    let to = args
        .to
        .as_deref()
        .map(SequenceNumber::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--to: {e}"))?;
    if to.as_ref().is_some_and(|t| *t < from) {
        anyhow::bail!("--to is before --from");
    }
    Ok(vec![Range {
        stream,
        shard: ShardId(shard.as_str().into()),
        start: Start::At(from),
        end: to,
    }])
}
