//! The mapping file: how source tables of the old system make the tables of
//! the new one, validated strictly and compiled into a plan of what each
//! source change touches.
//!
//! A mapping file is TOML (see `fixtures/mapping.toml` for a complete
//! example and the README for the reference). Unknown keys are rejected;
//! every validation error names the file, the field path and the broken rule.

mod compile;
mod config;
pub(crate) mod eval;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::dms::TableName;

pub use config::{
    ChildrenConfig, ColumnConfig, DeletePolicy, FilterConfig, InstanceConfig, JoinConfig, JoinKind,
    MappingFile, SourceConfig, SourceTableConfig, TargetConfig,
};
pub use eval::{
    build_row, compare_values, convert, passes_filter, render_json, target_key, text_of,
    Conversion, EvalError, NestedRows, Related, Transform, Transforms,
};

/// A mapping error: file, field path, broken rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {path}: {rule}")]
pub struct MappingError {
    /// The mapping file.
    pub file: String,
    /// Field path, e.g. `target "recipes".key`.
    pub path: String,
    /// What rule is broken.
    pub rule: String,
}

/// Errors loading a mapping file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The mapping file.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML or not the mapping schema (unknown key, wrong type).
    #[error("{file}: {source}")]
    Toml {
        /// The mapping file.
        file: String,
        /// The parse error (it carries the line and the key).
        #[source]
        source: toml::de::Error,
    },
    /// The mapping breaks validation rules.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<MappingError>),
}

/// A compiled source of a column value: a root column or a join column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ColumnRef {
    /// A column of the root row.
    Root(String),
    /// A column of join `join` (index into [`TargetTable::joins`]).
    Join(usize, String),
}

/// How a target column gets its value.
#[derive(Debug, Clone)]
pub enum Rule {
    /// Copy (and convert / map) one value.
    Copy {
        /// Where from.
        from: ColumnRef,
        /// Conversion.
        convert: Option<Conversion>,
        /// Enum map.
        map: BTreeMap<String, crate::dms::Value>,
        /// Value for unlisted map keys.
        map_default: Option<crate::dms::Value>,
    },
    /// A constant.
    Const(crate::dms::Value),
    /// JSON array of the children at this index, each element shaped so
    /// (objects hold their nested children's arrays too).
    Children(usize, ChildShape),
    /// JSON object of a join's row (`null` without one): join index and
    /// key -> joined column.
    Object(usize, Vec<(String, String)>),
    /// JSON object packed from several values.
    Pack(Vec<(String, ColumnRef)>),
    /// Named transform over several values.
    Transform(String, Vec<ColumnRef>),
}

/// A compiled target column.
#[derive(Debug, Clone)]
pub struct Column {
    /// Target column name.
    pub name: String,
    /// Its rule.
    pub rule: Rule,
}

/// A compiled join.
#[derive(Debug, Clone)]
pub struct Join {
    /// Alias.
    pub name: String,
    /// Joined table.
    pub table: TableName,
    /// `(joined column, root column)` pairs.
    pub on: Vec<(String, String)>,
    /// Cardinality.
    pub kind: JoinKind,
    /// Joined columns the rules read.
    pub columns: BTreeSet<String>,
}

/// The shape of each element of a children array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildShape {
    /// An object: key -> child column, plus one array per nested children.
    Object(Vec<(String, String)>),
    /// The value of one child column (a scalar array).
    Scalar(String),
}

/// A compiled children lookup.
#[derive(Debug, Clone)]
pub struct Children {
    /// Alias.
    pub name: String,
    /// Child table.
    pub table: TableName,
    /// `(child column, root column)` pairs, or with `parent`, `(child
    /// column, parent column)` pairs.
    pub on: Vec<(String, String)>,
    /// Ordering columns.
    pub order_by: Vec<String>,
    /// Child columns the rules read (including what nested children join on).
    pub columns: BTreeSet<String>,
    /// Nested children: the index of the children whose rows hold these
    /// (always an earlier index).
    pub parent: Option<usize>,
    /// The element shape declared on the children (nested ones always have one).
    pub shape: Option<ChildShape>,
}

impl TargetTable {
    /// The children nested directly in the elements of children `index`.
    pub fn nested_in(&self, index: usize) -> impl Iterator<Item = (usize, &Children)> {
        self.children
            .iter()
            .enumerate()
            .filter(move |(_, c)| c.parent == Some(index))
    }
}

/// A compiled row filter.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Root column tested.
    pub column: String,
    /// Accepted values, by text.
    pub values: BTreeSet<String>,
}

/// A compiled target table.
#[derive(Debug, Clone)]
pub struct TargetTable {
    /// Target table name.
    pub table: String,
    /// Root source table.
    pub root: TableName,
    /// Root key columns (the root table's primary key, in its order).
    pub root_key: Vec<String>,
    /// Target key columns: the discriminator first when there is one, then
    /// in the order of `root_key` (each made from the root key column at
    /// its position).
    pub key: Vec<String>,
    /// With several source instances: the discriminator column and this
    /// copy's instance name (its first column and first key column).
    pub discriminator: Option<(String, String)>,
    /// Version column.
    pub version: Option<String>,
    /// Row filter.
    pub filter: Option<Filter>,
    /// Delete policy.
    pub delete: DeletePolicy,
    /// Joins.
    pub joins: Vec<Join>,
    /// Children.
    pub children: Vec<Children>,
    /// Columns, in order.
    pub columns: Vec<Column>,
    /// Root columns the target depends on (rules, key, filter, join and children keys).
    pub root_columns: BTreeSet<String>,
    /// Whether every row must be re-queried (joins, children or LOB columns):
    /// otherwise a complete after image builds the row.
    pub requery: bool,
}

impl TargetTable {
    /// Every column the writer fills, in order: rule columns, then the version column.
    pub fn column_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        if let Some(v) = &self.version {
            names.push(v);
        }
        names
    }
}

/// How a change to a source table reaches a target.
#[derive(Debug, Clone)]
pub enum Touch {
    /// The table is the target's root: the row's key is the target's root key.
    Root {
        /// Target index.
        target: usize,
    },
    /// The table is joined or a child: parents are found by the `on` columns.
    Related {
        /// Target index.
        target: usize,
        /// `(this table's column, root column)` pairs.
        on: Vec<(String, String)>,
        /// Whether the root columns are exactly the root key, so parents are
        /// known without a reverse lookup; holds the position in `on` of each root key column.
        direct: Option<Vec<usize>>,
        /// Columns of this table the target reads (changes elsewhere are ignored).
        columns: BTreeSet<String>,
        /// Nested children: `on` pairs this table with the rows of the
        /// children at this index, not with the root; their parents are
        /// found level by level up to the root.
        via: Option<usize>,
    },
}

/// A source table the mapping reads.
#[derive(Debug, Clone)]
pub struct SourceTable {
    /// Name.
    pub name: TableName,
    /// Primary key columns.
    pub key: Vec<String>,
    /// LOB columns.
    pub lob: BTreeSet<String>,
    /// JSON columns.
    pub json: BTreeSet<String>,
    /// Targets this table feeds.
    pub touches: Vec<Touch>,
}

/// One of several sources of a mapping (`[[source.instance]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Its name (the discriminator's value).
    pub name: String,
    /// The schema its records carry.
    pub schema: String,
    /// The schema of its tables in its database.
    pub source_schema: String,
}

/// A validated, compiled mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The source instances (empty: one source). Each target is compiled
    /// once per instance, on the instance's schema.
    pub instances: Vec<Instance>,
    /// Name of the file it came from (for messages).
    pub file: String,
    /// Before-image field name.
    pub before_image_field: String,
    /// Targets, in file order.
    pub targets: Vec<TargetTable>,
    /// Source tables by name.
    pub sources: BTreeMap<TableName, SourceTable>,
}

impl Mapping {
    /// Reads, validates and compiles a mapping file.
    pub fn load(path: &Path, transforms: &Transforms) -> Result<Mapping, LoadError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            file: file.clone(),
            source,
        })?;
        Mapping::parse(&file, &text, transforms)
    }

    /// Parses, validates and compiles mapping text; `file` names it in errors.
    pub fn parse(file: &str, text: &str, transforms: &Transforms) -> Result<Mapping, LoadError> {
        let raw: MappingFile = toml::from_str(text).map_err(|source| LoadError::Toml {
            file: file.to_owned(),
            source,
        })?;
        compile::compile(file, &raw, transforms).map_err(LoadError::Invalid)
    }

    /// The source table entry, if the mapping reads `table`.
    pub fn source(&self, table: &TableName) -> Option<&SourceTable> {
        self.sources.get(table)
    }

    /// The columns of a source table that any target reads (key, rules,
    /// filters, join and children columns); empty if the table is unmapped.
    pub fn columns_read(&self, table: &TableName) -> BTreeSet<String> {
        let Some(source) = self.sources.get(table) else {
            return BTreeSet::new();
        };
        let mut read: BTreeSet<String> = source.key.iter().cloned().collect();
        for touch in &source.touches {
            match touch {
                Touch::Root { target } => {
                    read.extend(self.targets[*target].root_columns.iter().cloned())
                }
                Touch::Related { columns, .. } => read.extend(columns.iter().cloned()),
            }
        }
        read
    }

    /// Why a control record breaks this mapping, if it does: a dropped or
    /// renamed mapped table, or a dropped, renamed or retyped column that a
    /// target reads.
    pub fn broken_by(&self, control: &crate::dms::ControlRecord) -> Option<String> {
        use crate::dms::ControlOperation as Op;
        let table = control.table.as_ref()?;
        if !control.operation.may_break_mapping() || !self.sources.contains_key(table) {
            return None;
        }
        if matches!(control.operation, Op::DropTable | Op::RenameTable) {
            return Some(format!("{} of mapped table {table}", control.operation));
        }
        let read = self.columns_read(table);
        // With IncludeControlDetails DMS sends the table definition after the
        // change: a read column missing from it was dropped or renamed away.
        if let Some(columns) = control
            .detail
            .pointer("/table-def/columns")
            .and_then(|c| c.as_object())
        {
            let gone: Vec<String> = read
                .into_iter()
                .filter(|c| !columns.keys().any(|k| k.eq_ignore_ascii_case(c)))
                .collect();
            return (!gone.is_empty()).then(|| {
                format!(
                    "{} on {table} removed column(s) the mapping reads: {}",
                    control.operation,
                    gone.join(", ")
                )
            });
        }
        // Without a table definition, a drop or rename that names a read column breaks it.
        if !matches!(
            control.operation,
            Op::DropColumn | Op::RenameColumn | Op::ChangeColumns
        ) {
            return None;
        }
        let hit: Vec<String> = read.into_iter().filter(|c| control.mentions(c)).collect();
        (!hit.is_empty()).then(|| {
            format!(
                "{} on {table} concerns column(s) the mapping reads: {}",
                control.operation,
                hit.join(", ")
            )
        })
    }

    /// The decode options this mapping implies.
    pub fn decode_options(&self) -> crate::dms::DecodeOptions {
        crate::dms::DecodeOptions {
            before_image_field: self.before_image_field.clone(),
        }
    }
}

/// Converts a TOML scalar into a value; tables and arrays are not scalars.
pub fn toml_scalar(value: &toml::Value) -> Option<crate::dms::Value> {
    use crate::dms::Value;
    match value {
        toml::Value::String(s) => Some(Value::Text(s.clone())),
        toml::Value::Integer(i) => Some(Value::Int(*i)),
        toml::Value::Float(f) => Some(Value::Float(*f)),
        toml::Value::Boolean(b) => Some(Value::Bool(*b)),
        toml::Value::Datetime(d) => Some(Value::Text(d.to_string())),
        toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

#[cfg(test)]
mod tests;
