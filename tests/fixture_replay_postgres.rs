//! Fixture events recorded from a real PostgreSQL source
//! (`fixtures/events-postgres/`), replayed into every target.
//!
//! - [`record`] (ignored: `cargo test --test fixture_replay_postgres --
//!   --ignored record`) re-records them: a throwaway PostgreSQL with logical
//!   decoding, the sample schema (`fixtures/source-postgres.sql`, REPLICA
//!   IDENTITY FULL), a `test_decoding` slot, then every step of
//!   `fixtures/postgres-scenario/` in order, each captured into one Lambda
//!   Kinesis event as `dms-cdc capture --to-file` writes it (sequence
//!   numbers continuing from one file to the next);
//! - the recorded records look like DMS's for a PostgreSQL source;
//! - for every target: the recorded events, replayed through the engine
//!   re-querying a PostgreSQL source in the scenario's final state, are all
//!   applied or skipped (none quarantined), a second replay is all skipped,
//!   and the target ends with the rows (every column but the version) that
//!   the MySQL-source fixtures give it (`fixtures/events` replayed against
//!   `fixtures/source-state.sql` in the same test), but for the two users
//!   whose ids PostgreSQL's `bigint` cannot hold ([`ONLY_MYSQL`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod support;

use dms_cdc::capture::postgres::{PgCapture, PgPoll, PgRecord};
use dms_cdc::capture::CaptureOptions;
use dms_cdc::dms::{deliveries, Delivery};
use dms_cdc::engine::{Engine, Outcome, Settings};
use dms_cdc::local::PostgreSql;
use dms_cdc::mapping::{Mapping, Transforms};
use dms_cdc::postgres::PostgresSource;
use dms_cdc::replay::{event_files, read_event};
use serde_json::{Map, Value as Json};
use support::targets::TestTarget;
use support::{root, FUNCTION_NAME};
use Outcome::{Applied, Skipped};

/// Every recorded file (and its step in `fixtures/postgres-scenario/`,
/// the same name with `.sql`), with its records in order as `operation
/// table.key` and the outcome of the first replay.
const FILES: [(&str, &[(&str, Outcome)]); 7] = [
    (
        "01-load",
        &[
            ("insert users.1", Applied),
            ("insert users.2", Applied),
            ("insert users.3", Applied),
            ("insert recipes.101", Applied),
            ("insert recipes.102", Applied),
            ("insert recipes.103", Applied),
            ("insert recipe_stories.101", Applied),
            ("insert recipe_stories.102", Applied),
            ("insert recipe_stories.103", Applied),
            ("insert ingredients.1001", Applied),
            ("insert ingredients.1002", Applied),
            ("insert ingredients.1003", Applied),
            ("insert ingredients.1004", Applied),
            ("insert ingredients.1005", Applied),
        ],
    ),
    (
        "02-insert-update-delete",
        &[
            ("insert users.4", Applied),
            ("insert recipes.104", Applied),
            ("insert recipe_stories.104", Applied),
            ("insert ingredients.1006", Applied),
            ("update recipes.101", Applied),
            // Only updated_at changes, which the mapping does not read: the
            // full before images (REPLICA IDENTITY FULL, NULLs included)
            // prove the rows unchanged. (The MySQL fixture rebuilds 103,
            // whose non-LOB before image lacks `tags`.)
            ("update recipes.102", Skipped),
            ("update recipes.103", Skipped),
            ("delete ingredients.1003", Applied),
            ("delete users.3", Applied),
            // Not in the mapping.
            ("insert audit_log.90001", Skipped),
        ],
    ),
    (
        "03-child-moves",
        &[
            ("update ingredients.1002", Applied),
            ("update users.1", Applied),
            ("update users.2", Applied),
        ],
    ),
    (
        "04-data-around-ddl",
        &[
            ("insert users.5", Applied),
            ("insert recipes.105", Applied),
            ("insert ingredients.1007", Applied),
            ("update recipes.105", Applied),
        ],
    ),
    (
        "05-toast-and-large-values",
        &[
            ("update recipe_stories.101", Applied),
            ("update recipe_stories.101", Applied),
            ("update recipe_stories.101", Applied),
            ("insert recipes.106", Applied),
        ],
    ),
    (
        "06-types",
        &[
            ("insert recipes.201", Applied),
            ("insert recipes.202", Applied),
            ("insert users.6", Applied),
            ("insert users.7", Applied),
        ],
    ),
    (
        "07-without-poison",
        &[
            ("insert users.8", Applied),
            ("insert recipes.107", Applied),
            ("insert ingredients.1008", Applied),
        ],
    ),
];

/// Rows of the MySQL-source fixtures that a PostgreSQL source cannot have:
/// the users with ids beyond 2^63-1 (`BIGINT UNSIGNED` in MySQL, `bigint`
/// in PostgreSQL) of `fixtures/events/05-lob-and-lossy.json`.
const ONLY_MYSQL: [(&str, &str); 2] = [
    ("global_users", "18446744073709551610"),
    ("global_users", "18446744073709551615"),
];

/// The target tables: name, key, and every column but the version.
const TABLES: [(&str, &str, &[&str]); 2] = [
    (
        "global_users",
        "user_id",
        &[
            "user_id",
            "display_name",
            "email",
            "created_at",
            "active",
            "is_deleted",
        ],
    ),
    (
        "global_recipes",
        "legacy_id",
        &[
            "legacy_id",
            "author_name",
            "title",
            "status_code",
            "rating",
            "calories",
            "created_at",
            "created_unix",
            "story",
            "ingredients",
            "meta",
            "thumbnail",
            "prep_time",
            "publish_date",
            "source_system",
        ],
    ),
];
const JSON_COLUMNS: [&str; 2] = ["ingredients", "meta"];
const BINARY_COLUMNS: [&str; 1] = ["thumbnail"];
const VERSION_COLUMN: &str = "src_version";

/// The columns of the source tables (`fixtures/source-postgres.sql`).
const SOURCE_COLUMNS: [(&str, &[&str]); 5] = [
    ("users", &["id", "name", "email", "created_at", "is_active"]),
    (
        "recipes",
        &[
            "id",
            "author_id",
            "title",
            "status",
            "servings",
            "rating",
            "calories",
            "created_at",
            "updated_at",
            "external_ref",
            "tags",
            "thumbnail",
            "prep_time",
            "publish_date",
        ],
    ),
    ("recipe_stories", &["recipe_id", "body"]),
    (
        "ingredients",
        &["id", "recipe_id", "position", "name", "quantity", "unit"],
    ),
    ("audit_log", &["id", "action"]),
];

/// The length of the TOASTed story body of step 05 (200 md5 hex digests).
const TOASTED_BODY_LEN: usize = 200 * 32;
/// The story of 101 at the end, whole (`fixtures/source-state.sql`).
const STORY_101_LEN: usize = 1439;
const STREAM_ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/dms-cdc-local";

fn recorded_dir() -> PathBuf {
    root().join("fixtures/events-postgres")
}

fn scenario(name: &str) -> PathBuf {
    root().join(format!("fixtures/postgres-scenario/{name}.sql"))
}

fn mapping() -> (Mapping, Transforms) {
    let transforms = Transforms::standard();
    let mapping = Mapping::load(&root().join("fixtures/mapping.toml"), &transforms).unwrap();
    (mapping, transforms)
}

/// Every event file of `dir` with its deliveries, in sorted order.
fn batches(dir: &Path) -> Vec<(String, Vec<Delivery>)> {
    event_files(&[dir.to_owned()])
        .unwrap()
        .into_iter()
        .map(|f| {
            let name = f.file_stem().unwrap().to_string_lossy().into_owned();
            (name, deliveries(&read_event(&f).unwrap()).unwrap())
        })
        .collect()
}

/// The recorded files, checked against [`FILES`].
fn recorded_batches() -> Vec<(String, Vec<Delivery>)> {
    let batches = batches(&recorded_dir());
    let names: Vec<&str> = batches.iter().map(|(n, _)| n.as_str()).collect();
    let want: Vec<&str> = FILES.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names, want,
        "fixtures/events-postgres changed: re-record (see fixtures/README.md) and update FILES"
    );
    for ((name, batch), (_, records)) in batches.iter().zip(FILES) {
        assert_eq!(
            changes(batch),
            records.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
            "{name}"
        );
    }
    batches
}

fn document(delivery: &Delivery) -> Json {
    serde_json::from_slice(&delivery.data).unwrap()
}

/// `operation table.key` of every record (the key from the partition key).
fn changes(batch: &[Delivery]) -> Vec<String> {
    batch
        .iter()
        .map(|d| {
            let doc = document(d);
            let key = d
                .partition_key
                .strip_prefix("recipes_src.")
                .unwrap_or(&d.partition_key);
            format!("{} {key}", doc["metadata"]["operation"].as_str().unwrap())
        })
        .collect()
}

/// A Lambda Kinesis event of `records`, as `dms-cdc capture --to-file`
/// writes it (one shard), with the arrival at the commit time and sequence
/// numbers continuing after `*sequence` (the files are consecutive
/// stretches of one stream).
fn event_of(records: &[PgRecord], sequence: &mut u64) -> Json {
    let commits: Vec<Option<chrono::DateTime<chrono::Utc>>> = records
        .iter()
        .map(|r| {
            let doc: Json = serde_json::from_slice(&r.payload).unwrap();
            doc["metadata"]["commit-timestamp"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.to_utc())
        })
        .collect();
    let mut event = dms_cdc::pipeline::fixture_event_of(
        records
            .iter()
            .zip(&commits)
            .map(|(r, at)| (r.partition_key.as_str(), r.payload.as_slice(), *at)),
        1,
        STREAM_ARN,
    );
    for item in event["Records"].as_array_mut().unwrap() {
        *sequence += 1;
        let first = item["kinesis"]["sequenceNumber"].as_str().unwrap();
        let number = format!("{}{:07}", &first[..first.len() - 7], *sequence);
        item["eventID"] = format!("shardId-000000000000:{number}").into();
        item["kinesis"]["sequenceNumber"] = number.into();
    }
    event
}

/// Polls until `count` records (of whole transactions) are there.
async fn poll_step(capture: &mut PgCapture, count: usize) -> PgPoll {
    for _ in 0..100 {
        let poll = capture.poll(10_000).await.unwrap();
        if poll.records.len() >= count {
            return poll;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {count} records arrived in 10 s");
}

/// Re-records `fixtures/events-postgres/` from a real PostgreSQL (see the
/// module docs and fixtures/README.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "re-records fixtures/events-postgres: cargo test --test fixture_replay_postgres -- --ignored record"]
async fn record() {
    let pg = PostgreSql::start_logical().unwrap();
    pg.create_database("src").unwrap();
    pg.run_file("src", &root().join("fixtures/source-postgres.sql"))
        .unwrap();
    // Every session of the steps flushes its commits before it ends, so a
    // poll made after a step sees all of it (the throwaway server runs
    // with synchronous_commit off).
    pg.run_sql("src", "ALTER DATABASE src SET synchronous_commit = on")
        .unwrap();
    let client = source_client(&pg).await;
    let identities: Vec<(String, String)> = client
        .query(
            "SELECT c.relname::text, c.relreplident::text FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'recipes_src' AND c.relname IN ('users', 'recipes', 'recipe_stories', 'ingredients')
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        identities,
        ["ingredients", "recipe_stories", "recipes", "users"]
            .map(|t| (t.to_owned(), "f".to_owned())),
        "REPLICA IDENTITY FULL, as infra/source/postgres-source.sql sets it"
    );

    let mut options = CaptureOptions::from_mapping(&mapping().0);
    // Every table of the schema, as a task selecting recipes_src.% does:
    // audit_log's insert is recorded (and counted as unmapped).
    options.tables = None;
    let mut capture = PgCapture::connect(&pg.url("src"), "fixtures", options)
        .await
        .unwrap();
    std::fs::create_dir_all(recorded_dir()).unwrap();
    let mut sequence = 0;
    for (name, records) in FILES {
        pg.run_file("src", &scenario(name)).unwrap();
        let poll = poll_step(&mut capture, records.len()).await;
        let event = event_of(&poll.records, &mut sequence);
        let delivered = deliveries(&serde_json::from_value(event.clone()).unwrap()).unwrap();
        assert_eq!(
            changes(&delivered),
            records.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
            "{name}: the records of fixtures/postgres-scenario/{name}.sql"
        );
        let mut text = serde_json::to_string_pretty(&event).unwrap();
        text.push('\n');
        std::fs::write(recorded_dir().join(format!("{name}.json")), text).unwrap();
        capture
            .advance(poll.upto.as_deref().unwrap())
            .await
            .unwrap();
    }
    assert!(capture.poll(1000).await.unwrap().records.is_empty());
    capture.drop_slot().await.unwrap();
}

/// A driver session on the source database.
async fn source_client(pg: &PostgreSql) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&pg.url("src"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// `0/1A2B3C` -> its position.
fn lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    let hex = |s: &str| {
        if s.bytes().all(|b| b.is_ascii_hexdigit()) {
            u64::from_str_radix(s, 16).ok()
        } else {
            None
        }
    };
    Some((hex(high)? << 32) | hex(low)?)
}

/// The recorded records are DMS's records of a PostgreSQL source:
/// `schema-name`, the xid as `transaction-id`, the LSN as
/// `stream-position`; every column in every new image but an unchanged
/// TOASTed value; before images (and deletes' images) equal to the row's
/// last image (REPLICA IDENTITY FULL; the NULLs test_decoding leaves out
/// of an old tuple put back, as DMS's images carry every column); whole
/// values (no LOB truncation); numbers with their exact text.
#[test]
fn recorded_records_look_like_dms_records_of_a_postgresql_source() {
    let batches = recorded_batches();
    let mut last_lsn = 0;
    let mut last_tx: Option<(u64, u64)> = None;
    // The last image of every row, by partition key.
    let mut rows: BTreeMap<String, Map<String, Json>> = BTreeMap::new();
    let mut toast_left_out = Vec::new();
    let mut story_101 = Vec::new();
    for (name, batch) in &batches {
        for d in batch {
            let doc = document(d);
            let meta = &doc["metadata"];
            let table = meta["table-name"].as_str().unwrap();
            let at = format!("{name} {}", d.partition_key);
            assert_eq!(meta["record-type"], "data", "{at}");
            assert_eq!(meta["schema-name"], "recipes_src", "{at}");
            assert_eq!(meta["partition-key-type"], "primary-key", "{at}");
            assert_eq!(
                meta["partition-key-value"],
                d.partition_key.as_str(),
                "{at}"
            );
            assert!(
                chrono::NaiveDateTime::parse_from_str(
                    meta["commit-timestamp"].as_str().unwrap(),
                    "%Y-%m-%dT%H:%M:%SZ"
                )
                .is_ok(),
                "{at}: {meta}"
            );
            // The xid, and the record's place in its transaction.
            let xid = meta["transaction-id"].as_u64().expect("transaction-id");
            let record_id = meta["transaction-record-id"].as_u64().unwrap();
            match last_tx {
                Some((x, r)) if x == xid => assert_eq!(record_id, r + 1, "{at}"),
                _ => assert_eq!(record_id, 1, "{at}"),
            }
            last_tx = Some((xid, record_id));
            // The WAL position, increasing (the scenario runs one session
            // at a time).
            let position = meta["stream-position"].as_str().unwrap();
            let position = lsn(position).unwrap_or_else(|| panic!("{at}: {position} is no LSN"));
            assert!(position > last_lsn, "{at}: stream-position goes back");
            last_lsn = position;

            let columns: &[&str] = SOURCE_COLUMNS
                .iter()
                .find(|(t, _)| *t == table)
                .unwrap_or_else(|| panic!("{at}: table {table}"))
                .1;
            let mut data = doc["data"].as_object().unwrap().clone();
            // Recipe 105 was inserted while the `difficulty` column existed.
            if d.partition_key == "recipes_src.recipes.105" && data.contains_key("difficulty") {
                assert_eq!(meta["operation"], "insert", "{at}");
                assert_eq!(data.remove("difficulty"), Some("medium".into()), "{at}");
            }
            let before = doc.get("before-image");
            let last = rows.get(&d.partition_key);
            match meta["operation"].as_str().unwrap() {
                "insert" => {
                    assert!(before.is_none() && last.is_none(), "{at}");
                }
                "update" => {
                    let (before, last) = (before.unwrap(), last.unwrap());
                    assert_eq!(before.as_object(), Some(last), "{at}");
                    // An unchanged TOASTed value is left out: the row keeps it.
                    if table == "recipe_stories" && !data.contains_key("body") {
                        toast_left_out.push(before["body"].as_str().unwrap().len());
                        data.insert("body".into(), before["body"].clone());
                    }
                }
                "delete" => {
                    assert!(before.is_none(), "{at}");
                    assert_eq!(&data, last.unwrap(), "{at}");
                    rows.remove(&d.partition_key);
                    continue;
                }
                other => panic!("{at}: operation {other}"),
            }
            assert_eq!(
                data.keys().map(String::as_str).collect::<BTreeSet<_>>(),
                columns.iter().copied().collect(),
                "{at}: every column"
            );
            if d.partition_key == "recipes_src.recipe_stories.101" {
                story_101.push(doc["data"]["body"].as_str().map(str::len));
            }
            rows.insert(d.partition_key.clone(), data);
            // Numbers keep their text.
            let text = String::from_utf8(d.data.clone()).unwrap();
            let literal = match d.partition_key.as_str() {
                "recipes_src.recipes.201" => "\"rating\":4.50",
                "recipes_src.recipes.202" => "\"rating\":3.00",
                "recipes_src.recipes.106" => "\"external_ref\":1234567890123456789",
                "recipes_src.ingredients.1004" => "\"quantity\":4.00",
                _ => "",
            };
            assert!(text.contains(literal), "{at}: {literal} in {text}");
        }
    }
    // The TOASTed body: left out of the no-op update's new image only.
    assert_eq!(toast_left_out, [TOASTED_BODY_LEN]);
    assert_eq!(
        story_101,
        [Some(56), Some(TOASTED_BODY_LEN), None, Some(STORY_101_LEN)],
        "the story of 101: inserted, TOASTed, left out, whole at the end"
    );
}

/// Rows of every target table without the version, in key order: text
/// forms, binary as hex, JSON parsed; also checks that no other column
/// exists and that every row has a version.
async fn rows<T: TestTarget>(db: &T::Db) -> Vec<Vec<Map<String, Json>>> {
    let mut out = Vec::new();
    for (table, key, columns) in TABLES {
        let mut names: Vec<String> = T::text_rows(
            db,
            &format!(
                "SELECT column_name FROM information_schema.columns WHERE table_name = '{table}'"
            ),
        )
        .await
        .into_iter()
        .map(|r| r[0].clone().unwrap().to_lowercase())
        .collect();
        names.sort();
        let mut want: Vec<String> = columns
            .iter()
            .map(|c| (*c).to_owned())
            .chain([VERSION_COLUMN.to_owned()])
            .collect();
        want.sort();
        assert_eq!(names, want, "{table}: columns");
        let unversioned = T::text_rows(
            db,
            &format!("SELECT {key} FROM {table} WHERE {VERSION_COLUMN} IS NULL"),
        )
        .await;
        assert!(unversioned.is_empty(), "{table}: rows without a version");
        let select = columns
            .iter()
            .map(|c| {
                if BINARY_COLUMNS.contains(c) {
                    T::hex(c)
                } else {
                    (*c).to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let rows = T::text_rows(db, &format!("SELECT {select} FROM {table} ORDER BY {key}")).await;
        out.push(
            rows.into_iter()
                .map(|row| {
                    columns
                        .iter()
                        .zip(row)
                        .map(|(c, v)| {
                            let value = match v {
                                None => Json::Null,
                                Some(t) if JSON_COLUMNS.contains(c) => serde_json::from_str(&t)
                                    .unwrap_or_else(|e| panic!("{table}.{c}: {e}: {t}")),
                                Some(t) => Json::String(t),
                            };
                            ((*c).to_owned(), value)
                        })
                        .collect()
                })
                .collect(),
        );
    }
    out
}

/// Every difference of two tables, rows matched by key.
fn differences(
    table: &str,
    key: &str,
    mysql: &[Map<String, Json>],
    postgres: &[Map<String, Json>],
) -> Vec<String> {
    let keys = |rows: &[Map<String, Json>]| rows.iter().map(|r| r[key].clone()).collect::<Vec<_>>();
    let mut problems = Vec::new();
    if keys(mysql) != keys(postgres) {
        problems.push(format!(
            "{table} keys differ:\n  MySQL source      {:?}\n  PostgreSQL source {:?}",
            keys(mysql),
            keys(postgres)
        ));
    }
    for m in mysql {
        let Some(p) = postgres.iter().find(|p| p[key] == m[key]) else {
            continue;
        };
        for (column, value) in m {
            if p.get(column) != Some(value) {
                problems.push(format!(
                    "{table} {key}={}: {column}:\n  MySQL source      {value}\n  PostgreSQL source {}",
                    m[key],
                    p.get(column).unwrap_or(&Json::Null)
                ));
            }
        }
    }
    problems
}

/// The literal text of every `"qty"` value in JSON text, sorted (parsed
/// JSON compares `4.00` equal to `4.0`; this keeps the scale).
fn qty_literals(texts: &[Vec<Option<String>>]) -> Vec<String> {
    let mut out: Vec<String> = texts
        .iter()
        .flatten()
        .flatten()
        .flat_map(|t| {
            t.split("\"qty\"")
                .skip(1)
                .map(|rest| {
                    rest.trim_start_matches([':', ' '])
                        .chars()
                        .take_while(|c| !matches!(c, ',' | '}' | ' '))
                        .collect::<String>()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out
}

/// The target rows the MySQL-source fixtures give: `fixtures/events`
/// replayed against `fixtures/source-state.sql` (checked against
/// `fixtures/expected/` by tests/fixture_replay_mysql.rs and
/// tests/postgres_target.rs).
async fn mysql_fixture_rig<T: TestTarget>() -> support::Rig<T> {
    let rig = support::rig_for::<T>(100).await;
    rig.source_db
        .run_file(&root().join("fixtures/source-state.sql"))
        .unwrap();
    for (name, batch) in batches(&root().join("fixtures/events")) {
        let report = rig.engine.process(&batch).await;
        assert_eq!(report.retry_error, None, "fixtures/events/{name}");
        assert!(report.response.batch_item_failures.is_empty(), "{name}");
    }
    rig
}

/// A PostgreSQL source in the scenario's final state (every re-query
/// reads it, as the MySQL replay reads fixtures/source-state.sql), and an
/// engine from it into `target_db`.
async fn postgres_source_engine<T: TestTarget>(
    target_db: &T::Db,
) -> (PostgreSql, Engine<PostgresSource, T>) {
    let pg = PostgreSql::start().unwrap();
    pg.create_database("src").unwrap();
    pg.run_file("src", &root().join("fixtures/source-postgres.sql"))
        .unwrap();
    for (name, _) in FILES {
        pg.run_file("src", &scenario(name)).unwrap();
    }
    let (mapping, transforms) = mapping();
    let engine = Engine::new(
        mapping.clone(),
        transforms,
        PostgresSource::from(dms_cdc::postgres::pool(&pg.url("src"), 2).unwrap()),
        T::new(T::pool(target_db), FUNCTION_NAME, 100),
        Settings {
            function_name: FUNCTION_NAME.into(),
            chunk_size: 100,
        },
    );
    dms_cdc::target::Target::prepare(&engine.target, &mapping)
        .await
        .unwrap();
    (pg, engine)
}

/// The rows of the MySQL-source fixtures but [`ONLY_MYSQL`] equal the rows
/// from the recorded events; both are those of `fixtures/expected/`
/// (keys), not two empty tables.
fn assert_same_rows(mysql: Vec<Vec<Map<String, Json>>>, postgres: &[Vec<Map<String, Json>>]) {
    let mut problems = Vec::new();
    for (((table, key, _), mysql), postgres) in TABLES.iter().zip(mysql).zip(postgres) {
        let only_mysql: Vec<Json> = ONLY_MYSQL
            .iter()
            .filter(|(t, _)| t == table)
            .map(|(_, k)| Json::from(*k))
            .collect();
        let (excluded, mysql): (Vec<_>, Vec<_>) = mysql
            .into_iter()
            .partition(|r| only_mysql.contains(&r[*key]));
        assert_eq!(
            excluded.iter().map(|r| &r[*key]).collect::<Vec<_>>(),
            only_mysql.iter().collect::<Vec<_>>(),
            "{table}: the MySQL-only rows"
        );
        problems.extend(differences(table, key, &mysql, postgres));
        let expected: Vec<Map<String, Json>> = serde_json::from_str(
            &std::fs::read_to_string(root().join(format!("fixtures/expected/{table}.json")))
                .unwrap(),
        )
        .unwrap();
        let expected_keys: Vec<&Json> = expected
            .iter()
            .map(|r| &r[*key])
            .filter(|k| !only_mysql.contains(k))
            .collect();
        assert_eq!(
            postgres.iter().map(|r| &r[*key]).collect::<Vec<_>>(),
            expected_keys,
            "{table}: keys of fixtures/expected/{table}.json"
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

every_target!(recorded_postgresql_events_give_the_rows_of_the_mysql_fixtures);

async fn recorded_postgresql_events_give_the_rows_of_the_mysql_fixtures<T: TestTarget>() {
    let started = Instant::now();
    let rig = mysql_fixture_rig::<T>().await;
    let target_db = T::start();
    let (_source, engine) = postgres_source_engine::<T>(&target_db).await;

    // First replay: every file in order, each one batch.
    let batches = recorded_batches();
    for ((name, batch), (_, records)) in batches.iter().zip(FILES) {
        let report = engine.process(batch).await;
        assert_eq!(report.retry_error, None, "{name}");
        assert!(report.response.batch_item_failures.is_empty(), "{name}");
        assert_eq!(report.summary.quarantined_count, 0, "{name}");
        assert_eq!(
            report.outcomes,
            records.iter().map(|(_, o)| *o).collect::<Vec<_>>(),
            "{name}: outcomes of {:?}",
            changes(batch)
        );
    }
    assert!(T::quarantine(&target_db).await.is_empty());

    let postgres = rows::<T>(&target_db).await;
    assert_same_rows(rows::<T>(&rig.target_db).await, &postgres);
    // Decimals inside JSON keep their scale (`4.00`) from both sources.
    let ingredients = "SELECT ingredients FROM global_recipes ORDER BY legacy_id";
    let (from_mysql, from_postgres) = (
        qty_literals(&T::text_rows(&rig.target_db, ingredients).await),
        qty_literals(&T::text_rows(&target_db, ingredients).await),
    );
    assert_eq!(from_postgres, from_mysql);
    assert!(
        from_postgres.contains(&"4.00".to_owned()),
        "{from_postgres:?}"
    );
    // The story of 101 was re-read whole, not taken from an image.
    let story = T::text_rows(
        &target_db,
        "SELECT story FROM global_recipes WHERE legacy_id = 101",
    )
    .await;
    assert_eq!(story[0][0].as_deref().map(str::len), Some(STORY_101_LEN));

    // Second replay: every record is at or below the checkpoint, and
    // nothing changes, versions included.
    let versions = [
        "SELECT user_id, src_version FROM global_users ORDER BY user_id",
        "SELECT legacy_id, src_version FROM global_recipes ORDER BY legacy_id",
    ];
    let mut before = Vec::new();
    for sql in versions {
        before.push(T::text_rows(&target_db, sql).await);
    }
    for (name, batch) in &batches {
        let report = engine.process(batch).await;
        assert_eq!(report.retry_error, None, "{name}");
        assert!(
            report.outcomes.iter().all(|o| *o == Skipped),
            "{name}: {:?}",
            report.outcomes
        );
        assert_eq!(report.summary.redelivered_count, batch.len(), "{name}");
    }
    assert_eq!(rows::<T>(&target_db).await, postgres);
    for (sql, before) in versions.iter().zip(before) {
        assert_eq!(T::text_rows(&target_db, sql).await, before, "{sql}");
    }
    eprintln!(
        "recorded PostgreSQL fixtures against the MySQL ones took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
