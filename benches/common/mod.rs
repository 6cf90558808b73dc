//! A deterministic workload of the sample domain (`fixtures/source.sql`,
//! `fixtures/mapping.toml`) for the benchmarks: an in-memory model of the
//! source database, and a stream of AWS DMS JSON documents (as DMS writes
//! them for a MySQL source and a Kinesis target) that replays every change
//! made to the model, in order. After generation the model is the source's
//! final state: loading it into the source database makes every record
//! consistent with what a re-query sees.
//!
//! No clock and no randomness from outside: a fixed seed gives the same
//! records, byte for byte.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use dms_cdc::dms::Delivery;
use dms_cdc::position::{SequenceNumber, ShardId};

/// The one shard of the workload.
pub const SHARD: &str = "shardId-000000000000";
/// Source schema.
pub const SCHEMA: &str = "recipes_src";

/// splitmix64: small, fast, deterministic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const FIRST: [&str; 24] = [
    "Ana", "Bruno", "Chen", "Dara", "Eero", "Fatima", "Gus", "Hana", "Ivan", "Jana", "Kofi",
    "Lena", "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Vera",
    "Wen", "Yusuf",
];
const LAST: [&str; 16] = [
    "Lima", "Costa", "Wei", "Okafor", "Virtanen", "Zahra", "Sato", "Petrov", "Novak", "Mensah",
    "Schmidt", "Garcia", "Haddad", "Iyer", "Moreau", "Tanaka",
];
const DISH: [&str; 20] = [
    "Soup",
    "Stew",
    "Curry",
    "Salad",
    "Pie",
    "Bread",
    "Noodles",
    "Rice",
    "Tart",
    "Dumplings",
    "Risotto",
    "Tacos",
    "Ramen",
    "Pancakes",
    "Gratin",
    "Chili",
    "Pilaf",
    "Flatbread",
    "Cake",
    "Omelette",
];
const ADJ: [&str; 16] = [
    "Smoky", "Quick", "Spicy", "Classic", "Green", "Roasted", "Creamy", "Crispy", "Lemon",
    "Garlic", "Sunday", "Summer", "Winter", "Rustic", "Golden", "Herby",
];
const INGREDIENT: [&str; 24] = [
    "flour",
    "milk",
    "eggs",
    "butter",
    "salt",
    "sugar",
    "tomatoes",
    "onion",
    "garlic",
    "rice",
    "olive oil",
    "parmesan",
    "chickpeas",
    "lemon",
    "cumin",
    "paprika",
    "spinach",
    "potatoes",
    "carrots",
    "chicken stock",
    "coconut milk",
    "ginger",
    "soy sauce",
    "basil",
];
const UNIT: [&str; 6] = ["g", "ml", "tbsp", "tsp", "pcs", "cup"];
const TAGS: [&str; 12] = [
    "vegan",
    "vegetarian",
    "quick",
    "dessert",
    "spicy",
    "comfort",
    "brazilian",
    "thai",
    "italian",
    "breakfast",
    "gluten-free",
    "party",
];
const WORDS: [&str; 24] = [
    "the",
    "secret",
    "is",
    "resting",
    "dough",
    "overnight",
    "my",
    "grandmother",
    "baked",
    "these",
    "every",
    "sunday",
    "slowly",
    "until",
    "golden",
    "with",
    "a",
    "pinch",
    "of",
    "salt",
    "and",
    "patience",
    "always",
    "served",
];

/// A `users` row.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub email: Option<String>,
    /// Microseconds since 2020-01-01 (DATETIME(6)).
    pub created_at: i64,
    pub is_active: u8,
}

/// A `recipes` row.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    pub id: i64,
    pub author_id: Option<u64>,
    pub title: String,
    pub status: &'static str,
    pub servings: Option<i32>,
    /// DECIMAL(4,2) in hundredths.
    pub rating: Option<u32>,
    /// DOUBLE, a multiple of 0.5 so that its text is exact.
    pub calories: Option<f64>,
    /// Seconds since 2020-01-01 (DATETIME).
    pub created_at: i64,
    /// Seconds since 2020-01-01 (TIMESTAMP, not read by the mapping).
    pub updated_at: i64,
    pub external_ref: Option<u64>,
    /// JSON text.
    pub tags: Option<String>,
    pub thumbnail: Option<Vec<u8>>,
    /// Seconds (TIME).
    pub prep_time: Option<u32>,
    /// Days since 2020-01-01 (DATE).
    pub publish_date: Option<i64>,
}

/// A `recipe_stories` row.
#[derive(Debug, Clone, PartialEq)]
pub struct Story {
    pub recipe_id: i64,
    pub body: String,
}

/// An `ingredients` row.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingredient {
    pub id: i64,
    pub recipe_id: i64,
    pub position: i32,
    pub name: String,
    /// DECIMAL(8,2) in hundredths.
    pub quantity: Option<u32>,
    pub unit: Option<&'static str>,
}

fn epoch() -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2020, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("valid date")
}

/// DMS's DATETIME(6) rendering (`...T...Z`, wall clock) and SQL's.
fn datetime6(micros: i64) -> (String, String) {
    let dt = epoch() + chrono::Duration::microseconds(micros);
    (
        dt.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        dt.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
    )
}

fn datetime0(secs: i64) -> (String, String) {
    let dt = epoch() + chrono::Duration::seconds(secs);
    (
        dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        dt.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

fn date(days: i64) -> String {
    (epoch() + chrono::Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

fn time(secs: u32) -> String {
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

fn hundredths(v: u32) -> String {
    format!("{}.{:02}", v / 100, v % 100)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A JSON string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// A SQL string literal.
fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

fn opt<T>(v: &Option<T>, f: impl Fn(&T) -> String) -> String {
    v.as_ref().map(f).unwrap_or_else(|| "null".to_owned())
}

fn sql_opt<T>(v: &Option<T>, f: impl Fn(&T) -> String) -> String {
    v.as_ref().map(f).unwrap_or_else(|| "NULL".to_owned())
}

impl User {
    pub fn json(&self) -> String {
        format!(
            r#"{{"id":{},"name":{},"email":{},"created_at":{},"is_active":{}}}"#,
            self.id,
            js(&self.name),
            opt(&self.email, |e| js(e)),
            js(&datetime6(self.created_at).0),
            self.is_active
        )
    }
    pub fn sql(&self) -> String {
        format!(
            "({}, {}, {}, '{}', {})",
            self.id,
            sq(&self.name),
            sql_opt(&self.email, |e| sq(e)),
            datetime6(self.created_at).1,
            self.is_active
        )
    }
}

impl Recipe {
    pub fn json(&self) -> String {
        format!(
            r#"{{"id":{},"author_id":{},"title":{},"status":{},"servings":{},"rating":{},"calories":{},"created_at":{},"updated_at":{},"external_ref":{},"tags":{},"thumbnail":{},"prep_time":{},"publish_date":{}}}"#,
            self.id,
            opt(&self.author_id, |a| a.to_string()),
            js(&self.title),
            js(self.status),
            opt(&self.servings, |s| s.to_string()),
            opt(&self.rating, |r| hundredths(*r)),
            opt(&self.calories, |c| format!("{c:.1}")),
            js(&datetime0(self.created_at).0),
            js(&datetime0(self.updated_at).0),
            opt(&self.external_ref, |e| e.to_string()),
            opt(&self.tags, |t| t.clone()),
            opt(&self.thumbnail, |t| js(&format!("0x{}", hex(t)))),
            opt(&self.prep_time, |t| js(&time(*t))),
            opt(&self.publish_date, |d| js(&date(*d))),
        )
    }
    pub fn sql(&self) -> String {
        format!(
            "({}, {}, {}, '{}', {}, {}, {}, '{}', '{}', {}, {}, {}, {}, {})",
            self.id,
            sql_opt(&self.author_id, |a| a.to_string()),
            sq(&self.title),
            self.status,
            sql_opt(&self.servings, |s| s.to_string()),
            sql_opt(&self.rating, |r| hundredths(*r)),
            sql_opt(&self.calories, |c| format!("{c:.1}")),
            datetime0(self.created_at).1,
            datetime0(self.updated_at).1,
            sql_opt(&self.external_ref, |e| e.to_string()),
            sql_opt(&self.tags, |t| sq(t)),
            sql_opt(&self.thumbnail, |t| format!("X'{}'", hex(t))),
            sql_opt(&self.prep_time, |t| sq(&time(*t))),
            sql_opt(&self.publish_date, |d| sq(&date(*d))),
        )
    }
}

impl Story {
    pub fn json(&self) -> String {
        format!(
            r#"{{"recipe_id":{},"body":{}}}"#,
            self.recipe_id,
            js(&self.body)
        )
    }
    pub fn sql(&self) -> String {
        format!("({}, {})", self.recipe_id, sq(&self.body))
    }
}

impl Ingredient {
    pub fn json(&self) -> String {
        format!(
            r#"{{"id":{},"recipe_id":{},"position":{},"name":{},"quantity":{},"unit":{}}}"#,
            self.id,
            self.recipe_id,
            self.position,
            js(&self.name),
            opt(&self.quantity, |q| hundredths(*q)),
            opt(&self.unit, |u| js(u)),
        )
    }
    pub fn sql(&self) -> String {
        format!(
            "({}, {}, {}, {}, {}, {})",
            self.id,
            self.recipe_id,
            self.position,
            sq(&self.name),
            sql_opt(&self.quantity, |q| hundredths(*q)),
            sql_opt(&self.unit, |u| sq(u)),
        )
    }
}

/// The source database, in memory.
#[derive(Debug, Default, Clone)]
pub struct Model {
    pub users: BTreeMap<u64, User>,
    pub recipes: BTreeMap<i64, Recipe>,
    pub stories: BTreeMap<i64, Story>,
    pub ingredients: BTreeMap<i64, Ingredient>,
    /// Ingredient ids per recipe.
    pub by_recipe: BTreeMap<i64, BTreeSet<i64>>,
    pub next_user: u64,
    pub next_recipe: i64,
    pub next_ingredient: i64,
    pub next_audit: i64,
}

/// Which source table a record is about, and the target keys it touches
/// (for the raw-upsert contender and the SELECT bound).
#[derive(Debug, Clone, Default)]
pub struct Touched {
    /// `global_users` keys.
    pub users: BTreeSet<u64>,
    /// `global_recipes` keys known from the record itself.
    pub recipes: BTreeSet<i64>,
    /// Authors whose name-bearing row changed: their recipes are found by a
    /// reverse lookup on `recipes.author_id`.
    pub authors: BTreeSet<u64>,
}

/// One generated DMS record.
#[derive(Debug, Clone)]
pub struct Generated {
    pub table: &'static str,
    pub operation: &'static str,
    pub payload: Vec<u8>,
}

/// What the generator produced.
#[derive(Debug)]
pub struct Workload {
    /// Batches of deliveries, in stream order.
    pub batches: Vec<Vec<Delivery>>,
    /// Per batch, the target keys it touches.
    pub touched: Vec<Touched>,
    /// Records per `table operation`.
    pub mix: BTreeMap<String, usize>,
    /// The source's final state.
    pub model: Model,
    /// The source's initial state (before the first record).
    pub initial: Model,
}

impl Workload {
    /// Per batch, the target keys it touches as text: `global_users` keys,
    /// and `global_recipes` keys (the record's own, and the recipes of the
    /// authors whose name changed, by the source's final state). What a
    /// raw-write baseline rewrites with the final rows or documents.
    pub fn touched_keys(&self) -> Vec<(Vec<String>, Vec<String>)> {
        let mut by_author: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
        for r in self.model.recipes.values() {
            if let Some(a) = r.author_id {
                by_author.entry(a).or_default().push(r.id);
            }
        }
        self.touched
            .iter()
            .map(|t| {
                let mut recipes: BTreeSet<i64> = t.recipes.clone();
                for a in &t.authors {
                    recipes.extend(by_author.get(a).into_iter().flatten());
                }
                (
                    t.users.iter().map(u64::to_string).collect(),
                    recipes.iter().map(i64::to_string).collect(),
                )
            })
            .collect()
    }
}

/// Sizes of the initial data set.
#[derive(Debug, Clone, Copy)]
pub struct DataSet {
    pub users: u64,
    pub recipes: i64,
}

impl DataSet {
    /// A data set in proportion to the number of records (at least 1,000
    /// recipes, at most 100,000): every batch re-reads a realistic share.
    pub fn for_records(total: usize) -> DataSet {
        let recipes = (total as i64 / 5).clamp(1_000, 100_000);
        DataSet {
            users: (recipes as u64 / 5).max(200),
            recipes,
        }
    }
}

fn story_body(rng: &mut Rng) -> String {
    let words = rng.range(40, 260);
    let mut s = String::new();
    for i in 0..words {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(rng.pick::<&str>(&WORDS));
    }
    s.push('.');
    s
}

fn tags(rng: &mut Rng) -> Option<String> {
    match rng.below(10) {
        0..=1 => None,
        2 => Some(r#"{"cuisine":"thai","spicy":true}"#.to_owned()),
        _ => {
            let n = rng.range(1, 3);
            let t: Vec<String> = (0..n).map(|_| js(rng.pick::<&str>(&TAGS))).collect();
            Some(format!("[{}]", t.join(",")))
        }
    }
}

impl Model {
    fn new_user(&mut self, rng: &mut Rng, micros: i64) -> User {
        self.next_user += 1;
        let first = rng.pick(&FIRST);
        let last = rng.pick(&LAST);
        User {
            id: self.next_user,
            name: format!("{first} {last}"),
            email: (!rng.chance(0.15))
                .then(|| format!("{}.{}{}@Example.COM", first, last, self.next_user)),
            created_at: micros,
            is_active: u8::from(!rng.chance(0.1)),
        }
    }

    fn new_recipe(&mut self, rng: &mut Rng, secs: i64) -> Recipe {
        self.next_recipe += 1;
        let author_id = if self.users.is_empty() || rng.chance(0.02) {
            None
        } else {
            Some(rng.range(1, self.next_user))
        };
        let status = match rng.below(10) {
            0..=6 => "published",
            7..=8 => "draft",
            _ => "archived",
        };
        Recipe {
            id: self.next_recipe,
            author_id,
            title: format!("{} {}", rng.pick(&ADJ), rng.pick(&DISH)),
            status,
            servings: (!rng.chance(0.1)).then(|| rng.range(1, 12) as i32),
            rating: (!rng.chance(0.2)).then(|| rng.range(100, 500) as u32),
            calories: (!rng.chance(0.2)).then(|| rng.range(100, 1800) as f64 / 2.0),
            created_at: secs,
            updated_at: secs,
            external_ref: rng.chance(0.5).then(|| 5_000_000_000 + rng.below(1 << 40)),
            tags: tags(rng),
            thumbnail: rng.chance(0.3).then(|| {
                (0..rng.range(4, 16))
                    .map(|_| rng.below(256) as u8)
                    .collect()
            }),
            prep_time: (!rng.chance(0.2)).then(|| rng.range(5, 180) as u32 * 60),
            publish_date: (status == "published").then_some(secs / 86_400),
        }
    }

    fn new_ingredient(&mut self, rng: &mut Rng, recipe_id: i64, position: i32) -> Ingredient {
        self.next_ingredient += 1;
        Ingredient {
            id: self.next_ingredient,
            recipe_id,
            position,
            name: rng.pick(&INGREDIENT).to_string(),
            quantity: (!rng.chance(0.1)).then(|| rng.range(1, 100_000) as u32),
            unit: (!rng.chance(0.1)).then(|| *rng.pick(&UNIT)),
        }
    }

    fn add_ingredient(&mut self, i: Ingredient) {
        self.by_recipe.entry(i.recipe_id).or_default().insert(i.id);
        self.ingredients.insert(i.id, i);
    }

    fn remove_ingredient(&mut self, id: i64) -> Option<Ingredient> {
        let i = self.ingredients.remove(&id)?;
        if let Some(s) = self.by_recipe.get_mut(&i.recipe_id) {
            s.remove(&id);
        }
        Some(i)
    }

    /// The initial data set.
    pub fn initial(rng: &mut Rng, size: DataSet) -> Model {
        let mut m = Model::default();
        for i in 0..size.users {
            let u = m.new_user(rng, i as i64 * 7_919_000_123);
            m.users.insert(u.id, u);
        }
        for i in 0..size.recipes {
            let r = m.new_recipe(rng, 60_000_000 + i * 1_300);
            let id = r.id;
            m.recipes.insert(id, r);
            if rng.chance(0.8) {
                let body = story_body(rng);
                m.stories.insert(
                    id,
                    Story {
                        recipe_id: id,
                        body,
                    },
                );
            }
            for p in 0..rng.range(2, 10) {
                let ing = m.new_ingredient(rng, id, p as i32 + 1);
                m.add_ingredient(ing);
            }
        }
        m
    }

    /// An existing recipe id, skewed: 30% of picks go to the hottest 2%.
    fn pick_recipe(&self, rng: &mut Rng) -> Option<i64> {
        for _ in 0..50 {
            let max = self.next_recipe.max(1) as u64;
            let id = if rng.chance(0.3) {
                rng.range(1, (max / 50).max(1))
            } else {
                rng.range(1, max)
            } as i64;
            if self.recipes.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    fn pick_user(&self, rng: &mut Rng) -> Option<u64> {
        for _ in 0..50 {
            let id = rng.range(1, self.next_user.max(1));
            if self.users.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    fn pick_ingredient(&self, rng: &mut Rng) -> Option<i64> {
        let r = self.pick_recipe(rng)?;
        let ids = self.by_recipe.get(&r)?;
        if ids.is_empty() {
            return None;
        }
        let n = rng.below(ids.len() as u64) as usize;
        ids.iter().nth(n).copied()
    }

    /// Multi-row INSERT statements loading this state into `recipes_src`.
    pub fn load_sql(&self, rows_per_statement: usize) -> Vec<String> {
        fn chunks(out: &mut Vec<String>, head: &str, rows: impl Iterator<Item = String>, n: usize) {
            let mut stmt = String::new();
            let mut count = 0;
            for r in rows {
                if count == 0 {
                    stmt.push_str(head);
                } else {
                    stmt.push_str(", ");
                }
                stmt.push_str(&r);
                count += 1;
                if count == n {
                    out.push(std::mem::take(&mut stmt));
                    count = 0;
                }
            }
            if count > 0 {
                out.push(stmt);
            }
        }
        let mut out = Vec::new();
        chunks(
            &mut out,
            "INSERT INTO users (id, name, email, created_at, is_active) VALUES ",
            self.users.values().map(User::sql),
            rows_per_statement,
        );
        chunks(
            &mut out,
            "INSERT INTO recipes (id, author_id, title, status, servings, rating, calories, created_at, updated_at, external_ref, tags, thumbnail, prep_time, publish_date) VALUES ",
            self.recipes.values().map(Recipe::sql),
            rows_per_statement,
        );
        chunks(
            &mut out,
            "INSERT INTO recipe_stories (recipe_id, body) VALUES ",
            self.stories.values().map(Story::sql),
            rows_per_statement,
        );
        chunks(
            &mut out,
            "INSERT INTO ingredients (id, recipe_id, position, name, quantity, unit) VALUES ",
            self.ingredients.values().map(Ingredient::sql),
            rows_per_statement,
        );
        out
    }
}

/// Writes DMS documents for changes to the model.
struct Writer {
    /// Milliseconds since 2026-11-20 00:00 (the CDC clock).
    clock_ms: i64,
    transaction_id: u64,
    record_in_tx: u64,
    prev: Option<(u64, u64)>,
    binlog_pos: u64,
    out: Vec<(Generated, Touched)>,
}

impl Writer {
    fn begin(&mut self) {
        self.transaction_id += 17;
        self.record_in_tx = 0;
        self.clock_ms += 3;
    }

    fn commit(&mut self) {
        self.prev = Some((self.transaction_id, self.record_in_tx));
    }

    fn stamp(&self) -> (String, String) {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 11, 20)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("valid date")
            + chrono::Duration::milliseconds(self.clock_ms);
        (
            t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn data(
        &mut self,
        table: &'static str,
        operation: &'static str,
        key: &str,
        after: String,
        before: Option<String>,
        touched: Touched,
    ) {
        self.record_in_tx += 1;
        let start = self.binlog_pos;
        self.binlog_pos += 40 + after.len() as u64 / 3;
        let (timestamp, commit) = self.stamp();
        let mut doc = String::with_capacity(after.len() * 2 + 600);
        doc.push_str(r#"{"data":"#);
        doc.push_str(&after);
        if let Some(b) = &before {
            doc.push_str(r#","before-image":"#);
            doc.push_str(b);
        }
        let _ = write!(
            doc,
            r#","metadata":{{"timestamp":"{timestamp}","record-type":"data","operation":"{operation}","partition-key-type":"primary-key","partition-key-value":"{SCHEMA}.{table}.{key}","schema-name":"{SCHEMA}","table-name":"{table}","transaction-id":{tx},"commit-timestamp":"{commit}","stream-position":"mysql-bin-changelog.000024:{start}:-1:{end}:{tx}:mysql-bin-changelog.000024:{start}","transaction-record-id":{rec}"#,
            tx = self.transaction_id,
            end = self.binlog_pos,
            rec = self.record_in_tx,
        );
        if let Some((ptx, prec)) = self.prev {
            let _ = write!(
                doc,
                r#","prev-transaction-id":{ptx},"prev-transaction-record-id":{prec}"#
            );
        }
        doc.push_str("}}\n");
        self.out.push((
            Generated {
                table,
                operation,
                payload: doc.into_bytes(),
            },
            touched,
        ));
    }
}

fn touch_users(id: u64) -> Touched {
    Touched {
        users: [id].into(),
        ..Default::default()
    }
}

fn touch_recipes(ids: &[i64]) -> Touched {
    Touched {
        recipes: ids.iter().copied().collect(),
        ..Default::default()
    }
}

/// Generates `batches` x `records` DMS records over an initial data set,
/// mutating the model; returns the workload with the model in its final state.
pub fn generate(seed: u64, size: DataSet, batches: usize, records: usize) -> Workload {
    let mut rng = Rng::new(seed);
    let mut model = Model::initial(&mut rng, size);
    let initial = model.clone();
    let total = batches * records;
    let mut w = Writer {
        clock_ms: 0,
        transaction_id: 8_324_128_402,
        record_in_tx: 0,
        prev: None,
        binlog_pos: 5120,
        out: Vec::with_capacity(total + 16),
    };
    let now_secs = |w: &Writer| 220_000_000 + w.clock_ms / 1000;
    while w.out.len() < total {
        w.begin();
        match rng.below(100) {
            // A new user.
            0..=2 => {
                let u = model.new_user(&mut rng, now_secs(&w) * 1_000_000 + 123_456);
                let t = Touched {
                    users: [u.id].into(),
                    authors: [u.id].into(),
                    ..Default::default()
                };
                w.data("users", "insert", &u.id.to_string(), u.json(), None, t);
                model.users.insert(u.id, u);
            }
            // A user changes: the name (which global_recipes reads) or other columns.
            3..=9 => {
                let Some(id) = model.pick_user(&mut rng) else {
                    continue;
                };
                let before = model.users[&id].clone();
                let mut after = before.clone();
                let mut t = touch_users(id);
                if rng.chance(0.3) {
                    after.name = format!("{} {}", rng.pick(&FIRST), rng.pick(&LAST));
                    if after.name != before.name {
                        t.authors.insert(id);
                    }
                } else if rng.chance(0.7) {
                    after.email = Some(format!("user{}.{}@example.org", id, rng.below(1000)));
                } else {
                    after.is_active = 1 - after.is_active;
                }
                if after == before {
                    t = Touched::default(); // nothing the mapping reads changed
                }
                w.data(
                    "users",
                    "update",
                    &id.to_string(),
                    after.json(),
                    Some(before.json()),
                    t,
                );
                model.users.insert(id, after);
            }
            // A user is deleted (soft delete in the target; recipes lose the author name).
            10 => {
                let Some(id) = model.pick_user(&mut rng) else {
                    continue;
                };
                let u = model.users.remove(&id).expect("picked");
                let t = Touched {
                    users: [id].into(),
                    authors: [id].into(),
                    ..Default::default()
                };
                w.data("users", "delete", &id.to_string(), u.json(), None, t);
            }
            // A new recipe with its story and ingredients, in one transaction.
            11..=15 => {
                let r = model.new_recipe(&mut rng, now_secs(&w));
                let id = r.id;
                w.data(
                    "recipes",
                    "insert",
                    &id.to_string(),
                    r.json(),
                    None,
                    touch_recipes(&[id]),
                );
                model.recipes.insert(id, r);
                if rng.chance(0.8) {
                    let s = Story {
                        recipe_id: id,
                        body: story_body(&mut rng),
                    };
                    w.data(
                        "recipe_stories",
                        "insert",
                        &id.to_string(),
                        s.json(),
                        None,
                        touch_recipes(&[id]),
                    );
                    model.stories.insert(id, s);
                }
                for p in 0..rng.range(2, 8) {
                    let i = model.new_ingredient(&mut rng, id, p as i32 + 1);
                    w.data(
                        "ingredients",
                        "insert",
                        &i.id.to_string(),
                        i.json(),
                        None,
                        touch_recipes(&[id]),
                    );
                    model.add_ingredient(i);
                }
            }
            // A recipe is edited (before image with every column: ColumnFilter = all).
            16..=45 => {
                let Some(id) = model.pick_recipe(&mut rng) else {
                    continue;
                };
                let before = model.recipes[&id].clone();
                let mut after = before.clone();
                after.updated_at = now_secs(&w);
                match rng.below(10) {
                    // Only updated_at: no column the mapping reads changes.
                    0..=1 => {}
                    2..=4 => after.title = format!("{} {}", rng.pick(&ADJ), rng.pick(&DISH)),
                    5..=6 => after.rating = Some(rng.range(100, 500) as u32),
                    7 => {
                        after.status = match before.status {
                            "published" => "archived",
                            _ => "published",
                        };
                        after.publish_date = Some(now_secs(&w) / 86_400);
                    }
                    8 => after.tags = tags(&mut rng),
                    _ => after.servings = Some(rng.range(1, 12) as i32),
                }
                let same = Recipe {
                    updated_at: before.updated_at,
                    ..after.clone()
                } == before;
                // An update of columns the mapping does not read touches nothing.
                let t = if same {
                    Touched::default()
                } else {
                    touch_recipes(&[id])
                };
                w.data(
                    "recipes",
                    "update",
                    &id.to_string(),
                    after.json(),
                    Some(before.json()),
                    t,
                );
                model.recipes.insert(id, after);
            }
            // A recipe is deleted with its ingredients and story.
            46 => {
                let Some(id) = model.pick_recipe(&mut rng) else {
                    continue;
                };
                let ids: Vec<i64> = model
                    .by_recipe
                    .get(&id)
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default();
                for i in ids {
                    let ing = model.remove_ingredient(i).expect("indexed");
                    w.data(
                        "ingredients",
                        "delete",
                        &i.to_string(),
                        ing.json(),
                        None,
                        touch_recipes(&[id]),
                    );
                }
                if let Some(s) = model.stories.remove(&id) {
                    w.data(
                        "recipe_stories",
                        "delete",
                        &id.to_string(),
                        s.json(),
                        None,
                        touch_recipes(&[id]),
                    );
                }
                let r = model.recipes.remove(&id).expect("picked");
                w.data(
                    "recipes",
                    "delete",
                    &id.to_string(),
                    r.json(),
                    None,
                    touch_recipes(&[id]),
                );
            }
            // A story is rewritten (a LOB: the before image holds only the key).
            47..=55 => {
                let Some(id) = model.pick_recipe(&mut rng) else {
                    continue;
                };
                let s = Story {
                    recipe_id: id,
                    body: story_body(&mut rng),
                };
                let op = if model.stories.contains_key(&id) {
                    "update"
                } else {
                    "insert"
                };
                let before = (op == "update").then(|| format!(r#"{{"recipe_id":{id}}}"#));
                w.data(
                    "recipe_stories",
                    op,
                    &id.to_string(),
                    s.json(),
                    before,
                    touch_recipes(&[id]),
                );
                model.stories.insert(id, s);
            }
            // An ingredient changes.
            56..=79 => {
                let Some(i) = model.pick_ingredient(&mut rng) else {
                    continue;
                };
                let before = model.ingredients[&i].clone();
                let mut after = before.clone();
                if rng.chance(0.7) {
                    after.quantity = Some(rng.range(1, 100_000) as u32);
                } else {
                    after.name = rng.pick(&INGREDIENT).to_string();
                }
                let t = if after == before {
                    Touched::default()
                } else {
                    touch_recipes(&[after.recipe_id])
                };
                w.data(
                    "ingredients",
                    "update",
                    &i.to_string(),
                    after.json(),
                    Some(before.json()),
                    t,
                );
                model.ingredients.insert(i, after);
            }
            // An ingredient is added.
            80..=84 => {
                let Some(r) = model.pick_recipe(&mut rng) else {
                    continue;
                };
                let pos = model.by_recipe.get(&r).map(|s| s.len()).unwrap_or(0) as i32 + 1;
                let i = model.new_ingredient(&mut rng, r, pos);
                w.data(
                    "ingredients",
                    "insert",
                    &i.id.to_string(),
                    i.json(),
                    None,
                    touch_recipes(&[r]),
                );
                model.add_ingredient(i);
            }
            // An ingredient is removed.
            85..=88 => {
                let Some(i) = model.pick_ingredient(&mut rng) else {
                    continue;
                };
                let ing = model.remove_ingredient(i).expect("picked");
                w.data(
                    "ingredients",
                    "delete",
                    &i.to_string(),
                    ing.json(),
                    None,
                    touch_recipes(&[ing.recipe_id]),
                );
            }
            // An ingredient moves to another recipe: both parents are rebuilt.
            89..=90 => {
                let (Some(i), Some(to)) =
                    (model.pick_ingredient(&mut rng), model.pick_recipe(&mut rng))
                else {
                    continue;
                };
                let before = model.remove_ingredient(i).expect("picked");
                let mut after = before.clone();
                after.recipe_id = to;
                after.position = 99;
                w.data(
                    "ingredients",
                    "update",
                    &i.to_string(),
                    after.json(),
                    Some(before.json()),
                    touch_recipes(&[before.recipe_id, to]),
                );
                model.add_ingredient(after);
            }
            // A table the mapping does not read.
            _ => {
                model.next_audit += 1;
                let a = format!(r#"{{"id":{},"action":"recipe.viewed"}}"#, model.next_audit);
                w.data(
                    "audit_log",
                    "insert",
                    &model.next_audit.to_string(),
                    a,
                    None,
                    Touched::default(),
                );
            }
        }
        w.commit();
    }
    w.out.truncate(total);

    let mut mix = BTreeMap::new();
    let mut touched = Vec::with_capacity(batches);
    let mut batches = Vec::with_capacity(batches);
    let mut seq = 0u64;
    for chunk in w.out.chunks(records.max(1)) {
        let mut batch = Vec::with_capacity(chunk.len());
        let mut t = Touched::default();
        for (g, tc) in chunk {
            *mix.entry(format!("{} {}", g.table, g.operation))
                .or_insert(0) += 1;
            t.users.extend(&tc.users);
            t.recipes.extend(&tc.recipes);
            t.authors.extend(&tc.authors);
            seq += 1;
            batch.push(delivery(seq, &g.table_key(), g.payload.clone()));
        }
        batches.push(batch);
        touched.push(t);
    }
    Workload {
        batches,
        touched,
        mix,
        model,
        initial,
    }
}

impl Generated {
    fn table_key(&self) -> String {
        format!("{SCHEMA}.{}", self.table)
    }
}

/// The error of a bench step.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// Applies the full load of `model` ([`full_load`]) through `engine`, in
/// batches of 10,000; the records applied. Every record must apply.
pub async fn apply_full_load<S, T>(
    engine: &dms_cdc::engine::Engine<S, T>,
    model: &Model,
) -> Result<usize, BenchError>
where
    S: dms_cdc::source::Source,
    T: dms_cdc::target::Target,
{
    let deliveries: Vec<Delivery> = full_load(model)
        .into_iter()
        .enumerate()
        .map(|(i, d)| delivery(i as u64 + 1, "load", d))
        .collect();
    for batch in deliveries.chunks(10_000) {
        let report = engine.process(batch).await;
        if report.retry_error.is_some() || report.summary.quarantined_count > 0 {
            return Err(format!("full load failed: {:?}", report.retry_error).into());
        }
    }
    Ok(deliveries.len())
}

/// dms-cdc over `batches` of a clean workload (`e2e_postgres`,
/// `e2e_opensearch`): the rows or documents written and deleted. A batch
/// that fails, or quarantines anything, is an error.
pub async fn process_clean<S, T>(
    engine: &dms_cdc::engine::Engine<S, T>,
    batches: &[Vec<Delivery>],
) -> Result<usize, BenchError>
where
    S: dms_cdc::source::Source,
    T: dms_cdc::target::Target,
{
    let mut written = 0;
    for batch in batches {
        let report = engine.process(batch).await;
        if let Some(e) = report.retry_error {
            return Err(format!("dms-cdc batch failed: {e}").into());
        }
        if report.summary.quarantined_count > 0 {
            return Err(format!(
                "dms-cdc quarantined {} records of a clean workload",
                report.summary.quarantined_count
            )
            .into());
        }
        written += report.summary.upserts.values().sum::<usize>()
            + report.summary.deletes.values().sum::<usize>();
    }
    Ok(written)
}

/// The options of the target benches (`e2e_postgres`, `e2e_opensearch`).
pub struct TargetBenchArgs {
    /// Batches per round.
    pub batches: usize,
    /// Records per batch.
    pub records: usize,
    /// Keys per source query and rows per statement.
    pub chunk: usize,
    /// The workload's seed.
    pub seed: u64,
    /// Rounds (the best is reported).
    pub rounds: usize,
}

/// `--batches N --records N --chunk N --seed N --rounds N` from the
/// process's arguments (`--bench` and non-options are ignored).
pub fn parse_target_bench_args() -> Result<TargetBenchArgs, BenchError> {
    let mut args = TargetBenchArgs {
        batches: 10,
        records: 10_000,
        chunk: 500,
        seed: 42,
        rounds: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> Result<usize, BenchError> {
            it.next()
                .ok_or_else(|| format!("{name} needs a value"))?
                .parse::<usize>()
                .map_err(|e| format!("{name}: {e}").into())
        };
        match a.as_str() {
            "--batches" => args.batches = value("--batches")?.max(1),
            "--records" => args.records = value("--records")?.max(1),
            "--chunk" => args.chunk = value("--chunk")?.clamp(1, 65_535),
            "--seed" => args.seed = value("--seed")? as u64,
            "--rounds" => args.rounds = value("--rounds")?.max(1),
            "--bench" => {}
            other if other.starts_with("--") => {
                return Err(format!("unknown option {other}").into())
            }
            _ => {}
        }
    }
    Ok(args)
}

/// Full-load (`load`) documents of the model's users and recipes, as DMS
/// writes them during the full load: what fills the target before CDC starts
/// (stories and ingredients are re-queried with their recipe).
pub fn full_load(model: &Model) -> Vec<Vec<u8>> {
    let doc = |table: &str, key: String, data: String| {
        format!(
            r#"{{"data":{data},"metadata":{{"timestamp":"2026-11-19T23:00:00.000000Z","record-type":"data","operation":"load","partition-key-type":"primary-key","partition-key-value":"{SCHEMA}.{table}.{key}","schema-name":"{SCHEMA}","table-name":"{table}"}}}}"#
        )
        .into_bytes()
    };
    model
        .users
        .values()
        .map(|u| doc("users", u.id.to_string(), u.json()))
        .chain(
            model
                .recipes
                .values()
                .map(|r| doc("recipes", r.id.to_string(), r.json())),
        )
        .collect()
}

/// The `n`-th delivery of the shard (56-digit, increasing sequence numbers).
pub fn delivery(n: u64, partition_key: &str, data: Vec<u8>) -> Delivery {
    Delivery {
        shard_id: ShardId(SHARD.into()),
        sequence_number: SequenceNumber::parse(&format!(
            "49590338271490256608559692538361571095921575{n:012}"
        ))
        .expect("a valid sequence number"),
        partition_key: partition_key.to_owned(),
        approximate_arrival_ms: Some(1_795_000_000_000 + n as i64),
        data,
    }
}

/// The compiled sample mapping.
pub fn mapping() -> (dms_cdc::mapping::Mapping, dms_cdc::mapping::Transforms) {
    let transforms = dms_cdc::mapping::Transforms::standard();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mapping.toml");
    let mapping =
        dms_cdc::mapping::Mapping::load(&path, &transforms).expect("fixtures/mapping.toml");
    (mapping, transforms)
}

/// A Lambda Kinesis event (JSON, as Lambda sends it) carrying `deliveries`.
pub fn kinesis_event_json(deliveries: &[Delivery]) -> Vec<u8> {
    use base64::Engine as _;
    let mut out = String::from(r#"{"Records":["#);
    for (i, d) in deliveries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let seq = d.sequence_number.as_str();
        let _ = write!(
            out,
            r#"{{"kinesis":{{"kinesisSchemaVersion":"1.0","partitionKey":{pk},"sequenceNumber":"{seq}","data":"{data}","approximateArrivalTimestamp":{ts:.3}}},"eventSource":"aws:kinesis","eventVersion":"1.0","eventID":"{shard}:{seq}","eventName":"aws:kinesis:record","invokeIdentityArn":"arn:aws:iam::123456789012:role/dms-cdc","awsRegion":"eu-west-1","eventSourceARN":"arn:aws:kinesis:eu-west-1:123456789012:stream/dms-cdc"}}"#,
            pk = js(&d.partition_key),
            data = base64::engine::general_purpose::STANDARD.encode(&d.data),
            ts = d.approximate_arrival_ms.unwrap_or(0) as f64 / 1000.0,
            shard = d.shard_id,
        );
    }
    out.push_str("]}");
    out.into_bytes()
}

// ------------------------------------------------------------------ shared by the bench binaries

/// The repository (fixtures/).
pub fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The machine's load averages (1, 5, 15 minutes), as `/proc/loadavg` gives them.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// CPU seconds (user + system) a process (this one with `None`) has used so far.
pub fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// The pid of the MariaDB server listening on `port` (started by the bench).
pub fn server_pid(port: u16) -> Option<u32> {
    let needle = format!("--port={port}");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd);
        (cmd.contains("mariadbd") || cmd.contains("mysqld"))
            .then_some(())
            .filter(|_| cmd.split('\0').any(|a| a == needle))
            .map(|_| pid)
    })
}

/// Replaces the source's rows with `model`'s, outside the binlog (the
/// stream must not see the load).
pub async fn load_source(
    pool: &mysql_async::Pool,
    model: &Model,
) -> Result<(), mysql_async::Error> {
    use mysql_async::prelude::*;
    let mut conn = pool.get_conn().await?;
    conn.query_drop("SET sql_log_bin = 0").await?;
    for t in ["ingredients", "recipe_stories", "recipes", "users"] {
        conn.query_drop(format!("DELETE FROM {t}")).await?;
    }
    for stmt in model.load_sql(1000) {
        conn.query_drop(stmt).await?;
    }
    conn.query_drop("SET sql_log_bin = 1").await?;
    Ok(())
}
