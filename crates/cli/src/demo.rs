//! `dms-cdc demo`: the whole pipeline on this machine with the sample
//! domain, and its summary.

use std::process::ExitCode;

use dms_cdc_devkit::demo::{DemoReport, DemoSource, DemoTarget};

/// Arguments of `dms-cdc demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The kind of source database to start, change and capture.
    #[arg(long, value_enum, default_value = "mysql")]
    pub source: SourceArg,
    /// The kind of target database to start and write.
    #[arg(long, value_enum, default_value = "mysql")]
    pub target: TargetArg,
}

/// `--source` of `dms-cdc demo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceArg {
    /// A MariaDB, captured from its binlog (the MySQL source).
    Mysql,
    /// A PostgreSQL with `wal_level = logical`, captured through a
    /// `test_decoding` slot (the PostgreSQL source).
    Postgres,
}

/// `--target` of `dms-cdc demo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetArg {
    /// A MariaDB (the MySQL target).
    Mysql,
    /// A PostgreSQL (the PostgreSQL target).
    Postgres,
    /// A single OpenSearch node (the OpenSearch target).
    Opensearch,
}

/// Runs `dms-cdc demo` from the current folder (the repository): exit 0
/// with zero differences between source and target, 1 with some.
pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let repo = std::env::current_dir()?;
    let mut stdout = std::io::stdout();
    let source = match args.source {
        SourceArg::Mysql => DemoSource::Mysql,
        SourceArg::Postgres => DemoSource::Postgres,
    };
    let target = match args.target {
        TargetArg::Mysql => DemoTarget::Mysql,
        TargetArg::Postgres => DemoTarget::Postgres,
        TargetArg::Opensearch => DemoTarget::OpenSearch,
    };
    let report = dms_cdc_devkit::demo::run(&repo, source, target, &mut stdout).await?;
    print_summary(&report);
    Ok(if report.differences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_summary(report: &DemoReport) {
    outln!("\n== summary");
    outln!("changes captured:   {}", report.captured);
    outln!("records consumed:   {}", report.consumed);
    for (table, (upserts, deletes)) in &report.writes {
        outln!("writes {table}: {upserts} upserted, {deletes} deleted");
    }
    outln!("quarantined:        {}", report.quarantined.len());
    for (seq, class, reason) in &report.quarantined {
        outln!("  {seq} [{class}] {reason}");
    }
    outln!(
        "replication lag (ReplicationLag per batch): p50 {} ms, p99 {} ms (commit times have 1 s resolution)",
        report.latency_ms.0, report.latency_ms.1
    );
    outln!(
        "source vs target: {} rows compared, {} differences",
        report.compared,
        report.differences.len()
    );
    for d in &report.differences {
        outln!("  {d}");
    }
}
