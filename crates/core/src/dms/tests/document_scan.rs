//! The document scan (`decode/scan.rs`) against the serde reading it runs
//! ahead of: where the scan decides, it decides what the serde reading
//! gives; where it does not, `decode_payload` gives what the serde reading
//! gives.

use super::*;
use crate::dms::decode::{decode_scanned, decode_unscanned};

/// The scan and the whole decoder against the serde reading alone, for one
/// document: `Ok(true)` when the scan decided.
fn scan_is_serde(bytes: &[u8], before_field: &str) -> Result<bool, String> {
    let serde = decode_unscanned(&shard(), &seq(), bytes, before_field);
    let scanned = decode_scanned(&shard(), &seq(), bytes, before_field);
    let decoded = decode_payload(
        &shard(),
        &seq(),
        bytes,
        &DecodeOptions {
            before_image_field: before_field.to_owned(),
        },
    );
    let document = || String::from_utf8_lossy(bytes).into_owned();
    if let Some(scanned) = &scanned {
        if scanned != &serde {
            return Err(format!(
                "{} (before image {before_field:?}): scan {scanned:?}, serde {serde:?}",
                document()
            ));
        }
    }
    if decoded != serde {
        return Err(format!(
            "{} (before image {before_field:?}): decode {decoded:?}, serde {serde:?}",
            document()
        ));
    }
    Ok(scanned.is_some())
}

/// The DMS documents of every fixture event.
fn fixture_documents() -> Vec<(String, Vec<u8>)> {
    let mut documents = Vec::new();
    for (name, bytes) in fixture_events() {
        let deliveries = KinesisBatch::from_json(&bytes)
            .unwrap()
            .into_deliveries()
            .unwrap();
        for d in deliveries {
            documents.push((format!("{name} {}", d.sequence_number), d.data));
        }
    }
    documents
}

/// Every fixture document is scanned, as the serde reading reads it, except
/// the one that is not JSON (`not json{` in `07-poison.json`).
#[test]
fn fixture_documents_are_scanned_as_serde_reads_them() {
    let documents = fixture_documents();
    let mut scanned = 0;
    for (name, bytes) in &documents {
        for before_field in [DEFAULT_BEFORE_IMAGE_FIELD, "bi"] {
            match scan_is_serde(bytes, before_field) {
                Ok(true) => scanned += 1,
                Ok(false) => assert!(
                    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err(),
                    "{name}: valid JSON, not scanned"
                ),
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }
    assert_eq!(scanned, 2 * (documents.len() - 1), "of {}", documents.len());
}

/// A usual document: metadata, data and a before image (`{before}` is the
/// before image's field and value, `{extra}` more fields).
fn document(data: &str, before: &str, extra: &str) -> String {
    format!(
        r#"{{"data":{data}{before},"metadata":{}{extra}}}"#,
        meta("data", "update")
    )
}

/// Unusual documents (what the scan leaves to serde, and what it must
/// refuse): `decode_payload` gives what the serde reading gives, and the
/// well-formed ones of the usual shape are scanned.
#[test]
fn unusual_documents_read_as_serde_reads_them() {
    let row = r#"{"id":1,"title":"Pasta"}"#;
    let before = format!(r#","before-image":{row}"#);
    let d = |data: &str| document(data, &before, "");
    let x = |extra: &str| document(row, &before, extra);
    let metadata = |fields: &str| {
        format!(
            r#"{{"data":{row},"metadata":{{"record-type":"data","operation":"insert","schema-name":"s","table-name":"t"{fields}}}}}"#
        )
    };
    // Scanned: the usual shape, however it is spelled.
    let scanned = vec![
        d(row),
        d("{}"),
        d(r#"{"a":"\u00e9t\u00e9","b":"a\"b","c":"\\","d":"\n\/\b\f\r\t"}"#),
        d(r#"{"a":"é日本😀","b":"","c":"0x89504E47","d":"2026-01-01T00:00:00Z"}"#),
        d(r#"{"a":{"k":[1,2.50,{"z":null}],"b":{}},"b":[],"c":["x","y"],"d":[1],"e":["a", "b"],"f":[{"b":1,"a":2}]}"#),
        d(r#"{"a":0,"b":-0,"c":42,"d":-7,"e":9223372036854775807,"f":-9223372036854775808}"#),
        d(r#"{"a":9223372036854775808,"b":18446744073709551615,"c":18446744073709551616,"d":-9223372036854775809}"#),
        d(r#"{"a":4.50,"b":-0.0,"c":1.5E-3,"d":2.5e+10,"e":1E+16,"f":1.23456789012346E+18,"g":1e400,"h":-1e400,"i":1e-400,"j":0e0}"#),
        d(r#"{"a":true,"b":false,"c":null}"#),
        d(r#"{"id":1,"id":2,"b":1,"a":2,"b":3}"#),
        d(r#"{"a_column_name_longer_than_24_bytes":1,"":2,"é":3}"#),
        document(row, "", ""),
        document(row, r#","before-image":null"#, ""),
        document(row, r#","BI_":{"id":2}"#, ""),
        format!(
            " \n\t\r{{ \"data\" : {{ \"id\" : 1 , \"t\" : [ 1 , \"a\" ] }} , \"metadata\" :\r\n{} }} \n\t\r",
            meta("data", "insert")
        ),
        x(r#","x":[1,{"y":[true,false,null,-0.5e+3,"\u00e9\n\ud800"]}]"#),
        x(r#","x":{"\u0041":1,"a\"":"b"}"#),
        x(r#","control":{"table-name":"t"}"#),
        x(r#","control":[1e400]"#),
        format!(
            r#"{{"control":{{"table-def":{{"columns":{{"id":{{"type":"INT32"}}}}}}}},"metadata":{}}}"#,
            meta("control", "add-column")
        ),
        format!(r#"{{"metadata":{}}}"#, meta("control", "drop-table")),
        format!(r#"{{"metadata":{}}}"#, meta("control", "rename-schema")),
        format!(r#"{{"metadata":{},"data":{row}}}"#, meta("ddl", "insert")),
        format!(r#"{{"metadata":{},"data":{row}}}"#, meta("data", "upsert")),
        format!(r#"{{"metadata":{}}}"#, meta("data", "insert")),
        metadata(r#","transaction-id":0,"transaction-record-id":-7,"timestamp":true,"stream-position":false,"commit-timestamp":null"#),
        metadata(r#","transaction-id":18446744073709551615,"prev-transaction-id":-9223372036854775808"#),
        metadata(r#","transaction-id":1234567890123456789,"transaction-record-id":10,"prev-transaction-id":9"#),
        metadata(r#","transaction-id":12345678901234567890"#),
        metadata(r#","partition-key-value":"é","x":"\ud800","y":{"record-type":1}"#),
        r#"{"metadata":{"record-type":"data","operation":"insert"},"data":{}}"#.to_owned(),
        r#"{"metadata":{"record-type":"data","operation":"insert","schema-name":"","table-name":""},"data":{}}"#.to_owned(),
        r#"{"metadata":{},"data":{}}"#.to_owned(),
        r#"{"data":{}}"#.to_owned(),
        "{}".to_owned(),
    ];
    // Left to serde: escapes in keys and metadata strings, duplicates, values
    // of another type, columns that do not classify.
    let mut unscanned = vec![
        format!(
            r#"{{"met\u0061data":{},"data":{row}}}"#,
            meta("data", "insert")
        ),
        d(r#"{"i\u0064":1,"id":2}"#),
        d(r#"{"\ud800":1}"#),
        d(r#"{"a":"\ud800"}"#),
        d(r#"{"a":[1e400]}"#),
        d(r#"{"b":[1e400],"b":1}"#),
        d(&format!(
            r#"{{"deep":{}}}"#,
            "[".repeat(140) + &"]".repeat(140)
        )),
        d("[]"),
        d("null"),
        d("5"),
        d(r#""x""#),
        document(row, r#","before-image":[]"#, ""),
        document(row, r#","before-image":7"#, ""),
        x(r#","data":{"id":2}"#),
        x(r#","metadata":{}"#),
        x(r#","before-image":null"#),
        x(r#","control":{},"control":{}"#),
        x(r#","x":{"a":1,}"#),
        x(&format!(r#","x":{}{}"#, "[".repeat(200), "]".repeat(200))),
        metadata(r#","schema-name":"s""#),
        metadata(r#","record-type":null"#),
        metadata(r#","transaction-id":1.5"#),
        metadata(r#","transaction-id":1e3"#),
        metadata(r#","transaction-id":-0"#),
        metadata(r#","transaction-id":01"#),
        metadata(r#","transaction-id":00"#),
        metadata(r#","transaction-id":7x"#),
        metadata(r#","transaction-id":18446744073709551616"#),
        metadata(r#","transaction-id":-9223372036854775809"#),
        metadata(r#","transaction-id":{}"#),
        metadata(r#","transaction-id":[]"#),
        metadata(r#","timestamp":"a\"b""#),
        metadata(r#","schema-name\u0041":1"#),
        metadata(r#","record\u002dtype":"data""#),
        r#"{"metadata":[],"data":{}}"#.to_owned(),
        r#"{"metadata":null,"data":{}}"#.to_owned(),
        r#"{"metadata":{"record-type":"data","operation":"insert"},"data":{},}"#.to_owned(),
        r#"{"metadata":{"record-type":"data","operation":"insert"},"data":{}} x"#.to_owned(),
        r#"{"metadata":{"record-type":"data","operation":"insert"},"data":{}}{}"#.to_owned(),
        r#"{"metadata":{"record-type":"data","operation":"insert"},"data":{"a":01}}"#.to_owned(),
        r#"{"metadata":{"record-type":"data","operation":"insert"},"data":{"a":1.}}"#.to_owned(),
        r#"{"metadata":{"record-type":"data","operation":"insert"},"data":{"a":tru}}"#.to_owned(),
        r#"{"metadata":{"record-type":"data","operation":"insert"},"data":{"a":"a	b"}}"#.to_owned(),
        r#"{"metadata":{"record-type":"data","operation":"insert"},"data":{"a":"\q"}}"#.to_owned(),
        "[]".to_owned(),
        "null".to_owned(),
        " ".to_owned(),
        String::new(),
        "not json{".to_owned(),
    ];
    // Truncated at every byte.
    let whole = d(r#"{"a":"x\"y","b":-1.5e3,"c":[true,{}],"d":null}"#);
    unscanned.extend((0..whole.len()).map(|n| whole[..n].to_owned()));
    let mut bytes: Vec<(bool, Vec<u8>)> = scanned
        .into_iter()
        .map(|s| (true, s.into_bytes()))
        .chain(unscanned.into_iter().map(|s| (false, s.into_bytes())))
        .collect();
    // Invalid UTF-8 in a kept string, a key and a skipped string.
    for text in [r#"{"a":"ab"}"#, r#"{"ab":1}"#] {
        let mut invalid = d(text).into_bytes();
        let at = invalid
            .windows(2)
            .position(|w| w == b"ab")
            .expect("the marker");
        invalid[at] = 0xff;
        bytes.push((false, invalid));
    }
    let mut invalid = x(r#","x":"ab""#).into_bytes();
    let at = invalid.len() - 4;
    invalid[at] = 0xc3;
    bytes.push((false, invalid));

    for (expected, document) in &bytes {
        for before_field in ["before-image", "BI_"] {
            let scanned = scan_is_serde(document, before_field).unwrap();
            if before_field == "before-image" {
                assert_eq!(
                    scanned,
                    *expected,
                    "scanned? {}",
                    String::from_utf8_lossy(document)
                );
            }
        }
        // A before image named like another field is left to serde.
        for before_field in ["data", "metadata", "control"] {
            assert!(!scan_is_serde(document, before_field).unwrap());
        }
    }
}

fn arb_document_edit() -> impl Strategy<Value = Edit> {
    arb_text_edit(vec![
        &b" "[..],
        b"\\",
        b"\"",
        b",",
        b":",
        b"null",
        b"\\u0041",
        b"\\n",
        b"}",
        b"]",
        b"{",
        b"[",
        b"\"x\":1,",
        b"\"id\":2,",
        b"\"metadata\":{},",
        b"\"before-image\":null,",
        b"0",
        b"-",
        b".",
        b"e",
        b"1e400",
        b"\x01",
        b"\x7f",
        b"\xff",
        b"\xc3",
        b"\xc3\xa9",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Any edits of any fixture document, valid JSON or not: the decoder
    /// gives what the serde reading gives.
    #[test]
    fn edited_fixture_documents_decode_as_serde_reads_them(
        which in any::<proptest::sample::Index>(),
        edits in proptest::collection::vec(arb_document_edit(), 1..4),
        before_field in arb_before_field(),
    ) {
        let documents = fixture_documents();
        let (_, bytes) = which.get(&documents);
        let mut bytes = bytes.clone();
        for edit in &edits {
            bytes = edit.apply(bytes);
            prop_assert!(scan_is_serde(&bytes, &before_field).is_ok(), "{}", scan_is_serde(&bytes, &before_field).unwrap_err());
        }
    }

    /// Generated documents (escapes, duplicates, odd values, any order) and
    /// their byte edits: the decoder gives what the serde reading gives.
    #[test]
    fn generated_documents_decode_as_serde_reads_them(
        doc in arb_document(),
        before_field in arb_before_field(),
        edits in proptest::collection::vec(arb_edit(), 0..3),
    ) {
        let mut bytes = doc.into_bytes();
        prop_assert!(scan_is_serde(&bytes, &before_field).is_ok(), "{}", scan_is_serde(&bytes, &before_field).unwrap_err());
        for edit in &edits {
            bytes = edit.apply(bytes);
            prop_assert!(scan_is_serde(&bytes, &before_field).is_ok(), "{}", scan_is_serde(&bytes, &before_field).unwrap_err());
        }
    }
}
