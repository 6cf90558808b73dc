//! The mapping file: how source tables of the old system make the tables of
//! the new one, validated strictly and compiled into a plan of what each
//! source change touches.
//!
//! A mapping file is TOML (see `fixtures/mapping.toml` for a complete
//! example and the README for the reference). Unknown keys are rejected;
//! every validation error names the file, the field path and the broken rule.

mod config;
mod eval;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use crate::dms::TableName;

pub use config::{
    ChildrenConfig, ColumnConfig, DeletePolicy, FilterConfig, JoinConfig, JoinKind, MappingFile,
    SourceConfig, SourceTableConfig, TargetConfig,
};
pub use eval::{
    build_row, compare_values, convert, passes_filter, render_json, target_key, text_of,
    Conversion, EvalError, Related, Transform, Transforms,
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
    /// JSON array of children objects: child index and key -> child column.
    Children(usize, Vec<(String, String)>),
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

/// A compiled children lookup.
#[derive(Debug, Clone)]
pub struct Children {
    /// Alias.
    pub name: String,
    /// Child table.
    pub table: TableName,
    /// `(child column, root column)` pairs.
    pub on: Vec<(String, String)>,
    /// Ordering columns.
    pub order_by: Vec<String>,
    /// Child columns the rules read.
    pub columns: BTreeSet<String>,
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
    /// Target key columns, in the order of `root_key`: `key[i]` is made from `root_key[i]`.
    pub key: Vec<String>,
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

/// A validated, compiled mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
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
        compile(file, &raw, transforms).map_err(LoadError::Invalid)
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

/// Collects validation errors with the file name.
struct Errors<'a> {
    file: &'a str,
    list: Vec<MappingError>,
}

impl Errors<'_> {
    fn push(&mut self, path: impl fmt::Display, rule: impl fmt::Display) {
        self.list.push(MappingError {
            file: self.file.to_owned(),
            path: path.to_string(),
            rule: rule.to_string(),
        });
    }
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
        && !name.bytes().all(|b| b.is_ascii_digit())
}

fn table_name(default_schema: &str, name: &str) -> TableName {
    match name.split_once('.') {
        Some((schema, table)) => TableName::new(schema, table),
        None => TableName::new(default_schema, name),
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

fn compile(
    file: &str,
    raw: &MappingFile,
    transforms: &Transforms,
) -> Result<Mapping, Vec<MappingError>> {
    let mut errors = Errors {
        file,
        list: Vec::new(),
    };
    let schema = raw.source.schema.as_str();
    if !is_identifier(schema) {
        errors.push(
            "source.schema",
            format!("{schema:?} is not a valid identifier"),
        );
    }
    if raw.source.before_image_field.is_empty() {
        errors.push("source.before_image_field", "must not be empty");
    }

    let mut sources: BTreeMap<TableName, SourceTable> = BTreeMap::new();
    for (name, table) in &raw.source.tables {
        let path = format!("source.tables.{name:?}");
        let tn = table_name(schema, name);
        if !is_identifier(&tn.schema) || !is_identifier(&tn.table) {
            errors.push(&path, format!("{name:?} is not a valid table name"));
        }
        if table.key.is_empty() {
            errors.push(format!("{path}.key"), "must name at least one column");
        }
        for col in table.key.iter().chain(&table.lob).chain(&table.json) {
            if !is_identifier(col) {
                errors.push(&path, format!("{col:?} is not a valid column name"));
            }
        }
        for col in &table.lob {
            if table.key.contains(col) {
                errors.push(
                    format!("{path}.lob"),
                    format!("key column {col:?} cannot be a LOB column"),
                );
            }
        }
        sources.insert(
            tn.clone(),
            SourceTable {
                name: tn,
                key: table.key.clone(),
                lob: table.lob.iter().cloned().collect(),
                json: table.json.iter().cloned().collect(),
                touches: vec![],
            },
        );
    }

    if raw.targets.is_empty() {
        errors.push("target", "at least one [[target]] is required");
    }
    let mut targets = Vec::new();
    let mut seen_targets = BTreeSet::new();
    for t in &raw.targets {
        let path = format!("target {:?}", t.table);
        if !seen_targets.insert(t.table.clone()) {
            errors.push(&path, "target table is defined twice");
        }
        if let Some(target) = compile_target(&mut errors, &path, schema, t, &sources, transforms) {
            targets.push(target);
        }
    }

    if !errors.list.is_empty() {
        return Err(errors.list);
    }

    // Record how each source table reaches each target.
    for (index, target) in targets.iter().enumerate() {
        if let Some(src) = sources.get_mut(&target.root) {
            src.touches.push(Touch::Root { target: index });
        }
        let related = target
            .joins
            .iter()
            .map(|j| (&j.table, &j.on, &j.columns))
            .chain(
                target
                    .children
                    .iter()
                    .map(|c| (&c.table, &c.on, &c.columns)),
            );
        for (table, on, columns) in related {
            let direct = target
                .root_key
                .iter()
                .map(|k| on.iter().position(|(_, root_col)| root_col == k))
                .collect::<Option<Vec<usize>>>()
                .filter(|_| on.len() == target.root_key.len());
            let mut read = columns.clone();
            read.extend(on.iter().map(|(c, _)| c.clone()));
            if let Some(src) = sources.get_mut(table) {
                src.touches.push(Touch::Related {
                    target: index,
                    on: on.clone(),
                    direct,
                    columns: read,
                });
            }
        }
    }

    Ok(Mapping {
        file: file.to_owned(),
        before_image_field: raw.source.before_image_field.clone(),
        targets,
        sources,
    })
}

fn compile_target(
    errors: &mut Errors<'_>,
    path: &str,
    schema: &str,
    t: &TargetConfig,
    sources: &BTreeMap<TableName, SourceTable>,
    transforms: &Transforms,
) -> Option<TargetTable> {
    let before = errors.list.len();
    if !is_identifier(&t.table) {
        errors.push(
            format!("{path}.table"),
            format!("{:?} is not a valid table name", t.table),
        );
    }
    let root = table_name(schema, &t.root);
    let Some(root_src) = sources.get(&root) else {
        errors.push(
            format!("{path}.root"),
            format!("root table {root} is not declared in [source.tables]"),
        );
        return None;
    };

    // Joins and children: aliases, tables, on-columns.
    let mut aliases = BTreeSet::new();
    let mut joins = Vec::new();
    for (i, j) in t.joins.iter().enumerate() {
        let jpath = format!("{path}.join[{i}]");
        let table = table_name(schema, &j.table);
        check_related(
            errors,
            &jpath,
            &j.name,
            &table,
            &j.on,
            sources,
            &mut aliases,
        );
        joins.push(Join {
            name: j.name.clone(),
            table,
            on: j.on.iter().map(|(a, b)| (a.clone(), b.clone())).collect(),
            kind: j.kind,
            columns: BTreeSet::new(),
        });
    }
    let mut children = Vec::new();
    for (i, c) in t.children.iter().enumerate() {
        let cpath = format!("{path}.children[{i}]");
        let table = table_name(schema, &c.table);
        check_related(
            errors,
            &cpath,
            &c.name,
            &table,
            &c.on,
            sources,
            &mut aliases,
        );
        for col in &c.order_by {
            if !is_identifier(col) {
                errors.push(
                    format!("{cpath}.order_by"),
                    format!("{col:?} is not a valid column name"),
                );
            }
        }
        children.push(Children {
            name: c.name.clone(),
            table,
            on: c.on.iter().map(|(a, b)| (a.clone(), b.clone())).collect(),
            order_by: c.order_by.clone(),
            columns: c.order_by.iter().cloned().collect(),
        });
    }

    let mut root_columns: BTreeSet<String> = root_src.key.iter().cloned().collect();
    root_columns.extend(
        joins
            .iter()
            .flat_map(|j| j.on.iter().map(|(_, r)| r.clone())),
    );
    root_columns.extend(
        children
            .iter()
            .flat_map(|c| c.on.iter().map(|(_, r)| r.clone())),
    );

    let resolve = |errors: &mut Errors<'_>,
                   cpath: &str,
                   text: &str,
                   joins: &mut Vec<Join>,
                   root_columns: &mut BTreeSet<String>|
     -> Option<ColumnRef> {
        match text.split_once('.') {
            None if is_identifier(text) => {
                root_columns.insert(text.to_owned());
                Some(ColumnRef::Root(text.to_owned()))
            }
            Some((alias, col)) if is_identifier(col) => {
                match joins.iter().position(|j| j.name == alias) {
                    Some(i) => {
                        joins[i].columns.insert(col.to_owned());
                        Some(ColumnRef::Join(i, col.to_owned()))
                    }
                    None => {
                        errors.push(cpath, format!("{text:?} names join {alias:?}, which is not defined in this target"));
                        None
                    }
                }
            }
            _ => {
                errors.push(cpath, format!("{text:?} is not `column` or `join.column`"));
                None
            }
        }
    };

    let mut columns = Vec::new();
    let mut names = BTreeSet::new();
    for (i, c) in t.columns.iter().enumerate() {
        let cpath = format!("{path}.column[{i}] {:?}", c.name);
        if !is_identifier(&c.name) {
            errors.push(&cpath, "is not a valid column name");
        }
        if !names.insert(c.name.clone()) {
            errors.push(&cpath, "column is defined twice");
        }
        let kinds = [
            c.from.is_some(),
            c.value.is_some(),
            c.children.is_some(),
            !c.pack.is_empty(),
            c.transform.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            errors.push(
                &cpath,
                "needs exactly one of `from`, `value`, `children`, `pack`, `transform`",
            );
            continue;
        }
        if c.from.is_none() && (c.convert.is_some() || !c.map.is_empty() || c.map_default.is_some())
        {
            errors.push(
                &cpath,
                "`convert`, `map` and `map_default` apply only to `from` rules",
            );
        }
        if c.children.is_none() && !c.fields.is_empty() {
            errors.push(&cpath, "`fields` applies only to `children` rules");
        }
        if c.transform.is_none() && !c.args.is_empty() {
            errors.push(&cpath, "`args` applies only to `transform` rules");
        }
        let rule = if let Some(from) = &c.from {
            let Some(from) = resolve(errors, &cpath, from, &mut joins, &mut root_columns) else {
                continue;
            };
            let mut map = BTreeMap::new();
            for (k, v) in &c.map {
                match toml_scalar(v) {
                    Some(v) => {
                        map.insert(k.clone(), v);
                    }
                    None => errors.push(format!("{cpath}.map.{k}"), "must be a scalar"),
                }
            }
            let map_default = match &c.map_default {
                Some(v) => match toml_scalar(v) {
                    Some(v) => Some(v),
                    None => {
                        errors.push(format!("{cpath}.map_default"), "must be a scalar");
                        None
                    }
                },
                None => None,
            };
            if c.map.is_empty() && map_default.is_some() {
                errors.push(format!("{cpath}.map_default"), "needs a `map`");
            }
            Rule::Copy {
                from,
                convert: c.convert,
                map,
                map_default,
            }
        } else if let Some(v) = &c.value {
            match toml_scalar(v) {
                Some(v) => Rule::Const(v),
                None => {
                    errors.push(format!("{cpath}.value"), "must be a scalar");
                    continue;
                }
            }
        } else if let Some(alias) = &c.children {
            let Some(ci) = children.iter().position(|ch| &ch.name == alias) else {
                errors.push(
                    format!("{cpath}.children"),
                    format!("children {alias:?} are not defined in this target"),
                );
                continue;
            };
            if c.fields.is_empty() {
                errors.push(format!("{cpath}.fields"), "must name at least one field");
            }
            let mut fields = Vec::new();
            for (key, col) in &c.fields {
                if !is_identifier(col) {
                    errors.push(
                        format!("{cpath}.fields.{key}"),
                        format!("{col:?} is not a valid column name"),
                    );
                }
                children[ci].columns.insert(col.clone());
                fields.push((key.clone(), col.clone()));
            }
            Rule::Children(ci, fields)
        } else if !c.pack.is_empty() {
            let mut parts = Vec::new();
            for (key, text) in &c.pack {
                if let Some(r) = resolve(
                    errors,
                    &format!("{cpath}.pack.{key}"),
                    text,
                    &mut joins,
                    &mut root_columns,
                ) {
                    parts.push((key.clone(), r));
                }
            }
            Rule::Pack(parts)
        } else {
            let name = c.transform.clone().unwrap_or_default();
            if !transforms.contains(&name) {
                errors.push(
                    format!("{cpath}.transform"),
                    format!(
                        "transform {name:?} is not registered (registered: {})",
                        transforms.names().join(", ")
                    ),
                );
            }
            let mut args = Vec::new();
            for text in &c.args {
                if let Some(r) = resolve(
                    errors,
                    &format!("{cpath}.args"),
                    text,
                    &mut joins,
                    &mut root_columns,
                ) {
                    args.push(r);
                }
            }
            Rule::Transform(name, args)
        };
        columns.push(Column {
            name: c.name.clone(),
            rule,
        });
    }

    // Key: each target key column is a `from` rule on a distinct root key column.
    let mut key_by_root: BTreeMap<String, String> = BTreeMap::new();
    if t.key.is_empty() {
        errors.push(format!("{path}.key"), "must name at least one column");
    }
    for k in &t.key {
        let produced = columns.iter().find(|c| &c.name == k);
        match produced.map(|c| &c.rule) {
            None => errors.push(format!("{path}.key"), format!("column {k:?} is not produced by any column rule")),
            Some(Rule::Copy { from: ColumnRef::Root(col), map, .. }) if map.is_empty() && root_src.key.contains(col) => {
                if key_by_root.insert(col.clone(), k.clone()).is_some() {
                    errors.push(format!("{path}.key"), format!("root key column {col:?} makes two key columns"));
                }
            }
            Some(_) => errors.push(
                format!("{path}.key"),
                format!(
                    "column {k:?} must be a `from` rule (without `map`) on a key column of root table {root} ({})",
                    root_src.key.join(", ")
                ),
            ),
        }
    }
    if key_by_root.len() == root_src.key.len() || errors.list.len() > before {
        // fine, or already reported
    } else {
        let missing: Vec<_> = root_src
            .key
            .iter()
            .filter(|k| !key_by_root.contains_key(*k))
            .cloned()
            .collect();
        errors.push(
            format!("{path}.key"),
            format!(
                "must cover the whole key of root table {root}: missing {}",
                missing.join(", ")
            ),
        );
    }
    let key: Vec<String> = root_src
        .key
        .iter()
        .filter_map(|k| key_by_root.get(k).cloned())
        .collect();

    if let Some(v) = &t.version {
        if !is_identifier(v) {
            errors.push(
                format!("{path}.version"),
                format!("{v:?} is not a valid column name"),
            );
        }
        if names.contains(v) {
            errors.push(
                format!("{path}.version"),
                format!("column {v:?} is filled by the writer and must not have a rule"),
            );
        }
    }
    let filter = t.filter.as_ref().and_then(|f| {
        if !is_identifier(&f.column) {
            errors.push(
                format!("{path}.filter.column"),
                format!("{:?} is not a valid column name", f.column),
            );
        }
        root_columns.insert(f.column.clone());
        let values: Option<BTreeSet<String>> = f
            .values
            .iter()
            .map(|v| toml_scalar(v).and_then(|v| eval::text_of(&v)))
            .collect();
        match values {
            Some(values) if !values.is_empty() => Some(Filter {
                column: f.column.clone(),
                values,
            }),
            _ => {
                errors.push(
                    format!("{path}.filter.in"),
                    "must be a non-empty list of scalars",
                );
                None
            }
        }
    });
    if let DeletePolicy::Soft { column, value } = &t.delete {
        if !names.contains(column)
            && t.version.as_deref() != Some(column.as_str())
            && !is_identifier(column)
        {
            errors.push(
                format!("{path}.delete.column"),
                format!("{column:?} is not a valid column name"),
            );
        }
        if t.key.contains(column) {
            errors.push(
                format!("{path}.delete.column"),
                "a key column cannot mark deletes",
            );
        }
        if toml_scalar(value).is_none() {
            errors.push(format!("{path}.delete.value"), "must be a scalar");
        }
    }

    let lob_read = root_columns.iter().any(|c| root_src.lob.contains(c))
        || joins.iter().any(|j| {
            sources
                .get(&j.table)
                .is_some_and(|s| j.columns.iter().any(|c| s.lob.contains(c)))
        });
    let requery = !joins.is_empty() || !children.is_empty() || lob_read;

    if errors.list.len() > before {
        return None;
    }
    Some(TargetTable {
        table: t.table.clone(),
        root: root.clone(),
        root_key: root_src.key.clone(),
        key,
        version: t.version.clone(),
        filter,
        delete: t.delete.clone(),
        joins,
        children,
        columns,
        root_columns,
        requery,
    })
}

fn check_related(
    errors: &mut Errors<'_>,
    path: &str,
    alias: &str,
    table: &TableName,
    on: &BTreeMap<String, String>,
    sources: &BTreeMap<TableName, SourceTable>,
    aliases: &mut BTreeSet<String>,
) {
    if !is_identifier(alias) {
        errors.push(
            format!("{path}.name"),
            format!("{alias:?} is not a valid alias"),
        );
    }
    if !aliases.insert(alias.to_owned()) {
        errors.push(
            format!("{path}.name"),
            format!("alias {alias:?} is used twice"),
        );
    }
    if !sources.contains_key(table) {
        errors.push(
            format!("{path}.table"),
            format!("table {table} is not declared in [source.tables]"),
        );
    }
    if on.is_empty() {
        errors.push(format!("{path}.on"), "must pair at least one column");
    }
    for (a, b) in on {
        if !is_identifier(a) || !is_identifier(b) {
            errors.push(
                format!("{path}.on"),
                format!("{a:?} = {b:?} is not a pair of column names"),
            );
        }
    }
}

#[cfg(test)]
mod tests;
