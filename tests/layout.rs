//! The workspace's arrows: a function links the core, its adapter and the
//! AWS pieces it needs, and nothing of the developer tooling or the CLI.

use std::process::Command;

/// Crates (and crate features) a function binary must never link.
const NOT_IN_A_FUNCTION: [&str; 8] = [
    "clap",
    "indicatif",
    "aws-sdk-sqs",
    "aws-sdk-kinesis",
    "tempfile",
    "dms-cdc-ops",
    "dms-cdc-devkit",
    "dms-cdc-cli",
];

fn tree(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--offline", "--prefix", "none", "-e", "normal"])
        .args(args)
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn names(tree: &str) -> Vec<String> {
    tree.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_mysql_function_links_no_tooling() {
    let crates = names(&tree(&["-p", "mysql-target"]));
    for wanted in ["dms-cdc-core", "dms-cdc-mysql", "dms-cdc-postgres"] {
        assert!(
            crates.iter().any(|c| c == wanted),
            "mysql-target does not link {wanted}"
        );
    }
    for forbidden in NOT_IN_A_FUNCTION {
        assert!(
            !crates.iter().any(|c| c == forbidden),
            "mysql-target links {forbidden}"
        );
    }
    // The binlog reader is the local capture's, not the function's.
    let features = tree(&["-p", "mysql-target", "-e", "features", "-i", "mysql_async"]);
    assert!(
        !features.contains("mysql_async feature \"binlog\""),
        "mysql-target links the binlog reader:\n{features}"
    );
}

#[test]
fn the_postgres_function_links_no_tooling() {
    let crates = names(&tree(&["-p", "postgres-target"]));
    for wanted in [
        "dms-cdc-core",
        "dms-cdc-postgres",
        "dms-cdc-mysql",
        "tokio-postgres",
    ] {
        assert!(
            crates.iter().any(|c| c == wanted),
            "postgres-target does not link {wanted}"
        );
    }
    for forbidden in NOT_IN_A_FUNCTION {
        assert!(
            !crates.iter().any(|c| c == forbidden),
            "postgres-target links {forbidden}"
        );
    }
    let features = tree(&[
        "-p",
        "postgres-target",
        "-e",
        "features",
        "-i",
        "mysql_async",
    ]);
    assert!(
        !features.contains("mysql_async feature \"binlog\""),
        "postgres-target links the binlog reader:\n{features}"
    );
}

#[test]
fn the_core_has_no_driver_runtime_or_sdk() {
    let crates = names(&tree(&["-p", "dms-cdc-core"]));
    for forbidden in [
        "tokio",
        "mysql_async",
        "tokio-postgres",
        "aws-config",
        "aws-sdk-secretsmanager",
        "lambda_runtime",
        "dms-cdc-mysql",
        "dms-cdc-postgres",
    ] {
        assert!(
            !crates.iter().any(|c| c == forbidden),
            "dms-cdc-core depends on {forbidden}"
        );
    }
}
