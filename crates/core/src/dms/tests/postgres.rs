//! Records of a PostgreSQL source (`SourceEngine` aurora-postgresql or
//! postgres in `infra/dms/dms.yaml`), shaped as DMS writes them to Kinesis:
//! the xid as `transaction-id`, a `stream-position` of zero-padded WAL LSNs
//! (`00000002/7C007178.3.00000002/7C007178`), JSON and JSONB columns as JSON
//! text, booleans as JSON booleans or (the endpoint's default
//! `MapBooleanAsBoolean` false) as `"true"`/`"false"`, before images of every
//! non-LOB column only with `REPLICA IDENTITY FULL`. Each decodes, reads
//! through the mapping conversions, and decodes as the reference decoder does.

use super::*;
use crate::mapping::{convert, Conversion};
use crate::version::{Kind, Version};

/// `metadata` of a data record from a PostgreSQL source.
fn pg_meta(operation: &str, table: &str, lsn: &str, xid: u64) -> String {
    format!(
        r#"{{"timestamp":"2026-11-20T10:15:02.508241Z","record-type":"data","operation":"{operation}",
            "partition-key-type":"primary-key","partition-key-value":"recipes_src.{table}.42",
            "schema-name":"recipes_src","table-name":"{table}","transaction-id":{xid},
            "commit-timestamp":"2026-11-20T10:15:02.497131Z","stream-position":"{lsn}.3.{lsn}",
            "transaction-record-id":1,"prev-transaction-id":{prev},"prev-transaction-record-id":1}}"#,
        prev = xid - 1
    )
}

/// Decodes like the tests' `decode`, and checks the reference decoder agrees.
fn decode_pg(json: &str) -> DmsRecord {
    let options = DecodeOptions::default();
    let record = decode_payload(&shard(), &seq(), json.as_bytes(), &options);
    let reference =
        super::super::reference::decode_payload(&shard(), &seq(), json.as_bytes(), &options);
    assert_eq!(record, reference, "{json}");
    record.unwrap_or_else(|e| panic!("{e}: {json}"))
}

fn converted(row: &Row, column: &str, conversion: Conversion) -> Value {
    let value = row
        .get(column)
        .unwrap_or_else(|| panic!("no column {column}"));
    convert(value, conversion).unwrap_or_else(|e| panic!("{column}: {e}"))
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

#[test]
fn an_update_from_a_full_replica_identity_table_decodes() {
    // recipes of fixtures/source-postgres.sql. The before image holds every
    // non-LOB column (ColumnFilter non-lob): jsonb and bytea are LOBs to DMS.
    let json = format!(
        r#"{{"data":{{"id":42,"author_id":7,"title":"Pasta e fagioli","status":"published",
            "servings":4,"rating":4.50,"calories":2.5E+2,"created_at":"2026-11-20T10:00:00Z",
            "updated_at":"2026-11-20T09:15:02.497131Z","external_ref":12345678901234567890,
            "tags":"{{\"diet\": [\"vegan\"], \"minutes\": 40}}","thumbnail":"0x89504e47",
            "prep_time":"00:25:00","publish_date":"2026-11-20"}},
          "before-image":{{"id":42,"author_id":7,"title":"Pasta","status":"draft","servings":4,
            "rating":4.25,"calories":2.5E+2,"created_at":"2026-11-20T10:00:00Z",
            "updated_at":"2026-11-19T22:00:00Z","external_ref":12345678901234567890,
            "prep_time":"00:25:00","publish_date":null}},
          "metadata":{}}}"#,
        pg_meta("update", "recipes", "00000002/7C007178", 1139)
    );
    let r = decode_pg(&json);
    let t = r.metadata.transaction();
    assert_eq!(t.transaction_id, Some("1139"));
    assert_eq!(t.prev_transaction_id, Some("1138"));
    assert_eq!(
        t.stream_position,
        Some("00000002/7C007178.3.00000002/7C007178")
    );
    assert_eq!(t.commit_timestamp, Some("2026-11-20T10:15:02.497131Z"));
    let d = data(&r);
    assert_eq!(d.operation, Operation::Update);
    assert_eq!(*d.table, TableName::new("recipes_src", "recipes"));
    let (after, before) = (&d.after, d.before.as_ref().unwrap());

    assert_eq!(after.get("id"), Some(&Value::Int(42)));
    assert_eq!(after.get("status"), Some(&text("published")));
    assert_eq!(after.get("rating"), Some(&Value::Decimal("4.50".into())));
    assert_eq!(after.get("calories"), Some(&Value::Float(250.0)));
    assert_eq!(
        after.get("external_ref"),
        Some(&Value::UInt(12_345_678_901_234_567_890))
    );
    // jsonb: JSON text, read by convert = "json".
    assert_eq!(
        converted(after, "tags", Conversion::Json),
        Value::Json(r#"{"diet":["vegan"],"minutes":40}"#.into())
    );
    assert_eq!(
        converted(after, "thumbnail", Conversion::Binary),
        Value::Bytes(vec![0x89, 0x50, 0x4e, 0x47])
    );
    // timestamptz in UTC with `Z`, timestamp, time and date, as wall clocks.
    assert_eq!(
        converted(after, "updated_at", Conversion::Datetime),
        Value::DateTime(parse_datetime("2026-11-20 09:15:02.497131").unwrap())
    );
    assert_eq!(
        converted(after, "created_at", Conversion::UnixSeconds),
        Value::Int(1_795_168_800)
    );
    assert_eq!(
        converted(after, "prep_time", Conversion::Time),
        Value::Time(parse_time("00:25:00").unwrap())
    );
    assert_eq!(
        converted(after, "publish_date", Conversion::Date),
        Value::Date(parse_date("2026-11-20").unwrap())
    );

    // The before image: every non-LOB column, NULLs included; no LOBs.
    assert_eq!(before.get("title"), Some(&text("Pasta")));
    assert_eq!(before.get("rating"), Some(&Value::Decimal("4.25".into())));
    assert_eq!(before.get("publish_date"), Some(&Value::Null));
    assert_eq!(before.get("tags"), None);
    assert_eq!(before.get("thumbnail"), None);
    assert_eq!(before.len(), after.len() - 2);
}

#[test]
fn booleans_numerics_and_uuids_read_in_either_rendering() {
    // A users-like table: a boolean as DMS renders it by default (text) and
    // as a JSON boolean, an unbounded numeric (DMS type STRING) as text, a
    // uuid.
    let json = format!(
        r#"{{"data":{{"id":7,"name":"Ada","email":null,"is_active":"false",
            "balance":"123456789012345678901234567890.123456789","ref":"3f2b8c1e-7a4d-4e2a-9b1f-0c5d6e7f8a9b"}},
          "before-image":{{"id":7,"name":"Ada","email":null,"is_active":true,
            "balance":"0.5","ref":"3f2b8c1e-7a4d-4e2a-9b1f-0c5d6e7f8a9b"}},
          "metadata":{}}}"#,
        pg_meta("update", "users", "00000002/7C007328", 1140)
    );
    let r = decode_pg(&json);
    let d = data(&r);
    let (after, before) = (&d.after, d.before.as_ref().unwrap());
    assert_eq!(after.get("is_active"), Some(&text("false")));
    assert_eq!(before.get("is_active"), Some(&Value::Bool(true)));
    assert_eq!(
        converted(after, "is_active", Conversion::Bool),
        Value::Bool(false)
    );
    assert_eq!(
        converted(before, "is_active", Conversion::Bool),
        Value::Bool(true)
    );
    assert_eq!(
        converted(after, "balance", Conversion::Decimal),
        Value::Decimal("123456789012345678901234567890.123456789".into())
    );
    assert_eq!(
        after.get("ref"),
        Some(&text("3f2b8c1e-7a4d-4e2a-9b1f-0c5d6e7f8a9b"))
    );
}

#[test]
fn an_unchanged_toasted_value_is_absent_not_null() {
    // An update that leaves a TOASTed story alone: the value is not in the
    // after image (the row is re-read), unlike a NULL.
    let json = format!(
        r#"{{"data":{{"recipe_id":42,"edited_at":"2026-11-20T10:15:02Z"}},
          "before-image":{{"recipe_id":42,"edited_at":null}},"metadata":{}}}"#,
        pg_meta("update", "recipe_stories", "00000002/7C0073F8", 1141)
    );
    let r = decode_pg(&json);
    let d = data(&r);
    assert_eq!(d.after.get("body"), None);
    assert_eq!(
        d.before.as_ref().unwrap().get("edited_at"),
        Some(&Value::Null)
    );
}

#[test]
fn without_full_replica_identity_the_old_row_is_missing() {
    // REPLICA IDENTITY DEFAULT (what infra/source/postgres-source.sql sets
    // FULL against): an update that keeps its key has an empty before image,
    // one that changes it the old key only, and a delete NULLs in every
    // column but the key. All decode; the missing values are the source's.
    let update = decode_pg(&format!(
        r#"{{"before-image":{{}},"data":{{"id":42,"recipe_id":8,"position":1,"name":"Beans","quantity":2.00,"unit":"cup"}},"metadata":{}}}"#,
        pg_meta("update", "ingredients", "00000002/7C0074A0", 1142)
    ));
    assert_eq!(data(&update).before, Some(Row::default()));
    let moved = decode_pg(&format!(
        r#"{{"before-image":{{"id":41}},"data":{{"id":42,"recipe_id":8,"position":1,"name":"Beans","quantity":null,"unit":null}},"metadata":{}}}"#,
        pg_meta("update", "ingredients", "00000002/7C0074F0", 1143)
    ));
    assert_eq!(
        data(&moved)
            .before
            .as_ref()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["id"]
    );
    let delete = decode_pg(&format!(
        r#"{{"data":{{"id":42,"recipe_id":null,"position":null,"name":null,"quantity":null,"unit":null}},"metadata":{}}}"#,
        pg_meta("delete", "ingredients", "00000002/840001D8", 1144)
    ));
    let d = data(&delete);
    assert_eq!(d.operation, Operation::Delete);
    assert_eq!(d.after.get("recipe_id"), Some(&Value::Null));
    assert!(d.before.is_none());
}

#[test]
fn postgresql_stream_positions_order_versions_as_the_wal() {
    // In one commit second the LSN orders the changes, across the 4 GB
    // boundaries of the zero-padded halves too, whatever the shard's
    // sequence numbers say.
    let version = |lsn: &str, sequence: &str| {
        let r = decode_pg(&format!(
            r#"{{"data":{{"id":42}},"metadata":{}}}"#,
            pg_meta("update", "users", lsn, 2000)
        ));
        Version::of_record(&r, &SequenceNumber::parse(sequence).unwrap(), Kind::Image)
            .unwrap_or_else(|e| panic!("{lsn}: {e}"))
    };
    let a = version("00000001/FFFFFFF8", "900");
    let b = version("00000002/00000010", "10");
    let c = version("00000002/7C007178", "5");
    assert!(a < b && b < c, "{a} {b} {c}");
}
