use super::*;
use proptest::prelude::*;

mod document_scan;
mod postgres;

fn shard() -> ShardId {
    ShardId("shardId-000000000003".into())
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
        assert_eq!(*d.table, TableName::new("recipes_src", "recipes"));
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
    assert_eq!(r.metadata.partition_key_type(), Some("primary-key"));
    assert_eq!(
        r.metadata.partition_key_value(),
        Some("recipes_src.recipes.42")
    );
    assert_eq!(r.metadata.timestamp(), Some("2026-11-20T10:15:00.123456Z"));
    let t = r.metadata.transaction();
    assert_eq!(t.transaction_id, Some("8324128402"));
    assert_eq!(t.commit_timestamp, Some("2026-11-20T10:15:00Z"));
    assert!(t
        .stream_position
        .unwrap()
        .starts_with("mysql-bin.000024:5120"));
    assert_eq!(t.transaction_record_id, Some("3"));
    assert_eq!(t.prev_transaction_id, Some("8324128401"));
    assert_eq!(t.prev_transaction_record_id, Some("1"));
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
    // An instant with its offset (timestamptz) is read in UTC.
    for with_offset in [
        "2026-03-29 02:30:00+01",
        "2026-03-29T02:30:00+01:00",
        "2026-03-28 20:00:00-05:30",
    ] {
        assert_eq!(
            parse_datetime(with_offset).unwrap().to_string(),
            "2026-03-29 01:30:00",
            "{with_offset}"
        );
    }
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

/// `parse_datetime` as it was before its fast path: chrono's formats only.
fn chrono_datetime(text: &str) -> Option<NaiveDateTime> {
    formatted_datetime(without_z(text))
}

#[test]
fn plain_datetimes_read_as_chrono_reads_them() {
    for text in [
        "2026-03-29T01:30:00Z",
        "2026-03-29 01:30:00",
        "2026-03-29T01:30:00.1Z",
        "2026-03-29T01:30:00.123456789z",
        "2026-03-29T01:30:00.1234567891Z",
        "2026-03-29T01:30:00.Z",
        "0000-01-01T00:00:00Z",
        "9999-12-31 23:59:59.999999",
        "2024-02-29T12:00:00Z",
        "2023-02-29T12:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-03-29T24:00:00Z",
        "2026-03-29T23:59:60Z",
        "2026-03-29T23:59:60.5Z",
        "2026-3-29T01:30:00Z",
        "2026-03-29T1:30:00Z",
        "2026-03-29t01:30:00Z",
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T01:30:00.5+01",
        " 2026-03-29T01:30:00Z ",
        "+2026-03-29T01:30:00Z",
        "2026-03-29T01:30:0a",
        "2026-03-29",
        "",
    ] {
        assert_eq!(parse_datetime(text), chrono_datetime(text), "{text:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// The fast path never reads a rendering otherwise than chrono does.
    #[test]
    fn datetimes_read_as_chrono_reads_them(
        text in "[0-9]{4}-(0[1-9]|1[0-2]|[0-9]{1,2})-[0-3][0-9][T ][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{0,11})?([Zz]|[+-]0[0-9](:[0-5][0-9])?)?",
    ) {
        prop_assert_eq!(parse_datetime(&text), chrono_datetime(&text));
    }
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
    // The owned form moves the payloads and gives the same deliveries.
    assert_eq!(into_deliveries(event.clone()).unwrap(), d);
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
    assert!(matches!(
        into_deliveries(bad),
        Err(EventError::Position { index: 0, .. })
    ));
    let mut mismatch = event;
    mismatch.records[0].kinesis.sequence_number = "1".to_owned();
    assert!(matches!(
        deliveries(&mismatch),
        Err(EventError::SequenceMismatch { .. })
    ));
    assert!(matches!(
        into_deliveries(mismatch),
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

/// serde_json's verdict on a JSON text, UTF-8 of strings included (a raw
/// value is checked, never converted: numbers out of `f64`'s range pass).
fn serde_accepts(bytes: &[u8]) -> bool {
    serde_json::from_slice::<&serde_json::value::RawValue>(bytes).is_ok()
}

#[test]
fn is_json_takes_what_serde_takes() {
    let cases: &[&[u8]] = &[
        b"{}",
        b" [1, -0.5e+3, \"a\\u00e9\", true, null, {\"k\": []}] ",
        b"1e400",
        b"\"\xc3\xa9\"",
        b"\"\xc3\"",
        b"\"\xff\"",
        b"{\"a\":1,}",
        b"[1 2]",
        b"01",
        b"\"tab\there\"",
        b"\"\\x\"",
        b"nul",
        b"{} {}",
        b"",
    ];
    for case in cases {
        assert_eq!(
            is_json(case),
            serde_accepts(case),
            "{}",
            String::from_utf8_lossy(case)
        );
    }
    // Nesting: the scan's limit is serde_json's recursion limit when it
    // builds values (128 levels); a raw value is checked without one.
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(is_json(deep(128).as_bytes()));
    assert!(!is_json(deep(129).as_bytes()));
    assert!(serde_json::from_str::<serde_json::Value>(&deep(129)).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn is_json_agrees_with_serde_on_changed_texts(
        json in arb_json(3),
        cut in 0usize..400,
        byte in any::<u8>(),
    ) {
        let text = json.to_string().into_bytes();
        prop_assert!(is_json(&text));
        let mut changed = text.clone();
        if cut < changed.len() {
            changed[cut] = byte;
        }
        prop_assert_eq!(is_json(&changed), serde_accepts(&changed));
        changed.truncate(cut.min(changed.len()));
        prop_assert_eq!(is_json(&changed), serde_accepts(&changed));
    }

    /// The whole document's UTF-8 check (SIMD, in blocks of 64 bytes)
    /// against serde_json's on long texts of any characters, one byte
    /// changed: a character cut at a block's edge, a stray continuation
    /// byte, an overlong or surrogate encoding.
    #[test]
    fn is_json_checks_utf8_as_serde_does(
        text in "\\PC{0,120}",
        at in 0usize..600,
        byte in prop_oneof![0x80u8..=0xff, any::<u8>()],
    ) {
        let mut json = serde_json::to_vec(&serde_json::json!({ "a": text, "b": [text] }))
            .expect("a JSON text");
        prop_assert!(is_json(&json));
        if at < json.len() {
            json[at] = byte;
        }
        prop_assert_eq!(is_json(&json), serde_accepts(&json), "{:?}", String::from_utf8_lossy(&json));
    }
}

proptest! {
    /// The metadata's texts, kept in one string, read back as given:
    /// absent and empty fields, any characters, in any combination.
    #[test]
    fn metadata_keeps_each_field(
        fields in proptest::array::uniform9(proptest::option::of("\\PC{0,30}")),
    ) {
        let given: [Option<&str>; METADATA_FIELDS] = std::array::from_fn(|i| fields[i].as_deref());
        let m = Metadata::from_fields(given);
        prop_assert_eq!(m.fields(), given);
        prop_assert_eq!(m.timestamp(), given[0]);
        prop_assert_eq!(m.partition_key_value(), given[2]);
        let t = m.transaction();
        prop_assert_eq!(t.transaction_id, given[3]);
        prop_assert_eq!(t.prev_transaction_record_id, given[8]);
        prop_assert_eq!(&m.clone(), &m);
        let mut other = given;
        other[5] = match given[5] {
            Some(_) => None,
            None => Some(""),
        };
        prop_assert_ne!(Metadata::from_fields(other), m);
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

// Equivalence with the decoder before the one-pass rewrite (`reference.rs`):
// for generated DMS-like documents, their byte mutations and every
// before-image field name, both give the same record or the same error
// (kind and message).

fn check_against_reference(bytes: &[u8], options: &DecodeOptions) -> Result<(), TestCaseError> {
    let new = decode_payload(&shard(), &seq(), bytes, options);
    let old = super::reference::decode_payload(&shard(), &seq(), bytes, options);
    prop_assert_eq!(
        new,
        old,
        "document {:?}, before image {:?}",
        String::from_utf8_lossy(bytes),
        options.before_image_field
    );
    Ok(())
}

/// One edit of a document's bytes.
#[derive(Debug, Clone)]
enum Edit {
    Keep,
    Replace(proptest::sample::Index, u8),
    Insert(proptest::sample::Index, u8),
    /// A text (a token, an escape, a field...) inserted.
    InsertText(proptest::sample::Index, &'static [u8]),
    Delete(proptest::sample::Index),
    Truncate(proptest::sample::Index),
}

impl Edit {
    fn apply(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        let len = bytes.len();
        match self {
            Edit::Keep => {}
            Edit::Replace(at, b) if len > 0 => bytes[at.index(len)] = *b,
            Edit::Insert(at, b) => bytes.insert(at.index(len + 1), *b),
            Edit::InsertText(at, text) => {
                let at = at.index(len + 1);
                bytes.splice(at..at, text.iter().copied());
            }
            Edit::Delete(at) if len > 0 => {
                bytes.remove(at.index(len));
            }
            Edit::Truncate(at) => bytes.truncate(at.index(len + 1)),
            _ => {}
        }
        bytes
    }
}

fn arb_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => any::<u8>(),
        2 => proptest::sample::select(
            b"\"\\{}[],:-+.eE0912ntf \n\x00\x1f\x7f\xc3\xa9\xff".to_vec()
        ),
    ]
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    use proptest::sample::Index;
    prop_oneof![
        1 => Just(Edit::Keep),
        3 => (any::<Index>(), arb_byte()).prop_map(|(i, b)| Edit::Replace(i, b)),
        2 => (any::<Index>(), arb_byte()).prop_map(|(i, b)| Edit::Insert(i, b)),
        2 => any::<Index>().prop_map(Edit::Delete),
        1 => any::<Index>().prop_map(Edit::Truncate),
    ]
}

fn arb_before_field() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just("before-image"),
        2 => Just("BI_"),
        1 => Just("data"),
        1 => Just("metadata"),
        1 => Just("control"),
        1 => Just(""),
    ]
    .prop_map(str::to_owned)
}

/// Whitespace between tokens: mostly none (DMS writes `json-unformatted`).
fn arb_ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => Just(""), 1 => Just(" "), 1 => Just("\n\t "), 1 => Just("\r\n")]
}

/// A JSON string literal (quoted): mostly well formed (escapes of every
/// kind, unicode), now and then with a lone surrogate, a bad escape or a raw
/// control character.
fn arb_string_literal() -> BoxedStrategy<String> {
    let piece = prop_oneof![
        12 => "[a-zA-Z0-9 _.:/-]{0,10}",
        1 => Just("\\n".to_owned()),
        1 => Just("\\\"".to_owned()),
        1 => Just("\\\\".to_owned()),
        1 => Just("\\/".to_owned()),
        1 => Just("\\u00e9".to_owned()),
        1 => Just("\\u0000".to_owned()),
        1 => Just("\\ud83d\\ude00".to_owned()),
        1 => Just("é日本😀".to_owned()),
        1 => Just("a string long enough not to fit inline in a compact string".to_owned()),
    ];
    let odd = prop_oneof![
        Just("\\ud800".to_owned()),
        Just("\\udc00x".to_owned()),
        Just("\\x".to_owned()),
        Just("\u{1}".to_owned()),
    ];
    let pieces = prop_oneof![
        40 => proptest::collection::vec(piece.clone(), 0..4),
        1 => (proptest::collection::vec(piece, 0..3), odd).prop_map(|(mut p, o)| {
            p.push(o);
            p
        }),
    ];
    pieces.prop_map(|p| format!("\"{}\"", p.concat())).boxed()
}

/// Number texts: exact decimals, integers at and beyond the i64/u64 limits,
/// exponents (floats, lossy BIGINTs, out of f64 range) and random spellings.
fn arb_number() -> BoxedStrategy<String> {
    prop_oneof![
        2 => proptest::sample::select(vec![
            "0", "-0", "42", "-7", "9223372036854775807", "-9223372036854775808",
            "9223372036854775808", "-9223372036854775809", "18446744073709551615",
            "18446744073709551616", "123456789012345678901234567890", "4.50", "12.50",
            "0.1", "-0.000000000000000000000001", "1.5E-3", "2.5e+10", "1E+16",
            "1.23456789012346E+18", "9.9e15", "1e400", "-1e400", "1e-400", "0e0", "-0.0E0",
        ])
        .prop_map(str::to_owned),
        3 => "-?(0|[1-9][0-9]{0,24})(\\.[0-9]{1,8})?([eE][+-]?[0-9]{1,3})?",
        1 => any::<i64>().prop_map(|i| i.to_string()),
        1 => any::<f64>().prop_map(|f| serde_json::json!(f).to_string()),
    ]
    .boxed()
}

/// Nested JSON (a JSON column, a control detail), some beyond what the
/// JSON value parser accepts (numbers out of range, nesting too deep).
fn arb_nested() -> BoxedStrategy<String> {
    prop_oneof![
        4 => arb_json(2).prop_map(|v| v.to_string()),
        1 => Just("{\"a\": [1, 2.50, \"x\"], \"b\": {}}".to_owned()),
        1 => Just("[1e400]".to_owned()),
        1 => Just("{\"k\":{\"k\":\"\\ud800\"}}".to_owned()),
        1 => Just("{\"a\":1,\"a\":2}".to_owned()),
    ]
    .boxed()
}

fn arb_scalar() -> BoxedStrategy<String> {
    prop_oneof![
        3 => arb_string_literal(),
        3 => arb_number(),
        1 => proptest::sample::select(vec!["null", "true", "false"]).prop_map(str::to_owned),
    ]
    .boxed()
}

fn arb_value() -> BoxedStrategy<String> {
    prop_oneof![6 => arb_scalar(), 1 => arb_nested()].boxed()
}

fn object(fields: Vec<(String, String)>, ws: &str) -> String {
    let body: Vec<String> = fields
        .into_iter()
        .map(|(k, v)| format!("{ws}{k}{ws}:{ws}{v}"))
        .collect();
    format!("{{{}{ws}}}", body.join(","))
}

fn quoted(names: &[&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(names.to_vec()).prop_map(|n| format!("\"{n}\""))
}

fn arb_column_name() -> BoxedStrategy<String> {
    prop_oneof![
        30 => "[a-z_]{1,8}".prop_map(|s| format!("\"{s}\"")),
        10 => quoted(&[
            "id", "i\\u0064", "a\\\"b", "é", "\\u00e9", "\\ud83d\\ude00", "",
            "a_column_name_longer_than_24_bytes", "x\\ny",
        ]),
        5 => arb_string_literal(),
        1 => quoted(&["\\ud800"]),
    ]
    .boxed()
}

/// An image: usually an object of columns (duplicates possible), sometimes
/// something else.
fn arb_image() -> BoxedStrategy<String> {
    prop_oneof![
        8 => (proptest::collection::vec((arb_column_name(), arb_value()), 0..8), arb_ws())
            .prop_map(|(cols, ws)| object(cols, ws)),
        1 => arb_value(),
    ]
    .boxed()
}

/// A metadata object: usually with what a data or control record needs, in
/// any order, with extra, odd-typed or duplicate fields.
fn arb_metadata() -> BoxedStrategy<String> {
    let types = prop_oneof![
        8 => (quoted(&["data"]), quoted(&["insert", "update", "delete", "load"])),
        3 => (quoted(&["control"]), quoted(&["drop-table", "create-table", "add-column", "rename-column"])),
        1 => (
            prop_oneof![quoted(&["data", "control", "ddl", "", "da\\u0074a"]), arb_scalar()],
            prop_oneof![quoted(&["insert", "drop-table", "upsert", "in\\u0073ert"]), arb_scalar()],
        ),
    ];
    let name = prop_oneof![
        12 => quoted(&["recipes_src", "recipes", ""]),
        1 => arb_scalar(),
    ];
    let core = (
        types,
        proptest::option::weighted(0.97, Just(())),
        proptest::option::weighted(0.97, Just(())),
        proptest::option::weighted(0.95, name.clone()),
        proptest::option::weighted(0.95, name),
    );
    let extra_key = prop_oneof![
        12 => quoted(&[
            "timestamp", "partition-key-type", "partition-key-value", "transaction-id",
            "commit-timestamp", "stream-position", "transaction-record-id",
            "prev-transaction-id", "prev-transaction-record-id",
        ]),
        6 => arb_string_literal(),
        1 => quoted(&[
            "record-type", "operation", "schema-name", "table-name", "record\\u002dtype",
            "\\ud800",
        ]),
    ];
    let extras = proptest::collection::vec((extra_key, arb_value()), 0..4);
    (core, extras, arb_ws())
        .prop_flat_map(|(((rt, op), has_rt, has_op, schema, table), extras, ws)| {
            let mut fields: Vec<(String, String)> = [
                ("\"record-type\"", has_rt.map(|()| rt)),
                ("\"operation\"", has_op.map(|()| op)),
                ("\"schema-name\"", schema),
                ("\"table-name\"", table),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect();
            fields.extend(extras);
            (Just(fields).prop_shuffle(), Just(ws))
        })
        .prop_map(|(fields, ws)| object(fields, ws))
        .boxed()
}

/// A DMS-like document: `metadata`, `data`, a before image under one of
/// several names, `control`, unknown fields, duplicates and escaped names,
/// in any order; now and then not an object at all.
fn arb_document() -> BoxedStrategy<String> {
    let before_key = quoted(&["before-image", "BI_", "before\\u002dimage"]);
    let extra = prop_oneof![
        4 => (before_key, prop_oneof![4 => arb_image(), 1 => Just("null".to_owned())]),
        2 => (quoted(&["control"]), arb_nested()),
        2 => (arb_string_literal(), arb_value()),
        1 => (quoted(&["metadata", "met\\u0061data"]), prop_oneof![3 => arb_metadata(), 1 => arb_value()]),
        1 => (quoted(&["data", "d\\u0061ta"]), arb_image()),
    ];
    let core = (
        proptest::option::weighted(0.95, arb_metadata()),
        proptest::option::weighted(0.9, arb_image()),
    );
    prop_oneof![
        20 => (core, proptest::collection::vec(extra, 0..4), arb_ws())
            .prop_flat_map(|((meta, data), extras, ws)| {
                let mut fields = Vec::new();
                if let Some(meta) = meta {
                    fields.push(("\"metadata\"".to_owned(), meta));
                }
                if let Some(data) = data {
                    fields.push(("\"data\"".to_owned(), data));
                }
                fields.extend(extras);
                (Just(fields).prop_shuffle(), Just(ws))
            })
            .prop_map(|(fields, ws)| format!("{ws}{}{ws}", object(fields, ws))),
        1 => arb_value(),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn one_pass_decoder_equals_the_reference(
        doc in arb_document(),
        before_field in arb_before_field(),
        edit in arb_edit(),
    ) {
        let options = DecodeOptions { before_image_field: before_field };
        let bytes = doc.into_bytes();
        check_against_reference(&bytes, &options)?;
        check_against_reference(&edit.apply(bytes), &options)?;
    }

    #[test]
    fn mutated_real_records_decode_as_the_reference(
        edits in proptest::collection::vec(arb_edit(), 1..4),
        before_field in arb_before_field(),
    ) {
        let options = DecodeOptions { before_image_field: before_field };
        let mut bytes = format!(
            r#"{{"data":{{"id":1,"title":"Pasta e fagioli","rating":4.50,"big":1.2E+18,"views":18446744073709551615,"t":"2026-01-01T00:00:00Z","tags":["a","b"],"note":null,"bin":"0x89504E47","caf\u00e9":"\u00e9t\u00e9"}},"before-image":{{"id":1,"title":"Pasta"}},"metadata":{}}}"#,
            meta("data", "update")
        )
        .into_bytes();
        for edit in &edits {
            bytes = edit.apply(bytes);
            check_against_reference(&bytes, &options)?;
        }
    }

    #[test]
    fn classify_equals_the_reference(text in prop_oneof![
        4 => arb_value(),
        1 => (arb_ws(), arb_value(), arb_ws()).prop_map(|(a, v, b)| format!("{a}{v}{b}")),
        1 => "\"[^\"\\\\]{0,6}\"?",
        1 => ".{0,8}",
    ]) {
        prop_assert_eq!(classify(&text), super::reference::classify(&text), "{:?}", text);
    }

    #[test]
    fn parsed_arrays_classify_as_the_reference(
        items in proptest::collection::vec(prop_oneof![
            4 => arb_string_literal(),
            1 => arb_value(),
            1 => Just("true".to_owned()),
            1 => Just("null".to_owned()),
            1 => Just(r#"["a",[]]"#.to_owned()),
        ], 0..5),
        ws in arb_ws(),
    ) {
        // What the parser hands `classify_parsed`: a valid array.
        let text = format!("[{}]", items.join(&format!(",{ws}")));
        if serde_json::from_str::<serde_json::Value>(&text).is_ok() {
            prop_assert_eq!(classify_parsed(&text), super::reference::classify(&text), "{:?}", text);
        }
    }

    #[test]
    fn parsed_objects_classify_as_the_reference(
        fields in proptest::collection::vec((
            prop_oneof![4 => "[a-c]{1,2}", 1 => Just("a\\u0062".to_owned())],
            prop_oneof![
                4 => arb_string_literal(),
                1 => arb_value(),
                1 => Just("true".to_owned()),
                1 => Just("null".to_owned()),
                1 => Just(r#"{"a":["b"],"b":{}}"#.to_owned()),
                1 => Just(r#"{"a":1,"a":2}"#.to_owned()),
            ],
        ), 0..20),
        ws in arb_ws(),
        wrap in any::<bool>(),
    ) {
        // What the parser hands `classify_parsed`: a valid object (keys
        // from a small set, so some repeat), alone or in an array.
        let body = fields
            .iter()
            .map(|(k, v)| format!("\"{k}\":{ws}{v}"))
            .collect::<Vec<_>>()
            .join(",");
        let object = format!("{{{body}}}");
        let text = if wrap { format!("[{object},\"x\"]") } else { object };
        if serde_json::from_str::<serde_json::Value>(&text).is_ok() {
            prop_assert_eq!(classify_parsed(&text), super::reference::classify(&text), "{:?}", text);
        }
    }
}

#[test]
fn compact_arrays_and_objects_are_kept_as_written() {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    for (text, kept) in [
        (r#"["vegan","quick"]"#, true),
        ("[]", true),
        ("[true,false,null,[\"a\"],\"caf\u{e9} [x]\"]", true),
        (r#"["a", "b"]"#, false),
        (r#"["a\u0041"]"#, false),
        ("[1]", false),
        (r#"[{"b":1,"a":2}]"#, false),
        (r#"[{"b":true,"a":"x"}]"#, true),
        (r#"{"cuisine":"thai","spicy":true}"#, true),
        (r#"{"b":{"a":null,"c":[]},"a":{}}"#, true),
        (r#"{"a":"x","a":"y"}"#, false),
        (r#"{"a":{"k":1}}"#, false),
        (r#"{"a": "x"}"#, false),
        (r#"{"a\u0041":"x"}"#, false),
        (
            &format!(
                "{{{}}}",
                (0..16)
                    .map(|i| format!("\"k{i}\":null"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            true,
        ),
        (
            &format!(
                "{{{}}}",
                (0..17)
                    .map(|i| format!("\"k{i}\":null"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            false,
        ),
        (&deep(64), true),
        (&deep(65), false),
        (&deep(200), false),
    ] {
        assert_eq!(written_compact(text), kept, "{text}");
        assert_eq!(
            classify_parsed(text),
            super::reference::classify(text),
            "{text}"
        );
    }
}

#[test]
fn reference_cases_decode_identically() {
    // Nesting beyond the JSON value parser's limit needs more stack than a
    // test thread has in a debug build.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(reference_cases)
        .unwrap()
        .join()
        .unwrap();
}

fn reference_cases() {
    // Hand-picked corners, each against the reference, under every
    // before-image field name.
    let m = meta("data", "update");
    let cases = [
        format!(r#"{{"data":{{"id":1}},"metadata":{m},"metadata":{m}}}"#),
        format!(r#"{{"metadata":5,"data":{{"id":1}},"metadata":{m}}}"#),
        format!(r#"{{"metadata":{m},"metadata":1e400}}"#),
        format!(r#"{{"metadata":{m},"data":1e400}}"#),
        format!(r#"{{"metadata":{m},"data":null}}"#),
        format!(r#"{{"metadata":{m},"data":{{"a":[1e400],"b":"\ud800"}}}}"#),
        format!(r#"{{"metadata":{m},"data":{{"b":[1e400],"b":1}}}}"#),
        format!(r#"{{"metadata":{m},"data":{{"\ud800":1}}}}"#),
        format!(r#"{{"metadata":{m},"data":{{"id":1}},"before-image":{{"id":2}},"before-image":null}}"#),
        format!(r#"{{"metadata":{m},"data":{{"id":1}},"x":"\ud800","before-image":7}}"#),
        format!(r#"{{"met\u0061data":{m},"d\u0061ta":{{"i\u0064":1,"id":2}}}}"#),
        r#"{"metadata":{"record-type":"data","record-type":null,"operation":"insert"}}"#.to_owned(),
        r#"{"metadata":{"\ud800":1,"record-type":"data","operation":"insert"}}"#.to_owned(),
        r#"{"metadata":{"record-type":"control","operation":"drop-table"},"control":[1e400]}"#
            .to_owned(),
        r#"{"metadata":{"record-type":5,"operation":true}}"#.to_owned(),
        r#"{"metadata":{"record-type":"data","operation":"insert","schema-name":"","table-name":""},"data":{}}"#.to_owned(),
        format!(r#"{{"metadata":{m},"data":{{"deep":{}}}}}"#, "[".repeat(140) + &"]".repeat(140)),
        " \n".to_owned(),
        String::new(),
        "{}".to_owned(),
        "{} x".to_owned(),
    ];
    for case in &cases {
        for before_field in ["before-image", "data", "metadata", "control", "x"] {
            let options = DecodeOptions {
                before_image_field: before_field.to_owned(),
            };
            let new = decode_payload(&shard(), &seq(), case.as_bytes(), &options);
            let old = super::reference::decode_payload(&shard(), &seq(), case.as_bytes(), &options);
            assert_eq!(new, old, "{case} (before image {before_field:?})");
        }
    }
    // Invalid UTF-8 inside an unknown field's string is a JSON error, as before.
    let mut bytes = format!(r#"{{"metadata":{m},"data":{{"id":1}},"x":"ab"}}"#).into_bytes();
    let at = bytes.len() - 3;
    bytes[at] = 0xff;
    let new = decode_payload(&shard(), &seq(), &bytes, &DecodeOptions::default());
    let old = super::reference::decode_payload(&shard(), &seq(), &bytes, &DecodeOptions::default());
    assert_eq!(new, old);
    assert!(matches!(new.unwrap_err().kind, DecodeErrorKind::Json(_)));
}

/// Hole 7 of issue 13: a 6 MB batch of wide records (five records of
/// 24,000 columns, ~1.2 MB each) decodes completely, column for column,
/// with a duplicated column name keeping its last value. Speed is measured
/// by the `wide_batch` bench (BENCHMARKS.md), not here.
#[test]
fn a_batch_of_wide_records_decodes_every_column() {
    let mut total = 0;
    for i in 0..5u64 {
        let mut json = String::from(r#"{"data":{"#);
        for c in 0..12_000 {
            if c > 0 {
                json.push(',');
            }
            json.push_str(&format!(
                r#""column_{c:05}":"value {c:05} of a wide row of a very wide table, {i}","number_{c:05}":{}"#,
                c * 7
            ));
        }
        json.push_str(r#","column_00000":"last wins"},"metadata":"#);
        json.push_str(&meta("data", "insert"));
        json.push('}');
        total += json.len();
        let record = decode(&json).unwrap();
        let row = &data(&record).after;
        assert_eq!(row.len(), 24_000);
        assert_eq!(
            row.get("column_00000"),
            Some(&Value::Text("last wins".into()))
        );
        assert_eq!(row.get("number_11999"), Some(&Value::Int(11_999 * 7)));
    }
    assert!(total > 5_000_000, "{total} bytes");
}

/// Every fixture event (MySQL and PostgreSQL sources): `KinesisBatch` gives
/// the deliveries `KinesisEvent` gives, and every payload decodes to the
/// record the reference decoder gives, under the default and a custom
/// before-image field name.
#[test]
fn fixture_events_read_and_decode_as_the_reference() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let mut records = 0;
    for dir in ["events", "events-postgres"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no fixtures in {dir}");
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            let event: aws_lambda_events::event::kinesis::KinesisEvent =
                serde_json::from_slice(&bytes).unwrap();
            let expected = into_deliveries(event.clone()).unwrap();
            let batch: KinesisBatch = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(batch.len(), expected.len(), "{}", file.display());
            assert_eq!(
                batch.into_deliveries().unwrap(),
                expected,
                "{}",
                file.display()
            );
            assert_eq!(
                KinesisBatch::from(event).into_deliveries().unwrap(),
                expected
            );
            for d in &expected {
                for field in [DEFAULT_BEFORE_IMAGE_FIELD, "bi"] {
                    let options = DecodeOptions {
                        before_image_field: field.to_owned(),
                    };
                    let new = decode_record(d, &options);
                    let old = super::reference::decode_payload(
                        &d.shard_id,
                        &d.sequence_number,
                        &d.data,
                        &options,
                    );
                    assert_eq!(new, old, "{} {}", file.display(), d.sequence_number);
                }
                records += 1;
            }
        }
    }
    assert!(records > 50, "{records} fixture records");
}

/// The fixture events' bytes, MySQL and PostgreSQL sources.
fn fixture_events() -> Vec<(String, Vec<u8>)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let mut events = Vec::new();
    for dir in ["events", "events-postgres"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for file in files {
            events.push((file.display().to_string(), std::fs::read(&file).unwrap()));
        }
    }
    assert!(events.len() >= 14, "{} fixture events", events.len());
    events
}

/// `from_json` against the serde reading: the same batch, or both an error.
fn from_json_is_serde(bytes: &[u8]) -> Result<(), String> {
    let new = KinesisBatch::from_json(bytes).ok();
    let old = serde_json::from_slice::<KinesisBatch>(bytes).ok();
    if new == old {
        Ok(())
    } else {
        Err(format!(
            "{}: from_json {new:?}, serde {old:?}",
            String::from_utf8_lossy(bytes)
        ))
    }
}

/// Every fixture event is read by the scan itself (not the serde fallback),
/// as serde reads it.
#[test]
fn fixture_events_are_scanned_as_serde_reads_them() {
    for (name, bytes) in fixture_events() {
        let serde = serde_json::from_slice::<KinesisBatch>(&bytes).unwrap();
        let scan = KinesisBatch::scan_only(&bytes).unwrap_or_else(|| panic!("{name}: not scanned"));
        assert_eq!(scan, serde, "{name}");
        assert_eq!(KinesisBatch::from_json(&bytes).unwrap(), serde, "{name}");
    }
}

/// Unusual events (what the scan leaves to serde, and what it must refuse):
/// `from_json` gives what serde gives.
#[test]
fn unusual_events_read_as_serde_reads_them() {
    let record = |kinesis: &str, rest: &str| {
        format!(
            r#"{{"Records":[{{"kinesis":{{{kinesis}}},"eventID":"shardId-000000000001:1001"{rest}}}]}}"#
        )
    };
    let k = |extra: &str| {
        record(
            &format!(
                r#""partitionKey":"k","sequenceNumber":"1001","data":"e30=","approximateArrivalTimestamp":1795170000.21{extra}"#
            ),
            "",
        )
    };
    let mut events = vec![
        k(""),
        k(r#","x":[1,{"y":[true,false,null,-0.5e+3,"\u00e9\n"]}]"#),
        k(r#","x":"\ud800""#),
        k(r#","x":"\u12G4""#),
        k(r#","x":"\q""#),
        k(r#","x":"a	b""#),
        k(r#","x":01"#),
        k(r#","x":1."#),
        k(r#","x":-"#),
        k(r#","x":.5"#),
        k(r#","x":1e"#),
        k(r#","x":1e+"#),
        k(r#","x":+1"#),
        k(r#","x":-01"#),
        k(r#","x":tru"#),
        k(r#","x":nul"#),
        k(r#","x":True"#),
        k(r#","x":[1,]"#),
        k(r#","x":{"a":1,}"#),
        k(r#","x":{"a" 1}"#),
        k(r#","x":{1:1}"#),
        k(r#","x":[1 2]"#),
        k(r#","data":"e30=""#),
        k(r#","partitionKey":"k""#),
        k(r#","sequenceNumber":"1001""#),
        k(r#","approximateArrivalTimestamp":1"#),
        k(r#","partitionKey":null"#),
        k(r#","Partitionkey":null"#),
        k(r#","x":"é""#),
        k(r#","x":1e400"#),
        k(","),
        k(" "),
        k("\n\t\r "),
        k("\u{b}"),
        record(r#""data":"e30=","approximateArrivalTimestamp":1"#, ""),
        record(
            r#""data":"e30=","approximateArrivalTimestamp":1"#,
            r#","eventID":"x""#,
        ),
        record(
            r#""data":"e30=","approximateArrivalTimestamp":1"#,
            r#","kinesis":{}"#,
        ),
        record(r#""data":"e3\/0=","approximateArrivalTimestamp":1"#, ""),
        record(r#""data":"\u006530=","approximateArrivalTimestamp":1"#, ""),
        record(r#""data":"e30","approximateArrivalTimestamp":1"#, ""),
        record(r#""data":"e30=\n","approximateArrivalTimestamp":1"#, ""),
        record(r#""data":null,"approximateArrivalTimestamp":1"#, ""),
        record(r#""data":[],"approximateArrivalTimestamp":1"#, ""),
        record(r#""approximateArrivalTimestamp":1"#, ""),
        record(r#""data":"e30=""#, ""),
        record(
            r#""data":"e30=","approximateArrivalTimestamp":"1795170000.21""#,
            "",
        ),
        record(
            r#""data":"e30=","approximateArrivalTimestamp":"1795170000\u002e21""#,
            "",
        ),
        record(
            r#""data":"e30=","approximateArrivalTimestamp":1795170000.210"#,
            "",
        ),
        record(r#""data":"e30=","approximateArrivalTimestamp":1.795e9"#, ""),
        record(r#""data":"e30=","approximateArrivalTimestamp":-1"#, ""),
        record(r#""data":"e30=","approximateArrivalTimestamp":null"#, ""),
        record(r#""data":"e30=","approximateArrivalTimestamp":true"#, ""),
        record(
            r#""data":"e30=","approximateArrivalTimestamp":18446744073709551616"#,
            "",
        ),
        record(
            r#""data":"e30=","partitionKey":"a\"b","approximateArrivalTimestamp":1"#,
            "",
        ),
        record(
            r#""data":"e30=","partitionKey":"é","approximateArrivalTimestamp":1"#,
            "",
        ),
        record(
            r#""data":"e30=","sequenceNumber":7,"approximateArrivalTimestamp":1"#,
            "",
        ),
        r#"{"Records":[]}"#.to_owned(),
        r#"{"Records":[],"Records":[]}"#.to_owned(),
        r#"{"Records":null}"#.to_owned(),
        r#"{"Records":{}}"#.to_owned(),
        r#"{"Records":[null]}"#.to_owned(),
        r#"{"Records":[[]]}"#.to_owned(),
        r#"{"Records":[],}"#.to_owned(),
        r#"{"Records":[] }x"#.to_owned(),
        r#"{"Records":[]} "#.to_owned(),
        r#" {"Records":[]}"#.to_owned(),
        r#"{"Records":[]}{}"#.to_owned(),
        r#"{"Rec\u006frds":[]}"#.to_owned(),
        r#"{"records":[]}"#.to_owned(),
        r#"{}"#.to_owned(),
        r#"[]"#.to_owned(),
        r#"[[]]"#.to_owned(),
        r#"null"#.to_owned(),
        String::new(),
    ];
    let deep = |n: usize| k(&format!(r#","x":{}{}"#, "[".repeat(n), "]".repeat(n)));
    events.extend([
        deep(100),
        deep(126),
        deep(127),
        deep(128),
        deep(129),
        deep(1000),
    ]);
    let mut bytes: Vec<Vec<u8>> = events.into_iter().map(String::into_bytes).collect();
    let mut invalid = k(r#","x":"ab""#).into_bytes();
    let at = invalid.len() - 6;
    invalid[at] = 0xff;
    bytes.push(invalid);
    let mut invalid_key = k(r#","ab":1"#).into_bytes();
    let at = invalid_key.len() - 7;
    invalid_key[at] = 0xc3;
    bytes.push(invalid_key);
    // Not UTF-8: in a kept string, in a key of a skipped object, in a key
    // the serde reading matches, in a skipped string (serde skips it
    // unchecked, so the scan takes the event too).
    let not_utf8 = |event: String, marker: &str| {
        let mut event = event.into_bytes();
        let at = event
            .windows(marker.len())
            .position(|w| w == marker.as_bytes())
            .unwrap();
        event[at] = 0xff;
        event
    };
    for (event, marker) in [
        (k(r#","x":{"aQb":1}"#), "Q"),
        (k(r#","aQb":1"#), "Q"),
        (k(r#","x":"aQb""#), "Q"),
        (record(r#""data":"e30=","approximateArrivalTimestamp":1,"partitionKey":"aQ""#, ""), "Q"),
        (record(r#""data":"e30=","approximateArrivalTimestamp":1"#, r#","Qx":1"#), "Q"),
        (record(r#""data":"e30=","approximateArrivalTimestamp":1,"sequenceNumber":"10Q1""#, ""), "Q"),
        (r#"{"Records":[{"kinesis":{"data":"e30=","approximateArrivalTimestamp":1},"eventID":"shardId-1:Q"}]}"#.to_owned(), "Q"),
        (r#"{"Qx":1,"Records":[]}"#.to_owned(), "Q"),
    ] {
        bytes.push(not_utf8(event, marker));
    }
    assert!(KinesisBatch::scan_only(&bytes[0]).is_some());
    let skipped_not_utf8 = not_utf8(k(r#","x":"aQb""#), "Q");
    assert!(KinesisBatch::scan_only(&skipped_not_utf8).is_some());
    for event in &bytes {
        from_json_is_serde(event).unwrap();
    }
}

/// Edits that insert one of `texts` or delete a byte.
fn arb_text_edit(texts: Vec<&'static [u8]>) -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<prop::sample::Index>(), prop::sample::select(texts))
            .prop_map(|(i, t)| Edit::InsertText(i, t)),
        any::<prop::sample::Index>().prop_map(Edit::Delete),
    ]
}

fn arb_event_edit() -> impl Strategy<Value = Edit> {
    arb_text_edit(vec![
        &b" "[..],
        b"\\",
        b"\"",
        b",",
        b"null",
        b"\\u0041",
        b"}",
        b"]",
        b"{",
        b"\"x\":1,",
        b"0",
        b".",
        b"\x01",
        b"\xff",
        b"\xc3",
        b"\xc3\xa9",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Any edits of any fixture event, valid JSON or not: `from_json` gives
    /// what serde gives.
    #[test]
    fn edited_events_read_as_serde_reads_them(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec(arb_event_edit(), 1..4),
    ) {
        let events = fixture_events();
        let (_, bytes) = which.get(&events);
        let mut bytes = bytes.clone();
        for edit in &edits {
            bytes = edit.apply(bytes);
        }
        prop_assert!(from_json_is_serde(&bytes).is_ok(), "{}", from_json_is_serde(&bytes).unwrap_err());
    }
}

/// The arrival time, as `KinesisEvent` reads it, for timestamps of every shape.
fn arrival_of(timestamp: &str) -> (Option<i64>, Option<i64>) {
    let event = format!(
        r#"{{"Records":[{{"kinesis":{{"partitionKey":"k","sequenceNumber":"{s}","data":"e30=","approximateArrivalTimestamp":{timestamp}}},"eventID":"shardId-000000000003:{s}"}}]}}"#,
        s = seq()
    );
    let old = serde_json::from_str::<aws_lambda_events::event::kinesis::KinesisEvent>(&event)
        .ok()
        .and_then(|e| into_deliveries(e).ok())
        .and_then(|d| d.first().and_then(|d| d.approximate_arrival_ms));
    let new = serde_json::from_str::<KinesisBatch>(&event)
        .ok()
        .and_then(|e| e.into_deliveries().ok())
        .and_then(|d| d.first().and_then(|d| d.approximate_arrival_ms));
    (new, old)
}

#[test]
fn arrival_timestamps_read_as_kinesis_event_reads_them() {
    for t in [
        "1763633700.123",
        "1763633700.5",
        "1763633700.05",
        "1763633700",
        "\"1763633700.25\"",
        "-1",
        "1e300",
        "0.1234567",
        "\"x\"",
        "null",
        "1.0000000000000002",
    ] {
        let (new, old) = arrival_of(t);
        assert_eq!(new, old, "{t}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Generated events: `KinesisBatch` reads what `KinesisEvent` reads.
    #[test]
    fn generated_events_read_as_kinesis_event(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..6),
        seconds in 0u64..4_000_000_000,
        millis in 0u32..1000,
        key in "[a-z0-9\"\\\\é]{0,8}",
    ) {
        let mut records = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, p);
            records.push(format!(
                r#"{{"kinesis":{{"partitionKey":{key},"sequenceNumber":"{n}","data":"{b64}","approximateArrivalTimestamp":{seconds}.{millis:03}}},"eventID":"shardId-000000000001:{n}","awsRegion":"eu-west-1"}}"#,
                key = serde_json::to_string(&key).unwrap(),
                n = 1000 + i,
            ));
        }
        let event = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        let old = into_deliveries(serde_json::from_str(&event).unwrap()).unwrap();
        let new = serde_json::from_str::<KinesisBatch>(&event).unwrap().into_deliveries().unwrap();
        prop_assert_eq!(new, old);
    }
}

/// A record's `eventID` (or none) and `kinesis.sequenceNumber`: mostly the
/// usual pair, else leading zeros on either side, no own number, other
/// digits, another shard spelling, a colon too many, not digits.
fn arb_position() -> impl Strategy<Value = (Option<String>, String)> {
    (0usize..3, 0u64..40, 0usize..3, 0usize..3, 0u8..10).prop_map(
        |(shard, n, zeros_id, zeros_own, shape)| {
            let shard = format!("shardId-00000000000{shard}");
            let id = format!("{shard}:{}{n}", "0".repeat(zeros_id));
            let own = format!("{}{n}", "0".repeat(zeros_own));
            match shape {
                0 => (Some(id), String::new()),
                1 => (None, own),
                2 => (Some(format!("{shard}:{}", n + 1)), own),
                3 => (Some(format!("shard-1:{n}")), own),
                4 => (Some(format!("{shard}:x:{n}")), n.to_string()),
                5 => (Some(id), format!("{n}a")),
                6 => (Some(format!("{shard}é:{n}")), n.to_string()),
                _ => (Some(id), own),
            }
        },
    )
}

/// `in_shard_order` as it was written first: one map of each shard's last
/// number, looked up for every record.
fn in_shard_order_by_map(deliveries: &[Delivery]) -> Result<(), String> {
    let mut last: std::collections::HashMap<&ShardId, &SequenceNumber> = Default::default();
    for (index, d) in deliveries.iter().enumerate() {
        if let Some(previous) = last.insert(&d.shard_id, &d.sequence_number) {
            if d.sequence_number <= *previous {
                return Err(format!("{index} {} {previous}", d.sequence_number));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Records of every position shape, several shards interleaved: the
    /// scan and the serde reading give the deliveries, or the error, that
    /// `KinesisEvent` gives.
    #[test]
    fn positions_read_as_kinesis_event_reads_them(
        positions in proptest::collection::vec(arb_position(), 0..8),
    ) {
        let records: Vec<String> = positions
            .iter()
            .map(|(id, own)| {
                let id = id
                    .as_ref()
                    .map(|id| format!(r#","eventID":{}"#, serde_json::to_string(id).unwrap()))
                    .unwrap_or_default();
                format!(
                    r#"{{"kinesis":{{"partitionKey":"k","sequenceNumber":"{own}","data":"e30=","approximateArrivalTimestamp":1795170000.21}}{id}}}"#
                )
            })
            .collect();
        let event = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        let show = |r: Result<Vec<Delivery>, EventError>| r.map_err(|e| format!("{e:?}"));
        let old = show(into_deliveries(serde_json::from_str(&event).unwrap()));
        prop_assert!(KinesisBatch::scan_only(event.as_bytes()).is_some());
        let scanned = show(KinesisBatch::from_json(event.as_bytes()).unwrap().into_deliveries());
        let serde = show(serde_json::from_str::<KinesisBatch>(&event).unwrap().into_deliveries());
        prop_assert_eq!(&scanned, &old);
        prop_assert_eq!(&serde, &old);
    }

    /// Shards in runs and interleaved: `in_shard_order` accepts what the
    /// map of each shard's last number accepts, and refuses the same record.
    #[test]
    fn shard_order_is_checked_as_by_a_map(
        records in proptest::collection::vec((0usize..3, 0u64..12), 0..12),
    ) {
        let deliveries: Vec<Delivery> = records
            .iter()
            .map(|&(shard, n)| Delivery {
                shard_id: ShardId::parse(&format!("shardId-00000000000{shard}")).unwrap(),
                sequence_number: SequenceNumber::parse(&n.to_string()).unwrap(),
                partition_key: String::new(),
                approximate_arrival_ms: None,
                data: Vec::new(),
            })
            .collect();
        let expected = in_shard_order_by_map(&deliveries);
        let got = in_shard_order(deliveries).map(|_| ()).map_err(|e| match e {
            EventError::OutOfOrder { index, sequence_number, previous, .. } => {
                format!("{index} {sequence_number} {previous}")
            }
            other => other.to_string(),
        });
        prop_assert_eq!(got, expected);
    }
}

/// Column names that share long prefixes, differ only past eight bytes,
/// end in NUL bytes or repeat: the cases the decoder's layouts
/// (`Row::from_scanned`) must tell apart by whole names.
fn arb_scanned_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "(created_|updated_|a)(at|by|a|\u{0}|){0,2}",
        2 => "[a-c\u{0}]{0,10}",
        1 => "[a-z_é]{1,30}",
    ]
}

/// A row of columns named `names` (the values `first`, `first + 1`, ...)
/// built as the decoder builds it (`Row::from_scanned`) and from its
/// columns (`Row::from_columns`).
fn scanned_and_sorted(names: &[String], first: usize) -> (Row, Row) {
    let values: Vec<Value> = (0..names.len())
        .map(|i| Value::Int((first + i) as i64))
        .collect();
    let scanned: Vec<&str> = names.iter().map(String::as_str).collect();
    let columns = names
        .iter()
        .map(|name| ColumnName::new(name))
        .zip(values.clone())
        .collect();
    (
        Row::from_scanned(&scanned, values),
        Row::from_columns(columns),
    )
}

/// The row's columns, in its order.
fn columns_of(row: &Row) -> Vec<(ColumnName, Value)> {
    row.iter().map(|(n, v)| (n.clone(), v.clone())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// A row built as the decoder builds it is the row built from the
    /// columns: the same order, and of columns named alike the last.
    #[test]
    fn scanned_rows_equal_rows_from_columns(
        names in proptest::collection::vec(arb_scanned_name(), 0..70),
    ) {
        let (scanned, sorted) = scanned_and_sorted(&names, 0);
        prop_assert_eq!(columns_of(&scanned), columns_of(&sorted));
    }

    /// Rows of a few column lists, over and over (the remembered layouts
    /// of `Row::from_scanned` at work), some lists sharing names, lengths
    /// or their first names: each row is the row built from its columns,
    /// and two rows share their names only when their names are equal.
    #[test]
    fn repeated_layouts_equal_rows_from_columns(
        lists in proptest::collection::vec(
            proptest::collection::vec(arb_scanned_name(), 0..12),
            1..12,
        ),
        picks in proptest::collection::vec(0usize..12, 1..60),
    ) {
        let mut rows: Vec<Row> = Vec::new();
        for (n, pick) in picks.iter().enumerate() {
            let (scanned, sorted) = scanned_and_sorted(&lists[pick % lists.len()], n * 100);
            prop_assert_eq!(columns_of(&scanned), columns_of(&sorted));
            for earlier in &rows {
                if scanned.same_names(earlier) {
                    prop_assert!(scanned.keys().eq(earlier.keys()));
                }
            }
            rows.push(scanned);
        }
    }
}

/// The rows of a result set share its names when they are in name order,
/// each once; other names (out of order, twice, or not as many as the
/// values) make rows as `Row::from_columns` makes them.
#[test]
fn result_rows_share_names_in_name_order() {
    let names = |list: &[&str]| {
        list.iter()
            .map(|n| ColumnName::new(n))
            .collect::<SharedNames>()
    };
    let values = |n: i64| (0..n).map(Value::Int).collect::<Vec<_>>();
    let apart = |list: &[&str], n: i64| {
        Row::from_columns(
            list.iter()
                .map(|n| ColumnName::new(n))
                .zip(values(n))
                .collect(),
        )
    };
    let sorted = names(&["a", "b", "c"]);
    let (r1, r2) = (
        Row::sharing(&sorted, values(3)),
        Row::sharing(&sorted, values(3)),
    );
    assert!(r1.same_names(&r2));
    assert_eq!(r1, apart(&["a", "b", "c"], 3));
    for list in [&["b", "a", "c"][..], &["a", "a", "c"][..]] {
        let shared = names(list);
        let (r1, r2) = (
            Row::sharing(&shared, values(3)),
            Row::sharing(&shared, values(3)),
        );
        assert!(!r1.same_names(&r2), "{list:?}");
        assert_eq!(r1, apart(list, 3), "{list:?}");
    }
    let short = Row::sharing(&sorted, values(2));
    assert!(!short.same_names(&r1));
    assert_eq!(short, apart(&["a", "b"], 2));
}

/// Images of one layout share their names, in name order, whichever
/// order their documents list them in; a layout that differs in one name
/// (past eight bytes) or in its order does not take another's.
#[test]
fn images_of_one_layout_share_their_names() {
    let row = |names: &[&str]| {
        let values = (0..names.len() as i64).map(Value::Int).collect();
        Row::from_scanned(names, values)
    };
    let a = row(&["id", "created_at", "name"]);
    let b = row(&["id", "created_at", "name"]);
    assert!(a.same_names(&b));
    assert_eq!(
        a.iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect::<Vec<_>>(),
        vec![
            ("created_at", Value::Int(1)),
            ("id", Value::Int(0)),
            ("name", Value::Int(2))
        ]
    );
    let c = row(&["id", "created_by", "name"]);
    assert!(!c.same_names(&a));
    assert_eq!(c.get("created_by"), Some(&Value::Int(1)));
    let d = row(&["name", "id", "created_at"]);
    assert!(!d.same_names(&a));
    assert_eq!(d.keys().collect::<Vec<_>>(), a.keys().collect::<Vec<_>>());
    assert_eq!(d.get("name"), Some(&Value::Int(0)));
    // Names alike: the later wins, and the layout is not remembered.
    let e = row(&["id", "id"]);
    assert_eq!(columns_of(&e), vec![("id".into(), Value::Int(1))]);
    assert!(!e.same_names(&row(&["id", "id"])));
}

/// `TableName::shared` gives the name asked for, shared while it is among
/// the recent ones, and a right one still when many others came between.
#[test]
fn shared_table_names_are_the_names_asked_for() {
    let names: Vec<(String, String)> = (0..40)
        .map(|i| (format!("schema{}", i % 3), format!("table{i}")))
        .collect();
    for round in 0..3 {
        for (schema, table) in &names {
            let first = TableName::shared(schema, table);
            assert_eq!(*first, TableName::new(schema.as_str(), table.as_str()));
            let again = TableName::shared(schema, table);
            assert!(Arc::ptr_eq(&first, &again), "round {round}: {first}");
        }
    }
    // Same table, other schema; same schema, other table.
    let a = TableName::shared("s", "t");
    let b = TableName::shared("t", "s");
    let c = TableName::shared("s", "t2");
    assert_eq!(
        (a.as_ref(), b.as_ref(), c.as_ref()),
        (
            &TableName::new("s", "t"),
            &TableName::new("t", "s"),
            &TableName::new("s", "t2"),
        )
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Column names order as `str` orders them, however long their common
    /// start (eight bytes at a time, then the rest).
    #[test]
    fn column_names_order_as_text(
        common in "[a-c_é]{0,20}",
        a in "[a-c_é\\x00\\x7f]{0,12}",
        b in "[a-c_é\\x00\\x7f]{0,12}",
    ) {
        let (a, b) = (format!("{common}{a}"), format!("{common}{b}"));
        prop_assert_eq!(cmp_names(&a, &b), a.cmp(&b));
        prop_assert_eq!(cmp_names(&b, &a), b.cmp(&a));
        prop_assert_eq!(cmp_names(&a, &a), std::cmp::Ordering::Equal);
        // And are the same as text is.
        prop_assert_eq!(same_name(&a, &b), a == b);
        prop_assert!(same_name(&a, &a));
    }
}

proptest! {
    #[test]
    fn remembered_places_give_what_a_search_gives(
        rows in proptest::collection::vec(
            proptest::collection::btree_map("[a-e]{1,9}", any::<i64>(), 0..12),
            1..12,
        ),
        asks in proptest::collection::vec((0usize..12, 0usize..8, any::<bool>()), 0..80),
    ) {
        // The same few names asked again and again (the same addresses, as
        // a mapping's names are), in rows of other columns, and names at
        // fresh addresses: `get` and `contains_key` answer what a walk over
        // the row answers.
        let names: Vec<String> = ["a", "bb", "abcde", "ee", "cd", "eeeeeeeee", "b", "dddd"]
            .iter()
            .map(|n| (*n).to_owned())
            .collect();
        let rows: Vec<Row> = rows
            .into_iter()
            .map(|columns| columns.into_iter().map(|(k, v)| (k, Value::Int(v))).collect())
            .collect();
        for (row, name, fresh) in asks {
            let row = &rows[row % rows.len()];
            let fresh_name = names[name].clone();
            let name = if fresh { fresh_name.as_str() } else { names[name].as_str() };
            let walked = row.iter().find(|(n, _)| n.as_str() == name).map(|(_, v)| v);
            prop_assert_eq!(row.get(name), walked, "{} in {:?}", name, row);
            prop_assert_eq!(row.contains_key(name), walked.is_some());
        }
    }
}
