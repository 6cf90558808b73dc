//! End-to-end benchmark of the PostgreSQL target: a throwaway MariaDB
//! source and a throwaway PostgreSQL target on this machine. In one run, on
//! the same data (the workload of `benches/e2e.rs`), it measures:
//!
//! 1. `dms-cdc`: `Engine::process` on every batch, MySQL source to
//!    PostgreSQL target (decode, plan, re-query the source, write the target
//!    with `INSERT ... ON CONFLICT` in one transaction with the checkpoint);
//! 2. `upsert`: the same final target rows written with raw multi-row
//!    `INSERT ... ON CONFLICT DO UPDATE` of the same chunk size (and keyed
//!    deletes, `= ANY($1)`), one transaction per batch, no planning, no
//!    re-query: what PostgreSQL itself takes. `upsert+guard` is the same
//!    with dms-cdc's version guard (`WHERE cur.version <= EXCLUDED.version`);
//! 3. `copy`: the same rows through `COPY ... FROM STDIN` into a temporary
//!    staging table and one `INSERT ... SELECT ... ON CONFLICT` merge per
//!    table and batch (`copy+guard` with the version guard).
//!
//! The target is reset between contenders, and each one's final target
//! (every column but the version column) must equal dms-cdc's. It prints
//! records/s, the ratios, and the CPU seconds of the bench process and of
//! the PostgreSQL server (the postmaster and its backends).
//!
//! ```sh
//! cargo bench --bench e2e_postgres -- --batches 10 --records 10000 --chunk 500
//! cargo bench --bench e2e_postgres -- --batches 2 --records 200   # CI smoke
//! ```
//!
//! Options: `--batches N` (10), `--records M` (10000), `--chunk C` (500),
//! `--seed S` (42), `--rounds R` (1: repeat every contender R times, keep
//! the best of each).

mod common;

use common::{cpu_seconds, load, load_source, root};

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dms_cdc::dms::{Delivery, Value};
use dms_cdc::engine::{Engine, MysqlToPostgresEngine, Settings};
use dms_cdc::local::{MariaDb, PostgreSql};
use dms_cdc::mapping::{Mapping, TargetTable, Transforms};
use dms_cdc::postgres::param::Param;
use dms_cdc::postgres::target::quote;
use dms_cdc::postgres::PostgresTarget;
use futures_util::SinkExt as _;
use tokio_postgres::types::{ToSql, Type};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The function's allocator (functions/postgres-target): the bench measures
/// the engine as it runs there (before, this bench ran on the system
/// allocator while calling `tune_allocator`, which only tunes mimalloc).
#[global_allocator]
static GLOBAL: dms_cdc_lambda::Allocator = dms_cdc_lambda::Allocator;

fn main() {
    dms_cdc::lambda::tune_allocator();
    // `cargo test --all-targets` runs this binary without `--bench`: it
    // starts servers and takes minutes, so it only runs when asked.
    if !std::env::args().any(|a| a == "--bench") {
        println!("e2e_postgres: skipped under cargo test; run `cargo bench --bench e2e_postgres`");
        return;
    }
    let result = common::parse_target_bench_args().and_then(|args| {
        // One thread, as the function runs.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Into::into)
            .and_then(|rt| rt.block_on(run(args)))
    });
    if let Err(e) = result {
        eprintln!("e2e_postgres: FAILED: {e}: {e:?}");
        std::process::exit(1);
    }
}

// ------------------------------------------------------------------ process facts

fn parent_of(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = text.rsplit_once(')')?.1;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds of the PostgreSQL server listening on `port`: the postmaster
/// and every live child (backends, writer, WAL writer, ...).
fn server_cpu(port: u16) -> f64 {
    let needle = port.to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let pids: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    let Some(postmaster) = pids.iter().copied().find(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| {
                let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                args.first().is_some_and(|a| a.ends_with(b"postgres"))
                    && args
                        .windows(2)
                        .any(|w| w[0] == b"-p" && w[1] == needle.as_bytes())
            })
            .unwrap_or(false)
    }) else {
        return 0.0;
    };
    cpu_seconds(Some(postmaster))
        + pids
            .iter()
            .filter(|p| parent_of(**p) == Some(postmaster))
            .map(|p| cpu_seconds(Some(*p)))
            .sum::<f64>()
}

// ------------------------------------------------------------------ setup

struct Rig {
    _source_db: MariaDb,
    target_db: PostgreSql,
    source: mysql_async::Pool,
    target: dms_cdc::postgres::Pool,
    mapping: Mapping,
    transforms: Transforms,
}

fn engine(rig: &Rig, function_name: &str, chunk: usize) -> MysqlToPostgresEngine {
    Engine::new(
        rig.mapping.clone(),
        rig.transforms.clone(),
        dms_cdc::source::MysqlSource::from(rig.source.clone()),
        PostgresTarget::new(rig.target.clone(), function_name, chunk),
        Settings {
            function_name: function_name.into(),
            chunk_size: chunk,
        },
    )
}

/// Starts the servers; fills the target with the full load of the initial
/// state (through dms-cdc), keeps a copy of it for resets, then gives the
/// source its final state (what every record of the workload leads to).
async fn rig(workload: &common::Workload, chunk: usize) -> Res<Rig> {
    let source_db = MariaDb::start(1)?;
    source_db.run_file(&root().join("fixtures/source.sql"))?;
    source_db.run_sql("SET GLOBAL innodb_buffer_pool_size = 536870912")?;
    let target_db = PostgreSql::start()?;
    target_db.create_database("global")?;
    target_db.run_file("global", &root().join("fixtures/target-postgres.sql"))?;
    // As the MariaDB of benches/e2e.rs runs with innodb_flush_log_at_trx_commit=2:
    // a commit does not wait for the WAL flush. ALTER SYSTEM runs outside a transaction.
    target_db.run_sql("global", "ALTER SYSTEM SET synchronous_commit = off")?;
    target_db.run_sql("global", "SELECT pg_reload_conf()")?;
    let (mapping, transforms) = common::mapping();
    let source = dms_cdc::source::pool(&source_db.url("recipes_src"), 2)?;
    let target = dms_cdc::postgres::pool(&target_db.url("global"), 2)?;
    let rig = Rig {
        _source_db: source_db,
        target_db,
        source,
        target,
        mapping,
        transforms,
    };
    load_source(&rig.source, &workload.initial).await?;
    PostgresTarget::new(rig.target.clone(), "bench", chunk)
        .prepare()
        .await?;
    let started = Instant::now();
    let n = common::apply_full_load(&engine(&rig, "bench-load", chunk), &workload.initial).await?;
    println!(
        "full load of the initial state through dms-cdc into PostgreSQL: {n} records in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let client = rig.target.get().await?;
    for t in ["global_users", "global_recipes"] {
        client
            .batch_execute(&format!("CREATE TABLE init_{t} AS SELECT * FROM {t}"))
            .await?;
    }
    drop(client);
    load_source(&rig.source, &workload.model).await?;
    Ok(rig)
}

/// Back to the state after the full load.
async fn reset_target(rig: &Rig) -> Res<()> {
    let client = rig.target.get().await?;
    client
        .batch_execute(
            "TRUNCATE global_users, global_recipes, dms_cdc_checkpoint, dms_cdc_quarantine, dms_cdc_tombstone;
             INSERT INTO global_users SELECT * FROM init_global_users;
             INSERT INTO global_recipes SELECT * FROM init_global_recipes",
        )
        .await?;
    // Its own statement: VACUUM cannot run in the implicit transaction of several.
    client
        .batch_execute("VACUUM ANALYZE global_users, global_recipes")
        .await?;
    Ok(())
}

fn target<'a>(mapping: &'a Mapping, table: &str) -> &'a TargetTable {
    mapping
        .targets
        .iter()
        .find(|t| t.table == table)
        .expect("the sample mapping has this target")
}

/// Per table and key, every column but the version column, as text.
type Fingerprint = BTreeMap<(String, String), String>;

async fn fingerprint(rig: &Rig) -> Res<Fingerprint> {
    let client = rig.target.get().await?;
    let mut out = Fingerprint::new();
    for t in &rig.mapping.targets {
        let cols: Vec<String> = t
            .columns
            .iter()
            .map(|c| format!("coalesce({}::text, '<null>')", quote(&c.name)))
            .collect();
        let sql = format!(
            "SELECT {}::text, concat_ws('|', {}) FROM {}",
            quote(&t.key[0]),
            cols.join(", "),
            quote(&t.table)
        );
        for row in client.query(&sql, &[]).await? {
            out.insert((t.table.clone(), row.get(0)), row.get(1));
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------ final rows

/// One table's final rows by key (as text): typed values for the upsert
/// contenders, and the COPY text line of each row.
#[derive(Default)]
struct FinalTable {
    typed: BTreeMap<String, Vec<Value>>,
    copy_line: BTreeMap<String, String>,
}

/// A value in COPY's text format (`\N` for NULL; backslash, tab, newline
/// and carriage return escaped).
fn copy_field(value: Option<&str>, out: &mut String) {
    let Some(text) = value else {
        out.push_str("\\N");
        return;
    };
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// The typed value of column `i` (a `numeric` and a `jsonb` are read as
/// text: dms-cdc sends a numeric as text and JSON as its text too).
fn typed(row: &tokio_postgres::Row, i: usize, ty: &Type) -> Res<Value> {
    Ok(match *ty {
        Type::INT2 => row.get::<_, Option<i16>>(i).map(|v| Value::Int(v.into())),
        Type::INT4 => row.get::<_, Option<i32>>(i).map(|v| Value::Int(v.into())),
        Type::INT8 => row.get::<_, Option<i64>>(i).map(Value::Int),
        Type::FLOAT8 => row.get::<_, Option<f64>>(i).map(Value::Float),
        Type::BOOL => row.get::<_, Option<bool>>(i).map(Value::Bool),
        Type::BYTEA => row.get::<_, Option<Vec<u8>>>(i).map(Value::Bytes),
        Type::TIMESTAMP => row
            .get::<_, Option<chrono::NaiveDateTime>>(i)
            .map(Value::DateTime),
        Type::DATE => row.get::<_, Option<chrono::NaiveDate>>(i).map(Value::Date),
        Type::TIME => row.get::<_, Option<chrono::NaiveTime>>(i).map(Value::Time),
        Type::TEXT | Type::VARCHAR => row.get::<_, Option<String>>(i).map(Value::Text),
        _ => return Err(format!("column {i}: type {ty} not read by the bench").into()),
    }
    .unwrap_or(Value::Null))
}

async fn final_rows(rig: &Rig) -> Res<BTreeMap<String, FinalTable>> {
    let client = rig.target.get().await?;
    let mut out = BTreeMap::new();
    for t in &rig.mapping.targets {
        let names = t.column_names();
        let types: BTreeMap<String, String> = client
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns WHERE table_name = $1",
                &[&t.table],
            )
            .await?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let select: Vec<String> = names
            .iter()
            .map(|c| match types.get(*c).map(String::as_str) {
                Some("numeric" | "jsonb" | "json") => format!("{}::text", quote(c)),
                _ => quote(c),
            })
            .collect();
        let texts: Vec<String> = names
            .iter()
            .map(|c| format!("{}::text", quote(c)))
            .collect();
        let key = format!("{}::text", quote(&t.key[0]));
        let mut table = FinalTable::default();
        let sql = format!(
            "SELECT {key}, {} FROM {}",
            select.join(", "),
            quote(&t.table)
        );
        for row in client.query(&sql, &[]).await? {
            let mut values = Vec::with_capacity(names.len());
            for (i, column) in row.columns().iter().enumerate().skip(1) {
                let v = typed(&row, i, column.type_())?;
                // numeric and JSON came as text: JSON goes back as JSON.
                let v = match (v, types.get(names[i - 1]).map(String::as_str)) {
                    (Value::Text(j), Some("jsonb" | "json")) => Value::Json(j),
                    (Value::Text(d), Some("numeric")) => Value::Decimal(d),
                    (v, _) => v,
                };
                values.push(v);
            }
            table.typed.insert(row.get(0), values);
        }
        let sql = format!(
            "SELECT {key}, {} FROM {}",
            texts.join(", "),
            quote(&t.table)
        );
        for row in client.query(&sql, &[]).await? {
            let mut line = String::new();
            for i in 1..row.len() {
                if i > 1 {
                    line.push('\t');
                }
                copy_field(row.get::<_, Option<&str>>(i), &mut line);
            }
            line.push('\n');
            table.copy_line.insert(row.get(0), line);
        }
        out.insert(t.table.clone(), table);
    }
    Ok(out)
}

// ------------------------------------------------------------------ contenders

fn conflict_action(target: &TargetTable, names: &[&str], guarded: bool) -> String {
    let updates: Vec<String> = names
        .iter()
        .filter(|c| !target.key.iter().any(|k| k == *c))
        .map(|c| format!("{c} = EXCLUDED.{c}", c = quote(c)))
        .collect();
    let guard = match (&target.version, guarded) {
        (Some(v), true) => format!(
            " WHERE cur.{v} IS NULL OR EXCLUDED.{v} COLLATE \"C\" >= cur.{v} COLLATE \"C\"",
            v = quote(v)
        ),
        _ => String::new(),
    };
    format!(
        "ON CONFLICT ({}) DO UPDATE SET {}{guard}",
        quote(&target.key[0]),
        updates.join(", ")
    )
}

fn upsert_sql(target: &TargetTable, rows: usize, guarded: bool) -> String {
    let names = target.column_names();
    let width = names.len();
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let p: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
            format!("({})", p.join(", "))
        })
        .collect();
    let cols: Vec<String> = names.iter().map(|c| quote(c)).collect();
    format!(
        "INSERT INTO {} AS cur ({}) VALUES {} {}",
        quote(&target.table),
        cols.join(", "),
        values.join(", "),
        conflict_action(target, &names, guarded)
    )
}

/// Deletes the recipe keys that no longer exist (`= ANY($1)`).
async fn delete_gone(
    tx: &tokio_postgres::Transaction<'_>,
    recipes: &TargetTable,
    keys: &[String],
    rows: &FinalTable,
) -> Res<usize> {
    let gone: Vec<i64> = keys
        .iter()
        .filter(|k| !rows.typed.contains_key(*k))
        .filter_map(|k| k.parse().ok())
        .collect();
    if !gone.is_empty() {
        tx.execute(
            &format!(
                "DELETE FROM {} WHERE {} = ANY($1)",
                quote(&recipes.table),
                quote(&recipes.key[0])
            ),
            &[&gone],
        )
        .await?;
    }
    Ok(gone.len())
}

/// Multi-row upserts of `chunk` rows, one transaction per batch.
async fn run_upsert(
    rig: &Rig,
    client: &mut tokio_postgres::Client,
    chunk: usize,
    keys: &[(Vec<String>, Vec<String>)],
    rows: &BTreeMap<String, FinalTable>,
    guarded: bool,
) -> Res<usize> {
    let users = target(&rig.mapping, "global_users");
    let recipes = target(&rig.mapping, "global_recipes");
    let mut written = 0;
    for (user_keys, recipe_keys) in keys {
        let tx = client.transaction().await?;
        for (t, keys) in [(users, user_keys), (recipes, recipe_keys)] {
            let final_rows = &rows[&t.table];
            let list: Vec<&Vec<Value>> = keys
                .iter()
                .filter_map(|k| final_rows.typed.get(k))
                .collect();
            for c in list.chunks(chunk) {
                let sql = upsert_sql(t, c.len(), guarded);
                let statement = tx.prepare(&sql).await?;
                let params: Vec<Param> = c.iter().flat_map(|r| r.iter().map(Param)).collect();
                let refs: Vec<&(dyn ToSql + Sync)> =
                    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                tx.execute(&statement, &refs).await?;
                written += c.len();
            }
        }
        written += delete_gone(&tx, recipes, recipe_keys, &rows[&recipes.table]).await?;
        tx.commit().await?;
    }
    Ok(written)
}

/// `COPY` into a staging table and one merge per table, one transaction per batch.
async fn run_copy(
    rig: &Rig,
    client: &mut tokio_postgres::Client,
    keys: &[(Vec<String>, Vec<String>)],
    rows: &BTreeMap<String, FinalTable>,
    guarded: bool,
) -> Res<usize> {
    let users = target(&rig.mapping, "global_users");
    let recipes = target(&rig.mapping, "global_recipes");
    for t in [users, recipes] {
        client
            .batch_execute(&format!(
                "CREATE TEMP TABLE IF NOT EXISTS stage_{0} (LIKE {0}) ON COMMIT DELETE ROWS",
                t.table
            ))
            .await?;
    }
    let mut written = 0;
    for (user_keys, recipe_keys) in keys {
        let tx = client.transaction().await?;
        for (t, keys) in [(users, user_keys), (recipes, recipe_keys)] {
            let final_rows = &rows[&t.table];
            let mut data = String::new();
            let mut n = 0;
            for k in keys {
                if let Some(line) = final_rows.copy_line.get(k) {
                    data.push_str(line);
                    n += 1;
                }
            }
            if n == 0 {
                continue;
            }
            let names = t.column_names();
            let cols: Vec<String> = names.iter().map(|c| quote(c)).collect();
            let sink = tx
                .copy_in(&format!(
                    "COPY stage_{} ({}) FROM STDIN",
                    t.table,
                    cols.join(", ")
                ))
                .await?;
            let mut sink = std::pin::pin!(sink);
            sink.send(Bytes::from(data)).await?;
            sink.as_mut().finish().await?;
            tx.batch_execute(&format!(
                "INSERT INTO {0} AS cur ({1}) SELECT {1} FROM stage_{2} {3}",
                quote(&t.table),
                cols.join(", "),
                t.table,
                conflict_action(t, &names, guarded)
            ))
            .await?;
            written += n;
        }
        written += delete_gone(&tx, recipes, recipe_keys, &rows[&recipes.table]).await?;
        tx.commit().await?;
    }
    Ok(written)
}

/// dms-cdc's run over the batches. Its future is boxed so that polling it
/// is a function of its own, never inlined into the caller:
/// `benches/apply-instructions.sh --postgres` counts the instructions inside
/// it, and not those of the full load of the initial state, which goes
/// through the same `Engine::process`.
fn run_dms_cdc<'a>(
    rig: &'a Rig,
    chunk: usize,
    batches: &'a [Vec<Delivery>],
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Res<usize>> + 'a>> {
    Box::pin(async move { common::process_clean(&engine(rig, "bench", chunk), batches).await })
}

#[derive(Clone)]
struct Measured {
    elapsed: Duration,
    rows: usize,
    /// CPU seconds: this process, the PostgreSQL server.
    cpu: (f64, f64),
    fingerprint: Fingerprint,
}

async fn measure<F, Fut>(rig: &Rig, name: &str, records: usize, run: F) -> Res<Measured>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Res<usize>>,
{
    reset_target(rig).await?;
    let me = std::process::id();
    let port = rig.target_db.port();
    let cpu0 = (cpu_seconds(Some(me)), server_cpu(port));
    let started = Instant::now();
    let rows = run().await?;
    let elapsed = started.elapsed();
    let cpu = (cpu_seconds(Some(me)) - cpu0.0, server_cpu(port) - cpu0.1);
    let fingerprint = fingerprint(rig).await?;
    eprintln!(
        "  {name}: {:.0} records/s ({records} records in {:.2} s), load {}",
        records as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        load()
    );
    Ok(Measured {
        elapsed,
        rows,
        cpu,
        fingerprint,
    })
}

fn keep_best(best: &mut Option<Measured>, m: Measured) {
    if best.as_ref().is_none_or(|b| m.elapsed < b.elapsed) {
        *best = Some(m);
    }
}

async fn run(args: common::TargetBenchArgs) -> Res<()> {
    println!("== dms-cdc e2e benchmark, PostgreSQL target");
    println!("load at start (1/5/15 min): {}", load());
    println!(
        "workload: {} batches x {} records, chunk {}, seed {}",
        args.batches, args.records, args.chunk, args.seed
    );
    let total = args.batches * args.records;
    let workload = common::generate(
        args.seed,
        common::DataSet::for_records(total),
        args.batches,
        args.records,
    );
    let rig = rig(&workload, args.chunk).await?;
    let version: String = rig
        .target
        .get()
        .await?
        .query_one("SHOW server_version", &[])
        .await?
        .get(0);
    println!("PostgreSQL {version}, synchronous_commit off; MariaDB source");
    let keys = workload.touched_keys();
    let (mut client, connection) =
        tokio_postgres::connect(&rig.target_db.url("global"), tokio_postgres::NoTls).await?;
    tokio::spawn(connection);

    let names = ["dms-cdc", "upsert", "upsert+guard", "copy", "copy+guard"];
    let mut best: Vec<Option<Measured>> = vec![None; names.len()];
    let mut rows = None;
    for round in 0..args.rounds {
        if args.rounds > 1 {
            eprintln!(" round {}", round + 1);
        }
        let m = measure(&rig, names[0], total, || {
            run_dms_cdc(&rig, args.chunk, &workload.batches)
        })
        .await?;
        if rows.is_none() {
            rows = Some(final_rows(&rig).await?);
        }
        keep_best(&mut best[0], m);
        let final_rows = rows.as_ref().expect("read above");
        for (i, guarded) in [(1, false), (2, true)] {
            let m = measure(&rig, names[i], total, || {
                run_upsert(&rig, &mut client, args.chunk, &keys, final_rows, guarded)
            })
            .await?;
            keep_best(&mut best[i], m);
        }
        for (i, guarded) in [(3, false), (4, true)] {
            let m = measure(&rig, names[i], total, || {
                run_copy(&rig, &mut client, &keys, final_rows, guarded)
            })
            .await?;
            keep_best(&mut best[i], m);
        }
    }
    let best: Vec<Measured> = best.into_iter().map(|m| m.expect("one round")).collect();

    println!();
    println!(
        "| contender | records/s | dms-cdc / it | rows written | bench CPU s | PostgreSQL CPU s |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let dms_rate = total as f64 / best[0].elapsed.as_secs_f64();
    for (name, m) in names.iter().zip(&best) {
        let rate = total as f64 / m.elapsed.as_secs_f64();
        println!(
            "| {name} | {rate:.0} | {} | {} | {:.2} | {:.2} |",
            if *name == "dms-cdc" {
                String::new()
            } else {
                format!("{:.2}", dms_rate / rate)
            },
            m.rows,
            m.cpu.0,
            m.cpu.1
        );
    }
    let mut ok = true;
    for (name, m) in names.iter().zip(&best).skip(1) {
        if m.fingerprint != best[0].fingerprint {
            let differ = m
                .fingerprint
                .iter()
                .filter(|(k, v)| best[0].fingerprint.get(*k) != Some(*v))
                .count()
                + best[0]
                    .fingerprint
                    .keys()
                    .filter(|k| !m.fingerprint.contains_key(*k))
                    .count();
            println!("DIFFERENT TARGET: {name} left {differ} row(s) unlike dms-cdc's");
            ok = false;
        }
    }
    println!(
        "every contender left the same target: {} ({} rows)",
        if ok { "yes" } else { "NO" },
        best[0].fingerprint.len()
    );
    if ok {
        Ok(())
    } else {
        Err("contenders left different targets".into())
    }
}
