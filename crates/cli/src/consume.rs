//! `dms-cdc consume`: a local event source mapping, from every shard of a
//! stream into the engine, honouring its response like Lambda.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use dms_cdc_core::mapping::{Mapping, Transforms};
use dms_cdc_devkit::consume::{ConsumeOptions, Consumer};
use dms_cdc_ops::connect::Endpoints;

/// Arguments of `dms-cdc consume`.
#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    /// Kinesis stream name.
    #[arg(long)]
    pub stream: String,
    /// Kinesis endpoint (a local emulator); default: AWS.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// The mapping file.
    #[arg(long)]
    pub mapping: PathBuf,
    /// Source URL: mysql://... or postgres://... (the scheme picks the adapter); for a
    /// mapping with [[source.instance]]s, `name=URL` per instance, separated by spaces.
    #[arg(long, env = "DMS_CDC_SOURCE_URL", hide_env_values = true)]
    pub source: String,
    /// Target URL: mysql://... or postgres://... (postgresql://); the scheme picks the adapter.
    #[arg(long, env = "DMS_CDC_TARGET_URL", hide_env_values = true)]
    pub target: String,
    /// Name under which checkpoints and quarantined records are kept.
    #[arg(long, default_value = "dms-cdc-consume")]
    pub function_name: String,
    /// Keys per source query and rows per write statement (1 to 65535; a
    /// statement never binds more than 65,535 values: wide rows get fewer per statement).
    #[arg(long, default_value_t = 500, value_parser = dms_cdc_core::target::parse_chunk_size)]
    pub chunk_size: usize,
    /// Records per batch.
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Batching window in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub batching_window_ms: u64,
    /// Retries of a failing batch before an on-failure record is written.
    #[arg(long, default_value_t = 3)]
    pub maximum_retry_attempts: u32,
    /// Give up records older than this many seconds.
    #[arg(long)]
    pub maximum_record_age_s: Option<u64>,
    /// Do not split a batch on a function error.
    #[arg(long)]
    pub no_bisect: bool,
    /// Where on-failure records go (JSON lines).
    #[arg(long)]
    pub on_failure_file: Option<PathBuf>,
    /// Where shard positions are persisted.
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// Exit after the stream has been idle this long (default: run until stopped).
    #[arg(long)]
    pub idle_exit_ms: Option<u64>,
}

/// Runs `dms-cdc consume`: exit 0 when no batch was given up, 1 when some
/// were (on-failure records written).
pub async fn run(args: ConsumeArgs, transforms: Transforms) -> anyhow::Result<ExitCode> {
    let mapping = Mapping::load(&args.mapping, &transforms)?;
    let kinesis = dms_cdc_ops::stream::client(args.endpoint.as_deref()).await;
    let arn = stream_arn(&kinesis, &args.stream).await?;
    let endpoints = Endpoints {
        source: &args.source,
        target: &args.target,
        function_name: &args.function_name,
        chunk_size: args.chunk_size,
    };
    let options = options(&args, &arn);
    let verb = Consume {
        kinesis,
        options,
        idle_exit_ms: args.idle_exit_ms,
    };
    crate::with_engine(mapping, transforms, &endpoints, verb).await
}

/// Consuming the stream, with an engine into any target.
struct Consume {
    kinesis: aws_sdk_kinesis::Client,
    options: ConsumeOptions,
    idle_exit_ms: Option<u64>,
}

impl crate::EngineVerb for Consume {
    async fn run<T: dms_cdc_core::target::Target>(
        self,
        engine: dms_cdc_core::engine::Engine<dms_cdc_devkit::capture::AnySource, T>,
    ) -> anyhow::Result<ExitCode> {
        let mut consumer = Consumer::new(self.kinesis, self.options)?;
        let idle = Duration::from_millis(self.idle_exit_ms.unwrap_or(u64::MAX / 4));
        let summary = consumer
            .run_until_idle(&engine, idle, Duration::from_secs(u64::MAX / 4))
            .await?;
        outln!(
            "consumed {} records in {} invocations; {} batches given up (on-failure records)",
            summary.record_count,
            summary.invocation_count,
            summary.on_failure_count
        );
        Ok(if summary.on_failure_count == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }
}

/// The stream's ARN (what on-failure records name).
async fn stream_arn(kinesis: &aws_sdk_kinesis::Client, stream: &str) -> anyhow::Result<String> {
    let summary = kinesis
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "stream {stream}: {}",
                aws_sdk_kinesis::error::DisplayErrorContext(e)
            )
        })?;
    Ok(summary
        .stream_description_summary()
        .map(|d| d.stream_arn().to_owned())
        .unwrap_or_default())
}

/// The event source mapping's settings from the arguments.
fn options(args: &ConsumeArgs, arn: &str) -> ConsumeOptions {
    let mut options = ConsumeOptions::new(&args.stream, arn);
    options.batch_size = args.batch_size;
    options.batching_window = Duration::from_millis(args.batching_window_ms);
    options.maximum_retry_attempts = args.maximum_retry_attempts;
    options.maximum_record_age = args.maximum_record_age_s.map(Duration::from_secs);
    options.bisect_on_function_error = !args.no_bisect;
    options.on_failure_file = args.on_failure_file.clone();
    options.state_file = args.state_file.clone();
    options
}
