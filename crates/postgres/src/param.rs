//! Binding our values to statement parameters of the target columns' types.
//!
//! Every statement is prepared first, so the server says the type of each
//! parameter: the type of the column it is written to. A value is sent in
//! that type's binary form when it converts exactly (an integer into
//! `int2`/`int4`/`int8` within range, a date-time into `timestamp`, bytes
//! into `bytea`, JSON text into `jsonb`, ...). Anything else is sent as
//! text in the type's input syntax, and the server converts it as it
//! would a literal, with its own rules and its own SQLSTATE when the value
//! does not fit: `"abc"` into an integer column is `22P02`, 40000 into a
//! `smallint` is `22003`, a 101-character name into `varchar(100)` is
//! `22001`: the record's fault, as MySQL's 1366, 1264 and 1406 are. No
//! conversion fails on our side, so every refusal is a server answer.
//!
//! | value | binary into | otherwise as text |
//! | --- | --- | --- |
//! | `Bool` | `bool`; `int2/4/8` as 0/1 | `1`/`0` |
//! | `Int`, `UInt` | `int2/4/8` in range; `float4/8`; `bool` (non-zero) | decimal digits |
//! | `Float` | `float4/8`; integers when whole and in range | shortest exact digits |
//! | `Decimal`, `Lossy` | integers when whole (rounded half away from zero) | the text |
//! | `Text` | text types, `bytea` (its UTF-8), `json`/`jsonb` | the text |
//! | `Json` | `json`/`jsonb`, text types | the JSON text |
//! | `Bytes` | `bytea` | the bytes as they are (invalid UTF-8 is the server's `22021`) |
//! | `DateTime` | `timestamp`, `timestamptz` (as UTC), `date` | `YYYY-MM-DD HH:MM:SS[.ffffff]` |
//! | `Date` | `date`, `timestamp(tz)` at midnight | `YYYY-MM-DD` |
//! | `Time` | `time` | `HH:MM:SS[.ffffff]` |
//!
//! `numeric` and every type not named here (uuid, enums, domains, arrays,
//! ...) always get text: the server's own parser is the exact one.

use chrono::{DateTime, NaiveDateTime, NaiveTime, Utc};
use tokio_postgres::types::{private::BytesMut, Format, IsNull, ToSql, Type};

use dms_cdc_core::dms::Value;

/// One value bound as a parameter (see the module docs).
#[derive(Debug)]
pub struct Param<'a>(pub &'a Value);

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// What a value becomes for a parameter type.
enum Encoded<'a> {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Bytes(&'a [u8]),
    Jsonb(&'a [u8]),
    Timestamp(NaiveDateTime),
    Timestamptz(DateTime<Utc>),
    Date(chrono::NaiveDate),
    Time(NaiveTime),
    /// Text in the type's input syntax (text format).
    Text(String),
    /// Bytes as they are, in text format: the server checks the encoding.
    TextBytes(&'a [u8]),
}

fn is_text(ty: &Type) -> bool {
    [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(ty)
}

/// An integer value of a number, when it is whole (floats and decimals are
/// rounded as PostgreSQL rounds them into an integer column).
fn integer(value: &Value) -> Option<i128> {
    match value {
        Value::Bool(b) => Some(i128::from(*b)),
        Value::Int(i) => Some(i128::from(*i)),
        Value::UInt(u) => Some(i128::from(*u)),
        // float8 -> int8 rounds half to even (rint).
        Value::Float(f) if f.is_finite() && f.abs() < 1e30 => Some(f.round_ties_even() as i128),
        Value::Decimal(t) | Value::Lossy(t) => decimal_integer(t),
        _ => None,
    }
}

/// A decimal literal (`-12.50`) rounded half away from zero, as numeric ->
/// int8 does; `None` for anything but plain digits with an optional sign
/// and fraction (exponents, blanks: the server parses those).
fn decimal_integer(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty()
        || whole.len() > 30
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut n: i128 = whole.parse().ok()?;
    if fraction.as_bytes().first().is_some_and(|d| *d >= b'5') {
        n += 1;
    }
    Some(if negative { -n } else { n })
}

/// The text of a value in a type's input syntax.
fn text(value: &Value, ty: &Type) -> String {
    match value {
        Value::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
        // Not reached for bytea (bound as binary); kept for completeness.
        Value::Float(f) => f.to_string(),
        Value::Bytes(b) if *ty == Type::BYTEA => {
            let mut out = String::with_capacity(2 + 2 * b.len());
            out.push_str("\\x");
            for x in b {
                out.push_str(&format!("{x:02x}"));
            }
            out
        }
        Value::DateTime(dt) => dt.format("%Y-%m-%d %H:%M:%S%.f").to_string(),
        other => dms_cdc_core::mapping::text_of(other).unwrap_or_default(),
    }
}

fn encode<'a>(value: &'a Value, ty: &Type) -> Encoded<'a> {
    use Encoded as E;
    if matches!(value, Value::Null) {
        return E::Null;
    }
    let int = || integer(value);
    let fallback = || match value {
        Value::Bytes(b) if *ty != Type::BYTEA => E::TextBytes(b),
        _ => E::Text(text(value, ty)),
    };
    match *ty {
        Type::BOOL => match value {
            Value::Bool(b) => E::Bool(*b),
            Value::Int(_) | Value::UInt(_) => E::Bool(int() != Some(0)),
            _ => fallback(),
        },
        Type::INT2 => int()
            .and_then(|n| i16::try_from(n).ok())
            .map_or_else(fallback, E::I16),
        Type::INT4 => int()
            .and_then(|n| i32::try_from(n).ok())
            .map_or_else(fallback, E::I32),
        Type::INT8 => int()
            .and_then(|n| i64::try_from(n).ok())
            .map_or_else(fallback, E::I64),
        Type::FLOAT4 | Type::FLOAT8 => {
            let f = match value {
                Value::Float(f) => Some(*f),
                Value::Int(i) => Some(*i as f64),
                Value::UInt(u) => Some(*u as f64),
                _ => None,
            };
            match (f, *ty == Type::FLOAT4) {
                (Some(f), true) => E::F32(f as f32),
                (Some(f), false) => E::F64(f),
                (None, _) => fallback(),
            }
        }
        Type::BYTEA => match value {
            Value::Bytes(b) => E::Bytes(b),
            Value::Text(t) | Value::Json(t) | Value::Decimal(t) | Value::Lossy(t) => {
                E::Bytes(t.as_bytes())
            }
            _ => fallback(),
        },
        Type::JSON | Type::JSONB => match value {
            Value::Json(t) | Value::Text(t) if *ty == Type::JSONB => E::Jsonb(t.as_bytes()),
            Value::Json(t) | Value::Text(t) => E::Bytes(t.as_bytes()),
            other => {
                let mut json = String::new();
                dms_cdc_core::mapping::render_json(other, &mut json);
                E::Text(json)
            }
        },
        Type::TIMESTAMP => match value {
            Value::DateTime(dt) => E::Timestamp(*dt),
            Value::Date(d) => E::Timestamp(d.and_time(NaiveTime::MIN)),
            _ => fallback(),
        },
        Type::TIMESTAMPTZ => match value {
            Value::DateTime(dt) => E::Timestamptz(dt.and_utc()),
            Value::Date(d) => E::Timestamptz(d.and_time(NaiveTime::MIN).and_utc()),
            _ => fallback(),
        },
        Type::DATE => match value {
            Value::Date(d) => E::Date(*d),
            Value::DateTime(dt) => E::Date(dt.date()),
            _ => fallback(),
        },
        Type::TIME => match value {
            Value::Time(t) => E::Time(*t),
            _ => fallback(),
        },
        _ if is_text(ty) => match value {
            Value::Text(t) | Value::Json(t) | Value::Decimal(t) | Value::Lossy(t) => {
                E::Bytes(t.as_bytes())
            }
            _ => fallback(),
        },
        _ => fallback(),
    }
}

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match encode(self.0, ty) {
            Encoded::Null => return Ok(IsNull::Yes),
            Encoded::Bool(b) => return b.to_sql(&Type::BOOL, out),
            Encoded::I16(n) => return n.to_sql(&Type::INT2, out),
            Encoded::I32(n) => return n.to_sql(&Type::INT4, out),
            Encoded::I64(n) => return n.to_sql(&Type::INT8, out),
            Encoded::F32(f) => return f.to_sql(&Type::FLOAT4, out),
            Encoded::F64(f) => return f.to_sql(&Type::FLOAT8, out),
            Encoded::Timestamp(t) => return t.to_sql(&Type::TIMESTAMP, out),
            Encoded::Timestamptz(t) => return t.to_sql(&Type::TIMESTAMPTZ, out),
            Encoded::Date(d) => return d.to_sql(&Type::DATE, out),
            Encoded::Time(t) => return t.to_sql(&Type::TIME, out),
            Encoded::Bytes(b) => out.extend_from_slice(b),
            Encoded::Jsonb(b) => {
                // jsonb's binary form: a version byte, then the JSON text.
                out.extend_from_slice(&[1]);
                out.extend_from_slice(b);
            }
            Encoded::Text(t) => out.extend_from_slice(t.as_bytes()),
            Encoded::TextBytes(b) => out.extend_from_slice(b),
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, ty: &Type) -> Format {
        match encode(self.0, ty) {
            Encoded::Text(_) | Encoded::TextBytes(_) => Format::Text,
            _ => Format::Binary,
        }
    }

    tokio_postgres::types::to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(value: Value, ty: Type) -> String {
        match encode(&value, &ty) {
            Encoded::Null => "null".into(),
            Encoded::Bool(b) => format!("bool {b}"),
            Encoded::I16(n) => format!("int2 {n}"),
            Encoded::I32(n) => format!("int4 {n}"),
            Encoded::I64(n) => format!("int8 {n}"),
            Encoded::F32(f) => format!("float4 {f}"),
            Encoded::F64(f) => format!("float8 {f}"),
            Encoded::Bytes(b) => format!("bytes {}", String::from_utf8_lossy(b)),
            Encoded::Jsonb(b) => format!("jsonb {}", String::from_utf8_lossy(b)),
            Encoded::Timestamp(t) => format!("timestamp {t}"),
            Encoded::Timestamptz(t) => format!("timestamptz {t}"),
            Encoded::Date(d) => format!("date {d}"),
            Encoded::Time(t) => format!("time {t}"),
            Encoded::Text(t) => format!("text {t}"),
            Encoded::TextBytes(b) => format!("text {}", String::from_utf8_lossy(b)),
        }
    }

    #[test]
    fn values_bind_in_the_columns_type_or_as_its_input_text() {
        let dt = chrono::NaiveDate::from_ymd_opt(2024, 3, 1)
            .unwrap()
            .and_hms_micro_opt(9, 0, 0, 250_000)
            .unwrap();
        let cases: Vec<(Value, Type, &str)> = vec![
            (Value::Null, Type::INT8, "null"),
            (Value::Int(7), Type::INT8, "int8 7"),
            (Value::Int(40_000), Type::INT2, "text 40000"), // the server says 22003
            (
                Value::UInt(u64::MAX),
                Type::INT8,
                "text 18446744073709551615",
            ),
            (
                Value::UInt(u64::MAX),
                Type::NUMERIC,
                "text 18446744073709551615",
            ),
            (Value::Bool(true), Type::INT2, "int2 1"),
            (Value::Bool(false), Type::BOOL, "bool false"),
            (Value::Int(2), Type::BOOL, "bool true"),
            (Value::Text("t".into()), Type::BOOL, "text t"),
            (Value::Decimal("12.50".into()), Type::INT8, "int8 13"),
            (Value::Decimal("-12.49".into()), Type::INT4, "int4 -12"),
            (Value::Decimal("1e3".into()), Type::INT4, "text 1e3"),
            (Value::Decimal("4.50".into()), Type::NUMERIC, "text 4.50"),
            (Value::Float(2.5), Type::INT8, "int8 2"),
            (Value::Float(0.0015), Type::FLOAT8, "float8 0.0015"),
            (Value::Float(0.0015), Type::NUMERIC, "text 0.0015"),
            (Value::Text("abc".into()), Type::INT8, "text abc"), // the server says 22P02
            (Value::Text("Ana".into()), Type::VARCHAR, "bytes Ana"),
            (Value::Int(5), Type::TEXT, "text 5"),
            (Value::Bool(true), Type::TEXT, "text 1"),
            (
                Value::Bytes(vec![0x89, 0x50]),
                Type::BYTEA,
                "bytes \u{fffd}P",
            ),
            (Value::Bytes(vec![0x89, 0x50]), Type::UUID, "text \u{fffd}P"),
            (Value::Text("PNG".into()), Type::BYTEA, "bytes PNG"),
            (Value::Json("[1]".into()), Type::JSONB, "jsonb [1]"),
            (Value::Json("[1]".into()), Type::JSON, "bytes [1]"),
            (Value::Int(4), Type::JSONB, "text 4"),
            (Value::Text("x".into()), Type::JSONB, "jsonb x"), // the server says 22P02
            (
                Value::DateTime(dt),
                Type::TIMESTAMP,
                "timestamp 2024-03-01 09:00:00.250",
            ),
            (
                Value::DateTime(dt),
                Type::TIMESTAMPTZ,
                "timestamptz 2024-03-01 09:00:00.250 UTC",
            ),
            (Value::DateTime(dt), Type::DATE, "date 2024-03-01"),
            (
                Value::DateTime(dt),
                Type::TEXT,
                "text 2024-03-01 09:00:00.250",
            ),
            (
                Value::Text("2024-03-01 09:00:00".into()),
                Type::TIMESTAMP,
                "text 2024-03-01 09:00:00",
            ),
            (
                Value::Time(NaiveTime::from_hms_opt(0, 25, 0).unwrap()),
                Type::TIME,
                "time 00:25:00",
            ),
        ];
        for (value, ty, want) in cases {
            assert_eq!(
                shape(value.clone(), ty.clone()),
                want,
                "{value:?} into {ty}"
            );
        }
    }

    #[test]
    fn bytea_text_is_hex() {
        assert_eq!(text(&Value::Bytes(vec![0, 255]), &Type::BYTEA), "\\x00ff");
    }

    #[test]
    fn decimals_round_half_away_from_zero() {
        for (text, want) in [
            ("0", Some(0)),
            ("+3", Some(3)),
            ("2.5", Some(3)),
            ("-2.5", Some(-3)),
            ("2.49", Some(2)),
            ("18446744073709551615", Some(18_446_744_073_709_551_615)),
            (".5", None),
            ("1e5", None),
            (" 1", None),
            ("", None),
        ] {
            assert_eq!(decimal_integer(text), want, "{text:?}");
        }
    }
}
