//! The `dms-cdc` command line: local replay of recorded Kinesis events
//! through the same engine the Lambda functions run, redrive, quarantine,
//! capture, consume and the demo.
//!
//! It is a library: the `dms-cdc` binary calls [`main_with`] with the
//! standard transforms, and a user whose mapping names transforms of its
//! own (registered with `Transforms::register`, as its function does) makes
//! its own binary that calls [`main_with`] with those, so replay, redrive
//! and quarantine redrive evaluate the mapping exactly as the function does:
//!
//! ```no_run
//! use dms_cdc_core::dms::Value;
//! use dms_cdc_core::mapping::Transforms;
//!
//! fn main() -> std::process::ExitCode {
//!     let mut transforms = Transforms::standard();
//!     transforms.register("upper", |args: &[&Value]| {
//!         Ok(match args.first() {
//!             Some(Value::Text(t)) => Value::Text(t.to_uppercase()),
//!             _ => Value::Null,
//!         })
//!     });
//!     tokio::runtime::Runtime::new()
//!         .expect("a runtime")
//!         .block_on(dms_cdc_cli::main_with(transforms))
//! }
//! ```
//!
//! Database URLs come from `--source`/`--target` or `DMS_CDC_SOURCE_URL`/
//! `DMS_CDC_TARGET_URL`; a password from `--source-password-file`/
//! `--target-password-file` is put into the URL, so it need not be on the
//! command line, where every user of the machine can read it (`ps`).
//!
//! One module per verb ([`replay`], [`redrive`], [`quarantine`],
//! [`capture`], [`consume`], [`demo`], [`check_mapping`]), each with its
//! clap arguments and a thin `run` over the library code of `dms-cdc-ops`
//! and `dms-cdc-devkit`; this file holds the command, the password and TLS
//! handling of the URLs, and the dispatch.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use dms_cdc_core::adapter::Database as _;
use dms_cdc_core::connection::Tls;
use dms_cdc_core::engine::Engine;
use dms_cdc_core::mapping::{Mapping, Transforms};
use dms_cdc_core::quarantine::QuarantineStore;
use dms_cdc_core::target::{Target, TargetRows, TargetSequences};
use dms_cdc_devkit::capture::{AnySource, Sources};
use dms_cdc_mysql::Mysql;
use dms_cdc_opensearch::OpenSearch;
use dms_cdc_ops::connect::{engine_between, ConnectError, Endpoints};
use dms_cdc_postgres::Postgres;

/// `print!` for a command's output. A closed standard output (`dms-cdc
/// ... | head`) drops the rest of the output instead of panicking, and the
/// command goes on to its own exit code (a failed check still fails).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_out(format_args!($($arg)*))
    };
}

/// `println!` for a command's output (see [`out!`]).
macro_rules! outln {
    () => {
        $crate::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub mod backfill;
pub mod capture;
pub mod check_mapping;
pub mod consume;
pub mod cutover;
pub mod demo;
pub mod index;
pub mod quarantine;
pub mod reconcile;
pub mod redrive;
pub mod replay;

/// Continuous sync from AWS DMS change records on Kinesis into MySQL and PostgreSQL.
#[derive(Parser)]
#[command(name = "dms-cdc", version, about)]
struct Cli {
    /// Read the source password from FILE (one line) into the source URL, instead
    /// of a password in the URL on the command line, which other users can see (ps).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "DMS_CDC_SOURCE_PASSWORD_FILE"
    )]
    source_password_file: Option<PathBuf>,
    /// Read the target password from FILE into the target URL.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "DMS_CDC_TARGET_PASSWORD_FILE"
    )]
    target_password_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay recorded Kinesis events (files or folders of *.json) through the engine.
    ///
    /// Exit codes: 0 every record applied, skipped or quarantined; 1 some
    /// record is still pending (a retryable failure: run again); 2 usage or
    /// configuration error.
    Replay(replay::ReplayArgs),
    /// The whole pipeline on this machine with the sample domain: a source
    /// MariaDB (or PostgreSQL: --source postgres), a target MariaDB (or
    /// --target postgres, --target opensearch), the Kinesis emulator,
    /// capture, consume, a scripted workload, a summary and a
    /// source-vs-target comparison.
    ///
    /// Exit codes: 0 zero differences; 1 differences found; 2 setup error.
    Demo(demo::DemoArgs),
    /// A local DMS: read a MySQL/MariaDB binlog and emit DMS-format records
    /// to a Kinesis stream, or to a fixture file (a Lambda Kinesis event).
    Capture(capture::CaptureArgs),
    /// A local event source mapping: poll every shard of a stream and hand
    /// batches to the engine, honouring its response like Lambda.
    Consume(consume::ConsumeArgs),
    /// The initial load (or a reload) of the target from the source, by
    /// primary-key ranges of the mapping's root tables, through the engine
    /// (version guard, quarantine), beside the running stream; resumable
    /// and splittable across processes.
    Backfill(backfill::BackfillArgs),
    /// Compare the target with what the mapping makes of the source
    /// (missing, extra, different rows); --repair fixes them.
    Reconcile(reconcile::ReconcileArgs),
    /// The gate before a cutover: stream applied, no open quarantine,
    /// reconcile clean.
    CutoverCheck(cutover::CutoverArgs),
    /// Re-read shard ranges that Lambda gave up on (on-failure records from
    /// SQS or a file, or manual ranges) and apply them through the engine.
    ///
    /// Exit codes: 0 every range applied and its on-failure record removed;
    /// 1 a retryable failure (run again; nothing lost, records kept); 2 usage
    /// or configuration error; 3 records lost (no longer in the stream: the
    /// exact ranges are printed, records kept).
    Redrive(redrive::RedriveArgs),
    /// Quarantined records: list, show, redrive after a mapping fix, discard.
    ///
    /// Exit codes: 0 done; 1 a redrive left records open; 2 usage or
    /// configuration error, or no such open record.
    #[command(subcommand)]
    Quarantine(quarantine::QuarantineCommand),
    /// Validate a mapping file and print what it compiles to.
    CheckMapping(check_mapping::CheckMappingArgs),
    /// OpenSearch targets: print or create the indices of the mapping, and
    /// swap the aliases to a new generation (blue/green rebuilds).
    ///
    /// Exit codes: 0 done; 2 usage or configuration error, or the cluster refused.
    #[command(subcommand)]
    Index(index::IndexCommand),
}

/// Runs the command line (arguments from the process) with `transforms`,
/// the ones the mapping may name. Call it from `main` inside a tokio
/// runtime; for the function's allocator behaviour, the binary sets
/// mimalloc as its global allocator and calls
/// `dms_cdc_lambda::tune_allocator` first, as `dms-cdc` does.
pub async fn main_with(transforms: Transforms) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut cli = Cli::parse();
    warn_about_passwords_in_arguments();
    if let Err(e) = resolve_connections(&mut cli) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    match run(cli, transforms).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Writes a command's output ([`out!`], [`outln!`]) to standard output.
/// After the first failure nothing more is written: a closed pipe is the
/// reader having seen enough, and any other failure is said once on
/// standard error.
#[doc(hidden)]
pub fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicBool, Ordering};
    static FAILED: AtomicBool = AtomicBool::new(false);
    if FAILED.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        FAILED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("warning: standard output: {e}; the rest of the output is dropped");
        }
    }
}

/// Warns (stderr) about each argument that is a URL with a password.
fn warn_about_passwords_in_arguments() {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    for name in dms_cdc_mysql::connection::arguments_with_password(&args) {
        let instead = match ["source", "target"].iter().find(|s| name.contains(*s)) {
            Some(side) => format!(
                "DMS_CDC_{}_URL or --{side}-password-file",
                side.to_ascii_uppercase()
            ),
            None => "DMS_CDC_SOURCE_URL/DMS_CDC_TARGET_URL or --source-password-file/--target-password-file".to_owned(),
        };
        eprintln!(
            "warning: {name}: the URL has a password, and the command line is visible to other \
             users of this machine (ps); use {instead} instead"
        );
    }
}

/// The command's source and target URLs, where it has them.
fn urls_mut(command: &mut Command) -> (Option<&mut String>, Option<&mut String>) {
    use quarantine::QuarantineCommand as Q;
    match command {
        Command::Replay(args) => (args.source.as_mut(), args.target.as_mut()),
        Command::Capture(args) => (Some(&mut args.source), None),
        Command::Consume(args) => (Some(&mut args.source), Some(&mut args.target)),
        Command::Backfill(args) => (Some(&mut args.source), Some(&mut args.target)),
        Command::Reconcile(args) => (Some(&mut args.check.source), Some(&mut args.check.target)),
        Command::CutoverCheck(args) => (Some(&mut args.check.source), Some(&mut args.check.target)),
        Command::Redrive(args) => (args.source.as_mut(), args.target.as_mut()),
        Command::Quarantine(Q::Redrive(args)) => (args.source.as_mut(), Some(&mut args.db.target)),
        Command::Quarantine(Q::List { db, .. } | Q::Show { db, .. } | Q::Discard { db, .. }) => {
            (None, Some(&mut db.target))
        }
        Command::Index(command) => (None, Some(command.target_mut())),
        Command::Demo(_) | Command::CheckMapping(_) => (None, None),
    }
}

/// Puts the password files' passwords and the TLS variables
/// (`DMS_CDC_{SOURCE,TARGET}_SSL_{MODE,CA}`, as for the function) into the
/// command's URLs.
fn resolve_connections(cli: &mut Cli) -> anyhow::Result<()> {
    use dms_cdc_lambda::{
        tls_from_env, ENV_SOURCE_SSL_CA, ENV_SOURCE_SSL_MODE, ENV_TARGET_SSL_CA,
        ENV_TARGET_SSL_MODE,
    };
    let env = |k: &str| std::env::var(k).ok();
    let source_tls = tls_from_env(env, ENV_SOURCE_SSL_MODE, ENV_SOURCE_SSL_CA)?;
    let target_tls = tls_from_env(env, ENV_TARGET_SSL_MODE, ENV_TARGET_SSL_CA)?;
    let (source, target) = urls_mut(&mut cli.command);
    for (url, password_file, tls, side) in [
        (
            source,
            cli.source_password_file.as_deref(),
            &source_tls,
            "source",
        ),
        (
            target,
            cli.target_password_file.as_deref(),
            &target_tls,
            "target",
        ),
    ] {
        if let Some(url) = url {
            *url = resolve_url(url, password_file, tls, side)?;
        }
    }
    Ok(())
}

fn resolve_url(
    url: &str,
    password_file: Option<&Path>,
    tls: &Tls,
    side: &str,
) -> anyhow::Result<String> {
    use dms_cdc_mysql::connection::{read_password_file, with_password, with_tls};
    // A source of several instances: `name=URL ...`, each URL resolved.
    let parts = dms_cdc_core::sources::setting_parts(url)
        .map_err(|problem| anyhow::anyhow!("--{side}: {problem}"))?;
    if parts.len() > 1 || parts[0].0.is_some() {
        if password_file.is_some() {
            anyhow::bail!(
                "--{side}-password-file: the {side} names several instances; give each URL its password through DMS_CDC_{}_URL instead",
                side.to_ascii_uppercase()
            );
        }
        let mut out = Vec::new();
        for (name, part) in parts {
            let resolved = with_tls(part, tls).with_context(|| match name {
                Some(name) => format!("--{side}: instance {name}"),
                None => format!("--{side}"),
            })?;
            out.push(match name {
                Some(name) => format!("{name}={resolved}"),
                None => resolved,
            });
        }
        return Ok(out.join(" "));
    }
    let url = match password_file {
        None => url.to_owned(),
        Some(file) => with_password(url, &read_password_file(file)?)
            .with_context(|| format!("--{side}-password-file"))?,
    };
    with_tls(&url, tls).with_context(|| format!("--{side}"))
}

/// Hands the command to its verb's module.
async fn run(cli: Cli, transforms: Transforms) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Replay(args) => replay::run(args, transforms).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Capture(args) => capture::run(args, transforms).await,
        Command::Consume(args) => consume::run(args, transforms).await,
        Command::Backfill(args) => backfill::run(args, transforms).await,
        Command::Reconcile(args) => reconcile::run(args, transforms).await,
        Command::CutoverCheck(args) => cutover::run(args, transforms).await,
        Command::Redrive(args) => redrive::run(args, transforms).await,
        Command::Quarantine(command) => quarantine::run(command, transforms).await,
        Command::CheckMapping(args) => check_mapping::run(args, transforms),
        Command::Index(command) => index::run(command, transforms).await,
    }
}

/// What a verb does once its engine is made. Generic over the target, so
/// one copy of the verb serves every target adapter ([`with_engine`]).
trait EngineVerb {
    /// Runs the verb with the engine from the MySQL source to a `T` target.
    async fn run<T: Target + QuarantineStore + TargetRows + TargetSequences>(
        self,
        engine: Engine<AnySource, T>,
    ) -> anyhow::Result<ExitCode>;
}

/// The target adapters the verbs write through, by URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetKind {
    /// `mysql://` ([`Mysql`]).
    Mysql,
    /// `postgres://` or `postgresql://` ([`Postgres`]).
    Postgres,
    /// `opensearch://`, `https://` or `http://` ([`OpenSearch`]).
    OpenSearch,
}

impl TargetKind {
    /// The kind of a `--target` URL, or an error naming the flag.
    fn of(url: &str) -> anyhow::Result<TargetKind> {
        let scheme = url.split_once("://").map(|(scheme, _)| scheme);
        match scheme.map(str::to_ascii_lowercase).as_deref() {
            Some(s) if s == Mysql::URL_SCHEME => Ok(TargetKind::Mysql),
            Some(s) if s == Postgres::URL_SCHEME || s == "postgresql" => Ok(TargetKind::Postgres),
            Some(s) if s == OpenSearch::URL_SCHEME || s == "https" || s == "http" => {
                Ok(TargetKind::OpenSearch)
            }
            Some(other) => anyhow::bail!(
                "--target: unknown URL scheme \"{other}://\": expected mysql://, postgres://, postgresql://, or opensearch:// (https://, http://)"
            ),
            None => anyhow::bail!(
                "--target: not a URL: expected mysql://..., postgres://..., postgresql://... or opensearch://..."
            ),
        }
    }
}

/// Makes the engine from the `--source` setting's sources (MySQL or
/// PostgreSQL by each URL's scheme; `name=URL` per source instance of a
/// consolidating mapping) to the target of the `--target` URL's scheme ([`dms_cdc_ops::connect::engine_between`]) and
/// runs `verb` with it. When the engine cannot be made, prints why and
/// returns the exit code to stop with (a target that is down is retryable:
/// nothing was applied, run again); an unknown scheme is an error (exit 2).
async fn with_engine<V: EngineVerb>(
    mapping: Mapping,
    transforms: Transforms,
    endpoints: &Endpoints<'_>,
    verb: V,
) -> anyhow::Result<ExitCode> {
    match TargetKind::of(endpoints.target)? {
        TargetKind::Mysql => {
            match engine_between::<Sources, Mysql>(mapping, transforms, endpoints).await {
                Ok(engine) => verb.run(engine).await,
                Err(e) => Ok(stop(&e)),
            }
        }
        TargetKind::Postgres => {
            match engine_between::<Sources, Postgres>(mapping, transforms, endpoints).await {
                Ok(engine) => verb.run(engine).await,
                Err(e) => Ok(stop(&e)),
            }
        }
        TargetKind::OpenSearch => {
            match engine_between::<Sources, OpenSearch>(mapping, transforms, endpoints).await {
                Ok(engine) => verb.run(engine).await,
                Err(e) => Ok(stop(&e)),
            }
        }
    }
}

/// Prints why the engine could not be made; the exit code to stop with.
fn stop(error: &ConnectError) -> ExitCode {
    eprintln!("error: {error:#}");
    ExitCode::from(error.exit_code())
}

#[cfg(test)]
mod tests {
    use super::TargetKind;

    #[test]
    fn the_target_kind_is_the_url_scheme() {
        for (url, kind) in [
            ("mysql://u@h/db", TargetKind::Mysql),
            ("postgres://u@h/db", TargetKind::Postgres),
            (
                "postgresql://u@h:5432/db?sslmode=require",
                TargetKind::Postgres,
            ),
            ("PostgreSQL://u@h/db", TargetKind::Postgres),
            (
                "opensearch://search.example?sigv4-region=eu-west-1",
                TargetKind::OpenSearch,
            ),
            ("http://127.0.0.1:9200", TargetKind::OpenSearch),
        ] {
            assert_eq!(TargetKind::of(url).unwrap(), kind, "{url}");
        }
        let err = TargetKind::of("sqlite://x.db").unwrap_err().to_string();
        assert!(
            err.starts_with("--target: unknown URL scheme \"sqlite://\""),
            "{err}"
        );
        let err = TargetKind::of("h:3306").unwrap_err().to_string();
        assert!(err.starts_with("--target: not a URL"), "{err}");
    }
}
