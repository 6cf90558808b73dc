//! Whose fault an OpenSearch answer is: the one list for this adapter.
//!
//! Per bulk item: `409 version_conflict_engine_exception` on a versioned
//! write means a newer document is already there (success); a `404` on a
//! delete means there was nothing to delete (success); `429` and `5xx` are
//! server state (retry); `index_not_found_exception` is a missing index
//! (schema: retry and alarm); any other `4xx` (`mapper_parsing_exception`,
//! `document_parsing_exception`, `illegal_argument_exception`, an immense
//! term, ...) is the document's own fault: the engine bisects the batch and
//! quarantines the record. For whole requests: connection errors and
//! timeouts retry; `401` re-reads credentials; `403` is authorisation;
//! `404` is a missing index; `413` is the record's fault only for a bulk of
//! one document (otherwise our byte limit is above the server's
//! `http.max_content_length`: configuration); anything else retries.

use dms_cdc_core::fault::{Classify, Fault, Infrastructure};

/// An error of the OpenSearch adapter. Messages never carry document values
/// (OpenSearch's "Preview of field's value" is cut off).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The request did not get an answer (connection refused, reset, TLS,
    /// timeout).
    #[error("opensearch {what}: {message}")]
    Connection {
        /// What was being done.
        what: String,
        /// What went wrong.
        message: String,
    },
    /// The server answered a request with an error status.
    #[error("opensearch {what}: HTTP {status}: {error_type}: {reason}")]
    Status {
        /// What was being done.
        what: String,
        /// HTTP status.
        status: u16,
        /// OpenSearch's error type (`index_not_found_exception`, ...).
        error_type: String,
        /// Its reason, without value previews.
        reason: String,
        /// Whether the request carried one document only.
        single: bool,
        /// Whether it was our own bookkeeping (checkpoint, quarantine).
        bookkeeping: bool,
    },
    /// A bulk item failed.
    #[error(
        "opensearch {what}: index {index}: document {id}: HTTP {status}: {error_type}: {reason}"
    )]
    Item {
        /// What was being written.
        what: String,
        /// The index.
        index: String,
        /// The document id (the target key).
        id: String,
        /// The item's status.
        status: u16,
        /// OpenSearch's error type.
        error_type: String,
        /// Its reason, without value previews.
        reason: String,
        /// Whether it was our own bookkeeping (a tombstone).
        bookkeeping: bool,
    },
    /// An answer we cannot read.
    #[error("opensearch {what}: unexpected answer: {message}")]
    Answer {
        /// What was being done.
        what: String,
        /// What is wrong with it.
        message: String,
    },
    /// A document's version text is not the engine's format (never happens
    /// with versions the engine makes).
    #[error("target {table}: {source}")]
    Version {
        /// The target table.
        table: String,
        /// The problem.
        #[source]
        source: crate::version::VersionTextError,
    },
    /// The checkpoint could not be moved forward after several concurrent
    /// changes of its document.
    #[error("opensearch checkpoint of shard {shard}: changed concurrently {attempts} times")]
    Contended {
        /// The shard.
        shard: String,
        /// Attempts made.
        attempts: u32,
    },
    /// Our configuration does not work (signing, TLS, URL).
    #[error("opensearch configuration: {0}")]
    Configuration(String),
}

/// Whose fault an item's (or a request's) error type and status are.
pub fn of_item(status: u16, error_type: &str) -> Fault {
    use Infrastructure as I;
    match (status, error_type) {
        (_, "index_not_found_exception") => Fault::Infrastructure(I::Schema),
        (_, "cluster_block_exception") => Fault::Infrastructure(I::ServerState),
        (401, _) => Fault::Infrastructure(I::Authentication),
        (403, _) => Fault::Infrastructure(I::Authorisation),
        (429, _) | (500..=599, _) => Fault::Infrastructure(I::ServerState),
        // Our own conflicts (an `if_seq_no` mark) retry.
        (409, _) => Fault::Infrastructure(I::ServerState),
        (400..=499, _) => Fault::Record,
        _ => Fault::Infrastructure(I::Unknown),
    }
}

/// Whose fault a whole request's error status is.
pub fn of_status(status: u16, error_type: &str, single: bool) -> Fault {
    use Infrastructure as I;
    match (status, error_type) {
        (413, _) if single => Fault::Record,
        (413, _) => Fault::Infrastructure(I::Configuration),
        (401, _) => Fault::Infrastructure(I::Authentication),
        (403, _) => Fault::Infrastructure(I::Authorisation),
        (404, _) | (_, "index_not_found_exception") => Fault::Infrastructure(I::Schema),
        (429, _) | (500..=599, _) => Fault::Infrastructure(I::ServerState),
        _ => Fault::Infrastructure(I::Unknown),
    }
}

/// OpenSearch's reason without the value preview it may carry.
pub fn without_values(reason: &str) -> String {
    let cut = ["Preview of field's value", "value: ", "input: "]
        .iter()
        .filter_map(|m| reason.find(m))
        .min()
        .unwrap_or(reason.len());
    let mut text = reason[..cut].trim_end().to_owned();
    if cut < reason.len() {
        text.push_str(" (value not shown)");
    }
    dms_cdc_core::target::bounded(&text, 2000).to_owned()
}

impl Classify for TargetError {
    /// A document of our own bookkeeping that the server refuses is never
    /// the record's fault: it retries and alarms instead of quarantining.
    fn fault(&self) -> Fault {
        let bookkept = |f: Fault, bookkeeping: bool| match f {
            Fault::Record if bookkeeping => Fault::Infrastructure(Infrastructure::Bookkeeping),
            f => f,
        };
        match self {
            TargetError::Connection { .. } => Fault::Infrastructure(Infrastructure::Connection),
            TargetError::Status {
                status,
                error_type,
                single,
                bookkeeping,
                ..
            } => bookkept(of_status(*status, error_type, *single), *bookkeeping),
            TargetError::Item {
                status,
                error_type,
                bookkeeping,
                ..
            } => bookkept(of_item(*status, error_type), *bookkeeping),
            TargetError::Answer { .. } => Fault::Infrastructure(Infrastructure::Unknown),
            TargetError::Version { .. } => Fault::Record,
            TargetError::Contended { .. } => Fault::Infrastructure(Infrastructure::ServerState),
            TargetError::Configuration(_) => Fault::Infrastructure(Infrastructure::Configuration),
        }
    }
}

impl TargetError {
    /// Whose fault it is ([`Classify::fault`]).
    pub fn fault(&self) -> Fault {
        Classify::fault(self)
    }

    /// Whether the batch is to be retried (anything but the record's fault).
    pub fn is_retryable(&self) -> bool {
        !self.fault().is_record()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_answers_are_classified() {
        let cases = [
            (400, "mapper_parsing_exception", Fault::Record),
            (400, "document_parsing_exception", Fault::Record),
            (400, "illegal_argument_exception", Fault::Record),
            (
                429,
                "es_rejected_execution_exception",
                Fault::Infrastructure(Infrastructure::ServerState),
            ),
            (
                503,
                "unavailable_shards_exception",
                Fault::Infrastructure(Infrastructure::ServerState),
            ),
            (
                404,
                "index_not_found_exception",
                Fault::Infrastructure(Infrastructure::Schema),
            ),
            (
                403,
                "cluster_block_exception",
                Fault::Infrastructure(Infrastructure::ServerState),
            ),
            (
                403,
                "security_exception",
                Fault::Infrastructure(Infrastructure::Authorisation),
            ),
            (200, "", Fault::Infrastructure(Infrastructure::Unknown)),
        ];
        for (status, ty, fault) in cases {
            assert_eq!(of_item(status, ty), fault, "{status} {ty}");
        }
        assert_eq!(of_status(413, "", true), Fault::Record);
        assert_eq!(
            of_status(413, "", false),
            Fault::Infrastructure(Infrastructure::Configuration)
        );
        assert_eq!(
            of_status(401, "", false),
            Fault::Infrastructure(Infrastructure::Authentication)
        );
        assert_eq!(
            of_status(400, "parse_exception", false),
            Fault::Infrastructure(Infrastructure::Unknown)
        );
    }

    #[test]
    fn bookkeeping_is_never_the_record() {
        let e = TargetError::Item {
            what: "tombstones".into(),
            index: "dms-cdc-tombstone".into(),
            id: "x".into(),
            status: 400,
            error_type: "mapper_parsing_exception".into(),
            reason: "r".into(),
            bookkeeping: true,
        };
        assert_eq!(
            e.fault(),
            Fault::Infrastructure(Infrastructure::Bookkeeping)
        );
    }

    #[test]
    fn value_previews_are_cut() {
        let r = "failed to parse field [n] of type [long] in document with id '5'. Preview of field's value: 'abc'";
        let cut = without_values(r);
        assert!(!cut.contains("abc"), "{cut}");
        assert!(cut.starts_with("failed to parse field [n] of type [long]"));
    }
}
