//! A generated workload on the sample source schema, and the check that the
//! target equals the mapping of the final source state, row for row.

use std::collections::BTreeSet;

use mysql_async::prelude::*;

use super::Rig;

/// legacy_id, title, author name, status code, rating, story, ingredients.
type RecipeRow = (
    i64,
    String,
    Option<String>,
    i64,
    String,
    Option<String>,
    String,
);

/// A small deterministic generator (no dependency on a random crate's stream).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// The ids that exist, so updates and deletes name real rows.
#[derive(Default)]
pub struct World {
    pub users: BTreeSet<u64>,
    recipes: BTreeSet<u64>,
    stories: BTreeSet<u64>,
    ingredients: BTreeSet<u64>,
    pub ever_users: BTreeSet<u64>,
    next_id: u64,
}

impl World {
    /// A world whose source already holds these rows (the workload updates
    /// and deletes them too); new ids start above `next_id`.
    pub fn with_rows(
        users: impl IntoIterator<Item = u64>,
        recipes: impl IntoIterator<Item = u64>,
        stories: impl IntoIterator<Item = u64>,
        ingredients: impl IntoIterator<Item = u64>,
        next_id: u64,
    ) -> World {
        let users: BTreeSet<u64> = users.into_iter().collect();
        World {
            ever_users: users.clone(),
            users,
            recipes: recipes.into_iter().collect(),
            stories: stories.into_iter().collect(),
            ingredients: ingredients.into_iter().collect(),
            next_id,
        }
    }
}

fn pick(set: &BTreeSet<u64>, rng: &mut Lcg) -> Option<u64> {
    if set.is_empty() {
        return None;
    }
    set.iter().nth(rng.next(set.len() as u64) as usize).copied()
}

/// One random statement on the source; returns the SQL and how many row changes it makes.
fn statement(w: &mut World, rng: &mut Lcg) -> Option<String> {
    w.next_id += 1;
    let id = w.next_id;
    let status = ["draft", "published", "published", "archived"][rng.next(4) as usize];
    Some(match rng.next(12) {
        0 => {
            w.users.insert(id);
            w.ever_users.insert(id);
            format!("INSERT INTO users VALUES ({id}, 'user {id}', 'U{id}@Example.com', '2026-01-02 03:04:05', 1)")
        }
        1 => format!(
            "UPDATE users SET name = 'renamed {id}' WHERE id = {}",
            pick(&w.users, rng)?
        ),
        2 => {
            let u = pick(&w.users, rng)?;
            w.users.remove(&u);
            format!("DELETE FROM users WHERE id = {u}")
        }
        3 | 4 => {
            w.recipes.insert(id);
            let author = pick(&w.users, rng).unwrap_or(0);
            format!(
                "INSERT INTO recipes (id, author_id, title, status, servings, rating, created_at, tags)
                 VALUES ({id}, {author}, 'recipe {id}', '{status}', {}, {}.{:02}, '2026-03-29 01:30:00', '[\"t{id}\"]')",
                rng.next(8),
                rng.next(5),
                rng.next(100)
            )
        }
        5 => format!(
            "UPDATE recipes SET status = '{status}', title = 'title {id}' WHERE id = {}",
            pick(&w.recipes, rng)?
        ),
        6 => {
            let author = pick(&w.users, rng)?;
            format!(
                "UPDATE recipes SET author_id = {author} WHERE id = {}",
                pick(&w.recipes, rng)?
            )
        }
        7 => {
            let r = pick(&w.recipes, rng)?;
            w.recipes.remove(&r);
            format!("DELETE FROM recipes WHERE id = {r}")
        }
        8 => {
            let r = pick(&w.recipes, rng)?;
            let body = "a long story ".repeat(rng.next(3000) as usize + 1);
            w.stories.insert(r);
            format!("REPLACE INTO recipe_stories VALUES ({r}, '{body}{id}')")
        }
        9 => {
            let r = pick(&w.recipes, rng)?;
            w.ingredients.insert(id);
            format!(
                "INSERT INTO ingredients VALUES ({id}, {r}, {}, 'ingredient {id}', {}.50, 'g')",
                rng.next(5),
                rng.next(900)
            )
        }
        10 => {
            // Re-parent a child, or change its position.
            let i = pick(&w.ingredients, rng)?;
            let r = pick(&w.recipes, rng)?;
            format!(
                "UPDATE ingredients SET recipe_id = {r}, position = {} WHERE id = {i}",
                rng.next(5)
            )
        }
        _ => {
            let i = pick(&w.ingredients, rng)?;
            w.ingredients.remove(&i);
            format!("DELETE FROM ingredients WHERE id = {i}")
        }
    })
}

/// Runs transactions of 1-5 statements until `changes` row changes were made.
pub async fn workload<T: super::targets::TestTarget>(
    rig: &Rig<T>,
    w: &mut World,
    rng: &mut Lcg,
    changes: u64,
) {
    let mut conn = rig.engine.source.pool().get_conn().await.unwrap();
    let mut made = 0;
    while made < changes {
        let size = rng.next(5) + 1;
        conn.query_drop("BEGIN").await.unwrap();
        for _ in 0..size {
            if let Some(sql) = statement(w, rng) {
                conn.query_drop(&sql).await.unwrap();
                made += conn.affected_rows().max(1);
            }
        }
        conn.query_drop("COMMIT").await.unwrap();
    }
}

/// Asserts that the target equals the mapping of the final source state:
/// published recipes with author, story and ingredients; live users, and
/// deleted ones kept as soft-deleted rows.
pub async fn assert_target_equals_source(rig: &Rig, world: &World) {
    // The target equals the mapping of the final source state, row for row.
    let mut src = rig.engine.source.pool().get_conn().await.unwrap();
    let expected_recipes: Vec<RecipeRow> = src
        .query(
            "SELECT r.id, r.title, u.name, CASE r.status WHEN 'draft' THEN 0 WHEN 'published' THEN 1 ELSE 2 END,
                    CAST(r.rating AS CHAR), s.body,
                    COALESCE((SELECT GROUP_CONCAT(CONCAT(i.name, ':', CAST(i.quantity AS DOUBLE)) ORDER BY i.position, i.id)
                              FROM ingredients i WHERE i.recipe_id = r.id), '')
             FROM recipes r LEFT JOIN users u ON u.id = r.author_id LEFT JOIN recipe_stories s ON s.recipe_id = r.id
             WHERE r.status = 'published' ORDER BY r.id",
        )
        .await
        .unwrap();
    let actual_recipes: Vec<RecipeRow> = rig
        .target_rows(
            "SELECT legacy_id, title, author_name, status_code, CAST(rating AS CHAR), story, ingredients
             FROM global_recipes ORDER BY legacy_id",
        )
        .await
        .iter()
        .map(|r| {
            let json: serde_json::Value = serde_json::from_str(&r.get::<String, _>(6).unwrap()).unwrap();
            let items: Vec<String> = json
                .as_array()
                .unwrap()
                .iter()
                .map(|i| format!("{}:{}", i["name"].as_str().unwrap(), i["qty"]))
                .collect();
            (r.get(0).unwrap(), r.get(1).unwrap(), r.get(2).unwrap(), r.get(3).unwrap(), r.get(4).unwrap(), r.get(5).unwrap(), items.join(","))
        })
        .collect();
    assert!(
        expected_recipes.len() > 50,
        "a meaningful number of published recipes: {}",
        expected_recipes.len()
    );
    assert_eq!(actual_recipes.len(), expected_recipes.len());
    for (a, e) in actual_recipes.iter().zip(&expected_recipes) {
        assert_eq!(a, e);
    }

    // Users: live ones as in the source; deleted ones kept as soft-deleted rows.
    let expected_users: Vec<(u64, String, String)> = src
        .query("SELECT id, name, LOWER(email) FROM users ORDER BY id")
        .await
        .unwrap();
    let actual_users: Vec<(u64, String, String, i64)> = rig
        .target_rows(
            "SELECT user_id, display_name, email, is_deleted FROM global_users ORDER BY user_id",
        )
        .await
        .iter()
        .map(|r| {
            (
                r.get(0).unwrap(),
                r.get(1).unwrap(),
                r.get(2).unwrap(),
                r.get(3).unwrap(),
            )
        })
        .collect();
    let live: Vec<(u64, String, String)> = actual_users
        .iter()
        .filter(|u| u.3 == 0)
        .map(|u| (u.0, u.1.clone(), u.2.clone()))
        .collect();
    assert_eq!(live, expected_users);
    let deleted: BTreeSet<u64> = actual_users
        .iter()
        .filter(|u| u.3 == 1)
        .map(|u| u.0)
        .collect();
    let gone: BTreeSet<u64> = world.ever_users.difference(&world.users).copied().collect();
    assert_eq!(deleted, gone);
}
