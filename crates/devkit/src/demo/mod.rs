//! `dms-cdc demo`: the whole pipeline on this machine with the sample
//! domain. Starts a source (a MariaDB, or with `--source postgres` a
//! PostgreSQL with `wal_level = logical`), a target (a MariaDB, a
//! PostgreSQL with `--target postgres`, an OpenSearch node with `--target
//! opensearch`) and the Kinesis emulator on loopback, loads the sample
//! schema and data, runs capture and consume, plays a scripted workload on
//! the source, waits until everything is drained, prints a summary and a
//! source-vs-target comparison, and stops what it started.
//!
//! - `mysql`: the MariaDB source: a consistent snapshot, the binlog
//!   capture, the workload in MySQL SQL;
//! - `postgres`: the PostgreSQL source: a `test_decoding` slot, `load`
//!   records read in key order, the slot's capture, the workload in
//!   PostgreSQL SQL;
//! - `play`: the stream, the full load, capture, consume and the workload
//!   at once, until drained;
//! - `report`: what the consumer measured, the quarantine and the
//!   reconcile of source and target.

mod mysql;
mod play;
mod postgres;
mod report;

use std::future::Future;
use std::path::Path;
use std::time::Instant;

use crate::capture::{CaptureOptions, RangeSource};
use crate::local::{Kinesalite, MariaDb, PostgreSql};
use crate::mapping::{Mapping, Transforms};
use crate::target::MysqlTarget;
use dms_cdc_postgres::PostgresTarget;

pub use report::DemoReport;

/// The demo's function name (checkpoints and quarantine rows are kept under it).
const FUNCTION_NAME: &str = "dms-cdc-demo";

/// The demo's Kinesis stream.
const STREAM: &str = "dms-cdc-demo";

/// The kind of source database the demo captures from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DemoSource {
    /// A MariaDB (`fixtures/source.sql`), read from its binlog.
    #[default]
    Mysql,
    /// A PostgreSQL (`fixtures/source-postgres.sql`), read from its logical
    /// decoding.
    Postgres,
}

impl DemoSource {
    /// How the demo's first line names it.
    fn name(self) -> &'static str {
        match self {
            DemoSource::Mysql => "MariaDB",
            DemoSource::Postgres => "PostgreSQL (wal_level = logical)",
        }
    }
}

/// The kind of target database the demo writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoTarget {
    /// A MariaDB (`fixtures/target.sql`).
    Mysql,
    /// A PostgreSQL (`fixtures/target-postgres.sql`).
    Postgres,
    /// A single OpenSearch node (an index per target table).
    OpenSearch,
}

impl DemoTarget {
    /// How the demo's first line names it.
    fn name(self) -> &'static str {
        match self {
            DemoTarget::Mysql => "MariaDB",
            DemoTarget::Postgres => "PostgreSQL",
            DemoTarget::OpenSearch => "OpenSearch node",
        }
    }
}

/// A started source database with its local DMS: what the demo's pipeline
/// needs from a source, whatever its engine.
trait SourceDb {
    /// The engine's source adapter (its re-queries, and reconcile's reads).
    type Source: RangeSource;

    /// The scripted workload, run one statement at a time.
    const WORKLOAD: &'static [&'static str];

    /// The source adapter over the sample database.
    fn source(&self) -> anyhow::Result<Self::Source>;

    /// The `load` records (partition key, DMS document) of every table
    /// `mapping` reads, as of the point where [`SourceDb::spawn_capture`]
    /// starts.
    fn full_load(
        &mut self,
        mapping: &Mapping,
        options: &CaptureOptions,
    ) -> impl Future<Output = anyhow::Result<Vec<(String, Vec<u8>)>>>;

    /// Captures the changes after the full load onto `stream` in a
    /// background task, until `stop` is set and nothing new arrives; the
    /// task answers the number of records put.
    fn spawn_capture(
        &mut self,
        kinesis: &aws_sdk_kinesis::Client,
        options: CaptureOptions,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<usize>>>;

    /// Runs one workload statement (its own transaction).
    fn execute(&self, sql: &str) -> impl Future<Output = anyhow::Result<()>>;

    /// Closes the connections and stops the server.
    fn stop(self) -> impl Future<Output = ()>;
}

/// Runs the demo from a `source` into a `target`; `repo` is the folder
/// with `fixtures/`. Every pair of source and target kinds is supported.
pub async fn run(
    repo: &Path,
    source: DemoSource,
    target: DemoTarget,
    out: &mut impl std::io::Write,
) -> anyhow::Result<DemoReport> {
    let started = Instant::now();
    let _ = writeln!(
        out,
        "[  0.0s] starting a source {}, a target {} and the Kinesis emulator on 127.0.0.1",
        source.name(),
        target.name()
    );
    match source {
        DemoSource::Mysql => {
            let db = mysql::MariaDbSource::start(repo).await?;
            into_target(repo, db, target, started, out).await
        }
        DemoSource::Postgres => {
            let db = postgres::PgSource::start(repo).await?;
            into_target(repo, db, target, started, out).await
        }
    }
}

/// Starts the emulator and a target of `kind`, runs the pipeline from
/// `source` into it, and stops everything.
async fn into_target<S: SourceDb>(
    repo: &Path,
    mut source: S,
    kind: DemoTarget,
    started: Instant,
    out: &mut impl std::io::Write,
) -> anyhow::Result<DemoReport> {
    let kinesalite = tokio::task::spawn_blocking(Kinesalite::start).await??;
    let transforms = Transforms::standard();
    let mapping = Mapping::load(&repo.join("fixtures/mapping.toml"), &transforms)?;
    let pipeline = play::Pipeline {
        kinesalite: &kinesalite,
        mapping,
        transforms,
        started,
    };
    let report = match kind {
        DemoTarget::Mysql => {
            let db = tokio::task::spawn_blocking(|| MariaDb::start(2)).await??;
            db.run_file(&repo.join("fixtures/target.sql"))?;
            let pool = crate::source::pool(&db.url("global"), 4)?;
            let target = MysqlTarget::new(pool, FUNCTION_NAME, 500);
            let report = pipeline.run(&mut source, target, out).await;
            drop(db);
            report
        }
        DemoTarget::Postgres => {
            let db = tokio::task::spawn_blocking(PostgreSql::start).await??;
            db.create_database("global")?;
            db.run_file("global", &repo.join("fixtures/target-postgres.sql"))?;
            let pool = dms_cdc_postgres::pool(&db.url("global"), 4)?;
            let target = PostgresTarget::new(pool, FUNCTION_NAME, 500);
            let report = pipeline.run(&mut source, target, out).await;
            drop(db);
            report
        }
        DemoTarget::OpenSearch => {
            let node =
                tokio::task::spawn_blocking(dms_cdc_opensearch::local::OpenSearch::start).await??;
            let config = dms_cdc_opensearch::connection::Config::from_url(&format!(
                "{}?replicas=0",
                node.url()
            ))?;
            let target = dms_cdc_opensearch::OpenSearchTarget::new(config, FUNCTION_NAME)?;
            let report = pipeline.run(&mut source, target, out).await;
            drop(node);
            report
        }
    };
    drop(kinesalite);
    source.stop().await;
    report
}
