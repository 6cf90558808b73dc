//! The OpenSearch target against a real single-node OpenSearch 2.19.6
//! (`infra/local/opensearch`, started by the test on 127.0.0.1 in a
//! temporary home and killed when done) and throwaway MariaDB servers for
//! the source (and, for the comparison, a MariaDB target):
//!
//! - every fixture event lands alike in the three targets: MySQL,
//!   PostgreSQL and OpenSearch (rows and documents compared value by value
//!   with reconcile's text forms, JSON children included);
//! - an older version after a newer one (a 409) is success and keeps the
//!   newer document; a delete followed by an older update stays deleted;
//! - a value the index mapping refuses quarantines exactly that record;
//! - a stopped node is a retryable error, and the replay converges after
//!   a restart on the same data;
//! - the checkpoint only moves forward, and a redelivered batch is skipped;
//! - a bulk over the byte limit is split and every document lands.
//!
//! One node is shared by the tests of this file (each test has its own
//! index prefix and function name); the restart test has its own node.

use std::sync::OnceLock;

mod support;

use dms_cdc::dms::{deliveries, Delivery, Value};
use dms_cdc::engine::{Engine, Outcome, Settings};
use dms_cdc::local::MariaDb;
use dms_cdc::mapping::{Mapping, TargetTable, Transforms};
use dms_cdc::opensearch::local::OpenSearch;
use dms_cdc::opensearch::{Config, OpenSearchTarget};
use dms_cdc::position::{SequenceNumber, ShardId};
use dms_cdc::quarantine::{Filter, QuarantineStore};
use dms_cdc::replay::{event_files, read_event};
use dms_cdc::source::MysqlSource;
use dms_cdc::target::{TableWrites, Target, TargetRows, TargetTransaction};
use serde_json::{json, Value as Json};
use support::root;

type OpenSearchEngine = Engine<MysqlSource, OpenSearchTarget>;

const SHARD: &str = "shardId-000000000000";
/// Columns that hold JSON: compared as parsed JSON values.
const JSON_COLUMNS: [&str; 2] = ["ingredients", "meta"];

/// The node the tests share (it stops when the test process exits).
fn node() -> &'static OpenSearch {
    static NODE: OnceLock<OpenSearch> = OnceLock::new();
    NODE.get_or_init(|| OpenSearch::start().expect("a local OpenSearch node"))
}

fn mapping() -> (Mapping, Transforms) {
    let transforms = Transforms::standard();
    let mapping = Mapping::load(&root().join("fixtures/mapping.toml"), &transforms).unwrap();
    (mapping, transforms)
}

/// A prepared target on `url` whose indices start with `prefix`.
async fn target(url: &str, prefix: &str, extra: &str) -> OpenSearchTarget {
    let config = Config::from_url(&format!(
        "{url}/?prefix={prefix}&replicas=0&timeout=10s{extra}"
    ))
    .unwrap();
    let target = OpenSearchTarget::new(config, format!("{prefix}function")).unwrap();
    Target::prepare(&target, &mapping().0).await.unwrap();
    target
}

fn source() -> MariaDb {
    let db = MariaDb::start(1).expect("source mariadb");
    db.run_file(&root().join("fixtures/source.sql")).unwrap();
    db
}

fn engine(source: &MariaDb, target: OpenSearchTarget) -> OpenSearchEngine {
    let (mapping, transforms) = mapping();
    let pool = dms_cdc::source::pool(&source.url("recipes_src"), 4).unwrap();
    Engine::new(
        mapping,
        transforms,
        MysqlSource::from(pool),
        target,
        Settings {
            function_name: target_name(),
            chunk_size: 100,
        },
    )
}

fn target_name() -> String {
    "opensearch-target-test".into()
}

async fn refresh(target: &OpenSearchTarget) {
    let answer = target
        .client()
        .send(
            http::Method::POST,
            "/_refresh",
            "application/json",
            Vec::new(),
            "refresh",
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
}

/// Every key of `table` (key order of the target), through `TargetRows`.
async fn all_keys<T: TargetRows>(target: &T, table: &TargetTable) -> Vec<Vec<String>> {
    let mut keys = Vec::new();
    let mut after: Option<Vec<String>> = None;
    loop {
        let page = target.keys_after(table, after.as_deref(), 7).await.unwrap();
        let Some(last) = page.last().cloned() else {
            return keys;
        };
        keys.extend(page);
        after = Some(last);
    }
}

/// A text value as reconcile compares it: numbers as numbers, date-times
/// with six fraction digits, booleans as 1/0, JSON parsed (numbers in it
/// as f64).
fn normal(column: &str, text: Option<&str>) -> Json {
    fn numbers(v: Json) -> Json {
        match v {
            Json::Number(n) => json!(n.as_f64()),
            Json::Array(a) => Json::Array(a.into_iter().map(numbers).collect()),
            Json::Object(o) => Json::Object(o.into_iter().map(|(k, v)| (k, numbers(v))).collect()),
            v => v,
        }
    }
    let Some(t) = text else { return Json::Null };
    if JSON_COLUMNS.contains(&column) {
        return numbers(serde_json::from_str(t).unwrap_or_else(|e| panic!("{column}: {e}: {t}")));
    }
    match t {
        "true" | "t" => return json!(1.0),
        "false" | "f" => return json!(0.0),
        _ => {}
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return json!(d
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S%.6f")
            .to_string());
    }
    if let Ok(f) = t.parse::<f64>() {
        if t.len() < 16 {
            return json!(f);
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(t, format) {
            return json!(dt.format("%Y-%m-%d %H:%M:%S%.6f").to_string());
        }
    }
    json!(t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_lands_alike_in_mysql_postgresql_and_opensearch() {
    let rig = support::rig(100).await;
    rig.source_db
        .run_file(&root().join("fixtures/source-state.sql"))
        .unwrap();
    let os = target(node().url(), "fixtures-", "").await;
    let os_engine = engine(&rig.source_db, os.clone());
    let pg_db = dms_cdc::local::PostgreSql::start().unwrap();
    pg_db.create_database("global").unwrap();
    pg_db
        .run_file("global", &root().join("fixtures/target-postgres.sql"))
        .unwrap();
    let pg = dms_cdc::postgres::PostgresTarget::new(
        dms_cdc::postgres::pool(&pg_db.url("global"), 4).unwrap(),
        "fixtures",
        100,
    );
    Target::prepare(&pg, &mapping().0).await.unwrap();
    let pg_engine = Engine::new(
        mapping().0,
        mapping().1,
        rig.engine.source.clone(),
        pg.clone(),
        Settings {
            function_name: "fixtures".into(),
            chunk_size: 100,
        },
    );
    let batches: Vec<(String, Vec<Delivery>)> = event_files(&[root().join("fixtures/events")])
        .unwrap()
        .into_iter()
        .map(|f| {
            let d = deliveries(&read_event(&f).unwrap()).unwrap();
            (f.file_name().unwrap().to_string_lossy().into_owned(), d)
        })
        .collect();
    assert_eq!(batches.len(), 7, "fixtures/events changed: see this test");
    for (name, batch) in &batches {
        let mysql = rig.engine.process(batch).await;
        let report = os_engine.process(batch).await;
        let postgres = pg_engine.process(batch).await;
        assert_eq!(postgres.retry_error, None, "{name}: PostgreSQL");
        assert_eq!(
            postgres.outcomes, mysql.outcomes,
            "{name}: PostgreSQL outcomes"
        );
        assert_eq!(mysql.retry_error, None, "{name}: MySQL");
        assert_eq!(report.retry_error, None, "{name}: OpenSearch");
        if report.outcomes != mysql.outcomes {
            let q = os.quarantined(&Filter::default()).await.unwrap();
            let reasons: Vec<&str> = q.iter().map(|q| q.message.as_str()).collect();
            panic!(
                "{name}: outcomes {:?}, MySQL {:?}; quarantined: {reasons:#?}",
                report.outcomes, mysql.outcomes
            );
        }
        assert_eq!(
            report.summary.upserts, mysql.summary.upserts,
            "{name}: upserts"
        );
        assert_eq!(
            report.summary.deletes, mysql.summary.deletes,
            "{name}: deletes"
        );
    }
    refresh(&os).await;

    // The same documents as rows, value by value, versions included.
    let (mapping, _) = mapping();
    let mut problems = Vec::new();
    for table in &mapping.targets {
        let keys = all_keys(&rig.engine.target, table).await;
        assert!(!keys.is_empty(), "{} is empty", table.table);
        let mut os_keys = all_keys(&os, table).await;
        let mut sorted = keys.clone();
        sorted.sort();
        os_keys.sort();
        assert_eq!(os_keys, sorted, "{}: keys", table.table);
        let keys: Vec<Vec<Value>> = keys
            .into_iter()
            .map(|k| k.into_iter().map(Value::Text).collect())
            .collect();
        let mysql_rows = rig.engine.target.rows_by_key(table, &keys).await.unwrap();
        let os_rows = os.rows_by_key(table, &keys).await.unwrap();
        let pg_rows = pg.rows_by_key(table, &keys).await.unwrap();
        assert_eq!(os_rows.len(), mysql_rows.len(), "{}", table.table);
        assert_eq!(pg_rows.len(), mysql_rows.len(), "{}", table.table);
        let names = table.column_names();
        let key_at = names.iter().position(|n| *n == table.key[0]).unwrap();
        for m in &mysql_rows {
            let key = normal(names[key_at], m[key_at].as_deref());
            for (other, rows) in [("opensearch", &os_rows), ("postgresql", &pg_rows)] {
                let o = rows
                    .iter()
                    .find(|o| normal(names[key_at], o[key_at].as_deref()) == key)
                    .unwrap_or_else(|| panic!("{}: no {other} row {key}", table.table));
                for (i, n) in names.iter().enumerate() {
                    let (a, b) = (normal(n, m[i].as_deref()), normal(n, o[i].as_deref()));
                    if a != b {
                        problems.push(format!("{} {key}: {n}: mysql {a} {other} {b}", table.table));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The same quarantine (07's poison records), raw payloads verbatim.
    let quarantined = os.quarantined(&Filter::default()).await.unwrap();
    assert_eq!(quarantined.len(), 3, "{quarantined:#?}");
    let mysql_q = rig
        .engine
        .target
        .quarantined(&Filter::default())
        .await
        .unwrap();
    for (a, b) in quarantined.iter().zip(&mysql_q) {
        assert_eq!(
            (&a.sequence_number, &a.raw, &a.class),
            (&b.sequence_number, &b.raw, &b.class)
        );
    }

    // A second replay is skipped by the checkpoint.
    for (name, batch) in &batches {
        let report = os_engine.process(batch).await;
        assert!(
            report.outcomes.iter().all(|o| *o == Outcome::Skipped),
            "{name}: {:?}",
            report.outcomes
        );
    }
}

/// A version text of second `s` of a fixed minute at binlog offset `offset`.
fn version(s: u32, offset: u64) -> String {
    format!("2026-11-20 10:15:{s:02}.000000 0000000024:{offset:020} 0000000000 0011 1")
}

/// A `global_recipes` row with `title`, every other column NULL.
fn recipe(table: &TargetTable, id: i64, title: &str, version: &str) -> Vec<Value> {
    table
        .column_names()
        .iter()
        .map(|n| match *n {
            "legacy_id" => Value::Int(id),
            "title" => Value::Text(title.into()),
            "src_version" => Value::Text(version.into()),
            _ => Value::Null,
        })
        .collect()
}

async fn write(target: &OpenSearchTarget, table: &TargetTable, writes: TableWrites) {
    let mut tx = target.begin();
    tx.write(table, writes).await.unwrap();
    TargetTransaction::finish(tx, &[], None).await.unwrap();
}

async fn title(target: &OpenSearchTarget, table: &TargetTable, id: i64) -> Option<String> {
    let rows = target
        .rows_by_key(table, &[vec![Value::Int(id)]])
        .await
        .unwrap();
    let at = table
        .column_names()
        .iter()
        .position(|n| *n == "title")
        .unwrap();
    rows.first().and_then(|r| r[at].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_versions_and_deletes_never_win() {
    let os = target(node().url(), "versions-", "").await;
    let recipes = mapping().0.targets[1].clone();
    assert_eq!(recipes.table, "global_recipes");
    let up = |rows| TableWrites {
        target: 1,
        upserts: rows,
        ..TableWrites::default()
    };

    // A newer version, then an older one: the 409 is success, the newer stays.
    write(
        &os,
        &recipes,
        up(vec![recipe(&recipes, 1, "new", &version(20, 0))]),
    )
    .await;
    write(
        &os,
        &recipes,
        up(vec![recipe(&recipes, 1, "old", &version(10, 0))]),
    )
    .await;
    assert_eq!(title(&os, &recipes, 1).await.as_deref(), Some("new"));
    // The same version again (a replay) is accepted.
    write(
        &os,
        &recipes,
        up(vec![recipe(&recipes, 1, "new", &version(20, 0))]),
    )
    .await;
    // Later in the same second, farther in the binlog: newer.
    write(
        &os,
        &recipes,
        up(vec![recipe(&recipes, 1, "newer", &version(20, 1 << 20))]),
    )
    .await;
    assert_eq!(title(&os, &recipes, 1).await.as_deref(), Some("newer"));

    // A delete, then an older update: the document stays deleted.
    let delete = TableWrites {
        target: 1,
        deletes: vec![vec![Value::Int(1)]],
        tombstones: vec![(vec![Value::Int(1)], version(30, 0))],
        ..TableWrites::default()
    };
    write(&os, &recipes, delete).await;
    assert_eq!(title(&os, &recipes, 1).await, None);
    write(
        &os,
        &recipes,
        up(vec![recipe(&recipes, 1, "stale", &version(25, 0))]),
    )
    .await;
    assert_eq!(title(&os, &recipes, 1).await, None);
    // Even when OpenSearch has forgotten the deleted version (here at
    // once: `gc_deletes` 0 s; after a node restart it forgets too), the
    // tombstone index keeps the delete.
    let forgetful = target(node().url(), "forget-", "&gc-deletes=0s").await;
    write(
        &forgetful,
        &recipes,
        up(vec![recipe(&recipes, 1, "new", &version(20, 0))]),
    )
    .await;
    let delete = TableWrites {
        target: 1,
        deletes: vec![vec![Value::Int(1)]],
        tombstones: vec![(vec![Value::Int(1)], version(30, 0))],
        ..TableWrites::default()
    };
    write(&forgetful, &recipes, delete).await;
    refresh(&forgetful).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    refresh(&forgetful).await;
    write(
        &forgetful,
        &recipes,
        up(vec![recipe(&recipes, 1, "stale", &version(25, 0))]),
    )
    .await;
    assert_eq!(title(&forgetful, &recipes, 1).await, None);
    // A delete of a document never written leaves a tombstone too.
    let delete = TableWrites {
        target: 1,
        deletes: vec![vec![Value::Int(2)]],
        tombstones: vec![(vec![Value::Int(2)], version(30, 0))],
        ..TableWrites::default()
    };
    write(&os, &recipes, delete).await;
    write(
        &os,
        &recipes,
        up(vec![recipe(&recipes, 2, "stale", &version(25, 0))]),
    )
    .await;
    assert_eq!(title(&os, &recipes, 2).await, None);
    // A newer insert re-creates it.
    write(
        &os,
        &recipes,
        up(vec![recipe(&recipes, 1, "back", &version(40, 0))]),
    )
    .await;
    assert_eq!(title(&os, &recipes, 1).await.as_deref(), Some("back"));

    // The checkpoint only moves forward (by length, then digits).
    let shard = ShardId(SHARD.into());
    let seq = |s: &str| SequenceNumber::parse(s).unwrap();
    os.advance(&shard, &seq("500")).await.unwrap();
    os.advance(&shard, &seq("499")).await.unwrap();
    assert_eq!(os.checkpoint(&shard).await.unwrap(), Some(seq("500")));
    os.advance(&shard, &seq("1000")).await.unwrap();
    assert_eq!(os.checkpoint(&shard).await.unwrap(), Some(seq("1000")));
    os.advance(&shard, &seq("999")).await.unwrap();
    assert_eq!(os.checkpoint(&shard).await.unwrap(), Some(seq("1000")));
    // Concurrent advances end at the greatest.
    let tasks: Vec<_> = (1001..1009)
        .map(|n| {
            let os = os.clone();
            let shard = shard.clone();
            tokio::spawn(async move { os.advance(&shard, &seq(&n.to_string())).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(os.checkpoint(&shard).await.unwrap(), Some(seq("1008")));
}

fn user_batch(first_seq: u64, users: Vec<serde_json::Value>) -> Vec<Delivery> {
    users
        .into_iter()
        .enumerate()
        .map(|(i, after)| Delivery {
            shard_id: ShardId(SHARD.into()),
            sequence_number: SequenceNumber::parse(&format!(
                "49590338271490256608559692538361571095921575989{:09}",
                first_seq + i as u64
            ))
            .unwrap(),
            partition_key: "k".into(),
            approximate_arrival_ms: None,
            data: support::record("insert", "users", after, None),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_value_quarantines_only_its_record() {
    let source = source();
    let os = target(node().url(), "poison-", "").await;
    let engine = engine(&source, os.clone());
    // The first document maps display_name as text.
    let report = engine
        .process(&user_batch(1, vec![support::user(1, "Ann")]))
        .await;
    assert_eq!(report.outcomes, vec![Outcome::Applied]);
    let mut bad = support::user(3, "x");
    bad["name"] = json!({"not": "text"});
    let batch = user_batch(2, vec![support::user(2, "Bo"), bad, support::user(4, "Cy")]);
    let report = engine.process(&batch).await;
    assert_eq!(report.retry_error, None);
    assert_eq!(
        report.outcomes,
        vec![Outcome::Applied, Outcome::Quarantined, Outcome::Applied]
    );
    assert!(report.response.batch_item_failures.is_empty());
    let users = mapping().0.targets[0].clone();
    let keys: Vec<Vec<Value>> = (1..=4).map(|i| vec![Value::Int(i)]).collect();
    let rows = os.rows_by_key(&users, &keys).await.unwrap();
    let ids: Vec<Option<String>> = rows.iter().map(|r| r[0].clone()).collect();
    assert_eq!(
        ids,
        vec![Some("1".into()), Some("2".into()), Some("4".into())]
    );
    let q = os.quarantined(&Filter::default()).await.unwrap();
    assert_eq!(q.len(), 1, "{q:#?}");
    assert_eq!(q[0].raw, batch[1].data, "the raw payload, verbatim");
    assert_eq!(q[0].sequence_number, batch[1].sequence_number);
    assert_eq!(q[0].class, "write");
    assert!(
        q[0].message.contains("mapper_parsing_exception"),
        "{}",
        q[0].message
    );
    assert!(!q[0].message.contains("not\": \"text"), "{}", q[0].message);
    // Discarded: kept, no longer open.
    assert!(os.discard(q[0].id, "test").await.unwrap());
    assert!(os.quarantined(&Filter::default()).await.unwrap().is_empty());

    // A redelivered batch is skipped by the checkpoint.
    let again = engine.process(&batch).await;
    assert!(
        again.outcomes.iter().all(|o| *o == Outcome::Skipped),
        "{:?}",
        again.outcomes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_over_the_byte_limit_is_split() {
    let os = target(node().url(), "split-", "&bulk-bytes=300&bulk-actions=7").await;
    let recipes = mapping().0.targets[1].clone();
    let rows: Vec<Vec<Value>> = (1..=60)
        .map(|i| {
            recipe(
                &recipes,
                i,
                &format!("recipe {i} {}", "x".repeat(100)),
                &version(10, 0),
            )
        })
        .collect();
    let count = |os: OpenSearchTarget| async move {
        refresh(&os).await;
        let answer = os
            .client()
            .send(
                http::Method::GET,
                "/split-global_recipes/_count",
                "application/json",
                Vec::new(),
                "count",
            )
            .await
            .unwrap();
        serde_json::from_slice::<Json>(&answer.body).unwrap()["count"].as_u64()
    };
    write(
        &os,
        &recipes,
        TableWrites {
            target: 1,
            upserts: rows,
            ..TableWrites::default()
        },
    )
    .await;
    assert_eq!(count(os.clone()).await, Some(60));
    assert_eq!(
        dms_cdc::opensearch::bulk::split(
            &(1..=60)
                .map(|i| dms_cdc::opensearch::bulk::Action::index(
                    "i",
                    &i.to_string(),
                    None,
                    &"x".repeat(200)
                ))
                .collect::<Vec<_>>(),
            300,
            7
        )
        .len(),
        60
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_retries_and_the_replay_converges() {
    let source = source();
    let mut own = OpenSearch::start().expect("a local OpenSearch node");
    let os = target(own.url(), "restart-", "&timeout=5s").await;
    let engine = engine(&source, os.clone());
    let batch = user_batch(1, vec![support::user(1, "Ann"), support::user(2, "Bo")]);
    own.kill();
    let report = engine.process(&batch).await;
    assert!(report.retry_error.is_some(), "{:?}", report.outcomes);
    assert_eq!(
        report.response.batch_item_failures[0]
            .item_identifier
            .as_deref(),
        Some(batch[0].sequence_number.as_str()),
        "the first unapplied record"
    );
    own.restart().expect("restart on the same data");
    let mut converged = false;
    for _ in 0..5 {
        let report = engine.process(&batch).await;
        if report.retry_error.is_none() {
            assert_eq!(report.outcomes, vec![Outcome::Applied, Outcome::Applied]);
            converged = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    assert!(converged, "the replay did not converge after the restart");
    let users = mapping().0.targets[0].clone();
    let rows = os
        .rows_by_key(&users, &[vec![Value::Int(1)], vec![Value::Int(2)]])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        os.checkpoint(&ShardId(SHARD.into())).await.unwrap(),
        Some(batch[1].sequence_number.clone())
    );
}

/// HTTPS to a server whose certificate a test-made CA signed: refused with
/// the public roots, accepted with `ssl-ca` (the server is `openssl
/// s_server`, answering any request with a page).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_trusts_the_ca_of_ssl_ca_and_only_it() {
    let dir = tempfile::tempdir().unwrap();
    let files = dms_cdc::local::TlsFiles::generate(dir.path(), &["127.0.0.1"]).unwrap();
    let port = dms_cdc::local::free_port().unwrap();
    let mut server = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&files.cert)
        .arg("-key")
        .arg(&files.key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let get = |url: String| async move {
        let client =
            dms_cdc::opensearch::connection::Client::new(Config::from_url(&url).unwrap()).unwrap();
        client
            .send(
                http::Method::GET,
                "/",
                "application/json",
                Vec::new(),
                "get /",
            )
            .await
    };
    let refused = get(format!("https://127.0.0.1:{port}")).await;
    assert!(
        refused.is_err(),
        "the public roots trust a test-made CA: {refused:?}"
    );
    let answer = get(format!(
        "https://127.0.0.1:{port}?ssl-ca={}",
        files.ca.display()
    ))
    .await
    .unwrap();
    assert_eq!(answer.status, 200);
    let _ = server.kill();
    let _ = server.wait();
}
