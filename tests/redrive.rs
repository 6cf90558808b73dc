//! `dms-cdc redrive`.
//!
//! The error paths the emulator cannot produce (expired iterators,
//! throttling, data past retention, closed shards) run against the AWS SDK's
//! static replay client: every test scripts the exact GetShardIterator and
//! GetRecords exchanges, then asserts the requests the reader made and the
//! outcome it reported. The end-to-end test runs against kinesalite, moto's
//! SQS server and throwaway MariaDB servers.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use base64::Engine as _;
use dms_cdc::consume::{ConsumeOptions, Consumer};
use dms_cdc::engine::{Engine, Settings};
use dms_cdc::local::{free_port, Kinesalite};
use dms_cdc::mapping::{Mapping, Transforms};
use dms_cdc::position::{SequenceNumber, ShardId};
use dms_cdc::redrive::{
    parse_on_failure, redrive_range, Apply, Edge, LostRange, Progress, Range, RangeReader,
    RangeStatus, ReadError, ReadLimits, Redrive, Start,
};
use dms_cdc::source::pool;
use dms_cdc::stream::{client, ensure_stream, put_ordered};
use dms_cdc::target::MysqlTarget;
use serde_json::{json, Value};
use support::moto::moto;
use support::{rig, root};

// ------------------------------------------------------------------ replay client helpers

const SHARD: &str = "shardId-000000000000";
const STREAM: &str = "orders";

fn seq(n: u32) -> SequenceNumber {
    SequenceNumber::parse(&format!(
        "4959033827149025660855969253836157109592157598913658{n:04}"
    ))
    .unwrap()
}

fn request(target: &str, body: Value) -> http::Request<SdkBody> {
    http::Request::builder()
        .method("POST")
        .uri("https://kinesis.us-east-1.amazonaws.com/")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("Kinesis_20131202.{target}"))
        .body(SdkBody::from(body.to_string()))
        .unwrap()
}

fn response(status: u16, body: Value) -> http::Response<SdkBody> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .body(SdkBody::from(body.to_string()))
        .unwrap()
}

fn iterator_at(n: u32, iterator: &str) -> ReplayEvent {
    ReplayEvent::new(
        request(
            "GetShardIterator",
            json!({"StreamName": STREAM, "ShardId": SHARD, "ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": seq(n).as_str()}),
        ),
        response(200, json!({"ShardIterator": iterator})),
    )
}

fn iterator_after(n: u32, iterator: &str) -> ReplayEvent {
    ReplayEvent::new(
        request(
            "GetShardIterator",
            json!({"StreamName": STREAM, "ShardId": SHARD, "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": seq(n).as_str()}),
        ),
        response(200, json!({"ShardIterator": iterator})),
    )
}

fn payload(n: u32) -> Vec<u8> {
    support::record(
        "insert",
        "users",
        support::user(u64::from(n), &format!("u{n}")),
        None,
    )
}

/// A GetRecords exchange: records `ns`, then `next` (None: the shard is closed).
fn records(iterator: &str, ns: &[u32], next: Option<&str>, behind: i64) -> ReplayEvent {
    let recs: Vec<Value> = ns
        .iter()
        .map(|n| {
            json!({
                "SequenceNumber": seq(*n).as_str(),
                "ApproximateArrivalTimestamp": 1_795_000_000.0 + f64::from(*n),
                "Data": base64::engine::general_purpose::STANDARD.encode(payload(*n)),
                "PartitionKey": format!("recipes_src.users.{n}")
            })
        })
        .collect();
    let mut body = json!({"Records": recs, "MillisBehindLatest": behind});
    if let Some(next) = next {
        body["NextShardIterator"] = json!(next);
    }
    ReplayEvent::new(
        request(
            "GetRecords",
            json!({"ShardIterator": iterator, "Limit": 500}),
        ),
        response(200, body),
    )
}

fn failure(operation: &str, body: Value, error: &str, message: &str) -> ReplayEvent {
    ReplayEvent::new(
        request(operation, body),
        response(400, json!({"__type": error, "message": message})),
    )
}

fn get_records_error(iterator: &str, error: &str, message: &str) -> ReplayEvent {
    failure(
        "GetRecords",
        json!({"ShardIterator": iterator, "Limit": 500}),
        error,
        message,
    )
}

/// A Kinesis client over the replay client; the SDK's own retries are off,
/// so every request is one the reader decided to make.
fn replay_client(events: Vec<ReplayEvent>) -> (aws_sdk_kinesis::Client, StaticReplayClient) {
    let replay = StaticReplayClient::new(events);
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            "test", "test", None, None, "replay",
        ))
        .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
        .http_client(replay.clone())
        .build();
    (aws_sdk_kinesis::Client::from_conf(config), replay)
}

fn range(start: u32, end: u32) -> Range {
    Range {
        stream: STREAM.into(),
        shard: ShardId(SHARD.into()),
        start: Start::At(seq(start)),
        end: Some(seq(end)),
    }
}

fn fast_limits() -> ReadLimits {
    ReadLimits {
        min_interval: Duration::ZERO,
        backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        max_throttled: 3,
        ..ReadLimits::default()
    }
}

/// Reads the whole range; returns the sequence numbers per batch and the result.
async fn read_all(
    client: &aws_sdk_kinesis::Client,
    range: Range,
    limits: ReadLimits,
) -> (Vec<Vec<u32>>, Vec<LostRange>, Option<ReadError>, bool) {
    let mut reader = RangeReader::new(client, range, limits);
    let mut batches = Vec::new();
    let error = loop {
        match reader.next_batch().await {
            Ok(Some(b)) => batches.push(
                b.iter()
                    .map(|d| d.sequence_number.as_str()[52..].parse::<u32>().unwrap())
                    .collect(),
            ),
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    (batches, reader.lost().to_vec(), error, reader.reached_end())
}

fn lost(from: Edge, to: Edge) -> (Edge, Edge) {
    (from, to)
}

fn edges(l: &[LostRange]) -> Vec<(Edge, Edge)> {
    l.iter().map(|l| (l.from.clone(), l.to.clone())).collect()
}

// ------------------------------------------------------------------ replay tests

#[tokio::test]
async fn reads_a_range_inclusively_across_pages_and_stops_after_the_end() {
    let (client, replay) = replay_client(vec![
        iterator_at(10, "it-1"),
        records("it-1", &[10, 17], Some("it-2"), 1000),
        // The page holds the end (30) and a record after it, which is not applied.
        records("it-2", &[30, 31], Some("it-3"), 0),
    ]);
    let (batches, lost, error, reached) = read_all(&client, range(10, 30), fast_limits()).await;
    replay.assert_requests_match(&[]);
    assert!(error.is_none());
    assert!(lost.is_empty());
    assert!(reached);
    assert_eq!(batches, vec![vec![10, 17], vec![30]]);
}

#[tokio::test]
async fn an_expired_iterator_is_reacquired_after_the_last_record_seen() {
    let (client, replay) = replay_client(vec![
        iterator_at(10, "it-1"),
        records("it-1", &[10, 11], Some("it-2"), 5000),
        get_records_error(
            "it-2",
            "ExpiredIteratorException",
            "Iterator expired. The iterator was created at time ... while right now it is ...",
        ),
        iterator_after(11, "it-3"),
        records("it-3", &[12, 13], Some("it-4"), 0),
    ]);
    let mut reader = RangeReader::new(&client, range(10, 13), fast_limits());
    let mut got = Vec::new();
    while let Some(b) = reader.next_batch().await.unwrap() {
        got.extend(b.into_iter().map(|d| d.sequence_number));
    }
    replay.assert_requests_match(&[]);
    assert_eq!(got, vec![seq(10), seq(11), seq(12), seq(13)]);
    assert_eq!(reader.stats().renewals, 1);
    assert_eq!(reader.stats().get_shard_iterator, 2);
    assert!(reader.lost().is_empty());
}

#[tokio::test]
async fn throttling_backs_off_and_retries_the_same_iterator() {
    let throttled = || {
        get_records_error(
            "it-1",
            "ProvisionedThroughputExceededException",
            "Rate exceeded for shard shardId-000000000000 in stream orders under account 000000000000.",
        )
    };
    let (client, replay) = replay_client(vec![
        iterator_at(10, "it-1"),
        throttled(),
        throttled(),
        records("it-1", &[10, 11], Some("it-2"), 0),
    ]);
    let mut limits = fast_limits();
    limits.min_interval = Duration::from_millis(30);
    let started = Instant::now();
    let (batches, lost, error, reached) = read_all(&client, range(10, 11), limits).await;
    let elapsed = started.elapsed();
    replay.assert_requests_match(&[]);
    assert!(error.is_none(), "{error:?}");
    assert!(lost.is_empty());
    assert!(reached);
    assert_eq!(batches, vec![vec![10, 11]]);
    // 20 ms then 40 ms of backoff, and never two calls within 30 ms.
    assert!(elapsed >= Duration::from_millis(60 + 30), "{elapsed:?}");
}

#[tokio::test]
async fn throttled_beyond_the_limit_is_a_retryable_failure_not_a_loss() {
    let throttled = || {
        get_records_error(
            "it-1",
            "ProvisionedThroughputExceededException",
            "Rate exceeded",
        )
    };
    let (client, replay) = replay_client(vec![
        iterator_at(10, "it-1"),
        throttled(),
        throttled(),
        throttled(),
        throttled(),
    ]);
    let (batches, lost, error, _) = read_all(&client, range(10, 11), fast_limits()).await;
    replay.assert_requests_match(&[]);
    assert!(batches.is_empty());
    assert!(lost.is_empty());
    match error {
        Some(ReadError::Throttled {
            operation,
            attempts,
            ..
        }) => {
            assert_eq!(operation, "GetRecords");
            assert_eq!(attempts, 4);
        }
        other => panic!("expected Throttled, got {other:?}"),
    }
}

#[tokio::test]
async fn an_iterator_that_starts_after_the_range_start_reports_the_trimmed_records() {
    // Retention passed: AT_SEQUENCE_NUMBER silently starts at the trim horizon, 15.
    let (client, replay) = replay_client(vec![
        iterator_at(10, "it-1"),
        records("it-1", &[15, 16, 20], Some("it-2"), 0),
    ]);
    let (batches, lost_ranges, error, reached) =
        read_all(&client, range(10, 20), fast_limits()).await;
    replay.assert_requests_match(&[]);
    assert!(error.is_none());
    assert!(reached);
    assert_eq!(batches, vec![vec![15, 16, 20]], "what is left is applied");
    assert_eq!(
        edges(&lost_ranges),
        vec![lost(Edge::Including(seq(10)), Edge::Excluding(seq(15)))]
    );
    let text = lost_ranges[0].to_string();
    assert!(
        text.contains(seq(10).as_str()) && text.contains(seq(15).as_str()),
        "{text}"
    );
}

#[tokio::test]
async fn a_range_entirely_past_retention_is_lost_whole() {
    let (client, replay) = replay_client(vec![
        iterator_at(10, "it-1"),
        records("it-1", &[40], Some("it-2"), 0),
    ]);
    let (batches, lost_ranges, error, _) = read_all(&client, range(10, 20), fast_limits()).await;
    replay.assert_requests_match(&[]);
    assert!(error.is_none());
    assert!(batches.is_empty());
    assert_eq!(
        edges(&lost_ranges),
        vec![lost(Edge::Including(seq(10)), Edge::Including(seq(20)))]
    );
}

#[tokio::test]
async fn get_shard_iterator_refusing_the_position_is_a_loss() {
    let (client, replay) = replay_client(vec![failure(
        "GetShardIterator",
        json!({"StreamName": STREAM, "ShardId": SHARD, "ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": seq(10).as_str()}),
        "InvalidArgumentException",
        "StartingSequenceNumber 49590338271490256608559692538361571095921575989136580010 used in GetShardIterator on shard shardId-000000000000 in stream orders under account 000000000000 is invalid because it did not come from this stream.",
    )]);
    let (batches, lost_ranges, error, _) = read_all(&client, range(10, 20), fast_limits()).await;
    replay.assert_requests_match(&[]);
    assert!(error.is_none());
    assert!(batches.is_empty());
    assert_eq!(
        edges(&lost_ranges),
        vec![lost(Edge::Including(seq(10)), Edge::Including(seq(20)))]
    );
    assert!(lost_ranges[0].reason.contains("InvalidArgumentException"));
}

#[tokio::test]
async fn empty_reads_that_reach_the_newest_record_without_the_range_are_a_loss() {
    let (client, replay) = replay_client(vec![
        iterator_at(10, "it-1"),
        // Behind: keep reading.
        records("it-1", &[], Some("it-2"), 86_400_000),
        // At the newest record, and the range never came.
        records("it-2", &[], Some("it-3"), 0),
    ]);
    let (batches, lost_ranges, error, reached) =
        read_all(&client, range(10, 20), fast_limits()).await;
    replay.assert_requests_match(&[]);
    assert!(error.is_none());
    assert!(!reached);
    assert!(batches.is_empty());
    assert_eq!(
        edges(&lost_ranges),
        vec![lost(Edge::Including(seq(10)), Edge::Including(seq(20)))]
    );
}

#[tokio::test]
async fn a_closed_parent_shard_is_read_to_its_end() {
    // A resharded stream: the range lies in the closed parent, whose last
    // page has no NextShardIterator.
    let (client, replay) = replay_client(vec![
        iterator_at(10, "it-1"),
        records("it-1", &[10, 11], Some("it-2"), 0),
        records("it-2", &[12], None, 0),
    ]);
    let (batches, lost_ranges, error, reached) =
        read_all(&client, range(10, 12), fast_limits()).await;
    replay.assert_requests_match(&[]);
    assert!(error.is_none());
    assert!(reached);
    assert!(lost_ranges.is_empty());
    assert_eq!(batches, vec![vec![10, 11], vec![12]]);
}

#[tokio::test]
async fn a_shard_that_closes_before_the_end_reports_the_missing_tail() {
    let (client, replay) = replay_client(vec![
        iterator_at(10, "it-1"),
        records("it-1", &[10, 11], None, 0),
    ]);
    let (batches, lost_ranges, error, reached) =
        read_all(&client, range(10, 20), fast_limits()).await;
    replay.assert_requests_match(&[]);
    assert!(error.is_none());
    assert!(!reached);
    assert_eq!(batches, vec![vec![10, 11]]);
    assert_eq!(
        edges(&lost_ranges),
        vec![lost(Edge::Excluding(seq(11)), Edge::Including(seq(20)))]
    );
    assert!(lost_ranges[0].reason.contains("closed"));
}

#[tokio::test]
async fn a_dry_run_reports_planned_writes_and_the_lost_part_of_a_range() {
    let (client, replay) = replay_client(vec![
        iterator_at(10, "it-1"),
        records("it-1", &[12, 13], Some("it-2"), 0),
    ]);
    let transforms = Transforms::standard();
    let mapping = Mapping::load(&root().join("fixtures/mapping.toml"), &transforms).unwrap();
    let report = redrive_range(
        &client,
        range(10, 13),
        &fast_limits(),
        Apply::DryRun {
            mapping: &mapping,
            transforms: &transforms,
        },
        &mut Progress::hidden(),
    )
    .await;
    replay.assert_requests_match(&[]);
    assert_eq!(report.status(), RangeStatus::Lost);
    assert_eq!(report.records, 2);
    let users = &report.planned["global_users"];
    assert_eq!((users.from_image, users.requery, users.deletes), (2, 0, 0));
    assert_eq!(report.stats.get_shard_iterator, 1);
    assert_eq!(report.stats.get_records, 1);
    let text = report.render();
    assert!(text.contains("LOST"), "{text}");
    assert!(
        text.contains("would write global_users: 2 from images"),
        "{text}"
    );
}

#[test]
fn on_failure_records_parse_from_consume_sqs_and_sns_shapes() {
    let shard = ShardId(SHARD.into());
    let batch: Vec<dms_cdc::dms::Delivery> = [10, 11, 12]
        .iter()
        .map(|n| dms_cdc::dms::Delivery {
            shard_id: shard.clone(),
            sequence_number: seq(*n),
            partition_key: "k".into(),
            approximate_arrival_ms: Some(1_795_000_000_000),
            data: payload(*n),
        })
        .collect();
    let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/orders";
    let record =
        dms_cdc::consume::on_failure_record(arn, &shard, &batch, 4, "RetryAttemptsExhausted", None);
    let parsed = parse_on_failure(&record.to_string()).unwrap();
    assert_eq!(parsed.shard, shard);
    assert_eq!(parsed.start, seq(10));
    assert_eq!(parsed.end, seq(12));
    assert_eq!(parsed.batch_size, Some(3));
    assert_eq!(parsed.stream_arn.as_deref(), Some(arn));
    assert_eq!(parsed.condition.as_deref(), Some("RetryAttemptsExhausted"));
    assert_eq!(dms_cdc::redrive::stream_name_of_arn(arn), Some("orders"));
    // Through an SNS topic subscribed by a queue without raw delivery.
    let sns = json!({"Type": "Notification", "MessageId": "m", "Message": record.to_string()});
    assert_eq!(parse_on_failure(&sns.to_string()).unwrap(), parsed);
    // Not an on-failure record: an error that says why.
    let err = parse_on_failure(r#"{"hello": 1}"#).unwrap_err();
    assert!(err.contains("KinesisBatchInfo"), "{err}");
    // Numeric comparison, not text: 9 < 10.
    let mut swapped = record.clone();
    swapped["KinesisBatchInfo"]["startSequenceNumber"] = json!("10");
    swapped["KinesisBatchInfo"]["endSequenceNumber"] = json!("9");
    assert!(parse_on_failure(&swapped.to_string()).is_err());
}

// ------------------------------------------------------------------ against the emulators

fn user_record(id: u64, name: &str, commit: &str) -> (String, Vec<u8>) {
    let doc = json!({
        "data": {"id": id, "name": name, "email": format!("U{id}@Example.COM"), "created_at": "2026-01-02T03:04:05Z", "is_active": 1},
        "metadata": {
            "timestamp": commit,
            "record-type": "data",
            "operation": "insert",
            "partition-key-type": "primary-key",
            "schema-name": "recipes_src",
            "table-name": "users",
            "transaction-id": id,
            "commit-timestamp": commit
        }
    });
    (
        format!("recipes_src.users.{id}"),
        serde_json::to_vec(&doc).unwrap(),
    )
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dms-cdc"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap()
}

async fn dump_users(rig: &support::Rig) -> Vec<(u64, String, String, Option<String>)> {
    rig.target_rows(
        "SELECT user_id, display_name, CAST(created_at AS CHAR), src_version FROM global_users ORDER BY user_id",
    )
    .await
    .iter()
    .map(|r| {
        (
            r.get::<u64, _>(0).unwrap(),
            r.get::<String, _>(1).unwrap(),
            r.get::<String, _>(2).unwrap(),
            r.get::<Option<String>, _>(3).unwrap(),
        )
    })
    .collect()
}

async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> (i64, i64) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let attrs = out.attributes().unwrap();
    let get = |a: A| attrs.get(&a).map(|v| v.parse().unwrap()).unwrap_or(0);
    (
        get(A::ApproximateNumberOfMessages),
        get(A::ApproximateNumberOfMessagesNotVisible),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_given_up_while_the_target_was_down_is_redriven_from_the_queue() {
    let kinesis = Kinesalite::start().unwrap();
    let endpoint = kinesis.endpoint();
    let kclient = client(Some(&endpoint)).await;
    let arn = ensure_stream(&kclient, STREAM, 1).await.unwrap();
    let rig = rig(100).await;
    let function = rig.engine.settings.function_name.clone();

    // 1. The target is down: consume gives the batch up and writes an on-failure record.
    let failed = put_ordered(
        &kclient,
        STREAM,
        &[
            user_record(1, "Ann", "2026-11-20T10:00:00Z"),
            user_record(2, "Bob", "2026-11-20T10:00:01Z"),
            user_record(3, "Cy", "2026-11-20T10:00:02Z"),
        ],
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let on_failure_file = dir.path().join("on-failure.jsonl");
    let state_file = dir.path().join("positions.json");
    let down_url = format!("mysql://u:p@127.0.0.1:{}/global", free_port().unwrap());
    let down_engine = Engine::new(
        rig.engine.mapping.clone(),
        rig.engine.transforms.clone(),
        rig.engine.source.clone(),
        MysqlTarget::new(pool(&down_url, 1).unwrap(), function.clone(), 100),
        Settings {
            function_name: function.clone(),
            chunk_size: 100,
        },
    );
    let mut options = ConsumeOptions::new(STREAM, &arn);
    options.maximum_retry_attempts = 1;
    options.retry_delay = Duration::from_millis(10);
    options.on_failure_file = Some(on_failure_file.clone());
    options.state_file = Some(state_file.clone());
    let summary = Consumer::new(kclient.clone(), options.clone())
        .unwrap()
        .run_until_idle(
            &down_engine,
            Duration::from_millis(800),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(summary.on_failure_count, 1);
    let line = std::fs::read_to_string(&on_failure_file).unwrap();
    let on_failure = parse_on_failure(line.trim()).unwrap();
    assert_eq!(on_failure.start, failed[0].1);
    assert_eq!(on_failure.end, failed[2].1);

    // 2. The target is back; the function moves on: a newer change of user 3
    // and a new user are applied, so the checkpoint is past the failed range.
    let later = put_ordered(
        &kclient,
        STREAM,
        &[
            user_record(3, "Cy (renamed later)", "2026-11-20T10:05:00Z"),
            user_record(4, "Di", "2026-11-20T10:05:01Z"),
        ],
    )
    .await
    .unwrap();
    Consumer::new(kclient.clone(), options)
        .unwrap()
        .run_until_idle(
            &rig.engine,
            Duration::from_millis(800),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let shard = &failed[0].0;
    assert_eq!(
        rig.engine.target.checkpoint(shard).await.unwrap(),
        Some(later[1].1.clone())
    );
    // The ordinary path skips the failed range: it is below the checkpoint.
    let ids: Vec<u64> = dump_users(&rig).await.iter().map(|u| u.0).collect();
    assert_eq!(ids, vec![3, 4]);

    // 3. A redrive while the target is still down keeps the on-failure record.
    let limits = ReadLimits {
        min_interval: Duration::from_millis(50),
        ..ReadLimits::default()
    };
    let down_redrive = Redrive {
        kinesis: &kclient,
        apply: Apply::Engine(&down_engine),
        limits: limits.clone(),
        stream: None,
        verbose: false,
    };
    let run = down_redrive
        .file(&on_failure_file, &mut Progress::hidden())
        .await
        .unwrap();
    assert_eq!(run.exit_code(), 1);
    assert_eq!((run.removed, run.kept), (0, 1));
    assert_eq!(run.ranges[0].status(), RangeStatus::Failed);
    assert_eq!(std::fs::read_to_string(&on_failure_file).unwrap(), line);

    let target_url = rig.target_db.url("global");
    let source_url = rig.source_db.url("recipes_src");
    let expected_after = |users: &[(u64, String, String, Option<String>)]| {
        let names: Vec<(u64, &str)> = users.iter().map(|u| (u.0, u.1.as_str())).collect();
        assert_eq!(
            names,
            vec![(1, "Ann"), (2, "Bob"), (3, "Cy (renamed later)"), (4, "Di")],
            "the redriven range applied; the version guard kept user 3's newer change"
        );
    };

    match moto() {
        Some(moto) => {
            // 4. Lambda's destination: the on-failure record is an SQS message.
            let sqs_endpoint = format!("http://127.0.0.1:{}", moto.port);
            let sqs = dms_cdc::redrive::sqs_client(Some(&sqs_endpoint)).await;
            let queue = sqs
                .create_queue()
                .queue_name("dms-cdc-on-failure")
                .send()
                .await
                .unwrap();
            let url = queue.queue_url().unwrap().to_owned();
            sqs.send_message()
                .queue_url(&url)
                .message_body(line.trim())
                .send()
                .await
                .unwrap();

            // Still down: the message is kept (and visible again for the next run).
            let run = down_redrive
                .sqs(
                    &sqs,
                    &url,
                    Duration::from_secs(60),
                    None,
                    &mut Progress::hidden(),
                )
                .await
                .unwrap();
            assert_eq!(run.exit_code(), 1);
            assert_eq!((run.removed, run.kept), (0, 1));
            assert_eq!(queue_depth(&sqs, &url).await, (1, 0));

            // Up: the CLI applies the range and deletes the message.
            let out = cli(&[
                "redrive",
                "--from-queue",
                &url,
                "--sqs-endpoint",
                &sqs_endpoint,
                "--endpoint",
                &endpoint,
                "--mapping",
                "fixtures/mapping.toml",
                "--source",
                &source_url,
                "--target",
                &target_url,
                "--function-name",
                &function,
                "--quiet",
            ]);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                stdout.contains("on-failure records: 1 removed, 0 kept"),
                "{stdout}"
            );
            assert!(stdout.contains("records read 3, applied 3"), "{stdout}");
            assert_eq!(queue_depth(&sqs, &url).await, (0, 0));
        }
        None => {
            // Without moto: the same through the file of on-failure records.
            let path = on_failure_file.to_str().unwrap();
            let out = cli(&[
                "redrive",
                "--from-queue",
                path,
                "--endpoint",
                &endpoint,
                "--mapping",
                "fixtures/mapping.toml",
                "--source",
                &source_url,
                "--target",
                &target_url,
                "--function-name",
                &function,
                "--quiet",
            ]);
            assert_eq!(out.status.code(), Some(0));
            assert_eq!(std::fs::read_to_string(&on_failure_file).unwrap(), "");
        }
    }
    let converged = dump_users(&rig).await;
    expected_after(&converged);
    // The checkpoint did not move backwards.
    assert_eq!(
        rig.engine.target.checkpoint(shard).await.unwrap(),
        Some(later[1].1.clone())
    );

    // 5. Idempotent: the same range again, as a manual range, changes nothing.
    let out = cli(&[
        "redrive",
        "--stream",
        STREAM,
        "--shard",
        &shard.0,
        "--from",
        failed[0].1.as_str(),
        "--to",
        failed[2].1.as_str(),
        "--endpoint",
        &endpoint,
        "--mapping",
        "fixtures/mapping.toml",
        "--source",
        &source_url,
        "--target",
        &target_url,
        "--function-name",
        &function,
        "--quiet",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(dump_users(&rig).await, converged);

    // 6. A dry run prints the planned writes per table and writes nothing.
    let out = cli(&[
        "redrive",
        "--stream",
        STREAM,
        "--shard",
        &shard.0,
        "--from",
        failed[0].1.as_str(),
        "--to",
        later[1].1.as_str(),
        "--endpoint",
        &endpoint,
        "--mapping",
        "fixtures/mapping.toml",
        "--dry-run",
        "--quiet",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("would write global_users: 4 from images, 0 re-queried, 0 deleted"),
        "{stdout}"
    );

    // 7. A manual range above records the function has not applied yet is
    // refused: it would move the checkpoint past them.
    let pending = put_ordered(
        &kclient,
        STREAM,
        &[
            user_record(5, "Ed", "2026-11-20T10:06:00Z"),
            user_record(6, "Flo", "2026-11-20T10:06:01Z"),
        ],
    )
    .await
    .unwrap();
    let out = cli(&[
        "redrive",
        "--stream",
        STREAM,
        "--shard",
        &shard.0,
        "--from",
        pending[1].1.as_str(),
        "--endpoint",
        &endpoint,
        "--mapping",
        "fixtures/mapping.toml",
        "--source",
        &source_url,
        "--target",
        &target_url,
        "--function-name",
        &function,
        "--quiet",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(pending[0].1.as_str()), "{stderr}");
    assert_eq!(dump_users(&rig).await, converged, "nothing applied");

    // `--since` reads every shard from a time to the newest record (AT_TIMESTAMP).
    let out = cli(&[
        "redrive",
        "--stream",
        STREAM,
        "--since",
        "2000-01-01 00:00:00",
        "--endpoint",
        &endpoint,
        "--mapping",
        "fixtures/mapping.toml",
        "--dry-run",
        "--quiet",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("records read 7"), "{stdout}");
    assert!(
        stdout.contains("would write global_users: 6 from images"),
        "{stdout}"
    );

    // 8. A range no longer in the stream: reported exactly, exit 3, record kept.
    let lost_file: PathBuf = dir.path().join("lost.jsonl");
    let mut gone = serde_json::from_str::<Value>(line.trim()).unwrap();
    gone["KinesisBatchInfo"]["startSequenceNumber"] = json!("1");
    gone["KinesisBatchInfo"]["endSequenceNumber"] = json!("2");
    std::fs::write(&lost_file, format!("{gone}\n")).unwrap();
    let out = cli(&[
        "redrive",
        "--from-queue",
        lost_file.to_str().unwrap(),
        "--endpoint",
        &endpoint,
        "--mapping",
        "fixtures/mapping.toml",
        "--source",
        &source_url,
        "--target",
        &target_url,
        "--function-name",
        &function,
        "--quiet",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("LOST: shard shardId-000000000000"),
        "{stdout}"
    );
    assert!(
        stdout.contains("on-failure records: 0 removed, 1 kept"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(&lost_file).unwrap(),
        format!("{gone}\n")
    );
}
