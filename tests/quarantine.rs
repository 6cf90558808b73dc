//! `dms-cdc quarantine`: records quarantined by a mapping that rejects
//! their values are listed, shown, fixed by a mapping change, redriven and
//! marked resolved (kept for audit); others are discarded with a reason.
//! Against throwaway servers: the first test for every target adapter
//! (`mysql::`, `postgres::`), the second against MariaDB.

mod support;

use std::process::Command;

use dms_cdc::dms::Value;
use dms_cdc::engine::{Engine, Outcome, Settings};
use dms_cdc::mapping::{convert, Conversion, Mapping, Transforms};
use dms_cdc::quarantine::{self, Filter, RedriveResult, State};
use dms_cdc::source::MysqlSource;
use serde_json::json;
use support::targets::TestTarget;
use support::{record, rig, rig_for, root, user, Rig};

fn engine_with<T: TestTarget>(
    rig: &Rig<T>,
    mapping: Mapping,
    transforms: Transforms,
) -> Engine<MysqlSource, T> {
    Engine::new(
        mapping,
        transforms,
        rig.engine.source.clone(),
        T::new(
            rig.target_pool.clone(),
            &rig.engine.settings.function_name,
            100,
        ),
        Settings {
            function_name: rig.engine.settings.function_name.clone(),
            chunk_size: 100,
        },
    )
}

/// The sample mapping with the `active` column of `global_users` as an enum map.
fn mapping_text(map: &str) -> String {
    let text = std::fs::read_to_string(root().join("fixtures/mapping.toml")).unwrap();
    let old = "name = \"active\"\nfrom = \"is_active\"\nconvert = \"bool\"";
    assert!(text.contains(old));
    text.replace(
        old,
        &format!("name = \"active\"\nfrom = \"is_active\"\nmap = {map}"),
    )
}

fn cli(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dms-cdc"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

every_target!(a_value_the_mapping_rejects_is_fixed_by_a_mapping_change_and_redriven);

async fn a_value_the_mapping_rejects_is_fixed_by_a_mapping_change_and_redriven<T: TestTarget>() {
    let mut rig = rig_for::<T>(100).await;
    let dir = tempfile::tempdir().unwrap();
    let broken_path = dir.path().join("broken.toml");
    let fixed_path = dir.path().join("fixed.toml");
    // Inactive users (is_active = 0) are missing from the map: rejected.
    std::fs::write(&broken_path, mapping_text(r#"{ "1" = 1 }"#)).unwrap();
    std::fs::write(&fixed_path, mapping_text(r#"{ "1" = 1, "0" = 0 }"#)).unwrap();
    let transforms = Transforms::standard();
    let broken = engine_with(
        &rig,
        Mapping::load(&broken_path, &transforms).unwrap(),
        transforms.clone(),
    );

    let mut inactive = user(2, "Bob");
    inactive["is_active"] = json!(0);
    let batch = vec![
        rig.delivery(
            "shardId-000000000000",
            record("insert", "users", user(1, "Ann"), None),
        ),
        rig.delivery(
            "shardId-000000000000",
            record("insert", "users", inactive, None),
        ),
        rig.delivery("shardId-000000000000", b"not json{".to_vec()),
        rig.delivery(
            "shardId-000000000000",
            record("insert", "users", user(3, "Cy"), None),
        ),
    ];
    let report = broken.process(&batch).await;
    assert_eq!(
        report.outcomes,
        vec![
            Outcome::Applied,
            Outcome::Quarantined,
            Outcome::Quarantined,
            Outcome::Applied
        ]
    );

    let target = T::url(&rig.target_db);
    let source = rig.source_db.url("recipes_src");
    let function = rig.engine.settings.function_name.clone();
    let db = [
        "--target",
        target.as_str(),
        "--function-name",
        function.as_str(),
    ];
    let with_db = |cmd: &[&str], extra: &[&str]| -> Vec<String> {
        cmd.iter()
            .chain(db.iter())
            .chain(extra.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&refs)
    };

    // list, with filters.
    let (code, out, err) = run(with_db(&["quarantine", "list"], &[]));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("2 record(s)"), "{out}");
    assert!(out.contains(batch[1].sequence_number.as_str()), "{out}");
    let (_, out, _) = run(with_db(&["quarantine", "list"], &["--class", "evaluate"]));
    assert!(
        out.contains("1 record(s)") && out.contains("recipes_src.users"),
        "{out}"
    );
    let (_, out, _) = run(with_db(&["quarantine", "list"], &["--table", "users"]));
    assert!(out.contains("1 record(s)"), "{out}");
    let (_, out, _) = run(with_db(&["quarantine", "list"], &["--since", "2000-01-01"]));
    assert!(out.contains("2 record(s)"), "{out}");
    let (_, out, _) = run(with_db(
        &["quarantine", "list"],
        &["--since", "2999-01-01T00:00:00Z"],
    ));
    assert!(out.contains("0 record(s)"), "{out}");

    let rows = quarantine::list(&rig.engine.target, &Filter::default())
        .await
        .unwrap();
    let evaluate = rows.iter().find(|r| r.class == "evaluate").unwrap().clone();
    let decode = rows.iter().find(|r| r.class == "decode").unwrap().clone();
    assert_eq!(evaluate.sequence_number, batch[1].sequence_number);
    assert_eq!(evaluate.attempts, 1);
    assert_eq!(evaluate.state, State::Open);
    assert!(evaluate.message.contains("active"), "{}", evaluate.message);

    // show: raw payload, error, attempts.
    let (code, out, _) = run(with_db(
        &["quarantine", "show", &evaluate.id.to_string()],
        &[],
    ));
    assert_eq!(code, Some(0));
    assert!(out.contains("\"name\": \"Bob\""), "{out}");
    assert!(out.contains("error class:     evaluate"), "{out}");
    assert!(out.contains("attempts:        1"), "{out}");
    assert!(out.contains("state:           open"), "{out}");

    // A redrive with the mapping still broken: attempts incremented, new error recorded, still open.
    let (code, out, _) = run(with_db(
        &["quarantine", "redrive"],
        &[
            "--class",
            "evaluate",
            "--mapping",
            broken_path.to_str().unwrap(),
            "--source",
            &source,
        ],
    ));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("still failing"), "{out}");
    let again = quarantine::show(&rig.engine.target, evaluate.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.attempts, 2);
    assert_eq!(again.state, State::Open);

    // The fixed mapping: a dry run says it would apply; the redrive applies and resolves.
    let (code, out, _) = run(with_db(
        &["quarantine", "redrive", &evaluate.id.to_string()],
        &["--mapping", fixed_path.to_str().unwrap(), "--dry-run"],
    ));
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("would apply (global_users: 1 from image"),
        "{out}"
    );
    let (code, out, err) = run(with_db(
        &["quarantine", "redrive"],
        &[
            "--table",
            "recipes_src.users",
            "--mapping",
            fixed_path.to_str().unwrap(),
            "--source",
            &source,
        ],
    ));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains("1 record(s): 1 resolved, 0 still failing"),
        "{out}"
    );
    let resolved = quarantine::show(&rig.engine.target, evaluate.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resolved.state, State::Resolved);
    assert!(
        resolved
            .resolution
            .as_deref()
            .unwrap()
            .starts_with("redriven "),
        "{:?}",
        resolved.resolution
    );
    assert_eq!(resolved.raw, batch[1].data, "kept for audit");

    // The undecodable record is discarded with a reason, and kept.
    let (code, out, _) = run(with_db(
        &["quarantine", "discard", &decode.id.to_string()],
        &["--reason", "not a DMS record: a test producer wrote it"],
    ));
    assert_eq!(code, Some(0), "{out}");
    let discarded = quarantine::show(&rig.engine.target, decode.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(discarded.state, State::Discarded);
    assert!(discarded
        .resolution
        .as_deref()
        .unwrap()
        .ends_with("not a DMS record: a test producer wrote it"));
    let (code, _, err) = run(with_db(
        &["quarantine", "discard", &decode.id.to_string()],
        &["--reason", "twice"],
    ));
    assert_eq!(code, Some(2), "only open records can be discarded: {err}");

    // Nothing open; everything kept.
    let (_, out, _) = run(with_db(&["quarantine", "list"], &[]));
    assert!(out.contains("0 record(s)"), "{out}");
    let (_, out, _) = run(with_db(&["quarantine", "list"], &["--state", "all"]));
    assert!(
        out.contains("2 record(s)") && out.contains("resolved") && out.contains("discarded"),
        "{out}"
    );

    // The target converged: user 2 is there, inactive (a boolean's text
    // form is 1/0 in MySQL, t/f in PostgreSQL).
    let users: Vec<Vec<String>> = rig
        .text_rows("SELECT user_id, display_name, active FROM global_users ORDER BY user_id")
        .await
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| match v.as_deref() {
                    Some("t") => "1".to_owned(),
                    Some("f") => "0".to_owned(),
                    other => other.unwrap_or("NULL").to_owned(),
                })
                .collect()
        })
        .collect();
    assert_eq!(
        users,
        [["1", "Ann", "1"], ["2", "Bob", "0"], ["3", "Cy", "1"]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_poison_zero_date_is_fixed_by_a_transform_and_redriven() {
    let mut rig = rig(100).await;
    // The demo's poison value: a zero DATETIME, which DMS renders as text the
    // `datetime` conversion rejects.
    let mut zero = user(51, "Zero");
    zero["created_at"] = json!("0000-00-00T00:00:00Z");
    let batch = vec![
        rig.delivery(
            "shardId-000000000000",
            record("insert", "users", zero, None),
        ),
        rig.delivery(
            "shardId-000000000000",
            record("insert", "users", user(52, "Fine"), None),
        ),
    ];
    let report = rig.engine.process(&batch).await;
    assert_eq!(
        report.outcomes,
        vec![Outcome::Quarantined, Outcome::Applied]
    );

    // Redriving with the unchanged mapping: still failing, attempts 2.
    let result = quarantine::redrive(&rig.engine, &Filter::default())
        .await
        .unwrap();
    assert!(
        matches!(result.rows[0].3, RedriveResult::StillFailing(ref e) if e.contains("created_at"))
    );
    let rows = quarantine::list(&rig.engine.target, &Filter::default())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].attempts, 2);

    // The fix: a transform that maps zero dates to the epoch.
    let mut transforms = Transforms::standard();
    transforms.register("zero_date_as_epoch", |args| match args {
        [Value::Text(t)] if t.starts_with("0000-00-00") => convert(
            &Value::Text("1970-01-01T00:00:00Z".into()),
            Conversion::Datetime,
        ),
        [v] => convert(v, Conversion::Datetime),
        _ => Err("expects 1 argument".into()),
    });
    let text = std::fs::read_to_string(root().join("fixtures/mapping.toml")).unwrap();
    let old = "name = \"created_at\"\nfrom = \"created_at\"\nconvert = \"datetime\"";
    let fixed_text = text.replacen(
        old,
        "name = \"created_at\"\ntransform = \"zero_date_as_epoch\"\nargs = [\"created_at\"]",
        1,
    );
    assert_ne!(fixed_text, text);
    let fixed = Mapping::parse("fixed.toml", &fixed_text, &transforms).unwrap();
    let engine = engine_with(&rig, fixed, transforms);
    let result = quarantine::redrive(&engine, &Filter::default())
        .await
        .unwrap();
    assert_eq!(result.resolved(), 1, "{:?}", result.rows);
    let all = Filter {
        state: State::All,
        ..Filter::default()
    };
    let rows = quarantine::list(&rig.engine.target, &all).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, State::Resolved);
    let created: Vec<(u64, String)> = rig
        .target_rows("SELECT user_id, CAST(created_at AS CHAR) FROM global_users ORDER BY user_id")
        .await
        .iter()
        .map(|r| (r.get::<u64, _>(0).unwrap(), r.get::<String, _>(1).unwrap()))
        .collect();
    assert_eq!(
        created,
        vec![
            (51, "1970-01-01 00:00:00.000000".into()),
            (52, "2026-01-02 03:04:05.000000".into())
        ]
    );
    // A second redrive finds nothing open and changes nothing.
    let result = quarantine::redrive(&engine, &Filter::default())
        .await
        .unwrap();
    assert!(result.rows.is_empty());
}
