use super::*;
use proptest::prelude::*;

fn shard() -> ShardId {
    ShardId("shardId-000000000003".to_owned())
}

fn seq() -> SequenceNumber {
    SequenceNumber::parse("49590338271490256608559692538361571095921575989136588898").unwrap()
}

fn decode(json: &str) -> Result<DmsRecord, DecodeError> {
    decode_payload(&shard(), &seq(), json.as_bytes(), &DecodeOptions::default())
}

fn data(record: &DmsRecord) -> &DataChange {
    match &record.payload {
        Payload::Data(d) => d,
        Payload::Control(c) => panic!("expected data, got control {c:?}"),
    }
}

fn meta(record_type: &str, operation: &str) -> String {
    format!(
        r#"{{"timestamp":"2026-11-20T10:15:00.123456Z","record-type":"{record_type}","operation":"{operation}",
            "partition-key-type":"primary-key","partition-key-value":"recipes_src.recipes.42",
            "schema-name":"recipes_src","table-name":"recipes","transaction-id":8324128402,
            "commit-timestamp":"2026-11-20T10:15:00Z","stream-position":"mysql-bin.000024:5120:0:5188:8324128402:mysql-bin.000024:5000",
            "transaction-record-id":3,"prev-transaction-id":8324128401,"prev-transaction-record-id":1,
            "some-future-field":{{"nested":true}}}}"#
    )
}

#[test]
fn every_data_operation_decodes() {
    for (text, op) in [
        ("load", Operation::Load),
        ("insert", Operation::Insert),
        ("update", Operation::Update),
        ("delete", Operation::Delete),
    ] {
        let r = decode(&format!(
            r#"{{"data":{{"id":42}},"metadata":{}}}"#,
            meta("data", text)
        ))
        .unwrap();
        let d = data(&r);
        assert_eq!(d.operation, op);
        assert_eq!(d.table, TableName::new("recipes_src", "recipes"));
        assert_eq!(d.after.get("id"), Some(&Value::Int(42)));
        assert_eq!(op.as_str(), text);
    }
}

#[test]
fn metadata_and_transaction_details_are_kept() {
    let r = decode(&format!(
        r#"{{"data":{{"id":1}},"metadata":{}}}"#,
        meta("data", "insert")
    ))
    .unwrap();
    assert_eq!(
        r.metadata.partition_key_type.as_deref(),
        Some("primary-key")
    );
    assert_eq!(
        r.metadata.partition_key_value.as_deref(),
        Some("recipes_src.recipes.42")
    );
    assert_eq!(
        r.metadata.timestamp.as_deref(),
        Some("2026-11-20T10:15:00.123456Z")
    );
    let t = &r.metadata.transaction;
    assert_eq!(t.transaction_id.as_deref(), Some("8324128402"));
    assert_eq!(t.commit_timestamp.as_deref(), Some("2026-11-20T10:15:00Z"));
    assert!(t
        .stream_position
        .as_deref()
        .unwrap()
        .starts_with("mysql-bin.000024:5120"));
    assert_eq!(t.transaction_record_id.as_deref(), Some("3"));
    assert_eq!(t.prev_transaction_id.as_deref(), Some("8324128401"));
    assert_eq!(t.prev_transaction_record_id.as_deref(), Some("1"));
    assert_eq!(r.shard_id, shard());
    assert_eq!(r.sequence_number, seq());
}

#[test]
fn before_image_under_configured_field_name() {
    let json = format!(
        r#"{{"data":{{"id":1,"title":"new"}},"BI_":{{"id":1,"title":"old"}},"before-image":{{"id":9}},"metadata":{}}}"#,
        meta("data", "update")
    );
    let default = decode(&json).unwrap();
    assert_eq!(
        data(&default).before.as_ref().unwrap().get("id"),
        Some(&Value::Int(9))
    );
    let custom = decode_payload(
        &shard(),
        &seq(),
        json.as_bytes(),
        &DecodeOptions {
            before_image_field: "BI_".to_owned(),
        },
    )
    .unwrap();
    let before = data(&custom).before.clone().unwrap();
    assert_eq!(before.get("title"), Some(&Value::Text("old".to_owned())));
    // No before image at all is fine (inserts, or the setting is off).
    let none = decode(&format!(
        r#"{{"data":{{"id":1}},"metadata":{}}}"#,
        meta("data", "update")
    ))
    .unwrap();
    assert!(data(&none).before.is_none());
}

#[test]
fn every_control_operation_decodes_as_control() {
    for op in ControlOperation::ALL {
        let json = format!(
            r#"{{"control":{{"table-def":{{"columns":{{"id":{{"type":"INT64"}}}}}}}},"metadata":{}}}"#,
            meta("control", op.as_str())
        );
        let r = decode(&json).unwrap();
        match &r.payload {
            Payload::Control(c) => {
                assert_eq!(c.operation, op);
                assert_eq!(c.table, Some(TableName::new("recipes_src", "recipes")));
                assert!(c.mentions("id"));
                assert!(!c.mentions("title"));
            }
            Payload::Data(_) => panic!("{op} decoded as data"),
        }
    }
    // A control record that carries a `data` field is still control.
    let r = decode(&format!(
        r#"{{"data":{{"id":1}},"metadata":{}}}"#,
        meta("control", "drop-table")
    ))
    .unwrap();
    assert!(matches!(
        r.payload,
        Payload::Control(ControlRecord {
            operation: ControlOperation::DropTable,
            ..
        })
    ));
}

#[test]
fn unknown_operation_and_record_type_are_typed_errors() {
    let e = decode(&format!(
        r#"{{"data":{{"id":1}},"metadata":{}}}"#,
        meta("data", "upsert")
    ))
    .unwrap_err();
    assert_eq!(
        e.kind,
        DecodeErrorKind::UnknownOperation {
            record_type: "data".to_owned(),
            operation: "upsert".to_owned()
        }
    );
    let msg = e.to_string();
    assert!(msg.contains("shardId-000000000003"), "{msg}");
    assert!(
        msg.contains("49590338271490256608559692538361571095921575989136588898"),
        "{msg}"
    );
    assert!(msg.contains("recipes_src.recipes"), "{msg}");
    assert!(msg.contains("upsert"), "{msg}");

    let e = decode(&format!(
        r#"{{"data":{{"id":1}},"metadata":{}}}"#,
        meta("ddl", "insert")
    ))
    .unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::UnknownRecordType("ddl".to_owned()));
    let e = decode(&format!(
        r#"{{"control":{{}},"metadata":{}}}"#,
        meta("control", "truncate")
    ))
    .unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::UnknownOperation { .. }));
}

#[test]
fn malformed_payloads_are_named_errors() {
    type Check = fn(&DecodeErrorKind) -> bool;
    let cases: &[(&str, Check)] = &[
        ("not json{", |k| matches!(k, DecodeErrorKind::Json(_))),
        ("[1,2]", |k| matches!(k, DecodeErrorKind::Json(_))),
        (r#"{"data":{}}"#, |k| *k == DecodeErrorKind::MissingMetadata),
        (r#"{"metadata":[]}"#, |k| {
            matches!(k, DecodeErrorKind::Metadata(_))
        }),
        (r#"{"metadata":{"operation":"insert"}}"#, |k| {
            *k == DecodeErrorKind::MissingField("record-type")
        }),
        (r#"{"metadata":{"record-type":"data"}}"#, |k| {
            *k == DecodeErrorKind::MissingField("operation")
        }),
        (
            r#"{"metadata":{"record-type":"data","operation":"insert","schema-name":"s","table-name":"t"}}"#,
            |k| *k == DecodeErrorKind::MissingData,
        ),
        (
            r#"{"metadata":{"record-type":"data","operation":"insert"},"data":{}}"#,
            |k| *k == DecodeErrorKind::MissingField("schema-name/table-name"),
        ),
        (
            r#"{"metadata":{"record-type":"data","operation":"insert","schema-name":"s","table-name":"t"},"data":[1]}"#,
            |k| matches!(k, DecodeErrorKind::Image { field, .. } if field == "data"),
        ),
        (
            r#"{"metadata":{"record-type":"data","operation":"update","schema-name":"s","table-name":"t"},"data":{},"before-image":5}"#,
            |k| matches!(k, DecodeErrorKind::Image { field, .. } if field == "before-image"),
        ),
    ];
    for (payload, check) in cases {
        let e = decode(payload).unwrap_err();
        assert!(check(&e.kind), "{payload}: {e}");
        assert!(e.to_string().contains("sequence number 4959033827"), "{e}");
    }
}

#[test]
fn pretty_and_unformatted_json_both_parse() {
    let unformatted = format!(
        "{{\"data\":{{\"id\":1,\"title\":\"a\"}},\"metadata\":{}}}\n",
        meta("data", "insert")
    )
    .replace(['\n', ' '], "")
        + "\n";
    let value: serde_json::Value = serde_json::from_str(&unformatted).unwrap();
    let pretty = serde_json::to_string_pretty(&value).unwrap();
    let a = decode(&unformatted).unwrap();
    let b = decode(&pretty).unwrap();
    assert_eq!(a, b);
}

#[test]
fn null_is_not_absent() {
    let r = decode(&format!(
        r#"{{"data":{{"id":1,"email":null}},"metadata":{}}}"#,
        meta("data", "insert")
    ))
    .unwrap();
    let d = data(&r);
    assert_eq!(d.after.get("email"), Some(&Value::Null));
    assert_eq!(d.after.get("title"), None);
}

#[test]
fn value_families() {
    let cases: Vec<(&str, Value)> = vec![
        ("null", Value::Null),
        ("true", Value::Bool(true)),
        ("false", Value::Bool(false)),
        ("42", Value::Int(42)),
        ("-9223372036854775808", Value::Int(i64::MIN)),
        ("18446744073709551615", Value::UInt(u64::MAX)),
        // DECIMAL(65,0) beyond u64 stays exact.
        (
            "123456789012345678901234567890",
            Value::Decimal("123456789012345678901234567890".to_owned()),
        ),
        // Decimals keep their exact text, trailing zeros included.
        ("4.50", Value::Decimal("4.50".to_owned())),
        (
            "-0.000000000000000000000001",
            Value::Decimal("-0.000000000000000000000001".to_owned()),
        ),
        ("0.1", Value::Decimal("0.1".to_owned())),
        // Exponent notation: a float...
        ("1.5E-3", Value::Float(0.0015)),
        ("2.5e+10", Value::Float(2.5e10)),
        // ...unless it may be a rounded BIGINT.
        (
            "1.23456789012346E+18",
            Value::Lossy("1.23456789012346E+18".to_owned()),
        ),
        ("1E+16", Value::Lossy("1E+16".to_owned())),
        ("\"hello\"", Value::Text("hello".to_owned())),
        (
            "\"2026-11-20T10:15:00Z\"",
            Value::Text("2026-11-20T10:15:00Z".to_owned()),
        ),
        ("{\"a\": [1, 2]}", Value::Json("{\"a\":[1,2]}".to_owned())),
        ("[]", Value::Json("[]".to_owned())),
    ];
    for (text, want) in cases {
        assert_eq!(classify(text).unwrap(), want, "{text}");
    }
    assert!(classify("1E+17").unwrap().is_lossy());
    assert!(classify("").is_err());
}

#[test]
fn datetime_keeps_wall_clock() {
    let dt = parse_datetime("2026-03-29T01:30:00Z").unwrap();
    assert_eq!(dt.to_string(), "2026-03-29 01:30:00");
    let dt = parse_datetime("2026-03-29T01:30:00.123456Z").unwrap();
    assert_eq!(dt.format("%H:%M:%S%.6f").to_string(), "01:30:00.123456");
    assert_eq!(
        parse_datetime("2026-03-29 01:30:00").unwrap().to_string(),
        "2026-03-29 01:30:00"
    );
    assert_eq!(
        parse_datetime("2026-03-29").unwrap().to_string(),
        "2026-03-29 00:00:00"
    );
    assert!(parse_datetime("yesterday").is_none());
    assert_eq!(parse_date("2026-03-29").unwrap().to_string(), "2026-03-29");
    assert_eq!(
        parse_date("2026-03-29T00:00:00Z").unwrap().to_string(),
        "2026-03-29"
    );
    assert_eq!(parse_time("00:25:00").unwrap().to_string(), "00:25:00");
    assert_eq!(
        parse_time("10:15:00.5").unwrap().to_string(),
        "10:15:00.500"
    );
    assert!(parse_time("25:00:00").is_none());
}

#[test]
fn binary_is_hex_with_or_without_prefix() {
    assert_eq!(
        parse_binary("0x89504E47"),
        Some(vec![0x89, 0x50, 0x4e, 0x47])
    );
    assert_eq!(parse_binary("89504e47"), Some(vec![0x89, 0x50, 0x4e, 0x47]));
    assert_eq!(parse_binary(""), Some(vec![]));
    assert_eq!(parse_binary("0x123"), None);
    assert_eq!(parse_binary("zz"), None);
    assert_eq!(parse_binary("é1"), None);
}

#[test]
fn deliveries_from_a_lambda_event() {
    let payload = format!(
        r#"{{"data":{{"id":1}},"metadata":{}}}"#,
        meta("data", "insert")
    );
    let b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        payload.as_bytes(),
    );
    let event = format!(
        r#"{{"Records":[{{"kinesis":{{"kinesisSchemaVersion":"1.0","partitionKey":"42",
            "sequenceNumber":"{s}","data":"{b64}","approximateArrivalTimestamp":1763633700.123}},
            "eventSource":"aws:kinesis","eventID":"shardId-000000000003:{s}","eventName":"aws:kinesis:record",
            "eventSourceARN":"arn:aws:kinesis:eu-west-1:123456789012:stream/s","awsRegion":"eu-west-1"}}]}}"#,
        s = seq()
    );
    let event: aws_lambda_events::event::kinesis::KinesisEvent =
        serde_json::from_str(&event).unwrap();
    let d = deliveries(&event).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].shard_id, shard());
    assert_eq!(d[0].partition_key, "42");
    assert_eq!(d[0].approximate_arrival_ms, Some(1_763_633_700_123));
    let r = decode_record(&d[0], &DecodeOptions::default()).unwrap();
    assert_eq!(data(&r).operation, Operation::Insert);

    let mut bad = event.clone();
    bad.records[0].event_id = Some("garbage".to_owned());
    assert!(matches!(
        deliveries(&bad),
        Err(EventError::Position { index: 0, .. })
    ));
    let mut mismatch = event;
    mismatch.records[0].kinesis.sequence_number = "1".to_owned();
    assert!(matches!(
        deliveries(&mismatch),
        Err(EventError::SequenceMismatch { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_payload(&shard(), &seq(), &bytes, &DecodeOptions::default());
    }

    #[test]
    fn decoding_arbitrary_json_never_panics(json in arb_json(3)) {
        let text = json.to_string();
        let _ = decode(&text);
        let wrapped = format!(r#"{{"data":{text},"before-image":{text},"control":{text},"metadata":{}}}"#, meta("data", "update"));
        let _ = decode(&wrapped);
    }

    #[test]
    fn decoding_mutated_records_never_panics(cut in 0usize..600, byte in any::<u8>()) {
        let mut payload = format!(r#"{{"data":{{"id":1,"rating":4.50,"big":1.2E+18,"t":"2026-01-01T00:00:00Z"}},"before-image":{{"id":1}},"metadata":{}}}"#, meta("data", "update")).into_bytes();
        if cut < payload.len() {
            payload[cut] = byte;
        }
        let _ = decode_payload(&shard(), &seq(), &payload, &DecodeOptions::default());
        payload.truncate(cut.min(payload.len()));
        let _ = decode_payload(&shard(), &seq(), &payload, &DecodeOptions::default());
    }
}

fn arb_json(depth: u32) -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|i| serde_json::json!(i)),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "[a-z\\-]{0,12}".prop_map(serde_json::Value::String),
        prop_oneof![
            Just("data"),
            Just("control"),
            Just("insert"),
            Just("drop-column")
        ]
        .prop_map(|s| serde_json::Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(depth, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("metadata".to_owned()),
                    Just("data".to_owned()),
                    Just("record-type".to_owned()),
                    Just("operation".to_owned()),
                    Just("schema-name".to_owned()),
                    Just("table-name".to_owned()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
