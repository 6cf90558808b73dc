//! Instructions per record of the pure steps (issue 18's deterministic
//! measure): the instructions callgrind (valgrind) counts inside the step,
//! and only there (`--toggle-collect` of the function that runs it),
//! divided by the records processed. Unlike wall-clock time it does not
//! depend on what else the machine runs, and needs no hardware counters
//! (this machine's virtual CPU has none for `perf stat`).
//!
//! ```sh
//! cargo bench --bench instructions                 # every step, once over the 10,000-record batch
//! cargo bench --bench instructions -- --rounds 3
//! ```
//!
//! Steps (the batch of `benches/decode_plan.rs`: seed 7, 10,000 records):
//! `event` (Lambda event JSON + base64 + deliveries, read by
//! `dms::KinesisBatch::from_json`, as the functions read it), `event_serde`
//! (the same read as `KinesisBatch` by serde_json), `event_lambda_events`
//! (the same through
//! `aws_lambda_events`' `KinesisEvent`), `json_scan` (serde_json
//! reads every payload, keeps nothing), `doc_scan` (the decoder's own
//! strict scan of every payload, `dms::is_json`, keeps nothing), `decode`,
//! `plan` (`plan_batch` alone; the records are decoded before the count),
//! `decode_plan`, `prepare`
//! (what the functions run: `prepare_batch`, decode + the DDL check + plan
//! into the engine's vectors), `versions` (what the engine reads of each
//! decoded record after the plan: its row version, `Version::of_record`,
//! and its commit timestamp for the batch's newest commit; the records are
//! decoded before the count).
//! Needs `valgrind`; each step runs the batch under callgrind (about a
//! minute per step, most of it building the batch, which is not counted).

mod common;

use std::hint::black_box;
use std::process::Command;

use dms_cdc::dms::{
    decode_record, into_deliveries, parse_datetime, Delivery, DmsRecord, KinesisBatch,
};
use dms_cdc::plan::plan_batch;
use dms_cdc::prepare::prepare_batch;
use dms_cdc::version::{Kind, Version};

const RECORDS: usize = 10_000;
const STEPS: [&str; 10] = [
    "event",
    "event_serde",
    "event_lambda_events",
    "json_scan",
    "doc_scan",
    "decode",
    "plan",
    "decode_plan",
    "prepare",
    "versions",
];

#[global_allocator]
static GLOBAL: dms_cdc_lambda::Allocator = dms_cdc_lambda::Allocator;

fn batch() -> Vec<Delivery> {
    let workload = common::generate(
        7,
        common::DataSet {
            users: 20_000,
            recipes: 100_000,
        },
        1,
        RECORDS,
    );
    workload.batches.into_iter().next().expect("one batch")
}

/// Runs `step` `rounds` times over the batch.
fn run_step(step: &str, rounds: usize) {
    let (mapping, _transforms) = common::mapping();
    let batch = batch();
    let event = common::kinesis_event_json(&batch);
    let options = mapping.decode_options();
    let records: Vec<DmsRecord> = match step {
        "versions" | "plan" => batch
            .iter()
            .map(|d| decode_record(d, &options).expect("decodes"))
            .collect(),
        _ => Vec::new(),
    };
    measured(step, rounds, &mapping, &batch, &event, &records);
}

/// What callgrind counts: only the instructions executed in here.
#[inline(never)]
fn measured(
    step: &str,
    rounds: usize,
    mapping: &dms_cdc::mapping::Mapping,
    batch: &[Delivery],
    event: &[u8],
    records: &[DmsRecord],
) {
    let options = mapping.decode_options();
    for _ in 0..rounds {
        match step {
            "none" => {}
            "event" => {
                let ev = KinesisBatch::from_json(black_box(event)).expect("an event");
                black_box(ev.into_deliveries().expect("deliveries"));
            }
            "event_serde" => {
                let ev: KinesisBatch = serde_json::from_slice(black_box(event)).expect("an event");
                black_box(ev.into_deliveries().expect("deliveries"));
            }
            "event_lambda_events" => {
                let ev: aws_lambda_events::kinesis::KinesisEvent =
                    serde_json::from_slice(black_box(event)).expect("an event");
                black_box(into_deliveries(ev).expect("deliveries"));
            }
            "json_scan" => {
                for d in batch {
                    black_box(
                        serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&d.data))
                            .expect("JSON"),
                    );
                }
            }
            "doc_scan" => {
                for d in batch {
                    assert!(dms_cdc::dms::is_json(black_box(&d.data)));
                }
            }
            "plan" => {
                black_box(plan_batch(mapping, black_box(records)));
            }
            "decode" => {
                let records: Vec<DmsRecord> = batch
                    .iter()
                    .map(|d| decode_record(d, &options).expect("decodes"))
                    .collect();
                black_box(records);
            }
            "decode_plan" => {
                let records: Vec<DmsRecord> = batch
                    .iter()
                    .map(|d| decode_record(d, &options).expect("decodes"))
                    .collect();
                black_box(plan_batch(mapping, &records));
            }
            "prepare" => {
                let todo: Vec<usize> = (0..batch.len()).collect();
                black_box(prepare_batch(mapping, batch, &todo));
            }
            "versions" => {
                for (d, r) in batch.iter().zip(records) {
                    black_box(Version::of_record(r, &d.sequence_number, Kind::Image).ok());
                    let commit = r.metadata.transaction().commit_timestamp;
                    black_box(commit.and_then(parse_datetime));
                }
            }
            other => {
                eprintln!("instructions: unknown step {other}");
                std::process::exit(2);
            }
        }
    }
}

/// Instructions of `step` (`rounds` times over the batch), from callgrind.
fn count(step: &str, rounds: usize) -> Result<f64, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            "--toggle-collect=*instructions*measured*",
        ])
        .arg(&me)
        .args(["--bench", "--step", step, "--rounds", &rounds.to_string()])
        .output()
        .map_err(|e| format!("valgrind: {e} (install valgrind)"))?;
    let text = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("callgrind failed: {text}"));
    }
    text.lines()
        .find_map(|l| {
            l.split_once("Collected :")
                .map(|(_, n)| n.trim().to_owned())
        })
        .and_then(|n| n.parse::<f64>().ok())
        .ok_or_else(|| format!("no instruction count in callgrind's output: {text}"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("instructions: skipped under cargo test; run `cargo bench --bench instructions`");
        return;
    }
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let rounds: usize = value("--rounds")
        .and_then(|r| r.parse().ok())
        .unwrap_or(1)
        .max(1);
    if let Some(step) = value("--step") {
        run_step(&step, rounds);
        return;
    }
    println!("== instructions per record ({RECORDS}-record batch, {rounds} rounds, callgrind)");
    println!("| step | instructions per record |");
    println!("| --- | ---: |");
    for step in STEPS {
        match count(step, rounds) {
            Ok(n) => println!("| {step} | {:.0} |", n / (rounds * RECORDS) as f64),
            Err(e) => {
                eprintln!("instructions: {step}: {e}");
                std::process::exit(2);
            }
        }
    }
}
