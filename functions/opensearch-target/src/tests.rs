//! The handler called directly with a `LambdaEvent` built from a recorded
//! fixture: a throwaway MariaDB source, a throwaway OpenSearch node.

use std::path::Path;

use aws_lambda_events::event::kinesis::KinesisEvent;
use dms_cdc::lambda::{Config, ENV_SOURCE_URL, ENV_TARGET_URL};
use dms_cdc::local::MariaDb;
use dms_cdc::opensearch::local::OpenSearch as Node;
use lambda_runtime::{Context, LambdaEvent};

use super::*;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn config(vars: &[(&str, String)]) -> Config {
    Config::from_env(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap()
}

#[test]
fn the_deployed_mapping_is_the_sample_mapping() {
    let fixture = std::fs::read_to_string(repo().join("fixtures/mapping.toml")).unwrap();
    assert_eq!(
        MAPPING, fixture,
        "functions/opensearch-target/mapping.toml must match fixtures/mapping.toml"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_answers_a_fixture_event_and_a_node_that_is_down_fails_retryably() {
    let source = MariaDb::start(1).unwrap();
    source
        .run_file(&repo().join("fixtures/source.sql"))
        .unwrap();
    let mut node = Node::start().unwrap();
    let url = format!("{}?replicas=0", node.url());
    let function = OpenSearchFunction::init(
        config(&[
            (ENV_SOURCE_URL, source.url("recipes_src")),
            (ENV_TARGET_URL, url),
            ("AWS_LAMBDA_FUNCTION_NAME", "opensearch-target".to_owned()),
        ]),
        MAPPING,
        transforms(),
    )
    .await
    .unwrap();

    let bytes = std::fs::read(repo().join("fixtures/events/01-load.json")).unwrap();
    let event: KinesisEvent = serde_json::from_slice(&bytes).unwrap();
    let response = handler(
        &function,
        LambdaEvent::new(event.clone().into(), Context::default()),
    )
    .await
    .unwrap();
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    // The node goes away: the batch fails from its first record, retryably.
    node.kill();
    let bytes = std::fs::read(repo().join("fixtures/events/02-insert-update-delete.json")).unwrap();
    let event: KinesisEvent = serde_json::from_slice(&bytes).unwrap();
    let first = event.records[0].kinesis.sequence_number.clone();
    let response = handler(
        &function,
        LambdaEvent::new(event.into(), Context::default()),
    )
    .await
    .unwrap();
    assert_eq!(response.batch_item_failures.len(), 1, "{response:?}");
    assert_eq!(
        response.batch_item_failures[0].item_identifier.as_deref(),
        Some(first.as_str())
    );
}
