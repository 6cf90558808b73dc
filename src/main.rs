//! `dms-cdc`: the command line with the standard transforms. A mapping
//! that names transforms of its own is replayed and redriven by a binary of
//! the user's that calls `dms_cdc_cli::main_with` with them (see that crate).

use std::process::ExitCode;

use dms_cdc_core::mapping::Transforms;

/// The function's allocator (functions/mysql-target), so a local replay or
/// redrive behaves as the function does.
#[global_allocator]
static GLOBAL: dms_cdc_lambda::Allocator = dms_cdc_lambda::Allocator;

#[tokio::main]
async fn main() -> ExitCode {
    dms_cdc_lambda::tune_allocator();
    dms_cdc_cli::main_with(Transforms::standard()).await
}
