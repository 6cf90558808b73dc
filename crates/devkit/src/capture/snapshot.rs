//! The initial snapshot: every row of the captured tables as `load` records,
//! read in one consistent snapshot whose binlog position is known, so that
//! streaming from that position continues exactly after it.

use chrono::Utc;
use mysql_async::prelude::*;
use mysql_async::Pool;

use crate::dms::TableName;

use super::render::{data_document, DataDoc, Image};
use super::schema::{load_table_def, row_cell};
use super::{partition_key, BinlogPosition, CaptureError, CaptureOptions, CapturedRecord};

/// How rows of one table become `load` records.
struct LoadShape<'a> {
    table: &'a TableName,
    primary_key: &'a [String],
    json: &'a std::collections::BTreeSet<String>,
    large_integer_value: bool,
    schema_table_prefix: bool,
}

impl LoadShape<'_> {
    /// A row as DMS renders it in a full load stamped `at`: its partition
    /// key and its document.
    fn record(&self, row: mysql_async::Row, at: chrono::DateTime<Utc>) -> (String, Vec<u8>) {
        let columns = row.columns();
        let image: Image = columns
            .iter()
            .zip(row.unwrap())
            .map(|(c, v)| {
                let name = c.name_str().into_owned();
                let cell = row_cell(v, c, self.json.contains(&name));
                (name, cell)
            })
            .collect();
        let key_values: Vec<String> = self
            .primary_key
            .iter()
            .filter_map(|k| {
                image
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k))
                    .map(|(_, c)| c.key_text(self.large_integer_value))
            })
            .collect();
        let key = partition_key(self.table, &key_values, self.schema_table_prefix);
        let payload = data_document(&DataDoc {
            table: self.table,
            operation: "load",
            partition_key: &key,
            data: &image,
            before: None,
            tx: None,
            timestamp: at,
            large_integer_value: self.large_integer_value,
        });
        (key, payload)
    }
}

/// A snapshot's records and the binlog position it corresponds to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Start streaming here: every change after the snapshot, none before.
    pub position: BinlogPosition,
    /// One `load` record per row, table by table in the order asked, rows in
    /// primary key order.
    pub records: Vec<CapturedRecord>,
}

/// Reads every row of `tables` in one consistent snapshot (`START
/// TRANSACTION WITH CONSISTENT SNAPSHOT`) and the binlog position of that
/// snapshot (MariaDB's `binlog_snapshot_file` / `binlog_snapshot_position`,
/// consistent with it without locking). Rows are held in memory: this is
/// for local stand-in sizes.
///
/// Needs MariaDB: MySQL has no snapshot position without a global read lock,
/// which this does not take.
pub async fn snapshot(
    pool: &Pool,
    tables: &[TableName],
    options: &CaptureOptions,
) -> Result<Snapshot, CaptureError> {
    let mut conn = pool.get_conn().await?;
    let zone: Option<String> = conn.query_first("SELECT @@session.time_zone").await?;
    // TIMESTAMP values are read in UTC, as DMS renders them.
    conn.query_drop("SET time_zone = '+00:00'").await?;
    conn.query_drop("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await?;
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        .await?;
    let result = read(&mut conn, tables, options).await;
    conn.query_drop("ROLLBACK").await?;
    if let Some(zone) = zone {
        conn.exec_drop("SET time_zone = ?", (zone,)).await?;
    }
    result
}

async fn read(
    conn: &mut mysql_async::Conn,
    tables: &[TableName],
    options: &CaptureOptions,
) -> Result<Snapshot, CaptureError> {
    let status: Vec<(String, String)> = conn
        .query("SHOW SESSION STATUS LIKE 'binlog_snapshot_%'")
        .await?;
    let get = |name: &str| {
        status
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let position =
        match (get("Binlog_snapshot_file"), get("Binlog_snapshot_position")) {
            (Some(file), Some(pos)) if !file.is_empty() => BinlogPosition::new(
                file,
                pos.parse()
                    .map_err(|_| CaptureError::Position(pos.clone()))?,
            ),
            _ => return Err(CaptureError::Setup(
                "no binlog_snapshot_file status: consistent snapshots need MariaDB with log_bin"
                    .to_owned(),
            )),
        };
    let now = Utc::now();
    let mut records = Vec::new();
    for table in tables {
        let def = load_table_def(conn, table)
            .await?
            .ok_or_else(|| CaptureError::Setup(format!("table {table} does not exist")))?;
        let mut json = def.json_columns();
        if let Some(extra) = options.json_columns.get(table) {
            json.extend(extra.iter().cloned());
        }
        let quote = |n: &str| format!("`{}`", n.replace('`', "``"));
        let order = if def.primary_key.is_empty() {
            String::new()
        } else {
            format!(
                " ORDER BY {}",
                def.primary_key
                    .iter()
                    .map(|k| quote(k))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let sql = format!(
            "SELECT * FROM {}.{}{order}",
            quote(&table.schema),
            quote(&table.table)
        );
        let rows: Vec<mysql_async::Row> = conn.exec(sql, ()).await?;
        let shape = LoadShape {
            table,
            primary_key: &def.primary_key,
            json: &json,
            large_integer_value: options.large_integer_value,
            schema_table_prefix: options.schema_table_prefix,
        };
        for row in rows {
            let (key, payload) = shape.record(row, now);
            records.push(CapturedRecord {
                partition_key: key,
                payload,
                position: position.clone(),
                commit_time: None,
                table: table.clone(),
            });
        }
    }
    Ok(Snapshot { position, records })
}

/// Reads a table by ranges of its primary key (one integer column), as
/// `load` records: the chunked, resumable read of `dms-cdc backfill`.
#[derive(Debug, Clone)]
pub struct KeyRangeReader {
    table: TableName,
    key: String,
    json: std::collections::BTreeSet<String>,
    large_integer_value: bool,
    schema_table_prefix: bool,
}

/// One row read by a [`KeyRangeReader`].
#[derive(Debug, Clone)]
pub struct KeyedRecord {
    /// The row's key.
    pub key: i128,
    /// The Kinesis partition key DMS would use.
    pub partition_key: String,
    /// The DMS `load` document.
    pub payload: Vec<u8>,
}

const INTEGER_TYPES: [&str; 5] = ["tinyint", "smallint", "mediumint", "int", "bigint"];

fn key_of(value: &mysql_async::Value) -> Option<i128> {
    match value {
        mysql_async::Value::Int(i) => Some(i128::from(*i)),
        mysql_async::Value::UInt(u) => Some(i128::from(*u)),
        mysql_async::Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

impl KeyRangeReader {
    /// A reader of `table`, whose primary key must be one integer column.
    pub async fn new(
        pool: &Pool,
        table: &TableName,
        options: &CaptureOptions,
    ) -> Result<KeyRangeReader, CaptureError> {
        let mut conn = pool.get_conn().await?;
        let def = load_table_def(&mut conn, table)
            .await?
            .ok_or_else(|| CaptureError::Setup(format!("table {table} does not exist")))?;
        let [key] = def.primary_key.as_slice() else {
            return Err(CaptureError::Setup(format!(
                "table {table}: its primary key ({}) is not one column; backfill reads by ranges of a one-column integer key",
                def.primary_key.join(", ")
            )));
        };
        let column = def
            .columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(key));
        let integer = column.is_some_and(|c| {
            let base = c.type_text.split(['(', ' ']).next().unwrap_or("");
            INTEGER_TYPES.contains(&base)
        });
        if !integer {
            return Err(CaptureError::Setup(format!(
                "table {table}: primary key `{key}` is {}, not an integer; backfill reads by ranges of a one-column integer key",
                column.map(|c| c.type_text.as_str()).unwrap_or("unknown")
            )));
        }
        let mut json = def.json_columns();
        if let Some(extra) = options.json_columns.get(table) {
            json.extend(extra.iter().cloned());
        }
        Ok(KeyRangeReader {
            table: table.clone(),
            key: key.clone(),
            json,
            large_integer_value: options.large_integer_value,
            schema_table_prefix: options.schema_table_prefix,
        })
    }

    fn quoted(&self) -> (String, String) {
        let quote = |n: &str| format!("`{}`", n.replace('`', "``"));
        (
            format!("{}.{}", quote(&self.table.schema), quote(&self.table.table)),
            quote(&self.key),
        )
    }

    /// The smallest and greatest key within `lo..=hi` (`None`: no row there).
    pub async fn bounds_within(
        &self,
        pool: &Pool,
        lo: i128,
        hi: i128,
    ) -> Result<Option<(i128, i128)>, CaptureError> {
        let (table, key) = self.quoted();
        let mut conn = pool.get_conn().await?;
        let row: Option<(mysql_async::Value, mysql_async::Value)> = conn
            .query_first(format!(
                "SELECT MIN({key}), MAX({key}) FROM {table} WHERE {key} >= {lo} AND {key} <= {hi}"
            ))
            .await?;
        Ok(row.and_then(|(lo, hi)| Some((key_of(&lo)?, key_of(&hi)?))))
    }

    /// Up to `limit` rows with `after < key <= upto`, in key order, as
    /// `load` records stamped with the source's clock read before the rows
    /// (so a change committed after the read is newer than the record).
    pub async fn read(
        &self,
        pool: &Pool,
        after: i128,
        upto: i128,
        limit: usize,
    ) -> Result<Vec<KeyedRecord>, CaptureError> {
        let (table, key) = self.quoted();
        let mut conn = pool.get_conn().await?;
        // TIMESTAMP values are rendered in UTC, as DMS renders them.
        conn.query_drop("SET time_zone = '+00:00'").await?;
        let clock: Option<String> = conn
            .query_first("SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%fZ')")
            .await?;
        let read_at = clock
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(&c).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| CaptureError::Setup("the source's clock could not be read".into()))?;
        let sql = format!(
            "SELECT * FROM {table} WHERE {key} > {after} AND {key} <= {upto} ORDER BY {key} LIMIT {limit}"
        );
        // The binary protocol: typed values, as the snapshot reads them.
        let rows: Vec<mysql_async::Row> = conn.exec(sql, ()).await?;
        let primary_key = [self.key.clone()];
        let shape = LoadShape {
            table: &self.table,
            primary_key: &primary_key,
            json: &self.json,
            large_integer_value: self.large_integer_value,
            schema_table_prefix: self.schema_table_prefix,
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let k = row
                .columns_ref()
                .iter()
                .position(|c| c.name_str().eq_ignore_ascii_case(&self.key))
                .and_then(|i| row.as_ref(i))
                .and_then(key_of);
            let Some(k) = k else {
                return Err(CaptureError::Setup(format!(
                    "table {}: a row without an integer key",
                    self.table
                )));
            };
            let (partition_key, payload) = shape.record(row, read_at);
            out.push(KeyedRecord {
                key: k,
                partition_key,
                payload,
            });
        }
        Ok(out)
    }
}
