//! Reaching OpenSearch: the connection settings from a URL, and one HTTP
//! client (hyper over rustls) that signs requests with basic auth or AWS
//! SigV4 and puts a timeout on every request.
//!
//! ```text
//! https://user:password@search.example.com:443/?prefix=app-&replicas=1
//! http://127.0.0.1:9200
//! opensearch://vpc-x.eu-west-1.es.amazonaws.com?sigv4-region=eu-west-1   (https)
//! ```
//!
//! URL parameters (all optional; an unknown one is an error):
//!
//! | parameter | default | meaning |
//! | --- | --- | --- |
//! | `prefix`, `suffix` | empty | around every index and alias name (`<prefix><table><suffix>`) |
//! | `replicas` | 1 | `number_of_replicas` of the indices `prepare` creates |
//! | `shards` | 1 | `number_of_shards` of the indices `prepare` creates |
//! | `bulk-bytes` | 5242880 | largest `_bulk` body; a larger batch is split |
//! | `bulk-actions` | 1000 | most actions per `_bulk` request |
//! | `gc-deletes` | `7d` | `index.gc_deletes` of the target indices (see the crate docs) |
//! | `index-version` | 1 | the concrete index behind each alias: `<alias>-v<N>` |
//! | `index` | `alias` | where reads and writes go: `alias`, or `concrete` (`<alias>-v<N>` itself: a blue/green rebuild of the next version before `dms-cdc index swap`) |
//! | `timeout` | `30s` | per request (`10s`, `500ms`, `2m`) |
//! | `sigv4-region` | none | sign with AWS SigV4 (service `es`) in this region, credentials from the AWS default chain |
//! | `sigv4-service` | `es` | `aoss` for OpenSearch Serverless |
//! | `ssl-ca` (or `sslrootcert`) | none | a PEM file of the CA certificates to trust for HTTPS, instead of the built-in public roots (a self-managed cluster's own CA) |

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;

use crate::fault::{without_values, TargetError};

/// A URL or its parameters are wrong. The message never has the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("opensearch URL: {0}")]
pub struct UrlError(pub String);

/// Connection and index settings (see the module docs).
#[derive(Clone)]
pub struct Config {
    /// `http://host:port` or `https://host:port`, without credentials or path.
    pub endpoint: String,
    /// Basic-auth user and password.
    pub basic: Option<(String, String)>,
    /// Before every index and alias name.
    pub prefix: String,
    /// After every index and alias name.
    pub suffix: String,
    /// `number_of_replicas` of the indices `prepare` creates.
    pub replicas: u32,
    /// `number_of_shards` of the indices `prepare` creates.
    pub shards: u32,
    /// Largest `_bulk` body in bytes.
    pub bulk_bytes: usize,
    /// Most actions per `_bulk`.
    pub bulk_actions: usize,
    /// `index.gc_deletes` of target indices (OpenSearch time units).
    pub gc_deletes: String,
    /// The concrete index generation behind the aliases.
    pub index_version: u32,
    /// Reads and writes go to the concrete `<alias>-v<N>` index itself,
    /// not through the alias (`index=concrete`).
    pub concrete: bool,
    /// Per request.
    pub timeout: Duration,
    /// SigV4 region, when requests are signed.
    pub sigv4_region: Option<String>,
    /// SigV4 service name (`es`, or `aoss`).
    pub sigv4_service: String,
    /// A PEM file of the CAs HTTPS trusts instead of the public roots.
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("endpoint", &self.endpoint)
            .field("user", &self.basic.as_ref().map(|b| &b.0))
            .field("prefix", &self.prefix)
            .field("suffix", &self.suffix)
            .field("replicas", &self.replicas)
            .field("bulk_bytes", &self.bulk_bytes)
            .field("sigv4_region", &self.sigv4_region)
            .finish_non_exhaustive()
    }
}

/// Default largest `_bulk` body: 5 MiB.
pub const DEFAULT_BULK_BYTES: usize = 5 * 1024 * 1024;
/// Default `index.gc_deletes`: 7 days (the engine keeps tombstones 8).
pub const DEFAULT_GC_DELETES: &str = "7d";

fn duration(text: &str) -> Option<Duration> {
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = digits.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n * 60)),
        _ => None,
    }
}

impl Config {
    /// Settings from a URL (see the module docs).
    pub fn from_url(text: &str) -> Result<Config, UrlError> {
        let url = url::Url::parse(text).map_err(|e| UrlError(format!("does not parse: {e}")))?;
        let scheme = match url.scheme() {
            "http" => "http",
            "https" | "opensearch" => "https",
            other => {
                return Err(UrlError(format!(
                    "scheme {other:?}: expected http, https or opensearch"
                )))
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| UrlError("no host".into()))?;
        let port = url
            .port()
            .unwrap_or(if scheme == "http" { 80 } else { 443 });
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let basic = (!url.username().is_empty()).then(|| {
            (
                decode(url.username()),
                url.password().map(decode).unwrap_or_default(),
            )
        });
        let mut config = Config {
            endpoint: format!("{scheme}://{host}:{port}"),
            basic,
            prefix: String::new(),
            suffix: String::new(),
            replicas: 1,
            shards: 1,
            bulk_bytes: DEFAULT_BULK_BYTES,
            bulk_actions: 1000,
            gc_deletes: DEFAULT_GC_DELETES.into(),
            index_version: 1,
            concrete: false,
            timeout: Duration::from_secs(30),
            sigv4_region: None,
            sigv4_service: "es".into(),
            ca_file: None,
        };
        for (key, value) in url.query_pairs() {
            let bad = |what: &str| UrlError(format!("parameter {key}={value:?}: {what}"));
            let number = || value.parse::<u64>().map_err(|_| bad("not a number"));
            match key.as_ref() {
                "prefix" => config.prefix = value.to_lowercase(),
                "suffix" => config.suffix = value.to_lowercase(),
                "replicas" => config.replicas = number()?.min(u32::MAX.into()) as u32,
                "shards" => config.shards = number()?.clamp(1, 1024) as u32,
                "bulk-bytes" => config.bulk_bytes = number()?.max(1) as usize,
                "bulk-actions" => config.bulk_actions = number()?.max(1) as usize,
                "index-version" => config.index_version = number()?.clamp(1, 9999) as u32,
                "index" => {
                    config.concrete = match value.as_ref() {
                        "alias" => false,
                        "concrete" => true,
                        _ => return Err(bad("expected alias or concrete")),
                    }
                }
                "gc-deletes" => {
                    let unit = value.trim_start_matches(|c: char| c.is_ascii_digit());
                    let digits = &value[..value.len() - unit.len()];
                    if digits.is_empty() || !["d", "h", "m", "s", "ms"].contains(&unit) {
                        return Err(bad("expected a time such as 7d, 12h or 90m"));
                    }
                    config.gc_deletes = value.into_owned();
                }
                "timeout" => {
                    config.timeout = duration(&value).ok_or_else(|| bad("expected e.g. 30s"))?
                }
                "sigv4-region" => config.sigv4_region = Some(value.into_owned()),
                "sigv4-service" => config.sigv4_service = value.into_owned(),
                "ssl-ca" | "sslrootcert" => {
                    config.ca_file = Some(std::path::PathBuf::from(value.into_owned()))
                }
                _ => return Err(bad("unknown parameter")),
            }
        }
        if config.basic.is_some() && config.sigv4_region.is_some() {
            return Err(UrlError(
                "a user and sigv4-region: choose basic auth or SigV4".into(),
            ));
        }
        Ok(config)
    }

    /// A config for `endpoint` with the defaults (a test's local node).
    pub fn local(endpoint: &str) -> Config {
        Config::from_url(endpoint).unwrap_or_else(|_| Config {
            endpoint: endpoint.to_owned(),
            ..Config::from_url("http://127.0.0.1:9200").expect("a valid URL")
        })
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// An answer: status and body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The error of a failed request, classified by its status and type.
    pub fn error(&self, what: &str, single: bool, bookkeeping: bool) -> TargetError {
        let json = self.json();
        let (error_type, reason) = error_fields(&json["error"]);
        TargetError::Status {
            what: what.to_owned(),
            status: self.status,
            error_type,
            reason,
            single,
            bookkeeping,
        }
    }
}

/// `type` and `reason` (without value previews) of an OpenSearch error
/// object (or of a plain string error).
pub fn error_fields(error: &serde_json::Value) -> (String, String) {
    match error {
        serde_json::Value::String(s) => ("error".into(), without_values(s)),
        e => (
            e["type"].as_str().unwrap_or("unknown").to_owned(),
            without_values(e["reason"].as_str().unwrap_or("")),
        ),
    }
}

/// The HTTP client of one target (cheap to clone: pooled connections).
#[derive(Clone)]
pub struct Client {
    http: HyperClient<Connector, Full<Bytes>>,
    config: std::sync::Arc<Config>,
    credentials: std::sync::Arc<
        tokio::sync::OnceCell<aws_credential_types::provider::SharedCredentialsProvider>,
    >,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish()
    }
}

/// The CAs of a PEM file (at least one certificate).
fn ca_roots(path: &std::path::Path) -> Result<rustls::RootCertStore, TargetError> {
    use rustls::pki_types::pem::PemObject as _;
    let problem =
        |what: String| TargetError::Configuration(format!("ssl-ca {}: {what}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| problem(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| problem(format!("not a valid PEM file: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| problem(format!("not a CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(problem(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(roots)
}

impl Client {
    /// A client for `config` (no connection is made yet). HTTPS trusts the
    /// built-in public roots (Amazon OpenSearch Service chains to them), or
    /// only the CAs of `ssl-ca`.
    pub fn new(config: Config) -> Result<Client, TargetError> {
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let roots = match &config.ca_file {
            None => rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
            Some(path) => ca_roots(path)?,
        };
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TargetError::Configuration(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let http = HyperClient::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Client {
            http,
            config: std::sync::Arc::new(config),
            credentials: Default::default(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Sends one request (`path` starts with `/`, may hold a query) and
    /// reads the whole answer, within the configured timeout. Only a
    /// missing answer is an error here; statuses are the caller's.
    pub async fn send(
        &self,
        method: http::Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        what: &str,
    ) -> Result<Answer, TargetError> {
        let timeout = self.config.timeout;
        match tokio::time::timeout(
            timeout,
            self.send_now(method, path, content_type, body, what),
        )
        .await
        {
            Ok(answer) => answer,
            Err(_) => Err(TargetError::Connection {
                what: what.to_owned(),
                message: format!("no answer within {} ms", timeout.as_millis()),
            }),
        }
    }

    async fn send_now(
        &self,
        method: http::Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        what: &str,
    ) -> Result<Answer, TargetError> {
        let uri = format!("{}{path}", self.config.endpoint);
        let mut request = http::Request::builder()
            .method(method)
            .uri(&uri)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| TargetError::Configuration(format!("request {what}: {e}")))?;
        if let Some((user, password)) = &self.config.basic {
            use base64::Engine as _;
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            let value = http::HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| {
                TargetError::Configuration("user or password is not header text".into())
            })?;
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, value);
        }
        if let Some(region) = &self.config.sigv4_region {
            self.sign(&mut request, &body, region).await?;
        }
        let (parts, _) = request.into_parts();
        let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let connection = |e: &dyn std::fmt::Display| TargetError::Connection {
            what: what.to_owned(),
            message: e.to_string(),
        };
        let response = self.http.request(request).await.map_err(|e| {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message.push_str(": ");
                message.push_str(&s.to_string());
                source = s.source();
            }
            connection(&message)
        })?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| connection(&e))?
            .to_bytes();
        Ok(Answer { status, body })
    }

    /// Signs `request` with SigV4 (service `es` by default), with
    /// credentials from the AWS SDK's default chain (read once, refreshed
    /// by the provider).
    async fn sign(
        &self,
        request: &mut http::Request<Full<Bytes>>,
        body: &[u8],
        region: &str,
    ) -> Result<(), TargetError> {
        use aws_credential_types::provider::ProvideCredentials;
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let provider = self
            .credentials
            .get_or_try_init(|| async {
                let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(aws_config::Region::new(region.to_owned()))
                    .load()
                    .await;
                config
                    .credentials_provider()
                    .ok_or_else(|| TargetError::Configuration("no AWS credentials provider".into()))
            })
            .await?;
        let credentials =
            provider
                .provide_credentials()
                .await
                .map_err(|e| TargetError::Status {
                    what: "read AWS credentials".into(),
                    status: 401,
                    error_type: "credentials".into(),
                    reason: e.to_string(),
                    single: false,
                    bookkeeping: false,
                })?;
        let identity = credentials.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(&self.config.sigv4_service)
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| TargetError::Configuration(format!("SigV4: {e}")))?
            .into();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let uri = request.uri().to_string();
        let signable = SignableRequest::new(
            request.method().as_str(),
            &uri,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .map_err(|e| TargetError::Configuration(format!("SigV4: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| TargetError::Configuration(format!("SigV4: {e}")))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-request HTTP listener on 127.0.0.1: its port, and the request
    /// head it received (lower case), once it has answered `{}`.
    async fn one_request() -> (u16, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}")
                .await
                .unwrap();
            String::from_utf8_lossy(&head).to_lowercase()
        });
        (port, server)
    }

    #[tokio::test]
    async fn basic_auth_sends_the_urls_user_and_password() {
        let (port, server) = one_request().await;
        let config = Config::from_url(&format!("http://ann:p%40ss@127.0.0.1:{port}")).unwrap();
        let answer = Client::new(config)
            .unwrap()
            .send(
                http::Method::GET,
                "/",
                "application/json",
                Vec::new(),
                "get /",
            )
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
        let head = server.await.unwrap();
        // base64("ann:p@ss"), lower-cased with the head.
        assert!(
            head.contains("\nauthorization: basic yw5uonbac3m=\r\n"),
            "{head}"
        );
    }

    /// A signed request, as a server receives it.
    #[tokio::test]
    async fn sigv4_signs_every_request_with_the_default_credentials() {
        // The default chain's first provider: the environment (no other
        // test of this crate reads AWS variables).
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
        std::env::set_var(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        );
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        let (port, server) = one_request().await;
        let config =
            Config::from_url(&format!("http://127.0.0.1:{port}?sigv4-region=eu-west-1")).unwrap();
        let client = Client::new(config).unwrap();
        let answer = client
            .send(
                http::Method::POST,
                "/_bulk",
                "application/x-ndjson",
                b"{}\n".to_vec(),
                "bulk",
            )
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
        let head = server.await.unwrap();
        let auth = head
            .lines()
            .find_map(|l| l.strip_prefix("authorization: "))
            .unwrap_or_else(|| panic!("no authorization header in\n{head}"));
        assert!(
            auth.starts_with("aws4-hmac-sha256 credential=akidexample/"),
            "{auth}"
        );
        assert!(auth.contains("/eu-west-1/es/aws4_request"), "{auth}");
        assert!(
            auth.contains("signedheaders=") && auth.contains("host"),
            "{auth}"
        );
        let signature = auth.rsplit("signature=").next().unwrap_or("");
        assert_eq!(signature.trim().len(), 64, "{auth}");
        assert!(head.contains("\nx-amz-date: "), "{head}");
    }

    #[test]
    fn urls_give_settings() {
        let c = Config::from_url("https://ann:p%40ss@search.example.com/?prefix=App-&replicas=0&bulk-bytes=100&timeout=5s").unwrap();
        assert_eq!(c.endpoint, "https://search.example.com:443");
        assert_eq!(c.basic, Some(("ann".into(), "p@ss".into())));
        assert_eq!(
            (c.prefix.as_str(), c.replicas, c.bulk_bytes),
            ("app-", 0, 100)
        );
        assert_eq!(c.timeout, Duration::from_secs(5));
        let c = Config::from_url("http://127.0.0.1:9250").unwrap();
        assert_eq!(c.endpoint, "http://127.0.0.1:9250");
        assert_eq!(
            (c.replicas, c.bulk_bytes, c.gc_deletes.as_str()),
            (1, DEFAULT_BULK_BYTES, "7d")
        );
        let c =
            Config::from_url("opensearch://vpc-x.es.amazonaws.com?sigv4-region=eu-west-1").unwrap();
        assert_eq!(c.endpoint, "https://vpc-x.es.amazonaws.com:443");
        assert_eq!(c.sigv4_region.as_deref(), Some("eu-west-1"));
        assert!(
            !format!("{:?}", Config::from_url("https://a:secret@h").unwrap()).contains("secret")
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, needle) in [
            ("mysql://h", "scheme"),
            ("http://h?replica=1", "unknown parameter"),
            ("http://h?replicas=x", "not a number"),
            ("http://h?timeout=5", "30s"),
            ("https://u:p@h?sigv4-region=eu-west-1", "choose"),
        ] {
            let e = Config::from_url(url).unwrap_err().to_string();
            assert!(e.contains(needle), "{url}: {e}");
        }
        assert!(Config::from_url("http://h?gc-deletes=8d").is_ok());
    }
}
