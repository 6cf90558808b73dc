//! Re-querying the source MySQL for what one change does not carry.
//!
//! Contract: every read of one batch happens in one read-only transaction
//! with a consistent snapshot, so a target row is built from one point in
//! time; each lookup is one query per chunk of keys (`WHERE key IN (...)`
//! with bound parameters), never one query per record.

use std::collections::{BTreeMap, BTreeSet};

use mysql_async::prelude::*;
use mysql_async::{Column, Conn, Pool};

use dms_cdc_core::dms::{ColumnName, Row, SharedNames, TableName, Value};
use dms_cdc_core::fault::{Classify, Fault};
use dms_cdc_core::mapping::{Mapping, TargetTable};
use dms_cdc_core::plan::{KeyPart, KeyTuple};
use dms_cdc_core::source::{
    fetch_rows, lookup_in_rows, reverse_lookup_rows, FetchedRows, SelectIn, SnapshotStats,
    UnmatchedKey,
};

/// A source read failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The query failed (the message never carries row values).
    #[error("source query on {table}: {}", crate::fault::describe(source))]
    Query {
        /// The table read.
        table: String,
        /// The driver error.
        #[source]
        source: mysql_async::Error,
    },
    /// A returned row matches none of the keys asked.
    #[error(transparent)]
    UnmatchedKey(#[from] UnmatchedKey),
}

impl Classify for SourceError {
    fn fault(&self) -> Fault {
        match self {
            SourceError::Query { source, .. } => crate::fault::of(source),
            SourceError::UnmatchedKey(_) => Fault::Record,
        }
    }
}

impl SourceError {
    /// Whose fault it is ([`dms_cdc_core::fault`]).
    pub fn fault(&self) -> Fault {
        Classify::fault(self)
    }
}

fn query_error(table: impl Into<String>) -> impl FnOnce(mysql_async::Error) -> SourceError {
    let table = table.into();
    move |source| SourceError::Query { table, source }
}

/// Quotes an identifier the mapping validated (`[A-Za-z0-9_$]`).
pub fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `schema`.`table`
pub fn quote_table(t: &TableName) -> String {
    format!("{}.{}", quote(&t.schema), quote(&t.table))
}

/// Converts our value into a driver parameter.
pub fn to_param(v: &Value) -> mysql_async::Value {
    into_param(v.clone())
}

/// Converts our value into a driver parameter, reusing its text or bytes.
pub fn into_param(v: Value) -> mysql_async::Value {
    use mysql_async::Value as M;
    match v {
        Value::Null => M::NULL,
        Value::Bool(b) => M::Int(i64::from(b)),
        Value::Int(i) => M::Int(i),
        Value::UInt(u) => M::UInt(u),
        Value::Float(f) => M::Double(f),
        Value::Decimal(t) | Value::Lossy(t) | Value::Text(t) | Value::Json(t) => {
            M::Bytes(t.into_bytes())
        }
        Value::Bytes(b) => M::Bytes(b),
        Value::DateTime(dt) => {
            use chrono::{Datelike, Timelike};
            M::Date(
                dt.year() as u16,
                dt.month() as u8,
                dt.day() as u8,
                dt.hour() as u8,
                dt.minute() as u8,
                dt.second() as u8,
                dt.nanosecond() / 1000,
            )
        }
        Value::Date(d) => {
            use chrono::Datelike;
            M::Date(d.year() as u16, d.month() as u8, d.day() as u8, 0, 0, 0, 0)
        }
        Value::Time(t) => {
            use chrono::Timelike;
            M::Time(
                false,
                0,
                t.hour() as u8,
                t.minute() as u8,
                t.second() as u8,
                t.nanosecond() / 1000,
            )
        }
    }
}

/// The driver's bytes as text, in their own buffer when they are UTF-8 (as
/// decimals and JSON always are), else with U+FFFD for each bad sequence.
fn text_of_bytes(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Converts a driver value of a result column into our value.
pub fn from_column(v: mysql_async::Value, column: &Column) -> Value {
    use mysql_async::consts::ColumnType as T;
    use mysql_async::Value as M;
    match v {
        M::NULL => Value::Null,
        M::Int(i) => Value::Int(i),
        M::UInt(u) => Value::UInt(u),
        M::Float(f) => Value::Float(f64::from(f)),
        M::Double(f) => Value::Float(f),
        M::Date(y, mo, d, h, mi, s, us) => {
            let date = chrono::NaiveDate::from_ymd_opt(i32::from(y), u32::from(mo), u32::from(d));
            match (column.column_type(), date) {
                (T::MYSQL_TYPE_DATE | T::MYSQL_TYPE_NEWDATE, Some(date)) => Value::Date(date),
                (_, Some(date)) => date
                    .and_hms_micro_opt(u32::from(h), u32::from(mi), u32::from(s), us)
                    .map(Value::DateTime)
                    .unwrap_or(Value::Null),
                // Zero dates ('0000-00-00') have no calendar value.
                (_, None) => Value::Text(format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")),
            }
        }
        M::Time(neg, days, h, mi, s, us) => {
            match (
                neg,
                days,
                chrono::NaiveTime::from_hms_micro_opt(
                    u32::from(h),
                    u32::from(mi),
                    u32::from(s),
                    us,
                ),
            ) {
                (false, 0, Some(t)) => Value::Time(t),
                _ => Value::Text(format!(
                    "{}{:02}:{mi:02}:{s:02}.{us:06}",
                    if neg { "-" } else { "" },
                    days * 24 + u32::from(h)
                )),
            }
        }
        M::Bytes(b) => match column.column_type() {
            T::MYSQL_TYPE_DECIMAL | T::MYSQL_TYPE_NEWDECIMAL => Value::Decimal(text_of_bytes(b)),
            T::MYSQL_TYPE_JSON => Value::Json(text_of_bytes(b)),
            T::MYSQL_TYPE_BIT => Value::Bytes(b),
            _ if column.character_set() == 63 => Value::Bytes(b),
            _ => match String::from_utf8(b) {
                Ok(s) => Value::Text(s),
                Err(e) => Value::Bytes(e.into_bytes()),
            },
        },
    }
}

/// One batch's consistent, read-only view of the source.
pub struct MysqlSnapshot {
    conn: Conn,
    chunk_size: usize,
    /// Reads so far.
    pub stats: SnapshotStats,
    json_columns: BTreeMap<TableName, BTreeSet<String>>,
    finished: bool,
}

impl Drop for MysqlSnapshot {
    fn drop(&mut self) {
        // Dropped on an error path, in its transaction (started by hand, so
        // the driver does not know it): reset the connection when it goes
        // back to the pool, which ends the transaction.
        if !self.finished {
            self.conn.reset_connection(true);
        }
    }
}

impl MysqlSnapshot {
    /// Starts a read-only consistent-snapshot transaction.
    pub async fn begin(
        pool: &Pool,
        chunk_size: usize,
        mapping: &Mapping,
    ) -> Result<MysqlSnapshot, SourceError> {
        let err = |source| SourceError::Query {
            table: "(snapshot)".into(),
            source,
        };
        let mut conn = pool.get_conn().await.map_err(err)?;
        // Started by hand on the owned connection so it can live in the struct.
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .await
            .map_err(err)?;
        let json_columns = mapping
            .sources
            .values()
            .map(|s| (s.name.clone(), s.json.iter().cloned().collect()))
            .collect();
        Ok(MysqlSnapshot {
            conn,
            chunk_size: chunk_size.max(1),
            stats: SnapshotStats::default(),
            json_columns,
            finished: false,
        })
    }

    /// Ends the snapshot.
    pub async fn finish(mut self) -> Result<SnapshotStats, SourceError> {
        self.conn
            .query_drop("COMMIT")
            .await
            .map_err(query_error("(snapshot)"))?;
        self.finished = true;
        Ok(self.stats)
    }

    /// `SELECT columns FROM table WHERE (key_columns) IN (tuples)`, one query per chunk.
    pub async fn select_in(
        &mut self,
        table: &TableName,
        columns: &[String],
        key_columns: &[String],
        tuples: &[KeyTuple],
    ) -> Result<Vec<Row>, SourceError> {
        let mut out = Vec::new();
        let select = columns
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(", ");
        let keys = key_columns
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(", ");
        let empty = BTreeSet::new();
        let json = self.json_columns.get(table).unwrap_or(&empty);
        let chunk_size =
            dms_cdc_core::target::rows_per_statement(self.chunk_size, key_columns.len());
        for chunk in tuples.chunks(chunk_size) {
            // Padded to a few statement sizes (a key listed twice is
            // harmless), so the prepared statements are reused across batches.
            let count = dms_cdc_core::target::statement_size(chunk.len(), chunk_size);
            let one = format!("({})", vec!["?"; key_columns.len()].join(", "));
            let placeholders = vec![one.as_str(); count].join(", ");
            let sql = if key_columns.len() == 1 {
                format!(
                    "SELECT {select} FROM {} WHERE {keys} IN ({})",
                    quote_table(table),
                    vec!["?"; count].join(", ")
                )
            } else {
                format!(
                    "SELECT {select} FROM {} WHERE ({keys}) IN ({placeholders})",
                    quote_table(table)
                )
            };
            let padding = chunk.last().into_iter().cycle().take(count - chunk.len());
            // Integer key parts are bound as text: a text constant uses the
            // index of an integer column and of a text column alike, while
            // an integer compared with a text column scans it and matches
            // '07' for 7.
            let params: Vec<mysql_async::Value> = chunk
                .iter()
                .chain(padding)
                .flat_map(|t| t.0.iter())
                .map(|p| match p {
                    KeyPart::Int(i) => mysql_async::Value::Bytes(i.to_string().into_bytes()),
                    other => into_param(other.to_value()),
                })
                .collect();
            // Names are the same for every row of a result set: read them
            // from the first. Each row is converted as it is read (no
            // vector of the driver's rows in between).
            // The rows share them (`Row::sharing`): the select list is in
            // name order.
            let mut names: Option<(SharedNames, Vec<bool>)> = None;
            let rows: Vec<Row> = self
                .conn
                .exec_map(sql, params, |row: mysql_async::Row| {
                    let (names, is_json) = names.get_or_insert_with(|| {
                        let columns = row.columns_ref();
                        (
                            columns
                                .iter()
                                .map(|c| ColumnName::from(&*c.name_str()))
                                .collect(),
                            columns
                                .iter()
                                .map(|c| json.contains(&*c.name_str()))
                                .collect(),
                        )
                    });
                    let cols = row.columns();
                    let values = cols
                        .iter()
                        .zip(row.unwrap())
                        .zip(is_json.iter())
                        .map(|((c, v), is_json)| match from_column(v, c) {
                            Value::Text(t) if *is_json => Value::Json(t),
                            other => other,
                        })
                        .collect();
                    Row::sharing(names, values)
                })
                .await
                .map_err(query_error(table.to_string()))?;
            self.stats.select_count += 1;
            self.stats.row_count += rows.len();
            out.extend(rows);
        }
        Ok(out)
    }
}

impl SelectIn for MysqlSnapshot {
    type Error = SourceError;

    async fn select_in(
        &mut self,
        table: &TableName,
        columns: &[String],
        key_columns: &[String],
        tuples: &[KeyTuple],
    ) -> Result<Vec<Row>, SourceError> {
        MysqlSnapshot::select_in(self, table, columns, key_columns, tuples).await
    }
}

/// A connection pool for a MySQL URL, with the session in UTC (DMS renders
/// TIMESTAMP in UTC), at most `max_connections` connections and TLS as the
/// URL says ([`crate::connection`]).
///
/// Sessions estimate every `IN (...)` list from the index itself
/// (`eq_range_index_dive_limit = 0`): a chunk's key list is longer than
/// the server's default limit (200), beyond which it trusts the table's
/// statistics, and statistics taken before a bulk load (a backfill's source,
/// a freshly loaded target) make it read the whole table for every chunk.
pub fn pool(url: &str, max_connections: usize) -> Result<Pool, crate::connection::OptionsError> {
    // TLS as the URL's parameters say (`ssl-mode`, `ssl-ca`, or the driver's).
    let opts = crate::connection::opts(url)?;
    let constraints =
        mysql_async::PoolConstraints::new(1, max_connections.max(1)).unwrap_or_default();
    let builder = mysql_async::OptsBuilder::from_opts(opts.clone())
        .setup(vec![
            "SET time_zone = '+00:00', eq_range_index_dive_limit = 0",
        ])
        // Room for every statement shape of a mapping (per table and lookup,
        // a chunk size and its padded sizes), so none is re-prepared.
        // (unless the URL sets `stmt_cache_size`).
        .stmt_cache_size(Some(
            if opts.stmt_cache_size() == mysql_async::DEFAULT_STMT_CACHE_SIZE {
                128
            } else {
                opts.stmt_cache_size()
            },
        ))
        // Connections keep their session between uses (no COM_RESET_CONNECTION
        // on return to the pool), so prepared statements are reused from batch
        // to batch. Nothing here leaves session state behind: transactions
        // are rolled back by the driver, and a snapshot dropped before its
        // end asks for the reset itself (see `Snapshot`'s `Drop`).
        .pool_opts(
            opts.pool_opts()
                .clone()
                .with_constraints(constraints)
                .with_reset_connection(false),
        );
    Ok(Pool::new(builder))
}

/// A MySQL (or MariaDB) source: re-queries through a pool, one consistent
/// snapshot per batch ([`MysqlSnapshot`]).
#[derive(Debug, Clone)]
pub struct MysqlSource {
    pool: Pool,
}

impl MysqlSource {
    /// A source reading through `pool` (see [`pool`]).
    pub fn new(pool: Pool) -> Self {
        MysqlSource { pool }
    }

    /// The pool (for checks, tests and tools that read the source directly).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}

impl From<Pool> for MysqlSource {
    fn from(pool: Pool) -> Self {
        MysqlSource::new(pool)
    }
}

impl dms_cdc_core::source::Source for MysqlSource {
    type Error = SourceError;
    type Snapshot = MysqlSnapshot;

    async fn snapshot(
        &self,
        mapping: &Mapping,
        chunk_size: usize,
    ) -> Result<MysqlSnapshot, SourceError> {
        MysqlSnapshot::begin(&self.pool, chunk_size, mapping).await
    }
}

impl dms_cdc_core::source::SourceSnapshot for MysqlSnapshot {
    type Error = SourceError;

    async fn reverse_lookup(
        &mut self,
        target: &TargetTable,
        columns: &[String],
        tuples: &[KeyTuple],
    ) -> Result<Vec<(KeyTuple, KeyTuple)>, SourceError> {
        reverse_lookup_rows(self, target, columns, tuples).await
    }

    async fn lookup_in(
        &mut self,
        table: &TableName,
        select: &[String],
        match_columns: &[String],
        tuples: &[KeyTuple],
    ) -> Result<Vec<(KeyTuple, KeyTuple)>, SourceError> {
        lookup_in_rows(self, table, select, match_columns, tuples).await
    }

    async fn fetch(
        &mut self,
        target: &TargetTable,
        keys: &[KeyTuple],
    ) -> Result<FetchedRows, SourceError> {
        fetch_rows(self, target, keys).await
    }

    async fn finish(self) -> Result<SnapshotStats, SourceError> {
        MysqlSnapshot::finish(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::text_of_bytes;

    #[test]
    fn bytes_as_text_are_what_a_lossy_reading_gives() {
        for bytes in [
            b"12.50".to_vec(),
            br#"{"a":[1,"\u00e9"]}"#.to_vec(),
            "caf\u{e9}".as_bytes().to_vec(),
            vec![b'1', 0xff, b'2', 0xc3],
            Vec::new(),
        ] {
            assert_eq!(
                text_of_bytes(bytes.clone()),
                String::from_utf8_lossy(&bytes),
                "{bytes:?}"
            );
        }
    }
}
