//! `_bulk` requests: NDJSON actions, split by bytes and by count, and the
//! answer read item by item ([`crate::fault`] says whose fault a failed
//! item is).

use dms_cdc_core::fault::Fault;
use serde_json::{json, Value as Json};

use crate::connection::{error_fields, Client};
use crate::fault::TargetError;

/// How an action's answer is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// `version_type=external_gte`: a 409 means a newer document is there (success).
    External,
    /// No version: any conflict is an error.
    None,
}

/// One bulk action: its NDJSON lines and how to read its answer.
#[derive(Debug, Clone)]
pub struct Action {
    /// The action line and, for `index`, the source line (each ending in `\n`).
    pub lines: String,
    /// The index (or alias) it writes.
    pub index: String,
    /// The document id.
    pub id: String,
    /// Whether it is a delete (a 404 is success: nothing to delete).
    pub delete: bool,
    /// The version guard.
    pub guard: Guard,
    /// Whether the document is our bookkeeping (a tombstone): its refusal
    /// is never the record's fault.
    pub bookkeeping: bool,
}

fn meta(index: &str, id: &str, version: Option<i64>, extra: Option<(i64, i64)>) -> Json {
    let mut m = json!({"_index": index, "_id": id});
    if let Some(v) = version {
        m["version"] = json!(v);
        m["version_type"] = json!("external_gte");
    }
    if let Some((seq_no, primary_term)) = extra {
        m["if_seq_no"] = json!(seq_no);
        m["if_primary_term"] = json!(primary_term);
    }
    m
}

impl Action {
    /// Indexes `source` as document `id`, with an external version when given.
    pub fn index(index: &str, id: &str, version: Option<i64>, source: &str) -> Action {
        let mut lines = json!({"index": meta(index, id, version, None)}).to_string();
        lines.push('\n');
        lines.push_str(source);
        lines.push('\n');
        Action {
            lines,
            index: index.to_owned(),
            id: id.to_owned(),
            delete: false,
            guard: if version.is_some() {
                Guard::External
            } else {
                Guard::None
            },
            bookkeeping: false,
        }
    }

    /// Indexes `source` only if the document is still at `seq_no` and
    /// `primary_term` (optimistic concurrency, internal versions).
    pub fn index_if(index: &str, id: &str, at: (i64, i64), source: &str) -> Action {
        let mut lines = json!({"index": meta(index, id, None, Some(at))}).to_string();
        lines.push('\n');
        lines.push_str(source);
        lines.push('\n');
        Action {
            lines,
            index: index.to_owned(),
            id: id.to_owned(),
            delete: false,
            guard: Guard::None,
            bookkeeping: false,
        }
    }

    /// Deletes document `id`, with an external version when given.
    pub fn delete(index: &str, id: &str, version: Option<i64>) -> Action {
        let mut lines = json!({"delete": meta(index, id, version, None)}).to_string();
        lines.push('\n');
        Action {
            lines,
            index: index.to_owned(),
            id: id.to_owned(),
            delete: true,
            guard: if version.is_some() {
                Guard::External
            } else {
                Guard::None
            },
            bookkeeping: false,
        }
    }

    /// The same action, marked as bookkeeping.
    pub fn bookkeeping(mut self) -> Action {
        self.bookkeeping = true;
        self
    }
}

/// The bodies `actions` are sent in: at most `max_bytes` each (an action
/// larger than that goes alone) and at most `max_actions` actions each.
pub fn split(
    actions: &[Action],
    max_bytes: usize,
    max_actions: usize,
) -> Vec<std::ops::Range<usize>> {
    let mut parts = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, a) in actions.iter().enumerate() {
        let count = i - start;
        if count > 0 && (bytes + a.lines.len() > max_bytes || count >= max_actions.max(1)) {
            parts.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += a.lines.len();
    }
    if start < actions.len() {
        parts.push(start..actions.len());
    }
    parts
}

/// Whether an item's answer is a success, else its error.
fn item_error(action: &Action, item: &Json, what: &str) -> Option<TargetError> {
    let status = item["status"].as_u64().unwrap_or(0) as u16;
    let (error_type, reason) = error_fields(&item["error"]);
    let ok = match status {
        200..=299 => true,
        404 if action.delete && item["error"].is_null() => true,
        409 if action.guard == Guard::External
            && error_type == "version_conflict_engine_exception" =>
        {
            true
        }
        _ => false,
    };
    (!ok).then(|| TargetError::Item {
        what: what.to_owned(),
        index: action.index.clone(),
        id: action.id.clone(),
        status,
        error_type,
        reason,
        bookkeeping: action.bookkeeping,
    })
}

/// Sends `actions` in as many `_bulk` requests as the limits need, in
/// order; stops at the first request with a failed item. A retryable item
/// error is returned before a record-caused one, so a batch never bisects
/// (and quarantines) while the server is also refusing for its own reasons.
pub async fn send(client: &Client, actions: &[Action], what: &str) -> Result<(), TargetError> {
    let config = client.config();
    for part in split(actions, config.bulk_bytes, config.bulk_actions) {
        let part = &actions[part];
        let body: Vec<u8> = part
            .iter()
            .flat_map(|a| a.lines.as_bytes().iter().copied())
            .collect();
        let answer = client
            .send(
                http::Method::POST,
                "/_bulk?filter_path=errors,items.*.status,items.*.error.type,items.*.error.reason",
                "application/x-ndjson",
                body,
                what,
            )
            .await?;
        let bookkeeping = part.iter().all(|a| a.bookkeeping);
        if !(200..300).contains(&answer.status) {
            return Err(answer.error(what, part.len() == 1, bookkeeping));
        }
        let json = answer.json();
        if json["errors"] == json!(false) {
            continue;
        }
        let items = json["items"]
            .as_array()
            .ok_or_else(|| TargetError::Answer {
                what: what.to_owned(),
                message: "a _bulk answer without items".into(),
            })?;
        if items.len() != part.len() {
            return Err(TargetError::Answer {
                what: what.to_owned(),
                message: format!("{} items for {} actions", items.len(), part.len()),
            });
        }
        let mut record: Option<TargetError> = None;
        for (action, item) in part.iter().zip(items) {
            let item = item
                .as_object()
                .and_then(|o| o.values().next())
                .unwrap_or(&Json::Null);
            if let Some(e) = item_error(action, item, what) {
                if e.fault() != Fault::Record {
                    return Err(e);
                }
                record.get_or_insert(e);
            }
        }
        if let Some(e) = record {
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_split_by_bytes_and_count() {
        let a = |n: usize| Action::index("i", &"x".repeat(n), None, "{}");
        let actions: Vec<Action> = [10, 10, 10, 500, 10].into_iter().map(a).collect();
        let sizes: Vec<usize> = actions.iter().map(|a| a.lines.len()).collect();
        let small = sizes[0];
        assert_eq!(
            split(&actions, 2 * small, 100),
            vec![0..2, 2..3, 3..4, 4..5]
        );
        assert_eq!(split(&actions, usize::MAX, 2), vec![0..2, 2..4, 4..5]);
        assert_eq!(split(&actions, 1, 100).len(), 5);
        assert!(split(&[], 10, 10).is_empty());
    }

    #[test]
    fn items_are_read_by_whose_fault_they_are() {
        let versioned = Action::index("i", "1", Some(5), "{}");
        let plain = Action::index("i", "1", None, "{}");
        let delete = Action::delete("i", "1", Some(5));
        let conflict = json!({"status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "r"}});
        assert!(item_error(&versioned, &conflict, "w").is_none());
        assert!(item_error(&plain, &conflict, "w").is_some_and(|e| e.is_retryable()));
        assert!(item_error(&delete, &json!({"status": 404}), "w").is_none());
        let parse = json!({"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [n]. Preview of field's value: 'secret'"}});
        let e = item_error(&versioned, &parse, "w").unwrap();
        assert_eq!(e.fault(), Fault::Record);
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(item_error(
            &versioned,
            &json!({"status": 429, "error": {"type": "es_rejected_execution_exception"}}),
            "w"
        )
        .is_some_and(|e| e.is_retryable()));
        assert!(item_error(&versioned.clone().bookkeeping(), &parse, "w")
            .is_some_and(|e| e.is_retryable()));
        let missing = json!({"status": 404, "error": {"type": "index_not_found_exception", "reason": "no such index"}});
        assert!(item_error(&delete, &missing, "w").is_some_and(|e| e.is_retryable()));
    }
}
