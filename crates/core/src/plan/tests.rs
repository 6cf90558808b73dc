use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::dms::{ControlOperation, ControlRecord, DataChange, Metadata, TableName};
use crate::mapping::{build_row, DeletePolicy, Related, Transforms};
use crate::position::{SequenceNumber, ShardId};

fn mapping() -> Mapping {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mapping.toml");
    Mapping::load(&path, &Transforms::standard()).unwrap()
}

const USERS: usize = 0;
const RECIPES: usize = 1;

fn row(pairs: &[(&str, Value)]) -> Row {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn int(i: i64) -> Value {
    Value::Int(i)
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn user(id: i64, name: &str) -> Row {
    row(&[
        ("id", int(id)),
        ("name", text(name)),
        ("email", text("A@Example.com")),
        ("created_at", text("2026-01-02T03:04:05Z")),
        ("is_active", int(1)),
    ])
}

fn recipe(id: i64, author: i64, status: &str, title: &str) -> Row {
    row(&[
        ("id", int(id)),
        ("author_id", int(author)),
        ("title", text(title)),
        ("status", text(status)),
        ("servings", int(2)),
        ("rating", Value::Decimal("4.50".into())),
        ("calories", Value::Float(1.5e-3)),
        ("created_at", text("2026-01-02T03:04:05Z")),
        ("updated_at", text("2026-01-02T03:04:05Z")),
        ("external_ref", Value::Null),
        ("tags", Value::Json("[\"soup\"]".into())),
        ("thumbnail", text("0x0102")),
        ("prep_time", text("00:25:00")),
        ("publish_date", text("2026-01-02")),
    ])
}

fn ingredient(id: i64, recipe: i64, position: i64, name: &str) -> Row {
    row(&[
        ("id", int(id)),
        ("recipe_id", int(recipe)),
        ("position", int(position)),
        ("name", text(name)),
        ("quantity", Value::Decimal("1.00".into())),
        ("unit", text("g")),
    ])
}

fn story(recipe: i64, body: &str) -> Row {
    row(&[("recipe_id", int(recipe)), ("body", text(body))])
}

fn record(
    index: usize,
    table: &str,
    operation: Operation,
    after: Row,
    before: Option<Row>,
) -> DmsRecord {
    DmsRecord {
        shard_id: ShardId("shardId-000000000000".into()),
        sequence_number: SequenceNumber::parse(&format!(
            "4959033827149025660855969253836157109592157598913658{:04}",
            index
        ))
        .unwrap(),
        metadata: Metadata::default(),
        payload: Payload::Data(DataChange {
            operation,
            table: TableName::new("recipes_src", table).into(),
            after,
            before,
        }),
    }
}

fn key(i: i64) -> KeyTuple {
    KeyTuple(vec![KeyPart::Int(i128::from(i))])
}

fn actions(plan: &BatchPlan, target: usize) -> Vec<(i64, &'static str, usize)> {
    plan.targets[target]
        .ops
        .iter()
        .map(|(k, op)| {
            let KeyPart::Int(i) = k.0[0] else {
                panic!("{k}")
            };
            (i as i64, op.action.name(), op.first_record)
        })
        .collect()
}

#[test]
fn root_changes_plan_by_target_kind() {
    let m = mapping();
    let records = vec![
        record(0, "users", Operation::Insert, user(1, "Ann"), None),
        record(
            1,
            "recipes",
            Operation::Load,
            recipe(10, 1, "published", "Soup"),
            None,
        ),
        record(2, "users", Operation::Delete, user(2, "Bob"), None),
        record(
            3,
            "recipes",
            Operation::Delete,
            recipe(11, 1, "published", "Stew"),
            None,
        ),
    ];
    let plan = plan_batch(&m, &records);
    // global_users soft-deletes: a complete delete image becomes a tombstone.
    assert_eq!(
        actions(&plan, USERS),
        vec![(1, "upsert", 0), (2, "tombstone", 2)]
    );
    assert_eq!(
        actions(&plan, RECIPES),
        vec![(10, "rebuild", 1), (11, "delete", 3)]
    );
    // users also feed global_recipes through the author join: a reverse lookup by author_id.
    let lookup = &plan.targets[RECIPES].lookups[&vec!["author_id".to_owned()]];
    assert_eq!(
        lookup.tuples.keys().cloned().collect::<Vec<_>>(),
        vec![key(1), key(2)]
    );
    assert_eq!(plan.counts.mapped, 4);
}

/// The plan copies no rows: a write from an image names the image of the
/// record that decided it, and `PlannedOp::image` finds that row.
#[test]
fn image_writes_name_the_image_they_are_built_from() {
    let m = mapping();
    let records = vec![
        // The key changes 1 -> 5: the old key is tombstoned from the before image.
        record(
            0,
            "users",
            Operation::Update,
            user(5, "B"),
            Some(user(1, "A")),
        ),
        record(1, "users", Operation::Delete, user(2, "Bob"), None),
        record(2, "users", Operation::Insert, user(3, "Cy"), None),
    ];
    let plan = plan_batch(&m, &records);
    let ops = &plan.targets[USERS].ops;
    let planned = |k: i64| (ops[&key(k)].action, ops[&key(k)].image(&records));
    assert_eq!(
        planned(1),
        (Action::Tombstone(Image::Before), Some(&user(1, "A")))
    );
    assert_eq!(planned(5), (Action::Upsert, Some(&user(5, "B"))));
    assert_eq!(
        planned(2),
        (Action::Tombstone(Image::After), Some(&user(2, "Bob")))
    );
    assert_eq!(planned(3), (Action::Upsert, Some(&user(3, "Cy"))));
    // No record at the index, or a record without that image: no row.
    assert_eq!(ops[&key(1)].image(&records[..0]), None);
    assert_eq!(ops[&key(1)].image(&records[2..]), None);
}

#[test]
fn coalesces_per_key_keeping_the_earliest_record() {
    let m = mapping();
    let records = vec![
        record(0, "users", Operation::Insert, user(1, "A"), None),
        record(
            1,
            "users",
            Operation::Update,
            user(1, "B"),
            Some(user(1, "A")),
        ),
        record(2, "users", Operation::Delete, user(1, "B"), None),
        record(3, "users", Operation::Insert, user(1, "C"), None),
    ];
    let plan = plan_batch(&m, &records);
    let op = &plan.targets[USERS].ops[&key(1)];
    assert_eq!(op.first_record, 0);
    assert_eq!(op.last_record, 3);
    assert_eq!(op.action, Action::Upsert);
    assert_eq!(op.image(&records), Some(&user(1, "C")));
    assert_eq!(plan.targets[USERS].first_record(), Some(0));
}

#[test]
fn updates_of_columns_nobody_reads_produce_no_write() {
    let m = mapping();
    let mut touched = recipe(10, 1, "published", "Soup");
    touched.insert("updated_at", text("2026-05-05T00:00:00Z"));
    let records = vec![
        record(
            0,
            "recipes",
            Operation::Update,
            touched,
            Some(recipe(10, 1, "published", "Soup")),
        ),
        // Without a before image nothing can be proved unchanged: rebuild.
        record(
            1,
            "recipes",
            Operation::Update,
            recipe(12, 1, "published", "Soup"),
            None,
        ),
        // A pk-only before image lacks the read columns: rebuild.
        record(
            2,
            "recipes",
            Operation::Update,
            recipe(13, 1, "published", "Soup"),
            Some(row(&[("id", int(13))])),
        ),
    ];
    let plan = plan_batch(&m, &records);
    assert_eq!(plan.counts.unchanged, 1);
    assert_eq!(plan.no_write, vec![0]);
    assert_eq!(
        actions(&plan, RECIPES),
        vec![(12, "rebuild", 1), (13, "rebuild", 2)]
    );
}

#[test]
fn a_child_moving_between_parents_rebuilds_both() {
    let m = mapping();
    let records = vec![record(
        0,
        "ingredients",
        Operation::Update,
        ingredient(5, 20, 1, "salt"),
        Some(ingredient(5, 10, 1, "salt")),
    )];
    let plan = plan_batch(&m, &records);
    assert_eq!(
        actions(&plan, RECIPES),
        vec![(10, "rebuild", 0), (20, "rebuild", 0)]
    );
    // Child deletes rebuild the parent; story (LOB) changes too.
    let records = vec![
        record(
            0,
            "ingredients",
            Operation::Delete,
            ingredient(6, 30, 1, "pepper"),
            None,
        ),
        record(
            1,
            "recipe_stories",
            Operation::Update,
            row(&[("recipe_id", int(31))]),
            None,
        ),
    ];
    let plan = plan_batch(&m, &records);
    assert_eq!(
        actions(&plan, RECIPES),
        vec![(30, "rebuild", 0), (31, "rebuild", 1)]
    );
    assert_eq!(plan.counts.without_before_image, 1);
}

#[test]
fn a_before_image_without_the_parent_column_counts_as_none() {
    let m = mapping();
    // `{}` (what DMS sends for a PostgreSQL table without REPLICA IDENTITY
    // FULL) and the key only: the previous parent is unknown either way.
    let records = vec![
        record(
            0,
            "ingredients",
            Operation::Update,
            ingredient(6, 30, 1, "pepper"),
            Some(row(&[])),
        ),
        record(
            1,
            "ingredients",
            Operation::Update,
            ingredient(7, 31, 1, "salt"),
            Some(row(&[("id", int(7))])),
        ),
        record(
            2,
            "ingredients",
            Operation::Update,
            ingredient(8, 32, 1, "thyme"),
            Some(ingredient(8, 33, 1, "thyme")),
        ),
    ];
    let plan = plan_batch(&m, &records);
    assert_eq!(plan.counts.without_before_image, 2);
    assert_eq!(
        actions(&plan, RECIPES),
        vec![
            (30, "rebuild", 0),
            (31, "rebuild", 1),
            (32, "rebuild", 2),
            (33, "rebuild", 2)
        ]
    );
}

#[test]
fn primary_key_change_deletes_the_old_key() {
    let m = mapping();
    let records = vec![record(
        0,
        "users",
        Operation::Update,
        user(2, "Ann"),
        Some(user(1, "Ann")),
    )];
    let plan = plan_batch(&m, &records);
    assert_eq!(
        actions(&plan, USERS),
        vec![(1, "tombstone", 0), (2, "upsert", 0)]
    );
    let mut partial_before = user(1, "Ann");
    partial_before.remove("email");
    let records = vec![record(
        0,
        "users",
        Operation::Update,
        user(2, "Ann"),
        Some(partial_before),
    )];
    let plan = plan_batch(&m, &records);
    assert_eq!(
        actions(&plan, USERS),
        vec![(1, "delete", 0), (2, "upsert", 0)]
    );
}

#[test]
fn incomplete_or_lossy_images_are_rebuilt_and_filters_delete() {
    let m = mapping();
    let mut no_email = user(1, "Ann");
    no_email.remove("email");
    let mut lossy = user(2, "Bob");
    lossy.insert("is_active", Value::Lossy("1E+17".into()));
    let records = vec![
        record(0, "users", Operation::Insert, no_email, None),
        record(1, "users", Operation::Insert, lossy, None),
    ];
    let plan = plan_batch(&m, &records);
    assert_eq!(
        actions(&plan, USERS),
        vec![(1, "rebuild", 0), (2, "rebuild", 1)]
    );
}

#[test]
fn control_unmapped_and_bad_keys_are_counted_not_written() {
    let m = mapping();
    let mut control = record(0, "recipes", Operation::Insert, Row::default(), None);
    control.payload = Payload::Control(ControlRecord {
        operation: ControlOperation::DropColumn,
        table: Some(TableName::new("recipes_src", "recipes")),
        detail: serde_json::Value::Null,
    });
    let records = vec![
        control,
        record(
            1,
            "audit_log",
            Operation::Insert,
            row(&[("id", int(1))]),
            None,
        ),
        record(
            2,
            "users",
            Operation::Insert,
            row(&[("id", Value::Lossy("1.2E+18".into()))]),
            None,
        ),
        record(
            3,
            "users",
            Operation::Insert,
            row(&[("name", text("x"))]),
            None,
        ),
        record(
            4,
            "ingredients",
            Operation::Insert,
            row(&[("id", int(1))]),
            None,
        ),
    ];
    let plan = plan_batch(&m, &records);
    assert_eq!(plan.counts.control, 1);
    assert_eq!(plan.controls, vec![0]);
    assert_eq!(plan.counts.unmapped, 1);
    assert_eq!(plan.no_write, vec![0, 1]);
    assert!(plan.targets.iter().all(|t| t.is_empty()));
    let errors: Vec<String> = plan.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].contains("shard shardId-000000000000, sequence number"),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].contains("table recipes_src.users"),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("UseLargeIntegerValue"), "{}", errors[0]);
    assert!(
        errors[1].contains("column `id` is not in the image"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].contains("cannot find the parents"),
        "{}",
        errors[2]
    );
    assert_eq!(
        plan.errors.iter().map(|e| e.record).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
}

// ---------------------------------------------------------------------------
// Property: planning a whole batch and applying it once gives the same target
// as planning and applying each record alone, on an in-memory model of the
// source and the target. The histories are consistent (each record is what a
// binlog would show for an operation on the in-memory source), and the
// re-queried target also converges to the mapping of the final source.

type Tables = BTreeMap<&'static str, BTreeMap<i64, Row>>;
type TargetState = Vec<BTreeMap<KeyTuple, Vec<Value>>>;

#[derive(Debug, Clone)]
enum Op {
    User {
        id: i64,
        name: u8,
        delete: bool,
    },
    Recipe {
        id: i64,
        author: i64,
        status: u8,
        title: u8,
        delete: bool,
    },
    TouchRecipe {
        id: i64,
    },
    Story {
        recipe: i64,
        body: u8,
        truncated: bool,
        delete: bool,
    },
    Ingredient {
        id: i64,
        recipe: i64,
        position: i64,
        delete: bool,
    },
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0i64..4, 0u8..3, any::<bool>()).prop_map(|(id, name, delete)| Op::User {
            id,
            name,
            delete
        }),
        (0i64..5, 0i64..4, 0u8..3, 0u8..2, prop::bool::weighted(0.2)).prop_map(
            |(id, author, status, title, delete)| {
                Op::Recipe {
                    id,
                    author,
                    status,
                    title,
                    delete,
                }
            }
        ),
        (0i64..5).prop_map(|id| Op::TouchRecipe { id }),
        (0i64..5, 0u8..3, any::<bool>(), prop::bool::weighted(0.2)).prop_map(
            |(recipe, body, truncated, delete)| Op::Story {
                recipe,
                body,
                truncated,
                delete
            }
        ),
        (0i64..6, 0i64..5, 0i64..3, prop::bool::weighted(0.2)).prop_map(
            |(id, recipe, position, delete)| Op::Ingredient {
                id,
                recipe,
                position,
                delete
            }
        ),
    ]
}

/// Applies an operation to the source and returns the record DMS would emit.
fn run_op(source: &mut Tables, op: &Op, index: usize) -> Option<DmsRecord> {
    let (table, id, new_row, delete) = match op {
        Op::User { id, name, delete } => ("users", *id, user(*id, &format!("user{name}")), *delete),
        Op::Recipe {
            id,
            author,
            status,
            title,
            delete,
        } => {
            let status = ["draft", "published", "archived"][*status as usize];
            (
                "recipes",
                *id,
                recipe(*id, *author, status, &format!("t{title}")),
                *delete,
            )
        }
        Op::TouchRecipe { id } => {
            let mut r = source.get("recipes")?.get(id)?.clone();
            r.insert(
                "updated_at",
                text(&format!("2026-02-0{}T00:00:00Z", index % 9 + 1)),
            );
            ("recipes", *id, r, false)
        }
        Op::Story {
            recipe,
            body,
            delete,
            ..
        } => (
            "recipe_stories",
            *recipe,
            story(*recipe, &format!("body{body}")),
            *delete,
        ),
        Op::Ingredient {
            id,
            recipe,
            position,
            delete,
        } => (
            "ingredients",
            *id,
            ingredient(*id, *recipe, *position, "x"),
            *delete,
        ),
    };
    let rows = source.entry(table).or_default();
    let old = rows.get(&id).cloned();
    let (operation, after, before) = match (delete, old) {
        (true, None) => return None,
        (true, Some(old)) => {
            rows.remove(&id);
            (Operation::Delete, old, None)
        }
        (false, None) => {
            rows.insert(id, new_row.clone());
            (Operation::Insert, new_row, None)
        }
        (false, Some(old)) => {
            rows.insert(id, new_row.clone());
            (Operation::Update, new_row, Some(old))
        }
    };
    let mut after = after;
    if let Op::Story {
        truncated: true, ..
    } = op
    {
        after.remove("body"); // limited LOB mode left the LOB out
    }
    Some(record(index, table, operation, after, before))
}

fn find<'a>(source: &'a Tables, table: &TableName, pairs: &[(String, Value)]) -> Vec<&'a Row> {
    source
        .get(table.table.as_str())
        .map(|rows| {
            rows.values()
                .filter(|r| pairs.iter().all(|(c, v)| r.get(c) == Some(v)))
                .collect()
        })
        .unwrap_or_default()
}

fn rebuild(m: &Mapping, target: usize, source: &Tables, key: &KeyTuple) -> Option<Vec<Value>> {
    let t = &m.targets[target];
    let pairs: Vec<(String, Value)> = t.root_key.iter().cloned().zip(key.values()).collect();
    let root = *find(source, &t.root, &pairs).first()?;
    if !crate::mapping::passes_filter(t, root) {
        return None;
    }
    let related_pairs = |on: &[(String, String)]| -> Vec<(String, Value)> {
        on.iter()
            .map(|(c, r)| (c.clone(), root.get(r).cloned().unwrap_or(Value::Null)))
            .collect()
    };
    let joins: Vec<Option<&Row>> = t
        .joins
        .iter()
        .map(|j| {
            find(source, &j.table, &related_pairs(&j.on))
                .first()
                .copied()
        })
        .collect();
    let children: Vec<Vec<&Row>> = t
        .children
        .iter()
        .map(|c| find(source, &c.table, &related_pairs(&c.on)))
        .collect();
    Some(
        build_row(
            t,
            root,
            &Related {
                joins: &joins,
                children: &children,
                nested: None,
            },
            &Transforms::standard(),
        )
        .unwrap(),
    )
}

fn delete_row(
    m: &Mapping,
    target: usize,
    state: &mut BTreeMap<KeyTuple, Vec<Value>>,
    key: &KeyTuple,
) {
    let t = &m.targets[target];
    match &t.delete {
        DeletePolicy::Hard => {
            state.remove(key);
        }
        DeletePolicy::Soft { column, value } => {
            let position = t.columns.iter().position(|c| &c.name == column).unwrap();
            if let Some(row) = state.get_mut(key) {
                row[position] = crate::mapping::toml_scalar(value).unwrap();
            }
        }
    }
}

fn apply(
    m: &Mapping,
    plan: &BatchPlan,
    records: &[DmsRecord],
    source: &Tables,
    state: &mut TargetState,
) {
    for tp in &plan.targets {
        let mut tp = tp.clone();
        let t = &m.targets[tp.target];
        for (cols, lookup) in &tp.lookups.clone() {
            let found: Vec<(KeyTuple, usize)> = lookup
                .tuples
                .iter()
                .flat_map(|(tuple, first)| {
                    let pairs: Vec<(String, Value)> =
                        cols.iter().cloned().zip(tuple.values()).collect();
                    find(source, &t.root, &pairs)
                        .into_iter()
                        .map(|r| {
                            let k = KeyTuple(
                                t.root_key
                                    .iter()
                                    .map(|c| KeyPart::from_value(r.get(c).unwrap()).unwrap())
                                    .collect(),
                            );
                            (k, *first)
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            add_lookup_results(&mut tp, found);
        }
        let rows = &mut state[tp.target];
        for (key, op) in &tp.ops {
            match &op.action {
                Action::Upsert => {
                    let image = op.image(records).unwrap();
                    let values =
                        build_row(t, image, &Related::default(), &Transforms::standard()).unwrap();
                    rows.insert(key.clone(), values);
                }
                Action::Rebuild => match rebuild(m, tp.target, source, key) {
                    Some(values) => {
                        rows.insert(key.clone(), values);
                    }
                    None => delete_row(m, tp.target, rows, key),
                },
                Action::Delete => delete_row(m, tp.target, rows, key),
                Action::Tombstone(_) => {
                    let image = op.image(records).unwrap();
                    let values =
                        build_row(t, image, &Related::default(), &Transforms::standard()).unwrap();
                    rows.insert(key.clone(), values);
                    delete_row(m, tp.target, rows, key);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn batched_plan_equals_record_by_record(ops in proptest::collection::vec(arb_op(), 1..60)) {
        let m = mapping();
        let mut source = Tables::new();
        let records: Vec<DmsRecord> =
            ops.iter().enumerate().filter_map(|(i, op)| run_op(&mut source, op, i)).collect();

        let mut one_by_one: TargetState = vec![BTreeMap::new(); m.targets.len()];
        for r in &records {
            let plan = plan_batch(&m, std::slice::from_ref(r));
            prop_assert!(plan.errors.is_empty(), "{:?}", plan.errors);
            apply(&m, &plan, std::slice::from_ref(r), &source, &mut one_by_one);
        }
        let mut batched: TargetState = vec![BTreeMap::new(); m.targets.len()];
        let plan = plan_batch(&m, &records);
        prop_assert!(plan.errors.is_empty(), "{:?}", plan.errors);
        apply(&m, &plan, &records, &source, &mut batched);
        prop_assert_eq!(&one_by_one, &batched);

        // Each key is written at most once, and coalescing never loses the earliest record.
        for tp in &plan.targets {
            for op in tp.ops.values() {
                prop_assert!(op.first_record <= op.last_record);
            }
        }

        // The re-queried target equals the mapping applied to the final source.
        let expected: BTreeMap<KeyTuple, Vec<Value>> = source
            .get("recipes")
            .map(|rows| rows.keys().filter_map(|id| rebuild(&m, RECIPES, &source, &key(*id)).map(|v| (key(*id), v))).collect())
            .unwrap_or_default();
        prop_assert_eq!(&batched[RECIPES], &expected);
    }
}

#[test]
fn keys_compare_by_what_they_identify() {
    use crate::dms::Value;
    let part = |v: Value| KeyPart::from_value(&v).unwrap();
    let same = [
        (Value::Int(7), Value::Text("7".into())),
        (Value::UInt(7), Value::Decimal("7".into())),
        (Value::Bool(true), Value::Int(1)),
        (Value::Int(-12), Value::Text("-12".into())),
        (Value::Int(0), Value::Text("0".into())),
    ];
    for (a, b) in same {
        let (a, b) = (part(a), part(b));
        assert_eq!(a, b, "{a} and {b}");
        let hash = |k: &KeyPart| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            k.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&a), hash(&b));
    }
    let different = [
        (Value::Int(7), Value::Text("07".into())),
        (Value::Int(7), Value::Text("7.0".into())),
        (Value::Int(0), Value::Text("-0".into())),
        (Value::Int(7), Value::Text(" 7".into())),
        (Value::Text("abc".into()), Value::Text("ABC".into())),
    ];
    for (a, b) in different {
        assert_ne!(part(a), part(b));
    }
    // The part keeps its own form for binding.
    assert_eq!(
        part(Value::Text("7".into())).to_value(),
        Value::Text("7".into())
    );
}

#[test]
fn returned_keys_match_the_asked_keys_they_stand_for() {
    let t = |s: &[&str]| KeyTuple(s.iter().map(|x| KeyPart::Text(x.to_string())).collect());
    let asked = [t(&["abc"]), t(&["ABC"]), t(&["xy"]), t(&["7"])];
    let m = KeyMatcher::new(&asked);
    assert_eq!(m.matches(&t(&["abc"])), &[t(&["abc"]), t(&["ABC"])]);
    assert_eq!(m.matches(&t(&["Abc  "])), &[t(&["abc"]), t(&["ABC"])]);
    assert_eq!(m.matches(&t(&["XY"])), &[t(&["xy"])]);
    assert_eq!(m.matches(&KeyTuple(vec![KeyPart::Int(7)])), &[t(&["7"])]);
    assert!(m.matches(&t(&["zz"])).is_empty());
    assert!(m.matches(&t(&["abc", "x"])).is_empty());
}

proptest::proptest! {
    #[test]
    fn returned_keys_match_as_grouping_by_loose_form_matches(
        asked in proptest::collection::vec(arb_key_tuple(), 0..12),
        returned in proptest::collection::vec(arb_key_tuple(), 0..12),
    ) {
        // The reference: the asked tuples (the first of those that are the
        // same key, as asked) whose loose form is the returned one's.
        let m = KeyMatcher::new(&asked);
        for r in returned.iter().chain(&asked) {
            let mut want: Vec<&KeyTuple> = Vec::new();
            for t in &asked {
                if t.loose() == r.loose() && !want.contains(&t) {
                    want.push(t);
                }
            }
            let got = m.matches(r);
            // Compared as written too: the asked form is what gets bound.
            proptest::prop_assert_eq!(format!("{got:?}"), format!("{want:?}"), "{}", r);
        }
    }
}

fn arb_key_tuple() -> impl proptest::strategy::Strategy<Value = KeyTuple> {
    use proptest::prelude::*;
    let part = prop_oneof![
        (-3i128..10).prop_map(KeyPart::Int),
        "(-?[0-9]{1,2}|[aAbB]{1,2} {0,2}|é|É)".prop_map(KeyPart::Text),
        proptest::collection::vec(0u8..3, 0..2).prop_map(KeyPart::Bytes),
    ];
    proptest::collection::vec(part, 1..3).prop_map(KeyTuple)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Whether an update changed none of a touch's columns is answered
    /// alike for images that share their names (as decoded: the places of
    /// the columns, found once per touch and layout) and for images built
    /// apart (the walk over both), for any columns the touch reads, some
    /// of them missing from the images, and any values, with the places
    /// kept from one image pair to the next.
    #[test]
    fn images_sharing_names_are_unchanged_as_walked(
        pairs in proptest::collection::vec(
            (
                proptest::collection::vec(0i64..3, 6),
                proptest::collection::vec(0i64..3, 6),
            ),
            1..8,
        ),
        touches in proptest::collection::vec(
            proptest::collection::btree_set("[a-g]", 0..6),
            1..4,
        ),
    ) {
        let names = ["f", "b", "d", "a", "e", "c"];
        let touches: Vec<BTreeSet<String>> = touches;
        let mut places = Places::default();
        for (before, after) in &pairs {
            let image = |values: &[i64]| {
                Row::from_scanned(&names, values.iter().copied().map(Value::Int).collect())
            };
            let (b, a) = (image(before), image(after));
            prop_assert!(b.same_names(&a));
            let apart = |row: &Row| row.iter().map(|(n, v)| (n.to_string(), v.clone())).collect::<Row>();
            let (b2, a2) = (apart(&b), apart(&a));
            prop_assert!(!b2.same_names(&a2));
            for columns in &touches {
                let walked = unchanged(Some(&b2), &a2, columns, &mut Places::default());
                prop_assert_eq!(unchanged(Some(&b), &a, columns, &mut places), walked);
            }
        }
    }
}
