//! dms-cdc developer tooling, never linked into a function:
//!
//! - [`capture`]: a local DMS: the MariaDB binlog (ROW, FULL) as DMS Kinesis
//!   records, snapshot `load` records, resume by `file:pos`;
//! - [`consume`]: a local event source mapping that hands batches to the engine;
//! - [`local`]: throwaway MariaDB servers and the Kinesis emulator;
//! - [`pipeline`]: capture into a stream or a fixture file;
//! - [`demo`]: the whole pipeline on this machine.

pub mod backfill;
pub mod capture;
pub mod consume;
pub mod demo;
pub mod local;
pub mod pipeline;
pub mod reconcile;

pub(crate) use dms_cdc_core::{dms, engine, mapping, position};
pub(crate) use dms_cdc_mysql::{connection, source, target};
pub(crate) use dms_cdc_ops::stream;
