use super::eval::{compare_values, convert, passes_filter, target_key, Related};
use super::*;
use crate::dms::{Row, Value};

const MINIMAL: &str = r#"
[source]
schema = "src"
[source.tables.items]
key = ["id"]
[[target]]
table = "items_v2"
root = "items"
key = ["item_id"]
[[target.column]]
name = "item_id"
from = "id"
[[target.column]]
name = "label"
from = "name"
"#;

fn parse(text: &str) -> Result<Mapping, LoadError> {
    Mapping::parse("m.toml", text, &Transforms::standard())
}

fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Err(LoadError::Invalid(list)) => list.iter().map(|e| e.to_string()).collect(),
        Err(other) => vec![other.to_string()],
        Ok(_) => vec![],
    }
}

fn row(pairs: &[(&str, Value)]) -> Row {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[test]
fn the_shipped_example_mapping_compiles() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mapping.toml");
    let m = Mapping::load(&path, &Transforms::standard()).unwrap();
    assert_eq!(m.targets.len(), 2);
    let users = &m.targets[0];
    assert!(!users.requery, "a plain 1:1 table is built from images");
    assert_eq!(users.column_names().last(), Some(&"src_version"));
    let recipes = &m.targets[1];
    assert!(recipes.requery);
    assert_eq!(recipes.key, vec!["legacy_id"]);
    assert_eq!(recipes.root_key, vec!["id"]);
    // users feed global_users (root) and global_recipes (join, by reverse lookup on author_id).
    let src_users = m.source(&TableName::new("recipes_src", "users")).unwrap();
    assert_eq!(src_users.touches.len(), 2);
    match &src_users.touches[1] {
        Touch::Related { direct, on, .. } => {
            assert!(direct.is_none());
            assert_eq!(on, &vec![("id".to_owned(), "author_id".to_owned())]);
        }
        other => panic!("{other:?}"),
    }
    // ingredients point at the root key directly.
    let ingredients = m
        .source(&TableName::new("recipes_src", "ingredients"))
        .unwrap();
    match &ingredients.touches[0] {
        Touch::Related {
            direct, columns, ..
        } => {
            assert_eq!(direct.as_deref(), Some(&[0usize][..]));
            for c in ["name", "quantity", "unit", "position", "id", "recipe_id"] {
                assert!(columns.contains(c), "{c}");
            }
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(m.decode_options().before_image_field, "before-image");
}

#[test]
fn unknown_keys_are_rejected_with_the_file_and_key() {
    let text = MINIMAL.replace(
        "[[target.column]]\nname = \"label\"",
        "[[target.column]]\ncolour = 1\nname = \"label\"",
    );
    let e = parse(&text).unwrap_err().to_string();
    assert!(e.starts_with("m.toml: "), "{e}");
    assert!(e.contains("unknown field `colour`"), "{e}");
    let e = parse(&format!("{MINIMAL}\n[extra]\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `extra`"), "{e}");
}

#[test]
fn validation_names_file_path_and_rule() {
    let cases: Vec<(String, &str)> = vec![
        (
            MINIMAL.replace("key = [\"item_id\"]", "key = [\"legacy_id\"]"),
            "m.toml: target \"items_v2\".key: column \"legacy_id\" is not produced by any column rule",
        ),
        (
            MINIMAL.replace("key = [\"item_id\"]", "key = [\"label\"]"),
            "m.toml: target \"items_v2\".key: column \"label\" must be a `from` rule (without `map`) on a key column of root table src.items (id)",
        ),
        (
            MINIMAL.replace("root = \"items\"", "root = \"things\""),
            "m.toml: target \"items_v2\".root: root table src.things is not declared in [source.tables]",
        ),
        (
            MINIMAL.replace("from = \"name\"", "from = \"author.name\""),
            "m.toml: target \"items_v2\".column[1] \"label\": \"author.name\" names join \"author\", which is not defined in this target",
        ),
        (
            MINIMAL.replace("from = \"name\"", "from = \"name\"\nvalue = 3"),
            "m.toml: target \"items_v2\".column[1] \"label\": needs exactly one of `from`, `value`, `children`, `object`, `pack`, `transform`",
        ),
        (
            MINIMAL.replace("from = \"name\"", "transform = \"shout\"\nargs = [\"name\"]"),
            "m.toml: target \"items_v2\".column[1] \"label\".transform: transform \"shout\" is not registered (registered: coalesce, concat, lower)",
        ),
        (
            MINIMAL.replace("name = \"label\"", "name = \"item_id\""),
            "m.toml: target \"items_v2\".column[1] \"item_id\": column is defined twice",
        ),
        (
            format!("{MINIMAL}version = \"label\"\n").replace("[[target.column]]\nname = \"item_id\"", "version = \"label\"\n[[target.column]]\nname = \"item_id\""),
            "",
        ),
        (
            MINIMAL.replace("name = \"label\"", "name = \"label; DROP TABLE x\""),
            "m.toml: target \"items_v2\".column[1] \"label; DROP TABLE x\": is not a valid column name",
        ),
        (
            MINIMAL.replace("key = [\"id\"]", "key = []"),
            "m.toml: source.tables.\"items\".key: must name at least one column",
        ),
    ];
    for (text, want) in cases {
        let got = errors(&text);
        if want.is_empty() {
            continue;
        }
        assert!(
            got.iter().any(|g| g == want),
            "want {want:?}\n got {got:#?}"
        );
    }
    // The version column must be filled by the writer, not by a rule.
    let text = MINIMAL.replace(
        "key = [\"item_id\"]\n",
        "key = [\"item_id\"]\nversion = \"label\"\n",
    );
    assert_eq!(
        errors(&text),
        vec!["m.toml: target \"items_v2\".version: column \"label\" is filled by the writer and must not have a rule"]
    );
    assert!(errors(MINIMAL).is_empty());
}

#[test]
fn children_and_joins_are_checked() {
    let text = format!(
        "{MINIMAL}
[[target.join]]
name = \"owner\"
table = \"people\"
on = {{ id = \"owner_id\" }}
[[target.children]]
name = \"parts\"
table = \"items\"
on = {{}}
[[target.column]]
name = \"parts_json\"
children = \"partz\"
fields = {{ a = \"b\" }}
"
    );
    let got = errors(&text);
    for want in [
        "m.toml: target \"items_v2\".join[0].table: table src.people is not declared in [source.tables]",
        "m.toml: target \"items_v2\".children[0].on: must pair at least one column",
        "m.toml: target \"items_v2\".column[2] \"parts_json\".children: children \"partz\" are not defined in this target",
    ] {
        assert!(got.iter().any(|g| g == want), "want {want:?}\n got {got:#?}");
    }
}

#[test]
fn conversions() {
    let t = |s: &str| Value::Text(s.to_owned());
    let d = |s: &str| Value::Decimal(s.to_owned());
    let ok = [
        (Value::Int(5), Conversion::Int, Value::Int(5)),
        (t("12"), Conversion::Int, Value::Int(12)),
        (d("12.000"), Conversion::Int, Value::Int(12)),
        (Value::Bool(true), Conversion::Int, Value::Int(1)),
        (Value::Int(5), Conversion::Decimal, d("5")),
        (t("-4.50"), Conversion::Decimal, d("-4.50")),
        (d("0.1"), Conversion::Float, Value::Float(0.1)),
        (Value::Int(7), Conversion::String, t("7")),
        (Value::Int(1), Conversion::Bool, Value::Bool(true)),
        (t("false"), Conversion::Bool, Value::Bool(false)),
        (
            t("{\"a\": 1}"),
            Conversion::Json,
            Value::Json("{\"a\":1}".to_owned()),
        ),
        (
            t("0x0aff"),
            Conversion::Binary,
            Value::Bytes(vec![0x0a, 0xff]),
        ),
        (
            t("2026-03-29T01:30:00Z"),
            Conversion::UnixSeconds,
            Value::Int(1_774_747_800),
        ),
        (Value::Null, Conversion::Datetime, Value::Null),
    ];
    for (input, conv, want) in ok {
        assert_eq!(convert(&input, conv).unwrap(), want, "{input:?} {conv:?}");
    }
    let dt = convert(&t("2026-03-29T01:30:00Z"), Conversion::Datetime).unwrap();
    assert_eq!(super::text_of(&dt).unwrap(), "2026-03-29 01:30:00");
    let back = convert(&Value::Int(1_774_747_800), Conversion::FromUnix).unwrap();
    assert_eq!(back, dt);
    assert_eq!(
        super::text_of(&convert(&t("2026-03-29"), Conversion::Date).unwrap()).unwrap(),
        "2026-03-29"
    );
    assert_eq!(
        super::text_of(&convert(&t("00:25:00"), Conversion::Time).unwrap()).unwrap(),
        "00:25:00"
    );

    for (input, conv) in [
        (t("abc"), Conversion::Int),
        (t("1.5"), Conversion::Int),
        (t("x1"), Conversion::Decimal),
        (t("maybe"), Conversion::Bool),
        (t("{nope"), Conversion::Json),
        (t("yesterday"), Conversion::Datetime),
        (t("0xabc"), Conversion::Binary),
        (Value::Lossy("1.2E+18".to_owned()), Conversion::Int),
    ] {
        let e = convert(&input, conv).unwrap_err();
        assert!(
            !e.contains("abc") && !e.contains("maybe"),
            "errors never carry values: {e}"
        );
    }
}

#[test]
fn builds_rows_with_joins_children_pack_map_and_transforms() {
    let m = parse(
        r#"
[source]
schema = "s"
[source.tables.recipes]
key = ["id"]
[source.tables.users]
key = ["id"]
[source.tables.ingredients]
key = ["id"]
[[target]]
table = "out"
root = "recipes"
key = ["rid"]
filter = { column = "status", in = ["published", 7] }
[[target.join]]
name = "author"
table = "users"
on = { id = "author_id" }
[[target.children]]
name = "ing"
table = "ingredients"
on = { recipe_id = "id" }
order_by = ["pos"]
[[target.column]]
name = "rid"
from = "id"
convert = "string"
[[target.column]]
name = "author"
from = "author.name"
[[target.column]]
name = "status_code"
from = "status"
map = { draft = 0, published = 1 }
map_default = -1
[[target.column]]
name = "ingredients"
children = "ing"
fields = { n = "name", q = "qty" }
[[target.column]]
name = "meta"
pack = { rating = "rating", who = "author.name" }
[[target.column]]
name = "shout"
transform = "concat"
args = ["title", "author.name"]
[[target.column]]
name = "k"
value = "v1"
"#,
    )
    .unwrap();
    let t = &m.targets[0];
    let root = row(&[
        ("id", Value::Int(42)),
        ("author_id", Value::Int(7)),
        ("status", Value::Text("published".into())),
        ("rating", Value::Decimal("4.50".into())),
        ("title", Value::Text("Soup".into())),
    ]);
    let author = row(&[
        ("id", Value::Int(7)),
        ("name", Value::Text("Ann \"A\"".into())),
    ]);
    let i1 = row(&[
        ("pos", Value::Int(2)),
        ("name", Value::Text("salt".into())),
        ("qty", Value::Decimal("1.50".into())),
    ]);
    let i2 = row(&[
        ("pos", Value::Int(1)),
        ("name", Value::Text("water".into())),
        ("qty", Value::Null),
    ]);
    let joins = [Some(&author)];
    let children = [vec![&i1, &i2]];
    let values = build_row(
        t,
        &root,
        &Related {
            joins: &joins,
            children: &children,
            nested: None,
        },
        &Transforms::standard(),
    )
    .unwrap();
    assert_eq!(
        values,
        vec![
            Value::Text("42".into()),
            Value::Text("Ann \"A\"".into()),
            Value::Int(1),
            Value::Json(r#"[{"n":"water","q":null},{"n":"salt","q":1.50}]"#.into()),
            Value::Json(r#"{"rating":4.50,"who":"Ann \"A\""}"#.into()),
            Value::Text("Soup Ann \"A\"".into()),
            Value::Text("v1".into()),
        ]
    );
    // No author row: its columns read as NULL; an unknown status maps to the default.
    let mut root2 = root.clone();
    root2.insert("status", Value::Text("secret".into()));
    let values = build_row(
        t,
        &root2,
        &Related {
            joins: &[None],
            children: &[vec![]],
            nested: None,
        },
        &Transforms::standard(),
    )
    .unwrap();
    assert_eq!(values[1], Value::Null);
    assert_eq!(values[2], Value::Int(-1));
    assert_eq!(values[3], Value::Json("[]".into()));
    assert!(passes_filter(t, &root));
    assert!(!passes_filter(t, &root2));
    assert_eq!(
        target_key(t, &[Value::Int(42)]).unwrap(),
        vec![Value::Text("42".into())]
    );
    // A missing root column is an evaluation error naming the target column.
    let partial = row(&[("id", Value::Int(1))]);
    let e = build_row(
        t,
        &partial,
        &Related {
            joins: &[None],
            children: &[vec![]],
            nested: None,
        },
        &Transforms::standard(),
    )
    .unwrap_err();
    assert_eq!(e.column, "status_code");
    // Lossy values never reach the target.
    let mut lossy = root.clone();
    lossy.insert("rating", Value::Lossy("1E+20".into()));
    let e = build_row(
        t,
        &lossy,
        &Related {
            joins: &joins,
            children: &children,
            nested: None,
        },
        &Transforms::standard(),
    )
    .unwrap_err();
    assert_eq!(e.column, "meta");
}

#[test]
fn custom_transforms_can_be_registered() {
    let mut transforms = Transforms::standard();
    transforms.register("double", |args| match args {
        [Value::Int(i)] => Ok(Value::Int(i * 2)),
        _ => Err("expects one integer".to_owned()),
    });
    let text = MINIMAL.replace("from = \"name\"", "transform = \"double\"\nargs = [\"id\"]");
    let m = Mapping::parse("m.toml", &text, &transforms).unwrap();
    let values = build_row(
        &m.targets[0],
        &row(&[("id", Value::Int(21))]),
        &Related::default(),
        &transforms,
    )
    .unwrap();
    assert_eq!(values[1], Value::Int(42));
}

#[test]
fn value_ordering_for_children() {
    use std::cmp::Ordering::*;
    assert_eq!(compare_values(&Value::Null, &Value::Int(1)), Less);
    assert_eq!(compare_values(&Value::Int(10), &Value::Int(9)), Greater);
    assert_eq!(
        compare_values(&Value::Decimal("1.5".into()), &Value::Int(2)),
        Less
    );
    assert_eq!(
        compare_values(&Value::Text("b".into()), &Value::Text("a".into())),
        Greater
    );
}

#[test]
fn ddl_that_breaks_the_mapping_is_recognised() {
    use crate::dms::{ControlOperation as Op, ControlRecord};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mapping.toml");
    let m = Mapping::load(&path, &Transforms::standard()).unwrap();
    let control = |op, table: &str, detail: serde_json::Value| ControlRecord {
        operation: op,
        table: Some(TableName::new("recipes_src", table)),
        detail,
    };
    let drop_title = control(
        Op::DropColumn,
        "recipes",
        serde_json::json!({"column-name": "title"}),
    );
    assert_eq!(
        m.broken_by(&drop_title).as_deref(),
        Some("drop-column on recipes_src.recipes concerns column(s) the mapping reads: title")
    );
    let drop_unread = control(
        Op::DropColumn,
        "recipes",
        serde_json::json!({"column-name": "updated_at"}),
    );
    assert_eq!(m.broken_by(&drop_unread), None);
    let add = control(
        Op::AddColumn,
        "recipes",
        serde_json::json!({"column-name": "title"}),
    );
    assert_eq!(
        m.broken_by(&add),
        None,
        "adding a column never breaks a mapping"
    );
    let rename_child_col = control(
        Op::RenameColumn,
        "ingredients",
        serde_json::json!({"old": "quantity", "new": "qty"}),
    );
    assert!(m.broken_by(&rename_child_col).unwrap().contains("quantity"));
    let drop_table = control(Op::DropTable, "recipe_stories", serde_json::Value::Null);
    assert_eq!(
        m.broken_by(&drop_table).as_deref(),
        Some("drop-table of mapped table recipes_src.recipe_stories")
    );
    // DMS control details carry the table definition after the change.
    let def = |cols: &[&str]| {
        let columns: serde_json::Map<String, serde_json::Value> = cols
            .iter()
            .map(|c| (c.to_string(), serde_json::json!({"type": "INT64"})))
            .collect();
        serde_json::json!({"table-def": {"columns": columns}})
    };
    let all = ["id", "name", "email", "created_at", "is_active"];
    let dropped_unread = control(Op::DropColumn, "users", def(&all));
    assert_eq!(m.broken_by(&dropped_unread), None);
    let dropped_email = control(
        Op::DropColumn,
        "users",
        def(&["id", "name", "created_at", "is_active"]),
    );
    assert_eq!(
        m.broken_by(&dropped_email).as_deref(),
        Some("drop-column on recipes_src.users removed column(s) the mapping reads: email")
    );
    let retyped = control(Op::ColumnTypeChange, "users", def(&all));
    assert_eq!(m.broken_by(&retyped), None);
    let unmapped = control(Op::DropTable, "audit_log", serde_json::Value::Null);
    assert_eq!(m.broken_by(&unmapped), None);
    assert!(m
        .columns_read(&TableName::new("recipes_src", "users"))
        .contains("name"));
}

/// A mapping with a nested children level, for the validation cases below.
const NESTED: &str = r#"
[source]
schema = "src"
[source.tables.items]
key = ["id"]
[source.tables.parts]
key = ["id"]
[source.tables.pictures]
key = ["id"]
[source.tables.makers]
key = ["id"]
[[target]]
table = "items_v2"
root = "items"
key = ["item_id"]
[[target.join]]
name = "maker"
table = "makers"
on = { id = "maker_id" }
[[target.children]]
name = "parts"
table = "parts"
on = { item_id = "id" }
fields = { name = "name" }
[[target.children]]
name = "pictures"
table = "pictures"
parent = "parts"
on = { part_id = "id" }
field = "url"
[[target.column]]
name = "item_id"
from = "id"
[[target.column]]
name = "parts"
children = "parts"
[[target.column]]
name = "maker"
object = "maker"
fields = { name = "name" }
"#;

#[test]
fn nested_forms_compile_and_reach_their_roots_through_their_parents() {
    let m = parse(NESTED).unwrap();
    let t = &m.targets[0];
    assert_eq!(t.children[1].parent, Some(0));
    // The parent's rows carry the column its nested children join on.
    assert!(
        t.children[0].columns.contains("id"),
        "{:?}",
        t.children[0].columns
    );
    let pictures = m.source(&TableName::new("src", "pictures")).unwrap();
    match &pictures.touches[0] {
        Touch::Related { via, direct, .. } => {
            assert_eq!(*via, Some(0));
            assert_eq!(*direct, None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn nested_forms_are_validated() {
    let cases = [
        (
            NESTED.replace("parent = \"parts\"", "parent = \"nope\""),
            "m.toml: target \"items_v2\".children[1].parent: \"nope\" is not the alias of children declared before \"pictures\" in this target",
        ),
        (
            NESTED.replace("field = \"url\"", ""),
            "m.toml: target \"items_v2\".children[1]: nested children (with `parent`) need `fields` or `field`: the shape of their elements",
        ),
        (
            NESTED.replace("field = \"url\"", "field = \"url\"\nfields = { u = \"url\" }"),
            "m.toml: target \"items_v2\".children[1]: has both `fields` and `field`: objects or a scalar array, not both",
        ),
        (
            NESTED.replace("fields = { name = \"name\" }\n[[target.children]]", "field = \"name\"\n[[target.children]]"),
            "m.toml: target \"items_v2\".children[1].parent: children \"parts\" are a scalar array (`field`): they cannot hold nested children",
        ),
        (
            NESTED.replace("children = \"parts\"", "children = \"pictures\""),
            "m.toml: target \"items_v2\".column[1] \"parts\".children: children \"pictures\" are nested in \"parts\": they appear inside its elements, not as a column",
        ),
        (
            NESTED.replace("object = \"maker\"", "object = \"brand\""),
            "m.toml: target \"items_v2\".column[2] \"maker\".object: join \"brand\" is not defined in this target",
        ),
    ];
    for (text, want) in cases {
        let got = errors(&text);
        if want.is_empty() {
            continue;
        }
        assert!(
            got.iter().any(|g| g == want),
            "want {want:?}\n got {got:#?}"
        );
    }
}

#[test]
fn nested_children_and_objects_build_json() {
    #[derive(Debug)]
    struct Pictures(Vec<Row>);
    impl crate::mapping::NestedRows for Pictures {
        fn rows(&self, index: usize, parent: &Row) -> Vec<&Row> {
            assert_eq!(index, 1);
            self.0
                .iter()
                .filter(|r| r.get("part_id") == parent.get("id"))
                .collect()
        }
    }
    let m = parse(NESTED).unwrap();
    let t = &m.targets[0];
    let root = row(&[("id", Value::Int(1)), ("maker_id", Value::Int(7))]);
    let parts = [
        row(&[
            ("id", Value::Int(5)),
            ("item_id", Value::Int(1)),
            ("name", Value::Text("a".into())),
        ]),
        row(&[
            ("id", Value::Int(6)),
            ("item_id", Value::Int(1)),
            ("name", Value::Text("b".into())),
        ]),
    ];
    let pictures = Pictures(vec![
        row(&[
            ("id", Value::Int(1)),
            ("part_id", Value::Int(5)),
            ("url", Value::Text("x.jpg".into())),
        ]),
        row(&[
            ("id", Value::Int(2)),
            ("part_id", Value::Int(5)),
            ("url", Value::Text("y.jpg".into())),
        ]),
    ]);
    let maker = row(&[("id", Value::Int(7)), ("name", Value::Text("M\"k".into()))]);
    let built = build_row(
        t,
        &root,
        &Related {
            joins: &[Some(&maker)],
            children: &[parts.iter().collect(), Vec::new()],
            nested: Some(&pictures),
        },
        &Transforms::standard(),
    )
    .unwrap();
    assert_eq!(
        built[1],
        Value::Json(
            r#"[{"name":"a","pictures":["x.jpg","y.jpg"]},{"name":"b","pictures":[]}]"#.into()
        )
    );
    assert_eq!(built[2], Value::Json(r#"{"name":"M\"k"}"#.into()));
    // No joined row: the object is null.
    let built = build_row(
        t,
        &root,
        &Related {
            joins: &[None],
            children: &[Vec::new(), Vec::new()],
            nested: None,
        },
        &Transforms::standard(),
    )
    .unwrap();
    assert_eq!(built[2], Value::Null);
}

const INSTANCES: &str = r#"
[source]
schema = "src"
[[source.instance]]
name = "eu"
schema = "src_eu"
[[source.instance]]
name = "us"
schema = "src_us"
source_schema = "src"
[source.tables.items]
key = ["id"]
[[target]]
table = "items_v2"
root = "items"
key = ["region", "item_id"]
discriminator = "region"
[[target.column]]
name = "item_id"
from = "id"
"#;

#[test]
fn instances_compile_one_target_copy_each_with_its_discriminator() {
    let m = parse(INSTANCES).unwrap();
    assert_eq!(m.instances.len(), 2);
    assert_eq!(m.instances[1].source_schema, "src");
    let roots: Vec<String> = m.targets.iter().map(|t| t.root.to_string()).collect();
    assert_eq!(roots, ["src_eu.items", "src_us.items"]);
    let t = &m.targets[1];
    assert_eq!(t.key, ["region", "item_id"]);
    assert_eq!(t.discriminator, Some(("region".into(), "us".into())));
    assert_eq!(
        target_key(t, &[Value::Int(7)]).unwrap(),
        vec![Value::Text("us".into()), Value::Int(7)]
    );
    assert!(m.source(&TableName::new("src_eu", "items")).is_some());
}

#[test]
fn instances_are_validated() {
    let cases = [
        (
            INSTANCES.replace("discriminator = \"region\"\n", ""),
            "m.toml: target \"items_v2\": a mapping with [[source.instance]]s needs a `discriminator` key column in every target, so that rows of different sources never collide",
        ),
        (
            INSTANCES.replace("key = [\"region\", \"item_id\"]", "key = [\"item_id\"]"),
            "m.toml: target \"items_v2\".key: must hold the discriminator column \"region\"",
        ),
        (
            INSTANCES.replace("schema = \"src_us\"", "schema = \"src_eu\""),
            "m.toml: source.instance[1].schema: schema \"src_eu\" belongs to two instances: records could not be told apart",
        ),
        (
            format!("{INSTANCES}[[target.column]]\nname = \"region\"\nvalue = \"x\"\n"),
            "m.toml: target \"items_v2\".discriminator: column \"region\" is filled with the instance's name: no column rule may make it",
        ),
        (
            MINIMAL.replace("key = [\"item_id\"]", "key = [\"item_id\"]\ndiscriminator = \"region\""),
            "m.toml: target \"items_v2\".discriminator: applies only with [[source.instance]]s",
        ),
    ];
    for (text, want) in cases {
        let got = errors(&text);
        assert!(
            got.iter().any(|g| g == want),
            "want {want:?}\n got {got:#?}"
        );
    }
}
