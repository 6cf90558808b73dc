//! The quarantine table in MySQL SQL ([`QuarantineStore`] for
//! [`MysqlTarget`]).

use dms_cdc_core::position::{SequenceNumber, ShardId};
use dms_cdc_core::quarantine::{Filter, QuarantineStore, Quarantined, State, DISCARDED, RESOLVED};
use mysql_async::prelude::*;

use crate::target::{MysqlTarget, TargetError};

const COLUMNS: &str = "id, shard_id, sequence_number, table_name, operation, raw_record, error_class, error_message,
     DATE_FORMAT(first_seen, '%Y-%m-%d %H:%i:%s.%f'), DATE_FORMAT(last_seen, '%Y-%m-%d %H:%i:%s.%f'),
     attempts, resolved, resolution";

fn from_row(row: mysql_async::Row) -> Result<Quarantined, mysql_async::Error> {
    fn col<T: FromValue>(row: &mysql_async::Row, i: usize) -> Result<T, mysql_async::Error> {
        match row.get_opt::<T, usize>(i) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(mysql_async::Error::Other(
                format!("dms_cdc_quarantine column {i}: {e}").into(),
            )),
            None => Err(mysql_async::Error::Other(
                format!("dms_cdc_quarantine column {i} missing").into(),
            )),
        }
    }
    let seq: String = col(&row, 2)?;
    Ok(Quarantined {
        id: col(&row, 0)?,
        shard_id: ShardId(col::<String>(&row, 1)?.into()),
        sequence_number: SequenceNumber::parse(&seq).map_err(|e| {
            mysql_async::Error::Other(format!("dms_cdc_quarantine.sequence_number: {e}").into())
        })?,
        table: col(&row, 3)?,
        operation: col(&row, 4)?,
        raw: col(&row, 5)?,
        class: col(&row, 6)?,
        message: col(&row, 7)?,
        first_seen: col(&row, 8)?,
        last_seen: col(&row, 9)?,
        attempts: col::<i64>(&row, 10)?.max(0) as u32,
        state: State::of(col(&row, 11)?),
        resolution: col(&row, 12)?,
    })
}

impl MysqlTarget {
    async fn update_open(
        &self,
        what: &str,
        sql: &str,
        params: mysql_async::Params,
    ) -> Result<bool, TargetError> {
        let mut conn = self
            .pool
            .get_conn()
            .await
            .map_err(TargetError::bookkeeping(what))?;
        conn.query_drop("SET time_zone = '+00:00'")
            .await
            .map_err(TargetError::bookkeeping(what))?;
        conn.exec_drop(sql, params)
            .await
            .map_err(TargetError::bookkeeping(what))?;
        Ok(conn.affected_rows() == 1)
    }
}

impl QuarantineStore for MysqlTarget {
    type Error = TargetError;

    async fn open(&self) -> Result<(), TargetError> {
        self.prepare().await
    }

    async fn quarantined(&self, filter: &Filter) -> Result<Vec<Quarantined>, TargetError> {
        let mut sql = format!("SELECT {COLUMNS} FROM dms_cdc_quarantine WHERE function_name = ?");
        let mut params: Vec<mysql_async::Value> = vec![self.function_name.as_str().into()];
        match filter.state {
            State::All => {}
            State::Open => sql.push_str(" AND resolved = 0"),
            State::Resolved => sql.push_str(&format!(" AND resolved = {RESOLVED}")),
            State::Discarded => sql.push_str(&format!(" AND resolved = {DISCARDED}")),
        }
        if !filter.ids.is_empty() {
            sql.push_str(&format!(
                " AND id IN ({})",
                vec!["?"; filter.ids.len()].join(", ")
            ));
            params.extend(filter.ids.iter().map(|i| mysql_async::Value::from(*i)));
        }
        if let Some(t) = &filter.table {
            if t.contains('.') {
                sql.push_str(" AND table_name = ?");
            } else {
                sql.push_str(" AND SUBSTRING_INDEX(table_name, '.', -1) = ?");
            }
            params.push(t.as_str().into());
        }
        if let Some(c) = &filter.class {
            sql.push_str(" AND error_class = ?");
            params.push(c.as_str().into());
        }
        if let Some(s) = &filter.since {
            sql.push_str(" AND first_seen >= ?");
            params.push(s.format("%Y-%m-%d %H:%M:%S%.6f").to_string().into());
        }
        sql.push_str(" ORDER BY shard_id, LENGTH(sequence_number), sequence_number");
        let what = "read the quarantine";
        let mut conn = self
            .pool
            .get_conn()
            .await
            .map_err(TargetError::bookkeeping(what))?;
        conn.query_drop("SET time_zone = '+00:00'")
            .await
            .map_err(TargetError::bookkeeping(what))?;
        let rows: Vec<mysql_async::Row> = conn
            .exec(sql, params)
            .await
            .map_err(TargetError::bookkeeping(what))?;
        rows.into_iter()
            .map(from_row)
            .collect::<Result<_, _>>()
            .map_err(TargetError::bookkeeping(what))
    }

    async fn discard(&self, id: u64, reason: &str) -> Result<bool, TargetError> {
        self.update_open(
            "discard a quarantined record",
            "UPDATE dms_cdc_quarantine SET resolved = ?, last_seen = NOW(6),
                 resolution = LEFT(CONCAT('discarded ', DATE_FORMAT(NOW(), '%Y-%m-%d %H:%i:%s'), ' UTC: ', ?), 200)
             WHERE function_name = ? AND id = ? AND resolved = 0",
            (DISCARDED, reason, &self.function_name, id).into(),
        )
        .await
    }

    async fn mark_resolved(&self, id: u64) -> Result<bool, TargetError> {
        self.update_open(
            "resolve a quarantined record",
            "UPDATE dms_cdc_quarantine SET resolved = ?,
                 resolution = CONCAT('redriven ', DATE_FORMAT(NOW(), '%Y-%m-%d %H:%i:%s'), ' UTC')
             WHERE function_name = ? AND id = ? AND resolved = 0",
            (RESOLVED, &self.function_name, id).into(),
        )
        .await
    }
}
