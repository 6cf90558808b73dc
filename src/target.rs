//! Writing a MySQL target: one transaction per batch (or chunk) with
//! multi-row upserts, keyed deletes, the shard checkpoint and quarantined
//! records.
//!
//! Contract: delivery is at-least-once and ordered per shard only, so every
//! write is idempotent: upserts by key, deletes by key, and the checkpoint
//! (`dms_cdc_checkpoint`) advances in the same transaction, so a redelivered
//! record at or below it is skipped. With a version column a write never
//! replaces a row with an older version.

use mysql_async::prelude::*;
use mysql_async::{Pool, TxOpts};

use crate::dms::Value;
use crate::mapping::{DeletePolicy, Target};
use crate::position::{SequenceNumber, ShardId};
use crate::source::{into_param, quote, to_param};

/// DDL of the bookkeeping tables, created if missing.
pub const BOOKKEEPING_DDL: [&str; 2] = [
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
];

/// The MySQL error codes that are worth retrying: the one list of them.
/// Everything else a server says is permanent.
pub const RETRYABLE_SERVER_CODES: [u16; 10] = [
    1205, // lock wait timeout
    1213, // deadlock
    1290, // read-only (--read-only, failover in progress)
    1836, // read-only mode
    1040, // too many connections
    1053, // server shutdown in progress
    1927, // connection was killed
    1158, // network read error
    1159, // network read timeout
    1161, // network write timeout
];

/// Whether a driver error is retryable: broken connections, I/O, pool
/// timeouts and the server codes above.
pub fn is_retryable(err: &mysql_async::Error) -> bool {
    match err {
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => true,
        mysql_async::Error::Server(e) => RETRYABLE_SERVER_CODES.contains(&e.code),
        _ => false,
    }
}

/// A write failed.
#[derive(Debug, thiserror::Error)]
#[error("target write ({what}): {source}")]
pub struct TargetError {
    /// What was being written.
    pub what: String,
    /// The driver error.
    #[source]
    pub source: mysql_async::Error,
}

impl TargetError {
    /// Retryable or permanent.
    pub fn is_retryable(&self) -> bool {
        is_retryable(&self.source)
    }
}

/// The writes for one target table.
#[derive(Debug, Default, Clone)]
pub struct TableWrites {
    /// Index of the target.
    pub target: usize,
    /// Rows to upsert: values in `Target::column_names()` order (version last, if any).
    pub upserts: Vec<Vec<Value>>,
    /// Target keys to delete (per the delete policy).
    pub deletes: Vec<Vec<Value>>,
}

impl TableWrites {
    /// Takes the rows that fill whole statements of `chunk_size` (all of
    /// them when `all`), leaving the rest; `None` when there is nothing to take.
    pub fn take_statements(&mut self, chunk_size: usize, all: bool) -> Option<TableWrites> {
        let chunk_size = chunk_size.max(1);
        let whole = |n: usize| if all { n } else { n - n % chunk_size };
        let upserts: Vec<_> = self.upserts.drain(..whole(self.upserts.len())).collect();
        let deletes: Vec<_> = self.deletes.drain(..whole(self.deletes.len())).collect();
        (!upserts.is_empty() || !deletes.is_empty()).then_some(TableWrites {
            target: self.target,
            upserts,
            deletes,
        })
    }
}

/// A record to store in the quarantine table.
#[derive(Debug, Clone)]
pub struct Quarantine {
    /// Shard.
    pub shard_id: ShardId,
    /// Sequence number.
    pub sequence_number: SequenceNumber,
    /// `schema.table`, when known.
    pub table: Option<String>,
    /// Operation, when known.
    pub operation: Option<String>,
    /// The raw payload.
    pub raw: Vec<u8>,
    /// `decode`, `plan`, `evaluate`, `write`, `ddl`.
    pub class: &'static str,
    /// The reason.
    pub message: String,
}

/// A MySQL (or MariaDB) target.
#[derive(Debug, Clone)]
pub struct MysqlTarget {
    pool: Pool,
    function_name: String,
    chunk_size: usize,
}

impl MysqlTarget {
    /// A target writing through `pool` as `function_name`.
    pub fn new(pool: Pool, function_name: impl Into<String>, chunk_size: usize) -> Self {
        MysqlTarget {
            pool,
            function_name: function_name.into(),
            chunk_size: chunk_size.max(1),
        }
    }

    /// Creates the bookkeeping tables if missing.
    pub async fn prepare(&self) -> Result<(), TargetError> {
        let mut conn = self.pool.get_conn().await.map_err(|source| TargetError {
            what: "connect".into(),
            source,
        })?;
        for ddl in BOOKKEEPING_DDL {
            conn.query_drop(ddl).await.map_err(|source| TargetError {
                what: "bookkeeping tables".into(),
                source,
            })?;
        }
        Ok(())
    }

    /// The last applied sequence number of a shard.
    pub async fn checkpoint(&self, shard: &ShardId) -> Result<Option<SequenceNumber>, TargetError> {
        let err = |source| TargetError {
            what: "read checkpoint".into(),
            source,
        };
        let mut conn = self.pool.get_conn().await.map_err(err)?;
        let found: Option<String> = conn
            .exec_first(
                "SELECT sequence_number FROM dms_cdc_checkpoint WHERE function_name = ? AND shard_id = ?",
                (&self.function_name, &shard.0),
            )
            .await
            .map_err(err)?;
        Ok(found.and_then(|s| SequenceNumber::parse(&s).ok()))
    }

    /// Applies writes, quarantined records and the checkpoint in one transaction.
    pub async fn apply(
        &self,
        targets: &[Target],
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
    pub async fn begin(&self) -> Result<WriteTx<'_>, TargetError> {
        let tx = self
            .pool
            .start_transaction(TxOpts::default())
            .await
            .map_err(|source| TargetError {
                what: "begin".into(),
                source,
            })?;
        Ok(WriteTx { tx, target: self })
    }
}

/// One batch's open write transaction on the target.
pub struct WriteTx<'a> {
    tx: mysql_async::Transaction<'static>,
    target: &'a MysqlTarget,
}

impl WriteTx<'_> {
    /// Writes one table's upserts and deletes (chunked multi-row statements).
    pub async fn write(&mut self, target: &Target, writes: TableWrites) -> Result<(), TargetError> {
        let chunk_size = self.target.chunk_size;
        let names = target.column_names();
        let mut rows = writes.upserts.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<Value>> = rows.by_ref().take(chunk_size).collect();
            let (count, params) = padded(chunk, chunk_size);
            self.tx
                .exec_drop(upsert_sql(target, &names, count), params)
                .await
                .map_err(|source| TargetError {
                    what: format!("upsert {}", target.table),
                    source,
                })?;
        }
        let mut keys = writes.deletes.into_iter().peekable();
        while keys.peek().is_some() {
            let chunk: Vec<Vec<Value>> = keys.by_ref().take(chunk_size).collect();
            let (count, key_params) = padded(chunk, chunk_size);
            let (sql, mut params) = delete_sql(target, count);
            params.extend(key_params);
            self.tx
                .exec_drop(sql, params)
                .await
                .map_err(|source| TargetError {
                    what: format!("delete {}", target.table),
                    source,
                })?;
        }
        Ok(())
    }

    /// Stores the quarantined records, advances the shard's checkpoint and commits.
    pub async fn finish(
        mut self,
        quarantine: &[Quarantine],
        checkpoint: Option<(&ShardId, &SequenceNumber)>,
    ) -> Result<(), TargetError> {
        let err = |what: &str| {
            let what = what.to_owned();
            move |source| TargetError { what, source }
        };
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
                        &q.shard_id.0,
                        q.sequence_number.as_str(),
                        &q.table,
                        &q.operation,
                        &q.raw,
                        q.class,
                        &q.message,
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
                    (function_name, &shard.0, seq.as_str()),
                )
                .await
                .map_err(err("write checkpoint"))?;
        }
        self.tx.commit().await.map_err(err("commit"))?;
        Ok(())
    }
}

/// Statement sizes: the chunk size and the powers of two below it. A short
/// last chunk is padded up to the next size by repeating its last item
/// (harmless: an upsert of the same row, a key listed twice), so a batch
/// prepares at most a handful of statement shapes per table, which stay in
/// the connection's statement cache instead of one new shape per batch.
pub fn statement_size(count: usize, chunk_size: usize) -> usize {
    if count >= chunk_size {
        chunk_size
    } else {
        count.max(1).next_power_of_two().min(chunk_size)
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

fn upsert_sql(target: &Target, names: &[&str], rows: usize) -> String {
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

fn delete_sql(target: &Target, count: usize) -> (String, Vec<mysql_async::Value>) {
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
            let v = crate::mapping::toml_scalar(value).unwrap_or(Value::Null);
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
    fn statement_sizes_are_the_chunk_and_powers_of_two_below_it() {
        let sizes: Vec<usize> = (0..=10).map(|n| statement_size(n, 6)).collect();
        assert_eq!(sizes, [1, 1, 2, 4, 4, 6, 6, 6, 6, 6, 6]);
        let distinct: std::collections::BTreeSet<usize> =
            (1..=500).map(|n| statement_size(n, 500)).collect();
        assert_eq!(distinct.len(), 10); // 1, 2, 4, ..., 256, 500
        assert!((1..=500).all(|n| statement_size(n, 500) >= n));
    }

    #[test]
    fn whole_statements_are_taken_and_the_rest_waits() {
        let row = |i: i64| vec![Value::Int(i)];
        let mut w = TableWrites {
            target: 3,
            upserts: (0..7).map(row).collect(),
            deletes: (0..2).map(row).collect(),
        };
        let taken = w.take_statements(3, false).unwrap();
        assert_eq!(taken.target, 3);
        assert_eq!(taken.upserts, (0..6).map(row).collect::<Vec<_>>());
        assert!(taken.deletes.is_empty());
        assert_eq!(w.upserts, vec![row(6)]);
        assert!(w.take_statements(3, false).is_none());
        let rest = w.take_statements(3, true).unwrap();
        assert_eq!((rest.upserts.len(), rest.deletes.len()), (1, 2));
        assert!(w.take_statements(3, true).is_none());
    }

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
