//! Applying a range: through the engine without the checkpoint skip, or
//! decoded and planned only (a dry run), with a report per range.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use aws_sdk_kinesis::Client;
use dms_cdc_core::source::Source;
use dms_cdc_core::target::{QuarantineClass, Target};

use super::progress::Progress;
use super::range::{LostRange, Range};
use super::reader::{RangeReader, ReadLimits, ReadStats};
use crate::dms::Delivery;
use crate::engine::{BatchReport, Engine, Outcome};
use crate::mapping::{Mapping, Transforms};

/// An engine that applies redriven records ([`Engine::process_redrive`]),
/// whatever its source and target.
pub trait Redrivable: Sync {
    /// Applies a batch without the checkpoint skip.
    fn process_redrive<'a>(
        &'a self,
        deliveries: &'a [Delivery],
    ) -> Pin<Box<dyn Future<Output = BatchReport> + Send + 'a>>;
}

impl<S: Source, T: Target> Redrivable for Engine<S, T> {
    fn process_redrive<'a>(
        &'a self,
        deliveries: &'a [Delivery],
    ) -> Pin<Box<dyn Future<Output = BatchReport> + Send + 'a>> {
        Box::pin(Engine::process_redrive(self, deliveries))
    }
}

/// Where the records go.
#[derive(Clone, Copy)]
pub enum Apply<'a> {
    /// Through the engine into the target.
    Engine(&'a dyn Redrivable),
    /// Decode and plan only; touch no database.
    DryRun {
        /// The mapping.
        mapping: &'a Mapping,
        /// Its transforms.
        transforms: &'a Transforms,
    },
}

/// Planned writes of one target table (dry run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlannedWrites {
    /// Rows built from the record's image.
    pub from_image: usize,
    /// Rows rebuilt from a re-query of the source.
    pub requery: usize,
    /// Rows deleted (or soft-deleted).
    pub deletes: usize,
}

/// What a batch would do, without touching a database.
#[derive(Debug, Clone, Default)]
pub struct DryPlan {
    /// Per target table.
    pub tables: BTreeMap<String, PlannedWrites>,
    /// Records that would be quarantined, with the reason.
    pub problems: Vec<String>,
    /// Records that need no write (control records, unmapped tables, unchanged columns).
    pub no_write: usize,
}

/// Decodes and plans a batch and builds the rows that come from images
/// (so a mapping that still rejects a value shows), without any database:
/// the engine's own prepare pass ([`dms_cdc_core::prepare::dry_writes`]).
pub fn dry_plan(mapping: &Mapping, transforms: &Transforms, deliveries: &[Delivery]) -> DryPlan {
    let dry = dms_cdc_core::prepare::dry_writes(mapping, transforms, deliveries);
    let mut out = DryPlan {
        no_write: dry.prepared.plan.no_write.len(),
        ..DryPlan::default()
    };
    for q in &dry.prepared.quarantine {
        out.problems.push(match q.class {
            QuarantineClass::Decode => q.message.clone(),
            QuarantineClass::Ddl => format!("{}: {}", q.sequence_number, q.message),
            _ => format!(
                "{}: {}{}",
                q.sequence_number,
                match &q.table {
                    Some(t) if q.class == QuarantineClass::Plan => format!("target {t}: "),
                    _ => String::new(),
                },
                q.message
            ),
        });
    }
    for w in &dry.writes {
        let counts = out
            .tables
            .entry(mapping.targets[w.target].table.clone())
            .or_default();
        counts.from_image += w.upserts.len();
        counts.deletes += w.deletes.len().max(w.tombstones.len());
    }
    for (target, keys) in &dry.rebuild {
        let counts = out
            .tables
            .entry(mapping.targets[*target].table.clone())
            .or_default();
        counts.requery += keys.len();
    }
    out.tables.retain(|_, c| *c != PlannedWrites::default());
    out
}

/// How a range ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeStatus {
    /// Every record that is in the stream is applied (or, in a dry run, planned), and nothing is lost.
    Applied,
    /// Part of the range is no longer in the stream (reported); the rest is applied.
    Lost,
    /// A retryable failure (the target, the source, Kinesis): run again.
    Failed,
}

/// The result of one range.
#[derive(Debug, Clone)]
pub struct RangeReport {
    /// The range.
    pub range: Range,
    /// Records read that belong to the range.
    pub records: usize,
    /// Outcome counts (engine runs).
    pub applied: usize,
    /// Records that needed no write.
    pub skipped: usize,
    /// Records quarantined.
    pub quarantined: usize,
    /// Rows upserted per target table.
    pub upserts: BTreeMap<String, usize>,
    /// Rows deleted per target table.
    pub deletes: BTreeMap<String, usize>,
    /// Dry run: planned writes per target table.
    pub planned: BTreeMap<String, PlannedWrites>,
    /// Dry run: records that would be quarantined.
    pub problems: Vec<String>,
    /// Records no longer in the stream.
    pub lost: Vec<LostRange>,
    /// The retryable failure that stopped the range.
    pub error: Option<String>,
    /// Kinesis calls.
    pub stats: ReadStats,
}

impl RangeReport {
    fn new(range: Range) -> Self {
        RangeReport {
            range,
            records: 0,
            applied: 0,
            skipped: 0,
            quarantined: 0,
            upserts: BTreeMap::new(),
            deletes: BTreeMap::new(),
            planned: BTreeMap::new(),
            problems: Vec::new(),
            lost: Vec::new(),
            error: None,
            stats: ReadStats::default(),
        }
    }

    /// How it ended.
    pub fn status(&self) -> RangeStatus {
        if self.error.is_some() {
            RangeStatus::Failed
        } else if !self.lost.is_empty() {
            RangeStatus::Lost
        } else {
            RangeStatus::Applied
        }
    }

    /// One line (plus the lost ranges and problems) for a person.
    pub fn render(&self) -> String {
        let status = match self.status() {
            RangeStatus::Applied => "applied",
            RangeStatus::Lost => "INCOMPLETE",
            RangeStatus::Failed => "FAILED",
        };
        let mut out = format!(
            "{status} {}: {} records (applied {}, skipped {}, quarantined {})",
            self.range, self.records, self.applied, self.skipped, self.quarantined
        );
        for (table, n) in &self.upserts {
            let d = self.deletes.get(table).copied().unwrap_or(0);
            out.push_str(&format!("\n  {table}: {n} upserted, {d} deleted"));
        }
        for (table, p) in &self.planned {
            out.push_str(&format!(
                "\n  would write {table}: {} from images, {} re-queried, {} deleted",
                p.from_image, p.requery, p.deletes
            ));
        }
        for p in &self.problems {
            out.push_str(&format!("\n  would quarantine: {p}"));
        }
        for l in &self.lost {
            out.push_str(&format!("\n  {l}"));
        }
        if let Some(e) = &self.error {
            out.push_str(&format!("\n  stopped (retryable, run again): {e}"));
        }
        out
    }
}

/// Reads `range` and applies it batch by batch; stops at the first
/// retryable failure.
pub async fn redrive_range(
    client: &Client,
    range: Range,
    limits: &ReadLimits,
    apply: Apply<'_>,
    progress: &mut Progress,
) -> RangeReport {
    let mut report = RangeReport::new(range.clone());
    let mut reader = RangeReader::new(client, range, limits.clone());
    loop {
        let batch = match reader.next_batch().await {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(e) => {
                report.error = Some(e.to_string());
                break;
            }
        };
        report.records += batch.len();
        match apply {
            Apply::Engine(engine) => {
                let r = engine.process_redrive(&batch).await;
                for o in &r.outcomes {
                    match o {
                        Outcome::Applied => report.applied += 1,
                        Outcome::Skipped => report.skipped += 1,
                        Outcome::Quarantined => report.quarantined += 1,
                        Outcome::Pending => {}
                    }
                }
                for (t, n) in &r.summary.upserts {
                    *report.upserts.entry(t.clone()).or_default() += n;
                }
                for (t, n) in &r.summary.deletes {
                    *report.deletes.entry(t.clone()).or_default() += n;
                }
                if r.retry_error.is_some() || r.outcomes.contains(&Outcome::Pending) {
                    report.error = Some(
                        r.retry_error
                            .unwrap_or_else(|| "records left pending".to_owned()),
                    );
                    progress.records(&report);
                    break;
                }
            }
            Apply::DryRun {
                mapping,
                transforms,
            } => {
                let p = dry_plan(mapping, transforms, &batch);
                for (t, c) in p.tables {
                    let e = report.planned.entry(t).or_default();
                    e.from_image += c.from_image;
                    e.requery += c.requery;
                    e.deletes += c.deletes;
                }
                report.skipped += p.no_write;
                report.problems.extend(p.problems);
            }
        }
        progress.records(&report);
    }
    report.lost = reader.lost().to_vec();
    report.stats = reader.stats().clone();
    report
}
