//! PostgreSQL as the source, for every target adapter (`mysql::`,
//! `postgres::`): the same sample domain in a MariaDB source and in a
//! PostgreSQL source (`fixtures/source-postgres.sql`, the same generated
//! rows), the same change records replayed through an engine on each,
//! give the same target rows. Every record carries only its key, so every
//! row is re-read from its source: every column type the sample mapping
//! reads (`bigint`, `numeric`, `boolean`, `timestamp`, an enum, `jsonb`,
//! `text`) goes through the PostgreSQL source. An update whose image lacks
//! a column (what DMS sends for an unchanged TOASTed value) keeps the
//! column's value: it is re-read, not nulled. Through the binary, a
//! backfill from the PostgreSQL source (`--source postgres://...`, in
//! parallel ranges) gives the rows a backfill from the MariaDB source
//! gives, reconcile finds it clean, and a drift is found and repaired.

mod support;

use dms_cdc::dms::Delivery;
use dms_cdc::engine::{Engine, Outcome, Settings};
use dms_cdc::local::PostgreSql;
use dms_cdc::postgres::PostgresSource;
use dms_cdc::source::Source;
use serde_json::json;
use support::targets::TestTarget;
use support::{cli, record, rig_for, root, Rig, FUNCTION_NAME};

every_target!(
    a_postgresql_source_builds_the_rows_a_mysql_source_builds,
    backfill_reconcile_and_repair_read_a_postgresql_source_through_the_binary
);

/// A throwaway PostgreSQL with the sample source schema and rows.
fn postgres_source(users: u64, recipes: u64) -> PostgreSql {
    let pg = PostgreSql::start().expect("throwaway postgresql");
    pg.create_database("src").unwrap();
    pg.run_file("src", &root().join("fixtures/source-postgres.sql"))
        .unwrap();
    pg.run_sql(
        "src",
        &support::generated::source_sql_postgres(users, recipes),
    )
    .unwrap();
    pg
}

async fn target_rows<T: TestTarget>(db: &T::Db) -> Vec<Vec<Option<String>>> {
    let mut rows = T::text_rows(db, "SELECT * FROM global_users ORDER BY user_id").await;
    rows.extend(T::text_rows(db, "SELECT * FROM global_recipes ORDER BY legacy_id").await);
    rows
}

async fn apply<S: Source, T: dms_cdc::target::Target>(
    engine: &Engine<S, T>,
    deliveries: &[Delivery],
) {
    for batch in deliveries.chunks(150) {
        let report = engine.process(batch).await;
        assert_eq!(report.retry_error, None);
        assert!(
            report.outcomes.iter().all(|o| *o == Outcome::Applied),
            "{:?}",
            report.summary
        );
    }
}

async fn a_postgresql_source_builds_the_rows_a_mysql_source_builds<T: TestTarget>() {
    let (users, recipes) = (40, 200);
    let mut rig: Rig<T> = rig_for::<T>(100).await;
    rig.source_sql(&support::generated::source_sql(users, recipes))
        .await;
    let pg = postgres_source(users, recipes);
    let second = T::start();
    let target = T::new(T::pool(&second), FUNCTION_NAME, 100);
    dms_cdc::target::Target::prepare(&target, &rig.engine.mapping)
        .await
        .unwrap();
    let pg_engine = Engine::new(
        rig.engine.mapping.clone(),
        rig.engine.transforms.clone(),
        PostgresSource::from(dms_cdc::postgres::pool(&pg.url("src"), 4).unwrap()),
        target,
        Settings {
            function_name: FUNCTION_NAME.into(),
            chunk_size: 100,
        },
    );

    // Records that carry only the key: every row is re-read.
    let mut deliveries = Vec::new();
    for id in 1..=users {
        deliveries.push(rig.delivery(
            "shardId-000000000000",
            record("update", "users", json!({ "id": id }), None),
        ));
    }
    for id in 1..=recipes {
        deliveries.push(rig.delivery(
            "shardId-000000000000",
            record("update", "recipes", json!({ "id": id }), None),
        ));
    }
    apply(&rig.engine, &deliveries).await;
    apply(&pg_engine, &deliveries).await;
    let from_mysql = target_rows::<T>(&rig.target_db).await;
    let from_postgres = target_rows::<T>(&second).await;
    assert_eq!(from_mysql.len(), users as usize + recipes as usize / 2);
    assert_eq!(from_postgres, from_mysql);

    // An update whose image leaves out an unchanged (TOASTed) column: the
    // row is re-read, the column keeps its value.
    let long = "x".repeat(90);
    pg.run_sql(
        "src",
        &format!(
            "UPDATE recipes_src.users SET name = '{long}', email = 'new@example.com' WHERE id = 7"
        ),
    )
    .unwrap();
    let change = rig.delivery(
        "shardId-000000000000",
        record(
            "update",
            "users",
            json!({"id": 7, "email": "new@example.com", "created_at": "2026-01-02 03:04:05", "is_active": true}),
            None,
        ),
    );
    apply(&pg_engine, &[change]).await;
    let row = T::text_rows(
        &second,
        "SELECT display_name, email FROM global_users WHERE user_id = 7",
    )
    .await;
    assert_eq!(
        row,
        vec![vec![Some(long), Some("new@example.com".to_owned())]]
    );
}

/// Both target tables, every column but the version (the two backfills
/// read at different times).
async fn rows_without_versions<T: TestTarget>(db: &T::Db) -> Vec<Vec<Option<String>>> {
    let mut rows = T::text_rows(
        db,
        "SELECT user_id, display_name, email, created_at, active, is_deleted FROM global_users ORDER BY user_id",
    )
    .await;
    rows.extend(
        T::text_rows(
            db,
            "SELECT legacy_id, author_name, title, status_code, rating, calories, created_at, \
               created_unix, story, ingredients, meta, thumbnail, prep_time, publish_date, source_system \
             FROM global_recipes ORDER BY legacy_id",
        )
        .await,
    );
    rows
}

async fn backfill_reconcile_and_repair_read_a_postgresql_source_through_the_binary<
    T: TestTarget,
>() {
    let (users, recipes) = (30, 300);
    let rig: Rig<T> = rig_for::<T>(100).await;
    rig.source_sql(&support::generated::source_sql(users, recipes))
        .await;
    let pg = postgres_source(users, recipes);
    let second = T::start();
    let (mysql_url, pg_url) = (rig.source_db.url("recipes_src"), pg.url("src"));
    let (first_target, second_target) = (T::url(&rig.target_db), T::url(&second));
    let run = |verb: &str, source: &str, target: &str, extra: &[&str]| {
        let mut args = vec![
            verb,
            "--mapping",
            "fixtures/mapping.toml",
            "--source",
            source,
            "--target",
            target,
            "--function-name",
            FUNCTION_NAME,
        ];
        args.extend_from_slice(extra);
        cli(&args)
    };
    let (code, out) = run("backfill", &mysql_url, &first_target, &[]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(
        "backfill",
        &pg_url,
        &second_target,
        &["--parallel", "2", "--chunk-size", "64"],
    );
    assert_eq!(code, 0, "{out}");
    let from_mysql = rows_without_versions::<T>(&rig.target_db).await;
    assert_eq!(from_mysql.len(), users as usize + recipes as usize / 2);
    assert_eq!(rows_without_versions::<T>(&second).await, from_mysql);

    let (code, out) = run("reconcile", &pg_url, &second_target, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 differences"), "{out}");

    // A drift: the PostgreSQL source changes a title the target never hears of.
    pg.run_sql(
        "src",
        "UPDATE recipes_src.recipes SET title = 'changed at the source' WHERE id = 6",
    )
    .unwrap();
    let (code, out) = run("reconcile", &pg_url, &second_target, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("different global_recipes 6: title"), "{out}");
    let (code, out) = run("reconcile", &pg_url, &second_target, &["--repair"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("repair: 1 rows rewritten"), "{out}");
    let title = T::text_rows(
        &second,
        "SELECT title FROM global_recipes WHERE legacy_id = 6",
    )
    .await;
    assert_eq!(title, vec![vec![Some("changed at the source".to_owned())]]);
}
