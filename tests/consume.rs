//! The local event source mapping against the Kinesis emulator (kinesalite)
//! and throwaway MariaDB servers, through the real AWS SDK client.

mod support;

use std::time::Duration;

use dms_cdc::consume::{ConsumeOptions, Consumer};
use dms_cdc::engine::{Engine, Settings};
use dms_cdc::local::Kinesalite;
use dms_cdc::source::pool;
use dms_cdc::stream::{client, ensure_stream, put_ordered};
use dms_cdc::target::MysqlTarget;
use support::{record, rig, user};

fn users(from: u64, to: u64) -> Vec<(String, Vec<u8>)> {
    (from..=to)
        .map(|i| {
            (
                format!("recipes_src.users.{i}"),
                record("insert", "users", user(i, &format!("u{i}")), None),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_applies_every_shard_persists_positions_and_resumes() {
    let kinesis = Kinesalite::start().unwrap();
    let client = client(Some(&kinesis.endpoint())).await;
    let arn = ensure_stream(&client, "dms-cdc", 2).await.unwrap();
    let placed = put_ordered(&client, "dms-cdc", &users(1, 60))
        .await
        .unwrap();
    assert_eq!(placed.len(), 60);
    let shards: std::collections::BTreeSet<_> = placed.iter().map(|(s, _)| s.clone()).collect();
    assert_eq!(shards.len(), 2, "records spread over both shards");
    assert!(
        placed.iter().all(|(_, seq)| seq.as_str().len() >= 50),
        "realistic sequence numbers"
    );

    let rig = rig(100).await;
    let dir = tempfile::tempdir().unwrap();
    let mut options = ConsumeOptions::new("dms-cdc", &arn);
    options.batch_size = 25;
    options.state_file = Some(dir.path().join("positions.json"));
    let mut consumer = Consumer::new(client.clone(), options.clone()).unwrap();
    let summary = consumer
        .run_until_idle(
            &rig.engine,
            Duration::from_millis(800),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(summary.record_count, 60);
    assert_eq!(summary.on_failure_count, 0);
    assert!(summary.invocation_count >= 3, "batches of at most 25");
    let count = rig.target_rows("SELECT COUNT(*) FROM global_users").await[0]
        .get::<u64, _>(0)
        .unwrap();
    assert_eq!(count, 60);

    // A restarted consumer resumes from the persisted positions.
    put_ordered(&client, "dms-cdc", &users(61, 70))
        .await
        .unwrap();
    let mut restarted = Consumer::new(client.clone(), options).unwrap();
    let summary = restarted
        .run_until_idle(
            &rig.engine,
            Duration::from_millis(800),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(
        summary.record_count, 10,
        "only the new records are read again"
    );
    let count = rig.target_rows("SELECT COUNT(*) FROM global_users").await[0]
        .get::<u64, _>(0)
        .unwrap();
    assert_eq!(count, 70);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_down_past_the_retry_limit_writes_an_on_failure_record() {
    let kinesis = Kinesalite::start().unwrap();
    let client = client(Some(&kinesis.endpoint())).await;
    let arn = ensure_stream(&client, "down", 1).await.unwrap();
    let placed = put_ordered(&client, "down", &users(1, 5)).await.unwrap();

    let rig = rig(100).await;
    let port = dms_cdc::local::free_port().unwrap();
    let down_pool = pool(&format!("mysql://u:p@127.0.0.1:{port}/global"), 1).unwrap();
    let engine = Engine::new(
        rig.engine.mapping.clone(),
        rig.engine.transforms.clone(),
        rig.engine.source.clone(),
        MysqlTarget::new(down_pool, "down-test", 100),
        Settings {
            function_name: "down-test".into(),
            chunk_size: 100,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let mut options = ConsumeOptions::new("down", &arn);
    options.maximum_retry_attempts = 2;
    options.retry_delay = Duration::from_millis(10);
    options.on_failure_file = Some(dir.path().join("on-failure.jsonl"));
    let mut consumer = Consumer::new(client, options).unwrap();
    let summary = consumer
        .run_until_idle(&engine, Duration::from_millis(800), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(summary.on_failure_count, 1);
    assert_eq!(summary.invocation_count, 3, "the first try and two retries");
    let text = std::fs::read_to_string(dir.path().join("on-failure.jsonl")).unwrap();
    let record: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let info = &record["KinesisBatchInfo"];
    assert_eq!(info["shardId"], placed[0].0 .0.as_str());
    assert_eq!(info["startSequenceNumber"], placed[0].1.as_str());
    assert_eq!(info["endSequenceNumber"], placed[4].1.as_str());
    assert_eq!(info["batchSize"], 5);
    assert_eq!(info["streamArn"], arn.as_str());
    assert_eq!(
        record["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(record["version"], "1.0");
    assert!(record["timestamp"].is_string());
    assert!(record["responseContext"]["statusCode"].is_number());
    // Nothing was applied: the real target never saw these records.
    let count = rig.target_rows("SELECT COUNT(*) FROM global_users").await[0]
        .get::<u64, _>(0)
        .unwrap();
    assert_eq!(count, 0);
}

/// A function that fails (a function error, not a partial failure) for any
/// batch holding one poisoned sequence number, and records what it applied.
struct FailsOn {
    poison: dms_cdc::position::SequenceNumber,
    applied: std::sync::Mutex<Vec<dms_cdc::position::SequenceNumber>>,
}

impl dms_cdc::consume::BatchHandler for FailsOn {
    async fn handle(
        &self,
        batch: &[dms_cdc::dms::Delivery],
    ) -> Result<aws_lambda_events::streams::KinesisEventResponse, String> {
        if batch.iter().any(|d| d.sequence_number == self.poison) {
            return Err("Unhandled".to_owned());
        }
        self.applied
            .lock()
            .unwrap()
            .extend(batch.iter().map(|d| d.sequence_number.clone()));
        Ok(Default::default())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_errors_are_bisected_down_to_the_failing_record() {
    let kinesis = Kinesalite::start().unwrap();
    let client = client(Some(&kinesis.endpoint())).await;
    let arn = ensure_stream(&client, "bisect", 1).await.unwrap();
    let placed = put_ordered(&client, "bisect", &users(1, 8)).await.unwrap();
    let handler = FailsOn {
        poison: placed[5].1.clone(),
        applied: Default::default(),
    };
    let dir = tempfile::tempdir().unwrap();
    let mut options = ConsumeOptions::new("bisect", &arn);
    options.maximum_retry_attempts = 5;
    options.retry_delay = Duration::from_millis(1);
    options.on_failure_file = Some(dir.path().join("on-failure.jsonl"));
    let mut consumer = Consumer::new(client, options).unwrap();
    let summary = consumer
        .run_until_idle(
            &handler,
            Duration::from_millis(500),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(summary.on_failure_count, 1);
    // Everything but the poisoned record was applied, in order.
    let want: Vec<_> = placed
        .iter()
        .map(|(_, s)| s.clone())
        .filter(|s| *s != placed[5].1)
        .collect();
    assert_eq!(*handler.applied.lock().unwrap(), want);
    let text = std::fs::read_to_string(dir.path().join("on-failure.jsonl")).unwrap();
    let record: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(record["KinesisBatchInfo"]["batchSize"], 1);
    assert_eq!(
        record["KinesisBatchInfo"]["startSequenceNumber"],
        placed[5].1.as_str()
    );
    assert_eq!(
        record["KinesisBatchInfo"]["endSequenceNumber"],
        placed[5].1.as_str()
    );
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    // The shard's position is past the whole batch.
    let position = consumer
        .positions()
        .values()
        .next()
        .unwrap()
        .checkpoint
        .clone();
    assert_eq!(position, Some(placed[7].1.clone()));
}
