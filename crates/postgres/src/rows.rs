//! Reading the target's rows back as text ([`TargetRows`] for
//! [`PostgresTarget`]), for `dms-cdc reconcile`.

use dms_cdc_core::dms::Value;
use dms_cdc_core::mapping::TargetTable;
use dms_cdc_core::target::{rows_per_statement, TargetRows, TargetSequences};
use tokio_postgres::types::ToSql;

use crate::param::Param;
use crate::target::{placeholders, quote, tuples, PostgresTarget, TargetError};

impl PostgresTarget {
    /// [`Self::text_columns`], read from the schema once per table.
    async fn select_list(
        &self,
        table: &TargetTable,
        names: &[&str],
    ) -> Result<String, TargetError> {
        let cached = self
            .select_lists
            .lock()
            .ok()
            .and_then(|lists| lists.get(&table.table).cloned());
        if let Some(select) = cached {
            return Ok(select);
        }
        let select = self.text_columns(table, names).await?;
        if let Ok(mut lists) = self.select_lists.lock() {
            lists.insert(table.table.clone(), select.clone());
        }
        Ok(select)
    }

    /// The select list of `names` as text, `bytea` as lower-case hex.
    async fn text_columns(
        &self,
        table: &TargetTable,
        names: &[&str],
    ) -> Result<String, TargetError> {
        let what = format!("read the columns of {}", table.table);
        let client = self
            .pool
            .get()
            .await
            .map_err(TargetError::bookkeeping(what.clone()))?;
        let binary: Vec<String> = client
            .query(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1 AND data_type = 'bytea'",
                &[&table.table],
            )
            .await
            .map_err(TargetError::bookkeeping(what))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok(names
            .iter()
            .map(|c| {
                if binary.iter().any(|b| b == c) {
                    format!("encode({}, 'hex')", quote(c))
                } else {
                    format!("{}::text", quote(c))
                }
            })
            .collect::<Vec<_>>()
            .join(", "))
    }
}

impl TargetRows for PostgresTarget {
    type Error = TargetError;

    async fn rows_by_key(
        &self,
        table: &TargetTable,
        keys: &[Vec<Value>],
    ) -> Result<Vec<Vec<Option<String>>>, TargetError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let names = table.column_names();
        let select = self.select_list(table, &names).await?;
        let width = table.key.len();
        let key_cols = table
            .key
            .iter()
            .map(|k| quote(k))
            .collect::<Vec<_>>()
            .join(", ");
        let what = format!("read rows of {}", table.table);
        let client = self
            .pool
            .get()
            .await
            .map_err(TargetError::bookkeeping(what.clone()))?;
        let mut out = Vec::new();
        for chunk in keys.chunks(rows_per_statement(self.chunk_size, width)) {
            let list = tuples(1, width, chunk.len(), "");
            let sql = format!(
                "SELECT {select} FROM {} WHERE ({key_cols}) IN ({list})",
                quote(&table.table)
            );
            let statement = client
                .prepare(&sql)
                .await
                .map_err(TargetError::bookkeeping(what.clone()))?;
            let params: Vec<Param> = chunk.iter().flat_map(|k| k.iter().map(Param)).collect();
            let refs: Vec<&(dyn ToSql + Sync)> =
                params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
            let rows = client
                .query(&statement, &refs)
                .await
                .map_err(TargetError::bookkeeping(what.clone()))?;
            out.extend(rows.iter().map(|r| {
                (0..r.len())
                    .map(|i| r.get::<_, Option<String>>(i))
                    .collect()
            }));
        }
        Ok(out)
    }

    async fn keys_after(
        &self,
        table: &TargetTable,
        after: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<Vec<String>>, TargetError> {
        // Qualified: an output column of the same name (the text cast)
        // would otherwise be what ORDER BY sorts, as text.
        let key_cols = table
            .key
            .iter()
            .map(|k| format!("t.{}", quote(k)))
            .collect::<Vec<_>>()
            .join(", ");
        let key_text = table
            .key
            .iter()
            .map(|k| format!("t.{}::text", quote(k)))
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = format!("SELECT {key_text} FROM {} AS t", quote(&table.table));
        let values: Vec<Value> = after
            .unwrap_or_default()
            .iter()
            .map(|a| Value::Text(a.clone()))
            .collect();
        if after.is_some() {
            sql.push_str(&format!(
                " WHERE ({key_cols}) > ({})",
                placeholders(1, values.len())
            ));
        }
        sql.push_str(&format!(" ORDER BY {key_cols} LIMIT {limit}"));
        let what = format!("read keys of {}", table.table);
        let client = self
            .pool
            .get()
            .await
            .map_err(TargetError::bookkeeping(what.clone()))?;
        let statement = client
            .prepare(&sql)
            .await
            .map_err(TargetError::bookkeeping(what.clone()))?;
        let params: Vec<Param> = values.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = client
            .query(&statement, &refs)
            .await
            .map_err(TargetError::bookkeeping(what))?;
        Ok(rows
            .iter()
            .map(|r| (0..r.len()).map(|i| r.get::<_, String>(i)).collect())
            .collect())
    }
}

impl TargetSequences for PostgresTarget {
    type Error = TargetError;

    async fn sequences(&self, table: &TargetTable) -> Result<Vec<(String, i128)>, TargetError> {
        let what = format!("read the sequences of {}", table.table);
        let client = self
            .pool
            .get()
            .await
            .map_err(TargetError::bookkeeping(what.clone()))?;
        let mut out = Vec::new();
        for column in &table.key {
            // Serial and identity columns alike; NULL for other columns.
            let row = client
                .query_one(
                    "SELECT s.last_value, s.start_value, s.increment_by
                     FROM pg_sequences s
                     WHERE format('%I.%I', s.schemaname, s.sequencename)::regclass
                         = pg_get_serial_sequence(format('%I', $1::text), $2)::regclass",
                    &[&table.table, column],
                )
                .await;
            let Ok(row) = row else {
                continue;
            };
            let last: Option<i64> = row.get(0);
            let start: i64 = row.get(1);
            let step: i64 = row.get(2);
            let next = match last {
                Some(l) => i128::from(l) + i128::from(step),
                None => i128::from(start),
            };
            out.push((column.clone(), next));
        }
        Ok(out)
    }

    async fn raise_sequence(
        &self,
        table: &TargetTable,
        column: &str,
        max: i128,
    ) -> Result<(), TargetError> {
        let what = format!("raise the sequence of {}.{column}", table.table);
        let client = self
            .pool
            .get()
            .await
            .map_err(TargetError::bookkeeping(what.clone()))?;
        let max = i64::try_from(max.max(1)).unwrap_or(i64::MAX);
        // Never lowers it, and never below a key the table holds.
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence(format('%I', $1::text), $2),
                           GREATEST($3::bigint,
                                    (SELECT COALESCE(MAX({c})::bigint, 0) FROM {t}),
                                    (SELECT COALESCE(last_value, 0) FROM pg_sequences s
                                     WHERE format('%I.%I', s.schemaname, s.sequencename)::regclass
                                         = pg_get_serial_sequence(format('%I', $1::text), $2)::regclass)))",
            c = quote(column),
            t = quote(&table.table)
        );
        client
            .execute(&sql, &[&table.table, &column, &max])
            .await
            .map(|_| ())
            .map_err(TargetError::bookkeeping(what))
    }
}
