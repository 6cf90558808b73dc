//! Capture from PostgreSQL's logical decoding, for every target adapter
//! (`mysql::`, `postgres::`): changes made in a real PostgreSQL source
//! (with `wal_level = logical`) are read through a `test_decoding` slot as
//! DMS records of a PostgreSQL source, applied by the engine re-querying
//! that source, and the target ends as a rebuild of the final source state
//! makes it: inserts, updates, a child moving to another parent, deletes,
//! and an update that leaves a TOASTed value out of its image (re-read,
//! not nulled).

mod support;

use dms_cdc::capture::postgres::PgCapture;
use dms_cdc::capture::CaptureOptions;
use dms_cdc::dms::Delivery;
use dms_cdc::engine::{Engine, Outcome, Settings};
use dms_cdc::local::PostgreSql;
use dms_cdc::mapping::{Mapping, Transforms};
use dms_cdc::position::{SequenceNumber, ShardId};
use dms_cdc::postgres::PostgresSource;
use support::targets::TestTarget;
use support::{cli, record, root, FUNCTION_NAME};

every_target!(changes_captured_from_postgresql_converge_on_the_target);

struct Counter(u64);

impl Counter {
    fn delivery(&mut self, payload: Vec<u8>) -> Delivery {
        self.0 += 1;
        Delivery {
            shard_id: ShardId("shardId-000000000000".into()),
            sequence_number: SequenceNumber::parse(&format!("4959{:020}", self.0)).unwrap(),
            partition_key: "k".into(),
            approximate_arrival_ms: None,
            data: payload,
        }
    }
}

async fn apply<T: dms_cdc::target::Target>(engine: &Engine<PostgresSource, T>, batch: &[Delivery]) {
    for chunk in batch.chunks(100) {
        let report = engine.process(chunk).await;
        assert_eq!(report.retry_error, None);
        assert!(
            report.outcomes.iter().all(|o| *o == Outcome::Applied),
            "{:?} {:?}",
            report.outcomes,
            report.summary
        );
    }
}

/// Rows of both target tables without the version column.
async fn rows<T: TestTarget>(db: &T::Db) -> Vec<Vec<Option<String>>> {
    let mut out = T::text_rows(
        db,
        "SELECT user_id, display_name, email, created_at, active, is_deleted FROM global_users ORDER BY user_id",
    )
    .await;
    out.extend(
        T::text_rows(
            db,
            "SELECT legacy_id, author_name, title, status_code, story, ingredients FROM global_recipes ORDER BY legacy_id",
        )
        .await,
    );
    out
}

async fn changes_captured_from_postgresql_converge_on_the_target<T: TestTarget>() {
    let (users, recipes) = (20, 40);
    let pg = PostgreSql::start_logical().unwrap();
    pg.create_database("src").unwrap();
    pg.run_file("src", &root().join("fixtures/source-postgres.sql"))
        .unwrap();
    pg.run_sql(
        "src",
        &support::generated::source_sql_postgres(users, recipes),
    )
    .unwrap();
    // A story large enough to be TOASTed, and a column to change beside it.
    pg.run_sql(
        "src",
        "ALTER TABLE recipes_src.recipe_stories ADD COLUMN edited_at timestamp; \
         UPDATE recipes_src.recipe_stories SET body = (SELECT string_agg(md5(g::text), '') \
           FROM generate_series(1, 300) g) WHERE recipe_id = 2",
    )
    .unwrap();
    let transforms = Transforms::standard();
    let mapping = Mapping::load(&root().join("fixtures/mapping.toml"), &transforms).unwrap();
    let mut capture = PgCapture::connect(
        &pg.url("src"),
        "dms_cdc_test",
        CaptureOptions::from_mapping(&mapping),
    )
    .await
    .unwrap();

    let engine_on = |db: &T::Db| {
        let target = T::new(T::pool(db), FUNCTION_NAME, 100);
        Engine::new(
            mapping.clone(),
            transforms.clone(),
            PostgresSource::from(dms_cdc::postgres::pool(&pg.url("src"), 2).unwrap()),
            target,
            Settings {
                function_name: FUNCTION_NAME.into(),
                chunk_size: 100,
            },
        )
    };
    // The initial load: a record with only the key for every root row.
    let loaded_db = T::start();
    let engine = engine_on(&loaded_db);
    dms_cdc::target::Target::prepare(&engine.target, &mapping)
        .await
        .unwrap();
    let mut seq = Counter(0);
    let keys_only = |seq: &mut Counter| -> Vec<Delivery> {
        let mut out = Vec::new();
        for id in 1..=users + 5 {
            out.push(seq.delivery(record(
                "update",
                "users",
                serde_json::json!({ "id": id }),
                None,
            )));
        }
        for id in 1..=recipes + 5 {
            out.push(seq.delivery(record(
                "update",
                "recipes",
                serde_json::json!({ "id": id }),
                None,
            )));
        }
        out
    };
    apply(&engine, &keys_only(&mut seq)).await;

    // Changes on the source, as an application makes them.
    pg.run_sql(
        "src",
        "SET search_path TO recipes_src; \
         INSERT INTO users VALUES (21, 'New', 'new@example.com', '2026-12-06 08:00:00', true); \
         INSERT INTO recipes (id, author_id, title, status, created_at) VALUES (41, 21, 'Fresh', 'published', '2026-12-06 08:00:00'); \
         INSERT INTO ingredients VALUES (900, 41, 0, 'salt', 0.50, 'g'); \
         UPDATE recipes SET title = 'Renamed' WHERE id = 6; \
         UPDATE ingredients SET recipe_id = 10 WHERE id = 3; \
         DELETE FROM ingredients WHERE id = 5; \
         UPDATE users SET name = 'Renamed user' WHERE id = 3; \
         DELETE FROM recipes WHERE id = 14; \
         UPDATE recipe_stories SET edited_at = now() WHERE recipe_id = 2",
    )
    .unwrap();
    // The server flushes its WAL asynchronously here (synchronous_commit
    // is off): poll until the transaction is there, as a capture does.
    let mut poll = capture.poll(1000).await.unwrap();
    for _ in 0..100 {
        if !poll.records.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        poll = capture.poll(1000).await.unwrap();
    }
    assert_eq!(poll.records.len(), 9, "one record per change");
    // The TOASTed story is left out of its update, as DMS leaves it out.
    let story: serde_json::Value = poll
        .records
        .iter()
        .rev()
        .find(|r| r.table.table == "recipe_stories")
        .map(|r| serde_json::from_slice(&r.payload).unwrap())
        .unwrap();
    assert!(story["data"].get("body").is_none(), "{story}");
    assert_eq!(story["metadata"]["operation"], "update");
    assert!(story["metadata"]["stream-position"]
        .as_str()
        .unwrap()
        .contains('/'));
    let batch: Vec<Delivery> = poll
        .records
        .into_iter()
        .map(|r| seq.delivery(r.payload))
        .collect();
    apply(&engine, &batch).await;
    capture
        .advance(poll.upto.as_deref().unwrap())
        .await
        .unwrap();
    assert!(capture.poll(1000).await.unwrap().records.is_empty());

    // A rebuild of the final state, into another target.
    let rebuilt_db = T::start();
    let rebuilt = engine_on(&rebuilt_db);
    dms_cdc::target::Target::prepare(&rebuilt.target, &mapping)
        .await
        .unwrap();
    apply(&rebuilt, &keys_only(&mut Counter(0))).await;
    let (got, want) = (rows::<T>(&loaded_db).await, rows::<T>(&rebuilt_db).await);
    assert_eq!(got, want);
    let story: Vec<Vec<Option<String>>> = T::text_rows(
        &loaded_db,
        "SELECT story FROM global_recipes WHERE legacy_id = 2",
    )
    .await;
    assert_eq!(story[0][0].as_deref().map(str::len), Some(300 * 32));
    capture.drop_slot().await.unwrap();
}

/// `dms-cdc capture --source postgres://... --to-file`: the first run
/// creates the slot (nothing before it is captured), the second writes the
/// changes made since as a Lambda Kinesis event, which replays through the
/// engine, and the third finds nothing new (the slot moved).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_records_postgresql_changes_as_a_fixture_event() {
    let pg = PostgreSql::start_logical().unwrap();
    pg.create_database("src").unwrap();
    pg.run_file("src", &root().join("fixtures/source-postgres.sql"))
        .unwrap();
    pg.run_sql("src", &support::generated::source_sql_postgres(5, 10))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url("src");
    let capture = |name: &str| {
        let path = dir.path().join(name);
        let (code, out) = cli(&[
            "capture",
            "--source",
            &url,
            "--mapping",
            "fixtures/mapping.toml",
            "--slot",
            "fixtures",
            "--to-file",
            path.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{out}");
        (path, out)
    };
    let (_, first) = capture("first.json");
    assert!(
        first.contains("captured 0 records from slot fixtures"),
        "{first}"
    );
    pg.run_sql(
        "src",
        "SET synchronous_commit = on; SET search_path TO recipes_src; \
         UPDATE recipes SET title = 'Recorded' WHERE id = 2; \
         UPDATE ingredients SET recipe_id = 6 WHERE id = 3; \
         DELETE FROM users WHERE id = 5",
    )
    .unwrap();
    let (path, second) = capture("second.json");
    assert!(second.contains("captured 3 records"), "{second}");
    let event = dms_cdc::replay::read_event(&path).unwrap();
    let deliveries = dms_cdc::dms::deliveries(&event).unwrap();
    assert_eq!(deliveries.len(), 3);
    let first_record: serde_json::Value = serde_json::from_slice(&deliveries[0].data).unwrap();
    assert_eq!(first_record["metadata"]["schema-name"], "recipes_src");
    assert_eq!(first_record["metadata"]["table-name"], "recipes");
    assert_eq!(first_record["before-image"]["title"], "recipe 2");

    // The recorded event replays through the engine into a PostgreSQL target.
    let target_db = <dms_cdc::postgres::PostgresTarget as TestTarget>::start();
    let transforms = Transforms::standard();
    let mapping = Mapping::load(&root().join("fixtures/mapping.toml"), &transforms).unwrap();
    let engine = Engine::new(
        mapping.clone(),
        transforms,
        PostgresSource::from(dms_cdc::postgres::pool(&url, 2).unwrap()),
        <dms_cdc::postgres::PostgresTarget as TestTarget>::new(
            <dms_cdc::postgres::PostgresTarget as TestTarget>::pool(&target_db),
            FUNCTION_NAME,
            100,
        ),
        Settings {
            function_name: FUNCTION_NAME.into(),
            chunk_size: 100,
        },
    );
    dms_cdc::target::Target::prepare(&engine.target, &mapping)
        .await
        .unwrap();
    let report = engine.process(&deliveries).await;
    assert!(
        report.outcomes.iter().all(|o| *o == Outcome::Applied),
        "{:?}",
        report.summary
    );
    let title = <dms_cdc::postgres::PostgresTarget as TestTarget>::text_rows(
        &target_db,
        "SELECT title FROM global_recipes WHERE legacy_id = 2",
    )
    .await;
    assert_eq!(title, vec![vec![Some("Recorded".to_owned())]]);

    let (_, third) = capture("third.json");
    assert!(third.contains("captured 0 records"), "{third}");
}
