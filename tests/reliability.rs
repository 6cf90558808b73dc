//! The reliability holes of issue 13, each against real, throwaway MariaDB
//! servers: keys the source compares differently from us, infrastructure
//! faults that must never quarantine, same-second versions, late updates
//! after deletes, bookkeeping writes, multi-shard events, statement sizes.

mod support;

use dms_cdc::dms::Delivery;
use dms_cdc::engine::{Engine, Outcome, Settings};
use dms_cdc::fault::{Fault, Infrastructure};
use dms_cdc::local::MariaDb;
use dms_cdc::mapping::{Mapping, Transforms};
use dms_cdc::position::{SequenceNumber, ShardId};
use dms_cdc::source::pool;
use dms_cdc::target::MysqlTarget;
use mysql_async::prelude::*;
use serde_json::json;
use support::{record, rig, user};

const SHARD_A: &str = "shardId-000000000000";

/// A shop catalogue whose shop codes are compared case-insensitively and
/// with PAD SPACE by the source (utf8mb4_general_ci), as legacy schemas do.
const CATALOG_MAPPING: &str = r#"
[source]
schema = "shop_src"

[source.tables.shops]
key = ["code"]

[source.tables.products]
key = ["id"]

[[target]]
table = "catalog"
root = "products"
key = ["product_id"]
version = "src_version"

[[target.join]]
name = "shop"
table = "shops"
on = { code = "shop_code" }
kind = "many-to-one"

[[target.column]]
name = "product_id"
from = "id"

[[target.column]]
name = "title"
from = "title"

[[target.column]]
name = "shop_name"
from = "shop.name"

[[target]]
table = "product_index"
root = "products"
key = ["id"]
version = "src_version"

[[target.column]]
name = "id"
from = "id"

[[target.column]]
name = "title"
from = "title"

[[target]]
table = "shop_pages"
root = "shops"
key = ["code"]
version = "src_version"

[[target.children]]
name = "products"
table = "products"
on = { shop_code = "code" }
order_by = ["id"]

[[target.column]]
name = "code"
from = "code"

[[target.column]]
name = "name"
from = "name"

[[target.column]]
name = "products"
children = "products"
fields = { id = "id", title = "title" }
"#;

const CATALOG_SOURCE: &str = "
CREATE DATABASE shop_src;
CREATE TABLE shop_src.shops (code VARCHAR(10) COLLATE utf8mb4_general_ci PRIMARY KEY, name VARCHAR(50) NOT NULL);
CREATE TABLE shop_src.products (id INT PRIMARY KEY, shop_code VARCHAR(10) COLLATE utf8mb4_general_ci NOT NULL, title VARCHAR(50) NOT NULL, KEY (shop_code));
";

const CATALOG_TARGET: &str = "
CREATE DATABASE global;
CREATE TABLE global.catalog (product_id INT PRIMARY KEY, title VARCHAR(50), shop_name VARCHAR(50), src_version VARCHAR(255));
CREATE TABLE global.product_index (id INT PRIMARY KEY, title VARCHAR(50), src_version VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin);
CREATE TABLE global.shop_pages (code VARCHAR(10) PRIMARY KEY, name VARCHAR(50), products JSON, src_version VARCHAR(255));
";

struct Catalog {
    source_db: MariaDb,
    _target_db: MariaDb,
    engine: dms_cdc::engine::MysqlEngine,
    target_pool: mysql_async::Pool,
    next_seq: u64,
}

async fn catalog() -> Catalog {
    let source_db = MariaDb::start(1).expect("source mariadb");
    let target_db = MariaDb::start(2).expect("target mariadb");
    source_db.run_sql(CATALOG_SOURCE).unwrap();
    target_db.run_sql(CATALOG_TARGET).unwrap();
    let transforms = Transforms::standard();
    let mapping = Mapping::parse("catalog.toml", CATALOG_MAPPING, &transforms).unwrap();
    let target_pool = pool(&target_db.url("global"), 2).unwrap();
    let target = MysqlTarget::new(target_pool.clone(), "catalog-test", 100);
    target.prepare().await.unwrap();
    let engine = Engine::new(
        mapping,
        transforms,
        dms_cdc::source::MysqlSource::from(pool(&source_db.url("shop_src"), 2).unwrap()),
        target,
        Settings {
            function_name: "catalog-test".into(),
            chunk_size: 100,
        },
    );
    Catalog {
        source_db,
        _target_db: target_db,
        engine,
        target_pool,
        next_seq: 0,
    }
}

impl Catalog {
    fn delivery(&mut self, payload: Vec<u8>) -> Delivery {
        self.delivery_on(SHARD_A, payload)
    }

    fn delivery_on(&mut self, shard: &str, payload: Vec<u8>) -> Delivery {
        self.next_seq += 1;
        Delivery {
            shard_id: ShardId(shard.into()),
            sequence_number: SequenceNumber::parse(&format!(
                "49590338271490256608559692538361571095921575989{:09}",
                self.next_seq
            ))
            .unwrap(),
            partition_key: "k".into(),
            approximate_arrival_ms: None,
            data: payload,
        }
    }

    async fn rows(&self, sql: &str) -> Vec<mysql_async::Row> {
        let mut conn = self.target_pool.get_conn().await.unwrap();
        conn.query(sql).await.unwrap()
    }
}

fn shop_record(op: &str, table: &str, after: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "data": after,
        "metadata": {
            "timestamp": "2026-11-20T10:15:00.000000Z",
            "record-type": "data",
            "operation": op,
            "partition-key-type": "primary-key",
            "schema-name": "shop_src",
            "table-name": table,
            "transaction-id": 1,
            "commit-timestamp": "2026-11-20T10:15:00Z"
        }
    }))
    .unwrap()
}

/// Hole 1. The old engine indexed the lookup's map with the key tuple the
/// source returned (`lookup.tuples[&t]`) and panicked when a
/// case-insensitive or PAD SPACE collation returned 'abc' for 'ABC'; it
/// also built a shop page without its products when the children's key
/// differed in case from the root's. Now returned keys are matched to the
/// asked ones, and the rows are right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_the_source_compares_differently_never_panic_and_build_the_right_rows() {
    let mut c = catalog().await;
    c.source_db
        .run_sql(
            "INSERT INTO shop_src.shops VALUES ('ABC', 'Alpha'), ('XY', 'Xylo');
             INSERT INTO shop_src.products VALUES (1, 'abc', 'one'), (2, 'Abc ', 'two'), (3, 'xy', 'three');",
        )
        .unwrap();
    // The products arrive first (each a rebuild: the target has a join).
    let mut batch: Vec<Delivery> = [(1, "abc", "one"), (2, "Abc ", "two"), (3, "xy", "three")]
        .into_iter()
        .map(|(id, shop, title)| {
            c.delivery(shop_record(
                "insert",
                "products",
                json!({"id": id, "shop_code": shop, "title": title}),
            ))
        })
        .collect();
    // A change to a shop finds its products by a reverse lookup: the
    // source returns shop_code 'abc' and 'Abc ' for the asked 'ABC'.
    c.source_db
        .run_sql("UPDATE shop_src.shops SET name = 'Alpha 2' WHERE code = 'ABC'")
        .unwrap();
    batch.push(c.delivery(shop_record(
        "update",
        "shops",
        json!({"code": "ABC", "name": "Alpha 2"}),
    )));
    let report = c.engine.process(&batch).await;
    assert_eq!(report.retry_error, None);
    assert!(
        report.outcomes.iter().all(|o| *o == Outcome::Applied),
        "{:?}",
        report.outcomes
    );
    let catalog: Vec<(i32, String, Option<String>)> = c
        .rows("SELECT product_id, title, shop_name FROM catalog ORDER BY product_id")
        .await
        .into_iter()
        .map(|r| (r.get(0).unwrap(), r.get(1).unwrap(), r.get(2).unwrap()))
        .collect();
    assert_eq!(
        catalog,
        vec![
            (1, "one".into(), Some("Alpha 2".into())),
            (2, "two".into(), Some("Alpha 2".into())),
            (3, "three".into(), Some("Xylo".into())),
        ]
    );
    let pages: Vec<(String, String)> = c
        .rows("SELECT code, JSON_EXTRACT(products, '$[*].id') FROM shop_pages ORDER BY code")
        .await
        .into_iter()
        .map(|r| (r.get(0).unwrap(), r.get(1).unwrap()))
        .collect();
    assert_eq!(
        pages,
        vec![("ABC".into(), "[1, 2]".into()), ("XY".into(), "[3]".into())],
        "children whose key differs in case and trailing spaces belong to their parent"
    );
}

/// Hole 2. The old engine classed every server error that was not on a
/// short retryable list as permanent: a rotated source password made the
/// re-query fail with 1045 and quarantined every record of the batch. Now
/// nothing is quarantined, the batch is retried, and it converges once the
/// credentials work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_password_or_a_missing_table_quarantines_nothing() {
    let mut rig = rig(100).await;
    rig.source_db
        .run_sql(
            "INSERT INTO recipes_src.users (id, name, email, created_at, is_active) VALUES
             (1, 'Ann', 'a@x', '2026-01-01 00:00:00', 1);
             INSERT INTO recipes_src.recipes (id, author_id, title, status, servings, created_at) VALUES
             (10, 1, 'Soup', 'published', 2, '2026-01-01 00:00:00'), (11, 1, 'Stew', 'published', 4, '2026-01-01 00:00:00');",
        )
        .unwrap();
    let recipe = |id: i64, title: &str| json!({"id": id, "author_id": 1, "title": title, "status": "published", "servings": 2});
    let batch = vec![
        rig.delivery(SHARD_A, record("insert", "users", user(1, "Ann"), None)),
        rig.delivery(
            SHARD_A,
            record("insert", "recipes", recipe(10, "Soup"), None),
        ),
        rig.delivery(
            SHARD_A,
            record("insert", "recipes", recipe(11, "Stew"), None),
        ),
    ];
    // The source password rotates; the function still has the old one.
    rig.source_db
        .run_sql("ALTER USER 'dmscdc'@'127.0.0.1' IDENTIFIED BY 'rotated'")
        .unwrap();
    let old_source = std::mem::replace(
        &mut rig.engine.source,
        dms_cdc::source::MysqlSource::from(pool(&rig.source_db.url("recipes_src"), 2).unwrap()),
    );
    old_source.pool().clone().disconnect().await.ok();
    let report = rig.engine.process(&batch).await;
    assert_eq!(
        report.summary.quarantined_count, 0,
        "{:?}",
        report.retry_error
    );
    assert_eq!(report.outcomes, vec![Outcome::Pending; 3]);
    assert_eq!(
        report.retry_fault,
        Some(Fault::Infrastructure(Infrastructure::Authentication)),
        "{:?}",
        report.retry_error
    );
    assert_eq!(
        report.response.batch_item_failures[0]
            .item_identifier
            .as_deref(),
        Some(batch[0].sequence_number.as_str())
    );
    // The new secret arrives: the same batch converges.
    let rotated = rig
        .source_db
        .url("recipes_src")
        .replace(":dmscdc@", ":rotated@");
    rig.engine.source = dms_cdc::source::MysqlSource::from(pool(&rotated, 2).unwrap());
    let retry = rig.engine.process(&batch).await;
    assert!(
        retry.response.batch_item_failures.is_empty(),
        "{:?}",
        retry.retry_error
    );
    assert_eq!(retry.summary.quarantined_count, 0);

    // A target table dropped by a migration gone wrong: a schema fault,
    // retried with an alarm, never a quarantine.
    rig.target_rows("RENAME TABLE global_recipes TO global_recipes_old")
        .await;
    let more = vec![rig.delivery(
        SHARD_A,
        record("update", "recipes", recipe(10, "Soup 2"), None),
    )];
    let report = rig.engine.process(&more).await;
    assert_eq!(report.summary.quarantined_count, 0);
    assert_eq!(
        report.retry_fault,
        Some(Fault::Infrastructure(Infrastructure::Schema)),
        "{:?}",
        report.retry_error
    );
    let quarantined: Vec<mysql_async::Row> =
        rig.target_rows("SELECT id FROM dms_cdc_quarantine").await;
    assert!(quarantined.is_empty());
}

/// Hole 6. An event holding several shards checkpointed only the shard of
/// its last record (one transaction carried one checkpoint): the other
/// shards' records were applied again on every redelivery. Now every shard
/// seen is checkpointed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_of_several_shards_checkpoints_every_shard() {
    const SHARD_B: &str = "shardId-000000000001";
    let mut rig = rig(100).await;
    let batch = vec![
        rig.delivery(SHARD_A, record("insert", "users", user(1, "Ann"), None)),
        rig.delivery(SHARD_B, record("insert", "users", user(2, "Bob"), None)),
        rig.delivery(SHARD_A, record("insert", "users", user(3, "Cy"), None)),
        rig.delivery(SHARD_B, record("insert", "users", user(4, "Di"), None)),
    ];
    let first = rig.engine.process(&batch).await;
    assert!(first.outcomes.iter().all(|o| *o == Outcome::Applied));
    let checkpoints: Vec<(String, String)> = rig
        .target_rows("SELECT shard_id, sequence_number FROM dms_cdc_checkpoint ORDER BY shard_id")
        .await
        .into_iter()
        .map(|r| (r.get(0).unwrap(), r.get(1).unwrap()))
        .collect();
    assert_eq!(
        checkpoints,
        vec![
            (SHARD_A.to_owned(), batch[2].sequence_number.to_string()),
            (SHARD_B.to_owned(), batch[3].sequence_number.to_string()),
        ]
    );
    // Redelivered: every record of both shards is skipped.
    let again = rig.engine.process(&batch).await;
    assert_eq!(again.outcomes, vec![Outcome::Skipped; 4]);
}

/// Hole 6, the event side: records of one shard out of order, or a
/// duplicate, in one event are rejected with a named error.
#[test]
fn an_event_with_a_shard_out_of_order_is_rejected() {
    let event = |seqs: &[(&str, &str)]| {
        let records: Vec<serde_json::Value> = seqs
            .iter()
            .map(|(shard, seq)| {
                json!({
                    "eventID": format!("{shard}:{seq}"),
                    "eventSource": "aws:kinesis",
                    "kinesis": {"sequenceNumber": seq, "partitionKey": "k", "data": "e30=",
                                "approximateArrivalTimestamp": 1.7e9, "kinesisSchemaVersion": "1.0"}
                })
            })
            .collect();
        serde_json::from_value::<aws_lambda_events::event::kinesis::KinesisEvent>(
            json!({ "Records": records }),
        )
        .unwrap()
    };
    let ok = event(&[
        (SHARD_A, "10"),
        ("shardId-000000000001", "5"),
        (SHARD_A, "11"),
    ]);
    assert_eq!(dms_cdc::dms::into_deliveries(ok).unwrap().len(), 3);
    for bad in [
        event(&[(SHARD_A, "10"), (SHARD_A, "10")]),
        event(&[
            (SHARD_A, "11"),
            ("shardId-000000000001", "5"),
            (SHARD_A, "10"),
        ]),
    ] {
        let e = dms_cdc::dms::into_deliveries(bad).unwrap_err().to_string();
        assert!(
            e.contains("shard shardId-000000000000") && e.contains("is not above"),
            "{e}"
        );
    }
}

/// Hole 5. A shard id longer than the checkpoint column made every
/// attempt fail on the checkpoint write, classed permanent: the batch was
/// bisected, each record's quarantine failed the same way, and it retried
/// forever without saying why. Now such an id never reaches a write: the
/// batch stops at once with a bookkeeping fault (an alarm) naming it, and
/// quarantine rows are cut to their columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_id_that_cannot_be_checkpointed_is_a_named_bookkeeping_fault() {
    let mut rig = rig(100).await;
    let long = format!("shardId-{}", "0".repeat(200));
    let batch = vec![rig.delivery(&long, record("insert", "users", user(1, "Ann"), None))];
    let report = rig.engine.process(&batch).await;
    assert_eq!(report.outcomes, vec![Outcome::Pending]);
    assert_eq!(report.summary.attempt_count, 0, "no write was attempted");
    assert_eq!(
        report.retry_fault,
        Some(Fault::Infrastructure(Infrastructure::Bookkeeping))
    );
    assert!(
        report
            .retry_error
            .as_deref()
            .unwrap_or("")
            .contains("is not a Kinesis shard id"),
        "{:?}",
        report.retry_error
    );
    // A record whose table name is longer than the quarantine column is
    // still quarantined (its name cut), not retried forever.
    let table = "t".repeat(300);
    let poison = serde_json::to_vec(&json!({
        "data": {"id": 1},
        "metadata": {"timestamp": "2026-11-20T10:15:00.000000Z", "record-type": "data",
                     "operation": "upsert-or-something-much-longer-than-thirty-two-characters",
                     "schema-name": "recipes_src", "table-name": table}
    }))
    .unwrap();
    let batch = vec![rig.delivery(SHARD_A, poison)];
    let report = rig.engine.process(&batch).await;
    assert_eq!(
        report.outcomes,
        vec![Outcome::Quarantined],
        "{:?}",
        report.retry_error
    );
    let stored: Vec<(u64, Option<String>)> = rig
        .target_rows("SELECT CHAR_LENGTH(table_name), operation FROM dms_cdc_quarantine")
        .await
        .into_iter()
        .map(|r| (r.get(0).unwrap(), r.get(1).unwrap()))
        .collect();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].0 <= 200);
}

/// Hole 8. A chunk size whose statements would bind more than 65,535
/// values failed in the driver, a "retryable" error: the shard stalled
/// forever. Now wide statements carry fewer rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_chunk_size_never_exceeds_the_placeholder_limit() {
    let mut rig = rig(65_535).await;
    let batch: Vec<Delivery> = (1..=9_000)
        .map(|i| {
            rig.delivery(
                SHARD_A,
                record("insert", "users", user(i, &format!("u{i}")), None),
            )
        })
        .collect();
    let report = rig.engine.process(&batch).await;
    assert_eq!(report.retry_error, None);
    assert!(report.outcomes.iter().all(|o| *o == Outcome::Applied));
    let count: Vec<u64> = rig
        .target_rows("SELECT COUNT(*) FROM global_users")
        .await
        .into_iter()
        .map(|r| r.get(0).unwrap())
        .collect();
    assert_eq!(count, vec![9_000]);
}

/// The source's clock, to the second, as DMS renders a commit timestamp.
async fn source_second(rig: &support::Rig) -> String {
    let mut conn = rig.engine.source.pool().get_conn().await.unwrap();
    let now: String = conn
        .query_first("SELECT DATE_FORMAT(UTC_TIMESTAMP(), '%Y-%m-%dT%H:%i:%sZ')")
        .await
        .unwrap()
        .unwrap();
    now
}

fn update_at(after: serde_json::Value, commit: &str) -> Vec<u8> {
    let mut doc: serde_json::Value =
        serde_json::from_slice(&record("update", "users", after, None)).unwrap();
    doc["metadata"]["commit-timestamp"] = json!(commit);
    doc["metadata"]["timestamp"] = json!(commit);
    serde_json::to_vec(&doc).unwrap()
}

/// Hole 3. A re-queried row carried the source clock at the read
/// (microseconds), an image-built row its commit time (whole seconds): an
/// update committed in the same second after a re-query was rejected by
/// the guard and lost. Now both carry versions from the stream, and the
/// final row is the source's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_updates_in_one_second_one_through_a_re_query_end_as_the_source() {
    let mut rig = rig(100).await;
    rig.source_sql(
        "INSERT INTO users (id, name, email, created_at, is_active) VALUES (1, 'B', 'ann@example.com', '2026-01-02 03:04:05', 1)",
    )
    .await;
    let second = source_second(&rig).await;
    // U1: its image lacks a column the target reads, so the row is
    // re-queried (and reads 'B').
    let mut partial = user(1, "B");
    partial.as_object_mut().unwrap().remove("email");
    let u1 = vec![rig.delivery(SHARD_A, update_at(partial, &second))];
    let report = rig.engine.process(&u1).await;
    assert_eq!(
        report.outcomes,
        vec![Outcome::Applied],
        "{:?}",
        report.retry_error
    );
    assert!(report.summary.source_select_count >= 1, "U1 was re-queried");
    // U2 commits in the same second and arrives with its complete image.
    rig.source_sql("UPDATE users SET name = 'C' WHERE id = 1")
        .await;
    let u2 = vec![rig.delivery(SHARD_A, update_at(user(1, "C"), &second))];
    let report = rig.engine.process(&u2).await;
    assert_eq!(report.outcomes, vec![Outcome::Applied]);
    let names: Vec<String> = rig
        .target_rows("SELECT display_name FROM global_users WHERE user_id = 1")
        .await
        .into_iter()
        .map(|r| r.get(0).unwrap())
        .collect();
    assert_eq!(names, vec!["C".to_owned()], "the target equals the source");

    // A record whose version cannot be computed is quarantined with a
    // named reason, never written with an empty version.
    let mut doc: serde_json::Value =
        serde_json::from_slice(&record("update", "users", user(1, "D"), None)).unwrap();
    doc["metadata"]["commit-timestamp"] = json!("soon");
    doc["metadata"]["timestamp"] = json!("soon");
    let bad = vec![rig.delivery(SHARD_A, serde_json::to_vec(&doc).unwrap())];
    let report = rig.engine.process(&bad).await;
    assert_eq!(report.outcomes, vec![Outcome::Quarantined]);
    let reasons: Vec<String> = rig
        .target_rows("SELECT error_message FROM dms_cdc_quarantine")
        .await
        .into_iter()
        .map(|r| r.get(0).unwrap())
        .collect();
    assert!(
        reasons[0].contains("\"soon\" is not a date-time"),
        "{reasons:?}"
    );
}

fn product_at(op: &str, id: i64, title: &str, commit: &str) -> Vec<u8> {
    let mut doc: serde_json::Value = serde_json::from_slice(&shop_record(
        op,
        "products",
        json!({"id": id, "shop_code": "XY", "title": title}),
    ))
    .unwrap();
    doc["metadata"]["commit-timestamp"] = json!(commit);
    serde_json::to_vec(&doc).unwrap()
}

/// Hole 4. Deletes were not versioned: a delete followed by an older
/// update from another shard (a redelivery after resharding, a redrive, a
/// rebuild that read before the delete) brought the row back for good.
/// Now a hard delete of a versioned row leaves a tombstone, and an older
/// write is dropped; a newer one (the row re-created) still lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_is_never_undone_by_an_older_update_from_another_shard() {
    const SHARD_B: &str = "shardId-000000000001";
    let mut c = catalog().await;
    c.source_db
        .run_sql("INSERT INTO shop_src.shops VALUES ('XY', 'Xylo')")
        .unwrap();
    let insert = vec![c.delivery(product_at("insert", 5, "v1", "2026-11-20T10:15:00Z"))];
    assert!(c
        .engine
        .process(&insert)
        .await
        .response
        .batch_item_failures
        .is_empty());
    // The delete (10:15:02) arrives on shard A; the update it follows
    // (10:15:01) is late, on shard B.
    let delete = vec![c.delivery(product_at("delete", 5, "v2", "2026-11-20T10:15:02Z"))];
    let late = vec![c.delivery_on(
        SHARD_B,
        product_at("update", 5, "v2", "2026-11-20T10:15:01Z"),
    )];
    let report = c.engine.process(&delete).await;
    assert_eq!(
        report.outcomes,
        vec![Outcome::Applied],
        "{:?}",
        report.retry_error
    );
    let report = c.engine.process(&late).await;
    assert_eq!(
        report.outcomes,
        vec![Outcome::Applied],
        "{:?}",
        report.retry_error
    );
    let rows = c.rows("SELECT id FROM product_index").await;
    assert!(rows.is_empty(), "the deleted row stays deleted");
    // Re-created later: the newer insert wins over the tombstone.
    let again = vec![c.delivery(product_at("insert", 5, "v3", "2026-11-20T10:15:03Z"))];
    assert!(c
        .engine
        .process(&again)
        .await
        .response
        .batch_item_failures
        .is_empty());
    let titles: Vec<String> = c
        .rows("SELECT title FROM product_index")
        .await
        .into_iter()
        .map(|r| r.get(0).unwrap())
        .collect();
    assert_eq!(titles, vec!["v3".to_owned()]);
}

fn user_change(op: &str, after: serde_json::Value, commit: &str) -> Vec<u8> {
    let mut doc: serde_json::Value =
        serde_json::from_slice(&record(op, "users", after, None)).unwrap();
    doc["metadata"]["commit-timestamp"] = json!(commit);
    serde_json::to_vec(&doc).unwrap()
}

/// Hole 4, soft deletes: a delete whose image lacks columns marks the
/// existing row. The mark did not carry a version, so a late older update
/// from another shard un-deleted the row. Now the mark is guarded by the
/// version and stamps it, and a tombstone keeps a mark of a row not yet
/// written from being undone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soft_delete_mark_is_never_undone_by_an_older_update() {
    const SHARD_B: &str = "shardId-000000000001";
    let mut rig = rig(100).await;
    let insert = vec![rig.delivery(
        SHARD_A,
        user_change("insert", user(1, "Ann"), "2026-11-20T10:15:00Z"),
    )];
    assert!(rig
        .engine
        .process(&insert)
        .await
        .response
        .batch_item_failures
        .is_empty());
    let mut partial = user(1, "Ann");
    partial.as_object_mut().unwrap().remove("email");
    let delete = vec![rig.delivery(
        SHARD_A,
        user_change("delete", partial, "2026-11-20T10:15:02Z"),
    )];
    let report = rig.engine.process(&delete).await;
    assert_eq!(
        report.outcomes,
        vec![Outcome::Applied],
        "{:?}",
        report.retry_error
    );
    assert_eq!(report.summary.deletes.get("global_users"), Some(&1));
    let late = vec![rig.delivery(
        SHARD_B,
        user_change("update", user(1, "Ann late"), "2026-11-20T10:15:01Z"),
    )];
    let report = rig.engine.process(&late).await;
    assert_eq!(
        report.outcomes,
        vec![Outcome::Applied],
        "{:?}",
        report.retry_error
    );
    let rows: Vec<(String, i64)> = rig
        .target_rows("SELECT display_name, is_deleted FROM global_users WHERE user_id = 1")
        .await
        .into_iter()
        .map(|r| (r.get(0).unwrap(), r.get(1).unwrap()))
        .collect();
    assert_eq!(
        rows,
        vec![("Ann".to_owned(), 1)],
        "still deleted, not overwritten"
    );
}

/// A re-query of a child table by its parent key uses the key's index even
/// when the table's statistics are stale (a table loaded in bulk a moment
/// ago, as a backfill's source often is): with more keys than the server's
/// `eq_range_index_dive_limit` it would otherwise trust the statistics and
/// read the whole table for every chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_query_uses_the_index_of_a_table_with_stale_statistics() {
    let rig = rig(500).await;
    // Statistics taken while every ingredient belonged to one of two
    // recipes, then 20,000 ingredients of 10,000 recipes.
    rig.source_sql("ALTER TABLE ingredients STATS_PERSISTENT = 1, STATS_AUTO_RECALC = 0")
        .await;
    rig.source_sql(
        "SET SESSION max_recursive_iterations = 100000; \
         INSERT INTO ingredients (id, recipe_id, position, name) \
           WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) \
           SELECT 2000000 + i, 900000 + i MOD 2, i, CONCAT('i', i) FROM n",
    )
    .await;
    rig.source_sql("ANALYZE TABLE ingredients").await;
    rig.source_sql(
        "SET SESSION max_recursive_iterations = 100000; \
         INSERT INTO ingredients (id, recipe_id, position, name) \
           WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
           SELECT 1000000 + i, i DIV 2, i MOD 2, CONCAT('i', i) FROM n",
    )
    .await;
    let keys = (1..=400)
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut conn = rig.engine.source.pool().get_conn().await.unwrap();
    let plan: Vec<mysql_async::Row> = conn
        .query(format!(
            "EXPLAIN SELECT * FROM ingredients WHERE recipe_id IN ({keys})"
        ))
        .await
        .unwrap();
    let access: Vec<String> = plan
        .iter()
        .map(|r| r.get::<String, _>("type").unwrap_or_default())
        .collect();
    assert_eq!(access, vec!["range".to_owned()], "the plan: {plan:?}");
}
