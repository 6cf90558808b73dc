//! dms-cdc: continuous sync from AWS DMS change records on Kinesis into
//! MySQL and PostgreSQL targets.
//!
//! This package is the `dms-cdc` binary and a facade over the workspace's
//! crates, so the integration tests (`tests/`) and benches (`benches/`) name
//! everything from one place. The code lives in the crates:
//!
//! - `dms-cdc-core` (`crates/core`): decode, mapping, plan, the one prepare
//!   pass, the engine generic over `Source` and `Target`; no I/O;
//! - `dms-cdc-mysql` (`crates/mysql`): the MySQL/MariaDB source and target;
//! - `dms-cdc-postgres` (`crates/postgres`): the PostgreSQL target;
//! - `dms-cdc-lambda` (`crates/lambda`): the function glue (environment,
//!   Secrets Manager, handler, metrics), generic over an adapter;
//! - `dms-cdc-ops` (`crates/ops`): replay, redrive, quarantine, Kinesis;
//! - `dms-cdc-devkit` (`crates/devkit`): capture, consume, local servers, demo;
//! - `dms-cdc-cli` (`crates/cli`): the command line, callable with a user's
//!   own transforms.
//!
//! Delivery contract: Kinesis delivers at least once and in order per shard
//! only. Every write is idempotent and every change ends applied, or
//! quarantined with its raw payload and a reason; nothing is dropped.

pub use dms_cdc_core::{
    adapter, dms, instances, mapping, metrics, plan, position, prepare, sources, version,
};
pub use dms_cdc_devkit::{backfill, capture, consume, demo, local, pipeline, reconcile};
pub use dms_cdc_mysql::connection;
pub use dms_cdc_ops::{quarantine, redrive, replay, stream};

/// The engine ([`dms_cdc_core::engine`]), and its MySQL-to-MySQL form.
pub mod engine {
    pub use dms_cdc_core::engine::*;

    /// An engine from a MySQL source to a MySQL target.
    pub type MysqlEngine = Engine<dms_cdc_mysql::MysqlSource, dms_cdc_mysql::MysqlTarget>;

    /// An engine from a MySQL source to a PostgreSQL target.
    pub type MysqlToPostgresEngine =
        Engine<dms_cdc_mysql::MysqlSource, dms_cdc_postgres::PostgresTarget>;
}

/// The PostgreSQL target ([`dms_cdc_postgres`]): `postgres::target`,
/// `postgres::fault`, `postgres::connection`, `postgres::pool`.
pub mod postgres {
    pub use dms_cdc_postgres::*;
}

/// The OpenSearch target ([`dms_cdc_opensearch`]): `opensearch::target`,
/// `opensearch::index`, `opensearch::local` (a throwaway node for tests).
pub mod opensearch {
    pub use dms_cdc_opensearch::*;
}

/// Faults ([`dms_cdc_core::fault`]) and the MySQL list of codes.
pub mod fault {
    pub use dms_cdc_core::fault::*;
    pub use dms_cdc_mysql::fault as mysql;
}

/// The source contract ([`dms_cdc_core::source`]) and the MySQL source.
pub mod source {
    pub use dms_cdc_core::source::*;
    pub use dms_cdc_mysql::source::*;
}

/// The target contract ([`dms_cdc_core::target`]) and the MySQL target.
pub mod target {
    pub use dms_cdc_core::target::*;
    pub use dms_cdc_mysql::target::*;
}

/// The function glue ([`dms_cdc_lambda`]) and the MySQL-target function.
pub mod lambda {
    pub use dms_cdc_lambda::*;

    /// The MySQL-target function (`functions/mysql-target`).
    pub type MysqlFunction = Function<dms_cdc_mysql::Mysql>;

    /// The PostgreSQL-target function (`functions/postgres-target`): a
    /// MySQL source, a PostgreSQL target.
    pub type PostgresFunction = Function<dms_cdc_mysql::Mysql, dms_cdc_postgres::Postgres>;
}
