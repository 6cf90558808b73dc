//! What a database adapter crate offers the function glue and the CLI: how
//! to make its [`Source`] or [`Target`] from a URL (and TLS settings), so
//! that a new target is one adapter crate plus a thin function `main`. The
//! two sides are separate traits: a function reads one kind of database
//! and may write another (a MySQL source into a PostgreSQL target).

use crate::connection::Tls;
use crate::quarantine::QuarantineStore;
use crate::source::Source;
use crate::target::{Target, TargetRows};

/// A connection that cannot be made from the configuration given. The
/// message never contains a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectError {
    /// Whether the CA file (not the URL) is what is wrong.
    pub ca_file: bool,
    /// What is wrong.
    pub message: String,
}

/// How a kind of database is reached: its URL scheme and default port.
pub trait Database: Send + Sync + 'static {
    /// The URL scheme (`mysql`), also used to build URLs from secrets.
    const URL_SCHEME: &'static str;
    /// The port when a secret names none.
    const DEFAULT_PORT: u16;

    /// Checks a URL without connecting.
    fn validate_url(url: &str) -> Result<(), ConnectError>;

    /// Whether a URL of `scheme` is this kind's (any case; e.g. also
    /// `postgresql` for `postgres`).
    fn accepts_scheme(scheme: &str) -> bool {
        scheme.eq_ignore_ascii_case(Self::URL_SCHEME)
    }

    /// The URL scheme and default port for an RDS secret's `engine`
    /// (`mysql`, `aurora-postgresql`, ...), when it is this kind's.
    fn engine_scheme(engine: &str) -> Option<(&'static str, u16)> {
        engine
            .to_ascii_lowercase()
            .contains(Self::URL_SCHEME)
            .then_some((Self::URL_SCHEME, Self::DEFAULT_PORT))
    }
}

/// A database kind that can be re-queried. Pools connect lazily: a
/// database that is down fails batches (retryably), not the construction.
pub trait SourceAdapter: Database {
    /// The re-query side.
    type Source: Source + 'static;

    /// A source over `pool_size` connections, with `tls` replacing the
    /// URL's TLS settings when set.
    fn source(url: &str, tls: &Tls, pool_size: usize) -> Result<Self::Source, ConnectError>;

    /// Checks that `source` can serve `mapping` (e.g. a source for each of
    /// its instances); the error says what is missing.
    fn check_mapping(
        source: &Self::Source,
        mapping: &crate::mapping::Mapping,
    ) -> Result<(), String> {
        let _ = (source, mapping);
        Ok(())
    }
}

/// A database kind that can be written, lazily connected like a source.
pub trait TargetAdapter: Database {
    /// The write side, which also keeps the function's quarantined records.
    type Target: Target + QuarantineStore + TargetRows + 'static;

    /// A target writing as `function_name` (checkpoints and quarantined
    /// records are kept per function) with `chunk_size` rows per statement.
    fn target(
        url: &str,
        tls: &Tls,
        pool_size: usize,
        function_name: &str,
        chunk_size: usize,
    ) -> Result<Self::Target, ConnectError>;
}
