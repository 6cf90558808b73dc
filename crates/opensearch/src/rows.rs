//! Reading the target's documents back as text ([`TargetRows`] for
//! [`OpenSearchTarget`]), for `dms-cdc reconcile`: `_mget` by document id,
//! and keys in id order with `search_after` on [`ID_FIELD`].
//!
//! Values read as reconcile's `same()` compares them: strings as they
//! are, numbers as their literal in `_source` (exactly what was sent),
//! booleans as `true`/`false`, JSON columns as JSON text, binary columns
//! (base64 in `_source`) as lower-case hex. A search sees documents after
//! the index's refresh (1 s by default); `_mget` is real-time.

use dms_cdc_core::dms::Value;
use dms_cdc_core::mapping::TargetTable;
use dms_cdc_core::target::TargetRows;
use serde_json::{json, value::RawValue};
use std::collections::HashMap;

use crate::fault::TargetError;
use crate::index::{
    self, binary_columns, document_id, key_of_document_id, text_of_source, ID_FIELD,
};
use crate::target::{segment, OpenSearchTarget};

#[derive(serde::Deserialize)]
struct RawDoc {
    #[serde(default)]
    found: bool,
    #[serde(rename = "_source", default)]
    source: Option<HashMap<String, Box<RawValue>>>,
}

#[derive(serde::Deserialize)]
struct RawDocs {
    docs: Vec<RawDoc>,
}

impl TargetRows for OpenSearchTarget {
    type Error = TargetError;

    async fn rows_by_key(
        &self,
        table: &TargetTable,
        keys: &[Vec<Value>],
    ) -> Result<Vec<Vec<Option<String>>>, TargetError> {
        let alias = index::names(self.config(), &table.table)
            .data(self.config())
            .to_owned();
        let names = table.column_names();
        let binary = binary_columns(table);
        let what = format!("read {}", table.table);
        let mut rows = Vec::new();
        for chunk in keys.chunks(1000) {
            let ids: Vec<String> = chunk.iter().map(|k| document_id(k)).collect();
            let answer = self
                .client
                .send(
                    http::Method::POST,
                    &format!("/{}/_mget?realtime=true", segment(&alias)),
                    "application/json",
                    json!({"ids": ids}).to_string().into_bytes(),
                    &what,
                )
                .await?;
            if !(200..300).contains(&answer.status) {
                return Err(answer.error(&what, false, false));
            }
            let docs: RawDocs =
                serde_json::from_slice(&answer.body).map_err(|e| TargetError::Answer {
                    what: what.clone(),
                    message: e.to_string(),
                })?;
            for doc in docs.docs.into_iter().filter(|d| d.found) {
                let source = doc.source.unwrap_or_default();
                rows.push(
                    names
                        .iter()
                        .map(|n| text_of_source(source.get(*n).map(|v| &**v), binary.contains(n)))
                        .collect(),
                );
            }
        }
        Ok(rows)
    }

    async fn keys_after(
        &self,
        table: &TargetTable,
        after: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<Vec<String>>, TargetError> {
        let alias = index::names(self.config(), &table.table)
            .data(self.config())
            .to_owned();
        let mut body = json!({
            "size": limit.clamp(1, 10_000),
            "_source": false,
            "docvalue_fields": [ID_FIELD],
            "sort": [{ID_FIELD: "asc"}],
            "query": {"match_all": {}},
        });
        if let Some(after) = after {
            body["search_after"] = json!([index::document_id_of_text(after)]);
        }
        let what = format!("list the keys of {}", table.table);
        let (_, answer) = self
            .json(
                http::Method::POST,
                &format!("/{}/_search", segment(&alias)),
                Some(&body),
                &[],
                &what,
                false,
            )
            .await?;
        let hits = answer["hits"]["hits"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok(hits
            .iter()
            .filter_map(|h| {
                h["sort"][0]
                    .as_str()
                    .map(|id| key_of_document_id(id, table.key.len()))
            })
            .collect())
    }
}

/// Indices have no sequences: nothing to report or raise.
impl dms_cdc_core::target::TargetSequences for OpenSearchTarget {
    type Error = TargetError;

    async fn sequences(&self, _table: &TargetTable) -> Result<Vec<(String, i128)>, TargetError> {
        Ok(Vec::new())
    }

    async fn raise_sequence(
        &self,
        _table: &TargetTable,
        _column: &str,
        _max: i128,
    ) -> Result<(), TargetError> {
        Ok(())
    }
}
