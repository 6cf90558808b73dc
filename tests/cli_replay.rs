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
