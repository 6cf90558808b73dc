//! `dms-cdc redrive` on the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::*;
use crate::mapping::{Mapping, Transforms};
use crate::position::{SequenceNumber, ShardId};

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
    /// Source MySQL URL, for re-queries.
    #[arg(
        long,
        required_unless_present = "dry_run",
        env = "DMS_CDC_SOURCE_URL",
        hide_env_values = true
    )]
    pub source: Option<String>,
    /// Target MySQL URL.
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

/// Parses `--since`: RFC 3339, or `YYYY-MM-DD HH:MM[:SS]` / `YYYY-MM-DD` in UTC.
pub fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc());
        }
    }
    Err(format!(
        "{text:?} is not a time (RFC 3339, or YYYY-MM-DD HH:MM:SS in UTC)"
    ))
}

/// Runs `dms-cdc redrive`.
pub async fn run_cli(args: RedriveArgs, transforms: Transforms) -> anyhow::Result<ExitCode> {
    let mapping = Mapping::load(&args.mapping, &transforms)?;
    let kinesis = crate::stream::client(args.endpoint.as_deref()).await;
    let limits = ReadLimits {
        batch_size: args.batch_size.clamp(1, 10_000),
        ..ReadLimits::default()
    };
    let engine = if args.dry_run {
        None
    } else {
        let (Some(source), Some(target), Some(function_name)) =
            (&args.source, &args.target, &args.function_name)
        else {
            anyhow::bail!("--source, --target and --function-name are required without --dry-run");
        };
        let endpoints = crate::connect::Endpoints {
            source,
            target,
            function_name,
            chunk_size: args.chunk_size,
        };
        match crate::connect::engine::<dms_cdc_mysql::Mysql>(
            mapping.clone(),
            transforms.clone(),
            &endpoints,
        )
        .await
        {
            Ok(engine) => Some(engine),
            Err(e) => {
                eprintln!("error: {e:#}");
                return Ok(ExitCode::from(e.exit_code()));
            }
        }
    };
    let apply = match &engine {
        Some(e) => Apply::Engine(e),
        None => Apply::DryRun {
            mapping: &mapping,
            transforms: &transforms,
        },
    };
    let redrive = Redrive {
        kinesis: &kinesis,
        apply,
        limits: limits.clone(),
        stream: args.stream.clone(),
        verbose: true,
    };
    let mut progress = Progress::new(!args.quiet, None);
    let summary = if let Some(queue) = &args.from_queue {
        if queue.starts_with("https://") || queue.starts_with("http://") {
            let sqs = sqs_client(args.sqs_endpoint.as_deref()).await;
            redrive
                .sqs(
                    &sqs,
                    queue,
                    Duration::from_secs(args.visibility_timeout),
                    args.max_messages,
                    &mut progress,
                )
                .await?
        } else {
            redrive
                .file(
                    Path::new(queue.trim_start_matches("file://")),
                    &mut progress,
                )
                .await?
        }
    } else {
        let Some(stream) = args.stream.clone() else {
            anyhow::bail!("--stream is required with --shard and --since");
        };
        let ranges = if let Some(shard) = &args.shard {
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
            vec![Range {
                stream: stream.clone(),
                shard: ShardId(shard.clone()),
                start: Start::At(from),
                end: to,
            }]
        } else {
            let since = parse_since(args.since.as_deref().unwrap_or_default())
                .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
            list_shards(&kinesis, &stream)
                .await?
                .into_iter()
                .map(|shard| Range {
                    stream: stream.clone(),
                    shard,
                    start: Start::Since(since),
                    end: None,
                })
                .collect()
        };
        if let (Some(engine), false) = (&engine, args.allow_checkpoint_gap) {
            for r in &ranges {
                if let Some((checkpoint, first)) =
                    checkpoint_gap(&kinesis, engine, r, &limits).await?
                {
                    eprintln!(
                        "error: {r}: the function's checkpoint is {}; record {first} after it and before the range is not applied yet. \
                         Redriving this range would move the checkpoint past it and the function would skip it. \
                         Start the range at {first} (or earlier), or pass --allow-checkpoint-gap.",
                        checkpoint.map(|c| c.to_string()).unwrap_or_else(|| "unset".into())
                    );
                    return Ok(ExitCode::from(2));
                }
            }
        }
        progress.total_ranges = Some(ranges.len());
        redrive.ranges(ranges, &mut progress).await
    };
    println!("\n== summary");
    print!("{}", summary.render());
    Ok(ExitCode::from(summary.exit_code()))
}
