//! The migration lifecycle's speed against throwaway MariaDB servers, each
//! figure as a ratio to a baseline measured in the same run:
//!
//! 1. `backfill`: `dms-cdc backfill` of a generated source (N recipes, a
//!    quarter of them drafts, with stories and two ingredients each; N/5
//!    users) into an empty MySQL target, against `raw insert`: the same
//!    final target rows written with multi-row `INSERT`s of the same chunk
//!    size, one transaction per chunk, through the same driver;
//! 2. `reconcile`: a full `dms-cdc reconcile` of that target, against
//!    `scan`: reading every row of the four source tables and the two
//!    target tables once (what any comparison must at least read).
//!
//! ```sh
//! cargo bench --bench lifecycle -- --roots 1000000
//! cargo bench --bench lifecycle -- --roots 2000        # CI smoke
//! ```

mod common;
#[path = "../tests/support/generated.rs"]
mod generated;

use std::time::{Duration, Instant};

use common::{cpu_seconds, load, root, server_pid};

use dms_cdc::backfill::{backfill, roots_only, BackfillOptions};
use dms_cdc::capture::CaptureOptions;
use dms_cdc::engine::{Engine, Settings};
use dms_cdc::local::MariaDb;
use dms_cdc::mapping::{Mapping, Transforms};
use dms_cdc::reconcile::{reconcile, ReconcileOptions};
use dms_cdc::source::{pool, quote, MysqlSource};
use dms_cdc::target::MysqlTarget;
use mysql_async::prelude::*;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The CLI's allocator (the `dms-cdc` binary's): the bench measures
/// backfill and reconcile as they run there (before, this bench ran on the
/// system allocator while calling `tune_allocator`, which only tunes mimalloc).
#[global_allocator]
static GLOBAL: dms_cdc_lambda::Allocator = dms_cdc_lambda::Allocator;

fn main() {
    dms_cdc::lambda::tune_allocator();
    let argv: Vec<String> = std::env::args().collect();
    if !argv.iter().any(|a| a == "--bench") {
        println!("lifecycle: skipped under cargo test; run `cargo bench --bench lifecycle`");
        return;
    }
    let mut roots = 1_000_000u64;
    let mut chunk = 1000usize;
    let mut parallel = 1usize;
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--roots" => roots = it.next().and_then(|v| v.parse().ok()).unwrap_or(roots),
            "--chunk" => chunk = it.next().and_then(|v| v.parse().ok()).unwrap_or(chunk),
            "--parallel" => parallel = it.next().and_then(|v| v.parse().ok()).unwrap_or(parallel),
            _ => {}
        }
    }
    // As the `dms-cdc` binary runs: a multi-threaded runtime.
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Into::into)
        .and_then(|rt: tokio::runtime::Runtime| {
            rt.block_on(run(roots.max(100), chunk.max(1), parallel.max(1)))
        });
    if let Err(e) = result {
        eprintln!("lifecycle: FAILED: {e}");
        std::process::exit(1);
    }
}

/// CPU seconds used so far by this process and the two servers.
#[derive(Clone, Copy)]
struct Cpu {
    process: f64,
    source: f64,
    target: f64,
}

impl Cpu {
    fn now(pids: (Option<u32>, Option<u32>)) -> Cpu {
        Cpu {
            process: cpu_seconds(None),
            source: cpu_seconds(pids.0),
            target: cpu_seconds(pids.1),
        }
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            process: self.process - before.process,
            source: self.source - before.source,
            target: self.target - before.target,
        }
    }

    fn total(&self) -> f64 {
        self.process + self.source + self.target
    }
}

fn rate(rows: u64, d: Duration) -> f64 {
    rows as f64 / d.as_secs_f64().max(1e-9)
}

async fn count(pool: &mysql_async::Pool, table: &str) -> Res<u64> {
    let mut conn = pool.get_conn().await?;
    Ok(conn
        .query_first(format!("SELECT COUNT(*) FROM {table}"))
        .await?
        .unwrap_or(0))
}

/// Reads every row of `tables` once, discarding them; the rows read.
async fn scan(pool: &mysql_async::Pool, tables: &[&str]) -> Res<u64> {
    let mut conn = pool.get_conn().await?;
    let mut rows = 0u64;
    for t in tables {
        let mut result = conn.query_iter(format!("SELECT * FROM {t}")).await?;
        while let Some(row) = result.next().await? {
            std::hint::black_box(row);
            rows += 1;
        }
    }
    Ok(rows)
}

async fn run(roots: u64, chunk: usize, parallel: usize) -> Res<()> {
    println!(
        "== dms-cdc lifecycle benchmark: {roots} recipes, {} users, chunk {chunk}, parallel {parallel}",
        roots / 5
    );
    println!("load at start: {}", load());
    let source_db = MariaDb::start(1)?;
    let target_db = MariaDb::start(2)?;
    source_db.run_file(&root().join("fixtures/source.sql"))?;
    target_db.run_file(&root().join("fixtures/target.sql"))?;
    for db in [&source_db, &target_db] {
        db.run_sql("SET GLOBAL innodb_buffer_pool_size = 1073741824")?;
    }
    let pids = (server_pid(source_db.port()), server_pid(target_db.port()));
    let source = pool(&source_db.url("recipes_src"), 4)?;
    let target = pool(&target_db.url("global"), 4)?;
    let users = (roots / 5).max(1);
    let started = Instant::now();
    {
        let mut conn = source.get_conn().await?;
        conn.query_drop(generated::source_sql(users, roots)).await?;
    }
    println!(
        "source generated in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let transforms = Transforms::standard();
    let mapping = Mapping::load(&root().join("fixtures/mapping.toml"), &transforms)?;
    let capture = CaptureOptions::from_mapping(&mapping);
    let target_adapter = MysqlTarget::new(target.clone(), "bench", 500);
    target_adapter.prepare().await?;
    let engine = Engine::new(
        roots_only(&mapping),
        transforms.clone(),
        MysqlSource::from(source.clone()),
        target_adapter.clone(),
        Settings {
            function_name: "bench".into(),
            chunk_size: 500,
        },
    );

    // 1. backfill against the raw insert of the same rows.
    let options = BackfillOptions {
        chunk,
        parallel,
        ..BackfillOptions::default()
    };
    let cpu = Cpu::now(pids);
    let started = Instant::now();
    let reports = backfill(&engine, &capture, &options, &|_| {}).await?;
    let backfill_time = started.elapsed();
    let backfill_cpu = Cpu::now(pids).since(cpu);
    let read: u64 = reports.iter().map(|r| r.rows).sum();
    let written = count(&target, "global_users").await? + count(&target, "global_recipes").await?;
    println!(
        "  backfill: {read} source rows read, {written} target rows in {:.2} s, load {}",
        backfill_time.as_secs_f64(),
        load()
    );
    let mut conn = target.get_conn().await?;
    let mut tables = Vec::new();
    for table in ["global_users", "global_recipes"] {
        let rows: Vec<mysql_async::Row> = conn.query(format!("SELECT * FROM {table}")).await?;
        let columns: Vec<String> = rows
            .first()
            .map(|r| {
                r.columns_ref()
                    .iter()
                    .map(|c| quote(&c.name_str()))
                    .collect()
            })
            .unwrap_or_default();
        tables.push((table, columns, rows));
    }
    conn.query_drop(
        "CREATE TABLE copy_users LIKE global_users; CREATE TABLE copy_recipes LIKE global_recipes",
    )
    .await?;
    let cpu = Cpu::now(pids);
    let started = Instant::now();
    for ((_, columns, rows), copy) in tables.iter().zip(["copy_users", "copy_recipes"]) {
        let one = format!("({})", vec!["?"; columns.len()].join(", "));
        for c in rows.chunks(chunk) {
            let sql = format!(
                "INSERT INTO {copy} ({}) VALUES {}",
                columns.join(", "),
                vec![one.as_str(); c.len()].join(", ")
            );
            let params: Vec<mysql_async::Value> =
                c.iter().flat_map(|r| r.clone().unwrap()).collect();
            let mut tx = target
                .start_transaction(mysql_async::TxOpts::default())
                .await?;
            tx.exec_drop(sql, params).await?;
            tx.commit().await?;
        }
    }
    let raw_time = started.elapsed();
    let raw_cpu = Cpu::now(pids).since(cpu);
    println!(
        "  raw insert: {written} target rows in {:.2} s, load {}",
        raw_time.as_secs_f64(),
        load()
    );
    drop(tables);

    // 2. reconcile against a plain scan of every table it reads.
    let cpu = Cpu::now(pids);
    let started = Instant::now();
    let report = reconcile(
        &engine.source,
        &target_adapter,
        &mapping,
        &transforms,
        &capture,
        &ReconcileOptions {
            chunk,
            parallel,
            ..ReconcileOptions::default()
        },
    )
    .await?;
    let reconcile_time = started.elapsed();
    let reconcile_cpu = Cpu::now(pids).since(cpu);
    let checked = report.rows_compared();
    println!(
        "  reconcile: {checked} target rows checked, {} differences, in {:.2} s, load {}",
        report.differences.len(),
        reconcile_time.as_secs_f64(),
        load()
    );
    if !report.is_clean() {
        return Err(format!("reconcile after the backfill: {}", report.render(10)).into());
    }
    let cpu = Cpu::now(pids);
    let started = Instant::now();
    let scanned = scan(
        &source,
        &["users", "recipes", "recipe_stories", "ingredients"],
    )
    .await?
        + scan(&target, &["global_users", "global_recipes"]).await?;
    let scan_time = started.elapsed();
    let scan_cpu = Cpu::now(pids).since(cpu);
    println!(
        "  scan: {scanned} rows of 6 tables in {:.2} s, load {}",
        scan_time.as_secs_f64(),
        load()
    );

    println!();
    println!("| | time s | target rows/s | ratio |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| backfill | {:.2} | {:.0} | **{:.2}** of raw insert |",
        backfill_time.as_secs_f64(),
        rate(written, backfill_time),
        raw_time.as_secs_f64() / backfill_time.as_secs_f64()
    );
    println!(
        "| raw insert | {:.2} | {:.0} | |",
        raw_time.as_secs_f64(),
        rate(written, raw_time)
    );
    println!(
        "| reconcile | {:.2} | {:.0} | **{:.2}** of the scan |",
        reconcile_time.as_secs_f64(),
        rate(checked, reconcile_time),
        scan_time.as_secs_f64() / reconcile_time.as_secs_f64()
    );
    println!(
        "| scan | {:.2} | {:.0} (target rows' share) | |",
        scan_time.as_secs_f64(),
        rate(checked, scan_time)
    );
    println!();
    println!("CPU seconds (this process, the source server, the target server):");
    println!();
    println!("| | wall s | process | source | target | all | all / wall |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, wall, cpu) in [
        ("backfill", backfill_time, backfill_cpu),
        ("raw insert", raw_time, raw_cpu),
        ("reconcile", reconcile_time, reconcile_cpu),
        ("scan", scan_time, scan_cpu),
    ] {
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            wall.as_secs_f64(),
            cpu.process,
            cpu.source,
            cpu.target,
            cpu.total(),
            cpu.total() / wall.as_secs_f64().max(1e-9)
        );
    }
    drop(target_db);
    drop(source_db);
    Ok(())
}
