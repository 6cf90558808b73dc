//! The OpenSearch target of dms-cdc: every target table of the mapping is
//! an index, every target row a document.
//!
//! - [`connection`]: settings from a URL (`https://user:pass@host:443`,
//!   `http://127.0.0.1:9200`, SigV4 with `sigv4-region=`), the HTTP client
//!   (hyper, rustls, timeouts on every request);
//! - [`index`]: names (an alias per table over `<alias>-v<N>`), the index
//!   body made from the mapping ([`index::index_body`]), document ids and
//!   sources;
//! - [`version`]: the engine's version text as an external version;
//! - [`bulk`]: `_bulk` requests, split by bytes and count, read per item;
//! - [`fault`]: the one list of answers and whose fault each is;
//! - [`target`]: [`OpenSearchTarget`] and its [`target::WriteTx`];
//! - [`quarantine`], [`rows`]: the quarantine store and reading documents
//!   back for `dms-cdc reconcile`;
//! - [`local`]: a throwaway local node for tests.
//!
//! # Delivery contract
//!
//! Delivery is at-least-once and ordered per shard only. OpenSearch has no
//! transaction across documents or indices, so a batch is made durable in
//! this order: every `_bulk` of the batch is sent and **acknowledged**
//! (each item either written, or refused as older: a `409` on an external
//! version), then the quarantined records are stored, then the shard's
//! checkpoint is moved forward (read, compare, write with
//! `if_seq_no`/`if_primary_term`: this node has no scripting, and a
//! checkpoint only moves forward). A failure anywhere stops before the
//! checkpoint, so the engine retries from the first record that is not
//! durable; writes that were already acknowledged are sent again and are
//! no-ops or the same document again (external versions with
//! `external_gte`: an equal version is accepted, an older one is refused).
//! Nothing is lost because the checkpoint never passes a write that was
//! not acknowledged (with the default `index.translog.durability=request`
//! an acknowledged write is fsynced on every copy that took it).
//!
//! What differs from the SQL targets: an attempt that fails part-way is not
//! rolled back. Its acknowledged documents stay; they are writes the
//! engine would make anyway (a retry repeats them), except that a record
//! quarantined after a bisection may leave documents it wrote into other
//! tables before its refused one (a record's writes are not atomic).
//!
//! # Versions
//!
//! A target with a version column is written with
//! `version_type=external_gte` and the version text mapped to 63 bits
//! ([`version`]: seconds since 2000, log file number, log offset in
//! 256 KiB granules; what does not fit ties, and ties go to the write
//! applied last). The exact text is stored in the version column. A target
//! without one is written without versions (the last write wins).
//!
//! # Deletes and tombstones
//!
//! A delete of a versioned document is a `delete` with the delete's
//! external version. OpenSearch remembers the deleted version for
//! `index.gc_deletes` only (60 s by default), after which an older `index`
//! would bring the document back. Two things keep "a delete is never
//! undone by an older update":
//!
//! 1. the target indices are created with `index.gc_deletes` = 7 days
//!    (`gc-deletes=`), which covers concurrent writers and redeliveries
//!    while the node runs;
//! 2. every delete (and soft-delete mark) also writes a document to the
//!    tombstone index (`dms-cdc-tombstone`, id `<table>|<document id>`,
//!    external version = the delete's), and before upserting, the writer
//!    reads the tombstones of its documents (`_mget`) and drops the
//!    upserts older than the delete, as the SQL targets do. This survives
//!    a node restart, which forgets deleted versions. Tombstones are not
//!    purged (an index lifecycle policy may delete those older than
//!    8 days).
//!
//! A soft delete with an image is an upsert. A soft-delete mark reads the
//! document and writes it back with the mark (and the delete's version,
//! unless the stored version is newer); a missing document gets no mark.

pub mod blue_green;
pub mod bulk;
pub mod connection;
pub mod fault;
pub mod index;
pub mod local;
pub mod quarantine;
pub mod rows;
pub mod target;
pub mod version;

pub use connection::{Client, Config};
pub use fault::TargetError;
pub use target::OpenSearchTarget;

use dms_cdc_core::adapter::{ConnectError, Database, TargetAdapter};
use dms_cdc_core::connection::Tls;

/// The OpenSearch adapter (URLs `opensearch://`, `https://`, `http://`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenSearch;

impl Database for OpenSearch {
    const URL_SCHEME: &'static str = "opensearch";
    const DEFAULT_PORT: u16 = 443;

    fn validate_url(url: &str) -> Result<(), ConnectError> {
        Config::from_url(url).map(|_| ()).map_err(|e| ConnectError {
            ca_file: false,
            message: e.to_string(),
        })
    }
}

impl TargetAdapter for OpenSearch {
    type Target = OpenSearchTarget;

    /// A target for `url`. HTTPS trusts the built-in public roots, or the
    /// CAs of `tls.ca` (or the URL's `ssl-ca`); `pool_size` and
    /// `chunk_size` do not apply (bulks are split by `bulk-bytes` and
    /// `bulk-actions`).
    fn target(
        url: &str,
        tls: &Tls,
        _pool_size: usize,
        function_name: &str,
        _chunk_size: usize,
    ) -> Result<OpenSearchTarget, ConnectError> {
        let mut config = Config::from_url(url).map_err(|e| ConnectError {
            ca_file: false,
            message: e.to_string(),
        })?;
        // DMS_CDC_TARGET_SSL_CA replaces the URL's `ssl-ca`.
        if let Some(ca) = &tls.ca {
            config.ca_file = Some(ca.clone());
        }
        OpenSearchTarget::new(config, function_name).map_err(|e| ConnectError {
            ca_file: false,
            message: e.to_string(),
        })
    }
}
