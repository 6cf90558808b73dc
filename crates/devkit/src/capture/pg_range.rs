//! A PostgreSQL table read in primary key order as DMS `load` records: the
//! PostgreSQL side of backfill and reconcile, as [`super::KeyRangeReader`]
//! is MySQL's. Values are read as the server's text output (`col::text`,
//! what `test_decoding` writes too) and typed by the column's type
//! (`format_type`), so a loaded row renders exactly as a captured change of
//! it does.

use chrono::{DateTime, Utc};

use super::postgres::{cell, primary_key, sql_error, table_columns};
use super::render::{data_document, DataDoc, Image};
use super::{partition_key, CaptureError, CaptureOptions, KeyRange, KeyedRecord, RootKey};
use crate::dms::TableName;

const INTEGER_TYPES: [&str; 3] = ["smallint", "integer", "bigint"];

/// Reads one PostgreSQL table in key order.
#[derive(Clone)]
pub struct PgKeyRangeReader {
    pool: dms_cdc_postgres::Pool,
    /// The table in the database.
    source_table: TableName,
    /// The table the records name (the mapping's schema for it).
    table: TableName,
    key: Vec<String>,
    /// Column names and types (`format_type`), in table order.
    columns: Vec<(String, String)>,
    integer_lead: bool,
    large_integer_value: bool,
    schema_table_prefix: bool,
}

impl std::fmt::Debug for PgKeyRangeReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgKeyRangeReader")
            .field("table", &self.table)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A key value as text, to bind and cast on the server.
fn key_text(value: &mysql_async::Value) -> String {
    match value {
        mysql_async::Value::Int(i) => i.to_string(),
        mysql_async::Value::UInt(u) => u.to_string(),
        mysql_async::Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => other.as_sql(true).trim_matches('\'').to_owned(),
    }
}

impl PgKeyRangeReader {
    /// A reader of `table` (in the database) whose records name
    /// `record_table` (the schema the mapping and the stream use for it).
    pub async fn new(
        pool: dms_cdc_postgres::Pool,
        table: &TableName,
        record_table: &TableName,
        options: &CaptureOptions,
    ) -> Result<PgKeyRangeReader, CaptureError> {
        let client = pool.get().await.map_err(sql_error)?;
        let columns = table_columns(&client, table).await?;
        if columns.is_empty() {
            return Err(CaptureError::Setup(format!("table {table} does not exist")));
        }
        let key = primary_key(&client, table).await?;
        if key.is_empty() {
            return Err(CaptureError::Setup(format!(
                "table {table} has no primary key; backfill and reconcile read a table in primary key order"
            )));
        }
        let integer_lead = columns
            .iter()
            .find(|(n, _)| *n == key[0])
            .is_some_and(|(_, t)| INTEGER_TYPES.contains(&t.as_str()));
        Ok(PgKeyRangeReader {
            pool,
            source_table: table.clone(),
            table: record_table.clone(),
            key,
            columns,
            integer_lead,
            large_integer_value: options.large_integer_value,
            schema_table_prefix: options.schema_table_prefix,
        })
    }

    /// The table, as its records name it.
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// Makes the records name `table` instead.
    pub fn set_record_table(&mut self, table: &TableName) {
        self.table = table.clone();
    }

    /// The greatest value of `column` (as text; `None`: no row).
    pub async fn max_of(&self, column: &str) -> Result<Option<String>, CaptureError> {
        let client = self.pool.get().await.map_err(sql_error)?;
        let row = client
            .query_one(
                &format!(
                    "SELECT MAX({})::text FROM {}",
                    quote(column),
                    self.quoted_table()
                ),
                &[],
            )
            .await
            .map_err(sql_error)?;
        Ok(row.get(0))
    }

    /// The primary key's columns, in key order.
    pub fn key_columns(&self) -> &[String] {
        &self.key
    }

    /// Whether the leading key column is an integer.
    pub fn integer_lead(&self) -> bool {
        self.integer_lead
    }

    fn quoted_table(&self) -> String {
        format!(
            "{}.{}",
            quote(&self.source_table.schema),
            quote(&self.source_table.table)
        )
    }

    fn type_of(&self, column: &str) -> &str {
        self.columns
            .iter()
            .find(|(n, _)| n == column)
            .map_or("text", |(_, t)| t.as_str())
    }

    /// The smallest and greatest leading key within `lo..=hi`.
    pub async fn bounds_within(
        &self,
        lo: i128,
        hi: i128,
    ) -> Result<Option<(i128, i128)>, CaptureError> {
        let key = quote(&self.key[0]);
        let client = self.pool.get().await.map_err(sql_error)?;
        // Clamped to what a bigint holds: the ends of an open range.
        let (lo, hi) = (
            lo.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
            hi.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
        );
        let row = client
            .query_one(
                &format!(
                    "SELECT MIN({key})::text, MAX({key})::text FROM {} WHERE {key} >= $1 AND {key} <= $2",
                    self.quoted_table()
                ),
                &[&lo, &hi],
            )
            .await
            .map_err(sql_error)?;
        let (a, b): (Option<String>, Option<String>) = (row.get(0), row.get(1));
        Ok(a.zip(b)
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?))))
    }

    /// The server's estimate of the table's rows.
    pub async fn estimated_rows(&self) -> Result<u64, CaptureError> {
        let client = self.pool.get().await.map_err(sql_error)?;
        let row = client
            .query_one(
                "SELECT GREATEST(c.reltuples, 0)::bigint FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                &[&self.source_table.schema, &self.source_table.table],
            )
            .await
            .map_err(sql_error)?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    /// Up to `limit` rows of `range`, in key order, as `load` records.
    pub async fn read(
        &self,
        range: &KeyRange<'_>,
        limit: usize,
    ) -> Result<Vec<KeyedRecord>, CaptureError> {
        let mut params: Vec<String> = Vec::new();
        let types: Vec<&str> = self.key.iter().map(|k| self.type_of(k)).collect();
        let filter =
            super::range::range_filter(&self.source_table, &self.key, range, quote, |j, v| {
                params.push(key_text(v));
                format!("${}::text::{}", params.len(), types[j])
            })?;
        let order = self.order_by();
        let sql = format!(
            "SELECT {} FROM {}{filter} ORDER BY {order} LIMIT {limit}",
            self.select_list(),
            self.quoted_table()
        );
        self.records(&sql, &params).await
    }

    /// The rows of `keys` (each the key columns' values as text), as `load` records.
    pub async fn read_keys(&self, keys: &[Vec<String>]) -> Result<Vec<KeyedRecord>, CaptureError> {
        let mut out = Vec::new();
        for key in keys {
            if key.len() != self.key.len() {
                return Err(CaptureError::Setup(format!(
                    "table {}: key ({}) has {} values for a primary key of {} columns",
                    self.source_table,
                    key.join(","),
                    key.len(),
                    self.key.len()
                )));
            }
        }
        // One array of text per key column, cast on the server.
        let columns = self
            .key
            .iter()
            .map(|k| quote(k))
            .collect::<Vec<_>>()
            .join(", ");
        let arrays = self
            .key
            .iter()
            .enumerate()
            .map(|(i, k)| format!("${}::text[]::{}[]", i + 1, self.type_of(k)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {} FROM {} WHERE ({columns}) IN (SELECT * FROM unnest({arrays})) ORDER BY {}",
            self.select_list(),
            self.quoted_table(),
            self.order_by()
        );
        for chunk in keys.chunks(500) {
            let params: Vec<Vec<String>> = (0..self.key.len())
                .map(|i| chunk.iter().map(|k| k[i].clone()).collect())
                .collect();
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            out.extend(self.query(&sql, &refs).await?);
        }
        Ok(out)
    }

    /// The key order, on the table's columns (qualified: an output column
    /// `"id"::text` is also named `id`, and a bare `ORDER BY "id"` would
    /// sort by its text).
    fn order_by(&self) -> String {
        self.key
            .iter()
            .map(|k| format!("{}.{}", self.quoted_table(), quote(k)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn select_list(&self) -> String {
        self.columns
            .iter()
            .map(|(n, _)| format!("{}::text", quote(n)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    async fn records(
        &self,
        sql: &str,
        params: &[String],
    ) -> Result<Vec<KeyedRecord>, CaptureError> {
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        self.query(sql, &refs).await
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<KeyedRecord>, CaptureError> {
        let client = self.pool.get().await.map_err(sql_error)?;
        // timestamptz in UTC, as DMS renders them; the clock before the rows.
        client
            .batch_execute("SET TIME ZONE 'UTC'")
            .await
            .map_err(sql_error)?;
        let micros: i64 = client
            .query_one(
                "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
                &[],
            )
            .await
            .map_err(sql_error)?
            .get(0);
        let read_at = DateTime::<Utc>::from_timestamp_micros(micros)
            .ok_or_else(|| CaptureError::Setup("the source's clock could not be read".into()))?;
        let rows = client.query(sql, params).await.map_err(sql_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let image: Image = self
                .columns
                .iter()
                .enumerate()
                .map(|(i, (name, type_name))| {
                    (
                        name.clone(),
                        cell(type_name, row.get::<_, Option<String>>(i)),
                    )
                })
                .collect();
            out.push(self.record(image, read_at)?);
        }
        Ok(out)
    }

    fn record(&self, image: Image, at: DateTime<Utc>) -> Result<KeyedRecord, CaptureError> {
        let mut key: RootKey = Vec::with_capacity(self.key.len());
        let mut key_values = Vec::with_capacity(self.key.len());
        for k in &self.key {
            let Some((_, c)) = image.iter().find(|(n, _)| n == k) else {
                return Err(CaptureError::Setup(format!(
                    "table {}: a row without its primary key column {k}",
                    self.source_table
                )));
            };
            let text = c.key_text(self.large_integer_value);
            key.push(match c {
                super::render::Cell::Int(i) => mysql_async::Value::Int(*i),
                _ => mysql_async::Value::Bytes(text.clone().into_bytes()),
            });
            key_values.push(text);
        }
        let lead = if self.integer_lead {
            Some(super::integer_key(&key[0]).ok_or_else(|| {
                CaptureError::Setup(format!(
                    "table {}: a row whose integer key `{}` is not an integer",
                    self.source_table, self.key[0]
                ))
            })?)
        } else {
            None
        };
        let partition_key = partition_key(&self.table, &key_values, self.schema_table_prefix);
        let payload = data_document(&DataDoc {
            table: &self.table,
            operation: "load",
            partition_key: &partition_key,
            data: &image,
            before: None,
            tx: None,
            timestamp: at,
            large_integer_value: self.large_integer_value,
        });
        Ok(KeyedRecord {
            key,
            lead,
            partition_key,
            payload,
        })
    }
}
