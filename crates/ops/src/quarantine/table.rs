//! Reading and updating rows of `dms_cdc_quarantine`.

use anyhow::Context as _;
use mysql_async::prelude::*;
use mysql_async::Pool;

use super::{Filter, Quarantined, State, DISCARDED, RESOLVED};
use crate::position::{SequenceNumber, ShardId};

const COLUMNS: &str = "id, shard_id, sequence_number, table_name, operation, raw_record, error_class, error_message,
     DATE_FORMAT(first_seen, '%Y-%m-%d %H:%i:%s.%f'), DATE_FORMAT(last_seen, '%Y-%m-%d %H:%i:%s.%f'),
     attempts, resolved, resolution";

fn from_row(row: mysql_async::Row) -> Result<Quarantined, mysql_async::Error> {
    fn col<T: mysql_async::prelude::FromValue>(
        row: &mysql_async::Row,
        i: usize,
    ) -> Result<T, mysql_async::Error> {
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
        shard_id: ShardId(col(&row, 1)?),
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

/// Lists rows of `function_name` matching `filter`, in stream order (shard,
/// then sequence number).
pub async fn list(
    pool: &Pool,
    function_name: &str,
    filter: &Filter,
) -> Result<Vec<Quarantined>, mysql_async::Error> {
    let mut sql = format!("SELECT {COLUMNS} FROM dms_cdc_quarantine WHERE function_name = ?");
    let mut params: Vec<mysql_async::Value> = vec![function_name.into()];
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
    let mut conn = pool.get_conn().await?;
    conn.query_drop("SET time_zone = '+00:00'").await?;
    let rows: Vec<mysql_async::Row> = conn.exec(sql, params).await?;
    rows.into_iter().map(from_row).collect()
}

/// One row by id.
pub async fn show(
    pool: &Pool,
    function_name: &str,
    id: u64,
) -> Result<Option<Quarantined>, mysql_async::Error> {
    let filter = Filter {
        ids: vec![id],
        state: State::All,
        ..Filter::default()
    };
    Ok(list(pool, function_name, &filter).await?.into_iter().next())
}

/// Marks an open row discarded with `reason` (kept for audit). Returns
/// whether an open row was found.
pub async fn discard(
    pool: &Pool,
    function_name: &str,
    id: u64,
    reason: &str,
) -> Result<bool, mysql_async::Error> {
    let mut conn = pool.get_conn().await?;
    conn.query_drop("SET time_zone = '+00:00'").await?;
    conn.exec_drop(
        "UPDATE dms_cdc_quarantine SET resolved = ?, last_seen = NOW(6),
             resolution = LEFT(CONCAT('discarded ', DATE_FORMAT(NOW(), '%Y-%m-%d %H:%i:%s'), ' UTC: ', ?), 200)
         WHERE function_name = ? AND id = ? AND resolved = 0",
        (DISCARDED, reason, function_name, id),
    )
    .await?;
    Ok(conn.affected_rows() == 1)
}

pub(super) async fn mark_resolved(
    pool: &Pool,
    function_name: &str,
    id: u64,
) -> Result<(), mysql_async::Error> {
    let mut conn = pool.get_conn().await?;
    conn.query_drop("SET time_zone = '+00:00'").await?;
    conn.exec_drop(
        "UPDATE dms_cdc_quarantine SET resolved = ?,
             resolution = CONCAT('redriven ', DATE_FORMAT(NOW(), '%Y-%m-%d %H:%i:%s'), ' UTC')
         WHERE function_name = ? AND id = ? AND resolved = 0",
        (RESOLVED, function_name, id),
    )
    .await
}

/// A pool on the target database of `function_name`'s quarantine, its
/// bookkeeping tables prepared.
pub async fn target_pool(target: &str, function_name: &str) -> anyhow::Result<Pool> {
    let pool = crate::source::pool(target, 2).context("--target")?;
    crate::target::MysqlTarget::new(pool.clone(), function_name.to_owned(), 1)
        .prepare()
        .await?;
    Ok(pool)
}
