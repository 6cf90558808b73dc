//! One prepare pass: `replay --dry-run` (`replay::dry_run`) plans exactly
//! the writes the function makes. Every fixture goes through both: the dry
//! run, and the engine over in-memory adapters (an empty source, so every
//! row to rebuild from a re-query is found missing and deleted); the rows
//! built from images, the deletes, the rows to rebuild, the quarantined
//! records and the response must be the same.

use std::collections::BTreeSet;
use std::path::PathBuf;

use dms_cdc::dms::{into_deliveries, Value};
use dms_cdc::engine::{Engine, Settings};
use dms_cdc::mapping::{target_key, Mapping, Transforms};
use dms_cdc::replay::{dry_run, event_files, read_event};
use dms_cdc_core::testing::{MemorySource, MemoryTarget};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A write's rows as comparable text: (table, row).
fn rows(table: &str, rows: &[Vec<Value>]) -> Vec<(String, String)> {
    rows.iter()
        .map(|r| (table.to_owned(), format!("{r:?}")))
        .collect()
}

#[tokio::test]
async fn replay_dry_run_plans_the_writes_the_engine_makes_for_every_fixture() {
    let transforms = Transforms::standard();
    let mapping = Mapping::load(&repo().join("fixtures/mapping.toml"), &transforms).unwrap();
    let files = event_files(&[repo().join("fixtures/events")]).unwrap();
    assert!(files.len() >= 7, "the fixtures are there");
    // What was compared, so the test cannot pass by comparing nothing.
    let (mut upserts, mut deletes, mut quarantined) = (0, 0, 0);
    for file in files {
        let name = file.display().to_string();
        let event = read_event(&file).unwrap();
        let dry = dry_run(&mapping, &transforms, &event, &file).unwrap();

        let engine = Engine::new(
            mapping.clone(),
            transforms.clone(),
            MemorySource::default(),
            MemoryTarget::default(),
            Settings {
                function_name: "prepare-pass".into(),
                chunk_size: 500,
            },
        );
        let deliveries = into_deliveries(event).unwrap();
        let report = engine.process(&deliveries).await;
        assert_eq!(report.retry_error, None, "{name}");
        let state = engine.target.state();

        // Rows from images: the same rows, values and versions included.
        let mut planned: Vec<(String, String)> = Vec::new();
        let mut planned_deletes: BTreeSet<(String, String)> = BTreeSet::new();
        for w in &dry.writes {
            let table = &mapping.targets[w.target].table;
            planned.extend(rows(table, &w.upserts));
            planned_deletes.extend(rows(table, &w.deletes));
            let keys: Vec<Vec<Value>> = w.tombstones.iter().map(|(k, _)| k.clone()).collect();
            planned_deletes.extend(rows(table, &keys));
        }
        // Rows to rebuild: with nothing at the source, the engine deletes them.
        for (target, keys) in &dry.rebuild {
            let t = &mapping.targets[*target];
            for key in keys {
                let k = target_key(t, &key.values()).unwrap();
                planned_deletes.insert((t.table.clone(), format!("{k:?}")));
            }
        }
        let mut written: Vec<(String, String)> = Vec::new();
        let mut deleted: BTreeSet<(String, String)> = BTreeSet::new();
        for (table, w) in &state.log {
            written.extend(rows(table, &w.upserts));
            deleted.extend(rows(table, &w.deletes));
            let keys: Vec<Vec<Value>> = w.tombstones.iter().map(|(k, _)| k.clone()).collect();
            deleted.extend(rows(table, &keys));
        }
        planned.sort();
        written.sort();
        upserts += planned.len();
        deletes += planned_deletes.len();
        assert_eq!(planned, written, "{name}: rows from images");
        assert_eq!(planned_deletes, deleted, "{name}: deletes and rebuilds");

        // The same records quarantined, for the same stage.
        let dry_q: BTreeSet<(String, String)> = dry
            .quarantine
            .iter()
            .map(|q| (q.sequence_number.to_string(), q.class.to_string()))
            .collect();
        let engine_q: BTreeSet<(String, String)> = state
            .quarantine
            .values()
            .map(|q| (q.sequence_number.to_string(), q.class.to_string()))
            .collect();
        assert_eq!(dry_q, engine_q, "{name}: quarantined records");
        quarantined += dry_q.len();
        assert_eq!(
            serde_json::to_string(&dry.response).unwrap(),
            serde_json::to_string(&report.response).unwrap(),
            "{name}: response"
        );
    }
    assert!(
        upserts > 10 && deletes > 3 && quarantined > 2,
        "compared {upserts} rows from images, {deletes} deletes and rebuilds, {quarantined} quarantined records"
    );
}
