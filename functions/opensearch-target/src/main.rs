//! Lambda function: AWS DMS change records on Kinesis -> an OpenSearch
//! index per target table (Amazon OpenSearch Service, or a self-managed
//! cluster), re-querying a MySQL or PostgreSQL source (by the source URL's
//! scheme), or one source per instance of a consolidating mapping.
//!
//! Configuration comes from environment variables (see the README and
//! `dms_cdc_lambda`): the same `DMS_CDC_*` variables as the MySQL target,
//! with the domain as the target URL (`opensearch://<endpoint>?sigv4-region=<region>`
//! signs requests with the function's role; `https://user:password@host`
//! uses basic auth). The mapping is built once per cold start; each event
//! goes through the shared engine and is answered with a
//! `ReportBatchItemFailures` response.

use aws_lambda_events::streams::KinesisEventResponse;
use dms_cdc_core::dms::KinesisBatch;
use dms_cdc_core::mapping::Transforms;
use dms_cdc_core::sources::{OneOf, PerInstance};
use dms_cdc_lambda::{Config, Function};
use dms_cdc_mysql::Mysql;
use dms_cdc_opensearch::OpenSearch;
use dms_cdc_postgres::Postgres;
use lambda_runtime::{Error, LambdaEvent};

/// mimalloc, as in the MySQL-target function (BENCHMARKS.md).
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

/// The function: the engine from the sources to the OpenSearch target.
type OpenSearchFunction = Function<Sources, OpenSearch>;

async fn handler(
    function: &OpenSearchFunction,
    event: LambdaEvent<KinesisBatch>,
) -> Result<KinesisEventResponse, Error> {
    Ok(function.handle(event.payload).await?)
}

/// One thread, as the MySQL-target function (see its `main`).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    dms_cdc_lambda::tune_allocator();
    // JSON logs when AWS_LAMBDA_LOG_FORMAT=JSON (the template's LoggingConfig).
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env(|k| std::env::var(k).ok())?;
    let function = OpenSearchFunction::init(config, MAPPING, transforms()).await?;
    let function = &function;
    // The event read by `KinesisBatch::from_json` from the raw body.
    dms_cdc_lambda::run(move |event| handler(function, event)).await
}

#[cfg(test)]
mod tests;
