//! One suite, every target: failure semantics, idempotence, the version
//! guard, the checkpoint and the quarantine, run against real, throwaway
//! servers of each target adapter (a MariaDB and a PostgreSQL target, each
//! fed from a MariaDB source). Each test is written once, generic over
//! [`TestTarget`]; `every_target!` instantiates it per adapter
//! (`mysql::<test>`, `postgres::<test>`).

mod support;

use std::time::Duration;

use dms_cdc::dms::{Delivery, Value};
use dms_cdc::engine::Outcome;
use dms_cdc::fault::Fault;
use dms_cdc::position::{SequenceNumber, ShardId};
use dms_cdc::target::{Quarantine, QuarantineClass, TableWrites, TargetTransaction};
use mysql_async::prelude::*;
use serde_json::json;
use support::targets::TestTarget;
use support::{record, rig_for, user, Rig};

const SHARD_A: &str = "shardId-000000000000";
const SHARD_B: &str = "shardId-000000000001";

every_target!(
    replays_converge_are_idempotent_and_isolate_poison,
    checkpoint_only_moves_forward,
    overlapping_batches_have_no_second_effect,
    lock_wait_timeout_reports_the_first_unapplied_record_and_the_retry_converges,
    a_killed_target_connection_reports_the_first_unapplied_record_and_the_retry_converges,
    two_shards_interleaved_duplicated_and_reordered_converge,
    source_selects_per_batch_are_bounded_by_lookups_times_chunks,
    a_write_never_replaces_a_row_with_an_older_version,
    versions_tombstones_and_quarantine_at_the_adapter,
    a_concurrent_delete_and_an_older_rebuild_end_deleted,
);

fn text(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("NULL")
}

async fn user_names<T: TestTarget>(rig: &Rig<T>) -> Vec<(u64, String)> {
    rig.text_rows("SELECT user_id, display_name FROM global_users ORDER BY user_id")
        .await
        .iter()
        .map(|r| (text(&r[0]).parse().unwrap(), text(&r[1]).to_owned()))
        .collect()
}

async fn replays_converge_are_idempotent_and_isolate_poison<T: TestTarget>() {
    let mut rig = rig_for::<T>(100).await;
    rig.source_sql(
        "INSERT INTO users VALUES (1, 'Ann', 'Ann@Example.COM', '2026-01-02 03:04:05', 1), (2, 'Bob', NULL, '2026-01-02 03:04:05', 1);
         INSERT INTO recipes (id, author_id, title, status, servings, rating, calories, created_at, external_ref, tags, thumbnail, prep_time, publish_date)
           VALUES (10, 1, 'Soup', 'published', 2, 4.50, 0.0015, '2026-03-29 01:30:00', 18446744073709551610, '[\"soup\"]', X'0102', '00:25:00', '2026-03-29'),
                  (11, 2, 'Stew', 'draft', 4, NULL, NULL, '2026-03-29 01:30:00', NULL, NULL, NULL, NULL, NULL);
         INSERT INTO recipe_stories VALUES (10, 'Once upon a time');
         INSERT INTO ingredients VALUES (100, 10, 2, 'salt', 1.50, 'g'), (101, 10, 1, 'water', 500.00, 'ml');",
    )
    .await;
    let changes = [
        record("insert", "users", user(1, "Ann"), None),
        record("insert", "users", user(2, "Bob"), None),
        record("insert", "recipes", json!({"id": 10, "author_id": 1}), None),
        record("insert", "recipes", json!({"id": 11, "author_id": 2}), None),
        record("insert", "recipe_stories", json!({"recipe_id": 10}), None),
        record(
            "insert",
            "ingredients",
            json!({"id": 100, "recipe_id": 10}),
            None,
        ),
        record(
            "insert",
            "ingredients",
            json!({"id": 101, "recipe_id": 10}),
            None,
        ),
    ];
    let batch: Vec<Delivery> = changes
        .into_iter()
        .map(|c| rig.delivery(SHARD_A, c))
        .collect();
    let report = rig.engine.process(&batch).await;
    assert_eq!(report.retry_error, None);
    assert!(
        report.outcomes.iter().all(|o| *o == Outcome::Applied),
        "{:?}",
        report.outcomes
    );
    assert!(report.response.batch_item_failures.is_empty());

    let rows = rig
        .text_rows(&format!(
            "SELECT legacy_id, author_name, title, status_code, rating, created_at, created_unix, story,
                    ingredients, meta, {}, prep_time, publish_date, source_system
             FROM global_recipes ORDER BY legacy_id",
            T::hex("thumbnail")
        ))
        .await;
    assert_eq!(rows.len(), 1, "the draft recipe is filtered out");
    let r = &rows[0];
    let fields: Vec<&str> = r.iter().map(text).collect();
    assert_eq!(
        [fields[0], fields[1], fields[3], fields[4], fields[6], fields[7]],
        ["10", "Ann", "1", "4.50", "1774747800", "Once upon a time"]
    );
    let ingredients: serde_json::Value = serde_json::from_str(fields[8]).unwrap();
    assert_eq!(
        ingredients,
        json!([{"name": "water", "qty": 500.00, "unit": "ml"}, {"name": "salt", "qty": 1.50, "unit": "g"}])
    );
    let meta: serde_json::Value = serde_json::from_str(fields[9]).unwrap();
    assert_eq!(meta["tags"], json!(["soup"]));
    assert_eq!(meta["external_ref"], json!(18446744073709551610u64));
    assert_eq!(
        [fields[10], fields[11], fields[12]],
        ["0102", "00:25:00", "2026-03-29"]
    );
    let users = rig
        .text_rows(
            "SELECT user_id, display_name, email, is_deleted FROM global_users ORDER BY user_id",
        )
        .await;
    assert_eq!(users.len(), 2);
    assert_eq!(text(&users[0][2]), "ann@example.com");

    // The same batch again changes nothing: every record is at or below the checkpoint.
    let before = rig.text_rows("SELECT * FROM global_recipes").await;
    let again = rig.engine.process(&batch).await;
    assert!(
        again.outcomes.iter().all(|o| *o == Outcome::Skipped),
        "{:?}",
        again.outcomes
    );
    assert_eq!(again.summary.redelivered_count, batch.len());
    assert_eq!(rig.text_rows("SELECT * FROM global_recipes").await, before);

    // A child moves from recipe 10 to 11, and 11 gets published: both rows are rebuilt.
    rig.source_sql("UPDATE ingredients SET recipe_id = 11 WHERE id = 100; UPDATE recipes SET status = 'published' WHERE id = 11;")
        .await;
    let moved = vec![
        rig.delivery(
            SHARD_A,
            record(
                "update",
                "ingredients",
                json!({"id": 100, "recipe_id": 11, "position": 2, "name": "salt", "quantity": 1.50, "unit": "g"}),
                Some(json!({"id": 100, "recipe_id": 10, "position": 2, "name": "salt", "quantity": 1.50, "unit": "g"})),
            ),
        ),
        rig.delivery(SHARD_A, record("update", "recipes", json!({"id": 11, "author_id": 2}), None)),
    ];
    let report = rig.engine.process(&moved).await;
    assert!(report.response.batch_item_failures.is_empty());
    let rows = rig
        .text_rows("SELECT legacy_id, ingredients FROM global_recipes ORDER BY legacy_id")
        .await;
    assert_eq!(rows.len(), 2);
    let a: serde_json::Value = serde_json::from_str(text(&rows[0][1])).unwrap();
    let b: serde_json::Value = serde_json::from_str(text(&rows[1][1])).unwrap();
    assert_eq!(a.as_array().unwrap().len(), 1);
    assert_eq!(b, json!([{"name": "salt", "qty": 1.50, "unit": "g"}]));

    // A poison record (a name the target column rejects) in the middle of a
    // batch is quarantined with its payload; the records around it apply
    // (the batch is bisected down to it).
    let long_name = "x".repeat(300);
    let poison = [
        record("insert", "users", user(3, "Cy"), None),
        record("insert", "users", user(4, &long_name), None),
        record("insert", "users", user(5, "Di"), None),
        b"not json{".to_vec(),
        record("insert", "users", user(6, "Ed"), None),
    ];
    let poison_batch: Vec<Delivery> = poison
        .into_iter()
        .map(|c| rig.delivery(SHARD_A, c))
        .collect();
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
    let ids: Vec<(u64, String)> = user_names(&rig).await;
    let ids: Vec<u64> = ids.into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, vec![1, 2, 3, 5, 6]);
    let q = T::quarantine(&rig.target_db).await;
    assert_eq!(q.len(), 2, "{q:#?}");
    assert_eq!(q[0].0, poison_batch[1].sequence_number.as_str());
    assert_eq!(q[0].1, "write");
    assert_eq!(q[0].2.as_deref(), Some("recipes_src.users"));
    assert_eq!(q[0].3.as_deref(), Some("insert"));
    assert_eq!(
        q[0].4, poison_batch[1].data,
        "the raw payload, byte for byte"
    );
    assert!(!q[0].5.contains("xxxx"), "no row values: {}", q[0].5);
    assert_eq!(q[1].1, "decode");
    assert_eq!(q[1].4, poison_batch[3].data);
    assert!(q[1].5.contains(poison_batch[3].sequence_number.as_str()));

    // Redelivered: skipped, and not quarantined twice.
    let again = rig.engine.process(&poison_batch).await;
    assert!(again.outcomes.iter().all(|o| *o == Outcome::Skipped));
    let q = T::quarantine(&rig.target_db).await;
    assert_eq!((q.len(), q[0].6, q[1].6), (2, 1, 1));
}

fn seq(s: &str) -> SequenceNumber {
    SequenceNumber::parse(s).unwrap()
}

/// The checkpoint moves forward only, comparing sequence numbers as numbers
/// (a shorter one is smaller, whatever its digits), in one statement.
async fn checkpoint_only_moves_forward<T: TestTarget>() {
    let rig = rig_for::<T>(4).await;
    let shard = ShardId("shardId-000000000007".into());
    let target = &rig.engine.target;
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
        let tx = target.begin().await.unwrap();
        tx.finish(&[], Some((&shard, &seq(apply)))).await.unwrap();
        let found = target.checkpoint(&shard).await.unwrap();
        assert_eq!(
            found.as_ref().map(|s| s.as_str()),
            Some(expected),
            "after applying {apply}"
        );
    }
}

async fn overlapping_batches_have_no_second_effect<T: TestTarget>() {
    let mut rig = rig_for::<T>(100).await;
    let all: Vec<_> = (1..=8)
        .map(|i| {
            rig.delivery(
                SHARD_A,
                record("insert", "users", user(i, &format!("u{i}")), None),
            )
        })
        .collect();
    let first = rig.engine.process(&all[0..5]).await;
    assert!(first.outcomes.iter().all(|o| *o == Outcome::Applied));
    // A person edits a row in the target; a redelivered record must not undo it.
    rig.target_sql("UPDATE global_users SET display_name = 'manual' WHERE user_id = 3")
        .await;
    let second = rig.engine.process(&all[2..8]).await;
    assert_eq!(
        second.outcomes,
        [[Outcome::Skipped; 3], [Outcome::Applied; 3]].concat()
    );
    assert!(second.response.batch_item_failures.is_empty());
    let names = user_names(&rig).await;
    assert_eq!(names.len(), 8);
    assert_eq!(names[2], (3, "manual".to_owned()));
    // The whole range once more: nothing at all happens.
    let third = rig.engine.process(&all).await;
    assert!(third.outcomes.iter().all(|o| *o == Outcome::Skipped));
    assert_eq!(user_names(&rig).await, names);
}

async fn lock_wait_timeout_reports_the_first_unapplied_record_and_the_retry_converges<
    T: TestTarget,
>() {
    let mut rig = rig_for::<T>(100).await;
    T::set_lock_timeout_1s(&rig.target_db);
    rig.reconnect();
    let setup = vec![rig.delivery(SHARD_A, record("insert", "users", user(1, "Ann"), None))];
    assert!(rig
        .engine
        .process(&setup)
        .await
        .response
        .batch_item_failures
        .is_empty());

    // Another session holds a lock on user 1.
    let blocker = T::hold(
        &rig.target_db,
        "UPDATE global_users SET display_name = 'locked' WHERE user_id = 1",
    )
    .await;
    let batch = vec![
        rig.delivery(SHARD_A, record("insert", "users", user(2, "Bob"), None)),
        rig.delivery(
            SHARD_A,
            record("update", "users", user(1, "Ann B"), Some(user(1, "Ann"))),
        ),
        rig.delivery(SHARD_A, record("insert", "users", user(3, "Cy"), None)),
    ];
    let report = rig.engine.process(&batch).await;
    assert!(
        report
            .retry_error
            .as_deref()
            .unwrap_or("")
            .contains(T::LOCK_TIMEOUT),
        "{:?}",
        report.retry_error
    );
    assert!(
        matches!(report.retry_fault, Some(Fault::Infrastructure(_))),
        "a lock timeout retries: {:?}",
        report.retry_fault
    );
    assert_eq!(report.outcomes, vec![Outcome::Pending; 3]);
    assert_eq!(report.response.batch_item_failures.len(), 1);
    assert_eq!(
        report.response.batch_item_failures[0]
            .item_identifier
            .as_deref(),
        Some(batch[0].sequence_number.as_str())
    );
    blocker.release().await;
    assert_eq!(
        user_names(&rig).await,
        vec![(1, "Ann".to_owned())],
        "nothing of the failed batch is visible"
    );
    assert!(T::quarantine(&rig.target_db).await.is_empty());

    // Lambda redelivers from the reported record: the retry converges.
    let retry = rig.engine.process(&batch).await;
    assert!(
        retry.response.batch_item_failures.is_empty(),
        "{:?}",
        retry.retry_error
    );
    assert_eq!(
        user_names(&rig).await,
        vec![
            (1, "Ann B".to_owned()),
            (2, "Bob".to_owned()),
            (3, "Cy".to_owned())
        ]
    );
}

async fn a_killed_target_connection_reports_the_first_unapplied_record_and_the_retry_converges<
    T: TestTarget,
>() {
    let mut rig = rig_for::<T>(100).await;
    let setup: Vec<_> = (1..=2)
        .map(|i| rig.delivery(SHARD_A, record("insert", "users", user(i, "x"), None)))
        .collect();
    assert!(rig
        .engine
        .process(&setup)
        .await
        .response
        .batch_item_failures
        .is_empty());

    // The engine's write waits on a lock; meanwhile its session is killed.
    let blocker = T::hold(
        &rig.target_db,
        "UPDATE global_users SET display_name = 'locked' WHERE user_id = 2",
    )
    .await;
    let batch = vec![
        rig.delivery(SHARD_A, record("insert", "users", user(3, "Cy"), None)),
        rig.delivery(
            SHARD_A,
            record("update", "users", user(2, "Bo"), Some(user(2, "x"))),
        ),
    ];
    let (report, killed) = tokio::join!(
        rig.engine.process(&batch),
        T::kill_writer(&rig.target_db, "global_users")
    );
    assert!(killed, "the engine's write never showed up as a session");
    assert!(report.retry_error.is_some());
    assert!(
        matches!(report.retry_fault, Some(Fault::Infrastructure(_))),
        "{:?}",
        report.retry_fault
    );
    assert_eq!(report.outcomes, vec![Outcome::Pending; 2]);
    assert_eq!(
        report.response.batch_item_failures[0]
            .item_identifier
            .as_deref(),
        Some(batch[0].sequence_number.as_str())
    );
    blocker.release().await;
    let retry = rig.engine.process(&batch).await;
    assert!(
        retry.response.batch_item_failures.is_empty(),
        "{:?}",
        retry.retry_error
    );
    assert_eq!(
        user_names(&rig).await,
        vec![
            (1, "x".to_owned()),
            (2, "Bo".to_owned()),
            (3, "Cy".to_owned())
        ]
    );
}

type RecipeLine = (i64, String, Option<String>, Option<String>, String);

/// What the mapping gives for the source's current state, computed with SQL
/// on the source (an oracle independent of the engine).
async fn expected_recipes<T: TestTarget>(rig: &Rig<T>) -> Vec<RecipeLine> {
    let mut conn = rig.engine.source.pool().get_conn().await.unwrap();
    conn.query(
        "SELECT r.id, r.title, u.name, s.body,
                COALESCE((SELECT GROUP_CONCAT(i.name ORDER BY i.position, i.id) FROM ingredients i WHERE i.recipe_id = r.id), '')
         FROM recipes r LEFT JOIN users u ON u.id = r.author_id LEFT JOIN recipe_stories s ON s.recipe_id = r.id
         WHERE r.status = 'published' ORDER BY r.id",
    )
    .await
    .unwrap()
}

async fn actual_recipes<T: TestTarget>(rig: &Rig<T>) -> Vec<RecipeLine> {
    rig.text_rows("SELECT legacy_id, title, author_name, story, ingredients FROM global_recipes ORDER BY legacy_id")
        .await
        .into_iter()
        .map(|r| {
            let json: serde_json::Value = serde_json::from_str(text(&r[4])).unwrap();
            let names: Vec<&str> = json.as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
            (text(&r[0]).parse().unwrap(), text(&r[1]).to_owned(), r[2].clone(), r[3].clone(), names.join(","))
        })
        .collect()
}

fn recipe(id: i64, author: u64, title: &str, status: &str) -> serde_json::Value {
    json!({"id": id, "author_id": author, "title": title, "status": status, "servings": 2, "rating": 4.5,
           "calories": null, "created_at": "2026-03-29T01:30:00Z", "external_ref": null, "tags": null,
           "thumbnail": null, "prep_time": null, "publish_date": null, "updated_at": "2026-03-29T01:30:00Z"})
}

fn ingredient(id: i64, recipe: i64, position: i64, name: &str) -> serde_json::Value {
    json!({"id": id, "recipe_id": recipe, "position": position, "name": name, "quantity": 1.00, "unit": "g"})
}

async fn two_shards_interleaved_duplicated_and_reordered_converge<T: TestTarget>() {
    let mut rig = rig_for::<T>(100).await;
    // The source history. Shard A carries users and recipes, shard B stories and ingredients.
    rig.source_sql(
        "INSERT INTO users VALUES (1, 'Ann', NULL, '2026-01-02 03:04:05', 1), (2, 'Bob', NULL, '2026-01-02 03:04:05', 1);
         INSERT INTO recipes (id, author_id, title, status, servings, rating, created_at) VALUES
           (10, 1, 'Soup', 'published', 2, 4.5, '2026-03-29 01:30:00'), (11, 2, 'Stew', 'published', 2, 4.5, '2026-03-29 01:30:00');
         INSERT INTO recipe_stories VALUES (10, 'story ten');
         INSERT INTO ingredients VALUES (100, 10, 1, 'water', 1, 'g'), (101, 10, 2, 'salt', 1, 'g'), (102, 11, 1, 'beef', 1, 'g');",
    )
    .await;
    let a1 = [
        record("insert", "users", user(1, "Ann"), None),
        record("insert", "users", user(2, "Bob"), None),
        record(
            "insert",
            "recipes",
            recipe(10, 1, "Soup", "published"),
            None,
        ),
        record(
            "insert",
            "recipes",
            recipe(11, 2, "Stew", "published"),
            None,
        ),
    ];
    let b1 = [
        record("insert", "recipe_stories", json!({"recipe_id": 10}), None),
        record(
            "insert",
            "ingredients",
            ingredient(100, 10, 1, "water"),
            None,
        ),
        record(
            "insert",
            "ingredients",
            ingredient(101, 10, 2, "salt"),
            None,
        ),
        record(
            "insert",
            "ingredients",
            ingredient(102, 11, 1, "beef"),
            None,
        ),
    ];
    // Later changes: salt moves to the stew, the author is renamed, the soup gets a new title.
    rig.source_sql(
        "UPDATE ingredients SET recipe_id = 11, position = 2 WHERE id = 101;
         UPDATE users SET name = 'Ann Smith' WHERE id = 1;
         UPDATE recipes SET title = 'Tomato soup' WHERE id = 10;
         DELETE FROM ingredients WHERE id = 100;
         INSERT INTO recipe_stories VALUES (11, 'story eleven');",
    )
    .await;
    let a2 = [
        record(
            "update",
            "users",
            user(1, "Ann Smith"),
            Some(user(1, "Ann")),
        ),
        record(
            "update",
            "recipes",
            recipe(10, 1, "Tomato soup", "published"),
            Some(recipe(10, 1, "Soup", "published")),
        ),
    ];
    let b2 = [
        record(
            "update",
            "ingredients",
            ingredient(101, 11, 2, "salt"),
            Some(ingredient(101, 10, 2, "salt")),
        ),
        record(
            "delete",
            "ingredients",
            ingredient(100, 10, 1, "water"),
            None,
        ),
        record(
            "insert",
            "recipe_stories",
            json!({"recipe_id": 11, "body": "story eleven"}),
            None,
        ),
    ];
    let mut on = |shard: &str, changes: &[Vec<u8>]| -> Vec<Delivery> {
        changes
            .iter()
            .map(|c| rig.delivery(shard, c.clone()))
            .collect()
    };
    let (a1, b1, a2, b2) = (
        on(SHARD_A, &a1),
        on(SHARD_B, &b1),
        on(SHARD_A, &a2),
        on(SHARD_B, &b2),
    );
    let orders: [&[&Vec<_>]; 3] = [
        &[&b1, &a1, &b2, &b1, &a2, &a1, &b2],
        &[&a1, &a2, &b1, &a2, &b2, &b1],
        &[&b1, &b2, &a1, &b2, &a2, &a2],
    ];
    for (n, order) in orders.iter().enumerate() {
        rig.target_sql(
            "TRUNCATE global_recipes; TRUNCATE global_users; TRUNCATE dms_cdc_checkpoint; TRUNCATE dms_cdc_tombstone",
        )
        .await;
        for batch in order.iter() {
            let report = rig.engine.process(batch).await;
            assert!(
                report.response.batch_item_failures.is_empty(),
                "order {n}: {:?}",
                report.retry_error
            );
            assert_eq!(report.summary.quarantined_count, 0);
        }
        let actual = actual_recipes(&rig).await;
        assert_eq!(actual, expected_recipes(&rig).await, "order {n}");
        assert_eq!(actual.len(), 2);
        assert_eq!(
            actual[1].4, "beef,salt",
            "the moved child is in its new parent"
        );
        assert_eq!(actual[0].4, "", "and gone from the old one");
    }
}

async fn source_selects_per_batch_are_bounded_by_lookups_times_chunks<T: TestTarget>() {
    const CHUNK: usize = 100;
    let mut rig = rig_for::<T>(CHUNK).await;
    // 50 authors, 250 recipes with stories, 4 ingredients each.
    let mut sql = String::from("INSERT INTO users VALUES ");
    sql += &(1..=50)
        .map(|i| format!("({i}, 'user{i}', NULL, '2026-01-02 03:04:05', 1)"))
        .collect::<Vec<_>>()
        .join(",");
    sql += ";INSERT INTO recipes (id, author_id, title, status, created_at) VALUES ";
    sql += &(1..=250)
        .map(|i| {
            format!(
                "({i}, {}, 't{i}', 'published', '2026-03-29 01:30:00')",
                i % 50 + 1
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    sql += ";INSERT INTO recipe_stories VALUES ";
    sql += &(1..=250)
        .map(|i| format!("({i}, 'story {i}')"))
        .collect::<Vec<_>>()
        .join(",");
    sql += ";INSERT INTO ingredients VALUES ";
    sql += &(1..=1000)
        .map(|i| format!("({i}, {}, {}, 'i{i}', 1, 'g')", (i - 1) / 4 + 1, i % 4))
        .collect::<Vec<_>>()
        .join(",");
    rig.source_sql(&sql).await;
    let batch: Vec<_> = (1..=1000i64)
        .map(|i| {
            let after = ingredient(i, (i - 1) / 4 + 1, i % 4, &format!("i{i}"));
            let mut before = after.clone();
            before["name"] = json!("old");
            rig.delivery(
                SHARD_B,
                record("update", "ingredients", after, Some(before)),
            )
        })
        .collect();
    // Reading the counters is itself a statement: measure that overhead first.
    let c0 = rig.source_status("Com_select").await;
    let c1 = rig.source_status("Com_select").await;
    let overhead = c1 - c0;
    let executes_before = rig.source_status("Com_stmt_execute").await;
    let selects_before = rig.source_status("Com_select").await;
    let report = rig.engine.process(&batch).await;
    let selects = rig.source_status("Com_select").await - selects_before - overhead;
    let executes = rig.source_status("Com_stmt_execute").await - executes_before;
    assert!(
        report.response.batch_item_failures.is_empty(),
        "{:?}",
        report.retry_error
    );
    assert_eq!(report.summary.upserts["global_recipes"], 250);

    // Lookups: root + author join + story join + ingredients children = 4;
    // chunks: 250 parent keys / 100 = 3. The snapshot's clock read is one more SELECT.
    let t = &rig.engine.mapping.targets[1];
    let lookups = 1 + t.joins.len() + t.children.len();
    let chunks = 250usize.div_ceil(CHUNK);
    let bound = (lookups * chunks) as u64;
    // The server's own counters, not ours. Every lookup is a prepared SELECT,
    // so Com_stmt_execute counts exactly the lookups; Com_select also counts
    // the snapshot's clock read and, depending on which pooled connection a
    // status read lands on, that read.
    assert!(executes <= bound, "Com_stmt_execute {executes} > {bound}");
    assert!(selects <= bound + 2, "Com_select {selects} > {bound} + 2");
    assert_eq!(report.summary.source_select_count as u64, executes);
    let rows = rig.text_rows("SELECT count(*) FROM global_recipes").await;
    assert_eq!(text(&rows[0][0]), "250");
}

fn user_at(id: u64, name: &str, commit: &str) -> Vec<u8> {
    let mut doc: serde_json::Value =
        serde_json::from_slice(&record("update", "users", user(id, name), None)).unwrap();
    doc["metadata"]["commit-timestamp"] = json!(commit);
    serde_json::to_vec(&doc).unwrap()
}

async fn a_write_never_replaces_a_row_with_an_older_version<T: TestTarget>() {
    let mut rig = rig_for::<T>(100).await;
    // The newer change arrives first (say, through another shard after a resharding).
    let newer = vec![rig.delivery(SHARD_A, user_at(1, "newer", "2026-11-20T10:15:02Z"))];
    let older = vec![rig.delivery(SHARD_B, user_at(1, "older", "2026-11-20T10:15:01Z"))];
    assert!(rig
        .engine
        .process(&newer)
        .await
        .response
        .batch_item_failures
        .is_empty());
    let report = rig.engine.process(&older).await;
    assert!(report.response.batch_item_failures.is_empty());
    assert_eq!(user_names(&rig).await, vec![(1, "newer".to_owned())]);
    let version = rig.text_rows("SELECT src_version FROM global_users").await;
    // The version starts with the commit time; the rest orders one second
    // (log position, sequence number, kind: dms_cdc::version).
    assert_eq!(version.len(), 1);
    assert!(
        text(&version[0][0]).starts_with("2026-11-20 10:15:02.000000 "),
        "{version:?}"
    );
    // An equal or newer version replaces it.
    let newest = vec![rig.delivery(SHARD_B, user_at(1, "newest", "2026-11-20T10:15:03Z"))];
    assert!(rig
        .engine
        .process(&newest)
        .await
        .response
        .batch_item_failures
        .is_empty());
    assert_eq!(user_names(&rig).await, vec![(1, "newest".to_owned())]);
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

/// A row of `global_recipes` with the columns its NOT NULLs need.
fn recipe_row(width: usize, id: i64, title: &str, version: &str) -> Vec<Value> {
    let mut row = vec![Value::Null; width];
    row[0] = Value::Int(id);
    row[2] = Value::Text(title.into());
    row[3] = Value::Int(1);
    row[6] = Value::Text("2026-01-02 03:04:05".into());
    row[7] = Value::Int(0);
    row[9] = Value::Json("[]".into());
    row[10] = Value::Json("{}".into());
    row[14] = Value::Text("recipes-v1".into());
    row[15] = Value::Text(version.into());
    row
}

fn upserts(rows: Vec<Vec<Value>>) -> TableWrites {
    TableWrites {
        upserts: rows,
        ..TableWrites::default()
    }
}

/// Writes `writes` to table `index` of the mapping in one transaction.
async fn write<T: TestTarget>(rig: &Rig<T>, index: usize, writes: TableWrites) {
    let table = &rig.engine.mapping.targets[index];
    let mut tx = rig.engine.target.begin().await.unwrap();
    tx.write(
        table,
        TableWrites {
            target: index,
            ..writes
        },
    )
    .await
    .unwrap();
    tx.finish(&[], None).await.unwrap();
}

/// The adapter alone (no engine): the version guard over many rows (more
/// than a chunk, statements split in powers of two, one key twice),
/// soft-delete marks, tombstones of hard deletes, and the quarantine's
/// attempt count.
async fn versions_tombstones_and_quarantine_at_the_adapter<T: TestTarget>() {
    let rig = rig_for::<T>(4).await;
    let mut batch: Vec<Vec<Value>> = (1..=11).map(|i| user_row(i, "first", "v2")).collect();
    batch.push(user_row(3, "first again", "v2"));
    write(&rig, 0, upserts(batch)).await;
    write(
        &rig,
        0,
        upserts(vec![user_row(1, "older", "v1"), user_row(2, "newer", "v3")]),
    )
    .await;
    let some =
        |v: &[&str]| -> Vec<Option<String>> { v.iter().map(|s| Some(s.to_string())).collect() };
    assert_eq!(
        rig.text_rows("SELECT user_id, display_name, src_version FROM global_users WHERE user_id <= 3 ORDER BY user_id")
            .await,
        [
            some(&["1", "first", "v2"]),
            some(&["2", "newer", "v3"]),
            some(&["3", "first again", "v2"]),
        ]
    );
    let count = rig.text_rows("SELECT count(*) FROM global_users").await;
    assert_eq!(count, [some(&["11"])]);

    // A soft-delete mark is guarded by the version and stamps it.
    let soft = |key: i64, version: &str| TableWrites {
        tombstones: vec![(vec![Value::Int(key)], version.to_owned())],
        ..TableWrites::default()
    };
    write(&rig, 0, soft(1, "v1")).await;
    write(&rig, 0, soft(2, "v4")).await;
    write(&rig, 0, upserts(vec![user_row(2, "late", "v3")])).await;
    assert_eq!(
        rig.text_rows("SELECT user_id, display_name, is_deleted, src_version FROM global_users WHERE user_id <= 2 ORDER BY user_id")
            .await,
        [some(&["1", "first", "0", "v2"]), some(&["2", "newer", "1", "v4"])]
    );

    // A hard delete of a versioned row leaves a tombstone an older upsert
    // cannot pass; a newer one can.
    let width = rig.engine.mapping.targets[1].column_names().len();
    write(&rig, 1, upserts(vec![recipe_row(width, 50, "soup", "v2")])).await;
    let delete = TableWrites {
        deletes: vec![vec![Value::Int(50)]],
        tombstones: vec![(vec![Value::Int(50)], "v3".into())],
        ..TableWrites::default()
    };
    write(&rig, 1, delete).await;
    write(&rig, 1, upserts(vec![recipe_row(width, 50, "stale", "v2")])).await;
    let titles = "SELECT title FROM global_recipes WHERE legacy_id = 50";
    assert!(
        rig.text_rows(titles).await.is_empty(),
        "an older rebuild stays deleted"
    );
    assert_eq!(
        rig.text_rows(&format!(
            "SELECT target_table, {}, version FROM dms_cdc_tombstone ORDER BY 1, 2",
            T::utf8("row_key")
        ))
        .await,
        [
            some(&["global_recipes", "[50]", "v3"]),
            // Soft-delete marks leave tombstones too.
            some(&["global_users", "[1]", "v1"]),
            some(&["global_users", "[2]", "v4"]),
        ]
    );
    write(
        &rig,
        1,
        upserts(vec![recipe_row(width, 50, "reborn", "v4")]),
    )
    .await;
    assert_eq!(rig.text_rows(titles).await, [some(&["reborn"])]);

    // The quarantine keeps the raw payload (any bytes), the class and the
    // reason; a second attempt counts.
    let q = Quarantine {
        shard_id: ShardId(SHARD_A.into()),
        sequence_number: seq("2000"),
        table: Some("recipes_src.users".into()),
        operation: Some("insert".into()),
        raw: vec![0, 159, 146, 150, b'{'],
        class: QuarantineClass::Write,
        message: "a reason with a NUL \0 in it".into(),
    };
    for _ in 0..2 {
        let tx = rig.engine.target.begin().await.unwrap();
        tx.finish(std::slice::from_ref(&q), None).await.unwrap();
    }
    let stored = T::quarantine(&rig.target_db).await;
    assert_eq!(stored.len(), 1);
    let (s, class, table, operation, raw, message, attempts) = &stored[0];
    assert_eq!((s.as_str(), class.as_str()), ("2000", "write"));
    assert_eq!(
        (table.as_deref(), operation.as_deref()),
        (Some("recipes_src.users"), Some("insert"))
    );
    assert_eq!(raw, &q.raw, "the raw payload, byte for byte");
    assert!(
        message.starts_with("a reason with a NUL ") && message.ends_with(" in it"),
        "{message:?}"
    );
    assert_eq!(*attempts, 2);
}

/// A delete and an older rebuild of the same row in two concurrent
/// transactions: whichever starts first, the second waits for it, and the
/// row ends deleted (the tombstone or the row's lock orders them).
async fn a_concurrent_delete_and_an_older_rebuild_end_deleted<T: TestTarget + Clone>() {
    let rig = rig_for::<T>(100).await;
    let recipes = rig.engine.mapping.targets[1].clone();
    let width = recipes.column_names().len();
    let delete = |id: i64| TableWrites {
        target: 1,
        deletes: vec![vec![Value::Int(id)]],
        tombstones: vec![(vec![Value::Int(id)], "v3".into())],
        ..TableWrites::default()
    };
    let rebuild = |id: i64| TableWrites {
        target: 1,
        upserts: vec![recipe_row(width, id, "stale", "v2")],
        ..TableWrites::default()
    };
    for (id, rebuild_first) in [(60, true), (61, false)] {
        let (first, second) = if rebuild_first {
            (rebuild(id), delete(id))
        } else {
            (delete(id), rebuild(id))
        };
        let mut a = rig.engine.target.begin().await.unwrap();
        a.write(&recipes, first).await.unwrap();
        let (target_b, recipes_b) = (rig.engine.target.clone(), recipes.clone());
        let b = tokio::spawn(async move {
            let mut b = target_b.begin().await.unwrap();
            b.write(&recipes_b, second).await.unwrap();
            b.finish(&[], None).await.unwrap();
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !b.is_finished(),
            "{id}: the second writer waits for the first"
        );
        a.finish(&[], None).await.unwrap();
        b.await.unwrap();
        let found = rig
            .text_rows(&format!(
                "SELECT title FROM global_recipes WHERE legacy_id = {id}"
            ))
            .await;
        assert!(found.is_empty(), "{id}: the row came back: {found:?}");
    }
}
