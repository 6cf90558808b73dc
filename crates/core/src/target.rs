//! The target side of the engine: what a batch writes, and the contract of
//! a target adapter.
//!
//! Contract of every [`Target`]: delivery is at-least-once and ordered per
//! shard only, so every write is idempotent (upserts by target key, deletes
//! by key), and the shard's checkpoint and the quarantined records are
//! written in the same transaction as the rows: after a commit, the records
//! up to the checkpoint are durable; after a failure, none of the attempt's
//! effects are. With a version column a write never replaces a row with an
//! older version ([`crate::version`]), and a hard delete of a versioned row
//! leaves a tombstone that an older upsert cannot pass.

use std::future::Future;

use crate::dms::Value;
use crate::fault::Classify;
use crate::mapping::{Mapping, TargetTable};
use crate::position::{SequenceNumber, ShardId};

/// How long a tombstone is kept: longer than Kinesis' default extended
/// retention (7 days), so a redelivery or a redrive of any record still in
/// a stream with that retention cannot bring a deleted row back.
pub const TOMBSTONE_DAYS: u32 = 8;

/// The text a target key is kept under in `dms_cdc_tombstone`: what the key
/// identifies (an integer written as text is the integer), as a JSON-like
/// list; keys longer than the column are cut and carry a hash of the whole.
pub fn tombstone_key(values: &[Value]) -> Vec<u8> {
    use crate::plan::KeyPart;
    // Room for the usual key (a few integers or a short text) from the start.
    let mut text = String::with_capacity(32);
    text.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        match KeyPart::from_value(v) {
            Some(KeyPart::Int(n)) => text.push_str(itoa::Buffer::new().format(n)),
            Some(KeyPart::Text(t)) => match crate::plan::canonical_int(&t) {
                Some(_) => text.push_str(&t),
                None => crate::mapping::eval::push_json_string(&mut text, &t),
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

/// Longest `table_name` and `operation` stored with a quarantined record
/// (the columns' sizes); longer record-derived text is cut at a character
/// boundary, so a quarantine row always fits.
pub const QUARANTINE_TABLE_LEN: usize = 200;
/// See [`QUARANTINE_TABLE_LEN`].
pub const QUARANTINE_OPERATION_LEN: usize = 32;
/// Longest stored reason, in bytes (the column is `TEXT`, 65,535 bytes).
pub const QUARANTINE_MESSAGE_LEN: usize = 8192;

pub use crate::dms::bounded;

/// Why a record was quarantined: the stage that refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuarantineClass {
    /// The record does not decode.
    Decode,
    /// The record cannot be planned (e.g. a key column is missing).
    Plan,
    /// The mapping cannot evaluate for the row it decides.
    Evaluate,
    /// The target rejected the record's row.
    Write,
    /// A DDL broke the mapping (the DDL and the later records of its table).
    Ddl,
}

impl QuarantineClass {
    /// Every class.
    pub const ALL: [QuarantineClass; 5] = [
        QuarantineClass::Decode,
        QuarantineClass::Plan,
        QuarantineClass::Evaluate,
        QuarantineClass::Write,
        QuarantineClass::Ddl,
    ];

    /// The stored name (`decode`, `plan`, `evaluate`, `write`, `ddl`).
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineClass::Decode => "decode",
            QuarantineClass::Plan => "plan",
            QuarantineClass::Evaluate => "evaluate",
            QuarantineClass::Write => "write",
            QuarantineClass::Ddl => "ddl",
        }
    }

    /// The class of a stored name.
    pub fn parse(text: &str) -> Option<QuarantineClass> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl std::fmt::Display for QuarantineClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
    /// The stage that refused it.
    pub class: QuarantineClass,
    /// The reason.
    pub message: String,
}

/// The writes for one target table.
#[derive(Debug, Default, Clone)]
pub struct TableWrites {
    /// Index of the target.
    pub target: usize,
    /// Rows to upsert: values in `TargetTable::column_names()` order (version last, if any).
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
        // Tombstones too wait for whole statements: taken with every
        // statement, a batch whose chunks each found a few deleted rows sent
        // one short tombstone statement per chunk, each of a new shape
        // (12 per batch in the e2e bench, and prepared statements evicted).
        let tombstones: Vec<_> = self
            .tombstones
            .drain(..whole(self.tombstones.len()))
            .collect();
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

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty() && self.tombstones.is_empty()
    }
}

/// A target database or index: where the engine writes.
///
/// Delivery is at-least-once and ordered per shard only: writes must be
/// idempotent, and a transaction's rows, quarantined records and checkpoint
/// become durable together ([`TargetTransaction::finish`]) or not at all.
/// Errors say whose fault they are ([`Classify`]): only a value the target
/// rejects for the record's own sake is [`crate::fault::Fault::Record`].
pub trait Target: Send + Sync {
    /// The adapter's error.
    type Error: Classify;
    /// One batch's open transaction.
    type Transaction: TargetTransaction<Error = Self::Error>;

    /// Creates the bookkeeping (checkpoints, quarantine, tombstones) if
    /// missing and checks that the target can hold what `mapping` writes
    /// (e.g. the width of version columns). Called once per cold start.
    fn prepare(&self, mapping: &Mapping) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The last applied sequence number of a shard (for this function).
    fn checkpoint(
        &self,
        shard: &ShardId,
    ) -> impl Future<Output = Result<Option<SequenceNumber>, Self::Error>> + Send;

    /// Starts the transaction of a batch (or of a part of it, when bisecting).
    fn begin(&self) -> impl Future<Output = Result<Self::Transaction, Self::Error>> + Send;
}

/// Reading a target's rows back (`dms-cdc reconcile`): values as text,
/// NULL as `None`, binary values as lower-case hex.
pub trait TargetRows: Send + Sync {
    /// The adapter's error.
    type Error: Classify + std::error::Error + Send + Sync + 'static;

    /// The rows of `table` with one of `keys` (values in `table.key`
    /// order): every column of [`TargetTable::column_names`], in that order.
    fn rows_by_key(
        &self,
        table: &TargetTable,
        keys: &[Vec<Value>],
    ) -> impl Future<Output = Result<Vec<Vec<Option<String>>>, Self::Error>> + Send;

    /// Up to `limit` keys of `table` (as text, in `table.key` order) in key
    /// order, after `after` (from the first key when `None`).
    fn keys_after(
        &self,
        table: &TargetTable,
        after: Option<&[String]>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Vec<String>>, Self::Error>> + Send;
}

/// A target's sequences (auto-increments, identity and serial columns):
/// the cutover's last step moves them above the migrated keys, so that
/// rows the application inserts after the switch do not collide with them.
pub trait TargetSequences: Send + Sync {
    /// The adapter's error.
    type Error: Classify + std::error::Error + Send + Sync + 'static;

    /// The key columns of `table` a sequence fills, each with the next
    /// value it gives.
    fn sequences(
        &self,
        table: &TargetTable,
    ) -> impl Future<Output = Result<Vec<(String, i128)>, Self::Error>> + Send;

    /// Makes the sequence of `column` give values above `max` (never lowers it).
    fn raise_sequence(
        &self,
        table: &TargetTable,
        column: &str,
        max: i128,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// One batch's open write transaction. Dropping it without
/// [`TargetTransaction::finish`] rolls it back.
pub trait TargetTransaction: Send {
    /// The adapter's error.
    type Error: Classify;

    /// Writes one table's upserts, deletes and tombstones (as the rows
    /// become ready; a table may be written several times).
    fn write(
        &mut self,
        table: &TargetTable,
        writes: TableWrites,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Stores the quarantined records, advances the shard's checkpoint (it
    /// only ever moves forward) and commits.
    fn finish(
        self,
        quarantine: &[Quarantine],
        checkpoint: Option<(&ShardId, &SequenceNumber)>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
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
            tombstones: (0..4).map(|i| (row(i), format!("v{i}"))).collect(),
        };
        let taken = w.take_statements(3, false).unwrap();
        assert_eq!(taken.target, 3);
        assert_eq!(taken.upserts, (0..6).map(row).collect::<Vec<_>>());
        assert!(taken.deletes.is_empty());
        assert_eq!(taken.tombstones.len(), 3);
        assert_eq!(w.upserts, vec![row(6)]);
        assert!(w.take_statements(3, false).is_none());
        let rest = w.take_statements(3, true).unwrap();
        assert_eq!(
            (
                rest.upserts.len(),
                rest.deletes.len(),
                rest.tombstones.len()
            ),
            (1, 2, 1)
        );
        assert!(w.take_statements(3, true).is_none());
    }
}
