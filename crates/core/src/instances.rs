//! Several sources consolidated into one target: a [`Source`] that routes
//! every read to the source instance whose schema the table is in.
//!
//! A mapping with `[[source.instance]]`s compiles every target once per
//! instance, on the instance's schema (the `schema-name` its DMS task puts
//! on its records), with the instance's name in the target's discriminator
//! key column. The engine plans and writes those copies like any targets,
//! in one transaction and one checkpoint per shard (a stream may be fed by
//! several DMS tasks); [`Instances`] sends each copy's reads to its own
//! database, in a snapshot of that database opened on first use in the
//! batch, with the schema the tables have there (`source_schema`).

use crate::dms::TableName;
use crate::fault::{Classify, Fault, Infrastructure};
use crate::mapping::{Instance, Mapping, TargetTable};
use crate::plan::KeyTuple;
use crate::source::{FetchedRows, SnapshotStats, Source, SourceSnapshot};

/// One source per instance of the mapping.
#[derive(Debug, Clone)]
pub struct Instances<S> {
    /// The instances, each with its source.
    pub sources: Vec<(Instance, S)>,
}

impl<S> Instances<S> {
    /// Pairs each instance of `mapping` with its source from `source_of`
    /// (by instance name); the error names an instance without one.
    pub fn for_mapping(
        mapping: &Mapping,
        mut source_of: impl FnMut(&Instance) -> Option<S>,
    ) -> Result<Instances<S>, String> {
        let sources = mapping
            .instances
            .iter()
            .map(|i| {
                source_of(i)
                    .map(|s| (i.clone(), s))
                    .ok_or_else(|| format!("no source for instance {:?}", i.name))
            })
            .collect::<Result<_, _>>()?;
        Ok(Instances { sources })
    }
}

/// A read of a routed source failed.
#[derive(Debug, thiserror::Error)]
pub enum InstancesError<E> {
    /// The instance's source.
    #[error("source instance {instance}: {error}")]
    Source {
        /// The instance.
        instance: String,
        /// Its error.
        error: E,
    },
    /// A table in no instance's schema (the mapping and the sources disagree).
    #[error("table {0} is in the schema of no source instance")]
    NoInstance(String),
    /// The sources configured do not serve the mapping's instances.
    #[error("{0}")]
    Unrouted(String),
}

impl<E: Classify> Classify for InstancesError<E> {
    fn fault(&self) -> Fault {
        match self {
            InstancesError::Source { error, .. } => error.fault(),
            InstancesError::NoInstance(_) | InstancesError::Unrouted(_) => {
                Fault::Infrastructure(Infrastructure::Configuration)
            }
        }
    }
}

impl<S> Source for Instances<S>
where
    S: Source + Clone,
    S::Error: std::fmt::Display + Send,
{
    type Error = InstancesError<S::Error>;
    type Snapshot = InstancesSnapshot<S>;

    async fn snapshot(
        &self,
        mapping: &Mapping,
        chunk_size: usize,
    ) -> Result<InstancesSnapshot<S>, Self::Error> {
        Ok(InstancesSnapshot {
            mapping: mapping.clone(),
            chunk_size,
            open: self
                .sources
                .iter()
                .map(|(i, s)| (i.clone(), s.clone(), None))
                .collect(),
        })
    }
}

/// One batch's snapshots, one per instance read so far.
pub struct InstancesSnapshot<S: Source> {
    mapping: Mapping,
    chunk_size: usize,
    open: Vec<(Instance, S, Option<S::Snapshot>)>,
}

/// `table` with the instance's schema replaced by its source schema.
pub(crate) fn renamed(table: &TableName, instance: &Instance) -> TableName {
    if table.schema == instance.schema {
        TableName::new(&instance.source_schema, &table.table)
    } else {
        table.clone()
    }
}

/// `target` with its tables in the instance's source schema.
fn renamed_target(target: &TargetTable, instance: &Instance) -> TargetTable {
    let mut t = target.clone();
    t.root = renamed(&t.root, instance);
    for j in &mut t.joins {
        j.table = renamed(&j.table, instance);
    }
    for c in &mut t.children {
        c.table = renamed(&c.table, instance);
    }
    t
}

impl<S> InstancesSnapshot<S>
where
    S: Source,
{
    /// The open snapshot of the instance whose schema `table` is in.
    async fn of(
        &mut self,
        table: &TableName,
    ) -> Result<(&Instance, &mut S::Snapshot), InstancesError<S::Error>> {
        let Some(slot) = self
            .open
            .iter_mut()
            .find(|(i, _, _)| i.schema == table.schema)
        else {
            return Err(InstancesError::NoInstance(table.to_string()));
        };
        let (instance, source, snapshot) = slot;
        if snapshot.is_none() {
            *snapshot = Some(
                source
                    .snapshot(&self.mapping, self.chunk_size)
                    .await
                    .map_err(|error| InstancesError::Source {
                        instance: instance.name.clone(),
                        error,
                    })?,
            );
        }
        Ok((instance, snapshot.as_mut().expect("opened above")))
    }
}

fn source_error<E>(instance: &Instance) -> impl FnOnce(E) -> InstancesError<E> + '_ {
    move |error| InstancesError::Source {
        instance: instance.name.clone(),
        error,
    }
}

impl<S> SourceSnapshot for InstancesSnapshot<S>
where
    S: Source,
    S::Snapshot: Send,
    S::Error: std::fmt::Display + Send,
{
    type Error = InstancesError<S::Error>;

    async fn reverse_lookup(
        &mut self,
        target: &TargetTable,
        columns: &[String],
        tuples: &[KeyTuple],
    ) -> Result<Vec<(KeyTuple, KeyTuple)>, Self::Error> {
        let (instance, snapshot) = self.of(&target.root).await?;
        let target = renamed_target(target, instance);
        snapshot
            .reverse_lookup(&target, columns, tuples)
            .await
            .map_err(source_error(instance))
    }

    async fn lookup_in(
        &mut self,
        table: &TableName,
        select: &[String],
        match_columns: &[String],
        tuples: &[KeyTuple],
    ) -> Result<Vec<(KeyTuple, KeyTuple)>, Self::Error> {
        let (instance, snapshot) = self.of(table).await?;
        let table = renamed(table, instance);
        snapshot
            .lookup_in(&table, select, match_columns, tuples)
            .await
            .map_err(source_error(instance))
    }

    async fn fetch(
        &mut self,
        target: &TargetTable,
        keys: &[KeyTuple],
    ) -> Result<FetchedRows, Self::Error> {
        let (instance, snapshot) = self.of(&target.root).await?;
        let target = renamed_target(target, instance);
        snapshot
            .fetch(&target, keys)
            .await
            .map_err(source_error(instance))
    }

    async fn finish(self) -> Result<SnapshotStats, Self::Error> {
        let mut stats = SnapshotStats::default();
        for (instance, _, snapshot) in self.open {
            if let Some(s) = snapshot {
                let more = s.finish().await.map_err(source_error(&instance))?;
                stats.select_count += more.select_count;
                stats.row_count += more.row_count;
            }
        }
        Ok(stats)
    }
}
