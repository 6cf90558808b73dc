//! `dms-cdc backfill` beside the running stream, against real servers: a
//! generated source (100,000 recipes with stories and ingredients, 20,000
//! users) is loaded into an empty target while a workload updates, deletes
//! and inserts the same rows and the local pipeline (capture -> Kinesis
//! emulator -> consume -> engine) applies those changes. The first backfill
//! is killed midway; the second resumes after the last committed chunk.
//! Afterwards the target equals the mapping of the final source state.
//! For every target adapter (`mysql::`, `postgres::`).

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dms_cdc::backfill::{backfill, roots_only, BackfillOptions};
use dms_cdc::capture::{current_position, CaptureOptions};
use dms_cdc::consume::{ConsumeOptions, Consumer};
use dms_cdc::engine::{Engine, Settings};
use dms_cdc::local::Kinesalite;
use dms_cdc::pipeline::{capture_to_stream, StopAt};
use dms_cdc::source::MysqlSource;
use dms_cdc::stream::{client, ensure_stream};
use mysql_async::prelude::*;
use support::targets::TestTarget;
use support::workload::{workload, Lcg, World};
use support::{rig_for, Rig, FUNCTION_NAME};

every_target!(a_backfill_beside_the_stream_converges_and_resumes_after_a_kill);

const USERS: u64 = 20_000;
const RECIPES: u64 = 100_000;

/// Fills the source (outside the binlog: it is there before the stream starts).
async fn generate<T: TestTarget>(rig: &Rig<T>) {
    rig.source_sql(&support::generated::source_sql(USERS, RECIPES))
        .await;
}

type RecipeLine = (i64, String, Option<String>, Option<String>, String);

async fn assert_target_is_the_mapping_of_the_source<T: TestTarget>(rig: &Rig<T>) {
    let mut src = rig.engine.source.pool().get_conn().await.unwrap();
    let expected: Vec<RecipeLine> = src
        .query(
            "SELECT r.id, r.title, u.name, s.body,
                    COALESCE((SELECT GROUP_CONCAT(i.name ORDER BY i.position, i.id) FROM ingredients i WHERE i.recipe_id = r.id), '')
             FROM recipes r LEFT JOIN users u ON u.id = r.author_id LEFT JOIN recipe_stories s ON s.recipe_id = r.id
             WHERE r.status = 'published' ORDER BY r.id",
        )
        .await
        .unwrap();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let actual: Vec<RecipeLine> = rig
        .text_rows("SELECT legacy_id, title, author_name, story, ingredients FROM global_recipes ORDER BY legacy_id")
        .await
        .iter()
        .map(|r| {
            let json: serde_json::Value = serde_json::from_str(&text(&r[4])).unwrap();
            let names: Vec<&str> = json
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["name"].as_str().unwrap())
                .collect();
            (text(&r[0]).parse().unwrap(), text(&r[1]), r[2].clone(), r[3].clone(), names.join(","))
        })
        .collect();
    let q = T::quarantine(&rig.target_db).await;
    assert!(
        q.is_empty(),
        "{} quarantined, first: {:?}",
        q.len(),
        q.iter()
            .take(3)
            .map(|r| (&r.1, &r.5, String::from_utf8_lossy(&r.4)))
            .collect::<Vec<_>>()
    );
    assert!(expected.len() > RECIPES as usize / 3, "{}", expected.len());
    assert_eq!(actual.len(), expected.len(), "published recipes");
    let differ: Vec<_> = actual
        .iter()
        .zip(&expected)
        .filter(|(a, e)| a != e)
        .take(5)
        .collect();
    assert!(
        differ.is_empty(),
        "first differences (target, source): {differ:#?}"
    );

    let live: Vec<(u64, String)> = src
        .query("SELECT id, name FROM users ORDER BY id")
        .await
        .unwrap();
    let target_live: Vec<(u64, String)> = rig
        .text_rows(
            "SELECT user_id, display_name FROM global_users WHERE is_deleted = 0 ORDER BY user_id",
        )
        .await
        .iter()
        .map(|r| (text(&r[0]).parse().unwrap(), text(&r[1])))
        .collect();
    assert_eq!(target_live.len(), live.len(), "live users");
    assert!(target_live == live, "live users differ");
    assert!(T::quarantine(&rig.target_db).await.is_empty());
}

async fn a_backfill_beside_the_stream_converges_and_resumes_after_a_kill<T: TestTarget>() {
    let rig = rig_for::<T>(500).await;
    generate(&rig).await;
    let kinesalite = Kinesalite::start().unwrap();
    let kinesis = client(Some(&kinesalite.endpoint())).await;
    let arn = ensure_stream(&kinesis, "backfill", 2).await.unwrap();

    // The stream: capture from now, consume into the target with the stream's engine.
    let position = current_position(rig.engine.source.pool()).await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let capture_task = {
        let (kinesis, url) = (kinesis.clone(), rig.source_db.url("recipes_src"));
        let options = CaptureOptions::from_mapping(&rig.engine.mapping);
        tokio::spawn(async move {
            capture_to_stream(
                &url,
                position,
                options,
                &kinesis,
                "backfill",
                None,
                StopAt::Signal(stop_rx),
            )
            .await
        })
    };
    // As the template deploys it: a batch is retried until it applies
    // (a deadlock with the backfill's transactions is retryable).
    let mut consume_options = ConsumeOptions::new("backfill", &arn);
    consume_options.maximum_retry_attempts = 10_000;
    let mut consumer = Consumer::new(kinesis.clone(), consume_options).unwrap();
    let consume = async {
        loop {
            consumer
                .run_until_idle(
                    &rig.engine,
                    Duration::from_millis(300),
                    Duration::from_secs(5),
                )
                .await
                .unwrap();
            if *stop_tx.borrow() && capture_task.is_finished() {
                let s = consumer
                    .run_until_idle(
                        &rig.engine,
                        Duration::from_secs(1),
                        Duration::from_secs(300),
                    )
                    .await
                    .unwrap();
                assert_eq!(s.on_failure_count, 0);
                return;
            }
        }
    };

    // The backfill's own engine: the same target, each table feeding only its own targets.
    let bf_engine = Engine::new(
        roots_only(&rig.engine.mapping),
        rig.engine.transforms.clone(),
        MysqlSource::from(rig.engine.source.pool().clone()),
        T::new(rig.target_pool.clone(), FUNCTION_NAME, 500),
        Settings {
            function_name: FUNCTION_NAME.into(),
            chunk_size: 500,
        },
    );
    let capture_options = CaptureOptions::from_mapping(&rig.engine.mapping);
    let options = BackfillOptions {
        chunk: 1000,
        parallel: 2,
        ..BackfillOptions::default()
    };
    let mut world = World::with_rows(
        (1..=USERS).step_by(7),
        (1..=RECIPES).step_by(11),
        (2..=RECIPES).step_by(22),
        (1..=RECIPES * 2).step_by(13),
        1_000_000,
    );
    let mut rng = Lcg(20261206);
    let work = async {
        // A backfill killed (dropped mid-chunk) once a third of the recipes are in.
        let rows = AtomicU64::new(0);
        let third = tokio::sync::Notify::new();
        let killed = async {
            let progress = |p: &dms_cdc::backfill::Progress| {
                if p.table.ends_with("recipes") {
                    let n = rows.fetch_add(1000, Ordering::Relaxed) + 1000;
                    if n >= RECIPES / 3 {
                        third.notify_one();
                    }
                }
            };
            tokio::select! {
                r = backfill(&bf_engine, &capture_options, &options, &progress) => panic!("finished before the kill: {r:?}"),
                _ = third.notified() => {}
            }
        };
        tokio::join!(killed, workload(&rig, &mut world, &mut rng, 1500));
        // Run again: it resumes after the last committed chunk of each lane.
        let (reports, ()) = tokio::join!(
            backfill(&bf_engine, &capture_options, &options, &|_| {}),
            workload(&rig, &mut world, &mut rng, 1500)
        );
        let reports = reports.unwrap();
        let recipes: Vec<_> = reports
            .iter()
            .filter(|r| r.table.ends_with("recipes"))
            .collect();
        assert_eq!(recipes.len(), 2, "{reports:#?}");
        assert!(
            recipes.iter().any(|r| r.resumed_after.is_some()),
            "a lane resumed: {reports:#?}"
        );
        let reread: u64 = recipes.iter().map(|r| r.rows).sum();
        assert!(
            reread < RECIPES,
            "the resumed run did not start over: {reread} rows"
        );
        // A third run has nothing left to do.
        let again = backfill(&bf_engine, &capture_options, &options, &|_| {})
            .await
            .unwrap();
        assert!(again.iter().all(|r| r.rows == 0), "{again:#?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _ = stop_tx.send(true);
    };
    tokio::join!(consume, work);
    capture_task.await.unwrap().unwrap();
    assert_target_is_the_mapping_of_the_source(&rig).await;
}
