//! The quarantine table in PostgreSQL SQL ([`QuarantineStore`] for
//! [`PostgresTarget`]).

use dms_cdc_core::position::{SequenceNumber, ShardId};
use dms_cdc_core::quarantine::{Filter, QuarantineStore, Quarantined, State, DISCARDED, RESOLVED};
use tokio_postgres::types::ToSql;

use crate::target::{PostgresTarget, TargetError};

const COLUMNS: &str =
    "id, shard_id::text, sequence_number::text, table_name::text, operation::text,
     raw_record, error_class::text, error_message,
     to_char(first_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'),
     to_char(last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'),
     attempts, resolved, resolution::text";

/// A row, or the column that could not be read and why.
fn from_row(row: &tokio_postgres::Row) -> Result<Quarantined, (String, String)> {
    fn col<'a, T: tokio_postgres::types::FromSql<'a>>(
        row: &'a tokio_postgres::Row,
        i: usize,
    ) -> Result<T, (String, String)> {
        row.try_get(i).map_err(|e| {
            let name = row.columns().get(i).map(|c| c.name().to_owned());
            (name.unwrap_or_else(|| i.to_string()), e.to_string())
        })
    }
    let seq: String = col(row, 2)?;
    Ok(Quarantined {
        id: col::<i64>(row, 0)?.max(0) as u64,
        shard_id: ShardId(col::<String>(row, 1)?.into()),
        sequence_number: SequenceNumber::parse(&seq)
            .map_err(|e| ("sequence_number".to_owned(), e.to_string()))?,
        table: col(row, 3)?,
        operation: col(row, 4)?,
        raw: col(row, 5)?,
        class: col(row, 6)?,
        message: col(row, 7)?,
        first_seen: col(row, 8)?,
        last_seen: col(row, 9)?,
        attempts: col::<i32>(row, 10)?.max(0) as u32,
        state: State::of(col::<i16>(row, 11)?.into()),
        resolution: col(row, 12)?,
    })
}

/// The `WHERE` clause and parameters of `filter` for `function_name`.
fn condition(function_name: &str, filter: &Filter) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(function_name.to_owned())];
    let mut sql = String::from("function_name = $1");
    let mut next = |sql: &mut String, clause: &str, param: Box<dyn ToSql + Sync + Send>| {
        params.push(param);
        sql.push_str(&clause.replace('?', &format!("${}", params.len())));
    };
    match filter.state {
        State::All => {}
        State::Open => sql.push_str(" AND resolved = 0"),
        State::Resolved => sql.push_str(&format!(" AND resolved = {RESOLVED}")),
        State::Discarded => sql.push_str(&format!(" AND resolved = {DISCARDED}")),
    }
    if !filter.ids.is_empty() {
        let ids: Vec<i64> = filter
            .ids
            .iter()
            .map(|i| i64::try_from(*i).unwrap_or(-1))
            .collect();
        next(&mut sql, " AND id = ANY(?)", Box::new(ids));
    }
    if let Some(t) = &filter.table {
        let clause = if t.contains('.') {
            " AND table_name = ?"
        } else {
            // The part after the last dot (tables are `schema.table`).
            " AND regexp_replace(table_name, '^.*\\.', '') = ?"
        };
        next(&mut sql, clause, Box::new(t.clone()));
    }
    if let Some(c) = &filter.class {
        next(&mut sql, " AND error_class = ?", Box::new(c.clone()));
    }
    if let Some(s) = filter.since {
        next(&mut sql, " AND first_seen >= ?", Box::new(s));
    }
    (sql, params)
}

impl PostgresTarget {
    async fn update_open(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<bool, TargetError> {
        let client = self
            .pool
            .get()
            .await
            .map_err(TargetError::bookkeeping(what))?;
        let n = client
            .execute(sql, params)
            .await
            .map_err(TargetError::bookkeeping(what))?;
        Ok(n == 1)
    }
}

impl QuarantineStore for PostgresTarget {
    type Error = TargetError;

    async fn open(&self) -> Result<(), TargetError> {
        self.prepare().await
    }

    async fn quarantined(&self, filter: &Filter) -> Result<Vec<Quarantined>, TargetError> {
        let (condition, params) = condition(&self.function_name, filter);
        let sql = format!(
            "SELECT {COLUMNS} FROM dms_cdc_quarantine WHERE {condition}
             ORDER BY shard_id, length(sequence_number), sequence_number"
        );
        let what = "read the quarantine";
        let client = self
            .pool
            .get()
            .await
            .map_err(TargetError::bookkeeping(what))?;
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = client
            .query(&sql, &refs)
            .await
            .map_err(TargetError::bookkeeping(what))?;
        rows.iter()
            .map(|row| {
                from_row(row).map_err(|(column, problem)| TargetError::Schema {
                    table: "dms_cdc_quarantine".to_owned(),
                    column,
                    problem,
                })
            })
            .collect()
    }

    async fn discard(&self, id: u64, reason: &str) -> Result<bool, TargetError> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(false);
        };
        self.update_open(
            "discard a quarantined record",
            "UPDATE dms_cdc_quarantine SET resolved = $1, last_seen = now(),
                 resolution = left('discarded ' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                                   || ' UTC: ' || $2::text, 200)
             WHERE function_name = $3 AND id = $4 AND resolved = 0",
            &[&(DISCARDED as i16), &reason, &self.function_name, &id],
        )
        .await
    }

    async fn mark_resolved(&self, id: u64) -> Result<bool, TargetError> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(false);
        };
        self.update_open(
            "resolve a quarantined record",
            "UPDATE dms_cdc_quarantine SET resolved = $1,
                 resolution = 'redriven ' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
             WHERE function_name = $2 AND id = $3 AND resolved = 0",
            &[&(RESOLVED as i16), &self.function_name, &id],
        )
        .await
    }
}
