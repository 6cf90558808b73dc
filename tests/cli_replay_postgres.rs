//! `dms-cdc replay` with a `postgres://` target: the binary picks the
//! PostgreSQL adapter by the URL's scheme (a MariaDB source re-queried, a
//! PostgreSQL target written), against throwaway servers.

mod support;

use std::process::Command;

use support::root;

#[test]
fn replay_cli_writes_a_postgres_target() {
    let source = dms_cdc::local::MariaDb::start(1).unwrap();
    source
        .run_file(&root().join("fixtures/source.sql"))
        .unwrap();
    source
        .run_file(&root().join("fixtures/source-state.sql"))
        .unwrap();
    let pg = dms_cdc::local::PostgreSql::start().unwrap();
    pg.create_database("global").unwrap();
    pg.run_file("global", &root().join("fixtures/target-postgres.sql"))
        .unwrap();
    let run = |target: &str| {
        Command::new(env!("CARGO_BIN_EXE_dms-cdc"))
            .current_dir(root())
            .args([
                "replay",
                "fixtures/events",
                "--mapping",
                "fixtures/mapping.toml",
                "--source",
                &source.url("recipes_src"),
                "--target",
                target,
            ])
            .output()
            .unwrap()
    };
    let out = run(&pg.url("global"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout
            .matches("response: {\"batchItemFailures\":[]}")
            .count(),
        7,
        "{stdout}"
    );
    assert!(stdout.contains("quarantined 3"), "{stdout}");
    // The rows and the bookkeeping are in PostgreSQL (an exception fails psql).
    pg.run_sql(
        "global",
        "DO $$ BEGIN
           IF (SELECT count(*) FROM global_users) = 0 THEN RAISE EXCEPTION 'no users'; END IF;
           IF (SELECT count(*) FROM global_recipes) = 0 THEN RAISE EXCEPTION 'no recipes'; END IF;
           IF (SELECT count(*) FROM dms_cdc_quarantine) <> 3 THEN RAISE EXCEPTION 'quarantine'; END IF;
           IF (SELECT count(*) FROM dms_cdc_checkpoint) = 0 THEN RAISE EXCEPTION 'no checkpoint'; END IF;
         END $$",
    )
    .unwrap();

    // An unknown scheme is a usage error naming the flag.
    let out = run("oracle://u@h/db");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--target"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
