//! Metrics: one CloudWatch embedded-metric-format (EMF) line per batch,
//! namespace `dms-cdc`, dimension `Function` (low cardinality: the fault's
//! kind goes to the log, not a dimension).

use crate::engine::BatchSummary;

/// The metric names of a batch line, in the order they are declared.
pub const METRIC_NAMES: [&str; 8] = [
    "Records",
    "QuarantinedRecords",
    "RedeliveredRecords",
    "RowsUpserted",
    "RowsDeleted",
    "SourceSelects",
    "RetriedBatches",
    "OperatorErrors",
];

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
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": "dms-cdc",
                "Dimensions": [["Function"]],
                "Metrics": METRIC_NAMES
                    .iter()
                    .map(|name| serde_json::json!({"Name": name, "Unit": "Count"}))
                    .collect::<Vec<_>>()
            }]
        },
        "Function": function_name,
        "Records": summary.record_count,
        "QuarantinedRecords": summary.quarantined_count,
        "RedeliveredRecords": summary.redelivered_count,
        "RowsUpserted": upserts,
        "RowsDeleted": deletes,
        "SourceSelects": summary.source_select_count,
        "RetriedBatches": usize::from(retry_fault.is_some()),
        "OperatorErrors": usize::from(operator)
    })
    .to_string()
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
}
