//! The MySQL target against real, throwaway MariaDB servers: source (binlog
//! on) and target started by the test itself.

use std::path::Path;

use dms_cdc::dms::Delivery;
use dms_cdc::engine::{Engine, Outcome, Settings};
use dms_cdc::local::MariaDb;
use dms_cdc::mapping::{Mapping, Transforms};
use dms_cdc::position::{SequenceNumber, ShardId};
use dms_cdc::source::pool;
use dms_cdc::target::MysqlTarget;
use mysql_async::prelude::*;
use serde_json::json;

struct Rig {
    source_db: MariaDb,
    _target_db: MariaDb,
    engine: Engine,
    target_pool: mysql_async::Pool,
    next_seq: u64,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

async fn rig(chunk_size: usize) -> Rig {
    let source_db = MariaDb::start(1).expect("source mariadb");
    let target_db = MariaDb::start(2).expect("target mariadb");
    source_db
        .run_file(&root().join("fixtures/source.sql"))
        .unwrap();
    target_db
        .run_file(&root().join("fixtures/target.sql"))
        .unwrap();
    let transforms = Transforms::standard();
    let mapping = Mapping::load(&root().join("fixtures/mapping.toml"), &transforms).unwrap();
    let source = pool(&source_db.url("recipes_src"), 4).unwrap();
    let target_pool = pool(&target_db.url("global"), 4).unwrap();
    let target = MysqlTarget::new(target_pool.clone(), "mysql-target-test", chunk_size);
    target.prepare().await.unwrap();
    let engine = Engine {
        mapping,
        transforms,
        source,
        target,
        settings: Settings {
            function_name: "mysql-target-test".into(),
            chunk_size,
        },
    };
    Rig {
        source_db,
        _target_db: target_db,
        engine,
        target_pool,
        next_seq: 0,
    }
}

impl Rig {
    fn delivery(&mut self, shard: &str, payload: Vec<u8>) -> Delivery {
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

    async fn source_sql(&self, sql: &str) {
        let mut conn = self.engine.source.get_conn().await.unwrap();
        conn.query_drop(sql).await.unwrap();
    }

    async fn target_rows(&self, sql: &str) -> Vec<mysql_async::Row> {
        let mut conn = self.target_pool.get_conn().await.unwrap();
        conn.query(sql).await.unwrap()
    }
}

fn record(
    op: &str,
    table: &str,
    after: serde_json::Value,
    before: Option<serde_json::Value>,
) -> Vec<u8> {
    let mut doc = json!({
        "data": after,
        "metadata": {
            "timestamp": "2026-11-20T10:15:00.000000Z",
            "record-type": "data",
            "operation": op,
            "partition-key-type": "primary-key",
            "schema-name": "recipes_src",
            "table-name": table,
            "transaction-id": 1,
            "commit-timestamp": "2026-11-20T10:15:00Z"
        }
    });
    if let Some(b) = before {
        doc["before-image"] = b;
    }
    serde_json::to_vec(&doc).unwrap()
}

fn user(id: u64, name: &str) -> serde_json::Value {
    json!({"id": id, "name": name, "email": "Ann@Example.COM", "created_at": "2026-01-02T03:04:05Z", "is_active": 1})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_converge_are_idempotent_and_isolate_poison() {
    let mut rig = rig(100).await;
    rig.source_sql(
        "INSERT INTO users VALUES (1, 'Ann', 'Ann@Example.COM', '2026-01-02 03:04:05', 1), (2, 'Bob', NULL, '2026-01-02 03:04:05', 1);
         INSERT INTO recipes (id, author_id, title, status, servings, rating, calories, created_at, external_ref, tags, thumbnail, prep_time, publish_date)
           VALUES (10, 1, 'Soup', 'published', 2, 4.50, 0.0015, '2026-03-29 01:30:00', 18446744073709551610, '[\"soup\"]', X'0102', '00:25:00', '2026-03-29'),
                  (11, 2, 'Stew', 'draft', 4, NULL, NULL, '2026-03-29 01:30:00', NULL, NULL, NULL, NULL, NULL);
         INSERT INTO recipe_stories VALUES (10, 'Once upon a time');
         INSERT INTO ingredients VALUES (100, 10, 2, 'salt', 1.50, 'g'), (101, 10, 1, 'water', 500.00, 'ml');",
    )
    .await;
    let batch: Vec<Delivery> = vec![
        rig.delivery(
            "shardId-000000000000",
            record("insert", "users", user(1, "Ann"), None),
        ),
        rig.delivery(
            "shardId-000000000000",
            record("insert", "users", user(2, "Bob"), None),
        ),
        rig.delivery(
            "shardId-000000000000",
            record("insert", "recipes", json!({"id": 10, "author_id": 1}), None),
        ),
        rig.delivery(
            "shardId-000000000000",
            record("insert", "recipes", json!({"id": 11, "author_id": 2}), None),
        ),
        rig.delivery(
            "shardId-000000000000",
            record("insert", "recipe_stories", json!({"recipe_id": 10}), None),
        ),
        rig.delivery(
            "shardId-000000000000",
            record(
                "insert",
                "ingredients",
                json!({"id": 100, "recipe_id": 10}),
                None,
            ),
        ),
        rig.delivery(
            "shardId-000000000000",
            record(
                "insert",
                "ingredients",
                json!({"id": 101, "recipe_id": 10}),
                None,
            ),
        ),
    ];
    let report = rig.engine.process(&batch).await;
    assert_eq!(report.retry_error, None);
    assert!(
        report.outcomes.iter().all(|o| *o == Outcome::Applied),
        "{:?}",
        report.outcomes
    );
    assert!(report.response.batch_item_failures.is_empty());

    let rows = rig
        .target_rows(
            "SELECT legacy_id, author_name, title, status_code, CAST(rating AS CHAR), created_at, created_unix, story,
                    ingredients, meta, HEX(thumbnail), CAST(prep_time AS CHAR), CAST(publish_date AS CHAR), source_system
             FROM global_recipes ORDER BY legacy_id",
        )
        .await;
    assert_eq!(rows.len(), 1, "the draft recipe is filtered out");
    let r = &rows[0];
    assert_eq!(r.get::<i64, _>(0), Some(10));
    assert_eq!(r.get::<String, _>(1).as_deref(), Some("Ann"));
    assert_eq!(r.get::<i64, _>(3), Some(1));
    assert_eq!(r.get::<String, _>(4).as_deref(), Some("4.50"));
    assert_eq!(r.get::<i64, _>(6), Some(1_774_747_800));
    assert_eq!(r.get::<String, _>(7).as_deref(), Some("Once upon a time"));
    let ingredients: serde_json::Value =
        serde_json::from_str(&r.get::<String, _>(8).unwrap()).unwrap();
    assert_eq!(
        ingredients,
        json!([{"name": "water", "qty": 500.00, "unit": "ml"}, {"name": "salt", "qty": 1.50, "unit": "g"}])
    );
    let meta: serde_json::Value = serde_json::from_str(&r.get::<String, _>(9).unwrap()).unwrap();
    assert_eq!(meta["tags"], json!(["soup"]));
    assert_eq!(meta["external_ref"], json!(18446744073709551610u64));
    assert_eq!(r.get::<String, _>(10).as_deref(), Some("0102"));
    assert_eq!(r.get::<String, _>(11).as_deref(), Some("00:25:00"));
    let users = rig
        .target_rows(
            "SELECT user_id, display_name, email, is_deleted FROM global_users ORDER BY user_id",
        )
        .await;
    assert_eq!(users.len(), 2);
    assert_eq!(
        users[0].get::<String, _>(2).as_deref(),
        Some("ann@example.com")
    );

    // The same batch again changes nothing: every record is at or below the checkpoint.
    let before = rig.target_rows("SELECT * FROM global_recipes").await.len();
    let again = rig.engine.process(&batch).await;
    assert!(
        again.outcomes.iter().all(|o| *o == Outcome::Skipped),
        "{:?}",
        again.outcomes
    );
    assert_eq!(again.summary.redelivered_count, batch.len());
    assert_eq!(
        rig.target_rows("SELECT * FROM global_recipes").await.len(),
        before
    );

    // A child moves from recipe 10 to 11, and 11 gets published: both rows are rebuilt.
    rig.source_sql("UPDATE ingredients SET recipe_id = 11 WHERE id = 100; UPDATE recipes SET status = 'published' WHERE id = 11;")
        .await;
    let moved = vec![
        rig.delivery(
            "shardId-000000000000",
            record(
                "update",
                "ingredients",
                json!({"id": 100, "recipe_id": 11, "position": 2, "name": "salt", "quantity": 1.50, "unit": "g"}),
                Some(json!({"id": 100, "recipe_id": 10, "position": 2, "name": "salt", "quantity": 1.50, "unit": "g"})),
            ),
        ),
        rig.delivery("shardId-000000000000", record("update", "recipes", json!({"id": 11, "author_id": 2}), None)),
    ];
    let report = rig.engine.process(&moved).await;
    assert!(report.response.batch_item_failures.is_empty());
    let rows = rig
        .target_rows("SELECT legacy_id, ingredients FROM global_recipes ORDER BY legacy_id")
        .await;
    assert_eq!(rows.len(), 2);
    let a: serde_json::Value = serde_json::from_str(&rows[0].get::<String, _>(1).unwrap()).unwrap();
    let b: serde_json::Value = serde_json::from_str(&rows[1].get::<String, _>(1).unwrap()).unwrap();
    assert_eq!(a.as_array().unwrap().len(), 1);
    assert_eq!(b, json!([{"name": "salt", "qty": 1.50, "unit": "g"}]));

    // A poison record (a name the target column rejects) in the middle of a
    // batch is quarantined with its payload; the records around it apply.
    let long_name = "x".repeat(300);
    let poison_batch = vec![
        rig.delivery(
            "shardId-000000000000",
            record("insert", "users", user(3, "Cy"), None),
        ),
        rig.delivery(
            "shardId-000000000000",
            record("insert", "users", user(4, &long_name), None),
        ),
        rig.delivery(
            "shardId-000000000000",
            record("insert", "users", user(5, "Di"), None),
        ),
        rig.delivery("shardId-000000000000", b"not json{".to_vec()),
        rig.delivery(
            "shardId-000000000000",
            record("insert", "users", user(6, "Ed"), None),
        ),
    ];
    let report = rig.engine.process(&poison_batch).await;
    assert_eq!(
        report.outcomes,
        vec![
            Outcome::Applied,
            Outcome::Quarantined,
            Outcome::Applied,
            Outcome::Quarantined,
            Outcome::Applied
        ]
    );
    assert!(report.response.batch_item_failures.is_empty());
    let ids: Vec<u64> = rig
        .target_rows("SELECT user_id FROM global_users ORDER BY user_id")
        .await
        .iter()
        .map(|r| r.get::<u64, _>(0).unwrap())
        .collect();
    assert_eq!(ids, vec![1, 2, 3, 5, 6]);
    let q = rig
        .target_rows("SELECT sequence_number, error_class, error_message, raw_record FROM dms_cdc_quarantine ORDER BY id")
        .await;
    assert_eq!(q.len(), 2);
    assert_eq!(
        q[0].get::<String, _>(0).unwrap(),
        poison_batch[1].sequence_number.as_str()
    );
    assert_eq!(q[0].get::<String, _>(1).as_deref(), Some("write"));
    assert_eq!(q[0].get::<Vec<u8>, _>(3).unwrap(), poison_batch[1].data);
    assert_eq!(q[1].get::<String, _>(1).as_deref(), Some("decode"));
    assert!(q[1]
        .get::<String, _>(2)
        .unwrap()
        .contains(poison_batch[3].sequence_number.as_str()));
    let _ = &rig.source_db;
}
