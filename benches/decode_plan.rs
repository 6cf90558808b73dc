//! CPU cost of the pure steps on one core: decoding a 10,000-record batch of
//! DMS JSON documents, and decoding + planning it, over a realistic mix of the
//! sample domain (inserts, updates with before images, deletes, child
//! changes, an unmapped table; see `benches/common`).
//!
//! ```sh
//! cargo bench --bench decode_plan            # full run
//! cargo bench --bench decode_plan -- --test  # each benchmark once (CI smoke)
//! ```

mod common;

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dms_cdc::dms::{decode_record, into_deliveries, DmsRecord, KinesisBatch};
use dms_cdc::plan::plan_batch;
use dms_cdc::prepare::prepare_batch;

const RECORDS: usize = 10_000;

/// Counts heap allocations over the function's allocator (mimalloc), to
/// report allocations per record, only while [`allocations`] runs: an atomic
/// add per call costs about as much as mimalloc's allocation itself, so the
/// timed benches must not pay it (they pay one relaxed load).
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static ALLOCATED_BYTES: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            ALLOCATED_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        dms_cdc_lambda::Allocator.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        dms_cdc_lambda::Allocator.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            ALLOCATED_BYTES.fetch_add(new_size, Ordering::Relaxed);
        }
        dms_cdc_lambda::Allocator.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations and bytes allocated while running `f`.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let (a, b) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        ALLOCATED_BYTES.load(Ordering::Relaxed),
    );
    COUNTING.store(true, Ordering::Relaxed);
    let out = f();
    COUNTING.store(false, Ordering::Relaxed);
    (
        out,
        ALLOCATIONS.load(Ordering::Relaxed) - a,
        ALLOCATED_BYTES.load(Ordering::Relaxed) - b,
    )
}

fn benches(c: &mut Criterion) {
    let (mapping, _transforms) = common::mapping();
    let options = mapping.decode_options();
    let workload = common::generate(
        7,
        common::DataSet {
            users: 20_000,
            recipes: 100_000,
        },
        1,
        RECORDS,
    );
    let batch = &workload.batches[0];
    let bytes: usize = batch.iter().map(|d| d.data.len()).sum();
    let event = common::kinesis_event_json(batch);
    let (decoded, decode_allocs, decode_bytes) = allocations(|| {
        batch
            .iter()
            .map(|d| decode_record(d, &options).expect("the workload decodes"))
            .collect::<Vec<DmsRecord>>()
    });
    let (plan, plan_allocs, plan_bytes) = allocations(|| plan_batch(&mapping, &decoded));
    eprintln!(
        "allocations per record: decode {:.1} ({} B), plan {:.1} ({} B)",
        decode_allocs as f64 / batch.len() as f64,
        decode_bytes / batch.len(),
        plan_allocs as f64 / batch.len() as f64,
        plan_bytes / batch.len(),
    );
    assert!(plan.errors.is_empty(), "{:?}", plan.errors.first());
    eprintln!(
        "batch: {} records, {:.2} MB of DMS JSON ({} B/record), Lambda event {:.2} MB; plan: {} ops, {} lookup tuples, {} unchanged",
        batch.len(),
        bytes as f64 / 1e6,
        bytes / batch.len(),
        event.len() as f64 / 1e6,
        plan.targets.iter().map(|t| t.ops.len()).sum::<usize>(),
        plan.targets
            .iter()
            .flat_map(|t| t.lookups.values())
            .map(|l| l.tuples.len())
            .sum::<usize>(),
        plan.counts.unchanged,
    );

    let mut group = c.benchmark_group("batch_10k");
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.sample_size(20);

    group.bench_function("decode", |b| {
        b.iter(|| {
            let records: Vec<DmsRecord> = batch
                .iter()
                .map(|d| decode_record(d, &options).expect("decodes"))
                .collect();
            black_box(records)
        })
    });

    group.bench_function("decode_plan", |b| {
        b.iter(|| {
            let records: Vec<DmsRecord> = batch
                .iter()
                .map(|d| decode_record(d, &options).expect("decodes"))
                .collect();
            black_box(plan_batch(&mapping, &records))
        })
    });

    // What the function runs: decode, the DDL check and plan, into the
    // engine's `Prepared` (its vectors grown as the function grows them).
    let todo: Vec<usize> = (0..batch.len()).collect();
    group.bench_function("prepare", |b| {
        b.iter(|| black_box(prepare_batch(&mapping, batch, &todo)))
    });

    // Attribution: planning alone, on already decoded records.
    group.bench_function("plan", |b| {
        b.iter(|| black_box(plan_batch(&mapping, black_box(&decoded))))
    });

    // A floor for any decoder built on serde_json: scanning each document
    // and building nothing (what decode pays before it keeps a value).
    group.bench_function("json_scan_only", |b| {
        b.iter(|| {
            for d in batch {
                let skipped: serde::de::IgnoredAny =
                    serde_json::from_slice(black_box(&d.data)).expect("the workload is JSON");
                black_box(skipped);
            }
        })
    });

    // The decoder's own strict scan of each document (UTF-8 checked,
    // nothing kept): the floor under `decode`, as in `benches/instructions.rs`.
    group.bench_function("doc_scan", |b| {
        b.iter(|| {
            for d in batch {
                assert!(dms_cdc::dms::is_json(black_box(&d.data)));
            }
        })
    });

    // What the Lambda runtime adds before decoding: the event JSON and
    // base64, read by `KinesisBatch::from_json` (what the functions read).
    group.bench_function("event_json_base64", |b| {
        b.iter_batched(
            || event.clone(),
            |bytes| {
                let ev = KinesisBatch::from_json(&bytes).expect("event parses");
                black_box(ev.into_deliveries().expect("deliveries"))
            },
            BatchSize::LargeInput,
        )
    });

    // The same read as `KinesisBatch` by serde (before the direct scan).
    group.bench_function("event_json_base64_serde", |b| {
        b.iter_batched(
            || event.clone(),
            |bytes| {
                let ev: KinesisBatch = serde_json::from_slice(&bytes).expect("event parses");
                black_box(ev.into_deliveries().expect("deliveries"))
            },
            BatchSize::LargeInput,
        )
    });

    // The same through `aws_lambda_events`' `KinesisEvent` (before issue 18).
    group.bench_function("event_json_base64_lambda_events", |b| {
        b.iter_batched(
            || event.clone(),
            |bytes| {
                let ev: aws_lambda_events::event::kinesis::KinesisEvent =
                    serde_json::from_slice(&bytes).expect("event parses");
                black_box(into_deliveries(ev).expect("deliveries"))
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();

    // Wide records: five of ~0.8 MB, 24,000 columns each (a 4 MB batch).
    // Decode must stay linear in the columns; the bare scan of the same
    // bytes is the baseline of the ratio.
    let wide: Vec<dms_cdc::dms::Delivery> = (0..5).map(wide_record).collect();
    let wide_bytes: usize = wide.iter().map(|d| d.data.len()).sum();
    eprintln!(
        "wide batch: {} records, {:.2} MB",
        wide.len(),
        wide_bytes as f64 / 1e6
    );
    let mut group = c.benchmark_group("wide_batch");
    group.throughput(Throughput::Bytes(wide_bytes as u64));
    group.sample_size(10);
    group.bench_function("decode", |b| {
        b.iter(|| {
            let records: Vec<DmsRecord> = wide
                .iter()
                .map(|d| decode_record(d, &options).expect("decodes"))
                .collect();
            black_box(records)
        })
    });
    group.bench_function("json_scan_only", |b| {
        b.iter(|| {
            for d in &wide {
                let skipped: serde::de::IgnoredAny =
                    serde_json::from_slice(black_box(&d.data)).expect("JSON");
                black_box(skipped);
            }
        })
    });
    group.finish();
}

/// A record of an unmapped 12,000-column table, ~1.2 MB of DMS JSON.
fn wide_record(i: u64) -> dms_cdc::dms::Delivery {
    let mut data = serde_json::Map::new();
    for c in 0..12_000 {
        data.insert(
            format!("column_{c:05}"),
            serde_json::json!(format!("value {c:05} of a wide row, {i}")),
        );
        data.insert(
            format!("number_{c:05}"),
            serde_json::json!(c * 7 + i as usize),
        );
    }
    let doc = serde_json::json!({
        "data": data,
        "metadata": {"timestamp": "2026-11-20T10:15:00.000000Z", "record-type": "data",
                     "operation": "insert", "partition-key-type": "primary-key",
                     "schema-name": "recipes_src", "table-name": "wide"}
    });
    dms_cdc::dms::Delivery {
        shard_id: dms_cdc::position::ShardId("shardId-000000000000".into()),
        sequence_number: dms_cdc::position::SequenceNumber::parse(&format!("4959{i:052}")).unwrap(),
        partition_key: "k".into(),
        approximate_arrival_ms: None,
        data: serde_json::to_vec(&doc).unwrap(),
    }
}

criterion_group!(decode_plan, benches);
criterion_main!(decode_plan);
