//! Fuzzes the DMS record decoder: any bytes must give a record or a typed
//! error, never a panic. Run with `cargo fuzz run decode` (see README).
#![no_main]

use dms_cdc_core::dms::{classify, decode_payload, DecodeOptions};
use dms_cdc_core::position::{SequenceNumber, ShardId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let shard = ShardId("shardId-000000000000".into());
    let Ok(seq) = SequenceNumber::parse("49590338271490256608559692538361571095921575989136588898") else {
        return;
    };
    let _ = decode_payload(&shard, &seq, data, &DecodeOptions::default());
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = classify(text);
        let _ = SequenceNumber::parse(text);
        let _ = dms_cdc_core::dms::parse_datetime(text);
        let _ = dms_cdc_core::dms::parse_binary(text);
    }
});
