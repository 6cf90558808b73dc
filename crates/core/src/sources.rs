//! The source a function or a command reads, chosen at run time: a
//! database of one of two kinds by its URL's scheme ([`OneOf`]), and one
//! database per source instance of a consolidating mapping ([`PerInstance`]).
//!
//! A source setting is one URL (`postgres://...`), or several separated by
//! white space, each named by the instance it serves
//! (`eu=postgres://a/shop us=postgres://b/shop`); an unnamed URL serves the
//! instances without one of their own (several schemas in one server).
//! URLs never contain white space, so the setting is unambiguous.

use std::marker::PhantomData;

use crate::adapter::{ConnectError, Database, SourceAdapter};
use crate::connection::Tls;
use crate::dms::TableName;
use crate::fault::{Classify, Fault};
use crate::instances::{Instances, InstancesError, InstancesSnapshot};
use crate::mapping::{Mapping, TargetTable};
use crate::plan::KeyTuple;
use crate::source::{FetchedRows, SnapshotStats, Source, SourceSnapshot};

/// One of two things: a source, a snapshot or an error of one of two adapters.
#[derive(Debug, Clone)]
pub enum Either<A, B> {
    /// The first.
    A(A),
    /// The second.
    B(B),
}

impl<A: std::fmt::Display, B: std::fmt::Display> std::fmt::Display for Either<A, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Either::A(a) => a.fmt(f),
            Either::B(b) => b.fmt(f),
        }
    }
}

impl<A, B> std::error::Error for Either<A, B>
where
    A: std::error::Error + 'static,
    B: std::error::Error + 'static,
{
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Either::A(a) => a.source(),
            Either::B(b) => b.source(),
        }
    }
}

impl<A: Classify, B: Classify> Classify for Either<A, B> {
    fn fault(&self) -> Fault {
        match self {
            Either::A(a) => a.fault(),
            Either::B(b) => b.fault(),
        }
    }
}

impl<A: Source, B: Source> Source for Either<A, B> {
    type Error = Either<A::Error, B::Error>;
    type Snapshot = Either<A::Snapshot, B::Snapshot>;

    async fn snapshot(
        &self,
        mapping: &Mapping,
        chunk_size: usize,
    ) -> Result<Self::Snapshot, Self::Error> {
        match self {
            Either::A(a) => a
                .snapshot(mapping, chunk_size)
                .await
                .map(Either::A)
                .map_err(Either::A),
            Either::B(b) => b
                .snapshot(mapping, chunk_size)
                .await
                .map(Either::B)
                .map_err(Either::B),
        }
    }
}

impl<A: SourceSnapshot, B: SourceSnapshot> SourceSnapshot for Either<A, B> {
    type Error = Either<A::Error, B::Error>;

    async fn reverse_lookup(
        &mut self,
        target: &TargetTable,
        columns: &[String],
        tuples: &[KeyTuple],
    ) -> Result<Vec<(KeyTuple, KeyTuple)>, Self::Error> {
        match self {
            Either::A(a) => a
                .reverse_lookup(target, columns, tuples)
                .await
                .map_err(Either::A),
            Either::B(b) => b
                .reverse_lookup(target, columns, tuples)
                .await
                .map_err(Either::B),
        }
    }

    async fn lookup_in(
        &mut self,
        table: &TableName,
        select: &[String],
        match_columns: &[String],
        tuples: &[KeyTuple],
    ) -> Result<Vec<(KeyTuple, KeyTuple)>, Self::Error> {
        match self {
            Either::A(a) => a
                .lookup_in(table, select, match_columns, tuples)
                .await
                .map_err(Either::A),
            Either::B(b) => b
                .lookup_in(table, select, match_columns, tuples)
                .await
                .map_err(Either::B),
        }
    }

    async fn fetch(
        &mut self,
        target: &TargetTable,
        keys: &[KeyTuple],
    ) -> Result<FetchedRows, Self::Error> {
        match self {
            Either::A(a) => a.fetch(target, keys).await.map_err(Either::A),
            Either::B(b) => b.fetch(target, keys).await.map_err(Either::B),
        }
    }

    async fn finish(self) -> Result<SnapshotStats, Self::Error> {
        match self {
            Either::A(a) => a.finish().await.map_err(Either::A),
            Either::B(b) => b.finish().await.map_err(Either::B),
        }
    }
}

/// The scheme of a URL (`postgres` of `postgres://...`), if it has one.
pub fn url_scheme(url: &str) -> Option<&str> {
    url.split_once("://").map(|(scheme, _)| scheme)
}

/// The source adapter of two kinds of database, `A` or `B` by the URL's
/// scheme (`A`'s scheme and port are the defaults for a secret that names
/// no engine).
pub struct OneOf<A, B>(PhantomData<(A, B)>);

impl<A: Database, B: Database> OneOf<A, B> {
    /// Whether `url` is `B`'s (else it is `A`'s, or neither's).
    fn is_b(url: &str) -> Result<bool, ConnectError> {
        match url_scheme(url) {
            Some(s) if A::accepts_scheme(s) => Ok(false),
            Some(s) if B::accepts_scheme(s) => Ok(true),
            Some(s) => Err(ConnectError {
                ca_file: false,
                message: format!(
                    "unknown URL scheme \"{s}://\": expected {}:// or {}://",
                    A::URL_SCHEME,
                    B::URL_SCHEME
                ),
            }),
            None => Err(ConnectError {
                ca_file: false,
                message: format!(
                    "not a URL: expected {}://... or {}://...",
                    A::URL_SCHEME,
                    B::URL_SCHEME
                ),
            }),
        }
    }
}

impl<A: Database, B: Database> Database for OneOf<A, B> {
    const URL_SCHEME: &'static str = A::URL_SCHEME;
    const DEFAULT_PORT: u16 = A::DEFAULT_PORT;

    fn accepts_scheme(scheme: &str) -> bool {
        A::accepts_scheme(scheme) || B::accepts_scheme(scheme)
    }

    fn engine_scheme(engine: &str) -> Option<(&'static str, u16)> {
        A::engine_scheme(engine).or_else(|| B::engine_scheme(engine))
    }

    fn validate_url(url: &str) -> Result<(), ConnectError> {
        if Self::is_b(url)? {
            B::validate_url(url)
        } else {
            A::validate_url(url)
        }
    }
}

impl<A: SourceAdapter, B: SourceAdapter> SourceAdapter for OneOf<A, B> {
    type Source = Either<A::Source, B::Source>;

    fn source(url: &str, tls: &Tls, pool_size: usize) -> Result<Self::Source, ConnectError> {
        if Self::is_b(url)? {
            B::source(url, tls, pool_size).map(Either::B)
        } else {
            A::source(url, tls, pool_size).map(Either::A)
        }
    }
}

/// One part of a source setting: an instance's name (or none: the
/// default) and its URL (or secret id).
pub type SettingPart<'a> = (Option<&'a str>, &'a str);

/// The parts of a source setting (see the module docs); the error says
/// what is wrong (never quoting a URL, which may hold a password).
pub fn setting_parts(setting: &str) -> Result<Vec<SettingPart<'_>>, String> {
    let mut parts = Vec::new();
    let mut defaults = 0;
    for (i, part) in setting.split_whitespace().enumerate() {
        // `name=` before any `:`: a URL's own `=` come after its `://`.
        let named = part.split_once('=').filter(|(name, _)| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
        match named {
            Some((name, value)) => {
                if value.is_empty() {
                    return Err(format!("part {} ({name}=) has no value", i + 1));
                }
                if parts.iter().any(|(n, _)| *n == Some(name)) {
                    return Err(format!("instance {name:?} is named twice"));
                }
                parts.push((Some(name), value));
            }
            None => {
                defaults += 1;
                if defaults > 1 {
                    return Err(
                        "more than one value without an instance name (write name=URL for each instance)"
                            .to_owned(),
                    );
                }
                parts.push((None, part));
            }
        }
    }
    if parts.is_empty() {
        return Err("empty".to_owned());
    }
    Ok(parts)
}

/// The source adapter of a function whose mapping may consolidate
/// several source instances: a [`Routed`] source of `A`'s sources.
pub struct PerInstance<A>(PhantomData<A>);

fn setting_error(problem: String) -> ConnectError {
    ConnectError {
        ca_file: false,
        message: format!("source setting: {problem}"),
    }
}

impl<A: Database> Database for PerInstance<A> {
    const URL_SCHEME: &'static str = A::URL_SCHEME;
    const DEFAULT_PORT: u16 = A::DEFAULT_PORT;

    fn accepts_scheme(scheme: &str) -> bool {
        A::accepts_scheme(scheme)
    }

    fn engine_scheme(engine: &str) -> Option<(&'static str, u16)> {
        A::engine_scheme(engine)
    }

    fn validate_url(setting: &str) -> Result<(), ConnectError> {
        for (name, url) in setting_parts(setting).map_err(setting_error)? {
            A::validate_url(url).map_err(|e| match name {
                Some(name) => ConnectError {
                    ca_file: e.ca_file,
                    message: format!("instance {name}: {}", e.message),
                },
                None => e,
            })?;
        }
        Ok(())
    }
}

impl<A: SourceAdapter> SourceAdapter for PerInstance<A>
where
    A::Source: Clone,
{
    type Source = Routed<A::Source>;

    fn source(
        setting: &str,
        tls: &Tls,
        pool_size: usize,
    ) -> Result<Routed<A::Source>, ConnectError> {
        let mut routed = Routed {
            default: None,
            named: Vec::new(),
        };
        for (name, url) in setting_parts(setting).map_err(setting_error)? {
            let source = A::source(url, tls, pool_size).map_err(|e| match name {
                Some(name) => ConnectError {
                    ca_file: e.ca_file,
                    message: format!("instance {name}: {}", e.message),
                },
                None => e,
            })?;
            match name {
                Some(name) => routed.named.push((name.to_owned(), source)),
                None => routed.default = Some(source),
            }
        }
        Ok(routed)
    }

    fn check_mapping(source: &Routed<A::Source>, mapping: &Mapping) -> Result<(), String> {
        source.instances(mapping).map(|_| ())
    }
}

/// Sources by instance: each instance of the mapping reads its named
/// source, or the default one; a mapping without instances reads the
/// default source.
#[derive(Debug, Clone)]
pub struct Routed<S> {
    /// The source of the instances without one of their own (and of a
    /// mapping without instances).
    pub default: Option<S>,
    /// Sources by instance name.
    pub named: Vec<(String, S)>,
}

impl<S: Clone> Routed<S> {
    /// A single source.
    pub fn one(source: S) -> Routed<S> {
        Routed {
            default: Some(source),
            named: Vec::new(),
        }
    }

    /// The source of each instance of `mapping`; the error names what is
    /// missing or left over.
    pub fn instances(&self, mapping: &Mapping) -> Result<Instances<S>, String> {
        if mapping.instances.is_empty() && (self.default.is_none() || !self.named.is_empty()) {
            let named: Vec<&str> = self.named.iter().map(|(n, _)| n.as_str()).collect();
            return Err(format!(
                "the mapping names no [[source.instance]], so the source is one URL without an instance name{}",
                if named.is_empty() {
                    String::new()
                } else {
                    format!(" (the setting names {})", named.join(", "))
                }
            ));
        }
        for (name, _) in &self.named {
            if !mapping.instances.iter().any(|i| &i.name == name) {
                return Err(format!(
                    "the source setting names instance {name:?}, which the mapping does not have (instances: {})",
                    mapping
                        .instances
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Instances::for_mapping(mapping, |instance| self.source_for(&instance.name).cloned())
    }

    /// The source of the instance named `name`: its own, else the default.
    fn source_for(&self, name: &str) -> Option<&S> {
        self.named
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .or(self.default.as_ref())
    }

    /// The source that reads `table` (a table of the mapping, in the
    /// schema its records carry) and the schema it has there: the source of
    /// the instance whose schema it is, else the default.
    pub fn source_of(&self, mapping: &Mapping, table: &TableName) -> Option<(&S, TableName)> {
        match mapping.instances.iter().find(|i| i.schema == table.schema) {
            Some(instance) => Some((
                self.source_for(&instance.name)?,
                crate::instances::renamed(table, instance),
            )),
            None => self.default.as_ref().map(|s| (s, table.clone())),
        }
    }
}

impl<S> Source for Routed<S>
where
    S: Source + Clone,
    S::Error: std::fmt::Display + Send,
{
    type Error = Either<S::Error, InstancesError<S::Error>>;
    type Snapshot = Either<S::Snapshot, InstancesSnapshot<S>>;

    async fn snapshot(
        &self,
        mapping: &Mapping,
        chunk_size: usize,
    ) -> Result<Self::Snapshot, Self::Error> {
        if mapping.instances.is_empty() {
            if let (Some(source), true) = (&self.default, self.named.is_empty()) {
                return source
                    .snapshot(mapping, chunk_size)
                    .await
                    .map(Either::A)
                    .map_err(Either::A);
            }
        }
        let instances = self
            .instances(mapping)
            .map_err(|problem| Either::B(InstancesError::Unrouted(problem)))?;
        instances
            .snapshot(mapping, chunk_size)
            .await
            .map(Either::B)
            .map_err(Either::B)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_is_one_url_or_urls_named_by_instance() {
        assert_eq!(
            setting_parts("postgres://u:p@h/db?sslmode=require").unwrap(),
            vec![(None, "postgres://u:p@h/db?sslmode=require")]
        );
        assert_eq!(
            setting_parts(" eu=postgres://a/db\n us=mysql://b/db?x=y ").unwrap(),
            vec![
                (Some("eu"), "postgres://a/db"),
                (Some("us"), "mysql://b/db?x=y")
            ]
        );
        assert_eq!(
            setting_parts("mysql://h/db eu=postgres://a/db").unwrap(),
            vec![(None, "mysql://h/db"), (Some("eu"), "postgres://a/db")]
        );
        assert_eq!(setting_parts("  ").unwrap_err(), "empty");
        assert!(setting_parts("mysql://a/x mysql://b/y")
            .unwrap_err()
            .starts_with("more than one value without an instance name"));
        assert_eq!(
            setting_parts("eu=mysql://a/x eu=mysql://b/y").unwrap_err(),
            "instance \"eu\" is named twice"
        );
        assert_eq!(
            setting_parts("eu=").unwrap_err(),
            "part 1 (eu=) has no value"
        );
    }
}
