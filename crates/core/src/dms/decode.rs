//! Reading a DMS document: the machinery behind [`super::decode_payload`].
//!
//! **Scan.** The usual document is read by a direct, strict scan of its
//! bytes (`decode/scan.rs`): keys matched as bytes, metadata values and
//! column names taken straight from the text, each column value classified
//! from its text. It decides only documents it reads exactly as the fast
//! path below reads them, and leaves the rest to it.
//!
//! **Fast path.** The document is read once, by serde visitors over the
//! payload bytes: field names are matched without being copied, `metadata`
//! values are taken straight from the parser (borrowed from the payload
//! unless they hold escapes; integers written back as they were written),
//! column names go straight into inline [`ColumnName`]s, and each column
//! value is classified from the parser's slice of it
//! ([`super::classify_parsed`]) instead of being parsed a second time. It
//! accepts a document only when the document is certain to decode exactly as
//! the exact path below decodes it: the fast path is strict (any parse
//! error, a `metadata` or image that is not an object, a duplicate metadata
//! field) and gives up instead of guessing.
//!
//! **Exact path.** A document the fast path gives up on is read the
//! field-by-field way: first the top level as raw JSON text per field (the
//! last of duplicate fields wins), then `metadata` and the images each on
//! their own. It is slower, but it tells precisely what is wrong, with
//! positions inside the field that is wrong. Malformed records are rare
//! (they are quarantined), so they can afford it.
//!
//! The exact path takes every value as a [`RawValue`] (never skipped with
//! `IgnoredAny`), because only `RawValue` makes the parser check that the
//! bytes inside strings are UTF-8: unknown fields are checked like the rest.
//! The fast path checks the whole document's UTF-8 once before it parses,
//! so it skips what it does not keep with `IgnoredAny`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use compact_str::{CompactString, ToCompactString};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use smallvec::SmallVec;

use super::{
    classify_parsed, ColumnName, ControlOperation, ControlRecord, DataChange, DecodeError,
    DecodeErrorKind, DmsRecord, Metadata, Operation, Payload, Row, TableName, Value,
};
use crate::position::{SequenceNumber, ShardId};

mod scan;

/// Decodes a DMS JSON document (see [`super::decode_payload`]).
pub(super) fn decode(
    shard_id: &ShardId,
    sequence_number: &SequenceNumber,
    payload: &[u8],
    before_field: &str,
) -> Result<DmsRecord, DecodeError> {
    // Filled in place: the parts are large, and moves of them are copies.
    let mut parts = Parts::default();
    if scan::scan(payload, before_field, &mut parts).is_none() {
        parts = serde_parts(shard_id, sequence_number, payload, before_field)?;
    }
    finish(&mut parts, shard_id, sequence_number, before_field)
}

/// The document read by the fast path or, when it gives up, the exact path.
fn serde_parts<'a>(
    shard_id: &ShardId,
    sequence_number: &SequenceNumber,
    payload: &'a [u8],
    before_field: &str,
) -> Result<Parts<'a>, DecodeError> {
    match fast(payload, before_field) {
        Some(parts) => Ok(parts),
        None => exact(payload, before_field).map_err(|kind| DecodeError {
            shard_id: shard_id.clone(),
            sequence_number: sequence_number.clone(),
            table: None,
            kind,
        }),
    }
}

/// The record the scan alone gives; `None` where it does not decide.
#[cfg(test)]
pub(super) fn decode_scanned(
    shard_id: &ShardId,
    sequence_number: &SequenceNumber,
    payload: &[u8],
    before_field: &str,
) -> Option<Result<DmsRecord, DecodeError>> {
    let mut parts = Parts::default();
    scan::scan(payload, before_field, &mut parts)?;
    Some(finish(&mut parts, shard_id, sequence_number, before_field))
}

/// The record the serde reading alone gives (the fast path, else the exact
/// path): what [`decode`] gives whatever the scan does.
#[cfg(test)]
pub(super) fn decode_unscanned(
    shard_id: &ShardId,
    sequence_number: &SequenceNumber,
    payload: &[u8],
    before_field: &str,
) -> Result<DmsRecord, DecodeError> {
    let mut parts = serde_parts(shard_id, sequence_number, payload, before_field)?;
    finish(&mut parts, shard_id, sequence_number, before_field)
}

/// What a document says, read but not yet checked.
#[derive(Default)]
struct Parts<'a> {
    /// The last `metadata` field.
    metadata: Option<MetaFields<'a>>,
    /// The last `data` field, read as an image.
    data: Option<Result<Row, String>>,
    /// The last before image, read as an image; `None` when absent or `null`.
    before: Option<Result<Row, String>>,
    /// The last `control` field, as its JSON text.
    control: Option<&'a str>,
}

/// The one-pass read; `None` when the document needs the exact path.
fn fast<'a>(payload: &'a [u8], before_field: &str) -> Option<Parts<'a>> {
    // A before image named like another field is read twice: exact path.
    if roles(before_field.as_bytes(), before_field) != BEFORE {
        return None;
    }
    // UTF-8 is checked once for the whole document (a document that is not
    // UTF-8 is refused by the exact path, with the position the reference
    // gives); the parser then checks no string or raw value again.
    let text = std::str::from_utf8(payload).ok()?;
    let mut de = serde_json::Deserializer::from_str(text);
    let parts = de.deserialize_map(FastDocument { before_field }).ok()?;
    de.end().ok()?;
    Some(parts)
}

/// The field-by-field read; errors name what is wrong precisely.
fn exact<'a>(payload: &'a [u8], before_field: &str) -> Result<Parts<'a>, DecodeErrorKind> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let raw = de
        .deserialize_map(RawDocument { before_field })
        .and_then(|raw| de.end().map(|()| raw))
        .map_err(|e| DecodeErrorKind::Json(e.to_string()))?;
    let meta = raw.metadata.ok_or(DecodeErrorKind::MissingMetadata)?;
    if !meta.get().starts_with('{') {
        return Err(DecodeErrorKind::Metadata("not an object".to_owned()));
    }
    let metadata = read_str(meta.get(), MetaSeed { fast: false })
        .map_err(|e| DecodeErrorKind::Metadata(e.to_string()))?;
    Ok(Parts {
        metadata: Some(metadata),
        data: raw.data.map(read_row),
        before: raw.before.filter(|raw| raw.get() != "null").map(read_row),
        control: raw.control.map(RawValue::get),
    })
}

/// Checks what the document says and builds the record (taking what it
/// keeps out of `parts`).
fn finish(
    parts: &mut Parts<'_>,
    shard_id: &ShardId,
    sequence_number: &SequenceNumber,
    before_field: &str,
) -> Result<DmsRecord, DecodeError> {
    let fail = |table: Option<Arc<TableName>>, kind| DecodeError {
        shard_id: shard_id.clone(),
        sequence_number: sequence_number.clone(),
        table: table.map(|t| Box::new(Arc::unwrap_or_clone(t))),
        kind,
    };
    let unknown_operation = |table, record_type: &str, operation: &str| {
        fail(
            table,
            DecodeErrorKind::UnknownOperation {
                record_type: record_type.to_owned(),
                operation: operation.to_owned(),
            },
        )
    };

    let Some(MetaFields(fields)) = &mut parts.metadata else {
        return Err(fail(None, DecodeErrorKind::MissingMetadata));
    };
    // In `META_FIELDS` order.
    let [timestamp, record_type, operation, partition_key_type, partition_key_value, schema_name, table_name, transaction_id, commit_timestamp, stream_position, transaction_record_id, prev_transaction_id, prev_transaction_record_id] =
        fields;
    let table = match (schema_name.as_ref(), table_name.as_ref()) {
        (Some(schema), Some(name)) if !schema.as_str().is_empty() || !name.as_str().is_empty() => {
            Some(TableName::shared(schema.as_str(), name.as_str()))
        }
        _ => None,
    };
    let Some(record_type) = record_type else {
        return Err(fail(table, DecodeErrorKind::MissingField("record-type")));
    };
    let Some(operation) = operation else {
        return Err(fail(table, DecodeErrorKind::MissingField("operation")));
    };

    let (record_type, operation) = (record_type.as_str(), operation.as_str());
    let payload = match record_type {
        "data" => {
            let Some(operation) = data_operation(operation) else {
                return Err(unknown_operation(table, record_type, operation));
            };
            data_payload(
                operation,
                table,
                parts.data.take(),
                parts.before.take(),
                before_field,
            )
            .map_err(|(table, kind)| fail(table, kind))?
        }
        "control" => {
            let Some(op) = ControlOperation::parse(operation) else {
                return Err(unknown_operation(table, record_type, operation));
            };
            control_payload(op, table.map(Arc::unwrap_or_clone), parts.control)
        }
        _ => {
            return Err(fail(
                table,
                DecodeErrorKind::UnknownRecordType(record_type.to_owned()),
            ))
        }
    };
    fn text<'b>(field: &'b Option<MetaText<'_>>) -> Option<&'b str> {
        field.as_ref().map(MetaText::as_str)
    }
    let metadata = Metadata::from_fields([
        text(timestamp),
        text(partition_key_type),
        text(partition_key_value),
        text(transaction_id),
        text(commit_timestamp),
        text(stream_position),
        text(transaction_record_id),
        text(prev_transaction_id),
        text(prev_transaction_record_id),
    ]);
    Ok(DmsRecord {
        shard_id: shard_id.clone(),
        sequence_number: sequence_number.clone(),
        metadata,
        payload,
    })
}

/// The operation of a data record; `None` for one DMS does not send.
#[inline]
fn data_operation(operation: &str) -> Option<Operation> {
    Some(match operation {
        "load" => Operation::Load,
        "insert" => Operation::Insert,
        "update" => Operation::Update,
        "delete" => Operation::Delete,
        _ => return None,
    })
}

/// A data record's row change, from its images. The error is the table (if
/// known) and what is wrong; the caller adds the record's position.
#[inline]
fn data_payload(
    operation: Operation,
    table: Option<Arc<TableName>>,
    data: Option<Result<Row, String>>,
    before: Option<Result<Row, String>>,
    before_field: &str,
) -> Result<Payload, (Option<Arc<TableName>>, DecodeErrorKind)> {
    let Some(table) = table else {
        return Err((
            None,
            DecodeErrorKind::MissingField("schema-name/table-name"),
        ));
    };
    let image_error = |table, field: &str, reason| {
        (
            Some(table),
            DecodeErrorKind::Image {
                field: field.to_owned(),
                reason,
            },
        )
    };
    let after = match data {
        Some(Ok(row)) => row,
        Some(Err(reason)) => return Err(image_error(table, "data", reason)),
        None => return Err((Some(table), DecodeErrorKind::MissingData)),
    };
    let before = match before {
        None => None,
        Some(Ok(row)) => Some(row),
        Some(Err(reason)) => return Err(image_error(table, before_field, reason)),
    };
    Ok(Payload::Data(DataChange {
        operation,
        table,
        after,
        before,
    }))
}

/// A control record and its `control` detail (`null` when absent).
#[inline]
fn control_payload(
    operation: ControlOperation,
    table: Option<TableName>,
    control: Option<&str>,
) -> Payload {
    let detail = control
        .map(|text| serde_json::from_str(text).unwrap_or(serde_json::Value::Null))
        .unwrap_or(serde_json::Value::Null);
    Payload::Control(ControlRecord {
        operation,
        table,
        detail,
    })
}

/// Runs `seed` over a whole JSON text, as `serde_json::from_str` does.
fn read_str<'a, S: DeserializeSeed<'a>>(text: &'a str, seed: S) -> serde_json::Result<S::Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Reads an image on its own (exact path).
fn read_row(raw: &RawValue) -> Result<Row, String> {
    read_str(raw.get(), RowSeed)
        .map_err(|e| e.to_string())
        .and_then(|row| row)
}

// Roles of a top-level field (a name may have several when the before image
// is named like another field).
const METADATA: u8 = 1;
const DATA: u8 = 2;
const BEFORE: u8 = 4;
const CONTROL: u8 = 8;

fn roles(name: &[u8], before_field: &str) -> u8 {
    let role = match name {
        b"metadata" => METADATA,
        b"data" => DATA,
        b"control" => CONTROL,
        _ => 0,
    };
    if name == before_field.as_bytes() {
        role | BEFORE
    } else {
        role
    }
}

/// A map key, handed to a function without being copied (borrowed from the
/// payload, or from the parser's scratch space when it holds escapes).
struct Key<F>(F);

impl<'de, T, F: FnOnce(&str) -> T> DeserializeSeed<'de> for Key<F> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, T, F: FnOnce(&str) -> T> Visitor<'de> for Key<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Ok((self.0)(v))
    }
}

/// The top level, fast path.
struct FastDocument<'o> {
    before_field: &'o str,
}

impl<'de> Visitor<'de> for FastDocument<'_> {
    type Value = Parts<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parts<'de>, A::Error> {
        let before_field = self.before_field;
        let mut parts = Parts::default();
        while let Some(role) =
            map.next_key_seed(Key(|name: &str| roles(name.as_bytes(), before_field)))?
        {
            match role {
                0 => {
                    map.next_value::<de::IgnoredAny>()?;
                }
                METADATA => parts.metadata = Some(map.next_value_seed(MetaSeed { fast: true })?),
                DATA => parts.data = Some(map.next_value_seed(RowSeed)?),
                BEFORE => parts.before = map.next_value_seed(OptionalRowSeed)?,
                CONTROL => parts.control = Some(map.next_value::<&RawValue>()?.get()),
                _ => return Err(de::Error::custom("a field with two roles")),
            }
        }
        Ok(parts)
    }
}

/// The top level, exact path: raw text per field, the last of duplicates wins.
struct RawDocument<'o> {
    before_field: &'o str,
}

#[derive(Default)]
struct RawParts<'a> {
    metadata: Option<&'a RawValue>,
    data: Option<&'a RawValue>,
    before: Option<&'a RawValue>,
    control: Option<&'a RawValue>,
}

impl<'de> Visitor<'de> for RawDocument<'_> {
    type Value = RawParts<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawParts<'de>, A::Error> {
        let before_field = self.before_field;
        let mut parts = RawParts::default();
        while let Some(role) =
            map.next_key_seed(Key(|name: &str| roles(name.as_bytes(), before_field)))?
        {
            let raw: &'de RawValue = map.next_value()?;
            for (bit, slot) in [
                (METADATA, &mut parts.metadata),
                (DATA, &mut parts.data),
                (BEFORE, &mut parts.before),
                (CONTROL, &mut parts.control),
            ] {
                if role & bit != 0 {
                    *slot = Some(raw);
                }
            }
        }
        Ok(parts)
    }
}

/// Names of the metadata fields that are read, in [`MetaFields`] order.
const META_FIELDS: [&str; 13] = [
    "timestamp",
    "record-type",
    "operation",
    "partition-key-type",
    "partition-key-value",
    "schema-name",
    "table-name",
    "transaction-id",
    "commit-timestamp",
    "stream-position",
    "transaction-record-id",
    "prev-transaction-id",
    "prev-transaction-record-id",
];

/// Index of a metadata field in [`META_FIELDS`] (by length first: at most
/// two names share one).
fn meta_field(name: &[u8]) -> Option<usize> {
    Some(match name.len() {
        9 if name == b"timestamp" => 0,
        11 if name == b"record-type" => 1,
        9 if name == b"operation" => 2,
        18 if name == b"partition-key-type" => 3,
        19 if name == b"partition-key-value" => 4,
        11 if name == b"schema-name" => 5,
        10 if name == b"table-name" => 6,
        14 if name == b"transaction-id" => 7,
        16 if name == b"commit-timestamp" => 8,
        15 if name == b"stream-position" => 9,
        21 if name == b"transaction-record-id" => 10,
        19 if name == b"prev-transaction-id" => 11,
        26 if name == b"prev-transaction-record-id" => 12,
        _ => return None,
    })
}

/// The metadata fields as text ([`scalar`]), borrowed from the document.
#[derive(Default)]
struct MetaFields<'a>([Option<MetaText<'a>>; META_FIELDS.len()]);

/// A metadata value as text: borrowed from the document, or made (a string
/// with escapes, an integer written back as it was written).
enum MetaText<'a> {
    Borrowed(&'a str),
    Owned(CompactString),
}

impl<'a> MetaText<'a> {
    fn as_str(&self) -> &str {
        match self {
            MetaText::Borrowed(text) => text,
            MetaText::Owned(text) => text,
        }
    }
}

impl<'a> From<Cow<'a, str>> for MetaText<'a> {
    fn from(text: Cow<'a, str>) -> Self {
        match text {
            Cow::Borrowed(text) => MetaText::Borrowed(text),
            Cow::Owned(text) => MetaText::Owned(text.into()),
        }
    }
}

/// Reads the `metadata` object. A field given twice is an error (whatever
/// its values); unknown fields are ignored.
///
/// The exact path (`fast: false`) takes every value as raw JSON text (so the
/// parser checks the UTF-8 of unknown fields too) and reads the fields'
/// values from it ([`scalar`]). The fast path (`fast: true`) takes each
/// value straight from the parser (a string without escapes borrowed, an
/// integer written back as it was written), no raw text per field, and
/// skips unknown fields: anything [`scalar`] would read differently from
/// its raw text (a number with a fraction or exponent, an integer beyond 64
/// bits, an object or array) fails, so the exact path reads the document.
struct MetaSeed {
    fast: bool,
}

impl<'de> DeserializeSeed<'de> for MetaSeed {
    type Value = MetaFields<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MetaSeed {
    type Value = MetaFields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of metadata fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = MetaFields::default();
        let mut seen = 0u32;
        while let Some(index) = map.next_key_seed(MetaKey { seen })? {
            let slot = index.and_then(|i| fields.0.get_mut(i).map(|slot| (i, slot)));
            if let Some((i, _)) = slot {
                seen |= 1 << i;
            }
            match (self.fast, slot) {
                (true, Some((_, slot))) => *slot = map.next_value_seed(FastMetaValue)?,
                (true, None) => {
                    map.next_value::<de::IgnoredAny>()?;
                }
                (false, slot) => {
                    let raw: &'de RawValue = map.next_value()?;
                    if let Some((_, slot)) = slot {
                        *slot = scalar(raw).map(MetaText::from);
                    }
                }
            }
        }
        Ok(fields)
    }
}

/// A metadata field name: its index in [`META_FIELDS`], `None` for a field
/// that is not read. A field already `seen` fails as soon as its name is read
/// (where a derived `Deserialize` fails, so the error points at the same place).
struct MetaKey {
    seen: u32,
}

impl<'de> DeserializeSeed<'de> for MetaKey {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for MetaKey {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let index = meta_field(v.as_bytes());
        if let Some(i) = index {
            if self.seen & (1 << i) != 0 {
                let name = META_FIELDS.get(i).copied().unwrap_or("metadata");
                return Err(E::duplicate_field(name));
            }
        }
        Ok(index)
    }
}

/// One metadata value in the fast path (see [`MetaSeed`]).
struct FastMetaValue;

impl<'de> DeserializeSeed<'de> for FastMetaValue {
    type Value = Option<MetaText<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FastMetaValue {
    type Value = Option<MetaText<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, an integer, a boolean or null")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(MetaText::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(MetaText::Owned(CompactString::from(v))))
    }

    // The parser hands an integer as `u64` or `i64` only when it was written
    // as plain digits (`-0` and integers beyond 64 bits come as `f64`), so
    // writing it back gives the text as written.
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(MetaText::Owned(v.to_compact_string())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(MetaText::Owned(v.to_compact_string())))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(MetaText::Borrowed(if v { "true" } else { "false" })))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A scalar metadata value as text: a string's content, a number or boolean
/// as written; `null`, objects and arrays read as absent (so does a string
/// that does not unescape).
fn scalar(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if let Some(inner) = text.strip_prefix('"') {
        if !inner.contains('\\') {
            // The parser ended the string at the first unescaped quote and
            // rejected control characters: the content is what is inside.
            return inner.strip_suffix('"').map(Cow::Borrowed);
        }
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit())
        || text == "true"
        || text == "false"
    {
        Some(Cow::Borrowed(text))
    } else {
        None
    }
}

/// Reads an image: an object of column values. A value that cannot be
/// classified makes the image an error naming the column, decided once the
/// whole object is read (the last of duplicate columns wins, and of several
/// bad columns the first by name is named).
struct RowSeed;

impl<'de> DeserializeSeed<'de> for RowSeed {
    type Value = Result<Row, String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed {
    type Value = Result<Row, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut columns: Vec<(ColumnName, Value)> = Vec::with_capacity(16);
        // Columns whose value does not classify, by name: a later value of
        // the same name replaces an earlier one, as in `columns`. A map,
        // not a list searched per column: decoding stays linear however
        // many columns fail.
        let mut failed: BTreeMap<ColumnName, String> = BTreeMap::new();
        while let Some(name) = map.next_key_seed(Key(|name: &str| ColumnName::new(name)))? {
            let raw: &'de RawValue = map.next_value()?;
            match classify_parsed(raw.get()) {
                Ok(value) => {
                    if !failed.is_empty() {
                        failed.remove(&name);
                    }
                    columns.push((name, value));
                }
                Err(reason) => {
                    failed.insert(name, reason);
                }
            }
        }
        Ok(match failed.into_iter().next() {
            Some((name, reason)) => Err(format!("column `{name}`: {reason}")),
            None => Ok(Row::from_columns(columns)),
        })
    }
}

/// An image's columns in document order, as the scan reads them: each
/// name as the payload's text, and the values.
struct Columns<'a> {
    /// The names, inline up to [`INLINE_NAMES`] (the array is not filled
    /// ahead: most images are narrower).
    names: SmallVec<[&'a str; INLINE_NAMES]>,
    values: Vec<Value>,
}

impl<'a> Columns<'a> {
    fn new() -> Columns<'a> {
        Columns {
            names: SmallVec::new(),
            values: Vec::with_capacity(16),
        }
    }

    /// The next column.
    #[inline]
    fn push(&mut self, name: &'a str, value: Value) {
        self.names.push(name);
        self.values.push(value);
    }

    /// The row: sorted by name, of columns named alike the last.
    fn finish(self) -> Row {
        Row::from_scanned(&self.names, self.values)
    }
}

/// The widest image whose names [`Columns`] keeps inline.
const INLINE_NAMES: usize = 32;

/// Reads a before image: `null` reads as no image.
struct OptionalRowSeed;

impl<'de> DeserializeSeed<'de> for OptionalRowSeed {
    type Value = Option<Result<Row, String>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptionalRowSeed {
    type Value = Option<Result<Row, String>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        RowSeed.deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What `meta_field` answers, by a plain search of the names.
    fn searched(name: &[u8]) -> Option<usize> {
        META_FIELDS
            .iter()
            .position(|field| field.as_bytes() == name)
    }

    #[test]
    fn metadata_fields_are_found_by_name() {
        for (i, field) in META_FIELDS.iter().enumerate() {
            assert_eq!(meta_field(field.as_bytes()), Some(i), "{field}");
            let bytes = field.as_bytes();
            for at in 0..bytes.len() {
                let mut changed = bytes.to_vec();
                changed[at] ^= 0x20;
                assert_eq!(meta_field(&changed), searched(&changed), "{field} at {at}");
            }
            assert_eq!(meta_field(&bytes[1..]), None, "{field}");
            assert_eq!(meta_field(&bytes[..bytes.len() - 1]), None, "{field}");
            assert_eq!(meta_field(&[bytes, b"x"].concat()), None, "{field}");
        }
        assert_eq!(meta_field(b""), None);
    }

    proptest! {
        /// Any key, and any metadata field's name with one byte changed,
        /// is found as a search of the names finds it.
        #[test]
        fn metadata_field_lookup_is_a_search(
            field in 0..META_FIELDS.len(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            key in proptest::collection::vec(any::<u8>(), 0..30),
        ) {
            let mut changed = META_FIELDS[field].as_bytes().to_vec();
            let i = at.index(changed.len());
            changed[i] = byte;
            prop_assert_eq!(meta_field(&changed), searched(&changed));
            prop_assert_eq!(meta_field(&key), searched(&key));
        }
    }
}
