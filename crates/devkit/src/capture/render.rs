//! Column values and DMS JSON documents, rendered as DMS writes them for a
//! MySQL source and a Kinesis target (`json-unformatted`).
//!
//! Documents are written by hand (not through `serde_json::Value`) so that
//! numbers keep their exact text: `DECIMAL` `4.50` stays `4.50`, a JSON
//! column's numbers stay as stored.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::value::RawValue;

use crate::dms::TableName;

/// One column value, typed enough to render it as DMS does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    /// SQL NULL.
    Null,
    /// A boolean (PostgreSQL `boolean`: DMS writes `true` / `false`).
    Bool(bool),
    /// A signed integer (every integer type, YEAR).
    Int(i64),
    /// An unsigned integer beyond `i64`.
    UInt(u64),
    /// FLOAT.
    Float(f32),
    /// DOUBLE.
    Double(f64),
    /// DECIMAL, as its exact text.
    Decimal(String),
    /// DATETIME (wall clock) or TIMESTAMP already converted to UTC.
    DateTime {
        /// Date part.
        date: NaiveDate,
        /// Hours.
        hour: u32,
        /// Minutes.
        minute: u32,
        /// Seconds.
        second: u32,
        /// Microseconds.
        micros: u32,
        /// Fractional digits of the column (0..=6).
        fsp: u8,
    },
    /// DATETIME or DATE whose date has no calendar value (zero dates).
    ZeroDate(String),
    /// DATE.
    Date(NaiveDate),
    /// TIME (may be negative or beyond 24 hours).
    Time {
        /// Negative.
        negative: bool,
        /// Total hours.
        hours: u32,
        /// Minutes.
        minute: u32,
        /// Seconds.
        second: u32,
        /// Microseconds.
        micros: u32,
        /// Fractional digits of the column.
        fsp: u8,
    },
    /// Character data.
    Text(String),
    /// Binary data (BINARY, VARBINARY, BLOB, BIT, GEOMETRY).
    Binary(Vec<u8>),
    /// A JSON column's text.
    Json(String),
}

impl Cell {
    /// A TIMESTAMP value from seconds and microseconds since the epoch, in UTC.
    pub(crate) fn timestamp(seconds: i64, micros: u32, fsp: u8) -> Cell {
        match DateTime::<Utc>::from_timestamp(seconds, micros * 1000) {
            Some(dt) => {
                use chrono::Timelike;
                let naive = dt.naive_utc();
                Cell::DateTime {
                    date: naive.date(),
                    hour: naive.hour(),
                    minute: naive.minute(),
                    second: naive.second(),
                    micros,
                    fsp,
                }
            }
            None => Cell::ZeroDate(format!("{seconds}")),
        }
    }

    /// A date and time from its parts; zero or invalid dates keep their text.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn date_time(
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        micros: u32,
        fsp: u8,
    ) -> Cell {
        match NaiveDate::from_ymd_opt(i32::from(year), u32::from(month), u32::from(day)) {
            Some(date) => Cell::DateTime {
                date,
                hour: u32::from(hour),
                minute: u32::from(minute),
                second: u32::from(second),
                micros,
                fsp,
            },
            None => Cell::ZeroDate(format!(
                "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{}Z",
                fraction(micros, fsp)
            )),
        }
    }

    /// A DATE from its parts; zero dates keep their text.
    pub(crate) fn date(year: u16, month: u8, day: u8) -> Cell {
        match NaiveDate::from_ymd_opt(i32::from(year), u32::from(month), u32::from(day)) {
            Some(date) => Cell::Date(date),
            None => Cell::ZeroDate(format!("{year:04}-{month:02}-{day:02}")),
        }
    }

    /// The value's text for a partition key (strings unquoted).
    pub(crate) fn key_text(&self, large_integer_value: bool) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Text(t) | Cell::Json(t) | Cell::Decimal(t) | Cell::ZeroDate(t) => t.clone(),
            other => {
                let json = other.to_json(large_integer_value);
                match serde_json::from_str::<String>(&json) {
                    Ok(s) => s,
                    Err(_) => json,
                }
            }
        }
    }

    /// The JSON text DMS writes for this value.
    pub(crate) fn to_json(&self, large_integer_value: bool) -> String {
        match self {
            Cell::Null => "null".to_owned(),
            Cell::Bool(b) => b.to_string(),
            Cell::Int(i) => integer(&i.to_string(), *i as f64, large_integer_value),
            Cell::UInt(u) => integer(&u.to_string(), *u as f64, large_integer_value),
            Cell::Float(f) => float_text(f64::from(*f), &format!("{f:?}")),
            Cell::Double(f) => float_text(*f, &format!("{f:?}")),
            Cell::Decimal(text) => {
                if is_json_number(text) {
                    text.clone()
                } else {
                    string(text)
                }
            }
            Cell::DateTime {
                date,
                hour,
                minute,
                second,
                micros,
                fsp,
            } => string(&format!(
                "{}T{hour:02}:{minute:02}:{second:02}{}Z",
                date.format("%Y-%m-%d"),
                fraction(*micros, *fsp)
            )),
            Cell::ZeroDate(text) => string(text),
            Cell::Date(d) => string(&d.format("%Y-%m-%d").to_string()),
            Cell::Time {
                negative,
                hours,
                minute,
                second,
                micros,
                fsp,
            } => string(&format!(
                "{}{hours:02}:{minute:02}:{second:02}{}",
                if *negative { "-" } else { "" },
                fraction(*micros, *fsp)
            )),
            Cell::Text(t) => string(t),
            Cell::Binary(b) => string(&hex(b)),
            Cell::Json(text) => match serde_json::from_str::<&RawValue>(text) {
                Ok(raw) => compact_json(raw.get()),
                Err(_) => string(text),
            },
        }
    }
}

/// `0x` followed by lowercase hex digits (DMS without `NoHexPrefix`).
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("0x");
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn fraction(micros: u32, fsp: u8) -> String {
    if fsp == 0 {
        return String::new();
    }
    let digits = format!("{micros:06}");
    format!(".{}", &digits[..usize::from(fsp.min(6))])
}

/// An integer; without `UseLargeIntegerValue` DMS writes integers of more
/// than 16 digits as a double with 15 significant digits
/// (`1.23456789012346E+18`).
fn integer(text: &str, value: f64, large_integer_value: bool) -> String {
    let digits = text.trim_start_matches('-').len();
    if large_integer_value || digits <= 16 {
        return text.to_owned();
    }
    let formatted = format!("{value:.14E}");
    let (mantissa, exponent) = formatted.split_once('E').unwrap_or((&formatted, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        mantissa
    };
    match exponent.strip_prefix('-') {
        Some(e) => format!("{mantissa}E-{e}"),
        None => format!("{mantissa}E+{exponent}"),
    }
}

fn float_text(value: f64, debug: &str) -> String {
    if value.is_finite() {
        debug.to_owned()
    } else {
        "null".to_owned()
    }
}

fn is_json_number(text: &str) -> bool {
    serde_json::from_str::<&RawValue>(text)
        .map(|raw| {
            raw.get()
                .starts_with(|c: char| c == '-' || c.is_ascii_digit())
        })
        .unwrap_or(false)
}

/// JSON text without insignificant whitespace, numbers kept verbatim.
fn compact_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// A JSON string literal.
pub(crate) fn string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// Builds a JSON object from members whose values are already JSON text,
/// in insertion order.
#[derive(Debug, Default)]
pub(crate) struct Object {
    text: String,
}

impl Object {
    pub(crate) fn new() -> Object {
        Object::default()
    }

    /// Adds a member whose value is JSON text.
    pub(crate) fn raw(mut self, key: &str, value: &str) -> Object {
        self.text
            .push_str(if self.text.is_empty() { "{" } else { "," });
        self.text.push_str(&string(key));
        self.text.push(':');
        self.text.push_str(value);
        self
    }

    /// Adds a string member.
    pub(crate) fn str(self, key: &str, value: &str) -> Object {
        let v = string(value);
        self.raw(key, &v)
    }

    /// The object's JSON text.
    pub(crate) fn finish(self) -> String {
        if self.text.is_empty() {
            "{}".to_owned()
        } else {
            self.text + "}"
        }
    }
}

/// `2026-11-20T10:15:00.123456Z`: DMS's `timestamp` rendering.
pub(crate) fn micros_stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// `2026-11-20T10:15:00Z`: the `commit-timestamp` rendering.
pub(crate) fn seconds_stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A row image: column name and value, in table order.
pub(crate) type Image = Vec<(String, Cell)>;

/// Renders a row image as a JSON object.
pub(crate) fn image_json(image: &Image, large_integer_value: bool) -> String {
    image
        .iter()
        .fold(Object::new(), |o, (name, cell)| {
            o.raw(name, &cell.to_json(large_integer_value))
        })
        .finish()
}

/// Transaction details of a CDC record.
#[derive(Debug, Clone)]
pub(crate) struct TxDetails {
    /// `transaction-id`, as JSON text (a number or a string).
    pub transaction_id: String,
    /// `commit-timestamp`.
    pub commit_timestamp: String,
    /// `stream-position`.
    pub stream_position: String,
    /// `transaction-record-id`.
    pub record_id: u64,
    /// `prev-transaction-id` (JSON text) and `prev-transaction-record-id`.
    pub prev: Option<(String, u64)>,
}

/// Everything a data record says.
pub(crate) struct DataDoc<'a> {
    pub table: &'a TableName,
    pub operation: &'a str,
    pub partition_key: &'a str,
    pub data: &'a Image,
    pub before: Option<(&'a str, &'a Image)>,
    pub tx: Option<&'a TxDetails>,
    pub timestamp: DateTime<Utc>,
    pub large_integer_value: bool,
}

/// The DMS document of a data record: `data`, the before image, `metadata`.
pub(crate) fn data_document(doc: &DataDoc<'_>) -> Vec<u8> {
    let mut meta = Object::new()
        .str("timestamp", &micros_stamp(doc.timestamp))
        .str("record-type", "data")
        .str("operation", doc.operation)
        .str("partition-key-type", "primary-key")
        .str("partition-key-value", doc.partition_key)
        .str("schema-name", &doc.table.schema)
        .str("table-name", &doc.table.table);
    if let Some(tx) = doc.tx {
        meta = meta
            .raw("transaction-id", &tx.transaction_id)
            .str("commit-timestamp", &tx.commit_timestamp)
            .str("stream-position", &tx.stream_position)
            .raw("transaction-record-id", &tx.record_id.to_string());
        if let Some((id, record)) = &tx.prev {
            meta = meta
                .raw("prev-transaction-id", id)
                .raw("prev-transaction-record-id", &record.to_string());
        }
    }
    let mut top = Object::new().raw("data", &image_json(doc.data, doc.large_integer_value));
    if let Some((field, before)) = doc.before {
        top = top.raw(field, &image_json(before, doc.large_integer_value));
    }
    let mut text = top.raw("metadata", &meta.finish()).finish();
    text.push('\n');
    text.into_bytes()
}

/// The DMS document of a control record.
pub(crate) fn control_document(
    table: &TableName,
    operation: &str,
    control: &str,
    timestamp: DateTime<Utc>,
) -> Vec<u8> {
    let meta = Object::new()
        .str("timestamp", &micros_stamp(timestamp))
        .str("record-type", "control")
        .str("operation", operation)
        .str("partition-key-type", "task-id")
        .str("schema-name", &table.schema)
        .str("table-name", &table.table)
        .finish();
    let mut text = Object::new()
        .raw("control", control)
        .raw("metadata", &meta)
        .finish();
    text.push('\n');
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_as_dms_does() {
        assert_eq!(Cell::Int(-5).to_json(true), "-5");
        assert_eq!(Cell::UInt(u64::MAX).to_json(true), "18446744073709551615");
        assert_eq!(
            Cell::Int(1234567890123456789).to_json(false),
            "1.23456789012346E+18"
        );
        assert_eq!(
            Cell::Int(1234567890123456789).to_json(true),
            "1234567890123456789"
        );
        assert_eq!(
            Cell::Int(1234567890123456).to_json(false),
            "1234567890123456"
        );
        assert_eq!(Cell::Int(10i64.pow(16)).to_json(false), "1E+16");
        assert_eq!(Cell::Decimal("4.50".into()).to_json(true), "4.50");
        assert_eq!(Cell::Double(0.0015).to_json(true), "0.0015");
        assert_eq!(Cell::Double(410.0).to_json(true), "410.0");
        assert_eq!(
            Cell::date_time(2024, 3, 1, 9, 0, 0, 250000, 6).to_json(true),
            "\"2024-03-01T09:00:00.250000Z\""
        );
        assert_eq!(
            Cell::date_time(2024, 3, 1, 9, 0, 0, 0, 0).to_json(true),
            "\"2024-03-01T09:00:00Z\""
        );
        assert_eq!(
            Cell::timestamp(0, 5000, 3).to_json(true),
            "\"1970-01-01T00:00:00.005Z\""
        );
        assert_eq!(Cell::date(2024, 2, 29).to_json(true), "\"2024-02-29\"");
        assert_eq!(
            Cell::Time {
                negative: true,
                hours: 30,
                minute: 1,
                second: 2,
                micros: 0,
                fsp: 0
            }
            .to_json(true),
            "\"-30:01:02\""
        );
        assert_eq!(Cell::Binary(vec![0x89, 0x50]).to_json(true), "\"0x8950\"");
        assert_eq!(
            Cell::Json("{\"a\": [1, 2.50], \"b c\": \"x y\"}".into()).to_json(true),
            "{\"a\":[1,2.50],\"b c\":\"x y\"}"
        );
        assert_eq!(Cell::Json("not json".into()).to_json(true), "\"not json\"");
        assert_eq!(Cell::Text("a\"b".into()).to_json(true), "\"a\\\"b\"");
        assert_eq!(Cell::Null.to_json(true), "null");
        assert_eq!(Cell::Text("x".into()).key_text(true), "x");
        assert_eq!(Cell::Int(7).key_text(true), "7");
    }
}
