//! Nested documents, for every target adapter (MySQL, PostgreSQL and a
//! real OpenSearch node, one shared test body):
//! a product row holds its shop as an object, its tags as a scalar array
//! and its variants as objects that hold their images (children of
//! children). A change at any level rebuilds exactly the products it
//! belongs to, found level by level (images -> variants -> products), from
//! the after and the before image (re-parenting), with one source query
//! per level per chunk.

mod support;

use dms_cdc::dms::Value;
use dms_cdc::engine::{Engine, Outcome, Settings};
use dms_cdc::mapping::{Mapping, Transforms};
use dms_cdc::target::{MysqlTarget, Target, TargetRows};
use serde_json::{json, Value as J};
use support::targets::TestTarget;
use support::{record, rig, Rig, FUNCTION_NAME};

/// The target table in SQL (`search_products`), JSON columns of `json`.
fn products_ddl(json: &str, version: &str) -> String {
    format!(
        "CREATE TABLE search_products (product_id BIGINT PRIMARY KEY, title VARCHAR(100) NOT NULL, \
           shop {json} NULL, shop_name VARCHAR(50) NULL, variants {json} NULL, tags {json} NULL, \
           src_version {version})"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_documents_nest_and_follow_changes_at_every_level() {
    let mut rig = rig(100).await;
    rig.target_sql(&products_ddl(
        MysqlTarget::JSON_TYPE,
        MysqlTarget::VERSION_TYPE,
    ))
    .await;
    let target = MysqlTarget::new(rig.target_pool.clone(), FUNCTION_NAME, 100);
    a_change_at_any_level_rebuilds_the_documents_it_belongs_to(&mut rig, target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_documents_nest_and_follow_changes_at_every_level() {
    use dms_cdc::postgres::PostgresTarget;
    let mut rig = rig(100).await;
    let pg = dms_cdc::local::PostgreSql::start().unwrap();
    pg.create_database("global").unwrap();
    pg.run_sql(
        "global",
        &products_ddl(PostgresTarget::JSON_TYPE, PostgresTarget::VERSION_TYPE),
    )
    .unwrap();
    let target = PostgresTarget::new(
        dms_cdc::postgres::pool(&pg.url("global"), 2).unwrap(),
        FUNCTION_NAME,
        100,
    );
    a_change_at_any_level_rebuilds_the_documents_it_belongs_to(&mut rig, target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_documents_nest_and_follow_changes_at_every_level() {
    let mut rig = rig(100).await;
    let node = dms_cdc::opensearch::local::OpenSearch::start().unwrap();
    let config =
        dms_cdc::opensearch::Config::from_url(&format!("{}?replicas=0", node.url())).unwrap();
    let target = dms_cdc::opensearch::OpenSearchTarget::new(config, FUNCTION_NAME).unwrap();
    a_change_at_any_level_rebuilds_the_documents_it_belongs_to(&mut rig, target).await;
}

const MAPPING: &str = r#"
[source]
schema = "recipes_src"
before_image_field = "before-image"

[source.tables.shops]
key = ["id"]

[source.tables.products]
key = ["id"]

[source.tables.variants]
key = ["id"]

[source.tables.variant_images]
key = ["id"]

[source.tables.product_tags]
key = ["product_id", "tag"]

[[target]]
table = "search_products"
root = "products"
key = ["product_id"]
version = "src_version"

[[target.join]]
name = "shop"
table = "shops"
on = { id = "shop_id" }

[[target.children]]
name = "variants"
table = "variants"
on = { product_id = "id" }
order_by = ["position"]
fields = { sku = "sku", price = "price" }

[[target.children]]
name = "images"
table = "variant_images"
parent = "variants"
on = { variant_id = "id" }
order_by = ["position"]
fields = { url = "url" }

[[target.children]]
name = "tags"
table = "product_tags"
on = { product_id = "id" }
order_by = ["position"]
field = "tag"

[[target.column]]
name = "product_id"
from = "id"

[[target.column]]
name = "title"
from = "title"

[[target.column]]
name = "shop"
object = "shop"
fields = { id = "id", name = "name", country = "country" }

[[target.column]]
name = "shop_name"
from = "shop.name"

[[target.column]]
name = "variants"
children = "variants"

[[target.column]]
name = "tags"
children = "tags"
"#;

/// The products' documents on the target, read through `TargetRows`:
/// id -> (title, shop, shop_name, variants, tags).
async fn documents<T: TargetRows>(target: &T, mapping: &Mapping) -> Vec<(i64, J)> {
    let table = &mapping.targets[0];
    let keys: Vec<Vec<Value>> = [10, 20, 30]
        .iter()
        .map(|k: &i64| vec![Value::Text(k.to_string())])
        .collect();
    let names = table.column_names();
    let at = |name: &str| names.iter().position(|n| *n == name).unwrap();
    let mut rows: Vec<(i64, J)> = target
        .rows_by_key(table, &keys)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let json = |name: &str| {
                r[at(name)]
                    .as_deref()
                    .map(|t| serde_json::from_str::<J>(t).unwrap())
                    .unwrap_or(J::Null)
            };
            (
                r[at("product_id")].as_deref().unwrap().parse().unwrap(),
                json!({
                    "title": r[at("title")], "shop": json("shop"), "shop_name": r[at("shop_name")],
                    "variants": json("variants"), "tags": json("tags"),
                }),
            )
        })
        .collect();
    rows.sort_by_key(|(id, _)| *id);
    rows
}

/// Numbers compared by value (`9.5` = `9.50`).
fn normal(v: &J) -> J {
    match v {
        J::Number(n) => json!(n.as_f64()),
        J::Array(a) => J::Array(a.iter().map(normal).collect()),
        J::Object(o) => J::Object(o.iter().map(|(k, v)| (k.clone(), normal(v))).collect()),
        other => other.clone(),
    }
}

async fn a_change_at_any_level_rebuilds_the_documents_it_belongs_to<T: Target + TargetRows>(
    rig: &mut Rig<MysqlTarget>,
    target: T,
) {
    rig.source_sql(
        "CREATE TABLE shops (id BIGINT PRIMARY KEY, name VARCHAR(50) NOT NULL, country CHAR(2) NOT NULL); \
         CREATE TABLE products (id BIGINT PRIMARY KEY, shop_id BIGINT NOT NULL, title VARCHAR(100) NOT NULL, KEY (shop_id)); \
         CREATE TABLE variants (id BIGINT PRIMARY KEY, product_id BIGINT NOT NULL, sku VARCHAR(20) NOT NULL, \
           price DECIMAL(8,2) NOT NULL, position INT NOT NULL, KEY (product_id)); \
         CREATE TABLE variant_images (id BIGINT PRIMARY KEY, variant_id BIGINT NOT NULL, url VARCHAR(100) NOT NULL, \
           position INT NOT NULL, KEY (variant_id)); \
         CREATE TABLE product_tags (product_id BIGINT NOT NULL, tag VARCHAR(20) NOT NULL, position INT NOT NULL, \
           PRIMARY KEY (product_id, tag)); \
         INSERT INTO shops VALUES (1, 'North', 'SE'), (2, 'South', 'IT'); \
         INSERT INTO products VALUES (10, 1, 'Kettle'), (20, 2, 'Teapot'), (30, 1, 'Mug'); \
         INSERT INTO variants VALUES (101, 10, 'K-RED', 19.50, 2), (102, 10, 'K-BLU', 21.00, 1), (201, 20, 'T-1', 30.00, 1); \
         INSERT INTO variant_images VALUES (1001, 101, 'k-red-1.jpg', 1), (1002, 101, 'k-red-2.jpg', 2), \
           (1003, 102, 'k-blu.jpg', 1), (2001, 201, 't-1.jpg', 1); \
         INSERT INTO product_tags VALUES (10, 'steel', 2), (10, 'kitchen', 1), (20, 'china', 1)",
    )
    .await;
    let transforms = Transforms::standard();
    let mapping = Mapping::parse("nested.toml", MAPPING, &transforms).unwrap();
    target.prepare(&mapping).await.unwrap();
    let engine = Engine::new(
        mapping.clone(),
        transforms,
        rig.engine.source.clone(),
        target,
        Settings {
            function_name: FUNCTION_NAME.into(),
            chunk_size: 100,
        },
    );
    let product =
        |id: i64, shop: i64, title: &str| json!({"id": id, "shop_id": shop, "title": title});
    let apply = |rig: &mut Rig<MysqlTarget>, payloads: Vec<Vec<u8>>| {
        let batch: Vec<_> = payloads
            .into_iter()
            .map(|p| rig.delivery("shardId-000000000000", p))
            .collect();
        batch
    };

    // The products arrive: each document is built with every level.
    let batch = apply(
        rig,
        vec![
            record("insert", "products", product(10, 1, "Kettle"), None),
            record("insert", "products", product(20, 2, "Teapot"), None),
            record("insert", "products", product(30, 1, "Mug"), None),
        ],
    );
    let report = engine.process(&batch).await;
    assert!(
        report.outcomes.iter().all(|o| *o == Outcome::Applied),
        "{report:?}"
    );
    let docs = documents(&engine.target, &mapping).await;
    let kettle = json!({
        "title": "Kettle",
        "shop": {"id": 1, "name": "North", "country": "SE"},
        "shop_name": "North",
        "variants": [
            {"sku": "K-BLU", "price": 21.0, "images": [{"url": "k-blu.jpg"}]},
            {"sku": "K-RED", "price": 19.5, "images": [{"url": "k-red-1.jpg"}, {"url": "k-red-2.jpg"}]},
        ],
        "tags": ["kitchen", "steel"],
    });
    assert_eq!(normal(&docs[0].1), normal(&kettle), "{docs:#?}");
    assert_eq!(
        docs[2].1["variants"],
        json!([]),
        "a product without variants: {docs:#?}"
    );
    assert_eq!(docs[2].1["tags"], json!([]));

    // A grandchild changes: only its product is rebuilt, found through
    // its variant (one query per level).
    rig.source_sql("UPDATE variant_images SET url = 'k-red-1b.jpg' WHERE id = 1001")
        .await;
    let selects_before = rig.source_status("Com_stmt_execute").await;
    let batch = apply(
        rig,
        vec![record(
            "update",
            "variant_images",
            json!({"id": 1001, "variant_id": 101, "url": "k-red-1b.jpg", "position": 1}),
            Some(json!({"id": 1001, "variant_id": 101, "url": "k-red-1.jpg", "position": 1})),
        )],
    );
    let report = engine.process(&batch).await;
    assert!(
        report.outcomes.iter().all(|o| *o == Outcome::Applied),
        "{report:?}"
    );
    assert_eq!(
        report.summary.upserts.get("search_products"),
        Some(&1),
        "{report:?}"
    );
    // variants by image, then the product and its join, variants, images, tags.
    let selects = rig.source_status("Com_stmt_execute").await - selects_before;
    assert!(
        selects <= 6,
        "{selects} source queries for one image change"
    );
    let docs = documents(&engine.target, &mapping).await;
    assert_eq!(
        docs[0].1["variants"][1]["images"][0]["url"],
        json!("k-red-1b.jpg"),
        "{docs:#?}"
    );

    // An image moves to a variant of another product (re-parenting): both
    // products are rebuilt, from the after and the before image.
    rig.source_sql("UPDATE variant_images SET variant_id = 201, position = 2 WHERE id = 1002")
        .await;
    let batch = apply(
        rig,
        vec![record(
            "update",
            "variant_images",
            json!({"id": 1002, "variant_id": 201, "url": "k-red-2.jpg", "position": 2}),
            Some(json!({"id": 1002, "variant_id": 101, "url": "k-red-2.jpg", "position": 2})),
        )],
    );
    let report = engine.process(&batch).await;
    assert_eq!(
        report.summary.upserts.get("search_products"),
        Some(&2),
        "{report:?}"
    );
    let docs = documents(&engine.target, &mapping).await;
    assert_eq!(
        docs[0].1["variants"][1]["images"],
        json!([{"url": "k-red-1b.jpg"}]),
        "{docs:#?}"
    );
    assert_eq!(
        docs[1].1["variants"][0]["images"],
        json!([{"url": "t-1.jpg"}, {"url": "k-red-2.jpg"}]),
        "{docs:#?}"
    );

    // A variant is deleted (its images go with it), a tag is added, the
    // shop is renamed: each rebuilds its products.
    rig.source_sql(
        "DELETE FROM variants WHERE id = 102; DELETE FROM variant_images WHERE id = 1003; \
         INSERT INTO product_tags VALUES (20, 'gift', 0); UPDATE shops SET name = 'Nord' WHERE id = 1",
    )
    .await;
    let batch = apply(
        rig,
        vec![
            record(
                "delete",
                "variants",
                json!({"id": 102, "product_id": 10, "sku": "K-BLU", "price": "21.00", "position": 1}),
                None,
            ),
            record(
                "delete",
                "variant_images",
                json!({"id": 1003, "variant_id": 102, "url": "k-blu.jpg", "position": 1}),
                None,
            ),
            record(
                "insert",
                "product_tags",
                json!({"product_id": 20, "tag": "gift", "position": 0}),
                None,
            ),
            record(
                "update",
                "shops",
                json!({"id": 1, "name": "Nord", "country": "SE"}),
                Some(json!({"id": 1, "name": "North", "country": "SE"})),
            ),
        ],
    );
    let report = engine.process(&batch).await;
    assert!(
        report.outcomes.iter().all(|o| *o == Outcome::Applied),
        "{report:?}"
    );
    let docs = documents(&engine.target, &mapping).await;
    assert_eq!(
        normal(&docs[0].1),
        normal(&json!({
            "title": "Kettle",
            "shop": {"id": 1, "name": "Nord", "country": "SE"},
            "shop_name": "Nord",
            "variants": [{"sku": "K-RED", "price": 19.5, "images": [{"url": "k-red-1b.jpg"}]}],
            "tags": ["kitchen", "steel"],
        })),
        "{docs:#?}"
    );
    assert_eq!(docs[1].1["tags"], json!(["gift", "china"]));
    assert_eq!(docs[2].1["shop"]["name"], json!("Nord"));
}
