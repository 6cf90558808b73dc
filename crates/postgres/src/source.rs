//! Re-querying a PostgreSQL source for what one change does not carry.
//!
//! Contract (as for MySQL, [`dms_cdc_core::source`]): every read of one
//! batch happens in one `REPEATABLE READ, READ ONLY` transaction, so a
//! target row is built from one point in time; each lookup is one query per
//! chunk of keys, never one per record.
//!
//! Keys are bound as one `text[]` per key column and cast to the column's
//! own type on the server (`WHERE id = ANY($1::text[]::bigint[])`, or
//! `(a, b) IN (SELECT * FROM unnest($1::text[]::t1[], $2::text[]::t2[]))`
//! for several columns), so the key index is used whatever the type, and a
//! key the column cannot hold is a record-caused error, not a scan. Values
//! are read as text in a UTC session and typed from the column's type:
//! integers, `numeric` (exact, as a decimal), floats, `boolean`,
//! `timestamp` / `timestamptz` (UTC) / `date` / `time`, `json` / `jsonb`,
//! `bytea`, arrays (as JSON), and anything else (`uuid`, enums, text) as
//! text. A column DMS leaves out of an update's image (an unchanged TOASTed
//! value) makes the image incomplete, so the row is re-read here.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use deadpool_postgres::{Object, Pool};
use dms_cdc_core::dms::{ColumnName, Row, SharedNames, TableName, Value};
use dms_cdc_core::fault::{Classify, Fault};
use dms_cdc_core::mapping::{Mapping, TargetTable};
use dms_cdc_core::plan::{KeyPart, KeyTuple};
use dms_cdc_core::source::{
    fetch_rows, lookup_in_rows, reverse_lookup_rows, FetchedRows, SelectIn, SnapshotStats,
    UnmatchedKey,
};

use crate::fault::DriverError;

/// A source read failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The query failed (the message never carries row values).
    #[error("source query on {table}: {}", crate::fault::describe(source))]
    Query {
        /// The table read.
        table: String,
        /// The driver error.
        #[source]
        source: DriverError,
    },
    /// A table or column the mapping reads is not in the source.
    #[error("source table {table}: {problem}")]
    Schema {
        /// The table.
        table: String,
        /// What is missing.
        problem: String,
    },
    /// A returned row matches none of the keys asked.
    #[error(transparent)]
    UnmatchedKey(#[from] UnmatchedKey),
}

impl Classify for SourceError {
    fn fault(&self) -> Fault {
        match self {
            SourceError::Query { source, .. } => crate::fault::of(source),
            // The mapping and the source disagree: every batch would fail
            // the same way until one of them is fixed.
            SourceError::Schema { .. } => {
                Fault::Infrastructure(dms_cdc_core::fault::Infrastructure::Configuration)
            }
            SourceError::UnmatchedKey(_) => Fault::Record,
        }
    }
}

fn query_error(table: &TableName) -> impl FnOnce(DriverError) -> SourceError + '_ {
    move |source| SourceError::Query {
        table: table.to_string(),
        source,
    }
}

/// How a column's text becomes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Decimal,
    Float,
    Bool,
    Timestamp,
    TimestampTz,
    Date,
    Time,
    Json,
    Bytes,
    /// Read as JSON (`to_jsonb(column)`).
    Array,
    Text,
}

impl Kind {
    /// The kind of a type as `format_type` spells it, with its category.
    fn of(type_name: &str, category: &str) -> Kind {
        if category == "A" {
            return Kind::Array;
        }
        let base = type_name.split('(').next().unwrap_or(type_name).trim();
        match base {
            "smallint" | "integer" | "bigint" => Kind::Int,
            "numeric" => Kind::Decimal,
            "real" | "double precision" => Kind::Float,
            "boolean" => Kind::Bool,
            "timestamp without time zone" => Kind::Timestamp,
            "timestamp with time zone" => Kind::TimestampTz,
            "date" => Kind::Date,
            "time without time zone" => Kind::Time,
            "json" | "jsonb" => Kind::Json,
            "bytea" => Kind::Bytes,
            _ => Kind::Text,
        }
    }

    /// The select expression of `column` (quoted).
    fn select(self, quoted: &str) -> String {
        match self {
            Kind::Array => format!("to_jsonb({quoted})::text"),
            _ => format!("{quoted}::text"),
        }
    }

    /// The value of the text PostgreSQL gives for it (in a UTC session).
    fn value(self, text: String) -> Value {
        let parsed = match self {
            Kind::Int => text.parse().ok().map(Value::Int),
            Kind::Decimal if text.bytes().any(|b| b.is_ascii_digit()) => {
                return Value::Decimal(text)
            }
            Kind::Float => text.parse().ok().map(Value::Float),
            Kind::Bool => match text.as_str() {
                "t" | "true" => Some(Value::Bool(true)),
                "f" | "false" => Some(Value::Bool(false)),
                _ => None,
            },
            Kind::Timestamp => chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f")
                .ok()
                .map(Value::DateTime),
            // `2026-01-02 03:04:05.5+00` in a UTC session.
            Kind::TimestampTz => text
                .rsplit_once(['+', '-'])
                .filter(|(_, zone)| zone.chars().all(|c| c.is_ascii_digit() || c == ':'))
                .and_then(|(local, _)| {
                    chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S%.f").ok()
                })
                .map(Value::DateTime),
            Kind::Date => chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                .ok()
                .map(Value::Date),
            Kind::Time => chrono::NaiveTime::parse_from_str(&text, "%H:%M:%S%.f")
                .ok()
                .map(Value::Time),
            Kind::Json | Kind::Array => return Value::Json(text),
            Kind::Bytes => text.strip_prefix("\\x").and_then(|hex| {
                (0..hex.len() / 2)
                    .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                    .collect::<Option<Vec<u8>>>()
                    .map(Value::Bytes)
            }),
            Kind::Decimal | Kind::Text => None,
        };
        // What has no typed value here (NaN, infinity, BC dates, 24:00)
        // stays text, as DMS writes it.
        parsed.unwrap_or(Value::Text(text))
    }
}

/// A column of a source table: its type as `format_type` spells it.
#[derive(Debug, Clone)]
struct ColumnType {
    name: String,
    kind: Kind,
}

/// Column types per table, read once per process (`pg_attribute`).
type TypeCache = Arc<Mutex<BTreeMap<TableName, Arc<BTreeMap<String, ColumnType>>>>>;

/// A PostgreSQL source: one consistent read-only snapshot per batch.
#[derive(Clone)]
pub struct PostgresSource {
    pool: Pool,
    types: TypeCache,
}

impl std::fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSource").finish_non_exhaustive()
    }
}

impl From<Pool> for PostgresSource {
    fn from(pool: Pool) -> Self {
        PostgresSource {
            pool,
            types: Arc::default(),
        }
    }
}

impl PostgresSource {
    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}

impl dms_cdc_core::source::Source for PostgresSource {
    type Error = SourceError;
    type Snapshot = PostgresSnapshot;

    async fn snapshot(
        &self,
        _mapping: &Mapping,
        chunk_size: usize,
    ) -> Result<PostgresSnapshot, SourceError> {
        let table = TableName::new("", "(snapshot)");
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| query_error(&table)(DriverError::Pool(e)))?;
        client
            .batch_execute(
                "SET TIME ZONE 'UTC'; \
                 BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            )
            .await
            .map_err(|e| query_error(&table)(DriverError::Postgres(e)))?;
        Ok(PostgresSnapshot {
            client: Some(client),
            chunk_size: chunk_size.max(1),
            stats: SnapshotStats::default(),
            types: self.types.clone(),
        })
    }
}

/// One batch's consistent, read-only view of the source.
pub struct PostgresSnapshot {
    /// `None` once finished.
    client: Option<Object>,
    chunk_size: usize,
    /// Reads so far.
    pub stats: SnapshotStats,
    types: TypeCache,
}

impl Drop for PostgresSnapshot {
    fn drop(&mut self) {
        // Dropped on an error path inside its transaction: the connection
        // leaves the pool (and closes), which ends the transaction.
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

/// `"name"`
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl PostgresSnapshot {
    fn client(&self) -> &Object {
        self.client
            .as_ref()
            .expect("a snapshot in use is not finished")
    }

    /// The column types of `table`, read once per process.
    async fn types(
        &mut self,
        table: &TableName,
    ) -> Result<Arc<BTreeMap<String, ColumnType>>, SourceError> {
        if let Some(t) = self.types.lock().ok().and_then(|c| c.get(table).cloned()) {
            return Ok(t);
        }
        let rows = self
            .client()
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), t.typcategory::text \
                 FROM pg_attribute a \
                 JOIN pg_class c ON c.oid = a.attrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 JOIN pg_type t ON t.oid = a.atttypid \
                 WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
                &[&table.schema.as_str(), &table.table.as_str()],
            )
            .await
            .map_err(|e| query_error(table)(DriverError::Postgres(e)))?;
        if rows.is_empty() {
            return Err(SourceError::Schema {
                table: table.to_string(),
                problem: "does not exist (or this user cannot see it)".into(),
            });
        }
        let types: BTreeMap<String, ColumnType> = rows
            .iter()
            .map(|r| {
                let name: String = r.get(0);
                let type_name: String = r.get(1);
                let category: String = r.get(2);
                let kind = Kind::of(&type_name, &category);
                (
                    name,
                    ColumnType {
                        name: type_name,
                        kind,
                    },
                )
            })
            .collect();
        let types = Arc::new(types);
        if let Ok(mut cache) = self.types.lock() {
            cache.insert(table.clone(), types.clone());
        }
        Ok(types)
    }

    /// Ends the snapshot.
    pub async fn finish(mut self) -> Result<SnapshotStats, SourceError> {
        let table = TableName::new("", "(snapshot)");
        if let Some(client) = self.client.take() {
            client
                .batch_execute("COMMIT")
                .await
                .map_err(|e| query_error(&table)(DriverError::Postgres(e)))?;
        }
        Ok(self.stats)
    }
}

impl SelectIn for PostgresSnapshot {
    type Error = SourceError;

    async fn select_in(
        &mut self,
        table: &TableName,
        columns: &[String],
        key_columns: &[String],
        tuples: &[KeyTuple],
    ) -> Result<Vec<Row>, SourceError> {
        let types = self.types(table).await?;
        let column_type = |c: &str| {
            types.get(c).ok_or_else(|| SourceError::Schema {
                table: table.to_string(),
                problem: format!("has no column {c:?}"),
            })
        };
        let mut kinds = Vec::with_capacity(columns.len());
        let mut select = Vec::with_capacity(columns.len());
        for c in columns {
            let t = column_type(c)?;
            kinds.push(t.kind);
            select.push(t.kind.select(&quote(c)));
        }
        let key_types: Vec<&str> = key_columns
            .iter()
            .map(|c| column_type(c).map(|t| t.name.as_str()))
            .collect::<Result<_, _>>()?;
        let from = format!("{}.{}", quote(&table.schema), quote(&table.table));
        let sql = if key_columns.len() == 1 {
            format!(
                "SELECT {} FROM {from} WHERE {} = ANY($1::text[]::{}[])",
                select.join(", "),
                quote(&key_columns[0]),
                key_types[0]
            )
        } else {
            let arrays: Vec<String> = key_types
                .iter()
                .enumerate()
                .map(|(i, t)| format!("${}::text[]::{t}[]", i + 1))
                .collect();
            format!(
                "SELECT {} FROM {from} WHERE ({}) IN (SELECT * FROM unnest({}))",
                select.join(", "),
                key_columns
                    .iter()
                    .map(|c| quote(c))
                    .collect::<Vec<_>>()
                    .join(", "),
                arrays.join(", ")
            )
        };
        let statement = self
            .client()
            .prepare_cached(&sql)
            .await
            .map_err(|e| query_error(table)(DriverError::Postgres(e)))?;
        // Shared by the rows (`Row::sharing`): the select list is in name order.
        let names: SharedNames = columns
            .iter()
            .map(|c| ColumnName::from(c.as_str()))
            .collect();
        let mut out = Vec::new();
        for chunk in tuples.chunks(self.chunk_size) {
            // One text array per key column.
            let arrays: Vec<Vec<Option<String>>> = (0..key_columns.len())
                .map(|i| {
                    chunk
                        .iter()
                        .map(|t| t.0.get(i).and_then(key_text))
                        .collect()
                })
                .collect();
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = arrays
                .iter()
                .map(|a| a as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            let rows = self
                .client()
                .query(&statement, &params)
                .await
                .map_err(|e| query_error(table)(DriverError::Postgres(e)))?;
            self.stats.select_count += 1;
            self.stats.row_count += rows.len();
            out.reserve(rows.len());
            for row in rows {
                let values = kinds
                    .iter()
                    .enumerate()
                    .map(|(i, kind)| {
                        let text: Option<String> = row.get(i);
                        text.map_or(Value::Null, |t| kind.value(t))
                    })
                    .collect();
                out.push(Row::sharing(&names, values));
            }
        }
        Ok(out)
    }
}

/// A key part as the text PostgreSQL casts to the column's type.
fn key_text(part: &KeyPart) -> Option<String> {
    match part {
        KeyPart::Int(i) => Some(i.to_string()),
        other => match other.to_value() {
            Value::Null => None,
            Value::Bool(b) => Some(b.to_string()),
            Value::Bytes(b) => Some(format!(
                "\\x{}",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            )),
            Value::DateTime(d) => Some(d.format("%Y-%m-%d %H:%M:%S%.f").to_string()),
            v => dms_cdc_core::mapping::text_of(&v),
        },
    }
}

impl dms_cdc_core::source::SourceSnapshot for PostgresSnapshot {
    type Error = SourceError;

    async fn reverse_lookup(
        &mut self,
        target: &TargetTable,
        columns: &[String],
        tuples: &[KeyTuple],
    ) -> Result<Vec<(KeyTuple, KeyTuple)>, SourceError> {
        reverse_lookup_rows(self, target, columns, tuples).await
    }

    async fn lookup_in(
        &mut self,
        table: &TableName,
        select: &[String],
        match_columns: &[String],
        tuples: &[KeyTuple],
    ) -> Result<Vec<(KeyTuple, KeyTuple)>, SourceError> {
        lookup_in_rows(self, table, select, match_columns, tuples).await
    }

    async fn fetch(
        &mut self,
        target: &TargetTable,
        keys: &[KeyTuple],
    ) -> Result<FetchedRows, SourceError> {
        fetch_rows(self, target, keys).await
    }

    async fn finish(self) -> Result<SnapshotStats, SourceError> {
        PostgresSnapshot::finish(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_becomes_the_column_types_value() {
        let v = |kind, t: &str| Kind::value(kind, t.to_owned());
        assert_eq!(v(Kind::Int, "-42"), Value::Int(-42));
        assert_eq!(v(Kind::Decimal, "4.50"), Value::Decimal("4.50".into()));
        assert_eq!(v(Kind::Decimal, "NaN"), Value::Text("NaN".into()));
        assert_eq!(v(Kind::Bool, "t"), Value::Bool(true));
        assert_eq!(v(Kind::Bytes, "\\x00ff"), Value::Bytes(vec![0, 255]));
        assert_eq!(
            v(Kind::Json, "{\"a\": 1}"),
            Value::Json("{\"a\": 1}".into())
        );
        let at = chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
            .unwrap()
            .and_hms_micro_opt(3, 4, 5, 500_000)
            .unwrap();
        assert_eq!(
            v(Kind::Timestamp, "2026-01-02 03:04:05.5"),
            Value::DateTime(at)
        );
        assert_eq!(
            v(Kind::TimestampTz, "2026-01-02 03:04:05.5+00"),
            Value::DateTime(at)
        );
        assert_eq!(
            v(Kind::Timestamp, "infinity"),
            Value::Text("infinity".into())
        );
        assert_eq!(Kind::of("numeric(8,2)", "N"), Kind::Decimal);
        assert_eq!(Kind::of("integer[]", "A"), Kind::Array);
        assert_eq!(Kind::of("uuid", "U"), Kind::Text);
    }
}
