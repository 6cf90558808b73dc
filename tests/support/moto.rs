//! moto's server for tests that talk to AWS services no other emulator here
//! serves (SQS, Secrets Manager) through the real SDK clients.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dms_cdc::local::free_port;

/// moto's server (`moto[server]` from PyPI) in a virtualenv under the
/// target folder, installed on first use.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn moto() -> Option<Moto> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("moto-venv");
    let marker = venv.join("dms-cdc-installed");
    if !marker.exists() {
        let python = ["python3", "python"].into_iter().find(|p| {
            Command::new(p)
                .args(["-m", "venv", "--help"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        let Some(python) = python else {
            eprintln!("\n!!!!!!!! SKIPPING the moto part: no python3 with venv to install moto[server] !!!!!!!!\n");
            return None;
        };
        let _ = std::fs::remove_dir_all(&venv);
        let status = Command::new(python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap();
        assert!(status.success(), "python3 -m venv failed");
        let out = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "moto[server]"])
            .output()
            .unwrap();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("No module named pip") {
                eprintln!("\n!!!!!!!! SKIPPING the moto part: pip is unavailable !!!!!!!!\n");
                return None;
            }
            panic!("pip install moto[server] failed: {err}");
        }
        std::fs::write(&marker, "").unwrap();
    }
    let port = free_port().unwrap();
    let child = Command::new(venv.join("bin/moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let moto = Moto { child, port };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "moto_server did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(moto)
}

impl Moto {
    /// A Secrets Manager client of the real SDK, talking to this server.
    pub fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(format!("http://127.0.0.1:{}", self.port))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .build();
        aws_sdk_secretsmanager::Client::from_conf(config)
    }
}

/// An RDS-shaped secret for the test user of a server on 127.0.0.1:`port`,
/// database `global`.
pub fn rds_secret(port: u16, password: &str) -> String {
    serde_json::json!({
        "username": "dmscdc", "password": password, "host": "127.0.0.1",
        "port": port, "dbname": "global", "engine": "mysql"
    })
    .to_string()
}
