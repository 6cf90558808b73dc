//! The engine's paths over the in-memory adapters ([`crate::testing`]):
//! writes and checkpoints, the checkpoint skip, retryable faults that never
//! quarantine, bisection down to the record a target rejects, undecodable
//! records, bookkeeping faults, the version guard, tombstones and reverse
//! lookups. No database: the real-server tests of each adapter crate stay
//! the reference for what a driver answers.

use futures_executor::block_on;
use serde_json::json;

use super::*;
use crate::dms::{Row, TableName, Value};
use crate::fault::Infrastructure;
use crate::plan::{KeyPart, KeyTuple};
use crate::testing::{MemorySource, MemoryTarget, Stage};

const MAPPING: &str = r#"
[source]
schema = "shop"

[source.tables.shops]
key = ["code"]

[source.tables.products]
key = ["id"]

[[target]]
table = "catalog"
root = "products"
key = ["product_id"]
version = "src_version"

[[target.join]]
name = "shop"
table = "shops"
on = { code = "shop_code" }
kind = "many-to-one"

[[target.column]]
name = "product_id"
from = "id"

[[target.column]]
name = "title"
from = "title"

[[target.column]]
name = "shop_name"
from = "shop.name"

[[target]]
table = "product_index"
root = "products"
key = ["id"]
version = "src_version"

[[target.column]]
name = "id"
from = "id"

[[target.column]]
name = "title"
from = "title"
"#;

const SHARD_A: &str = "shardId-000000000000";
const SHARD_B: &str = "shardId-000000000001";

type MemoryEngine = Engine<MemorySource, MemoryTarget>;

fn engine(chunk_size: usize) -> MemoryEngine {
    let transforms = Transforms::standard();
    let mapping = Mapping::parse("memory.toml", MAPPING, &transforms).unwrap();
    let settings = Settings {
        function_name: "memory-test".into(),
        chunk_size,
    };
    Engine::new(
        mapping,
        transforms,
        MemorySource::default(),
        MemoryTarget::default(),
        settings,
    )
}

fn table(name: &str) -> TableName {
    TableName {
        schema: "shop".into(),
        table: name.into(),
    }
}

fn row(pairs: &[(&str, Value)]) -> Row {
    pairs
        .iter()
        .map(|(k, v)| (crate::dms::ColumnName::from(*k), v.clone()))
        .collect()
}

fn text(t: &str) -> Value {
    Value::Text(t.into())
}

/// Deliveries with increasing sequence numbers, per test.
struct Feed {
    next: u64,
}

impl Feed {
    fn new() -> Self {
        Feed { next: 0 }
    }

    fn on(&mut self, shard: &str, payload: serde_json::Value) -> Delivery {
        self.next += 1;
        Delivery {
            shard_id: ShardId(shard.into()),
            sequence_number: SequenceNumber::parse(&format!(
                "49590338271490256608559692538361571095921575989{:09}",
                self.next
            ))
            .unwrap(),
            partition_key: "k".into(),
            approximate_arrival_ms: None,
            data: serde_json::to_vec(&payload).unwrap(),
        }
    }

    /// Inserts of the products `ids` on shard A, titled `p<id>`.
    fn inserts(&mut self, ids: &[i64]) -> Vec<Delivery> {
        ids.iter()
            .map(|i| {
                self.on(
                    SHARD_A,
                    record("insert", "products", product(*i, &format!("p{i}")), None, 0),
                )
            })
            .collect()
    }

    fn raw(&mut self, shard: &str, data: &[u8]) -> Delivery {
        let mut d = self.on(shard, json!({}));
        d.data = data.to_vec();
        d
    }
}

/// A DMS data record of `shop.<table>`, committed at `second` past 10:15.
fn record(
    op: &str,
    table: &str,
    after: serde_json::Value,
    before: Option<serde_json::Value>,
    second: u32,
) -> serde_json::Value {
    let ts = format!("2026-11-20T10:15:{second:02}Z");
    let mut doc = json!({
        "data": after,
        "metadata": {
            "timestamp": ts,
            "record-type": "data",
            "operation": op,
            "partition-key-type": "primary-key",
            "schema-name": "shop",
            "table-name": table,
            "transaction-id": 1,
            "commit-timestamp": ts
        }
    });
    if let Some(b) = before {
        doc["before-image"] = b;
    }
    doc
}

fn product(id: i64, title: &str) -> serde_json::Value {
    json!({"id": id, "shop_code": "s1", "title": title})
}

/// The source's products and shops, as the records say.
fn seed(source: &MemorySource, ids: &[i64]) {
    source.upsert(
        &table("shops"),
        &["code"],
        row(&[("code", text("s1")), ("name", text("Shop One"))]),
    );
    for id in ids {
        source.upsert(
            &table("products"),
            &["id"],
            row(&[
                ("id", Value::Int(*id)),
                ("shop_code", text("s1")),
                ("title", text(&format!("p{id}"))),
            ]),
        );
    }
}

fn value_of(row: &[(String, Value)], column: &str) -> Value {
    row.iter()
        .find(|(n, _)| n == column)
        .map(|(_, v)| v.clone())
        .unwrap_or(Value::Null)
}

fn titles(engine: &MemoryEngine, table: &str) -> Vec<(Value, Value)> {
    let key = if table == "catalog" {
        "product_id"
    } else {
        "id"
    };
    engine
        .target
        .rows(table)
        .iter()
        .map(|r| (value_of(r, key), value_of(r, "title")))
        .collect()
}

fn failure_of(report: &BatchReport) -> Option<String> {
    report
        .response
        .batch_item_failures
        .first()
        .and_then(|f| f.item_identifier.clone())
}

#[test]
fn rows_are_built_from_images_and_re_queries_and_the_checkpoint_advances() {
    let e = engine(2);
    seed(&e.source, &[1, 2, 3]);
    let mut feed = Feed::new();
    let batch = feed.inserts(&[1, 2, 3]);
    let report = block_on(e.process(&batch));
    assert_eq!(report.retry_error, None);
    assert_eq!(failure_of(&report), None);
    assert!(report.outcomes.iter().all(|o| *o == Outcome::Applied));
    // product_index from the images; catalog re-queried for the shop's name.
    assert_eq!(titles(&e, "product_index").len(), 3);
    let catalog = e.target.rows("catalog");
    assert_eq!(catalog.len(), 3);
    assert!(catalog
        .iter()
        .all(|r| value_of(r, "shop_name") == text("Shop One")));
    let state = e.target.state();
    assert_eq!(
        state.checkpoints.get(&ShardId(SHARD_A.into())),
        Some(&batch[2].sequence_number)
    );
    assert_eq!(state.commits, 1, "one transaction for the batch");
    // Three keys in chunks of two: two root reads, and the join read per chunk.
    let root_reads = e
        .source
        .reads()
        .iter()
        .filter(|(t, _)| t.table == "products")
        .count();
    assert_eq!(root_reads, 2);
}

#[test]
fn a_redelivered_batch_is_skipped_at_the_checkpoint() {
    let e = engine(100);
    seed(&e.source, &[1]);
    let mut feed = Feed::new();
    let batch = vec![feed.on(
        SHARD_A,
        record("insert", "products", product(1, "p1"), None, 0),
    )];
    block_on(e.process(&batch));
    let report = block_on(e.process(&batch));
    assert_eq!(report.summary.redelivered_count, 1);
    assert_eq!(report.outcomes, vec![Outcome::Skipped]);
    assert_eq!(e.target.state().commits, 1, "nothing written again");
}

#[test]
fn an_infrastructure_fault_reports_the_first_record_and_quarantines_nothing() {
    for (stage, kind) in [
        (Stage::Checkpoint, Infrastructure::Connection),
        (Stage::Begin, Infrastructure::Authentication),
        (Stage::Snapshot, Infrastructure::Connection),
        (Stage::Read, Infrastructure::ServerState),
        (Stage::Write, Infrastructure::ServerState),
        (Stage::Finish, Infrastructure::Bookkeeping),
    ] {
        let e = engine(100);
        seed(&e.source, &[1, 2]);
        let mut feed = Feed::new();
        let batch = vec![
            feed.on(
                SHARD_A,
                record("insert", "products", product(1, "p1"), None, 0),
            ),
            feed.on(
                SHARD_A,
                record("insert", "products", product(2, "p2"), None, 0),
            ),
        ];
        e.target.failures.push(stage, Fault::Infrastructure(kind));
        e.source.failures.push(stage, Fault::Infrastructure(kind));
        let report = block_on(e.process(&batch));
        let case = format!("{stage:?}");
        assert_eq!(
            failure_of(&report).as_deref(),
            Some(batch[0].sequence_number.as_str()),
            "{case}"
        );
        assert_eq!(
            report.retry_fault,
            Some(Fault::Infrastructure(kind)),
            "{case}"
        );
        assert_eq!(report.summary.quarantined_count, 0, "{case}");
        let state = e.target.state();
        assert!(state.quarantine.is_empty(), "{case}");
        assert!(state.checkpoints.is_empty(), "{case}");
        assert!(
            titles(&e, "product_index").is_empty(),
            "{case}: nothing applied"
        );
        // The fault is gone: the redelivery applies everything.
        let again = block_on(e.process(&batch));
        assert_eq!(failure_of(&again), None, "{case}");
        assert_eq!(titles(&e, "product_index").len(), 2, "{case}");
    }
}

#[test]
fn a_fault_in_the_middle_of_the_pipeline_rolls_the_whole_batch_back() {
    // Chunks of one key: the read, the build and the write of a table run
    // as stages at once, so a fault strikes while the other stages have
    // chunks in hand. Whatever stage fails, and however far the others got,
    // the batch is retried whole and nothing of it is kept.
    let ids: Vec<i64> = (1..=7).collect();
    for (stage, ok) in [
        (Stage::Read, 0),
        (Stage::Read, 3),
        (Stage::Read, 6),
        (Stage::Write, 1),
        (Stage::Write, 4),
        (Stage::Write, 7),
    ] {
        let case = format!("{stage:?} after {ok}");
        let e = engine(1);
        seed(&e.source, &ids);
        let mut feed = Feed::new();
        let batch = feed.inserts(&ids);
        let fault = Fault::Infrastructure(Infrastructure::Connection);
        e.source.failures.push_after(stage, ok, fault);
        e.target.failures.push_after(stage, ok, fault);
        let report = block_on(e.process(&batch));
        assert_eq!(report.retry_fault, Some(fault), "{case}");
        assert_eq!(
            failure_of(&report).as_deref(),
            Some(batch[0].sequence_number.as_str()),
            "{case}"
        );
        let state = e.target.state();
        assert_eq!(state.commits, 0, "{case}");
        assert!(state.checkpoints.is_empty(), "{case}");
        assert!(
            e.target.rows("catalog").is_empty(),
            "{case}: nothing applied"
        );
        assert!(
            titles(&e, "product_index").is_empty(),
            "{case}: nothing applied"
        );
        // The fault was used up: the redelivery applies everything.
        let again = block_on(e.process(&batch));
        assert_eq!(failure_of(&again), None, "{case}");
        assert_eq!(e.target.rows("catalog").len(), ids.len(), "{case}");
        assert_eq!(titles(&e, "product_index").len(), ids.len(), "{case}");
    }
}

#[test]
fn a_row_the_target_rejects_is_bisected_to_its_record_and_quarantined() {
    let mut e = engine(100);
    e.target.reject = Some(text("poison"));
    let ids = [1, 2, 3, 4, 5];
    seed(&e.source, &ids);
    let mut feed = Feed::new();
    let batch: Vec<Delivery> = ids
        .iter()
        .map(|i| {
            let title = if *i == 3 {
                "poison".to_owned()
            } else {
                format!("p{i}")
            };
            feed.on(
                SHARD_A,
                record("insert", "products", product(*i, &title), None, 0),
            )
        })
        .collect();
    let report = block_on(e.process(&batch));
    assert_eq!(failure_of(&report), None);
    assert_eq!(report.retry_error, None);
    assert_eq!(report.summary.quarantined_count, 1);
    assert!(report.summary.attempt_count > 2, "bisected");
    assert_eq!(report.outcomes[2], Outcome::Quarantined);
    let state = e.target.state();
    let q: Vec<_> = state.quarantine.values().collect();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].sequence_number, batch[2].sequence_number);
    assert_eq!(q[0].class, QuarantineClass::Write);
    assert_eq!(q[0].table.as_deref(), Some("shop.products"));
    assert_eq!(q[0].raw, batch[2].data, "the raw payload is kept");
    assert_eq!(
        titles(&e, "product_index").len(),
        4,
        "the others are applied"
    );
    assert_eq!(
        state.checkpoints.get(&ShardId(SHARD_A.into())),
        Some(&batch[4].sequence_number)
    );
}

#[test]
fn an_undecodable_record_is_quarantined_and_the_shard_moves_on() {
    let e = engine(100);
    seed(&e.source, &[1]);
    let mut feed = Feed::new();
    let batch = vec![
        feed.raw(SHARD_A, b"not json at all"),
        feed.on(
            SHARD_A,
            record("insert", "products", product(1, "p1"), None, 0),
        ),
    ];
    let report = block_on(e.process(&batch));
    assert_eq!(failure_of(&report), None);
    assert_eq!(
        report.outcomes,
        vec![Outcome::Quarantined, Outcome::Applied]
    );
    let state = e.target.state();
    let q: Vec<_> = state.quarantine.values().collect();
    assert_eq!(q[0].class, QuarantineClass::Decode);
    assert!(
        q[0].message.contains(batch[0].sequence_number.as_str()),
        "{}",
        q[0].message
    );
}

#[test]
fn storing_a_quarantine_row_that_fails_retries_instead_of_looping() {
    let mut e = engine(100);
    e.target.reject = Some(text("poison"));
    seed(&e.source, &[1]);
    let mut feed = Feed::new();
    let batch = vec![feed.on(
        SHARD_A,
        record("insert", "products", product(1, "poison"), None, 0),
    )];
    // The write fails (the record's fault) before any finish; the
    // quarantine row's transaction then fails to commit.
    e.target.failures.push(
        Stage::Finish,
        Fault::Infrastructure(Infrastructure::Bookkeeping),
    );
    let report = block_on(e.process(&batch));
    assert_eq!(
        failure_of(&report).as_deref(),
        Some(batch[0].sequence_number.as_str())
    );
    assert_eq!(
        report.retry_fault,
        Some(Fault::Infrastructure(Infrastructure::Bookkeeping))
    );
    assert_eq!(report.summary.attempt_count, 2, "one write, one quarantine");
    assert!(e.target.state().quarantine.is_empty());
    let again = block_on(e.process(&batch));
    assert_eq!(failure_of(&again), None);
    assert_eq!(again.summary.quarantined_count, 1);
}

#[test]
fn an_older_update_from_another_shard_never_replaces_a_newer_row() {
    let e = engine(100);
    seed(&e.source, &[1]);
    let mut feed = Feed::new();
    let newer = feed.on(
        SHARD_A,
        record(
            "update",
            "products",
            product(1, "newer"),
            Some(product(1, "p1")),
            30,
        ),
    );
    let older = feed.on(
        SHARD_B,
        record(
            "update",
            "products",
            product(1, "older"),
            Some(product(1, "p1")),
            10,
        ),
    );
    block_on(e.process(&[newer]));
    let report = block_on(e.process(&[older]));
    assert_eq!(failure_of(&report), None);
    assert_eq!(
        titles(&e, "product_index"),
        vec![(Value::Int(1), text("newer"))]
    );
}

#[test]
fn a_delete_is_never_undone_by_an_older_update_from_another_shard() {
    let e = engine(100);
    seed(&e.source, &[1]);
    let mut feed = Feed::new();
    let insert = feed.on(
        SHARD_A,
        record("insert", "products", product(1, "p1"), None, 0),
    );
    let delete = feed.on(
        SHARD_A,
        record("delete", "products", product(1, "p1"), None, 30),
    );
    let late = feed.on(
        SHARD_B,
        record(
            "update",
            "products",
            product(1, "late"),
            Some(product(1, "p1")),
            20,
        ),
    );
    block_on(e.process(&[insert, delete]));
    assert!(titles(&e, "product_index").is_empty());
    block_on(e.process(&[late]));
    assert!(
        titles(&e, "product_index").is_empty(),
        "the tombstone keeps the row deleted"
    );
}

#[test]
fn a_change_to_a_joined_row_rebuilds_its_parents_from_the_source() {
    let e = engine(100);
    seed(&e.source, &[1, 2]);
    let mut feed = Feed::new();
    let load = feed.inserts(&[1, 2]);
    block_on(e.process(&load));
    // The shop is renamed at the source; its change record carries no product.
    e.source.upsert(
        &table("shops"),
        &["code"],
        row(&[("code", text("s1")), ("name", text("Renamed"))]),
    );
    let rename = feed.on(
        SHARD_B,
        record(
            "update",
            "shops",
            json!({"code": "s1", "name": "Renamed"}),
            Some(json!({"code": "s1", "name": "Shop One"})),
            40,
        ),
    );
    let report = block_on(e.process(&[rename]));
    assert_eq!(failure_of(&report), None);
    let names: Vec<Value> = e
        .target
        .rows("catalog")
        .iter()
        .map(|r| value_of(r, "shop_name"))
        .collect();
    assert_eq!(names, vec![text("Renamed"), text("Renamed")]);
    // One reverse lookup, one root read and one join read.
    assert_eq!(report.summary.source_select_count, 3);
}

#[test]
fn a_root_row_gone_from_the_source_is_deleted_on_rebuild() {
    let e = engine(100);
    seed(&e.source, &[1]);
    let mut feed = Feed::new();
    block_on(e.process(&[feed.on(
        SHARD_A,
        record("insert", "products", product(1, "p1"), None, 0),
    )]));
    assert_eq!(e.target.rows("catalog").len(), 1);
    e.source.delete(
        &table("products"),
        &["id"],
        &KeyTuple(vec![KeyPart::Int(1)]),
    );
    // An update the catalog must rebuild from the source, which no longer has it.
    let report = block_on(e.process(&[feed.on(
        SHARD_A,
        record(
            "update",
            "products",
            product(1, "p1b"),
            Some(product(1, "p1")),
            5,
        ),
    )]));
    assert_eq!(failure_of(&report), None);
    assert!(e.target.rows("catalog").is_empty());
}

mod convergence {
    use proptest::prelude::*;

    use super::*;

    /// Each shard's changes, in order: (product id, title), one per second.
    fn changes(ids: &[i64], count: usize, seed: u64) -> Vec<(i64, String)> {
        (0..count)
            .map(|i| {
                let id = ids[(seed as usize + i * 7) % ids.len()];
                (id, format!("t{i}-{seed}"))
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever the batches Lambda hands over (any window of a shard's
        /// records that starts at or before its first unapplied record,
        /// redeliveries of old ones included, shards interleaved),
        /// once every record has been delivered the target holds each
        /// row's last image, and nothing is quarantined.
        #[test]
        fn the_target_converges_for_any_batching_and_redelivery(
            seed in 0u64..1000,
            count in 1usize..12,
            windows in proptest::collection::vec((0usize..2, 0usize..12, 1usize..6), 0..12),
        ) {
            let e = engine(3);
            // Rows of shard A are ids 1-3, of shard B ids 4-6 (DMS partitions by key).
            let shards = [(SHARD_A, [1i64, 2, 3]), (SHARD_B, [4i64, 5, 6])];
            let mut feed = Feed::new();
            let mut streams: Vec<Vec<Delivery>> = Vec::new();
            let mut last: BTreeMap<i64, String> = BTreeMap::new();
            for (n, (shard, ids)) in shards.iter().enumerate() {
                seed_source(&e.source, ids);
                let mut stream = Vec::new();
                for (second, (id, title)) in changes(ids, count, seed + n as u64).into_iter().enumerate() {
                    let op = if last.contains_key(&id) { "update" } else { "insert" };
                    let before = last.get(&id).map(|t| product(id, t));
                    stream.push(feed.on(shard, record(op, "products", product(id, &title), before, second as u32)));
                    last.insert(id, title);
                }
                streams.push(stream);
            }
            // Random batches first: as Lambda delivers them, each starts at
            // or before the first record not yet applied (a redelivery of
            // older records included), with any length.
            let mut next = [0usize; 2];
            for (shard, start, len) in windows {
                let stream = &streams[shard];
                let start = start.min(next[shard]).min(stream.len().saturating_sub(1));
                let end = (start + len).min(stream.len());
                let report = block_on(e.process(&stream[start..end]));
                prop_assert!(report.response.batch_item_failures.is_empty());
                next[shard] = next[shard].max(end);
            }
            // Then each shard's records from its first unapplied one to the end.
            for (shard, stream) in streams.iter().enumerate() {
                let report = block_on(e.process(&stream[next[shard].min(stream.len())..]));
                prop_assert_eq!(report.retry_error.clone(), None);
                prop_assert_eq!(report.summary.quarantined_count, 0);
            }
            let mut want: Vec<String> = last
                .iter()
                .map(|(id, t)| format!("{:?}", (Value::Int(*id), text(t))))
                .collect();
            let mut got: Vec<String> = titles(&e, "product_index")
                .iter()
                .map(|r| format!("{r:?}"))
                .collect();
            want.sort();
            got.sort();
            prop_assert_eq!(got, want);
        }
    }

    /// The source holds each product's last state (re-queries read it).
    fn seed_source(source: &MemorySource, ids: &[i64]) {
        seed(source, ids);
    }
}
