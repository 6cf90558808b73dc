//! `capture` against a throwaway MariaDB: a workload's binlog becomes DMS
//! records that the decoder reads back with the right operations, tables,
//! values, before images, transaction details, control records and partition
//! keys; resuming from any transaction boundary yields exactly the rest; a
//! snapshot yields `load` records and a position streaming continues from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use dms_cdc::capture::{
    current_position, partition_key, shard_for, snapshot, BinlogPosition, Capture, CaptureOptions,
    CapturedRecord, ColumnFilter,
};
use dms_cdc::dms::{
    decode_payload, parse_binary, parse_datetime, ControlOperation, DataChange, DecodeOptions,
    DmsRecord, Operation, Payload, TableName, Value,
};
use dms_cdc::local::MariaDb;
use dms_cdc::position::{SequenceNumber, ShardId};
use mysql_async::prelude::*;
use mysql_async::{Opts, Pool};

const SCHEMA: &str = "recipes_src";
const WAIT: Duration = Duration::from_secs(60);

struct Source {
    _db: MariaDb,
    pool: Pool,
    opts: Opts,
}

async fn source() -> Source {
    let db = MariaDb::start(1).expect("mariadb");
    db.run_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/source.sql"))
        .unwrap();
    let url = db.url(SCHEMA);
    Source {
        pool: dms_cdc::source::pool(&url, 4).unwrap(),
        opts: Opts::from_url(&url).unwrap(),
        _db: db,
    }
}

/// Runs statements on one connection (a transaction when they say so).
async fn run(pool: &Pool, statements: &[&str]) {
    let mut conn = pool.get_conn().await.unwrap();
    for s in statements {
        conn.query_drop(*s)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

fn decode(record: &CapturedRecord, field: &str) -> DmsRecord {
    let seq =
        SequenceNumber::parse("49590338271490256608559692538361571095921575989136588898").unwrap();
    decode_payload(
        &ShardId("shardId-000000000000".into()),
        &seq,
        &record.payload,
        &DecodeOptions {
            before_image_field: field.to_owned(),
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&record.payload)))
}

fn data(r: &DmsRecord) -> &DataChange {
    match &r.payload {
        Payload::Data(d) => d,
        Payload::Control(c) => panic!("expected data, got control {c:?}"),
    }
}

fn text(v: Option<&Value>) -> &str {
    match v {
        Some(Value::Text(t)) => t,
        other => panic!("expected text, got {other:?}"),
    }
}

fn keys(row: &dms_cdc::dms::Row) -> Vec<&str> {
    row.keys().map(|k| k.as_str()).collect()
}

/// Operation (or control operation) and table of a record.
fn kind(r: &DmsRecord) -> (String, String) {
    match &r.payload {
        Payload::Data(d) => (d.operation.to_string(), d.table.table.clone()),
        Payload::Control(c) => (
            c.operation.to_string(),
            c.table
                .as_ref()
                .map(|t| t.table.clone())
                .unwrap_or_default(),
        ),
    }
}

/// The payload without what differs from one read to the next (`timestamp`)
/// or depends on where reading started (`prev-transaction-*`).
fn fingerprint(record: &CapturedRecord) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(&record.payload).unwrap();
    let meta = v["metadata"].as_object_mut().unwrap();
    meta.remove("timestamp");
    meta.remove("prev-transaction-id");
    meta.remove("prev-transaction-record-id");
    v
}

const LONG_STORY: &str = "INSERT INTO recipe_stories VALUES (101, REPEAT('Minas Gerais. ', 5000))";

/// The workload: one entry per transaction.
fn workload() -> Vec<Vec<&'static str>> {
    vec![
        vec!["INSERT INTO users VALUES (1, 'Ana Lima', 'ana@example.com', '2024-03-01 09:00:00.250000', 1)"],
        vec!["INSERT INTO users VALUES (2, 'Bruno Costa', NULL, '2024-03-02 14:30:15.000000', 1)"],
        vec!["INSERT INTO recipes (id, author_id, title, status, servings, rating, calories, created_at, updated_at, \
              external_ref, tags, thumbnail, prep_time, publish_date) VALUES (101, 1, 'Pão de Queijo', 'published', 4, \
              4.50, 312.5, '2025-01-10 12:00:00', '2026-11-01 08:00:00', 1234567890123456789, \
              '{\"cuisine\": \"brazilian\", \"score\": 2.50}', X'89504e47', '00:25:00', '2025-01-12')"],
        vec![LONG_STORY],
        vec![
            "START TRANSACTION",
            "INSERT INTO ingredients VALUES (1001, 101, 1, 'tapioca flour', 500.00, 'g'), (1002, 101, 2, 'milk', 250.00, 'ml')",
            "INSERT INTO ingredients VALUES (1003, 101, 3, 'parmesan', 150.00, 'g')",
            "INSERT INTO recipes (id, author_id, title, created_at) VALUES (102, 2, 'Shakshuka', '2025-02-03 18:45:00')",
            "INSERT INTO audit_log (action) VALUES ('recipes.imported')",
            "COMMIT",
        ],
        vec!["UPDATE recipes SET title = 'Pão de Queijo Mineiro' WHERE id = 101"],
        vec!["UPDATE ingredients SET recipe_id = 102, position = 1 WHERE id = 1002"],
        vec!["UPDATE users SET id = 20 WHERE id = 2"],
        vec!["DELETE FROM ingredients WHERE id = 1003"],
        // The rest goes to the next binlog file.
        vec!["FLUSH BINARY LOGS"],
        vec!["UPDATE recipe_stories SET body = CONCAT(body, '!') WHERE recipe_id = 101"],
        vec!["ALTER TABLE recipes ADD COLUMN difficulty VARCHAR(20) NULL AFTER title"],
        vec!["INSERT INTO recipes (id, title, difficulty, created_at) VALUES (103, 'Miso Ramen', 'hard', '2025-06-21 07:30:00')"],
        vec!["ALTER TABLE recipes DROP COLUMN difficulty"],
        vec!["UPDATE recipes SET servings = 2 WHERE id = 103"],
        vec![
            "START TRANSACTION",
            "UPDATE users SET name = 'Ana Lima Souza' WHERE id = 1",
            "DELETE FROM recipes WHERE id = 102",
            "COMMIT",
        ],
    ]
}

const EXPECTED: [(&str, &str); 20] = [
    ("insert", "users"),
    ("insert", "users"),
    ("insert", "recipes"),
    ("insert", "recipe_stories"),
    ("insert", "ingredients"),
    ("insert", "ingredients"),
    ("insert", "ingredients"),
    ("insert", "recipes"),
    ("insert", "audit_log"),
    ("update", "recipes"),
    ("update", "ingredients"),
    ("update", "users"),
    ("delete", "ingredients"),
    ("update", "recipe_stories"),
    ("add-column", "recipes"),
    ("insert", "recipes"),
    ("drop-column", "recipes"),
    ("update", "recipes"),
    ("update", "users"),
    ("delete", "recipes"),
];

async fn capture(
    src: &Source,
    from: &BinlogPosition,
    to: &BinlogPosition,
    options: CaptureOptions,
) -> Vec<CapturedRecord> {
    let mut capture = Capture::start(src.opts.clone(), from.clone(), options)
        .await
        .unwrap();
    let records = capture.read_until(to, WAIT).await.unwrap();
    assert_eq!(capture.position(), to);
    capture.close().await.unwrap();
    records
}

#[tokio::test]
async fn binlog_changes_become_dms_records() {
    let src = source().await;
    let start = current_position(&src.pool).await.unwrap();
    for tx in workload() {
        run(&src.pool, &tx).await;
    }
    let end = current_position(&src.pool).await.unwrap();
    assert!(start < end);

    let records = capture(&src, &start, &end, CaptureOptions::default()).await;
    let decoded: Vec<DmsRecord> = records.iter().map(|r| decode(r, "before-image")).collect();
    let kinds: Vec<(String, String)> = decoded.iter().map(kind).collect();
    let expected: Vec<(String, String)> = EXPECTED
        .iter()
        .map(|(o, t)| (o.to_string(), t.to_string()))
        .collect();
    assert_eq!(kinds, expected);
    for (r, d) in records.iter().zip(&decoded) {
        assert_eq!(d.table().map(|t| t.schema.as_str()), Some(SCHEMA));
        assert_eq!(Some(&r.table), d.table());
    }

    // Values, rendered as DMS does.
    let user1 = data(&decoded[0]);
    assert_eq!(user1.operation, Operation::Insert);
    assert_eq!(user1.after.get("id"), Some(&Value::Int(1)));
    assert_eq!(
        user1.after.get("email"),
        Some(&Value::Text("ana@example.com".into()))
    );
    let created = text(user1.after.get("created_at"));
    assert_eq!(created, "2024-03-01T09:00:00.250000Z");
    assert_eq!(
        parse_datetime(created).unwrap().to_string(),
        "2024-03-01 09:00:00.250"
    );
    assert_eq!(user1.after.get("is_active"), Some(&Value::Int(1)));
    assert_eq!(data(&decoded[1]).after.get("email"), Some(&Value::Null));
    let r101 = data(&decoded[2]);
    assert_eq!(text(r101.after.get("title")), "Pão de Queijo");
    assert_eq!(text(r101.after.get("status")), "published");
    assert_eq!(
        r101.after.get("rating"),
        Some(&Value::Decimal("4.50".into()))
    );
    assert_eq!(
        r101.after.get("calories"),
        Some(&Value::Decimal("312.5".into()))
    );
    assert_eq!(r101.after.get("servings"), Some(&Value::Int(4)));
    assert_eq!(r101.after.get("author_id"), Some(&Value::Int(1)));
    assert_eq!(
        r101.after.get("external_ref"),
        Some(&Value::Int(1234567890123456789))
    );
    assert_eq!(text(r101.after.get("created_at")), "2025-01-10T12:00:00Z");
    assert_eq!(text(r101.after.get("updated_at")), "2026-11-01T08:00:00Z");
    assert_eq!(text(r101.after.get("prep_time")), "00:25:00");
    assert_eq!(text(r101.after.get("publish_date")), "2025-01-12");
    assert_eq!(
        parse_binary(text(r101.after.get("thumbnail"))),
        Some(vec![0x89, 0x50, 0x4e, 0x47])
    );
    match r101.after.get("tags") {
        Some(Value::Json(j)) => {
            let v: serde_json::Value = serde_json::from_str(j).unwrap();
            assert_eq!(v["cuisine"], "brazilian");
        }
        other => panic!("tags: {other:?}"),
    }
    // The JSON column's numbers keep their text in the payload.
    assert!(String::from_utf8_lossy(&records[2].payload).contains("\"score\":2.50"));
    assert_eq!(r101.before, None);
    let story = data(&decoded[3]);
    assert_eq!(text(story.after.get("body")).len(), 14 * 5000);
    assert_eq!(
        data(&decoded[6]).after.get("quantity"),
        Some(&Value::Decimal("150.00".into()))
    );
    assert_eq!(data(&decoded[8]).after.get("id"), Some(&Value::Int(1)));

    // Before images: updates only, non-lob (no JSON `tags`, no story body).
    let title = data(&decoded[9]);
    let before = title.before.as_ref().expect("before image");
    assert_eq!(text(before.get("title")), "Pão de Queijo");
    assert_eq!(text(title.after.get("title")), "Pão de Queijo Mineiro");
    assert!(before.get("tags").is_none());
    assert!(title.after.get("tags").is_some());
    assert_eq!(before.get("rating"), Some(&Value::Decimal("4.50".into())));
    assert!(before.get("thumbnail").is_some());
    let moved = data(&decoded[10]);
    assert_eq!(
        moved.before.as_ref().unwrap().get("recipe_id"),
        Some(&Value::Int(101))
    );
    assert_eq!(moved.after.get("recipe_id"), Some(&Value::Int(102)));
    let rekeyed = data(&decoded[11]);
    assert_eq!(
        rekeyed.before.as_ref().unwrap().get("id"),
        Some(&Value::Int(2))
    );
    assert_eq!(rekeyed.after.get("id"), Some(&Value::Int(20)));
    assert_eq!(records[11].partition_key, "recipes_src.users.20");
    let deleted = data(&decoded[12]);
    assert_eq!(deleted.before, None);
    assert_eq!(text(deleted.after.get("name")), "parmesan");
    let story_update = data(&decoded[13]);
    assert_eq!(
        keys(story_update.before.as_ref().unwrap()),
        vec!["recipe_id"]
    );
    assert_eq!(text(story_update.after.get("body")).len(), 14 * 5000 + 1);

    // Control records with the table definition right after each statement.
    let Payload::Control(added) = &decoded[14].payload else {
        panic!()
    };
    assert_eq!(added.operation, ControlOperation::AddColumn);
    assert_eq!(added.table, Some(TableName::new(SCHEMA, "recipes")));
    let columns = added.detail["table-def"]["columns"].as_object().unwrap();
    let order = [
        "id",
        "author_id",
        "title",
        "difficulty",
        "status",
        "servings",
        "rating",
        "calories",
        "created_at",
        "updated_at",
        "external_ref",
        "tags",
        "thumbnail",
        "prep_time",
        "publish_date",
    ];
    assert_eq!(columns.len(), order.len());
    // The columns are listed in table order (the decoder's map sorts them: read the text).
    let raw = String::from_utf8_lossy(&records[14].payload);
    let at: Vec<usize> = order
        .iter()
        .map(|c| raw.find(&format!("\"{c}\":{{")).unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{raw}");
    assert_eq!(
        columns["difficulty"],
        serde_json::json!({"type": "WSTRING", "length": 20, "nullable": true})
    );
    assert_eq!(
        columns["id"],
        serde_json::json!({"type": "INT8", "nullable": false})
    );
    assert_eq!(columns["author_id"]["type"], "UINT8");
    assert_eq!(
        columns["rating"],
        serde_json::json!({"type": "NUMERIC", "precision": 4, "scale": 2, "nullable": true})
    );
    assert_eq!(columns["tags"]["type"], "NCLOB");
    assert_eq!(
        added.detail["table-def"]["primary-key"],
        serde_json::json!(["id"])
    );
    assert_eq!(records[14].partition_key, CaptureOptions::default().task_id);
    assert_eq!(text(data(&decoded[15]).after.get("difficulty")), "hard");
    let Payload::Control(dropped) = &decoded[16].payload else {
        panic!()
    };
    assert_eq!(dropped.operation, ControlOperation::DropColumn);
    let columns = dropped.detail["table-def"]["columns"].as_object().unwrap();
    assert_eq!(columns.len(), 14);
    assert!(!columns.contains_key("difficulty"));
    assert!(data(&decoded[17]).after.get("difficulty").is_none());
    assert_eq!(
        data(&decoded[17]).after.get("servings"),
        Some(&Value::Int(2))
    );

    // Transaction details: present, counted within each transaction, chained.
    let mut by_tx: Vec<(String, Vec<u64>)> = Vec::new();
    let mut previous: Option<(String, u64)> = None;
    for (r, d) in records.iter().zip(&decoded) {
        if matches!(d.payload, Payload::Control(_)) {
            assert!(d.metadata.transaction().transaction_id.is_none());
            continue;
        }
        let t = d.metadata.transaction();
        let id = t.transaction_id.expect("transaction-id").to_owned();
        let record_id: u64 = t.transaction_record_id.unwrap().parse().unwrap();
        let commit = t.commit_timestamp.unwrap();
        assert_eq!(commit.len(), 20, "{commit}");
        assert!(commit.ends_with('Z'));
        assert_eq!(
            r.commit_time
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
            commit
        );
        let stream_position: BinlogPosition = t.stream_position.unwrap().parse().unwrap();
        assert!(stream_position >= start && stream_position < r.position);
        assert_eq!(d.metadata.partition_key_type(), Some("primary-key"));
        assert_eq!(
            d.metadata.partition_key_value(),
            Some(r.partition_key.as_str())
        );
        match by_tx.last_mut() {
            Some((last, ids)) if *last == id => ids.push(record_id),
            _ => {
                let expected_prev = previous.clone();
                assert_eq!(
                    t.prev_transaction_id.map(str::to_owned).zip(
                        t.prev_transaction_record_id
                            .map(|p| p.parse::<u64>().unwrap())
                    ),
                    expected_prev,
                    "prev of transaction {id}"
                );
                by_tx.push((id.clone(), vec![record_id]));
            }
        }
        previous = Some((id, record_id));
    }
    for (id, ids) in &by_tx {
        assert_eq!(
            *ids,
            (1..=ids.len() as u64).collect::<Vec<_>>(),
            "transaction {id}"
        );
    }
    let sizes: Vec<usize> = by_tx.iter().map(|(_, ids)| ids.len()).collect();
    assert_eq!(sizes, vec![1, 1, 1, 1, 5, 1, 1, 1, 1, 1, 1, 1, 2]);
    let distinct: BTreeSet<&String> = by_tx.iter().map(|(id, _)| id).collect();
    assert_eq!(distinct.len(), by_tx.len());

    // Partition keys: schema.table.pk, the same key for the same row, one shard per key.
    let mut shard_of: BTreeMap<String, usize> = BTreeMap::new();
    for (r, d) in records.iter().zip(&decoded) {
        let Payload::Data(change) = &d.payload else {
            continue;
        };
        let pk = match change.table.table.as_str() {
            "recipe_stories" => "recipe_id",
            _ => "id",
        };
        let key_value = match change.after.get(pk) {
            Some(Value::Int(i)) => i.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            r.partition_key,
            partition_key(&change.table, &[key_value], true)
        );
        let shard = shard_for(&r.partition_key, 4);
        assert_eq!(
            *shard_of.entry(r.partition_key.clone()).or_insert(shard),
            shard
        );
    }
    assert_eq!(records[0].partition_key, "recipes_src.users.1");
    assert_eq!(records[18].partition_key, "recipes_src.users.1");
    assert_eq!(records[8].partition_key, "recipes_src.audit_log.1");

    // Positions: non-decreasing, shared within a transaction, ending at the end.
    for pair in records.windows(2) {
        assert!(pair[0].position <= pair[1].position);
    }
    assert_eq!(records.last().unwrap().position, end);
    assert_ne!(records[12].position.file, records[13].position.file);

    // Resuming from every transaction boundary yields exactly the rest.
    let boundaries: BTreeSet<BinlogPosition> = std::iter::once(start.clone())
        .chain(records.iter().map(|r| r.position.clone()))
        .collect();
    for (i, from) in boundaries.iter().enumerate() {
        let options = CaptureOptions {
            server_id: 100 + i as u32,
            ..CaptureOptions::default()
        };
        let resumed = capture(&src, from, &end, options).await;
        let expected: Vec<serde_json::Value> = records
            .iter()
            .filter(|r| r.position > *from)
            .map(fingerprint)
            .collect();
        let got: Vec<serde_json::Value> = resumed.iter().map(fingerprint).collect();
        assert_eq!(got, expected, "resumed from {from}");
    }

    // Other task settings: pk-only before images.
    let pk_only = capture(
        &src,
        &start,
        &end,
        CaptureOptions {
            column_filter: ColumnFilter::PkOnly,
            ..CaptureOptions::default()
        },
    )
    .await;
    let d = decode(&pk_only[9], "before-image");
    assert_eq!(keys(data(&d).before.as_ref().unwrap()), vec!["id"]);
    let d = decode(&pk_only[11], "before-image");
    assert_eq!(
        data(&d).before.as_ref().unwrap().get("id"),
        Some(&Value::Int(2))
    );

    // All columns, two tables only.
    let all = capture(
        &src,
        &start,
        &end,
        CaptureOptions {
            column_filter: ColumnFilter::All,
            tables: Some(
                [
                    TableName::new(SCHEMA, "users"),
                    TableName::new(SCHEMA, "recipes"),
                ]
                .into_iter()
                .collect(),
            ),
            ..CaptureOptions::default()
        },
    )
    .await;
    let all: Vec<DmsRecord> = all.iter().map(|r| decode(r, "before-image")).collect();
    let tables: BTreeSet<String> = all.iter().map(|d| kind(d).1).collect();
    assert_eq!(
        tables,
        ["recipes", "users"].map(String::from).into_iter().collect()
    );
    assert_eq!(all.len(), 12);
    let title = all
        .iter()
        .find(|d| kind(d) == ("update".into(), "recipes".into()))
        .unwrap();
    let before = data(title).before.as_ref().unwrap();
    assert!(before.get("tags").is_some());
    assert_eq!(before.len(), 14);

    // Mapping LOB columns, UseLargeIntegerValue off, no schema.table prefix,
    // another before-image field name.
    let mut lob = BTreeMap::new();
    lob.insert(
        TableName::new(SCHEMA, "recipes"),
        ["thumbnail".to_owned()].into_iter().collect(),
    );
    let other = capture(
        &src,
        &start,
        &end,
        CaptureOptions {
            before_image_field: "bi".into(),
            lob_columns: lob,
            large_integer_value: false,
            schema_table_prefix: false,
            ..CaptureOptions::default()
        },
    )
    .await;
    let d = decode(&other[2], "bi");
    assert_eq!(
        data(&d).after.get("external_ref"),
        Some(&Value::Lossy("1.23456789012346E+18".into()))
    );
    assert_eq!(other[2].partition_key, "101");
    let d = decode(&other[9], "bi");
    let before = data(&d).before.as_ref().unwrap();
    assert!(before.get("thumbnail").is_none() && before.get("tags").is_none());
    assert!(before.get("title").is_some());
}

#[tokio::test]
async fn snapshot_loads_rows_and_streaming_continues_after_it() {
    let src = source().await;
    run(
        &src.pool,
        &[
            "INSERT INTO users VALUES (1, 'Ana Lima', 'ana@example.com', '2024-03-01 09:00:00.250000', 1)",
            "INSERT INTO recipes (id, author_id, title, rating, created_at, updated_at, tags, thumbnail) VALUES \
             (101, 1, 'Pão de Queijo', 4.50, '2025-01-10 12:00:00', '2026-11-01 08:00:00', '[\"snack\", 1.50]', X'00ff')",
            LONG_STORY,
        ],
    )
    .await;
    // A writer inserts users while the snapshot is taken: every user must end
    // up exactly once, in the snapshot or in the stream after its position.
    let writer_pool = src.pool.clone();
    let writer = tokio::spawn(async move {
        let mut conn = writer_pool.get_conn().await.unwrap();
        for id in 1000..1300u64 {
            conn.exec_drop(
                "INSERT INTO users VALUES (?, 'w', NULL, '2024-01-01 00:00:00', 1)",
                (id,),
            )
            .await
            .unwrap();
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let tables = [
        TableName::new(SCHEMA, "users"),
        TableName::new(SCHEMA, "recipes"),
        TableName::new(SCHEMA, "recipe_stories"),
    ];
    let snap = snapshot(&src.pool, &tables, &CaptureOptions::default())
        .await
        .unwrap();
    writer.await.unwrap();
    run(
        &src.pool,
        &["UPDATE recipes SET servings = 3 WHERE id = 101"],
    )
    .await;
    let end = current_position(&src.pool).await.unwrap();

    let loads: Vec<DmsRecord> = snap
        .records
        .iter()
        .map(|r| decode(r, "before-image"))
        .collect();
    for (r, d) in snap.records.iter().zip(&loads) {
        assert_eq!(data(d).operation, Operation::Load);
        assert_eq!(r.position, snap.position);
        assert!(r.commit_time.is_none());
        assert!(d.metadata.transaction().transaction_id.is_none());
        assert_eq!(
            d.metadata.partition_key_value(),
            Some(r.partition_key.as_str())
        );
    }
    let recipe = loads
        .iter()
        .map(data)
        .find(|d| d.table.table == "recipes")
        .unwrap();
    assert_eq!(
        recipe.after.get("rating"),
        Some(&Value::Decimal("4.50".into()))
    );
    assert_eq!(text(recipe.after.get("created_at")), "2025-01-10T12:00:00Z");
    assert_eq!(text(recipe.after.get("updated_at")), "2026-11-01T08:00:00Z");
    assert_eq!(text(recipe.after.get("status")), "draft");
    assert_eq!(text(recipe.after.get("thumbnail")), "0x00ff");
    assert!(matches!(recipe.after.get("tags"), Some(Value::Json(_))));
    assert!(String::from_utf8_lossy(
        &snap
            .records
            .iter()
            .find(|r| r.table.table == "recipes")
            .unwrap()
            .payload
    )
    .contains("[\"snack\",1.50]"));
    let ana = loads
        .iter()
        .map(data)
        .find(|d| d.table.table == "users" && d.after.get("id") == Some(&Value::Int(1)))
        .unwrap();
    assert_eq!(
        text(ana.after.get("created_at")),
        "2024-03-01T09:00:00.250000Z"
    );
    let story = loads
        .iter()
        .map(data)
        .find(|d| d.table.table == "recipe_stories")
        .unwrap();
    assert_eq!(text(story.after.get("body")).len(), 14 * 5000);
    assert_eq!(
        snap.records
            .iter()
            .find(|r| r.table.table == "recipe_stories")
            .unwrap()
            .partition_key,
        "recipes_src.recipe_stories.101"
    );

    let streamed = capture(&src, &snap.position, &end, CaptureOptions::default()).await;
    let streamed: Vec<DmsRecord> = streamed.iter().map(|r| decode(r, "before-image")).collect();
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    for d in loads.iter().chain(&streamed).map(data) {
        if d.table.table == "users" && d.operation != Operation::Update {
            let Some(Value::Int(id)) = d.after.get("id") else {
                panic!()
            };
            *seen.entry(*id).or_default() += 1;
        }
    }
    let mut expected: BTreeMap<i64, usize> = (1000..1300).map(|id| (id, 1)).collect();
    expected.insert(1, 1);
    assert_eq!(seen, expected);
    let last = data(streamed.last().unwrap());
    assert_eq!(last.operation, Operation::Update);
    assert_eq!(last.after.get("servings"), Some(&Value::Int(3)));
    assert!(streamed
        .iter()
        .map(data)
        .all(|d| d.operation != Operation::Load));

    // A change logged as a statement cannot be captured: an error, never a silent loss.
    let mut capture = Capture::start(src.opts.clone(), end.clone(), CaptureOptions::default())
        .await
        .unwrap();
    run(
        &src.pool,
        &["INSERT INTO users VALUES (5, 'Row', NULL, '2024-01-01 00:00:00', 1)"],
    )
    .await;
    let tx = capture
        .next_transaction(WAIT)
        .await
        .unwrap()
        .expect("a transaction");
    assert_eq!(tx.records.len(), 1);
    assert_eq!(tx.records[0].position, tx.position);
    assert_eq!(capture.position(), &tx.position);
    run(
        &src.pool,
        &[
            "SET SESSION binlog_format = 'STATEMENT'",
            "INSERT INTO users VALUES (6, 'Statement', NULL, '2024-01-01 00:00:00', 1)",
        ],
    )
    .await;
    let error = capture.next_transaction(WAIT).await.unwrap_err();
    assert!(error.to_string().contains("binlog_format=ROW"), "{error}");
}
