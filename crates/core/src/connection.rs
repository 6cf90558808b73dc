//! What every adapter's connections share: TLS settings, as the MySQL
//! client names them (`--ssl-mode`, `--ssl-ca`; each adapter turns them into
//! its driver's options), and URLs with their password kept out of messages.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// How a connection uses TLS (the MySQL client's `--ssl-mode` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disabled,
    /// Encrypted, the server's certificate is not checked (no protection
    /// against someone in the middle).
    Required,
    /// Encrypted, the certificate must chain to a trusted CA; the host name
    /// is not compared with it. See the README: the driver (mysql_async
    /// 0.37.1, rustls) still compares the name.
    VerifyCa,
    /// Encrypted, the certificate must chain to a trusted CA and name the
    /// host of the URL.
    VerifyIdentity,
}

impl SslMode {
    /// The spelling in URLs and variables.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disabled => "disabled",
            SslMode::Required => "required",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyIdentity => "verify-identity",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = String;

    /// Case-insensitive; `_` for `-` (`VERIFY_IDENTITY` as the MySQL client writes it).
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "disabled" => Ok(SslMode::Disabled),
            "required" => Ok(SslMode::Required),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-identity" => Ok(SslMode::VerifyIdentity),
            _ => Err(format!(
                "{text:?} is not one of disabled, required, verify-ca, verify-identity"
            )),
        }
    }
}

/// TLS settings of one connection: a mode and a CA file, each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// The mode; with only a CA file given, `verify-identity`.
    pub mode: Option<SslMode>,
    /// PEM file of the CA certificates to trust (instead of the built-in roots).
    pub ca: Option<PathBuf>,
}

impl Tls {
    /// Whether anything is set.
    pub fn is_set(&self) -> bool {
        self.mode.is_some() || self.ca.is_some()
    }

    /// The mode in effect: as given, or `verify-identity` for a CA alone.
    pub fn effective_mode(&self) -> Option<SslMode> {
        self.mode
            .or_else(|| self.ca.as_ref().map(|_| SslMode::VerifyIdentity))
    }

    /// A CA file only makes sense with a mode that verifies.
    pub fn check(&self) -> Result<(), String> {
        match (self.mode, &self.ca) {
            (Some(SslMode::Disabled), Some(_)) => {
                Err("a CA file is given but the ssl mode is disabled".to_owned())
            }
            (Some(SslMode::Required), Some(_)) => Err(
                "ssl mode required does not check the server's certificate: with a CA file use verify-ca or verify-identity"
                    .to_owned(),
            ),
            _ => Ok(()),
        }
    }
}

/// A URL fit for a message: its password replaced by `***`.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.into()
        }
        Err(_) => "<a URL that does not parse>".to_owned(),
    }
}

/// Replaces a URL's query with `pairs` (no `?` at all when there are none).
/// Adapters use it to put TLS settings into their URLs.
pub fn set_query(url: &mut url::Url, pairs: &[(String, String)]) {
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
}
