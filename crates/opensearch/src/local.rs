//! A throwaway single-node OpenSearch 2.19.6 for tests: the launcher in
//! `infra/local/opensearch` (built with Maven when its classes are
//! missing), on 127.0.0.1, in a temporary home, with a 512 MiB heap.
//!
//! [`OpenSearch::start`] waits for the launcher's `READY <url>` line (at
//! most [`START_SECONDS`]) and for yellow health; the node is killed when
//! the value is dropped (also when a test panics), and stops by itself when
//! the test process exits (its stdin closes: `--stop-on-stdin-eof`), so a
//! node kept in a `static` does not outlive its tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for a node to print READY.
pub const START_SECONDS: u64 = 90;

/// Starting a node failed.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// `java` or `mvn` is missing.
    #[error("{0} not found: run infra/local/install.sh (it installs a Java 17 runtime and Maven)")]
    Missing(&'static str),
    /// Building the launcher or starting the node failed.
    #[error("{what}: {detail}")]
    Failed {
        /// What was being done.
        what: String,
        /// Output or error.
        detail: String,
    },
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A running local node.
#[derive(Debug)]
pub struct OpenSearch {
    child: Option<Child>,
    home: tempfile::TempDir,
    port: u16,
    url: String,
}

/// The launcher's directory (`infra/local/opensearch` of the workspace).
pub fn launcher_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/local/opensearch")
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// Builds the launcher if its classes are missing.
pub fn build_launcher() -> Result<(), LocalError> {
    let dir = launcher_dir();
    if dir
        .join("target/classes/dev/dmscdc/opensearch/LocalNode.class")
        .exists()
        && dir.join("target/lib").exists()
    {
        return Ok(());
    }
    if !on_path("mvn") {
        return Err(LocalError::Missing("mvn"));
    }
    let out = Command::new("mvn")
        .args(["-q", "-f"])
        .arg(dir.join("pom.xml"))
        .args(["package", "-DskipTests"])
        .output()?;
    if !out.status.success() {
        return Err(LocalError::Failed {
            what: "mvn package (infra/local/opensearch)".into(),
            detail: String::from_utf8_lossy(&out.stdout)
                .chars()
                .take(4000)
                .collect(),
        });
    }
    Ok(())
}

impl OpenSearch {
    /// Starts a node on a free port in a new temporary home.
    pub fn start() -> Result<OpenSearch, LocalError> {
        let home = tempfile::Builder::new()
            .prefix("dms-cdc-opensearch-")
            .tempdir()?;
        let mut node = OpenSearch {
            child: None,
            home,
            port: 0,
            url: String::new(),
        };
        node.launch(0)?;
        Ok(node)
    }

    fn launch(&mut self, port: u16) -> Result<(), LocalError> {
        build_launcher()?;
        if !on_path("java") {
            return Err(LocalError::Missing("java"));
        }
        let dir = launcher_dir();
        let classpath = format!(
            "{}:{}",
            dir.join("target/classes").display(),
            dir.join("target/lib/*").display()
        );
        let log = std::fs::File::create(self.home.path().join("node.log"))?;
        let mut child = Command::new("java")
            .args([
                "-Xms512m",
                "-Xmx512m",
                "-Dopensearch.local.log.level=warn",
                "-cp",
            ])
            .arg(classpath)
            .arg("dev.dmscdc.opensearch.LocalNode")
            .args([
                "--http-port",
                &port.to_string(),
                "--transport-port",
                "0",
                "--stop-on-stdin-eof",
            ])
            .arg("--home")
            .arg(self.home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| LocalError::Failed {
            what: "start opensearch".into(),
            detail: "no stdout".into(),
        })?;
        self.child = Some(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("READY ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(START_SECONDS))
            .map_err(|_| LocalError::Failed {
                what: format!("opensearch did not print READY within {START_SECONDS} s"),
                detail: self.log_tail(),
            })?;
        self.port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(port);
        self.url = url;
        self.wait_for_health()
    }

    fn wait_for_health(&self) -> Result<(), LocalError> {
        use std::io::{Read, Write};
        let deadline = Instant::now() + Duration::from_secs(START_SECONDS);
        while Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(35)));
                let request = "GET /_cluster/health?wait_for_status=yellow&timeout=30s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
                let mut answer = String::new();
                if s.write_all(request.as_bytes()).is_ok()
                    && s.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1.1 200")
                {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(LocalError::Failed {
            what: "opensearch did not become yellow".into(),
            detail: self.log_tail(),
        })
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.home.path().join("node.log")).unwrap_or_default();
        let start = log.len().saturating_sub(3000);
        log.get(start..).unwrap_or_default().to_owned()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The HTTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The node's home (data, logs, config).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Kills the node (as a crash would); the data stays in its home.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the node again on the same port and data.
    pub fn restart(&mut self) -> Result<(), LocalError> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.launch(self.port) {
                Ok(()) => return Ok(()),
                // The port may still be held for a moment after the kill.
                Err(_) if Instant::now() < deadline => {
                    self.kill();
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for OpenSearch {
    fn drop(&mut self) {
        self.kill();
    }
}
