//! The migration lifecycle against real servers, for every target adapter
//! (`mysql::`, `postgres::`): `reconcile` finds every planted drift (a row
//! missing, an extra row, one column changed, a child list changed) and
//! `--repair` fixes them; `cutover-check` fails with its reason for lag,
//! an open quarantined record and a difference, and passes when all are
//! clean (through the binary, with the Kinesis emulator).

mod support;

use std::time::Duration;

use dms_cdc::backfill::{backfill, roots_only, BackfillOptions};
use dms_cdc::capture::CaptureOptions;
use dms_cdc::consume::{ConsumeOptions, Consumer};
use dms_cdc::engine::{Engine, Settings};
use dms_cdc::local::Kinesalite;
use dms_cdc::quarantine::Filter;
use dms_cdc::reconcile::{reconcile, repair, Difference, ReconcileOptions};
use dms_cdc::source::MysqlSource;
use dms_cdc::stream::{client, ensure_stream, put_ordered};
use support::targets::TestTarget;
use support::{cli, record, rig_for, user, Rig, FUNCTION_NAME};

every_target!(
    a_sequence_at_or_below_the_source_keys_fails_and_is_raised,
    keys_of_several_columns_and_of_text_backfill_resume_reconcile_and_repair,
    reconcile_finds_every_planted_drift_and_repair_fixes_it,
    cutover_check_fails_for_each_reason_and_passes_when_clean,
);

/// A source of 60 users and 300 recipes (a quarter drafts) with stories
/// and two ingredients each, loaded into the target by a backfill.
async fn loaded<T: TestTarget>() -> Rig<T> {
    let rig = rig_for::<T>(100).await;
    rig.source_sql(&support::generated::source_sql(60, 300))
        .await;
    let engine = backfill_engine(&rig);
    let capture = CaptureOptions::from_mapping(&rig.engine.mapping);
    backfill(&engine, &capture, &BackfillOptions::default(), &|_| {})
        .await
        .unwrap();
    rig
}

fn backfill_engine<T: TestTarget>(rig: &Rig<T>) -> Engine<MysqlSource, T> {
    Engine::new(
        roots_only(&rig.engine.mapping),
        rig.engine.transforms.clone(),
        rig.engine.source.clone(),
        T::new(rig.target_pool.clone(), FUNCTION_NAME, 100),
        Settings {
            function_name: FUNCTION_NAME.into(),
            chunk_size: 100,
        },
    )
}

async fn check<T: TestTarget>(rig: &Rig<T>) -> dms_cdc::reconcile::ReconcileReport {
    reconcile(
        &rig.engine.source,
        &rig.engine.target,
        &rig.engine.mapping,
        &rig.engine.transforms,
        &CaptureOptions::from_mapping(&rig.engine.mapping),
        &ReconcileOptions {
            chunk: 64,
            ..ReconcileOptions::default()
        },
    )
    .await
    .unwrap()
}

/// Plants one drift of each kind in the target.
async fn plant<T: TestTarget>(rig: &Rig<T>) {
    rig.target_sql("DELETE FROM global_recipes WHERE legacy_id = 2")
        .await;
    rig.target_sql(
        "INSERT INTO global_recipes (legacy_id, title, status_code, created_at, created_unix, ingredients, meta, source_system)
         VALUES (9001, 'not in the source', 1, '2026-01-02 03:04:05', 0, '[]', '{}', 'recipes-v1')",
    )
    .await;
    rig.target_sql("UPDATE global_recipes SET title = 'edited by hand' WHERE legacy_id = 5")
        .await;
    rig.target_sql("UPDATE global_recipes SET ingredients = '[]' WHERE legacy_id = 6")
        .await;
    rig.target_sql("UPDATE global_users SET display_name = 'someone else' WHERE user_id = 7")
        .await;
}

async fn reconcile_finds_every_planted_drift_and_repair_fixes_it<T: TestTarget>() {
    let rig = loaded::<T>().await;
    let clean = check(&rig).await;
    assert!(clean.is_clean(), "{}", clean.render(20));
    let recipes = clean
        .tables
        .iter()
        .find(|t| t.table == "global_recipes")
        .unwrap();
    assert_eq!(
        (recipes.expected, recipes.compared),
        (150, 150),
        "{clean:?}"
    );

    plant(&rig).await;
    let found = check(&rig).await;
    let key = |k: &str| vec![k.to_owned()];
    let mut differences = found.differences.clone();
    differences.sort_by_key(|d| format!("{d:?}"));
    let mut want = vec![
        Difference::Missing {
            table: "global_recipes".into(),
            key: key("2"),
        },
        Difference::Extra {
            table: "global_recipes".into(),
            key: key("9001"),
        },
        Difference::Different {
            table: "global_recipes".into(),
            key: key("5"),
            columns: vec!["title".into()],
        },
        Difference::Different {
            table: "global_recipes".into(),
            key: key("6"),
            columns: vec!["ingredients".into()],
        },
        Difference::Different {
            table: "global_users".into(),
            key: key("7"),
            columns: vec!["display_name".into()],
        },
    ];
    want.sort_by_key(|d| format!("{d:?}"));
    assert_eq!(differences, want, "{}", found.render(20));
    assert!(
        !found.render(20).contains("edited by hand"),
        "the report names columns, never values"
    );

    let repaired = repair(
        &rig.engine,
        &CaptureOptions::from_mapping(&rig.engine.mapping),
        &found.differences,
    )
    .await
    .unwrap();
    assert_eq!(
        (repaired.rewritten, repaired.deleted, repaired.quarantined),
        (4, 1, 0),
        "{repaired:?}"
    );
    let again = check(&rig).await;
    assert!(again.is_clean(), "{}", again.render(20));
}

async fn cutover_check_fails_for_each_reason_and_passes_when_clean<T: TestTarget>() {
    let rig = loaded::<T>().await;
    let kinesalite = Kinesalite::start().unwrap();
    let kinesis = client(Some(&kinesalite.endpoint())).await;
    let arn = ensure_stream(&kinesis, "cutover", 1).await.unwrap();
    let (source, target) = (rig.source_db.url("recipes_src"), T::url(&rig.target_db));
    let endpoint = kinesalite.endpoint();
    let cutover = || {
        cli(&[
            "cutover-check",
            "--mapping",
            "fixtures/mapping.toml",
            "--source",
            &source,
            "--target",
            &target,
            "--function-name",
            FUNCTION_NAME,
            "--stream",
            "cutover",
            "--endpoint",
            &endpoint,
        ])
    };
    // Clean: the backfill loaded everything, nothing is on the stream.
    let (code, out) = cutover();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("PASS stream")
            && out.contains("PASS quarantine")
            && out.contains("PASS reconcile"),
        "{out}"
    );

    // A change on the stream the function has not applied: lag.
    rig.source_sql("UPDATE users SET name = 'renamed' WHERE id = 3")
        .await;
    let mut renamed = user(3, "renamed");
    renamed["email"] = serde_json::json!("U3@Example.com");
    // Committed now: newer than the backfill's rows.
    let mut change: serde_json::Value =
        serde_json::from_slice(&record("update", "users", renamed, None)).unwrap();
    change["metadata"]["commit-timestamp"] =
        serde_json::json!(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string());
    let change = serde_json::to_vec(&change).unwrap();
    put_ordered(
        &kinesis,
        "cutover",
        &[("recipes_src.users.3".to_owned(), change)],
    )
    .await
    .unwrap();
    let (code, out) = cutover();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL stream: shardId-"), "{out}");
    assert!(
        out.contains("FAIL reconcile"),
        "the rename is not in the target yet: {out}"
    );

    // The function applies it; then a record it must quarantine.
    let mut options = ConsumeOptions::new("cutover", &arn);
    options.maximum_retry_attempts = 100;
    let mut consumer = Consumer::new(kinesis.clone(), options).unwrap();
    consumer
        .run_until_idle(
            &rig.engine,
            Duration::from_millis(500),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let (code, out) = cutover();
    assert_eq!(code, 0, "{out}");
    put_ordered(
        &kinesis,
        "cutover",
        &[("k".to_owned(), b"not json{".to_vec())],
    )
    .await
    .unwrap();
    consumer
        .run_until_idle(
            &rig.engine,
            Duration::from_millis(500),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let (code, out) = cutover();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL quarantine: 1 open record"), "{out}");
    assert!(out.contains("PASS stream"), "{out}");
    let open = rig
        .engine
        .target
        .quarantined(&Filter::default())
        .await
        .unwrap();
    assert!(rig
        .engine
        .target
        .discard(open[0].id, "a test")
        .await
        .unwrap());

    // A difference in the target.
    plant(&rig).await;
    let (code, out) = cutover();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL reconcile: ") && out.contains("5 differences"),
        "{out}"
    );
    assert!(out.contains("PASS quarantine"), "{out}");
    let (code, out) = cli(&[
        "reconcile",
        "--repair",
        "--mapping",
        "fixtures/mapping.toml",
        "--source",
        &source,
        "--target",
        &target,
        "--function-name",
        FUNCTION_NAME,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("repair: 4 rows rewritten, 1 deleted, 0 quarantined"),
        "{out}"
    );
    let (code, out) = cutover();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cutover-check passed"), "{out}");
}

/// Two root tables whose keys are not one integer column: translations
/// keyed by (recipe_id, lang) and tags keyed by a text slug.
const KEYED_MAPPING: &str = r#"
[source]
schema = "recipes_src"
before_image_field = "before-image"

[source.tables.translations]
key = ["recipe_id", "lang"]

[source.tables.tags]
key = ["slug"]

[[target]]
table = "global_translations"
root = "translations"
key = ["recipe_id", "lang"]
version = "src_version"

[[target.column]]
name = "recipe_id"
from = "recipe_id"

[[target.column]]
name = "lang"
from = "lang"

[[target.column]]
name = "title"
from = "title"

[[target]]
table = "global_tags"
root = "tags"
key = ["slug"]
version = "src_version"

[[target.column]]
name = "slug"
from = "slug"

[[target.column]]
name = "label"
from = "label"
"#;

async fn keys_of_several_columns_and_of_text_backfill_resume_reconcile_and_repair<T: TestTarget>() {
    let rig = rig_for::<T>(100).await;
    rig.source_sql(
        "CREATE TABLE translations (recipe_id BIGINT NOT NULL, lang VARCHAR(8) NOT NULL, \
           title VARCHAR(200) NOT NULL, PRIMARY KEY (recipe_id, lang)); \
         CREATE TABLE tags (slug VARCHAR(40) NOT NULL PRIMARY KEY, label VARCHAR(100) NOT NULL); \
         INSERT INTO translations \
           WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 125) \
           SELECT i, l.lang, CONCAT(l.lang, ' title ', i) FROM n \
           CROSS JOIN (SELECT 'de' AS lang UNION ALL SELECT 'en') l; \
         INSERT INTO tags \
           WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 130) \
           SELECT CONCAT('tag-', LPAD(i, 3, '0'), IF(i % 7 = 0, '-ü', '')), CONCAT('Tag ', i) FROM n",
    )
    .await;
    rig.target_sql(&format!(
        "CREATE TABLE global_translations (recipe_id BIGINT NOT NULL, lang VARCHAR(8) NOT NULL, \
           title VARCHAR(200) NOT NULL, src_version {v}, PRIMARY KEY (recipe_id, lang))",
        v = T::VERSION_TYPE
    ))
    .await;
    rig.target_sql(&format!(
        "CREATE TABLE global_tags (slug VARCHAR(40) NOT NULL PRIMARY KEY, \
           label VARCHAR(100) NOT NULL, src_version {v})",
        v = T::VERSION_TYPE
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mapping.toml");
    std::fs::write(&path, KEYED_MAPPING).unwrap();
    let mapping =
        dms_cdc::mapping::Mapping::load(&path, &rig.engine.transforms).expect("the mapping");
    let capture = CaptureOptions::from_mapping(&mapping);
    let engine = || {
        Engine::new(
            roots_only(&mapping),
            rig.engine.transforms.clone(),
            rig.engine.source.clone(),
            T::new(rig.target_pool.clone(), FUNCTION_NAME, 100),
            Settings {
                function_name: FUNCTION_NAME.into(),
                chunk_size: 100,
            },
        )
    };
    let options = BackfillOptions {
        chunk: 20,
        ..BackfillOptions::default()
    };

    // Ranges of keys that are not integers cannot be split.
    let split = backfill(
        &engine(),
        &capture,
        &BackfillOptions {
            parallel: 2,
            tables: vec![dms_cdc::dms::TableName::new("recipes_src", "tags")],
            ..options.clone()
        },
        &|_| {},
    )
    .await
    .expect_err("--parallel on a text key");
    assert!(
        split.to_string().contains("`slug` is not an integer"),
        "{split}"
    );

    // A backfill stopped after a few chunks of each table (dropped at its
    // next await, as a killed process), then resumed.
    let chunks = std::sync::atomic::AtomicUsize::new(0);
    let stop = tokio::sync::Notify::new();
    let first = engine();
    let count = |_: &dms_cdc::backfill::Progress| {
        if chunks.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 8 {
            stop.notify_one();
        }
    };
    tokio::select! {
        r = backfill(&first, &capture, &options, &count) => panic!("the first run was to be stopped: {r:?}"),
        _ = stop.notified() => {}
    }
    let second = backfill(&engine(), &capture, &options, &|_| {})
        .await
        .unwrap();
    let translations = second
        .iter()
        .find(|r| r.table == "recipes_src.translations")
        .unwrap();
    let tags = second
        .iter()
        .find(|r| r.table == "recipes_src.tags")
        .unwrap();
    assert!(
        translations.resumed_after.is_some() && translations.rows < 250,
        "{second:?}"
    );
    assert_eq!(tags.resumed_after, None, "{second:?}");
    assert_eq!(tags.rows, 130, "{second:?}");

    let reconcile_options = ReconcileOptions {
        chunk: 32,
        parallel: 2,
        ..ReconcileOptions::default()
    };
    let check = || {
        reconcile(
            &rig.engine.source,
            &rig.engine.target,
            &mapping,
            &rig.engine.transforms,
            &capture,
            &reconcile_options,
        )
    };
    let clean = check().await.unwrap();
    assert!(clean.is_clean(), "{}", clean.render(20));
    assert_eq!(clean.rows_compared(), 250 + 130, "{clean:?}");

    // Drift on both kinds of key, found by key, and repaired.
    rig.target_sql("DELETE FROM global_translations WHERE recipe_id = 7 AND lang = 'en'")
        .await;
    rig.target_sql("UPDATE global_tags SET label = 'by hand' WHERE slug = 'tag-014-ü'")
        .await;
    rig.target_sql(
        "INSERT INTO global_tags (slug, label) VALUES ('zz-extra', 'not in the source')",
    )
    .await;
    let found = check().await.unwrap();
    let mut differences = found.differences.clone();
    differences.sort_by_key(|d| format!("{d:?}"));
    let mut want = vec![
        Difference::Missing {
            table: "global_translations".into(),
            key: vec!["7".into(), "en".into()],
        },
        Difference::Different {
            table: "global_tags".into(),
            key: vec!["tag-014-ü".into()],
            columns: vec!["label".into()],
        },
        Difference::Extra {
            table: "global_tags".into(),
            key: vec!["zz-extra".into()],
        },
    ];
    want.sort_by_key(|d| format!("{d:?}"));
    assert_eq!(differences, want, "{}", found.render(20));
    let fixed = repair(&engine(), &capture, &found.differences)
        .await
        .unwrap();
    assert_eq!(
        (fixed.rewritten, fixed.deleted, fixed.not_repaired.len()),
        (2, 1, 0),
        "{fixed:?}"
    );
    let again = check().await.unwrap();
    assert!(again.is_clean(), "{}", again.render(20));
}

async fn a_sequence_at_or_below_the_source_keys_fails_and_is_raised<T: TestTarget>() {
    let rig = loaded::<T>().await;
    let check = |raise| {
        dms_cdc::reconcile::sequences(
            &rig.engine.source,
            &rig.engine.target,
            &rig.engine.mapping,
            raise,
        )
    };
    // No key column is filled by a sequence: nothing to check.
    assert_eq!(check(false).await.unwrap(), vec![]);
    rig.target_sql(
        &T::AUTO_INCREMENT
            .replace("{table}", "global_recipes")
            .replace("{column}", "legacy_id"),
    )
    .await;
    // The source holds recipes up to 300; the target's sequence gives at
    // most the greatest published one + 1 (or 1: a new identity).
    let before = check(false).await.unwrap();
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(
        (
            before[0].table.as_str(),
            before[0].column.as_str(),
            before[0].source_max
        ),
        ("global_recipes", "legacy_id", Some(300))
    );
    assert!(!before[0].is_clear(), "{before:?}");
    let raised = check(true).await.unwrap();
    assert!(raised[0].raised && raised[0].is_clear(), "{raised:?}");
    assert_eq!(raised[0].next, 301, "{raised:?}");
    let after = check(false).await.unwrap();
    assert!(after[0].is_clear() && !after[0].raised, "{after:?}");
}
