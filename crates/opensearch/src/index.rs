//! Indices: their names, the body (settings and mappings) `prepare` creates
//! them with, and documents (ids, sources, and their values read back as
//! text).
//!
//! Each target table is an alias `<prefix><table><suffix>` over one
//! concrete index `<alias>-v<N>` (N from `index-version`, default 1).
//! Reads and writes go through the alias, so a blue/green reindex creates
//! `-v2`, copies, and swaps the alias in one `_aliases` call.
//!
//! **Document ids** are the target key: one column is its text (`7`,
//! `abc`); several are the JSON array of their texts (`["7","abc"]`), which
//! no single text key can be mistaken for unless it is itself such an
//! array text. The id is also kept in the field [`ID_FIELD`] (a `keyword`
//! with doc values), which [`crate::rows`] sorts by with `search_after`.

use std::fmt::Write as _;

use dms_cdc_core::dms::Value;
use dms_cdc_core::mapping::{render_json, text_of, ChildShape, Conversion, Rule, TargetTable};
use serde_json::{json, Map, Value as Json};

use crate::connection::Config;

/// The field every target document keeps its id in (sortable).
pub const ID_FIELD: &str = "dms_cdc_id";
/// The checkpoint index (one document per function and shard).
pub const CHECKPOINT_INDEX: &str = "dms-cdc-checkpoint";
/// The quarantine index (one document per function, shard and sequence number).
pub const QUARANTINE_INDEX: &str = "dms-cdc-quarantine";
/// The tombstone index (one document per deleted target document).
pub const TOMBSTONE_INDEX: &str = "dms-cdc-tombstone";
/// Longest keyword indexed (longer text is kept in `_source` only): below
/// Lucene's 32,766-byte term limit for any UTF-8 text.
pub const KEYWORD_IGNORE_ABOVE: u32 = 8191;
/// `yyyy-MM-dd HH:mm:ss.SSSSSS`, and the other forms a value may take.
pub const DATETIME_FORMAT: &str = "yyyy-MM-dd HH:mm:ss||yyyy-MM-dd HH:mm:ss.SSS||yyyy-MM-dd HH:mm:ss.SSSSSS||yyyy-MM-dd HH:mm:ss.SSSSSSSSS||strict_date_optional_time||epoch_second";

/// The names of one target table's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexNames {
    /// The alias reads and writes go through.
    pub alias: String,
    /// The concrete index `prepare` creates behind it.
    pub concrete: String,
}

/// The alias and concrete index of a target table (names are lower case:
/// OpenSearch refuses upper-case index names).
pub fn names(config: &Config, table: &str) -> IndexNames {
    let alias = format!("{}{}{}", config.prefix, table.to_lowercase(), config.suffix);
    IndexNames {
        concrete: format!("{alias}-v{}", config.index_version),
        alias,
    }
}

impl IndexNames {
    /// Where a table's documents are read and written: the alias, or the
    /// concrete index itself with `index=concrete`.
    pub fn data(&self, config: &Config) -> &str {
        if config.concrete {
            &self.concrete
        } else {
            &self.alias
        }
    }
}

/// A bookkeeping index's name (with the configured prefix and suffix).
pub fn bookkeeping(config: &Config, index: &str) -> String {
    format!("{}{index}{}", config.prefix, config.suffix)
}

fn keyword() -> Json {
    json!({"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE})
}

fn of_conversion(c: Conversion) -> Option<Json> {
    Some(match c {
        Conversion::Int | Conversion::UnixSeconds => json!({"type": "long"}),
        Conversion::Decimal | Conversion::Float => json!({"type": "double"}),
        Conversion::String | Conversion::Time => keyword(),
        Conversion::Bool => json!({"type": "boolean"}),
        Conversion::Datetime | Conversion::FromUnix => {
            json!({"type": "date", "format": DATETIME_FORMAT})
        }
        Conversion::Date => json!({"type": "date", "format": "yyyy-MM-dd"}),
        Conversion::Binary => json!({"type": "binary"}),
        // A JSON document of unknown shape.
        Conversion::Json => json!({"type": "flat_object"}),
    })
}

fn of_const(v: &Value) -> Option<Json> {
    Some(match v {
        Value::Bool(_) => json!({"type": "boolean"}),
        Value::Int(_) | Value::UInt(_) => json!({"type": "long"}),
        Value::Float(_) | Value::Decimal(_) => json!({"type": "double"}),
        Value::Text(_) => keyword(),
        _ => return None,
    })
}

/// The mapping of the elements of children `index` (nested objects, with
/// their own nested children; or keywords for scalar arrays).
fn of_children(table: &TargetTable, index: usize, shape: &ChildShape) -> Json {
    match shape {
        ChildShape::Scalar(_) => keyword(),
        ChildShape::Object(fields) => {
            // The child columns' types are unknown here (dynamic); nested
            // children are nested in turn.
            let _ = fields;
            let mut properties = Map::new();
            for (i, nested) in table.nested_in(index) {
                if let Some(shape) = &nested.shape {
                    properties.insert(nested.name.clone(), of_children(table, i, shape));
                }
            }
            json!({"type": "nested", "properties": properties})
        }
    }
}

/// The field mappings of a target table's columns: explicit where the
/// mapping says the type, dynamic (with date detection off) where it does
/// not (a plain copy, a transform).
pub fn properties(table: &TargetTable) -> Map<String, Json> {
    let mut properties = Map::new();
    for column in &table.columns {
        let mapping = match &column.rule {
            _ if table.key.contains(&column.name) => Some(keyword()),
            Rule::Copy { convert, map, .. } if !map.is_empty() => {
                // An enum map's results decide the type: all integers -> long.
                let all_int = map.values().all(|v| matches!(v, Value::Int(_)));
                let _ = convert;
                Some(if all_int {
                    json!({"type": "long"})
                } else {
                    keyword()
                })
            }
            Rule::Copy {
                convert: Some(c), ..
            } => of_conversion(*c),
            Rule::Copy { .. } | Rule::Transform(..) => None,
            Rule::Const(v) => of_const(v),
            Rule::Children(i, shape) => Some(of_children(table, *i, shape)),
            // JSON of any shape (a JSON column in a pack may be a string in
            // one row and an array in the next): `flat_object` indexes every
            // leaf as a keyword and never conflicts.
            Rule::Object(..) | Rule::Pack(..) => Some(json!({"type": "flat_object"})),
        };
        if let Some(m) = mapping {
            properties.insert(column.name.clone(), m);
        }
    }
    if let Some(v) = &table.version {
        properties.insert(v.clone(), json!({"type": "keyword"}));
    }
    properties.insert(ID_FIELD.to_owned(), json!({"type": "keyword"}));
    properties
}

/// The body `prepare` creates a target table's concrete index with:
/// settings (shards, replicas, `index.gc_deletes`), mappings, and the
/// alias as its write index (not with `index=concrete`: the alias stays on
/// the index it is on until `dms-cdc index swap`). `dms-cdc index print`
/// prints it.
pub fn index_body(config: &Config, table: &TargetTable) -> Json {
    let names = names(config, &table.table);
    let aliases = if config.concrete {
        json!({})
    } else {
        json!({ names.alias: { "is_write_index": true } })
    };
    json!({
        "settings": {
            "index": {
                "number_of_shards": config.shards,
                "number_of_replicas": config.replicas,
                "gc_deletes": config.gc_deletes,
            }
        },
        "mappings": {
            "dynamic": true,
            "date_detection": false,
            "properties": properties(table),
        },
        "aliases": aliases,
    })
}

/// The bodies of the bookkeeping indices, by their unprefixed names.
pub fn bookkeeping_body(config: &Config, index: &str) -> Json {
    let k = || json!({"type": "keyword"});
    let time = || json!({"type": "date", "format": "yyyy-MM-dd HH:mm:ss.SSSSSS"});
    let properties = match index {
        CHECKPOINT_INDEX => json!({
            "function_name": k(), "shard_id": k(), "sequence_number": k(), "updated_at": time(),
        }),
        QUARANTINE_INDEX => json!({
            "id": {"type": "long"}, "function_name": k(), "shard_id": k(),
            "sequence_number": k(), "sequence_length": {"type": "integer"},
            "table_name": k(), "table_short": k(), "operation": k(),
            "raw_record": {"type": "keyword", "index": false, "doc_values": false},
            "raw_encoding": k(), "error_class": k(),
            "error_message": {"type": "text"},
            "first_seen": time(), "last_seen": time(), "attempts": {"type": "integer"},
            "resolved": {"type": "integer"}, "resolution": {"type": "keyword", "index": false},
        }),
        _ => json!({
            "target_table": k(), "row_key": k(), "version": k(), "deleted_at": time(),
        }),
    };
    json!({
        "settings": {"index": {"number_of_shards": 1, "number_of_replicas": config.replicas}},
        "mappings": {"dynamic": "strict", "properties": properties},
    })
}

/// The document id of a target key (see the module docs).
pub fn document_id(key: &[Value]) -> String {
    let text = |v: &Value| match v {
        Value::Bytes(b) => b.iter().fold(String::new(), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        }),
        v => text_of(v).unwrap_or_default(),
    };
    match key {
        [one] => text(one),
        many => Json::Array(many.iter().map(|v| Json::String(text(v))).collect()).to_string(),
    }
}

/// The document id of key values given as text (as `keys_after` gets them).
pub fn document_id_of_text(key: &[String]) -> String {
    let values: Vec<Value> = key.iter().map(|t| Value::Text(t.clone())).collect();
    document_id(&values)
}

/// The key values (as text) of a document id.
pub fn key_of_document_id(id: &str, width: usize) -> Vec<String> {
    if width <= 1 {
        return vec![id.to_owned()];
    }
    serde_json::from_str::<Vec<String>>(id).unwrap_or_else(|_| vec![id.to_owned()])
}

/// The `_source` of a row (values in `names` order): JSON columns as JSON,
/// decimals as exact number literals, binary as base64, plus [`ID_FIELD`].
pub fn source(names: &[&str], row: &[Value], id: &str) -> String {
    let mut out = String::with_capacity(64 * names.len());
    out.push('{');
    for (name, value) in names.iter().zip(row) {
        render_json(&Value::Text((*name).to_owned()), &mut out);
        out.push(':');
        render_json(value, &mut out);
        out.push(',');
    }
    render_json(&Value::Text(ID_FIELD.to_owned()), &mut out);
    out.push(':');
    render_json(&Value::Text(id.to_owned()), &mut out);
    out.push('}');
    out
}

/// The columns of `table` that hold binary values (base64 in `_source`).
pub fn binary_columns(table: &TargetTable) -> Vec<&str> {
    table
        .columns
        .iter()
        .filter(|c| {
            matches!(
                c.rule,
                Rule::Copy {
                    convert: Some(Conversion::Binary),
                    ..
                }
            )
        })
        .map(|c| c.name.as_str())
        .collect()
}

/// A `_source` value as reconcile's text: NULL (or absent) as `None`,
/// strings as they are (binary columns as lower-case hex), numbers as
/// their literal, booleans as `true`/`false`, objects and arrays as JSON text.
pub fn text_of_source(value: Option<&serde_json::value::RawValue>, binary: bool) -> Option<String> {
    let raw = value?.get().trim();
    if raw == "null" {
        return None;
    }
    if raw.starts_with('"') {
        let s: String = serde_json::from_str(raw).ok()?;
        if binary {
            use base64::Engine as _;
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&s) {
                return Some(bytes.iter().fold(String::new(), |mut h, b| {
                    let _ = write!(h, "{b:02x}");
                    h
                }));
            }
        }
        return Some(s);
    }
    Some(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dms_cdc_core::mapping::{Mapping, Transforms};

    fn mapping() -> Mapping {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mapping.toml"),
        )
        .unwrap();
        Mapping::parse("mapping.toml", &text, &Transforms::standard()).unwrap()
    }

    #[test]
    fn ids_are_the_key_and_unambiguous() {
        assert_eq!(document_id(&[Value::Int(7)]), "7");
        assert_eq!(document_id(&[Value::Text("7".into())]), "7");
        assert_eq!(
            document_id(&[Value::Int(7), Value::Text("a|b\"".into())]),
            r#"["7","a|b\""]"#
        );
        assert_ne!(
            document_id(&[Value::Text("a".into()), Value::Text("b,c".into())]),
            document_id(&[Value::Text("a,b".into()), Value::Text("c".into())])
        );
        let id = document_id_of_text(&["7".into(), "x".into()]);
        assert_eq!(key_of_document_id(&id, 2), vec!["7", "x"]);
        assert_eq!(key_of_document_id("7", 1), vec!["7"]);
    }

    #[test]
    fn the_index_body_follows_the_mapping() {
        let m = mapping();
        let mut config = Config::from_url("http://127.0.0.1:9200?prefix=t-&replicas=0").unwrap();
        config.index_version = 2;
        let recipes = m
            .targets
            .iter()
            .find(|t| t.table == "global_recipes")
            .unwrap();
        let body = index_body(&config, recipes);
        assert_eq!(body["settings"]["index"]["number_of_replicas"], 0);
        assert_eq!(body["settings"]["index"]["gc_deletes"], "7d");
        let p = &body["mappings"]["properties"];
        assert_eq!(p["legacy_id"]["type"], "keyword");
        assert_eq!(p["created_at"]["type"], "date");
        assert_eq!(p["created_unix"]["type"], "long");
        assert_eq!(p["rating"]["type"], "double");
        assert_eq!(p["status_code"]["type"], "long");
        assert_eq!(p["ingredients"]["type"], "nested");
        assert_eq!(p["meta"]["type"], "flat_object");
        assert_eq!(p["thumbnail"]["type"], "binary");
        assert_eq!(p["publish_date"]["format"], "yyyy-MM-dd");
        assert_eq!(p["src_version"]["type"], "keyword");
        assert_eq!(p[ID_FIELD]["type"], "keyword");
        assert!(p.get("title").is_none(), "a plain copy is dynamic");
        assert_eq!(body["aliases"]["t-global_recipes"]["is_write_index"], true);
        assert_eq!(
            names(&config, "global_recipes").concrete,
            "t-global_recipes-v2"
        );
        let users = m
            .targets
            .iter()
            .find(|t| t.table == "global_users")
            .unwrap();
        let p = &index_body(&config, users)["mappings"]["properties"];
        assert_eq!(p["active"]["type"], "boolean");
        assert_eq!(p["is_deleted"]["type"], "long");
    }

    #[test]
    fn sources_hold_json_as_json_and_read_back_as_text() {
        let names = ["id", "tags", "price", "bin", "when", "gone"];
        let row = [
            Value::Int(7),
            Value::Json(r#"[{"a":1.50}]"#.into()),
            Value::Decimal("4.50".into()),
            Value::Bytes(vec![0xab, 0x01]),
            Value::DateTime(
                chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
                    .unwrap()
                    .and_hms_micro_opt(3, 4, 5, 600_000)
                    .unwrap(),
            ),
            Value::Null,
        ];
        let text = source(&names, &row, "7");
        let doc: std::collections::HashMap<String, Box<serde_json::value::RawValue>> =
            serde_json::from_str(&text).unwrap();
        let get = |n: &str, bin: bool| text_of_source(doc.get(n).map(|v| &**v), bin);
        assert_eq!(get("id", false).as_deref(), Some("7"));
        assert_eq!(get("tags", false).as_deref(), Some(r#"[{"a":1.50}]"#));
        assert_eq!(get("price", false).as_deref(), Some("4.50"));
        assert_eq!(get("bin", true).as_deref(), Some("ab01"));
        assert_eq!(
            get("when", false).as_deref(),
            Some("2026-01-02 03:04:05.600")
        );
        assert_eq!(get("gone", false), None);
        assert_eq!(get(ID_FIELD, false).as_deref(), Some("7"));
    }
}
