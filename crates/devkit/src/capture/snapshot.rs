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
        for row in rows {
            let columns = row.columns();
            let image: Image = columns
                .iter()
                .zip(row.unwrap())
                .map(|(c, v)| {
                    let name = c.name_str().into_owned();
                    let cell = row_cell(v, c, json.contains(&name));
                    (name, cell)
                })
                .collect();
            let key_values: Vec<String> = def
                .primary_key
                .iter()
                .filter_map(|k| {
                    image
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(k))
                        .map(|(_, c)| c.key_text(options.large_integer_value))
                })
                .collect();
            let key = partition_key(table, &key_values, options.schema_table_prefix);
            let payload = data_document(&DataDoc {
                table,
                operation: "load",
                partition_key: &key,
                data: &image,
                before: None,
                tx: None,
                timestamp: now,
                large_integer_value: options.large_integer_value,
            });
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
