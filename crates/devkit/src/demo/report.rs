//! What the demo measured and found: the consumer's writes and replication
//! lag per batch, the quarantine, and `dms-cdc reconcile` of the final
//! source against the target.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::capture::{CaptureOptions, RangeSource};
use crate::consume::BatchHandler;
use crate::dms::Delivery;
use crate::engine::Engine;
use dms_cdc_core::quarantine::{Filter, QuarantineStore, State};
use dms_cdc_core::target::{Target, TargetRows};

/// What the demo measured.
#[derive(Debug, Default)]
pub struct DemoReport {
    /// Records captured (full load and stream).
    pub captured: usize,
    /// Records the consumer read.
    pub consumed: usize,
    /// Rows upserted / deleted per target table.
    pub writes: BTreeMap<String, (usize, usize)>,
    /// Quarantined records: sequence number, class, reason.
    pub quarantined: Vec<(String, String, String)>,
    /// Replication lag (the function's `ReplicationLag` metric: source
    /// commit of the newest applied record to the end of its batch), per
    /// batch, milliseconds, p50 and p99.
    pub latency_ms: (u64, u64),
    /// Rows compared and rows that differ.
    pub compared: usize,
    /// Differences found (should be zero).
    pub differences: Vec<String>,
}

/// The engine as the consumer's function, counting what it writes and the
/// lag of each batch.
pub(super) struct Measured<'a, S, T> {
    /// The engine.
    pub(super) engine: &'a Engine<S, T>,
    /// Rows upserted / deleted per target table.
    pub(super) writes: Mutex<BTreeMap<String, (usize, usize)>>,
    /// The lag of each batch, milliseconds.
    pub(super) latencies: Mutex<Vec<u64>>,
}

impl<S: dms_cdc_core::source::Source, T: Target> BatchHandler for Measured<'_, S, T> {
    async fn handle(
        &self,
        batch: &[Delivery],
    ) -> Result<aws_lambda_events::streams::KinesisEventResponse, String> {
        let report = self.engine.process(batch).await;
        let now = chrono::Utc::now().naive_utc();
        if let Ok(mut w) = self.writes.lock() {
            for (t, n) in &report.summary.upserts {
                w.entry(t.clone()).or_default().0 += n;
            }
            for (t, n) in &report.summary.deletes {
                w.entry(t.clone()).or_default().1 += n;
            }
        }
        // The function's ReplicationLag metric, from the same numbers.
        if let (Ok(mut l), Some(lag)) = (self.latencies.lock(), report.summary.lag_ms(now)) {
            l.push(lag);
        }
        Ok(report.response)
    }
}

/// The counts of a drained run, to be completed into a [`DemoReport`].
pub(super) struct Report<'a, S, T> {
    /// Records put (full load and capture).
    pub(super) captured: usize,
    /// Records the consumer read.
    pub(super) consumed: usize,
    /// The consumer's function.
    pub(super) measured: Measured<'a, S, T>,
    /// The capture's options (reconcile renders `load` records with them).
    pub(super) capture_options: &'a CaptureOptions,
}

impl<S, T> Report<'_, S, T>
where
    S: RangeSource,
    T: Target + QuarantineStore + TargetRows,
{
    /// Adds the lag percentiles, the quarantine and the comparison.
    pub(super) async fn finish(self) -> anyhow::Result<DemoReport> {
        let engine = self.measured.engine;
        let mut latencies = self.measured.latencies.into_inner().unwrap_or_default();
        latencies.sort_unstable();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        let quarantined = engine
            .target
            .quarantined(&Filter {
                state: State::All,
                ..Filter::default()
            })
            .await?;
        // The comparison is `dms-cdc reconcile`: every target row against
        // what the mapping makes of the final source. The poison value's
        // user is quarantined on both sides (the mapping cannot build it),
        // so it is not a difference: it waits for a mapping fix and a
        // redrive.
        let checked = crate::reconcile::reconcile(
            &engine.source,
            &engine.target,
            &engine.mapping,
            &engine.transforms,
            self.capture_options,
            &crate::reconcile::ReconcileOptions::default(),
        )
        .await?;
        Ok(DemoReport {
            captured: self.captured,
            consumed: self.consumed,
            writes: self.measured.writes.into_inner().unwrap_or_default(),
            quarantined: quarantined
                .iter()
                .map(|q| {
                    (
                        q.sequence_number.as_str().to_owned(),
                        q.class.clone(),
                        q.message.clone(),
                    )
                })
                .collect(),
            latency_ms: (pct(0.5), pct(0.99)),
            compared: checked.rows_compared() as usize,
            differences: checked
                .differences
                .iter()
                .map(|d| format!("{d:?}"))
                .collect(),
        })
    }
}
