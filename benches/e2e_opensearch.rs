//! End-to-end benchmark of the OpenSearch target: a throwaway MariaDB
//! source and a throwaway single-node OpenSearch on this machine. In one
//! run, on the same data (the workload of `benches/e2e.rs`), it measures:
//!
//! 1. `dms-cdc`: `Engine::process` on every batch, MySQL source to
//!    OpenSearch target (decode, plan, re-query the source, tombstone
//!    `_mget`, `_bulk` of the documents with external versions, tombstones,
//!    soft-delete marks, the checkpoint);
//! 2. `bulk`: per batch, the final documents of the keys the batch touches
//!    (the documents dms-cdc left, read back) as one raw `_bulk` stream to
//!    fresh indices with the same mappings (`index_body`), split as the
//!    adapter splits (`bulk-bytes`, `bulk-actions`), with the same external
//!    versions (`external_gte`) and deletes of the documents that are gone
//!    (with their tombstone's version), through the adapter's HTTP client;
//!    bodies are built before the clock starts. What the node itself takes;
//! 3. `bulk, no versions`: the same without versions (the last write wins).
//!
//! Every contender starts from the same state (the full load of the
//! initial data, written by dms-cdc once and copied into each contender's
//! fresh indices), and each one's final documents (ids and `_source`, and
//! for `bulk` the versions) must equal dms-cdc's. It prints records/s,
//! documents/s, the ratio, the CPU seconds of the bench process, of the
//! node's JVM and of the MariaDB source, and what the node's own counters
//! say it did (documents indexed, deleted, got; refreshes).
//!
//! ```sh
//! cargo bench --bench e2e_opensearch -- --batches 10 --records 10000
//! cargo bench --bench e2e_opensearch -- --batches 2 --records 200   # CI smoke
//! ```
//!
//! Options: `--batches N` (10), `--records M` (10000), `--chunk C` (500,
//! the re-query chunk), `--seed S` (42), `--rounds R` (1: repeat every
//! contender R times, keep the best of each).

mod common;

use common::{cpu_seconds, load, load_source, root, server_pid};

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dms_cdc::dms::Delivery;
use dms_cdc::engine::{Engine, Settings};
use dms_cdc::local::MariaDb;
use dms_cdc::mapping::{Mapping, Transforms};
use dms_cdc::opensearch::bulk::{self, Action};
use dms_cdc::opensearch::connection::Answer;
use dms_cdc::opensearch::index::{self, ID_FIELD, TOMBSTONE_INDEX};
use dms_cdc::opensearch::local::OpenSearch;
use dms_cdc::opensearch::{Client, Config, OpenSearchTarget};
use dms_cdc::source::MysqlSource;
use serde_json::{json, value::RawValue, Value as Json};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

type OpenSearchEngine = Engine<MysqlSource, OpenSearchTarget>;

/// The function's allocator (functions/opensearch-target): the bench measures
/// the engine as it runs there (before, this bench ran on the system
/// allocator while calling `tune_allocator`, which only tunes mimalloc).
#[global_allocator]
static GLOBAL: dms_cdc_lambda::Allocator = dms_cdc_lambda::Allocator;

fn main() {
    dms_cdc::lambda::tune_allocator();
    // `cargo test --all-targets` runs this binary without `--bench`: it
    // starts servers and takes minutes, so it only runs when asked.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "e2e_opensearch: skipped under cargo test; run `cargo bench --bench e2e_opensearch`"
        );
        return;
    }
    let result = common::parse_target_bench_args().and_then(|args| {
        // One thread, as the function runs.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Into::into)
            .and_then(|rt| rt.block_on(run(args)))
    });
    if let Err(e) = result {
        eprintln!("e2e_opensearch: FAILED: {e}: {e:?}");
        std::process::exit(1);
    }
}

// ------------------------------------------------------------------ process facts

/// The pid of the node's JVM: the local launcher running in `home`.
fn node_pid(home: &std::path::Path) -> Option<u32> {
    let home = home.to_string_lossy().into_owned();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd);
        let args: Vec<&str> = cmd.split('\0').collect();
        (args.contains(&"dev.dmscdc.opensearch.LocalNode") && args.contains(&home.as_str()))
            .then_some(pid)
    })
}

// ------------------------------------------------------------------ requests

/// Sends one request; a status outside 2xx (and `accept`) is an error.
async fn request(
    client: &Client,
    method: http::Method,
    path: &str,
    body: Option<&Json>,
    accept: &[u16],
) -> Res<Answer> {
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let answer = client
        .send(method, path, "application/json", body, path)
        .await?;
    if (200..300).contains(&answer.status) || accept.contains(&answer.status) {
        Ok(answer)
    } else {
        Err(format!(
            "{path}: status {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
                .chars()
                .take(500)
                .collect::<String>()
        )
        .into())
    }
}

/// A stored document: its external (or internal) version and `_source`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Doc {
    version: i64,
    source: String,
}

#[derive(serde::Deserialize)]
struct SearchAnswer {
    hits: SearchHits,
}

#[derive(serde::Deserialize)]
struct SearchHits {
    hits: Vec<Hit>,
}

#[derive(serde::Deserialize)]
struct Hit {
    #[serde(rename = "_id")]
    id: String,
    #[serde(rename = "_version", default)]
    version: i64,
    #[serde(rename = "_source")]
    source: Box<RawValue>,
    #[serde(default)]
    sort: Vec<Json>,
}

/// Every document of `index` (after a refresh), by id, paged with
/// `search_after` on `sort` (fields that make a unique order).
async fn documents(client: &Client, index: &str, sort: &[&str]) -> Res<BTreeMap<String, Doc>> {
    request(
        client,
        http::Method::POST,
        &format!("/{index}/_refresh"),
        None,
        &[],
    )
    .await?;
    let mut out = BTreeMap::new();
    let mut after: Option<Vec<Json>> = None;
    loop {
        let mut body = json!({
            "size": 10_000,
            "version": true,
            "sort": sort.iter().map(|f| json!({*f: "asc"})).collect::<Vec<_>>(),
            "query": {"match_all": {}},
        });
        if let Some(a) = &after {
            body["search_after"] = json!(a);
        }
        let answer = request(
            client,
            http::Method::POST,
            &format!("/{index}/_search"),
            Some(&body),
            &[],
        )
        .await?;
        let hits = serde_json::from_slice::<SearchAnswer>(&answer.body)?
            .hits
            .hits;
        let Some(last) = hits.last() else { break };
        after = Some(last.sort.clone());
        for h in hits {
            out.insert(
                h.id,
                Doc {
                    version: h.version,
                    source: h.source.get().to_owned(),
                },
            );
        }
    }
    Ok(out)
}

/// What the node did, from its own counters (`_nodes/_local/stats`),
/// summed over every index: documents indexed, deleted and got (`_mget`
/// counts each document), refreshes, and the milliseconds each took.
#[derive(Debug, Clone, Copy, Default)]
struct NodeWork {
    indexed: u64,
    index_ms: u64,
    deleted: u64,
    got: u64,
    get_ms: u64,
    refreshes: u64,
    refresh_ms: u64,
}

async fn node_work(client: &Client) -> Res<NodeWork> {
    let answer = request(
        client,
        http::Method::GET,
        "/_nodes/_local/stats/indices",
        None,
        &[],
    )
    .await?
    .json();
    let node = answer["nodes"]
        .as_object()
        .and_then(|n| n.values().next())
        .ok_or("no node in _nodes/stats")?;
    let i = &node["indices"];
    let n = |v: &Json| v.as_u64().unwrap_or(0);
    Ok(NodeWork {
        indexed: n(&i["indexing"]["index_total"]),
        index_ms: n(&i["indexing"]["index_time_in_millis"]),
        deleted: n(&i["indexing"]["delete_total"]),
        got: n(&i["get"]["total"]),
        get_ms: n(&i["get"]["time_in_millis"]),
        refreshes: n(&i["refresh"]["total"]),
        refresh_ms: n(&i["refresh"]["total_time_in_millis"]),
    })
}

impl std::ops::Sub for NodeWork {
    type Output = NodeWork;
    fn sub(self, o: NodeWork) -> NodeWork {
        NodeWork {
            indexed: self.indexed - o.indexed.min(self.indexed),
            index_ms: self.index_ms - o.index_ms.min(self.index_ms),
            deleted: self.deleted - o.deleted.min(self.deleted),
            got: self.got - o.got.min(self.got),
            get_ms: self.get_ms - o.get_ms.min(self.get_ms),
            refreshes: self.refreshes - o.refreshes.min(self.refreshes),
            refresh_ms: self.refresh_ms - o.refresh_ms.min(self.refresh_ms),
        }
    }
}

// ------------------------------------------------------------------ setup

/// Per target table, documents by id.
type Documents = BTreeMap<String, BTreeMap<String, Doc>>;

/// One contender's indices: the settings (a prefix of its own) they are named by.
struct Contender {
    name: &'static str,
    config: Config,
    /// Bulks with external versions.
    versioned: bool,
}

struct Rig {
    source_db: MariaDb,
    node: OpenSearch,
    source: mysql_async::Pool,
    /// dms-cdc's target (no prefix); its client is every contender's.
    target: OpenSearchTarget,
    mapping: Mapping,
    transforms: Transforms,
    /// The documents after the full load of the initial state.
    initial: Documents,
}

fn engine(rig: &Rig, function_name: &str, chunk: usize) -> OpenSearchEngine {
    Engine::new(
        rig.mapping.clone(),
        rig.transforms.clone(),
        MysqlSource::from(rig.source.clone()),
        rig.target.clone(),
        Settings {
            function_name: function_name.into(),
            chunk_size: chunk,
        },
    )
}

/// Every target table's documents, read through the indices of `config`.
async fn all_documents(client: &Client, config: &Config, mapping: &Mapping) -> Res<Documents> {
    let mut out = Documents::new();
    for t in &mapping.targets {
        let names = index::names(config, &t.table);
        let docs = documents(client, names.data(config), &[ID_FIELD]).await?;
        out.insert(t.table.clone(), docs);
    }
    Ok(out)
}

/// Starts the servers; writes the full load of the initial state through
/// dms-cdc once and keeps its documents (every contender starts from
/// them), then gives the source its final state (what every record of the
/// workload leads to).
async fn rig(workload: &common::Workload, chunk: usize, url: &str) -> Res<Rig> {
    let source_db = MariaDb::start(1)?;
    source_db.run_file(&root().join("fixtures/source.sql"))?;
    source_db.run_sql("SET GLOBAL innodb_buffer_pool_size = 536870912")?;
    let node = OpenSearch::start()?;
    let (mapping, transforms) = common::mapping();
    let source = dms_cdc::source::pool(&source_db.url("recipes_src"), 2)?;
    let target =
        OpenSearchTarget::new(Config::from_url(&format!("{}{url}", node.url()))?, "bench")?;
    target.prepare(&mapping).await?;
    let mut rig = Rig {
        source_db,
        node,
        source,
        target,
        mapping,
        transforms,
        initial: Documents::new(),
    };
    load_source(&rig.source, &workload.initial).await?;
    let started = Instant::now();
    let n = common::apply_full_load(&engine(&rig, "bench-load", chunk), &workload.initial).await?;
    println!(
        "full load of the initial state through dms-cdc into OpenSearch: {n} records in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    rig.initial = all_documents(rig.target.client(), rig.target.config(), &rig.mapping).await?;
    load_source(&rig.source, &workload.model).await?;
    Ok(rig)
}

/// Deletes every contender's indices (and dms-cdc's bookkeeping), then
/// gives `contender` fresh indices (`index_body`; for dms-cdc its own
/// `prepare`) holding the initial documents with their versions.
async fn reset(rig: &Rig, contenders: &[Contender], contender: &Contender) -> Res<()> {
    let client = rig.target.client();
    let mut names: Vec<String> = contenders
        .iter()
        .flat_map(|c| {
            rig.mapping
                .targets
                .iter()
                .map(|t| index::names(&c.config, &t.table).concrete)
        })
        .collect();
    for b in [
        index::CHECKPOINT_INDEX,
        index::QUARANTINE_INDEX,
        TOMBSTONE_INDEX,
    ] {
        names.push(index::bookkeeping(rig.target.config(), b));
    }
    request(
        client,
        http::Method::DELETE,
        &format!("/{}?ignore_unavailable=true", names.join(",")),
        None,
        &[],
    )
    .await?;
    let config = &contender.config;
    if contender.name == "dms-cdc" {
        rig.target.prepare(&rig.mapping).await?;
    } else {
        for t in &rig.mapping.targets {
            let names = index::names(config, &t.table);
            let body = index::index_body(config, t);
            request(
                client,
                http::Method::PUT,
                &format!("/{}", names.concrete),
                Some(&body),
                &[],
            )
            .await?;
        }
    }
    for t in &rig.mapping.targets {
        let names = index::names(config, &t.table);
        let alias = names.data(config);
        let actions: Vec<Action> = rig.initial[&t.table]
            .iter()
            .map(|(id, d)| Action::index(alias, id, Some(d.version), &d.source))
            .collect();
        bulk::send(client, &actions, "load the initial documents").await?;
        request(
            client,
            http::Method::POST,
            &format!("/{alias}/_refresh"),
            None,
            &[],
        )
        .await?;
    }
    Ok(())
}

// ------------------------------------------------------------------ contenders

/// One prepared `_bulk` body and how to read its items: per action,
/// whether it is a delete.
struct Body {
    bytes: Vec<u8>,
    deletes: Vec<bool>,
}

/// Per batch, the `_bulk` bodies of the final documents of the keys it
/// touches: an `index` of the document dms-cdc left, or a `delete` when it
/// left none (with the tombstone's version), split as the adapter splits.
fn bodies(
    contender: &Contender,
    mapping: &Mapping,
    keys: &[(Vec<String>, Vec<String>)],
    finals: &Documents,
    tombstones: &BTreeMap<String, i64>,
) -> Vec<Vec<Body>> {
    let config = &contender.config;
    let version = |v: i64| contender.versioned.then_some(v);
    keys.iter()
        .map(|(users, recipes)| {
            let mut actions = Vec::new();
            for (table, keys) in [("global_users", users), ("global_recipes", recipes)] {
                let t = mapping
                    .targets
                    .iter()
                    .find(|t| t.table == table)
                    .expect("the sample mapping has this target");
                let names = index::names(config, &t.table);
                let alias = names.data(config);
                for id in keys {
                    actions.push(match finals[table].get(id) {
                        Some(d) => Action::index(alias, id, version(d.version), &d.source),
                        None => Action::delete(
                            alias,
                            id,
                            tombstones
                                .get(&dms_cdc::opensearch::target::tombstone_id(table, id))
                                .copied()
                                .and_then(version),
                        ),
                    });
                }
            }
            bulk::split(&actions, config.bulk_bytes, config.bulk_actions)
                .into_iter()
                .map(|part| Body {
                    bytes: actions[part.clone()]
                        .iter()
                        .flat_map(|a| a.lines.bytes())
                        .collect(),
                    deletes: actions[part].iter().map(|a| a.delete).collect(),
                })
                .collect()
        })
        .collect()
}

/// Sends every body in order (the clock runs here only); an item that
/// failed is an error, except a delete that found nothing and, with
/// versions, a conflict with a newer document (as the adapter reads them).
async fn run_bulk(client: &Client, batches: &[Vec<Body>], versioned: bool) -> Res<usize> {
    let mut written = 0;
    for batch in batches {
        for body in batch {
            let answer = client
                .send(
                    http::Method::POST,
                    "/_bulk?filter_path=errors,items.*.status,items.*.error.type,items.*.error.reason",
                    "application/x-ndjson",
                    body.bytes.clone(),
                    "raw bulk",
                )
                .await?;
            if !(200..300).contains(&answer.status) {
                return Err(format!("_bulk: status {}", answer.status).into());
            }
            let json = answer.json();
            if json["errors"] != json!(false) {
                let items = json["items"].as_array().cloned().unwrap_or_default();
                for (item, delete) in items.iter().zip(&body.deletes) {
                    let item = item
                        .as_object()
                        .and_then(|o| o.values().next())
                        .unwrap_or(&Json::Null);
                    let status = item["status"].as_u64().unwrap_or(0);
                    let conflict =
                        item["error"]["type"] == json!("version_conflict_engine_exception");
                    let ok = (200..300).contains(&status)
                        || (status == 404 && *delete && item["error"].is_null())
                        || (status == 409 && versioned && conflict);
                    if !ok {
                        return Err(format!("_bulk item failed: {item}").into());
                    }
                }
            }
            written += body.deletes.len();
        }
    }
    Ok(written)
}

async fn run_dms_cdc(rig: &Rig, chunk: usize, batches: &[Vec<Delivery>]) -> Res<usize> {
    common::process_clean(&engine(rig, "bench", chunk), batches).await
}

#[derive(Clone)]
struct Measured {
    elapsed: Duration,
    documents: usize,
    /// CPU seconds: this process, the node's JVM, the MariaDB source.
    cpu: (f64, f64, f64),
    work: NodeWork,
    finals: Documents,
}

/// CPU seconds so far of this process, the node and the source.
fn cpus(rig: &Rig) -> (f64, f64, f64) {
    (
        cpu_seconds(None),
        node_pid(rig.node.home()).map_or(0.0, |p| cpu_seconds(Some(p))),
        server_pid(rig.source_db.port()).map_or(0.0, |p| cpu_seconds(Some(p))),
    )
}

async fn measure<F, Fut>(
    rig: &Rig,
    contenders: &[Contender],
    contender: &Contender,
    records: usize,
    run: F,
) -> Res<Measured>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Res<usize>>,
{
    reset(rig, contenders, contender).await?;
    let work0 = node_work(rig.target.client()).await?;
    let cpu0 = cpus(rig);
    let started = Instant::now();
    let documents = run().await?;
    let elapsed = started.elapsed();
    let cpu1 = cpus(rig);
    let work = node_work(rig.target.client()).await? - work0;
    let finals = all_documents(rig.target.client(), &contender.config, &rig.mapping).await?;
    eprintln!(
        "  {}: {:.0} records/s ({records} records, {documents} documents in {:.2} s), load {}",
        contender.name,
        records as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        load()
    );
    Ok(Measured {
        elapsed,
        documents,
        cpu: (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1, cpu1.2 - cpu0.2),
        work,
        finals,
    })
}

fn keep_best(best: &mut Option<Measured>, m: Measured) {
    if best.as_ref().is_none_or(|b| m.elapsed < b.elapsed) {
        *best = Some(m);
    }
}

/// How many documents of `theirs` differ from `ours` (missing on either
/// side, another `_source`, or with `versions` another version).
fn differences(ours: &Documents, theirs: &Documents, versions: bool) -> usize {
    let same = |a: &Doc, b: &Doc| a.source == b.source && (!versions || a.version == b.version);
    let mut differ = 0;
    for (table, docs) in ours {
        let empty = BTreeMap::new();
        let other = theirs.get(table).unwrap_or(&empty);
        differ += docs
            .iter()
            .filter(|(id, d)| other.get(*id).is_none_or(|o| !same(d, o)))
            .count();
        differ += other.keys().filter(|id| !docs.contains_key(*id)).count();
    }
    differ
}

async fn run(args: common::TargetBenchArgs) -> Res<()> {
    println!("== dms-cdc e2e benchmark, OpenSearch target");
    println!("load at start (1/5/15 min): {}", load());
    println!(
        "workload: {} batches x {} records, chunk {}, seed {}",
        args.batches, args.records, args.chunk, args.seed
    );
    let total = args.batches * args.records;
    let workload = common::generate(
        args.seed,
        common::DataSet::for_records(total),
        args.batches,
        args.records,
    );
    let url = "?replicas=0";
    let rig = rig(&workload, args.chunk, url).await?;
    let info = request(rig.target.client(), http::Method::GET, "/", None, &[])
        .await?
        .json();
    println!(
        "OpenSearch {} (single node, 512 MiB heap, replicas 0, bulk at most {} bytes / {} actions); MariaDB source",
        info["version"]["number"].as_str().unwrap_or("?"),
        rig.target.config().bulk_bytes,
        rig.target.config().bulk_actions
    );
    let node_url = rig.node.url().to_owned();
    let config = |prefix: &str| Config::from_url(&format!("{node_url}{url}&prefix={prefix}"));
    let contenders = [
        Contender {
            name: "dms-cdc",
            config: rig.target.config().clone(),
            versioned: true,
        },
        Contender {
            name: "bulk",
            config: config("raw-")?,
            versioned: true,
        },
        Contender {
            name: "bulk, no versions",
            config: config("plain-")?,
            versioned: false,
        },
    ];
    let keys = workload.touched_keys();
    let client = rig.target.client().clone();

    let mut best: Vec<Option<Measured>> = vec![None; contenders.len()];
    let mut prepared: Option<Vec<Vec<Vec<Body>>>> = None;
    for round in 0..args.rounds {
        if args.rounds > 1 {
            eprintln!(" round {}", round + 1);
        }
        let m = measure(&rig, &contenders, &contenders[0], total, || {
            run_dms_cdc(&rig, args.chunk, &workload.batches)
        })
        .await?;
        if prepared.is_none() {
            // The deletes' versions: dms-cdc's tombstones, by tombstone id.
            let tombstones: BTreeMap<String, i64> = documents(
                &client,
                &index::bookkeeping(rig.target.config(), TOMBSTONE_INDEX),
                &["target_table", "row_key"],
            )
            .await?
            .into_iter()
            .map(|(id, d)| (id, d.version))
            .collect();
            prepared = Some(
                contenders[1..]
                    .iter()
                    .map(|c| bodies(c, &rig.mapping, &keys, &m.finals, &tombstones))
                    .collect(),
            );
        }
        keep_best(&mut best[0], m);
        let prepared = prepared.as_ref().expect("built above");
        for (i, c) in contenders.iter().enumerate().skip(1) {
            let m = measure(&rig, &contenders, c, total, || {
                run_bulk(&client, &prepared[i - 1], c.versioned)
            })
            .await?;
            keep_best(&mut best[i], m);
        }
    }
    let best: Vec<Measured> = best.into_iter().map(|m| m.expect("one round")).collect();

    println!();
    println!(
        "| contender | records/s | documents written | documents/s | dms-cdc / it | bench CPU s | OpenSearch CPU s | MariaDB CPU s |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let dms_rate = total as f64 / best[0].elapsed.as_secs_f64();
    for (c, m) in contenders.iter().zip(&best) {
        let seconds = m.elapsed.as_secs_f64();
        let rate = total as f64 / seconds;
        println!(
            "| {} | {rate:.0} | {} | {:.0} | {} | {:.2} | {:.2} | {:.2} |",
            c.name,
            m.documents,
            m.documents as f64 / seconds,
            if c.name == "dms-cdc" {
                String::new()
            } else {
                format!("{:.2}", dms_rate / rate)
            },
            m.cpu.0,
            m.cpu.1,
            m.cpu.2
        );
    }
    println!();
    println!("What the node did (its own counters, the same runs):");
    println!();
    println!(
        "| contender | documents indexed | deleted | indexing ms | documents got (`_mget`) | get ms | refreshes | refresh ms |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (c, m) in contenders.iter().zip(&best) {
        let w = m.work;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            c.name, w.indexed, w.deleted, w.index_ms, w.got, w.get_ms, w.refreshes, w.refresh_ms
        );
    }
    let mut ok = true;
    for (c, m) in contenders.iter().zip(&best).skip(1) {
        let differ = differences(&best[0].finals, &m.finals, c.versioned);
        if differ > 0 {
            println!(
                "DIFFERENT TARGET: {} left {differ} document(s) unlike dms-cdc's",
                c.name
            );
            ok = false;
        }
    }
    let count: usize = best[0].finals.values().map(BTreeMap::len).sum();
    println!(
        "every contender left the same documents: {} ({count} documents; `bulk` also the same versions)",
        if ok { "yes" } else { "NO" },
    );
    if ok {
        Ok(())
    } else {
        Err("contenders left different documents".into())
    }
}
