//! Compiling the column rules of one `[[target]]` (`from`, `value`,
//! `children`, `object`, `pack`, `transform`), recording what they read.

use std::collections::{BTreeMap, BTreeSet};

use super::{is_identifier, Errors};
use crate::mapping::{
    toml_scalar, ChildShape, Children, Column, ColumnConfig, ColumnRef, Join, Rule, SourceTable,
    Transforms,
};

/// What a target reads, gathered while its rules compile: the columns of
/// each join and each children lookup, and the root columns.
pub(super) struct Reads {
    pub(super) joins: Vec<Join>,
    pub(super) children: Vec<Children>,
    pub(super) root_columns: BTreeSet<String>,
}

impl Reads {
    /// Starts with the root key and the root columns of the lookups.
    pub(super) fn new(root_src: &SourceTable, joins: Vec<Join>, children: Vec<Children>) -> Reads {
        let mut root_columns: BTreeSet<String> = root_src.key.iter().cloned().collect();
        root_columns.extend(
            joins
                .iter()
                .flat_map(|j| j.on.iter().map(|(_, r)| r.clone())),
        );
        root_columns.extend(
            children
                .iter()
                .filter(|c| c.parent.is_none())
                .flat_map(|c| c.on.iter().map(|(_, r)| r.clone())),
        );
        Reads {
            joins,
            children,
            root_columns,
        }
    }

    /// Resolves `column` (root) or `alias.column` (a join) and records the read.
    fn resolve(&mut self, errors: &mut Errors<'_>, cpath: &str, text: &str) -> Option<ColumnRef> {
        match text.split_once('.') {
            None if is_identifier(text) => {
                self.root_columns.insert(text.to_owned());
                Some(ColumnRef::Root(text.to_owned()))
            }
            Some((alias, col)) if is_identifier(col) => {
                match self.joins.iter().position(|j| j.name == alias) {
                    Some(i) => {
                        self.joins[i].columns.insert(col.to_owned());
                        Some(ColumnRef::Join(i, col.to_owned()))
                    }
                    None => {
                        errors.push(
                            cpath,
                            format!(
                                "{text:?} names join {alias:?}, which is not defined in this target"
                            ),
                        );
                        None
                    }
                }
            }
            _ => {
                errors.push(cpath, format!("{text:?} is not `column` or `join.column`"));
                None
            }
        }
    }
}

/// `[[target.column]]`: the compiled columns and the set of their names.
pub(super) fn compile_columns(
    errors: &mut Errors<'_>,
    path: &str,
    configs: &[ColumnConfig],
    reads: &mut Reads,
    transforms: &Transforms,
) -> (Vec<Column>, BTreeSet<String>) {
    let mut columns = Vec::new();
    let mut names = BTreeSet::new();
    for (i, c) in configs.iter().enumerate() {
        let cpath = format!("{path}.column[{i}] {:?}", c.name);
        if !is_identifier(&c.name) {
            errors.push(&cpath, "is not a valid column name");
        }
        if !names.insert(c.name.clone()) {
            errors.push(&cpath, "column is defined twice");
        }
        if !check_rule_shape(errors, &cpath, c) {
            continue;
        }
        let rule = if let Some(from) = &c.from {
            copy_rule(errors, &cpath, c, from, reads)
        } else if let Some(v) = &c.value {
            const_rule(errors, &cpath, v)
        } else if let Some(alias) = &c.children {
            children_rule(errors, &cpath, c, alias, reads)
        } else if let Some(alias) = &c.object {
            object_rule(errors, &cpath, c, alias, reads)
        } else if !c.pack.is_empty() {
            Some(pack_rule(errors, &cpath, c, reads))
        } else {
            Some(transform_rule(errors, &cpath, c, reads, transforms))
        };
        if let Some(rule) = rule {
            columns.push(Column {
                name: c.name.clone(),
                rule,
            });
        }
    }
    (columns, names)
}

/// Whether a column has exactly one rule kind (else reported); options
/// that do not apply to its kind are reported too.
fn check_rule_shape(errors: &mut Errors<'_>, cpath: &str, c: &ColumnConfig) -> bool {
    let kinds = [
        c.from.is_some(),
        c.value.is_some(),
        c.children.is_some(),
        c.object.is_some(),
        !c.pack.is_empty(),
        c.transform.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        errors.push(
            cpath,
            "needs exactly one of `from`, `value`, `children`, `object`, `pack`, `transform`",
        );
        return false;
    }
    if c.from.is_none() && (c.convert.is_some() || !c.map.is_empty() || c.map_default.is_some()) {
        errors.push(
            cpath,
            "`convert`, `map` and `map_default` apply only to `from` rules",
        );
    }
    if c.children.is_none() && c.object.is_none() && !c.fields.is_empty() {
        errors.push(
            cpath,
            "`fields` applies only to `children` and `object` rules",
        );
    }
    if c.children.is_none() && c.field.is_some() {
        errors.push(cpath, "`field` applies only to `children` rules");
    }
    if c.transform.is_none() && !c.args.is_empty() {
        errors.push(cpath, "`args` applies only to `transform` rules");
    }
    true
}

/// A `from` rule, with its conversion and enum map.
fn copy_rule(
    errors: &mut Errors<'_>,
    cpath: &str,
    c: &ColumnConfig,
    from: &str,
    reads: &mut Reads,
) -> Option<Rule> {
    let from = reads.resolve(errors, cpath, from)?;
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
    Some(Rule::Copy {
        from,
        convert: c.convert,
        map,
        map_default,
    })
}

/// A `value` rule.
fn const_rule(errors: &mut Errors<'_>, cpath: &str, value: &toml::Value) -> Option<Rule> {
    match toml_scalar(value) {
        Some(v) => Some(Rule::Const(v)),
        None => {
            errors.push(format!("{cpath}.value"), "must be a scalar");
            None
        }
    }
}

/// A `children` rule and its element shape (`fields` or `field`, here or
/// on the children).
fn children_rule(
    errors: &mut Errors<'_>,
    cpath: &str,
    c: &ColumnConfig,
    alias: &str,
    reads: &mut Reads,
) -> Option<Rule> {
    let Some(ci) = reads.children.iter().position(|ch| ch.name == alias) else {
        errors.push(
            format!("{cpath}.children"),
            format!("children {alias:?} are not defined in this target"),
        );
        return None;
    };
    if let Some(p) = reads.children[ci].parent {
        errors.push(
            format!("{cpath}.children"),
            format!(
                "children {alias:?} are nested in {:?}: they appear inside its elements, not as a column",
                reads.children[p].name
            ),
        );
        return None;
    }
    let shape = match super::target::child_shape(errors, cpath, &c.fields, c.field.as_deref()) {
        Some(shape) => shape,
        None => match reads.children[ci].shape.clone() {
            Some(shape) => shape,
            None => {
                errors.push(
                    format!("{cpath}.fields"),
                    "must name at least one field (or give the children `fields` or `field`)",
                );
                return None;
            }
        },
    };
    if matches!(shape, ChildShape::Scalar(_)) {
        if let Some((_, nested)) = reads
            .children
            .iter()
            .enumerate()
            .find(|(_, n)| n.parent == Some(ci))
        {
            errors.push(
                format!("{cpath}.field"),
                format!(
                    "a scalar array cannot hold the nested children {:?}",
                    nested.name
                ),
            );
        }
    }
    match &shape {
        ChildShape::Object(fields) => reads.children[ci]
            .columns
            .extend(fields.iter().map(|(_, c)| c.clone())),
        ChildShape::Scalar(col) => {
            reads.children[ci].columns.insert(col.clone());
        }
    }
    Some(Rule::Children(ci, shape))
}

/// An `object` rule: a JSON object of a join's row.
fn object_rule(
    errors: &mut Errors<'_>,
    cpath: &str,
    c: &ColumnConfig,
    alias: &str,
    reads: &mut Reads,
) -> Option<Rule> {
    let Some(ji) = reads.joins.iter().position(|j| j.name == alias) else {
        errors.push(
            format!("{cpath}.object"),
            format!("join {alias:?} is not defined in this target"),
        );
        return None;
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
        reads.joins[ji].columns.insert(col.clone());
        fields.push((key.clone(), col.clone()));
    }
    Some(Rule::Object(ji, fields))
}

/// A `pack` rule.
fn pack_rule(errors: &mut Errors<'_>, cpath: &str, c: &ColumnConfig, reads: &mut Reads) -> Rule {
    let mut parts = Vec::new();
    for (key, text) in &c.pack {
        if let Some(r) = reads.resolve(errors, &format!("{cpath}.pack.{key}"), text) {
            parts.push((key.clone(), r));
        }
    }
    Rule::Pack(parts)
}

/// A `transform` rule and its `args`.
fn transform_rule(
    errors: &mut Errors<'_>,
    cpath: &str,
    c: &ColumnConfig,
    reads: &mut Reads,
    transforms: &Transforms,
) -> Rule {
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
        if let Some(r) = reads.resolve(errors, &format!("{cpath}.args"), text) {
            args.push(r);
        }
    }
    Rule::Transform(name, args)
}
