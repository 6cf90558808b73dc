//! A local DMS for a PostgreSQL source: its logical decoding, through a
//! replication slot of the built-in `test_decoding` plugin read by SQL
//! (`pg_logical_slot_peek_changes`), rendered as the DMS records of a
//! PostgreSQL source (`schema-name`, `transaction-id` the xid,
//! `stream-position` the WAL LSN, `commit-timestamp` from the commit), with
//! the before image of updates and deletes when the table has `REPLICA
//! IDENTITY FULL` (else the key only, as DMS sends). A column the decoding
//! marks `unchanged-toast-datum` (an unchanged TOASTed value) is left out
//! of the image, as DMS leaves it out.
//!
//! At least once: [`PgCapture::poll`] peeks whole transactions without
//! consuming them; [`PgCapture::advance`] moves the slot past what was
//! delivered. The source needs `wal_level = logical` (see
//! `infra/source/postgres-source.sql`).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::render::{data_document, Cell, DataDoc, Image, TxDetails};
use super::{partition_key, CaptureError, CaptureOptions};
use crate::dms::TableName;

/// One change, as a DMS record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgRecord {
    /// The table.
    pub table: TableName,
    /// The Kinesis partition key DMS would use.
    pub partition_key: String,
    /// The DMS JSON document.
    pub payload: Vec<u8>,
    /// The WAL position of the change.
    pub lsn: String,
}

/// What a poll read: the records of whole transactions, and the LSN to
/// advance the slot to once they are delivered.
#[derive(Debug, Default)]
pub struct PgPoll {
    /// The records, in commit order.
    pub records: Vec<PgRecord>,
    /// The last commit read (`None`: nothing).
    pub upto: Option<String>,
}

/// A capture from one PostgreSQL database through one slot.
pub struct PgCapture {
    pool: dms_cdc_postgres::Pool,
    slot: String,
    options: CaptureOptions,
    tables: BTreeMap<TableName, TableShape>,
}

/// What a capture needs of a table, read once.
#[derive(Debug, Clone)]
struct TableShape {
    /// The primary key columns.
    key: Vec<String>,
    /// With `REPLICA IDENTITY FULL`: every column, in table order. The
    /// decoding leaves a NULL out of an old tuple; DMS's images carry
    /// every column, so the missing ones are NULLs.
    full: Option<Vec<String>>,
}

pub(super) fn sql_error(e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Setup(format!("postgresql: {e}"))
}

impl PgCapture {
    /// A capture of the database at `url` through slot `slot` (created
    /// with `test_decoding` when missing; it then sees every change
    /// committed after this call).
    pub async fn connect(
        url: &str,
        slot: &str,
        options: CaptureOptions,
    ) -> Result<PgCapture, CaptureError> {
        if !slot
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(CaptureError::Setup(format!(
                "slot name {slot:?}: lower-case letters, digits and _ only"
            )));
        }
        let pool = dms_cdc_postgres::pool(url, 1).map_err(sql_error)?;
        let client = pool.get().await.map_err(sql_error)?;
        let level: String = client
            .query_one("SHOW wal_level", &[])
            .await
            .map_err(sql_error)?
            .get(0);
        if level != "logical" {
            return Err(CaptureError::Setup(format!(
                "wal_level is {level}: logical decoding needs wal_level = logical"
            )));
        }
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .map_err(sql_error)?
            .is_some();
        if !exists {
            client
                .execute(
                    "SELECT pg_create_logical_replication_slot($1, 'test_decoding')",
                    &[&slot],
                )
                .await
                .map_err(sql_error)?;
        }
        drop(client);
        Ok(PgCapture {
            pool,
            slot: slot.to_owned(),
            options,
            tables: BTreeMap::new(),
        })
    }

    /// The key and, with `REPLICA IDENTITY FULL`, the columns of `table`, read once.
    async fn shape_of(&mut self, table: &TableName) -> Result<TableShape, CaptureError> {
        if let Some(shape) = self.tables.get(table) {
            return Ok(shape.clone());
        }
        let client = self.pool.get().await.map_err(sql_error)?;
        let key = primary_key(&client, table).await?;
        let full = client
            .query_opt(
                "SELECT c.relreplident = 'f' FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                &[&table.schema, &table.table],
            )
            .await
            .map_err(sql_error)?
            .is_some_and(|r| r.get::<_, bool>(0));
        let full = if full {
            Some(
                table_columns(&client, table)
                    .await?
                    .into_iter()
                    .map(|(name, _)| name)
                    .collect(),
            )
        } else {
            None
        };
        let shape = TableShape { key, full };
        self.tables.insert(table.clone(), shape.clone());
        Ok(shape)
    }

    /// The changes of whole transactions committed since the slot's
    /// position (at least `limit` changes when there are that many), as
    /// DMS records; the slot does not move.
    pub async fn poll(&mut self, limit: usize) -> Result<PgPoll, CaptureError> {
        let client = self.pool.get().await.map_err(sql_error)?;
        let rows = client
            .query(
                "SELECT lsn::text, xid::text, data FROM pg_logical_slot_peek_changes($1, NULL, $2, \
                 'include-xids', '1', 'include-timestamp', '1', 'skip-empty-xacts', '1')",
                &[&self.slot, &(limit.clamp(1, i32::MAX as usize) as i32)],
            )
            .await
            .map_err(sql_error)?;
        drop(client);
        let lines: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let mut out = PgPoll::default();
        let mut pending: Vec<(String, Change)> = Vec::new();
        for (lsn, xid, data) in lines {
            if data.starts_with("BEGIN") {
                pending.clear();
            } else if let Some(rest) = data.strip_prefix("COMMIT") {
                let at = commit_time(rest).ok_or_else(|| {
                    CaptureError::Setup(format!("commit at {lsn} without a time: {data:?}"))
                })?;
                for (record_id, (change_lsn, change)) in
                    std::mem::take(&mut pending).into_iter().enumerate()
                {
                    let shape = self.shape_of(&change.table).await?;
                    out.records.push(self.render(
                        &with_nulls(change, &shape),
                        &shape.key,
                        &xid,
                        &change_lsn,
                        at,
                        record_id as u64 + 1,
                    ));
                }
                out.upto = Some(lsn);
            } else {
                let change = parse_change(&data)
                    .map_err(|e| CaptureError::Setup(format!("change at {lsn}: {e}")))?;
                let wanted = self
                    .options
                    .tables
                    .as_ref()
                    .is_none_or(|t| t.contains(&change.table));
                if wanted {
                    pending.push((lsn, change));
                }
            }
        }
        Ok(out)
    }

    fn render(
        &self,
        change: &Change,
        key: &[String],
        xid: &str,
        lsn: &str,
        at: DateTime<Utc>,
        record_id: u64,
    ) -> PgRecord {
        let image_of = |columns: &[(String, Option<Cell>)]| -> Image {
            columns
                .iter()
                .filter_map(|(n, c)| c.clone().map(|c| (n.clone(), c)))
                .collect()
        };
        let (data, before) = match change.operation {
            "delete" => (image_of(change.old.as_deref().unwrap_or(&[])), None),
            _ => (image_of(&change.new), change.old.as_deref().map(image_of)),
        };
        let key_values: Vec<String> = key
            .iter()
            .filter_map(|k| {
                data.iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, c)| c.key_text(self.options.large_integer_value))
            })
            .collect();
        let pk = partition_key(&change.table, &key_values, self.options.schema_table_prefix);
        let tx = TxDetails {
            transaction_id: xid.to_owned(),
            commit_timestamp: at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            stream_position: lsn.to_owned(),
            record_id,
            prev: None,
        };
        let before_field = self.options.before_image_field.clone();
        let payload = data_document(&DataDoc {
            table: &change.table,
            operation: change.operation,
            partition_key: &pk,
            data: &data,
            before: before
                .as_ref()
                .filter(|_| self.options.before_image)
                .map(|b| (before_field.as_str(), b)),
            tx: Some(&tx),
            timestamp: at,
            large_integer_value: self.options.large_integer_value,
        });
        PgRecord {
            table: change.table.clone(),
            partition_key: pk,
            payload,
            lsn: lsn.to_owned(),
        }
    }

    /// Moves the slot past `lsn` (the changes up to it were delivered).
    pub async fn advance(&self, lsn: &str) -> Result<(), CaptureError> {
        let client = self.pool.get().await.map_err(sql_error)?;
        client
            .execute(
                "SELECT pg_replication_slot_advance($1, $2::text::pg_lsn)",
                &[&self.slot, &lsn],
            )
            .await
            .map_err(sql_error)?;
        Ok(())
    }

    /// Drops the slot (a slot left behind keeps WAL on the server).
    pub async fn drop_slot(self) -> Result<(), CaptureError> {
        let client = self.pool.get().await.map_err(sql_error)?;
        client
            .execute("SELECT pg_drop_replication_slot($1)", &[&self.slot])
            .await
            .map_err(sql_error)?;
        Ok(())
    }
}

/// The columns of `table` and their types (`format_type`), in table order
/// (none: no such table).
pub(super) async fn table_columns(
    client: &tokio_postgres::Client,
    table: &TableName,
) -> Result<Vec<(String, String)>, CaptureError> {
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[&table.schema, &table.table],
        )
        .await
        .map_err(sql_error)?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The primary key columns of `table`, in key order (none: no primary key).
pub(super) async fn primary_key(
    client: &tokio_postgres::Client,
    table: &TableName,
) -> Result<Vec<String>, CaptureError> {
    let rows = client
        .query(
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
             WHERE i.indisprimary AND n.nspname = $1 AND c.relname = $2 ORDER BY k.ord",
            &[&table.schema, &table.table],
        )
        .await
        .map_err(sql_error)?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// `change` with the NULLs the decoding leaves out of a full old tuple
/// put back (every column of a `REPLICA IDENTITY FULL` table, in table
/// order), as DMS's images carry them.
fn with_nulls(mut change: Change, shape: &TableShape) -> Change {
    if let (Some(columns), Some(old)) = (&shape.full, change.old.as_mut()) {
        // A delete of a table without a tuple (no-tuple data) stays as it is.
        if !old.is_empty() {
            let mut full = Vec::with_capacity(columns.len());
            for column in columns {
                let cell = match old.iter().position(|(n, _)| n == column) {
                    Some(i) => old[i].1.clone(),
                    None => Some(Cell::Null),
                };
                full.push((column.clone(), cell));
            }
            *old = full;
        }
    }
    change
}

/// `COMMIT 123 (at 2026-12-06 08:46:00.123456+00)` -> the time.
fn commit_time(rest: &str) -> Option<DateTime<Utc>> {
    let at = rest.split_once("(at ")?.1.trim_end_matches(')').trim();
    DateTime::parse_from_str(at, "%Y-%m-%d %H:%M:%S%.f%#z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// One decoded change.
#[derive(Debug, Clone, PartialEq)]
struct Change {
    table: TableName,
    operation: &'static str,
    /// The old tuple (the key, or every column with REPLICA IDENTITY FULL).
    old: Option<Vec<(String, Option<Cell>)>>,
    /// The new tuple (inserts and updates).
    new: Vec<(String, Option<Cell>)>,
}

/// A quoted identifier or a bare one, from the start of `text`; the rest.
fn identifier(text: &str) -> Result<(String, &str), String> {
    if let Some(rest) = text.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if rest[i + 1..].starts_with('"') {
                    out.push('"');
                    chars.next();
                } else {
                    return Ok((out, &rest[i + 1..]));
                }
            } else {
                out.push(c);
            }
        }
        return Err("an unterminated quoted name".into());
    }
    let end = text.find(['.', ':', '[', ' ']).unwrap_or(text.len());
    Ok((text[..end].to_owned(), &text[end..]))
}

/// `table s.t: INSERT: a[integer]:1 b[text]:'x'`
fn parse_change(line: &str) -> Result<Change, String> {
    let rest = line
        .strip_prefix("table ")
        .ok_or_else(|| format!("not a table change: {:.60}", line))?;
    let (schema, rest) = identifier(rest)?;
    let rest = rest.strip_prefix('.').ok_or("no table name")?;
    let (table, rest) = identifier(rest)?;
    let rest = rest.strip_prefix(": ").ok_or("no operation")?;
    let (op, rest) = rest.split_once(':').ok_or("no operation")?;
    let rest = rest.trim_start();
    let table = TableName::new(&schema, &table);
    Ok(match op {
        "INSERT" => Change {
            table,
            operation: "insert",
            old: None,
            new: columns(rest)?,
        },
        "UPDATE" => match rest.strip_prefix("old-key: ") {
            Some(both) => {
                let at = both
                    .find(" new-tuple: ")
                    .ok_or("an old key without a new tuple")?;
                Change {
                    table,
                    operation: "update",
                    old: Some(columns(&both[..at])?),
                    new: columns(&both[at + " new-tuple: ".len()..])?,
                }
            }
            None => Change {
                table,
                operation: "update",
                old: None,
                new: columns(rest)?,
            },
        },
        "DELETE" => Change {
            table,
            operation: "delete",
            old: Some(if rest.starts_with("(no-tuple data)") {
                Vec::new()
            } else {
                columns(rest)?
            }),
            new: Vec::new(),
        },
        other => return Err(format!("operation {other:?}")),
    })
}

/// `a[integer]:1 b[text]:'x y' c[jsonb]:null`: names and cells (`None`
/// for `unchanged-toast-datum`).
fn columns(mut text: &str) -> Result<Vec<(String, Option<Cell>)>, String> {
    let mut out = Vec::new();
    loop {
        text = text.trim_start();
        if text.is_empty() {
            return Ok(out);
        }
        let (name, rest) = identifier(text)?;
        let rest = rest
            .strip_prefix('[')
            .ok_or_else(|| format!("{name}: no type"))?;
        let end = rest.find("]:").ok_or_else(|| format!("{name}: no value"))?;
        let type_name = &rest[..end];
        let rest = &rest[end + 2..];
        let (literal, rest) = if let Some(quoted) = rest.strip_prefix('\'') {
            let mut value = String::new();
            let mut end = None;
            let mut chars = quoted.char_indices().peekable();
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                        value.push('\'');
                        chars.next();
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                } else {
                    value.push(c);
                }
            }
            let end = end.ok_or_else(|| format!("{name}: an unterminated value"))?;
            (Some(value), &quoted[end..])
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            let bare = &rest[..end];
            let literal = match bare {
                "null" => None,
                "unchanged-toast-datum" => {
                    out.push((name, None));
                    text = &rest[end..];
                    continue;
                }
                v => Some(v.to_owned()),
            };
            (literal, &rest[end..])
        };
        out.push((name, Some(cell(type_name, literal))));
        text = rest;
    }
}

/// The cell of a value of type `type_name` as test_decoding writes it.
pub(super) fn cell(type_name: &str, literal: Option<String>) -> Cell {
    let Some(text) = literal else {
        return Cell::Null;
    };
    let base = type_name.split('(').next().unwrap_or(type_name).trim();
    let fsp = |t: &str| {
        t.split_once('.').map_or(0, |(_, f)| {
            f.chars().take_while(char::is_ascii_digit).count().min(6)
        }) as u8
    };
    let date_time = |dt: NaiveDateTime, fsp: u8| {
        use chrono::Timelike;
        Cell::DateTime {
            date: dt.date(),
            hour: dt.hour(),
            minute: dt.minute(),
            second: dt.second(),
            micros: dt.nanosecond() / 1000,
            fsp,
        }
    };
    let typed = match base {
        "smallint" | "integer" | "bigint" => text.parse().ok().map(Cell::Int),
        "numeric" if text.bytes().any(|b| b.is_ascii_digit()) => Some(Cell::Decimal(text.clone())),
        "real" | "double precision" => text.parse().ok().map(Cell::Double),
        "boolean" => match text.as_str() {
            "true" | "t" => Some(Cell::Bool(true)),
            "false" | "f" => Some(Cell::Bool(false)),
            _ => None,
        },
        "timestamp without time zone" => {
            NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f")
                .ok()
                .map(|dt| date_time(dt, fsp(&text)))
        }
        "timestamp with time zone" => DateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f%#z")
            .ok()
            .map(|dt| date_time(dt.naive_utc(), fsp(&text))),
        "date" => NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .ok()
            .map(Cell::Date),
        "time without time zone" => chrono::NaiveTime::parse_from_str(&text, "%H:%M:%S%.f")
            .ok()
            .map(|t| {
                use chrono::Timelike;
                Cell::Time {
                    negative: false,
                    hours: t.hour(),
                    minute: t.minute(),
                    second: t.second(),
                    micros: t.nanosecond() / 1000,
                    fsp: fsp(&text),
                }
            }),
        "json" | "jsonb" => Some(Cell::Json(text.clone())),
        "bytea" => text.strip_prefix("\\x").and_then(|hex| {
            (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()
                .map(Cell::Binary)
        }),
        _ => None,
    };
    typed.unwrap_or(Cell::Text(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_old_tuple_gets_back_the_nulls_the_decoding_leaves_out() {
        let change = parse_change(
            "table s.users: UPDATE: old-key: id[bigint]:7 name[text]:'a' \
             new-tuple: id[bigint]:7 name[text]:'b' email[text]:null",
        )
        .unwrap();
        let full = TableShape {
            key: vec!["id".into()],
            full: Some(vec!["id".into(), "email".into(), "name".into()]),
        };
        let old = with_nulls(change.clone(), &full).old.unwrap();
        assert_eq!(
            old,
            vec![
                ("id".into(), Some(Cell::Int(7))),
                ("email".into(), Some(Cell::Null)),
                ("name".into(), Some(Cell::Text("a".into()))),
            ]
        );
        // Without REPLICA IDENTITY FULL the old key stays the key.
        let default = TableShape {
            key: vec!["id".into()],
            full: None,
        };
        assert_eq!(with_nulls(change.clone(), &default), change);
    }

    #[test]
    fn test_decoding_lines_become_changes() {
        let c = parse_change(
            "table recipes_src.users: UPDATE: old-key: id[bigint]:7 name[character varying]:'O''Brien' \
             is_active[boolean]:true new-tuple: id[bigint]:7 name[character varying]:'x y' \
             is_active[boolean]:false body[text]:unchanged-toast-datum",
        )
        .unwrap();
        assert_eq!(c.table, TableName::new("recipes_src", "users"));
        assert_eq!(c.operation, "update");
        let old = c.old.unwrap();
        assert_eq!(old[1], ("name".into(), Some(Cell::Text("O'Brien".into()))));
        assert_eq!(c.new[1], ("name".into(), Some(Cell::Text("x y".into()))));
        assert_eq!(c.new[2], ("is_active".into(), Some(Cell::Bool(false))));
        assert_eq!(c.new[3], ("body".into(), None));
        let d = parse_change("table \"My s\".\"T\": DELETE: id[bigint]:3").unwrap();
        assert_eq!(d.table, TableName::new("My s", "T"));
        assert_eq!(d.old.unwrap(), vec![("id".into(), Some(Cell::Int(3)))]);
        let i = parse_change(
            "table s.t: INSERT: n[numeric]:4.50 j[jsonb]:'{\"a\": 1}' z[integer]:null \
             at[timestamp with time zone]:'2026-12-06 08:46:00.5+01' b[bytea]:'\\x00ff'",
        )
        .unwrap();
        assert_eq!(i.new[0].1, Some(Cell::Decimal("4.50".into())));
        assert_eq!(i.new[1].1, Some(Cell::Json("{\"a\": 1}".into())));
        assert_eq!(i.new[2].1, Some(Cell::Null));
        assert_eq!(
            i.new[3].1.as_ref().unwrap().to_json(true),
            "\"2026-12-06T07:46:00.5Z\""
        );
        assert_eq!(i.new[4].1, Some(Cell::Binary(vec![0, 255])));
        assert_eq!(
            commit_time(" 530 (at 2026-12-06 08:46:00.123456+00)").map(|t| t.to_rfc3339()),
            Some("2026-12-06T08:46:00.123456+00:00".into())
        );
    }
}
