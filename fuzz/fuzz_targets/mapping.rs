//! Fuzzes mapping parsing and validation: `Mapping::parse` on any text must
//! give a compiled mapping or a `LoadError` naming the broken rule, never a
//! panic. Seeded with the repository's mapping files. Run with
//! `bash fuzz/run.sh` (see README).
#![no_main]

use std::sync::OnceLock;

use dms_cdc_core::mapping::{Mapping, Transforms};
use libfuzzer_sys::fuzz_target;

fn transforms() -> &'static Transforms {
    static TRANSFORMS: OnceLock<Transforms> = OnceLock::new();
    TRANSFORMS.get_or_init(Transforms::standard)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Mapping::parse("fuzz.toml", text, transforms()) {
        Ok(mapping) => {
            // A mapping that compiles answers its own questions without panicking.
            for table in mapping.sources.keys() {
                let _ = mapping.columns_read(table);
            }
            for target in &mapping.targets {
                let _ = target.column_names();
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
