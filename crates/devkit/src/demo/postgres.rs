//! The demo's PostgreSQL source: a server with `wal_level = logical`,
//! `fixtures/source-postgres.sql` with the rows of every
//! `fixtures/postgres-scenario/` step (the PostgreSQL counterpart of
//! `fixtures/source-state.sql`, see `fixtures/README.md`), REPLICA IDENTITY
//! FULL on the mapped tables (as `infra/source/postgres-source.sql` sets
//! it), a `test_decoding` slot, `load` records read in key order after the
//! slot exists as the full load, the slot's changes as the stream (the slot
//! advances after each acknowledged put), and the workload in PostgreSQL
//! SQL.

use std::path::Path;
use std::time::Duration;

use super::{SourceDb, STREAM};
use crate::capture::postgres::PgCapture;
use crate::capture::{CaptureOptions, KeyRange, RangeSource, RootKey};
use crate::local::PostgreSql;
use crate::mapping::Mapping;
use crate::stream::put_ordered;
use dms_cdc_postgres::PostgresSource;

/// The sample database (its schema is `recipes_src`, as the mapping's).
const DATABASE: &str = "recipes";

/// The demo's replication slot.
const SLOT: &str = "dms_cdc_demo";

/// Rows per read of the full load.
const LOAD_CHUNK: usize = 1000;

/// A throwaway PostgreSQL with logical decoding and the sample database.
pub(super) struct PgSource {
    db: PostgreSql,
    url: String,
    pool: dms_cdc_postgres::Pool,
    /// The capture through the slot (made by the full load).
    capture: Option<PgCapture>,
}

impl PgSource {
    /// Starts the server and loads the sample schema and rows.
    pub(super) async fn start(repo: &Path) -> anyhow::Result<PgSource> {
        let db = tokio::task::spawn_blocking(PostgreSql::start_logical).await??;
        db.create_database(DATABASE)?;
        db.run_file(DATABASE, &repo.join("fixtures/source-postgres.sql"))?;
        let mut steps: Vec<_> = std::fs::read_dir(repo.join("fixtures/postgres-scenario"))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        steps.retain(|p| p.extension().is_some_and(|e| e == "sql"));
        steps.sort();
        for step in &steps {
            db.run_file(DATABASE, step)?;
        }
        let url = db.url(DATABASE);
        let pool = dms_cdc_postgres::pool(&url, 4)?;
        Ok(PgSource {
            db,
            url,
            pool,
            capture: None,
        })
    }
}

/// `"name"` (a quoted identifier).
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl SourceDb for PgSource {
    type Source = PostgresSource;

    /// The MySQL workload's scenario in PostgreSQL: inserts, updates,
    /// deletes, a child moving between parents; instead of the LOB over
    /// DMS's limit (the capture writes whole values), a story TOASTed out
    /// of line and an update that leaves it unchanged (test_decoding's
    /// `unchanged-toast-datum`: the record's image has no `body`, so the
    /// story is re-read and kept); and as the poison value, a `timestamp`
    /// of `infinity` (PostgreSQL has no zero date; no target datetime holds
    /// infinity, and the mapping cannot convert it).
    const WORKLOAD: &'static [&'static str] = &[
        "INSERT INTO recipes_src.users VALUES (50, 'Grace', 'Grace@Example.com', '2026-11-01 09:00:00', true)",
        "INSERT INTO recipes_src.recipes (id, author_id, title, status, servings, rating, created_at, tags)
           VALUES (500, 50, 'Focaccia', 'published', 6, 4.80, '2026-11-01 09:30:00', '[\"bread\"]')",
        "INSERT INTO recipes_src.ingredients VALUES (5000, 500, 1, 'flour', 500.00, 'g'), (5001, 500, 2, 'water', 350.00, 'ml'), (5002, 500, 3, 'salt', 10.00, 'g')",
        "UPDATE recipes_src.recipes SET title = 'Rosemary focaccia' WHERE id = 500",
        "UPDATE recipes_src.users SET name = 'Grace H.' WHERE id = 50",
        "UPDATE recipes_src.ingredients SET recipe_id = 101, position = 9 WHERE id = 5002",
        "DELETE FROM recipes_src.ingredients WHERE id = 5001",
        // 64,000 bytes of md5 hex, which pglz cannot compress: stored out of line.
        "INSERT INTO recipes_src.recipe_stories
           SELECT 500, string_agg(md5(g::text), '' ORDER BY g) FROM generate_series(1, 2000) g",
        "UPDATE recipes_src.recipe_stories SET recipe_id = recipe_id WHERE recipe_id = 500",
        "UPDATE recipes_src.recipes SET status = 'draft' WHERE id = 102",
        "DELETE FROM recipes_src.users WHERE id = 4",
        "INSERT INTO recipes_src.users VALUES (51, 'Zero', 'zero@example.com', 'infinity', true)",
        "UPDATE recipes_src.recipes SET status = 'published', title = 'Back again' WHERE id = 102",
    ];

    fn source(&self) -> anyhow::Result<PostgresSource> {
        Ok(PostgresSource::from(self.pool.clone()))
    }

    /// REPLICA IDENTITY FULL on the mapped tables, the slot (it sees every
    /// change committed after it), then every mapped table read in key
    /// order: a row changed in between is loaded and streamed, at least
    /// once, never lost.
    async fn full_load(
        &mut self,
        mapping: &Mapping,
        options: &CaptureOptions,
    ) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let client = self.pool.get().await?;
        for table in mapping.sources.keys() {
            client
                .batch_execute(&format!(
                    "ALTER TABLE {}.{} REPLICA IDENTITY FULL",
                    quote(&table.schema),
                    quote(&table.table)
                ))
                .await?;
        }
        drop(client);
        self.capture = Some(PgCapture::connect(&self.url, SLOT, options.clone()).await?);
        let source = self.source()?;
        let mut load = Vec::new();
        for table in mapping.sources.keys() {
            let reader = source.range_reader(mapping, table, options).await?;
            let mut after: Option<RootKey> = None;
            loop {
                let range = KeyRange {
                    after: after.as_deref(),
                    ..KeyRange::default()
                };
                let records = reader.read(&range, LOAD_CHUNK).await?;
                let Some(last) = records.last() else {
                    break;
                };
                after = Some(last.key.clone());
                load.extend(records.into_iter().map(|r| (r.partition_key, r.payload)));
            }
        }
        Ok(load)
    }

    /// Polls the slot; each poll's records are put, then the slot advances
    /// past them. The slot is dropped at the end.
    fn spawn_capture(
        &mut self,
        kinesis: &aws_sdk_kinesis::Client,
        _options: CaptureOptions,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<usize>>> {
        let mut capture = self
            .capture
            .take()
            .ok_or_else(|| anyhow::anyhow!("the slot's capture starts after the full load"))?;
        let kinesis = kinesis.clone();
        Ok(tokio::spawn(async move {
            let mut count = 0;
            loop {
                let poll = capture.poll(1000).await?;
                let Some(upto) = poll.upto else {
                    if *stop.borrow() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                let records: Vec<(String, Vec<u8>)> = poll
                    .records
                    .into_iter()
                    .map(|r| (r.partition_key, r.payload))
                    .collect();
                if !records.is_empty() {
                    put_ordered(&kinesis, STREAM, &records).await?;
                }
                count += records.len();
                capture.advance(&upto).await?;
            }
            capture.drop_slot().await?;
            Ok(count)
        }))
    }

    async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        self.pool.get().await?.batch_execute(sql).await?;
        Ok(())
    }

    async fn stop(self) {
        drop(self.pool);
        drop(self.db);
    }
}
