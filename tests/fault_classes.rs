//! Whose fault is it: every error class the product distinguishes, provoked
//! against a real, throwaway MariaDB server, classified through the one
//! place that classifies (`dms_cdc::fault::mysql`).

use std::time::Duration;

use dms_cdc::fault::{mysql, Fault, Infrastructure as I};
use dms_cdc::local::MariaDb;
use mysql_async::prelude::*;

fn url(db: &MariaDb, user: &str, password: &str, database: &str) -> String {
    format!(
        "mysql://{user}:{password}@127.0.0.1:{}/{database}",
        db.port()
    )
}

async fn connect(url: &str) -> Result<mysql_async::Conn, mysql_async::Error> {
    let opts = mysql_async::Opts::from_url(url).unwrap();
    mysql_async::Conn::new(opts).await
}

fn code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

/// Asserts the server's answer to `what` has `want_code` (when given) and
/// is classified as `want`.
fn check(what: &str, e: mysql_async::Error, want_code: Option<u16>, want: Fault) {
    if let Some(c) = want_code {
        assert_eq!(code(&e), Some(c), "{what}: {e}");
    }
    assert_eq!(mysql::of(&e), want, "{what}: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_answers_are_classified_by_whose_fault_they_are() {
    let db = MariaDb::start(1).expect("mariadb");
    db.run_sql(
        "CREATE DATABASE app; CREATE DATABASE other;
         CREATE TABLE app.t (id INT PRIMARY KEY, small TINYINT NOT NULL, name VARCHAR(3), n INT);
         CREATE TABLE app.parent (id INT PRIMARY KEY) ENGINE=InnoDB;
         CREATE TABLE app.child (id INT PRIMARY KEY, parent_id INT, FOREIGN KEY (parent_id) REFERENCES app.parent (id)) ENGINE=InnoDB;
         INSERT INTO app.t VALUES (1, 1, 'a', 1), (2, 1, 'b', 2);
         CREATE USER 'limited'@'127.0.0.1' IDENTIFIED BY 'pw';
         GRANT SELECT ON app.* TO 'limited'@'127.0.0.1';
         CREATE USER 'tls'@'127.0.0.1' IDENTIFIED BY 'pw' REQUIRE SSL;
         GRANT ALL ON app.* TO 'tls'@'127.0.0.1';
         CREATE USER 'writer'@'127.0.0.1' IDENTIFIED BY 'pw';
         GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO 'writer'@'127.0.0.1';",
    )
    .unwrap();
    let app = db.url("app");

    // Authentication: a wrong (rotated) password.
    let e = connect(&url(&db, "dmscdc", "rotated", "app"))
        .await
        .unwrap_err();
    check(
        "wrong password",
        e,
        Some(1045),
        Fault::Infrastructure(I::Authentication),
    );
    // A user that must use TLS, connecting without it: MariaDB answers 1045.
    let e = connect(&url(&db, "tls", "pw", "app")).await.unwrap_err();
    check(
        "REQUIRE SSL without TLS",
        e,
        Some(1045),
        Fault::Infrastructure(I::Authentication),
    );
    // Authorisation: a database the user may not use.
    let e = connect(&url(&db, "limited", "pw", "other"))
        .await
        .unwrap_err();
    check(
        "no access to database",
        e,
        Some(1044),
        Fault::Infrastructure(I::Authorisation),
    );
    // A missing database.
    let e = connect(&url(&db, "dmscdc", "dmscdc", "missing"))
        .await
        .unwrap_err();
    check(
        "unknown database",
        e,
        Some(1049),
        Fault::Infrastructure(I::Schema),
    );
    // Nobody listening (a server gone, a wrong port).
    let closed = dms_cdc::local::free_port().unwrap();
    let e = connect(&format!("mysql://dmscdc:dmscdc@127.0.0.1:{closed}/app"))
        .await
        .unwrap_err();
    check(
        "connection refused",
        e,
        None,
        Fault::Infrastructure(I::Connection),
    );

    let mut conn = connect(&app).await.unwrap();
    // Missing schema: table, column.
    let e = conn
        .query_drop("INSERT INTO gone VALUES (1)")
        .await
        .unwrap_err();
    check(
        "missing table",
        e,
        Some(1146),
        Fault::Infrastructure(I::Schema),
    );
    let e = conn
        .exec_drop(
            "INSERT INTO t (id, small, nope) VALUES (?, ?, ?)",
            (3, 1, 1),
        )
        .await
        .unwrap_err();
    check(
        "missing column",
        e,
        Some(1054),
        Fault::Infrastructure(I::Schema),
    );
    // Authorisation: a privilege the user lacks.
    let mut limited = connect(&url(&db, "limited", "pw", "app")).await.unwrap();
    let e = limited
        .exec_drop("INSERT INTO t VALUES (?, ?, ?, ?)", (9, 1, "x", 1))
        .await
        .unwrap_err();
    check(
        "no INSERT privilege",
        e,
        Some(1142),
        Fault::Infrastructure(I::Authorisation),
    );

    // The record's fault: a value a column rejects (strict mode).
    type Values<'a> = (i64, Option<i64>, &'a str, &'a str);
    let record_cases: [(&str, Values, u16); 4] = [
        ("NULL into NOT NULL", (10, None, "a", "1"), 1048),
        ("out of range", (11, Some(1000), "a", "1"), 1264),
        ("too long", (12, Some(1), "abcd", "1"), 1406),
        ("incorrect integer", (13, Some(1), "a", "x"), 1366),
    ];
    for (what, (id, small, name, n), want_code) in record_cases {
        let e = conn
            .exec_drop(
                "INSERT INTO t (id, small, name, n) VALUES (?, ?, ?, ?)",
                (id, small, name, n),
            )
            .await
            .unwrap_err();
        check(what, e, Some(want_code), Fault::Record);
    }
    let e = conn
        .exec_drop("INSERT INTO child VALUES (?, ?)", (1, 42))
        .await
        .unwrap_err();
    check("child without parent", e, Some(1452), Fault::Record);

    // Server state: a lock wait timeout and a deadlock.
    conn.query_drop("SET SESSION innodb_lock_wait_timeout = 1")
        .await
        .unwrap();
    let mut other = connect(&app).await.unwrap();
    other
        .query_drop("SET SESSION innodb_lock_wait_timeout = 5")
        .await
        .unwrap();
    other.query_drop("BEGIN").await.unwrap();
    other
        .query_drop("UPDATE t SET n = 10 WHERE id = 1")
        .await
        .unwrap();
    let e = conn
        .query_drop("UPDATE t SET n = 11 WHERE id = 1")
        .await
        .unwrap_err();
    check(
        "lock wait timeout",
        e,
        Some(1205),
        Fault::Infrastructure(I::ServerState),
    );
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("UPDATE t SET n = 20 WHERE id = 2")
        .await
        .unwrap();
    // `other` holds row 1 and waits for row 2; `conn` then asks for row 1.
    let waiting = tokio::spawn(async move {
        let r = other.query_drop("UPDATE t SET n = 21 WHERE id = 2").await;
        (other, r)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mine = conn.query_drop("UPDATE t SET n = 22 WHERE id = 1").await;
    let (mut other, theirs) = waiting.await.unwrap();
    let deadlock = [mine, theirs]
        .into_iter()
        .filter_map(Result::err)
        .find(|e| code(e) == Some(1213))
        .expect("one side is chosen as the deadlock victim");
    check(
        "deadlock",
        deadlock,
        Some(1213),
        Fault::Infrastructure(I::ServerState),
    );
    let _ = conn.query_drop("ROLLBACK").await;
    let _ = other.query_drop("ROLLBACK").await;

    // Server state: read-only during a failover (the writer lacks the
    // privilege to write through it).
    db.run_sql("SET GLOBAL read_only = 1").unwrap();
    let mut writer = connect(&url(&db, "writer", "pw", "app")).await.unwrap();
    let e = writer
        .query_drop("UPDATE t SET n = 30 WHERE id = 2")
        .await
        .unwrap_err();
    check(
        "read-only server",
        e,
        Some(1290),
        Fault::Infrastructure(I::ServerState),
    );
    db.run_sql("SET GLOBAL read_only = 0").unwrap();

    // Server state: too many connections (non-SUPER users are refused;
    // MariaDB's smallest max_connections is 10).
    db.run_sql("SET GLOBAL max_connections = 10").unwrap();
    let mut held = Vec::new();
    let mut refused = None;
    for _ in 0..12 {
        match connect(&url(&db, "writer", "pw", "app")).await {
            Ok(c) => held.push(c),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let e = refused.expect("the server refuses connections past max_connections");
    check(
        "too many connections",
        e,
        Some(1040),
        Fault::Infrastructure(I::ServerState),
    );
    drop(held);
    db.run_sql("SET GLOBAL max_connections = 200").unwrap();

    // A killed connection: the server is gone mid-session.
    let mut victim = connect(&app).await.unwrap();
    let id: u64 = victim
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    db.run_sql(&format!("KILL {id}")).unwrap();
    let e = victim.query_drop("SELECT 1").await.unwrap_err();
    assert!(
        !mysql::of(&e).is_record(),
        "a killed connection is never the record's fault: {e}"
    );
    drop(writer);
    drop(limited);
}
