//! Applying quarantined rows again through the engine (one record per
//! transaction), or planning it with a fixed mapping (a dry run).

use super::{show, Filter, QuarantineStore, Quarantined, State};
use crate::dms::Delivery;
use crate::engine::{Engine, Outcome};
use crate::mapping::{Mapping, Transforms};
use crate::position::{SequenceNumber, ShardId};
use crate::redrive::{dry_plan, DryPlan};
use dms_cdc_core::source::Source;
use dms_cdc_core::target::Target;

/// What became of one redriven row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedriveResult {
    /// Applied (or needed no write): marked resolved.
    Resolved(Outcome),
    /// Failed again: quarantined again with this error (attempts incremented).
    StillFailing(String),
    /// A retryable failure (the target or source is down): left open; run again.
    Pending(String),
}

/// The result of a quarantine redrive.
#[derive(Debug, Clone, Default)]
pub struct RedriveReport {
    /// Per row: id, shard, sequence number, result.
    pub rows: Vec<(u64, ShardId, SequenceNumber, RedriveResult)>,
}

impl RedriveReport {
    /// Rows resolved.
    pub fn resolved(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| matches!(r.3, RedriveResult::Resolved(_)))
            .count()
    }

    /// Rows that failed again.
    pub fn still_failing(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| matches!(r.3, RedriveResult::StillFailing(_)))
            .count()
    }

    /// Whether a retryable failure stopped the redrive.
    pub fn pending(&self) -> bool {
        self.rows
            .iter()
            .any(|r| matches!(r.3, RedriveResult::Pending(_)))
    }
}

fn delivery_of(row: &Quarantined) -> Delivery {
    Delivery {
        shard_id: row.shard_id.clone(),
        sequence_number: row.sequence_number.clone(),
        partition_key: String::new(),
        approximate_arrival_ms: None,
        data: row.raw.clone(),
    }
}

/// Re-applies the open rows matching `filter` through `engine` (which
/// carries the fixed mapping; its target is the function's quarantine),
/// one record per transaction, in stream order. Stops at the first
/// retryable failure.
pub async fn redrive<S: Source, T: Target + QuarantineStore>(
    engine: &Engine<S, T>,
    filter: &Filter,
) -> Result<RedriveReport, <T as QuarantineStore>::Error> {
    let store = &engine.target;
    let filter = Filter {
        state: State::Open,
        ..filter.clone()
    };
    let rows = store.quarantined(&filter).await?;
    let mut report = RedriveReport::default();
    for row in rows {
        let d = delivery_of(&row);
        let r = engine.process_redrive(std::slice::from_ref(&d)).await;
        let result = match (r.outcomes.first().copied(), r.retry_error) {
            (_, Some(e)) => RedriveResult::Pending(e),
            (Some(o @ (Outcome::Applied | Outcome::Skipped)), None) => {
                store.mark_resolved(row.id).await?;
                RedriveResult::Resolved(o)
            }
            (Some(Outcome::Quarantined), None) => {
                let again = show(store, row.id).await?;
                RedriveResult::StillFailing(again.map(|q| q.message).unwrap_or_default())
            }
            (Some(Outcome::Pending) | None, None) => {
                RedriveResult::Pending("the record was left pending".to_owned())
            }
        };
        let stop = matches!(result, RedriveResult::Pending(_));
        report.rows.push((
            row.id,
            row.shard_id.clone(),
            row.sequence_number.clone(),
            result,
        ));
        if stop {
            break;
        }
    }
    Ok(report)
}

/// What a redrive of quarantined rows would do with the (fixed) mapping,
/// without any database: per row, its planned writes or why it still fails.
#[derive(Debug, Clone, Default)]
pub struct DryRedrive {
    /// Per row: id and plan.
    pub rows: Vec<(u64, DryPlan)>,
}

/// Decodes and plans each row's raw record with `mapping` and builds the
/// rows that come from images ([`dry_plan`]); re-queried rows are checked
/// only by a real redrive.
pub fn dry_redrive(mapping: &Mapping, transforms: &Transforms, rows: &[Quarantined]) -> DryRedrive {
    DryRedrive {
        rows: rows
            .iter()
            .map(|row| (row.id, dry_plan(mapping, transforms, &[delivery_of(row)])))
            .collect(),
    }
}

impl DryRedrive {
    /// Rows that would fail again.
    pub fn still_failing(&self) -> usize {
        self.rows
            .iter()
            .filter(|(_, plan)| !plan.problems.is_empty())
            .count()
    }

    /// One line per row and a total, for a person.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (id, plan) in &self.rows {
            let writes: Vec<String> = plan
                .tables
                .iter()
                .map(|(t, p)| {
                    format!(
                        "{t}: {} from image, {} re-queried, {} deleted",
                        p.from_image, p.requery, p.deletes
                    )
                })
                .collect();
            if plan.problems.is_empty() {
                out.push_str(&format!(
                    "{id}: would apply ({})\n",
                    if writes.is_empty() {
                        "no write".to_owned()
                    } else {
                        writes.join("; ")
                    }
                ));
            } else {
                out.push_str(&format!(
                    "{id}: still fails: {}\n",
                    plan.problems.join("; ")
                ));
            }
        }
        let failing = self.still_failing();
        out.push_str(&format!(
            "{} open record(s): {} would apply, {} still fail (re-queried rows are checked only by a real redrive)\n",
            self.rows.len(),
            self.rows.len() - failing,
            failing
        ));
        out
    }
}

impl RedriveReport {
    /// One line per row and a total, for a person.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (id, shard, seq, result) in &self.rows {
            out.push_str(&match result {
                RedriveResult::Resolved(o) => format!(
                    "{id} ({shard} {seq}): resolved ({})\n",
                    if *o == Outcome::Applied {
                        "applied"
                    } else {
                        "no write needed"
                    }
                ),
                RedriveResult::StillFailing(e) => {
                    format!("{id} ({shard} {seq}): still failing, attempts incremented: {e}\n")
                }
                RedriveResult::Pending(e) => {
                    format!("{id} ({shard} {seq}): not applied (retryable, run again): {e}\n")
                }
            });
        }
        out.push_str(&format!(
            "{} record(s): {} resolved, {} still failing{}\n",
            self.rows.len(),
            self.resolved(),
            self.still_failing(),
            if self.pending() {
                "; stopped by a retryable failure"
            } else {
                ""
            }
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redrive::PlannedWrites;

    fn seq(n: u32) -> SequenceNumber {
        SequenceNumber::parse(&n.to_string()).expect("a sequence number")
    }

    #[test]
    fn a_redrive_report_has_a_line_per_row_and_a_total() {
        let shard = ShardId("shardId-000000000000".into());
        let report = RedriveReport {
            rows: vec![
                (
                    1,
                    shard.clone(),
                    seq(10),
                    RedriveResult::Resolved(Outcome::Applied),
                ),
                (
                    2,
                    shard.clone(),
                    seq(11),
                    RedriveResult::Resolved(Outcome::Skipped),
                ),
                (
                    3,
                    shard.clone(),
                    seq(12),
                    RedriveResult::StillFailing("bad".into()),
                ),
                (
                    4,
                    shard.clone(),
                    seq(13),
                    RedriveResult::Pending("down".into()),
                ),
            ],
        };
        assert_eq!(
            report.render(),
            "1 (shardId-000000000000 10): resolved (applied)\n\
             2 (shardId-000000000000 11): resolved (no write needed)\n\
             3 (shardId-000000000000 12): still failing, attempts incremented: bad\n\
             4 (shardId-000000000000 13): not applied (retryable, run again): down\n\
             4 record(s): 2 resolved, 1 still failing; stopped by a retryable failure\n"
        );
        assert_eq!(
            RedriveReport::default().render(),
            "0 record(s): 0 resolved, 0 still failing\n"
        );
    }

    #[test]
    fn a_dry_redrive_shows_what_would_apply_and_what_still_fails() {
        let writes = DryPlan {
            tables: [(
                "users".to_owned(),
                PlannedWrites {
                    from_image: 1,
                    requery: 2,
                    deletes: 0,
                },
            )]
            .into(),
            ..DryPlan::default()
        };
        let failing = DryPlan {
            problems: vec!["10: column x".into(), "10: column y".into()],
            ..DryPlan::default()
        };
        let dry = DryRedrive {
            rows: vec![(1, writes), (2, DryPlan::default()), (3, failing)],
        };
        assert_eq!(dry.still_failing(), 1);
        assert_eq!(
            dry.render(),
            "1: would apply (users: 1 from image, 2 re-queried, 0 deleted)\n\
             2: would apply (no write)\n\
             3: still fails: 10: column x; 10: column y\n\
             3 open record(s): 2 would apply, 1 still fail (re-queried rows are checked only by a real redrive)\n"
        );
    }
}
