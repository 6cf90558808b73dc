//! Acceptance test: replaying every fixture yields exactly the expected
//! target rows.
//!
//! A throwaway source MariaDB holds the state the source reaches after every
//! event of `fixtures/events/` (`fixtures/source-state.sql`, hand-derived from
//! the events); a throwaway target MariaDB starts empty. Every event file is
//! processed in order by the real engine (decode, plan, re-query, apply), and
//! the full contents of both target tables must equal `fixtures/expected/*.json`;
//! the quarantine table must hold exactly 07's three poison records. A second
//! replay of everything must be skipped by the checkpoint and change nothing.
//!
//! Every re-query reads the final source state, so a recipe is built as it is
//! at the end of the history whichever event rebuilds it: recipe 107 reaches
//! the target through the author lookups of 01 and 03 although its own
//! records in 07 are quarantined (see fixtures/README.md).

use std::path::PathBuf;
use std::time::Instant;

mod support;

use dms_cdc::dms::{deliveries, Delivery};
use dms_cdc::engine::Outcome;
use dms_cdc::replay::{event_files, read_event};
use mysql_async::prelude::*;
use serde_json::{Map, Value as Json};
use support::{root, FUNCTION_NAME};

const SHARD: &str = "shardId-000000000000";
/// The target tables the mapping writes, with their key column.
const TABLES: [(&str, &str); 2] = [("global_users", "user_id"), ("global_recipes", "legacy_id")];
/// Columns of fixtures/target.sql that hold JSON: compared as parsed JSON values.
const JSON_COLUMNS: [&str; 2] = ["ingredients", "meta"];
/// The version column every target has; filled by the writer with a commit or
/// read time, so not part of the expected files.
const VERSION_COLUMN: &str = "src_version";

/// What `dms_cdc_quarantine` must hold after the first replay: the three
/// poison records of 07-poison.json, all undecodable. No record of any file
/// is unplannable (see `cargo run -- replay --dry-run`), and no row fails to
/// build or write.
/// (sequence number, error_class, table_name, part of the message)
const QUARANTINED: [(&str, &str, Option<&str>, &str); 3] = [
    (
        "49590338271490256608559692538616565221790262858175275156",
        "decode",
        None,
        "payload is not a JSON object",
    ),
    (
        "49590338271490256608559692538624355645830666898595679168",
        "decode",
        Some("recipes_src.recipes"),
        "unknown operation \"upsert\" for record-type \"data\"",
    ),
    (
        "49590338271490256608559692538629800399871989212662001453",
        "decode",
        Some("recipes_src.recipes"),
        "unknown record-type \"ddl\"",
    ),
];

/// Every event file with its deliveries, in sorted order.
fn fixture_batches() -> Vec<(PathBuf, Vec<Delivery>)> {
    let files = event_files(&[root().join("fixtures/events")]).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "01-load.json",
            "02-insert-update-delete.json",
            "03-child-moves.json",
            "04-control.json",
            "05-lob-and-lossy.json",
            "06-types.json",
            "07-poison.json",
        ],
        "fixtures/events changed: update fixtures/source-state.sql, fixtures/expected/ and this test"
    );
    files
        .into_iter()
        .map(|f| {
            let event = read_event(&f).unwrap();
            let d = deliveries(&event).unwrap();
            (f, d)
        })
        .collect()
}

fn to_text(v: mysql_async::Value) -> Option<String> {
    match v {
        mysql_async::Value::NULL => None,
        mysql_async::Value::Bytes(b) => Some(String::from_utf8(b).expect("utf-8 column text")),
        other => Some(other.as_sql(true)),
    }
}

/// The full contents of a target table, one JSON object per row in key
/// order: every column as `CAST(... AS CHAR)` text (binary as `HEX()`), JSON
/// columns as parsed JSON values, NULL as null. `src_version` only when asked.
async fn table_contents(
    pool: &mysql_async::Pool,
    table: &str,
    with_version: bool,
) -> Vec<Map<String, Json>> {
    let mut conn = pool.get_conn().await.unwrap();
    let columns: Vec<(String, String)> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (table,),
        )
        .await
        .unwrap();
    assert!(!columns.is_empty(), "table {table} not found");
    let columns: Vec<(String, String)> = columns
        .into_iter()
        .filter(|(c, _)| with_version || c != VERSION_COLUMN)
        .collect();
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
            let values = row.unwrap();
            columns
                .iter()
                .zip(values)
                .map(|((c, _), v)| {
                    let json = match to_text(v) {
                        None => Json::Null,
                        Some(t) if JSON_COLUMNS.contains(&c.as_str()) => serde_json::from_str(&t)
                            .unwrap_or_else(|e| panic!("{table}.{c} is not JSON ({e}): {t}")),
                        Some(t) => Json::String(t),
                    };
                    (c.clone(), json)
                })
                .collect()
        })
        .collect()
}

fn expected_contents(table: &str) -> Vec<Map<String, Json>> {
    let path = root().join(format!("fixtures/expected/{table}.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    let rows: Vec<Map<String, Json>> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    rows
}

/// Compares full table contents; the message lists every difference.
fn assert_table_eq(table: &str, actual: &[Map<String, Json>], expected: &[Map<String, Json>]) {
    let key = TABLES.iter().find(|(t, _)| *t == table).unwrap().1;
    let keys =
        |rows: &[Map<String, Json>]| -> Vec<Json> { rows.iter().map(|r| r[key].clone()).collect() };
    let mut problems = Vec::new();
    if keys(actual) != keys(expected) {
        problems.push(format!(
            "keys differ:\n  actual   {:?}\n  expected {:?}",
            keys(actual),
            keys(expected)
        ));
    }
    for a in actual {
        let Some(e) = expected.iter().find(|e| e[key] == a[key]) else {
            continue;
        };
        let mut names: Vec<&String> = a.keys().chain(e.keys()).collect();
        names.sort();
        names.dedup();
        for n in names {
            if a.get(n) != e.get(n) {
                problems.push(format!(
                    "{table} {key}={}: column {n}:\n  actual   {}\n  expected {}",
                    a[key],
                    a.get(n)
                        .map_or("(no such column)".into(), |v| v.to_string()),
                    e.get(n)
                        .map_or("(no such column)".into(), |v| v.to_string()),
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{table} differs from fixtures/expected/{table}.json:\n{}",
        problems.join("\n")
    );
}

#[derive(Debug, PartialEq)]
struct QuarantineRow {
    function_name: String,
    shard_id: String,
    sequence_number: String,
    table_name: Option<String>,
    operation: Option<String>,
    raw_record: Vec<u8>,
    error_class: String,
    error_message: String,
    first_seen: String,
    last_seen: String,
    attempts: i64,
    resolved: i64,
}

async fn quarantine_rows(pool: &mysql_async::Pool) -> Vec<QuarantineRow> {
    let mut conn = pool.get_conn().await.unwrap();
    let rows: Vec<mysql_async::Row> = conn
        .query(
            "SELECT function_name, shard_id, sequence_number, table_name, operation, raw_record,
                    error_class, error_message, CAST(first_seen AS CHAR), CAST(last_seen AS CHAR),
                    attempts, resolved
             FROM dms_cdc_quarantine ORDER BY id",
        )
        .await
        .unwrap();
    rows.into_iter()
        .map(|r| QuarantineRow {
            function_name: r.get(0).unwrap(),
            shard_id: r.get(1).unwrap(),
            sequence_number: r.get(2).unwrap(),
            table_name: r.get(3).unwrap(),
            operation: r.get(4).unwrap(),
            raw_record: r.get(5).unwrap(),
            error_class: r.get(6).unwrap(),
            error_message: r.get(7).unwrap(),
            first_seen: r.get(8).unwrap(),
            last_seen: r.get(9).unwrap(),
            attempts: r.get(10).unwrap(),
            resolved: r.get(11).unwrap(),
        })
        .collect()
}

/// The expected files must agree with the events where the events say
/// something: the story of 101 starts with 05's truncated body, and the
/// external_ref of 106 rounds to 05's exponent rendering.
fn check_expectations_against_events(
    batches: &[(PathBuf, Vec<Delivery>)],
    recipes: &[Map<String, Json>],
) {
    let (_, lob_file) = batches
        .iter()
        .find(|(f, _)| f.ends_with("05-lob-and-lossy.json"))
        .unwrap();
    let docs: Vec<Json> = lob_file
        .iter()
        .map(|d| serde_json::from_slice(&d.data).unwrap())
        .collect();
    let truncated = docs[0]["data"]["body"].as_str().unwrap();
    assert_eq!(
        truncated.len(),
        1024,
        "05's story body is cut at 1024 bytes"
    );
    let r101 = recipes.iter().find(|r| r["legacy_id"] == "101").unwrap();
    let story = r101["story"].as_str().unwrap();
    assert!(
        story.len() > truncated.len() && story.starts_with(truncated),
        "expected story of 101 must be the full text of 05's truncated body"
    );
    let rounded = docs[1]["data"]["external_ref"].as_f64().unwrap();
    let r106 = recipes.iter().find(|r| r["legacy_id"] == "106").unwrap();
    let exact = r106["meta"]["external_ref"].as_u64().unwrap();
    assert!(exact >= 10u64.pow(18), "a real 19-digit integer");
    assert_eq!(format!("{:.14e}", exact as f64), format!("{rounded:.14e}"));
}

/// The literal text of every `"qty"` value in some JSON text, sorted: parsed
/// JSON values compare `4.00` equal to `4.0`, this keeps the scale.
fn qty_literals(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .split("\"qty\"")
        .skip(1)
        .map(|rest| {
            rest.trim_start()
                .trim_start_matches(':')
                .trim_start()
                .chars()
                .take_while(|c| !matches!(c, ',' | '}' | ' ' | '\n'))
                .collect()
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_every_fixture_yields_exactly_the_expected_target_rows() {
    let started = Instant::now();
    let rig = support::rig(100).await;
    rig.source_db
        .run_file(&root().join("fixtures/source-state.sql"))
        .unwrap();
    let batches = fixture_batches();
    let expected: Vec<(&str, Vec<Map<String, Json>>)> = TABLES
        .iter()
        .map(|(t, _)| (*t, expected_contents(t)))
        .collect();
    check_expectations_against_events(&batches, &expected[1].1);

    // The expected files name every column of the target table but the version.
    for (table, rows) in &expected {
        let actual = table_contents(&rig.target_pool, table, false).await;
        assert!(actual.is_empty(), "{table} starts empty");
        let mut conn = rig.target_pool.get_conn().await.unwrap();
        let mut columns: Vec<String> = conn
            .exec(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME <> ?",
                (table, VERSION_COLUMN),
            )
            .await
            .unwrap();
        columns.sort();
        for row in rows {
            let mut names: Vec<String> = row.keys().cloned().collect();
            names.sort();
            assert_eq!(
                names, columns,
                "fixtures/expected/{table}.json: columns of {row:?}"
            );
        }
    }

    // First replay: every file in order, each one batch.
    for (file, batch) in &batches {
        let report = rig.engine.process(batch).await;
        let name = file.file_name().unwrap().to_string_lossy();
        assert_eq!(report.retry_error, None, "{name}");
        assert_eq!(
            serde_json::to_string(&report.response).unwrap(),
            r#"{"batchItemFailures":[]}"#,
            "{name}: {:?}",
            report.outcomes
        );
        let quarantined: Vec<&str> = batch
            .iter()
            .zip(&report.outcomes)
            .filter(|(_, o)| **o == Outcome::Quarantined)
            .map(|(d, _)| d.sequence_number.as_str())
            .collect();
        let expected_quarantined: Vec<&str> = QUARANTINED
            .iter()
            .map(|q| q.0)
            .filter(|s| batch.iter().any(|d| d.sequence_number.as_str() == *s))
            .collect();
        assert_eq!(
            quarantined, expected_quarantined,
            "{name}: quarantined records"
        );
        assert!(
            report.outcomes.iter().all(|o| *o != Outcome::Pending),
            "{name}: {:?}",
            report.outcomes
        );
    }

    for (table, rows) in &expected {
        let actual = table_contents(&rig.target_pool, table, false).await;
        assert_table_eq(table, &actual, rows);
    }

    // Decimals inside JSON keep their exact text (DECIMAL(8,2): `4.00`, not `4.0`).
    let mut conn = rig.target_pool.get_conn().await.unwrap();
    let stored: Vec<String> = conn
        .query("SELECT ingredients FROM global_recipes")
        .await
        .unwrap();
    drop(conn);
    let expected_text =
        std::fs::read_to_string(root().join("fixtures/expected/global_recipes.json")).unwrap();
    assert_eq!(
        qty_literals(&stored.concat()),
        qty_literals(&expected_text),
        "ingredient quantities as stored: {stored:?}"
    );

    let quarantine = quarantine_rows(&rig.target_pool).await;
    let poison = &batches.last().unwrap().1;
    assert_eq!(
        quarantine
            .iter()
            .map(|q| (q.sequence_number.as_str(), q.error_class.as_str()))
            .collect::<Vec<_>>(),
        QUARANTINED.iter().map(|q| (q.0, q.1)).collect::<Vec<_>>(),
        "dms_cdc_quarantine: {quarantine:#?}"
    );
    for (q, (seq, _, table, reason)) in quarantine.iter().zip(QUARANTINED) {
        let delivery = poison
            .iter()
            .find(|d| d.sequence_number.as_str() == seq)
            .unwrap();
        assert_eq!(q.function_name, FUNCTION_NAME);
        assert_eq!(q.shard_id, SHARD);
        assert_eq!(q.table_name.as_deref(), table, "{seq}");
        assert_eq!(q.operation, None, "{seq}: undecodable, operation unknown");
        assert_eq!(
            q.raw_record, delivery.data,
            "{seq}: the raw payload is kept"
        );
        assert!(
            q.error_message
                .contains(&format!("shard {SHARD}, sequence number {seq}"))
                && q.error_message.contains(reason),
            "{seq}: {}",
            q.error_message
        );
        assert_eq!(q.attempts, 1, "{seq}");
        assert_eq!(q.resolved, 0, "{seq}");
    }

    // Second replay: every record is at or below the checkpoint: skipped,
    // and nothing changes, not even a version or a quarantine attempt count.
    let mut before = Vec::new();
    for (table, _) in TABLES {
        before.push(table_contents(&rig.target_pool, table, true).await);
    }
    for (file, batch) in &batches {
        let report = rig.engine.process(batch).await;
        let name = file.file_name().unwrap().to_string_lossy();
        assert_eq!(report.retry_error, None, "{name}");
        assert!(report.response.batch_item_failures.is_empty(), "{name}");
        assert!(
            report.outcomes.iter().all(|o| *o == Outcome::Skipped),
            "{name}: {:?}",
            report.outcomes
        );
        assert_eq!(report.summary.redelivered_count, batch.len(), "{name}");
    }
    for ((table, _), before) in TABLES.iter().zip(&before) {
        let after = table_contents(&rig.target_pool, table, true).await;
        assert_eq!(&after, before, "{table} changed on the second replay");
    }
    assert_eq!(
        quarantine_rows(&rig.target_pool).await,
        quarantine,
        "dms_cdc_quarantine changed on the second replay"
    );

    eprintln!(
        "fixture replay against MariaDB took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
