//! Reading the binlog stream: events to transactions to DMS records.

use std::collections::HashMap;
use std::pin::Pin;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_core::Stream;
use mysql_async::binlog::events::{
    Event, EventData, QueryEvent, RotateEvent, RowsEventData, TableMapEvent,
};
use mysql_async::binlog::row::BinlogRow;
use mysql_async::binlog::EventType;
use mysql_async::prelude::*;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn, Opts};

use crate::dms::{ControlOperation, TableName};

use super::ddl::{self, Ddl};
use super::render::{self, control_document, data_document, DataDoc, Image, TxDetails};
use super::schema::{binlog_cell, load_table_def, TableDef, TableInfo};
use super::{
    check_server, partition_key, BinlogPosition, CaptureError, CaptureOptions, CapturedRecord,
    ColumnFilter,
};

/// MariaDB's GTID event (sent as such with `@mariadb_slave_capability=4`).
const MARIADB_GTID_EVENT: u8 = 162;
/// MariaDB's compressed query and rows events (`log_bin_compress=ON`): not supported.
const MARIADB_COMPRESSED: std::ops::RangeInclusive<u8> = 165..=171;
/// GTID flag: the group is one statement without BEGIN/COMMIT (DDL).
const FL_STANDALONE: u8 = 1;

/// A committed transaction's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedTransaction {
    /// The transaction id as in the records (`42`, or `0-1-42` outside GTID domain 0).
    pub transaction_id: String,
    /// Its records, in binlog order (may be empty: other tables, statements DMS ignores).
    pub records: Vec<CapturedRecord>,
    /// The position right after its commit.
    pub position: BinlogPosition,
    /// When it committed.
    pub commit_time: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy)]
struct Gtid {
    domain: u32,
    server: u32,
    seq: u64,
}

/// A change waiting for its transaction's commit.
enum Change {
    Row {
        table: TableName,
        operation: &'static str,
        data: Image,
        before: Option<Image>,
        key: String,
        stream_position: String,
    },
    Control {
        table: TableName,
        operation: ControlOperation,
        control: String,
    },
}

#[derive(Default)]
struct OpenTx {
    gtid: Option<Gtid>,
    standalone: bool,
    start: u64,
    changes: Vec<Change>,
}

/// A table id's table map, when the table is captured.
struct Mapped {
    info: TableInfo,
    lob: Vec<bool>,
}

/// A running capture: a replication connection reading the binlog from a
/// position, producing DMS records per committed transaction.
///
/// The stream has no end; every read is bounded by a wait or a deadline.
pub struct Capture {
    stream: BinlogStream,
    meta: Conn,
    options: CaptureOptions,
    file: String,
    position: BinlogPosition,
    checksum: bool,
    fde_seen: bool,
    tables: HashMap<u64, Option<Mapped>>,
    defs: HashMap<TableName, TableDef>,
    tx: Option<OpenTx>,
    prev: Option<(String, u64)>,
    ended: bool,
}

async fn next_event(stream: &mut BinlogStream) -> Option<mysql_async::Result<Event>> {
    std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
}

impl Capture {
    /// Connects twice (replication stream, metadata queries), checks the
    /// server's binlog settings and requests the binlog from `from` (a
    /// transaction boundary: [`super::current_position`], a snapshot's
    /// position, or a record's [`CapturedRecord::position`]).
    pub async fn start(
        opts: impl Into<Opts>,
        from: BinlogPosition,
        options: CaptureOptions,
    ) -> Result<Capture, CaptureError> {
        let opts: Opts = opts.into();
        let mut meta = Conn::new(opts.clone()).await?;
        check_server(&mut meta).await?;
        let checksum: Option<String> = meta.query_first("SELECT @@global.binlog_checksum").await?;
        let checksum = checksum.is_some_and(|c| !c.eq_ignore_ascii_case("NONE"));
        let mut conn = Conn::new(opts).await?;
        // MariaDB: without this, GTID and annotate events arrive as fake queries.
        conn.query_drop("SET @mariadb_slave_capability = 4").await?;
        let stream = conn
            .get_binlog_stream(
                BinlogStreamRequest::new(options.server_id)
                    .with_filename(from.file.as_bytes())
                    .with_pos(from.pos),
            )
            .await?;
        Ok(Capture {
            stream,
            meta,
            options,
            file: from.file.clone(),
            position: from,
            checksum,
            fde_seen: false,
            tables: HashMap::new(),
            defs: HashMap::new(),
            tx: None,
            prev: None,
            ended: false,
        })
    }

    /// The last transaction boundary read: resuming here repeats nothing.
    pub fn position(&self) -> &BinlogPosition {
        &self.position
    }

    /// The next committed transaction, or `None` if no event arrived within
    /// `wait` (or the server ended the stream).
    pub async fn next_transaction(
        &mut self,
        wait: Duration,
    ) -> Result<Option<CapturedTransaction>, CaptureError> {
        loop {
            match self.step(wait).await? {
                Step::Transaction(tx) => return Ok(Some(tx)),
                Step::Idle => return Ok(None),
                Step::Event => {}
            }
        }
    }

    /// Every record up to `target` (a transaction boundary such as
    /// [`super::current_position`] returned), in binlog order. Fails if the
    /// stream does not get there within `timeout`.
    pub async fn read_until(
        &mut self,
        target: &BinlogPosition,
        timeout: Duration,
    ) -> Result<Vec<CapturedRecord>, CaptureError> {
        Ok(self
            .transactions_until(target, timeout)
            .await?
            .into_iter()
            .flat_map(|tx| tx.records)
            .collect())
    }

    /// Every transaction up to `target`, like [`Capture::read_until`].
    pub async fn transactions_until(
        &mut self,
        target: &BinlogPosition,
        timeout: Duration,
    ) -> Result<Vec<CapturedTransaction>, CaptureError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut out = Vec::new();
        while self.position < *target {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if self.ended {
                return Err(self.stream_error("the server ended the binlog stream"));
            }
            if remaining.is_zero() {
                return Err(CaptureError::Timeout {
                    position: self.position.clone(),
                    target: target.clone(),
                    waited: started.elapsed(),
                });
            }
            if let Step::Transaction(tx) = self.step(remaining).await? {
                out.push(tx);
            }
        }
        Ok(out)
    }

    /// Closes the replication and metadata connections.
    pub async fn close(self) -> Result<(), CaptureError> {
        self.stream.close().await?;
        self.meta.disconnect().await?;
        Ok(())
    }

    fn stream_error(&self, message: impl Into<String>) -> CaptureError {
        CaptureError::Stream {
            position: self.position.clone(),
            message: message.into(),
        }
    }

    async fn step(&mut self, wait: Duration) -> Result<Step, CaptureError> {
        if self.ended {
            return Ok(Step::Idle);
        }
        let event = match tokio::time::timeout(wait, next_event(&mut self.stream)).await {
            Err(_) => return Ok(Step::Idle),
            Ok(None) => {
                self.ended = true;
                return Ok(Step::Idle);
            }
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(Some(Ok(event))) => event,
        };
        self.handle(event).await
    }

    async fn handle(&mut self, event: Event) -> Result<Step, CaptureError> {
        let header = event.header();
        let kind = header.event_type_raw();
        let log_pos = u64::from(header.log_pos());
        let start = log_pos.saturating_sub(u64::from(header.event_size()));
        let timestamp = i64::from(header.timestamp());
        let io = |e: std::io::Error| e.to_string();

        if kind == EventType::ROTATE_EVENT as u8 {
            let rotate: RotateEvent<'_> =
                event.read_event().map_err(|e| self.stream_error(io(e)))?;
            let mut name = rotate.name_raw().to_vec();
            if !self.fde_seen && self.checksum && name.len() > 4 {
                // The first (fake) rotate arrives before the format description
                // event, so the reader could not cut its checksum.
                name.truncate(name.len() - 4);
            }
            self.file = String::from_utf8_lossy(&name).into_owned();
            if log_pos != 0 {
                // A real rotate: table ids are per file at most (table maps
                // are sent again in every transaction), keep the map small.
                self.tables.clear();
            }
            if self.tx.is_none() {
                self.position = BinlogPosition::new(self.file.clone(), rotate.position());
            }
            return Ok(Step::Event);
        }
        if kind == EventType::FORMAT_DESCRIPTION_EVENT as u8 {
            self.fde_seen = true;
            return Ok(Step::Event);
        }
        if kind == MARIADB_GTID_EVENT {
            let data = event.data();
            if data.len() < 13 {
                return Err(self.stream_error("short MariaDB GTID event"));
            }
            let seq = u64::from_le_bytes(data[..8].try_into().unwrap_or_default());
            let domain = u32::from_le_bytes(data[8..12].try_into().unwrap_or_default());
            let flags = data[12];
            if self.tx.as_ref().is_some_and(|tx| !tx.changes.is_empty()) {
                return Err(self.stream_error(format!(
                    "GTID {domain}-{}-{seq} starts while the previous transaction has not committed",
                    header.server_id()
                )));
            }
            self.tx = Some(OpenTx {
                gtid: Some(Gtid {
                    domain,
                    server: header.server_id(),
                    seq,
                }),
                standalone: flags & FL_STANDALONE != 0,
                start,
                changes: Vec::new(),
            });
            return Ok(Step::Event);
        }
        if MARIADB_COMPRESSED.contains(&kind) {
            return Err(self.stream_error(format!(
                "compressed binlog event (type {kind}): capture needs log_bin_compress=OFF"
            )));
        }
        if kind == EventType::TABLE_MAP_EVENT as u8 {
            self.table_map(&event).await?;
            return Ok(Step::Event);
        }
        if kind == EventType::XID_EVENT as u8 {
            let xid = match event.read_data() {
                Ok(Some(EventData::XidEvent(x))) => Some(x.xid),
                _ => None,
            };
            return Ok(Step::Transaction(self.commit(log_pos, timestamp, xid)));
        }
        if kind == EventType::QUERY_EVENT as u8 {
            return self.query(&event, log_pos, start, timestamp).await;
        }
        if [
            EventType::WRITE_ROWS_EVENT_V1,
            EventType::UPDATE_ROWS_EVENT_V1,
            EventType::DELETE_ROWS_EVENT_V1,
            EventType::WRITE_ROWS_EVENT,
            EventType::UPDATE_ROWS_EVENT,
            EventType::DELETE_ROWS_EVENT,
            EventType::PARTIAL_UPDATE_ROWS_EVENT,
        ]
        .iter()
        .any(|t| *t as u8 == kind)
        {
            self.rows(&event, start)?;
            return Ok(Step::Event);
        }
        // Anything else (GTID lists, binlog checkpoints, heartbeats, MySQL's
        // GTID events, annotations) between transactions is a safe resume point.
        if self.tx.is_none() && log_pos != 0 {
            self.position = BinlogPosition::new(self.file.clone(), log_pos);
        }
        Ok(Step::Event)
    }

    async fn table_map(&mut self, event: &Event) -> Result<(), CaptureError> {
        let tme: TableMapEvent<'_> = event
            .read_event()
            .map_err(|e| self.stream_error(e.to_string()))?;
        let table = TableName::new(tme.database_name(), tme.table_name());
        if !self.options.captures(&table) {
            self.tables.insert(tme.table_id(), None);
            return Ok(());
        }
        let mut info = TableInfo::from_tme(&tme).map_err(|m| self.stream_error(m))?;
        let names = info.names();
        let def = match self.defs.get(&table) {
            Some(def) if def.has_columns(&names) => def.clone(),
            known => {
                let known = known.cloned();
                let loaded = load_table_def(&mut self.meta, &table).await?;
                match loaded {
                    Some(def) if def.has_columns(&names) => def,
                    loaded => {
                        // The table changed since: the table map is the truth here.
                        let mut def = info.def();
                        for c in def.columns.iter_mut() {
                            c.json |= [&known, &loaded].iter().any(|d| {
                                d.as_ref().is_some_and(|d| {
                                    d.columns
                                        .iter()
                                        .any(|k| k.json && k.name.eq_ignore_ascii_case(&c.name))
                                })
                            });
                            if c.json {
                                c.type_text = "json".to_owned();
                            }
                        }
                        def
                    }
                }
            }
        };
        let json = def.json_columns();
        for c in info.columns.iter_mut() {
            c.json |= json.contains(&c.name)
                || CaptureOptions::listed(&self.options.json_columns, &table, &c.name);
        }
        let lob = info
            .columns
            .iter()
            .map(|c| {
                c.is_lob_type()
                    || CaptureOptions::listed(&self.options.lob_columns, &table, &c.name)
            })
            .collect();
        self.defs.insert(table, def);
        self.tables
            .insert(tme.table_id(), Some(Mapped { info, lob }));
        Ok(())
    }

    fn rows(&mut self, event: &Event, start: u64) -> Result<(), CaptureError> {
        let data = event
            .read_data()
            .map_err(|e| self.stream_error(e.to_string()))?;
        let Some(EventData::RowsEvent(rows)) = data else {
            return Err(self.stream_error("unreadable rows event"));
        };
        let table_id = rows.table_id();
        let mapped = match self.tables.get(&table_id) {
            Some(Some(m)) => m,
            Some(None) => return Ok(()),
            None => {
                return Err(self.stream_error(format!(
                    "rows event for table id {table_id} without a table map"
                )))
            }
        };
        let operation = match &rows {
            RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => "insert",
            RowsEventData::UpdateRowsEventV1(_) | RowsEventData::UpdateRowsEvent(_) => "update",
            RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => "delete",
            RowsEventData::PartialUpdateRowsEvent(_) => {
                return Err(self.stream_error(
                    "partial JSON update rows event (MySQL binlog_row_value_options=PARTIAL_JSON) is not supported",
                ))
            }
        };
        let Some(tme) = self.stream.get_tme(table_id) else {
            return Err(self.stream_error(format!("no table map for table id {table_id}")));
        };
        let info = &mapped.info;
        let image = |row: BinlogRow| -> Result<Image, String> {
            if row.len() != info.columns.len() {
                return Err(format!(
                    "row of {} carries {} of {} columns: the server must run with binlog_row_image=FULL",
                    info.table,
                    row.len(),
                    info.columns.len()
                ));
            }
            row.unwrap()
                .into_iter()
                .zip(&info.columns)
                .map(|(v, c)| binlog_cell(v, c).map(|cell| (c.name.clone(), cell)))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{}: {e}", info.table))
        };
        let stream_position = format!("{}:{}", self.file, start);
        let mut changes = Vec::new();
        for row in rows.rows(tme) {
            let (before, after) =
                row.map_err(|e| self.stream_error(format!("{}: {e}", info.table)))?;
            let result: Result<Change, String> = (|| {
                let (before, after) = (
                    before.map(image).transpose()?,
                    after.map(image).transpose()?,
                );
                let (data, before) = match (operation, before, after) {
                    ("delete", Some(b), _) => (b, None),
                    ("update", Some(b), Some(a)) => (a, Some(b)),
                    (_, _, Some(a)) => (a, None),
                    _ => return Err(format!("{}: {operation} row without an image", info.table)),
                };
                let before = before.filter(|_| self.options.before_image).map(|b| {
                    b.into_iter()
                        .enumerate()
                        .filter(|(i, _)| match self.options.column_filter {
                            ColumnFilter::All => true,
                            ColumnFilter::NonLob => !mapped.lob[*i],
                            ColumnFilter::PkOnly => info.primary_key.contains(i),
                        })
                        .map(|(_, cell)| cell)
                        .collect()
                });
                let key_values: Vec<String> = info
                    .primary_key
                    .iter()
                    .map(|&i| data[i].1.key_text(self.options.large_integer_value))
                    .collect();
                Ok(Change::Row {
                    table: info.table.clone(),
                    operation,
                    key: partition_key(&info.table, &key_values, self.options.schema_table_prefix),
                    data,
                    before,
                    stream_position: stream_position.clone(),
                })
            })();
            changes.push(result.map_err(|m| self.stream_error(m))?);
        }
        self.tx
            .get_or_insert_with(|| OpenTx {
                start,
                ..OpenTx::default()
            })
            .changes
            .extend(changes);
        Ok(())
    }

    async fn query(
        &mut self,
        event: &Event,
        log_pos: u64,
        start: u64,
        timestamp: i64,
    ) -> Result<Step, CaptureError> {
        let query: QueryEvent<'_> = event
            .read_event()
            .map_err(|e| self.stream_error(e.to_string()))?;
        let sql = query.query().into_owned();
        let schema = query.schema().into_owned();
        let first = sql
            .trim_start()
            .split(|c: char| !c.is_ascii_alphabetic())
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match first.as_str() {
            "BEGIN" => {
                if self.tx.is_none() {
                    self.tx = Some(OpenTx {
                        start,
                        ..OpenTx::default()
                    });
                }
                Ok(Step::Event)
            }
            // `ROLLBACK TO savepoint` stays inside the transaction.
            "ROLLBACK" if second_word(&sql).eq_ignore_ascii_case("TO") => Ok(Step::Event),
            // A ROLLBACK in the binlog ends a group whose non-transactional
            // changes stayed: they are real changes.
            "COMMIT" | "ROLLBACK" => Ok(Step::Transaction(self.commit(log_pos, timestamp, None))),
            "XA" => Err(self.stream_error(
                "XA transaction in the binlog: XA transactions are not supported",
            )),
            // Row changes logged as statements would be lost without a word.
            // (MariaDB also logs e.g. the implicit emptying of a MEMORY table
            // after a restart as a statement: only captured tables count.)
            "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "LOAD"
                if ddl::dml_table(&sql, &schema).is_none_or(|t| self.options.captures(&t)) =>
            {
                Err(self.stream_error(format!(
                    "statement-based change in the binlog ({}...): capture needs binlog_format=ROW for every session",
                    sql.chars().take(60).collect::<String>()
                )))
            }
            _ => {
                let changes = self.ddl(&sql, &schema).await?;
                match &mut self.tx {
                    Some(tx) if !tx.standalone => {
                        tx.changes.extend(changes);
                        Ok(Step::Event)
                    }
                    _ => {
                        self.tx
                            .get_or_insert_with(|| OpenTx {
                                start,
                                ..OpenTx::default()
                            })
                            .changes
                            .extend(changes);
                        Ok(Step::Transaction(self.commit(log_pos, timestamp, None)))
                    }
                }
            }
        }
    }

    /// The tracked definition of a table, or what `information_schema` says now.
    async fn def_of(&mut self, table: &TableName) -> Result<TableDef, CaptureError> {
        if let Some(def) = self.defs.get(table) {
            return Ok(def.clone());
        }
        Ok(load_table_def(&mut self.meta, table)
            .await?
            .unwrap_or_default())
    }

    async fn ddl(&mut self, sql: &str, schema: &str) -> Result<Vec<Change>, CaptureError> {
        let Some(statement) = ddl::parse(sql, schema) else {
            return Ok(Vec::new());
        };
        let mut changes = Vec::new();
        let control = |table: &TableName, operation, control: String| Change::Control {
            table: table.clone(),
            operation,
            control,
        };
        match statement {
            Ddl::CreateTable { table, def } => {
                let def = match def {
                    Some(def) => def,
                    None => load_table_def(&mut self.meta, &table)
                        .await?
                        .unwrap_or_default(),
                };
                if self.options.captures(&table) {
                    changes.push(control(
                        &table,
                        ControlOperation::CreateTable,
                        ddl::control_json(Some(&def), &[]),
                    ));
                }
                self.defs.insert(table, def);
            }
            Ddl::DropTable(tables) => {
                for table in tables {
                    self.defs.remove(&table);
                    if self.options.captures(&table) {
                        changes.push(control(
                            &table,
                            ControlOperation::DropTable,
                            ddl::control_json(None, &[]),
                        ));
                    }
                }
            }
            Ddl::RenameTable(pairs) => {
                for (from, to) in pairs {
                    let def = match self.defs.remove(&from) {
                        Some(def) => def,
                        None => self.def_of(&to).await?,
                    };
                    if self.options.captures(&from) || self.options.captures(&to) {
                        changes.push(control(
                            &from,
                            ControlOperation::RenameTable,
                            ddl::control_json(Some(&def), &[("new-table", new_table(&to))]),
                        ));
                    }
                    self.defs.insert(to, def);
                }
            }
            Ddl::Alter { table, specs } => {
                let base = self.def_of(&table).await?;
                let altered = ddl::apply(&base, &specs);
                let captured = self.options.captures(&table);
                if let (Some(op), true) = (altered.operation, captured) {
                    changes.push(control(
                        &table,
                        op,
                        ddl::control_json(Some(&altered.def), &[]),
                    ));
                }
                match altered.renamed {
                    Some(to) => {
                        if captured || self.options.captures(&to) {
                            changes.push(control(
                                &table,
                                ControlOperation::RenameTable,
                                ddl::control_json(
                                    Some(&altered.def),
                                    &[("new-table", new_table(&to))],
                                ),
                            ));
                        }
                        self.defs.remove(&table);
                        self.defs.insert(to, altered.def);
                    }
                    None => {
                        self.defs.insert(table, altered.def);
                    }
                }
            }
        }
        Ok(changes)
    }

    fn commit(&mut self, log_pos: u64, timestamp: i64, xid: Option<u64>) -> CapturedTransaction {
        let tx = self.tx.take().unwrap_or_default();
        let position = BinlogPosition::new(self.file.clone(), log_pos);
        let commit_time = DateTime::<Utc>::from_timestamp(timestamp, 0).unwrap_or_default();
        let (transaction_id, id_json) = match (tx.gtid, xid) {
            (Some(g), _) if g.domain == 0 => (g.seq.to_string(), g.seq.to_string()),
            (Some(g), _) => {
                let id = format!("{}-{}-{}", g.domain, g.server, g.seq);
                let json = render::string(&id);
                (id, json)
            }
            (None, Some(xid)) => (xid.to_string(), xid.to_string()),
            (None, None) => {
                let id = format!("{}:{}", self.file, tx.start);
                let json = render::string(&id);
                (id, json)
            }
        };
        let now = Utc::now();
        let commit_timestamp = render::seconds_stamp(commit_time);
        let mut records = Vec::with_capacity(tx.changes.len());
        let mut record_id = 0u64;
        for change in tx.changes {
            match change {
                Change::Row {
                    table,
                    operation,
                    data,
                    before,
                    key,
                    stream_position,
                } => {
                    record_id += 1;
                    let details = TxDetails {
                        transaction_id: id_json.clone(),
                        commit_timestamp: commit_timestamp.clone(),
                        stream_position,
                        record_id,
                        prev: self.prev.clone(),
                    };
                    let payload = data_document(&DataDoc {
                        table: &table,
                        operation,
                        partition_key: &key,
                        data: &data,
                        before: before
                            .as_ref()
                            .map(|b| (self.options.before_image_field.as_str(), b)),
                        tx: Some(&details),
                        timestamp: now,
                        large_integer_value: self.options.large_integer_value,
                    });
                    records.push(CapturedRecord {
                        partition_key: key,
                        payload,
                        position: position.clone(),
                        commit_time: Some(commit_time),
                        table,
                    });
                }
                Change::Control {
                    table,
                    operation,
                    control,
                } => {
                    records.push(CapturedRecord {
                        partition_key: self.options.task_id.clone(),
                        payload: control_document(&table, operation.as_str(), &control, now),
                        position: position.clone(),
                        commit_time: Some(commit_time),
                        table,
                    });
                }
            }
        }
        if record_id > 0 {
            self.prev = Some((id_json, record_id));
        }
        self.position = position.clone();
        CapturedTransaction {
            transaction_id,
            records,
            position,
            commit_time,
        }
    }
}

/// The second word of a statement (`TO` of `ROLLBACK TO x`).
fn second_word(sql: &str) -> &str {
    sql.split_whitespace().nth(1).unwrap_or("")
}

fn new_table(to: &TableName) -> String {
    render::Object::new()
        .str("schema-name", &to.schema)
        .str("table-name", &to.table)
        .finish()
}

enum Step {
    /// A transaction committed.
    Transaction(CapturedTransaction),
    /// An event was read; no transaction ended.
    Event,
    /// Nothing arrived in time, or the stream ended.
    Idle,
}
