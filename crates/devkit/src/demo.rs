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
}

/// The target server the demo started (stopped when dropped), and how to
/// read it as text.
enum TargetDb {
    // Fields drop in order: the pool's connections close before the server stops.
    Mysql {
        pool: mysql_async::Pool,
        _server: MariaDb,
    },
    Postgres {
        pool: dms_cdc_postgres::Pool,
        _server: PostgreSql,
    },
}

impl TargetDb {
    /// The rows of `sql` with every value in its text form (NULL as `None`).
    async fn text_rows(&self, sql: &str) -> anyhow::Result<Vec<Vec<Option<String>>>> {
        match self {
            TargetDb::Mysql { pool, .. } => {
                let mut conn = pool.get_conn().await?;
                let rows: Vec<mysql_async::Row> = conn.query(sql).await?;
                Ok(rows
                    .into_iter()
                    .map(|r| {
                        r.unwrap()
                            .into_iter()
                            .map(|v| match v {
                                mysql_async::Value::NULL => None,
                                mysql_async::Value::Bytes(b) => {
                                    Some(String::from_utf8_lossy(&b).into_owned())
                                }
                                other => Some(other.as_sql(true)),
                            })
                            .collect()
                    })
                    .collect())
            }
            TargetDb::Postgres { pool, .. } => {
                let client = pool.get().await?;
                let mut rows = Vec::new();
                for message in client.simple_query(sql).await? {
                    if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
                        rows.push(
                            (0..row.len())
                                .map(|i| row.get(i).map(str::to_owned))
                                .collect(),
                        );
                    }
                }
                Ok(rows)
            }
        }
    }
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
            let target = MysqlTarget::new(pool.clone(), FUNCTION_NAME, 500);
            let target_db = TargetDb::Mysql { pool, _server: db };
            run_with(
                &source_db,
                &kinesalite,
                mapping,
                transforms,
                target,
                &target_db,
                started,
                out,
            )
            .await
        }
        DemoTarget::Postgres => {
            let db = tokio::task::spawn_blocking(PostgreSql::start).await??;
            db.create_database("global")?;
            db.run_file("global", &repo.join("fixtures/target-postgres.sql"))?;
            let pool = dms_cdc_postgres::pool(&db.url("global"), 4)?;
            let target = PostgresTarget::new(pool.clone(), FUNCTION_NAME, 500);
            let target_db = TargetDb::Postgres { pool, _server: db };
            run_with(
                &source_db,
                &kinesalite,
                mapping,
                transforms,
                target,
                &target_db,
                started,
                out,
            )
            .await
        }
    };
    drop(kinesalite);
    drop(source_db);
    report
}

#[allow(clippy::too_many_arguments)]
async fn run_with<T: Target + QuarantineStore>(
    source_db: &MariaDb,
    kinesalite: &Kinesalite,
    mapping: Mapping,
    transforms: Transforms,
    target: T,
    target_db: &TargetDb,
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
    // Users whose change was quarantined (the poison value) are reported
    // as quarantined, not as differences: they wait for a mapping fix and a redrive.
    let quarantined_users: Vec<u64> = quarantined
        .iter()
        .filter(|q| q.table.as_deref() == Some("recipes_src.users"))
        .filter_map(|q| serde_json::from_slice::<serde_json::Value>(&q.raw).ok())
        .filter_map(|v| v["data"]["id"].as_u64())
        .collect();
    compare(&source, target_db, &quarantined_users, &mut report).await?;
    source.disconnect().await.ok();
    Ok(report)
}

/// Compares the target with the mapping of the final source state, using SQL
/// on the source as an independent oracle.
async fn compare(
    source: &mysql_async::Pool,
    target: &TargetDb,
    quarantined_users: &[u64],
    report: &mut DemoReport,
) -> anyhow::Result<()> {
    type Row = (i64, String, Option<String>, String);
    let mut s = source.get_conn().await?;
    let expected: Vec<Row> = s
        .query(
            "SELECT r.id, r.title, u.name,
                    COALESCE((SELECT GROUP_CONCAT(i.name ORDER BY i.position, i.id) FROM ingredients i WHERE i.recipe_id = r.id), '')
             FROM recipes r LEFT JOIN users u ON u.id = r.author_id WHERE r.status = 'published' ORDER BY r.id",
        )
        .await?;
    let rows = target
        .text_rows("SELECT legacy_id, title, author_name, ingredients FROM global_recipes ORDER BY legacy_id")
        .await?;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let actual: Vec<Row> = rows
        .iter()
        .map(|r| {
            let (id, title, author, json) = (text(&r[0]), text(&r[1]), r[2].clone(), text(&r[3]));
            let id: i64 = id.parse().unwrap_or(-1);
            let names: Vec<String> = serde_json::from_str::<serde_json::Value>(&json)
                .ok()
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|i| i["name"].as_str().map(str::to_owned))
                .collect();
            (id, title, author, names.join(","))
        })
        .collect();
    let live_users: Vec<(u64, String)> = s.query("SELECT id, name FROM users ORDER BY id").await?;
    let target_users: Vec<(u64, String)> = target
        .text_rows(
            "SELECT user_id, display_name FROM global_users WHERE is_deleted = 0 ORDER BY user_id",
        )
        .await?
        .iter()
        .map(|r| (text(&r[0]).parse().unwrap_or(u64::MAX), text(&r[1])))
        .collect();
    report.compared = expected.len().max(actual.len()) + live_users.len().max(target_users.len());
    for e in &expected {
        match actual.iter().find(|a| a.0 == e.0) {
            None => report
                .differences
                .push(format!("global_recipes {}: missing", e.0)),
            Some(a) if a != e => report
                .differences
                .push(format!("global_recipes {}: differs", e.0)),
            _ => {}
        }
    }
    for a in &actual {
        if !expected.iter().any(|e| e.0 == a.0) {
            report
                .differences
                .push(format!("global_recipes {}: not in the source", a.0));
        }
    }
    for u in &live_users {
        if !target_users.contains(u) && !quarantined_users.contains(&u.0) {
            report
                .differences
                .push(format!("global_users {}: missing or differs", u.0));
        }
    }
    for u in &target_users {
        if !live_users.iter().any(|l| l.0 == u.0) {
            report.differences.push(format!(
                "global_users {}: live in the target, gone in the source",
                u.0
            ));
        }
    }
    Ok(())
}
