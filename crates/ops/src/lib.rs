//! dms-cdc operations, over the same engine and prepare pass the functions
//! run:
//!
//! - [`replay`]: recorded Kinesis events (fixtures) through the engine, or
//!   decoded and planned only (`--dry-run`);
//! - [`redrive`]: shard ranges that Lambda gave up on, read again from the
//!   stream and applied (on-failure records from SQS or a file);
//! - [`quarantine`]: the quarantine table: list, show, redrive, discard;
//! - [`stream`]: Kinesis through the AWS SDK (clients, shards, puts).

pub mod connect;
pub mod quarantine;
pub mod redrive;
pub mod replay;
pub mod stream;

pub(crate) use dms_cdc_core::{dms, engine, mapping, plan, position};
