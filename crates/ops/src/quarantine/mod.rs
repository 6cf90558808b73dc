//! Operating the quarantine table (`dms_cdc_quarantine`): list, show,
//! redrive after a mapping fix, discard.
//!
//! A row is open (`resolved = 0`), resolved (`1`: redriven and applied;
//! `resolution` says when) or discarded (`2`: `resolution` holds the
//! reason). Rows are never deleted: they stay for audit. A redrive decodes
//! the stored raw payload again and applies it through the engine without
//! the checkpoint skip ([`Engine::process_redrive`](crate::engine::Engine::process_redrive)), one record per
//! transaction: success marks the row resolved; a record that fails again
//! is quarantined again by the engine itself, which increments `attempts`
//! and records the new error on the same row.
//!
//! The modules (their items are re-exported here): `table` (reading and
//! updating rows), `redrive` (applying rows again, or planning it), `render`
//! (rows for a person).

use crate::position::{SequenceNumber, ShardId};

mod redrive;
mod render;
mod table;

pub use self::redrive::{dry_redrive, redrive, DryRedrive, RedriveReport, RedriveResult};
pub use render::render_list;
pub use table::{discard, list, show, target_pool};

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
    fn of(resolved: i64) -> State {
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
