//! The handler called directly with a `LambdaEvent` built from a recorded
//! fixture, against throwaway MariaDB servers.

use std::path::Path;

use aws_lambda_events::event::kinesis::KinesisEvent;
use dms_cdc::lambda::{Config, ENV_SOURCE_URL, ENV_TARGET_URL};
use dms_cdc::local::MariaDb;
use lambda_runtime::{Context, LambdaEvent};
use mysql_async::prelude::*;

use super::*;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn the_deployed_mapping_is_the_sample_mapping() {
    let fixture = std::fs::read_to_string(repo().join("fixtures/mapping.toml")).unwrap();
    assert_eq!(
        MAPPING, fixture,
        "functions/mysql-target/mapping.toml must match fixtures/mapping.toml"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_answers_a_fixture_event() {
    let source = MariaDb::start(1).unwrap();
    let target = MariaDb::start(2).unwrap();
    source
        .run_file(&repo().join("fixtures/source.sql"))
        .unwrap();
    target
        .run_file(&repo().join("fixtures/target.sql"))
        .unwrap();
    let vars = [
        (ENV_SOURCE_URL.to_owned(), source.url("recipes_src")),
        (ENV_TARGET_URL.to_owned(), target.url("global")),
        (
            "AWS_LAMBDA_FUNCTION_NAME".to_owned(),
            "mysql-target".to_owned(),
        ),
    ];
    let config =
        Config::from_env(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).unwrap();
    let function = MysqlFunction::init(config, MAPPING, transforms())
        .await
        .unwrap();

    let bytes = std::fs::read(repo().join("fixtures/events/01-load.json")).unwrap();
    let event: KinesisEvent = serde_json::from_slice(&bytes).unwrap();
    let record_count = event.records.len();
    let response = handler(
        &function,
        LambdaEvent::new(event.into(), Context::default()),
    )
    .await
    .unwrap();
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let pool = dms_cdc::source::pool(&target.url("global"), 1).unwrap();
    let mut conn = pool.get_conn().await.unwrap();
    let users: Vec<u64> = conn
        .query("SELECT user_id FROM global_users ORDER BY user_id")
        .await
        .unwrap();
    assert_eq!(
        users.len(),
        3,
        "the three loaded users are built from their images"
    );
    let checkpoint: Option<String> = conn
        .query_first(
            "SELECT sequence_number FROM dms_cdc_checkpoint WHERE function_name = 'mysql-target'",
        )
        .await
        .unwrap();
    let last: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let last_seq = last["Records"][record_count - 1]["kinesis"]["sequenceNumber"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(checkpoint, Some(last_seq));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_is_down_is_a_retryable_batch_failure() {
    let source = MariaDb::start(1).unwrap();
    let closed_port = dms_cdc::local::free_port().unwrap();
    let vars = [
        (ENV_SOURCE_URL.to_owned(), source.url("mysql")),
        (
            ENV_TARGET_URL.to_owned(),
            format!("mysql://u:p@127.0.0.1:{closed_port}/global"),
        ),
        (
            "AWS_LAMBDA_FUNCTION_NAME".to_owned(),
            "mysql-target".to_owned(),
        ),
    ];
    let config =
        Config::from_env(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).unwrap();
    // Init does not connect: a database that is down is not a crash.
    let function = MysqlFunction::init(config, MAPPING, transforms())
        .await
        .unwrap();
    let bytes = std::fs::read(repo().join("fixtures/events/01-load.json")).unwrap();
    let event: KinesisEvent = serde_json::from_slice(&bytes).unwrap();
    let first = event.records[0].kinesis.sequence_number.clone();
    let response = handler(
        &function,
        LambdaEvent::new(event.into(), Context::default()),
    )
    .await
    .unwrap();
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier.as_deref(),
        Some(first.as_str())
    );
}
