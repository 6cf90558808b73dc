//! The demo's pipeline, whatever the source and the target: the stream, the
//! full load, then capture, consume and the workload at once, until every
//! change is drained; then the report.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::report::{Measured, Report};
use super::{DemoReport, SourceDb, FUNCTION_NAME, STREAM};
use crate::capture::CaptureOptions;
use crate::consume::{ConsumeOptions, Consumer};
use crate::engine::{Engine, Settings};
use crate::local::Kinesalite;
use crate::mapping::{Mapping, Transforms};
use crate::stream::{client, ensure_stream, put_ordered};
use dms_cdc_core::quarantine::QuarantineStore;
use dms_cdc_core::target::{Target, TargetRows};

/// What every run of the pipeline shares.
pub(super) struct Pipeline<'a> {
    /// The Kinesis emulator.
    pub(super) kinesalite: &'a Kinesalite,
    /// The sample mapping.
    pub(super) mapping: Mapping,
    /// Its transforms.
    pub(super) transforms: Transforms,
    /// When the demo started (the progress lines' clock).
    pub(super) started: Instant,
}

impl Pipeline<'_> {
    /// A progress line.
    fn say(&self, out: &mut impl std::io::Write, text: &str) {
        let _ = writeln!(
            out,
            "[{:>5.1}s] {text}",
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Runs the pipeline from `source` into `target` and reports.
    pub(super) async fn run<S, T>(
        self,
        source: &mut S,
        target: T,
        out: &mut impl std::io::Write,
    ) -> anyhow::Result<DemoReport>
    where
        S: SourceDb,
        T: Target + QuarantineStore + TargetRows,
    {
        let capture_options = CaptureOptions::from_mapping(&self.mapping);
        Target::prepare(&target, &self.mapping)
            .await
            .map_err(|e| anyhow::anyhow!("preparing the target: {e}"))?;
        let settings = Settings {
            function_name: FUNCTION_NAME.into(),
            chunk_size: 500,
        };
        let engine = Engine::new(
            self.mapping.clone(),
            self.transforms.clone(),
            source.source()?,
            target,
            settings,
        );
        let kinesis = client(Some(&self.kinesalite.endpoint())).await;
        let arn = ensure_stream(&kinesis, STREAM, 2).await?;
        self.say(
            out,
            &format!(
                "stream {STREAM}: 2 shards on {}",
                self.kinesalite.endpoint()
            ),
        );

        // Full load, then CDC from where the load read the tables.
        let load = source.full_load(&engine.mapping, &capture_options).await?;
        put_ordered(&kinesis, STREAM, &load).await?;
        self.say(out, &format!("full load: {} records put", load.len()));

        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let capture_task = source.spawn_capture(&kinesis, capture_options.clone(), stop_rx)?;
        let handler = Measured {
            engine: &engine,
            writes: Mutex::default(),
            latencies: Mutex::default(),
        };
        let mut consumer = Consumer::new(kinesis.clone(), ConsumeOptions::new(STREAM, &arn))?;
        let consume = async {
            // Consume while the workload runs; the consumer's counts are cumulative.
            loop {
                consumer
                    .run_until_idle(&handler, Duration::from_millis(300), Duration::from_secs(5))
                    .await?;
                if *stop_tx.borrow() && capture_task.is_finished() {
                    let s = consumer
                        .run_until_idle(&handler, Duration::from_secs(1), Duration::from_secs(60))
                        .await?;
                    return Ok::<usize, anyhow::Error>(s.record_count);
                }
            }
        };
        let workload = async {
            for sql in S::WORKLOAD {
                source.execute(sql).await?;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            // Let capture catch up, then ask it to stop.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = stop_tx.send(true);
            Ok::<(), anyhow::Error>(())
        };
        self.say(
            out,
            &format!(
                "playing {} workload statements on the source",
                S::WORKLOAD.len()
            ),
        );
        let (consumed, ()) = tokio::try_join!(consume, workload)?;
        let captured = capture_task.await??;
        self.say(out, "drained: capture caught up and every shard is idle");

        Report {
            captured: load.len() + captured,
            consumed,
            measured: handler,
            capture_options: &capture_options,
        }
        .finish()
        .await
    }
}
