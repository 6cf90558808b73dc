//! Compiling one `[[target]]`: its joins and children, its column rules
//! ([`super::columns`]), its key, version column, filter and delete policy.
//! Errors are reported in that order.

use std::collections::{BTreeMap, BTreeSet};

use super::columns::{compile_columns, Reads};
use super::{is_identifier, table_name, Errors};
use crate::dms::TableName;
use crate::mapping::{
    eval, toml_scalar, ChildShape, Children, ChildrenConfig, Column, ColumnRef, DeletePolicy,
    Filter, FilterConfig, Join, JoinConfig, Rule, SourceTable, TargetConfig, TargetTable,
    Transforms,
};

/// Compiles one target (for one source instance: its `discriminator`
/// column and the instance's name); `None` when it breaks a rule (the
/// errors say which).
pub(super) fn compile_target(
    errors: &mut Errors<'_>,
    path: &str,
    schema: &str,
    t: &TargetConfig,
    discriminator: Option<(&str, &str)>,
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

    let mut aliases = BTreeSet::new();
    let joins = compile_joins(errors, path, schema, &t.joins, sources, &mut aliases);
    let children = compile_children(errors, path, schema, &t.children, sources, &mut aliases);
    let mut reads = Reads::new(root_src, joins, children);
    let (mut columns, mut names) =
        compile_columns(errors, path, &t.columns, &mut reads, transforms);
    let mut key_names = t.key.clone();
    if let Some((column, instance)) = discriminator {
        if !is_identifier(column) {
            errors.push(
                format!("{path}.discriminator"),
                format!("{column:?} is not a valid column name"),
            );
        }
        if names.contains(column) {
            errors.push(
                format!("{path}.discriminator"),
                format!("column {column:?} is filled with the instance's name: no column rule may make it"),
            );
        }
        match key_names.iter().position(|k| k == column) {
            Some(i) => {
                key_names.remove(i);
            }
            None => errors.push(
                format!("{path}.key"),
                format!("must hold the discriminator column {column:?}"),
            ),
        }
        columns.insert(
            0,
            Column {
                name: column.to_owned(),
                rule: Rule::Const(crate::dms::Value::Text(instance.to_owned())),
            },
        );
        names.insert(column.to_owned());
    }
    let mut key = compile_key(errors, path, before, &key_names, &columns, &root, root_src);
    if let Some((column, _)) = discriminator {
        key.insert(0, column.to_owned());
    }
    check_version(errors, path, t.version.as_deref(), &names);
    let filter = t
        .filter
        .as_ref()
        .and_then(|f| compile_filter(errors, path, f, &mut reads.root_columns));
    check_delete(errors, path, t, &names);

    let Reads {
        joins,
        children,
        root_columns,
    } = reads;
    let requery = needs_requery(root_src, &joins, &children, &root_columns, sources);

    if errors.list.len() > before {
        return None;
    }
    Some(TargetTable {
        table: t.table.clone(),
        root: root.clone(),
        root_key: root_src.key.clone(),
        key,
        discriminator: discriminator.map(|(c, i)| (c.to_owned(), i.to_owned())),
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

/// `[[target.join]]`: aliases, tables, on-columns.
fn compile_joins(
    errors: &mut Errors<'_>,
    path: &str,
    schema: &str,
    configs: &[JoinConfig],
    sources: &BTreeMap<TableName, SourceTable>,
    aliases: &mut BTreeSet<String>,
) -> Vec<Join> {
    let mut joins = Vec::new();
    for (i, j) in configs.iter().enumerate() {
        let jpath = format!("{path}.join[{i}]");
        let table = table_name(schema, &j.table);
        check_related(errors, &jpath, &j.name, &table, &j.on, sources, aliases);
        joins.push(Join {
            name: j.name.clone(),
            table,
            on: j.on.iter().map(|(a, b)| (a.clone(), b.clone())).collect(),
            kind: j.kind,
            columns: BTreeSet::new(),
        });
    }
    joins
}

/// `[[target.children]]`: aliases, tables, on-columns, ordering columns,
/// nesting (`parent`) and element shapes (`fields` / `field`).
fn compile_children(
    errors: &mut Errors<'_>,
    path: &str,
    schema: &str,
    configs: &[ChildrenConfig],
    sources: &BTreeMap<TableName, SourceTable>,
    aliases: &mut BTreeSet<String>,
) -> Vec<Children> {
    let mut children: Vec<Children> = Vec::new();
    for (i, c) in configs.iter().enumerate() {
        let cpath = format!("{path}.children[{i}]");
        let table = table_name(schema, &c.table);
        check_related(errors, &cpath, &c.name, &table, &c.on, sources, aliases);
        for col in &c.order_by {
            if !is_identifier(col) {
                errors.push(
                    format!("{cpath}.order_by"),
                    format!("{col:?} is not a valid column name"),
                );
            }
        }
        let parent = c.parent.as_ref().and_then(|p| {
            let found = children.iter().position(|ch| &ch.name == p);
            if found.is_none() {
                errors.push(
                    format!("{cpath}.parent"),
                    format!(
                        "{p:?} is not the alias of children declared before {:?} in this target",
                        c.name
                    ),
                );
            }
            found
        });
        let shape = child_shape(errors, &cpath, &c.fields, c.field.as_deref());
        if c.parent.is_some() && shape.is_none() {
            errors.push(
                cpath.clone(),
                "nested children (with `parent`) need `fields` or `field`: the shape of their elements",
            );
        }
        let mut columns: BTreeSet<String> = c.order_by.iter().cloned().collect();
        match &shape {
            Some(ChildShape::Object(fields)) => {
                columns.extend(fields.iter().map(|(_, c)| c.clone()))
            }
            Some(ChildShape::Scalar(col)) => {
                columns.insert(col.clone());
            }
            None => {}
        }
        if let Some(p) = parent {
            // The parent's rows must carry the columns these join on.
            children[p].columns.extend(c.on.values().cloned());
            if matches!(children[p].shape, Some(ChildShape::Scalar(_))) {
                errors.push(
                    format!("{cpath}.parent"),
                    format!(
                        "children {:?} are a scalar array (`field`): they cannot hold nested children",
                        children[p].name
                    ),
                );
            }
        }
        children.push(Children {
            name: c.name.clone(),
            table,
            on: c.on.iter().map(|(a, b)| (a.clone(), b.clone())).collect(),
            order_by: c.order_by.clone(),
            columns,
            parent,
            shape,
        });
    }
    children
}

/// The element shape of `fields` / `field` (at most one of them).
pub(super) fn child_shape(
    errors: &mut Errors<'_>,
    path: &str,
    fields: &BTreeMap<String, String>,
    field: Option<&str>,
) -> Option<ChildShape> {
    match (fields.is_empty(), field) {
        (true, None) => None,
        (false, Some(_)) => {
            errors.push(
                path,
                "has both `fields` and `field`: objects or a scalar array, not both",
            );
            None
        }
        (true, Some(col)) => {
            if !is_identifier(col) {
                errors.push(
                    format!("{path}.field"),
                    format!("{col:?} is not a valid column name"),
                );
            }
            Some(ChildShape::Scalar(col.to_owned()))
        }
        (false, None) => {
            for (key, col) in fields {
                if !is_identifier(col) {
                    errors.push(
                        format!("{path}.fields.{key}"),
                        format!("{col:?} is not a valid column name"),
                    );
                }
            }
            Some(ChildShape::Object(
                fields.iter().map(|(k, c)| (k.clone(), c.clone())).collect(),
            ))
        }
    }
}

/// Checks the alias, table and `on` pairs of a join or children lookup.
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

/// The target key, in root key order: each target key column is a `from`
/// rule on a distinct root key column, and together they cover the root key.
/// `before` is the error count when the target started: a missing part is
/// reported only if nothing else was.
fn compile_key(
    errors: &mut Errors<'_>,
    path: &str,
    before: usize,
    target_key: &[String],
    columns: &[Column],
    root: &TableName,
    root_src: &SourceTable,
) -> Vec<String> {
    let mut key_by_root: BTreeMap<String, String> = BTreeMap::new();
    if target_key.is_empty() {
        errors.push(format!("{path}.key"), "must name at least one column");
    }
    for k in target_key {
        let produced = columns.iter().find(|c| &c.name == k);
        match produced.map(|c| &c.rule) {
            None => errors.push(
                format!("{path}.key"),
                format!("column {k:?} is not produced by any column rule"),
            ),
            Some(Rule::Copy {
                from: ColumnRef::Root(col),
                map,
                ..
            }) if map.is_empty() && root_src.key.contains(col) => {
                if key_by_root.insert(col.clone(), k.clone()).is_some() {
                    errors.push(
                        format!("{path}.key"),
                        format!("root key column {col:?} makes two key columns"),
                    );
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
    root_src
        .key
        .iter()
        .filter_map(|k| key_by_root.get(k).cloned())
        .collect()
}

/// `version`: a valid name, filled by the writer (so no rule makes it).
fn check_version(
    errors: &mut Errors<'_>,
    path: &str,
    version: Option<&str>,
    names: &BTreeSet<String>,
) {
    let Some(v) = version else { return };
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

/// `filter`: a root column (recorded as read) and a non-empty list of scalars.
fn compile_filter(
    errors: &mut Errors<'_>,
    path: &str,
    f: &FilterConfig,
    root_columns: &mut BTreeSet<String>,
) -> Option<Filter> {
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
}

/// `delete`: a soft delete sets a valid, non-key column to a scalar.
fn check_delete(errors: &mut Errors<'_>, path: &str, t: &TargetConfig, names: &BTreeSet<String>) {
    let DeletePolicy::Soft { column, value } = &t.delete else {
        return;
    };
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

/// Whether every row must be re-queried: the target has joins or children,
/// or reads a LOB column (of the root or of a join).
fn needs_requery(
    root_src: &SourceTable,
    joins: &[Join],
    children: &[Children],
    root_columns: &BTreeSet<String>,
    sources: &BTreeMap<TableName, SourceTable>,
) -> bool {
    let lob_read = root_columns.iter().any(|c| root_src.lob.contains(c))
        || joins.iter().any(|j| {
            sources
                .get(&j.table)
                .is_some_and(|s| j.columns.iter().any(|c| s.lob.contains(c)))
        });
    !joins.is_empty() || !children.is_empty() || lob_read
}
