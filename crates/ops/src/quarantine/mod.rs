//! Operating the quarantine table (`dms_cdc_quarantine`): list, show,
//! redrive after a mapping fix, discard. The rows and the store trait are
//! [`dms_cdc_core::quarantine`] (re-exported here); each target adapter
//! implements the store in its own SQL.
//!
//! A redrive decodes the stored raw payload again and applies it through
//! the engine without the checkpoint skip
//! ([`Engine::process_redrive`](crate::engine::Engine::process_redrive)),
//! one record per transaction: success marks the row resolved; a record
//! that fails again is quarantined again by the engine itself, which
//! increments `attempts` and records the new error on the same row.

mod redrive;

pub use self::redrive::{dry_redrive, redrive, DryRedrive, RedriveReport, RedriveResult};
pub use dms_cdc_core::quarantine::*;

/// The rows matching `filter`, in stream order.
pub async fn list<Q: QuarantineStore>(
    store: &Q,
    filter: &Filter,
) -> Result<Vec<Quarantined>, Q::Error> {
    store.quarantined(filter).await
}

/// Marks an open row discarded with `reason`; whether an open row was found.
pub async fn discard<Q: QuarantineStore>(
    store: &Q,
    id: u64,
    reason: &str,
) -> Result<bool, Q::Error> {
    store.discard(id, reason).await
}
