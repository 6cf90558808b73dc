//! Reading a source table in key order, whatever the source: MySQL
//! ([`KeyRangeReader`]), PostgreSQL ([`PgKeyRangeReader`]), either by URL,
//! or the source of the instance a consolidated table belongs to. Backfill
//! and reconcile read through [`RangeReader`]s made by a [`RangeSource`].

use std::future::Future;

use dms_cdc_core::sources::{Either, Routed};
use dms_cdc_mysql::MysqlSource;
use dms_cdc_postgres::PostgresSource;

use super::pg_range::PgKeyRangeReader;
use super::{CaptureError, CaptureOptions, KeyRange, KeyRangeReader, KeyedRecord};
use crate::dms::TableName;
use crate::mapping::Mapping;

/// The `WHERE` clause (empty: none) of a read of `range` of `table`,
/// whose primary key is `key`: the leading column within `range`'s integer
/// bounds, and, with `range.after`, `(k1, ..., kn) > (v1, ..., vn)` spelled
/// out so that every server uses the key's index: `(k1 > v1) OR (k1 = v1
/// AND k2 > v2) OR ...`. Columns are quoted by `quote`; `value(j, v)` gives
/// the text standing for key column `j`'s value `v` at each use, in order
/// (so it can bind parameters as it goes).
pub(super) fn range_filter<V>(
    table: &TableName,
    key: &[String],
    range: &KeyRange<'_>,
    quote: impl Fn(&str) -> String,
    mut value: impl FnMut(usize, &mysql_async::Value) -> V,
) -> Result<String, CaptureError>
where
    V: std::fmt::Display,
{
    let mut conditions = Vec::new();
    let lead = quote(&key[0]);
    if let Some(lo) = range.lead_from {
        conditions.push(format!("{lead} >= {lo}"));
    }
    if let Some(hi) = range.lead_upto {
        conditions.push(format!("{lead} <= {hi}"));
    }
    if let Some(after) = range.after {
        if after.len() != key.len() {
            return Err(CaptureError::Setup(format!(
                "table {table}: a key of {} values for a primary key of {} columns",
                after.len(),
                key.len()
            )));
        }
        let mut any = Vec::new();
        for i in 0..key.len() {
            let mut all = Vec::new();
            for (j, column) in key.iter().enumerate().take(i + 1) {
                let op = if j == i { ">" } else { "=" };
                all.push(format!("{} {op} {}", quote(column), value(j, &after[j])));
            }
            any.push(format!("({})", all.join(" AND ")));
        }
        conditions.push(format!("({})", any.join(" OR ")));
    }
    Ok(if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    })
}

/// One table of one source, read in key order as `load` records.
#[derive(Debug, Clone)]
pub enum RangeReader {
    /// A MySQL table and the pool to read it with.
    Mysql(KeyRangeReader, mysql_async::Pool),
    /// A PostgreSQL table (the reader has its pool).
    Postgres(PgKeyRangeReader),
}

impl RangeReader {
    /// The table, as the records (and the mapping) name it.
    pub fn table(&self) -> &TableName {
        match self {
            RangeReader::Mysql(r, _) => r.table(),
            RangeReader::Postgres(r) => r.table(),
        }
    }

    /// The primary key's columns, in key order.
    pub fn key_columns(&self) -> &[String] {
        match self {
            RangeReader::Mysql(r, _) => r.key_columns(),
            RangeReader::Postgres(r) => r.key_columns(),
        }
    }

    /// Whether the key is one integer column.
    pub fn integer_key(&self) -> bool {
        self.integer_lead() && self.key_columns().len() == 1
    }

    /// Whether the leading key column is an integer (ranges of it can be split).
    pub fn integer_lead(&self) -> bool {
        match self {
            RangeReader::Mysql(r, _) => r.integer_lead(),
            RangeReader::Postgres(r) => r.integer_lead(),
        }
    }

    /// The error of a range split on a key whose leading column is not an integer.
    pub fn not_integer_lead(&self) -> CaptureError {
        CaptureError::Setup(format!(
            "table {}: the leading primary key column `{}` is not an integer, so its keys cannot be split into ranges (--part, --parallel, --keys); load it as one range",
            self.table(),
            self.key_columns()[0]
        ))
    }

    /// The smallest and greatest leading key within `lo..=hi` (`None`: no
    /// row there). Needs an integer leading column.
    pub async fn bounds_within(
        &self,
        lo: i128,
        hi: i128,
    ) -> Result<Option<(i128, i128)>, CaptureError> {
        if !self.integer_lead() {
            return Err(self.not_integer_lead());
        }
        match self {
            RangeReader::Mysql(r, pool) => r.bounds_within(pool, lo, hi).await,
            RangeReader::Postgres(r) => r.bounds_within(lo, hi).await,
        }
    }

    /// The server's estimate of the table's rows (for progress).
    pub async fn estimated_rows(&self) -> Result<u64, CaptureError> {
        match self {
            RangeReader::Mysql(r, pool) => r.estimated_rows(pool).await,
            RangeReader::Postgres(r) => r.estimated_rows().await,
        }
    }

    /// Up to `limit` rows of `range`, in key order, as `load` records
    /// stamped with the source's clock read before the rows.
    pub async fn read(
        &self,
        range: &KeyRange<'_>,
        limit: usize,
    ) -> Result<Vec<KeyedRecord>, CaptureError> {
        if (range.lead_from.is_some() || range.lead_upto.is_some()) && !self.integer_lead() {
            return Err(self.not_integer_lead());
        }
        match self {
            RangeReader::Mysql(r, pool) => r.read(pool, range, limit).await,
            RangeReader::Postgres(r) => r.read(range, limit).await,
        }
    }

    /// The rows of `keys` (each the key columns' values as text), in key
    /// order, as `load` records (a repair's fresh read).
    pub async fn read_keys(&self, keys: &[Vec<String>]) -> Result<Vec<KeyedRecord>, CaptureError> {
        match self {
            RangeReader::Mysql(r, pool) => r.read_keys(pool, keys).await,
            RangeReader::Postgres(r) => r.read_keys(keys).await,
        }
    }

    /// The greatest value of `column` in the table (as text; `None`: no
    /// row), for the cutover's sequence check.
    pub async fn max_of(&self, column: &str) -> Result<Option<String>, CaptureError> {
        match self {
            RangeReader::Mysql(r, pool) => r.max_of(pool, column).await,
            RangeReader::Postgres(r) => r.max_of(column).await,
        }
    }
}

/// A source whose tables can be read in key order.
pub trait RangeSource: dms_cdc_core::source::Source + Clone + 'static {
    /// A reader of `table` (as `mapping` names it: the schema its records
    /// carry), in the database that holds it.
    fn range_reader(
        &self,
        mapping: &Mapping,
        table: &TableName,
        options: &CaptureOptions,
    ) -> impl Future<Output = Result<RangeReader, CaptureError>> + Send;
}

impl RangeSource for MysqlSource {
    async fn range_reader(
        &self,
        _mapping: &Mapping,
        table: &TableName,
        options: &CaptureOptions,
    ) -> Result<RangeReader, CaptureError> {
        let reader = KeyRangeReader::new(self.pool(), table, options).await?;
        Ok(RangeReader::Mysql(reader, self.pool().clone()))
    }
}

impl RangeSource for PostgresSource {
    async fn range_reader(
        &self,
        _mapping: &Mapping,
        table: &TableName,
        options: &CaptureOptions,
    ) -> Result<RangeReader, CaptureError> {
        let reader = PgKeyRangeReader::new(self.pool().clone(), table, table, options).await?;
        Ok(RangeReader::Postgres(reader))
    }
}

impl<A: RangeSource, B: RangeSource> RangeSource for Either<A, B> {
    async fn range_reader(
        &self,
        mapping: &Mapping,
        table: &TableName,
        options: &CaptureOptions,
    ) -> Result<RangeReader, CaptureError> {
        match self {
            Either::A(a) => a.range_reader(mapping, table, options).await,
            Either::B(b) => b.range_reader(mapping, table, options).await,
        }
    }
}

impl<S> RangeSource for Routed<S>
where
    S: RangeSource,
    S::Error: std::fmt::Display + Send,
{
    /// The table is read in the database of its instance, in the schema it
    /// has there; its records carry the instance's schema, as its DMS task
    /// writes them.
    async fn range_reader(
        &self,
        mapping: &Mapping,
        table: &TableName,
        options: &CaptureOptions,
    ) -> Result<RangeReader, CaptureError> {
        let (source, in_source) = self.source_of(mapping, table).ok_or_else(|| {
            CaptureError::Setup(format!(
                "table {table}: no source is configured for it (name one URL per source instance, or one without a name)"
            ))
        })?;
        let mut reader = source.range_reader(mapping, &in_source, options).await?;
        if in_source != *table {
            reader.rename(table);
        }
        Ok(reader)
    }
}

impl RangeReader {
    /// Makes the records name `table` (the schema of the instance's stream).
    fn rename(&mut self, table: &TableName) {
        match self {
            RangeReader::Mysql(r, _) => r.set_record_table(table),
            RangeReader::Postgres(r) => r.set_record_table(table),
        }
    }
}

/// The source adapter of the commands (and of the functions): MySQL or
/// PostgreSQL by the URL's scheme, one per instance of a consolidating
/// mapping (`eu=postgres://... us=postgres://...`).
pub type Sources = dms_cdc_core::sources::PerInstance<
    dms_cdc_core::sources::OneOf<dms_cdc_mysql::Mysql, dms_cdc_postgres::Postgres>,
>;

/// The source of [`Sources`].
pub type AnySource = Routed<Either<MysqlSource, PostgresSource>>;

#[cfg(test)]
mod tests {
    #[test]
    fn range_filter_spells_out_the_tuple_comparison() {
        use mysql_async::Value;
        let table = crate::dms::TableName::new("s", "t");
        let key = ["a".to_owned(), "b".to_owned()];
        let after = [Value::Int(1), Value::Int(2)];
        let mut bound = Vec::new();
        let range = super::KeyRange {
            after: Some(&after),
            lead_from: Some(5),
            lead_upto: None,
        };
        let sql = super::range_filter(
            &table,
            &key,
            &range,
            |c| format!("`{c}`"),
            |_, v| {
                bound.push(v.clone());
                "?"
            },
        )
        .unwrap();
        assert_eq!(
            sql,
            " WHERE `a` >= 5 AND ((`a` > ?) OR (`a` = ? AND `b` > ?))"
        );
        assert_eq!(
            bound,
            vec![Value::Int(1), Value::Int(1), Value::Int(2)],
            "the values in the order they are bound"
        );
        let all = super::range_filter(
            &table,
            &key,
            &super::KeyRange::default(),
            |c| c.to_owned(),
            |_, _| "?",
        );
        assert_eq!(all.unwrap(), "");
        let short = super::KeyRange {
            after: Some(&after[..1]),
            ..super::KeyRange::default()
        };
        let err = super::range_filter(&table, &key, &short, |c| c.to_owned(), |_, _| "?")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a key of 1 values for a primary key of 2 columns"),
            "{err}"
        );
    }
}
