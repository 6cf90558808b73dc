//! Writing a MySQL target: one transaction per batch (or chunk) with
//! multi-row upserts, keyed deletes, the shard checkpoint and quarantined
//! records.
//!
//! Contract: delivery is at-least-once and ordered per shard only, so every
//! write is idempotent: upserts by key, deletes by key, and the checkpoint
//! (`dms_cdc_checkpoint`) advances in the same transaction, so a redelivered
//! record at or below it is skipped. With a version column a write never
//! replaces a row with an older version.

use std::collections::HashMap;

use mysql_async::prelude::*;
use mysql_async::{Pool, TxOpts};

use dms_cdc_core::dms::Value;
use dms_cdc_core::fault::{Classify, Fault, Infrastructure};
use dms_cdc_core::mapping::{DeletePolicy, Mapping, TargetTable};
use dms_cdc_core::position::{SequenceNumber, ShardId};
use dms_cdc_core::target::{
    bounded, rows_per_statement, statement_size, tombstone_key, Quarantine, TableWrites,
    QUARANTINE_MESSAGE_LEN, QUARANTINE_OPERATION_LEN, QUARANTINE_TABLE_LEN, TOMBSTONE_DAYS,
};

use crate::source::{into_param, quote, to_param};

/// DDL of the bookkeeping tables, created if missing.
pub const BOOKKEEPING_DDL: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS dms_cdc_checkpoint (
        function_name   VARCHAR(128) NOT NULL,
        shard_id        VARCHAR(128) NOT NULL,
        sequence_number VARCHAR(129) NOT NULL,
        updated_at      DATETIME(6) NOT NULL,
        PRIMARY KEY (function_name, shard_id)
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    "CREATE TABLE IF NOT EXISTS dms_cdc_quarantine (
        id              BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        function_name   VARCHAR(128) NOT NULL,
        shard_id        VARCHAR(128) NOT NULL,
        sequence_number VARCHAR(129) NOT NULL,
        table_name      VARCHAR(200) NULL,
        operation       VARCHAR(32) NULL,
        raw_record      LONGBLOB NOT NULL,
        error_class     VARCHAR(64) NOT NULL,
        error_message   TEXT NOT NULL,
        first_seen      DATETIME(6) NOT NULL,
        last_seen       DATETIME(6) NOT NULL,
        attempts        INT NOT NULL DEFAULT 1,
        resolved        TINYINT NOT NULL DEFAULT 0,
        resolution      VARCHAR(200) NULL,
        UNIQUE KEY quarantine_record (function_name, shard_id, sequence_number)
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    // Hard-deleted rows of targets with a version column: an upsert older
    // than the delete is dropped instead of bringing the row back. Kept
    // per target table (not per function: a redrive writes under its own name).
    "CREATE TABLE IF NOT EXISTS dms_cdc_tombstone (
        target_table    VARCHAR(64) CHARACTER SET ascii NOT NULL,
        row_key         VARBINARY(2900) NOT NULL,
        version         VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        deleted_at      DATETIME(6) NOT NULL,
        PRIMARY KEY (target_table, row_key),
        KEY tombstone_age (deleted_at)
     ) ENGINE=InnoDB",
];

/// A write failed.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// A statement failed (the message never carries row values).
    #[error("target write ({what}): {}", crate::fault::describe(source))]
    Write {
        /// What was being written.
        what: String,
        /// Whether it was our own bookkeeping (checkpoint, quarantine row)
        /// rather than a row of the record.
        bookkeeping: bool,
        /// The driver error.
        #[source]
        source: mysql_async::Error,
    },
    /// The target's schema cannot hold what the mapping writes.
    #[error("target table {table}: column {column}: {problem}")]
    Schema {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// What is wrong, and the fix.
        problem: String,
    },
}

impl TargetError {
    fn row(what: impl Into<String>) -> impl FnOnce(mysql_async::Error) -> TargetError {
        let what = what.into();
        move |source| TargetError::Write {
            what,
            bookkeeping: false,
            source,
        }
    }

    pub(crate) fn bookkeeping(
        what: impl Into<String>,
    ) -> impl FnOnce(mysql_async::Error) -> TargetError {
        let what = what.into();
        move |source| TargetError::Write {
            what,
            bookkeeping: true,
            source,
        }
    }

    /// Whose fault it is ([`Classify::fault`]).
    pub fn fault(&self) -> Fault {
        Classify::fault(self)
    }

    /// Whether the batch is to be retried (anything but the record's fault).
    pub fn is_retryable(&self) -> bool {
        !self.fault().is_record()
    }
}

impl Classify for TargetError {
    /// A value our own checkpoint or quarantine row cannot hold is never
    /// the record's fault: it retries and alarms
    /// ([`Infrastructure::Bookkeeping`]) instead of quarantining.
    fn fault(&self) -> Fault {
        match self {
            TargetError::Write {
                bookkeeping,
                source,
                ..
            } => match crate::fault::of(source) {
                Fault::Record if *bookkeeping => Fault::Infrastructure(Infrastructure::Bookkeeping),
                f => f,
            },
            TargetError::Schema { .. } => Fault::Infrastructure(Infrastructure::Schema),
        }
    }
}

/// A MySQL (or MariaDB) target.
#[derive(Debug, Clone)]
pub struct MysqlTarget {
    pub(crate) pool: Pool,
    pub(crate) function_name: String,
    pub(crate) chunk_size: usize,
    /// Per target table, the select list that reads its rows as text
    /// (`crate::rows`), read from the schema once.
    pub(crate) select_lists: std::sync::Arc<std::sync::Mutex<HashMap<String, String>>>,
}

impl MysqlTarget {
    /// A target writing through `pool` as `function_name`.
    pub fn new(pool: Pool, function_name: impl Into<String>, chunk_size: usize) -> Self {
        MysqlTarget {
            pool,
            function_name: function_name.into(),
            chunk_size: chunk_size.max(1),
            select_lists: Default::default(),
        }
    }

    /// Creates the bookkeeping tables if missing.
    pub async fn prepare(&self) -> Result<(), TargetError> {
        let mut conn = self
            .pool
            .get_conn()
            .await
            .map_err(TargetError::bookkeeping("connect"))?;
        for ddl in BOOKKEEPING_DDL {
            conn.query_drop(ddl)
                .await
                .map_err(TargetError::bookkeeping("bookkeeping tables"))?;
        }
        conn.query_drop(format!(
            "DELETE FROM dms_cdc_tombstone WHERE deleted_at < NOW(6) - INTERVAL {TOMBSTONE_DAYS} DAY"
        ))
        .await
        .map_err(TargetError::bookkeeping("purge old tombstones"))?;
        Ok(())
    }

    /// Checks that every version column of `targets` can hold a version
    /// ([`dms_cdc_core::version::MAX_VERSION_LEN`] characters): a column too narrow
    /// would reject every write, which must not read as the records' fault.
    pub async fn check_version_columns(&self, targets: &[TargetTable]) -> Result<(), TargetError> {
        let wanted: Vec<(&str, &str)> = targets
            .iter()
            .filter_map(|t| t.version.as_deref().map(|v| (t.table.as_str(), v)))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let mut conn = self
            .pool
            .get_conn()
            .await
            .map_err(TargetError::bookkeeping("connect"))?;
        let need = dms_cdc_core::version::MAX_VERSION_LEN as u64;
        for (table, column) in wanted {
            let found: Option<(String, Option<u64>)> = conn
                .exec_first(
                    "SELECT DATA_TYPE, CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS
                     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?",
                    (table, column),
                )
                .await
                .map_err(TargetError::bookkeeping("read the target's schema"))?;
            let problem = match found {
                None => Some("the version column does not exist".to_owned()),
                Some((ty, Some(len))) if len >= need && ["varchar", "char", "text", "tinytext", "mediumtext", "longtext", "varbinary"].contains(&ty.to_lowercase().as_str()) => None,
                Some((ty, len)) => Some(format!(
                    "the version column is {ty}({}); it must hold {need} characters: ALTER TABLE {} MODIFY {} VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NULL",
                    len.map(|l| l.to_string()).unwrap_or_default(),
                    quote(table),
                    quote(column)
                )),
            };
            if let Some(problem) = problem {
                return Err(TargetError::Schema {
                    table: table.to_owned(),
                    column: column.to_owned(),
                    problem,
                });
            }
        }
        Ok(())
    }

    /// The last applied sequence number of a shard.
    pub async fn checkpoint(&self, shard: &ShardId) -> Result<Option<SequenceNumber>, TargetError> {
        let mut conn = self
            .pool
            .get_conn()
            .await
            .map_err(TargetError::bookkeeping("read checkpoint"))?;
        let found: Option<String> = conn
            .exec_first(
                "SELECT sequence_number FROM dms_cdc_checkpoint WHERE function_name = ? AND shard_id = ?",
                (&self.function_name, shard.as_str()),
            )
            .await
            .map_err(TargetError::bookkeeping("read checkpoint"))?;
        Ok(found.and_then(|s| SequenceNumber::parse(&s).ok()))
    }

    /// Applies writes, quarantined records and the checkpoint in one transaction.
    pub async fn apply(
        &self,
        targets: &[TargetTable],
        writes: Vec<TableWrites>,
        quarantine: &[Quarantine],
        checkpoint: Option<(&ShardId, &SequenceNumber)>,
    ) -> Result<(), TargetError> {
        let mut tx = self.begin().await?;
        for w in writes {
            tx.write(&targets[w.target], w).await?;
        }
        tx.finish(quarantine, checkpoint).await
    }

    /// Starts the transaction of a batch: write tables with [`WriteTx::write`]
    /// (as the rows become ready), then [`WriteTx::finish`] with the
    /// quarantined records and the checkpoint. Dropping it rolls back.
    pub async fn begin(&self) -> Result<WriteTx, TargetError> {
        let tx = self
            .pool
            .start_transaction(TxOpts::default())
            .await
            .map_err(TargetError::bookkeeping("begin"))?;
        Ok(WriteTx {
            tx,
            target: self.clone(),
        })
    }
}

/// One batch's open write transaction on the target.
pub struct WriteTx {
    tx: mysql_async::Transaction<'static>,
    target: MysqlTarget,
}

impl WriteTx {
    /// Writes one table's upserts and deletes (chunked multi-row statements).
    pub async fn write(
        &mut self,
        target: &TargetTable,
        writes: TableWrites,
    ) -> Result<(), TargetError> {
        let names = target.column_names();
        let mut writes = writes;
        if target.version.is_some() && !writes.upserts.is_empty() {
            self.drop_deleted(target, &names, &mut writes.upserts)
                .await?;
        }
        let width = writes.upserts.first().map_or(names.len(), Vec::len);
        let chunk_size = rows_per_statement(self.target.chunk_size, width);
        let mut rows = writes.upserts.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<Value>> = rows.by_ref().take(chunk_size).collect();
            let (count, params) = padded(chunk, chunk_size);
            self.tx
                .exec_drop(upsert_sql(target, &names, count), params)
                .await
                .map_err(TargetError::row(format!("upsert {}", target.table)))?;
        }
        // A soft delete binds its value first.
        let chunk_size = rows_per_statement(self.target.chunk_size, target.key.len() + 1);
        let mut keys = writes.deletes.into_iter().peekable();
        while keys.peek().is_some() {
            let chunk: Vec<Vec<Value>> = keys.by_ref().take(chunk_size).collect();
            let (count, key_params) = padded(chunk, chunk_size);
            let (sql, mut params) = delete_sql(target, count);
            params.extend(key_params);
            self.tx
                .exec_drop(sql, params)
                .await
                .map_err(TargetError::row(format!("delete {}", target.table)))?;
        }
        // Soft-delete marks of a versioned target: one guarded statement
        // per row, which also stamps the delete's version, so a late older
        // update neither unmarks the row nor is kept over the delete.
        if let (DeletePolicy::Soft { column, value }, Some(v)) = (&target.delete, &target.version) {
            let mark = dms_cdc_core::mapping::toml_scalar(value).unwrap_or(Value::Null);
            let cond = target
                .key
                .iter()
                .map(|k| format!("{} = ?", quote(k)))
                .collect::<Vec<_>>()
                .join(" AND ");
            let sql = format!(
                "UPDATE {} SET {c} = ?, {v} = ? WHERE {cond} AND ({v} IS NULL OR {v} <= ?)",
                quote(&target.table),
                c = quote(column),
                v = quote(v),
            );
            for (key, version) in &writes.tombstones {
                let mut params = vec![to_param(&mark), mysql_async::Value::from(version.as_str())];
                params.extend(key.iter().map(to_param));
                params.push(mysql_async::Value::from(version.as_str()));
                self.tx
                    .exec_drop(&sql, params)
                    .await
                    .map_err(TargetError::row(format!("delete {}", target.table)))?;
            }
        }
        let chunk_size = rows_per_statement(self.target.chunk_size, 3);
        for chunk in writes.tombstones.chunks(chunk_size) {
            // Padded like the deletes (a tombstone repeated changes
            // nothing), so the statement shapes repeat and stay prepared.
            let count = statement_size(chunk.len(), chunk_size);
            let one = "(?, ?, ?, NOW(6))";
            let sql = format!(
                "INSERT INTO dms_cdc_tombstone (target_table, row_key, version, deleted_at) VALUES {}
                 ON DUPLICATE KEY UPDATE
                   deleted_at = IF(VALUES(version) > version, VALUES(deleted_at), deleted_at),
                   version = GREATEST(version, VALUES(version))",
                vec![one; count].join(", ")
            );
            let padding = chunk.last().into_iter().cycle().take(count - chunk.len());
            let mut params = Vec::with_capacity(count * 3);
            for (key, version) in chunk.iter().chain(padding) {
                params.push(mysql_async::Value::Bytes(target.table.clone().into_bytes()));
                params.push(mysql_async::Value::Bytes(tombstone_key(key)));
                params.push(mysql_async::Value::Bytes(version.clone().into_bytes()));
            }
            self.tx
                .exec_drop(sql, params)
                .await
                .map_err(TargetError::bookkeeping(format!(
                    "tombstones of {}",
                    target.table
                )))?;
        }
        Ok(())
    }

    /// Drops the upserts that are older than a hard delete of their row
    /// (a tombstone with a greater version). The tombstones are read with
    /// `FOR UPDATE`: a concurrent delete of one of these rows waits for this
    /// transaction (and then deletes the row), or committed before it and
    /// is seen here, so an older rebuild never brings a deleted row back.
    async fn drop_deleted(
        &mut self,
        target: &TargetTable,
        names: &[&str],
        upserts: &mut Vec<Vec<Value>>,
    ) -> Result<(), TargetError> {
        let positions: Vec<usize> = target
            .key
            .iter()
            .filter_map(|k| names.iter().position(|n| n == k))
            .collect();
        if positions.len() != target.key.len() {
            return Ok(());
        }
        let keys: Vec<Vec<u8>> = upserts
            .iter()
            .map(|row| {
                let key: Vec<Value> = positions
                    .iter()
                    .map(|p| row.get(*p).cloned().unwrap_or(Value::Null))
                    .collect();
                tombstone_key(&key)
            })
            .collect();
        let mut deleted: std::collections::HashMap<Vec<u8>, String> = Default::default();
        let chunk_size = rows_per_statement(self.target.chunk_size, 1);
        for chunk in keys.chunks(chunk_size) {
            let count = statement_size(chunk.len(), chunk_size);
            let sql = format!(
                "SELECT row_key, version FROM dms_cdc_tombstone WHERE target_table = ? AND row_key IN ({}) FOR UPDATE",
                vec!["?"; count].join(", ")
            );
            let mut params = vec![mysql_async::Value::Bytes(target.table.clone().into_bytes())];
            let padding = chunk.last().into_iter().cycle().take(count - chunk.len());
            params.extend(
                chunk
                    .iter()
                    .chain(padding)
                    .map(|k| mysql_async::Value::Bytes(k.clone())),
            );
            let found: Vec<(Vec<u8>, String)> =
                self.tx
                    .exec(sql, params)
                    .await
                    .map_err(TargetError::bookkeeping(format!(
                        "tombstones of {}",
                        target.table
                    )))?;
            deleted.extend(found);
        }
        if deleted.is_empty() {
            return Ok(());
        }
        let keep: Vec<bool> = keys
            .iter()
            .zip(upserts.iter())
            .map(|(key, row)| match (deleted.get(key), row.last()) {
                (Some(tomb), Some(Value::Text(version))) => version.as_str() >= tomb.as_str(),
                _ => true,
            })
            .collect();
        let mut keep = keep.into_iter();
        upserts.retain(|_| keep.next().unwrap_or(true));
        Ok(())
    }

    /// Stores the quarantined records, advances the shard's checkpoint and commits.
    pub async fn finish(
        mut self,
        quarantine: &[Quarantine],
        checkpoint: Option<(&ShardId, &SequenceNumber)>,
    ) -> Result<(), TargetError> {
        let err = TargetError::bookkeeping;
        let function_name = &self.target.function_name;
        for q in quarantine {
            self.tx
                .exec_drop(
                    "INSERT INTO dms_cdc_quarantine (function_name, shard_id, sequence_number, table_name, operation,
                     raw_record, error_class, error_message, first_seen, last_seen)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, NOW(6), NOW(6))
                 ON DUPLICATE KEY UPDATE attempts = attempts + 1, last_seen = NOW(6),
                     error_class = VALUES(error_class), error_message = VALUES(error_message)",
                    (
                        function_name,
                        q.shard_id.as_str(),
                        q.sequence_number.as_str(),
                        q.table.as_deref().map(|t| bounded(t, QUARANTINE_TABLE_LEN)),
                        q.operation
                            .as_deref()
                            .map(|o| bounded(o, QUARANTINE_OPERATION_LEN)),
                        &q.raw,
                        q.class.as_str(),
                        bounded(&q.message, QUARANTINE_MESSAGE_LEN),
                    ),
                )
                .await
                .map_err(err("quarantine"))?;
        }
        if let Some((shard, seq)) = checkpoint {
            // One statement: the checkpoint only moves forward. Sequence
            // numbers are decimal strings, ordered by length, then digits.
            self.tx
                .exec_drop(
                    "INSERT INTO dms_cdc_checkpoint (function_name, shard_id, sequence_number, updated_at)
                     VALUES (?, ?, ?, NOW(6))
                     ON DUPLICATE KEY UPDATE
                       updated_at = IF(CHAR_LENGTH(VALUES(sequence_number)) > CHAR_LENGTH(sequence_number)
                           OR (CHAR_LENGTH(VALUES(sequence_number)) = CHAR_LENGTH(sequence_number)
                               AND BINARY VALUES(sequence_number) > BINARY sequence_number),
                           VALUES(updated_at), updated_at),
                       sequence_number = IF(CHAR_LENGTH(VALUES(sequence_number)) > CHAR_LENGTH(sequence_number)
                           OR (CHAR_LENGTH(VALUES(sequence_number)) = CHAR_LENGTH(sequence_number)
                               AND BINARY VALUES(sequence_number) > BINARY sequence_number),
                           VALUES(sequence_number), sequence_number)",
                    (function_name, shard.as_str(), seq.as_str()),
                )
                .await
                .map_err(err("write checkpoint"))?;
        }
        self.tx.commit().await.map_err(err("commit"))?;
        Ok(())
    }
}

impl dms_cdc_core::target::Target for MysqlTarget {
    type Error = TargetError;
    type Transaction = WriteTx;

    async fn prepare(&self, mapping: &Mapping) -> Result<(), TargetError> {
        MysqlTarget::prepare(self).await?;
        self.check_version_columns(&mapping.targets).await
    }

    async fn checkpoint(&self, shard: &ShardId) -> Result<Option<SequenceNumber>, TargetError> {
        MysqlTarget::checkpoint(self, shard).await
    }

    async fn begin(&self) -> Result<WriteTx, TargetError> {
        MysqlTarget::begin(self).await
    }
}

impl dms_cdc_core::target::TargetTransaction for WriteTx {
    type Error = TargetError;

    async fn write(&mut self, table: &TargetTable, writes: TableWrites) -> Result<(), TargetError> {
        WriteTx::write(self, table, writes).await
    }

    async fn finish(
        self,
        quarantine: &[Quarantine],
        checkpoint: Option<(&ShardId, &SequenceNumber)>,
    ) -> Result<(), TargetError> {
        WriteTx::finish(self, quarantine, checkpoint).await
    }
}

/// Parameters of `items` padded to [`statement_size`]: (rows, flat parameters).
fn padded(items: Vec<Vec<Value>>, chunk_size: usize) -> (usize, Vec<mysql_async::Value>) {
    let count = statement_size(items.len(), chunk_size);
    let width = items.first().map_or(0, Vec::len);
    let mut params: Vec<mysql_async::Value> = Vec::with_capacity(count * width);
    params.extend(items.into_iter().flatten().map(into_param));
    // Only the padding copies: the last item's parameters, once per extra row.
    let last = params.len().saturating_sub(width);
    while params.len() < count * width {
        params.extend_from_within(last..last + width);
    }
    (count, params)
}

fn upsert_sql(target: &TargetTable, names: &[&str], rows: usize) -> String {
    let cols = names
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(", ");
    let one = format!("({})", vec!["?"; names.len()].join(", "));
    let values = vec![one.as_str(); rows].join(", ");
    let updates: Vec<String> = match &target.version {
        // The version column is assigned last so the guard reads the old value for every column.
        Some(v) => {
            let guard = format!("({v} IS NULL OR VALUES({v}) >= {v})", v = quote(v));
            names
                .iter()
                .filter(|c| !target.key.iter().any(|k| k == *c))
                .map(|c| format!("{c} = IF({guard}, VALUES({c}), {c})", c = quote(c)))
                .collect()
        }
        None => names
            .iter()
            .filter(|c| !target.key.iter().any(|k| k == *c))
            .map(|c| format!("{c} = VALUES({c})", c = quote(c)))
            .collect(),
    };
    let updates = if updates.is_empty() {
        // Key-only tables: a no-op update keeps the statement idempotent.
        format!("{k} = {k}", k = quote(&target.key[0]))
    } else {
        updates.join(", ")
    };
    format!(
        "INSERT INTO {} ({cols}) VALUES {values} ON DUPLICATE KEY UPDATE {updates}",
        quote(&target.table)
    )
}

fn delete_sql(target: &TargetTable, count: usize) -> (String, Vec<mysql_async::Value>) {
    let key_cols = target
        .key
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(", ");
    let one = format!("({})", vec!["?"; target.key.len()].join(", "));
    let list = vec![one.as_str(); count].join(", ");
    let cond = format!("({key_cols}) IN ({list})");
    match &target.delete {
        DeletePolicy::Hard => (
            format!("DELETE FROM {} WHERE {cond}", quote(&target.table)),
            vec![],
        ),
        DeletePolicy::Soft { column, value } => {
            let v = dms_cdc_core::mapping::toml_scalar(value).unwrap_or(Value::Null);
            (
                format!(
                    "UPDATE {} SET {} = ? WHERE {cond}",
                    quote(&target.table),
                    quote(column)
                ),
                vec![to_param(&v)],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_repeats_the_last_item() {
        let items = vec![
            vec![Value::Int(1), Value::Text("a".into())],
            vec![Value::Int(2), Value::Text("b".into())],
            vec![Value::Int(3), Value::Text("c".into())],
        ];
        let (count, params) = padded(items, 500);
        assert_eq!(count, 4);
        assert_eq!(params.len(), 8);
        assert_eq!(params[4..6], params[6..8]);
        assert_eq!(params[6], mysql_async::Value::Int(3));
    }
}
