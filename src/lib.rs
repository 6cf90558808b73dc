//! dms-cdc: continuous sync from AWS DMS change records on Kinesis into
//! MySQL and PostgreSQL targets.
//!
//! A Kinesis batch flows `decode -> plan -> fetch (re-query) -> apply ->
//! respond`; each step is one module:
//!
//! - [`dms`]: the DMS record format and its values (pure);
//! - [`mapping`]: the mapping file, validated and compiled (pure);
//! - [`plan`]: a batch becomes coalesced target row operations (pure);
//! - [`engine`]: drives a batch and builds the ReportBatchItemFailures response;
//! - [`position`]: shard ids and numerically ordered sequence numbers.
//!
//! Delivery contract: Kinesis delivers at least once and in order per shard
//! only. Every write is idempotent and every change ends applied, or
//! quarantined with its raw payload and a reason; nothing is dropped.

pub mod capture;
pub mod connection;
pub mod consume;
pub mod demo;
pub mod dms;
pub mod engine;
pub mod fault;
pub mod lambda;
pub mod local;
pub mod mapping;
pub mod pipeline;
pub mod plan;
pub mod position;
pub mod quarantine;
pub mod redrive;
pub mod replay;
pub mod source;
pub mod stream;
pub mod target;
pub mod version;
