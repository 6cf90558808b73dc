//! Reading the target's rows back as text ([`TargetRows`] for
//! [`MysqlTarget`]), for `dms-cdc reconcile`.

use dms_cdc_core::dms::Value;
use dms_cdc_core::mapping::TargetTable;
use dms_cdc_core::target::{rows_per_statement, TargetRows, TargetSequences};
use mysql_async::prelude::*;

use crate::source::{quote, to_param};
use crate::target::{MysqlTarget, TargetError};

/// A driver value as text: dates as `YYYY-MM-DD HH:MM:SS[.ffffff]`, times
/// as `[-]HH:MM:SS[.ffffff]`, bytes as they are (lossy UTF-8).
fn text(value: mysql_async::Value) -> Option<String> {
    use mysql_async::Value as V;
    let fraction = |us: u32| {
        if us == 0 {
            String::new()
        } else {
            format!(".{us:06}")
        }
    };
    Some(match value {
        V::NULL => return None,
        V::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
        V::Int(i) => i.to_string(),
        V::UInt(u) => u.to_string(),
        V::Float(f) => f.to_string(),
        V::Double(f) => f.to_string(),
        V::Date(y, mo, d, h, mi, s, us) => format!(
            "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{}",
            fraction(us)
        ),
        V::Time(neg, days, h, mi, s, us) => format!(
            "{}{:02}:{mi:02}:{s:02}{}",
            if neg { "-" } else { "" },
            u32::from(h) + days * 24,
            fraction(us)
        ),
    })
}

const BINARY_TYPES: [&str; 6] = [
    "binary",
    "varbinary",
    "tinyblob",
    "blob",
    "mediumblob",
    "longblob",
];

impl MysqlTarget {
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

    /// The select list of `names` with binary columns as lower-case hex.
    async fn text_columns(
        &self,
        table: &TargetTable,
        names: &[&str],
    ) -> Result<String, TargetError> {
        let what = format!("read the columns of {}", table.table);
        let mut conn = self
            .pool
            .get_conn()
            .await
            .map_err(TargetError::bookkeeping(what.clone()))?;
        let binary: Vec<String> = conn
            .exec(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND LOWER(DATA_TYPE) IN (?, ?, ?, ?, ?, ?)",
                (
                    &table.table,
                    BINARY_TYPES[0],
                    BINARY_TYPES[1],
                    BINARY_TYPES[2],
                    BINARY_TYPES[3],
                    BINARY_TYPES[4],
                    BINARY_TYPES[5],
                ),
            )
            .await
            .map_err(TargetError::bookkeeping(what))?;
        Ok(names
            .iter()
            .map(|c| {
                if binary.iter().any(|b| b.eq_ignore_ascii_case(c)) {
                    format!("LOWER(HEX({}))", quote(c))
                } else {
                    quote(c)
                }
            })
            .collect::<Vec<_>>()
            .join(", "))
    }
}

impl TargetRows for MysqlTarget {
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
        let key_cols = table
            .key
            .iter()
            .map(|k| quote(k))
            .collect::<Vec<_>>()
            .join(", ");
        let one = format!("({})", vec!["?"; table.key.len()].join(", "));
        let what = format!("read rows of {}", table.table);
        let mut conn = self
            .pool
            .get_conn()
            .await
            .map_err(TargetError::bookkeeping(what.clone()))?;
        let mut out = Vec::new();
        for chunk in keys.chunks(rows_per_statement(self.chunk_size, table.key.len())) {
            let sql = format!(
                "SELECT {select} FROM {} WHERE ({key_cols}) IN ({})",
                quote(&table.table),
                vec![one.as_str(); chunk.len()].join(", ")
            );
            let params: Vec<mysql_async::Value> =
                chunk.iter().flat_map(|k| k.iter().map(to_param)).collect();
            let rows: Vec<mysql_async::Row> = conn
                .exec(sql, params)
                .await
                .map_err(TargetError::bookkeeping(what.clone()))?;
            out.extend(
                rows.into_iter()
                    .map(|r| r.unwrap().into_iter().map(text).collect()),
            );
        }
        Ok(out)
    }

    async fn keys_after(
        &self,
        table: &TargetTable,
        after: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<Vec<String>>, TargetError> {
        let key_cols = table
            .key
            .iter()
            .map(|k| quote(k))
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = format!("SELECT {key_cols} FROM {}", quote(&table.table));
        let mut params: Vec<mysql_async::Value> = Vec::new();
        if let Some(after) = after {
            sql.push_str(&format!(
                " WHERE ({key_cols}) > ({})",
                vec!["?"; after.len()].join(", ")
            ));
            params.extend(after.iter().map(|a| mysql_async::Value::from(a.as_str())));
        }
        sql.push_str(&format!(" ORDER BY {key_cols} LIMIT {limit}"));
        let what = format!("read keys of {}", table.table);
        let mut conn = self
            .pool
            .get_conn()
            .await
            .map_err(TargetError::bookkeeping(what.clone()))?;
        let rows: Vec<mysql_async::Row> = conn
            .exec(sql, params)
            .await
            .map_err(TargetError::bookkeeping(what))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                r.unwrap()
                    .into_iter()
                    .map(|v| text(v).unwrap_or_default())
                    .collect()
            })
            .collect())
    }
}

impl TargetSequences for MysqlTarget {
    type Error = TargetError;

    async fn sequences(&self, table: &TargetTable) -> Result<Vec<(String, i128)>, TargetError> {
        let what = format!("read the auto-increment of {}", table.table);
        let mut conn = self
            .pool
            .get_conn()
            .await
            .map_err(TargetError::bookkeeping(what.clone()))?;
        // MySQL 8 caches the table statistics; MariaDB has no such setting.
        let _ = conn
            .query_drop("SET SESSION information_schema_stats_expiry = 0")
            .await;
        let column: Option<String> = conn
            .exec_first(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND EXTRA LIKE '%auto_increment%'",
                (&table.table,),
            )
            .await
            .map_err(TargetError::bookkeeping(what.clone()))?;
        let Some(column) = column.filter(|c| table.key.iter().any(|k| k.eq_ignore_ascii_case(c)))
        else {
            return Ok(Vec::new());
        };
        let next: Option<Option<u64>> = conn
            .exec_first(
                "SELECT AUTO_INCREMENT FROM information_schema.TABLES
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                (&table.table,),
            )
            .await
            .map_err(TargetError::bookkeeping(what))?;
        Ok(vec![(column, i128::from(next.flatten().unwrap_or(1)))])
    }

    async fn raise_sequence(
        &self,
        table: &TargetTable,
        _column: &str,
        max: i128,
    ) -> Result<(), TargetError> {
        let what = format!("raise the auto-increment of {}", table.table);
        let mut conn = self
            .pool
            .get_conn()
            .await
            .map_err(TargetError::bookkeeping(what.clone()))?;
        // The server never sets it below the column's greatest value + 1.
        conn.query_drop(format!(
            "ALTER TABLE {} AUTO_INCREMENT = {}",
            quote(&table.table),
            max.max(0) + 1
        ))
        .await
        .map_err(TargetError::bookkeeping(what))
    }
}
