//! MySQL and MariaDB: whose fault is a server answer. The one list of
//! server codes, by error code (see `dms_cdc_core::fault` for the rules).

use dms_cdc_core::fault::{Fault, Infrastructure};

/// Codes whose cause is the value of the record being written: a
/// target column or constraint rejects it. The only codes that quarantine.
pub const RECORD_CODES: [u16; 16] = [
    1048, // column cannot be null
    1264, // out of range value for column
    1265, // data truncated for column
    1292, // incorrect (datetime, ...) value
    1366, // incorrect (integer, string, ...) value for column
    1367, // illegal value found during parsing
    1406, // data too long for column
    1411, // incorrect value for function
    1451, // a foreign key constraint fails (delete of a referenced parent)
    1452, // a foreign key constraint fails (child without its parent)
    1690, // value is out of range (BIGINT arithmetic)
    3140, // invalid JSON text (MySQL)
    3819, // check constraint is violated (MySQL)
    4025, // CONSTRAINT failed (MariaDB CHECK, JSON_VALID)
    4078, // illegal parameter data types for operation (MariaDB)
    1416, // cannot get geometry object from the data
];

/// The fault of a server error code (anything unlisted is
/// infrastructure, of kind [`Infrastructure::Unknown`] if we do not know it).
pub fn of_code(code: u16) -> Fault {
    use Infrastructure as I;
    if RECORD_CODES.contains(&code) {
        return Fault::Record;
    }
    Fault::Infrastructure(match code {
        // Authentication: access denied (password rotated, expired).
        1045 | 1698 | 1820 | 1862 | 4151 => I::Authentication,
        // Authorisation: no access to a database, a table, a host; TLS required.
        1044 | 1130 | 1131 | 1132 | 1142 | 1143 | 1227 | 1370 | 3159 => I::Authorisation,
        // The schema is missing: database, table, column.
        1049 | 1146 | 1054 | 1109 | 1051 | 1356 => I::Schema,
        // Server state: locks, deadlocks, read-only, overload, shutdown, killed.
        1205 | 1213 | 1290 | 1836 | 1040 | 1203 | 1053 | 1927 | 1317 | 1792 | 1969 | 3024
        | 1041 | 1037 | 1038 | 1021 | 1114 => I::ServerState,
        // Network errors the server reports.
        1158 | 1159 | 1160 | 1161 | 1152 | 1153 | 1043 | 1081 => I::Connection,
        // Client-side connection errors (CR_*), if a driver reports them as codes.
        2002 | 2003 | 2005 | 2006 | 2013 | 2026 | 2055 => I::Connection,
        _ => I::Unknown,
    })
}

/// A driver error as text fit for a log line or a quarantine reason:
/// values the server quotes (`Incorrect integer value: 'abc' for
/// column ...`) are replaced by `'...'`, so no row value leaves the
/// database through us, and the text is bounded (256 bytes).
pub fn describe(err: &mysql_async::Error) -> String {
    let text = match err {
        mysql_async::Error::Server(e) => {
            format!("ERROR {} ({}): {}", e.code, e.state, redact(&e.message))
        }
        other => other.to_string(),
    };
    dms_cdc_core::target::bounded(&text, 256).to_owned()
}

/// `text` with every single-quoted part replaced by `'...'`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    for c in text.chars() {
        match (c, quoted) {
            ('\'', false) => {
                out.push_str("'...'");
                quoted = true;
            }
            ('\'', true) => quoted = false,
            (_, true) => {}
            (c, false) => out.push(c),
        }
    }
    out
}

/// The fault of a driver error.
pub fn of(err: &mysql_async::Error) -> Fault {
    use mysql_async::{DriverError, Error};
    match err {
        Error::Server(e) => of_code(e.code),
        // The client refuses to send a packet over max_allowed_packet:
        // caused by the size of the rows in the statement, so bisection
        // shrinks the statement and isolates a row too big to ever fit.
        Error::Driver(DriverError::PacketTooLarge) => Fault::Record,
        Error::Driver(_) | Error::Io(_) => Fault::Infrastructure(Infrastructure::Connection),
        Error::Url(_) => Fault::Infrastructure(Infrastructure::Configuration),
        Error::Other(_) => Fault::Infrastructure(Infrastructure::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_value_errors_are_the_records_fault() {
        use Infrastructure as I;
        let cases: &[(u16, Fault)] = &[
            (1048, Fault::Record),
            (1264, Fault::Record),
            (1366, Fault::Record),
            (1406, Fault::Record),
            (1452, Fault::Record),
            (1045, Fault::Infrastructure(I::Authentication)),
            (1044, Fault::Infrastructure(I::Authorisation)),
            (1049, Fault::Infrastructure(I::Schema)),
            (1146, Fault::Infrastructure(I::Schema)),
            (1054, Fault::Infrastructure(I::Schema)),
            (1130, Fault::Infrastructure(I::Authorisation)),
            (3159, Fault::Infrastructure(I::Authorisation)),
            (1040, Fault::Infrastructure(I::ServerState)),
            (1205, Fault::Infrastructure(I::ServerState)),
            (1213, Fault::Infrastructure(I::ServerState)),
            (1290, Fault::Infrastructure(I::ServerState)),
            (1927, Fault::Infrastructure(I::ServerState)),
            (2013, Fault::Infrastructure(I::Connection)),
            (9999, Fault::Infrastructure(I::Unknown)),
            (1064, Fault::Infrastructure(I::Unknown)), // a syntax error is ours, not the record's
        ];
        for (code, want) in cases {
            assert_eq!(of_code(*code), *want, "code {code}");
        }
    }

    #[test]
    fn server_messages_lose_their_values() {
        let e = mysql_async::Error::Server(mysql_async::ServerError {
            code: 1366,
            state: "22007".into(),
            message: "Incorrect integer value: 'secret 42' for column `global`.`t`.`n` at row 1"
                .into(),
        });
        let text = describe(&e);
        assert_eq!(
            text,
            "ERROR 1366 (22007): Incorrect integer value: '...' for column `global`.`t`.`n` at row 1"
        );
        assert!(describe(&mysql_async::Error::Other("x".repeat(1000).into())).len() <= 256);
    }
}
