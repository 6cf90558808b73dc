//! `dms-cdc index`: the indices of an OpenSearch target
//! ([`dms_cdc_opensearch::blue_green`]): print their bodies, create them,
//! and swap the aliases to another generation.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use dms_cdc_core::adapter::TargetAdapter as _;
use dms_cdc_core::connection::Tls;
use dms_cdc_core::mapping::{Mapping, Transforms};
use dms_cdc_opensearch::OpenSearch;

/// What the index commands act on.
#[derive(Debug, clap::Args)]
pub struct IndexArgs {
    /// The mapping file (the function's).
    #[arg(long)]
    pub mapping: PathBuf,
    /// The OpenSearch URL (`opensearch://host?sigv4-region=...`,
    /// `https://user:password@host`); `index-version=N` names the
    /// generation (`<alias>-vN`).
    #[arg(long, env = "DMS_CDC_TARGET_URL", hide_env_values = true)]
    pub target: String,
}

/// `dms-cdc index ...`
#[derive(Debug, clap::Subcommand)]
pub enum IndexCommand {
    /// Print the settings and mappings each target table's index is
    /// created with (JSON, one object per index name).
    Print(IndexArgs),
    /// Create the indices of the URL's `index-version` and the bookkeeping
    /// indices, where missing. With `index=concrete` in the URL the new
    /// indices get no alias (a blue/green rebuild: the alias stays where it
    /// is until `swap`); otherwise each alias is created on its index.
    Create(IndexArgs),
    /// Point every alias at the URL's `index-version` in one `_aliases`
    /// call (readers switch at once); the old indices are kept unless
    /// `--delete-old`.
    Swap {
        /// What to swap.
        #[command(flatten)]
        args: IndexArgs,
        /// Delete the indices the aliases pointed to before.
        #[arg(long)]
        delete_old: bool,
    },
}

impl IndexCommand {
    /// The `--target` URL (for password files and TLS settings).
    pub(crate) fn target_mut(&mut self) -> &mut String {
        match self {
            IndexCommand::Print(args) | IndexCommand::Create(args) => &mut args.target,
            IndexCommand::Swap { args, .. } => &mut args.target,
        }
    }
}

/// Runs `dms-cdc index ...`.
pub async fn run(command: IndexCommand, transforms: Transforms) -> anyhow::Result<ExitCode> {
    let args = match &command {
        IndexCommand::Print(args) | IndexCommand::Create(args) => args,
        IndexCommand::Swap { args, .. } => args,
    };
    let mapping = Mapping::load(&args.mapping, &transforms)?;
    let target = OpenSearch::target(&args.target, &Tls::default(), 1, "dms-cdc-index", 1)
        .context("--target")?;
    match command {
        IndexCommand::Print(_) => {
            let mut out = serde_json::Map::new();
            for table in &mapping.targets {
                let names = dms_cdc_opensearch::index::names(target.config(), &table.table);
                out.insert(
                    names.concrete,
                    dms_cdc_opensearch::index::index_body(target.config(), table),
                );
            }
            outln!("{}", serde_json::to_string_pretty(&out)?);
        }
        IndexCommand::Create(_) => {
            target.prepare(&mapping).await?;
            for table in &mapping.targets {
                let names = dms_cdc_opensearch::index::names(target.config(), &table.table);
                let aliased = target.alias_indices(&names.alias).await?;
                outln!(
                    "{}: ready (alias {} -> {})",
                    names.concrete,
                    names.alias,
                    if aliased.is_empty() {
                        "none".to_owned()
                    } else {
                        aliased.join(", ")
                    }
                );
            }
        }
        IndexCommand::Swap { delete_old, .. } => {
            for s in target.swap(&mapping, delete_old).await? {
                outln!(
                    "{}: {} -> {}{}",
                    s.alias,
                    if s.from.is_empty() {
                        "none".to_owned()
                    } else {
                        s.from.join(", ")
                    },
                    s.to,
                    if s.deleted.is_empty() {
                        String::new()
                    } else {
                        format!(" (deleted {})", s.deleted.join(", "))
                    }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
