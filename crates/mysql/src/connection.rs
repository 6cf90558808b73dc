//! Options of every MySQL connection (the function's source and target
//! pools, the CLI, the local capture): the `mysql://` URL, TLS, and
//! passwords kept out of the process list and out of messages.
//!
//! TLS settings travel in the URL, so every caller of
//! [`crate::source::pool`] gets them the same way:
//!
//! - ours, named like the MySQL client's options: `ssl-mode` (`disabled`,
//!   `required`, `verify-ca`, `verify-identity`) and `ssl-ca` (a PEM file
//!   of the CA certificates to trust instead of the built-in roots);
//! - or the driver's: `require_ssl=true` (verifies the CA and the host
//!   name), `verify_ca=false`, `verify_identity=false`, `built_in_roots`.
//!
//! [`with_tls`] puts settings from elsewhere (the function's environment
//! variables) into a URL, replacing the URL's own. No function here puts a
//! password into an error or a log line.

use std::path::{Path, PathBuf};

use mysql_async::{Opts, OptsBuilder, SslOpts};

/// URL parameter of the TLS mode (also accepted as `ssl_mode`).
pub const PARAM_SSL_MODE: &str = "ssl-mode";
/// URL parameter of the CA file (also accepted as `ssl_ca`).
pub const PARAM_SSL_CA: &str = "ssl-ca";
/// The driver's own TLS parameters.
const DRIVER_TLS_PARAMS: [&str; 4] = [
    "require_ssl",
    "verify_ca",
    "verify_identity",
    "built_in_roots",
];

use dms_cdc_core::connection::set_query;
pub use dms_cdc_core::connection::{redact, SslMode, Tls};

/// A URL, TLS setting or password that cannot be used. The messages never
/// contain the URL or the password.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// The driver rejects the URL.
    #[error("not a valid mysql:// URL: {0}")]
    Url(#[source] mysql_async::UrlError),
    /// One of our URL parameters is wrong.
    #[error("URL parameter {param}: {problem}")]
    Param {
        /// The parameter.
        param: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The CA file cannot be read.
    #[error("CA file {}: {source}", path.display())]
    CaRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("CA file {}: {problem}", path.display())]
    CaContent {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The password file cannot be read.
    #[error("password file {}: {source}", path.display())]
    PasswordRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A password cannot be put into the URL (or its file is unusable).
    #[error("{0}")]
    Password(&'static str),
}

/// A URL split into the part for the driver and our TLS parameters.
struct Split {
    driver_url: String,
    tls: Tls,
}

/// Takes `ssl-mode` and `ssl-ca` out of the URL (the driver rejects
/// parameters it does not know).
fn split(url: &str) -> Result<Split, OptionsError> {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // The driver says what is wrong with it.
        return Err(OptionsError::Url(
            Opts::from_url(url)
                .err()
                .unwrap_or(mysql_async::UrlError::Invalid),
        ));
    };
    let mut tls = Tls::default();
    let mut driver_tls = false;
    let mut rest = Vec::new();
    for (key, value) in parsed.query_pairs() {
        match key.as_ref() {
            "ssl-mode" | "ssl_mode" => {
                tls.mode = Some(value.parse().map_err(|problem| OptionsError::Param {
                    param: PARAM_SSL_MODE,
                    problem,
                })?);
            }
            "ssl-ca" | "ssl_ca" => {
                if value.trim().is_empty() {
                    return Err(OptionsError::Param {
                        param: PARAM_SSL_CA,
                        problem: "the path is empty".to_owned(),
                    });
                }
                tls.ca = Some(PathBuf::from(value.as_ref()));
            }
            other => {
                driver_tls |= DRIVER_TLS_PARAMS.contains(&other);
                rest.push((key.into_owned(), value.into_owned()));
            }
        }
    }
    if !tls.is_set() {
        return Ok(Split {
            driver_url: url.to_owned(),
            tls,
        });
    }
    if driver_tls {
        return Err(OptionsError::Param {
            param: PARAM_SSL_MODE,
            problem: format!(
                "use either {PARAM_SSL_MODE}/{PARAM_SSL_CA} or the driver's {}, not both",
                DRIVER_TLS_PARAMS.join("/")
            ),
        });
    }
    tls.check().map_err(|problem| OptionsError::Param {
        param: PARAM_SSL_CA,
        problem,
    })?;
    set_query(&mut parsed, &rest);
    Ok(Split {
        driver_url: parsed.into(),
        tls,
    })
}

/// Checks a URL, our parameters included, without reading any file.
pub fn validate(url: &str) -> Result<(), OptionsError> {
    let split = split(url)?;
    Opts::from_url(&split.driver_url).map_err(OptionsError::Url)?;
    Ok(())
}

/// The driver's options for a URL, with TLS as its parameters say. Reads
/// the CA file now, so a missing or wrong one is a configuration error and
/// not a failure of every connection.
pub fn opts(url: &str) -> Result<Opts, OptionsError> {
    let split = split(url)?;
    let opts = Opts::from_url(&split.driver_url).map_err(OptionsError::Url)?;
    let opts = if split.tls.is_set() {
        let ssl = ssl_opts(&split.tls)?;
        Opts::from(OptsBuilder::from_opts(opts).ssl_opts(ssl))
    } else {
        opts
    };
    if opts.ssl_opts().is_some() {
        install_crypto_provider();
    }
    Ok(opts)
}

/// The driver's TLS options for our settings (`None`: plain TCP).
fn ssl_opts(tls: &Tls) -> Result<Option<SslOpts>, OptionsError> {
    let ssl = match tls.effective_mode() {
        None | Some(SslMode::Disabled) => return Ok(None),
        Some(SslMode::Required) => SslOpts::default()
            .with_danger_accept_invalid_certs(true)
            .with_danger_skip_domain_validation(true),
        Some(SslMode::VerifyCa) => SslOpts::default().with_danger_skip_domain_validation(true),
        Some(SslMode::VerifyIdentity) => SslOpts::default(),
    };
    Ok(Some(match &tls.ca {
        None => ssl,
        Some(path) => ssl
            .with_root_certs(vec![read_ca(path)?.into()])
            .with_disable_built_in_roots(true),
    }))
}

/// Reads a PEM file and checks that it holds at least one certificate.
fn read_ca(path: &Path) -> Result<Vec<u8>, OptionsError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;
    let bytes = std::fs::read(path).map_err(|source| OptionsError::CaRead {
        path: path.to_owned(),
        source,
    })?;
    let mut count = 0usize;
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        cert.map_err(|e| OptionsError::CaContent {
            path: path.to_owned(),
            problem: format!("not a valid PEM file: {e}"),
        })?;
        count += 1;
    }
    if count == 0 {
        return Err(OptionsError::CaContent {
            path: path.to_owned(),
            problem: "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
        });
    }
    Ok(bytes)
}

/// rustls panics on the first TLS connection if it cannot tell which
/// crypto provider to use (when both of its providers are compiled in);
/// naming the one the AWS SDK uses too rules that out.
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error means a provider is installed already: that one is used.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// The URL with `tls` as its TLS settings: the URL's own TLS parameters
/// (ours and the driver's) are replaced. Unset `tls`: the URL unchanged.
pub fn with_tls(url: &str, tls: &Tls) -> Result<String, OptionsError> {
    if !tls.is_set() {
        return Ok(url.to_owned());
    }
    let Ok(mut parsed) = url::Url::parse(url) else {
        return Err(OptionsError::Url(
            Opts::from_url(url)
                .err()
                .unwrap_or(mysql_async::UrlError::Invalid),
        ));
    };
    let mut pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| {
            !DRIVER_TLS_PARAMS.contains(&k.as_ref())
                && !["ssl-mode", "ssl_mode", "ssl-ca", "ssl_ca"].contains(&k.as_ref())
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if let Some(mode) = tls.mode {
        pairs.push((PARAM_SSL_MODE.to_owned(), mode.as_str().to_owned()));
    }
    if let Some(ca) = &tls.ca {
        let ca = ca.to_str().ok_or_else(|| OptionsError::CaContent {
            path: ca.clone(),
            problem: "the path is not UTF-8".to_owned(),
        })?;
        pairs.push((PARAM_SSL_CA.to_owned(), ca.to_owned()));
    }
    set_query(&mut parsed, &pairs);
    Ok(parsed.into())
}

// ------------------------------------------------------------------ passwords

/// Whether the URL carries a (non-empty) password.
pub fn has_password(url: &str) -> bool {
    url::Url::parse(url)
        .ok()
        .is_some_and(|u| u.password().is_some_and(|p| !p.is_empty()))
}

/// The URL with `password` in it, percent-encoded. The URL must name a
/// user and carry no password of its own.
pub fn with_password(url: &str, password: &str) -> Result<String, OptionsError> {
    let mut parsed = url::Url::parse(url).map_err(|_| {
        OptionsError::Password("the URL does not parse as mysql://user@host/database")
    })?;
    if parsed.username().is_empty() {
        return Err(OptionsError::Password(
            "the URL names no user (mysql://user@host/database)",
        ));
    }
    if parsed.password().is_some_and(|p| !p.is_empty()) {
        return Err(OptionsError::Password(
            "the URL has a password already; give it in one place",
        ));
    }
    // Encoded here: the URL crate would leave `%` as it is, and the driver
    // would then decode `%41` in a password as `A`.
    parsed
        .set_password(Some(&percent_encode(password)))
        .map_err(|()| OptionsError::Password("the URL cannot carry a password"))?;
    Ok(parsed.into())
}

/// Every byte but the unreserved ones (RFC 3986) as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Reads a password file: its content without the line ending(s) at the end.
pub fn read_password_file(path: &Path) -> Result<String, OptionsError> {
    let text = std::fs::read_to_string(path).map_err(|source| OptionsError::PasswordRead {
        path: path.to_owned(),
        source,
    })?;
    let password = text.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(OptionsError::Password("the password file is empty"));
    }
    if password.contains(['\n', '\r']) {
        return Err(OptionsError::Password(
            "the password file has more than one line",
        ));
    }
    Ok(password.to_owned())
}

/// Command-line arguments that carry a URL with a password: the option's
/// name (`--source`), or the argument's position when it has none.
pub fn arguments_with_password(args: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_owned(), value),
            _ => (
                match i.checked_sub(1).and_then(|j| args.get(j)) {
                    Some(prev) if prev.starts_with("--") && !prev.contains('=') => prev.clone(),
                    _ => format!("argument {}", i + 1),
                },
                arg.as_str(),
            ),
        };
        if value.contains("://") && has_password(value) {
            found.push(name);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_modes_parse_as_the_mysql_client_writes_them() {
        for (text, mode) in [
            ("disabled", SslMode::Disabled),
            ("REQUIRED", SslMode::Required),
            ("verify-ca", SslMode::VerifyCa),
            ("VERIFY_IDENTITY", SslMode::VerifyIdentity),
            (" verify_identity ", SslMode::VerifyIdentity),
        ] {
            assert_eq!(text.parse::<SslMode>(), Ok(mode), "{text}");
            assert_eq!(mode.as_str().parse::<SslMode>(), Ok(mode));
        }
        let e = "preferred".parse::<SslMode>().unwrap_err();
        assert!(e.contains("verify-identity"), "{e}");
    }

    #[test]
    fn tls_parameters_are_ours_or_the_drivers() {
        // The TLS settings wanted (mode, CA), or the error's text.
        type Want = Result<(Option<SslMode>, Option<&'static str>), &'static str>;
        let cases: [(&str, Want); 9] = [
            ("mysql://u:p@h:3306/db", Ok((None, None))),
            (
                "mysql://u:p@h/db?ssl-mode=verify-identity&ssl-ca=%2Fopt%2Frds.pem",
                Ok((Some(SslMode::VerifyIdentity), Some("/opt/rds.pem"))),
            ),
            (
                "mysql://u:p@h/db?ssl_mode=REQUIRED&stmt_cache_size=10",
                Ok((Some(SslMode::Required), None)),
            ),
            (
                "mysql://u:p@h/db?ssl-ca=/ca.pem",
                Ok((None, Some("/ca.pem"))),
            ),
            (
                "mysql://u:p@h/db?ssl-mode=preferred",
                Err("URL parameter ssl-mode: \"preferred\" is not one of"),
            ),
            (
                "mysql://u:p@h/db?ssl-mode=required&ssl-ca=/ca.pem",
                Err("URL parameter ssl-ca: ssl mode required does not check"),
            ),
            (
                "mysql://u:p@h/db?ssl-mode=disabled&ssl-ca=/ca.pem",
                Err("URL parameter ssl-ca: a CA file is given but the ssl mode is disabled"),
            ),
            (
                "mysql://u:p@h/db?ssl-mode=verify-ca&require_ssl=true",
                Err("use either ssl-mode/ssl-ca or the driver's"),
            ),
            ("mysql://u:p@h/db?ssl-ca=", Err("ssl-ca: the path is empty")),
        ];
        for (url, want) in cases {
            match (split(url), want) {
                (Ok(s), Ok((mode, ca))) => {
                    assert_eq!(s.tls.mode, mode, "{url}");
                    assert_eq!(s.tls.ca.as_deref(), ca.map(Path::new), "{url}");
                    // What is left is the driver's.
                    Opts::from_url(&s.driver_url).unwrap();
                    assert!(!s.driver_url.contains("ssl"), "{}", s.driver_url);
                }
                (Err(e), Err(text)) => {
                    assert!(e.to_string().contains(text), "{url}: {e}");
                    assert!(!e.to_string().contains(":p@"), "{e}");
                }
                (got, want) => panic!("{url}: got {:?}, want {want:?}", got.map(|s| s.tls)),
            }
        }
        // The driver's own parameters pass through.
        let s = split("mysql://u:p@h/db?require_ssl=true&verify_ca=false").unwrap();
        assert!(!s.tls.is_set());
        let opts = Opts::from_url(&s.driver_url).unwrap();
        assert!(opts.ssl_opts().unwrap().accept_invalid_certs());
    }

    #[test]
    fn ssl_modes_become_driver_options() {
        let o = opts("mysql://u:p@h/db?ssl-mode=required").unwrap();
        let ssl = o.ssl_opts().unwrap();
        assert!(ssl.accept_invalid_certs() && ssl.skip_domain_validation());
        let o = opts("mysql://u:p@h/db?ssl-mode=verify-ca").unwrap();
        let ssl = o.ssl_opts().unwrap();
        assert!(!ssl.accept_invalid_certs() && ssl.skip_domain_validation());
        let o = opts("mysql://u:p@h/db?ssl-mode=verify-identity").unwrap();
        let ssl = o.ssl_opts().unwrap();
        assert!(!ssl.accept_invalid_certs() && !ssl.skip_domain_validation());
        assert!(!ssl.disable_built_in_roots());
        assert!(opts("mysql://u:p@h/db?ssl-mode=disabled")
            .unwrap()
            .ssl_opts()
            .is_none());
        // Everything else of the URL is kept.
        let o = opts("mysql://u:p@h:3307/db?ssl-mode=required&stmt_cache_size=7").unwrap();
        assert_eq!(
            (o.user(), o.pass(), o.ip_or_hostname(), o.tcp_port()),
            (Some("u"), Some("p"), "h", 3307)
        );
        assert_eq!((o.db_name(), o.stmt_cache_size()), (Some("db"), 7));
    }

    #[test]
    fn a_ca_file_is_read_and_checked_when_the_options_are_built() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let url = |p: &Path| format!("mysql://u:p@h/db?ssl-ca={}", p.display());
        let e = opts(&url(&missing)).unwrap_err().to_string();
        assert!(
            e.starts_with("CA file ") && e.contains("missing.pem"),
            "{e}"
        );
        // Validation alone reads no file.
        validate(&url(&missing)).unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = opts(&url(&empty)).unwrap_err().to_string();
        assert!(e.contains("holds no PEM certificate"), "{e}");
        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = opts(&url(&broken)).unwrap_err().to_string();
        assert!(e.contains("not a valid PEM file"), "{e}");
    }

    #[test]
    fn with_tls_replaces_the_urls_tls_settings() {
        let tls = Tls {
            mode: Some(SslMode::VerifyCa),
            ca: Some(PathBuf::from("/opt/rds global.pem")),
        };
        let url = with_tls(
            "mysql://u:p%40ss@h:3306/db?require_ssl=true&stmt_cache_size=7&ssl-mode=required",
            &tls,
        )
        .unwrap();
        let s = split(&url).unwrap();
        assert_eq!(s.tls, tls);
        let o = Opts::from_url(&s.driver_url).unwrap();
        assert_eq!((o.pass(), o.stmt_cache_size()), (Some("p@ss"), 7));
        assert!(o.ssl_opts().is_none(), "the driver's require_ssl is gone");
        // Unset: unchanged, byte for byte.
        let plain = "mysql://u:p@h/db?require_ssl=true";
        assert_eq!(with_tls(plain, &Tls::default()).unwrap(), plain);
        // Only a CA: verify-identity.
        let ca_only = Tls {
            mode: None,
            ca: Some(PathBuf::from("/ca.pem")),
        };
        let s = split(&with_tls("mysql://u@h/db", &ca_only).unwrap()).unwrap();
        assert_eq!(s.tls.effective_mode(), Some(SslMode::VerifyIdentity));
    }

    #[test]
    fn passwords_are_substituted_percent_encoded() {
        for (url, password, want) in [
            ("mysql://u@h/db", "secret", "mysql://u:secret@h/db"),
            (
                "mysql://dms@db.example:3307/src?stmt_cache_size=5",
                "p@ss:w/rd %41#?&=é",
                "mysql://dms:p%40ss%3Aw%2Frd%20%2541%23%3F%26%3D%C3%A9@db.example:3307/src?stmt_cache_size=5",
            ),
            ("mysql://u:@h/db", "x", "mysql://u:x@h/db"),
        ] {
            let got = with_password(url, password).unwrap();
            assert_eq!(got, want);
            // The driver reads back exactly the password.
            assert_eq!(Opts::from_url(&got).unwrap().pass(), Some(password));
        }
        for (url, problem) in [
            ("mysql://h/db", "names no user"),
            ("mysql://u:old@h/db", "has a password already"),
            ("not a url", "does not parse"),
        ] {
            let e = with_password(url, "hunter2").unwrap_err().to_string();
            assert!(e.contains(problem), "{url}: {e}");
            assert!(!e.contains("hunter2") && !e.contains("old"), "{e}");
        }
    }

    #[test]
    fn password_files_lose_their_line_ending_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        assert_eq!(
            read_password_file(&file("a", "s3cret \n")).unwrap(),
            "s3cret "
        );
        assert_eq!(
            read_password_file(&file("b", "s3cret\r\n")).unwrap(),
            "s3cret"
        );
        assert_eq!(read_password_file(&file("c", "s3cret")).unwrap(), "s3cret");
        let e = read_password_file(&file("d", "\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty"), "{e}");
        let e = read_password_file(&file("e", "one\ntwo\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("more than one line") && !e.contains("one\n"),
            "{e}"
        );
        let e = read_password_file(&dir.path().join("none"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("password file ") && e.contains("none"), "{e}");
    }

    #[test]
    fn urls_with_passwords_are_found_and_redacted() {
        assert!(has_password("mysql://u:p@h/db"));
        assert!(!has_password("mysql://u@h/db"));
        assert!(!has_password("mysql://u:@h/db"));
        assert!(!has_password("fixtures/events"));
        assert_eq!(redact("mysql://u:p%40ss@h/db"), "mysql://u:***@h/db");
        assert_eq!(redact("mysql://u@h/db"), "mysql://u@h/db");
        let args: Vec<String> = [
            "replay",
            "fixtures/events",
            "--source",
            "mysql://u:secret@h/src",
            "--target=mysql://u:secret@h/dst",
            "--mapping",
            "m.toml",
            "mysql://u:secret@h/x",
            "--from-queue=mysql://u@h/none",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            arguments_with_password(&args),
            ["--source", "--target", "argument 8"]
        );
    }
}
