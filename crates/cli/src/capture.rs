//! `dms-cdc capture`: a local DMS, from a MySQL/MariaDB binlog, or a
//! PostgreSQL's logical decoding, to a Kinesis stream or a fixture file.

use std::path::PathBuf;
use std::process::ExitCode;

use dms_cdc_core::mapping::{Mapping, Transforms};
use dms_cdc_devkit::capture::{
    current_position, BinlogPosition, CaptureOptions, ColumnFilter, Snapshot,
};
use dms_cdc_devkit::pipeline::{
    capture_to_file, capture_to_stream, load_position, CaptureSummary, StopAt,
};
use dms_cdc_mysql::source::pool;

/// Arguments of `dms-cdc capture`.
#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// Source URL: `mysql://` (the user needs REPLICATION SLAVE and
    /// REPLICATION CLIENT) or `postgres://` (`wal_level = logical`; the
    /// user needs REPLICATION, see infra/source/postgres-source.sql).
    #[arg(long, env = "DMS_CDC_SOURCE_URL", hide_env_values = true)]
    pub source: String,
    /// PostgreSQL: the replication slot (`test_decoding`), created at the
    /// first run; each run continues where the slot stands.
    #[arg(long, default_value = "dms_cdc")]
    pub slot: String,
    /// The mapping: which tables, LOB/JSON columns, before-image field name.
    #[arg(long)]
    pub mapping: PathBuf,
    /// Start at this binlog position (`file:pos`); default: the position
    /// file, else the source's current position.
    #[arg(long)]
    pub from: Option<String>,
    /// Where the position is persisted after every acknowledged put.
    #[arg(long)]
    pub position_file: Option<PathBuf>,
    /// Write a fixture file instead of putting to a stream.
    #[arg(long, conflicts_with = "stream")]
    pub to_file: Option<PathBuf>,
    /// Shards to spread a fixture file's records over.
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// Kinesis stream name.
    #[arg(long, required_unless_present = "to_file")]
    pub stream: Option<String>,
    /// Kinesis endpoint (a local emulator); default: AWS.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Keep following the binlog (default: stop when caught up).
    #[arg(long)]
    pub follow: bool,
    /// First emit `load` records of every mapped table from one consistent
    /// snapshot, then stream from the snapshot's binlog position.
    #[arg(long, conflicts_with_all = ["from", "position_file"])]
    pub snapshot: bool,
    /// Before-image columns: pk-only, non-lob or all (DMS `ColumnFilter`).
    #[arg(long, default_value = "non-lob")]
    pub column_filter: ColumnFilter,
    /// No before images (DMS `EnableBeforeImage` false).
    #[arg(long)]
    pub no_before_image: bool,
    /// Partition keys without the `schema.table.` prefix (DMS `PartitionIncludeSchemaTable` false).
    #[arg(long)]
    pub no_schema_table_prefix: bool,
    /// Write integers over 16 digits in exponent notation, as DMS does
    /// without `UseLargeIntegerValue`.
    #[arg(long)]
    pub no_large_integer_value: bool,
}

/// Runs `dms-cdc capture`.
pub async fn run(args: CaptureArgs, transforms: Transforms) -> anyhow::Result<ExitCode> {
    let mapping = Mapping::load(&args.mapping, &transforms)?;
    let mut options = CaptureOptions::from_mapping(&mapping);
    options.column_filter = args.column_filter;
    options.before_image = !args.no_before_image;
    options.schema_table_prefix = !args.no_schema_table_prefix;
    options.large_integer_value = !args.no_large_integer_value;
    let scheme = args
        .source
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase());
    if matches!(scheme.as_deref(), Some("postgres" | "postgresql")) {
        return postgres(&args, options).await;
    }
    let load = if args.snapshot {
        let tables: Vec<_> = mapping.sources.keys().cloned().collect();
        Some(dms_cdc_devkit::capture::snapshot(&pool(&args.source, 1)?, &tables, &options).await?)
    } else {
        None
    };
    let start = start_position(&args, load.as_ref()).await?;
    let summary = match &args.to_file {
        Some(path) => {
            let records = load.map(|s| s.records).unwrap_or_default();
            capture_to_file(&args.source, start, options, path, args.shards, &records).await?
        }
        None => to_stream(&args, start, options, load.as_ref()).await?,
    };
    outln!(
        "captured {} records in {} transactions; next position {}",
        summary.record_count,
        summary.transaction_count,
        summary.position.map(|p| p.to_string()).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// Where the binlog is read from: the snapshot's position, `--from`, the
/// position file, else the source's current position.
async fn start_position(
    args: &CaptureArgs,
    snapshot: Option<&Snapshot>,
) -> anyhow::Result<BinlogPosition> {
    if let Some(snapshot) = snapshot {
        return Ok(snapshot.position.clone());
    }
    Ok(match (&args.from, &args.position_file) {
        (Some(f), _) => f
            .parse::<BinlogPosition>()
            .map_err(|e| anyhow::anyhow!("--from: {e}"))?,
        (None, Some(p)) => match load_position(p)? {
            Some(pos) => pos,
            None => current_position(&pool(&args.source, 1)?).await?,
        },
        (None, None) => current_position(&pool(&args.source, 1)?).await?,
    })
}

/// Puts the snapshot's records, then the binlog's, into the stream.
async fn to_stream(
    args: &CaptureArgs,
    start: BinlogPosition,
    options: CaptureOptions,
    snapshot: Option<&Snapshot>,
) -> anyhow::Result<CaptureSummary> {
    let stream = args.stream.clone().unwrap_or_default();
    let kinesis = dms_cdc_ops::stream::client(args.endpoint.as_deref()).await;
    if let Some(snap) = snapshot {
        let records: Vec<(String, Vec<u8>)> = snap
            .records
            .iter()
            .map(|r| (r.partition_key.clone(), r.payload.clone()))
            .collect();
        dms_cdc_ops::stream::put_ordered(&kinesis, &stream, &records).await?;
        outln!("snapshot: {} load records put", records.len());
    }
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let stop = if args.follow {
        StopAt::Signal(rx)
    } else {
        StopAt::CaughtUp
    };
    Ok(capture_to_stream(
        &args.source,
        start,
        options,
        &kinesis,
        &stream,
        args.position_file.as_deref(),
        stop,
    )
    .await?)
}

/// `dms-cdc capture --source postgres://...`: the changes committed since
/// the slot's position, to the stream (the slot advances after each
/// acknowledged put) or to a fixture file (the slot advances after the
/// file is written).
async fn postgres(args: &CaptureArgs, options: CaptureOptions) -> anyhow::Result<ExitCode> {
    use dms_cdc_devkit::capture::postgres::PgCapture;
    if args.snapshot || args.from.is_some() || args.position_file.is_some() {
        anyhow::bail!(
            "--snapshot, --from and --position-file are for a MySQL source: a PostgreSQL capture continues from its --slot"
        );
    }
    let mut capture = PgCapture::connect(&args.source, &args.slot, options).await?;
    let kinesis = match &args.to_file {
        Some(_) => None,
        None => Some(dms_cdc_ops::stream::client(args.endpoint.as_deref()).await),
    };
    let stream = args.stream.clone().unwrap_or_default();
    let mut all = Vec::new();
    let mut count = 0usize;
    loop {
        let poll = capture.poll(1000).await?;
        let Some(upto) = poll.upto.clone() else {
            if args.follow {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                continue;
            }
            break;
        };
        count += poll.records.len();
        match &kinesis {
            Some(client) => {
                let records: Vec<(String, Vec<u8>)> = poll
                    .records
                    .into_iter()
                    .map(|r| (r.partition_key, r.payload))
                    .collect();
                dms_cdc_ops::stream::put_ordered(client, &stream, &records).await?;
                capture.advance(&upto).await?;
            }
            None => {
                all.extend(poll.records);
                // The slot advances once the file is written.
                if let Some(path) = &args.to_file {
                    let event = dms_cdc_devkit::pipeline::fixture_event_of(
                        all.iter()
                            .map(|r| (r.partition_key.as_str(), r.payload.as_slice(), None)),
                        args.shards,
                        "arn:aws:kinesis:us-east-1:000000000000:stream/dms-cdc-local",
                    );
                    std::fs::write(path, serde_json::to_vec_pretty(&event)?)?;
                }
                capture.advance(&upto).await?;
            }
        }
    }
    if let (Some(path), true) = (&args.to_file, all.is_empty()) {
        let event = dms_cdc_devkit::pipeline::fixture_event_of(
            std::iter::empty(),
            args.shards,
            "arn:aws:kinesis:us-east-1:000000000000:stream/dms-cdc-local",
        );
        std::fs::write(path, serde_json::to_vec_pretty(&event)?)?;
    }
    outln!("captured {count} records from slot {}", args.slot);
    Ok(ExitCode::SUCCESS)
}
