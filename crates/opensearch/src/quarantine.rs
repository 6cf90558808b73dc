//! The quarantine index ([`QuarantineStore`] for [`OpenSearchTarget`]).
//!
//! One document per function, shard and sequence number (the id
//! `<function>|<shard>|<sequence number>`); a record quarantined again
//! counts an attempt (read, then write with `if_seq_no`). The raw payload
//! is kept verbatim when it is UTF-8 (`raw_encoding = "utf8"`), else as
//! base64 (`"base64"`). The numeric `id` operators use is the FNV-1a hash
//! of the document id, cut to 53 bits (exact in any JSON reader): ids are
//! stable across runs; two records share one with a chance of about
//! n^2 / 2^54 (one in 18,000 for a million records), in which case
//! `show` lists both.
//!
//! Writes use `refresh=true`, so a list right after a batch sees them.

use base64::Engine as _;
use dms_cdc_core::position::{SequenceNumber, ShardId};
use dms_cdc_core::quarantine::{Filter, QuarantineStore, Quarantined, State, DISCARDED, RESOLVED};
use dms_cdc_core::target::{
    bounded, Quarantine, QUARANTINE_MESSAGE_LEN, QUARANTINE_OPERATION_LEN, QUARANTINE_TABLE_LEN,
};
use serde_json::{json, Map, Value as Json};

use crate::fault::TargetError;
use crate::index::QUARANTINE_INDEX;
use crate::target::{now_text, segment, OpenSearchTarget};

/// Most rows one list returns.
pub const LIST_LIMIT: usize = 10_000;
const ATTEMPTS: u32 = 8;

/// The numeric id of a quarantine document id (see the module docs).
pub fn numeric_id(doc_id: &str) -> u64 {
    let hash = doc_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash >> 11).max(1)
}

fn text(source: &Map<String, Json>, field: &str) -> Option<String> {
    source.get(field).and_then(Json::as_str).map(str::to_owned)
}

fn from_source(source: &Map<String, Json>) -> Option<Quarantined> {
    let raw = text(source, "raw_record").unwrap_or_default();
    let raw = match text(source, "raw_encoding").as_deref() {
        Some("base64") => base64::engine::general_purpose::STANDARD.decode(raw).ok()?,
        _ => raw.into_bytes(),
    };
    Some(Quarantined {
        id: source.get("id")?.as_u64()?,
        shard_id: ShardId(text(source, "shard_id")?.into()),
        sequence_number: SequenceNumber::parse(&text(source, "sequence_number")?).ok()?,
        table: text(source, "table_name"),
        operation: text(source, "operation"),
        raw,
        class: text(source, "error_class").unwrap_or_default(),
        message: text(source, "error_message").unwrap_or_default(),
        first_seen: text(source, "first_seen").unwrap_or_default(),
        last_seen: text(source, "last_seen").unwrap_or_default(),
        attempts: source.get("attempts").and_then(Json::as_u64).unwrap_or(1) as u32,
        state: State::of(source.get("resolved").and_then(Json::as_i64).unwrap_or(0)),
        resolution: text(source, "resolution"),
    })
}

impl OpenSearchTarget {
    fn quarantine_index(&self) -> String {
        self.bookkeeping_index(QUARANTINE_INDEX)
    }

    /// Stores one quarantined record, or counts another attempt of it.
    pub(crate) async fn store_quarantined(&self, q: &Quarantine) -> Result<(), TargetError> {
        let what = "quarantine";
        let doc_id = format!(
            "{}|{}|{}",
            self.function_name,
            q.shard_id.0,
            q.sequence_number.as_str()
        );
        let index = segment(&self.quarantine_index());
        let id = segment(&doc_id);
        let (raw, encoding) = match std::str::from_utf8(&q.raw) {
            Ok(s) => (s.to_owned(), "utf8"),
            Err(_) => (
                base64::engine::general_purpose::STANDARD.encode(&q.raw),
                "base64",
            ),
        };
        let now = now_text();
        let table = q
            .table
            .as_deref()
            .map(|t| bounded(t, QUARANTINE_TABLE_LEN).to_owned());
        for _ in 0..ATTEMPTS {
            let (_, answer) = self
                .json(
                    http::Method::GET,
                    &format!("/{index}/_doc/{id}"),
                    None,
                    &[404],
                    what,
                    true,
                )
                .await?;
            let (path, doc) = if answer["found"] == true {
                let mut doc = answer["_source"].as_object().cloned().unwrap_or_default();
                let attempts = doc.get("attempts").and_then(Json::as_u64).unwrap_or(1) + 1;
                doc.insert("attempts".into(), json!(attempts));
                doc.insert("last_seen".into(), json!(now));
                doc.insert("error_class".into(), json!(q.class.as_str()));
                doc.insert(
                    "error_message".into(),
                    json!(bounded(&q.message, QUARANTINE_MESSAGE_LEN)),
                );
                (
                    format!(
                        "/{index}/_doc/{id}?refresh=true&if_seq_no={}&if_primary_term={}",
                        answer["_seq_no"], answer["_primary_term"]
                    ),
                    Json::Object(doc),
                )
            } else {
                (
                    format!("/{index}/_create/{id}?refresh=true"),
                    json!({
                        "id": numeric_id(&doc_id),
                        "function_name": self.function_name,
                        "shard_id": q.shard_id.0,
                        "sequence_number": q.sequence_number.as_str(),
                        "sequence_length": q.sequence_number.as_str().len(),
                        "table_name": table,
                        "table_short": table.as_deref().map(|t| t.rsplit('.').next().unwrap_or(t)),
                        "operation": q.operation.as_deref().map(|o| bounded(o, QUARANTINE_OPERATION_LEN)),
                        "raw_record": raw,
                        "raw_encoding": encoding,
                        "error_class": q.class.as_str(),
                        "error_message": bounded(&q.message, QUARANTINE_MESSAGE_LEN),
                        "first_seen": now,
                        "last_seen": now,
                        "attempts": 1,
                        "resolved": 0,
                        "resolution": null,
                    }),
                )
            };
            let (status, _) = self
                .json(http::Method::PUT, &path, Some(&doc), &[409], what, true)
                .await?;
            if status != 409 {
                return Ok(());
            }
        }
        Err(TargetError::Contended {
            shard: q.shard_id.to_string(),
            attempts: ATTEMPTS,
        })
    }

    /// The documents matching `filter` with their seq_no and primary term.
    async fn search_quarantine(
        &self,
        filter: &Filter,
    ) -> Result<Vec<(Json, Quarantined)>, TargetError> {
        let mut must = vec![json!({"term": {"function_name": self.function_name}})];
        match filter.state {
            State::All => {}
            State::Open => must.push(json!({"term": {"resolved": 0}})),
            State::Resolved => must.push(json!({"term": {"resolved": RESOLVED}})),
            State::Discarded => must.push(json!({"term": {"resolved": DISCARDED}})),
        }
        if !filter.ids.is_empty() {
            must.push(json!({"terms": {"id": filter.ids}}));
        }
        if let Some(t) = &filter.table {
            let field = if t.contains('.') {
                "table_name"
            } else {
                "table_short"
            };
            must.push(json!({"term": {field: t}}));
        }
        if let Some(c) = &filter.class {
            must.push(json!({"term": {"error_class": c}}));
        }
        if let Some(s) = &filter.since {
            must.push(json!({"range": {"first_seen": {"gte": s.format("%Y-%m-%d %H:%M:%S%.6f").to_string()}}}));
        }
        let body = json!({
            "size": LIST_LIMIT,
            "seq_no_primary_term": true,
            "query": {"bool": {"filter": must}},
            "sort": [{"shard_id": "asc"}, {"sequence_length": "asc"}, {"sequence_number": "asc"}],
        });
        let what = "read the quarantine";
        let (_, answer) = self
            .json(
                http::Method::POST,
                &format!("/{}/_search", segment(&self.quarantine_index())),
                Some(&body),
                &[],
                what,
                true,
            )
            .await?;
        let hits = answer["hits"]["hits"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        hits.into_iter()
            .map(|hit| {
                let row = hit["_source"]
                    .as_object()
                    .and_then(from_source)
                    .ok_or_else(|| TargetError::Answer {
                        what: what.to_owned(),
                        message: "a quarantine document without its fields".into(),
                    })?;
                Ok((hit, row))
            })
            .collect()
    }

    /// Sets `resolved` and `resolution` of the open row `id`.
    async fn close(&self, id: u64, resolved: i64, resolution: String) -> Result<bool, TargetError> {
        let filter = Filter {
            ids: vec![id],
            state: State::Open,
            ..Filter::default()
        };
        let mut changed = false;
        for (hit, _) in self.search_quarantine(&filter).await? {
            let mut doc = hit["_source"].as_object().cloned().unwrap_or_default();
            doc.insert("resolved".into(), json!(resolved));
            doc.insert("resolution".into(), json!(bounded(&resolution, 200)));
            doc.insert("last_seen".into(), json!(now_text()));
            let path = format!(
                "/{}/_doc/{}?refresh=true&if_seq_no={}&if_primary_term={}",
                segment(&self.quarantine_index()),
                segment(hit["_id"].as_str().unwrap_or_default()),
                hit["_seq_no"],
                hit["_primary_term"]
            );
            let (status, _) = self
                .json(
                    http::Method::PUT,
                    &path,
                    Some(&Json::Object(doc)),
                    &[409],
                    "close a quarantined record",
                    true,
                )
                .await?;
            changed |= status != 409;
        }
        Ok(changed)
    }
}

impl QuarantineStore for OpenSearchTarget {
    type Error = TargetError;

    async fn open(&self) -> Result<(), TargetError> {
        OpenSearchTarget::open(self).await
    }

    async fn quarantined(&self, filter: &Filter) -> Result<Vec<Quarantined>, TargetError> {
        Ok(self
            .search_quarantine(filter)
            .await?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    async fn discard(&self, id: u64, reason: &str) -> Result<bool, TargetError> {
        let at = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S");
        self.close(id, DISCARDED, format!("discarded {at} UTC: {reason}"))
            .await
    }

    async fn mark_resolved(&self, id: u64) -> Result<bool, TargetError> {
        let at = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S");
        self.close(id, RESOLVED, format!("redriven {at} UTC")).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ids_are_stable_and_exact_in_json() {
        let a = numeric_id("f|shardId-000000000000|1");
        assert_eq!(a, numeric_id("f|shardId-000000000000|1"));
        assert_ne!(a, numeric_id("f|shardId-000000000000|2"));
        assert!(a < 1 << 53 && a > 0);
    }
}
