//! The README's main job, as a user runs it: `dms-cdc demo`, from a
//! MariaDB source into a MariaDB, a PostgreSQL and an OpenSearch target,
//! and from a PostgreSQL source (`--source postgres`, logical decoding)
//! into a PostgreSQL and a MariaDB target.

use std::process::Command;

#[test]
fn the_demo_runs_the_whole_pipeline_with_zero_differences() {
    demo(&[]);
}

#[test]
fn the_demo_into_postgresql_has_zero_differences_too() {
    let stdout = demo(&["--target", "postgres"]);
    assert!(stdout.contains("a target PostgreSQL"), "{stdout}");
}

#[test]
fn the_demo_into_opensearch_has_zero_differences_too() {
    let stdout = demo(&["--target", "opensearch"]);
    assert!(stdout.contains("a target OpenSearch node"), "{stdout}");
}

#[test]
fn the_demo_from_postgresql_into_postgresql_has_zero_differences_too() {
    let stdout = demo(&["--source", "postgres", "--target", "postgres"]);
    assert!(
        stdout.contains("a source PostgreSQL (wal_level = logical), a target PostgreSQL"),
        "{stdout}"
    );
}

#[test]
fn the_demo_from_postgresql_into_mariadb_has_zero_differences_too() {
    let stdout = demo(&["--source", "postgres", "--target", "mysql"]);
    assert!(
        stdout.contains("a source PostgreSQL (wal_level = logical), a target MariaDB"),
        "{stdout}"
    );
}

/// Runs `dms-cdc demo <args>`, checks its summary; its output.
fn demo(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dms-cdc"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("demo")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "changes captured:",
        "records consumed:",
        "writes global_recipes:",
        "writes global_users:",
        "quarantined:        1",
        "[evaluate] target global_users: target column `created_at`: cannot convert string to datetime",
        "replication lag (ReplicationLag per batch): p50",
        "0 differences",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in\n{stdout}");
    }
    let captured: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("changes captured:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    let consumed: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("records consumed:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert_eq!(captured, consumed, "every captured record was consumed");
    stdout.into_owned()
}
