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
//! - `template.yaml` has one function per crate in `functions/`, the
//!   environment variables the function reads and alarms on the metrics it
//!   emits;
//! - `template.yaml` allows only what the function supports
//!   (`ParallelizationFactor` 1, `ChunkSize` up to 65535) and grants narrowly
//!   (the two secrets, never `*`; keys only through their service; service
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
    assert_eq!(
        count("FunctionResponseTypes: [ReportBatchItemFailures]\n"),
        crates.len()
    );
    assert_eq!(count("BisectBatchOnFunctionError: true\n"), crates.len());

    // The environment variables the function reads.
    for var in [
        dms_cdc::lambda::ENV_SOURCE_SECRET_ID,
        dms_cdc::lambda::ENV_TARGET_SECRET_ID,
        dms_cdc::lambda::ENV_SOURCE_DATABASE,
        dms_cdc::lambda::ENV_TARGET_DATABASE,
        dms_cdc::lambda::ENV_CHUNK_SIZE,
        dms_cdc::lambda::ENV_SOURCE_POOL_SIZE,
        dms_cdc::lambda::ENV_TARGET_POOL_SIZE,
        dms_cdc::lambda::ENV_FUNCTION_NAME,
        dms_cdc::lambda::ENV_SOURCE_SSL_MODE,
        dms_cdc::lambda::ENV_SOURCE_SSL_CA,
        dms_cdc::lambda::ENV_TARGET_SSL_MODE,
        dms_cdc::lambda::ENV_TARGET_SSL_CA,
    ] {
        assert!(
            template.contains(&format!("{var}: ")),
            "template.yaml does not set {var}"
        );
    }

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
}

/// The statements of the IAM policies in a template: each `- Sid:` or
/// `- Effect:` item with the lines indented under it.
fn policy_statements(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
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
        out.push(body.join("\n"));
    }
    out
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
    assert_eq!(read_secrets.len(), 1, "{read_secrets:?}");
    let secrets = read_secrets[0];
    assert!(
        !secrets.contains("Resource: \"*\"") && !secrets.contains("- \"*\""),
        "secrets: Resource \"*\":\n{secrets}"
    );
    assert!(secrets.contains("- !Ref SourceSecretArn\n"), "{secrets}");
    assert!(secrets.contains("- !Ref MysqlTargetSecretArn"), "{secrets}");
    // "*" only where the action takes no resource (VPC network interfaces).
    for s in &statements {
        if s.contains("Resource: \"*\"") {
            assert!(
                s.contains("Sid: VpcNetworkInterfaces"),
                "Resource \"*\":\n{s}"
            );
        }
    }
    for name in ["SourceSecretArn", "MysqlTargetSecretArn"] {
        let parameter = yaml_scalars(&template, name);
        assert_eq!(
            parameter.get("AllowedPattern"),
            Some(&Json::String(
                "^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$".into()
            )),
            "template.yaml {name}"
        );
        assert!(!parameter.contains_key("Default"), "{name} is required");
    }
    // Optional ARNs: empty or an ARN of the right service.
    for (name, service) in [
        ("StreamArn", "kinesis"),
        ("StreamKmsKeyArn", "kms"),
        ("SecretsKmsKeyArn", "kms"),
        ("AlarmTopicArn", "sns"),
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
    // Key grants only through the service that uses the key.
    for s in statements.iter().filter(|s| s.contains("kms:Decrypt")) {
        assert!(
            s.contains("kms:ViaService: "),
            "kms:Decrypt without kms:ViaService:\n{s}"
        );
    }
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
