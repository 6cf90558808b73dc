//! Shared test rig: a throwaway source MariaDB and a throwaway target (a
//! MariaDB or a PostgreSQL: [`targets::TestTarget`]) with the sample
//! schema, an engine over them, and DMS record builders.
#![allow(dead_code)]

pub mod generated;
pub mod moto;
pub mod targets;
pub mod workload;

use std::path::Path;

use dms_cdc::dms::Delivery;
use dms_cdc::engine::{Engine, Settings};
use dms_cdc::local::MariaDb;
use dms_cdc::mapping::{Mapping, Transforms};
use dms_cdc::position::{SequenceNumber, ShardId};
use dms_cdc::source::pool;
use dms_cdc::source::MysqlSource;
use dms_cdc::target::MysqlTarget;
use mysql_async::prelude::*;
use serde_json::json;
use targets::TestTarget;

/// Name under which the rig's engine keeps checkpoints and quarantined records.
pub const FUNCTION_NAME: &str = "mysql-target-test";

/// Source and target servers with the sample schema, and an engine over them.
pub struct Rig<T: TestTarget = MysqlTarget> {
    pub source_db: MariaDb,
    pub target_db: T::Db,
    pub engine: Engine<MysqlSource, T>,
    pub target_pool: T::Pool,
    next_seq: u64,
}

/// Runs the `dms-cdc` binary from the repository root: its exit code (-1
/// when killed) and its stdout and stderr together.
pub fn cli(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dms-cdc"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A rig with a MariaDB target.
pub async fn rig(chunk_size: usize) -> Rig {
    rig_for::<MysqlTarget>(chunk_size).await
}

/// A rig whose target is a throwaway server of `T`'s kind.
pub async fn rig_for<T: TestTarget>(chunk_size: usize) -> Rig<T> {
    let source_db = MariaDb::start(1).expect("source mariadb");
    source_db
        .run_file(&root().join("fixtures/source.sql"))
        .unwrap();
    let target_db = T::start();
    let transforms = Transforms::standard();
    let mapping = Mapping::load(&root().join("fixtures/mapping.toml"), &transforms).unwrap();
    let source = pool(&source_db.url("recipes_src"), 4).unwrap();
    let target_pool = T::pool(&target_db);
    let target = T::new(target_pool.clone(), FUNCTION_NAME, chunk_size);
    dms_cdc::target::Target::prepare(&target, &mapping)
        .await
        .unwrap();
    let engine = Engine::new(
        mapping,
        transforms,
        MysqlSource::from(source),
        target,
        Settings {
            function_name: FUNCTION_NAME.into(),
            chunk_size,
        },
    );
    Rig {
        source_db,
        target_db,
        engine,
        target_pool,
        next_seq: 0,
    }
}

impl Rig<MysqlTarget> {
    /// The target's rows through the MySQL driver.
    pub async fn target_rows(&self, sql: &str) -> Vec<mysql_async::Row> {
        let mut conn = self.target_pool.get_conn().await.unwrap();
        conn.query(sql).await.unwrap()
    }
}

impl<T: TestTarget> Rig<T> {
    /// The target's rows as text (NULL as `None`), whatever the target.
    pub async fn text_rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        T::text_rows(&self.target_db, sql).await
    }

    /// Runs SQL (several statements allowed) on the target.
    pub async fn target_sql(&self, sql: &str) {
        T::text_rows(&self.target_db, sql).await;
    }

    /// Replaces the engine's target (and its pool), so that new sessions
    /// see changed server settings.
    pub fn reconnect(&mut self) {
        self.target_pool = T::pool(&self.target_db);
        self.engine.target = T::new(
            self.target_pool.clone(),
            FUNCTION_NAME,
            self.engine.settings.chunk_size,
        );
    }

    /// A delivery on `shard` with the next (increasing, 56-digit) sequence number.
    pub fn delivery(&mut self, shard: &str, payload: Vec<u8>) -> Delivery {
        self.next_seq += 1;
        Delivery {
            shard_id: ShardId(shard.into()),
            sequence_number: SequenceNumber::parse(&format!(
                "49590338271490256608559692538361571095921575989{:09}",
                self.next_seq
            ))
            .unwrap(),
            partition_key: "k".into(),
            approximate_arrival_ms: None,
            data: payload,
        }
    }

    pub async fn source_sql(&self, sql: &str) {
        let mut conn = self.engine.source.pool().get_conn().await.unwrap();
        conn.query_drop(sql).await.unwrap();
    }

    /// A global status counter of the source server.
    pub async fn source_status(&self, name: &str) -> u64 {
        let mut conn = self.engine.source.pool().get_conn().await.unwrap();
        // Text protocol, so the read is not itself a prepared-statement execution.
        let row: Option<(String, String)> = conn
            .query_first(format!("SHOW GLOBAL STATUS WHERE Variable_name = '{name}'"))
            .await
            .unwrap();
        row.map(|(_, v)| v.parse().unwrap()).unwrap_or(0)
    }
}

/// A DMS JSON document for a data change of `recipes_src.<table>`.
pub fn record(
    op: &str,
    table: &str,
    after: serde_json::Value,
    before: Option<serde_json::Value>,
) -> Vec<u8> {
    record_in(
        "recipes_src",
        table,
        op,
        after,
        before,
        "2026-11-20T10:15:00Z",
    )
}

/// A DMS JSON document for a data change of `schema.table` committed at
/// `commit` (`YYYY-MM-DDTHH:MM:SSZ`, as DMS writes commit timestamps).
pub fn record_in(
    schema: &str,
    table: &str,
    op: &str,
    after: serde_json::Value,
    before: Option<serde_json::Value>,
    commit: &str,
) -> Vec<u8> {
    let mut doc = json!({
        "data": after,
        "metadata": {
            "timestamp": format!("{}.000000Z", commit.trim_end_matches('Z')),
            "record-type": "data",
            "operation": op,
            "partition-key-type": "primary-key",
            "schema-name": schema,
            "table-name": table,
            "transaction-id": 1,
            "commit-timestamp": commit
        }
    });
    if let Some(b) = before {
        doc["before-image"] = b;
    }
    serde_json::to_vec(&doc).unwrap()
}

pub fn user(id: u64, name: &str) -> serde_json::Value {
    json!({"id": id, "name": name, "email": "Ann@Example.COM", "created_at": "2026-01-02T03:04:05Z", "is_active": 1})
}

/// Kills every session of the test user through `admin` (another user's
/// pool): pooled connections die as they do when a rotation makes a proxy
/// or the server drop them.
pub async fn kill_sessions(admin: &mysql_async::Pool) {
    let mut conn = admin.get_conn().await.unwrap();
    let ids: Vec<u64> = conn
        .query("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'dmscdc'")
        .await
        .unwrap();
    for id in ids {
        let _ = conn.query_drop(format!("KILL {id}")).await;
    }
}
