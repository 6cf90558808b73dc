//! Fuzzes the mapping evaluator with the sample mapping (`fixtures/mapping.toml`):
//! the input is a batch of DMS JSON documents, one per line (as
//! `json-unformatted` writes them). Every document that decodes is planned
//! with `plan_batch`, and every row the plan or a re-query could build goes
//! through `build_row` (conversions, enum maps, transforms, pack, children
//! JSON), `passes_filter` and `target_key`. Any input must give rows or
//! typed errors, never a panic. Run with `bash fuzz/run.sh` (see README).
#![no_main]

use std::sync::OnceLock;

use dms_cdc_core::dms::{decode_payload, DmsRecord, Payload, Row};
use dms_cdc_core::mapping::{build_row, passes_filter, target_key, Mapping, Related, Transforms};
use dms_cdc_core::plan::plan_batch;
use dms_cdc_core::position::{SequenceNumber, ShardId};
use libfuzzer_sys::fuzz_target;

/// Records per input: enough to coalesce and look up, small enough to stay fast.
const MAX_RECORDS: usize = 32;
/// Child rows per children lookup.
const MAX_CHILDREN: usize = 8;

struct Setup {
    mapping: Mapping,
    transforms: Transforms,
    shard: ShardId,
    sequence_numbers: Vec<SequenceNumber>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let transforms = Transforms::standard();
        let text = include_str!("../../fixtures/mapping.toml");
        let mapping = Mapping::parse("fixtures/mapping.toml", text, &transforms)
            .expect("fixtures/mapping.toml is valid");
        let sequence_numbers = (0..MAX_RECORDS)
            .map(|i| {
                SequenceNumber::parse(&format!(
                    "495903382714902566085596925383615710959215759891365{i:05}"
                ))
                .expect("a decimal sequence number")
            })
            .collect();
        Setup {
            mapping,
            transforms,
            shard: ShardId("shardId-000000000000".into()),
            sequence_numbers,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = setup();
    let options = s.mapping.decode_options();
    let records: Vec<DmsRecord> = data
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .zip(&s.sequence_numbers)
        .filter_map(|(line, seq)| decode_payload(&s.shard, seq, line, &options).ok())
        .collect();

    // The planner, then the rows it builds from images (as the engine does).
    let plan = plan_batch(&s.mapping, &records);
    for tp in &plan.targets {
        let Some(target) = s.mapping.targets.get(tp.target) else {
            continue;
        };
        for (key, op) in &tp.ops {
            if let Some(image) = op.image(&records) {
                let _ = build_row(target, image, &Related::default(), &s.transforms);
            } else {
                // An upsert or tombstone always names an image its record has.
                assert!(op.action.image().is_none(), "{op:?}: no image");
            }
            let _ = target_key(target, &key.values());
        }
    }

    // What a re-query would hand the evaluator: any decoded image as the root
    // row, and the others as its joined and child rows, so that values of
    // every kind reach the join columns and the children JSON too.
    let mut rows: Vec<&Row> = Vec::new();
    for record in &records {
        match &record.payload {
            Payload::Data(change) => {
                rows.push(&change.after);
                rows.extend(change.before.as_ref());
            }
            Payload::Control(control) => {
                let _ = s.mapping.broken_by(control);
            }
        }
    }
    if rows.is_empty() {
        return;
    }
    for target in &s.mapping.targets {
        for (i, root) in rows.iter().enumerate() {
            let _ = passes_filter(target, root);
            let joins: Vec<Option<&Row>> = (0..target.joins.len())
                .map(|j| (j + i) % (rows.len() + 1))
                .map(|n| rows.get(n).copied())
                .collect();
            let children: Vec<Vec<&Row>> = (0..target.children.len())
                .map(|c| {
                    rows.iter()
                        .cycle()
                        .skip(i + c)
                        .take(rows.len().min(MAX_CHILDREN))
                        .copied()
                        .collect()
                })
                .collect();
            let related = Related {
                joins: &joins,
                children: &children,
                nested: None,
            };
            let _ = build_row(target, root, &related, &s.transforms);
        }
    }
});
