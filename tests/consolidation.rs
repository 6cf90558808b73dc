//! Several sources consolidated into one target, for every target adapter
//! (`mysql::`, `postgres::`): two PostgreSQL sources of the same schema
//! (two services' databases, with the same keys), their DMS tasks renaming
//! the schema to `recipes_eu` and `recipes_us`, one stream, one engine. The
//! changes of both, interleaved, land under their own `region`
//! discriminator: the re-queries read the right source, rows of the two
//! never collide, and a child's change rebuilds its own source's parent.
//! The sources come from one setting (`eu=postgres://... us=postgres://...`,
//! as `--source` and the functions take it); reconcile checks both sources
//! against the one target (0 differences), finds a drift planted in each
//! region by its region, and repair fixes it from the right source.

mod support;

use dms_cdc::adapter::SourceAdapter;
use dms_cdc::capture::{CaptureOptions, Sources};
use dms_cdc::dms::Delivery;
use dms_cdc::engine::{Engine, Outcome, Settings};
use dms_cdc::local::PostgreSql;
use dms_cdc::mapping::{Mapping, Transforms};
use dms_cdc::position::{SequenceNumber, ShardId};
use dms_cdc::reconcile::{reconcile, repair, Difference, ReconcileOptions};
use serde_json::json;
use support::targets::TestTarget;
use support::{root, FUNCTION_NAME};

every_target!(changes_of_two_sources_land_apart_in_one_target);

/// The function glue: one source in MariaDB and one in PostgreSQL, each
/// from its own secret (`DMS_CDC_SOURCE_SECRET_ID="eu=<id> us=<id>"`),
/// whose `engine` picks the adapter; one event of both, into one target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_reads_a_mysql_and_a_postgresql_source_from_their_secrets() {
    use dms_cdc::lambda::{Config, Connection, Function};
    let Some(moto) = support::moto::moto() else {
        return;
    };
    let (users, recipes) = (10u64, 20u64);
    let eu = dms_cdc::local::MariaDb::start(1).unwrap();
    eu.run_file(&root().join("fixtures/source.sql")).unwrap();
    eu.run_sql(&format!(
        "USE recipes_src; {}",
        support::generated::source_sql(users, recipes)
    ))
    .unwrap();
    let us = source(users, recipes);
    us.run_sql(
        "src",
        "UPDATE recipes_src.recipes SET title = 'US ' || title",
    )
    .unwrap();
    let client = moto.secrets_manager();
    for (name, secret) in [
        (
            "dms-cdc/eu",
            json!({"engine": "mariadb", "username": dms_cdc::local::TEST_USER,
                   "password": dms_cdc::local::TEST_PASSWORD, "host": "127.0.0.1",
                   "port": eu.port(), "dbname": "recipes_src"}),
        ),
        (
            "dms-cdc/us",
            json!({"engine": "aurora-postgresql", "username": dms_cdc::local::PG_USER,
                   "password": "unused", "host": "127.0.0.1", "port": us.port(), "dbname": "src"}),
        ),
    ] {
        client
            .create_secret()
            .name(name)
            .secret_string(secret.to_string())
            .send()
            .await
            .unwrap();
    }
    let target = PostgreSql::start().unwrap();
    target.create_database("global").unwrap();
    target
        .run_sql(
            "global",
            "CREATE TABLE all_recipes (region VARCHAR(8) NOT NULL, legacy_id BIGINT NOT NULL, \
               title VARCHAR(200) NOT NULL, author_name VARCHAR(100) NULL, ingredients JSONB NULL, \
               src_version VARCHAR(255) NULL, PRIMARY KEY (region, legacy_id))",
        )
        .unwrap();
    let config = Config {
        mapping: None,
        source: Connection::Secret {
            secret_id: "eu=dms-cdc/eu us=dms-cdc/us".into(),
            database: None,
        },
        target: Connection::Url(target.url("global")),
        chunk_size: 100,
        source_pool_size: 2,
        target_pool_size: 2,
        function_name: "consolidation".into(),
        source_tls: Default::default(),
        target_tls: Default::default(),
    };
    let function = Function::<Sources, dms_cdc::postgres::Postgres>::init_with_secrets(
        config,
        MAPPING,
        Transforms::standard(),
        Some(client),
    )
    .await
    .unwrap();
    let payloads: Vec<(String, Vec<u8>)> = (1..=recipes)
        .flat_map(|id| {
            ["recipes_eu", "recipes_us"].map(|schema| {
                (
                    format!("{schema}.recipes.{id}"),
                    change(schema, "recipes", "update", json!({ "id": id })),
                )
            })
        })
        .collect();
    let event = dms_cdc::pipeline::fixture_event_of(
        payloads
            .iter()
            .map(|(k, p)| (k.as_str(), p.as_slice(), None)),
        1,
        "arn:aws:kinesis:eu-west-1:123456789012:stream/consolidation",
    );
    let response = function
        .handle(serde_json::from_value::<dms_cdc::dms::KinesisBatch>(event).unwrap())
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let rows = dms_cdc::postgres::pool(&target.url("global"), 1)
        .unwrap()
        .get()
        .await
        .unwrap()
        .query(
            "SELECT region, legacy_id::text, title FROM all_recipes ORDER BY region, legacy_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2),
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(
        rows.len(),
        recipes as usize,
        "half of each source's recipes are published"
    );
    for (region, id, title) in &rows {
        let want = match region.as_str() {
            "eu" => format!("recipe {id}"),
            _ => format!("US recipe {id}"),
        };
        assert_eq!(title, &want, "{region} {id}");
    }
}

const MAPPING: &str = r#"
[source]
schema = "recipes_src"
before_image_field = "before-image"

[[source.instance]]
name = "eu"
schema = "recipes_eu"
source_schema = "recipes_src"

[[source.instance]]
name = "us"
schema = "recipes_us"
source_schema = "recipes_src"

[source.tables.users]
key = ["id"]

[source.tables.recipes]
key = ["id"]

[source.tables.ingredients]
key = ["id"]

[[target]]
table = "all_recipes"
root = "recipes"
key = ["region", "legacy_id"]
discriminator = "region"
version = "src_version"
filter = { column = "status", in = ["published"] }

[[target.join]]
name = "author"
table = "users"
on = { id = "author_id" }

[[target.children]]
name = "ingredients"
table = "ingredients"
on = { recipe_id = "id" }
order_by = ["position", "id"]
fields = { name = "name", qty = "quantity" }

[[target.column]]
name = "legacy_id"
from = "id"

[[target.column]]
name = "title"
from = "title"

[[target.column]]
name = "author_name"
from = "author.name"

[[target.column]]
name = "ingredients"
children = "ingredients"
"#;

fn source(users: u64, recipes: u64) -> PostgreSql {
    let pg = PostgreSql::start().expect("throwaway postgresql");
    pg.create_database("src").unwrap();
    pg.run_file("src", &root().join("fixtures/source-postgres.sql"))
        .unwrap();
    pg.run_sql(
        "src",
        &support::generated::source_sql_postgres(users, recipes),
    )
    .unwrap();
    pg
}

/// A DMS record of `schema.table`.
fn change(schema: &str, table: &str, op: &str, data: serde_json::Value) -> Vec<u8> {
    support::record_in(schema, table, op, data, None, "2026-12-06T10:15:00Z")
}

async fn changes_of_two_sources_land_apart_in_one_target<T: TestTarget>() {
    let (users, recipes) = (10, 40);
    let eu = source(users, recipes);
    let us = source(users, recipes);
    // The US service has its own titles and authors.
    us.run_sql(
        "src",
        "UPDATE recipes_src.recipes SET title = 'US ' || title; \
         UPDATE recipes_src.users SET name = 'US ' || name",
    )
    .unwrap();
    let db = T::start();
    T::text_rows(
        &db,
        &format!(
            "CREATE TABLE all_recipes (region VARCHAR(8) NOT NULL, legacy_id BIGINT NOT NULL, \
               title VARCHAR(200) NOT NULL, author_name VARCHAR(100) NULL, ingredients {j} NULL, \
               src_version {v}, PRIMARY KEY (region, legacy_id))",
            j = T::JSON_TYPE,
            v = T::VERSION_TYPE
        ),
    )
    .await;
    let transforms = Transforms::standard();
    let mapping = Mapping::parse("consolidation.toml", MAPPING, &transforms).unwrap();
    assert_eq!(
        mapping.targets.len(),
        2,
        "one copy of the target per instance"
    );
    let target = T::new(T::pool(&db), FUNCTION_NAME, 100);
    dms_cdc::target::Target::prepare(&target, &mapping)
        .await
        .unwrap();
    let setting = format!("eu={} us={}", eu.url("src"), us.url("src"));
    let sources = Sources::source(&setting, &Default::default(), 2).unwrap();
    Sources::check_mapping(&sources, &mapping).unwrap();
    let engine = Engine::new(
        mapping,
        transforms,
        sources,
        target,
        Settings {
            function_name: FUNCTION_NAME.into(),
            chunk_size: 100,
        },
    );

    // Both services' recipes, interleaved on one shard.
    let mut seq = 0u64;
    let mut delivery = |payload: Vec<u8>| {
        seq += 1;
        Delivery {
            shard_id: ShardId("shardId-000000000000".into()),
            sequence_number: SequenceNumber::parse(&format!("4959{seq:020}")).unwrap(),
            partition_key: "k".into(),
            approximate_arrival_ms: None,
            data: payload,
        }
    };
    let mut batch = Vec::new();
    for id in 1..=recipes {
        for schema in ["recipes_eu", "recipes_us"] {
            batch.push(delivery(change(
                schema,
                "recipes",
                "update",
                json!({ "id": id }),
            )));
        }
    }
    let report = engine.process(&batch).await;
    assert_eq!(report.retry_error, None);
    assert!(
        report.outcomes.iter().all(|o| *o == Outcome::Applied),
        "{:?}",
        report.summary
    );
    let rows = T::text_rows(
        &db,
        "SELECT region, legacy_id, title, author_name FROM all_recipes ORDER BY region, legacy_id",
    )
    .await;
    // Half the recipes are published, in each region, under the same ids.
    assert_eq!(rows.len(), recipes as usize);
    let text = |r: &Vec<Option<String>>, i: usize| r[i].clone().unwrap_or_default();
    for r in &rows {
        let id: u64 = text(r, 1).parse().unwrap();
        let (title, author) = match text(r, 0).as_str() {
            "eu" => (format!("recipe {id}"), format!("user {}", 1 + id % users)),
            "us" => (
                format!("US recipe {id}"),
                format!("US user {}", 1 + id % users),
            ),
            other => panic!("region {other:?}"),
        };
        assert_eq!((text(r, 2), text(r, 3)), (title, author), "{r:?}");
    }

    // An ingredient changes in the US source only: only the US recipe is rebuilt.
    us.run_sql(
        "src",
        "UPDATE recipes_src.ingredients SET name = 'saffron' WHERE id = 3",
    )
    .unwrap();
    let report = engine
        .process(&[delivery(change(
            "recipes_us",
            "ingredients",
            "update",
            json!({"id": 3, "recipe_id": 2, "position": 1, "name": "saffron", "quantity": "1.50", "unit": "g"}),
        ))])
        .await;
    assert!(
        report.outcomes.iter().all(|o| *o == Outcome::Applied),
        "{:?}",
        report.summary
    );
    assert_eq!(
        report.summary.upserts.get("all_recipes"),
        Some(&1),
        "{:?}",
        report.summary
    );
    let ingredients = T::text_rows(
        &db,
        "SELECT region, ingredients FROM all_recipes WHERE legacy_id = 2 ORDER BY region",
    )
    .await;
    let names = |i: usize| -> Vec<String> {
        let json: serde_json::Value =
            serde_json::from_str(ingredients[i][1].as_deref().unwrap()).unwrap();
        json.as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(0), vec!["ingredient 4", "ingredient 3"]);
    assert_eq!(names(1), vec!["ingredient 4", "saffron"]);

    // Reconcile reads each region's rows from its own source.
    let check = || async {
        reconcile(
            &engine.source,
            &engine.target,
            &engine.mapping,
            &engine.transforms,
            &CaptureOptions::from_mapping(&engine.mapping),
            &ReconcileOptions {
                chunk: 16,
                ..ReconcileOptions::default()
            },
        )
        .await
        .unwrap()
    };
    let clean = check().await;
    assert!(clean.is_clean(), "{}", clean.render(20));
    assert_eq!(clean.tables.len(), 1, "the copies count as one table");
    assert_eq!(clean.rows_compared(), recipes);

    // A drift in each region: a US row lost, an EU title edited, a row of
    // an id neither source has.
    T::text_rows(
        &db,
        "DELETE FROM all_recipes WHERE region = 'us' AND legacy_id = 5",
    )
    .await;
    T::text_rows(
        &db,
        "UPDATE all_recipes SET title = 'edited' WHERE region = 'eu' AND legacy_id = 6",
    )
    .await;
    T::text_rows(
        &db,
        "INSERT INTO all_recipes (region, legacy_id, title, src_version) VALUES ('us', 9999, 'stray', '1')",
    )
    .await;
    let found = check().await;
    let mut seen: Vec<String> = found
        .differences
        .iter()
        .map(|d| {
            let kind = match d {
                Difference::Missing { .. } => "missing",
                Difference::Different { .. } => "different",
                Difference::Extra { .. } => "extra",
            };
            format!("{kind} {}", d.key().join(","))
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec!["different eu,6", "extra us,9999", "missing us,5"],
        "{}",
        found.render(20)
    );
    let repaired = repair(
        &engine,
        &CaptureOptions::from_mapping(&engine.mapping),
        &found.differences,
    )
    .await
    .unwrap();
    assert!(
        repaired.not_repaired.is_empty(),
        "{:?}",
        repaired.not_repaired
    );
    assert_eq!((repaired.rewritten, repaired.deleted), (2, 1));
    let after = check().await;
    assert!(after.is_clean(), "{}", after.render(20));
    let titles = T::text_rows(
        &db,
        "SELECT region, title FROM all_recipes WHERE legacy_id IN (5, 6) ORDER BY legacy_id, region",
    )
    .await;
    assert_eq!(
        titles,
        vec![
            vec![Some("eu".into()), Some("recipe 5".into())],
            vec![Some("us".into()), Some("US recipe 5".into())],
            vec![Some("eu".into()), Some("recipe 6".into())],
            vec![Some("us".into()), Some("US recipe 6".into())],
        ]
    );
}
