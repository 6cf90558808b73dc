//! Validation and compilation of a mapping file: the `[source]` section and
//! how each source table reaches each target here, one `[[target]]` in
//! [`target`]. Every error names the file, the field path and the broken
//! rule, and all of them are collected before giving up.

mod columns;
mod target;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{
    Mapping, MappingError, MappingFile, SourceTable, SourceTableConfig, TargetTable, Touch,
    Transforms,
};
use crate::dms::TableName;

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

/// Validates and compiles a parsed mapping file; `file` names it in errors.
pub(super) fn compile(
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

    let mut sources = compile_sources(&mut errors, schema, &raw.source.tables);

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
        if let Some(target) =
            target::compile_target(&mut errors, &path, schema, t, &sources, transforms)
        {
            targets.push(target);
        }
    }

    if !errors.list.is_empty() {
        return Err(errors.list);
    }

    record_touches(&targets, &mut sources);

    Ok(Mapping {
        file: file.to_owned(),
        before_image_field: raw.source.before_image_field.clone(),
        targets,
        sources,
    })
}

/// `[source.tables]`: names, keys, LOB and JSON columns (touches come later).
fn compile_sources(
    errors: &mut Errors<'_>,
    schema: &str,
    tables: &BTreeMap<String, SourceTableConfig>,
) -> BTreeMap<TableName, SourceTable> {
    let mut sources: BTreeMap<TableName, SourceTable> = BTreeMap::new();
    for (name, table) in tables {
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
    sources
}

/// Records how each source table reaches each target.
fn record_touches(targets: &[TargetTable], sources: &mut BTreeMap<TableName, SourceTable>) {
    for (index, target) in targets.iter().enumerate() {
        if let Some(src) = sources.get_mut(&target.root) {
            src.touches.push(Touch::Root { target: index });
        }
        let related = target
            .joins
            .iter()
            .map(|j| (&j.table, &j.on, &j.columns, None))
            .chain(
                target
                    .children
                    .iter()
                    .map(|c| (&c.table, &c.on, &c.columns, c.parent)),
            );
        for (table, on, columns, via) in related {
            // Parents are found without a lookup only when `on` holds the
            // root key (never for nested children: `on` is the parent's).
            let direct = target
                .root_key
                .iter()
                .map(|k| on.iter().position(|(_, root_col)| root_col == k))
                .collect::<Option<Vec<usize>>>()
                .filter(|_| on.len() == target.root_key.len() && via.is_none());
            let mut read = columns.clone();
            read.extend(on.iter().map(|(c, _)| c.clone()));
            if let Some(src) = sources.get_mut(table) {
                src.touches.push(Touch::Related {
                    target: index,
                    on: on.clone(),
                    direct,
                    columns: read,
                    via,
                });
            }
        }
    }
}
