//! Secret rotation: the function reads its target credentials from Secrets
//! Manager (moto's server, through the real SDK client), the password of
//! the target is rotated mid-stream, and no record is quarantined or lost:
//! an authentication failure re-reads the secret and retries the batch.

mod support;

use aws_lambda_events::event::kinesis::KinesisEvent;
use dms_cdc::lambda::{Config, Connection, MysqlFunction};
use dms_cdc::local::MariaDb;
use dms_cdc::mapping::Transforms;
use mysql_async::prelude::*;
use support::moto::{moto, rds_secret};
use support::{kill_sessions, root};

fn event(name: &str) -> KinesisEvent {
    let bytes = std::fs::read(root().join("fixtures/events").join(name)).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn count(pool: &mysql_async::Pool, sql: &str) -> u64 {
    let mut conn = pool.get_conn().await.unwrap();
    conn.query_first(sql).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_target_password_is_re_read_and_nothing_is_quarantined() {
    let Some(moto) = moto() else { return };
    let source = MariaDb::start(1).unwrap();
    let target = MariaDb::start(2).unwrap();
    source
        .run_file(&root().join("fixtures/source.sql"))
        .unwrap();
    source
        .run_file(&root().join("fixtures/source-state.sql"))
        .unwrap();
    target
        .run_file(&root().join("fixtures/target.sql"))
        .unwrap();
    target
        .run_sql(
            "CREATE USER 'admin'@'127.0.0.1' IDENTIFIED BY 'admin';
             GRANT ALL PRIVILEGES ON *.* TO 'admin'@'127.0.0.1' WITH GRANT OPTION;",
        )
        .unwrap();
    let admin = dms_cdc::source::pool(
        &target
            .url("global")
            .replace("dmscdc:dmscdc@", "admin:admin@"),
        1,
    )
    .unwrap();

    let client = moto.secrets_manager();
    client
        .create_secret()
        .name("dms-cdc/target")
        .secret_string(rds_secret(target.port(), "dmscdc"))
        .send()
        .await
        .unwrap();

    let config = Config {
        mapping: None,
        source: Connection::Url(source.url("recipes_src")),
        target: Connection::Secret {
            secret_id: "dms-cdc/target".into(),
            database: None,
        },
        chunk_size: 100,
        source_pool_size: 2,
        target_pool_size: 2,
        function_name: "rotation-test".into(),
        source_tls: Default::default(),
        target_tls: Default::default(),
    };
    let mapping = std::fs::read_to_string(root().join("fixtures/mapping.toml")).unwrap();
    let function = MysqlFunction::init_with_secrets(
        config,
        &mapping,
        Transforms::standard(),
        Some(client.clone()),
    )
    .await
    .unwrap();
    let check = dms_cdc::source::pool(&target.url("global"), 1).unwrap();

    let first = function.handle(event("01-load.json")).await.unwrap();
    assert!(first.batch_item_failures.is_empty(), "{first:?}");

    // Rotation, step 1: the server's password changes and the sessions are
    // dropped, but the secret still holds the old one (as between the
    // rotation's setSecret and finishSecret): the batch is retried, nothing
    // is quarantined.
    target
        .run_sql("ALTER USER 'dmscdc'@'127.0.0.1' IDENTIFIED BY 'rotated-1'")
        .unwrap();
    kill_sessions(&admin).await;
    let check = {
        drop(check);
        dms_cdc::source::pool(&target.url("global").replace(":dmscdc@", ":rotated-1@"), 1).unwrap()
    };
    let second = event("02-insert-update-delete.json");
    let first_seq = second.records[0].kinesis.sequence_number.clone();
    let stalled = function.handle(second.clone()).await.unwrap();
    assert_eq!(
        stalled.batch_item_failures[0].item_identifier.as_deref(),
        Some(first_seq.as_str()),
        "the whole batch is retried"
    );
    assert_eq!(
        count(&check, "SELECT COUNT(*) FROM dms_cdc_quarantine").await,
        0
    );

    // Step 2: the secret is updated. The next delivery authenticates after
    // re-reading it, with no redeploy.
    client
        .put_secret_value()
        .secret_id("dms-cdc/target")
        .secret_string(rds_secret(target.port(), "rotated-1"))
        .send()
        .await
        .unwrap();
    let retried = function.handle(second).await.unwrap();
    assert!(retried.batch_item_failures.is_empty(), "{retried:?}");

    // A second rotation in one step (server and secret together), while
    // the pool holds live connections: the dropped sessions reconnect
    // with the old password, fail, the secret is re-read, the batch passes.
    target
        .run_sql("ALTER USER 'dmscdc'@'127.0.0.1' IDENTIFIED BY 'rotated-2'")
        .unwrap();
    client
        .put_secret_value()
        .secret_id("dms-cdc/target")
        .secret_string(rds_secret(target.port(), "rotated-2"))
        .send()
        .await
        .unwrap();
    kill_sessions(&admin).await;
    let check = {
        drop(check);
        dms_cdc::source::pool(&target.url("global").replace(":dmscdc@", ":rotated-2@"), 1).unwrap()
    };
    for name in [
        "03-child-moves.json",
        "04-control.json",
        "05-lob-and-lossy.json",
        "06-types.json",
        "07-poison.json",
    ] {
        let response = function.handle(event(name)).await.unwrap();
        assert!(
            response.batch_item_failures.is_empty(),
            "{name}: {response:?}"
        );
    }
    // Only the three poison records of 07 are quarantined, for what they are.
    assert_eq!(
        count(&check, "SELECT COUNT(*) FROM dms_cdc_quarantine").await,
        3
    );
    assert_eq!(
        count(
            &check,
            "SELECT COUNT(*) FROM dms_cdc_quarantine WHERE error_class <> 'decode'"
        )
        .await,
        0,
        "no record was quarantined for an infrastructure fault"
    );
    // Nothing lost: the target holds exactly as many rows as the fixtures'
    // expected contents (tests/fixture_replay_mysql.rs compares them value
    // by value on the same events).
    let expected = |table: &str| {
        let text = std::fs::read_to_string(root().join(format!("fixtures/expected/{table}.json")))
            .unwrap();
        serde_json::from_str::<Vec<serde_json::Value>>(&text)
            .unwrap()
            .len() as u64
    };
    assert_eq!(
        count(&check, "SELECT COUNT(*) FROM global_users").await,
        expected("global_users")
    );
    assert_eq!(
        count(&check, "SELECT COUNT(*) FROM global_recipes").await,
        expected("global_recipes")
    );
    let checkpoint = count(
        &check,
        "SELECT COUNT(*) FROM dms_cdc_checkpoint WHERE function_name = 'rotation-test'",
    )
    .await;
    assert!(checkpoint >= 1);
}
