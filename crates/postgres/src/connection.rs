//! Options of every PostgreSQL connection: the `postgres://` URL, TLS, and
//! passwords kept out of messages.
//!
//! TLS settings travel in the URL, in libpq's names or in ours (the MySQL
//! client's, as the function's environment variables name them):
//!
//! | libpq (`sslmode`) | ours (`ssl-mode`) | what |
//! | --- | --- | --- |
//! | `disable` | `disabled` | plain TCP (also the default) |
//! | `require` | `required` | encrypted, the certificate is not checked |
//! | `verify-ca` | `verify-ca` | the certificate must chain to a trusted CA |
//! | `verify-full` | `verify-identity` | ... and name the host of the URL |
//!
//! `sslrootcert` (or `ssl-ca`) is a PEM file of the CA certificates to
//! trust instead of the built-in roots; alone, it means `verify-full`.
//! `allow` and `prefer` are refused: they fall back to plain TCP, or do not
//! check the certificate, without saying so. [`with_tls`] puts settings from
//! elsewhere (the function's environment variables) into a URL, replacing
//! the URL's own. No function here puts a password into an error.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use dms_cdc_core::connection::set_query;
pub use dms_cdc_core::connection::{redact, SslMode, Tls};

/// The URL parameters that name the TLS mode (libpq's first).
const MODE_PARAMS: [&str; 3] = ["sslmode", "ssl-mode", "ssl_mode"];
/// The URL parameters that name the CA file (libpq's first).
const CA_PARAMS: [&str; 3] = ["sslrootcert", "ssl-ca", "ssl_ca"];

/// A URL or TLS setting that cannot be used. The messages never contain
/// the URL or the password.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// Not a `postgres://` URL the driver accepts.
    #[error("not a valid postgres:// URL: {0}")]
    Url(String),
    /// One of the TLS parameters is wrong.
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
}

/// A URL split into the part for the driver and the TLS settings.
#[derive(Debug)]
struct Split {
    driver_url: String,
    tls: Tls,
}

fn parse_url(url: &str) -> Result<url::Url, OptionsError> {
    let parsed = url::Url::parse(url).map_err(|e| {
        OptionsError::Url(format!("{e} (expected postgres://user@host:5432/database)"))
    })?;
    if !["postgres", "postgresql"].contains(&parsed.scheme()) {
        return Err(OptionsError::Url(format!(
            "the scheme is {:?}, not postgres",
            parsed.scheme()
        )));
    }
    Ok(parsed)
}

/// The TLS mode of a URL parameter value, in libpq's or our spelling.
fn parse_mode(value: &str) -> Result<SslMode, OptionsError> {
    let problem = |p: String| OptionsError::Param {
        param: "sslmode",
        problem: p,
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "disable" => Ok(SslMode::Disabled),
        "require" => Ok(SslMode::Required),
        "verify-full" => Ok(SslMode::VerifyIdentity),
        "allow" | "prefer" => Err(problem(format!(
            "{value:?} may fall back to plain TCP or skip the certificate check without saying so: use disable, require, verify-ca or verify-full"
        ))),
        other => other.parse::<SslMode>().map_err(problem),
    }
}

/// Takes the TLS parameters out of the URL (the driver knows only some of
/// them, and not their verifying modes).
fn split(url: &str) -> Result<Split, OptionsError> {
    let mut parsed = parse_url(url)?;
    let mut tls = Tls::default();
    let mut rest = Vec::new();
    for (key, value) in parsed.query_pairs() {
        if MODE_PARAMS.contains(&key.as_ref()) {
            tls.mode = Some(parse_mode(&value)?);
        } else if CA_PARAMS.contains(&key.as_ref()) {
            if value.trim().is_empty() {
                return Err(OptionsError::Param {
                    param: "sslrootcert",
                    problem: "the path is empty".to_owned(),
                });
            }
            tls.ca = Some(PathBuf::from(value.as_ref()));
        } else {
            rest.push((key.into_owned(), value.into_owned()));
        }
    }
    tls.check().map_err(|problem| OptionsError::Param {
        param: "sslrootcert",
        problem,
    })?;
    set_query(&mut parsed, &rest);
    Ok(Split {
        driver_url: parsed.into(),
        tls,
    })
}

fn driver_config(driver_url: &str) -> Result<tokio_postgres::Config, OptionsError> {
    tokio_postgres::Config::from_str(driver_url).map_err(|e| OptionsError::Url(e.to_string()))
}

/// Checks a URL, TLS parameters included, without reading any file.
pub fn validate(url: &str) -> Result<(), OptionsError> {
    let split = split(url)?;
    driver_config(&split.driver_url)?;
    Ok(())
}

/// The URL with `tls` as its TLS settings (the URL's own are replaced).
/// Unset `tls`: the URL unchanged.
pub fn with_tls(url: &str, tls: &Tls) -> Result<String, OptionsError> {
    if !tls.is_set() {
        return Ok(url.to_owned());
    }
    let mut parsed = parse_url(url)?;
    let mut pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| !MODE_PARAMS.contains(&k.as_ref()) && !CA_PARAMS.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if let Some(mode) = tls.mode {
        pairs.push(("ssl-mode".to_owned(), mode.as_str().to_owned()));
    }
    if let Some(ca) = &tls.ca {
        let ca = ca.to_str().ok_or_else(|| OptionsError::CaContent {
            path: ca.clone(),
            problem: "the path is not UTF-8".to_owned(),
        })?;
        pairs.push(("ssl-ca".to_owned(), ca.to_owned()));
    }
    set_query(&mut parsed, &pairs);
    Ok(parsed.into())
}

/// What a pool needs to connect: the driver's configuration and, for TLS,
/// the rustls client configuration.
pub struct Options {
    /// The driver's configuration (TLS mode set from ours).
    pub config: tokio_postgres::Config,
    /// `None`: plain TCP.
    pub tls: Option<rustls::ClientConfig>,
}

/// The options of a URL. Reads the CA file now, so a missing or wrong one
/// is a configuration error and not a failure of every connection.
///
/// Unless the URL says otherwise, connections give up after 10 s, name
/// themselves `dms-cdc`, and use UTC as their time zone (text read into a
/// `timestamptz` column is UTC, as a `DATETIME` in MySQL holds the wall
/// clock of the source).
pub fn options(url: &str) -> Result<Options, OptionsError> {
    let split = split(url)?;
    let mut config = driver_config(&split.driver_url)?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name("dms-cdc");
    }
    if config.get_options().is_none() {
        config.options("-c TimeZone=UTC");
    }
    let tls = client_config(&split.tls)?;
    config.ssl_mode(if tls.is_some() {
        tokio_postgres::config::SslMode::Require
    } else {
        tokio_postgres::config::SslMode::Disable
    });
    Ok(Options { config, tls })
}

/// The rustls configuration for our settings (`None`: plain TCP).
fn client_config(tls: &Tls) -> Result<Option<rustls::ClientConfig>, OptionsError> {
    let mode = match tls.effective_mode() {
        None | Some(SslMode::Disabled) => return Ok(None),
        Some(mode) => mode,
    };
    install_crypto_provider();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| OptionsError::Param {
            param: "sslmode",
            problem: format!("TLS cannot be set up: {e}"),
        })?;
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca {
        Some(path) => {
            for cert in read_ca(path)? {
                roots.add(cert).map_err(|e| OptionsError::CaContent {
                    path: path.clone(),
                    problem: format!("not a usable CA certificate: {e}"),
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = match mode {
        SslMode::VerifyIdentity => builder.with_root_certificates(roots),
        SslMode::VerifyCa | SslMode::Required | SslMode::Disabled => {
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| OptionsError::Param {
                param: "sslrootcert",
                problem: format!("no CA certificate to verify with: {e}"),
            })?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Verifier {
                    inner,
                    check_chain: mode == SslMode::VerifyCa,
                }))
        }
    };
    Ok(Some(config.with_no_client_auth()))
}

/// `verify-ca`: the chain is checked, the name is not; `require`: neither
/// (the handshake's signatures still are).
#[derive(Debug)]
struct Verifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    check_chain: bool,
}

impl rustls::client::danger::ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError as C;
        if !self.check_chain {
            return Ok(rustls::client::danger::ServerCertVerified::assertion());
        }
        // webpki checks the chain before the name: a name error means the
        // chain is good.
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                C::NotValidForName | C::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Reads a PEM file of certificates; at least one.
fn read_ca(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, OptionsError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;
    let bytes = std::fs::read(path).map_err(|source| OptionsError::CaRead {
        path: path.to_owned(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| OptionsError::CaContent {
            path: path.to_owned(),
            problem: format!("not a valid PEM file: {e}"),
        })?;
    if certs.is_empty() {
        return Err(OptionsError::CaContent {
            path: path.to_owned(),
            problem: "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
        });
    }
    Ok(certs)
}

/// Names the crypto provider the AWS SDK uses too, so rustls never has to
/// guess one (it panics when two are compiled in and none is named).
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error means a provider is installed already: that one is used.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// A pool of at most `size` connections for `url` (which connect lazily:
/// a database that is down fails batches, not the construction).
pub fn pool(url: &str, size: usize) -> Result<deadpool_postgres::Pool, OptionsError> {
    use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
    let Options { config, tls } = options(url)?;
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match tls {
        None => Manager::from_config(config, tokio_postgres::NoTls, manager_config),
        Some(tls) => Manager::from_config(
            config,
            tokio_postgres_rustls::MakeRustlsConnect::new(tls),
            manager_config,
        ),
    };
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| OptionsError::Url(format!("the pool cannot be built: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_in_libpq_or_our_spelling() {
        type Want = Result<(Option<SslMode>, Option<&'static str>), &'static str>;
        let cases: [(&str, Want); 9] = [
            ("postgres://u:p@h:5432/db", Ok((None, None))),
            (
                "postgres://u:p@h/db?sslmode=verify-full&sslrootcert=%2Fopt%2Frds.pem",
                Ok((Some(SslMode::VerifyIdentity), Some("/opt/rds.pem"))),
            ),
            (
                "postgresql://u:p@h/db?sslmode=require&application_name=x",
                Ok((Some(SslMode::Required), None)),
            ),
            (
                "postgres://u:p@h/db?ssl-mode=verify_ca&ssl-ca=/ca.pem",
                Ok((Some(SslMode::VerifyCa), Some("/ca.pem"))),
            ),
            (
                "postgres://u:p@h/db?sslmode=disable",
                Ok((Some(SslMode::Disabled), None)),
            ),
            (
                "postgres://u:p@h/db?sslmode=prefer",
                Err("may fall back to plain TCP"),
            ),
            (
                "postgres://u:p@h/db?sslmode=require&sslrootcert=/ca.pem",
                Err("ssl mode required does not check"),
            ),
            ("postgres://u:p@h/db?sslrootcert=", Err("the path is empty")),
            ("mysql://u:p@h/db", Err("not postgres")),
        ];
        for (url, want) in cases {
            match (split(url), want) {
                (Ok(s), Ok((mode, ca))) => {
                    assert_eq!(s.tls.mode, mode, "{url}");
                    assert_eq!(s.tls.ca.as_deref(), ca.map(Path::new), "{url}");
                    assert!(!s.driver_url.contains("ssl"), "{}", s.driver_url);
                    driver_config(&s.driver_url).unwrap();
                }
                (Err(e), Err(text)) => {
                    assert!(e.to_string().contains(text), "{url}: {e}");
                    assert!(!e.to_string().contains(":p@"), "{e}");
                }
                (got, want) => panic!("{url}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn options_keep_the_url_and_set_the_defaults() {
        let o = options("postgres://u:p%40ss@h:5433/db?application_name=mine").unwrap();
        assert!(o.tls.is_none());
        let c = &o.config;
        assert_eq!(c.get_user(), Some("u"));
        assert_eq!(c.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(c.get_dbname(), Some("db"));
        assert_eq!(c.get_ports(), &[5433]);
        assert_eq!(c.get_application_name(), Some("mine"));
        assert_eq!(c.get_options(), Some("-c TimeZone=UTC"));
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(10)));
        let o = options("postgres://u@h/db?sslmode=require").unwrap();
        assert!(o.tls.is_some());
        assert_eq!(
            o.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        let o = options("postgres://u@h/db?sslmode=verify-full").unwrap();
        assert!(o.tls.is_some(), "built-in roots");
    }

    #[test]
    fn a_ca_file_is_read_when_the_options_are_built() {
        let dir = tempfile::tempdir().unwrap();
        let url = |p: &Path| format!("postgres://u@h/db?sslrootcert={}", p.display());
        let missing = dir.path().join("missing.pem");
        validate(&url(&missing)).unwrap();
        let e = options(&url(&missing)).err().unwrap().to_string();
        assert!(
            e.starts_with("CA file ") && e.contains("missing.pem"),
            "{e}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = options(&url(&empty)).err().unwrap().to_string();
        assert!(e.contains("holds no PEM certificate"), "{e}");
    }

    #[test]
    fn with_tls_replaces_the_urls_tls_settings() {
        let tls = Tls {
            mode: Some(SslMode::VerifyCa),
            ca: Some(PathBuf::from("/opt/rds global.pem")),
        };
        let url = with_tls(
            "postgres://u:p%40ss@h:5432/db?sslmode=require&application_name=x",
            &tls,
        )
        .unwrap();
        let s = split(&url).unwrap();
        assert_eq!(s.tls, tls);
        let c = driver_config(&s.driver_url).unwrap();
        assert_eq!(
            (c.get_password(), c.get_application_name()),
            (Some(&b"p@ss"[..]), Some("x"))
        );
        let plain = "postgres://u:p@h/db?sslmode=require";
        assert_eq!(with_tls(plain, &Tls::default()).unwrap(), plain);
    }
}
