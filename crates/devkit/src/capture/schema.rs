//! Table definitions: from `information_schema`, from the binlog's table map
//! events (`binlog_row_metadata=FULL`), and the conversion of column values
//! (binlog row images and result rows) into [`Cell`]s.

use std::collections::BTreeSet;

use mysql_async::binlog::events::{OptionalMetaExtractor, OptionalMetadataField, TableMapEvent};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::ColumnType;
use mysql_async::prelude::*;
use mysql_async::Conn;

use crate::dms::TableName;

use super::render::Cell;

/// The binary character set / collation id.
const BINARY_CHARSET: u16 = 63;

/// One column of a table definition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ColumnDef {
    /// Name.
    pub name: String,
    /// Lowercase column type (`bigint(20) unsigned`, `varchar(200)`, `json`).
    pub type_text: String,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// A JSON column (MariaDB stores it as LONGTEXT with a `json_valid` check).
    pub json: bool,
}

/// A table's columns, in order, and its primary key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TableDef {
    /// Columns in table order.
    pub columns: Vec<ColumnDef>,
    /// Primary key columns, in key order.
    pub primary_key: Vec<String>,
}

impl TableDef {
    /// Whether the definition has exactly these column names, in order.
    pub(crate) fn has_columns(&self, names: &[String]) -> bool {
        self.columns.len() == names.len()
            && self
                .columns
                .iter()
                .zip(names)
                .all(|(c, n)| c.name.eq_ignore_ascii_case(n))
    }

    /// Names of the JSON columns.
    pub(crate) fn json_columns(&self) -> BTreeSet<String> {
        self.columns
            .iter()
            .filter(|c| c.json)
            .map(|c| c.name.clone())
            .collect()
    }
}

/// Reads a table's definition from `information_schema`; `None` when the
/// table does not exist (now).
pub(crate) async fn load_table_def(
    conn: &mut Conn,
    table: &TableName,
) -> Result<Option<TableDef>, mysql_async::Error> {
    let rows: Vec<(String, String, String, String)> = conn
        .exec(
            "SELECT COLUMN_NAME, COLUMN_TYPE, DATA_TYPE, IS_NULLABLE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (&table.schema, &table.table),
        )
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let primary_key: Vec<String> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
            (&table.schema, &table.table),
        )
        .await?;
    // MariaDB: a JSON column is LONGTEXT with a `json_valid(`col`)` check.
    // (MySQL's CHECK_CONSTRAINTS has no TABLE_NAME; there DATA_TYPE says json.)
    let checks: Vec<String> = conn
        .exec(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
            (&table.schema, &table.table),
        )
        .await
        .unwrap_or_default();
    let json_checked: BTreeSet<String> = checks
        .iter()
        .filter_map(|clause| {
            let lower = clause.to_ascii_lowercase();
            let inner = lower
                .trim()
                .strip_prefix("json_valid(")?
                .strip_suffix(')')?;
            Some(inner.trim().trim_matches('`').to_owned())
        })
        .collect();
    let columns = rows
        .into_iter()
        .map(|(name, column_type, data_type, nullable)| {
            let json = data_type.eq_ignore_ascii_case("json")
                || json_checked.contains(&name.to_ascii_lowercase());
            ColumnDef {
                type_text: if json {
                    "json".to_owned()
                } else {
                    column_type.to_ascii_lowercase()
                },
                name,
                nullable: nullable.eq_ignore_ascii_case("YES"),
                json,
            }
        })
        .collect();
    Ok(Some(TableDef {
        columns,
        primary_key,
    }))
}

/// One column as a table map event describes it.
#[derive(Debug, Clone)]
pub(crate) struct ColInfo {
    /// Name (from the optional metadata).
    pub name: String,
    /// Real type (ENUM and SET resolved).
    pub ctype: ColumnType,
    /// Type metadata (lengths, precision, fractional digits).
    pub meta: Vec<u8>,
    /// UNSIGNED.
    pub unsigned: bool,
    /// Character set (collation id) of character columns; 63 is binary.
    pub charset: u16,
    /// NULL allowed.
    pub nullable: bool,
    /// ENUM labels.
    pub enum_labels: Vec<String>,
    /// SET labels.
    pub set_labels: Vec<String>,
    /// JSON column (set from the table definition or the capture options).
    pub json: bool,
}

impl ColInfo {
    /// Whether DMS treats the column as a LOB: TEXT and BLOB (not TINY*), JSON, GEOMETRY.
    pub(crate) fn is_lob_type(&self) -> bool {
        match self.ctype {
            ColumnType::MYSQL_TYPE_BLOB
            | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
            | ColumnType::MYSQL_TYPE_LONG_BLOB => <[u8]>::first(&self.meta).is_none_or(|&b| b >= 2),
            ColumnType::MYSQL_TYPE_JSON | ColumnType::MYSQL_TYPE_GEOMETRY => true,
            _ => self.json,
        }
    }

    fn is_binary(&self) -> bool {
        self.charset == BINARY_CHARSET
    }

    /// The column type as SQL text (for table definitions built from the binlog).
    fn type_text(&self) -> String {
        use ColumnType::*;
        let m = |i: usize| u64::from(self.meta.get(i).copied().unwrap_or(0));
        let unsigned = if self.unsigned { " unsigned" } else { "" };
        // Bytes per character of the common collations (utf8mb4, utf8mb3, else 1).
        let per_char = match self.charset {
            45 | 46 | 224..=247 | 255..=323 => 4,
            33 | 83 | 192..=215 => 3,
            _ => 1,
        };
        let quoted = |labels: &[String]| {
            labels
                .iter()
                .map(|l| format!("'{}'", l.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(",")
        };
        if self.json {
            return "json".to_owned();
        }
        match self.ctype {
            MYSQL_TYPE_TINY => format!("tinyint{unsigned}"),
            MYSQL_TYPE_SHORT => format!("smallint{unsigned}"),
            MYSQL_TYPE_INT24 => format!("mediumint{unsigned}"),
            MYSQL_TYPE_LONG => format!("int{unsigned}"),
            MYSQL_TYPE_LONGLONG => format!("bigint{unsigned}"),
            MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL => {
                format!("decimal({},{}){unsigned}", m(0), m(1))
            }
            MYSQL_TYPE_FLOAT => format!("float{unsigned}"),
            MYSQL_TYPE_DOUBLE => format!("double{unsigned}"),
            MYSQL_TYPE_DATETIME2 => format!("datetime({})", m(0)),
            MYSQL_TYPE_DATETIME => "datetime".to_owned(),
            MYSQL_TYPE_TIMESTAMP2 => format!("timestamp({})", m(0)),
            MYSQL_TYPE_TIMESTAMP => "timestamp".to_owned(),
            MYSQL_TYPE_TIME2 | MYSQL_TYPE_TIME => "time".to_owned(),
            MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => "date".to_owned(),
            MYSQL_TYPE_YEAR => "year".to_owned(),
            MYSQL_TYPE_BIT => format!("bit({})", m(1) * 8 + m(0)),
            MYSQL_TYPE_ENUM => format!("enum({})", quoted(&self.enum_labels)),
            MYSQL_TYPE_SET => format!("set({})", quoted(&self.set_labels)),
            MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING => {
                let bytes = m(0) | (m(1) << 8);
                if self.is_binary() {
                    format!("varbinary({bytes})")
                } else {
                    format!("varchar({})", bytes / per_char)
                }
            }
            MYSQL_TYPE_STRING => {
                let (b0, b1) = (m(0), m(1));
                let bytes = if b0 & 0x30 != 0x30 {
                    b1 | (((b0 & 0x30) ^ 0x30) << 4)
                } else {
                    b1
                };
                if self.is_binary() {
                    format!("binary({bytes})")
                } else {
                    format!("char({})", bytes / per_char)
                }
            }
            MYSQL_TYPE_BLOB
            | MYSQL_TYPE_TINY_BLOB
            | MYSQL_TYPE_MEDIUM_BLOB
            | MYSQL_TYPE_LONG_BLOB => {
                let size = ["tiny", "", "medium", "long"]
                    [usize::try_from(m(0).clamp(1, 4) - 1).unwrap_or(1)];
                if self.is_binary() {
                    format!("{size}blob")
                } else {
                    format!("{size}text")
                }
            }
            MYSQL_TYPE_JSON => "json".to_owned(),
            MYSQL_TYPE_GEOMETRY => "geometry".to_owned(),
            other => format!("{other:?}").to_ascii_lowercase(),
        }
    }
}

/// A table as a table map event describes it.
#[derive(Debug, Clone)]
pub(crate) struct TableInfo {
    /// `schema.table`.
    pub table: TableName,
    /// Columns in table order.
    pub columns: Vec<ColInfo>,
    /// Primary key column indexes, in key order.
    pub primary_key: Vec<usize>,
}

impl TableInfo {
    /// Reads a table map event; fails without column names
    /// (`binlog_row_metadata` is not `FULL`).
    pub(crate) fn from_tme(tme: &TableMapEvent<'_>) -> Result<TableInfo, String> {
        let table = TableName::new(tme.database_name(), tme.table_name());
        let count = usize::try_from(tme.columns_count()).unwrap_or(0);
        let extractor = OptionalMetaExtractor::new(tme.iter_optional_meta())
            .map_err(|e| format!("table map of {table}: optional metadata: {e}"))?;
        let names: Vec<String> = extractor
            .iter_column_name()
            .map(|n| n.map(|n| n.name().into_owned()))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("table map of {table}: column names: {e}"))?;
        if names.len() != count {
            return Err(format!(
                "table map of {table} carries no column names: the server must run with binlog_row_metadata=FULL"
            ));
        }
        let mut signedness = extractor.iter_signedness();
        let mut charsets = extractor.iter_charset();
        let mut enums: Vec<Vec<String>> = Vec::new();
        let mut sets: Vec<Vec<String>> = Vec::new();
        for field in tme.iter_optional_meta() {
            match field {
                Ok(OptionalMetadataField::EnumStrValue(values)) => {
                    for labels in values.iter_values() {
                        let labels = labels.map_err(|e| format!("table map of {table}: {e}"))?;
                        enums.push(
                            labels
                                .values()
                                .iter()
                                .map(|v| v.value().into_owned())
                                .collect(),
                        );
                    }
                }
                Ok(OptionalMetadataField::SetStrValue(values)) => {
                    for labels in values.iter_values() {
                        let labels = labels.map_err(|e| format!("table map of {table}: {e}"))?;
                        sets.push(
                            labels
                                .values()
                                .iter()
                                .map(|v| v.value().into_owned())
                                .collect(),
                        );
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(format!("table map of {table}: optional metadata: {e}")),
            }
        }
        let mut enums = enums.into_iter();
        let mut sets = sets.into_iter();
        let mut columns = Vec::with_capacity(count);
        for (i, name) in names.into_iter().enumerate() {
            let ctype = match tme.get_column_type(i) {
                Ok(Some(t)) => t,
                Ok(None) => return Err(format!("table map of {table}: no type for column {i}")),
                Err(e) => return Err(format!("table map of {table}: column `{name}`: {e}")),
            };
            let unsigned = if ctype.is_numeric_type() {
                signedness.next().unwrap_or(false)
            } else {
                false
            };
            let charset = if ctype.is_character_type() {
                charsets
                    .next()
                    .transpose()
                    .map_err(|e| format!("table map of {table}: charsets: {e}"))?
                    .unwrap_or(0)
            } else {
                0
            };
            columns.push(ColInfo {
                name,
                ctype,
                meta: tme.get_column_metadata(i).unwrap_or(&[]).to_vec(),
                unsigned,
                charset,
                nullable: tme.null_bitmask().get(i).map(|b| *b).unwrap_or(true),
                enum_labels: if ctype == ColumnType::MYSQL_TYPE_ENUM {
                    enums.next().unwrap_or_default()
                } else {
                    Vec::new()
                },
                set_labels: if ctype == ColumnType::MYSQL_TYPE_SET {
                    sets.next().unwrap_or_default()
                } else {
                    Vec::new()
                },
                json: ctype == ColumnType::MYSQL_TYPE_JSON,
            });
        }
        let primary_key = extractor
            .iter_primary_key()
            .map(|k| k.map(|k| usize::try_from(k).unwrap_or(usize::MAX)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("table map of {table}: primary key: {e}"))?
            .into_iter()
            .filter(|&k| k < count)
            .collect();
        Ok(TableInfo {
            table,
            columns,
            primary_key,
        })
    }

    /// Column names in order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// A table definition from the table map alone (types approximated
    /// from the binlog metadata).
    pub(crate) fn def(&self) -> TableDef {
        TableDef {
            columns: self
                .columns
                .iter()
                .map(|c| ColumnDef {
                    name: c.name.clone(),
                    type_text: c.type_text(),
                    nullable: c.nullable,
                    json: c.json,
                })
                .collect(),
            primary_key: self
                .primary_key
                .iter()
                .map(|&i| self.columns[i].name.clone())
                .collect(),
        }
    }
}

fn text(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn fsp(meta: &[u8]) -> u8 {
    <[u8]>::first(meta).copied().unwrap_or(0).min(6)
}

/// Converts a value of a binlog row image.
pub(crate) fn binlog_cell(value: BinlogValue<'_>, col: &ColInfo) -> Result<Cell, String> {
    use mysql_async::Value as V;
    use ColumnType::*;
    let v = match value {
        BinlogValue::Value(v) => v,
        BinlogValue::Jsonb(j) => {
            // MySQL's binary JSON (MariaDB sends JSON as text).
            return serde_json::Value::try_from(j)
                .map(|v| Cell::Json(v.to_string()))
                .map_err(|e| format!("column `{}`: JSON value: {e}", col.name));
        }
        BinlogValue::JsonDiff(_) => {
            return Err(format!(
                "column `{}`: partial JSON update (MySQL binlog_row_value_options=PARTIAL_JSON) is not supported",
                col.name
            ))
        }
    };
    Ok(match (col.ctype, v) {
        (_, V::NULL) => Cell::Null,
        (MYSQL_TYPE_ENUM, V::Int(i)) => Cell::Text(
            usize::try_from(i)
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| col.enum_labels.get(i).cloned())
                .unwrap_or_default(),
        ),
        (MYSQL_TYPE_SET, V::Bytes(mask)) => {
            let labels: Vec<&str> = col
                .set_labels
                .iter()
                .enumerate()
                .filter(|(bit, _)| mask.get(bit / 8).is_some_and(|b| b & (1 << (bit % 8)) != 0))
                .map(|(_, l)| l.as_str())
                .collect();
            Cell::Text(labels.join(","))
        }
        (MYSQL_TYPE_YEAR, V::Bytes(b)) => {
            let year = text(b);
            year.parse::<i64>()
                .map(Cell::Int)
                .unwrap_or(Cell::Text(year))
        }
        (MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL, V::Bytes(b)) => Cell::Decimal(text(b)),
        (MYSQL_TYPE_TIMESTAMP2, V::Bytes(b)) => {
            let t = text(b);
            let (secs, frac) = t.split_once('.').unwrap_or((&t, "0"));
            match (secs.parse::<i64>(), frac.parse::<u32>()) {
                (Ok(secs), Ok(micros)) => Cell::timestamp(secs, micros, fsp(&col.meta)),
                _ => Cell::Text(t),
            }
        }
        (MYSQL_TYPE_TIMESTAMP, V::Int(secs)) => Cell::timestamp(secs, 0, 0),
        (MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE, V::Date(y, m, d, ..)) => Cell::date(y, m, d),
        (MYSQL_TYPE_DATETIME2, V::Date(y, mo, d, h, mi, s, us)) => {
            Cell::date_time(y, mo, d, h, mi, s, us, fsp(&col.meta))
        }
        (_, V::Date(y, mo, d, h, mi, s, us)) => Cell::date_time(y, mo, d, h, mi, s, us, 0),
        (ctype, V::Time(negative, days, h, minute, second, micros)) => Cell::Time {
            negative,
            hours: days * 24 + u32::from(h),
            minute: u32::from(minute),
            second: u32::from(second),
            micros,
            fsp: if ctype == MYSQL_TYPE_TIME2 {
                fsp(&col.meta)
            } else {
                0
            },
        },
        (MYSQL_TYPE_BIT | MYSQL_TYPE_GEOMETRY, V::Bytes(b)) => Cell::Binary(b),
        (_, V::Bytes(b)) if col.json => Cell::Json(text(b)),
        (_, V::Bytes(b)) if col.is_binary() => Cell::Binary(b),
        (_, V::Bytes(b)) => Cell::Text(text(b)),
        (_, V::Int(i)) => Cell::Int(i),
        (_, V::UInt(u)) => Cell::UInt(u),
        (_, V::Float(f)) => Cell::Float(f),
        (_, V::Double(f)) => Cell::Double(f),
    })
}

/// Converts a value of a result row (binary protocol; the session in UTC so
/// that TIMESTAMP values are UTC).
pub(crate) fn row_cell(
    value: mysql_async::Value,
    column: &mysql_async::Column,
    json: bool,
) -> Cell {
    use mysql_async::Value as V;
    use ColumnType::*;
    let fsp = column.decimals().min(6);
    match value {
        V::NULL => Cell::Null,
        V::Int(i) => Cell::Int(i),
        V::UInt(u) => Cell::UInt(u),
        V::Float(f) => Cell::Float(f),
        V::Double(f) => Cell::Double(f),
        V::Date(y, m, d, h, mi, s, us) => match column.column_type() {
            MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => Cell::date(y, m, d),
            _ => Cell::date_time(y, m, d, h, mi, s, us, fsp),
        },
        V::Time(negative, days, h, minute, second, micros) => Cell::Time {
            negative,
            hours: days * 24 + u32::from(h),
            minute: u32::from(minute),
            second: u32::from(second),
            micros,
            fsp,
        },
        V::Bytes(b) => match column.column_type() {
            MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => Cell::Decimal(text(b)),
            MYSQL_TYPE_BIT | MYSQL_TYPE_GEOMETRY => Cell::Binary(b),
            MYSQL_TYPE_JSON => Cell::Json(text(b)),
            _ if json => Cell::Json(text(b)),
            _ if column.character_set() == BINARY_CHARSET => Cell::Binary(b),
            _ => Cell::Text(text(b)),
        },
    }
}
