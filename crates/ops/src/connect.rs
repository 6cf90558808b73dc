//! Engines for the operations, made in one place: from URLs, with the
//! adapter of the URLs' scheme, the mapping and the user's transforms.

use anyhow::Context as _;
use dms_cdc_core::adapter::{SourceAdapter, TargetAdapter};
use dms_cdc_core::connection::Tls;
use dms_cdc_core::engine::{Engine, Settings};
use dms_cdc_core::mapping::{Mapping, Transforms};
use dms_cdc_core::target::Target as _;

/// Connections per pool of a command (one for reads, one for writes, and
/// one spare).
pub const POOL_SIZE: usize = 2;

/// Where an operation reads and writes, as given on the command line.
#[derive(Debug, Clone)]
pub struct Endpoints<'a> {
    /// The source URL (TLS settings in its parameters).
    pub source: &'a str,
    /// The target URL.
    pub target: &'a str,
    /// The function whose checkpoints and quarantined records are used.
    pub function_name: &'a str,
    /// Keys per source query and rows per write statement.
    pub chunk_size: usize,
}

/// Why an engine could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A URL, TLS setting or the like is wrong (exit 2: fix the command).
    #[error(transparent)]
    Config(anyhow::Error),
    /// The target's bookkeeping could not be prepared; retryable ones are
    /// worth running again (exit 1), the rest need an operator (exit 2).
    #[error("preparing the target's bookkeeping tables: {error}")]
    Prepare {
        /// The target's error.
        error: anyhow::Error,
        /// Whether running again may help.
        retryable: bool,
    },
}

impl ConnectError {
    /// The exit code for a command that stops here.
    pub fn exit_code(&self) -> u8 {
        match self {
            ConnectError::Prepare {
                retryable: true, ..
            } => 1,
            _ => 2,
        }
    }
}

/// An engine over one kind of database as source and target (e.g. MySQL
/// to MySQL); see [`engine_between`].
pub async fn engine<A: SourceAdapter + TargetAdapter>(
    mapping: Mapping,
    transforms: Transforms,
    endpoints: &Endpoints<'_>,
) -> Result<Engine<A::Source, <A as TargetAdapter>::Target>, ConnectError> {
    engine_between::<A, A>(mapping, transforms, endpoints).await
}

/// An engine over `S`'s source and `T`'s target at `endpoints`, the
/// target's bookkeeping prepared (the one place the operations make engines).
pub async fn engine_between<S: SourceAdapter, T: TargetAdapter>(
    mapping: Mapping,
    transforms: Transforms,
    endpoints: &Endpoints<'_>,
) -> Result<Engine<S::Source, T::Target>, ConnectError> {
    let tls = Tls::default();
    let source = S::source(endpoints.source, &tls, POOL_SIZE)
        .context("--source")
        .map_err(ConnectError::Config)?;
    let target = T::target(
        endpoints.target,
        &tls,
        POOL_SIZE,
        endpoints.function_name,
        endpoints.chunk_size,
    )
    .context("--target")
    .map_err(ConnectError::Config)?;
    if let Err(e) = target.prepare(&mapping).await {
        let retryable = !dms_cdc_core::fault::Classify::fault(&e).is_record();
        return Err(ConnectError::Prepare {
            error: e.into(),
            retryable,
        });
    }
    let settings = Settings {
        function_name: endpoints.function_name.to_owned(),
        chunk_size: endpoints.chunk_size,
    };
    Ok(Engine::new(mapping, transforms, source, target, settings))
}
