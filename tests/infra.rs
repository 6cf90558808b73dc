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
//! - `template.yaml` has one function per crate in `functions/`, each with
//!   the environment variables the function reads, its own event source
//!   mapping (the documented settings), on-failure queue, role (its two
//!   secrets), alarms on the metrics it emits, dashboard band and outputs,
//!   all under its own `Deploy...` condition; its target parameters are
//!   optional and required by a rule only when it is deployed;
//! - `template.yaml` allows only what the function supports
//!   (`ParallelizationFactor` 1, `ChunkSize` up to 65535) and grants narrowly
//!   (each function its two secrets, never `*`; keys only through their service; service
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

/// `mysql-target` -> `MysqlTarget`: the prefix of a function's resources.
fn logical_prefix(crate_name: &str) -> String {
    crate_name
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The name of the condition a function's resources carry
/// (`DeployMysqlTarget` parameter -> `DeployMysql` condition).
fn deploy_condition(prefix: &str) -> String {
    format!("Deploy{}", prefix.trim_end_matches("Target"))
}

/// What is missing from the resources of the function built from
/// `functions/<name>`: its function, event source mapping, on-failure
/// queue, role, alarms, dashboard band, outputs, its parameters and the
/// condition that deploys it.
fn function_problems(template: &str, globals: &str, name: &str) -> Vec<String> {
    let prefix = logical_prefix(name);
    let condition = format!("Condition: {}\n", deploy_condition(&prefix));
    let function_id = format!("{prefix}Function");
    let function = yaml_section(template, &function_id);
    let mut problems = Vec::new();
    let mut need = |ok: bool, what: String| {
        if !ok {
            problems.push(format!("{name}: {what}"));
        }
    };
    if function.is_empty() {
        return vec![format!("{name}: no resource {function_id}")];
    }
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
        format!("DMS_CDC_TARGET_SECRET_ID: !Ref {prefix}SecretArn\n"),
        format!("DMS_CDC_TARGET_DATABASE: !Ref {prefix}Database\n"),
        format!("DMS_CDC_TARGET_SSL_MODE: !Ref {prefix}SslMode\n"),
        format!("DMS_CDC_TARGET_SSL_CA: !Ref {prefix}SslCa\n"),
    ] {
        need(
            function.contains(&format!("\n{}", line.trim_start()))
                || function.contains(&format!(" {line}")),
            format!("{function_id} lacks `{}`", line.trim_end()),
        );
    }
    // Every variable the function reads is set, by Globals or by the function.
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
        let key = format!("{var}: ");
        need(
            function.contains(&key) || globals.contains(&key),
            format!("{function_id} does not get {var}"),
        );
    }
    // The chunk size is the bounded parameter (see the chunk size test).
    need(
        !function.contains("DMS_CDC_CHUNK_SIZE: ")
            && globals.contains("DMS_CDC_CHUNK_SIZE: !Ref ChunkSize\n"),
        format!("{function_id}: DMS_CDC_CHUNK_SIZE is not !Ref ChunkSize"),
    );
    // Its own queue, role, log group and alarms, deployed with it.
    for (id, what) in [
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
    ] {
        let id = format!("{prefix}{id}");
        let block = yaml_section(template, &id) + "\n";
        need(!block.trim().is_empty(), format!("no {id}"));
        need(
            block.contains(&condition),
            format!("{id} lacks `{}`", condition.trim_end()),
        );
        need(
            block.contains(what.as_str()),
            format!("{id} lacks `{}`", what.trim_end()),
        );
    }
    for alarm in ["IteratorAgeAlarm", "ErrorsAlarm"] {
        let block = yaml_section(template, &format!("{prefix}{alarm}")) + "\n";
        need(
            block.contains(&format!("Value: !Ref {function_id}\n")),
            format!("{prefix}{alarm} does not watch {function_id}"),
        );
    }
    // Its role reads its two secrets only.
    let role = yaml_section(template, &format!("{prefix}Role")) + "\n";
    let secrets: Vec<String> = policy_statements(&role)
        .into_iter()
        .filter(|s| s.contains("secretsmanager:GetSecretValue"))
        .collect();
    need(
        secrets.len() == 1
            && secrets[0].contains("- !Ref SourceSecretArn\n")
            && secrets[0].contains(&format!("- !Ref {prefix}SecretArn"))
            && secrets[0].matches("- !Ref ").count() == 2,
        format!("{prefix}Role must read SourceSecretArn and {prefix}SecretArn only: {secrets:?}"),
    );
    // Its band on the dashboard.
    let dashboard = yaml_section(template, "Dashboard");
    for needle in [
        format!("${{{function_id}}}"),
        format!("${{{prefix}OnFailureQueue.QueueName}}"),
        format!("- Fn: !Sub ${{AWS::StackName}}-{name}\n"),
        format!("- {}\n", deploy_condition(&prefix)),
    ] {
        need(
            (dashboard.clone() + "\n").contains(&needle),
            format!("the dashboard lacks `{}`", needle.trim_end()),
        );
    }
    // Its parameters: optional in the template (another target's stack
    // need not give them), required by a rule when the function is deployed.
    let flag = format!("Deploy{prefix}");
    let parameter = yaml_scalars(template, &flag);
    need(
        parameter.get("AllowedValues") == Some(&Json::String("[\"true\", \"false\"]".into())),
        format!("parameter {flag} must be \"true\" or \"false\""),
    );
    let secret = format!("{prefix}SecretArn");
    let parameter = yaml_scalars(template, &secret);
    need(
        parameter.get("AllowedPattern")
            == Some(&Json::String(
                "^(|arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+)$".into(),
            ))
            && parameter.get("Default") == Some(&Json::String(String::new())),
        format!("parameter {secret}: empty or a secret ARN, default empty"),
    );
    let rule = yaml_section(template, &format!("{prefix}Secret")) + "\n";
    need(
        rule.contains(&format!("RuleCondition: !Equals [!Ref {flag}, \"true\"]\n"))
            && rule.contains(&format!("Assert: !Not [!Equals [!Ref {secret}, \"\"]]\n")),
        format!("no rule {prefix}Secret requiring {secret} when {flag} is true"),
    );
    let conditions = yaml_section(template, "Conditions") + "\n";
    need(
        conditions.contains(&format!("  {}: !And\n", deploy_condition(&prefix)))
            && conditions.contains(&format!("- !Equals [!Ref {flag}, \"true\"]\n")),
        format!("no condition {} on {flag}", deploy_condition(&prefix)),
    );
    for p in ["Database", "SslMode", "SslCa"] {
        let parameter = yaml_scalars(template, &format!("{prefix}{p}"));
        need(
            parameter.get("Default") == Some(&Json::String(String::new())),
            format!("parameter {prefix}{p} needs the default \"\""),
        );
    }
    problems
}

#[test]
fn the_function_checks_name_what_is_missing() {
    let template = read("template.yaml");
    let globals = yaml_section(&template, "Globals");
    assert!(function_problems(&template, &globals, "postgres-target").is_empty());
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
    assert_eq!(logical_prefix("mysql-target"), "MysqlTarget");
    assert_eq!(deploy_condition("PostgresTarget"), "DeployPostgres");
    assert!(function_problems(&template, &globals, "sqlite-target")[0]
        .contains("no resource SqliteTargetFunction"));
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
    // One statement per function, each naming its two secrets (checked
    // per function in function_problems).
    assert_eq!(
        read_secrets.len(),
        function_crates().len(),
        "{read_secrets:?}"
    );
    for secrets in &read_secrets {
        assert!(
            !secrets.contains("Resource: \"*\"") && !secrets.contains("- \"*\""),
            "secrets: Resource \"*\":\n{secrets}"
        );
        assert!(secrets.contains("- !Ref SourceSecretArn\n"), "{secrets}");
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
    // The source secret every function needs; the target secrets are
    // optional per target (function_problems checks their rule).
    let parameter = yaml_scalars(&template, "SourceSecretArn");
    assert_eq!(
        parameter.get("AllowedPattern"),
        Some(&Json::String(
            "^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$".into()
        )),
        "template.yaml SourceSecretArn"
    );
    assert!(
        !parameter.contains_key("Default"),
        "SourceSecretArn is required"
    );
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
