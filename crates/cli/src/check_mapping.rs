//! `dms-cdc check-mapping`: validate a mapping file and print what it
//! compiles to.

use std::path::PathBuf;
use std::process::ExitCode;

use dms_cdc_core::mapping::{Mapping, Transforms};

/// Arguments of `dms-cdc check-mapping`.
#[derive(Debug, clap::Args)]
pub struct CheckMappingArgs {
    /// The mapping file.
    pub mapping: PathBuf,
}

/// Runs `dms-cdc check-mapping`: an invalid mapping is an error (exit 2).
pub fn run(args: CheckMappingArgs, transforms: Transforms) -> anyhow::Result<ExitCode> {
    let m = Mapping::load(&args.mapping, &transforms)?;
    for t in &m.targets {
        outln!(
            "target {} <- {} (key {}; {} columns; {} joins; {} children; {})",
            t.table,
            t.root,
            t.key.join(", "),
            t.columns.len(),
            t.joins.len(),
            t.children.len(),
            if t.requery {
                "rows re-queried"
            } else {
                "rows built from images"
            }
        );
    }
    for s in m.sources.values() {
        outln!("source {}: feeds {} target(s)", s.name, s.touches.len());
    }
    Ok(ExitCode::SUCCESS)
}
