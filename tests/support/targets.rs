//! What a test needs of a target database beyond the engine's `Target`
//! trait: start a throwaway server with the sample schema, read rows as
//! text, hold a lock, kill the engine's session, read the quarantine. One
//! implementation per target adapter, so that one suite
//! (`tests/target_suite.rs`) runs against every target.

use std::time::Duration;

use dms_cdc::local::{MariaDb, PostgreSql};
use dms_cdc::postgres::PostgresTarget;
use dms_cdc::target::{MysqlTarget, Target};
use mysql_async::prelude::*;

use super::root;

/// A stored quarantine row: sequence number, class, table, operation, raw
/// payload, message, attempts.
pub type QuarantineRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Vec<u8>,
    String,
    i64,
);

/// A transaction another session keeps open (holding its locks) until
/// [`Held::release`].
pub enum Held {
    Mysql(mysql_async::Conn),
    Postgres(tokio_postgres::Client),
}

impl Held {
    /// Rolls the transaction back.
    pub async fn release(self) {
        match self {
            Held::Mysql(mut conn) => conn.query_drop("ROLLBACK").await.unwrap(),
            Held::Postgres(client) => client.batch_execute("ROLLBACK").await.unwrap(),
        }
    }
}

/// Instantiates generic tests `async fn name<T: TestTarget>()` once per
/// target adapter: `mysql::name` and `postgres::name`.
#[macro_export]
macro_rules! every_target {
    ($($test:ident),* $(,)?) => {
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test::<dms_cdc::target::MysqlTarget>().await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test::<dms_cdc::postgres::PostgresTarget>().await
                }
            )*
        }
    };
}

/// A target adapter the suite can run against.
#[allow(async_fn_in_trait)]
pub trait TestTarget:
    Target
    + dms_cdc::quarantine::QuarantineStore
    + dms_cdc::target::TargetRows
    + dms_cdc::target::TargetSequences
    + Sized
    + 'static
{
    /// The throwaway server.
    type Db;
    /// The adapter's connection pool.
    type Pool: Clone;
    /// What the server's answer to a lock wait over its timeout says.
    const LOCK_TIMEOUT: &'static str;
    /// The column type of a version column (compared byte by byte).
    const VERSION_TYPE: &'static str;
    /// The column type of a JSON column.
    const JSON_TYPE: &'static str;
    /// DDL that makes `table.column` (a `bigint` key) filled by a sequence.
    const AUTO_INCREMENT: &'static str;

    /// Starts a server with the sample target schema (fixtures/).
    fn start() -> Self::Db;
    /// The URL of the sample target database.
    fn url(db: &Self::Db) -> String;
    /// A pool on the sample target database.
    fn pool(db: &Self::Db) -> Self::Pool;
    /// The adapter over `pool`.
    fn new(pool: Self::Pool, function_name: &str, chunk_size: usize) -> Self;
    /// Makes new sessions give up a lock wait after one second.
    fn set_lock_timeout_1s(db: &Self::Db);
    /// Runs `sql` (several statements allowed) in a new session; the rows
    /// of its first result, as text.
    async fn text_rows(db: &Self::Db, sql: &str) -> Vec<Vec<Option<String>>>;
    /// Opens a transaction in a new session and runs `sql` in it.
    async fn hold(db: &Self::Db, sql: &str) -> Held;
    /// Waits (up to 10 s) for a session writing `table` and kills it.
    async fn kill_writer(db: &Self::Db, table: &str) -> bool;
    /// The stored quarantine rows in the order they were first stored.
    async fn quarantine(db: &Self::Db) -> Vec<QuarantineRow>;
    /// A SQL expression: a binary column as upper-case hex.
    fn hex(column: &str) -> String;
    /// A SQL expression: a binary column's bytes as UTF-8 text.
    fn utf8(column: &str) -> String;
}

fn mysql_text(value: mysql_async::Value) -> Option<String> {
    use mysql_async::Value as V;
    match value {
        V::NULL => None,
        V::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        V::Int(i) => Some(i.to_string()),
        V::UInt(u) => Some(u.to_string()),
        V::Float(f) => Some(f.to_string()),
        V::Double(f) => Some(f.to_string()),
        other => Some(other.as_sql(true)),
    }
}

async fn mysql_conn(db: &MariaDb) -> mysql_async::Conn {
    mysql_async::Conn::from_url(db.url("global")).await.unwrap()
}

impl TestTarget for MysqlTarget {
    type Db = MariaDb;
    type Pool = mysql_async::Pool;
    const LOCK_TIMEOUT: &'static str = "1205";
    const VERSION_TYPE: &'static str = "VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NULL";
    const JSON_TYPE: &'static str = "JSON";
    const AUTO_INCREMENT: &'static str =
        "ALTER TABLE {table} MODIFY {column} BIGINT NOT NULL AUTO_INCREMENT";

    fn start() -> MariaDb {
        let db = MariaDb::start(2).expect("target mariadb");
        db.run_file(&root().join("fixtures/target.sql")).unwrap();
        db
    }

    fn url(db: &MariaDb) -> String {
        db.url("global")
    }

    fn pool(db: &MariaDb) -> mysql_async::Pool {
        dms_cdc::source::pool(&db.url("global"), 4).unwrap()
    }

    fn new(pool: mysql_async::Pool, function_name: &str, chunk_size: usize) -> Self {
        MysqlTarget::new(pool, function_name, chunk_size)
    }

    fn set_lock_timeout_1s(db: &MariaDb) {
        db.run_sql("SET GLOBAL innodb_lock_wait_timeout = 1")
            .unwrap();
    }

    async fn text_rows(db: &MariaDb, sql: &str) -> Vec<Vec<Option<String>>> {
        let mut conn = mysql_conn(db).await;
        // The text protocol: every value arrives as its text form.
        let rows: Vec<mysql_async::Row> = conn.query(sql).await.unwrap();
        rows.into_iter()
            .map(|r| r.unwrap().into_iter().map(mysql_text).collect())
            .collect()
    }

    async fn hold(db: &MariaDb, sql: &str) -> Held {
        let mut conn = mysql_conn(db).await;
        conn.query_drop("BEGIN").await.unwrap();
        conn.query_drop(sql).await.unwrap();
        Held::Mysql(conn)
    }

    async fn kill_writer(db: &MariaDb, table: &str) -> bool {
        let mut admin = mysql_conn(db).await;
        for _ in 0..200 {
            let id: Option<u64> = admin
                .exec_first(
                    "SELECT ID FROM information_schema.PROCESSLIST
                     WHERE INFO LIKE ? AND ID <> CONNECTION_ID()",
                    (format!("INSERT INTO `{table}`%"),),
                )
                .await
                .unwrap();
            if let Some(id) = id {
                admin.query_drop(format!("KILL {id}")).await.unwrap();
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    async fn quarantine(db: &MariaDb) -> Vec<QuarantineRow> {
        let mut conn = mysql_conn(db).await;
        let rows: Vec<mysql_async::Row> = conn
            .query(
                "SELECT sequence_number, error_class, table_name, operation, raw_record, error_message, attempts
                 FROM dms_cdc_quarantine ORDER BY id",
            )
            .await
            .unwrap();
        rows.into_iter()
            .map(|r| {
                (
                    r.get(0).unwrap(),
                    r.get(1).unwrap(),
                    r.get(2).unwrap(),
                    r.get(3).unwrap(),
                    r.get(4).unwrap(),
                    r.get(5).unwrap(),
                    r.get(6).unwrap(),
                )
            })
            .collect()
    }

    fn hex(column: &str) -> String {
        format!("HEX({column})")
    }

    fn utf8(column: &str) -> String {
        format!("CAST({column} AS CHAR)")
    }
}

/// A plain driver session on the sample target database.
pub async fn pg_client(db: &PostgreSql) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&db.url("global"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

impl TestTarget for PostgresTarget {
    type Db = PostgreSql;
    type Pool = dms_cdc::postgres::Pool;
    const LOCK_TIMEOUT: &'static str = "lock timeout";
    const VERSION_TYPE: &'static str = "varchar(255) COLLATE \"C\" NULL";
    const JSON_TYPE: &'static str = "jsonb";
    const AUTO_INCREMENT: &'static str =
        "ALTER TABLE {table} ALTER COLUMN {column} ADD GENERATED BY DEFAULT AS IDENTITY";

    fn start() -> PostgreSql {
        let pg = PostgreSql::start().expect("throwaway postgresql");
        pg.create_database("global").unwrap();
        pg.run_file("global", &root().join("fixtures/target-postgres.sql"))
            .unwrap();
        pg
    }

    fn url(db: &PostgreSql) -> String {
        db.url("global")
    }

    fn pool(db: &PostgreSql) -> dms_cdc::postgres::Pool {
        dms_cdc::postgres::pool(&db.url("global"), 4).unwrap()
    }

    fn new(pool: dms_cdc::postgres::Pool, function_name: &str, chunk_size: usize) -> Self {
        PostgresTarget::new(pool, function_name, chunk_size)
    }

    fn set_lock_timeout_1s(db: &PostgreSql) {
        db.run_sql("global", "ALTER DATABASE global SET lock_timeout = '1s'")
            .unwrap();
    }

    async fn text_rows(db: &PostgreSql, sql: &str) -> Vec<Vec<Option<String>>> {
        use tokio_postgres::SimpleQueryMessage as M;
        let client = pg_client(db).await;
        // The simple protocol: every value arrives as its text form; only
        // the first statement's rows are kept.
        let mut rows = Vec::new();
        let mut first = true;
        for message in client.simple_query(sql).await.unwrap() {
            match message {
                M::Row(row) if first => rows.push(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_owned))
                        .collect(),
                ),
                M::CommandComplete(_) => first = false,
                _ => {}
            }
        }
        rows
    }

    async fn hold(db: &PostgreSql, sql: &str) -> Held {
        let client = pg_client(db).await;
        client.batch_execute("BEGIN").await.unwrap();
        client.batch_execute(sql).await.unwrap();
        Held::Postgres(client)
    }

    async fn kill_writer(db: &PostgreSql, table: &str) -> bool {
        let admin = pg_client(db).await;
        let pattern = format!("INSERT INTO \"{table}\"%");
        for _ in 0..200 {
            let killed = admin
                .query_opt(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE query LIKE $1 AND state = 'active' AND pid <> pg_backend_pid() LIMIT 1",
                    &[&pattern],
                )
                .await
                .unwrap();
            if killed.is_some() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    async fn quarantine(db: &PostgreSql) -> Vec<QuarantineRow> {
        pg_client(db)
            .await
            .query(
                "SELECT sequence_number::text, error_class::text, table_name::text, operation::text,
                        raw_record, error_message, attempts::int8
                 FROM dms_cdc_quarantine ORDER BY id",
                &[],
            )
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                (
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                )
            })
            .collect()
    }

    fn hex(column: &str) -> String {
        format!("upper(encode({column}, 'hex'))")
    }

    fn utf8(column: &str) -> String {
        format!("convert_from({column}, 'UTF8')")
    }
}
