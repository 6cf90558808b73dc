//! Evaluating column rules: conversions, enum maps, JSON packing, children
//! arrays and named transforms. Pure: values in, values out.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime};
use serde::Deserialize;

use super::{ChildShape, ColumnRef, Rule, TargetTable};
use crate::dms::{parse_binary, parse_date, parse_datetime, parse_time, Row, Value};

/// A conversion a `from` rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Conversion {
    /// To an integer (from integers, integral decimals and numeric text, booleans as 0/1).
    Int,
    /// To an exact decimal (from integers, decimals and numeric text).
    Decimal,
    /// To a float.
    Float,
    /// To text.
    String,
    /// To a boolean (from booleans, 0/1 and `true`/`false` text).
    Bool,
    /// To a JSON document (from JSON text or a JSON value).
    Json,
    /// DMS date-time text to a DATETIME wall-clock value (the `Z` is dropped, never shifted).
    Datetime,
    /// DMS date text to a DATE.
    Date,
    /// DMS time text to a TIME.
    Time,
    /// A date-time to seconds since the epoch (the wall clock read as UTC).
    UnixSeconds,
    /// Seconds since the epoch to a DATETIME (UTC wall clock).
    FromUnix,
    /// DMS hex rendering (`0x...`) to bytes.
    Binary,
}

/// A rule that cannot be evaluated for a row: which column and why. Names
/// value families, never the values themselves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("target column `{column}`: {reason}")]
pub struct EvalError {
    /// The target column.
    pub column: String,
    /// What went wrong.
    pub reason: String,
}

/// A named transform: inputs in `args` order, output value.
pub type Transform = Arc<dyn Fn(&[&Value]) -> Result<Value, String> + Send + Sync>;

/// The transforms a function crate registers, by name.
#[derive(Clone, Default)]
pub struct Transforms(BTreeMap<String, Transform>);

impl std::fmt::Debug for Transforms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Transforms {
    /// The built-in transforms: `concat` (texts joined by a space, NULLs
    /// skipped), `coalesce` (first non-NULL input) and `lower` (lower-case text).
    pub fn standard() -> Self {
        let mut t = Transforms::default();
        t.register("concat", |args| {
            let parts: Vec<String> = args.iter().filter_map(|v| text_of(v)).collect();
            Ok(if parts.is_empty() {
                Value::Null
            } else {
                Value::Text(parts.join(" "))
            })
        });
        t.register("coalesce", |args| {
            Ok(args
                .iter()
                .find(|v| !matches!(v, Value::Null))
                .map(|v| (*v).clone())
                .unwrap_or(Value::Null))
        });
        t.register("lower", |args| match args {
            [Value::Text(s)] => Ok(Value::Text(s.to_lowercase())),
            [Value::Null] => Ok(Value::Null),
            [other] => Err(format!("expects text, got {}", other.family())),
            _ => Err(format!("expects 1 argument, got {}", args.len())),
        });
        t
    }

    /// Registers (or replaces) a transform.
    pub fn register(
        &mut self,
        name: &str,
        f: impl Fn(&[&Value]) -> Result<Value, String> + Send + Sync + 'static,
    ) -> &mut Self {
        self.0.insert(name.to_owned(), Arc::new(f));
        self
    }

    /// Whether `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Registered names.
    pub fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }

    fn get(&self, name: &str) -> Option<&Transform> {
        self.0.get(name)
    }
}

/// The text form of a scalar value, used by enum maps, filters and `concat`.
pub fn text_of(value: &Value) -> Option<String> {
    Some(match value {
        Value::Null | Value::Bytes(_) => return None,
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Decimal(d) | Value::Lossy(d) | Value::Text(d) | Value::Json(d) => d.clone(),
        Value::Float(f) => f.to_string(),
        Value::DateTime(dt) => format_datetime(dt),
        Value::Date(d) => format_date(d),
        Value::Time(t) => format_time(t),
    })
}

/// `%Y-%m-%d %H:%M:%S%.f` as chrono writes it, without interpreting a
/// format string per value (that was a measured share of building rows).
/// Years outside 0..=9999 and leap seconds take chrono's path.
pub(crate) fn format_datetime(dt: &NaiveDateTime) -> String {
    use chrono::{Datelike, Timelike};
    if !(0..=9999).contains(&dt.year()) || dt.nanosecond() >= 1_000_000_000 {
        return dt.format("%Y-%m-%d %H:%M:%S%.f").to_string();
    }
    let mut s = String::with_capacity(29);
    push_date(&mut s, &dt.date());
    s.push(' ');
    push_time(&mut s, &dt.time(), Fraction::AsNeeded);
    s
}

/// `%Y-%m-%d` as chrono writes it.
fn format_date(d: &chrono::NaiveDate) -> String {
    use chrono::Datelike;
    if !(0..=9999).contains(&d.year()) {
        return d.format("%Y-%m-%d").to_string();
    }
    let mut s = String::with_capacity(10);
    push_date(&mut s, d);
    s
}

/// `%H:%M:%S%.f` as chrono writes it.
fn format_time(t: &chrono::NaiveTime) -> String {
    use chrono::Timelike;
    if t.nanosecond() >= 1_000_000_000 {
        return t.format("%H:%M:%S%.f").to_string();
    }
    let mut s = String::with_capacity(18);
    push_time(&mut s, t, Fraction::AsNeeded);
    s
}

/// How [`push_time`] writes the fraction of a second.
#[derive(Clone, Copy)]
pub(crate) enum Fraction {
    /// chrono's `%.f`: none when zero, else 3, 6 or 9 digits, as needed.
    AsNeeded,
    /// Always `.000000`, whatever the time's fraction.
    ZeroMicros,
}

/// Appends `digits` decimal digits of `value`, zero-padded.
fn push_digits(s: &mut String, value: u32, digits: u32) {
    for i in (0..digits).rev() {
        let d = (value / 10u32.pow(i)) % 10;
        s.push(char::from(b'0' + d as u8));
    }
}

/// Appends `YYYY-MM-DD` (the caller checks the year is 0..=9999).
pub(crate) fn push_date(s: &mut String, d: &chrono::NaiveDate) {
    use chrono::Datelike;
    push_digits(s, d.year() as u32, 4);
    s.push('-');
    push_digits(s, d.month(), 2);
    s.push('-');
    push_digits(s, d.day(), 2);
}

/// Appends `HH:MM:SS` and the fraction (the caller checks for leap seconds).
pub(crate) fn push_time(s: &mut String, t: &chrono::NaiveTime, fraction: Fraction) {
    use chrono::Timelike;
    push_digits(s, t.hour(), 2);
    s.push(':');
    push_digits(s, t.minute(), 2);
    s.push(':');
    push_digits(s, t.second(), 2);
    let nano = t.nanosecond();
    match fraction {
        Fraction::ZeroMicros => s.push_str(".000000"),
        Fraction::AsNeeded if nano == 0 => {}
        Fraction::AsNeeded if nano % 1_000_000 == 0 => {
            s.push('.');
            push_digits(s, nano / 1_000_000, 3);
        }
        Fraction::AsNeeded if nano % 1_000 == 0 => {
            s.push('.');
            push_digits(s, nano / 1_000, 6);
        }
        Fraction::AsNeeded => {
            s.push('.');
            push_digits(s, nano, 9);
        }
    }
}

fn is_json_number(text: &str) -> bool {
    serde_json::from_str::<serde_json::Number>(text).is_ok()
}

/// Appends a value as JSON. Decimals stay exact (written as number literals);
/// dates and times are strings; bytes are base64 strings.
pub fn render_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
        Value::UInt(u) => out.push_str(itoa::Buffer::new().format(*u)),
        Value::Decimal(d) if is_json_number(d) => out.push_str(d),
        Value::Float(f) if f.is_finite() => {
            let _ = write!(out, "{f}");
        }
        Value::Float(_) => out.push_str("null"),
        Value::Json(j) => out.push_str(j),
        Value::Bytes(b) => {
            push_json_string(out, &base64::engine::general_purpose::STANDARD.encode(b))
        }
        // Texts as they are, without a copy (`text_of` would make one).
        Value::Text(t) | Value::Decimal(t) | Value::Lossy(t) => push_json_string(out, t),
        other => push_json_string(out, &text_of(other).unwrap_or_default()),
    }
}

/// `s` as a JSON string, escaped as serde_json escapes it (`"`, `\\` and
/// control characters; nothing else). A string with none of them, the usual
/// one, is written between quotes as it is.
pub(crate) fn push_json_string(out: &mut String, s: &str) {
    if crate::dms::json_text_stop(s.as_bytes()) == s.len() {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        // serde_json escapes exactly as JSON requires; a String never fails to serialize.
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned()));
    }
}

fn numeric(value: &Value) -> Option<f64> {
    match value {
        Value::Int(i) => Some(*i as f64),
        Value::UInt(u) => Some(*u as f64),
        Value::Float(f) => Some(*f),
        Value::Decimal(d) => d.parse().ok(),
        _ => None,
    }
}

/// Orders values for `order_by`: NULL first, numbers numerically, the rest by text.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
        _ => match (numeric(a), numeric(b)) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            _ => text_of(a).cmp(&text_of(b)),
        },
    }
}

fn integer_text(text: &str) -> Option<Value> {
    let t = text.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Some(Value::Int(i));
    }
    if let Ok(u) = t.parse::<u64>() {
        return Some(Value::UInt(u));
    }
    // An integral decimal such as "12.000".
    let (int, frac) = t.split_once('.')?;
    if frac.bytes().all(|b| b == b'0') {
        return integer_text(int);
    }
    None
}

fn decimal_text(text: &str) -> Option<Value> {
    let t = text.trim();
    let body = t.strip_prefix('-').unwrap_or(t);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| Value::Decimal(t.to_owned()))
}

/// Applies a conversion. NULL converts to NULL.
pub fn convert(value: &Value, conversion: Conversion) -> Result<Value, String> {
    let fail = || format!("cannot convert {} to {:?}", value.family(), conversion).to_lowercase();
    if matches!(value, Value::Null) {
        return Ok(Value::Null);
    }
    if value.is_lossy() {
        return Err(
            "value is lossy (DMS wrote a large integer in exponent notation); re-query the row"
                .to_owned(),
        );
    }
    let converted = match (conversion, value) {
        (Conversion::Int, Value::Int(_) | Value::UInt(_)) => Some(value.clone()),
        (Conversion::Int, Value::Bool(b)) => Some(Value::Int(i64::from(*b))),
        (Conversion::Int, Value::Decimal(t) | Value::Text(t)) => integer_text(t),
        (Conversion::Int, Value::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
            Some(Value::Int(*f as i64))
        }
        (Conversion::Decimal, Value::Int(i)) => Some(Value::Decimal(i.to_string())),
        (Conversion::Decimal, Value::UInt(u)) => Some(Value::Decimal(u.to_string())),
        (Conversion::Decimal, Value::Decimal(t) | Value::Text(t)) => decimal_text(t),
        (Conversion::Float, _) => numeric(value)
            .or_else(|| text_of(value)?.trim().parse().ok())
            .map(Value::Float),
        (Conversion::String, Value::Bytes(b)) => String::from_utf8(b.clone()).ok().map(Value::Text),
        (Conversion::String, _) => text_of(value).map(Value::Text),
        (Conversion::Bool, Value::Bool(b)) => Some(Value::Bool(*b)),
        (Conversion::Bool, Value::Int(0)) => Some(Value::Bool(false)),
        (Conversion::Bool, Value::Int(1)) => Some(Value::Bool(true)),
        (Conversion::Bool, Value::Text(t)) => match t.trim().to_ascii_lowercase().as_str() {
            "1" | "true" => Some(Value::Bool(true)),
            "0" | "false" => Some(Value::Bool(false)),
            _ => None,
        },
        (Conversion::Json, Value::Json(_)) => Some(value.clone()),
        (Conversion::Json, Value::Text(t)) => serde_json::from_str::<serde_json::Value>(t)
            .ok()
            .map(|v| Value::Json(v.to_string())),
        (Conversion::Datetime, Value::DateTime(_)) => Some(value.clone()),
        (Conversion::Datetime, Value::Date(d)) => d.and_hms_opt(0, 0, 0).map(Value::DateTime),
        (Conversion::Datetime, Value::Text(t)) => parse_datetime(t).map(Value::DateTime),
        (Conversion::Date, Value::Date(_)) => Some(value.clone()),
        (Conversion::Date, Value::DateTime(dt)) => Some(Value::Date(dt.date())),
        (Conversion::Date, Value::Text(t)) => parse_date(t).map(Value::Date),
        (Conversion::Time, Value::Time(_)) => Some(value.clone()),
        (Conversion::Time, Value::Text(t)) => parse_time(t).map(Value::Time),
        (Conversion::UnixSeconds, Value::DateTime(dt)) => {
            Some(Value::Int(dt.and_utc().timestamp()))
        }
        (Conversion::UnixSeconds, Value::Text(t)) => {
            parse_datetime(t).map(|dt| Value::Int(dt.and_utc().timestamp()))
        }
        (Conversion::FromUnix, Value::Int(s)) => {
            DateTime::from_timestamp(*s, 0).map(|d| Value::DateTime(d.naive_utc()))
        }
        (Conversion::FromUnix, Value::Text(t) | Value::Decimal(t)) => match integer_text(t) {
            Some(Value::Int(s)) => {
                DateTime::from_timestamp(s, 0).map(|d| Value::DateTime(d.naive_utc()))
            }
            _ => None,
        },
        (Conversion::Binary, Value::Bytes(_)) => Some(value.clone()),
        (Conversion::Binary, Value::Text(t)) => parse_binary(t).map(Value::Bytes),
        _ => None,
    };
    converted.ok_or_else(fail)
}

/// Related rows for one root row: one optional row per join and the rows of
/// each children lookup, in the target's declaration order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Related<'a> {
    /// Per join, the joined row (None: no match, columns read as NULL).
    pub joins: &'a [Option<&'a Row>],
    /// Per children lookup, the child rows (any order; sorted here).
    pub children: &'a [Vec<&'a Row>],
    /// The rows of nested children, by parent row.
    pub nested: Option<&'a dyn NestedRows>,
}

/// The rows of nested children (`parent = ...`) that belong to one row of
/// their parent children.
pub trait NestedRows: std::fmt::Debug + Sync {
    /// The rows of children `index` nested in `parent` (any order).
    fn rows(&self, index: usize, parent: &Row) -> Vec<&Row>;
}

fn lookup<'a>(r: &ColumnRef, root: &'a Row, related: &Related<'a>) -> Result<&'a Value, String> {
    const NULL: &Value = &Value::Null;
    match r {
        ColumnRef::Root(c) => root
            .get(c)
            .ok_or_else(|| format!("root column `{c}` is not in the row")),
        ColumnRef::Join(j, c) => match related.joins.get(*j).copied().flatten() {
            None => Ok(NULL),
            Some(row) => row
                .get(c)
                .ok_or_else(|| format!("joined column `{c}` is not in the joined row")),
        },
    }
}

/// Bytes a children array's text starts with room for (about one element:
/// [`child_array`] makes room for the others from the first one's length).
const CHILD_ARRAY_START: usize = 128;

/// How deep nested children may go (the mapping cannot loop: a parent is
/// always declared first; this bounds a malformed plan).
const MAX_NESTING: usize = 16;

/// Appends the JSON array of children `ci`'s `rows`, sorted by their
/// `order_by`, each shaped by `shape`; an object element holds the arrays
/// of the children nested in it.
fn child_array(
    out: &mut String,
    target: &TargetTable,
    ci: usize,
    shape: &ChildShape,
    mut rows: Vec<&Row>,
    related: &Related<'_>,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_NESTING {
        return Err(format!("children nested deeper than {MAX_NESTING} levels"));
    }
    let spec = target.children.get(ci).ok_or("unknown children")?;
    sort_children(&mut rows, &spec.order_by);
    fn child_value<'r>(row: &'r Row, col: &str, children: &str) -> Result<&'r Value, String> {
        let v = row
            .get(col)
            .ok_or_else(|| format!("child column `{col}` of {children} is not in the child row"))?;
        if v.is_lossy() {
            return Err(format!("child column `{col}` of {children} is lossy"));
        }
        Ok(v)
    }
    let child_value = |row, col| child_value(row, col, &spec.name);
    let start = out.len();
    out.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i == 1 {
            // The other elements are about as long as the first: room for
            // them at once, instead of the text growing (and being copied)
            // by doubling.
            let first = out.len() - start;
            out.reserve(first.saturating_mul(rows.len() - 1));
        }
        if i > 0 {
            out.push(',');
        }
        match shape {
            ChildShape::Scalar(col) => render_json(child_value(row, col)?, out),
            ChildShape::Object(fields) => {
                out.push('{');
                let mut first = true;
                for (key, col) in fields {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    push_json_string(out, key);
                    out.push(':');
                    render_json(child_value(row, col)?, out);
                }
                for (ni, nested) in target.nested_in(ci) {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    push_json_string(out, &nested.name);
                    out.push(':');
                    let rows = related.nested.map(|n| n.rows(ni, row)).unwrap_or_default();
                    let shape = nested
                        .shape
                        .as_ref()
                        .ok_or_else(|| format!("nested children {} have no shape", nested.name))?;
                    child_array(out, target, ni, shape, rows, related, depth + 1)?;
                }
                out.push('}');
            }
        }
    }
    out.push(']');
    Ok(())
}

/// Sorts child rows by the `order_by` columns (a missing column sorts as
/// NULL), stably. Each row's sort values are looked up once, not at every
/// comparison.
fn sort_children(rows: &mut Vec<&Row>, order_by: &[String]) {
    let width = order_by.len();
    if width == 0 || rows.len() < 2 {
        return;
    }
    // Row i's sort values are `values[i * width..(i + 1) * width]`.
    let values: Vec<&Value> = rows
        .iter()
        .flat_map(|row| {
            order_by
                .iter()
                .map(move |column| row.get(column).unwrap_or(&Value::Null))
        })
        .collect();
    let of = |i: usize| values.get(i * width..(i + 1) * width).unwrap_or_default();
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| {
        of(a)
            .iter()
            .zip(of(b))
            .map(|(x, y)| compare_values(x, y))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    *rows = order
        .into_iter()
        .filter_map(|i| rows.get(i).copied())
        .collect();
}

/// Whether a root row passes the target's filter (true without a filter).
pub fn passes_filter(target: &TargetTable, root: &Row) -> bool {
    match &target.filter {
        None => true,
        Some(f) => root
            .get(&f.column)
            .and_then(text_of)
            .is_some_and(|t| f.values.contains(&t)),
    }
}

/// The target key made from root key values (in `target.root_key` order),
/// after the discriminator's value when the target has one.
pub fn target_key(target: &TargetTable, root_key: &[Value]) -> Result<Vec<Value>, EvalError> {
    let discriminator = target
        .discriminator
        .as_ref()
        .map(|(_, instance)| Value::Text(instance.clone()));
    let from_root = target
        .key
        .iter()
        .skip(usize::from(discriminator.is_some()))
        .zip(root_key)
        .map(|(name, v)| {
            let conv = target
                .columns
                .iter()
                .find(|c| &c.name == name)
                .and_then(|c| match &c.rule {
                    Rule::Copy { convert, .. } => *convert,
                    _ => None,
                });
            match conv {
                Some(conv) => convert(v, conv).map_err(|reason| EvalError {
                    column: name.clone(),
                    reason,
                }),
                None => Ok(v.clone()),
            }
        });
    discriminator.into_iter().map(Ok).chain(from_root).collect()
}

/// Builds a target row (values in `target.columns` order) from a root row and
/// its related rows.
pub fn build_row(
    target: &TargetTable,
    root: &Row,
    related: &Related<'_>,
    transforms: &super::Transforms,
) -> Result<Vec<Value>, EvalError> {
    // Filled in place: collecting results into a vector grows it by
    // doubling (the length is not known to the collection).
    let mut values = Vec::with_capacity(target.columns.len());
    for column in &target.columns {
        values.push(
            eval_rule(&column.rule, root, related, transforms, target).map_err(|reason| {
                EvalError {
                    column: column.name.clone(),
                    reason,
                }
            })?,
        );
    }
    Ok(values)
}

fn eval_rule(
    rule: &Rule,
    root: &Row,
    related: &Related<'_>,
    transforms: &super::Transforms,
    target: &TargetTable,
) -> Result<Value, String> {
    match rule {
        Rule::Const(v) => Ok(v.clone()),
        Rule::Copy {
            from,
            convert: conv,
            map,
            map_default,
        } => {
            let v = lookup(from, root, related)?;
            let v = match conv {
                Some(c) => convert(v, *c)?,
                None if v.is_lossy() => {
                    return Err(
                        "value is lossy (DMS wrote a large integer in exponent notation)"
                            .to_owned(),
                    )
                }
                None => v.clone(),
            };
            if map.is_empty() || matches!(v, Value::Null) {
                return Ok(v);
            }
            let key = text_of(&v).unwrap_or_default();
            match (map.get(&key), map_default) {
                (Some(m), _) => Ok(m.clone()),
                (None, Some(d)) => Ok(d.clone()),
                (None, None) => Err(format!(
                    "{} value is not listed in `map` and there is no `map_default`",
                    v.family()
                )),
            }
        }
        Rule::Pack(parts) => {
            let mut out = String::from("{");
            for (i, (key, r)) in parts.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_string(&mut out, key);
                out.push(':');
                let v = lookup(r, root, related)?;
                if v.is_lossy() {
                    return Err(format!("`{key}` is lossy"));
                }
                render_json(v, &mut out);
            }
            out.push('}');
            Ok(Value::Json(out))
        }
        Rule::Children(ci, shape) => {
            let rows: Vec<&Row> = related.children.get(*ci).cloned().unwrap_or_default();
            let mut out = String::with_capacity(CHILD_ARRAY_START);
            child_array(&mut out, target, *ci, shape, rows, related, 0)?;
            Ok(Value::Json(out))
        }
        Rule::Object(ji, fields) => {
            let Some(row) = related.joins.get(*ji).copied().flatten() else {
                return Ok(Value::Null);
            };
            let mut out = String::from("{");
            for (j, (key, col)) in fields.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                push_json_string(&mut out, key);
                out.push(':');
                let v = row
                    .get(col)
                    .ok_or_else(|| format!("joined column `{col}` is not in the joined row"))?;
                if v.is_lossy() {
                    return Err(format!("joined column `{col}` is lossy"));
                }
                render_json(v, &mut out);
            }
            out.push('}');
            Ok(Value::Json(out))
        }
        Rule::Transform(name, args) => {
            let f = transforms
                .get(name)
                .ok_or_else(|| format!("transform {name:?} is not registered"))?;
            let values = args
                .iter()
                .map(|r| lookup(r, root, related))
                .collect::<Result<Vec<_>, _>>()?;
            if values.iter().any(|v| v.is_lossy()) {
                return Err(format!("an input of transform {name:?} is lossy"));
            }
            f(&values).map_err(|e| format!("transform {name:?}: {e}"))
        }
    }
}

#[cfg(test)]
mod format_tests {
    use super::*;
    use chrono::{NaiveDate, NaiveTime};
    use proptest::prelude::*;

    proptest! {
        /// The hand-written formats write what chrono's format strings write.
        #[test]
        fn dates_and_times_format_as_chrono(
            days in -1_000_000i64..4_000_000,
            secs in 0u32..86_400,
            nano in prop_oneof![
                Just(0u32),
                (0u32..1_000).prop_map(|m| m * 1_000_000),
                (0u32..1_000_000).prop_map(|u| u * 1_000),
                0u32..1_000_000_000,
                1_000_000_000u32..2_000_000_000,
            ],
        ) {
            let date = NaiveDate::from_num_days_from_ce_opt(days as i32).unwrap();
            let Some(time) = NaiveTime::from_num_seconds_from_midnight_opt(secs, nano) else {
                return Ok(());
            };
            let dt = date.and_time(time);
            prop_assert_eq!(format_datetime(&dt), dt.format("%Y-%m-%d %H:%M:%S%.f").to_string());
            prop_assert_eq!(format_date(&date), date.format("%Y-%m-%d").to_string());
            prop_assert_eq!(format_time(&time), time.format("%H:%M:%S%.f").to_string());
        }
    }
}

#[cfg(test)]
mod render_tests {
    use super::*;
    use proptest::prelude::*;

    /// What `render_json` wrote before it wrote texts and integers itself:
    /// every string through serde_json, integers through `Display`.
    fn reference(value: &Value) -> String {
        let string = |s: &str| serde_json::to_string(s).unwrap();
        match value {
            Value::Null => "null".to_owned(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::UInt(u) => u.to_string(),
            Value::Decimal(d) if is_json_number(d) => d.clone(),
            Value::Float(f) if f.is_finite() => f.to_string(),
            Value::Float(_) => "null".to_owned(),
            Value::Json(j) => j.clone(),
            Value::Bytes(b) => string(&base64::engine::general_purpose::STANDARD.encode(b)),
            other => string(&text_of(other).unwrap_or_default()),
        }
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z ]{0,20}",
            any::<String>(),
            "[\\x00-\\x1f\"\\\\/\\x7f\u{e9}\u{2028}a]{0,12}",
            ".{0,3}[\"\\\\\\x00-\\x1f].{0,3}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Texts (escaped or not, any Unicode), integers at their bounds
        /// and decimals render as they did through serde_json and `Display`.
        #[test]
        fn values_render_as_the_reference(
            value in prop_oneof![
                text().prop_map(Value::Text),
                text().prop_map(Value::Decimal),
                "-?[0-9]{1,5}(\\.[0-9]{1,3})?".prop_map(Value::Decimal),
                text().prop_map(Value::Lossy),
                any::<i64>().prop_map(Value::Int),
                prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0), Just(-1)].prop_map(Value::Int),
                any::<u64>().prop_map(Value::UInt),
                Just(Value::UInt(u64::MAX)),
                any::<bool>().prop_map(Value::Bool),
                Just(Value::Null),
            ],
            prefix in "[a-z,\\[]{0,3}",
        ) {
            let mut out = prefix.clone();
            render_json(&value, &mut out);
            prop_assert_eq!(out, format!("{prefix}{}", reference(&value)));
        }
    }
}

#[cfg(test)]
mod sort_tests {
    use super::*;
    use crate::dms::ColumnName;
    use proptest::prelude::*;

    /// A child row with `a` and `b` when given (`None`: the row lacks it),
    /// and `n` to tell rows apart.
    fn row(n: usize, a: Option<i64>, b: Option<&str>) -> Row {
        let mut columns = vec![(ColumnName::new("n"), Value::Int(n as i64))];
        if let Some(a) = a {
            columns.push((ColumnName::new("a"), Value::Int(a)));
        }
        if let Some(b) = b {
            columns.push((ColumnName::new("b"), Value::Text(b.to_owned())));
        }
        Row::from_columns(columns)
    }

    proptest! {
        /// Sorting with each row's values looked up once gives the order of
        /// the stable sort that looks them up at every comparison.
        #[test]
        fn children_sort_as_by_lookups(
            cells in proptest::collection::vec(
                (proptest::option::of(0i64..4), proptest::option::of("[xy]{0,2}")),
                0..12,
            ),
            columns in prop_oneof![
                Just(vec![]),
                Just(vec!["a"]),
                Just(vec!["b"]),
                Just(vec!["a", "b"]),
                Just(vec!["b", "a", "missing"]),
            ],
        ) {
            let rows: Vec<Row> = cells
                .iter()
                .enumerate()
                .map(|(n, (a, b))| row(n, *a, b.as_deref()))
                .collect();
            let order_by: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
            let mut expected: Vec<&Row> = rows.iter().collect();
            expected.sort_by(|x, y| {
                order_by
                    .iter()
                    .map(|c| {
                        compare_values(
                            x.get(c).unwrap_or(&Value::Null),
                            y.get(c).unwrap_or(&Value::Null),
                        )
                    })
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            });
            let mut got: Vec<&Row> = rows.iter().collect();
            sort_children(&mut got, &order_by);
            prop_assert_eq!(got, expected);
        }
    }
}
