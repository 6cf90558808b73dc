//! The whole local pipeline: a MariaDB source's binlog -> `capture` (DMS
//! format) -> the Kinesis emulator (2 shards) -> `consume` (the event source
//! mapping) -> the engine -> a MariaDB target, with capture and consume each
//! restarted mid-run. After draining, the target must equal the mapping of the
//! final source state, row for row.

mod support;

use std::time::Duration;

use dms_cdc::capture::{current_position, BinlogPosition, Capture, CaptureOptions};
use dms_cdc::consume::{ConsumeOptions, Consumer};
use dms_cdc::local::Kinesalite;
use dms_cdc::stream::{client, ensure_stream, put_ordered};
use support::workload::{assert_target_equals_source, workload, Lcg, World};
use support::{rig, Rig};

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
    let target = current_position(rig.engine.source.pool()).await.unwrap();
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

    let mut position = current_position(rig.engine.source.pool()).await.unwrap();
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

    assert_target_equals_source(&rig, &world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_fixture_replays_to_the_same_target_as_the_live_run() {
    let live = rig(100).await;
    let replayed = rig(100).await;
    let kinesalite = Kinesalite::start().unwrap();
    let kinesis = client(Some(&kinesalite.endpoint())).await;
    let arn = ensure_stream(&kinesis, "pipeline", 2).await.unwrap();
    let start = current_position(live.engine.source.pool()).await.unwrap();
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
    let engine = dms_cdc::engine::Engine::new(
        replayed.engine.mapping.clone(),
        replayed.engine.transforms.clone(),
        live.engine.source.clone(),
        dms_cdc::target::MysqlTarget::new(replayed.target_pool.clone(), "replay", 100),
        dms_cdc::engine::Settings {
            function_name: "replay".into(),
            chunk_size: 100,
        },
    );
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
