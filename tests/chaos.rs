//! Chaos: a few thousand generated changes, captured from a real MariaDB
//! source's binlog in DMS format, go through the function's own code path
//! (`MysqlFunction::handle`, target credentials from Secrets Manager on
//! moto) on two shards, as Lambda's event source mapping drives it
//! (redelivery from the reported record), while the test kills and
//! restarts the target server mid-batch, rotates the target password,
//! holds locks until a lock wait timeout, and redelivers old batches out of
//! order across the shards. End state: the target equals the mapping of
//! the source, and no record is quarantined (the workload has no poison,
//! so any quarantine would be for an infrastructure fault).

mod support;

use std::time::{Duration, Instant};

use aws_lambda_events::event::kinesis::KinesisEvent;
use base64::Engine as _;
use dms_cdc::capture::{current_position, Capture, CaptureOptions};
use dms_cdc::lambda::{Config, Connection, MysqlFunction};
use dms_cdc::mapping::Transforms;
use mysql_async::prelude::*;
use serde_json::json;
use support::moto::{moto, rds_secret};
use support::workload::{assert_target_equals_source, workload, Lcg, World};
use support::{kill_sessions, rig, root};

const SHARDS: [&str; 2] = ["shardId-000000000000", "shardId-000000000001"];
const BATCH: usize = 100;

/// A shard's records: (sequence number, partition key, payload).
type Shard = Vec<(String, String, Vec<u8>)>;

fn event(shard: &str, records: &[(String, String, Vec<u8>)]) -> KinesisEvent {
    let records: Vec<serde_json::Value> = records
        .iter()
        .map(|(seq, key, data)| {
            json!({
                "eventID": format!("{shard}:{seq}"),
                "eventSource": "aws:kinesis",
                "eventName": "aws:kinesis:record",
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "sequenceNumber": seq,
                    "partitionKey": key,
                    "approximateArrivalTimestamp": 1.7e9,
                    "data": base64::engine::general_purpose::STANDARD.encode(data),
                }
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

/// FNV-1a: the shard of a partition key (Kinesis hashes keys to shards).
fn shard_of(key: &str) -> usize {
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (h % SHARDS.len() as u64) as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_converges_through_crashes_rotations_lock_timeouts_and_redeliveries() {
    let started = Instant::now();
    let Some(moto) = moto() else { return };
    let mut rig = rig(50).await;
    rig.target_db
        .run_sql(
            "CREATE USER 'admin'@'127.0.0.1' IDENTIFIED BY 'admin';
             GRANT ALL PRIVILEGES ON *.* TO 'admin'@'127.0.0.1' WITH GRANT OPTION;",
        )
        .unwrap();
    let admin_url = rig
        .target_db
        .url("global")
        .replace("dmscdc:dmscdc@", "admin:admin@");

    // The source changes; capture turns its binlog into DMS records.
    let mut position = current_position(rig.engine.source.pool()).await.unwrap();
    let mut world = World::default();
    let mut rng = Lcg(20261204);
    workload(&rig, &mut world, &mut rng, 3400).await;
    let end = current_position(rig.engine.source.pool()).await.unwrap();
    let mut capture = Capture::start(
        mysql_async::Opts::from_url(&rig.source_db.url("recipes_src")).unwrap(),
        position.clone(),
        CaptureOptions::from_mapping(&rig.engine.mapping),
    )
    .await
    .unwrap();
    let mut shards: [Shard; 2] = [Vec::new(), Vec::new()];
    let mut next = [0u64; 2];
    while position < end {
        let Some(tx) = capture
            .next_transaction(Duration::from_secs(10))
            .await
            .unwrap()
        else {
            break;
        };
        for r in tx.records {
            let s = shard_of(&r.partition_key);
            next[s] += 1;
            let seq = format!(
                "4959033827149025660855969253836157109592157598{s}{:09}",
                next[s]
            );
            shards[s].push((seq, r.partition_key, r.payload));
        }
        position = tx.position;
    }
    capture.close().await.unwrap();
    let total: usize = shards.iter().map(Vec::len).sum();
    assert!(total >= 2500, "captured {total} records");
    assert!(
        shards.iter().all(|s| s.len() > 500),
        "both shards carry records"
    );

    // The function: target credentials from Secrets Manager.
    let secrets = moto.secrets_manager();
    let target_port = rig.target_db.port();
    secrets
        .create_secret()
        .name("chaos/target")
        .secret_string(rds_secret(target_port, "dmscdc"))
        .send()
        .await
        .unwrap();
    let config = Config {
        mapping: None,
        source: Connection::Url(rig.source_db.url("recipes_src")),
        target: Connection::Secret {
            secret_id: "chaos/target".into(),
            database: None,
        },
        chunk_size: 50,
        source_pool_size: 2,
        target_pool_size: 2,
        function_name: "chaos".into(),
        source_tls: Default::default(),
        target_tls: Default::default(),
    };
    let mapping = std::fs::read_to_string(root().join("fixtures/mapping.toml")).unwrap();
    let function = MysqlFunction::init_with_secrets(
        config,
        &mapping,
        Transforms::standard(),
        Some(secrets.clone()),
    )
    .await
    .unwrap();

    // The event source mapping: per shard, deliver from the cursor; move
    // to the reported record (or past the batch when none is reported).
    let mut cursor = [0usize; 2];
    let mut done_windows: [Vec<(usize, usize)>; 2] = [Vec::new(), Vec::new()];
    let mut step = 0usize;
    let mut retried = 0usize;
    let mut password = "dmscdc".to_owned();
    while cursor.iter().zip(&shards).any(|(c, s)| c < &s.len()) {
        step += 1;
        assert!(step < 1000, "the stream did not drain");
        assert!(
            started.elapsed() < Duration::from_secs(110),
            "bounded in time"
        );
        let s = step % 2;
        if cursor[s] >= shards[s].len() {
            continue;
        }
        // Every seventh step the other shard's last batch comes again, out
        // of order (a redelivery): it must have no second effect.
        if step % 7 == 0 {
            let o = 1 - s;
            if let Some(&(from, to)) = done_windows[o].last() {
                let again = function
                    .handle(event(SHARDS[o], &shards[o][from..to]))
                    .await
                    .unwrap();
                assert!(again.batch_item_failures.is_empty() || retried > 0);
            }
        }
        let from = cursor[s];
        let to = (from + BATCH).min(shards[s].len());
        let batch = event(SHARDS[s], &shards[s][from..to]);

        let response = match step {
            // The target server is killed while a batch is being written,
            // then restarted (InnoDB recovers what was committed).
            6 => {
                let (response, ()) = tokio::join!(function.handle(batch), async {
                    tokio::time::sleep(Duration::from_millis(15)).await;
                    rig.target_db.kill();
                });
                let down = function
                    .handle(event(SHARDS[s], &shards[s][from..to]))
                    .await
                    .unwrap();
                assert_eq!(
                    down.batch_item_failures.len(),
                    1,
                    "a server that is down is a retry"
                );
                rig.target_db.restart().unwrap();
                response.unwrap()
            }
            // The target password rotates: server and secret, sessions dropped.
            12 => {
                password = "rotated-chaos".to_owned();
                rig.target_db
                    .run_sql(&format!(
                        "ALTER USER 'dmscdc'@'127.0.0.1' IDENTIFIED BY '{password}'"
                    ))
                    .unwrap();
                secrets
                    .put_secret_value()
                    .secret_id("chaos/target")
                    .secret_string(rds_secret(target_port, &password))
                    .send()
                    .await
                    .unwrap();
                let admin = dms_cdc::source::pool(&admin_url, 1).unwrap();
                kill_sessions(&admin).await;
                function.handle(batch).await.unwrap()
            }
            // Another session holds every target row: a lock wait timeout.
            18 | 19 => {
                let admin = dms_cdc::source::pool(&admin_url, 1).unwrap();
                if step == 18 {
                    // Sessions read the timeout when they connect.
                    rig.target_db
                        .run_sql("SET GLOBAL innodb_lock_wait_timeout = 1")
                        .unwrap();
                    kill_sessions(&admin).await;
                }
                let mut blocker = admin.get_conn().await.unwrap();
                blocker.query_drop("BEGIN").await.unwrap();
                blocker
                    .query_drop("SELECT COUNT(*) FROM global_recipes FOR UPDATE")
                    .await
                    .unwrap();
                blocker
                    .query_drop("SELECT COUNT(*) FROM global_users FOR UPDATE")
                    .await
                    .unwrap();
                let response = function.handle(batch).await.unwrap();
                blocker.query_drop("ROLLBACK").await.unwrap();
                response
            }
            _ => function.handle(batch).await.unwrap(),
        };
        if std::env::var_os("CHAOS_TRACE").is_some() {
            eprintln!(
                "step {step} shard {s} [{from}..{to}) failures {} at {:.1} s",
                response.batch_item_failures.len(),
                started.elapsed().as_secs_f64()
            );
        }
        match response.batch_item_failures.first() {
            None => {
                done_windows[s].push((from, to));
                cursor[s] = to;
            }
            Some(f) => {
                retried += 1;
                let id = f.item_identifier.clone().unwrap_or_default();
                assert!(!id.is_empty(), "an item identifier is never empty");
                let at = shards[s][from..to]
                    .iter()
                    .position(|(seq, _, _)| *seq == id)
                    .expect("the reported record is one of the batch");
                cursor[s] = from + at;
            }
        }
    }
    assert!(retried >= 2, "the faults made batches retry ({retried})");

    // The end state, read with the rotated password.
    rig.target_pool = dms_cdc::source::pool(
        &rig.target_db
            .url("global")
            .replace(":dmscdc@", &format!(":{password}@")),
        2,
    )
    .unwrap();
    let quarantined: u64 = rig
        .target_rows("SELECT COUNT(*) FROM dms_cdc_quarantine")
        .await[0]
        .get(0)
        .unwrap();
    assert_eq!(
        quarantined, 0,
        "no record quarantined for an infrastructure fault"
    );
    assert_target_equals_source(&rig, &world).await;
    eprintln!(
        "chaos: {total} records, {step} steps, {retried} retried batches, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
