//! Blue/green rebuilds of the target indices: build the next generation
//! `<alias>-v<N+1>` beside the one the alias points to, then move the alias
//! to it in one `_aliases` call (readers never see a half-built index).
//!
//! 1. `dms-cdc index create --target '...?index-version=2'` creates the
//!    `-v2` indices (the mapping's settings and mappings, no alias);
//! 2. the function writes there from now on
//!    (`...?index-version=2&index=concrete` in its target URL), and
//!    `dms-cdc backfill` with the same URL loads it beside the stream (the
//!    versions keep the newer of the two, as for a SQL target), while
//!    readers still read `-v1` through the alias;
//! 3. `dms-cdc reconcile` with that URL checks `-v2`, then `dms-cdc index
//!    swap --target '...?index-version=2'` points every alias at `-v2`
//!    (remove + add in one call) and the function goes back to writing
//!    through the alias; the old indices stay until `--delete-old`.

use dms_cdc_core::mapping::Mapping;
use serde_json::{json, Value as Json};

use crate::fault::TargetError;
use crate::index;
use crate::target::{segment, OpenSearchTarget};

/// What a swap did to one alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swapped {
    /// The alias.
    pub alias: String,
    /// The indices it pointed to before.
    pub from: Vec<String>,
    /// The index it points to now.
    pub to: String,
    /// Old indices deleted.
    pub deleted: Vec<String>,
}

impl OpenSearchTarget {
    /// The indices `alias` points to now (none when it does not exist).
    pub async fn alias_indices(&self, alias: &str) -> Result<Vec<String>, TargetError> {
        let what = format!("read alias {alias}");
        let (status, answer) = self
            .json(
                http::Method::GET,
                &format!("/_alias/{}", segment(alias)),
                None,
                &[404],
                &what,
                true,
            )
            .await?;
        if status == 404 {
            return Ok(Vec::new());
        }
        let mut out: Vec<String> = answer
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        out.sort();
        Ok(out)
    }

    /// Points every target table's alias at this config's concrete index
    /// (`<alias>-v<index-version>`, which must exist), in one `_aliases`
    /// call; with `delete_old`, then deletes every other generation
    /// (`<alias>-v<k>`).
    pub async fn swap(
        &self,
        mapping: &Mapping,
        delete_old: bool,
    ) -> Result<Vec<Swapped>, TargetError> {
        let mut actions: Vec<Json> = Vec::new();
        let mut swapped = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for table in &mapping.targets {
            if !seen.insert(table.table.clone()) {
                continue;
            }
            let names = index::names(self.config(), &table.table);
            let what = format!("find index {}", names.concrete);
            let (status, _) = self
                .json(
                    http::Method::HEAD,
                    &format!("/{}", segment(&names.concrete)),
                    None,
                    &[404],
                    &what,
                    true,
                )
                .await?;
            if status == 404 {
                return Err(TargetError::Status {
                    what,
                    status,
                    error_type: "index_not_found_exception".into(),
                    reason: format!(
                        "{} does not exist: create it first (dms-cdc index create)",
                        names.concrete
                    ),
                    single: false,
                    bookkeeping: true,
                });
            }
            // Everything written to the new index is searchable before
            // readers move to it.
            let what = format!("refresh index {}", names.concrete);
            self.json(
                http::Method::POST,
                &format!("/{}/_refresh", segment(&names.concrete)),
                None,
                &[],
                &what,
                true,
            )
            .await?;
            let from: Vec<String> = self
                .alias_indices(&names.alias)
                .await?
                .into_iter()
                .filter(|i| *i != names.concrete)
                .collect();
            for old in &from {
                actions.push(json!({ "remove": { "index": old, "alias": names.alias } }));
            }
            actions.push(json!({
                "add": { "index": names.concrete, "alias": names.alias, "is_write_index": true }
            }));
            swapped.push(Swapped {
                alias: names.alias,
                from,
                to: names.concrete,
                deleted: Vec::new(),
            });
        }
        let what = "swap the aliases".to_owned();
        self.json(
            http::Method::POST,
            "/_aliases",
            Some(&json!({ "actions": actions })),
            &[],
            &what,
            true,
        )
        .await?;
        if delete_old {
            for s in &mut swapped {
                // Every other generation of this alias, wherever the alias was.
                let what = format!("list the generations of {}", s.alias);
                let (_, answer) = self
                    .json(
                        http::Method::GET,
                        &format!("/{}-v*/_settings", segment(&s.alias)),
                        None,
                        &[404],
                        &what,
                        true,
                    )
                    .await?;
                let prefix = format!("{}-v", s.alias);
                let mut old: Vec<String> = answer
                    .as_object()
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default();
                old.retain(|i| {
                    *i != s.to
                        && i.strip_prefix(&prefix)
                            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                });
                old.sort();
                for index in old {
                    let what = format!("delete index {index}");
                    self.json(
                        http::Method::DELETE,
                        &format!("/{}", segment(&index)),
                        None,
                        &[404],
                        &what,
                        true,
                    )
                    .await?;
                    s.deleted.push(index);
                }
            }
        }
        Ok(swapped)
    }
}
