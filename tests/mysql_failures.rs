//! Failure semantics, idempotence and convergence of the MySQL target against
//! real, throwaway MariaDB servers.

mod support;

use std::time::Duration;

use dms_cdc::engine::Outcome;
use dms_cdc::source::pool;
use dms_cdc::target::MysqlTarget;
use mysql_async::prelude::*;
use serde_json::json;
use support::{record, rig, user, Rig};

const SHARD_A: &str = "shardId-000000000000";
const SHARD_B: &str = "shardId-000000000001";

async fn user_names(rig: &Rig) -> Vec<(u64, String)> {
    rig.target_rows("SELECT user_id, display_name FROM global_users ORDER BY user_id")
        .await
        .iter()
        .map(|r| (r.get(0).unwrap(), r.get(1).unwrap()))
        .collect()
}

/// Replaces the engine's target pool so new sessions see changed global variables.
fn fresh_target(rig: &mut Rig) {
    let target_pool = pool(&rig.target_db.url("global"), 4).unwrap();
    rig.engine.target = MysqlTarget::new(
        target_pool.clone(),
        support::FUNCTION_NAME,
        rig.engine.settings.chunk_size,
    );
    rig.target_pool = target_pool;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_batches_have_no_second_effect() {
    let mut rig = rig(100).await;
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
    rig.target_rows("UPDATE global_users SET display_name = 'manual' WHERE user_id = 3")
        .await;
    let second = rig.engine.process(&all[2..8]).await;
    assert_eq!(
        second.outcomes,
        vec![
            Outcome::Skipped,
            Outcome::Skipped,
            Outcome::Skipped,
            Outcome::Applied,
            Outcome::Applied,
            Outcome::Applied
        ]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_wait_timeout_reports_the_first_unapplied_record_and_the_retry_converges() {
    let mut rig = rig(100).await;
    rig.target_db
        .run_sql("SET GLOBAL innodb_lock_wait_timeout = 1")
        .unwrap();
    fresh_target(&mut rig);
    let setup = vec![rig.delivery(SHARD_A, record("insert", "users", user(1, "Ann"), None))];
    assert!(rig
        .engine
        .process(&setup)
        .await
        .response
        .batch_item_failures
        .is_empty());

    // Another session holds a lock on user 1.
    let mut blocker = rig.target_pool.get_conn().await.unwrap();
    blocker.query_drop("BEGIN").await.unwrap();
    blocker
        .query_drop("UPDATE global_users SET display_name = 'locked' WHERE user_id = 1")
        .await
        .unwrap();

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
        report.retry_error.as_deref().unwrap_or("").contains("1205"),
        "{:?}",
        report.retry_error
    );
    assert_eq!(report.outcomes, vec![Outcome::Pending; 3]);
    assert_eq!(report.response.batch_item_failures.len(), 1);
    assert_eq!(
        report.response.batch_item_failures[0]
            .item_identifier
            .as_deref(),
        Some(batch[0].sequence_number.as_str())
    );
    blocker.query_drop("ROLLBACK").await.unwrap();
    drop(blocker);
    assert_eq!(
        user_names(&rig).await,
        vec![(1, "Ann".to_owned())],
        "nothing of the failed batch is visible"
    );

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_target_connection_reports_the_first_unapplied_record_and_the_retry_converges() {
    let mut rig = rig(100).await;
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

    let mut blocker = rig.target_pool.get_conn().await.unwrap();
    blocker.query_drop("BEGIN").await.unwrap();
    blocker
        .query_drop("UPDATE global_users SET display_name = 'locked' WHERE user_id = 2")
        .await
        .unwrap();

    let batch = vec![
        rig.delivery(SHARD_A, record("insert", "users", user(3, "Cy"), None)),
        rig.delivery(
            SHARD_A,
            record("update", "users", user(2, "Bo"), Some(user(2, "x"))),
        ),
    ];
    let engine = &rig.engine;
    let admin_pool = pool(&rig.target_db.url("global"), 1).unwrap();
    let killer = async {
        let mut admin = admin_pool.get_conn().await.unwrap();
        for _ in 0..200 {
            let id: Option<u64> = admin
                .query_first(
                    "SELECT ID FROM information_schema.PROCESSLIST
                     WHERE INFO LIKE 'INSERT INTO `global_users`%' AND ID <> CONNECTION_ID()",
                )
                .await
                .unwrap();
            if let Some(id) = id {
                admin.query_drop(format!("KILL {id}")).await.unwrap();
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    };
    let (report, killed) = tokio::join!(engine.process(&batch), killer);
    assert!(
        killed,
        "the engine's write never showed up in the process list"
    );
    assert!(report.retry_error.is_some());
    assert_eq!(report.outcomes, vec![Outcome::Pending; 2]);
    assert_eq!(
        report.response.batch_item_failures[0]
            .item_identifier
            .as_deref(),
        Some(batch[0].sequence_number.as_str())
    );
    blocker.query_drop("ROLLBACK").await.unwrap();
    drop(blocker);
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

/// What the mapping gives for the source's current state, computed with SQL
/// on the source (an oracle independent of the engine).
async fn expected_recipes(rig: &Rig) -> Vec<(i64, String, Option<String>, Option<String>, String)> {
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

async fn actual_recipes(rig: &Rig) -> Vec<(i64, String, Option<String>, Option<String>, String)> {
    rig.target_rows("SELECT legacy_id, title, author_name, story, ingredients FROM global_recipes ORDER BY legacy_id")
        .await
        .iter()
        .map(|r| {
            let json: serde_json::Value = serde_json::from_str(&r.get::<String, _>(4).unwrap()).unwrap();
            let names: Vec<&str> = json.as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
            (r.get(0).unwrap(), r.get(1).unwrap(), r.get(2).unwrap(), r.get(3).unwrap(), names.join(","))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_interleaved_duplicated_and_reordered_converge() {
    let mut rig = rig(100).await;
    // The source history. Shard A carries users and recipes, shard B stories and ingredients.
    rig.source_sql(
        "INSERT INTO users VALUES (1, 'Ann', NULL, '2026-01-02 03:04:05', 1), (2, 'Bob', NULL, '2026-01-02 03:04:05', 1);
         INSERT INTO recipes (id, author_id, title, status, servings, rating, created_at) VALUES
           (10, 1, 'Soup', 'published', 2, 4.5, '2026-03-29 01:30:00'), (11, 2, 'Stew', 'published', 2, 4.5, '2026-03-29 01:30:00');
         INSERT INTO recipe_stories VALUES (10, 'story ten');
         INSERT INTO ingredients VALUES (100, 10, 1, 'water', 1, 'g'), (101, 10, 2, 'salt', 1, 'g'), (102, 11, 1, 'beef', 1, 'g');",
    )
    .await;
    let a1 = vec![
        rig.delivery(SHARD_A, record("insert", "users", user(1, "Ann"), None)),
        rig.delivery(SHARD_A, record("insert", "users", user(2, "Bob"), None)),
        rig.delivery(
            SHARD_A,
            record(
                "insert",
                "recipes",
                recipe(10, 1, "Soup", "published"),
                None,
            ),
        ),
        rig.delivery(
            SHARD_A,
            record(
                "insert",
                "recipes",
                recipe(11, 2, "Stew", "published"),
                None,
            ),
        ),
    ];
    let b1 = vec![
        rig.delivery(
            SHARD_B,
            record("insert", "recipe_stories", json!({"recipe_id": 10}), None),
        ),
        rig.delivery(
            SHARD_B,
            record(
                "insert",
                "ingredients",
                ingredient(100, 10, 1, "water"),
                None,
            ),
        ),
        rig.delivery(
            SHARD_B,
            record(
                "insert",
                "ingredients",
                ingredient(101, 10, 2, "salt"),
                None,
            ),
        ),
        rig.delivery(
            SHARD_B,
            record(
                "insert",
                "ingredients",
                ingredient(102, 11, 1, "beef"),
                None,
            ),
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
    let a2 = vec![
        rig.delivery(
            SHARD_A,
            record(
                "update",
                "users",
                user(1, "Ann Smith"),
                Some(user(1, "Ann")),
            ),
        ),
        rig.delivery(
            SHARD_A,
            record(
                "update",
                "recipes",
                recipe(10, 1, "Tomato soup", "published"),
                Some(recipe(10, 1, "Soup", "published")),
            ),
        ),
    ];
    let b2 = vec![
        rig.delivery(
            SHARD_B,
            record(
                "update",
                "ingredients",
                ingredient(101, 11, 2, "salt"),
                Some(ingredient(101, 10, 2, "salt")),
            ),
        ),
        rig.delivery(
            SHARD_B,
            record(
                "delete",
                "ingredients",
                ingredient(100, 10, 1, "water"),
                None,
            ),
        ),
        rig.delivery(
            SHARD_B,
            record(
                "insert",
                "recipe_stories",
                json!({"recipe_id": 11, "body": "story eleven"}),
                None,
            ),
        ),
    ];
    let orders: [&[&Vec<_>]; 3] = [
        &[&b1, &a1, &b2, &b1, &a2, &a1, &b2],
        &[&a1, &a2, &b1, &a2, &b2, &b1],
        &[&b1, &b2, &a1, &b2, &a2, &a2],
    ];
    for (n, order) in orders.iter().enumerate() {
        rig.target_rows("TRUNCATE global_recipes").await;
        rig.target_rows("TRUNCATE global_users").await;
        rig.target_rows("TRUNCATE dms_cdc_checkpoint").await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_selects_per_batch_are_bounded_by_lookups_times_chunks() {
    const CHUNK: usize = 100;
    let mut rig = rig(CHUNK).await;
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
    eprintln!(
        "1000-record batch: Com_select {selects}, Com_stmt_execute {executes}, bound {bound}"
    );
}

fn user_at(id: u64, name: &str, commit: &str) -> Vec<u8> {
    let mut doc: serde_json::Value =
        serde_json::from_slice(&record("update", "users", user(id, name), None)).unwrap();
    doc["metadata"]["commit-timestamp"] = json!(commit);
    serde_json::to_vec(&doc).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_never_replaces_a_row_with_an_older_version() {
    let mut rig = rig(100).await;
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
    let version: Vec<String> = rig
        .target_rows("SELECT src_version FROM global_users")
        .await
        .iter()
        .map(|r| r.get(0).unwrap())
        .collect();
    // The version starts with the commit time; the rest orders one second
    // (log position, sequence number, kind: dms_cdc::version).
    assert_eq!(version.len(), 1);
    assert!(
        version[0].starts_with("2026-11-20 10:15:02.000000 "),
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
