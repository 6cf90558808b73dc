//! The PostgreSQL adapter of dms-cdc over tokio-postgres, as a target and
//! as a source:
//!
//! - [`target`]: [`PostgresTarget`], multi-row `INSERT ... ON CONFLICT`
//!   upserts with the version guard, keyed deletes, tombstones, checkpoint
//!   and quarantine in one transaction, with the MySQL target's semantics;
//! - [`source`]: [`PostgresSource`], the re-queries of a PostgreSQL source
//!   in one `REPEATABLE READ, READ ONLY` snapshot per batch;
//! - [`param`]: values bound in the target columns' own types;
//! - [`fault`]: the one list of SQLSTATE rules and whose fault each is;
//! - [`connection`]: `postgres://` URLs, TLS over rustls (`sslmode`,
//!   `sslrootcert`, or `ssl-mode`/`ssl-ca`), the pool.
//!
//! [`Postgres`] is its `dms_cdc_core::adapter::TargetAdapter`, for the
//! function glue (`Function<Mysql, Postgres>`: a MySQL source, a
//! PostgreSQL target).

pub mod connection;
pub mod fault;
pub mod param;
pub mod quarantine;
pub mod rows;
pub mod source;
pub mod target;

pub use connection::pool;
/// The connection pool [`pool`] makes.
pub use deadpool_postgres::Pool;
pub use source::PostgresSource;
pub use target::PostgresTarget;

use dms_cdc_core::adapter::{ConnectError, Database, SourceAdapter, TargetAdapter};
use dms_cdc_core::connection::Tls;

/// The PostgreSQL adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Postgres;

fn connect_error(e: connection::OptionsError) -> ConnectError {
    use connection::OptionsError as E;
    ConnectError {
        ca_file: matches!(e, E::CaRead { .. } | E::CaContent { .. }),
        message: e.to_string(),
    }
}

impl Database for Postgres {
    const URL_SCHEME: &'static str = "postgres";
    const DEFAULT_PORT: u16 = 5432;

    fn validate_url(url: &str) -> Result<(), ConnectError> {
        connection::validate(url).map_err(connect_error)
    }

    fn accepts_scheme(scheme: &str) -> bool {
        scheme.eq_ignore_ascii_case("postgres") || scheme.eq_ignore_ascii_case("postgresql")
    }
}

impl SourceAdapter for Postgres {
    type Source = PostgresSource;

    fn source(url: &str, tls: &Tls, pool_size: usize) -> Result<PostgresSource, ConnectError> {
        let url = connection::with_tls(url, tls).map_err(connect_error)?;
        let pool = pool(&url, pool_size).map_err(connect_error)?;
        Ok(PostgresSource::from(pool))
    }
}

impl TargetAdapter for Postgres {
    type Target = PostgresTarget;

    fn target(
        url: &str,
        tls: &Tls,
        pool_size: usize,
        function_name: &str,
        chunk_size: usize,
    ) -> Result<PostgresTarget, ConnectError> {
        let url = connection::with_tls(url, tls).map_err(connect_error)?;
        let pool = pool(&url, pool_size).map_err(connect_error)?;
        Ok(PostgresTarget::new(pool, function_name, chunk_size))
    }
}
