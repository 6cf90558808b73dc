//! The migration lifecycle into a real OpenSearch node, through the
//! `dms-cdc` binary: `index create`, `backfill`, `reconcile` (0
//! differences), then a blue/green rebuild: `index create` of generation 2
//! beside the aliased generation 1, a backfill and a reconcile of it
//! directly (`index=concrete`) while readers still see generation 1,
//! `index swap` (readers see generation 2 at once, generation 1 is kept),
//! and `index swap --delete-old` (it is gone).

mod support;

use std::process::Command;

use dms_cdc::local::MariaDb;
use dms_cdc::opensearch::local::OpenSearch;
use support::{cli, root};

/// The status of `GET path` on the node.
fn status(node: &OpenSearch, path: &str) -> u16 {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{}{path}", node.url()))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn backfill_reconcile_and_a_blue_green_rebuild_through_the_binary() {
    let source = MariaDb::start(1).unwrap();
    source
        .run_file(&root().join("fixtures/source.sql"))
        .unwrap();
    source
        .run_sql(&format!(
            "USE recipes_src; {}",
            support::generated::source_sql(30, 120)
        ))
        .unwrap();
    let node = OpenSearch::start().unwrap();
    let source_url = source.url("recipes_src");
    let v1 = format!("{}?replicas=0", node.url());
    let v2 = format!("{}?replicas=0&index-version=2&index=concrete", node.url());
    let run = |args: &[&str]| {
        let (code, out) = cli(args);
        assert_eq!(code, 0, "dms-cdc {}:\n{out}", args.join(" "));
        out
    };
    let load = |target: &str, function: &str| {
        run(&[
            "backfill",
            "--mapping",
            "fixtures/mapping.toml",
            "--source",
            &source_url,
            "--target",
            target,
            "--function-name",
            function,
            "--chunk-size",
            "50",
            "--progress",
            "none",
        ])
    };
    let check = |target: &str| {
        run(&[
            "reconcile",
            "--mapping",
            "fixtures/mapping.toml",
            "--source",
            &source_url,
            "--target",
            target,
            "--function-name",
            "search",
            "--chunk-size",
            "40",
        ])
    };

    let created = run(&[
        "index",
        "create",
        "--mapping",
        "fixtures/mapping.toml",
        "--target",
        &v1,
    ]);
    assert!(
        created.contains("global_recipes-v1: ready (alias global_recipes -> global_recipes-v1)"),
        "{created}"
    );
    load(&v1, "search");
    let clean = check(&v1);
    assert!(clean.contains("90 rows compared, 0 differences"), "{clean}");

    // The source changes; generation 2 is built beside generation 1.
    source
        .run_sql("UPDATE recipes_src.recipes SET title = 'renamed' WHERE id = 2")
        .unwrap();
    let created = run(&[
        "index",
        "create",
        "--mapping",
        "fixtures/mapping.toml",
        "--target",
        &v2,
    ]);
    assert!(
        created.contains("global_recipes-v2: ready (alias global_recipes -> global_recipes-v1)"),
        "{created}"
    );
    // Its own progress lanes: generation 1's finished lanes are not its.
    load(&v2, "search-v2");
    let rebuilt = check(&v2);
    assert!(rebuilt.contains("0 differences"), "{rebuilt}");
    // Readers still see generation 1, one rename behind.
    let stale = cli(&[
        "reconcile",
        "--mapping",
        "fixtures/mapping.toml",
        "--source",
        &source_url,
        "--target",
        &v1,
        "--function-name",
        "search",
    ]);
    assert_eq!(stale.0, 1, "{}", stale.1);
    assert!(
        stale.1.contains("different global_recipes 2: title"),
        "{}",
        stale.1
    );

    let swapped = run(&[
        "index",
        "swap",
        "--mapping",
        "fixtures/mapping.toml",
        "--target",
        &format!("{}?index-version=2", node.url()),
    ]);
    assert!(
        swapped.contains("global_recipes: global_recipes-v1 -> global_recipes-v2"),
        "{swapped}"
    );
    let clean = check(&v1);
    assert!(clean.contains("0 differences"), "{clean}");
    assert_eq!(
        status(&node, "/global_recipes-v1"),
        200,
        "generation 1 is kept"
    );

    let deleted = run(&[
        "index",
        "swap",
        "--delete-old",
        "--mapping",
        "fixtures/mapping.toml",
        "--target",
        &format!("{}?index-version=2", node.url()),
    ]);
    assert!(deleted.contains("(deleted global_recipes-v1)"), "{deleted}");
    assert_eq!(status(&node, "/global_recipes-v1"), 404);
    assert_eq!(status(&node, "/global_recipes"), 200);
}

/// Published recipes the alias holds (`_count` through the alias).
async fn count(target: &dms_cdc::opensearch::OpenSearchTarget) -> u64 {
    let answer = target
        .client()
        .send(
            http::Method::GET,
            "/global_recipes/_count",
            "application/json",
            Vec::new(),
            "count",
        )
        .await
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&answer.body).unwrap()["count"]
        .as_u64()
        .unwrap_or(0)
}

/// A DMS update record of recipe `id` committed now (the source's clock is
/// this machine's), carrying only its key.
fn now_record(id: u64) -> Vec<u8> {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    support::record_in(
        "recipes_src",
        "recipes",
        "update",
        serde_json::json!({ "id": id }),
        None,
        &now,
    )
}

/// The stream: some recipes' titles changed at the source, then a record
/// of each change (its key; the engine re-reads the row), applied.
async fn stream_round<T: dms_cdc::target::Target>(
    source: &MariaDb,
    engine: &dms_cdc::engine::Engine<dms_cdc::source::MysqlSource, T>,
    round: u64,
    seq: &mut u64,
) {
    source
        .run_sql(&format!(
            "UPDATE recipes_src.recipes SET title = CONCAT('round {round} ', id) WHERE id % 7 = {}",
            round % 7
        ))
        .unwrap();
    let batch: Vec<dms_cdc::dms::Delivery> = (1..=120u64)
        .filter(|id| id % 7 == round % 7)
        .map(|id| {
            *seq += 1;
            dms_cdc::dms::Delivery {
                shard_id: dms_cdc::position::ShardId("shardId-000000000000".into()),
                sequence_number: dms_cdc::position::SequenceNumber::parse(&format!(
                    "4959{:020}",
                    *seq
                ))
                .unwrap(),
                partition_key: "k".into(),
                approximate_arrival_ms: None,
                data: now_record(id),
            }
        })
        .collect();
    let report = engine.process(&batch).await;
    assert_eq!(report.retry_error, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_beside_the_stream_swaps_without_readers_seeing_a_partial_index() {
    use dms_cdc::backfill::{backfill, roots_only, BackfillOptions};
    use dms_cdc::capture::CaptureOptions;
    use dms_cdc::engine::{Engine, Settings};
    use dms_cdc::mapping::{Mapping, Transforms};
    use dms_cdc::opensearch::{Config, OpenSearchTarget};
    use dms_cdc::reconcile::{reconcile, ReconcileOptions};
    use dms_cdc::source::{pool, MysqlSource};

    let source = MariaDb::start(1).unwrap();
    source
        .run_file(&root().join("fixtures/source.sql"))
        .unwrap();
    source
        .run_sql(&format!(
            "USE recipes_src; {}",
            support::generated::source_sql(30, 120)
        ))
        .unwrap();
    let node = OpenSearch::start().unwrap();
    let transforms = Transforms::standard();
    let mapping = Mapping::load(&root().join("fixtures/mapping.toml"), &transforms).unwrap();
    let capture = CaptureOptions::from_mapping(&mapping);
    let mysql = MysqlSource::from(pool(&source.url("recipes_src"), 4).unwrap());
    let target = |params: &str, function: &str| {
        OpenSearchTarget::new(
            Config::from_url(&format!("{}?replicas=0{params}", node.url())).unwrap(),
            function,
        )
        .unwrap()
    };
    let engine = |target: OpenSearchTarget, mapping: Mapping, function: &str| {
        Engine::new(
            mapping,
            transforms.clone(),
            mysql.clone(),
            target,
            Settings {
                function_name: function.into(),
                chunk_size: 100,
            },
        )
    };
    let options = BackfillOptions {
        chunk: 25,
        ..BackfillOptions::default()
    };

    // Generation 1: loaded, then fed by the stream.
    let v1 = target("", "search");
    v1.prepare(&mapping).await.unwrap();
    let load_v1 = engine(v1.clone(), roots_only(&mapping), "search");
    backfill(&load_v1, &capture, &options, &|_| {})
        .await
        .unwrap();
    let stream_v1 = engine(v1.clone(), mapping.clone(), "search");
    let mut seq = 0u64;
    stream_round(&source, &stream_v1, 1, &mut seq).await;
    let _ = v1
        .client()
        .send(
            http::Method::POST,
            "/_refresh",
            "application/json",
            Vec::new(),
            "refresh",
        )
        .await
        .unwrap();
    let full = count(&v1).await;
    assert_eq!(full, 60, "the published recipes");

    // A reader searches through the alias the whole time.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (stop, reader) = (stop.clone(), v1.clone());
        tokio::spawn(async move {
            let (mut least, mut reads) = (u64::MAX, 0u64);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                least = least.min(count(&reader).await);
                reads += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            (least, reads)
        })
    };

    // Generation 2 is created; the stream writes it from now on while the
    // backfill loads it (each in its own task, at once).
    let v2 = target("&index-version=2&index=concrete", "search");
    v2.prepare(&mapping).await.unwrap();
    let stream_v2 = engine(v2.clone(), mapping.clone(), "search");
    let load_v2 = engine(
        target("&index-version=2&index=concrete", "search-v2"),
        roots_only(&mapping),
        "search-v2",
    );
    let streaming = async {
        for round in 2..=6 {
            stream_round(&source, &stream_v2, round, &mut seq).await;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let (reports, ()) = tokio::join!(backfill(&load_v2, &capture, &options, &|_| {}), streaming);
    let loaded: u64 = reports.unwrap().iter().map(|r| r.rows).sum();
    assert_eq!(loaded, 150, "every root row of generation 2's backfill");

    // The swap: readers move to generation 2 at once; the stream goes on
    // through the alias.
    let swap = target("&index-version=2", "search");
    let swapped = swap.swap(&mapping, false).await.unwrap();
    assert!(
        swapped
            .iter()
            .all(|s| s.from.len() == 1 && s.to.ends_with("-v2")),
        "{swapped:?}"
    );
    let stream_alias = engine(swap.clone(), mapping.clone(), "search");
    for round in 7..=8 {
        stream_round(&source, &stream_alias, round, &mut seq).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (least, reads) = reader.await.unwrap();
    assert!(reads > 10, "the reader read {reads} times");
    assert_eq!(
        least, full,
        "a search through the alias saw {least} of {full} recipes"
    );

    // Generation 2, through the alias, is what the mapping makes of the source.
    let report = reconcile(
        &mysql,
        &swap,
        &mapping,
        &transforms,
        &capture,
        &ReconcileOptions::default(),
    )
    .await
    .unwrap();
    assert!(report.is_clean(), "{}", report.render(20));
    assert_eq!(
        status(&node, "/global_recipes-v1"),
        200,
        "generation 1 is kept"
    );
}
