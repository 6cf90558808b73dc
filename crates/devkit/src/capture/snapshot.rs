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

/// Reads a table in primary key order, chunk by chunk, as `load` records:
/// the chunked, resumable read of `dms-cdc backfill` and `dms-cdc
/// reconcile`. Any primary key works (one column or several, of any type
/// the server orders); ranges of the *leading* key column (parts, parallel
/// ranges) need that column to be an integer.
#[derive(Debug, Clone)]
pub struct KeyRangeReader {
    table: TableName,
    /// The table the records name, when not `table` (a consolidated
    /// instance's schema).
    record_table: Option<TableName>,
    key: Vec<String>,
    /// Whether the leading key column is an integer.
    integer_lead: bool,
    json: std::collections::BTreeSet<String>,
    large_integer_value: bool,
    schema_table_prefix: bool,
}

/// A row's primary key: its key columns' values, in key order.
pub type RootKey = Vec<mysql_async::Value>;

/// One row read by a [`KeyRangeReader`].
#[derive(Debug, Clone)]
pub struct KeyedRecord {
    /// The row's key.
    pub key: RootKey,
    /// The leading key column as an integer (when it is one).
    pub lead: Option<i128>,
    /// The Kinesis partition key DMS would use.
    pub partition_key: String,
    /// The DMS `load` document.
    pub payload: Vec<u8>,
}

const INTEGER_TYPES: [&str; 5] = ["tinyint", "smallint", "mediumint", "int", "bigint"];

/// An integer key value.
pub fn integer_key(value: &mysql_async::Value) -> Option<i128> {
    match value {
        mysql_async::Value::Int(i) => Some(i128::from(*i)),
        mysql_async::Value::UInt(u) => Some(i128::from(*u)),
        mysql_async::Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

fn quote(n: &str) -> String {
    format!("`{}`", n.replace('`', "``"))
}

/// Which rows a read takes: the leading column within `lead` (inclusive,
/// either end open) and, with `after`, only keys greater than it.
#[derive(Debug, Clone, Default)]
pub struct KeyRange<'a> {
    /// Keys greater than this one (key order).
    pub after: Option<&'a [mysql_async::Value]>,
    /// The leading column at least this (integer leads only).
    pub lead_from: Option<i128>,
    /// The leading column at most this (integer leads only).
    pub lead_upto: Option<i128>,
}

impl KeyRangeReader {
    /// A reader of `table`, which must have a primary key.
    pub async fn new(
        pool: &Pool,
        table: &TableName,
        options: &CaptureOptions,
    ) -> Result<KeyRangeReader, CaptureError> {
        let mut conn = pool.get_conn().await?;
        let def = load_table_def(&mut conn, table)
            .await?
            .ok_or_else(|| CaptureError::Setup(format!("table {table} does not exist")))?;
        if def.primary_key.is_empty() {
            return Err(CaptureError::Setup(format!(
                "table {table} has no primary key; backfill and reconcile read a table in primary key order"
            )));
        }
        let lead = def
            .columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(&def.primary_key[0]));
        let integer_lead = lead.is_some_and(|c| {
            let base = c.type_text.split(['(', ' ']).next().unwrap_or("");
            INTEGER_TYPES.contains(&base)
        });
        let mut json = def.json_columns();
        if let Some(extra) = options.json_columns.get(table) {
            json.extend(extra.iter().cloned());
        }
        Ok(KeyRangeReader {
            table: table.clone(),
            record_table: None,
            key: def.primary_key.clone(),
            integer_lead,
            json,
            large_integer_value: options.large_integer_value,
            schema_table_prefix: options.schema_table_prefix,
        })
    }

    /// The table, as its records name it.
    pub fn table(&self) -> &TableName {
        self.record_table.as_ref().unwrap_or(&self.table)
    }

    /// Makes the records name `table` instead (the schema the stream and
    /// the mapping use for it).
    pub fn set_record_table(&mut self, table: &TableName) {
        self.record_table = Some(table.clone());
    }

    /// The greatest value of `column` (as text; `None`: no row).
    pub async fn max_of(&self, pool: &Pool, column: &str) -> Result<Option<String>, CaptureError> {
        let mut conn = pool.get_conn().await?;
        let max: Option<Option<String>> = conn
            .query_first(format!(
                "SELECT CAST(MAX({}) AS CHAR) FROM {}",
                quote(column),
                self.quoted_table()
            ))
            .await?;
        Ok(max.flatten())
    }

    /// The primary key's columns, in key order.
    pub fn key_columns(&self) -> &[String] {
        &self.key
    }

    /// Whether the key is one integer column.
    pub fn integer_key(&self) -> bool {
        self.integer_lead && self.key.len() == 1
    }

    /// Whether the leading key column is an integer (ranges of it can be split).
    pub fn integer_lead(&self) -> bool {
        self.integer_lead
    }

    fn quoted_table(&self) -> String {
        format!("{}.{}", quote(&self.table.schema), quote(&self.table.table))
    }

    /// The smallest and greatest leading key within `lo..=hi` (`None`: no
    /// row there). Needs an integer leading column.
    pub async fn bounds_within(
        &self,
        pool: &Pool,
        lo: i128,
        hi: i128,
    ) -> Result<Option<(i128, i128)>, CaptureError> {
        if !self.integer_lead {
            return Err(self.not_integer_lead());
        }
        let table = self.quoted_table();
        let key = quote(&self.key[0]);
        let mut conn = pool.get_conn().await?;
        let row: Option<(mysql_async::Value, mysql_async::Value)> = conn
            .query_first(format!(
                "SELECT MIN({key}), MAX({key}) FROM {table} WHERE {key} >= {lo} AND {key} <= {hi}"
            ))
            .await?;
        Ok(row.and_then(|(lo, hi)| Some((integer_key(&lo)?, integer_key(&hi)?))))
    }

    /// The error of a range split on a key whose leading column is not an integer.
    pub fn not_integer_lead(&self) -> CaptureError {
        CaptureError::Setup(format!(
            "table {}: the leading primary key column `{}` is not an integer, so its keys cannot be split into ranges (--part, --parallel, --keys); load it as one range",
            self.table, self.key[0]
        ))
    }

    /// The server's estimate of the table's rows (for progress).
    pub async fn estimated_rows(&self, pool: &Pool) -> Result<u64, CaptureError> {
        let mut conn = pool.get_conn().await?;
        let rows: Option<Option<u64>> = conn
            .exec_first(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&self.table.schema, &self.table.table),
            )
            .await?;
        Ok(rows.flatten().unwrap_or(0))
    }

    /// Up to `limit` rows of `range`, in key order, as `load` records
    /// stamped with the source's clock read before the rows (so a change
    /// committed after the read is newer than the record).
    pub async fn read(
        &self,
        pool: &Pool,
        range: &KeyRange<'_>,
        limit: usize,
    ) -> Result<Vec<KeyedRecord>, CaptureError> {
        if (range.lead_from.is_some() || range.lead_upto.is_some()) && !self.integer_lead {
            return Err(self.not_integer_lead());
        }
        let mut params: Vec<mysql_async::Value> = Vec::new();
        let filter = super::range::range_filter(&self.table, &self.key, range, quote, |_, v| {
            params.push(v.clone());
            "?"
        })?;
        let order = self
            .key
            .iter()
            .map(|k| quote(k))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT * FROM {}{filter} ORDER BY {order} LIMIT {limit}",
            self.quoted_table()
        );
        self.records(pool, &sql, params).await
    }

    /// The rows of `keys` (each the key columns' values as text), in key
    /// order, as `load` records (a repair's fresh read).
    pub async fn read_keys(
        &self,
        pool: &Pool,
        keys: &[Vec<String>],
    ) -> Result<Vec<KeyedRecord>, CaptureError> {
        let mut out = Vec::new();
        let one = format!(
            "({})",
            self.key
                .iter()
                .map(|k| format!("{} = ?", quote(k)))
                .collect::<Vec<_>>()
                .join(" AND ")
        );
        for chunk in keys.chunks(200) {
            let mut params: Vec<mysql_async::Value> = Vec::new();
            for key in chunk {
                if key.len() != self.key.len() {
                    return Err(CaptureError::Setup(format!(
                        "table {}: key ({}) has {} values for a primary key of {} columns",
                        self.table,
                        key.join(","),
                        key.len(),
                        self.key.len()
                    )));
                }
                params.extend(key.iter().map(|v| mysql_async::Value::from(v.as_str())));
            }
            let order = self
                .key
                .iter()
                .map(|k| quote(k))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT * FROM {} WHERE {} ORDER BY {order}",
                self.quoted_table(),
                vec![one.as_str(); chunk.len()].join(" OR ")
            );
            out.extend(self.records(pool, &sql, params).await?);
        }
        Ok(out)
    }

    async fn records(
        &self,
        pool: &Pool,
        sql: &str,
        params: Vec<mysql_async::Value>,
    ) -> Result<Vec<KeyedRecord>, CaptureError> {
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
        // The binary protocol: typed values, as the snapshot reads them.
        let rows: Vec<mysql_async::Row> = conn.exec(sql, params).await?;
        let shape = LoadShape {
            table: self.table(),
            primary_key: &self.key,
            json: &self.json,
            large_integer_value: self.large_integer_value,
            schema_table_prefix: self.schema_table_prefix,
        };
        // Where the key columns are in a row (the same in every row).
        let positions: Vec<Option<usize>> = rows
            .first()
            .map(|row| {
                self.key
                    .iter()
                    .map(|k| {
                        row.columns_ref()
                            .iter()
                            .position(|c| c.name_str().eq_ignore_ascii_case(k))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let key: Option<RootKey> = positions
                .iter()
                .map(|p| p.and_then(|i| row.as_ref(i)).cloned())
                .collect();
            let Some(key) = key else {
                return Err(CaptureError::Setup(format!(
                    "table {}: a row without its primary key columns",
                    self.table
                )));
            };
            let lead = if self.integer_lead {
                let Some(lead) = integer_key(&key[0]) else {
                    return Err(CaptureError::Setup(format!(
                        "table {}: a row whose integer key `{}` is not an integer",
                        self.table, self.key[0]
                    )));
                };
                Some(lead)
            } else {
                None
            };
            let (partition_key, payload) = shape.record(row, read_at);
            out.push(KeyedRecord {
                key,
                lead,
                partition_key,
                payload,
            });
        }
        Ok(out)
    }
}
