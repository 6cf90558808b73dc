//! `dms-cdc replay` as a user runs it: the binary, against throwaway MariaDB servers.

mod support;

use std::process::Command;

use support::root;

#[test]
fn replay_cli_applies_fixtures_and_reports_exit_codes() {
    let source = dms_cdc::local::MariaDb::start(1).unwrap();
    let target = dms_cdc::local::MariaDb::start(2).unwrap();
    source
        .run_file(&root().join("fixtures/source.sql"))
        .unwrap();
    source
        .run_file(&root().join("fixtures/source-state.sql"))
        .unwrap();
    target
        .run_file(&root().join("fixtures/target.sql"))
        .unwrap();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dms-cdc"))
            .current_dir(root())
            .args([
                "replay",
                "fixtures/events",
                "--mapping",
                "fixtures/mapping.toml",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let source_url = source.url("recipes_src");
    let target_url = target.url("global");
    let out = run(&["--source", &source_url, "--target", &target_url]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("== fixtures/events/07-poison.json"),
        "{stdout}"
    );
    assert!(stdout.contains("quarantined 3"), "{stdout}");
    assert!(stdout.contains("global_recipes:"), "{stdout}");
    assert_eq!(
        stdout
            .matches("response: {\"batchItemFailures\":[]}")
            .count(),
        7,
        "{stdout}"
    );

    // Again: everything is at or below the checkpoint.
    let again = run(&["--source", &source_url, "--target", &target_url]);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(0));
    assert!(
        !stdout.contains("applied 1") && stdout.contains("skipped"),
        "{stdout}"
    );

    // A target that is down: records stay pending, exit code 1.
    let port = dms_cdc::local::free_port().unwrap();
    let down = format!("mysql://u:p@127.0.0.1:{port}/global");
    let out = run(&["--source", &source_url, "--target", &down]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a target that is down is retryable: run again"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("preparing the target"));

    // Usage errors exit 2 and say why.
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--source"));
}

#[test]
fn capture_snapshot_to_file_then_replay_it() {
    let source = dms_cdc::local::MariaDb::start(1).unwrap();
    let target = dms_cdc::local::MariaDb::start(2).unwrap();
    source
        .run_file(&root().join("fixtures/source.sql"))
        .unwrap();
    source
        .run_file(&root().join("fixtures/source-state.sql"))
        .unwrap();
    target
        .run_file(&root().join("fixtures/target.sql"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recorded.json");
    let source_url = source.url("recipes_src");
    let out = Command::new(env!("CARGO_BIN_EXE_dms-cdc"))
        .current_dir(root())
        .args([
            "capture",
            "--source",
            &source_url,
            "--mapping",
            "fixtures/mapping.toml",
            "--snapshot",
            "--shards",
            "2",
        ])
        .arg("--to-file")
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let event: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let records = event["Records"].as_array().unwrap();
    assert!(records.len() > 20, "load records of every mapped table");
    let shards: std::collections::BTreeSet<&str> = records
        .iter()
        .map(|r| r["eventID"].as_str().unwrap().split(':').next().unwrap())
        .collect();
    assert_eq!(shards.len(), 2);

    let out = Command::new(env!("CARGO_BIN_EXE_dms-cdc"))
        .current_dir(root())
        .arg("replay")
        .arg(&file)
        .args([
            "--mapping",
            "fixtures/mapping.toml",
            "--source",
            &source_url,
            "--target",
            &target.url("global"),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("quarantined 0"), "{stdout}");
    let expected = include_str!("../fixtures/expected/global_recipes.json");
    let expected: serde_json::Value = serde_json::from_str(expected).unwrap();
    let pool = dms_cdc::source::pool(&target.url("global"), 1).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let count: u64 = rt.block_on(async {
        use mysql_async::prelude::*;
        let mut conn = pool.get_conn().await.unwrap();
        conn.query_first("SELECT COUNT(*) FROM global_recipes")
            .await
            .unwrap()
            .unwrap()
    });
    assert_eq!(
        count as usize,
        expected.as_array().unwrap().len(),
        "every published recipe of the source"
    );
}

/// A command's output into a closed pipe (`dms-cdc replay --dry-run ... |
/// head -1`, the reader gone): the rest of the output is dropped, quietly,
/// and the command ends with its own exit code instead of a panic.
#[test]
fn output_into_a_closed_pipe_is_dropped_not_a_panic() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_dms-cdc"))
        .current_dir(root())
        .args([
            "replay",
            "--dry-run",
            "fixtures/events",
            "--mapping",
            "fixtures/mapping.toml",
        ])
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("standard output"), "{stderr}");
}
