//! Lambda function: AWS DMS change records on Kinesis -> a MySQL target,
//! re-querying a MySQL or PostgreSQL source (by the source URL's scheme),
//! or one source per instance of a consolidating mapping.
//!
//! Configuration comes from environment variables (see the README and
//! `dms_cdc_lambda`). Pools and the mapping are built once per cold start;
//! each event goes through the shared engine and is answered with a
//! `ReportBatchItemFailures` response.

use aws_lambda_events::streams::KinesisEventResponse;
use dms_cdc_core::dms::KinesisBatch;
use dms_cdc_core::mapping::Transforms;
use dms_cdc_core::sources::{OneOf, PerInstance};
use dms_cdc_lambda::{Config, Function};
use dms_cdc_mysql::Mysql;
use dms_cdc_postgres::Postgres;
use lambda_runtime::{Error, LambdaEvent};

/// mimalloc: decoding and re-querying allocate many small, short-lived
/// values; with the system allocator the same work took twice the CPU
/// (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: dms_cdc_lambda::Allocator = dms_cdc_lambda::Allocator;

/// The mapping deployed with this function (overridden by `DMS_CDC_MAPPING`).
const MAPPING: &str = include_str!("../mapping.toml");

/// Transforms this function's mapping may name, beyond the built-in ones.
fn transforms() -> Transforms {
    Transforms::standard()
}

/// The sources the function can read: MySQL or PostgreSQL by the URL's
/// scheme, one per instance of a mapping with `[[source.instance]]`s.
type Sources = PerInstance<OneOf<Mysql, Postgres>>;

/// The function: the engine from the sources to the MySQL target.
type MysqlFunction = Function<Sources, Mysql>;

async fn handler(
    function: &MysqlFunction,
    event: LambdaEvent<KinesisBatch>,
) -> Result<KinesisEventResponse, Error> {
    Ok(function.handle(event.payload).await?)
}

/// One thread: Lambda hands an instance one event at a time, and the engine
/// overlaps its source reads and target writes within one task. On worker
/// threads this binary peaked at 76.2 MB on a 6 MB event, on one thread at
/// 52-55 MB (BENCHMARKS.md); likely because memory was freed on another
/// thread than the one that allocated it, which mimalloc returns later.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    dms_cdc_lambda::tune_allocator();
    // JSON logs when AWS_LAMBDA_LOG_FORMAT=JSON (the template's LoggingConfig).
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env(|k| std::env::var(k).ok())?;
    let function = MysqlFunction::init(config, MAPPING, transforms()).await?;
    let function = &function;
    // The event read by `KinesisBatch::from_json` from the raw body.
    dms_cdc_lambda::run(move |event| handler(function, event)).await
}

#[cfg(test)]
mod tests;
