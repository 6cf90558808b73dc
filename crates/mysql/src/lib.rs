//! MySQL and MariaDB adapters of dms-cdc over mysql_async:
//!
//! - [`source`]: [`MysqlSource`], re-queries in one read-only consistent
//!   snapshot per batch, `IN (...)` per chunk of keys;
//! - [`target`]: [`MysqlTarget`], multi-row upserts with the version guard,
//!   keyed deletes, tombstones, checkpoint and quarantine in one transaction;
//! - [`fault`]: the one list of server codes and whose fault each is;
//! - [`connection`]: `mysql://` URLs, TLS (`ssl-mode`, `ssl-ca`), passwords.
//!
//! [`Mysql`] is their `dms_cdc_core::adapter::{SourceAdapter,
//! TargetAdapter}`, for the function glue and the CLI.

pub mod connection;
pub mod fault;
pub mod quarantine;
pub mod rows;
pub mod source;
pub mod target;

pub use source::{pool, MysqlSnapshot, MysqlSource};
pub use target::MysqlTarget;

use dms_cdc_core::adapter::{ConnectError, Database, SourceAdapter, TargetAdapter};
use dms_cdc_core::connection::Tls;

/// The MySQL (and MariaDB) adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mysql;

fn connect_error(e: connection::OptionsError) -> ConnectError {
    use connection::OptionsError as E;
    ConnectError {
        ca_file: matches!(e, E::CaRead { .. } | E::CaContent { .. }),
        message: e.to_string(),
    }
}

/// A pool for `url` with `tls` replacing the URL's TLS settings when set.
fn pool_with(url: &str, tls: &Tls, size: usize) -> Result<mysql_async::Pool, ConnectError> {
    let url = connection::with_tls(url, tls).map_err(connect_error)?;
    pool(&url, size).map_err(connect_error)
}

impl Database for Mysql {
    const URL_SCHEME: &'static str = "mysql";
    const DEFAULT_PORT: u16 = 3306;

    fn validate_url(url: &str) -> Result<(), ConnectError> {
        connection::validate(url).map_err(connect_error)
    }

    fn engine_scheme(engine: &str) -> Option<(&'static str, u16)> {
        // RDS names: mysql, mariadb, aurora (Aurora MySQL 1), aurora-mysql.
        let engine = engine.to_ascii_lowercase();
        (engine.contains("mysql") || engine.contains("mariadb") || engine == "aurora")
            .then_some((Self::URL_SCHEME, Self::DEFAULT_PORT))
    }
}

impl SourceAdapter for Mysql {
    type Source = MysqlSource;

    fn source(url: &str, tls: &Tls, pool_size: usize) -> Result<MysqlSource, ConnectError> {
        pool_with(url, tls, pool_size).map(MysqlSource::new)
    }
}

impl TargetAdapter for Mysql {
    type Target = MysqlTarget;

    fn target(
        url: &str,
        tls: &Tls,
        pool_size: usize,
        function_name: &str,
        chunk_size: usize,
    ) -> Result<MysqlTarget, ConnectError> {
        pool_with(url, tls, pool_size).map(|p| MysqlTarget::new(p, function_name, chunk_size))
    }
}
