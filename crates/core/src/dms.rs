//! The AWS DMS record format on Kinesis, and its values.
//!
//! One Kinesis record carries one JSON document written by DMS:
//! `data` (the after image, or the deleted row), an optional before image
//! under a configurable field name, and `metadata`; or `control` plus
//! `metadata` for DDL and table events. This module turns the bytes into a
//! [`DmsRecord`] and never panics on any input: every failure is a
//! [`DecodeError`] that names the shard, the sequence number and, when it is
//! known, the table.
//!
//! External payloads are read tolerantly: unknown fields are ignored (DMS
//! adds fields depending on task settings), but an unknown `record-type` or
//! `operation` is an error, never skipped.

use std::fmt;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use crate::position::{split_event_id, PositionError, SequenceNumber, ShardId};

/// The before-image field name DMS uses unless `BeforeImageSettings.FieldName` says otherwise.
pub const DEFAULT_BEFORE_IMAGE_FIELD: &str = "before-image";

/// How to read DMS documents: the settings of the DMS task that wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeOptions {
    /// `BeforeImageSettings.FieldName` of the DMS task.
    pub before_image_field: String,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            before_image_field: DEFAULT_BEFORE_IMAGE_FIELD.to_owned(),
        }
    }
}

/// `schema.table` of a source table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableName {
    /// Schema (MySQL database) name.
    pub schema: String,
    /// Table name.
    pub table: String,
}

impl TableName {
    /// Builds a table name.
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> Self {
        TableName {
            schema: schema.into(),
            table: table.into(),
        }
    }

    /// The table name, shared: a batch names a few tables over and over,
    /// so the names decoded recently are kept (per thread) and handed out
    /// again instead of being made anew for every record.
    pub fn shared(schema: &str, table: &str) -> Arc<TableName> {
        RECENT_TABLES.with(|recent| {
            let mut recent = recent.borrow_mut();
            if let Some(found) = recent
                .names
                .iter()
                .find(|t| t.table == table && t.schema == schema)
            {
                return Arc::clone(found);
            }
            let name = Arc::new(TableName::new(schema, table));
            let next = recent.next;
            match recent.names.get_mut(next) {
                Some(slot) => *slot = Arc::clone(&name),
                None => recent.names.push(Arc::clone(&name)),
            }
            recent.next = (next + 1) % RecentTables::KEPT;
            name
        })
    }
}

/// The table names [`TableName::shared`] handed out last.
struct RecentTables {
    names: Vec<Arc<TableName>>,
    next: usize,
}

impl RecentTables {
    /// How many names are kept.
    const KEPT: usize = 16;
}

thread_local! {
    static RECENT_TABLES: std::cell::RefCell<RecentTables> = const {
        std::cell::RefCell::new(RecentTables { names: Vec::new(), next: 0 })
    };
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// One Kinesis record as Lambda delivers it, before the DMS payload is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Shard the record came from.
    pub shard_id: ShardId,
    /// Its sequence number in the shard.
    pub sequence_number: SequenceNumber,
    /// The partition key DMS chose.
    pub partition_key: String,
    /// When Kinesis accepted the record, in milliseconds since the epoch, if known.
    pub approximate_arrival_ms: Option<i64>,
    /// The raw payload (the DMS JSON document), already base64-decoded.
    pub data: Vec<u8>,
}

/// Why a Lambda event could not be turned into deliveries. This is an
/// event-level failure (the event is not what Lambda sends), not a bad record.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// A record has no `eventID`, or a malformed one.
    #[error("record {index} of the event: {source}")]
    Position {
        /// Index of the record in the event.
        index: usize,
        /// What was wrong.
        #[source]
        source: PositionError,
    },
    /// A shard's records are not in strictly increasing sequence number
    /// order within the event (a duplicate, or out of order): Lambda never
    /// sends that, so the event is not trusted.
    #[error("record {index} of the event: shard {shard_id}: sequence number {sequence_number} is not above the previous record's {previous} of the same shard")]
    OutOfOrder {
        /// Index of the record in the event.
        index: usize,
        /// The shard.
        shard_id: ShardId,
        /// This record's sequence number.
        sequence_number: SequenceNumber,
        /// The previous sequence number of the same shard in the event.
        previous: SequenceNumber,
    },
    /// `eventID` and `kinesis.sequenceNumber` disagree.
    #[error("record {index} of the event: eventID names sequence number {event_id_sequence} but kinesis.sequenceNumber is {sequence_number:?}")]
    SequenceMismatch {
        /// Index of the record in the event.
        index: usize,
        /// From the event id.
        event_id_sequence: SequenceNumber,
        /// From the record.
        sequence_number: String,
    },
}

/// Turns a Lambda Kinesis event into deliveries, in event order, copying
/// each payload (see [`into_deliveries`] to move them instead).
pub fn deliveries(
    event: &aws_lambda_events::event::kinesis::KinesisEvent,
) -> Result<Vec<Delivery>, EventError> {
    event
        .records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            delivery(
                index,
                record,
                record.kinesis.partition_key.clone(),
                record.kinesis.data.0.clone(),
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(in_shard_order)
}

/// Checks that each shard's deliveries are in strictly increasing sequence
/// number order (several shards may interleave).
pub fn in_shard_order(deliveries: Vec<Delivery>) -> Result<Vec<Delivery>, EventError> {
    // An event's records come in runs of one shard (usually a single run):
    // a record is compared with the one before it in its run, and only a
    // run's first record looks up the shard's last number of earlier runs.
    let mut earlier: std::collections::HashMap<&ShardId, &SequenceNumber> = Default::default();
    let mut run: Option<(&ShardId, &SequenceNumber)> = None;
    for (index, d) in deliveries.iter().enumerate() {
        let previous = match run {
            Some((shard, last)) if *shard == d.shard_id => Some(last),
            _ => {
                if let Some((shard, last)) = run {
                    earlier.insert(shard, last);
                }
                earlier.get(&d.shard_id).copied()
            }
        };
        run = Some((&d.shard_id, &d.sequence_number));
        if let Some(previous) = previous {
            if d.sequence_number <= *previous {
                return Err(EventError::OutOfOrder {
                    index,
                    shard_id: d.shard_id.clone(),
                    sequence_number: d.sequence_number.clone(),
                    previous: previous.clone(),
                });
            }
        }
    }
    Ok(deliveries)
}

/// Turns a Lambda Kinesis event into deliveries, in event order, moving
/// each payload out of the event: the function holds one copy of a batch's
/// payloads, not two. The functions read the event bytes as a
/// [`KinesisBatch`] instead, which copies nothing it does not keep.
pub fn into_deliveries(
    event: aws_lambda_events::event::kinesis::KinesisEvent,
) -> Result<Vec<Delivery>, EventError> {
    event
        .records
        .into_iter()
        .enumerate()
        .map(|(index, mut record)| {
            let partition_key = std::mem::take(&mut record.kinesis.partition_key);
            let data = std::mem::take(&mut record.kinesis.data.0);
            delivery(index, &record, partition_key, data)
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(in_shard_order)
}

/// One delivery of a `KinesisEvent` record, with the given partition key and payload.
fn delivery(
    index: usize,
    record: &aws_lambda_events::event::kinesis::KinesisEventRecord,
    partition_key: String,
    data: Vec<u8>,
) -> Result<Delivery, EventError> {
    delivery_from(
        index,
        record.event_id.as_deref().unwrap_or(""),
        &record.kinesis.sequence_number,
        partition_key,
        Some(
            record
                .kinesis
                .approximate_arrival_timestamp
                .0
                .timestamp_millis(),
        ),
        data,
    )
}

/// One delivery: the position from `event_id`, checked against the record's
/// own sequence number `own` (when not empty).
fn delivery_from(
    index: usize,
    event_id: &str,
    own: &str,
    partition_key: String,
    approximate_arrival_ms: Option<i64>,
    data: Vec<u8>,
) -> Result<Delivery, EventError> {
    let (shard_id, sequence_number) =
        split_event_id(event_id).map_err(|source| EventError::Position { index, source })?;
    // The same digits are the same number; other spellings are compared as numbers.
    if !own.is_empty()
        && own != sequence_number.as_str()
        && SequenceNumber::parse(own).ok().as_ref() != Some(&sequence_number)
    {
        return Err(EventError::SequenceMismatch {
            index,
            event_id_sequence: sequence_number,
            sequence_number: own.chars().take(140).collect(),
        });
    }
    Ok(Delivery {
        shard_id,
        sequence_number,
        partition_key,
        approximate_arrival_ms,
        data,
    })
}

/// A data operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// A row of the full load.
    Load,
    /// A row inserted during CDC.
    Insert,
    /// A row updated during CDC.
    Update,
    /// A row deleted during CDC; `data` holds the deleted row.
    Delete,
}

impl Operation {
    /// The DMS spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Load => "load",
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A control (DDL or table event) operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ControlOperation {
    /// `create-table`
    CreateTable,
    /// `drop-table`
    DropTable,
    /// `rename-table`
    RenameTable,
    /// `add-column`
    AddColumn,
    /// `drop-column`
    DropColumn,
    /// `rename-column`
    RenameColumn,
    /// `change-columns`
    ChangeColumns,
    /// `column-type-change`
    ColumnTypeChange,
}

impl ControlOperation {
    /// Every control operation, for tables and tests.
    pub const ALL: [ControlOperation; 8] = [
        ControlOperation::CreateTable,
        ControlOperation::DropTable,
        ControlOperation::RenameTable,
        ControlOperation::AddColumn,
        ControlOperation::DropColumn,
        ControlOperation::RenameColumn,
        ControlOperation::ChangeColumns,
        ControlOperation::ColumnTypeChange,
    ];

    /// The DMS spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ControlOperation::CreateTable => "create-table",
            ControlOperation::DropTable => "drop-table",
            ControlOperation::RenameTable => "rename-table",
            ControlOperation::AddColumn => "add-column",
            ControlOperation::DropColumn => "drop-column",
            ControlOperation::RenameColumn => "rename-column",
            ControlOperation::ChangeColumns => "change-columns",
            ControlOperation::ColumnTypeChange => "column-type-change",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        ControlOperation::ALL
            .into_iter()
            .find(|op| op.as_str() == text)
    }

    /// Whether this operation can remove or rename a column or table that a
    /// mapping reads.
    pub fn may_break_mapping(self) -> bool {
        matches!(
            self,
            ControlOperation::DropTable
                | ControlOperation::RenameTable
                | ControlOperation::DropColumn
                | ControlOperation::RenameColumn
                | ControlOperation::ChangeColumns
                | ControlOperation::ColumnTypeChange
        )
    }
}

impl fmt::Display for ControlOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A column value as DMS wrote it, classified without knowing the column type.
///
/// Numbers are never passed through `f64` unless DMS itself wrote them in
/// exponent notation; dates, times and binary arrive as text and are read by
/// the conversions ([`parse_datetime`], [`parse_binary`], ...) a mapping names.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL (the column was present with `null`).
    Null,
    /// A JSON boolean.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// A non-negative integer beyond `i64` (BIGINT UNSIGNED).
    UInt(u64),
    /// An exact decimal, kept as its text (DECIMAL, or an integer beyond `u64`).
    Decimal(String),
    /// A number DMS wrote in exponent notation (FLOAT/DOUBLE).
    Float(f64),
    /// A number in exponent notation large enough to be a BIGINT that DMS
    /// rounded (it does so for integers over 16 digits unless
    /// `UseLargeIntegerValue` is set). Its true value is unknown: rows that
    /// read it must be re-queried. Holds the text DMS wrote.
    Lossy(String),
    /// A JSON string: text, and the rendering of dates, times and binary.
    Text(String),
    /// A JSON object or array (a JSON column), as compact JSON text.
    Json(String),
    /// A date and time without zone (DATETIME wall clock; conversions and re-queries).
    DateTime(NaiveDateTime),
    /// A date (conversions and re-queries).
    Date(NaiveDate),
    /// A time of day (conversions and re-queries).
    Time(NaiveTime),
    /// Raw bytes (binary conversions and re-queries).
    Bytes(Vec<u8>),
}

impl Value {
    /// Whether the value cannot be trusted and the row must be re-queried.
    pub fn is_lossy(&self) -> bool {
        matches!(self, Value::Lossy(_))
    }

    /// Short name of the value's family, for error messages (never the value itself).
    pub fn family(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::UInt(_) => "integer",
            Value::Decimal(_) => "decimal",
            Value::Float(_) => "float",
            Value::Lossy(_) => "lossy number",
            Value::Text(_) => "string",
            Value::Json(_) => "json",
            Value::DateTime(_) => "datetime",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::Bytes(_) => "binary",
        }
    }
}

/// A column name. Names of up to 24 bytes are stored inline, so building a
/// row from a document or a result set allocates nothing for its names.
pub type ColumnName = compact_str::CompactString;

/// A row image: the columns DMS included, by name. A column that is absent
/// was not provided (not NULL): [`Row::get`] returns `None` for it.
///
/// The column names are kept sorted, each name once, apart from the values
/// (in the same order): a lookup is a binary search, and iteration is in
/// column-name order. Rows of one layout share their names: the images of
/// a table that the decoder reads one after the other ([`Row::from_scanned`]),
/// the rows of one result set ([`Row::sharing`]). Building such a row
/// copies no name, and two rows of one layout are known to be so without
/// comparing names ([`Row::same_names`]).
#[derive(Clone, PartialEq)]
pub struct Row {
    /// The column names, in name order, each once.
    names: Arc<[ColumnName]>,
    /// The values, in the order of `names`.
    values: Vec<Value>,
}

impl Default for Row {
    fn default() -> Self {
        Row {
            names: EMPTY_NAMES.with(Arc::clone),
            values: Vec::new(),
        }
    }
}

/// Names whose last place [`Row::found`] remembers (per thread).
const FOUND_SLOTS: usize = 64;

thread_local! {
    /// For [`Row::found`]: a name's address and the index it was found at
    /// last, in the slot of its address. Names at other addresses may share
    /// a slot: they only take turns.
    static FOUND: [std::cell::Cell<(usize, u32)>; FOUND_SLOTS] =
        const { [const { std::cell::Cell::new((0, 0)) }; FOUND_SLOTS] };

    /// The layouts of the images read last ([`Row::from_scanned`]).
    static LAYOUTS: std::cell::RefCell<Layouts> = const {
        std::cell::RefCell::new(Layouts { layouts: Vec::new(), next: 0 })
    };

    /// The names of an empty row.
    static EMPTY_NAMES: Arc<[ColumnName]> = Arc::from(Vec::new());
}

/// Column names that the rows of a result set share ([`Row::sharing`]),
/// their order checked once, when they are made.
#[derive(Debug, Clone)]
pub struct SharedNames {
    names: Arc<[ColumnName]>,
    /// Whether the names are in name order, each once.
    in_order: bool,
}

impl FromIterator<ColumnName> for SharedNames {
    fn from_iter<T: IntoIterator<Item = ColumnName>>(iter: T) -> Self {
        let names: Arc<[ColumnName]> = iter.into_iter().collect();
        let in_order = names.windows(2).all(|w| cmp_names(&w[0], &w[1]).is_lt());
        SharedNames { names, in_order }
    }
}

/// One layout of an image: its column names in document order, all
/// distinct; the same names in name order (what its rows share); and, for
/// each place in name order, the document index of its column.
struct Layout {
    document: Vec<ColumnName>,
    sorted: Arc<[ColumnName]>,
    order: Vec<u32>,
}

/// Recent layouts: a batch mixes a few tables, each with a layout or two.
struct Layouts {
    layouts: Vec<Layout>,
    next: usize,
}

impl Layouts {
    /// How many layouts are kept.
    const KEPT: usize = 8;

    /// The layout whose document names are exactly `names`.
    fn find(&self, names: &[&str]) -> Option<&Layout> {
        self.layouts.iter().find(|l| {
            l.document.len() == names.len()
                && l.document.iter().zip(names).all(|(a, b)| same_name(a, b))
        })
    }

    /// Remembers a layout, in place of the oldest when full.
    fn remember(&mut self, layout: Layout) {
        if self.layouts.len() < Self::KEPT {
            self.layouts.push(layout);
        } else if let Some(slot) = self.layouts.get_mut(self.next) {
            *slot = layout;
        }
        self.next = (self.next + 1) % Self::KEPT;
    }
}

/// The widest image whose values [`Row::from_scanned`] puts in name order
/// in place (a bit per column marks those in place).
const PERMUTED: usize = 64;

/// Puts `values` (in document order) in name order: place `i` takes the
/// value at `order[i]`. Follows each cycle of the permutation, a bit per
/// place marking those done.
fn permute(values: &mut [Value], order: &[u32]) {
    let mut done = 0u64;
    for start in 0..values.len().min(order.len()) {
        let mut at = start;
        while done & (1 << at) == 0 {
            done |= 1 << at;
            let Some(&from) = order.get(at) else { break };
            let from = from as usize;
            if from == start || from >= values.len() {
                break;
            }
            values.swap(at, from);
            at = from;
        }
    }
}

impl Row {
    /// A row of `columns` in any order; of columns named alike, the last wins.
    pub fn from_columns(mut columns: Vec<(ColumnName, Value)>) -> Row {
        if !columns.windows(2).all(|w| w[0].0 < w[1].0) {
            // Stable: of equal names, the later column stays later...
            columns.sort_by(|a, b| cmp_names(&a.0, &b.0));
            // ...and takes the place of the earlier one.
            columns.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    std::mem::swap(later, kept);
                }
                same
            });
        }
        let (names, values): (Vec<ColumnName>, Vec<Value>) = columns.into_iter().unzip();
        Row {
            names: names.into(),
            values,
        }
    }

    /// A row of `values` named `names` (a result set's column names, made
    /// once for its rows): the row shares the names when they are in name
    /// order, each once (a result set read in the order of a sorted select
    /// list), and as many as the values; otherwise it is made as
    /// [`Row::from_columns`] makes it.
    pub fn sharing(names: &SharedNames, values: Vec<Value>) -> Row {
        if names.in_order && names.names.len() == values.len() {
            return Row {
                names: Arc::clone(&names.names),
                values,
            };
        }
        Row::from_columns(names.names.iter().cloned().zip(values).collect())
    }

    /// A row of `values` named `names`, both in document order, as the
    /// decoder reads an image; of columns named alike, the last wins, as in
    /// [`Row::from_columns`]. Images of one table repeat their layout: when
    /// `names` are those of a recent image whose names were all distinct,
    /// the row shares that image's sorted names and its values are put in
    /// their order, without a sort and without a name being copied.
    pub(crate) fn from_scanned(names: &[&str], mut values: Vec<Value>) -> Row {
        // Sorted as any columns are (no layout shared).
        let sorted_apart = |values: Vec<Value>| {
            Row::from_columns(
                names
                    .iter()
                    .map(|n| ColumnName::new(n))
                    .zip(values)
                    .collect(),
            )
        };
        if names.len() != values.len() || names.len() > PERMUTED {
            return sorted_apart(values);
        }
        let shared = LAYOUTS.with(|layouts| {
            let layouts = layouts.borrow();
            let layout = layouts.find(names)?;
            permute(&mut values, &layout.order);
            Some(Arc::clone(&layout.sorted))
        });
        if let Some(sorted) = shared {
            return Row {
                names: sorted,
                values,
            };
        }
        // The order of the document indices by name; of equal names, the
        // later last.
        let mut order: Vec<u32> = (0..names.len() as u32).collect();
        order.sort_by(|a, b| {
            cmp_names(names[*a as usize], names[*b as usize]).then_with(|| a.cmp(b))
        });
        let distinct = order
            .windows(2)
            .all(|w| names[w[0] as usize] != names[w[1] as usize]);
        if !distinct {
            return sorted_apart(values);
        }
        let sorted: Arc<[ColumnName]> = order
            .iter()
            .map(|i| ColumnName::new(names[*i as usize]))
            .collect();
        permute(&mut values, &order);
        LAYOUTS.with(|layouts| {
            layouts.borrow_mut().remember(Layout {
                document: names.iter().map(|n| ColumnName::new(n)).collect(),
                sorted: Arc::clone(&sorted),
                order,
            })
        });
        Row {
            names: sorted,
            values,
        }
    }

    fn position(&self, column: &str) -> Result<usize, usize> {
        self.names.binary_search_by(|name| cmp_names(name, column))
    }

    /// Where `column` is, if the row carries it. Callers mostly ask for the
    /// same names (the mapping's, a select's key columns) in rows of the
    /// same columns, one row after another: the index where a name was
    /// found last (remembered by the name's address, in [`FOUND`]) is
    /// checked first, one name comparison, before the binary search. A row
    /// carries each name once, so a name found at the remembered index is
    /// the answer whatever row it was remembered from.
    #[inline]
    fn found(&self, column: &str) -> Option<usize> {
        let key = column.as_ptr() as usize;
        let slot = ((key >> 4) ^ (key >> 10)) % FOUND_SLOTS;
        FOUND.with(|found| {
            let cell = found.get(slot)?;
            let (remembered, at) = cell.get();
            if remembered == key && self.is_at(at as usize, column) {
                return Some(at as usize);
            }
            let at = self.position(column).ok()?;
            cell.set((key, u32::try_from(at).ok()?));
            Some(at)
        })
    }

    /// Where `column` is, searching forward from index `from` (a walk over
    /// columns in name order): `Ok` with its index, or `Err` with where it
    /// would be. Linear in the columns skipped, so a walk over the row is
    /// linear in its width.
    pub fn seek(&self, from: usize, column: &str) -> Result<usize, usize> {
        let rest = self.names.get(from..).unwrap_or_default();
        for (i, name) in rest.iter().enumerate() {
            match cmp_names(name, column) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Ok(from + i),
                std::cmp::Ordering::Greater => return Err(from + i),
            }
        }
        Err(from + rest.len())
    }

    /// Whether the column at `index` is `column`: where a walk over two
    /// images of one table, which mostly carry the same columns, looks
    /// first.
    pub fn is_at(&self, index: usize, column: &str) -> bool {
        self.names
            .get(index)
            .is_some_and(|name| cmp_names(name, column).is_eq())
    }

    /// The value at an index [`Row::seek`] returned.
    pub fn value_at(&self, index: usize) -> Option<&Value> {
        self.values.get(index)
    }

    /// Whether `self` and `other` share their names (one layout, so a
    /// column is at the same index in both); rows with equal names made
    /// apart may answer false.
    #[inline]
    pub fn same_names(&self, other: &Row) -> bool {
        Arc::ptr_eq(&self.names, &other.names)
    }

    /// An identity of the row's names, the same for the rows that share
    /// them ([`Row::same_names`]), while one of them lives.
    #[inline]
    pub(crate) fn names_id(&self) -> usize {
        self.names.as_ptr() as usize
    }

    /// The value of a column, or `None` when the image does not carry it.
    pub fn get(&self, column: &str) -> Option<&Value> {
        self.found(column).and_then(|i| self.value_at(i))
    }

    /// Whether the image carries `column`.
    pub fn contains_key(&self, column: &str) -> bool {
        self.found(column).is_some()
    }

    /// Sets a column's value; returns the value it replaces, if any.
    pub fn insert(&mut self, column: impl Into<ColumnName>, value: Value) -> Option<Value> {
        let column = column.into();
        match self.position(&column) {
            Ok(i) => Some(std::mem::replace(&mut self.values[i], value)),
            Err(i) => {
                let mut names = self.names.to_vec();
                names.insert(i, column);
                self.names = names.into();
                self.values.insert(i, value);
                None
            }
        }
    }

    /// Removes a column; returns its value, if the image carried it.
    pub fn remove(&mut self, column: &str) -> Option<Value> {
        let i = self.position(column).ok()?;
        let mut names = self.names.to_vec();
        names.remove(i);
        self.names = names.into();
        Some(self.values.remove(i))
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the image carries no column.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The columns and their values, in column-name order.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = (&ColumnName, &Value)> + ExactSizeIterator {
        self.names.iter().zip(&self.values)
    }

    /// The column names, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &ColumnName> + ExactSizeIterator {
        self.names.iter()
    }

    /// The values, in column-name order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator {
        self.values.iter()
    }

    /// Whether any value in the row is lossy.
    pub fn has_lossy(&self) -> bool {
        self.values().any(Value::is_lossy)
    }
}

/// Column names in byte order (as `str` orders them), eight bytes at a
/// time, inline: names are short, and a call to `memcmp` costs more than
/// the comparison of a short name.
#[inline]
fn cmp_names(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut at = 0;
    while let (Some(x), Some(y)) = (a.get(at..at + 8), b.get(at..at + 8)) {
        let (x, y) = (word(x), word(y));
        if x != y {
            return x.cmp(&y);
        }
        at += 8;
    }
    let (x, y) = (
        a.get(at..).unwrap_or_default(),
        b.get(at..).unwrap_or_default(),
    );
    for (x, y) in x.iter().zip(y) {
        if x != y {
            return x.cmp(y);
        }
    }
    x.len().cmp(&y.len())
}

/// Whether two column names are the same, eight bytes at a time, inline
/// (as [`cmp_names`]: a call to `memcmp` per name costs more).
#[inline]
fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let mut at = 0;
    while at + 8 < n {
        match (a.get(at..at + 8), b.get(at..at + 8)) {
            (Some(x), Some(y)) if word(x) == word(y) => at += 8,
            _ => return false,
        }
    }
    // The last eight bytes (overlapping the words before when `n` is not
    // a multiple of eight).
    match (a.get(n - 8..), b.get(n - 8..)) {
        (Some(x), Some(y)) => word(x) == word(y),
        _ => false,
    }
}

/// Eight bytes as a big-endian word: words order as the bytes do.
#[inline(always)]
fn word(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(bytes);
    u64::from_be_bytes(buf)
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As the map it stands for.
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<ColumnName>> FromIterator<(K, Value)> for Row {
    fn from_iter<T: IntoIterator<Item = (K, Value)>>(iter: T) -> Self {
        Row::from_columns(iter.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

impl IntoIterator for Row {
    type Item = (ColumnName, Value);
    type IntoIter = std::iter::Zip<std::vec::IntoIter<ColumnName>, std::vec::IntoIter<Value>>;

    /// The columns and their values, in column-name order.
    // The iterator owns its names: they are copied out of the shared ones.
    #[allow(clippy::unnecessary_to_owned)]
    fn into_iter(self) -> Self::IntoIter {
        self.names.to_vec().into_iter().zip(self.values)
    }
}

impl<'a> IntoIterator for &'a Row {
    type Item = (&'a ColumnName, &'a Value);
    type IntoIter = std::iter::Zip<std::slice::Iter<'a, ColumnName>, std::slice::Iter<'a, Value>>;

    fn into_iter(self) -> Self::IntoIter {
        self.names.iter().zip(self.values.iter())
    }
}

/// Transaction details (present with `IncludeTransactionDetails`), as
/// [`Metadata::transaction`] reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Transaction<'a> {
    /// `transaction-id`
    pub transaction_id: Option<&'a str>,
    /// `commit-timestamp`
    pub commit_timestamp: Option<&'a str>,
    /// `stream-position` (the source log position)
    pub stream_position: Option<&'a str>,
    /// `transaction-record-id` (offset of the record in its transaction)
    pub transaction_record_id: Option<&'a str>,
    /// `prev-transaction-id`
    pub prev_transaction_id: Option<&'a str>,
    /// `prev-transaction-record-id`
    pub prev_transaction_record_id: Option<&'a str>,
}

/// The `metadata` fields a record keeps, in this order in
/// [`Metadata::from_fields`]: `timestamp`, `partition-key-type`,
/// `partition-key-value`, then the [`Transaction`] fields in their order.
pub const METADATA_FIELDS: usize = 9;

/// The `metadata` object, tolerant of fields DMS adds.
///
/// The texts of the fields it keeps are stored one after the other in one
/// string: one allocation per record, where a string per field took up to
/// three (`timestamp`, `partition-key-value` and `stream-position` are
/// longer than an inline string's 24 bytes), and 104 bytes where nine
/// optional strings took 216.
#[derive(Clone, Default)]
pub struct Metadata {
    /// The fields' texts, in field order.
    text: String,
    /// Where each field's text ends in `text` (it starts where the one
    /// before ends).
    ends: [usize; METADATA_FIELDS],
    /// Bit `i`: field `i` is present.
    present: u16,
}

impl Metadata {
    /// The metadata of these fields (see [`METADATA_FIELDS`] for their order).
    pub fn from_fields(fields: [Option<&str>; METADATA_FIELDS]) -> Self {
        let len: usize = fields.iter().flatten().map(|t| t.len()).sum();
        let mut m = Metadata {
            text: String::with_capacity(len),
            ..Default::default()
        };
        for (i, field) in fields.iter().enumerate() {
            if let Some(t) = field {
                m.text.push_str(t);
                m.present |= 1 << i;
            }
            m.ends[i] = m.text.len();
        }
        m
    }

    /// Field `i`'s text (see [`METADATA_FIELDS`]).
    #[inline]
    fn field(&self, i: usize) -> Option<&str> {
        if self.present & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text.get(start..self.ends[i])
    }

    /// Every field, in [`METADATA_FIELDS`] order.
    pub fn fields(&self) -> [Option<&str>; METADATA_FIELDS] {
        std::array::from_fn(|i| self.field(i))
    }

    /// `timestamp`: when DMS produced the record.
    #[inline]
    pub fn timestamp(&self) -> Option<&str> {
        self.field(0)
    }

    /// `partition-key-type`
    #[inline]
    pub fn partition_key_type(&self) -> Option<&str> {
        self.field(1)
    }

    /// `partition-key-value` (with `IncludePartitionValue`)
    #[inline]
    pub fn partition_key_value(&self) -> Option<&str> {
        self.field(2)
    }

    /// Transaction details.
    #[inline]
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction {
            transaction_id: self.field(3),
            commit_timestamp: self.field(4),
            stream_position: self.field(5),
            transaction_record_id: self.field(6),
            prev_transaction_id: self.field(7),
            prev_transaction_record_id: self.field(8),
        }
    }
}

impl PartialEq for Metadata {
    fn eq(&self, other: &Self) -> bool {
        self.fields() == other.fields()
    }
}

impl Eq for Metadata {}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metadata")
            .field("timestamp", &self.timestamp())
            .field("partition_key_type", &self.partition_key_type())
            .field("partition_key_value", &self.partition_key_value())
            .field("transaction", &self.transaction())
            .finish()
    }
}

/// A row change.
#[derive(Debug, Clone, PartialEq)]
pub struct DataChange {
    /// What happened.
    pub operation: Operation,
    /// The source table (shared by the records of a batch that name it:
    /// see [`TableName::shared`]).
    pub table: Arc<TableName>,
    /// `data`: the after image (the deleted row for deletes).
    pub after: Row,
    /// The before image, for updates when the task enables it.
    pub before: Option<Row>,
}

/// A DDL or table event.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlRecord {
    /// What happened.
    pub operation: ControlOperation,
    /// The table it concerns, when DMS names one.
    pub table: Option<TableName>,
    /// The `control` object as DMS wrote it (table and column definitions).
    pub detail: serde_json::Value,
}

impl ControlRecord {
    /// Whether the control detail names `column` anywhere (as a key or a string value).
    pub fn mentions(&self, column: &str) -> bool {
        fn walk(v: &serde_json::Value, needle: &str) -> bool {
            match v {
                serde_json::Value::String(s) => s.eq_ignore_ascii_case(needle),
                serde_json::Value::Array(items) => items.iter().any(|i| walk(i, needle)),
                serde_json::Value::Object(map) => map
                    .iter()
                    .any(|(k, v)| k.eq_ignore_ascii_case(needle) || walk(v, needle)),
                _ => false,
            }
        }
        walk(&self.detail, column)
    }
}

/// What a DMS record says.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A row change.
    Data(DataChange),
    /// A control record; never mistaken for data.
    Control(ControlRecord),
}

/// A decoded DMS record with its Kinesis position.
#[derive(Debug, Clone, PartialEq)]
pub struct DmsRecord {
    /// Shard it came from.
    pub shard_id: ShardId,
    /// Sequence number in the shard.
    pub sequence_number: SequenceNumber,
    /// Metadata.
    pub metadata: Metadata,
    /// The change.
    pub payload: Payload,
}

impl DmsRecord {
    /// The DMS spelling of the record's operation (`insert`, `drop-column`, ...).
    pub fn operation_name(&self) -> &'static str {
        match &self.payload {
            Payload::Data(d) => d.operation.as_str(),
            Payload::Control(c) => c.operation.as_str(),
        }
    }

    /// The table the record concerns, if any.
    pub fn table(&self) -> Option<&TableName> {
        match &self.payload {
            Payload::Data(d) => Some(&d.table),
            Payload::Control(c) => c.table.as_ref(),
        }
    }
}

/// What was wrong with one record's payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// Not JSON, or not a JSON object.
    #[error("payload is not a JSON object: {0}")]
    Json(String),
    /// No `metadata` object.
    #[error("missing `metadata` object")]
    MissingMetadata,
    /// `metadata` is not an object of the expected shape.
    #[error("`metadata` is malformed: {0}")]
    Metadata(String),
    /// A required metadata field is absent.
    #[error("missing `metadata.{0}`")]
    MissingField(&'static str),
    /// `record-type` is neither `data` nor `control`.
    #[error("unknown record-type {0:?} (expected \"data\" or \"control\")")]
    UnknownRecordType(String),
    /// `operation` is not known for the record type.
    #[error("unknown operation {operation:?} for record-type {record_type:?}")]
    UnknownOperation {
        /// The record type.
        record_type: String,
        /// The operation DMS wrote.
        operation: String,
    },
    /// A data record without a `data` object.
    #[error("data record has no `data` object")]
    MissingData,
    /// `data` or the before image is not an object, or a column value is not JSON.
    #[error("`{field}` is not an object of column values: {reason}")]
    Image {
        /// `data` or the before image field name.
        field: String,
        /// What was wrong.
        reason: String,
    },
}

/// A record that could not be decoded, named by shard, sequence number and table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "shard {shard_id}, sequence number {sequence_number}, table {}: {}",
    table.as_ref().map(|t| bounded(&t.to_string(), 200).to_owned()).unwrap_or_else(|| "(unknown)".to_owned()),
    bounded(&kind.to_string(), 256)
)]
/// (Record-derived text in the message, the table and the problem, is
/// bounded: 200 and 256 bytes.)
pub struct DecodeError {
    /// Shard of the record.
    pub shard_id: ShardId,
    /// Sequence number of the record.
    pub sequence_number: SequenceNumber,
    /// The table, when the metadata could be read that far.
    pub table: Option<Box<TableName>>,
    /// What was wrong.
    #[source]
    pub kind: DecodeErrorKind,
}

/// Decodes one delivery's payload.
pub fn decode_record(
    delivery: &Delivery,
    options: &DecodeOptions,
) -> Result<DmsRecord, DecodeError> {
    decode_payload(
        &delivery.shard_id,
        &delivery.sequence_number,
        &delivery.data,
        options,
    )
}

/// Decodes a DMS JSON document that arrived at `shard_id` / `sequence_number`.
///
/// The document is read in one pass with nothing copied that the record does
/// not keep; a malformed document is read a second time, field by field, to
/// say precisely what is wrong (see `src/dms/decode.rs`).
pub fn decode_payload(
    shard_id: &ShardId,
    sequence_number: &SequenceNumber,
    payload: &[u8],
    options: &DecodeOptions,
) -> Result<DmsRecord, DecodeError> {
    decode::decode(
        shard_id,
        sequence_number,
        payload,
        &options.before_image_field,
    )
}

/// Whether `payload` is one JSON value by the decoder's own strict scan
/// (UTF-8 checked, the whole grammar), with nothing kept: what the scan
/// alone costs, for `benches/instructions.rs` (the floor under
/// [`decode_payload`]'s reading of a document).
#[doc(hidden)]
pub fn is_json(payload: &[u8]) -> bool {
    cursor::Cursor::new(payload).is_some_and(|mut c| {
        c.whitespace();
        c.skip(0).is_some() && c.at_end()
    })
}

/// Smallest magnitude at which an exponent-notation integer may be a BIGINT
/// DMS rounded: DMS keeps 16 significant digits, so anything from 10^16 up
/// can have lost digits.
const LOSSY_INTEGER_FLOOR: f64 = 1e16;

/// Classifies one JSON value (its raw text) into a [`Value`].
pub fn classify(text: &str) -> Result<Value, String> {
    let text = text.trim();
    match text.as_bytes().first() {
        None => Err("empty value".to_owned()),
        Some(b'n') if text == "null" => Ok(Value::Null),
        Some(b't') if text == "true" => Ok(Value::Bool(true)),
        Some(b'f') if text == "false" => Ok(Value::Bool(false)),
        Some(b'"') => match plain_string(text) {
            Some(content) => Ok(Value::Text(content.to_owned())),
            None => serde_json::from_str::<String>(text)
                .map(Value::Text)
                .map_err(|e| e.to_string()),
        },
        Some(b'{') | Some(b'[') => serde_json::from_str::<serde_json::Value>(text)
            .map(|v| Value::Json(v.to_string()))
            .map_err(|e| e.to_string()),
        Some(b'-') | Some(b'0'..=b'9') => Ok(classify_number(text)),
        Some(_) => Err("not a JSON value".to_owned()),
    }
}

/// [`classify`] for the text of a value the JSON parser has just read (valid
/// JSON, nothing around it): a string without escapes is its content.
fn classify_parsed(text: &str) -> Result<Value, String> {
    if let Some(inner) = text.strip_prefix('"') {
        if !inner.contains('\\') {
            // The parser ended the string at the first unescaped quote and
            // rejected control characters: the content is what is inside.
            if let Some(content) = inner.strip_suffix('"') {
                return Ok(Value::Text(content.to_owned()));
            }
        }
    }
    if text.starts_with(['[', '{']) && written_compact(text) {
        return Ok(Value::Json(text.to_owned()));
    }
    classify(text)
}

/// Whether the text of a JSON array or object the parser has just read
/// (valid JSON) is already what [`classify`] writes back for it: strings
/// without escapes, `true`, `false`, `null`, arrays, and objects whose keys
/// are distinct, without whitespace or numbers, nested well within the depth
/// `classify`'s parser accepts (128). The round trip keeps an object's keys
/// in their order (serde_json's `preserve_order`, which this crate enables)
/// and a repeated key once, with its last value: so an object with a
/// repeated key, or with more keys than are compared here, takes it.
fn written_compact(text: &str) -> bool {
    let mut at = 0;
    compact_value(text.as_bytes(), &mut at, 0) && at == text.len()
}

/// Depth of arrays and objects [`written_compact`] follows.
const COMPACT_DEPTH: u32 = 64;
/// Keys of one object [`written_compact`] compares with each other.
const COMPACT_KEYS: usize = 16;

/// A value of [`written_compact`] at `*at`; `*at` is moved past it. It
/// accepts only valid JSON (on UTF-8 text), so the document scan reads
/// such values with it directly.
pub(super) fn compact_value(text: &[u8], at: &mut usize, depth: u32) -> bool {
    let literal = |at: &mut usize, word: &[u8]| {
        let end = *at + word.len();
        let found = text.get(*at..end) == Some(word);
        *at = end;
        found
    };
    match text.get(*at) {
        Some(b'"') => compact_string(text, at).is_some(),
        Some(b't') => literal(at, b"true"),
        Some(b'f') => literal(at, b"false"),
        Some(b'n') => literal(at, b"null"),
        Some(&open @ (b'[' | b'{')) if depth < COMPACT_DEPTH => {
            let (object, close) = (open == b'{', if open == b'{' { b'}' } else { b']' });
            *at += 1;
            if text.get(*at) == Some(&close) {
                *at += 1;
                return true;
            }
            let mut keys: [&[u8]; COMPACT_KEYS] = [&[]; COMPACT_KEYS];
            let mut count = 0;
            loop {
                if object {
                    let Some(key) = compact_string(text, at) else {
                        return false;
                    };
                    if count == COMPACT_KEYS || keys[..count].contains(&key) {
                        return false;
                    }
                    keys[count] = key;
                    count += 1;
                    if text.get(*at) != Some(&b':') {
                        return false;
                    }
                    *at += 1;
                }
                if !compact_value(text, at, depth + 1) {
                    return false;
                }
                *at += 1;
                match text.get(*at - 1) {
                    Some(b',') => {}
                    Some(&b) if b == close => return true,
                    _ => return false,
                }
            }
        }
        _ => false,
    }
}

/// The content of a string without escapes at `*at` (its opening quote);
/// `*at` is moved past its closing quote. `None` where no string starts,
/// at an escape or a control character.
fn compact_string<'a>(text: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    (text.get(*at) == Some(&b'"')).then_some(())?;
    let start = *at + 1;
    let rest = text.get(start..)?;
    let len = cursor::stop(rest);
    (rest.get(len) == Some(&b'"')).then_some(())?;
    *at = start + len + 1;
    rest.get(..len)
}

/// The content of a JSON string that needs no unescaping (`"abc"` -> `abc`);
/// `None` when it has escapes or is not a well-formed string.
fn plain_string(text: &str) -> Option<&str> {
    let content = text.strip_prefix('"')?.strip_suffix('"')?;
    content
        .bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\')
        .then_some(content)
}

fn classify_number(text: &str) -> Value {
    // One pass over the bytes for both questions.
    let (mut has_exponent, mut has_point) = (false, false);
    for b in text.bytes() {
        match b {
            b'e' | b'E' => has_exponent = true,
            b'.' => has_point = true,
            _ => {}
        }
    }
    if has_exponent {
        let value: f64 = text.parse().unwrap_or(f64::NAN);
        if value.is_finite() && value.fract() == 0.0 && value.abs() >= LOSSY_INTEGER_FLOOR {
            return Value::Lossy(text.to_owned());
        }
        return if value.is_finite() {
            Value::Float(value)
        } else {
            Value::Lossy(text.to_owned())
        };
    }
    if !has_point {
        if let Ok(i) = text.parse::<i64>() {
            return Value::Int(i);
        }
        if let Ok(u) = text.parse::<u64>() {
            return Value::UInt(u);
        }
    }
    Value::Decimal(text.to_owned())
}

/// Reads a DMS date-time rendering as the source's wall-clock value.
///
/// DMS writes DATETIME as `2024-03-01T10:15:00Z` (or with a space, or with
/// fractional seconds) although DATETIME carries no zone and is not
/// converted: the `Z` is dropped and the value is not shifted. A value with
/// an explicit offset (`+01`, `+05:30`: a PostgreSQL `timestamptz` as the
/// server renders it) is an instant, read in UTC.
pub fn parse_datetime(text: &str) -> Option<NaiveDateTime> {
    let text = without_z(text);
    plain_datetime(text).or_else(|| formatted_datetime(text))
}

/// `text` trimmed, without one trailing `Z` or `z` (DMS writes one after a
/// DATETIME, which carries no zone).
pub(crate) fn without_z(text: &str) -> &str {
    let text = text.trim();
    text.strip_suffix(['Z', 'z']).unwrap_or(text)
}

/// [`parse_datetime`] by chrono's formats (`text` without its `Z`): what
/// [`plain_datetime`] does not read.
fn formatted_datetime(text: &str) -> Option<NaiveDateTime> {
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(text, format) {
            return Some(dt);
        }
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(dt) = chrono::DateTime::parse_from_str(text, format) {
            return Some(dt.naive_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

/// The usual rendering, `2024-03-01T10:15:00` or `2024-03-01 10:15:00`
/// with up to nine fraction digits (the `Z` already dropped), read without
/// chrono's format machinery (a record's commit timestamp is read for each
/// record). `None` for anything else, and for a value that is not a
/// calendar date and time of day (a leap second, `24:00:00`): the caller
/// reads those with chrono, which reads these the same.
pub(crate) fn plain_datetime(text: &str) -> Option<NaiveDateTime> {
    let (head, fraction) = text.as_bytes().split_at_checked(19)?;
    let field = |at: std::ops::Range<usize>| ascii_number(head.get(at)?);
    let punctuated = head.get(4) == Some(&b'-')
        && head.get(7) == Some(&b'-')
        && matches!(head.get(10), Some(b'T' | b' '))
        && head.get(13) == Some(&b':')
        && head.get(16) == Some(&b':');
    if !punctuated {
        return None;
    }
    let nanos = match fraction {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            ascii_number(digits)? * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let year = i32::try_from(field(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, field(5..7)?, field(8..10)?)?.and_hms_nano_opt(
        field(11..13)?,
        field(14..16)?,
        field(17..19)?,
        nanos,
    )
}

/// The number that ASCII digits (nine at most) write; `None` for any other
/// byte.
fn ascii_number(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
    })
}

/// Reads a DMS DATE rendering (`2024-03-01`, possibly with a midnight time).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .ok()
        .or_else(|| parse_datetime(text).map(|dt| dt.date()))
}

/// Reads a DMS TIME rendering (`10:15:00`, `10:15:00.123456`).
pub fn parse_time(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text.trim().trim_end_matches('Z'), "%H:%M:%S%.f").ok()
}

/// Reads DMS's rendering of BINARY/VARBINARY/BLOB values: hexadecimal, with a
/// `0x` prefix unless the endpoint sets `NoHexPrefix`.
pub fn parse_binary(text: &str) -> Option<Vec<u8>> {
    let hex = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

mod cursor;
mod decode;

pub(crate) use cursor::stop as json_text_stop;
mod event;

pub use event::KinesisBatch;

/// `text` cut to at most `max` bytes at a character boundary.
pub fn bounded(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;
