//! Cross-checks the deployment files against the mappings and the function:
//!
//! - every source table a mapping reads (`fixtures/mapping.toml`,
//!   `functions/*/mapping.toml`) is selected by the DMS table mappings
//!   (`infra/dms/table-mappings.json`) and partitioned by primary key;
//! - the DMS task's `BeforeImageSettings.FieldName` is each mapping's
//!   `before_image_field`, with images of every non-LOB column, and LOBs are
//!   in limited LOB mode (the mappings re-query LOB columns);
//! - the Kinesis endpoint settings are those the decoder needs;
//! - `infra/dms/dms.yaml` embeds exactly the JSON files it is documented to;
//! - for a PostgreSQL source, `infra/source/postgres-source.sql` gives every
//!   mapped table REPLICA IDENTITY FULL and both users SELECT on it, and
//!   makes what `infra/dms/dms.yaml` expects (the slot plugin, the DDL
//!   capture and heartbeat schema); run on a throwaway PostgreSQL server, it
//!   readies a slot that sees DDL and deletes' whole old rows;
//! - `template.yaml` has one function per crate in `functions/`, each with
//!   the environment variables the function reads, its own event source
//!   mapping (the documented settings), on-failure queue, role, alarms on
//!   the metrics it emits, dashboard band and outputs, all under its own
//!   `Deploy...` condition; its target parameters are optional and required
//!   by a rule only when it is deployed. What differs between targets is
//!   written down per function in `FUNCTIONS`: a database target gets its
//!   secret, database and TLS variables and its role reads its secret; the
//!   OpenSearch target gets a SigV4 URL of its domain (which the adapter
//!   accepts) and no target secret, and its role may send the domain the
//!   HTTP methods `crates/opensearch` sends, no other;
//! - `template.yaml` allows only what the function supports
//!   (`ParallelizationFactor` 1, `ChunkSize` up to 65535) and grants narrowly
//!   (each function the source secrets it reads, `SourceSecretArn` or one
//!   per source instance in `SourceInstanceSecrets`, and its target's, if
//!   it has one, never `*`, resolved for both kinds of deployment, whose
//!   rules require exactly one; keys only through their service; service
//!   trust only for this account, in `infra/dms/dms.yaml` too).
//!
//! `.ci/deploy-check` lints the same templates with cfn-lint and SAM.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dms_cdc::dms::TableName;
use dms_cdc::mapping::{Mapping, Transforms};
use serde_json::Value as Json;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    let full = repo().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn json(path: &str) -> Json {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: not JSON: {e}"))
}

/// The crates in `functions/` (directories with a Cargo.toml).
fn function_crates() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("functions"))
        .expect("functions/")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no crate in functions/");
    names
}

/// Every mapping file: the sample one and each function's.
fn mapping_files() -> Vec<PathBuf> {
    let mut files = vec![repo().join("fixtures/mapping.toml")];
    for name in function_crates() {
        let path = repo().join("functions").join(&name).join("mapping.toml");
        if path.is_file() {
            files.push(path);
        }
    }
    assert!(
        files.len() >= 2,
        "expected fixtures/mapping.toml and at least one functions/*/mapping.toml"
    );
    files
}

fn load(path: &Path) -> Mapping {
    Mapping::load(path, &Transforms::standard())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// DMS object-locator matching: `%` matches any run of characters.
fn like(pattern: &str, name: &str) -> bool {
    match pattern.split_once('%') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| like(rest, &tail[i..]))
        }
    }
}

fn locator(rule: &Json) -> (&str, &str) {
    let loc = &rule["object-locator"];
    (
        loc["schema-name"].as_str().unwrap_or_default(),
        loc["table-name"].as_str().unwrap_or_default(),
    )
}

/// What is wrong with the DMS table mappings for one source table, if anything.
fn table_mapping_problems(rules: &Json, table: &TableName) -> Vec<String> {
    let rules = rules["rules"]
        .as_array()
        .expect("table mappings: no \"rules\" array");
    let name = format!("{}.{}", table.schema, table.table);
    let matches = |rule: &&Json| {
        let (schema, t) = locator(rule);
        like(schema, &table.schema) && like(t, &table.table)
    };
    let selections: Vec<&Json> = rules
        .iter()
        .filter(|r| r["rule-type"] == "selection")
        .filter(matches)
        .collect();
    let mut problems = Vec::new();
    if !selections.iter().any(|r| r["rule-action"] == "include") {
        problems.push(format!("{name}: no selection rule includes it"));
    }
    if selections.iter().any(|r| r["rule-action"] == "exclude") {
        problems.push(format!("{name}: a selection rule excludes it"));
    }
    // Object-mapping rules take exact names (no wildcards).
    let mappings: Vec<&Json> = rules
        .iter()
        .filter(|r| r["rule-type"] == "object-mapping")
        .filter(|r| locator(r) == (table.schema.as_str(), table.table.as_str()))
        .collect();
    match mappings.as_slice() {
        [rule] => {
            if rule["rule-action"] != "map-record-to-record" {
                problems.push(format!(
                    "{name}: object-mapping rule is not map-record-to-record"
                ));
            }
            let params = &rule["mapping-parameters"];
            if params["partition-key-type"] != "primary-key" {
                problems.push(format!(
                    "{name}: partition-key-type is {}, not \"primary-key\" (changes to one row must stay in one shard, in order)",
                    params["partition-key-type"]
                ));
            }
            for field in ["exclude-columns", "attribute-mappings"] {
                if !params[field].is_null() {
                    problems.push(format!(
                        "{name}: {field} changes the record the decoder reads"
                    ));
                }
            }
        }
        [] => problems.push(format!(
            "{name}: no object-mapping rule (partition by primary key)"
        )),
        _ => problems.push(format!("{name}: several object-mapping rules")),
    }
    problems
}

#[test]
fn dms_table_mappings_select_every_mapped_source_table() {
    let rules = json("infra/dms/table-mappings.json");
    let mut problems = Vec::new();
    let mut tables = 0;
    for file in mapping_files() {
        let mapping = load(&file);
        assert!(
            !mapping.sources.is_empty(),
            "{}: no source table",
            file.display()
        );
        for table in mapping.sources.keys() {
            tables += 1;
            for p in table_mapping_problems(&rules, table) {
                problems.push(format!("{}: {p}", file.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "infra/dms/table-mappings.json:\n{}",
        problems.join("\n")
    );
    assert!(tables >= 4);
}

#[test]
fn the_cross_check_reports_what_is_missing() {
    let users = TableName::new("recipes_src", "users");
    let only_other = serde_json::json!({"rules": [
        {"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include",
         "object-locator": {"schema-name": "recipes_src", "table-name": "recipes"}}
    ]});
    let problems = table_mapping_problems(&only_other, &users);
    assert_eq!(
        problems,
        [
            "recipes_src.users: no selection rule includes it",
            "recipes_src.users: no object-mapping rule (partition by primary key)"
        ]
    );
    let wildcard_but_excluded = serde_json::json!({"rules": [
        {"rule-type": "selection", "rule-action": "include",
         "object-locator": {"schema-name": "recipes%", "table-name": "%"}},
        {"rule-type": "selection", "rule-action": "exclude",
         "object-locator": {"schema-name": "recipes_src", "table-name": "u%s"}},
        {"rule-type": "object-mapping", "rule-action": "map-record-to-record",
         "object-locator": {"schema-name": "recipes_src", "table-name": "users"},
         "mapping-parameters": {"partition-key-type": "schema-table"}}
    ]});
    let problems = table_mapping_problems(&wildcard_but_excluded, &users);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].ends_with("a selection rule excludes it"));
    assert!(problems[1].contains("partition-key-type is \"schema-table\""));
    assert!(like("%", ""));
    assert!(like("re%s", "recipes"));
    assert!(!like("re%s", "recipe"));
    assert!(like("%_src", "recipes_src"));
}

#[test]
fn dms_task_settings_agree_with_every_mapping() {
    let settings = json("infra/dms/task-settings.json");
    let before = &settings["BeforeImageSettings"];
    assert_eq!(
        before["EnableBeforeImage"], true,
        "BeforeImageSettings.EnableBeforeImage"
    );
    // Unchanged-update detection compares the columns a target reads in the
    // before and after images: they must be there (LOBs are re-queried).
    assert!(
        before["ColumnFilter"] == "non-lob" || before["ColumnFilter"] == "all",
        "BeforeImageSettings.ColumnFilter must be non-lob or all, is {}",
        before["ColumnFilter"]
    );
    for file in mapping_files() {
        let mapping = load(&file);
        assert_eq!(
            before["FieldName"].as_str(),
            Some(mapping.before_image_field.as_str()),
            "{}: before_image_field differs from BeforeImageSettings.FieldName of infra/dms/task-settings.json",
            file.display()
        );
    }

    // LOBs: limited LOB mode (Kinesis has no full LOB mode); the mappings
    // declare LOB columns and re-query them, so truncation is harmless.
    let meta = &settings["TargetMetadata"];
    assert_eq!(meta["SupportLobs"], true, "TargetMetadata.SupportLobs");
    assert_eq!(meta["FullLobMode"], false, "TargetMetadata.FullLobMode");
    assert_eq!(
        meta["LimitedSizeLobMode"], true,
        "TargetMetadata.LimitedSizeLobMode"
    );
    let lob_max = meta["LobMaxSize"]
        .as_u64()
        .expect("TargetMetadata.LobMaxSize");
    assert!(
        (1..=1000).contains(&lob_max),
        "LobMaxSize {lob_max} KB: a record must fit in 1 MB"
    );
    let lob_columns: usize = mapping_files()
        .iter()
        .map(|f| load(f).sources.values().map(|s| s.lob.len()).sum::<usize>())
        .sum();
    assert!(
        lob_columns > 0,
        "the sample mapping declares recipe_stories.body as a LOB"
    );
    // Kinesis targets apply changes transactionally; batch apply is not supported.
    assert_eq!(meta["BatchApplyEnabled"], false);
}

#[test]
fn kinesis_endpoint_settings_are_what_the_decoder_needs() {
    let k = json("infra/dms/kinesis-settings.json");
    assert!(
        k["MessageFormat"] == "json" || k["MessageFormat"] == "json-unformatted",
        "MessageFormat {}",
        k["MessageFormat"]
    );
    for (key, why) in [
        (
            "IncludeNullAndEmpty",
            "otherwise NULL columns are absent and rows are re-queried",
        ),
        (
            "UseLargeIntegerValue",
            "otherwise BIGINTs over 2^53 arrive rounded (lossy keys are quarantined)",
        ),
        (
            "IncludeTransactionDetails",
            "transaction ids and commit timestamps in the metadata",
        ),
        (
            "IncludeControlDetails",
            "control records are counted, not mistaken for data",
        ),
        (
            "IncludeTableAlterOperations",
            "DDL arrives as control records",
        ),
        (
            "IncludePartitionValue",
            "the partition key is in the metadata",
        ),
        (
            "PartitionIncludeSchemaTable",
            "equal keys of different tables spread over shards",
        ),
    ] {
        assert_eq!(
            k[key], true,
            "kinesis-settings.json {key} must be true: {why}"
        );
    }
}

/// The lines of a YAML block scalar (`key: |`) under `key`, dedented.
fn yaml_block(text: &str, key: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == format!("{key}: |"))
        .unwrap_or_else(|| panic!("no `{key}: |` block"));
    let indent = |l: &str| l.len() - l.trim_start().len();
    let own = indent(lines[start]);
    let body: Vec<&str> = lines[start + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || indent(l) > own)
        .copied()
        .collect();
    let cut = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| indent(l))
        .min()
        .unwrap_or(0);
    body.iter()
        .map(|l| if l.len() >= cut { &l[cut..] } else { "" })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `key: scalar` pairs of a YAML mapping under `key` (tags and comments skipped).
fn yaml_scalars(text: &str, key: &str) -> BTreeMap<String, Json> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == format!("{key}:"))
        .unwrap_or_else(|| panic!("no `{key}:` mapping"));
    let indent = |l: &str| l.len() - l.trim_start().len();
    let own = indent(lines[start]);
    let mut out = BTreeMap::new();
    for line in lines[start + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || indent(l) > own)
    {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // Lines without a key continue a folded scalar.
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if v.starts_with('!') {
            continue;
        }
        let value = match v {
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            other => Json::String(other.trim_matches('"').to_owned()),
        };
        out.insert(k.trim().to_owned(), value);
    }
    out
}

#[test]
fn the_dms_template_embeds_the_json_files() {
    let template = read("infra/dms/dms.yaml");
    for (key, file) in [
        ("TableMappings", "infra/dms/table-mappings.json"),
        ("ReplicationTaskSettings", "infra/dms/task-settings.json"),
    ] {
        let embedded: Json = serde_json::from_str(&yaml_block(&template, key))
            .unwrap_or_else(|e| panic!("dms.yaml {key}: not JSON: {e}"));
        assert!(
            embedded == json(file),
            "infra/dms/dms.yaml {key} differs from {file}: paste the file into the block"
        );
    }
    assert!(
        template.contains("MigrationType: cdc"),
        "the task is CDC-only"
    );

    let in_template = yaml_scalars(&template, "KinesisSettings");
    let Json::Object(wanted) = json("infra/dms/kinesis-settings.json") else {
        panic!("kinesis-settings.json is not an object")
    };
    for (key, value) in &wanted {
        if key == "UseLargeIntegerValue" {
            // Not a CloudFormation property: README "Deploy" sets it after the stack.
            assert!(!in_template.contains_key(key));
            continue;
        }
        assert_eq!(
            in_template.get(key),
            Some(value),
            "dms.yaml KinesisSettings.{key} differs from kinesis-settings.json"
        );
    }
    for key in in_template.keys() {
        assert!(
            wanted.contains_key(key),
            "dms.yaml KinesisSettings.{key} is not in kinesis-settings.json"
        );
    }
}

#[test]
fn the_sam_template_has_one_function_per_crate_with_its_configuration() {
    let template = read("template.yaml");
    let crates = function_crates();
    for name in &crates {
        assert!(
            template.contains(&format!("CodeUri: functions/{name}\n")),
            "template.yaml: no function with CodeUri: functions/{name}"
        );
        assert!(
            template.contains(&format!("Binary: {name}\n")),
            "template.yaml: no BuildProperties Binary: {name}"
        );
    }
    let count = |needle: &str| template.matches(needle).count();
    assert_eq!(count("Type: AWS::Serverless::Function\n"), crates.len());
    assert_eq!(count("BuildMethod: rust-cargolambda\n"), crates.len());

    let globals = yaml_section(&template, "Globals");
    let mut problems = Vec::new();
    for name in &crates {
        problems.extend(function_problems(&template, &globals, name));
    }
    assert!(
        problems.is_empty(),
        "template.yaml:\n{}",
        problems.join("\n")
    );

    // The quarantine alarm watches a metric the function emits.
    let emf: Json = serde_json::from_str(&dms_cdc::lambda::emf_line(
        "f",
        &dms_cdc::engine::BatchSummary::default(),
        false,
    ))
    .unwrap();
    let directive = &emf["_aws"]["CloudWatchMetrics"][0];
    let namespace = directive["Namespace"].as_str().unwrap();
    assert_eq!(directive["Dimensions"][0][0], "Function");
    let metrics: Vec<&str> = directive["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap())
        .collect();
    assert!(metrics.contains(&"QuarantinedRecords"), "{metrics:?}");
    assert!(template.contains(&format!("Namespace: {namespace}\n")));
    assert!(template.contains("MetricName: QuarantinedRecords\n"));
    // A batch that applied a record with a commit time also emits the lag.
    let lagging = dms_cdc::engine::BatchSummary {
        newest_commit: Some(chrono::Utc::now().naive_utc()),
        ..Default::default()
    };
    let emf: Json = serde_json::from_str(&dms_cdc::lambda::emf_line("f", &lagging, false)).unwrap();
    let emitted: Vec<&str> = emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap())
        .collect();
    // Every metric of our namespace the template alarms on or draws is emitted.
    for line in template.lines() {
        let named = line.trim().strip_prefix("MetricName: ").filter(|m| {
            ![
                "IteratorAge",
                "Errors",
                "ApproximateNumberOfMessagesVisible",
            ]
            .contains(m)
        });
        if let Some(m) = named {
            assert!(
                emitted.contains(&m),
                "template.yaml alarms on {m}, never emitted: {emitted:?}"
            );
        }
        for part in line.split("[\"dms-cdc\", \"").skip(1) {
            let m = part.split('"').next().unwrap_or("");
            assert!(
                emitted.contains(&m),
                "template.yaml draws {m}, never emitted: {emitted:?}"
            );
        }
    }
}

/// The lines of a top-level section (`Globals:`) or of a resource, output
/// or parameter (`  Name:`), the key line included.
fn yaml_section(text: &str, key: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let Some(start) = lines
        .iter()
        .position(|l| l.trim_end() == format!("{key}:") || l.trim_end() == format!("  {key}:"))
    else {
        return String::new();
    };
    let own = indent(lines[start]);
    std::iter::once(lines[start])
        .chain(
            lines[start + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || indent(l) > own)
                .copied(),
        )
        .collect::<Vec<_>>()
        .join("\n")
}

/// How a function reaches its target. It decides the function's target
/// parameters, its target variables and what its role may do beyond what
/// every function gets (its stream, queue, log group, the VPC and the
/// source's secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetAccess {
    /// A database user in a Secrets Manager secret: parameters
    /// `<Prefix>SecretArn` (required by the rule `<Prefix>Secret` when the
    /// function is deployed), `<Prefix>Database`, `<Prefix>SslMode` and
    /// `<Prefix>SslCa`, given as `DMS_CDC_TARGET_SECRET_ID`,
    /// `DMS_CDC_TARGET_DATABASE`, `DMS_CDC_TARGET_SSL_MODE` and
    /// `DMS_CDC_TARGET_SSL_CA`; the role reads that secret too.
    DatabaseSecret,
    /// An Amazon OpenSearch Service domain in `DMS_CDC_TARGET_URL`
    /// (`opensearch://<endpoint>?sigv4-region=<region>`), every request
    /// signed with the function's role: no target secret, database or TLS
    /// variable (always HTTPS with the public roots). Parameters
    /// `OpenSearchDomainEndpoint` and `OpenSearchDomainArn` (required by the
    /// rule `<Prefix>Domain`); the role may send the domain the HTTP
    /// methods `crates/opensearch` sends, on the domain's paths only.
    OpenSearchDomain,
}

/// The target variables of the function (`dms_cdc::lambda`); each kind of
/// target sets some of them and must leave the others unset.
const TARGET_VARIABLES: [&str; 5] = [
    dms_cdc::lambda::ENV_TARGET_URL,
    dms_cdc::lambda::ENV_TARGET_SECRET_ID,
    dms_cdc::lambda::ENV_TARGET_DATABASE,
    dms_cdc::lambda::ENV_TARGET_SSL_MODE,
    dms_cdc::lambda::ENV_TARGET_SSL_CA,
];

impl TargetAccess {
    /// The target variables this kind of target is given. The others must
    /// not be set: a URL with a secret is refused at cold start, and TLS
    /// settings the OpenSearch adapter ignores would mislead.
    fn variables(self) -> &'static [&'static str] {
        match self {
            TargetAccess::DatabaseSecret => &TARGET_VARIABLES[1..],
            TargetAccess::OpenSearchDomain => &TARGET_VARIABLES[..1],
        }
    }
}

/// A function of the template: its crate in `functions/`, the prefix of
/// its logical ids and parameters, and how it reaches its target.
struct Deployed {
    name: &'static str,
    prefix: &'static str,
    target: TargetAccess,
}

/// Every crate in `functions/` as `template.yaml` deploys it (a test checks
/// that this names exactly those crates).
const FUNCTIONS: [Deployed; 3] = [
    Deployed {
        name: "mysql-target",
        prefix: "MysqlTarget",
        target: TargetAccess::DatabaseSecret,
    },
    Deployed {
        name: "postgres-target",
        prefix: "PostgresTarget",
        target: TargetAccess::DatabaseSecret,
    },
    Deployed {
        name: "opensearch-target",
        prefix: "OpenSearchTarget",
        target: TargetAccess::OpenSearchDomain,
    },
];

/// The name of the condition a function's resources carry
/// (`DeployMysqlTarget` parameter -> `DeployMysql` condition).
fn deploy_condition(prefix: &str) -> String {
    format!("Deploy{}", prefix.trim_end_matches("Target"))
}

/// Whether a resource, function or section has `line` as one of its lines.
fn has_line(block: &str, line: &str) -> bool {
    let line = line.trim_start();
    block.contains(&format!("\n{line}")) || block.contains(&format!(" {line}"))
}

/// Pushes `what` onto `problems` unless `ok`.
fn need(problems: &mut Vec<String>, ok: bool, what: String) {
    if !ok {
        problems.push(what);
    }
}

/// What is missing from the resources of the function built from
/// `functions/<name>`, each problem prefixed with the name: its function
/// and event source mapping, its own resources ([`resource_problems`]),
/// its role's secrets ([`secret_problems`]), its dashboard band, parameters,
/// condition and rules ([`wiring_problems`]), and what its kind of target
/// needs ([`target_problems`]).
fn function_problems(template: &str, globals: &str, name: &str) -> Vec<String> {
    let Some(deployed) = FUNCTIONS.iter().find(|f| f.name == name) else {
        return vec![format!(
            "{name}: not in FUNCTIONS of tests/infra.rs (the prefix of its logical ids, how it reaches its target)"
        )];
    };
    let function_id = format!("{}Function", deployed.prefix);
    let function = yaml_section(template, &function_id);
    if function.is_empty() {
        return vec![format!("{name}: no resource {function_id}")];
    }
    let mut problems = resource_problems(template, globals, deployed, &function);
    problems.extend(secret_problems(template, deployed));
    problems.extend(wiring_problems(template, deployed));
    problems.extend(target_problems(template, deployed, &function));
    problems
        .into_iter()
        .map(|p| format!("{name}: {p}"))
        .collect()
}

/// The function (`function`, its resource), its event source mapping and
/// variables, and its own queue, log group, role, alarms and outputs, all
/// under its condition.
fn resource_problems(
    template: &str,
    globals: &str,
    deployed: &Deployed,
    function: &str,
) -> Vec<String> {
    let (name, prefix) = (deployed.name, deployed.prefix);
    let condition = format!("Condition: {}\n", deploy_condition(prefix));
    let function_id = format!("{prefix}Function");
    let mut problems = Vec::new();
    for line in [
        "Type: AWS::Serverless::Function\n".to_owned(),
        condition.clone(),
        "BuildMethod: rust-cargolambda\n".to_owned(),
        format!("Binary: {name}\n"),
        format!("CodeUri: functions/{name}\n"),
        format!("Role: !GetAtt {prefix}Role.Arn\n"),
        format!("LogGroup: !Ref {prefix}LogGroup\n"),
        "LogFormat: JSON\n".to_owned(),
        // The event source mapping: the settings README "Event source
        // mapping settings" documents.
        "Type: Kinesis\n".to_owned(),
        "StartingPosition: TRIM_HORIZON\n".to_owned(),
        "BatchSize: !Ref BatchSize\n".to_owned(),
        "MaximumBatchingWindowInSeconds: !Ref MaximumBatchingWindowInSeconds\n".to_owned(),
        "ParallelizationFactor: !Ref ParallelizationFactor\n".to_owned(),
        "FunctionResponseTypes: [ReportBatchItemFailures]\n".to_owned(),
        "BisectBatchOnFunctionError: true\n".to_owned(),
        "MaximumRetryAttempts: !Ref MaximumRetryAttempts\n".to_owned(),
        "MaximumRecordAgeInSeconds: !Ref MaximumRecordAgeInSeconds\n".to_owned(),
        format!("Destination: !GetAtt {prefix}OnFailureQueue.Arn\n"),
        // Its own checkpoint rows and metric dimension.
        format!("DMS_CDC_FUNCTION_NAME: !Sub ${{AWS::StackName}}-{name}\n"),
    ] {
        need(
            &mut problems,
            has_line(function, &line),
            format!("{function_id} lacks `{}`", line.trim_end()),
        );
    }
    // Every variable the function reads is set, by Globals or by the
    // function; the target variables as its kind of target says.
    let is_set = |var: &str| {
        let key = format!("{var}: ");
        function.contains(&key) || globals.contains(&key)
    };
    for var in [
        dms_cdc::lambda::ENV_SOURCE_SECRET_ID,
        dms_cdc::lambda::ENV_SOURCE_DATABASE,
        dms_cdc::lambda::ENV_CHUNK_SIZE,
        dms_cdc::lambda::ENV_SOURCE_POOL_SIZE,
        dms_cdc::lambda::ENV_TARGET_POOL_SIZE,
        dms_cdc::lambda::ENV_FUNCTION_NAME,
        dms_cdc::lambda::ENV_SOURCE_SSL_MODE,
        dms_cdc::lambda::ENV_SOURCE_SSL_CA,
    ] {
        need(
            &mut problems,
            is_set(var),
            format!("{function_id} does not get {var}"),
        );
    }
    for var in TARGET_VARIABLES {
        let wanted = deployed.target.variables().contains(&var);
        need(
            &mut problems,
            is_set(var) == wanted,
            if wanted {
                format!("{function_id} does not get {var}")
            } else {
                format!(
                    "{function_id} gets {var}, which its target ({:?}) does not take",
                    deployed.target
                )
            },
        );
    }
    // The chunk size is the bounded parameter (see the chunk size test).
    need(
        &mut problems,
        !function.contains("DMS_CDC_CHUNK_SIZE: ")
            && globals.contains("DMS_CDC_CHUNK_SIZE: !Ref ChunkSize\n"),
        format!("{function_id}: DMS_CDC_CHUNK_SIZE is not !Ref ChunkSize"),
    );
    // Its own queue, role, log group, alarms and outputs, deployed with it.
    let mut own = vec![
        ("OnFailureQueue", "Type: AWS::SQS::Queue\n".to_owned()),
        ("LogGroup", format!("/{name}\n")),
        (
            "Role",
            format!("Resource: !GetAtt {prefix}OnFailureQueue.Arn\n"),
        ),
        ("IteratorAgeAlarm", "MetricName: IteratorAge\n".to_owned()),
        ("ErrorsAlarm", "MetricName: Errors\n".to_owned()),
        (
            "OnFailureAlarm",
            format!("Value: !GetAtt {prefix}OnFailureQueue.QueueName\n"),
        ),
        (
            "QuarantineAlarm",
            format!("Value: !Sub ${{AWS::StackName}}-{name}\n"),
        ),
        (
            "OperatorErrorsAlarm",
            format!("Value: !Sub ${{AWS::StackName}}-{name}\n"),
        ),
        (
            "ReplicationLagAlarm",
            "MetricName: ReplicationLag\n".to_owned(),
        ),
        ("FunctionName", format!("Value: !Ref {function_id}\n")),
        (
            "CheckpointName",
            format!("Value: !Sub ${{AWS::StackName}}-{name}\n"),
        ),
        (
            "OnFailureQueueUrl",
            format!("Value: !Ref {prefix}OnFailureQueue\n"),
        ),
    ];
    if deployed.target == TargetAccess::OpenSearchDomain {
        // The role to allow in the domain's access policy and to map in
        // its fine-grained access control.
        own.push(("RoleArn", format!("Value: !GetAtt {prefix}Role.Arn\n")));
    }
    for (id, what) in own {
        let id = format!("{prefix}{id}");
        let block = yaml_section(template, &id) + "\n";
        need(&mut problems, !block.trim().is_empty(), format!("no {id}"));
        need(
            &mut problems,
            block.contains(&condition),
            format!("{id} lacks `{}`", condition.trim_end()),
        );
        need(
            &mut problems,
            block.contains(what.as_str()),
            format!("{id} lacks `{}`", what.trim_end()),
        );
    }
    for alarm in ["IteratorAgeAlarm", "ErrorsAlarm"] {
        let block = yaml_section(template, &format!("{prefix}{alarm}")) + "\n";
        need(
            &mut problems,
            block.contains(&format!("Value: !Ref {function_id}\n")),
            format!("{prefix}{alarm} does not watch {function_id}"),
        );
    }
    problems
}

/// The role reads the source's secrets and its target's, if it has one, no
/// other, and a secrets key decrypts only those: resolved for a deployment
/// with one source (`SourceSecretArn`) and for one with a secret per
/// source instance (`SourceInstanceSecrets`), the source's secrets being
/// those the function reads (its `DMS_CDC_SOURCE_SECRET_ID`).
fn secret_problems(template: &str, deployed: &Deployed) -> Vec<String> {
    let prefix = deployed.prefix;
    let role = yaml_section(template, &format!("{prefix}Role")) + "\n";
    let mut problems = Vec::new();
    for (deployment, source, case) in [
        (
            Deployment::one_source(template),
            "SourceSecretArn",
            "with SourceSecretArn",
        ),
        (
            Deployment::per_instance(template),
            "the secrets of SourceInstanceSecrets",
            "with SourceInstanceSecrets",
        ),
    ] {
        let mut names = vec![source.to_owned()];
        let mut wanted = match deployment.source_secret_ids() {
            Ok(ids) => ids,
            Err(e) => {
                problems.push(format!("{case}: {e}"));
                continue;
            }
        };
        if deployed.target == TargetAccess::DatabaseSecret {
            let secret = format!("{prefix}SecretArn");
            wanted.extend(deployment.parameter(&secret));
            names.push(secret);
        }
        wanted.sort();
        for (what, needle, key) in [
            ("read", "secretsmanager:GetSecretValue", "Resource"),
            (
                "decrypt (kms:EncryptionContext:SecretARN)",
                "kms:EncryptionContext:SecretARN:",
                "kms:EncryptionContext:SecretARN",
            ),
        ] {
            let granted = deployment.granted(&role, needle, key);
            need(
                &mut problems,
                granted.len() == 1 && granted[0].as_ref() == Ok(&wanted),
                format!(
                    "{prefix}Role must {what} {} only, {case} ({wanted:?}): {granted:?}",
                    names.join(" and ")
                ),
            );
        }
    }
    problems
}

/// Its band on the dashboard, its `Deploy...` parameter and condition, and
/// its place in the `DeployAny` condition and the `AtLeastOneTarget` rule.
fn wiring_problems(template: &str, deployed: &Deployed) -> Vec<String> {
    let (name, prefix) = (deployed.name, deployed.prefix);
    let function_id = format!("{prefix}Function");
    let mut problems = Vec::new();
    let dashboard = yaml_section(template, "Dashboard");
    for needle in [
        format!("${{{function_id}}}"),
        format!("${{{prefix}OnFailureQueue.QueueName}}"),
        format!("- Fn: !Sub ${{AWS::StackName}}-{name}\n"),
        format!("- {}\n", deploy_condition(prefix)),
    ] {
        need(
            &mut problems,
            (dashboard.clone() + "\n").contains(&needle),
            format!("the dashboard lacks `{}`", needle.trim_end()),
        );
    }
    // Its parameters are optional in the template (another target's stack
    // need not give them) and required by a rule when the function is
    // deployed ([`target_problems`]); the stack deploys at least one.
    let flag = format!("Deploy{prefix}");
    let parameter = yaml_scalars(template, &flag);
    need(
        &mut problems,
        parameter.get("AllowedValues") == Some(&Json::String("[\"true\", \"false\"]".into())),
        format!("parameter {flag} must be \"true\" or \"false\""),
    );
    let deploy = deploy_condition(prefix);
    let conditions = yaml_section(template, "Conditions") + "\n";
    need(
        &mut problems,
        conditions.contains(&format!("  {deploy}: !And\n"))
            && conditions.contains(&format!("- !Equals [!Ref {flag}, \"true\"]\n")),
        format!("no condition {deploy} on {flag}"),
    );
    let any = conditions
        .lines()
        .find(|l| l.starts_with("  DeployAny: "))
        .unwrap_or_default();
    need(
        &mut problems,
        any.contains(&format!("!Condition {deploy}]"))
            || any.contains(&format!("!Condition {deploy},")),
        format!("condition DeployAny lacks {deploy}"),
    );
    need(
        &mut problems,
        yaml_section(template, "AtLeastOneTarget")
            .contains(&format!("!Equals [!Ref {flag}, \"true\"]")),
        format!("rule AtLeastOneTarget lacks {flag}"),
    );
    problems
}

/// What the function's kind of target needs: its target variables'
/// values, its parameters and the rule that requires them, and its role's
/// grants on an OpenSearch domain (none for a database).
fn target_problems(template: &str, deployed: &Deployed, function: &str) -> Vec<String> {
    let prefix = deployed.prefix;
    let flag = format!("Deploy{prefix}");
    let function_id = format!("{prefix}Function");
    let role = yaml_section(template, &format!("{prefix}Role")) + "\n";
    let domain_grants: Vec<String> = policy_statements(&role)
        .into_iter()
        .filter(|s| !opensearch_actions(s).is_empty())
        .collect();
    let mut problems = Vec::new();
    match deployed.target {
        TargetAccess::DatabaseSecret => {
            for line in [
                format!("DMS_CDC_TARGET_SECRET_ID: !Ref {prefix}SecretArn\n"),
                format!("DMS_CDC_TARGET_DATABASE: !Ref {prefix}Database\n"),
                format!("DMS_CDC_TARGET_SSL_MODE: !Ref {prefix}SslMode\n"),
                format!("DMS_CDC_TARGET_SSL_CA: !Ref {prefix}SslCa\n"),
            ] {
                need(
                    &mut problems,
                    has_line(function, &line),
                    format!("{function_id} lacks `{}`", line.trim_end()),
                );
            }
            let secret = format!("{prefix}SecretArn");
            let parameter = yaml_scalars(template, &secret);
            need(
                &mut problems,
                parameter.get("AllowedPattern")
                    == Some(&Json::String(
                        "^(|arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+)$".into(),
                    ))
                    && parameter.get("Default") == Some(&Json::String(String::new())),
                format!("parameter {secret}: empty or a secret ARN, default empty"),
            );
            let rule = yaml_section(template, &format!("{prefix}Secret")) + "\n";
            need(
                &mut problems,
                rule.contains(&format!("RuleCondition: !Equals [!Ref {flag}, \"true\"]\n"))
                    && rule.contains(&format!("Assert: !Not [!Equals [!Ref {secret}, \"\"]]\n")),
                format!("no rule {prefix}Secret requiring {secret} when {flag} is true"),
            );
            for p in ["Database", "SslMode", "SslCa"] {
                let parameter = yaml_scalars(template, &format!("{prefix}{p}"));
                need(
                    &mut problems,
                    parameter.get("Default") == Some(&Json::String(String::new())),
                    format!("parameter {prefix}{p} needs the default \"\""),
                );
            }
            need(
                &mut problems,
                domain_grants.is_empty(),
                format!("{prefix}Role calls an OpenSearch domain: {domain_grants:?}"),
            );
        }
        TargetAccess::OpenSearchDomain => {
            problems.extend(opensearch_url_problems(template, function, &function_id));
            for (parameter, service) in [
                ("OpenSearchDomainEndpoint", None),
                ("OpenSearchDomainArn", Some("es")),
            ] {
                let scalars = yaml_scalars(template, parameter);
                let pattern = scalars
                    .get("AllowedPattern")
                    .and_then(Json::as_str)
                    .unwrap_or_default();
                need(
                    &mut problems,
                    scalars.get("Default") == Some(&Json::String(String::new()))
                        && pattern.starts_with("^(|")
                        && service.is_none_or(|s| {
                            pattern.starts_with("^(|arn:aws") && pattern.contains(&format!(":{s}:"))
                        }),
                    format!(
                        "parameter {parameter}: default empty, AllowedPattern empty or {}: {pattern}",
                        service.map_or("a host".to_owned(), |s| format!("an {s} ARN"))
                    ),
                );
            }
            let rule = yaml_section(template, &format!("{prefix}Domain")) + "\n";
            need(
                &mut problems,
                rule.contains(&format!("RuleCondition: !Equals [!Ref {flag}, \"true\"]\n"))
                    && rule.contains("Assert: !Not [!Equals [!Ref OpenSearchDomainEndpoint, \"\"]]\n")
                    && rule.contains("Assert: !Not [!Equals [!Ref OpenSearchDomainArn, \"\"]]\n"),
                format!("no rule {prefix}Domain requiring OpenSearchDomainEndpoint and OpenSearchDomainArn when {flag} is true"),
            );
            // The HTTP methods the adapter sends, on the domain's paths.
            let wanted = opensearch_methods_sent();
            need(
                &mut problems,
                domain_grants.len() == 1
                    && opensearch_actions(&domain_grants[0]) == wanted
                    && format!("{}\n", domain_grants[0])
                        .contains("Resource: !Sub ${OpenSearchDomainArn}/*\n"),
                format!(
                    "{prefix}Role must grant {wanted:?} (the methods crates/opensearch sends) on `!Sub ${{OpenSearchDomainArn}}/*`, in one statement: {domain_grants:?}"
                ),
            );
        }
    }
    problems
}

/// The `es:` actions of an IAM statement (`- es:...` or `Action: es:...`).
fn opensearch_actions(statement: &str) -> std::collections::BTreeSet<String> {
    statement
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("- ").or_else(|| l.strip_prefix("Action: ")))
        .filter(|a| a.starts_with("es:"))
        .map(str::to_owned)
        .collect()
}

/// Modules of `crates/opensearch` the function never runs: their requests
/// go out with an operator's credentials (the CLI) or to a local node.
const OPENSEARCH_OPERATOR_MODULES: [&str; 3] = [
    // `dms-cdc index create|swap [--delete-old]`: the only DELETE.
    "blue_green.rs",
    // `dms-cdc reconcile` reading documents back.
    "rows.rs",
    // The throwaway node of the tests.
    "local.rs",
];

/// The IAM actions of the HTTP methods `crates/opensearch` sends from the
/// function (`http::Method::GET` -> `es:ESHttpGet`): what its role needs.
fn opensearch_methods_sent() -> std::collections::BTreeSet<String> {
    let dir = repo().join("crates/opensearch/src");
    let mut actions = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("crates/opensearch/src") {
        let path = entry.expect("a directory entry").path();
        let module = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !module.ends_with(".rs") || OPENSEARCH_OPERATOR_MODULES.contains(&module) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a source file");
        for part in text.split("Method::").skip(1) {
            let method: String = part.chars().take_while(char::is_ascii_uppercase).collect();
            if let Some((first, rest)) = method.split_at_checked(1) {
                actions.insert(format!("es:ESHttp{first}{}", rest.to_lowercase()));
            }
        }
    }
    assert!(
        actions.contains("es:ESHttpPost"),
        "no _bulk POST found in {}: {actions:?}",
        dir.display()
    );
    actions
}

/// What is wrong with the OpenSearch function's `DMS_CDC_TARGET_URL`: it
/// must name `OpenSearchDomainEndpoint`, sign in the stack's region, and
/// (with an example endpoint and the other parameters' defaults) be a URL
/// the adapter accepts, reaching the domain over HTTPS with SigV4 for the
/// `es` service the role's actions are for.
fn opensearch_url_problems(template: &str, function: &str, function_id: &str) -> Vec<String> {
    let key = format!("{}: !Sub ", dms_cdc::lambda::ENV_TARGET_URL);
    let Some(sub) = function
        .lines()
        .find_map(|l| l.trim().strip_prefix(key.as_str()))
    else {
        return vec![format!("{function_id} lacks `{key}...`")];
    };
    let head = "opensearch://${OpenSearchDomainEndpoint}?sigv4-region=${AWS::Region}";
    if !sub.starts_with(head) {
        return vec![format!(
            "{function_id}: {key}{sub} does not start with {head}"
        )];
    }
    let mut url = String::new();
    let mut rest = sub;
    while let Some((before, after)) = rest.split_once("${") {
        let Some((name, after)) = after.split_once('}') else {
            return vec![format!("{function_id}: {key}{sub}: an unclosed ${{")];
        };
        url.push_str(before);
        match name {
            "OpenSearchDomainEndpoint" => url.push_str("vpc-x.eu-west-1.es.amazonaws.com"),
            "AWS::Region" => url.push_str("eu-west-1"),
            parameter => match yaml_scalars(template, parameter).get("Default") {
                Some(Json::String(default)) => url.push_str(default),
                _ => {
                    return vec![format!(
                        "{function_id}: {key}{sub}: parameter {parameter} has no default"
                    )]
                }
            },
        }
        rest = after;
    }
    url.push_str(rest);
    match dms_cdc::opensearch::connection::Config::from_url(&url) {
        Err(e) => vec![format!("{function_id}: {url}: {e}")],
        Ok(config) => {
            let signed = config.endpoint == "https://vpc-x.eu-west-1.es.amazonaws.com:443"
                && config.basic.is_none()
                && config.sigv4_region.as_deref() == Some("eu-west-1")
                && config.sigv4_service == "es";
            if signed {
                Vec::new()
            } else {
                vec![format!(
                    "{function_id}: {url} is not the domain over HTTPS signed for es in the region: {config:?}"
                )]
            }
        }
    }
}

#[test]
fn every_function_crate_is_described() {
    let described: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
    let mut sorted = described.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        function_crates(),
        "FUNCTIONS of tests/infra.rs must describe every crate in functions/"
    );
    for f in &FUNCTIONS {
        assert!(
            f.prefix.ends_with("Target") && f.prefix.to_lowercase() == f.name.replace('-', ""),
            "{}: prefix {}",
            f.name,
            f.prefix
        );
    }
    assert_eq!(deploy_condition("PostgresTarget"), "DeployPostgres");
    assert_eq!(deploy_condition("OpenSearchTarget"), "DeployOpenSearch");
}

#[test]
fn the_function_checks_name_what_is_missing() {
    let template = read("template.yaml");
    let globals = yaml_section(&template, "Globals");
    for f in &FUNCTIONS {
        assert_eq!(
            function_problems(&template, &globals, f.name),
            Vec::<String>::new()
        );
    }
    let broken = template
        .replace("DestinationConfig", "Destinations")
        .replace(
            "-postgres-target\n                Row0",
            "-other\n                Row0",
        )
        .replace("- !Ref PostgresTargetSecretArn", "- \"*\"");
    let problems = function_problems(&broken, &globals, "postgres-target");
    for expected in [
        "postgres-target: the dashboard lacks `- Fn: !Sub ${AWS::StackName}-postgres-target`",
        "postgres-target: PostgresTargetRole must read SourceSecretArn and PostgresTargetSecretArn only",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "{expected}: {problems:#?}"
        );
    }
    // The OpenSearch function: a target secret, a wider grant, a URL that
    // does not sign, a forgotten rule.
    let broken = template
        .replace(
            "          DMS_CDC_FUNCTION_NAME: !Sub ${AWS::StackName}-opensearch-target\n",
            "          DMS_CDC_FUNCTION_NAME: !Sub ${AWS::StackName}-opensearch-target\n          DMS_CDC_TARGET_SECRET_ID: !Ref SourceSecretArn\n",
        )
        .replace("- es:ESHttpHead\n", "- es:ESHttpDelete\n")
        .replace("?sigv4-region=${AWS::Region}&", "?")
        .replace("!Equals [!Ref DeployOpenSearchTarget, \"true\"]]", "]");
    let problems = function_problems(&broken, &globals, "opensearch-target");
    for expected in [
        "opensearch-target: OpenSearchTargetFunction gets DMS_CDC_TARGET_SECRET_ID, which its target (OpenSearchDomain) does not take",
        "opensearch-target: OpenSearchTargetRole must grant {\"es:ESHttpGet\", \"es:ESHttpHead\", \"es:ESHttpPost\", \"es:ESHttpPut\"}",
        "opensearch-target: OpenSearchTargetFunction: DMS_CDC_TARGET_URL: !Sub opensearch://${OpenSearchDomainEndpoint}?prefix=",
        "opensearch-target: rule AtLeastOneTarget lacks DeployOpenSearchTarget",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "{expected}: {problems:#?}"
        );
    }
    // A secret per source instance: a read that leaves the target's secret
    // out; decrypts of both kinds of source kept in one case.
    let broken = template.replacen(
        "!Sub \"${SourceInstanceSecretArns},${PostgresTargetSecretArn}\"]",
        "!Ref SourceInstanceSecretArns]",
        1,
    );
    let problems = function_problems(&broken, &globals, "postgres-target");
    let expected = "postgres-target: PostgresTargetRole must read the secrets of SourceInstanceSecrets and PostgresTargetSecretArn only, with SourceInstanceSecrets";
    assert!(
        problems.len() == 1 && problems[0].starts_with(expected),
        "{expected}: {problems:#?}"
    );
    let broken = template.replace(
        "- HasSourceInstances\n                  - Effect: Allow\n                    Action: kms:Decrypt\n",
        "- HasSourceSecret\n                  - Effect: Allow\n                    Action: kms:Decrypt\n",
    );
    let problems = function_problems(&broken, &globals, "opensearch-target");
    let expected = [
        "opensearch-target: OpenSearchTargetRole must decrypt (kms:EncryptionContext:SecretARN) SourceSecretArn only, with SourceSecretArn",
        "opensearch-target: OpenSearchTargetRole must decrypt (kms:EncryptionContext:SecretARN) the secrets of SourceInstanceSecrets only, with SourceInstanceSecrets",
    ];
    assert!(
        problems.len() == 2 && problems.iter().zip(expected).all(|(p, e)| p.starts_with(e)),
        "{expected:?}: {problems:#?}"
    );
    assert!(function_problems(&template, &globals, "sqlite-target")[0]
        .contains("not in FUNCTIONS of tests/infra.rs"));
}

/// The statements of the IAM policies in a template: each `- Sid:` or
/// `- Effect:` item with the lines indented under it.
fn policy_statements(text: &str) -> Vec<String> {
    guarded_statements(text)
        .into_iter()
        .map(|(_, statement)| statement)
        .collect()
}

/// The statements of the IAM policies in a template (as
/// [`policy_statements`]), each with the condition it is under when it is
/// the first branch of `- !If [Condition, statement, !Ref AWS::NoValue]`
/// (block form), else `None`.
fn guarded_statements(text: &str) -> Vec<(Option<String>, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    // The lines before `i` that are neither blank nor comments, nearest first.
    let before = |i: usize| {
        lines[..i]
            .iter()
            .rev()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .copied()
    };
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if !(t.starts_with("- Sid:") || t.starts_with("- Effect:")) {
            continue;
        }
        let own = indent(line);
        let body: Vec<&str> = std::iter::once(*line)
            .chain(
                lines[i + 1..]
                    .iter()
                    .take_while(|l| l.trim().is_empty() || indent(l) > own)
                    .copied(),
            )
            .collect();
        let else_branch = lines[i + body.len()..]
            .iter()
            .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|l| l.trim());
        let mut previous = before(i);
        let guard = match (previous.next(), previous.next()) {
            (Some(condition), Some(tag))
                if indent(condition) == own
                    && tag.trim() == "- !If"
                    && else_branch == Some("- !Ref AWS::NoValue") =>
            {
                condition
                    .trim()
                    .strip_prefix("- ")
                    .filter(|c| c.chars().all(|ch| ch.is_ascii_alphanumeric()))
                    .map(str::to_owned)
            }
            _ => None,
        };
        out.push((guard, body.join("\n")));
    }
    out
}

/// The value of `key` in a block of YAML, as flow text: the rest of its
/// line (`Key: !Ref X`), or its block list items gathered into one
/// (`Key:` or `Key: !If` followed by `- item` lines, each item on one
/// line) as `[a, b]` or `!If [a, b, c]`. `None` when the block has no such
/// key or its value has another shape.
fn yaml_value(block: &str, key: &str) -> Option<String> {
    let lines: Vec<&str> = block.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let head = format!("{key}:");
    let own_line = |l: &&str| {
        let t = l.trim_start().trim_start_matches("- ");
        t == head || t.starts_with(&format!("{head} "))
    };
    let start = lines.iter().position(own_line)?;
    let rest = lines[start].trim_start().trim_start_matches("- ")[head.len()..].trim();
    if !(rest.is_empty() || (rest.starts_with('!') && !rest.contains(' '))) {
        return Some(rest.to_owned());
    }
    let own = indent(lines[start]);
    let items: Option<Vec<&str>> = lines[start + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || indent(l) > own)
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.strip_prefix("- "))
        .collect();
    let list = format!("[{}]", items?.join(", "));
    Some(if rest.is_empty() {
        list
    } else {
        format!("{rest} {list}")
    })
}

/// A template expression in YAML flow form: a scalar, a list, or a tagged
/// expression (`!Ref X`, `!If [...]`).
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Scalar(String),
    List(Vec<Expr>),
    Tagged(String, Box<Expr>),
}

/// Parses the flow text of a value ([`yaml_value`]): plain, single- and
/// double-quoted scalars, `[...]` lists and `!Tag` prefixes.
fn parse_flow(text: &str) -> Result<Expr, String> {
    fn expr(chars: &[char], at: &mut usize) -> Result<Expr, String> {
        while chars.get(*at).is_some_and(|c| c.is_whitespace()) {
            *at += 1;
        }
        match chars.get(*at) {
            None => Err("an expression is missing".to_owned()),
            Some('!') => {
                let start = *at + 1;
                while chars.get(*at).is_some_and(|c| !c.is_whitespace()) {
                    *at += 1;
                }
                let tag: String = chars[start..*at].iter().collect();
                Ok(Expr::Tagged(tag, Box::new(expr(chars, at)?)))
            }
            Some('[') => {
                *at += 1;
                let mut items = Vec::new();
                loop {
                    while chars.get(*at).is_some_and(|c| c.is_whitespace()) {
                        *at += 1;
                    }
                    if chars.get(*at) == Some(&']') {
                        *at += 1;
                        return Ok(Expr::List(items));
                    }
                    items.push(expr(chars, at)?);
                    while chars.get(*at).is_some_and(|c| c.is_whitespace()) {
                        *at += 1;
                    }
                    match chars.get(*at) {
                        Some(',') => *at += 1,
                        Some(']') => {}
                        other => return Err(format!("expected `,` or `]`, found {other:?}")),
                    }
                }
            }
            Some(&quote) if quote == '"' || quote == '\'' => {
                *at += 1;
                let mut value = String::new();
                loop {
                    match chars.get(*at) {
                        None => return Err(format!("unclosed {quote}")),
                        Some('\\') if quote == '"' => {
                            value.extend(chars.get(*at + 1));
                            *at += 2;
                        }
                        Some('\'') if quote == '\'' && chars.get(*at + 1) == Some(&'\'') => {
                            value.push('\'');
                            *at += 2;
                        }
                        Some(&c) if c == quote => {
                            *at += 1;
                            return Ok(Expr::Scalar(value));
                        }
                        Some(&c) => {
                            value.push(c);
                            *at += 1;
                        }
                    }
                }
            }
            Some(_) => {
                let start = *at;
                while chars.get(*at).is_some_and(|c| *c != ',' && *c != ']') {
                    *at += 1;
                }
                Ok(Expr::Scalar(
                    chars[start..*at]
                        .iter()
                        .collect::<String>()
                        .trim()
                        .to_owned(),
                ))
            }
        }
    }
    let chars: Vec<char> = text.chars().collect();
    let mut at = 0;
    let parsed = expr(&chars, &mut at)?;
    if chars[at..].iter().any(|c| !c.is_whitespace()) {
        return Err(format!("{text}: text after the expression"));
    }
    Ok(parsed)
}

/// A value as CloudFormation resolves it.
#[derive(Debug, Clone, PartialEq)]
enum Resolved {
    Str(String),
    List(Vec<Resolved>),
    Bool(bool),
    /// `!Ref AWS::NoValue`: left out of the list it is in.
    NoValue,
}

/// An example deployment of `template.yaml`: the parameter values given
/// (the others take their defaults), against which its conditions, rules
/// and values resolve as CloudFormation resolves them, for the intrinsic
/// functions the template uses around the source secrets.
struct Deployment<'a> {
    template: &'a str,
    given: BTreeMap<&'static str, String>,
}

/// Full ARNs of example secrets: the source, two source instances, and
/// the two database targets.
const SOURCE_ARN: &str =
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dms-cdc/reader-AbCdEf";
const EU_ARN: &str =
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dms-cdc/reader-eu-GhIjKl";
const US_ARN: &str =
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dms-cdc/reader-us-MnOpQr";
const MYSQL_TARGET_ARN: &str =
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dms-cdc/mysql-StUvWx";
const POSTGRES_TARGET_ARN: &str =
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dms-cdc/pg-YzAbCd";

impl<'a> Deployment<'a> {
    /// Every function deployed, and no source parameter given yet.
    fn all_functions(template: &'a str) -> Self {
        let given = BTreeMap::from([
            ("DeployMysqlTarget", "true".to_owned()),
            ("MysqlTargetSecretArn", MYSQL_TARGET_ARN.to_owned()),
            ("DeployPostgresTarget", "true".to_owned()),
            ("PostgresTargetSecretArn", POSTGRES_TARGET_ARN.to_owned()),
            ("DeployOpenSearchTarget", "true".to_owned()),
            (
                "OpenSearchDomainEndpoint",
                "vpc-x.eu-west-1.es.amazonaws.com".to_owned(),
            ),
            (
                "OpenSearchDomainArn",
                "arn:aws:es:eu-west-1:123456789012:domain/x".to_owned(),
            ),
        ]);
        Deployment { template, given }
    }

    /// One source: `SourceSecretArn`.
    fn one_source(template: &'a str) -> Self {
        Self::all_functions(template).with("SourceSecretArn", SOURCE_ARN)
    }

    /// Two source instances, `eu` and `us`, each with its secret.
    fn per_instance(template: &'a str) -> Self {
        Self::all_functions(template)
            .with("SourceInstanceSecrets", &format!("eu={EU_ARN} us={US_ARN}"))
            .with("SourceInstanceSecretArns", &format!("{EU_ARN},{US_ARN}"))
    }

    fn with(mut self, parameter: &'static str, value: &str) -> Self {
        self.given.insert(parameter, value.to_owned());
        self
    }

    /// A parameter's value (given, else its default) or a pseudo parameter's.
    fn parameter(&self, name: &str) -> Result<String, String> {
        let pseudo = match name {
            "AWS::Region" => Some("eu-west-1"),
            "AWS::AccountId" => Some("123456789012"),
            "AWS::Partition" => Some("aws"),
            "AWS::StackName" => Some("dms-cdc"),
            _ => None,
        };
        if let Some(value) = self.given.get(name).map(String::as_str).or(pseudo) {
            return Ok(value.to_owned());
        }
        let parameters = yaml_section(self.template, "Parameters");
        if yaml_section(&parameters, name).is_empty() {
            return Err(format!("no parameter {name}"));
        }
        match yaml_scalars(&parameters, name).get("Default") {
            Some(Json::String(default)) => Ok(default.clone()),
            _ => Err(format!("parameter {name} is not given and has no default")),
        }
    }

    /// Whether the template's condition `name` holds.
    fn condition(&self, name: &str) -> Result<bool, String> {
        let conditions = yaml_section(self.template, "Conditions");
        let text = yaml_value(&conditions, name).ok_or_else(|| format!("no condition {name}"))?;
        self.boolean(&self.resolve_text(&text)?)
            .map_err(|e| format!("condition {name}: {e}"))
    }

    fn boolean(&self, value: &Resolved) -> Result<bool, String> {
        match value {
            Resolved::Bool(b) => Ok(*b),
            other => Err(format!("{other:?} is not a boolean")),
        }
    }

    fn string(&self, value: &Resolved) -> Result<String, String> {
        match value {
            Resolved::Str(s) => Ok(s.clone()),
            other => Err(format!("{other:?} is not a string")),
        }
    }

    /// A list of strings: a list, or what `!Split` made.
    fn strings(&self, value: &Resolved) -> Result<Vec<String>, String> {
        match value {
            Resolved::List(items) => items.iter().map(|i| self.string(i)).collect(),
            other => Err(format!("{other:?} is not a list")),
        }
    }

    fn resolve_text(&self, text: &str) -> Result<Resolved, String> {
        self.resolve(&parse_flow(text)?)
            .map_err(|e| format!("{text}: {e}"))
    }

    fn resolve(&self, expr: &Expr) -> Result<Resolved, String> {
        let args = |inner: &Expr, n: usize| -> Result<Vec<Expr>, String> {
            match inner {
                Expr::List(items) if items.len() == n => Ok(items.clone()),
                other => Err(format!("expected {n} arguments, got {other:?}")),
            }
        };
        match expr {
            Expr::Scalar(s) => Ok(Resolved::Str(s.clone())),
            Expr::List(items) => Ok(Resolved::List(
                items
                    .iter()
                    .map(|i| self.resolve(i))
                    .filter(|r| r != &Ok(Resolved::NoValue))
                    .collect::<Result<_, _>>()?,
            )),
            Expr::Tagged(tag, inner) => match (tag.as_str(), inner.as_ref()) {
                ("Ref", Expr::Scalar(name)) if name == "AWS::NoValue" => Ok(Resolved::NoValue),
                ("Ref", Expr::Scalar(name)) => self.parameter(name).map(Resolved::Str),
                ("Condition", Expr::Scalar(name)) => self.condition(name).map(Resolved::Bool),
                ("Sub", Expr::Scalar(text)) => {
                    let mut out = String::new();
                    let mut rest = text.as_str();
                    while let Some((before, after)) = rest.split_once("${") {
                        let (name, after) = after
                            .split_once('}')
                            .ok_or_else(|| format!("!Sub {text}: an unclosed ${{"))?;
                        out.push_str(before);
                        out.push_str(&self.parameter(name)?);
                        rest = after;
                    }
                    out.push_str(rest);
                    Ok(Resolved::Str(out))
                }
                ("Split", inner) => {
                    let [separator, text] = &args(inner, 2)?[..] else {
                        unreachable!()
                    };
                    let separator = self.string(&self.resolve(separator)?)?;
                    let text = self.string(&self.resolve(text)?)?;
                    Ok(Resolved::List(
                        text.split(separator.as_str())
                            .map(|s| Resolved::Str(s.to_owned()))
                            .collect(),
                    ))
                }
                ("Join", inner) => {
                    let [separator, list] = &args(inner, 2)?[..] else {
                        unreachable!()
                    };
                    let separator = self.string(&self.resolve(separator)?)?;
                    Ok(Resolved::Str(
                        self.strings(&self.resolve(list)?)?.join(&separator),
                    ))
                }
                ("If", inner) => {
                    let [condition, then, otherwise] = &args(inner, 3)?[..] else {
                        unreachable!()
                    };
                    let Expr::Scalar(condition) = condition else {
                        return Err(format!("!If on {condition:?}"));
                    };
                    self.resolve(if self.condition(condition)? {
                        then
                    } else {
                        otherwise
                    })
                }
                ("Equals", inner) => {
                    let [a, b] = &args(inner, 2)?[..] else {
                        unreachable!()
                    };
                    Ok(Resolved::Bool(self.resolve(a)? == self.resolve(b)?))
                }
                ("Not", inner) => {
                    let [a] = &args(inner, 1)?[..] else {
                        unreachable!()
                    };
                    Ok(Resolved::Bool(!self.boolean(&self.resolve(a)?)?))
                }
                (tag @ ("And" | "Or"), Expr::List(items)) => {
                    let values: Vec<bool> = items
                        .iter()
                        .map(|i| self.boolean(&self.resolve(i)?))
                        .collect::<Result<_, _>>()?;
                    Ok(Resolved::Bool(if tag == "And" {
                        values.iter().all(|v| *v)
                    } else {
                        values.iter().any(|v| *v)
                    }))
                }
                (tag, inner) => Err(format!("!{tag} {inner:?} is not resolved here")),
            },
        }
    }

    /// The template's rule assertions that fail for this deployment, as
    /// `Rule: AssertDescription` (a rule applies when its RuleCondition
    /// holds, or when it has none).
    fn failed_assertions(&self) -> Result<Vec<String>, String> {
        let rules = yaml_section(self.template, "Rules");
        let names: Vec<&str> = rules
            .lines()
            .filter(|l| l.len() - l.trim_start().len() == 2 && !l.trim().starts_with('#'))
            .filter_map(|l| l.trim().strip_suffix(':'))
            .collect();
        let mut failed = Vec::new();
        for name in names {
            let rule = yaml_section(&rules, name);
            if let Some(condition) = yaml_value(&rule, "RuleCondition") {
                if !self.boolean(&self.resolve_text(&condition)?)? {
                    continue;
                }
            }
            let lines: Vec<&str> = rule.lines().map(str::trim).collect();
            for (i, line) in lines.iter().enumerate() {
                let Some(assert) = line.strip_prefix("- Assert: ") else {
                    continue;
                };
                if !self.boolean(&self.resolve_text(assert)?)? {
                    let description = lines
                        .get(i + 1)
                        .and_then(|l| l.strip_prefix("AssertDescription: "))
                        .unwrap_or_default();
                    failed.push(format!("{name}: {description}"));
                }
            }
        }
        Ok(failed)
    }

    /// `DMS_CDC_SOURCE_SECRET_ID` as every function gets it (Globals).
    fn source_setting(&self) -> Result<String, String> {
        let globals = yaml_section(self.template, "Globals");
        let text = yaml_value(&globals, dms_cdc::lambda::ENV_SOURCE_SECRET_ID)
            .ok_or("Globals do not set DMS_CDC_SOURCE_SECRET_ID")?;
        self.string(&self.resolve_text(&text)?)
    }

    /// The secret ids the function reads its source from: the parts of
    /// its source setting, as the function splits it.
    fn source_secret_ids(&self) -> Result<Vec<String>, String> {
        let setting = self.source_setting()?;
        let parts = dms_cdc::sources::setting_parts(&setting)
            .map_err(|e| format!("DMS_CDC_SOURCE_SECRET_ID {setting:?}: {e}"))?;
        Ok(parts.into_iter().map(|(_, id)| id.to_owned()).collect())
    }

    /// The values of `key` in the statements of `role` that hold `needle`
    /// and are in the policy for this deployment (their `!If` condition
    /// holds, if they have one), each resolved to a sorted list of strings.
    fn granted(&self, role: &str, needle: &str, key: &str) -> Vec<Result<Vec<String>, String>> {
        let mut out = Vec::new();
        for (guard, statement) in guarded_statements(role) {
            if !statement.contains(needle) {
                continue;
            }
            let active = match &guard {
                None => Ok(true),
                Some(condition) => self.condition(condition),
            };
            let resolved = active.and_then(|active| {
                if !active {
                    return Ok(None);
                }
                let text =
                    yaml_value(&statement, key).ok_or_else(|| format!("no {key}: {statement}"))?;
                let mut values = match self.resolve_text(&text)? {
                    Resolved::Str(one) => vec![one],
                    list => self.strings(&list)?,
                };
                values.sort();
                Ok(Some(values))
            });
            match resolved {
                Ok(None) => {}
                Ok(Some(values)) => out.push(Ok(values)),
                Err(e) => out.push(Err(e)),
            }
        }
        out
    }
}

#[test]
fn the_sam_template_allows_one_batch_per_shard() {
    // The checkpoint is per (function, shard) and records at or below it are
    // skipped: a second concurrent batch of the shard could move it past
    // records still in flight, which their retry would then skip.
    let template = read("template.yaml");
    let parameter = yaml_scalars(&template, "ParallelizationFactor");
    assert_eq!(parameter.get("Default"), Some(&Json::String("1".into())));
    assert_eq!(
        parameter.get("AllowedValues"),
        Some(&Json::String("[1]".into())),
        "template.yaml ParallelizationFactor must allow only 1"
    );
    for bound in ["MinValue", "MaxValue"] {
        assert!(
            !parameter.contains_key(bound),
            "ParallelizationFactor has a {bound}"
        );
    }
    assert!(template.contains("ParallelizationFactor: !Ref ParallelizationFactor\n"));
}

#[test]
fn the_sam_template_bounds_the_chunk_size_as_the_function_does() {
    let template = read("template.yaml");
    let parameter = yaml_scalars(&template, "ChunkSize");
    // The function accepts 1..=65535 rows per statement and puts fewer
    // rows of a wide target in one (dms_cdc::target::rows_per_statement).
    assert_eq!(parameter.get("MinValue"), Some(&Json::String("1".into())));
    assert_eq!(
        parameter.get("MaxValue"),
        Some(&Json::String(dms_cdc::target::MAX_PLACEHOLDERS.to_string()))
    );
    let default: usize = parameter["Default"].as_str().unwrap().parse().unwrap();
    let widest = mapping_files()
        .iter()
        .flat_map(|f| load(f).targets)
        .map(|t| t.column_names().len())
        .max()
        .unwrap();
    assert!(
        default * widest <= 65_535,
        "ChunkSize default {default} x {widest} columns exceeds 65,535 placeholders"
    );
}

#[test]
fn the_templates_grant_secrets_and_keys_narrowly() {
    let template = read("template.yaml");
    let statements = policy_statements(&template);
    let read_secrets: Vec<&String> = statements
        .iter()
        .filter(|s| s.contains("secretsmanager:GetSecretValue"))
        .collect();
    // Two statements per function, one of which the rules and conditions
    // keep: the source's secret (SourceSecretArn) or each source instance's
    // (SourceInstanceSecretArns), each with its target's, if it has one
    // (resolved per function both ways in function_problems).
    assert_eq!(
        read_secrets.len(),
        2 * function_crates().len(),
        "{read_secrets:?}"
    );
    for secrets in &read_secrets {
        assert!(
            !secrets.contains("Resource: \"*\"") && !secrets.contains("- \"*\""),
            "secrets: Resource \"*\":\n{secrets}"
        );
        assert!(
            format!("{secrets}\n").contains("- !Ref SourceSecretArn\n")
                || secrets.contains("${SourceInstanceSecretArns},")
                || secrets.contains("!Ref SourceInstanceSecretArns]"),
            "{secrets}"
        );
    }
    // "*" only where the action takes no resource (VPC network interfaces).
    for s in &statements {
        if s.contains("Resource: \"*\"") {
            assert!(
                s.contains("Sid: VpcNetworkInterfaces"),
                "Resource \"*\":\n{s}"
            );
        }
    }
    // The source secrets every function needs are required by rules
    // (the_source_is_one_secret_or_one_per_instance); the target secrets are
    // optional per target (function_problems checks their rule).
    // Optional ARNs: empty or an ARN of the right service.
    for (name, service) in [
        ("SourceSecretArn", "secretsmanager"),
        ("SourceInstanceSecretArns", "secretsmanager"),
        ("StreamArn", "kinesis"),
        ("StreamKmsKeyArn", "kms"),
        ("SecretsKmsKeyArn", "kms"),
        ("AlarmTopicArn", "sns"),
        ("OpenSearchDomainArn", "es"),
    ] {
        let parameter = yaml_scalars(&template, name);
        let pattern = parameter
            .get("AllowedPattern")
            .and_then(Json::as_str)
            .unwrap_or_else(|| panic!("template.yaml {name}: no AllowedPattern"));
        assert!(
            pattern.starts_with("^(|arn:aws") && pattern.contains(&format!(":{service}:")),
            "template.yaml {name}: {pattern}"
        );
    }
    // A domain's HTTP API method by method, on the domain's paths (checked
    // per function in function_problems), never every action or domain.
    for s in statements.iter().filter(|s| s.contains(" es:")) {
        assert!(
            !s.contains("es:*") && !s.contains("es:ESHttp*"),
            "es: wildcard:\n{s}"
        );
        assert!(
            format!("{s}\n").contains("Resource: !Sub ${OpenSearchDomainArn}/*\n"),
            "es: actions beyond the domain:\n{s}"
        );
    }
    // Key grants only through the service that uses the key.
    for s in statements.iter().filter(|s| s.contains("kms:Decrypt")) {
        assert!(
            s.contains("kms:ViaService: "),
            "kms:Decrypt without kms:ViaService:\n{s}"
        );
    }
}

/// A full Secrets Manager secret ARN, with the 6-character suffix an IAM
/// resource must match, as the instance parameters' patterns spell it.
const SECRET_ARN_PATTERN: &str =
    "arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}";

#[test]
fn the_source_is_one_secret_or_one_per_instance() {
    let template = read("template.yaml");
    // Optional each (rules require them), patterns of full secret ARNs;
    // instance names as the function reads them (`name=`, letters, digits,
    // `_` and `-`), and without a name for the default source.
    for (name, pattern) in [
        (
            "SourceSecretArn",
            "^(|arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+)$".to_owned(),
        ),
        (
            "SourceInstanceSecrets",
            format!("^(|([A-Za-z0-9_-]+=)?{SECRET_ARN_PATTERN}( ([A-Za-z0-9_-]+=)?{SECRET_ARN_PATTERN})*)$"),
        ),
        (
            "SourceInstanceSecretArns",
            format!("^(|{SECRET_ARN_PATTERN}(,{SECRET_ARN_PATTERN})*)$"),
        ),
    ] {
        let parameter = yaml_scalars(&template, name);
        for (key, value) in [
            ("Type", "String".to_owned()),
            ("Default", String::new()),
            ("AllowedPattern", pattern),
        ] {
            assert_eq!(
                parameter.get(key),
                Some(&Json::String(value)),
                "template.yaml {name}.{key}"
            );
        }
    }

    // The rules take one source, or a secret per instance with its ARNs
    // for the policies; not both, not neither, not half of the second.
    let one = Deployment::one_source(&template);
    let per_instance = Deployment::per_instance(&template);
    assert_eq!(one.failed_assertions(), Ok(Vec::new()));
    assert_eq!(per_instance.failed_assertions(), Ok(Vec::new()));
    for (deployment, expected) in [
        (
            Deployment::all_functions(&template),
            "OneSourceSecret: SourceSecretArn is required",
        ),
        (
            Deployment::per_instance(&template).with("SourceSecretArn", SOURCE_ARN),
            "SourceSecretPerInstance: SourceInstanceSecrets names the source of each instance, so SourceSecretArn must be empty",
        ),
        (
            Deployment::per_instance(&template).with("SourceInstanceSecretArns", ""),
            "SourceSecretPerInstance: SourceInstanceSecrets is set, so SourceInstanceSecretArns must list its secret ARNs",
        ),
        (
            Deployment::one_source(&template).with("SourceInstanceSecretArns", EU_ARN),
            "OneSourceSecret: SourceInstanceSecretArns goes with SourceInstanceSecrets",
        ),
    ] {
        let failed = deployment.failed_assertions();
        assert!(
            failed
                .as_ref()
                .is_ok_and(|f| f.len() == 1 && f[0].starts_with(expected)),
            "{expected}: {failed:?}"
        );
    }

    // So exactly one of the policies' conditions holds, and every function
    // reads the source of that case: the secret, or the instances' by name
    // (as the function splits the setting). That the roles grant exactly
    // these (and the target's) is checked per function both ways by
    // function_problems.
    for (deployment, conditions, setting) in [
        (&one, (Ok(true), Ok(false)), SOURCE_ARN.to_owned()),
        (
            &per_instance,
            (Ok(false), Ok(true)),
            format!("eu={EU_ARN} us={US_ARN}"),
        ),
    ] {
        assert_eq!(
            (
                deployment.condition("HasSourceSecret"),
                deployment.condition("HasSourceInstances")
            ),
            conditions,
            "{setting}"
        );
        assert_eq!(deployment.source_setting(), Ok(setting));
    }
    let setting = per_instance.source_setting().unwrap();
    assert_eq!(
        dms_cdc::sources::setting_parts(&setting).unwrap(),
        [(Some("eu"), EU_ARN), (Some("us"), US_ARN)]
    );
    assert_eq!(
        per_instance.source_secret_ids(),
        Ok(per_instance
            .parameter("SourceInstanceSecretArns")
            .unwrap()
            .split(',')
            .map(str::to_owned)
            .collect())
    );
}

#[test]
fn service_trust_is_limited_to_this_account() {
    for file in ["template.yaml", "infra/dms/dms.yaml"] {
        let text = read(file);
        let trusts: Vec<String> = policy_statements(&text)
            .into_iter()
            .filter(|s| s.contains("sts:AssumeRole"))
            .collect();
        assert!(!trusts.is_empty(), "{file}: no trust policy");
        for s in &trusts {
            assert!(
                s.contains("aws:SourceAccount: !Ref AWS::AccountId"),
                "{file}: a service may assume the role for any account:\n{s}"
            );
        }
    }
}

/// The statements of a SQL file, comments (`-- ...`) left out and blanks
/// collapsed to one space (a function body is cut at its `;`s too).
fn sql_statements(sql: &str) -> Vec<String> {
    let code: String = sql
        .lines()
        .map(|l| l.split_once("--").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect()
}

/// What `infra/source/postgres-source.sql` (given as `sql`) leaves undone
/// for the source tables `tables`: REPLICA IDENTITY FULL (the whole old row
/// in before images and deletes), and SELECT for the DMS user and the
/// functions' reader.
fn postgres_source_problems<'a>(
    sql: &str,
    tables: impl IntoIterator<Item = &'a TableName>,
) -> Vec<String> {
    let statements = sql_statements(sql);
    let full: Vec<&str> = statements
        .iter()
        .filter_map(|s| {
            s.strip_prefix("ALTER TABLE ")?
                .strip_suffix(" REPLICA IDENTITY FULL")
        })
        .collect();
    let selected_by = |role: &str| -> Vec<String> {
        let suffix = format!(" TO {role}");
        statements
            .iter()
            .filter_map(|s| s.strip_prefix("GRANT SELECT ON ")?.strip_suffix(&suffix))
            .flat_map(|list| list.split(',').map(|t| t.trim().to_owned()))
            .collect()
    };
    let (capture, reader) = (
        selected_by("dms_cdc_capture"),
        selected_by("dms_cdc_reader"),
    );
    let mut problems = Vec::new();
    for table in tables {
        let name = format!("{}.{}", table.schema, table.table);
        if !full.contains(&name.as_str()) {
            problems.push(format!(
                "{name}: no ALTER TABLE {name} REPLICA IDENTITY FULL"
            ));
        }
        for (role, granted) in [("dms_cdc_capture", &capture), ("dms_cdc_reader", &reader)] {
            if !granted.contains(&name) {
                problems.push(format!("{name}: no GRANT SELECT to {role}"));
            }
        }
    }
    problems
}

#[test]
fn the_postgresql_source_file_prepares_every_mapped_table() {
    let sql = read("infra/source/postgres-source.sql");
    let mut problems = Vec::new();
    for file in mapping_files() {
        let mapping = load(&file);
        for p in postgres_source_problems(&sql, mapping.sources.keys()) {
            problems.push(format!("{}: {p}", file.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "infra/source/postgres-source.sql:\n{}",
        problems.join("\n")
    );
    // The check names what is missing, and reads no commented-out statement.
    let users = TableName::new("recipes_src", "users");
    let broken = sql
        .replace(
            "ALTER TABLE recipes_src.users          REPLICA IDENTITY FULL;",
            "-- ALTER TABLE recipes_src.users REPLICA IDENTITY FULL;",
        )
        .replace(
            "GRANT SELECT ON recipes_src.users, recipes_src.recipes, recipes_src.recipe_stories,\n  recipes_src.ingredients TO dms_cdc_reader;",
            "GRANT SELECT ON recipes_src.recipes TO dms_cdc_reader;",
        );
    assert_eq!(
        postgres_source_problems(&broken, [&users]),
        [
            "recipes_src.users: no ALTER TABLE recipes_src.users REPLICA IDENTITY FULL",
            "recipes_src.users: no GRANT SELECT to dms_cdc_reader",
        ]
    );
}

/// `key: scalar` pairs of the lines under `header` (a `Key: !If` line,
/// whose branches are list items), tags and comments skipped.
fn yaml_branch_scalars(text: &str, header: &str) -> BTreeMap<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == header)
        .unwrap_or_else(|| panic!("no `{header}` line"));
    let indent = |l: &str| l.len() - l.trim_start().len();
    let own = indent(lines[start]);
    lines[start + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || indent(l) > own)
        .map(|l| l.trim().trim_start_matches("- "))
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(": "))
        .filter(|(_, v)| !v.starts_with('!'))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

#[test]
fn the_dms_template_reads_postgresql_as_the_source_file_prepares_it() {
    let template = read("infra/dms/dms.yaml");
    let sql = read("infra/source/postgres-source.sql");
    // The MySQL source stays the default, and a PostgreSQL one is chosen
    // by the engine name alone.
    let engine = yaml_scalars(&template, "SourceEngine");
    assert_eq!(engine.get("Default"), Some(&Json::String("aurora".into())));
    assert_eq!(
        engine.get("AllowedValues"),
        Some(&Json::String(
            "[aurora, mysql, aurora-postgresql, postgres]".into()
        ))
    );
    for line in [
        "EngineName: !Ref SourceEngine",
        "IsPostgresSource: !Or [!Equals [!Ref SourceEngine, aurora-postgresql], !Equals [!Ref SourceEngine, postgres]]",
        "DatabaseName: !If [IsPostgresSource, !Ref SourceDatabaseName, !Ref AWS::NoValue]",
    ] {
        assert!(
            template.lines().any(|l| l.trim() == line),
            "dms.yaml lacks `{line}`"
        );
    }
    let mysql = yaml_branch_scalars(&template, "MySqlSettings: !If");
    assert!(mysql.is_empty(), "MySqlSettings: {mysql:?}");
    assert!(
        template.contains(
            "MySqlSettings: !If\n        - IsPostgresSource\n        - !Ref AWS::NoValue\n        - SecretsManagerSecretId: !Ref SourceSecretArn\n"
        ),
        "a MySQL source keeps its MySqlSettings"
    );

    let pg = yaml_branch_scalars(&template, "PostgreSqlSettings: !If");
    let setting = |key: &str| {
        pg.get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("PostgreSqlSettings.{key} is not set: {pg:?}"))
    };
    // The plugin of the slot the file shows how to create (and of the
    // local capture).
    assert_eq!(setting("PluginName"), "test-decoding");
    assert!(sql.contains("pg_create_logical_replication_slot('dms_cdc_recipes', 'test_decoding')"));
    // DDL as control records, from the objects the file creates, in the
    // schema where the DMS user may also create its heartbeat table.
    assert_eq!(setting("CaptureDdls"), "true");
    assert_eq!(setting("HeartbeatEnable"), "true");
    let schema = setting("DdlArtifactsSchema");
    assert_eq!(setting("HeartbeatSchema"), schema);
    let statements = sql_statements(&sql);
    for wanted in [
        format!("CREATE SCHEMA IF NOT EXISTS {schema}"),
        format!("GRANT USAGE, CREATE ON SCHEMA {schema} TO dms_cdc_capture"),
        format!("CREATE EVENT TRIGGER awsdms_intercept_ddl ON ddl_command_end EXECUTE PROCEDURE {schema}.awsdms_intercept_ddl()"),
    ] {
        assert!(
            statements.contains(&wanted),
            "postgres-source.sql lacks `{wanted}`"
        );
    }
    for prefix in [
        format!("CREATE TABLE IF NOT EXISTS {schema}.awsdms_ddl_audit ("),
        format!("CREATE OR REPLACE FUNCTION {schema}.awsdms_intercept_ddl() RETURNS event_trigger"),
    ] {
        assert!(
            statements.iter().any(|s| s.starts_with(&prefix)),
            "postgres-source.sql lacks `{prefix}...`"
        );
    }
}

async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    tokio::spawn(connection);
    client
}

/// `infra/source/postgres-source.sql` runs, as a superuser (RDS's
/// `rds_replication` role stood in for), on a throwaway PostgreSQL server
/// with the sample schema; a test_decoding slot of the DMS user then sees a
/// DDL through the audit table and a delete's whole old row, and the
/// reader reads without writing.
#[tokio::test]
async fn the_postgresql_source_file_runs_and_readies_a_capture() {
    let pg = dms_cdc::local::PostgreSql::start_logical().expect("throwaway postgresql");
    pg.create_database("src").unwrap();
    pg.run_file("src", &repo().join("fixtures/source-postgres.sql"))
        .unwrap();
    let tables: Vec<TableName> = mapping_files()
        .iter()
        .flat_map(|f| load(f).sources.into_keys())
        .collect();
    // The sample schema sets REPLICA IDENTITY FULL itself: the file must.
    let mut setup = String::from("CREATE ROLE rds_replication NOLOGIN;");
    for t in &tables {
        setup.push_str(&format!(
            " ALTER TABLE {}.{} REPLICA IDENTITY DEFAULT;",
            t.schema, t.table
        ));
    }
    pg.run_sql("src", &setup).unwrap();
    pg.run_file("src", &repo().join("infra/source/postgres-source.sql"))
        .unwrap();
    // What rds_replication grants on RDS.
    pg.run_sql("src", "ALTER ROLE dms_cdc_capture REPLICATION")
        .unwrap();

    let admin = pg_client(&pg.url("src")).await;
    for t in &tables {
        let row = admin
            .query_one(
                "SELECT c.relreplident::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&t.schema, &t.table],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "f", "{}.{}", t.schema, t.table);
    }

    let dms = pg_client(&pg.url_as("dms_cdc_capture", "CHANGE-ME", "src")).await;
    dms.batch_execute(
        "SELECT pg_create_logical_replication_slot('dms_cdc_test', 'test_decoding'); \
         CREATE TABLE awsdms.awsdms_heartbeat (hb_key int PRIMARY KEY, hb_at timestamp)",
    )
    .await
    .expect("the DMS user creates its slot and heartbeat table");
    admin
        .batch_execute(
            // (The server runs with synchronous_commit off: a slot reads
            // only flushed WAL.)
            "SET synchronous_commit = on; SET search_path = recipes_src; \
             ALTER TABLE users ADD COLUMN nickname varchar(20); \
             INSERT INTO users (id, name, email, created_at) VALUES (9001, 'Ada', 'ada@example.com', now()); \
             DELETE FROM users WHERE id = 9001",
        )
        .await
        .unwrap();
    let changes: Vec<String> = dms
        .query(
            "SELECT data FROM pg_logical_slot_peek_changes('dms_cdc_test', NULL, NULL)",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        changes
            .iter()
            .any(|c| c.starts_with("table awsdms.awsdms_ddl_audit: INSERT:")
                && c.contains("c_tag[character varying]:'ALTER TABLE'")
                && c.contains("c_schema[character varying]:'recipes_src'")
                && c.contains("ADD COLUMN nickname")),
        "the DDL did not reach the audit table: {changes:#?}"
    );
    assert!(
        changes
            .iter()
            .any(|c| c.starts_with("table recipes_src.users: DELETE:")
                && c.contains("email[character varying]:'ada@example.com'")),
        "the delete does not carry the whole old row: {changes:#?}"
    );
    dms.batch_execute("SELECT pg_drop_replication_slot('dms_cdc_test')")
        .await
        .unwrap();

    let reader = pg_client(&pg.url_as("dms_cdc_reader", "CHANGE-ME", "src")).await;
    reader
        .query("SELECT count(*) FROM recipes_src.users", &[])
        .await
        .expect("the reader reads the mapped tables");
    let write = reader
        .batch_execute("DELETE FROM recipes_src.users")
        .await
        .expect_err("the reader cannot write");
    assert!(
        format!("{write:?}").contains("read-only transaction"),
        "{write:?}"
    );
}
