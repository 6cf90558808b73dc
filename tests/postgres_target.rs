//! The PostgreSQL target against real, throwaway servers the tests start
//! themselves: a MariaDB source (and, for the comparison, a MariaDB
//! target) and a PostgreSQL target from the machine's `initdb`/`pg_ctl`.
//!
//! - every fixture event replayed into a MySQL and a PostgreSQL target:
//!   the two end with the same rows, value by value (after the types'
//!   text forms are made alike), the same versions and the same quarantine;
//! - server answers classified by whose fault they are;
//! - TLS modes against a server with a test-made CA.
//!
//! The failure semantics every target shares (checkpoint, version guard,
//! tombstones, quarantine, retries) are in `tests/target_suite.rs`.

use std::path::PathBuf;

mod support;

use dms_cdc::dms::{deliveries, Delivery, Value};
use dms_cdc::engine::{Engine, MysqlToPostgresEngine, Outcome, Settings};
use dms_cdc::fault::{Fault, Infrastructure};
use dms_cdc::local::{MariaDb, PostgreSql};
use dms_cdc::mapping::{Mapping, Transforms};
use dms_cdc::position::ShardId;
use dms_cdc::postgres::target::TargetError;
use dms_cdc::postgres::PostgresTarget;
use dms_cdc::replay::{event_files, read_event};
use dms_cdc::target::{MysqlTarget, TableWrites, Target};
use mysql_async::prelude::*;
use serde_json::{Map, Value as Json};
use support::targets::{pg_client, TestTarget};
use support::{root, FUNCTION_NAME};

const SHARD: &str = "shardId-000000000000";
/// The target tables the mapping writes, with their key column.
const TABLES: [(&str, &str); 2] = [("global_users", "user_id"), ("global_recipes", "legacy_id")];
/// Columns that hold JSON: compared as parsed JSON values.
const JSON_COLUMNS: [&str; 2] = ["ingredients", "meta"];

fn mapping() -> (Mapping, Transforms) {
    let transforms = Transforms::standard();
    let mapping = Mapping::load(&root().join("fixtures/mapping.toml"), &transforms).unwrap();
    (mapping, transforms)
}

async fn target(pg: &PostgreSql, chunk_size: usize) -> PostgresTarget {
    let pool = dms_cdc::postgres::pool(&pg.url("global"), 4).unwrap();
    let target = PostgresTarget::new(pool, FUNCTION_NAME, chunk_size);
    Target::prepare(&target, &mapping().0).await.unwrap();
    target
}

/// An engine from `source` (a MariaDB with the sample source schema) into `pg`.
async fn engine(source: &MariaDb, pg: &PostgreSql, chunk_size: usize) -> MysqlToPostgresEngine {
    let (mapping, transforms) = mapping();
    let source = dms_cdc::source::pool(&source.url("recipes_src"), 4).unwrap();
    Engine::new(
        mapping,
        transforms,
        dms_cdc::source::MysqlSource::from(source),
        target(pg, chunk_size).await,
        Settings {
            function_name: FUNCTION_NAME.into(),
            chunk_size,
        },
    )
}

/// Every event file with its deliveries, in sorted order.
fn fixture_batches() -> Vec<(PathBuf, Vec<Delivery>)> {
    event_files(&[root().join("fixtures/events")])
        .unwrap()
        .into_iter()
        .map(|f| {
            let event = read_event(&f).unwrap();
            let d = deliveries(&event).unwrap();
            (f, d)
        })
        .collect()
}

/// A MySQL table as text: `CAST(... AS CHAR)`, binary as upper-case hex,
/// JSON parsed, NULL as null; in key order.
async fn mysql_contents(pool: &mysql_async::Pool, table: &str) -> Vec<Map<String, Json>> {
    let mut conn = pool.get_conn().await.unwrap();
    let columns: Vec<(String, String)> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (table,),
        )
        .await
        .unwrap();
    let key = TABLES.iter().find(|(t, _)| *t == table).unwrap().1;
    let select = columns
        .iter()
        .map(|(c, ty)| {
            if JSON_COLUMNS.contains(&c.as_str()) {
                format!("`{c}`")
            } else if ty.contains("binary") || ty.contains("blob") {
                format!("HEX(`{c}`)")
            } else {
                format!("CAST(`{c}` AS CHAR)")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let rows: Vec<mysql_async::Row> = conn
        .query(format!("SELECT {select} FROM `{table}` ORDER BY `{key}`"))
        .await
        .unwrap();
    rows.into_iter()
        .map(|row| {
            columns
                .iter()
                .zip(row.unwrap())
                .map(|((c, _), v)| {
                    let text = match v {
                        mysql_async::Value::NULL => None,
                        mysql_async::Value::Bytes(b) => Some(String::from_utf8(b).unwrap()),
                        other => Some(other.as_sql(true)),
                    };
                    (c.clone(), as_json(c, text))
                })
                .collect()
        })
        .collect()
}

fn as_json(column: &str, text: Option<String>) -> Json {
    match text {
        None => Json::Null,
        Some(t) if JSON_COLUMNS.contains(&column) => {
            serde_json::from_str(&t).unwrap_or_else(|e| panic!("{column} is not JSON ({e}): {t}"))
        }
        Some(t) => Json::String(t),
    }
}

/// A PostgreSQL table in the MySQL text forms: booleans as `1`/`0`, bytea
/// as upper-case hex, timestamps with as many fraction digits as the
/// column keeps (`DATETIME(6)` prints six), JSON parsed; in key order.
async fn postgres_contents(client: &tokio_postgres::Client, table: &str) -> Vec<Map<String, Json>> {
    let columns: Vec<(String, String, Option<i32>)> = client
        .query(
            "SELECT column_name::text, data_type::text, datetime_precision::int4
             FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(!columns.is_empty(), "table {table} not found");
    let key = TABLES.iter().find(|(t, _)| *t == table).unwrap().1;
    let select = columns
        .iter()
        .map(|(c, ty, precision)| match (ty.as_str(), precision) {
            ("boolean", _) => format!("CASE WHEN \"{c}\" THEN '1' ELSE '0' END"),
            ("bytea", _) => format!("upper(encode(\"{c}\", 'hex'))"),
            ("timestamp without time zone", Some(6)) => {
                format!("to_char(\"{c}\", 'YYYY-MM-DD HH24:MI:SS.US')")
            }
            ("timestamp without time zone", _) => {
                format!("to_char(\"{c}\", 'YYYY-MM-DD HH24:MI:SS')")
            }
            _ => format!("\"{c}\"::text"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    client
        .query(
            // The table's column, not the text of the output column of that name.
            &format!("SELECT {select} FROM \"{table}\" ORDER BY \"{table}\".\"{key}\""),
            &[],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            columns
                .iter()
                .enumerate()
                .map(|(i, (c, _, _))| (c.clone(), as_json(c, row.get::<_, Option<String>>(i))))
                .collect()
        })
        .collect()
}

/// Lists every difference of two tables (rows matched by key).
fn differences(
    table: &str,
    left: (&str, &[Map<String, Json>]),
    right: (&str, &[Map<String, Json>]),
) -> Vec<String> {
    let key = TABLES.iter().find(|(t, _)| *t == table).unwrap().1;
    let keys =
        |rows: &[Map<String, Json>]| -> Vec<Json> { rows.iter().map(|r| r[key].clone()).collect() };
    let mut problems = Vec::new();
    if keys(left.1) != keys(right.1) {
        problems.push(format!(
            "{table} keys differ:\n  {} {:?}\n  {} {:?}",
            left.0,
            keys(left.1),
            right.0,
            keys(right.1)
        ));
    }
    for a in left.1 {
        let Some(b) = right.1.iter().find(|b| b[key] == a[key]) else {
            continue;
        };
        let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
        names.sort();
        names.dedup();
        for n in names {
            if a.get(n) != b.get(n) {
                problems.push(format!(
                    "{table} {key}={}: column {n}:\n  {} {}\n  {} {}",
                    a[key],
                    left.0,
                    a.get(n)
                        .map_or("(no such column)".into(), |v| v.to_string()),
                    right.0,
                    b.get(n)
                        .map_or("(no such column)".into(), |v| v.to_string()),
                ));
            }
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_lands_in_postgresql_as_in_mysql() {
    let rig = support::rig(100).await;
    rig.source_db
        .run_file(&root().join("fixtures/source-state.sql"))
        .unwrap();
    let pg = <PostgresTarget as TestTarget>::start();
    let pg_engine = engine(&rig.source_db, &pg, 100).await;
    let client = pg_client(&pg).await;
    let batches = fixture_batches();
    assert_eq!(batches.len(), 7, "fixtures/events changed: see this test");

    for (file, batch) in &batches {
        let name = file.file_name().unwrap().to_string_lossy();
        let mysql = rig.engine.process(batch).await;
        let postgres = pg_engine.process(batch).await;
        assert_eq!(mysql.retry_error, None, "{name}: MySQL");
        assert_eq!(postgres.retry_error, None, "{name}: PostgreSQL");
        assert!(
            postgres.response.batch_item_failures.is_empty(),
            "{name}: {:?}",
            postgres.outcomes
        );
        assert_eq!(postgres.outcomes, mysql.outcomes, "{name}: outcomes");
        assert_eq!(
            postgres.summary.upserts, mysql.summary.upserts,
            "{name}: upserts"
        );
        assert_eq!(
            postgres.summary.deletes, mysql.summary.deletes,
            "{name}: deletes"
        );
    }

    // The same rows, value by value, versions included.
    let mut problems = Vec::new();
    for (table, _) in TABLES {
        let mysql = mysql_contents(&rig.target_pool, table).await;
        let postgres = postgres_contents(&client, table).await;
        assert!(!postgres.is_empty(), "{table} is empty");
        problems.extend(differences(
            table,
            ("mysql", &mysql),
            ("postgres", &postgres),
        ));
        // And the expected rows of the fixtures (which name no version).
        let expected: Vec<Map<String, Json>> = serde_json::from_str(
            &std::fs::read_to_string(root().join(format!("fixtures/expected/{table}.json")))
                .unwrap(),
        )
        .unwrap();
        let without_version: Vec<Map<String, Json>> = postgres
            .into_iter()
            .map(|mut r| {
                r.remove("src_version");
                r
            })
            .collect();
        problems.extend(differences(
            table,
            ("expected", &expected),
            ("postgres", &without_version),
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Decimals inside JSON keep their scale in jsonb too (`4.00`).
    let stored: Vec<String> = client
        .query(
            "SELECT ingredients::text FROM global_recipes ORDER BY legacy_id",
            &[],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        stored.iter().any(|s| s.contains("\"qty\": 4.00")),
        "{stored:?}"
    );

    // The same quarantine: 07's poison records, raw payloads and reasons.
    let mysql_q = MysqlTarget::quarantine(&rig.target_db).await;
    let postgres_q = PostgresTarget::quarantine(&pg).await;
    assert_eq!(postgres_q.len(), 3, "{postgres_q:#?}");
    assert_eq!(postgres_q, mysql_q);

    // A second replay is skipped by the checkpoint and changes nothing.
    let mut before = Vec::new();
    for (table, _) in TABLES {
        before.push(postgres_contents(&client, table).await);
    }
    for (file, batch) in &batches {
        let report = pg_engine.process(batch).await;
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            report.outcomes.iter().all(|o| *o == Outcome::Skipped),
            "{name}: {:?}",
            report.outcomes
        );
    }
    for ((table, _), before) in TABLES.iter().zip(&before) {
        assert_eq!(
            &postgres_contents(&client, table).await,
            before,
            "{table} changed on the second replay"
        );
    }
    assert_eq!(PostgresTarget::quarantine(&pg).await, postgres_q);
}

/// A row of `global_users` in `column_names()` order, with `version`.
fn user_row(id: i64, name: &str, version: &str) -> Vec<Value> {
    vec![
        Value::Int(id),
        Value::Text(name.into()),
        Value::Text("a@example.com".into()),
        Value::DateTime(
            chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
                .unwrap()
                .and_hms_micro_opt(3, 4, 5, 600_000)
                .unwrap(),
        ),
        Value::Bool(true),
        Value::Int(0),
        Value::Text(version.into()),
    ]
}

/// Writes `writes` to table `index` of the mapping in one transaction.
async fn write(
    target: &PostgresTarget,
    index: usize,
    writes: TableWrites,
) -> Result<(), TargetError> {
    let table = mapping().0.targets[index].clone();
    let mut tx = target.begin().await?;
    tx.write(
        &table,
        TableWrites {
            target: index,
            ..writes
        },
    )
    .await?;
    tx.finish(&[], None).await
}

fn upserts(rows: Vec<Vec<Value>>) -> TableWrites {
    TableWrites {
        upserts: rows,
        ..TableWrites::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_answers_are_classified_by_whose_fault_they_are() {
    let pg = <PostgresTarget as TestTarget>::start();
    let target = target(&pg, 100).await;
    let users = mapping().0.targets[0].clone();
    assert_eq!(users.table, "global_users");

    // Values the target refuses: the record's fault (SQLSTATE 22xxx, 23xxx).
    let long_name = user_row(1, &"x".repeat(101), "v1");
    let mut not_a_number = user_row(2, "Ann", "v1");
    not_a_number[0] = Value::Text("abc".into());
    let mut negative = user_row(3, "Ann", "v1");
    negative[0] = Value::Int(-3);
    let mut not_null = user_row(4, "Ann", "v1");
    not_null[1] = Value::Null;
    let mut too_small = user_row(5, "Ann", "v1");
    too_small[5] = Value::Int(40_000);
    let nul = user_row(6, "A\0nn", "v1");
    let cases = [
        ("a value too long", long_name, "22001"),
        ("not a number", not_a_number, "22P02"),
        ("a CHECK", negative, "23514"),
        ("NOT NULL", not_null, "23502"),
        ("out of range for smallint", too_small, "22003"),
        ("a NUL in text", nul, "22021"),
    ];
    for (what, row, state) in cases {
        let e = write(&target, 0, upserts(vec![row])).await.unwrap_err();
        assert_eq!(e.sqlstate(), Some(state), "{what}: {e}");
        assert_eq!(e.fault(), Fault::Record, "{what}: {e}");
        assert!(!e.to_string().contains("abc"), "{what}: {e}");
    }
    let mut recipe: Vec<Value> = vec![Value::Null; mapping().0.targets[1].column_names().len()];
    recipe[0] = Value::Int(1);
    recipe[2] = Value::Text("t".into());
    recipe[3] = Value::Int(1);
    recipe[6] = Value::Text("2026-01-02 03:04:05".into());
    recipe[7] = Value::Int(0);
    recipe[9] = Value::Text("not json".into());
    recipe[10] = Value::Json("{}".into());
    recipe[14] = Value::Text("x".into());
    let e = write(&target, 1, upserts(vec![recipe.clone()]))
        .await
        .unwrap_err();
    assert_eq!(
        (e.sqlstate(), e.fault()),
        (Some("22P02"), Fault::Record),
        "{e}"
    );
    recipe[9] = Value::Json("[]".into());
    recipe[11] = Value::Bytes(vec![7; 65]);
    let e = write(&target, 1, upserts(vec![recipe.clone()]))
        .await
        .unwrap_err();
    assert_eq!(
        (e.sqlstate(), e.fault()),
        (Some("23514"), Fault::Record),
        "{e}"
    );
    recipe[11] = Value::Bytes(vec![7; 64]);
    write(&target, 1, upserts(vec![recipe])).await.unwrap();

    // The schema is missing: a table, a column, a database; a key that is
    // no unique index (ON CONFLICT has nothing to go by).
    let schema = Fault::Infrastructure(Infrastructure::Schema);
    let mut missing = users.clone();
    missing.table = "no_such_table".into();
    let mut tx = target.begin().await.unwrap();
    let e = tx
        .write(&missing, upserts(vec![user_row(7, "Ann", "v1")]))
        .await
        .unwrap_err();
    assert_eq!((e.sqlstate(), e.fault()), (Some("42P01"), schema), "{e}");
    drop(tx);
    pg.run_sql(
        "global",
        "ALTER TABLE global_users RENAME COLUMN email TO mail",
    )
    .unwrap();
    let e = write(&target, 0, upserts(vec![user_row(8, "Ann", "v1")]))
        .await
        .unwrap_err();
    assert_eq!((e.sqlstate(), e.fault()), (Some("42703"), schema), "{e}");
    pg.run_sql(
        "global",
        "ALTER TABLE global_users RENAME COLUMN mail TO email",
    )
    .unwrap();
    pg.run_sql("global", "CREATE TABLE no_key (LIKE global_users); ")
        .unwrap();
    let mut no_key = users.clone();
    no_key.table = "no_key".into();
    let mut tx = target.begin().await.unwrap();
    let e = tx
        .write(&no_key, upserts(vec![user_row(9, "Ann", "v1")]))
        .await
        .unwrap_err();
    assert_eq!((e.sqlstate(), e.fault()), (Some("42P10"), schema), "{e}");
    drop(tx);
    let nowhere = PostgresTarget::new(
        dms_cdc::postgres::pool(&pg.url("no_such_database"), 1).unwrap(),
        FUNCTION_NAME,
        100,
    );
    let e = nowhere
        .checkpoint(&ShardId(SHARD.into()))
        .await
        .unwrap_err();
    assert_eq!((e.sqlstate(), e.fault()), (Some("3D000"), schema), "{e}");

    // Credentials: a wrong password is an authentication fault (the
    // secret is re-read), the right one works.
    pg.add_password_user("rotated", "right-pw", "global")
        .unwrap();
    let as_user = |password: &str| {
        PostgresTarget::new(
            dms_cdc::postgres::pool(&pg.url_as("rotated", password, "global"), 1).unwrap(),
            FUNCTION_NAME,
            100,
        )
    };
    let e = as_user("wrong-pw")
        .checkpoint(&ShardId(SHARD.into()))
        .await
        .unwrap_err();
    assert_eq!(
        (e.sqlstate(), e.fault()),
        (
            Some("28P01"),
            Fault::Infrastructure(Infrastructure::Authentication)
        ),
        "{e}"
    );
    assert!(!e.to_string().contains("wrong-pw"), "{e}");
    as_user("right-pw")
        .checkpoint(&ShardId(SHARD.into()))
        .await
        .unwrap();
    // No password at all, where one is asked for: the driver refuses
    // before the server answers; our configuration is what is wrong.
    let e = PostgresTarget::new(
        dms_cdc::postgres::pool(
            &format!("postgres://rotated@127.0.0.1:{}/global", pg.port()),
            1,
        )
        .unwrap(),
        FUNCTION_NAME,
        100,
    )
    .checkpoint(&ShardId(SHARD.into()))
    .await
    .unwrap_err();
    assert_eq!(
        e.fault(),
        Fault::Infrastructure(Infrastructure::Configuration),
        "{e}"
    );
    // Privileges: the role may not write a table it was not granted.
    pg.run_sql("global", "REVOKE ALL ON global_users FROM rotated")
        .unwrap();
    let e = write(
        &as_user("right-pw"),
        0,
        upserts(vec![user_row(10, "Ann", "v1")]),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.sqlstate(), e.fault()),
        (
            Some("42501"),
            Fault::Infrastructure(Infrastructure::Authorisation)
        ),
        "{e}"
    );

    // Nobody listens: a connection fault.
    let closed = dms_cdc::local::free_port().unwrap();
    let e = PostgresTarget::new(
        dms_cdc::postgres::pool(&format!("postgres://u@127.0.0.1:{closed}/global"), 1).unwrap(),
        FUNCTION_NAME,
        100,
    )
    .begin()
    .await
    .err()
    .unwrap();
    assert_eq!(
        e.fault(),
        Fault::Infrastructure(Infrastructure::Connection),
        "{e}"
    );
}

/// Whether a connection made from `url` is encrypted (or why it failed).
async fn ssl_in_use(url: &str) -> Result<bool, String> {
    let pool = dms_cdc::postgres::pool(url, 1).map_err(|e| e.to_string())?;
    let client = pool.get().await.map_err(|e| {
        let e = TargetError::Write {
            what: "connect".into(),
            bookkeeping: false,
            source: e.into(),
        };
        format!("{} ({e})", e.fault().name())
    })?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_modes_against_a_server_with_its_own_ca() {
    use dms_cdc::local::TlsFiles;
    let dir = tempfile::tempdir().unwrap();
    let files = TlsFiles::generate(dir.path(), &["127.0.0.1"]).unwrap();
    let other_dir = dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other = TlsFiles::generate(&other_dir, &["127.0.0.1"]).unwrap();
    let pg = PostgreSql::start_tls(&files).unwrap();
    let url = |host: &str, params: &str| {
        format!(
            "postgres://{}@{host}:{}/postgres?{params}",
            dms_cdc::local::PG_USER,
            pg.port()
        )
    };
    let ca = files.ca.display();
    let other_ca = other.ca.display();
    let cases: Vec<(String, Result<bool, &str>)> = vec![
        (url("127.0.0.1", ""), Ok(false)),
        (url("127.0.0.1", "sslmode=disable"), Ok(false)),
        (url("127.0.0.1", "sslmode=require"), Ok(true)),
        (
            url(
                "127.0.0.1",
                &format!("sslmode=verify-full&sslrootcert={ca}"),
            ),
            Ok(true),
        ),
        (url("127.0.0.1", &format!("ssl-ca={ca}")), Ok(true)),
        // Not our CA: refused, as a connection fault.
        (
            url(
                "127.0.0.1",
                &format!("sslmode=verify-ca&sslrootcert={other_ca}"),
            ),
            Err("connection"),
        ),
        // Without a CA file, the built-in public roots do not know it.
        (url("127.0.0.1", "sslmode=verify-full"), Err("connection")),
        // The certificate names 127.0.0.1, not localhost: verify-ca only
        // checks the chain, verify-full the name too.
        (
            url("localhost", &format!("sslmode=verify-ca&sslrootcert={ca}")),
            Ok(true),
        ),
        (
            url(
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={ca}"),
            ),
            Err("connection"),
        ),
    ];
    for (url, want) in cases {
        let got = ssl_in_use(&url).await;
        match (&got, want) {
            (Ok(a), Ok(b)) if *a == b => {}
            (Err(e), Err(prefix)) if e.starts_with(prefix) => {}
            _ => panic!("{url}: got {got:?}, want {want:?}"),
        }
    }
}

/// `infra/target/grants-postgres.sql` gives the function's user what it
/// needs, no more than documented: as that user (and no superuser), the
/// target creates its bookkeeping tables, writes rows, quarantines a
/// record, deletes, and checkpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_grants_are_enough_for_the_function() {
    let pg = <PostgresTarget as TestTarget>::start();
    // The server trusts every local role; the grants are what is tested.
    pg.run_file("global", &root().join("infra/target/grants-postgres.sql"))
        .unwrap();
    let url = pg.url("global").replacen(
        &format!("{}@", dms_cdc::local::PG_USER),
        "dms_cdc_writer@",
        1,
    );
    assert!(url.contains("dms_cdc_writer@"), "{url}");
    let pool = dms_cdc::postgres::pool(&url, 2).unwrap();
    let target = PostgresTarget::new(pool, FUNCTION_NAME, 100);
    Target::prepare(&target, &mapping().0)
        .await
        .expect("the bookkeeping tables are created as the writer");
    let users = mapping().0.targets[0].clone();
    let mut tx = target.begin().await.unwrap();
    tx.write(
        &users,
        upserts(vec![user_row(1, "Ann", "v1"), user_row(2, "Bob", "v1")]),
    )
    .await
    .unwrap();
    tx.write(
        &users,
        TableWrites {
            deletes: vec![vec![Value::Int(2)]],
            tombstones: vec![(vec![Value::Int(2)], "v2".into())],
            ..TableWrites::default()
        },
    )
    .await
    .unwrap();
    let shard = ShardId(SHARD.into());
    let seq = dms_cdc::position::SequenceNumber::parse("42").unwrap();
    let quarantined = dms_cdc::target::Quarantine {
        shard_id: shard.clone(),
        sequence_number: seq.clone(),
        table: Some("recipes_src.users".into()),
        operation: Some("insert".into()),
        raw: b"{}".to_vec(),
        class: dms_cdc::target::QuarantineClass::Write,
        message: "a reason".into(),
    };
    tx.finish(std::slice::from_ref(&quarantined), Some((&shard, &seq)))
        .await
        .expect("quarantine and checkpoint as the writer");
    assert_eq!(
        target
            .checkpoint(&shard)
            .await
            .unwrap()
            .map(|s| s.as_str().to_owned()),
        Some("42".to_owned())
    );
    let q = PostgresTarget::quarantine(&pg).await;
    assert_eq!(q.len(), 1);
    // And the writer is no superuser: it cannot read what it was not granted.
    let client = tokio_postgres::connect(&url, tokio_postgres::NoTls).await;
    let (client, connection) = client.unwrap();
    tokio::spawn(connection);
    let e = client
        .simple_query("SELECT * FROM pg_authid")
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("42501"), "{e}");
}

/// Row locks take slots of the server's shared lock table (6,400 with the
/// default `max_locks_per_transaction`): a transaction of 10,000 rows took
/// 10,000 and failed with `53200 out of shared memory` on every retry, a
/// stalled shard. Beyond `ROW_LOCKS_PER_TABLE` rows a transaction now
/// locks the table instead, and the other writers of the table still wait
/// for it (and it for them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_any_size_fits_the_lock_table_and_still_excludes() {
    use dms_cdc::postgres::target::ROW_LOCKS_PER_TABLE;
    let pg = <PostgresTarget as TestTarget>::start();
    let target = target(&pg, 500).await;
    let users = mapping().0.targets[0].clone();
    let rows: Vec<Vec<Value>> = (1..=10_000).map(|i| user_row(i, "bulk", "v1")).collect();
    write(&target, 0, upserts(rows))
        .await
        .expect("10,000 rows in one transaction");
    let client = pg_client(&pg).await;
    let count: i64 = client
        .query_one("SELECT count(*) FROM global_users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 10_000);

    // A big transaction holds the table; a small one (row locks under the
    // table's shared lock) waits for it, and the reverse.
    for big_first in [true, false] {
        let big: Vec<Vec<Value>> = (1..=(ROW_LOCKS_PER_TABLE as i64 + 1))
            .map(|i| user_row(i, "big", "v2"))
            .collect();
        let small = vec![user_row(20_000, "small", "v2")];
        let (first, second) = if big_first {
            (big, small)
        } else {
            (small, big)
        };
        let mut a = target.begin().await.unwrap();
        a.write(&users, upserts(first)).await.unwrap();
        let (target_b, users_b) = (target.clone(), users.clone());
        let b = tokio::spawn(async move {
            let mut b = target_b.begin().await.unwrap();
            b.write(&users_b, upserts(second)).await.unwrap();
            b.finish(&[], None).await.unwrap();
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            !b.is_finished(),
            "big first: {big_first}: the second writer waits"
        );
        a.finish(&[], None).await.unwrap();
        b.await.unwrap();
    }
    let names: Vec<String> = client
        .query(
            "SELECT DISTINCT display_name FROM global_users WHERE user_id <= 513 OR user_id = 20000 ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["big", "small"]);
}
