//! The whole local pipeline: a MariaDB source's binlog -> `capture` (DMS
//! format) -> the Kinesis emulator (2 shards) -> `consume` (the event source
//! mapping) -> the engine -> a MariaDB target, with capture and consume each
//! restarted mid-run. After draining, the target must equal the mapping of the
//! final source state, row for row.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use dms_cdc::capture::{current_position, BinlogPosition, Capture, CaptureOptions};
use dms_cdc::consume::{ConsumeOptions, Consumer};
use dms_cdc::local::Kinesalite;
use dms_cdc::stream::{client, ensure_stream, put_ordered};
use mysql_async::prelude::*;
use support::{rig, Rig};

/// legacy_id, title, author name, status code, rating, story, ingredients.
type RecipeRow = (
    i64,
    String,
    Option<String>,
    i64,
    String,
    Option<String>,
    String,
);

/// A small deterministic generator (no dependency on a random crate's stream).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// The ids that exist, so updates and deletes name real rows.
#[derive(Default)]
struct World {
    users: BTreeSet<u64>,
    recipes: BTreeSet<u64>,
    stories: BTreeSet<u64>,
    ingredients: BTreeSet<u64>,
    ever_users: BTreeSet<u64>,
    next_id: u64,
}

fn pick(set: &BTreeSet<u64>, rng: &mut Lcg) -> Option<u64> {
    if set.is_empty() {
        return None;
    }
    set.iter().nth(rng.next(set.len() as u64) as usize).copied()
}

/// One random statement on the source; returns the SQL and how many row changes it makes.
fn statement(w: &mut World, rng: &mut Lcg) -> Option<String> {
    w.next_id += 1;
    let id = w.next_id;
    let status = ["draft", "published", "published", "archived"][rng.next(4) as usize];
    Some(match rng.next(12) {
        0 => {
            w.users.insert(id);
            w.ever_users.insert(id);
            format!("INSERT INTO users VALUES ({id}, 'user {id}', 'U{id}@Example.com', '2026-01-02 03:04:05', 1)")
        }
        1 => format!(
            "UPDATE users SET name = 'renamed {id}' WHERE id = {}",
            pick(&w.users, rng)?
        ),
        2 => {
            let u = pick(&w.users, rng)?;
            w.users.remove(&u);
            format!("DELETE FROM users WHERE id = {u}")
        }
        3 | 4 => {
            w.recipes.insert(id);
            let author = pick(&w.users, rng).unwrap_or(0);
            format!(
                "INSERT INTO recipes (id, author_id, title, status, servings, rating, created_at, tags)
                 VALUES ({id}, {author}, 'recipe {id}', '{status}', {}, {}.{:02}, '2026-03-29 01:30:00', '[\"t{id}\"]')",
                rng.next(8),
                rng.next(5),
                rng.next(100)
            )
        }
        5 => format!(
            "UPDATE recipes SET status = '{status}', title = 'title {id}' WHERE id = {}",
            pick(&w.recipes, rng)?
        ),
        6 => {
            let author = pick(&w.users, rng)?;
            format!(
                "UPDATE recipes SET author_id = {author} WHERE id = {}",
                pick(&w.recipes, rng)?
            )
        }
        7 => {
            let r = pick(&w.recipes, rng)?;
            w.recipes.remove(&r);
            format!("DELETE FROM recipes WHERE id = {r}")
        }
        8 => {
            let r = pick(&w.recipes, rng)?;
            let body = "a long story ".repeat(rng.next(3000) as usize + 1);
            w.stories.insert(r);
            format!("REPLACE INTO recipe_stories VALUES ({r}, '{body}{id}')")
        }
        9 => {
            let r = pick(&w.recipes, rng)?;
            w.ingredients.insert(id);
            format!(
                "INSERT INTO ingredients VALUES ({id}, {r}, {}, 'ingredient {id}', {}.50, 'g')",
                rng.next(5),
                rng.next(900)
            )
        }
        10 => {
            // Re-parent a child, or change its position.
            let i = pick(&w.ingredients, rng)?;
            let r = pick(&w.recipes, rng)?;
            format!(
                "UPDATE ingredients SET recipe_id = {r}, position = {} WHERE id = {i}",
                rng.next(5)
            )
        }
        _ => {
            let i = pick(&w.ingredients, rng)?;
            w.ingredients.remove(&i);
            format!("DELETE FROM ingredients WHERE id = {i}")
        }
    })
}

/// Runs transactions of 1-5 statements until `changes` row changes were made.
async fn workload(rig: &Rig, w: &mut World, rng: &mut Lcg, changes: u64) {
    let mut conn = rig.engine.source.get_conn().await.unwrap();
    let mut made = 0;
    while made < changes {
        let size = rng.next(5) + 1;
        conn.query_drop("BEGIN").await.unwrap();
        for _ in 0..size {
            if let Some(sql) = statement(w, rng) {
                conn.query_drop(&sql).await.unwrap();
                made += conn.affected_rows().max(1);
            }
        }
        conn.query_drop("COMMIT").await.unwrap();
    }
}

/// Captures up to the source's current position (or `limit` transactions),
/// puts each transaction on the stream, and persists the position after
/// every acknowledged put. Returns the records put.
async fn capture_some(
    rig: &Rig,
    kinesis: &aws_sdk_kinesis::Client,
    from: &mut BinlogPosition,
    limit: Option<usize>,
) -> usize {
    let options = CaptureOptions::from_mapping(&rig.engine.mapping);
    let target = current_position(&rig.engine.source).await.unwrap();
    let mut capture = Capture::start(
        mysql_async::Opts::from_url(&rig.source_db.url("recipes_src")).unwrap(),
        from.clone(),
        options,
    )
    .await
    .unwrap();
    let mut put = 0;
    let mut transactions = 0;
    while capture.position() < &target && limit.is_none_or(|l| transactions < l) {
        let Some(tx) = capture
            .next_transaction(Duration::from_secs(10))
            .await
            .unwrap()
        else {
            break;
        };
        let records: Vec<(String, Vec<u8>)> = tx
            .records
            .iter()
            .map(|r| (r.partition_key.clone(), r.payload.clone()))
            .collect();
        put_ordered(kinesis, "pipeline", &records).await.unwrap();
        put += records.len();
        transactions += 1;
        *from = tx.position.clone(); // persisted only after the put was acknowledged
    }
    capture.close().await.unwrap();
    put
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_workload_through_the_whole_pipeline_converges_with_restarts() {
    // A small chunk size: a batch's keys span several chunks, so reads of
    // one chunk overlap writes of the previous one, and short chunks are
    // padded, all checked against the oracle.
    let rig = rig(7).await;
    let kinesalite = Kinesalite::start().unwrap();
    let kinesis = client(Some(&kinesalite.endpoint())).await;
    let arn = ensure_stream(&kinesis, "pipeline", 2).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut options = ConsumeOptions::new("pipeline", &arn);
    options.batch_size = 100;
    options.state_file = Some(dir.path().join("positions.json"));

    let mut position = current_position(&rig.engine.source).await.unwrap();
    let mut world = World::default();
    let mut rng = Lcg(20261123);

    // First half of the workload; capture stops after some transactions (a restart).
    workload(&rig, &mut world, &mut rng, 2800).await;
    let first = capture_some(&rig, &kinesis, &mut position, Some(150)).await;
    // Consume what is there, but stop early (a restart of consume).
    let mut consumer = Consumer::new(kinesis.clone(), options.clone()).unwrap();
    consumer
        .run_until_idle(
            &rig.engine,
            Duration::from_millis(200),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
    drop(consumer);

    // Second half, while the pipeline restarts from its persisted positions.
    workload(&rig, &mut world, &mut rng, 2800).await;
    let second = capture_some(&rig, &kinesis, &mut position, None).await;
    let mut consumer = Consumer::new(kinesis.clone(), options).unwrap();
    let summary = consumer
        .run_until_idle(
            &rig.engine,
            Duration::from_secs(2),
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    assert_eq!(summary.on_failure_count, 0);
    assert!(
        first + second >= 5000,
        "captured {first} + {second} records"
    );
    let quarantined: u64 = rig
        .target_rows("SELECT COUNT(*) FROM dms_cdc_quarantine")
        .await[0]
        .get(0)
        .unwrap();
    assert_eq!(quarantined, 0);

    // The target equals the mapping of the final source state, row for row.
    let mut src = rig.engine.source.get_conn().await.unwrap();
    let expected_recipes: Vec<RecipeRow> = src
        .query(
            "SELECT r.id, r.title, u.name, CASE r.status WHEN 'draft' THEN 0 WHEN 'published' THEN 1 ELSE 2 END,
                    CAST(r.rating AS CHAR), s.body,
                    COALESCE((SELECT GROUP_CONCAT(CONCAT(i.name, ':', CAST(i.quantity AS DOUBLE)) ORDER BY i.position, i.id)
                              FROM ingredients i WHERE i.recipe_id = r.id), '')
             FROM recipes r LEFT JOIN users u ON u.id = r.author_id LEFT JOIN recipe_stories s ON s.recipe_id = r.id
             WHERE r.status = 'published' ORDER BY r.id",
        )
        .await
        .unwrap();
    let actual_recipes: Vec<RecipeRow> = rig
        .target_rows(
            "SELECT legacy_id, title, author_name, status_code, CAST(rating AS CHAR), story, ingredients
             FROM global_recipes ORDER BY legacy_id",
        )
        .await
        .iter()
        .map(|r| {
            let json: serde_json::Value = serde_json::from_str(&r.get::<String, _>(6).unwrap()).unwrap();
            let items: Vec<String> = json
                .as_array()
                .unwrap()
                .iter()
                .map(|i| format!("{}:{}", i["name"].as_str().unwrap(), i["qty"]))
                .collect();
            (r.get(0).unwrap(), r.get(1).unwrap(), r.get(2).unwrap(), r.get(3).unwrap(), r.get(4).unwrap(), r.get(5).unwrap(), items.join(","))
        })
        .collect();
    assert!(
        expected_recipes.len() > 50,
        "a meaningful number of published recipes: {}",
        expected_recipes.len()
    );
    assert_eq!(actual_recipes.len(), expected_recipes.len());
    for (a, e) in actual_recipes.iter().zip(&expected_recipes) {
        assert_eq!(a, e);
    }

    // Users: live ones as in the source; deleted ones kept as soft-deleted rows.
    let expected_users: Vec<(u64, String, String)> = src
        .query("SELECT id, name, LOWER(email) FROM users ORDER BY id")
        .await
        .unwrap();
    let actual_users: Vec<(u64, String, String, i64)> = rig
        .target_rows(
            "SELECT user_id, display_name, email, is_deleted FROM global_users ORDER BY user_id",
        )
        .await
        .iter()
        .map(|r| {
            (
                r.get(0).unwrap(),
                r.get(1).unwrap(),
                r.get(2).unwrap(),
                r.get(3).unwrap(),
            )
        })
        .collect();
    let live: Vec<(u64, String, String)> = actual_users
        .iter()
        .filter(|u| u.3 == 0)
        .map(|u| (u.0, u.1.clone(), u.2.clone()))
        .collect();
    assert_eq!(live, expected_users);
    let deleted: BTreeSet<u64> = actual_users
        .iter()
        .filter(|u| u.3 == 1)
        .map(|u| u.0)
        .collect();
    let gone: BTreeSet<u64> = world.ever_users.difference(&world.users).copied().collect();
    assert_eq!(deleted, gone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_fixture_replays_to_the_same_target_as_the_live_run() {
    let live = rig(100).await;
    let replayed = rig(100).await;
    let kinesalite = Kinesalite::start().unwrap();
    let kinesis = client(Some(&kinesalite.endpoint())).await;
    let arn = ensure_stream(&kinesis, "pipeline", 2).await.unwrap();
    let start = current_position(&live.engine.source).await.unwrap();
    let mut world = World::default();
    let mut rng = Lcg(7);
    workload(&live, &mut world, &mut rng, 400).await;

    // Live: capture -> stream -> consume -> target.
    let mut position = start.clone();
    capture_some(&live, &kinesis, &mut position, None).await;
    let mut consumer =
        Consumer::new(kinesis.clone(), ConsumeOptions::new("pipeline", &arn)).unwrap();
    consumer
        .run_until_idle(
            &live.engine,
            Duration::from_secs(1),
            Duration::from_secs(120),
        )
        .await
        .unwrap();

    // Recorded: capture --to-file, then replay the file into another target
    // that re-queries the same source.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recorded.json");
    let summary = dms_cdc::pipeline::capture_to_file(
        &live.source_db.url("recipes_src"),
        start,
        CaptureOptions::from_mapping(&live.engine.mapping),
        &file,
        2,
        &[],
    )
    .await
    .unwrap();
    assert!(summary.record_count >= 300, "{}", summary.record_count);
    let event = dms_cdc::replay::read_event(&file).unwrap();
    let deliveries = dms_cdc::dms::deliveries(&event).unwrap();
    let engine = dms_cdc::engine::Engine {
        mapping: replayed.engine.mapping.clone(),
        transforms: replayed.engine.transforms.clone(),
        source: live.engine.source.clone(),
        target: dms_cdc::target::MysqlTarget::new(replayed.target_pool.clone(), "replay", 100),
        settings: dms_cdc::engine::Settings {
            function_name: "replay".into(),
            chunk_size: 100,
        },
    };
    engine.target.prepare().await.unwrap();
    let report = engine.process(&deliveries).await;
    assert!(
        report.response.batch_item_failures.is_empty(),
        "{:?}",
        report.retry_error
    );

    for table in ["global_recipes", "global_users"] {
        // Every column but the version, which records when each run read the source.
        let sql = format!("SELECT * FROM {table} ORDER BY 1",);
        let strip = |rows: Vec<mysql_async::Row>| -> Vec<Vec<mysql_async::Value>> {
            rows.into_iter()
                .map(|r| {
                    let names: Vec<String> = r
                        .columns_ref()
                        .iter()
                        .map(|c| c.name_str().into_owned())
                        .collect();
                    r.unwrap()
                        .into_iter()
                        .zip(names)
                        .filter(|(_, n)| n != "src_version")
                        .map(|(v, _)| v)
                        .collect()
                })
                .collect()
        };
        let a = strip(live.target_rows(&sql).await);
        let b = strip(replayed.target_rows(&sql).await);
        assert!(!a.is_empty());
        assert_eq!(a, b, "{table}");
    }
}
