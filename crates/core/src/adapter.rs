//! What a database adapter crate offers the function glue and the CLI: how
//! to make its [`Source`] and [`Target`] from a URL (and TLS settings), so
//! that a new target is one adapter crate plus a thin function `main`.

use crate::connection::Tls;
use crate::source::Source;
use crate::target::Target;

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

/// A database kind: its URL scheme, and its source and target adapters.
/// Pools connect lazily: a database that is down fails batches (retryably),
/// not the construction.
pub trait Adapter: Send + Sync + 'static {
    /// The re-query side.
    type Source: Source + 'static;
    /// The write side.
    type Target: Target + 'static;

    /// The URL scheme (`mysql`), also used to build URLs from secrets.
    const URL_SCHEME: &'static str;
    /// The port when a secret names none.
    const DEFAULT_PORT: u16;

    /// Checks a URL without connecting.
    fn validate_url(url: &str) -> Result<(), ConnectError>;

    /// A source over `pool_size` connections, with `tls` replacing the
    /// URL's TLS settings when set.
    fn source(url: &str, tls: &Tls, pool_size: usize) -> Result<Self::Source, ConnectError>;

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
