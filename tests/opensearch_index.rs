//! The migration lifecycle into a real OpenSearch node, through the
//! `dms-cdc` binary: `index create`, `backfill`, `reconcile` (0
//! differences), then a blue/green rebuild: `index create` of generation 2
//! beside the aliased generation 1, a backfill and a reconcile of it
//! directly (`index=concrete`) while readers still see generation 1,
//! `index swap` (readers see generation 2 at once, generation 1 is kept),
//! and `index swap --delete-old` (it is gone).

mod support;

use std::process::Command;

use dms_cdc::local::MariaDb;
use dms_cdc::opensearch::local::OpenSearch;
use support::root;

fn cli(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dms-cdc"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The status of `GET path` on the node.
fn status(node: &OpenSearch, path: &str) -> u16 {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{}{path}", node.url()))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn backfill_reconcile_and_a_blue_green_rebuild_through_the_binary() {
    let source = MariaDb::start(1).unwrap();
    source
        .run_file(&root().join("fixtures/source.sql"))
        .unwrap();
    source
        .run_sql(&format!(
            "USE recipes_src; {}",
            support::generated::source_sql(30, 120)
        ))
        .unwrap();
    let node = OpenSearch::start().unwrap();
    let source_url = source.url("recipes_src");
    let v1 = format!("{}?replicas=0", node.url());
    let v2 = format!("{}?replicas=0&index-version=2&index=concrete", node.url());
    let run = |args: &[&str]| {
        let (code, out) = cli(args);
        assert_eq!(code, 0, "dms-cdc {}:\n{out}", args.join(" "));
        out
    };
    let load = |target: &str, function: &str| {
        run(&[
            "backfill",
            "--mapping",
            "fixtures/mapping.toml",
            "--source",
            &source_url,
            "--target",
            target,
            "--function-name",
            function,
            "--chunk-size",
            "50",
            "--progress",
            "none",
        ])
    };
    let check = |target: &str| {
        run(&[
            "reconcile",
            "--mapping",
            "fixtures/mapping.toml",
            "--source",
            &source_url,
            "--target",
            target,
            "--function-name",
            "search",
            "--chunk-size",
            "40",
        ])
    };

    let created = run(&[
        "index",
        "create",
        "--mapping",
        "fixtures/mapping.toml",
        "--target",
        &v1,
    ]);
    assert!(
        created.contains("global_recipes-v1: ready (alias global_recipes -> global_recipes-v1)"),
        "{created}"
    );
    load(&v1, "search");
    let clean = check(&v1);
    assert!(clean.contains("90 rows compared, 0 differences"), "{clean}");

    // The source changes; generation 2 is built beside generation 1.
    source
        .run_sql("UPDATE recipes_src.recipes SET title = 'renamed' WHERE id = 2")
        .unwrap();
    let created = run(&[
        "index",
        "create",
        "--mapping",
        "fixtures/mapping.toml",
        "--target",
        &v2,
    ]);
    assert!(
        created.contains("global_recipes-v2: ready (alias global_recipes -> global_recipes-v1)"),
        "{created}"
    );
    // Its own progress lanes: generation 1's finished lanes are not its.
    load(&v2, "search-v2");
    let rebuilt = check(&v2);
    assert!(rebuilt.contains("0 differences"), "{rebuilt}");
    // Readers still see generation 1, one rename behind.
    let stale = cli(&[
        "reconcile",
        "--mapping",
        "fixtures/mapping.toml",
        "--source",
        &source_url,
        "--target",
        &v1,
        "--function-name",
        "search",
    ]);
    assert_eq!(stale.0, 1, "{}", stale.1);
    assert!(
        stale.1.contains("different global_recipes 2: title"),
        "{}",
        stale.1
    );

    let swapped = run(&[
        "index",
        "swap",
        "--mapping",
        "fixtures/mapping.toml",
        "--target",
        &format!("{}?index-version=2", node.url()),
    ]);
    assert!(
        swapped.contains("global_recipes: global_recipes-v1 -> global_recipes-v2"),
        "{swapped}"
    );
    let clean = check(&v1);
    assert!(clean.contains("0 differences"), "{clean}");
    assert_eq!(
        status(&node, "/global_recipes-v1"),
        200,
        "generation 1 is kept"
    );

    let deleted = run(&[
        "index",
        "swap",
        "--delete-old",
        "--mapping",
        "fixtures/mapping.toml",
        "--target",
        &format!("{}?index-version=2", node.url()),
    ]);
    assert!(deleted.contains("(deleted global_recipes-v1)"), "{deleted}");
    assert_eq!(status(&node, "/global_recipes-v1"), 404);
    assert_eq!(status(&node, "/global_recipes"), 200);
}
