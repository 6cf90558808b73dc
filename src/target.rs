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
use crate::fault::{Fault, Infrastructure};
use crate::mapping::{DeletePolicy, Target};
use crate::position::{SequenceNumber, ShardId};
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

/// How long a tombstone is kept: longer than Kinesis' default extended
/// retention (7 days), so a redelivery or a redrive of any record still in
/// a stream with that retention cannot bring a deleted row back.
pub const TOMBSTONE_DAYS: u32 = 8;

/// The text a target key is kept under in `dms_cdc_tombstone`: what the key
/// identifies (an integer written as text is the integer), as a JSON-like
/// list; keys longer than the column are cut and carry a hash of the whole.
pub fn tombstone_key(values: &[Value]) -> Vec<u8> {
    use crate::plan::KeyPart;
    let mut text = String::from("[");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        match KeyPart::from_value(v) {
            Some(KeyPart::Int(n)) => text.push_str(&n.to_string()),
            Some(KeyPart::Text(t)) => match crate::plan::canonical_int(&t) {
                Some(_) => text.push_str(&t),
                None => text.push_str(&serde_json::Value::String(t).to_string()),
            },
            Some(KeyPart::Bytes(b)) => {
                text.push_str("0x");
                for x in b {
                    text.push_str(&format!("{x:02x}"));
                }
            }
            None => text.push_str(&crate::mapping::text_of(v).unwrap_or_else(|| "null".into())),
        }
    }
    text.push(']');
    let mut bytes = text.into_bytes();
    if bytes.len() > 2900 {
        // FNV-1a 64: stable across releases, unlike std's hasher.
        let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
        bytes.truncate(2800);
        bytes.extend_from_slice(format!("...{}:{hash:016x}", bytes.len()).as_bytes());
    }
    bytes
}

/// A write failed.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// A statement failed (the message never carries row values).
    #[error("target write ({what}): {}", crate::fault::mysql::describe(source))]
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

    fn bookkeeping(what: impl Into<String>) -> impl FnOnce(mysql_async::Error) -> TargetError {
        let what = what.into();
        move |source| TargetError::Write {
            what,
            bookkeeping: true,
            source,
        }
    }

    /// Whose fault it is. A value our own checkpoint or quarantine row
    /// cannot hold is never the record's fault: it retries and alarms
    /// ([`Infrastructure::Bookkeeping`]) instead of quarantining.
    pub fn fault(&self) -> Fault {
        match self {
            TargetError::Write {
                bookkeeping,
                source,
                ..
            } => match crate::fault::mysql::of(source) {
                Fault::Record if *bookkeeping => Fault::Infrastructure(Infrastructure::Bookkeeping),
                f => f,
            },
            TargetError::Schema { .. } => Fault::Infrastructure(Infrastructure::Schema),
        }
    }

    /// Whether the batch is to be retried (anything but the record's fault).
    pub fn is_retryable(&self) -> bool {
        !self.fault().is_record()
    }
}

/// Longest `table_name` and `operation` stored with a quarantined record
/// (the columns' sizes); longer record-derived text is cut at a character
/// boundary, so a quarantine row always fits.
pub const QUARANTINE_TABLE_LEN: usize = 200;
/// See [`QUARANTINE_TABLE_LEN`].
pub const QUARANTINE_OPERATION_LEN: usize = 32;
/// Longest stored reason, in bytes (the column is `TEXT`, 65,535 bytes).
pub const QUARANTINE_MESSAGE_LEN: usize = 8192;

/// `text` cut to at most `max` bytes at a character boundary.
pub fn bounded(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
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
    /// Deletes of a versioned target: (target key, version of the delete).
    /// A hard delete is also in `deletes`; a soft-delete mark is only here
    /// (written as a guarded mark).
    pub tombstones: Vec<(Vec<Value>, String)>,
}

impl TableWrites {
    /// Takes the rows that fill whole statements of `chunk_size` (all of
    /// them when `all`), leaving the rest; `None` when there is nothing to take.
    pub fn take_statements(&mut self, chunk_size: usize, all: bool) -> Option<TableWrites> {
        let chunk_size = chunk_size.max(1);
        let whole = |n: usize| if all { n } else { n - n % chunk_size };
        let upserts: Vec<_> = self.upserts.drain(..whole(self.upserts.len())).collect();
        let deletes: Vec<_> = self.deletes.drain(..whole(self.deletes.len())).collect();
        // Tombstones go with the first statements taken (they are few).
        let tombstones = std::mem::take(&mut self.tombstones);
        if upserts.is_empty() && deletes.is_empty() && tombstones.is_empty() {
            return None;
        }
        Some(TableWrites {
            target: self.target,
            upserts,
            deletes,
            tombstones,
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
    /// ([`crate::version::MAX_VERSION_LEN`] characters): a column too narrow
    /// would reject every write, which must not read as the records' fault.
    pub async fn check_version_columns(&self, targets: &[Target]) -> Result<(), TargetError> {
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
        let need = crate::version::MAX_VERSION_LEN as u64;
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
                (&self.function_name, &shard.0),
            )
            .await
            .map_err(TargetError::bookkeeping("read checkpoint"))?;
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
            .map_err(TargetError::bookkeeping("begin"))?;
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
            let mark = crate::mapping::toml_scalar(value).unwrap_or(Value::Null);
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
        for chunk in writes
            .tombstones
            .chunks(rows_per_statement(self.target.chunk_size, 3))
        {
            let one = "(?, ?, ?, NOW(6))";
            let sql = format!(
                "INSERT INTO dms_cdc_tombstone (target_table, row_key, version, deleted_at) VALUES {}
                 ON DUPLICATE KEY UPDATE
                   deleted_at = IF(VALUES(version) > version, VALUES(deleted_at), deleted_at),
                   version = GREATEST(version, VALUES(version))",
                vec![one; chunk.len()].join(", ")
            );
            let mut params = Vec::with_capacity(chunk.len() * 3);
            for (key, version) in chunk {
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
        target: &Target,
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
                        &q.shard_id.0,
                        q.sequence_number.as_str(),
                        q.table.as_deref().map(|t| bounded(t, QUARANTINE_TABLE_LEN)),
                        q.operation
                            .as_deref()
                            .map(|o| bounded(o, QUARANTINE_OPERATION_LEN)),
                        &q.raw,
                        q.class,
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
                    (function_name, &shard.0, seq.as_str()),
                )
                .await
                .map_err(err("write checkpoint"))?;
        }
        self.tx.commit().await.map_err(err("commit"))?;
        Ok(())
    }
}

/// The most values one prepared statement can bind (MySQL's protocol
/// counts parameters in 16 bits).
pub const MAX_PLACEHOLDERS: usize = 65_535;

/// Rows of `width` values per statement: the chunk size, fewer for rows so
/// wide that a chunk of them would bind more than [`MAX_PLACEHOLDERS`].
pub fn rows_per_statement(chunk_size: usize, width: usize) -> usize {
    chunk_size.min(MAX_PLACEHOLDERS / width.max(1)).max(1)
}

/// Parses a chunk size (CLI): 1 to 65,535 (a statement binds at most
/// 65,535 values; wider rows get fewer rows per statement).
pub fn parse_chunk_size(text: &str) -> Result<usize, String> {
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_PLACEHOLDERS).contains(n))
        .ok_or_else(|| format!("{text:?} is not a number from 1 to {MAX_PLACEHOLDERS}"))
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
    fn statements_never_bind_more_than_the_protocol_allows() {
        assert_eq!(rows_per_statement(500, 10), 500);
        assert_eq!(rows_per_statement(65_535, 1), 65_535);
        assert_eq!(rows_per_statement(10_000, 12), 5_461);
        assert!(rows_per_statement(10_000, 12) * 12 <= MAX_PLACEHOLDERS);
        assert_eq!(rows_per_statement(100, 100_000), 1);
        assert_eq!(parse_chunk_size("65535"), Ok(65_535));
        assert!(parse_chunk_size("100000").is_err());
        assert!(parse_chunk_size("0").is_err());
    }

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
    fn tombstone_keys_are_what_the_key_identifies() {
        assert_eq!(tombstone_key(&[Value::Int(7)]), b"[7]");
        assert_eq!(tombstone_key(&[Value::Text("7".into())]), b"[7]");
        assert_eq!(
            tombstone_key(&[Value::Text("07".into()), Value::Text("a\"b".into())]),
            br#"["07","a\"b"]"#
        );
        let long = tombstone_key(&[Value::Text("x".repeat(5000))]);
        assert!(long.len() <= 2900);
        assert_ne!(
            long,
            tombstone_key(&[Value::Text(format!("{}y", "x".repeat(4999)))])
        );
    }

    #[test]
    fn whole_statements_are_taken_and_the_rest_waits() {
        let row = |i: i64| vec![Value::Int(i)];
        let mut w = TableWrites {
            target: 3,
            upserts: (0..7).map(row).collect(),
            deletes: (0..2).map(row).collect(),
            tombstones: Vec::new(),
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
