//! The Lambda side: configuration from the environment, cold-start
//! initialisation (secrets, pools, mapping) and the handler that turns a
//! Kinesis event into a `ReportBatchItemFailures` response.
//!
//! Generic over the kinds of source and target ([`SourceAdapter`],
//! [`TargetAdapter`]): the function binaries in `functions/` are thin: they
//! read [`Config`], call [`Function::init`] with their adapters once per
//! cold start and hand every event to [`Function::handle`]. `dms-cdc replay` runs the same engine.
//! [`run`] runs the Lambda runtime with the event read by
//! `KinesisBatch::from_json` from the invocation's raw body.

use std::path::PathBuf;

use aws_lambda_events::streams::KinesisEventResponse;
use dms_cdc_core::dms::KinesisBatch;

mod runtime;
pub use runtime::run;

pub use dms_cdc_core::adapter::{Database, SourceAdapter, TargetAdapter};
use dms_cdc_core::connection::{SslMode, Tls};
use dms_cdc_core::engine::{BatchSummary, Engine, Settings};
use dms_cdc_core::mapping::{Mapping, Transforms};
pub use dms_cdc_core::metrics::{emf_line, emf_line_for};
use dms_cdc_core::target::Target as _;

/// Path of the mapping file (default: the mapping compiled into the function).
pub const ENV_MAPPING: &str = "DMS_CDC_MAPPING";
/// Source connection URL (`mysql://user:password@host:port/database`).
pub const ENV_SOURCE_URL: &str = "DMS_CDC_SOURCE_URL";
/// Secrets Manager secret id (or ARN) of the source, instead of a URL.
pub const ENV_SOURCE_SECRET_ID: &str = "DMS_CDC_SOURCE_SECRET_ID";
/// Target connection URL.
pub const ENV_TARGET_URL: &str = "DMS_CDC_TARGET_URL";
/// Secrets Manager secret id (or ARN) of the target, instead of a URL.
pub const ENV_TARGET_SECRET_ID: &str = "DMS_CDC_TARGET_SECRET_ID";
/// Database of the source when the secret does not name one (or to override it).
pub const ENV_SOURCE_DATABASE: &str = "DMS_CDC_SOURCE_DATABASE";
/// Database of the target when the secret does not name one (or to override it).
pub const ENV_TARGET_DATABASE: &str = "DMS_CDC_TARGET_DATABASE";
/// Keys per source query and rows per write statement (default 500).
pub const ENV_CHUNK_SIZE: &str = "DMS_CDC_CHUNK_SIZE";
/// Connections in the source pool (default 2).
pub const ENV_SOURCE_POOL_SIZE: &str = "DMS_CDC_SOURCE_POOL_SIZE";
/// Connections in the target pool (default 2).
pub const ENV_TARGET_POOL_SIZE: &str = "DMS_CDC_TARGET_POOL_SIZE";
/// Name under which checkpoints and quarantined records are kept (default: the Lambda function name).
pub const ENV_FUNCTION_NAME: &str = "DMS_CDC_FUNCTION_NAME";
/// TLS to the source: `disabled`, `required`, `verify-ca` or `verify-identity`
/// (default: as the URL says; plain TCP for a secret).
pub const ENV_SOURCE_SSL_MODE: &str = "DMS_CDC_SOURCE_SSL_MODE";
/// PEM file of the CA certificates the source's certificate must chain to
/// (e.g. the RDS global bundle); alone, it means `verify-identity`.
pub const ENV_SOURCE_SSL_CA: &str = "DMS_CDC_SOURCE_SSL_CA";
/// TLS to the target, as [`ENV_SOURCE_SSL_MODE`].
pub const ENV_TARGET_SSL_MODE: &str = "DMS_CDC_TARGET_SSL_MODE";
/// CA file for the target, as [`ENV_SOURCE_SSL_CA`].
pub const ENV_TARGET_SSL_CA: &str = "DMS_CDC_TARGET_SSL_CA";

/// Where a connection comes from. Its `Debug` hides a URL's password.
#[derive(Clone, PartialEq, Eq)]
pub enum Connection {
    /// A URL given directly (local runs, tests).
    Url(String),
    /// A Secrets Manager secret in the RDS JSON shape
    /// (`username`, `password`, `host`, `port`, `dbname`).
    Secret {
        /// Secret id or ARN.
        secret_id: String,
        /// Database override.
        database: Option<String>,
    },
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Connection::Url(url) => f
                .debug_tuple("Url")
                .field(&dms_cdc_core::connection::redact(url))
                .finish(),
            Connection::Secret {
                secret_id,
                database,
            } => f
                .debug_struct("Secret")
                .field("secret_id", secret_id)
                .field("database", database)
                .finish(),
        }
    }
}

/// The function's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Mapping file, or `None` for the compiled-in one.
    pub mapping: Option<PathBuf>,
    /// Source connection.
    pub source: Connection,
    /// Target connection.
    pub target: Connection,
    /// TLS to the source from the environment; when set, it replaces the
    /// URL's TLS parameters.
    pub source_tls: Tls,
    /// TLS to the target from the environment, the same way.
    pub target_tls: Tls,
    /// Chunk size.
    pub chunk_size: usize,
    /// Source pool size.
    pub source_pool_size: usize,
    /// Target pool size.
    pub target_pool_size: usize,
    /// Function name for checkpoints and quarantine rows.
    pub function_name: String,
}

/// A configuration error: which variable and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {variable}: {problem}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: String,
    /// What is wrong.
    pub problem: String,
}

impl Config {
    /// Checks the URLs given directly with the adapter (without connecting):
    /// an error names the variable. [`Function::init`] calls it.
    pub fn check<S: Database, T: Database>(&self) -> Result<(), ConfigError> {
        type Validate = fn(&str) -> Result<(), dms_cdc_core::adapter::ConnectError>;
        let check = |connection: &Connection, variable: &str, validate: Validate| match connection {
            Connection::Url(url) => validate(url).map_err(|e| ConfigError {
                variable: variable.to_owned(),
                problem: e.to_string(),
            }),
            Connection::Secret { .. } => Ok(()),
        };
        check(&self.source, ENV_SOURCE_URL, S::validate_url)?;
        check(&self.target, ENV_TARGET_URL, T::validate_url)
    }

    /// Reads the configuration through `var` (e.g. `|k| std::env::var(k).ok()`).
    /// URLs are checked by [`Config::check`] with the function's adapter.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let connection = |url: &str, secret: &str, db: &str| -> Result<Connection, ConfigError> {
            match (get(url), get(secret)) {
                (Some(u), None) => Ok(Connection::Url(u)),
                (None, Some(s)) => Ok(Connection::Secret {
                    secret_id: s,
                    database: get(db),
                }),
                (Some(_), Some(_)) => Err(ConfigError {
                    variable: format!("{url} / {secret}"),
                    problem: "set one of them, not both".to_owned(),
                }),
                (None, None) => Err(ConfigError {
                    variable: format!("{url} / {secret}"),
                    problem: "one of them is required".to_owned(),
                }),
            }
        };
        let number = |k: &str, default: usize| -> Result<usize, ConfigError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=dms_cdc_core::target::MAX_PLACEHOLDERS).contains(n))
                    .ok_or_else(|| ConfigError {
                        variable: k.to_owned(),
                        problem: format!(
                            "{v:?} is not a number from 1 to {}",
                            dms_cdc_core::target::MAX_PLACEHOLDERS
                        ),
                    }),
            }
        };
        let tls = |mode: &str, ca: &str| tls_from_env(&var, mode, ca);
        let function_name = get(ENV_FUNCTION_NAME)
            .or_else(|| get("AWS_LAMBDA_FUNCTION_NAME"))
            .ok_or_else(|| ConfigError {
                variable: format!("{ENV_FUNCTION_NAME} / AWS_LAMBDA_FUNCTION_NAME"),
                problem: "one of them is required".to_owned(),
            })?;
        Ok(Config {
            mapping: get(ENV_MAPPING).map(PathBuf::from),
            source: connection(ENV_SOURCE_URL, ENV_SOURCE_SECRET_ID, ENV_SOURCE_DATABASE)?,
            target: connection(ENV_TARGET_URL, ENV_TARGET_SECRET_ID, ENV_TARGET_DATABASE)?,
            source_tls: tls(ENV_SOURCE_SSL_MODE, ENV_SOURCE_SSL_CA)?,
            target_tls: tls(ENV_TARGET_SSL_MODE, ENV_TARGET_SSL_CA)?,
            chunk_size: number(ENV_CHUNK_SIZE, 500)?,
            source_pool_size: number(ENV_SOURCE_POOL_SIZE, 2)?,
            target_pool_size: number(ENV_TARGET_POOL_SIZE, 2)?,
            function_name,
        })
    }
}

/// TLS settings from the variables `mode` and `ca` (e.g.
/// [`ENV_SOURCE_SSL_MODE`], [`ENV_SOURCE_SSL_CA`]) read through `var`;
/// empty ones are unset. The CLI reads them too.
pub fn tls_from_env(
    var: impl Fn(&str) -> Option<String>,
    mode: &str,
    ca: &str,
) -> Result<Tls, ConfigError> {
    let get = |k: &str| var(k).filter(|v| !v.trim().is_empty());
    let tls = Tls {
        mode: get(mode)
            .map(|v| v.parse::<SslMode>())
            .transpose()
            .map_err(|problem| ConfigError {
                variable: mode.to_owned(),
                problem,
            })?,
        ca: get(ca).map(|v| PathBuf::from(v.trim())),
    };
    tls.check().map_err(|problem| ConfigError {
        variable: format!("{mode} / {ca}"),
        problem,
    })?;
    Ok(tls)
}

/// mimalloc as the global allocator, asked the way its fast path answers.
///
/// `mimalloc::MiMalloc` hands every request to `mi_malloc_aligned`, even
/// those that need no more than the word alignment every mimalloc block has.
/// In mimalloc 3, `mi_malloc_aligned` serves a request from a free block of
/// its size class only when that class already has a page; otherwise, for
/// a size that is not a power of two (24, 40, 56, 80... bytes: most
/// strings and vectors), it over-allocates from a larger class. So the
/// exact class never gets a page, and every such request takes the slow
/// over-allocating path (mimalloc issue 889). This allocator asks
/// `mi_malloc` for what `malloc` gives aligned as asked, as Rust's system
/// allocator asks `malloc`: anything aligned to a word or less, and
/// anything of 16 bytes or more aligned to 16 or less (`max_align_t`,
/// the `i128` in every key part); larger alignments go to
/// `mi_malloc_aligned`. Decoding and planning a batch took 6% fewer
/// instructions (BENCHMARKS.md, issue 18, seventh pass), and 0.4% fewer
/// again with the 16-byte alignments (thirteenth pass).
pub struct Allocator;

/// The alignment every mimalloc block has (its size classes are multiples
/// of a word, and pages start aligned).
const WORD: usize = std::mem::size_of::<usize>();

/// The alignment every mimalloc block of at least this size has
/// (`MI_MAX_ALIGN_SIZE`, C's `max_align_t` on the 64-bit targets: sizes
/// over a word are rounded to double words, and mimalloc asserts that such
/// blocks are aligned to it), as `malloc` must give.
const MAX_ALIGN: usize = 16;

/// Whether `mi_malloc` (or `mi_realloc`) gives a block of `size` bytes
/// aligned to `align` (a power of two).
#[inline(always)]
fn plain(size: usize, align: usize) -> bool {
    align <= WORD || (align <= MAX_ALIGN && size >= MAX_ALIGN)
}

// SAFETY: every method hands the request to mimalloc, which returns memory
// of at least the size asked for, aligned as asked (a word for
// `mi_malloc`, whose blocks are all word-aligned, and `MAX_ALIGN` for its
// blocks of that size or more; `layout.align()` for the aligned calls), or
// null; `mi_free`, `mi_realloc` and `mi_realloc_aligned` take any pointer
// mimalloc returned.
unsafe impl std::alloc::GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if plain(layout.size(), layout.align()) {
                libmimalloc_sys::mi_malloc(layout.size()).cast()
            } else {
                libmimalloc_sys::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if plain(layout.size(), layout.align()) {
                libmimalloc_sys::mi_zalloc(layout.size()).cast()
            } else {
                libmimalloc_sys::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        // SAFETY: see the impl.
        unsafe { libmimalloc_sys::mi_free(ptr.cast()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if plain(new_size, layout.align()) {
                libmimalloc_sys::mi_realloc(ptr.cast(), new_size).cast()
            } else {
                libmimalloc_sys::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

/// mimalloc's `mi_option_purge_delay` (mimalloc.h, 2.x and 3.x): the one
/// before `mi_option_use_numa_nodes`, which the bindings name (a test checks
/// its default: 1,000 ms in the bundled mimalloc 3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t =
    libmimalloc_sys::mi_option_use_numa_nodes - 1;

/// mimalloc's `mi_option_allow_thp` (mimalloc.h, 3.x): the 44th option
/// (a test checks its default, 1 on Linux, and that setting it sticks).
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// How long freed memory stays with the process before mimalloc returns
/// it ([`tune_allocator`]). Against 0, over five alternated e2e pairs: the
/// apply's client CPU 8% lower on average (lower in four), for 2.4-2.7 MB
/// more peak RSS on a 6 MB event (BENCHMARKS.md, issue 18, eighth pass).
pub const PURGE_DELAY_MS: std::ffi::c_long = 20;

/// Tunes mimalloc, the allocator of the function and the CLI, for a
/// Lambda's memory limit:
///
/// - freed memory goes back to the system after [`PURGE_DELAY_MS`]
///   instead of mimalloc's second. A batch frees most of its memory in
///   bursts (decoded records, re-queried rows), so a long delay shows as
///   peak RSS (64.4 MB against 49.5 MB for a 6 MB event with huge pages
///   on), while none at all makes the next burst touch freshly purged
///   pages again: page faults and zeroing (about 15% of the apply's
///   client CPU in a profile);
/// - no transparent huge pages: mimalloc asks for them on its arenas, and
///   where the kernel grants them (`madvise` mode), every page touched after
///   a purge is a zeroed 2 MiB page. Without them the library's peak RSS for
///   the same event fell from 55 to 34 MB (BENCHMARKS.md, issue 18).
///
/// Call it first thing in `main`. `MIMALLOC_PURGE_DELAY` and
/// `MIMALLOC_ALLOW_THP` in the environment (read by mimalloc itself) take
/// precedence, for trading memory for CPU.
pub fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a process-wide allocator option; any value is valid
        // for this option, and mimalloc reads it on each purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
    }
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: as above; mimalloc reads it on each allocation from the OS.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0) }
        // The arenas mimalloc reserved before `main` were already advised:
        // what mimalloc does itself at start when the option is 0.
        #[cfg(target_os = "linux")]
        // SAFETY: PR_SET_THP_DISABLE takes one integer argument and sets a
        // flag of this process only; a kernel without it returns EINVAL,
        // which leaves the process as it was.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

/// Builds a `scheme://` URL (e.g. `mysql`, with `default_port` when the
/// secret names none) from an RDS-shaped secret (`username`, `password`,
/// `host`, `port`, `dbname`). The error never contains the secret's values.
pub fn url_from_secret(
    scheme: &str,
    default_port: u16,
    secret: &str,
    database: Option<&str>,
) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct RdsSecret {
        username: String,
        password: String,
        host: String,
        #[serde(default)]
        port: Option<serde_json::Value>,
        #[serde(default)]
        dbname: Option<String>,
    }
    let s: RdsSecret = serde_json::from_str(secret)
        .map_err(|_| "secret is not JSON with username, password and host".to_owned())?;
    let port = match &s.port {
        None => u64::from(default_port),
        Some(serde_json::Value::Number(n)) => {
            n.as_u64().ok_or("secret port is not a port number")?
        }
        Some(serde_json::Value::String(t)) => {
            t.parse().map_err(|_| "secret port is not a port number")?
        }
        Some(_) => return Err("secret port is not a port number".to_owned()),
    };
    let db = database
        .map(str::to_owned)
        .or(s.dbname)
        .ok_or("secret has no dbname; set the database variable")?;
    let enc = |t: &str| {
        t.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    Ok(format!(
        "{scheme}://{}:{}@{}:{port}/{}",
        enc(&s.username),
        enc(&s.password),
        s.host,
        enc(&db)
    ))
}

/// Errors of a cold start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The mapping does not load.
    #[error(transparent)]
    Mapping(#[from] dms_cdc_core::mapping::LoadError),
    /// A secret could not be read.
    #[error("secret {secret_id}: {problem}")]
    Secret {
        /// Secret id.
        secret_id: String,
        /// What went wrong (never the value).
        problem: String,
    },
}

/// The URL of one RDS-shaped secret for an `A` database: the scheme and
/// port of the secret's `engine` when `A` serves it (a function that reads
/// MySQL or PostgreSQL by the URL), else `A`'s.
async fn url_of_secret<A: Database>(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    database: Option<&str>,
    variable: &str,
) -> Result<String, InitError> {
    let secret_error = |problem: String| InitError::Secret {
        secret_id: secret_id.to_owned(),
        problem,
    };
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| {
            secret_error(aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string())
        })?;
    let text = out
        .secret_string()
        .ok_or_else(|| secret_error("secret has no string value".to_owned()))?;
    let engine = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("engine")?.as_str().map(str::to_owned));
    let (scheme, port) = engine
        .as_deref()
        .and_then(A::engine_scheme)
        .unwrap_or((A::URL_SCHEME, A::DEFAULT_PORT));
    let url = url_from_secret(scheme, port, text, database).map_err(secret_error)?;
    A::validate_url(&url).map_err(|e| {
        InitError::Config(ConfigError {
            variable: variable.to_owned(),
            problem: format!("the secret does not make a valid URL: {e}"),
        })
    })?;
    Ok(url)
}

/// The URL (or, for a source of several instances, the setting of URLs by
/// instance: `eu=<secret id> us=<secret id>` gives `eu=<url> us=<url>`)
/// of a connection.
async fn resolve<A: Database>(
    connection: &Connection,
    variable: &str,
    secrets: Option<&aws_sdk_secretsmanager::Client>,
) -> Result<String, InitError> {
    match connection {
        Connection::Url(u) => Ok(u.clone()),
        Connection::Secret {
            secret_id,
            database,
        } => {
            let client = secrets.ok_or_else(|| InitError::Secret {
                secret_id: secret_id.clone(),
                problem: "no Secrets Manager client".to_owned(),
            })?;
            let parts = dms_cdc_core::sources::setting_parts(secret_id).map_err(|problem| {
                InitError::Config(ConfigError {
                    variable: variable.to_owned(),
                    problem,
                })
            })?;
            let mut setting = Vec::new();
            for (name, id) in parts {
                let url = url_of_secret::<A>(client, id, database.as_deref(), variable).await?;
                setting.push(match name {
                    Some(name) => format!("{name}={url}"),
                    None => url,
                });
            }
            Ok(setting.join(" "))
        }
    }
}

/// Which variables configure one side: `[url, secret id, CA file]`.
const SOURCE_VARS: [&str; 3] = [ENV_SOURCE_URL, ENV_SOURCE_SECRET_ID, ENV_SOURCE_SSL_CA];
/// See [`SOURCE_VARS`].
const TARGET_VARS: [&str; 3] = [ENV_TARGET_URL, ENV_TARGET_SECRET_ID, ENV_TARGET_SSL_CA];

/// The URL of one connection, and a function that names the variable to
/// fix for an error of the adapter (the CA file's, or the URL's or secret's).
async fn url_of<A: Database>(
    connection: &Connection,
    tls: &Tls,
    [url_var, secret_var, ca_var]: [&'static str; 3],
    secrets: Option<&aws_sdk_secretsmanager::Client>,
) -> Result<
    (
        String,
        impl Fn(dms_cdc_core::adapter::ConnectError) -> InitError,
    ),
    InitError,
> {
    let url = resolve::<A>(connection, secret_var, secrets).await?;
    let url_var = match connection {
        Connection::Url(_) => url_var,
        Connection::Secret { .. } => secret_var,
    };
    let has_ca = tls.ca.is_some();
    let error = move |e: dms_cdc_core::adapter::ConnectError| {
        let variable = if e.ca_file && has_ca { ca_var } else { url_var };
        InitError::Config(ConfigError {
            variable: variable.to_owned(),
            problem: e.message,
        })
    };
    Ok((url, error))
}

/// A function, initialised once per cold start: its engine over the
/// source adapter's source and the target adapter's target (by default the
/// same kind of database).
pub struct Function<S: SourceAdapter, T: TargetAdapter = S> {
    /// The engine every event goes through; its source and target are
    /// replaced when a rotated secret is re-read.
    engine: tokio::sync::RwLock<Engine<S::Source, T::Target>>,
    /// Where the connections come from.
    config: Config,
    /// Secrets Manager, when a connection comes from a secret.
    secrets: Option<aws_sdk_secretsmanager::Client>,
    /// Set once the target's bookkeeping is known to exist.
    prepared: tokio::sync::OnceCell<()>,
}

/// The source and target of a configuration (lazily connected).
async fn connect<S: SourceAdapter, T: TargetAdapter>(
    config: &Config,
    secrets: Option<&aws_sdk_secretsmanager::Client>,
) -> Result<(S::Source, T::Target), InitError> {
    let (url, error) =
        url_of::<S>(&config.source, &config.source_tls, SOURCE_VARS, secrets).await?;
    let source = S::source(&url, &config.source_tls, config.source_pool_size).map_err(error)?;
    let (url, error) =
        url_of::<T>(&config.target, &config.target_tls, TARGET_VARS, secrets).await?;
    let target = T::target(
        &url,
        &config.target_tls,
        config.target_pool_size,
        &config.function_name,
        config.chunk_size,
    )
    .map_err(error)?;
    Ok((source, target))
}

impl<S: SourceAdapter, T: TargetAdapter> Function<S, T> {
    /// Loads the mapping, resolves secrets (with the SDK configured from the
    /// environment) and builds the pools (which connect lazily: a database
    /// that is down fails batches retryably, not the cold start).
    pub async fn init(
        config: Config,
        embedded_mapping: &str,
        transforms: Transforms,
    ) -> Result<Self, InitError> {
        let uses_secrets = [&config.source, &config.target]
            .iter()
            .any(|c| matches!(c, Connection::Secret { .. }));
        let secrets = if uses_secrets {
            let sdk = aws_config::load_from_env().await;
            Some(aws_sdk_secretsmanager::Client::new(&sdk))
        } else {
            None
        };
        Self::init_with_secrets(config, embedded_mapping, transforms, secrets).await
    }

    /// [`Function::init`] with a given Secrets Manager client.
    pub async fn init_with_secrets(
        config: Config,
        embedded_mapping: &str,
        transforms: Transforms,
        secrets: Option<aws_sdk_secretsmanager::Client>,
    ) -> Result<Self, InitError> {
        let mapping = match &config.mapping {
            Some(path) => Mapping::load(path, &transforms)?,
            None => Mapping::parse("mapping.toml (compiled in)", embedded_mapping, &transforms)?,
        };
        config.check::<S, T>()?;
        let (source, target) = connect::<S, T>(&config, secrets.as_ref()).await?;
        S::check_mapping(&source, &mapping).map_err(|problem| ConfigError {
            variable: match config.source {
                Connection::Url(_) => ENV_SOURCE_URL,
                Connection::Secret { .. } => ENV_SOURCE_SECRET_ID,
            }
            .to_owned(),
            problem,
        })?;
        let settings = Settings {
            function_name: config.function_name.clone(),
            chunk_size: config.chunk_size,
        };
        Ok(Function {
            engine: tokio::sync::RwLock::new(Engine::new(
                mapping, transforms, source, target, settings,
            )),
            config,
            secrets,
            prepared: tokio::sync::OnceCell::new(),
        })
    }

    /// The source the engine uses now (for checks and tests).
    pub async fn source(&self) -> S::Source
    where
        S::Source: Clone,
    {
        self.engine.read().await.source.clone()
    }

    /// Re-reads the secrets and replaces the pools (after an authentication
    /// failure: a rotated password needs no redeploy).
    async fn reload(&self) -> Result<(), InitError> {
        let (source, target) = connect::<S, T>(&self.config, self.secrets.as_ref()).await?;
        let mut engine = self.engine.write().await;
        engine.source = source;
        engine.target = target;
        Ok(())
    }

    /// Handles one Kinesis event. An event that is not what Lambda sends is
    /// a function error (Lambda retries or bisects it); everything else is
    /// answered with the partial-failure response. The event is taken by
    /// value: its payloads move into the deliveries instead of being copied.
    /// The functions hand a [`KinesisBatch`] (read from the event bytes
    /// without intermediate copies); a `KinesisEvent` converts into one.
    ///
    /// When the batch stops at an authentication failure and a connection
    /// comes from Secrets Manager, the secrets are re-read, the pools
    /// replaced, and the batch tried once more.
    pub async fn handle(
        &self,
        event: impl Into<KinesisBatch>,
    ) -> Result<KinesisEventResponse, dms_cdc_core::dms::EventError> {
        use dms_cdc_core::fault::{Fault, Infrastructure};
        let deliveries = event.into().into_deliveries()?;
        let (response, fault) = self.process(&deliveries).await;
        if fault == Some(Fault::Infrastructure(Infrastructure::Authentication))
            && self.secrets.is_some()
        {
            match self.reload().await {
                Ok(()) => {
                    tracing::info!(
                        "secrets re-read after an authentication failure; retrying the batch once"
                    );
                    return Ok(self.process(&deliveries).await.0);
                }
                Err(e) => {
                    tracing::error!(error = %e, "re-reading the secrets failed; batch will be retried")
                }
            }
        }
        Ok(response)
    }

    /// One pass of the engine over the deliveries: the response, and the
    /// fault that stopped it, if any.
    async fn process(
        &self,
        deliveries: &[dms_cdc_core::dms::Delivery],
    ) -> (KinesisEventResponse, Option<dms_cdc_core::fault::Fault>) {
        let engine = self.engine.read().await;
        if let Err(e) = self
            .prepared
            .get_or_try_init(|| engine.target.prepare(&engine.mapping))
            .await
        {
            // The target is unreachable or cannot hold what we write: report
            // the first record so Lambda retries the whole batch.
            let fault = dms_cdc_core::fault::Classify::fault(&e);
            if fault.needs_operator() {
                tracing::error!(fault = fault.name(), error = %e, "target not usable; an operator must fix it; batch will be retried")
            } else {
                tracing::warn!(fault = fault.name(), error = %e, "target unavailable; batch will be retried")
            }
            let summary = BatchSummary {
                record_count: deliveries.len(),
                ..Default::default()
            };
            println!(
                "{}",
                emf_line_for(&engine.settings.function_name, &summary, Some(fault))
            );
            let outcomes = deliveries
                .iter()
                .map(|d| (&d.sequence_number, dms_cdc_core::engine::Outcome::Pending));
            return (dms_cdc_core::engine::build_response(outcomes), Some(fault));
        }
        let report = engine.process(deliveries).await;
        let shard_id = deliveries
            .first()
            .map(|d| d.shard_id.to_string())
            .unwrap_or_default();
        if let Some(e) = &report.retry_error {
            let fault = report.retry_fault.map(|f| f.name()).unwrap_or("unknown");
            if report.retry_fault.is_some_and(|f| f.needs_operator()) {
                tracing::error!(shard_id = %shard_id, fault, error = %e, "batch stopped at a failure an operator must fix; it will be retried")
            } else {
                tracing::warn!(shard_id = %shard_id, fault, error = %e, "batch stopped at a retryable failure")
            }
        }
        tracing::info!(
            shard_id = %shard_id,
            record_count = report.summary.record_count,
            quarantined_count = report.summary.quarantined_count,
            redelivered_count = report.summary.redelivered_count,
            failed_sequence_number = report.response.batch_item_failures.first().and_then(|f| f.item_identifier.as_deref()).unwrap_or(""),
            "batch done"
        );
        println!(
            "{}",
            emf_line_for(
                &engine.settings.function_name,
                &report.summary,
                report.retry_fault
            )
        );
        (report.response, report.retry_fault)
    }
}

#[cfg(test)]
mod tests {
    /// One test: `tune_allocator` sets process-wide options.
    #[test]
    fn the_allocator_returns_memory_soon_and_asks_for_no_huge_pages() {
        use libmimalloc_sys::mi_option_get;
        // The options are the purge delay (default 1,000 ms) and allow_thp
        // (default 1 on Linux).
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, 1000);
        }
        let thp_set = std::env::var_os("MIMALLOC_ALLOW_THP").is_some();
        #[cfg(target_os = "linux")]
        if !thp_set {
            assert_eq!(unsafe { mi_option_get(MI_OPTION_ALLOW_THP) }, 1);
        }
        tune_allocator();
        // PURGE_DELAY_MS, unless the environment sets it (then mimalloc's
        // own reading stays).
        let expected = std::env::var("MIMALLOC_PURGE_DELAY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(PURGE_DELAY_MS);
        assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, expected);
        if !thp_set {
            assert_eq!(unsafe { mi_option_get(MI_OPTION_ALLOW_THP) }, 0);
            #[cfg(target_os = "linux")]
            assert_eq!(
                unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) },
                1
            );
        }
    }

    /// `Allocator` gives memory aligned as asked, of the size asked, that
    /// keeps what is written to it through a reallocation, zeroed when
    /// asked, for word and larger alignments and small, odd and large sizes.
    #[test]
    fn the_allocator_gives_aligned_memory_that_keeps_its_bytes() {
        use std::alloc::{GlobalAlloc, Layout};
        let sizes = (1..=200).chain([255, 1000, 4095, 4096, 70_000, 1 << 21]);
        for size in sizes {
            for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
                let layout = Layout::from_size_align(size, align).unwrap();
                let grown = size * 3 + 5;
                // SAFETY: the layouts are valid and not zero-sized; every
                // pointer is checked, written and read within its size, and
                // freed once with its layout.
                unsafe {
                    let p = Allocator.alloc(layout);
                    assert!(!p.is_null() && p as usize % align == 0, "{size} {align}");
                    for i in 0..size {
                        p.add(i).write(i as u8 ^ 0x5a);
                    }
                    let q = Allocator.realloc(p, layout, grown);
                    assert!(!q.is_null() && q as usize % align == 0, "{size} {align}");
                    for i in 0..size {
                        assert_eq!(q.add(i).read(), i as u8 ^ 0x5a, "{size} {align}");
                    }
                    Allocator.dealloc(q, Layout::from_size_align(grown, align).unwrap());
                    let z = Allocator.alloc_zeroed(layout);
                    assert!(!z.is_null() && z as usize % align == 0, "{size} {align}");
                    assert!((0..size).all(|i| z.add(i).read() == 0), "{size} {align}");
                    Allocator.dealloc(z, layout);
                }
            }
        }
    }

    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn config_from_env() {
        let c = Config::from_env(env(&[
            (ENV_SOURCE_URL, "mysql://u:p@127.0.0.1:3306/src"),
            (
                ENV_TARGET_SECRET_ID,
                "arn:aws:secretsmanager:eu-west-1:1:secret:t",
            ),
            (ENV_TARGET_DATABASE, "global"),
            (ENV_CHUNK_SIZE, "250"),
            ("AWS_LAMBDA_FUNCTION_NAME", "fn"),
        ]))
        .unwrap();
        assert_eq!(
            c.source,
            Connection::Url("mysql://u:p@127.0.0.1:3306/src".into())
        );
        assert_eq!(
            c.target,
            Connection::Secret {
                secret_id: "arn:aws:secretsmanager:eu-west-1:1:secret:t".into(),
                database: Some("global".into())
            }
        );
        assert_eq!(c.chunk_size, 250);
        assert_eq!(c.source_pool_size, 2);
        assert_eq!(c.function_name, "fn");
        assert_eq!(c.mapping, None);
        assert_eq!(
            (&c.source_tls, &c.target_tls),
            (&Tls::default(), &Tls::default())
        );
        // The password stays out of `Debug`.
        assert!(!format!("{c:?}").contains(":p@"), "{c:?}");
    }

    #[test]
    fn tls_from_env() {
        let c = Config::from_env(env(&[
            (ENV_SOURCE_URL, "mysql://u:p@db.example:3306/src"),
            (
                ENV_TARGET_URL,
                "mysql://u:p@db.example:3306/dst?ssl-mode=required",
            ),
            (ENV_SOURCE_SSL_MODE, "VERIFY_IDENTITY"),
            (ENV_SOURCE_SSL_CA, "/opt/rds/global-bundle.pem"),
            (ENV_TARGET_SSL_CA, " "),
            ("AWS_LAMBDA_FUNCTION_NAME", "fn"),
        ]))
        .unwrap();
        assert_eq!(
            c.source_tls,
            Tls {
                mode: Some(SslMode::VerifyIdentity),
                ca: Some(PathBuf::from("/opt/rds/global-bundle.pem"))
            }
        );
        // Empty variables (the template's empty parameters) are unset.
        assert_eq!(c.target_tls, Tls::default());
    }

    #[test]
    fn config_errors_name_the_variable() {
        let cases = [
            (
                vec![("AWS_LAMBDA_FUNCTION_NAME", "fn")],
                "DMS_CDC_SOURCE_URL / DMS_CDC_SOURCE_SECRET_ID: one of them is required",
            ),
            (
                vec![
                    ("AWS_LAMBDA_FUNCTION_NAME", "fn"),
                    (ENV_SOURCE_URL, "postgres://x"),
                    (ENV_TARGET_URL, "mysql://a@b/c"),
                ],
                "DMS_CDC_SOURCE_URL: not a valid mysql:// URL",
            ),
            (
                vec![
                    ("AWS_LAMBDA_FUNCTION_NAME", "fn"),
                    (ENV_SOURCE_URL, "mysql://a@b/c"),
                    (ENV_TARGET_URL, "mysql://a@b/c"),
                    (ENV_CHUNK_SIZE, "0"),
                ],
                "DMS_CDC_CHUNK_SIZE: \"0\" is not a number from 1 to 65535",
            ),
            (
                vec![
                    (ENV_SOURCE_URL, "mysql://a@b/c"),
                    (ENV_TARGET_URL, "mysql://a@b/c"),
                ],
                "DMS_CDC_FUNCTION_NAME / AWS_LAMBDA_FUNCTION_NAME: one of them is required",
            ),
            (
                vec![
                    ("AWS_LAMBDA_FUNCTION_NAME", "fn"),
                    (ENV_SOURCE_URL, "mysql://a@b/c"),
                    (ENV_TARGET_URL, "mysql://a@b/c"),
                    (ENV_SOURCE_SSL_MODE, "preferred"),
                ],
                "DMS_CDC_SOURCE_SSL_MODE: \"preferred\" is not one of disabled, required, verify-ca, verify-identity",
            ),
            (
                vec![
                    ("AWS_LAMBDA_FUNCTION_NAME", "fn"),
                    (ENV_SOURCE_URL, "mysql://a@b/c"),
                    (ENV_TARGET_URL, "mysql://a@b/c"),
                    (ENV_TARGET_SSL_MODE, "required"),
                    (ENV_TARGET_SSL_CA, "/ca.pem"),
                ],
                "DMS_CDC_TARGET_SSL_MODE / DMS_CDC_TARGET_SSL_CA: ssl mode required does not check the server's certificate",
            ),
            (
                vec![
                    ("AWS_LAMBDA_FUNCTION_NAME", "fn"),
                    (ENV_SOURCE_URL, "mysql://a:hunter2@b/c?ssl-mode=on"),
                    (ENV_TARGET_URL, "mysql://a@b/c"),
                ],
                "DMS_CDC_SOURCE_URL: URL parameter ssl-mode: \"on\" is not one of",
            ),
        ];
        for (vars, want) in cases {
            let e = Config::from_env(env(&vars))
                .and_then(|c| c.check::<dms_cdc_mysql::Mysql, dms_cdc_mysql::Mysql>())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "want {want:?} in {e:?}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn urls_from_rds_secrets_never_leak_values() {
        let url = url_from_secret(
            "mysql",
            3306,
            r#"{"username":"dms","password":"p@ss:w/rd","host":"db.example","port":3307,"dbname":"src","engine":"mysql"}"#,
            None,
        )
        .unwrap();
        assert_eq!(url, "mysql://dms:p%40ss%3Aw%2Frd@db.example:3307/src");
        assert!(mysql_async::Opts::from_url(&url).is_ok());
        let url = url_from_secret(
            "mysql",
            3306,
            r#"{"username":"u","password":"x","host":"h","port":"3306"}"#,
            Some("global"),
        )
        .unwrap();
        assert_eq!(url, "mysql://u:x@h:3306/global");
        let e = url_from_secret(
            "mysql",
            3306,
            r#"{"username":"u","password":"hunter2"}"#,
            None,
        )
        .unwrap_err();
        assert!(!e.contains("hunter2"));
        let e = url_from_secret(
            "mysql",
            3306,
            r#"{"username":"u","password":"hunter2","host":"h"}"#,
            None,
        )
        .unwrap_err();
        assert!(e.contains("dbname"), "{e}");
    }
}
