//! The mapping file as written: the serde shape of the TOML, strict
//! (`deny_unknown_fields`), before any validation.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Conversion;
use crate::dms::DEFAULT_BEFORE_IMAGE_FIELD;

/// A mapping file as written (before validation).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    /// The source database and the DMS task settings that shape its records.
    pub source: SourceConfig,
    /// Target tables, in write order.
    #[serde(rename = "target", default)]
    pub targets: Vec<TargetConfig>,
}

/// `[source]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Schema of tables named without one.
    pub schema: String,
    /// `BeforeImageSettings.FieldName` of the DMS task.
    #[serde(default = "default_before_image_field")]
    pub before_image_field: String,
    /// Source tables the mapping reads: their key and LOB columns.
    #[serde(default)]
    pub tables: BTreeMap<String, SourceTableConfig>,
    /// Several sources of the same tables consolidated into the targets
    /// (one per service database or cluster): each record goes to the
    /// instance its `schema-name` names.
    #[serde(rename = "instance", default)]
    pub instances: Vec<InstanceConfig>,
}

/// `[[source.instance]]`: one of several sources of the same tables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    /// The instance's name: the value of every target's discriminator
    /// column for its rows, and how the function names its connection.
    pub name: String,
    /// The schema its records carry (`schema-name`): a DMS task per
    /// instance, each with its own schema (a database name, or a DMS
    /// rename-schema rule).
    pub schema: String,
    /// The schema the tables have in the instance's database, when it
    /// differs from `schema` (a DMS rename-schema rule); re-queries use it.
    #[serde(default)]
    pub source_schema: Option<String>,
}

fn default_before_image_field() -> String {
    DEFAULT_BEFORE_IMAGE_FIELD.to_owned()
}

/// `[source.tables.<name>]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceTableConfig {
    /// Primary key columns.
    pub key: Vec<String>,
    /// Columns DMS may truncate or omit (limited LOB mode): always re-queried.
    #[serde(default)]
    pub lob: Vec<String>,
    /// JSON columns: their re-queried text is read as JSON (MariaDB stores
    /// JSON as LONGTEXT and reports it as text).
    #[serde(default)]
    pub json: Vec<String>,
}

/// `[[target]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Target table name.
    pub table: String,
    /// Root source table: one target row per root row.
    pub root: String,
    /// Target key columns; each is made by a `from` rule on a root key column.
    pub key: Vec<String>,
    /// Optional version column for the stale-write guard (filled by the writer).
    #[serde(default)]
    pub version: Option<String>,
    /// With `[[source.instance]]`s: the key column that holds the
    /// instance's name, so that rows of different sources never collide
    /// (filled by the writer, like `version`).
    #[serde(default)]
    pub discriminator: Option<String>,
    /// Only root rows that match are kept in the target.
    #[serde(default)]
    pub filter: Option<FilterConfig>,
    /// What a root delete (or a row leaving the filter) does.
    #[serde(default)]
    pub delete: DeletePolicy,
    /// Lookups of one row per root row (many-to-one or one-to-one).
    #[serde(rename = "join", default)]
    pub joins: Vec<JoinConfig>,
    /// One-to-many lookups aggregated into a JSON array column.
    #[serde(default)]
    pub children: Vec<ChildrenConfig>,
    /// Column rules, in target column order.
    #[serde(rename = "column", default)]
    pub columns: Vec<ColumnConfig>,
}

/// `filter = { column = "status", in = ["published"] }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// Root column tested.
    pub column: String,
    /// Accepted values (compared by their text).
    #[serde(rename = "in")]
    pub values: Vec<toml::Value>,
}

/// `delete = { mode = "hard" }` or `delete = { mode = "soft", column = "is_deleted", value = 1 }`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(tag = "mode", rename_all = "lowercase", deny_unknown_fields)]
pub enum DeletePolicy {
    /// Delete the target row.
    #[default]
    Hard,
    /// Keep the row and set a column.
    Soft {
        /// Column to set.
        column: String,
        /// Value to set it to.
        value: toml::Value,
    },
}

/// Kind of a join.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum JoinKind {
    /// Many root rows share one joined row (recipe -> author).
    ManyToOne,
    /// One joined row per root row (recipe -> story).
    OneToOne,
}

/// `[[target.join]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinConfig {
    /// Alias used in column rules (`author.name`).
    pub name: String,
    /// Joined source table.
    pub table: String,
    /// `{ joined_column = "root_column" }`
    pub on: BTreeMap<String, String>,
    /// Cardinality (informational; both are looked up the same way).
    #[serde(default = "default_join_kind")]
    pub kind: JoinKind,
}

fn default_join_kind() -> JoinKind {
    JoinKind::ManyToOne
}

/// `[[target.children]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildrenConfig {
    /// Alias used by a `children` column rule (and, for nested children,
    /// the key of their array in each parent object).
    pub name: String,
    /// Child source table.
    pub table: String,
    /// `{ child_column = "root_column" }`, or with `parent`,
    /// `{ child_column = "parent_column" }`.
    pub on: BTreeMap<String, String>,
    /// Child columns that order the array (ascending).
    #[serde(default)]
    pub order_by: Vec<String>,
    /// Nested children: the alias of the (earlier) children whose rows
    /// hold these (product -> variants -> images); their array is a key of
    /// each parent object.
    #[serde(default)]
    pub parent: Option<String>,
    /// The shape of each element: JSON object key -> child column (a
    /// `children` column rule's own `fields` take precedence).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// The shape of each element: this one column's value (a scalar
    /// array, `["a", "b"]`), instead of `fields`.
    #[serde(default)]
    pub field: Option<String>,
}

/// `[[target.column]]`: exactly one of `from`, `value`, `children`, `object`, `pack`, `transform`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnConfig {
    /// Target column name.
    pub name: String,
    /// Copy from `column` (root) or `alias.column` (a join).
    #[serde(default)]
    pub from: Option<String>,
    /// A constant.
    #[serde(default)]
    pub value: Option<toml::Value>,
    /// A JSON array of the named children.
    #[serde(default)]
    pub children: Option<String>,
    /// With `children`: JSON object key -> child column; with `object`:
    /// JSON object key -> joined column.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// With `children`: a scalar array of this child column instead of objects.
    #[serde(default)]
    pub field: Option<String>,
    /// A JSON object of the named join's row (`null` when there is none).
    #[serde(default)]
    pub object: Option<String>,
    /// A JSON object of key -> `column` or `alias.column`.
    #[serde(default)]
    pub pack: BTreeMap<String, String>,
    /// A named Rust transform registered by the function crate.
    #[serde(default)]
    pub transform: Option<String>,
    /// Inputs of the transform (`column` or `alias.column`).
    #[serde(default)]
    pub args: Vec<String>,
    /// A conversion applied to a `from` value.
    #[serde(default)]
    pub convert: Option<Conversion>,
    /// An enum value map applied after `convert` (keys compared to the value's text).
    #[serde(default)]
    pub map: BTreeMap<String, toml::Value>,
    /// The result for a value the `map` does not list; without it such a value is an error.
    #[serde(default)]
    pub map_default: Option<toml::Value>,
}
