//! `dms-cdc demo`: the whole pipeline on this machine with the sample
//! domain. Starts a source MariaDB, a target (a MariaDB, or a PostgreSQL
//! with `--target postgres`) and the Kinesis emulator on loopback, loads
//! the sample schema and data, runs capture and consume, plays a scripted
//! workload on the source, waits until everything is drained, prints a
//! summary and a source-vs-target comparison, and stops what it started.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;

use crate::capture::{snapshot, CaptureOptions};
use crate::consume::{BatchHandler, ConsumeOptions, Consumer};
use crate::dms::Delivery;
use crate::engine::{Engine, Settings};
use crate::local::{Kinesalite, MariaDb, PostgreSql};
use crate::mapping::{Mapping, Transforms};
use crate::pipeline::{capture_to_stream, StopAt};
use crate::stream::{client, ensure_stream, put_ordered};
use crate::target::MysqlTarget;
use dms_cdc_core::quarantine::{Filter, QuarantineStore, State};
use dms_cdc_core::target::Target;
use dms_cdc_mysql::MysqlSource;
use dms_cdc_postgres::PostgresTarget;

/// The demo's function name (checkpoints and quarantine rows are kept under it).
const FUNCTION_NAME: &str = "dms-cdc-demo";

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

/// What the demo measured.
#[derive(Debug, Default)]
pub struct DemoReport {
    /// Records captured (snapshot and stream).
    pub captured: usize,
    /// Records the consumer read.
    pub consumed: usize,
    /// Rows upserted / deleted per target table.
    pub writes: BTreeMap<String, (usize, usize)>,
    /// Quarantined records: sequence number, class, reason.
    pub quarantined: Vec<(String, String, String)>,
    /// Replication lag (the function's `ReplicationLag` metric: source
    /// commit of the newest applied record to the end of its batch), per
    /// batch, milliseconds, p50 and p99.
    pub latency_ms: (u64, u64),
    /// Rows compared and rows that differ.
    pub compared: usize,
    /// Differences found (should be zero).
    pub differences: Vec<String>,
}

struct Measured<'a, T: Target> {
    engine: &'a Engine<MysqlSource, T>,
    writes: Mutex<BTreeMap<String, (usize, usize)>>,
    latencies: Mutex<Vec<u64>>,
}

impl<T: Target> BatchHandler for Measured<'_, T> {
    async fn handle(
        &self,
        batch: &[Delivery],
    ) -> Result<aws_lambda_events::streams::KinesisEventResponse, String> {
        let report = self.engine.process(batch).await;
        let now = chrono::Utc::now().naive_utc();
        if let Ok(mut w) = self.writes.lock() {
            for (t, n) in &report.summary.upserts {
                w.entry(t.clone()).or_default().0 += n;
            }
            for (t, n) in &report.summary.deletes {
                w.entry(t.clone()).or_default().1 += n;
            }
        }
        // The function's ReplicationLag metric, from the same numbers.
        if let (Ok(mut l), Some(lag)) = (self.latencies.lock(), report.summary.lag_ms(now)) {
            l.push(lag);
        }
        Ok(report.response)
    }
}

/// The scripted workload: inserts, updates, deletes, a child moving between
/// parents, a story over DMS's 32 KB LOB limit, and a poison value (a zero
/// date the target mapping cannot convert).
const WORKLOAD: &[&str] = &[
    "INSERT INTO users VALUES (50, 'Grace', 'Grace@Example.com', '2026-11-01 09:00:00', 1)",
    "INSERT INTO recipes (id, author_id, title, status, servings, rating, created_at, tags)
       VALUES (500, 50, 'Focaccia', 'published', 6, 4.80, '2026-11-01 09:30:00', '[\"bread\"]')",
    "INSERT INTO ingredients VALUES (5000, 500, 1, 'flour', 500.00, 'g'), (5001, 500, 2, 'water', 350.00, 'ml'), (5002, 500, 3, 'salt', 10.00, 'g')",
    "UPDATE recipes SET title = 'Rosemary focaccia' WHERE id = 500",
    "UPDATE users SET name = 'Grace H.' WHERE id = 50",
    "UPDATE ingredients SET recipe_id = 101, position = 9 WHERE id = 5002",
    "DELETE FROM ingredients WHERE id = 5001",
    "INSERT INTO recipe_stories VALUES (500, REPEAT('A long, long story about bread. ', 2000))",
    "UPDATE recipes SET status = 'draft' WHERE id = 102",
    "DELETE FROM users WHERE id = 4",
    "INSERT INTO users VALUES (51, 'Zero', 'zero@example.com', '0000-00-00 00:00:00', 1)",
    "UPDATE recipes SET status = 'published', title = 'Back again' WHERE id = 102",
];

/// Runs the demo into a target of `kind`; `repo` is the folder with `fixtures/`.
pub async fn run(
    repo: &Path,
    kind: DemoTarget,
    out: &mut impl std::io::Write,
) -> anyhow::Result<DemoReport> {
    let started = Instant::now();
    let target_name = match kind {
        DemoTarget::Mysql => "MariaDB",
        DemoTarget::Postgres => "PostgreSQL",
        DemoTarget::OpenSearch => "OpenSearch node",
    };
    let _ = writeln!(
        out,
        "[  0.0s] starting a source MariaDB, a target {target_name} and the Kinesis emulator on 127.0.0.1"
    );
    let source_db = tokio::task::spawn_blocking(|| MariaDb::start(1)).await??;
    let kinesalite = tokio::task::spawn_blocking(Kinesalite::start).await??;
    source_db.run_file(&repo.join("fixtures/source.sql"))?;
    source_db.run_file(&repo.join("fixtures/source-state.sql"))?;
    let transforms = Transforms::standard();
    let mapping = Mapping::load(&repo.join("fixtures/mapping.toml"), &transforms)?;
    let report = match kind {
        DemoTarget::Mysql => {
            let db = tokio::task::spawn_blocking(|| MariaDb::start(2)).await??;
            db.run_file(&repo.join("fixtures/target.sql"))?;
            let pool = crate::source::pool(&db.url("global"), 4)?;
            let target = MysqlTarget::new(pool, FUNCTION_NAME, 500);
            let report = run_with(
                &source_db,
                &kinesalite,
                mapping,
                transforms,
                target,
                started,
                out,
            )
            .await;
            drop(db);
            report
        }
        DemoTarget::Postgres => {
            let db = tokio::task::spawn_blocking(PostgreSql::start).await??;
            db.create_database("global")?;
            db.run_file("global", &repo.join("fixtures/target-postgres.sql"))?;
            let pool = dms_cdc_postgres::pool(&db.url("global"), 4)?;
            let target = PostgresTarget::new(pool, FUNCTION_NAME, 500);
            let report = run_with(
                &source_db,
                &kinesalite,
                mapping,
                transforms,
                target,
                started,
                out,
            )
            .await;
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
            let report = run_with(
                &source_db,
                &kinesalite,
                mapping,
                transforms,
                target,
                started,
                out,
            )
            .await;
            drop(node);
            report
        }
    };
    drop(kinesalite);
    drop(source_db);
    report
}

#[allow(clippy::too_many_arguments)]
async fn run_with<T: Target + QuarantineStore + dms_cdc_core::target::TargetRows>(
    source_db: &MariaDb,
    kinesalite: &Kinesalite,
    mapping: Mapping,
    transforms: Transforms,
    target: T,
    started: Instant,
    out: &mut impl std::io::Write,
) -> anyhow::Result<DemoReport> {
    let say = |out: &mut dyn std::io::Write, text: String| {
        let _ = writeln!(out, "[{:>5.1}s] {text}", started.elapsed().as_secs_f64());
    };
    let capture_options = CaptureOptions::from_mapping(&mapping);
    let source_url = source_db.url("recipes_src");
    let source = crate::source::pool(&source_url, 4)?;
    Target::prepare(&target, &mapping)
        .await
        .map_err(|e| anyhow::anyhow!("preparing the target: {e}"))?;
    let settings = Settings {
        function_name: FUNCTION_NAME.into(),
        chunk_size: 500,
    };
    let engine = Engine::new(
        mapping,
        transforms,
        MysqlSource::new(source.clone()),
        target,
        settings,
    );
    let kinesis = client(Some(&kinesalite.endpoint())).await;
    let arn = ensure_stream(&kinesis, "dms-cdc-demo", 2).await?;
    say(
        out,
        format!("stream dms-cdc-demo: 2 shards on {}", kinesalite.endpoint()),
    );

    // Full load, then CDC from the snapshot's binlog position.
    let tables: Vec<_> = engine.mapping.sources.keys().cloned().collect();
    let snap = snapshot(&source, &tables, &capture_options).await?;
    let load: Vec<(String, Vec<u8>)> = snap
        .records
        .iter()
        .map(|r| (r.partition_key.clone(), r.payload.clone()))
        .collect();
    put_ordered(&kinesis, "dms-cdc-demo", &load).await?;
    say(out, format!("full load: {} records put", load.len()));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let capture_task = {
        let kinesis = kinesis.clone();
        let url = source_url.clone();
        let options = capture_options.clone();
        let from = snap.position.clone();
        tokio::spawn(async move {
            capture_to_stream(
                &url,
                from,
                options,
                &kinesis,
                "dms-cdc-demo",
                None,
                StopAt::Signal(stop_rx),
            )
            .await
        })
    };
    let handler = Measured {
        engine: &engine,
        writes: Mutex::default(),
        latencies: Mutex::default(),
    };
    let mut consumer = Consumer::new(kinesis.clone(), ConsumeOptions::new("dms-cdc-demo", &arn))?;
    let consume = async {
        // Consume while the workload runs; the consumer's counts are cumulative.
        loop {
            consumer
                .run_until_idle(&handler, Duration::from_millis(300), Duration::from_secs(5))
                .await?;
            if *stop_tx.borrow() && capture_task.is_finished() {
                let s = consumer
                    .run_until_idle(&handler, Duration::from_secs(1), Duration::from_secs(60))
                    .await?;
                return Ok::<usize, anyhow::Error>(s.record_count);
            }
        }
    };
    let workload = async {
        let mut conn = source.get_conn().await?;
        for sql in WORKLOAD {
            conn.query_drop(*sql).await?;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        // Let capture catch up, then ask it to stop.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _ = stop_tx.send(true);
        Ok::<(), anyhow::Error>(())
    };
    say(
        out,
        format!(
            "playing {} workload statements on the source",
            WORKLOAD.len()
        ),
    );
    let (consumed, ()) = tokio::try_join!(consume, workload)?;
    let captured = capture_task.await??;
    say(
        out,
        "drained: capture caught up and every shard is idle".into(),
    );

    let mut report = DemoReport {
        captured: load.len() + captured.record_count,
        consumed,
        writes: handler.writes.lock().map(|w| w.clone()).unwrap_or_default(),
        ..Default::default()
    };
    let mut latencies = handler
        .latencies
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    report.latency_ms = (pct(0.5), pct(0.99));
    let quarantined = engine
        .target
        .quarantined(&Filter {
            state: State::All,
            ..Filter::default()
        })
        .await?;
    report.quarantined = quarantined
        .iter()
        .map(|q| {
            (
                q.sequence_number.as_str().to_owned(),
                q.class.clone(),
                q.message.clone(),
            )
        })
        .collect();
    // The comparison is `dms-cdc reconcile`: every target row against what
    // the mapping makes of the final source. The poison value's user is
    // quarantined on both sides (the mapping cannot build it), so it is not
    // a difference: it waits for a mapping fix and a redrive.
    let checked = crate::reconcile::reconcile(
        &engine.source,
        &engine.target,
        &engine.mapping,
        &engine.transforms,
        &capture_options,
        &crate::reconcile::ReconcileOptions::default(),
    )
    .await?;
    report.compared = checked.rows_compared() as usize;
    report.differences = checked
        .differences
        .iter()
        .map(|d| format!("{d:?}"))
        .collect();
    source.disconnect().await.ok();
    Ok(report)
}
