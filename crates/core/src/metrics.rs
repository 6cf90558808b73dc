//! Metrics: one CloudWatch embedded-metric-format (EMF) line per batch,
//! namespace `dms-cdc`, dimension `Function` (low cardinality: the fault's
//! kind goes to the log, not a dimension).

use crate::engine::BatchSummary;

/// The metric names of a batch line (counts), in the order they are
/// declared; [`REPLICATION_LAG`] follows when the batch applied a record
/// with a commit time.
pub const METRIC_NAMES: [&str; 9] = [
    "Records",
    "AppliedRecords",
    "QuarantinedRecords",
    "RedeliveredRecords",
    "RowsUpserted",
    "RowsDeleted",
    "SourceSelects",
    "RetriedBatches",
    "OperatorErrors",
];

/// Milliseconds from the source commit of the newest record a batch
/// applied to the end of the batch (its statistics: Maximum, Average).
pub const REPLICATION_LAG: &str = "ReplicationLag";

/// A CloudWatch embedded-metric-format line for a batch (dimension: function).
pub fn emf_line(function_name: &str, summary: &BatchSummary, retrying: bool) -> String {
    let fault = retrying.then_some(crate::fault::Fault::Infrastructure(
        crate::fault::Infrastructure::Unknown,
    ));
    emf_line_for(function_name, summary, fault)
}

/// The EMF line of a batch that stopped at `retry_fault`, if any:
/// `RetriedBatches` counts every retry, `OperatorErrors` those an operator
/// must act on (authorisation, missing schema, bookkeeping, configuration),
/// the alarm's metric; the fault's kind goes to the log, not a dimension.
pub fn emf_line_for(
    function_name: &str,
    summary: &BatchSummary,
    retry_fault: Option<crate::fault::Fault>,
) -> String {
    use crate::fault::Fault;
    let timestamp = chrono::Utc::now().timestamp_millis();
    let upserts: usize = summary.upserts.values().sum();
    let deletes: usize = summary.deletes.values().sum();
    let operator = retry_fault.is_some_and(Fault::needs_operator);
    let lag = summary.lag_ms(chrono::Utc::now().naive_utc());
    let mut metrics: Vec<serde_json::Value> = METRIC_NAMES
        .iter()
        .map(|name| serde_json::json!({"Name": name, "Unit": "Count"}))
        .collect();
    if lag.is_some() {
        metrics.push(serde_json::json!({"Name": REPLICATION_LAG, "Unit": "Milliseconds"}));
    }
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": "dms-cdc",
                "Dimensions": [["Function"]],
                "Metrics": metrics
            }]
        },
        "Function": function_name,
        "Records": summary.record_count,
        "AppliedRecords": summary.applied_count,
        "QuarantinedRecords": summary.quarantined_count,
        "RedeliveredRecords": summary.redelivered_count,
        "RowsUpserted": upserts,
        "RowsDeleted": deletes,
        "SourceSelects": summary.source_select_count,
        "RetriedBatches": usize::from(retry_fault.is_some()),
        "OperatorErrors": usize::from(operator)
    });
    if let Some(lag) = lag {
        line[REPLICATION_LAG] = serde_json::json!(lag);
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_line_is_valid_json_with_metrics() {
        let summary = BatchSummary {
            record_count: 10,
            quarantined_count: 2,
            ..Default::default()
        };
        let line: serde_json::Value =
            serde_json::from_str(&emf_line("fn", &summary, false)).unwrap();
        assert_eq!(line["QuarantinedRecords"], 2);
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], "dms-cdc");
    }

    #[test]
    fn the_replication_lag_is_the_age_of_the_newest_applied_commit() {
        let commit = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(90);
        let summary = BatchSummary {
            record_count: 3,
            applied_count: 3,
            newest_commit: Some(commit),
            ..Default::default()
        };
        let line: serde_json::Value =
            serde_json::from_str(&emf_line("fn", &summary, false)).unwrap();
        let lag = line[REPLICATION_LAG].as_u64().unwrap();
        assert!((90_000..100_000).contains(&lag), "{lag}");
        assert_eq!(line["AppliedRecords"], 3);
        let declared = &line["_aws"]["CloudWatchMetrics"][0]["Metrics"];
        assert!(declared
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["Name"] == REPLICATION_LAG && m["Unit"] == "Milliseconds"));
        // No commit time (a full load, nothing applied): no lag value at all.
        let line: serde_json::Value =
            serde_json::from_str(&emf_line("fn", &BatchSummary::default(), false)).unwrap();
        assert!(line.get(REPLICATION_LAG).is_none());
        assert!(!line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["Name"] == REPLICATION_LAG));
    }
}
