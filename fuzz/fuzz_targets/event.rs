//! Fuzzes the Lambda event reading: for any bytes, `KinesisBatch::from_json`
//! (the direct scan, serde for anything unusual) must give what the serde
//! reading gives (the same batch, or an error from both), and the batch's
//! deliveries (or their error) must come out without a panic. Run with
//! `cargo fuzz run event` (see README).
#![no_main]

use dms_cdc_core::dms::KinesisBatch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let read = KinesisBatch::from_json(data);
    let serde = serde_json::from_slice::<KinesisBatch>(data);
    match (read, serde) {
        (Ok(read), Ok(serde)) => {
            assert_eq!(read, serde, "from_json and serde read the event differently");
            let _ = read.into_deliveries();
        }
        (Err(_), Err(_)) => {}
        (read, serde) => panic!(
            "from_json gave {:?}, serde {:?}",
            read.map(|b| b.len()),
            serde.map(|b| b.len())
        ),
    }
});
