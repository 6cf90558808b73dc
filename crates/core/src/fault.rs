//! Whose fault is a failure? The one place that answers it.
//!
//! Only a failure caused by the record itself may quarantine the record: it
//! does not decode, the mapping cannot evaluate for it, or a target column
//! rejects its value. Everything else (connection, authentication,
//! authorisation, missing schema, server state, throttling, and any answer
//! we have never seen) retries the batch from the earliest unapplied record
//! and raises the error metric: quarantining good records because a
//! password rotated is the worst failure this product can have.
//!
//! Each adapter maps its driver's errors to a [`Fault`] through one typed
//! method ([`Classify::fault`], e.g. `dms_cdc_mysql::fault` for MySQL and
//! MariaDB); the engine only ever looks at the [`Fault`].

use std::fmt;

/// Who is to blame for a failure, and so what happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The record itself (its value, its shape): bisect the batch down to
    /// it and quarantine it with its payload and the reason.
    Record,
    /// Anything else: retry the batch, raise the error metric.
    Infrastructure(Infrastructure),
}

/// The kinds of infrastructure faults (for logs, metrics and alarms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Infrastructure {
    /// The network, a dropped or refused connection, a server going away.
    Connection,
    /// The server refused our credentials (e.g. after a password rotation):
    /// secrets are re-read before the retry.
    Authentication,
    /// The user lacks a privilege, or TLS is required and not used.
    Authorisation,
    /// A database, table or column the mapping names is missing.
    Schema,
    /// Transient server state: lock wait timeout, deadlock, read-only
    /// during a failover, too many connections, shutdown in progress.
    ServerState,
    /// The checkpoint or quarantine row could not be written although the
    /// server is up: operator action is needed (alarm); the batch retries.
    Bookkeeping,
    /// Our configuration (a URL, a TLS setting) does not work.
    Configuration,
    /// An answer we do not know: retried, never quarantined.
    Unknown,
}

impl Fault {
    /// Whether the record may be quarantined for it.
    pub fn is_record(self) -> bool {
        self == Fault::Record
    }

    /// Whether an operator must act (see [`Infrastructure::needs_operator`]).
    pub fn needs_operator(self) -> bool {
        matches!(self, Fault::Infrastructure(i) if i.needs_operator())
    }

    /// A short, stable, lowercase name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Record => "record",
            Fault::Infrastructure(i) => i.name(),
        }
    }
}

impl Infrastructure {
    /// A short, stable, lowercase name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Infrastructure::Connection => "connection",
            Infrastructure::Authentication => "authentication",
            Infrastructure::Authorisation => "authorisation",
            Infrastructure::Schema => "schema",
            Infrastructure::ServerState => "server-state",
            Infrastructure::Bookkeeping => "bookkeeping",
            Infrastructure::Configuration => "configuration",
            Infrastructure::Unknown => "unknown",
        }
    }

    /// Whether an operator must act (an alarm, not only a retry).
    pub fn needs_operator(self) -> bool {
        matches!(
            self,
            Infrastructure::Authorisation
                | Infrastructure::Schema
                | Infrastructure::Bookkeeping
                | Infrastructure::Configuration
        )
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An adapter's error that knows whose fault it is. Each adapter (a
/// [`crate::source::Source`] or a [`crate::target::Target`]) classifies its
/// driver's errors here, in one place; the engine never looks at driver
/// error codes or messages.
pub trait Classify: std::error::Error + Send + Sync + 'static {
    /// Whose fault it is.
    fn fault(&self) -> Fault;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable() {
        assert_eq!(Fault::Record.name(), "record");
        assert_eq!(
            Fault::Infrastructure(Infrastructure::Authentication).to_string(),
            "authentication"
        );
        assert!(Infrastructure::Bookkeeping.needs_operator());
        assert!(!Infrastructure::Connection.needs_operator());
    }
}
