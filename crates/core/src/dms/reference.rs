//! The decoder as it was before the one-pass rewrite (commit 9869baf),
//! kept as the oracle of the equivalence property test in `tests.rs`.
//! Test-only; the only edits are the imports, the visibility of the entry
//! point, `Metadata::from_fields` where `Metadata` now keeps its texts in
//! one string, and `decode_payload` split into functions (the same checks
//! in the same order, with the same errors).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    ControlOperation, ControlRecord, DataChange, DecodeError, DecodeErrorKind, DecodeOptions,
    DmsRecord, Metadata, Operation, Payload, Row, TableName, Value,
};
use crate::position::{SequenceNumber, ShardId};

#[derive(Deserialize)]
struct RawMetadata<'a> {
    #[serde(default, rename = "timestamp", borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(default, rename = "record-type", borrow)]
    record_type: Option<&'a RawValue>,
    #[serde(default, rename = "operation", borrow)]
    operation: Option<&'a RawValue>,
    #[serde(default, rename = "partition-key-type", borrow)]
    partition_key_type: Option<&'a RawValue>,
    #[serde(default, rename = "partition-key-value", borrow)]
    partition_key_value: Option<&'a RawValue>,
    #[serde(default, rename = "schema-name", borrow)]
    schema_name: Option<&'a RawValue>,
    #[serde(default, rename = "table-name", borrow)]
    table_name: Option<&'a RawValue>,
    #[serde(default, rename = "transaction-id", borrow)]
    transaction_id: Option<&'a RawValue>,
    #[serde(default, rename = "commit-timestamp", borrow)]
    commit_timestamp: Option<&'a RawValue>,
    #[serde(default, rename = "stream-position", borrow)]
    stream_position: Option<&'a RawValue>,
    #[serde(default, rename = "transaction-record-id", borrow)]
    transaction_record_id: Option<&'a RawValue>,
    #[serde(default, rename = "prev-transaction-id", borrow)]
    prev_transaction_id: Option<&'a RawValue>,
    #[serde(default, rename = "prev-transaction-record-id", borrow)]
    prev_transaction_record_id: Option<&'a RawValue>,
}

/// Reads a scalar metadata value (string or number) as text; `null` and
/// objects read as absent.
fn scalar_text(raw: Option<&RawValue>) -> Option<String> {
    let text = raw?.get();
    if text.starts_with('"') {
        serde_json::from_str::<String>(text).ok()
    } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit())
        || text == "true"
        || text == "false"
    {
        Some(text.to_owned())
    } else {
        None
    }
}

/// A decode failure before the record's position is attached: the table, if
/// known, and what is wrong.
type Failure = (Option<TableName>, DecodeErrorKind);

/// Decodes a DMS JSON document that arrived at `shard_id` / `sequence_number`.
pub(super) fn decode_payload(
    shard_id: &ShardId,
    sequence_number: &SequenceNumber,
    payload: &[u8],
    options: &DecodeOptions,
) -> Result<DmsRecord, DecodeError> {
    let fail = |(table, kind): Failure| DecodeError {
        shard_id: shard_id.clone(),
        sequence_number: sequence_number.clone(),
        table: table.map(Box::new),
        kind,
    };

    let top: BTreeMap<String, &RawValue> = serde_json::from_slice(payload)
        .map_err(|e| fail((None, DecodeErrorKind::Json(e.to_string()))))?;
    let Head {
        table,
        record_type,
        operation,
        metadata,
    } = read_head(&top).map_err(fail)?;

    let payload = match record_type.as_str() {
        "data" => data_payload(&top, table, record_type, operation, options).map_err(fail)?,
        "control" => control_payload(&top, table, record_type, operation).map_err(fail)?,
        _ => {
            return Err(fail((
                table,
                DecodeErrorKind::UnknownRecordType(record_type),
            )))
        }
    };
    Ok(DmsRecord {
        shard_id: shard_id.clone(),
        sequence_number: sequence_number.clone(),
        metadata,
        payload,
    })
}

/// What the `metadata` object says.
struct Head {
    table: Option<TableName>,
    record_type: String,
    operation: String,
    metadata: Metadata,
}

/// Reads the `metadata` object.
fn read_head(top: &BTreeMap<String, &RawValue>) -> Result<Head, Failure> {
    let raw_meta = top
        .get("metadata")
        .ok_or((None, DecodeErrorKind::MissingMetadata))?;
    if !raw_meta.get().starts_with('{') {
        return Err((None, DecodeErrorKind::Metadata("not an object".to_owned())));
    }
    let meta: RawMetadata<'_> = serde_json::from_str(raw_meta.get())
        .map_err(|e| (None, DecodeErrorKind::Metadata(e.to_string())))?;

    let mut table = None;
    if let (Some(schema), Some(name)) =
        (scalar_text(meta.schema_name), scalar_text(meta.table_name))
    {
        if !schema.is_empty() || !name.is_empty() {
            table = Some(TableName::new(schema, name));
        }
    }
    let record_type = scalar_text(meta.record_type)
        .ok_or_else(|| (table.clone(), DecodeErrorKind::MissingField("record-type")))?;
    let operation = scalar_text(meta.operation)
        .ok_or_else(|| (table.clone(), DecodeErrorKind::MissingField("operation")))?;
    let metadata = Metadata::from_fields([
        scalar_text(meta.timestamp).as_deref(),
        scalar_text(meta.partition_key_type).as_deref(),
        scalar_text(meta.partition_key_value).as_deref(),
        scalar_text(meta.transaction_id).as_deref(),
        scalar_text(meta.commit_timestamp).as_deref(),
        scalar_text(meta.stream_position).as_deref(),
        scalar_text(meta.transaction_record_id).as_deref(),
        scalar_text(meta.prev_transaction_id).as_deref(),
        scalar_text(meta.prev_transaction_record_id).as_deref(),
    ]);
    Ok(Head {
        table,
        record_type,
        operation,
        metadata,
    })
}

/// The row change of a `data` record.
fn data_payload(
    top: &BTreeMap<String, &RawValue>,
    table: Option<TableName>,
    record_type: String,
    operation: String,
    options: &DecodeOptions,
) -> Result<Payload, Failure> {
    let operation = match operation.as_str() {
        "load" => Operation::Load,
        "insert" => Operation::Insert,
        "update" => Operation::Update,
        "delete" => Operation::Delete,
        _ => {
            return Err((
                table,
                DecodeErrorKind::UnknownOperation {
                    record_type,
                    operation,
                },
            ))
        }
    };
    let Some(name) = table.clone() else {
        return Err((
            None,
            DecodeErrorKind::MissingField("schema-name/table-name"),
        ));
    };
    let data = top
        .get("data")
        .ok_or_else(|| (table.clone(), DecodeErrorKind::MissingData))?;
    let after = decode_row(data).map_err(|reason| {
        (
            table.clone(),
            DecodeErrorKind::Image {
                field: "data".to_owned(),
                reason,
            },
        )
    })?;
    let before = match top.get(options.before_image_field.as_str()) {
        Some(raw) if raw.get() != "null" => Some(decode_row(raw).map_err(|reason| {
            (
                table.clone(),
                DecodeErrorKind::Image {
                    field: options.before_image_field.clone(),
                    reason,
                },
            )
        })?),
        _ => None,
    };
    Ok(Payload::Data(DataChange {
        operation,
        table: name.into(),
        after,
        before,
    }))
}

/// A `control` record.
fn control_payload(
    top: &BTreeMap<String, &RawValue>,
    table: Option<TableName>,
    record_type: String,
    operation: String,
) -> Result<Payload, Failure> {
    let Some(op) = ControlOperation::parse(&operation) else {
        return Err((
            table,
            DecodeErrorKind::UnknownOperation {
                record_type,
                operation,
            },
        ));
    };
    let detail = match top.get("control") {
        Some(raw) => serde_json::from_str(raw.get()).unwrap_or(serde_json::Value::Null),
        None => serde_json::Value::Null,
    };
    Ok(Payload::Control(ControlRecord {
        operation: op,
        table,
        detail,
    }))
}

fn decode_row(raw: &RawValue) -> Result<Row, String> {
    let columns: BTreeMap<String, &RawValue> =
        serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
    columns
        .into_iter()
        .map(|(name, raw)| match classify(raw.get()) {
            Ok(v) => Ok((name, v)),
            Err(e) => Err(format!("column `{name}`: {e}")),
        })
        .collect::<Result<Row, _>>()
}

/// Smallest magnitude at which an exponent-notation integer may be a BIGINT
/// DMS rounded: DMS keeps 16 significant digits, so anything from 10^16 up
/// can have lost digits.
const LOSSY_INTEGER_FLOOR: f64 = 1e16;

/// Classifies one JSON value (its raw text) into a [`Value`].
pub(super) fn classify(text: &str) -> Result<Value, String> {
    let text = text.trim();
    match text.as_bytes().first() {
        None => Err("empty value".to_owned()),
        Some(b'n') if text == "null" => Ok(Value::Null),
        Some(b't') if text == "true" => Ok(Value::Bool(true)),
        Some(b'f') if text == "false" => Ok(Value::Bool(false)),
        Some(b'"') => serde_json::from_str::<String>(text)
            .map(Value::Text)
            .map_err(|e| e.to_string()),
        Some(b'{') | Some(b'[') => serde_json::from_str::<serde_json::Value>(text)
            .map(|v| Value::Json(v.to_string()))
            .map_err(|e| e.to_string()),
        Some(b'-') | Some(b'0'..=b'9') => Ok(classify_number(text)),
        Some(_) => Err("not a JSON value".to_owned()),
    }
}

fn classify_number(text: &str) -> Value {
    let has_exponent = text.contains(['e', 'E']);
    if has_exponent {
        let value: f64 = text.parse().unwrap_or(f64::NAN);
        if value.is_finite() && value.fract() == 0.0 && value.abs() >= LOSSY_INTEGER_FLOOR {
            return Value::Lossy(text.to_owned());
        }
        return if value.is_finite() {
            Value::Float(value)
        } else {
            Value::Lossy(text.to_owned())
        };
    }
    if !text.contains('.') {
        if let Ok(i) = text.parse::<i64>() {
            return Value::Int(i);
        }
        if let Ok(u) = text.parse::<u64>() {
            return Value::UInt(u);
        }
    }
    Value::Decimal(text.to_owned())
}
