//! The demo's MariaDB source: `fixtures/source.sql` with the rows of
//! `fixtures/source-state.sql`, a consistent snapshot as the full load, the
//! binlog from the snapshot's position as the stream, and the workload in
//! MySQL SQL.

use std::path::Path;

use mysql_async::prelude::*;

use super::{SourceDb, STREAM};
use crate::capture::{snapshot, BinlogPosition, CaptureOptions};
use crate::local::MariaDb;
use crate::mapping::Mapping;
use crate::pipeline::{capture_to_stream, StopAt};
use dms_cdc_mysql::MysqlSource;

/// A throwaway MariaDB with the sample database `recipes_src`.
pub(super) struct MariaDbSource {
    db: MariaDb,
    url: String,
    pool: mysql_async::Pool,
    /// Where the binlog capture starts (the snapshot's position).
    from: Option<BinlogPosition>,
}

impl MariaDbSource {
    /// Starts the server and loads the sample schema and rows.
    pub(super) async fn start(repo: &Path) -> anyhow::Result<MariaDbSource> {
        let db = tokio::task::spawn_blocking(|| MariaDb::start(1)).await??;
        db.run_file(&repo.join("fixtures/source.sql"))?;
        db.run_file(&repo.join("fixtures/source-state.sql"))?;
        let url = db.url("recipes_src");
        let pool = crate::source::pool(&url, 4)?;
        Ok(MariaDbSource {
            db,
            url,
            pool,
            from: None,
        })
    }
}

impl SourceDb for MariaDbSource {
    type Source = MysqlSource;

    /// Inserts, updates, deletes, a child moving between parents, a story
    /// over DMS's 32 KB LOB limit, and a poison value (a zero date the
    /// target mapping cannot convert).
    const WORKLOAD: &'static [&'static str] = &[
        "INSERT INTO users VALUES (50, 'Grace', 'Grace@Example.com', '2026-11-01 09:00:00', 1)",
        "INSERT INTO recipes (id, author_id, title, status, servings, rating, created_at, tags)
           VALUES (500, 50, 'Focaccia', 'published', 6, 4.80, '2026-11-01 09:30:00', '[\"bread\"]')",
        "INSERT INTO ingredients VALUES (5000, 500, 1, 'flour', 500.00, 'g'), (5001, 500, 2, 'water', 350.00, 'ml'), (5002, 500, 3, 'salt', 10.00, 'g')",
        "UPDATE recipes SET title = 'Rosemary focaccia' WHERE id = 500",
        "UPDATE users SET name = 'Grace H.' WHERE id = 50",
        "UPDATE ingredients SET recipe_id = 101, position = 9 WHERE id = 5002",
        "DELETE FROM ingredients WHERE id = 5001",
        "INSERT INTO recipe_stories VALUES (500, REPEAT('A long, long story about bread. ', 2000))",
        "UPDATE recipes SET status = 'draft' WHERE id = 102",
        "DELETE FROM users WHERE id = 4",
        "INSERT INTO users VALUES (51, 'Zero', 'zero@example.com', '0000-00-00 00:00:00', 1)",
        "UPDATE recipes SET status = 'published', title = 'Back again' WHERE id = 102",
    ];

    fn source(&self) -> anyhow::Result<MysqlSource> {
        Ok(MysqlSource::new(self.pool.clone()))
    }

    /// One consistent snapshot of the mapped tables; the binlog capture
    /// starts at its position.
    async fn full_load(
        &mut self,
        mapping: &Mapping,
        options: &CaptureOptions,
    ) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let tables: Vec<_> = mapping.sources.keys().cloned().collect();
        let snap = snapshot(&self.pool, &tables, options).await?;
        self.from = Some(snap.position);
        Ok(snap
            .records
            .into_iter()
            .map(|r| (r.partition_key, r.payload))
            .collect())
    }

    fn spawn_capture(
        &mut self,
        kinesis: &aws_sdk_kinesis::Client,
        options: CaptureOptions,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<usize>>> {
        let from = self
            .from
            .take()
            .ok_or_else(|| anyhow::anyhow!("the binlog capture starts after the full load"))?;
        let kinesis = kinesis.clone();
        let url = self.url.clone();
        Ok(tokio::spawn(async move {
            let summary = capture_to_stream(
                &url,
                from,
                options,
                &kinesis,
                STREAM,
                None,
                StopAt::Signal(stop),
            )
            .await?;
            Ok(summary.record_count)
        }))
    }

    async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        let mut conn = self.pool.get_conn().await?;
        conn.query_drop(sql).await?;
        Ok(())
    }

    async fn stop(self) {
        self.pool.disconnect().await.ok();
        drop(self.db);
    }
}
