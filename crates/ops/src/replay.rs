//! Replaying recorded Kinesis events (fixtures) through the same decode and
//! plan code the functions run. `--dry-run` stops before any I/O and prints
//! the planned writes and the response Lambda would get if they succeed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::streams::KinesisEventResponse;

use crate::dms::{deliveries, DmsRecord, Payload};
use crate::engine::{build_response, BatchReport, Outcome};
use crate::mapping::{build_row, target_key, Mapping, Related, Transforms};
use crate::plan::{Action, BatchPlan, KeyTuple};
use dms_cdc_core::target::{Quarantine, QuarantineClass, TableWrites};

/// Errors reading fixtures.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A file or folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not a Kinesis event.
    #[error("{path}: not a Kinesis event: {source}")]
    Event {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
    /// The event's records are not what Lambda sends.
    #[error("{path}: {source}")]
    Records {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: crate::dms::EventError,
    },
}

/// Expands files and folders (their `*.json` files, sorted) into event files.
pub fn event_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ReplayError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| ReplayError::Io {
                path: path.clone(),
                source,
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Reads a Kinesis event file.
pub fn read_event(path: &Path) -> Result<KinesisEvent, ReplayError> {
    let bytes = std::fs::read(path).map_err(|source| ReplayError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| ReplayError::Event {
        path: path.to_owned(),
        source,
    })
}

/// The result of a dry run over one event.
#[derive(Debug)]
pub struct DryRun {
    /// Records in the event.
    pub record_count: usize,
    /// Decode failures (would be quarantined), as messages.
    pub undecodable: Vec<String>,
    /// The plan of the records that go on to it.
    pub plan: BatchPlan,
    /// The decoded records the plan indexes into.
    pub records: Vec<DmsRecord>,
    /// Every record that would be quarantined, and why.
    pub quarantine: Vec<Quarantine>,
    /// The writes as far as known without a database: rows from images,
    /// deletes, and the keys to rebuild from a re-query.
    pub writes: Vec<TableWrites>,
    /// Per target: root keys to re-query and rebuild.
    pub rebuild: Vec<(usize, Vec<KeyTuple>)>,
    /// The response if every planned write succeeds.
    pub response: KinesisEventResponse,
}

/// Decodes and plans one event without touching any database: the
/// engine's own prepare pass ([`dms_cdc_core::prepare::dry_writes`]).
pub fn dry_run(
    mapping: &Mapping,
    transforms: &Transforms,
    event: &KinesisEvent,
    path: &Path,
) -> Result<DryRun, ReplayError> {
    let deliveries = deliveries(event).map_err(|source| ReplayError::Records {
        path: path.to_owned(),
        source,
    })?;
    let dry = dms_cdc_core::prepare::dry_writes(mapping, transforms, &deliveries);
    let prepared = dry.prepared;
    let response = build_response(
        deliveries
            .iter()
            .map(|d| &d.sequence_number)
            .zip(prepared.outcomes.iter().map(|(_, o)| *o)),
    );
    Ok(DryRun {
        record_count: deliveries.len(),
        undecodable: prepared
            .quarantine
            .iter()
            .filter(|q| q.class == QuarantineClass::Decode)
            .map(|q| q.message.clone())
            .collect(),
        plan: prepared.plan,
        records: prepared.records,
        quarantine: prepared.quarantine,
        writes: dry.writes,
        rebuild: dry.rebuild,
        response,
    })
}

impl DryRun {
    /// Renders the dry run for a person: counts, planned writes per target
    /// table, lookups, problems, and the response.
    pub fn render(&self, mapping: &Mapping, transforms: &Transforms) -> String {
        let mut out = String::new();
        let c = &self.plan.counts;
        let _ = writeln!(
            out,
            "records: {} (mapped {}, unmapped {}, control {}, unchanged {}, undecodable {}, unplannable {})",
            self.record_count,
            c.mapped,
            c.unmapped,
            c.control,
            c.unchanged,
            self.undecodable.len(),
            self.plan.errors.len()
        );
        for tp in &self.plan.targets {
            let target = &mapping.targets[tp.target];
            if tp.is_empty() {
                continue;
            }
            let _ = writeln!(out, "target {}:", target.table);
            for (key, op) in &tp.ops {
                let tkey = target_key(target, &key.values())
                    .map(|k| {
                        crate::plan::KeyTuple(
                            k.iter()
                                .filter_map(crate::plan::KeyPart::from_value)
                                .collect(),
                        )
                    })
                    .map(|k| k.to_string())
                    .unwrap_or_else(|e| format!("<{e}>"));
                let seq = &self.records[op.first_record].sequence_number;
                let detail = match &op.action {
                    Action::Upsert => match op.image(&self.records) {
                        Some(row) => {
                            match build_row(target, row, &Related::default(), transforms) {
                                Ok(values) => format!("{} columns from the image", values.len()),
                                Err(e) => format!("cannot build: {e}"),
                            }
                        }
                        None => "cannot build: no after image".to_owned(),
                    },
                    Action::Rebuild => "re-query source".to_owned(),
                    Action::Tombstone(_) => "soft delete, row from the image".to_owned(),
                    Action::Delete => match &target.delete {
                        crate::mapping::DeletePolicy::Hard => "delete".to_owned(),
                        crate::mapping::DeletePolicy::Soft { column, .. } => {
                            format!("soft delete ({column})")
                        }
                    },
                };
                let _ = writeln!(
                    out,
                    "  {:<7} {} = {tkey}  [{detail}; from sequence number {seq}]",
                    op.action.name(),
                    target.key.join(", ")
                );
            }
            for ((parent, cols), lookup) in &tp.nested {
                let _ = writeln!(
                    out,
                    "  lookup  {} in ({}): {} value(s), then their parents up to {}",
                    target
                        .children
                        .get(*parent)
                        .map_or_else(String::new, |c| c.table.to_string()),
                    cols.join(", "),
                    lookup.tuples.len(),
                    target.root
                );
            }
            for (cols, lookup) in &tp.lookups {
                let _ = writeln!(
                    out,
                    "  lookup  {} in ({}): {} value(s), then rebuild the rows found",
                    target.root,
                    cols.join(", "),
                    lookup.tuples.len()
                );
            }
        }
        for i in &self.plan.controls {
            if let Payload::Control(ctl) = &self.records[*i].payload {
                let table = ctl
                    .table
                    .as_ref()
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "-".to_owned());
                let _ = writeln!(out, "control {} on {table} (no write)", ctl.operation);
            }
        }
        for e in &self.undecodable {
            let _ = writeln!(out, "quarantine (undecodable): {e}");
        }
        for e in &self.plan.errors {
            let _ = writeln!(out, "quarantine (cannot plan): {e}");
        }
        for q in &self.quarantine {
            if matches!(
                q.class,
                QuarantineClass::Ddl | QuarantineClass::Evaluate | QuarantineClass::Write
            ) {
                let _ = writeln!(
                    out,
                    "quarantine ({}): sequence number {}: {}",
                    q.class, q.sequence_number, q.message
                );
            }
        }
        let response = serde_json::to_string(&self.response).unwrap_or_default();
        let _ = writeln!(out, "response: {response}");
        out
    }
}

/// Renders a batch applied through the engine for a person: outcome
/// counts, source selects, rows written per target table, the retryable
/// error that stopped it, and the response.
pub fn render_report(report: &BatchReport) -> String {
    let s = &report.summary;
    let count = |o: Outcome| report.outcomes.iter().filter(|x| **x == o).count();
    let mut out = format!(
        "records: {} (applied {}, skipped {}, quarantined {}, pending {}); source selects: {}\n",
        s.record_count,
        count(Outcome::Applied),
        count(Outcome::Skipped),
        count(Outcome::Quarantined),
        count(Outcome::Pending),
        s.source_select_count
    );
    for (table, n) in &s.upserts {
        let deletes = s.deletes.get(table).copied().unwrap_or(0);
        out.push_str(&format!("  {table}: {n} upserted, {deletes} deleted\n"));
    }
    if let Some(e) = &report.retry_error {
        out.push_str(&format!("stopped by a retryable error: {e}\n"));
    }
    out.push_str(&format!(
        "response: {}\n",
        serde_json::to_string(&report.response).unwrap_or_default()
    ));
    out
}
