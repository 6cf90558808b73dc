//! The quarantine table (`dms_cdc_quarantine`) as operators see it: its
//! rows ([`Quarantined`]), which rows ([`Filter`]), and what a target
//! adapter does with them ([`QuarantineStore`]: list, discard, mark
//! resolved), each adapter in its own SQL.
//!
//! A row is open (`resolved = 0`), resolved (`1`: redriven and applied;
//! `resolution` says when) or discarded (`2`: `resolution` holds the
//! reason). Rows are never deleted: they stay for audit.

use std::future::Future;

use crate::fault::Classify;
use crate::position::{SequenceNumber, ShardId};

mod render;

pub use render::render_list;

/// `resolved` value of a resolved row.
pub const RESOLVED: i64 = 1;
/// `resolved` value of a discarded row.
pub const DISCARDED: i64 = 2;

/// The state of a quarantined record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not applied yet.
    Open,
    /// Redriven and applied.
    Resolved,
    /// Discarded by an operator, with a reason.
    Discarded,
    /// Any state (filter only).
    All,
}

impl State {
    /// The state of a `resolved` value.
    pub fn of(resolved: i64) -> State {
        match resolved {
            0 => State::Open,
            RESOLVED => State::Resolved,
            _ => State::Discarded,
        }
    }

    /// How the state is written (`open`, `resolved`, `discarded`, `all`).
    pub fn name(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Resolved => "resolved",
            State::Discarded => "discarded",
            State::All => "all",
        }
    }
}

/// One row of `dms_cdc_quarantine`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// Row id.
    pub id: u64,
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
    pub class: String,
    /// The latest error.
    pub message: String,
    /// First seen (UTC).
    pub first_seen: String,
    /// Last seen (UTC).
    pub last_seen: String,
    /// Attempts.
    pub attempts: u32,
    /// State.
    pub state: State,
    /// `redriven <time>`, or `discarded <time>: <reason>`.
    pub resolution: Option<String>,
}

/// Which rows.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Only these ids (empty: any).
    pub ids: Vec<u64>,
    /// `schema.table` (or just the table name).
    pub table: Option<String>,
    /// Error class.
    pub class: Option<String>,
    /// First seen at or after this time (UTC).
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// State.
    pub state: State,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            ids: Vec::new(),
            table: None,
            class: None,
            since: None,
            state: State::Open,
        }
    }
}

/// The quarantined records of one function in a target (the adapter's
/// target, made for that function's name), in the adapter's SQL.
pub trait QuarantineStore: Send + Sync {
    /// The adapter's error.
    type Error: Classify + std::error::Error + Send + Sync + 'static;

    /// Creates the bookkeeping tables if missing (as a cold start does).
    fn open(&self) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The rows matching `filter`, in stream order (shard, then sequence
    /// number as a number); times in UTC (`YYYY-MM-DD HH:MM:SS.ffffff`).
    fn quarantined(
        &self,
        filter: &Filter,
    ) -> impl Future<Output = Result<Vec<Quarantined>, Self::Error>> + Send;

    /// Marks an open row discarded with `reason` (the row is kept).
    /// Whether an open row was found.
    fn discard(
        &self,
        id: u64,
        reason: &str,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Marks an open row resolved (redriven and applied). Whether an open
    /// row was found.
    fn mark_resolved(&self, id: u64) -> impl Future<Output = Result<bool, Self::Error>> + Send;
}

/// One row by id, in any state.
pub async fn show<Q: QuarantineStore>(store: &Q, id: u64) -> Result<Option<Quarantined>, Q::Error> {
    let filter = Filter {
        ids: vec![id],
        state: State::All,
        ..Filter::default()
    };
    Ok(store.quarantined(&filter).await?.into_iter().next())
}
