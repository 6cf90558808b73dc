//! Validation and compilation of a mapping file: the `[source]` section and
//! how each source table reaches each target here, one `[[target]]` in
//! [`target`]. Every error names the file, the field path and the broken
//! rule, and all of them are collected before giving up.

mod columns;
mod target;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{
    Instance, InstanceConfig, Mapping, MappingError, MappingFile, SourceTable, SourceTableConfig,
    TargetTable, Touch, Transforms,
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

    let instances = compile_instances(&mut errors, &raw.source.instances);
    // Every table and target once per instance, on its schema (once on
    // `source.schema` without instances). Errors are the same for every
    // instance: only the first one's are reported.
    let passes: Vec<(Option<&Instance>, &str)> = if instances.is_empty() {
        vec![(None, schema)]
    } else {
        instances
            .iter()
            .map(|i| (Some(i), i.schema.as_str()))
            .collect()
    };
    if raw.targets.is_empty() {
        errors.push("target", "at least one [[target]] is required");
    }
    let mut sources = BTreeMap::new();
    let mut targets = Vec::new();
    for (pass, (instance, schema)) in passes.into_iter().enumerate() {
        let mut later = Errors {
            file,
            list: Vec::new(),
        };
        let errors = if pass == 0 { &mut errors } else { &mut later };
        let pass_sources = compile_sources(errors, schema, &raw.source.tables);
        let mut seen_targets = BTreeSet::new();
        for t in &raw.targets {
            let path = format!("target {:?}", t.table);
            if !seen_targets.insert(t.table.clone()) {
                errors.push(&path, "target table is defined twice");
            }
            let discriminator = match (instance, &t.discriminator) {
                (Some(i), Some(column)) => Some((column.as_str(), i.name.as_str())),
                (Some(_), None) => {
                    errors.push(
                        &path,
                        "a mapping with [[source.instance]]s needs a `discriminator` key column in every target, so that rows of different sources never collide",
                    );
                    None
                }
                (None, Some(_)) => {
                    errors.push(
                        format!("{path}.discriminator"),
                        "applies only with [[source.instance]]s",
                    );
                    None
                }
                (None, None) => None,
            };
            if let Some(target) = target::compile_target(
                errors,
                &path,
                schema,
                t,
                discriminator,
                &pass_sources,
                transforms,
            ) {
                targets.push(target);
            }
        }
        // A later pass's errors are the first pass's again.
        drop(later);
        sources.extend(pass_sources);
    }

    if !errors.list.is_empty() {
        return Err(errors.list);
    }

    record_touches(&targets, &mut sources);

    Ok(Mapping {
        instances,
        file: file.to_owned(),
        before_image_field: raw.source.before_image_field.clone(),
        targets,
        sources,
    })
}

/// `[[source.instance]]`: distinct names and schemas.
fn compile_instances(errors: &mut Errors<'_>, configs: &[InstanceConfig]) -> Vec<Instance> {
    let mut names = BTreeSet::new();
    let mut schemas = BTreeSet::new();
    let mut out = Vec::new();
    for (i, c) in configs.iter().enumerate() {
        let path = format!("source.instance[{i}]");
        if c.name.is_empty() || c.name.len() > 64 || c.name.chars().any(|ch| ch.is_control()) {
            errors.push(
                format!("{path}.name"),
                format!("{:?} is not a valid instance name", c.name),
            );
        }
        if !names.insert(c.name.clone()) {
            errors.push(
                format!("{path}.name"),
                format!("instance {:?} is defined twice", c.name),
            );
        }
        if !schemas.insert(c.schema.clone()) {
            errors.push(
                format!("{path}.schema"),
                format!(
                    "schema {:?} belongs to two instances: records could not be told apart",
                    c.schema
                ),
            );
        }
        let source_schema = c.source_schema.clone().unwrap_or_else(|| c.schema.clone());
        for (field, value) in [("schema", &c.schema), ("source_schema", &source_schema)] {
            if !is_identifier(value) {
                errors.push(
                    format!("{path}.{field}"),
                    format!("{value:?} is not a valid identifier"),
                );
            }
        }
        out.push(Instance {
            name: c.name.clone(),
            schema: c.schema.clone(),
            source_schema,
        });
    }
    out
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
