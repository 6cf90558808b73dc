//! The MySQL target against real, throwaway MariaDB servers: source (binlog
//! on) and target started by the test itself.

mod support;

use dms_cdc::dms::Delivery;
use dms_cdc::engine::Outcome;
use serde_json::json;
use support::{record, rig, user};

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

/// The checkpoint moves forward only, comparing sequence numbers as numbers
/// (a shorter one is smaller, whatever its digits), in one statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_only_moves_forward() {
    use dms_cdc::position::{SequenceNumber, ShardId};
    let rig = rig(4).await;
    let shard = ShardId("shardId-000000000007".into());
    let target = &rig.engine.target;
    let targets = &rig.engine.mapping.targets;
    for (apply, expected) in [
        ("1000", "1000"),
        ("999", "1000"),
        ("0998", "1000"),
        ("1000", "1000"),
        ("1001", "1001"),
        ("99999999999999999999", "99999999999999999999"),
        ("10000000000000000000", "99999999999999999999"),
        ("100000000000000000000", "100000000000000000000"),
    ] {
        let seq = SequenceNumber::parse(apply).unwrap();
        target
            .apply(targets, Vec::new(), &[], Some((&shard, &seq)))
            .await
            .unwrap();
        assert_eq!(
            target
                .checkpoint(&shard)
                .await
                .unwrap()
                .as_ref()
                .map(|s| s.as_str()),
            Some(expected),
            "after applying {apply}"
        );
    }
}
