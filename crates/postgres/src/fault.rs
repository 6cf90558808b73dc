//! PostgreSQL: whose fault is a server answer. The one list of SQLSTATE
//! rules (see `dms_cdc_core::fault` for the rules every adapter follows).
//!
//! PostgreSQL names every error with a five-character SQLSTATE whose first
//! two characters are its class. Only the classes of a value the target
//! rejects (22, data exception; 23, integrity constraint violation) are the
//! record's fault; everything else retries, and an answer we do not know
//! retries as [`Infrastructure::Unknown`].

use dms_cdc_core::fault::{Fault, Infrastructure};

/// A failure of the driver or of the pool in front of it.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The driver (or the server through it).
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    /// The pool could not hand out a connection.
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::PoolError),
}

/// The fault of a SQLSTATE (`22001`, `40P01`, ...).
pub fn of_sqlstate(code: &str) -> Fault {
    use Infrastructure as I;
    let class = code.get(..2).unwrap_or("");
    match class {
        // Data exception (a value too long, out of range, not a number,
        // not valid JSON or UTF-8) and integrity constraint violation (NOT
        // NULL, CHECK, a foreign key, a unique index other than the key):
        // the record's value is refused.
        "22" | "23" => return Fault::Record,
        _ => {}
    }
    Fault::Infrastructure(match (class, code) {
        // Serialisation failure, deadlock, and the rest of class 40
        // (transaction rollback): the next attempt may pass.
        ("40", _) => I::ServerState,
        // Connection exception.
        ("08", _) => I::Connection,
        // Invalid authorisation specification: a wrong or rotated password
        // (28P01), a role that may not log in, no pg_hba.conf entry (28000).
        ("28", _) => I::Authentication,
        // Insufficient privilege on a table or schema.
        (_, "42501") => I::Authorisation,
        // Undefined table, undefined column, no such schema, no such
        // database; no unique index matches ON CONFLICT (the target key is
        // not the table's primary key or a unique index of it).
        (_, "42P01" | "42703" | "3F000" | "3D000" | "42P10") => I::Schema,
        // Operator intervention (query canceled, shutdown, starting up),
        // insufficient resources (too many connections, disk full), object
        // not in prerequisite state (lock not available), system errors,
        // and a read-only transaction on a standby during a failover.
        ("57" | "53" | "55" | "58", _) | (_, "25006") => I::ServerState,
        _ => I::Unknown,
    })
}

/// The fault of a driver error.
pub fn of_postgres(err: &tokio_postgres::Error) -> Fault {
    if let Some(state) = err.code() {
        return of_sqlstate(state.code());
    }
    if err.is_closed() || source_is::<std::io::Error>(err) {
        return Fault::Infrastructure(Infrastructure::Connection);
    }
    // The driver does not expose the kind of a client-side error, only its
    // text: "authentication error" (the SCRAM exchange failed: the
    // credentials are what is wrong) and "invalid configuration" (e.g. the
    // server asks for a password the URL does not carry).
    let text = err.to_string();
    if text.starts_with("authentication error") {
        return Fault::Infrastructure(Infrastructure::Authentication);
    }
    if text.starts_with("invalid configuration") {
        return Fault::Infrastructure(Infrastructure::Configuration);
    }
    Fault::Infrastructure(Infrastructure::Unknown)
}

/// The fault of a driver or pool error.
pub fn of(err: &DriverError) -> Fault {
    use deadpool_postgres::PoolError as P;
    match err {
        DriverError::Postgres(e) | DriverError::Pool(P::Backend(e)) => of_postgres(e),
        // Waiting for a connection, or for one to be made, took too long.
        DriverError::Pool(P::Timeout(_) | P::Closed) => {
            Fault::Infrastructure(Infrastructure::Connection)
        }
        DriverError::Pool(P::NoRuntimeSpecified) => {
            Fault::Infrastructure(Infrastructure::Configuration)
        }
        DriverError::Pool(P::PostCreateHook(_)) => Fault::Infrastructure(Infrastructure::Unknown),
    }
}

fn source_is<E: std::error::Error + 'static>(err: &tokio_postgres::Error) -> bool {
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        if c.is::<E>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A driver error as text fit for a log line or a quarantine reason:
/// `ERROR <SQLSTATE>: <message> (table t, column c)`. Values are never
/// part of it: the server's detail (which quotes keys and values) is left
/// out, quoted parts of data errors (class 22, which quote the value:
/// `invalid input syntax for type integer: "abc"`) and single-quoted parts
/// of any message become `'...'`; the text is bounded (256 bytes).
pub fn describe(err: &DriverError) -> String {
    let db = match err {
        DriverError::Postgres(e) | DriverError::Pool(deadpool_postgres::PoolError::Backend(e)) => {
            e.as_db_error()
        }
        DriverError::Pool(_) => None,
    };
    let text = match db {
        Some(db) => {
            let code = db.code().code();
            let mut text = format!(
                "ERROR {code}: {}",
                redact(db.message(), code.starts_with("22"))
            );
            let place: Vec<String> = [("table", db.table()), ("column", db.column())]
                .into_iter()
                .filter_map(|(what, name)| name.map(|n| format!("{what} {n}")))
                .collect();
            if !place.is_empty() {
                text.push_str(&format!(" ({})", place.join(", ")));
            }
            text
        }
        None => {
            // The driver's text and its causes (an I/O error says what
            // refused the connection); they carry no row values.
            let mut text = err.to_string();
            let mut cause = std::error::Error::source(err);
            while let Some(c) = cause {
                let more = c.to_string();
                if !text.contains(&more) {
                    text.push_str(": ");
                    text.push_str(&more);
                }
                cause = c.source();
            }
            text
        }
    };
    dms_cdc_core::target::bounded(&text, 256).to_owned()
}

/// `text` with every single-quoted part (and with `double`, every
/// double-quoted part) replaced by `'...'`.
pub fn redact(text: &str, double: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut open: Option<char> = None;
    for c in text.chars() {
        match open {
            Some(q) if c == q => open = None,
            Some(_) => {}
            None if c == '\'' || (double && c == '"') => {
                out.push_str("'...'");
                open = Some(c);
            }
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_data_and_constraint_errors_are_the_records_fault() {
        use Infrastructure as I;
        let cases: &[(&str, Fault)] = &[
            ("22001", Fault::Record), // value too long
            ("22003", Fault::Record), // numeric value out of range
            ("22P02", Fault::Record), // invalid text representation
            ("22007", Fault::Record), // invalid datetime format
            ("22021", Fault::Record), // invalid byte sequence (NUL in text)
            ("22P05", Fault::Record), // untranslatable character (\u0000 in jsonb)
            ("23502", Fault::Record), // not null violation
            ("23503", Fault::Record), // foreign key violation
            ("23505", Fault::Record), // unique violation (not the key)
            ("23514", Fault::Record), // check violation
            ("40001", Fault::Infrastructure(I::ServerState)),
            ("40P01", Fault::Infrastructure(I::ServerState)),
            ("08006", Fault::Infrastructure(I::Connection)),
            ("08001", Fault::Infrastructure(I::Connection)),
            ("28P01", Fault::Infrastructure(I::Authentication)),
            ("28000", Fault::Infrastructure(I::Authentication)),
            ("42501", Fault::Infrastructure(I::Authorisation)),
            ("42P01", Fault::Infrastructure(I::Schema)),
            ("42703", Fault::Infrastructure(I::Schema)),
            ("3F000", Fault::Infrastructure(I::Schema)),
            ("3D000", Fault::Infrastructure(I::Schema)),
            ("42P10", Fault::Infrastructure(I::Schema)),
            ("57014", Fault::Infrastructure(I::ServerState)), // canceled
            ("57P01", Fault::Infrastructure(I::ServerState)), // admin shutdown
            ("57P03", Fault::Infrastructure(I::ServerState)), // cannot connect now
            ("53300", Fault::Infrastructure(I::ServerState)), // too many connections
            ("53100", Fault::Infrastructure(I::ServerState)), // disk full
            ("55P03", Fault::Infrastructure(I::ServerState)), // lock not available
            ("25006", Fault::Infrastructure(I::ServerState)), // read-only transaction
            // Ours, not the record's: a syntax error, a type mismatch in
            // our SQL, the same key twice in one upsert, an internal error.
            ("42601", Fault::Infrastructure(I::Unknown)),
            ("42804", Fault::Infrastructure(I::Unknown)),
            ("21000", Fault::Infrastructure(I::Unknown)),
            ("XX000", Fault::Infrastructure(I::Unknown)),
            ("99999", Fault::Infrastructure(I::Unknown)),
            ("", Fault::Infrastructure(I::Unknown)),
        ];
        for (code, want) in cases {
            assert_eq!(of_sqlstate(code), *want, "SQLSTATE {code}");
        }
    }

    #[test]
    fn quoted_values_are_redacted() {
        assert_eq!(
            redact(
                r#"invalid input syntax for type integer: "secret 42""#,
                true
            ),
            "invalid input syntax for type integer: '...'"
        );
        assert_eq!(
            redact(r#"relation "global_users" does not exist"#, false),
            r#"relation "global_users" does not exist"#
        );
        assert_eq!(redact("value 'x' and 'y'", false), "value '...' and '...'");
    }
}
