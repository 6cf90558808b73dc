//! `dms-cdc capture`: a local stand-in for AWS DMS. Reads a MariaDB binlog
//! (ROW format, full row image, `binlog_row_metadata=FULL`) and produces one
//! record per row change in exactly the DMS Kinesis JSON format that
//! [`crate::dms`] decodes, plus control records for DDL, plus `load` records
//! for an initial snapshot.
//!
//! ```text
//! snapshot(pool, tables, options)      -> Snapshot { position, records: [load ...] }
//! Capture::start(opts, position, options)
//!     .next_transaction(wait)          -> the next committed transaction's records
//!     .read_until(&target, timeout)    -> every record up to a position
//! ```
//!
//! # The records
//!
//! - Data records (`record-type` `data`, `operation` `insert` / `update` /
//!   `delete`, or `load` for the snapshot): `data` holds every column (the
//!   deleted row for deletes); updates carry a before image under
//!   [`CaptureOptions::before_image_field`] with the columns
//!   [`CaptureOptions::column_filter`] selects (`pk-only`, `non-lob`, `all`;
//!   LOB columns are the mapping's `lob` lists plus TEXT/BLOB/JSON columns,
//!   TINYTEXT/TINYBLOB excepted, as DMS classifies them).
//! - Metadata: `timestamp` (when the record was produced), `record-type`,
//!   `operation`, `partition-key-type` `primary-key`, `partition-key-value`,
//!   `schema-name`, `table-name`, and for CDC records the transaction details
//!   `transaction-id` (the MariaDB GTID sequence number, a JSON number, for
//!   GTID domain 0; `"domain-server-seq"` otherwise), `commit-timestamp`
//!   (the commit event's time, whole seconds), `stream-position`
//!   (`file:pos` of the rows event), `transaction-record-id` (1, 2, ... within
//!   the transaction), `prev-transaction-id` and `prev-transaction-record-id`
//!   (the previous transaction that produced data records in this capture;
//!   absent for the first one after a start).
//! - Control records (`record-type` `control`, `partition-key-type`
//!   `task-id`, partition key [`CaptureOptions::task_id`]) for CREATE TABLE
//!   (`create-table`), DROP TABLE (`drop-table`, no table definition), RENAME
//!   TABLE / ALTER TABLE ... RENAME (`rename-table`, named by the old table,
//!   `control.new-table` names the new one) and ALTER TABLE column changes
//!   (`add-column`, `drop-column`, `rename-column`, `change-columns` for a
//!   type change or several kinds at once). `control.table-def` lists the
//!   table's columns right after the statement, with DMS types
//!   (`INT8`, `UINT8`, `WSTRING` + `length`, `NUMERIC` + `precision`/`scale`,
//!   `DATETIME` + `scale`, `NCLOB`, `BLOB`, `BYTES`, ...) and `nullable`, and
//!   its `primary-key`. The definition is tracked through the binlog: it
//!   starts from `information_schema` (or the table map events, which are
//!   authoritative at their position) and each DDL is applied to it, so a
//!   record read long after the statement still shows the table as it was
//!   right after it.
//!
//! Values are rendered as DMS renders them: integers as JSON numbers (with
//! `large_integer_value` off, integers of more than 16 digits in exponent
//! notation as DMS does without `UseLargeIntegerValue`), DECIMAL as its exact
//! number text, FLOAT/DOUBLE as numbers, DATETIME as
//! `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (wall clock, not shifted; as many
//! fractional digits as the column declares), TIMESTAMP the same in UTC, DATE
//! `YYYY-MM-DD`, TIME `HH:MM:SS[.ffffff]`, binary columns as `0x` + hex,
//! JSON columns as JSON (numbers verbatim), ENUM and SET as their labels,
//! NULL as `null` (every column is present: `IncludeNullAndEmpty=true`).
//!
//! # Positions and transactions
//!
//! A transaction's records are produced when its commit (XID event, or a
//! `COMMIT` query for non-transactional tables) arrives, in binlog order,
//! and every record carries the position right after that commit: resuming
//! from a record's [`CapturedRecord::position`] never repeats or skips part
//! of a transaction. A DDL statement is its own transaction.
//!
//! # MariaDB specifics (10.11)
//!
//! - `@mariadb_slave_capability=4` is set before the dump so GTID events
//!   arrive as such (type 162: `seq_no` u64, `domain_id` u32, flags u8;
//!   flag 1 = standalone, i.e. a DDL without BEGIN/COMMIT).
//! - Resume is by file and position (`COM_BINLOG_DUMP`); MySQL's
//!   `COM_BINLOG_DUMP_GTID` fails on MariaDB and is not used.
//! - The first (fake) rotate event arrives before the format description,
//!   so its file name still carries the 4 checksum bytes; they are cut.
//! - JSON columns are LONGTEXT with a `json_valid` check: they are found in
//!   `information_schema.CHECK_CONSTRAINTS` (or named in
//!   [`CaptureOptions::json_columns`]).
//! - The reading user needs REPLICATION SLAVE and REPLICATION CLIENT
//!   (BINLOG MONITOR on newer MariaDB), and SELECT for snapshots.
//!
//! MySQL-only paths (GTID resume, binary JSON, compressed transaction
//! payloads, `SHOW BINARY LOG STATUS`) are not exercised; where code for
//! them exists it says so. Consistent snapshots need MariaDB
//! (`binlog_snapshot_file`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mysql_async::prelude::*;
use mysql_async::{Conn, Pool};
use serde::{Deserialize, Serialize};

use crate::dms::{TableName, DEFAULT_BEFORE_IMAGE_FIELD};
use crate::mapping::Mapping;

mod ddl;
mod md5;
mod pg_range;
pub mod postgres;
mod range;
mod render;
mod schema;
mod snapshot;
mod stream;

pub use pg_range::PgKeyRangeReader;
pub use range::{AnySource, RangeReader, RangeSource, Sources};
pub use snapshot::{
    integer_key, snapshot, KeyRange, KeyRangeReader, KeyedRecord, RootKey, Snapshot,
};
pub use stream::{Capture, CapturedTransaction};

/// `BeforeImageSettings.ColumnFilter`: which columns the before image of an update carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColumnFilter {
    /// Only the primary key columns.
    PkOnly,
    /// Every column except LOB columns (DMS's default).
    #[default]
    NonLob,
    /// Every column.
    All,
}

impl FromStr for ColumnFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pk-only" => Ok(ColumnFilter::PkOnly),
            "non-lob" => Ok(ColumnFilter::NonLob),
            "all" => Ok(ColumnFilter::All),
            other => Err(format!(
                "unknown column filter {other:?} (expected pk-only, non-lob or all)"
            )),
        }
    }
}

/// What the capture produces and how: the DMS task and endpoint settings it imitates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureOptions {
    /// `BeforeImageSettings.FieldName` (default `before-image`).
    pub before_image_field: String,
    /// `BeforeImageSettings.EnableBeforeImage` (default `true`).
    pub before_image: bool,
    /// `BeforeImageSettings.ColumnFilter` (default `non-lob`).
    pub column_filter: ColumnFilter,
    /// Tables to capture; `None` captures every table outside the system
    /// schemas (`mysql`, `information_schema`, `performance_schema`, `sys`).
    pub tables: Option<BTreeSet<TableName>>,
    /// LOB columns per table, in addition to TEXT/BLOB/JSON columns (a
    /// mapping's `source.tables.<t>.lob`).
    pub lob_columns: BTreeMap<TableName, BTreeSet<String>>,
    /// JSON columns per table, in addition to those `information_schema`
    /// shows (a mapping's `source.tables.<t>.json`).
    pub json_columns: BTreeMap<TableName, BTreeSet<String>>,
    /// `UseLargeIntegerValue` (default `true`): integers keep every digit.
    /// With `false`, integers of more than 16 digits are written in exponent
    /// notation with 15 significant digits, as DMS does.
    pub large_integer_value: bool,
    /// `PartitionIncludeSchemaTable` (default `true`): partition keys are
    /// `schema.table.<key values>`.
    pub schema_table_prefix: bool,
    /// Server id of the replica connection; two captures reading one server
    /// at once need different ids (the server drops the older dump).
    pub server_id: u32,
    /// Partition key of control records (DMS uses the task's resource id).
    pub task_id: String,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            before_image_field: DEFAULT_BEFORE_IMAGE_FIELD.to_owned(),
            before_image: true,
            column_filter: ColumnFilter::NonLob,
            tables: None,
            lob_columns: BTreeMap::new(),
            json_columns: BTreeMap::new(),
            large_integer_value: true,
            schema_table_prefix: true,
            server_id: 0x00dc_dc01,
            task_id: "DMSCDCLOCALCAPTURE".to_owned(),
        }
    }
}

const SYSTEM_SCHEMAS: [&str; 4] = ["mysql", "information_schema", "performance_schema", "sys"];

impl CaptureOptions {
    /// Options for the tables a mapping reads: its tables, LOB and JSON
    /// columns and before-image field name.
    pub fn from_mapping(mapping: &Mapping) -> CaptureOptions {
        CaptureOptions {
            before_image_field: mapping.before_image_field.clone(),
            tables: Some(mapping.sources.keys().cloned().collect()),
            lob_columns: mapping
                .sources
                .iter()
                .map(|(t, s)| (t.clone(), s.lob.clone()))
                .collect(),
            json_columns: mapping
                .sources
                .iter()
                .map(|(t, s)| (t.clone(), s.json.clone()))
                .collect(),
            ..CaptureOptions::default()
        }
    }

    /// Whether changes of `table` are captured.
    pub fn captures(&self, table: &TableName) -> bool {
        match &self.tables {
            Some(tables) => tables.contains(table),
            None => !SYSTEM_SCHEMAS
                .iter()
                .any(|s| table.schema.eq_ignore_ascii_case(s)),
        }
    }

    fn listed(
        map: &BTreeMap<TableName, BTreeSet<String>>,
        table: &TableName,
        column: &str,
    ) -> bool {
        map.get(table)
            .is_some_and(|cols| cols.iter().any(|c| c.eq_ignore_ascii_case(column)))
    }
}

/// A binlog position: file name and byte offset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BinlogPosition {
    /// Binlog file name (`binlog.000001`).
    pub file: String,
    /// Byte offset in the file.
    pub pos: u64,
}

impl BinlogPosition {
    /// Builds a position.
    pub fn new(file: impl Into<String>, pos: u64) -> Self {
        BinlogPosition {
            file: file.into(),
            pos,
        }
    }

    /// The numeric extension of the file name (`000012` of `binlog.000012`).
    fn file_number(&self) -> Option<u64> {
        self.file.rsplit_once('.')?.1.parse().ok()
    }
}

impl Ord for BinlogPosition {
    /// Binlog order: by the file's sequence number (its numeric extension),
    /// then by offset.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self.file_number(), other.file_number()) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self.file.cmp(&other.file),
        }
        .then(self.pos.cmp(&other.pos))
    }
}

impl PartialOrd for BinlogPosition {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

impl FromStr for BinlogPosition {
    type Err = CaptureError;

    /// Reads `file:pos`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (file, pos) = s
            .rsplit_once(':')
            .ok_or_else(|| CaptureError::Position(s.to_owned()))?;
        let pos = pos
            .parse()
            .map_err(|_| CaptureError::Position(s.to_owned()))?;
        if file.is_empty() {
            return Err(CaptureError::Position(s.to_owned()));
        }
        Ok(BinlogPosition::new(file, pos))
    }
}

/// One record, as DMS would put it on Kinesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedRecord {
    /// The Kinesis partition key (see [`partition_key`]; the task id for control records).
    pub partition_key: String,
    /// The DMS JSON document.
    pub payload: Vec<u8>,
    /// Where to resume so that the record's transaction is not read again:
    /// right after its commit (for snapshot records, the snapshot's position).
    pub position: BinlogPosition,
    /// When its transaction committed (`None` for snapshot records).
    pub commit_time: Option<DateTime<Utc>>,
    /// The table it concerns.
    pub table: TableName,
}

/// Capture failed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// A query or the replication connection failed.
    #[error("source server: {0}")]
    Sql(#[from] mysql_async::Error),
    /// The server is not set up for capture (binlog off, not ROW, ...).
    #[error("source server setup: {0}")]
    Setup(String),
    /// The binlog carries something this capture cannot turn into records.
    #[error("binlog at {position}: {message}")]
    Stream {
        /// The last transaction boundary read.
        position: BinlogPosition,
        /// What was wrong.
        message: String,
    },
    /// The stream did not reach the target position in time.
    #[error("binlog stream did not reach {target} within {waited:?} (read up to {position})")]
    Timeout {
        /// The last transaction boundary read.
        position: BinlogPosition,
        /// The position asked for.
        target: BinlogPosition,
        /// How long it waited.
        waited: Duration,
    },
    /// A position that is not `file:pos`.
    #[error("invalid binlog position {0:?} (expected file:pos)")]
    Position(String),
}

/// The partition key DMS uses with primary-key partitioning:
/// `schema.table.<key values joined by '.'>` with `PartitionIncludeSchemaTable`,
/// else the key values alone. A table without a primary key uses
/// `schema.table` (so all its rows stay in order on one shard).
pub fn partition_key(
    table: &TableName,
    key_values: &[String],
    schema_table_prefix: bool,
) -> String {
    let values = key_values.join(".");
    if values.is_empty() || key_values.is_empty() {
        format!("{}.{}", table.schema, table.table)
    } else if schema_table_prefix {
        format!("{}.{}.{}", table.schema, table.table, values)
    } else {
        values
    }
}

/// The shard (0-based, of `shard_count` shards with evenly split hash key
/// ranges) Kinesis puts a partition key on: the MD5 of the key, read as a
/// 128-bit integer, falls into one shard's range. The same key always lands
/// on the same shard.
pub fn shard_for(partition_key: &str, shard_count: usize) -> usize {
    let count = shard_count.max(1) as u128;
    let hash = u128::from_be_bytes(md5::digest(partition_key.as_bytes()));
    let width = u128::MAX / count;
    usize::try_from((hash / width).min(count - 1)).unwrap_or(0)
}

/// The server's current binlog position (`SHOW MASTER STATUS`): the end of
/// the last transaction written.
pub async fn current_position(pool: &Pool) -> Result<BinlogPosition, CaptureError> {
    let mut conn = pool.get_conn().await?;
    master_status(&mut conn).await
}

async fn master_status(conn: &mut Conn) -> Result<BinlogPosition, CaptureError> {
    let row: Option<mysql_async::Row> = match conn.query_first("SHOW MASTER STATUS").await {
        Ok(row) => row,
        // MySQL 8.4 only: SHOW MASTER STATUS was removed there.
        Err(_) => conn.query_first("SHOW BINARY LOG STATUS").await?,
    };
    let row = row.ok_or_else(|| {
        CaptureError::Setup("binary logging is off (SHOW MASTER STATUS is empty)".to_owned())
    })?;
    let file: Option<String> = row.get(0);
    let pos: Option<u64> = row.get(1);
    match (file, pos) {
        (Some(file), Some(pos)) => Ok(BinlogPosition::new(file, pos)),
        _ => Err(CaptureError::Setup(
            "SHOW MASTER STATUS returned no file and position".to_owned(),
        )),
    }
}

/// Checks that the server writes what capture needs.
async fn check_server(conn: &mut Conn) -> Result<(), CaptureError> {
    let row: Option<(String, String, String)> = conn
        .query_first(
            "SELECT CAST(@@global.log_bin AS CHAR), @@global.binlog_format, @@global.binlog_row_image",
        )
        .await?;
    let (log_bin, format, image) = row.unwrap_or_default();
    if log_bin != "1" && !log_bin.eq_ignore_ascii_case("ON") {
        return Err(CaptureError::Setup(
            "binary logging is off (log_bin)".into(),
        ));
    }
    if !format.eq_ignore_ascii_case("ROW") {
        return Err(CaptureError::Setup(format!(
            "binlog_format is {format}, capture needs ROW"
        )));
    }
    if !image.eq_ignore_ascii_case("FULL") {
        return Err(CaptureError::Setup(format!(
            "binlog_row_image is {image}, capture needs FULL"
        )));
    }
    let metadata: Option<String> = conn
        .query_first("SELECT @@global.binlog_row_metadata")
        .await
        .map_err(|_| {
            CaptureError::Setup(
                "the server has no binlog_row_metadata (MariaDB 10.5+ / MySQL 8.0.1+ needed)"
                    .into(),
            )
        })?;
    let metadata = metadata.unwrap_or_default();
    if !metadata.eq_ignore_ascii_case("FULL") {
        return Err(CaptureError::Setup(format!(
            "binlog_row_metadata is {metadata}, capture needs FULL (column names and primary keys)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_file_number_then_offset() {
        let a: BinlogPosition = "binlog.000009:900".parse().unwrap();
        let b: BinlogPosition = "binlog.000010:4".parse().unwrap();
        assert!(a < b);
        assert!(BinlogPosition::new("binlog.000010", 5) > b);
        assert_eq!(b.to_string(), "binlog.000010:4");
        assert!("nofile".parse::<BinlogPosition>().is_err());
        assert!(":4".parse::<BinlogPosition>().is_err());
    }

    #[test]
    fn partition_keys_and_shards() {
        let t = TableName::new("recipes_src", "ingredients");
        assert_eq!(
            partition_key(&t, &["1001".into()], true),
            "recipes_src.ingredients.1001"
        );
        assert_eq!(partition_key(&t, &["1".into(), "a".into()], false), "1.a");
        assert_eq!(partition_key(&t, &[], false), "recipes_src.ingredients");
        let key = "recipes_src.ingredients.1001";
        assert_eq!(shard_for(key, 4), shard_for(key, 4));
        assert_eq!(shard_for(key, 1), 0);
        // MD5("abc") = 0x9001..., in the upper half of the hash key range.
        assert_eq!(shard_for("abc", 2), 1);
        let spread: BTreeSet<usize> = (0..200).map(|i| shard_for(&i.to_string(), 4)).collect();
        assert_eq!(spread.len(), 4);
    }

    #[test]
    fn column_filters_parse() {
        assert_eq!("pk-only".parse(), Ok(ColumnFilter::PkOnly));
        assert_eq!("all".parse(), Ok(ColumnFilter::All));
        assert!("lob".parse::<ColumnFilter>().is_err());
    }
}
