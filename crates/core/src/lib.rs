//! dms-cdc core: everything between a Kinesis batch of AWS DMS change
//! records and the row operations a target applies, with no I/O and no
//! database driver.
//!
//! A batch flows `decode -> plan -> fetch (re-query) -> apply -> respond`:
//!
//! - [`dms`]: the DMS record format and its values;
//! - [`mapping`]: the mapping file, validated and compiled;
//! - [`plan`]: a batch becomes coalesced target row operations;
//! - [`prepare`]: the one prepare pass (decode, breaking DDL, plan, rows)
//!   that the engine and every dry run share;
//! - [`source`] and [`target`]: the two adapter traits and what crosses them;
//! - [`engine`]: drives a batch over a `Source` and a `Target`;
//! - [`response`]: each record's outcome and the ReportBatchItemFailures
//!   response (the one record to resume from);
//! - [`fault`]: whose fault is a failure (only the record's quarantines);
//! - [`version`]: row versions for the stale-write guard;
//! - [`position`]: shard ids and numerically ordered sequence numbers;
//! - [`metrics`]: the CloudWatch EMF line of a batch;
//! - [`connection`]: TLS settings and URL redaction, for every adapter;
//! - [`adapter`]: how an adapter crate makes its source and target.
//!
//! Adapters live in their own crates (`dms-cdc-mysql`, ...) and implement
//! [`source::Source`] and [`target::Target`]; the `test-utils` feature adds
//! in-memory adapters ([`testing`]) for tests of the engine's failure paths.
//!
//! Delivery contract: Kinesis delivers at least once and in order per shard
//! only. Every write is idempotent and every change ends applied, or
//! quarantined with its raw payload and a reason; nothing is dropped.

pub mod adapter;
pub mod connection;
pub mod dms;
pub mod engine;
pub mod fault;
pub mod instances;
pub mod mapping;
pub mod metrics;
pub mod plan;
pub mod position;
pub mod prepare;
pub mod quarantine;
pub mod response;
pub mod source;
pub mod sources;
pub mod target;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;

pub mod version;
