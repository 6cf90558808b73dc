//! Replaying recorded Kinesis events (fixtures) through the same decode and
//! plan code the functions run. `--dry-run` stops before any I/O and prints
//! the planned writes and the response Lambda would get if they succeed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::streams::KinesisEventResponse;

use crate::dms::{decode_record, deliveries, DmsRecord, Payload};
use crate::engine::{build_response, Outcome};
use crate::mapping::{build_row, target_key, Mapping, Related, Transforms};
use crate::plan::{plan_batch, Action, BatchPlan};

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
    /// The plan of the decodable records.
    pub plan: BatchPlan,
    /// The decoded records the plan indexes into.
    pub records: Vec<DmsRecord>,
    /// The response if every planned write succeeds.
    pub response: KinesisEventResponse,
}

/// Decodes and plans one event without touching any database.
pub fn dry_run(
    mapping: &Mapping,
    event: &KinesisEvent,
    path: &Path,
) -> Result<DryRun, ReplayError> {
    let deliveries = deliveries(event).map_err(|source| ReplayError::Records {
        path: path.to_owned(),
        source,
    })?;
    let options = mapping.decode_options();
    let mut undecodable = Vec::new();
    let mut records = Vec::new();
    let mut outcomes = Vec::new();
    for d in &deliveries {
        match decode_record(d, &options) {
            Ok(r) => {
                records.push(r);
                outcomes.push(Outcome::Applied);
            }
            Err(e) => {
                undecodable.push(e.to_string());
                outcomes.push(Outcome::Quarantined);
            }
        }
    }
    let plan = plan_batch(mapping, &records);
    let response = build_response(deliveries.iter().map(|d| &d.sequence_number).zip(outcomes));
    Ok(DryRun {
        record_count: deliveries.len(),
        undecodable,
        plan,
        records,
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
                    Action::Upsert(row) => {
                        match build_row(target, row, &Related::default(), transforms) {
                            Ok(values) => format!("{} columns from the image", values.len()),
                            Err(e) => format!("cannot build: {e}"),
                        }
                    }
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
        let response = serde_json::to_string(&self.response).unwrap_or_default();
        let _ = writeln!(out, "response: {response}");
        out
    }
}
