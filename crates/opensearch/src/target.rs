//! Writing an OpenSearch target: `_bulk` index and delete actions with
//! external versions, tombstones, soft-delete marks, then the quarantined
//! records and the shard's checkpoint (see the crate docs for why the
//! order makes the writes durable without a transaction).

use std::collections::HashMap;

use dms_cdc_core::dms::Value;
use dms_cdc_core::mapping::{toml_scalar, DeletePolicy, Mapping, TargetTable};
use dms_cdc_core::position::{SequenceNumber, ShardId};
use dms_cdc_core::target::{Quarantine, TableWrites};
use serde_json::{json, Value as Json};

use crate::bulk::{self, Action};
use crate::connection::{Client, Config};
use crate::fault::TargetError;
use crate::index::{
    self, document_id, source, CHECKPOINT_INDEX, QUARANTINE_INDEX, TOMBSTONE_INDEX,
};
use crate::version::external;

/// How many times the checkpoint's read-compare-write is tried when its
/// document changes concurrently.
pub const CHECKPOINT_ATTEMPTS: u32 = 8;

/// An OpenSearch target, writing as one function.
#[derive(Debug, Clone)]
pub struct OpenSearchTarget {
    pub(crate) client: Client,
    pub(crate) function_name: String,
}

/// A document as `_mget` or `GET _doc` returns it.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Found {
    #[serde(default)]
    pub(crate) found: bool,
    #[serde(rename = "_id", default)]
    pub(crate) id: String,
    #[serde(rename = "_seq_no", default)]
    pub(crate) seq_no: i64,
    #[serde(rename = "_primary_term", default)]
    pub(crate) primary_term: i64,
    #[serde(rename = "_source", default)]
    pub(crate) source: Option<serde_json::Map<String, Json>>,
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` in UTC.
pub(crate) fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

/// A path segment (an index name or a document id), percent-encoded.
pub(crate) fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl OpenSearchTarget {
    /// A target for `config`, writing as `function_name`.
    pub fn new(config: Config, function_name: impl Into<String>) -> Result<Self, TargetError> {
        Ok(OpenSearchTarget {
            client: Client::new(config)?,
            function_name: function_name.into(),
        })
    }

    /// The HTTP client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        self.client.config()
    }

    pub(crate) fn bookkeeping_index(&self, index: &str) -> String {
        index::bookkeeping(self.config(), index)
    }

    /// Sends a JSON request and returns the answer's JSON; statuses other
    /// than 2xx (and those in `accept`) are errors.
    pub(crate) async fn json(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&Json>,
        accept: &[u16],
        what: &str,
        bookkeeping: bool,
    ) -> Result<(u16, Json), TargetError> {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let answer = self
            .client
            .send(method, path, "application/json", body, what)
            .await?;
        if (200..300).contains(&answer.status) || accept.contains(&answer.status) {
            Ok((answer.status, answer.json()))
        } else {
            Err(answer.error(what, false, bookkeeping))
        }
    }

    /// Creates `name` with `body` unless it (or an alias of that name) exists.
    async fn create_index(&self, name: &str, exists: &str, body: &Json) -> Result<(), TargetError> {
        let what = format!("create index {name}");
        let (status, _) = self
            .json(
                http::Method::HEAD,
                &format!("/{}", segment(exists)),
                None,
                &[404],
                &what,
                true,
            )
            .await?;
        if status != 404 {
            return Ok(());
        }
        let (status, answer) = self
            .json(
                http::Method::PUT,
                &format!("/{}", segment(name)),
                Some(body),
                &[400],
                &what,
                true,
            )
            .await?;
        if status == 400 && answer["error"]["type"] != "resource_already_exists_exception" {
            let (error_type, reason) = crate::connection::error_fields(&answer["error"]);
            return Err(TargetError::Status {
                what,
                status,
                error_type,
                reason,
                single: false,
                bookkeeping: true,
            });
        }
        Ok(())
    }

    /// Creates the bookkeeping indices (checkpoint, quarantine, tombstones) if missing.
    pub async fn open(&self) -> Result<(), TargetError> {
        for index in [CHECKPOINT_INDEX, QUARANTINE_INDEX, TOMBSTONE_INDEX] {
            let name = self.bookkeeping_index(index);
            self.create_index(&name, &name, &index::bookkeeping_body(self.config(), index))
                .await?;
        }
        Ok(())
    }

    /// Creates the bookkeeping indices and, for every target table of
    /// `mapping`, its concrete index with the alias, if the alias is missing.
    pub async fn prepare(&self, mapping: &Mapping) -> Result<(), TargetError> {
        self.open().await?;
        for table in &mapping.targets {
            let names = index::names(self.config(), &table.table);
            self.create_index(
                &names.concrete,
                names.data(self.config()),
                &index::index_body(self.config(), table),
            )
            .await?;
        }
        Ok(())
    }

    fn checkpoint_id(&self, shard: &ShardId) -> String {
        format!("{}|{}", self.function_name, shard.0)
    }

    async fn checkpoint_doc(
        &self,
        shard: &ShardId,
    ) -> Result<Option<(Found, SequenceNumber)>, TargetError> {
        let what = format!("read the checkpoint of shard {shard}");
        let path = format!(
            "/{}/_doc/{}",
            segment(&self.bookkeeping_index(CHECKPOINT_INDEX)),
            segment(&self.checkpoint_id(shard))
        );
        let (_, answer) = self
            .json(http::Method::GET, &path, None, &[404], &what, true)
            .await?;
        if answer["error"]["type"] == "index_not_found_exception" {
            return Err(TargetError::Status {
                what,
                status: 404,
                error_type: "index_not_found_exception".into(),
                reason: "the checkpoint index is missing: run prepare".into(),
                single: false,
                bookkeeping: true,
            });
        }
        let found: Found = serde_json::from_value(answer).map_err(|e| TargetError::Answer {
            what: what.clone(),
            message: e.to_string(),
        })?;
        if !found.found {
            return Ok(None);
        }
        let seq = found
            .source
            .as_ref()
            .and_then(|s| s.get("sequence_number"))
            .and_then(Json::as_str)
            .and_then(|s| SequenceNumber::parse(s).ok())
            .ok_or_else(|| TargetError::Answer {
                what,
                message: "a checkpoint without a sequence number".into(),
            })?;
        Ok(Some((found, seq)))
    }

    /// The last applied sequence number of a shard.
    pub async fn checkpoint(&self, shard: &ShardId) -> Result<Option<SequenceNumber>, TargetError> {
        Ok(self.checkpoint_doc(shard).await?.map(|(_, s)| s))
    }

    /// Moves the shard's checkpoint forward to `seq` (never back): read,
    /// compare (by length, then digits: [`SequenceNumber`]'s order), write
    /// with `if_seq_no`/`if_primary_term` (or create), and on a concurrent
    /// change read again, at most [`CHECKPOINT_ATTEMPTS`] times.
    pub async fn advance(&self, shard: &ShardId, seq: &SequenceNumber) -> Result<(), TargetError> {
        let what = format!("write the checkpoint of shard {shard}");
        let index = segment(&self.bookkeeping_index(CHECKPOINT_INDEX));
        let id = segment(&self.checkpoint_id(shard));
        let doc = json!({
            "function_name": self.function_name,
            "shard_id": shard.0,
            "sequence_number": seq.as_str(),
            "updated_at": now_text(),
        });
        for _ in 0..CHECKPOINT_ATTEMPTS {
            let path = match self.checkpoint_doc(shard).await? {
                Some((_, stored)) if stored >= *seq => return Ok(()),
                Some((found, _)) => format!(
                    "/{index}/_doc/{id}?if_seq_no={}&if_primary_term={}",
                    found.seq_no, found.primary_term
                ),
                None => format!("/{index}/_create/{id}"),
            };
            let (status, _) = self
                .json(http::Method::PUT, &path, Some(&doc), &[409], &what, true)
                .await?;
            if status != 409 {
                return Ok(());
            }
        }
        Err(TargetError::Contended {
            shard: shard.to_string(),
            attempts: CHECKPOINT_ATTEMPTS,
        })
    }

    /// Starts a batch: writes go out as [`WriteTx::write`] is called.
    pub fn begin(&self) -> WriteTx {
        WriteTx {
            target: self.clone(),
        }
    }

    /// Fetches documents by id from `index` (`_mget`), found ones only.
    pub(crate) async fn mget(
        &self,
        index: &str,
        ids: &[String],
        what: &str,
        bookkeeping: bool,
    ) -> Result<Vec<Found>, TargetError> {
        let mut found = Vec::new();
        for chunk in ids.chunks(1000) {
            let body = json!({"ids": chunk});
            let (_, answer) = self
                .json(
                    http::Method::POST,
                    &format!("/{}/_mget?realtime=true", segment(index)),
                    Some(&body),
                    &[],
                    what,
                    bookkeeping,
                )
                .await?;
            let docs: Vec<Found> = serde_json::from_value(answer["docs"].clone()).map_err(|e| {
                TargetError::Answer {
                    what: what.to_owned(),
                    message: e.to_string(),
                }
            })?;
            found.extend(docs.into_iter().filter(|d| d.found));
        }
        Ok(found)
    }
}

/// The id of a tombstone: target table and document id (hashed when long:
/// ids are at most 512 bytes).
pub fn tombstone_id(table: &str, doc_id: &str) -> String {
    let id = format!("{table}|{doc_id}");
    if id.len() <= 500 {
        return id;
    }
    let hash = doc_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{table}|{}|{hash:016x}", doc_id.len())
}

/// One batch's writes. OpenSearch has no transaction: each `write` is
/// acknowledged by the server when it returns, and `finish` stores the
/// quarantined records and then moves the checkpoint (see the crate docs).
/// Dropping it without `finish` leaves the checkpoint where it was, so the
/// batch is delivered again and its writes repeated (they are idempotent).
#[derive(Debug)]
pub struct WriteTx {
    target: OpenSearchTarget,
}

fn version_of(table: &TargetTable, text: &str) -> Result<i64, TargetError> {
    external(text).map_err(|source| TargetError::Version {
        table: table.table.clone(),
        source,
    })
}

impl WriteTx {
    /// Writes one table's upserts, deletes, marks and tombstones.
    pub async fn write(
        &mut self,
        table: &TargetTable,
        writes: TableWrites,
    ) -> Result<(), TargetError> {
        let target = &self.target;
        let alias = index::names(target.config(), &table.table)
            .data(target.config())
            .to_owned();
        let tombstones_index = target.bookkeeping_index(TOMBSTONE_INDEX);
        let names = table.column_names();
        let key_positions: Vec<usize> = table
            .key
            .iter()
            .filter_map(|k| names.iter().position(|n| n == k))
            .collect();
        let key_of = |row: &[Value]| -> Vec<Value> {
            key_positions
                .iter()
                .map(|p| row.get(*p).cloned().unwrap_or(Value::Null))
                .collect()
        };
        let mut upserts = writes.upserts;
        if table.version.is_some() && !upserts.is_empty() {
            self.drop_deleted(table, &tombstones_index, &mut upserts, &key_of)
                .await?;
        }
        let mut actions = Vec::with_capacity(upserts.len() + writes.deletes.len());
        for row in &upserts {
            let id = document_id(&key_of(row));
            let version = match (&table.version, row.last()) {
                (Some(_), Some(Value::Text(v))) => Some(version_of(table, v)?),
                _ => None,
            };
            actions.push(Action::index(
                &alias,
                &id,
                version,
                &source(&names, row, &id),
            ));
        }
        let deleted: HashMap<String, &str> = writes
            .tombstones
            .iter()
            .map(|(key, v)| (document_id(key), v.as_str()))
            .collect();
        match &table.delete {
            DeletePolicy::Hard => {
                for key in &writes.deletes {
                    let id = document_id(key);
                    let version = match deleted.get(&id) {
                        Some(v) => Some(version_of(table, v)?),
                        None => None,
                    };
                    actions.push(Action::delete(&alias, &id, version));
                }
            }
            DeletePolicy::Soft { column, value } => {
                let mark = toml_scalar(value).unwrap_or(Value::Null);
                let mut marks: Vec<(Vec<Value>, Option<&str>)> =
                    writes.deletes.iter().map(|k| (k.clone(), None)).collect();
                marks.extend(
                    writes
                        .tombstones
                        .iter()
                        .map(|(k, v)| (k.clone(), Some(v.as_str()))),
                );
                actions.extend(self.marks(table, &alias, column, &mark, &marks).await?);
            }
        }
        let deleted_at = now_text();
        for (key, version) in &writes.tombstones {
            let id = document_id(key);
            let doc = json!({
                "target_table": table.table,
                "row_key": id,
                "version": version,
                "deleted_at": deleted_at,
            });
            actions.push(
                Action::index(
                    &tombstones_index,
                    &tombstone_id(&table.table, &id),
                    Some(version_of(table, version)?),
                    &doc.to_string(),
                )
                .bookkeeping(),
            );
        }
        bulk::send(&target.client, &actions, &format!("write {}", table.table)).await
    }

    /// Drops the upserts older than a delete of their document (a
    /// tombstone with a greater version text), as the SQL targets do.
    async fn drop_deleted(
        &self,
        table: &TargetTable,
        tombstones_index: &str,
        upserts: &mut Vec<Vec<Value>>,
        key_of: &impl Fn(&[Value]) -> Vec<Value>,
    ) -> Result<(), TargetError> {
        let ids: Vec<String> = upserts
            .iter()
            .map(|row| tombstone_id(&table.table, &document_id(&key_of(row))))
            .collect();
        let found = self
            .target
            .mget(
                tombstones_index,
                &ids,
                &format!("tombstones of {}", table.table),
                true,
            )
            .await?;
        if found.is_empty() {
            return Ok(());
        }
        let deleted: HashMap<String, String> = found
            .into_iter()
            .filter_map(|f| {
                let v = f.source.as_ref()?.get("version")?.as_str()?.to_owned();
                Some((f.id, v))
            })
            .collect();
        let mut keep =
            ids.iter()
                .zip(upserts.iter())
                .map(|(id, row)| match (deleted.get(id), row.last()) {
                    (Some(tomb), Some(Value::Text(v))) => v.as_str() >= tomb.as_str(),
                    _ => true,
                });
        let keep: Vec<bool> = keep.by_ref().collect();
        let mut keep = keep.into_iter();
        upserts.retain(|_| keep.next().unwrap_or(true));
        Ok(())
    }

    /// Soft-delete marks: the existing documents with `column` set to the
    /// mark (and, for a versioned mark, the delete's version, unless the
    /// document is newer). A missing document gets no mark (its tombstone
    /// keeps an older upsert from creating it live).
    async fn marks(
        &self,
        table: &TargetTable,
        alias: &str,
        column: &str,
        mark: &Value,
        marks: &[(Vec<Value>, Option<&str>)],
    ) -> Result<Vec<Action>, TargetError> {
        if marks.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = marks.iter().map(|(k, _)| document_id(k)).collect();
        let found = self
            .target
            .mget(
                alias,
                &ids,
                &format!("read {} to mark deleted", table.table),
                false,
            )
            .await?;
        let found: HashMap<&str, &Found> = found.iter().map(|f| (f.id.as_str(), f)).collect();
        let mut mark_json = String::new();
        dms_cdc_core::mapping::render_json(mark, &mut mark_json);
        let mark_json: Json = serde_json::from_str(&mark_json).unwrap_or(Json::Null);
        let mut actions = Vec::new();
        for (id, (_, version)) in ids.iter().zip(marks) {
            let Some(doc) = found.get(id.as_str()) else {
                continue;
            };
            let mut source = doc.source.clone().unwrap_or_default();
            source.insert(column.to_owned(), mark_json.clone());
            match (version, &table.version) {
                (Some(v), Some(vcol)) => {
                    let stored = source.get(vcol).and_then(Json::as_str).unwrap_or("");
                    if stored > *v {
                        continue;
                    }
                    source.insert(vcol.clone(), Json::String((*v).to_owned()));
                    let text = Json::Object(source).to_string();
                    actions.push(Action::index(alias, id, Some(version_of(table, v)?), &text));
                }
                _ => {
                    let text = Json::Object(source).to_string();
                    actions.push(Action::index_if(
                        alias,
                        id,
                        (doc.seq_no, doc.primary_term),
                        &text,
                    ));
                }
            }
        }
        Ok(actions)
    }

    /// Stores the quarantined records, then moves the checkpoint forward.
    pub async fn finish(
        self,
        quarantine: &[Quarantine],
        checkpoint: Option<(&ShardId, &SequenceNumber)>,
    ) -> Result<(), TargetError> {
        for q in quarantine {
            self.target.store_quarantined(q).await?;
        }
        if let Some((shard, seq)) = checkpoint {
            self.target.advance(shard, seq).await?;
        }
        Ok(())
    }
}

impl dms_cdc_core::target::Target for OpenSearchTarget {
    type Error = TargetError;
    type Transaction = WriteTx;

    async fn prepare(&self, mapping: &Mapping) -> Result<(), TargetError> {
        OpenSearchTarget::prepare(self, mapping).await
    }

    async fn checkpoint(&self, shard: &ShardId) -> Result<Option<SequenceNumber>, TargetError> {
        OpenSearchTarget::checkpoint(self, shard).await
    }

    async fn begin(&self) -> Result<WriteTx, TargetError> {
        Ok(OpenSearchTarget::begin(self))
    }
}

impl dms_cdc_core::target::TargetTransaction for WriteTx {
    type Error = TargetError;

    async fn write(&mut self, table: &TargetTable, writes: TableWrites) -> Result<(), TargetError> {
        WriteTx::write(self, table, writes).await
    }

    async fn finish(
        self,
        quarantine: &[Quarantine],
        checkpoint: Option<(&ShardId, &SequenceNumber)>,
    ) -> Result<(), TargetError> {
        WriteTx::finish(self, quarantine, checkpoint).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstone_ids_fit_and_differ() {
        assert_eq!(tombstone_id("t", "7"), "t|7");
        let a = tombstone_id("t", &"x".repeat(600));
        let b = tombstone_id("t", &format!("{}y", "x".repeat(599)));
        assert!(a.len() <= 512 && a != b);
        assert_eq!(segment("a|b c/d"), "a%7Cb%20c%2Fd");
    }
}
