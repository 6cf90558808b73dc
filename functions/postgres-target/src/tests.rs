//! The handler called directly with a `LambdaEvent` built from a recorded
//! fixture: a throwaway MariaDB source, a throwaway PostgreSQL target.

use std::path::Path;

use aws_lambda_events::event::kinesis::KinesisEvent;
use dms_cdc::lambda::{Config, ENV_SOURCE_URL, ENV_TARGET_URL};
use dms_cdc::local::{MariaDb, PostgreSql};
use lambda_runtime::{Context, LambdaEvent};

use super::*;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn config(vars: &[(&str, String)]) -> Config {
    Config::from_env(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap()
}

/// The function over `source` and `target`, as the environment would
/// configure it.
async fn function(
    source: String,
    target: String,
) -> Result<PostgresFunction, dms_cdc::lambda::InitError> {
    PostgresFunction::init(
        config(&[
            (ENV_SOURCE_URL, source),
            (ENV_TARGET_URL, target),
            ("AWS_LAMBDA_FUNCTION_NAME", "postgres-target".to_owned()),
        ]),
        MAPPING,
        transforms(),
    )
    .await
}

/// A throwaway PostgreSQL with the sample target tables in `global`.
fn sample_target() -> PostgreSql {
    let target = PostgreSql::start().unwrap();
    target.create_database("global").unwrap();
    target
        .run_file("global", &repo().join("fixtures/target-postgres.sql"))
        .unwrap();
    target
}

#[test]
fn the_deployed_mapping_is_the_sample_mapping() {
    let fixture = std::fs::read_to_string(repo().join("fixtures/mapping.toml")).unwrap();
    assert_eq!(
        MAPPING, fixture,
        "functions/postgres-target/mapping.toml must match fixtures/mapping.toml"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_answers_a_fixture_event() {
    let source = MariaDb::start(1).unwrap();
    source
        .run_file(&repo().join("fixtures/source.sql"))
        .unwrap();
    let target = sample_target();
    let function = function(source.url("recipes_src"), target.url("global"))
        .await
        .unwrap();

    let bytes = std::fs::read(repo().join("fixtures/events/01-load.json")).unwrap();
    let event: KinesisEvent = serde_json::from_slice(&bytes).unwrap();
    let last_seq = event
        .records
        .last()
        .unwrap()
        .kinesis
        .sequence_number
        .clone();
    let response = handler(
        &function,
        LambdaEvent::new(event.into(), Context::default()),
    )
    .await
    .unwrap();
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let (client, connection) =
        tokio_postgres::connect(&target.url("global"), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let users = client
        .query("SELECT user_id FROM global_users", &[])
        .await
        .unwrap();
    assert_eq!(
        users.len(),
        3,
        "the three loaded users are built from their images"
    );
    let checkpoint: Option<String> = client
        .query_opt(
            "SELECT sequence_number::text FROM dms_cdc_checkpoint WHERE function_name = 'postgres-target'",
            &[],
        )
        .await
        .unwrap()
        .map(|r| r.get(0));
    assert_eq!(checkpoint, Some(last_seq));
}

/// A `postgres://` source URL makes the function re-query PostgreSQL: the
/// event recorded from a PostgreSQL source lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_source_url_reads_postgresql() {
    let source = PostgreSql::start().unwrap();
    source.create_database("src").unwrap();
    for file in [
        "fixtures/source-postgres.sql",
        "fixtures/postgres-scenario/01-load.sql",
    ] {
        source.run_file("src", &repo().join(file)).unwrap();
    }
    let target = sample_target();
    let function = function(source.url("src"), target.url("global"))
        .await
        .unwrap();
    let bytes = std::fs::read(repo().join("fixtures/events-postgres/01-load.json")).unwrap();
    let event: KinesisEvent = serde_json::from_slice(&bytes).unwrap();
    let response = handler(
        &function,
        LambdaEvent::new(event.into(), Context::default()),
    )
    .await
    .unwrap();
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let (client, connection) =
        tokio_postgres::connect(&target.url("global"), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let recipes: Vec<(i64, String, Option<String>)> = client
        .query(
            "SELECT legacy_id, title, author_name FROM global_recipes ORDER BY legacy_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    // The published recipes, their authors found by re-querying PostgreSQL.
    assert!(!recipes.is_empty());
    assert!(
        recipes.iter().all(|(_, _, author)| author.is_some()),
        "{recipes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_named_by_instance_need_a_mapping_with_those_instances() {
    let error = function(
        "eu=postgres://u:p@127.0.0.1:1/src us=mysql://u:p@127.0.0.1:1/src".to_owned(),
        "postgres://u:p@127.0.0.1:1/global".to_owned(),
    )
    .await
    .err()
    .expect("init refuses it")
    .to_string();
    assert!(
        error.contains(ENV_SOURCE_URL) && error.contains("the setting names eu, us"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_is_down_is_a_retryable_batch_failure() {
    let source = MariaDb::start(1).unwrap();
    let closed_port = dms_cdc::local::free_port().unwrap();
    // Init does not connect: a database that is down is not a crash.
    let function = function(
        source.url("mysql"),
        format!("postgres://u:p@127.0.0.1:{closed_port}/global"),
    )
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

#[test]
fn a_mysql_url_for_the_target_is_a_named_configuration_error() {
    let config = config(&[
        (ENV_SOURCE_URL, "mysql://u:p@127.0.0.1:3306/src".to_owned()),
        (
            ENV_TARGET_URL,
            "mysql://u:p@127.0.0.1:3306/global".to_owned(),
        ),
        ("AWS_LAMBDA_FUNCTION_NAME", "postgres-target".to_owned()),
    ]);
    let e = config.check::<Mysql, Postgres>().unwrap_err().to_string();
    assert!(e.contains(ENV_TARGET_URL) && e.contains("postgres"), "{e}");
    assert!(!e.contains(":p@"), "{e}");
}
