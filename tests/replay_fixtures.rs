//! Replays every fixture in `fixtures/events` through the same decode and plan
//! code the functions run (`replay::dry_run`, no database) and checks, file by
//! file, what each fixture is there to show. See `fixtures/README.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{NaiveDate, NaiveTime};
use dms_cdc::dms::{
    decode_record, deliveries, ControlOperation, DmsRecord, Operation, Payload, Row, Value,
};
use dms_cdc::mapping::{build_row, convert, Conversion, Mapping, Related, Transforms};
use dms_cdc::plan::{Action, Image, KeyPart, KeyTuple, TargetPlan};
use dms_cdc::replay::{dry_run, event_files, read_event, DryRun};

/// The hand-written fixtures, all of which must be present.
const HAND_WRITTEN: [&str; 7] = [
    "01-load.json",
    "02-insert-update-delete.json",
    "03-child-moves.json",
    "04-control.json",
    "05-lob-and-lossy.json",
    "06-types.json",
    "07-poison.json",
];

const EMPTY_RESPONSE: &str = r#"{"batchItemFailures":[]}"#;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn events_dir() -> PathBuf {
    repo().join("fixtures").join("events")
}

fn mapping() -> Mapping {
    let path = repo().join("fixtures").join("mapping.toml");
    Mapping::load(&path, &Transforms::standard()).expect("fixtures/mapping.toml loads")
}

fn replay(mapping: &Mapping, name: &str) -> DryRun {
    let path = events_dir().join(name);
    let event = read_event(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let run = dry_run(mapping, &Transforms::standard(), &event, &path)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(run.record_count, event.records.len(), "{name}");
    run
}

/// The decoded records of a fixture, one `Result` per Kinesis record.
fn decode(mapping: &Mapping, name: &str) -> Vec<Result<DmsRecord, String>> {
    let event = read_event(&events_dir().join(name)).unwrap();
    let options = mapping.decode_options();
    deliveries(&event)
        .unwrap()
        .iter()
        .map(|d| decode_record(d, &options).map_err(|e| e.to_string()))
        .collect()
}

fn target<'a>(mapping: &Mapping, run: &'a DryRun, table: &str) -> &'a TargetPlan {
    run.plan
        .targets
        .iter()
        .find(|tp| mapping.targets[tp.target].table == table)
        .unwrap_or_else(|| panic!("no plan for target {table}"))
}

fn key(i: i128) -> KeyTuple {
    KeyTuple(vec![KeyPart::Int(i)])
}

fn int_of(k: &KeyTuple) -> i128 {
    match k.0.as_slice() {
        [KeyPart::Int(i)] => *i,
        other => panic!("not a single integer key: {other:?}"),
    }
}

/// `(key, action name, first record, last record)` of every planned write.
fn ops(tp: &TargetPlan) -> Vec<(i128, &'static str, usize, usize)> {
    tp.ops
        .iter()
        .map(|(k, op)| (int_of(k), op.action.name(), op.first_record, op.last_record))
        .collect()
}

/// `(value, earliest record)` of the reverse lookup on `columns`.
fn lookup(tp: &TargetPlan, columns: &[&str]) -> Vec<(i128, usize)> {
    let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
    tp.lookups
        .get(&columns)
        .map(|l| l.tuples.iter().map(|(k, i)| (int_of(k), *i)).collect())
        .unwrap_or_default()
}

/// The image the upsert of key `k` is built from.
fn upsert_row<'r>(run: &'r DryRun, tp: &TargetPlan, k: i128) -> &'r Row {
    let op = &tp.ops[&key(k)];
    match op.action {
        Action::Upsert => op.image(&run.records).expect("the upsert's image"),
        other => panic!("key {k}: expected an upsert, got {other:?}"),
    }
}

fn data(record: &DmsRecord) -> (&Row, Option<&Row>, Operation, String) {
    match &record.payload {
        Payload::Data(d) => (
            &d.after,
            d.before.as_ref(),
            d.operation,
            d.table.to_string(),
        ),
        Payload::Control(c) => panic!("expected a data record, got control {}", c.operation),
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn response_json(run: &DryRun) -> String {
    serde_json::to_string(&run.response).unwrap()
}

/// Every file in the folder replays; the hand-written ones are all there;
/// positions look like Kinesis's and Lambda is never asked to redeliver.
#[test]
fn every_fixture_replays() {
    let m = mapping();
    let files = event_files(&[events_dir()]).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in HAND_WRITTEN {
        assert!(
            names.iter().any(|n| n == expected),
            "missing fixture {expected}"
        );
    }
    let transforms = Transforms::standard();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let event = read_event(file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let run = dry_run(&m, &transforms, &event, file).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(run.record_count > 0, "{name}: no records");
        // One shard, 56-digit sequence numbers, strictly increasing.
        let seqs: Vec<&str> = event
            .records
            .iter()
            .map(|r| r.kinesis.sequence_number.as_str())
            .collect();
        for s in &seqs {
            assert_eq!(s.len(), 56, "{name}: sequence number {s}");
        }
        let decoded = deliveries(&event).unwrap();
        for pair in decoded.windows(2) {
            assert!(
                pair[0].sequence_number < pair[1].sequence_number,
                "{name}: order"
            );
            assert_eq!(pair[0].shard_id, pair[1].shard_id, "{name}: one shard");
        }
        assert!(run.plan.errors.is_empty(), "{name}: {:?}", run.plan.errors);
        // Decoded or quarantined: either way the shard moves on.
        assert_eq!(response_json(&run), EMPTY_RESPONSE, "{name}");
        let text = run.render(&m, &transforms);
        assert!(
            text.contains(&format!("response: {EMPTY_RESPONSE}")),
            "{name}: {text}"
        );
        assert!(!text.contains("cannot build"), "{name}: {text}");
    }
}

#[test]
fn fixture_01_full_load() {
    let m = mapping();
    let run = replay(&m, "01-load.json");
    assert!(run.undecodable.is_empty());
    let c = &run.plan.counts;
    assert_eq!(
        (c.records, c.mapped, c.unmapped, c.control, c.unchanged),
        (14, 14, 0, 0, 0)
    );
    assert!(run.records.iter().all(|r| data(r).2 == Operation::Load));
    // Full-load records carry no transaction details.
    assert!(run
        .records
        .iter()
        .all(|r| r.metadata.transaction().transaction_id.is_none()));

    // Users: 1:1, built from the images.
    let users = target(&m, &run, "global_users");
    assert_eq!(
        ops(users),
        vec![
            (1, "upsert", 0, 0),
            (2, "upsert", 1, 1),
            (3, "upsert", 2, 2)
        ]
    );
    assert_eq!(upsert_row(&run, users, 2).get("email"), Some(&Value::Null));
    assert_eq!(
        upsert_row(&run, users, 3).get("is_active"),
        Some(&Value::Int(0))
    );

    // Recipes: joins and children, so always re-queried; the draft too (the
    // rebuild applies the filter). Story and ingredient rows rebuild their
    // recipe directly (the `on` column is the root key).
    let recipes = target(&m, &run, "global_recipes");
    assert_eq!(
        ops(recipes),
        vec![
            (101, "rebuild", 3, 11),
            (102, "rebuild", 4, 13),
            (103, "rebuild", 5, 8)
        ]
    );
    // Authors are found by a reverse lookup on recipes.author_id.
    assert_eq!(
        lookup(recipes, &["author_id"]),
        vec![(1, 0), (2, 1), (3, 2)]
    );
    assert_eq!(recipes.lookups.len(), 1);
}

#[test]
fn fixture_02_insert_update_delete() {
    let m = mapping();
    let run = replay(&m, "02-insert-update-delete.json");
    assert!(run.undecodable.is_empty());
    let c = &run.plan.counts;
    assert_eq!(c.records, 10);
    assert_eq!(c.mapped, 9);
    assert_eq!(c.unmapped, 1, "audit_log is not in the mapping");
    assert_eq!(c.control, 0);
    assert_eq!(
        c.unchanged, 1,
        "the update of recipe 102 changes only updated_at"
    );
    assert_eq!(c.without_before_image, 0);
    assert_eq!(data(&run.records[9]).3, "recipes_src.audit_log");

    // Transaction details (IncludeTransactionDetails): one transaction for
    // the first four records, the next one points back to it.
    let t0 = run.records[0].metadata.transaction();
    let t3 = run.records[3].metadata.transaction();
    let t4 = run.records[4].metadata.transaction();
    assert!(t0.transaction_id.is_some() && t0.commit_timestamp.is_some());
    assert!(t0
        .stream_position
        .unwrap()
        .starts_with("mysql-bin-changelog."));
    assert_eq!(t0.transaction_id, t3.transaction_id);
    assert_eq!(t3.transaction_record_id, Some("4"));
    assert_eq!(t4.prev_transaction_id, t3.transaction_id);
    assert_eq!(t4.prev_transaction_record_id, Some("4"));

    // The title update carries a non-LOB before image: no `tags` (JSON).
    let (after, before, op, _) = data(&run.records[4]);
    assert_eq!(op, Operation::Update);
    let before = before.expect("before image");
    assert_eq!(before.get("title"), Some(&text("Pão de Queijo")));
    assert_eq!(after.get("title"), Some(&text("Pão de Queijo Mineiro")));
    assert_eq!(before.get("tags"), None);

    let users = target(&m, &run, "global_users");
    // global_users soft-deletes and the delete image is complete, so the user
    // delete plans a tombstone (the row rebuilt from the image with
    // is_deleted set), which is how src/plan.rs writes a soft `Delete`.
    let op = &users.ops[&key(3)];
    match op.action {
        Action::Tombstone(Image::After) => assert_eq!(
            op.image(&run.records).and_then(|row| row.get("name")),
            Some(&text("Chen Wei"))
        ),
        other => panic!("user 3: expected a tombstone (soft delete), got {other:?}"),
    }
    assert_eq!(
        ops(users),
        vec![(3, "tombstone", 8, 8), (4, "upsert", 0, 0)]
    );

    let recipes = target(&m, &run, "global_recipes");
    assert_eq!(
        ops(recipes),
        vec![
            // title update (4), then its ingredient 1003 deleted (7)
            (101, "rebuild", 4, 7),
            // updated_at only, but the non-LOB before image lacks `tags`:
            // nothing proves the row unchanged, so it is rebuilt
            (103, "rebuild", 6, 6),
            // inserted with its story and an ingredient
            (104, "rebuild", 1, 3),
        ]
    );
    assert!(
        !recipes.ops.contains_key(&key(102)),
        "unchanged update skipped"
    );
    // The new user and the deleted user: their recipes are looked up.
    assert_eq!(lookup(recipes, &["author_id"]), vec![(3, 8), (4, 0)]);
}

#[test]
fn fixture_03_child_moves_and_author_rename() {
    let m = mapping();
    let run = replay(&m, "03-child-moves.json");
    assert!(run.undecodable.is_empty());
    assert_eq!(run.plan.counts.records, 3);
    assert_eq!(run.plan.counts.unchanged, 0);

    let (after, before, _, table) = data(&run.records[0]);
    assert_eq!(table, "recipes_src.ingredients");
    assert_eq!(after.get("recipe_id"), Some(&Value::Int(102)));
    assert_eq!(before.unwrap().get("recipe_id"), Some(&Value::Int(101)));

    let recipes = target(&m, &run, "global_recipes");
    // Ingredient 1002 moved from recipe 101 to 102: both are rebuilt, from
    // the before and the after image of the same record.
    assert_eq!(
        ops(recipes),
        vec![(101, "rebuild", 0, 0), (102, "rebuild", 0, 0)]
    );
    // The author's name changed: recipes are found by author_id. User 2's
    // change (email only) is not read by global_recipes: no lookup for 2.
    assert_eq!(lookup(recipes, &["author_id"]), vec![(1, 1)]);
    assert_eq!(
        recipes.lookups.keys().cloned().collect::<Vec<_>>(),
        vec![vec!["author_id".to_owned()]]
    );

    let users = target(&m, &run, "global_users");
    assert_eq!(ops(users), vec![(1, "upsert", 1, 1), (2, "upsert", 2, 2)]);
    assert_eq!(
        upsert_row(&run, users, 1).get("name"),
        Some(&text("Ana Lima Souza"))
    );
    assert_eq!(
        upsert_row(&run, users, 2).get("email"),
        Some(&text("bruno.costa@example.com"))
    );
}

#[test]
fn fixture_04_control_records() {
    let m = mapping();
    let run = replay(&m, "04-control.json");
    assert!(run.undecodable.is_empty());
    let c = &run.plan.counts;
    assert_eq!((c.records, c.mapped, c.unmapped, c.control), (7, 4, 0, 3));
    assert_eq!(run.plan.controls, vec![1, 3, 5]);

    let controls: Vec<(ControlOperation, String)> = run
        .plan
        .controls
        .iter()
        .map(|i| match &run.records[*i].payload {
            Payload::Control(ctl) => (ctl.operation, ctl.table.as_ref().unwrap().to_string()),
            Payload::Data(_) => panic!("record {i} is not a control record"),
        })
        .collect();
    assert_eq!(
        controls,
        vec![
            (
                ControlOperation::AddColumn,
                "recipes_src.recipes".to_owned()
            ),
            (
                ControlOperation::CreateTable,
                "recipes_src.recipe_ratings".to_owned()
            ),
            (
                ControlOperation::DropColumn,
                "recipes_src.recipes".to_owned()
            ),
        ]
    );
    let Payload::Control(add) = &run.records[1].payload else {
        unreachable!()
    };
    assert!(add.mentions("difficulty"));
    assert!(!add.operation.may_break_mapping());
    let Payload::Control(drop) = &run.records[5].payload else {
        unreachable!()
    };
    assert!(!drop.mentions("difficulty"), "the table-def after the drop");
    assert!(drop.operation.may_break_mapping());

    // No write and no lookup comes from a control record.
    for tp in &run.plan.targets {
        for op in tp.ops.values() {
            assert!(!run.plan.controls.contains(&op.first_record));
            assert!(!run.plan.controls.contains(&op.last_record));
        }
        for l in tp.lookups.values() {
            assert!(l.tuples.values().all(|i| !run.plan.controls.contains(i)));
        }
    }
    let users = target(&m, &run, "global_users");
    assert_eq!(ops(users), vec![(5, "upsert", 0, 0)]);
    let recipes = target(&m, &run, "global_recipes");
    // Insert (2, with the added column), ingredient (4), update (6).
    assert_eq!(ops(recipes), vec![(105, "rebuild", 2, 6)]);
    assert_eq!(lookup(recipes, &["author_id"]), vec![(5, 0)]);
    let (after, _, _, _) = data(&run.records[2]);
    assert_eq!(after.get("difficulty"), Some(&text("medium")));
}

#[test]
fn fixture_05_truncated_lob_lossy_integer_and_huge_unsigned_ids() {
    let m = mapping();
    let run = replay(&m, "05-lob-and-lossy.json");
    assert!(run.undecodable.is_empty());
    assert_eq!(run.plan.counts.records, 4);

    // The story update: limited LOB mode cut the body at 1024 bytes, and the
    // non-LOB before image holds the key only.
    let (after, before, op, table) = data(&run.records[0]);
    assert_eq!(
        (op, table.as_str()),
        (Operation::Update, "recipes_src.recipe_stories")
    );
    match after.get("body") {
        Some(Value::Text(body)) => assert_eq!(body.len(), 1024),
        other => panic!("body: {other:?}"),
    }
    let before = before.expect("before image");
    assert_eq!(before.keys().collect::<Vec<_>>(), vec!["recipe_id"]);

    // external_ref was rounded by DMS (UseLargeIntegerValue false).
    let (after, _, _, _) = data(&run.records[1]);
    assert_eq!(
        after.get("external_ref"),
        Some(&Value::Lossy("1.23456789012346E+18".to_owned()))
    );
    assert!(after.has_lossy());

    let recipes = target(&m, &run, "global_recipes");
    // The LOB update rebuilds its recipe; the lossy recipe is rebuilt (re-queried), never upserted from the image.
    assert_eq!(
        ops(recipes),
        vec![(101, "rebuild", 0, 0), (106, "rebuild", 1, 1)]
    );
    assert_eq!(recipes.ops[&key(106)].action, Action::Rebuild);

    // BIGINT UNSIGNED ids beyond i64 plan like any other.
    let max = i128::from(u64::MAX);
    let near = i128::from(u64::MAX - 5);
    let (after, _, _, _) = data(&run.records[2]);
    assert_eq!(after.get("id"), Some(&Value::UInt(u64::MAX)));
    let users = target(&m, &run, "global_users");
    assert_eq!(
        ops(users),
        vec![(near, "upsert", 3, 3), (max, "upsert", 2, 2)]
    );
    let built = build_row(
        &m.targets[users.target],
        upsert_row(&run, users, max),
        &Related::default(),
        &Transforms::standard(),
    )
    .unwrap();
    assert_eq!(built[0], Value::UInt(u64::MAX), "user_id");
    assert_eq!(lookup(recipes, &["author_id"]), vec![(near, 3), (max, 2)]);
}

#[test]
fn fixture_06_value_families() {
    let m = mapping();
    let records: Vec<DmsRecord> = decode(&m, "06-types.json")
        .into_iter()
        .map(|r| r.expect("decodes"))
        .collect();
    assert_eq!(records.len(), 4);

    // Recipe 201: every family of the recipes table.
    let (r, _, op, table) = data(&records[0]);
    assert_eq!(
        (op, table.as_str()),
        (Operation::Insert, "recipes_src.recipes")
    );
    let expected: BTreeMap<&str, Value> = [
        ("id", Value::Int(201)),
        ("author_id", Value::Int(1)),
        ("title", text("Khao Soi")),
        ("status", text("published")),
        ("servings", Value::Null),
        ("rating", Value::Decimal("4.50".to_owned())),
        ("calories", Value::Float(0.0015)),
        ("created_at", text("2026-11-20T10:15:00Z")),
        ("updated_at", text("2026-11-20T10:15:00Z")),
        ("external_ref", Value::Null),
        (
            "tags",
            Value::Json(r#"{"cuisine":"thai","spicy":true,"tags":["noodles","curry"]}"#.to_owned()),
        ),
        ("thumbnail", text("0x89504e470d0a1a0a")),
        ("prep_time", text("00:25:00")),
        ("publish_date", text("2026-11-20")),
    ]
    .into_iter()
    .collect();
    assert_eq!(r.len(), expected.len());
    for (column, value) in &expected {
        assert_eq!(r.get(column), Some(value), "column {column}");
    }
    // The conversions the mapping names.
    let created = convert(r.get("created_at").unwrap(), Conversion::Datetime).unwrap();
    let wall = NaiveDate::from_ymd_opt(2026, 11, 20)
        .unwrap()
        .and_hms_opt(10, 15, 0)
        .unwrap();
    assert_eq!(created, Value::DateTime(wall), "the Z is dropped, no shift");
    assert_eq!(
        convert(r.get("created_at").unwrap(), Conversion::UnixSeconds).unwrap(),
        Value::Int(wall.and_utc().timestamp())
    );
    assert_eq!(
        convert(r.get("thumbnail").unwrap(), Conversion::Binary).unwrap(),
        Value::Bytes(vec![0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
    );
    assert_eq!(
        convert(r.get("prep_time").unwrap(), Conversion::Time).unwrap(),
        Value::Time(NaiveTime::from_hms_opt(0, 25, 0).unwrap())
    );
    assert_eq!(
        convert(r.get("publish_date").unwrap(), Conversion::Date).unwrap(),
        Value::Date(NaiveDate::from_ymd_opt(2026, 11, 20).unwrap())
    );
    assert_eq!(
        convert(r.get("rating").unwrap(), Conversion::Decimal).unwrap(),
        Value::Decimal("4.50".to_owned()),
        "exact, trailing zero kept"
    );

    // Recipe 202: external_ref absent (not provided), not NULL.
    let (r2, _, _, _) = data(&records[1]);
    assert_eq!(r2.get("external_ref"), None);
    assert!(!r2.contains_key("external_ref"));
    assert_eq!(r.get("external_ref"), Some(&Value::Null));
    assert_eq!(r2.get("title"), Some(&text("Crème Brûlée")));
    assert_eq!(r2.get("rating"), Some(&Value::Decimal("3.00".to_owned())));
    // A DOUBLE without an exponent keeps its text as a decimal.
    assert_eq!(
        r2.get("calories"),
        Some(&Value::Decimal("412.5".to_owned()))
    );
    assert_eq!(r2.get("tags"), Some(&Value::Json("[]".to_owned())));
    assert_eq!(r2.get("thumbnail"), Some(&Value::Null));
    assert_eq!(r2.get("status"), Some(&text("archived")));

    // Users with mixed-case email; TINYINT(1) as 0/1.
    let (u6, _, _, _) = data(&records[2]);
    assert_eq!(u6.get("email"), Some(&text("Fatima.Zahra@Example.COM")));
    assert_eq!(u6.get("is_active"), Some(&Value::Int(1)));
    let (u7, _, _, _) = data(&records[3]);
    assert_eq!(u7.get("is_active"), Some(&Value::Int(0)));

    // The plan: recipes re-queried, users upserted; the email is lower-cased
    // when the row is built.
    let run = replay(&m, "06-types.json");
    assert_eq!(
        ops(target(&m, &run, "global_recipes")),
        vec![(201, "rebuild", 0, 0), (202, "rebuild", 1, 1)]
    );
    let users = target(&m, &run, "global_users");
    assert_eq!(ops(users), vec![(6, "upsert", 2, 2), (7, "upsert", 3, 3)]);
    let t = &m.targets[users.target];
    let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    let col = |name: &str| names.iter().position(|n| *n == name).unwrap();
    for (id, email, active) in [
        (6, "fatima.zahra@example.com", true),
        (7, "gus@example.org", false),
    ] {
        let built = build_row(
            t,
            upsert_row(&run, users, id),
            &Related::default(),
            &Transforms::standard(),
        )
        .unwrap();
        assert_eq!(built[col("email")], text(email));
        assert_eq!(built[col("active")], Value::Bool(active));
        assert!(matches!(built[col("created_at")], Value::DateTime(_)));
    }
}

#[test]
fn fixture_07_poison_records_are_quarantined() {
    let m = mapping();
    let name = "07-poison.json";
    let run = replay(&m, name);
    let event = read_event(&events_dir().join(name)).unwrap();
    let seqs: Vec<String> = event
        .records
        .iter()
        .map(|r| r.kinesis.sequence_number.clone())
        .collect();
    assert_eq!(run.record_count, 5);
    // Three bad records (not JSON, operation "upsert", record-type "ddl"):
    // each is undecodable. (The brief said "exactly two"; the fixture has
    // three bad records and each one is, correctly, a decode error.)
    assert_eq!(run.undecodable.len(), 3, "{:#?}", run.undecodable);
    assert_eq!(run.records.len(), 2);
    let expect = [
        (1, "table (unknown)", "payload is not a JSON object"),
        (
            2,
            "table recipes_src.recipes",
            r#"unknown operation "upsert" for record-type "data""#,
        ),
        (
            3,
            "table recipes_src.recipes",
            r#"unknown record-type "ddl""#,
        ),
    ];
    for (message, (index, table, problem)) in run.undecodable.iter().zip(expect) {
        assert!(message.contains("shard shardId-000000000000"), "{message}");
        assert!(
            message.contains(&format!("sequence number {}", seqs[index])),
            "{message}"
        );
        assert!(message.contains(table), "{message}");
        assert!(message.contains(problem), "{message}");
    }
    // Quarantined records do not hold the shard.
    assert_eq!(response_json(&run), EMPTY_RESPONSE);

    // The good records around them are planned (indices into run.records).
    assert_eq!(run.records[0].sequence_number.as_str(), seqs[0]);
    assert_eq!(run.records[1].sequence_number.as_str(), seqs[4]);
    assert_eq!(
        ops(target(&m, &run, "global_users")),
        vec![(8, "upsert", 0, 0)]
    );
    assert_eq!(
        ops(target(&m, &run, "global_recipes")),
        vec![(101, "rebuild", 1, 1)]
    );
}
