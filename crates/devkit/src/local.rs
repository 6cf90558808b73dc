//! Throwaway local servers for tests, local replay and the demo.
//!
//! [`MariaDb::start`] creates a data directory in a temporary folder, starts
//! `mariadbd` from the machine's binaries on a free 127.0.0.1 port with the
//! binlog settings DMS needs (ROW format, full row image), creates a TCP user
//! and stops the server (and removes the folder) when dropped, also when a
//! test panics. It never touches a server someone started by hand.
//! [`MariaDb::start_tls`] starts one that also speaks TLS with certificates
//! a test makes itself ([`TlsFiles::generate`]), and has a user that may
//! only connect over TLS. [`PostgreSql::start`] does the same for a
//! PostgreSQL target, with `initdb` and `pg_ctl` from the machine's binaries.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// User created for TCP connections (root logs in only through the socket).
pub const TEST_USER: &str = "dmscdc";
/// Its password.
pub const TEST_PASSWORD: &str = "dmscdc";
/// User of a TLS server ([`MariaDb::start_tls`]) that may only connect over
/// TLS (`REQUIRE SSL`), with all privileges.
pub const TLS_USER: &str = "dmscdc_tls";
/// Its password.
pub const TLS_PASSWORD: &str = "dmscdc-tls-pw";

/// Errors starting a local server.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// A binary is missing.
    #[error("{0} not found: install it (infra/local/install.sh installs the MariaDB and PostgreSQL servers) or run `bash .ci/test`, which does")]
    Missing(&'static str),
    /// A command failed.
    #[error("{what} failed: {detail}")]
    Command {
        /// What was run.
        what: String,
        /// Its output or error.
        detail: String,
    },
    /// The server did not come up in time.
    #[error(
        "mariadbd did not accept connections on 127.0.0.1:{port} within {seconds} s; log: {log}"
    )]
    Timeout {
        /// Port.
        port: u16,
        /// Seconds waited.
        seconds: u64,
        /// Tail of the error log.
        log: String,
    },
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn find_binary(names: &[&'static str]) -> Result<PathBuf, LocalError> {
    for name in names {
        for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
            let p = Path::new(dir).join(name);
            if p.exists() {
                return Ok(p);
            }
        }
    }
    Err(LocalError::Missing(names[0]))
}

/// Certificates for a TLS test server: a self-signed CA and a server key
/// and certificate signed by it (PEM files).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate, for the client (and the server's `--ssl-ca`).
    pub ca: PathBuf,
    /// The server certificate.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// Makes, with the openssl command, a CA (`ca.pem`) and a server
    /// certificate (`server.pem`, key `server-key.pem`) for `names` (IP
    /// addresses or DNS names; the first is also the common name), valid
    /// for two days, in `dir`. EC P-256 keys: made in milliseconds.
    pub fn generate(dir: &Path, names: &[&str]) -> Result<TlsFiles, LocalError> {
        let openssl = find_binary(&["openssl"])?;
        let alt_names = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(_) => format!("IP:{n}"),
                Err(_) => format!("DNS:{n}"),
            })
            .collect::<Vec<_>>()
            .join(",");
        let common_name = names.first().copied().unwrap_or("dms-cdc test server");
        let serial = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(1)
            .to_string();
        // A name of its own: a verifier finds an issuer by name.
        std::fs::write(
            dir.join("ca.cnf"),
            format!(
                "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3_ca\n\
                 [dn]\nCN = dms-cdc test CA {serial}\n\
                 [v3_ca]\nbasicConstraints = critical,CA:TRUE\n\
                 keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
            ),
        )?;
        std::fs::write(
            dir.join("server.cnf"),
            format!(
                "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = {common_name}\n\
                 [v3_server]\nbasicConstraints = critical,CA:FALSE\n\
                 keyUsage = critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage = serverAuth\nauthorityKeyIdentifier = keyid\n\
                 subjectAltName = {alt_names}\n"
            ),
        )?;
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        let steps: [Vec<&str>; 3] = [
            [
                &["req", "-x509", "-config", "ca.cnf", "-nodes", "-days", "2"][..],
                &ec[..],
                &["-keyout", "ca-key.pem", "-out", "ca.pem"][..],
            ]
            .concat(),
            [
                &["req", "-new", "-config", "server.cnf", "-nodes"][..],
                &ec[..],
                &["-keyout", "server-key.pem", "-out", "server.csr"][..],
            ]
            .concat(),
            vec![
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-set_serial",
                &serial,
                "-days",
                "2",
                "-extfile",
                "server.cnf",
                "-extensions",
                "v3_server",
                "-out",
                "server.pem",
            ],
        ];
        for args in steps {
            let out = Command::new(&openssl)
                .current_dir(dir)
                .args(&args)
                .stdin(Stdio::null())
                .output()?;
            if !out.status.success() {
                return Err(LocalError::Command {
                    what: format!("openssl {}", args.first().copied().unwrap_or("")),
                    detail: String::from_utf8_lossy(&out.stderr)
                        .chars()
                        .take(2000)
                        .collect(),
                });
            }
        }
        Ok(TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server-key.pem"),
        })
    }
}

/// A throwaway MariaDB server.
#[derive(Debug)]
pub struct MariaDb {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    server: PathBuf,
    args: Vec<std::ffi::OsString>,
}

fn spawn_server(
    server: &Path,
    args: &[std::ffi::OsString],
    tmp: &Path,
) -> Result<Child, LocalError> {
    Ok(Command::new(server)
        .env("TMPDIR", tmp)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

impl MariaDb {
    /// Starts a server with binlog on (ROW, FULL), `server_id` as given.
    pub fn start(server_id: u32) -> Result<MariaDb, LocalError> {
        Self::start_with(server_id, None)
    }

    /// Starts a server like [`MariaDb::start`] that also accepts TLS with
    /// `tls`'s server certificate (copied into the server's folder, readable
    /// by the user it runs as), and creates [`TLS_USER`], who may only
    /// connect over TLS. [`TEST_USER`] may still connect without.
    pub fn start_tls(server_id: u32, tls: &TlsFiles) -> Result<MariaDb, LocalError> {
        let db = Self::start_with(server_id, Some(tls))?;
        db.run_sql(&format!(
            "CREATE USER '{TLS_USER}'@'127.0.0.1' IDENTIFIED BY '{TLS_PASSWORD}' REQUIRE SSL;\
             GRANT ALL PRIVILEGES ON *.* TO '{TLS_USER}'@'127.0.0.1'; FLUSH PRIVILEGES;"
        ))?;
        Ok(db)
    }

    fn start_with(server_id: u32, tls: Option<&TlsFiles>) -> Result<MariaDb, LocalError> {
        let install = find_binary(&["mariadb-install-db", "mysql_install_db"])?;
        let server = find_binary(&["mariadbd", "mysqld"])?;
        let dir = tempfile::Builder::new()
            .prefix("dms-cdc-mariadb-")
            .tempdir()?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data)?;
        std::fs::create_dir(dir.path().join("tmp"))?;
        let server_tls = match tls {
            None => None,
            Some(files) => {
                let tls_dir = dir.path().join("tls");
                std::fs::create_dir(&tls_dir)?;
                let copy = |from: &Path, name: &str| -> std::io::Result<PathBuf> {
                    let to = tls_dir.join(name);
                    std::fs::copy(from, &to)?;
                    Ok(to)
                };
                Some(TlsFiles {
                    ca: copy(&files.ca, "ca.pem")?,
                    cert: copy(&files.cert, "server.pem")?,
                    key: copy(&files.key, "server-key.pem")?,
                })
            }
        };
        let running_as_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
        if running_as_root {
            let status = Command::new("chown")
                .arg("-R")
                .arg("mysql:mysql")
                .arg(dir.path())
                .status()?;
            if !status.success() {
                return Err(LocalError::Command {
                    what: "chown".into(),
                    detail: status.to_string(),
                });
            }
        }
        // Each server gets its own tmpdir: concurrent bootstraps otherwise
        // collide on temporary table names in the shared one.
        let tmp = dir.path().join("tmp");
        let mut cmd = Command::new(&install);
        cmd.env("TMPDIR", &tmp)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db");
        if running_as_root {
            cmd.arg("--user=mysql");
        }
        let out = cmd.output()?;
        if !out.status.success() {
            return Err(LocalError::Command {
                what: "mariadb-install-db".into(),
                detail: String::from_utf8_lossy(&out.stderr)
                    .chars()
                    .take(2000)
                    .collect(),
            });
        }
        let port = free_port()?;
        let socket = dir.path().join("mysql.sock");
        let log = dir.path().join("error.log");
        let mut cmd = Command::new(&server);
        cmd.arg("--no-defaults")
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--server-id={server_id}"))
            .arg(format!("--log-bin={}", data.join("binlog").display()))
            .arg("--binlog-format=ROW")
            .arg("--binlog-row-image=FULL")
            .arg("--binlog-row-metadata=FULL")
            .arg(format!("--log-error={}", log.display()))
            .arg(format!(
                "--pid-file={}",
                dir.path().join("mariadbd.pid").display()
            ))
            .arg("--skip-name-resolve")
            .arg("--innodb-buffer-pool-size=64M")
            .arg("--innodb-log-file-size=48M")
            .arg("--innodb-flush-log-at-trx-commit=2")
            .arg("--sync-binlog=0")
            .arg("--max-connections=200")
            .arg("--character-set-server=utf8mb4")
            .arg("--collation-server=utf8mb4_unicode_ci")
            .arg(
                "--sql-mode=STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION,ERROR_FOR_DIVISION_BY_ZERO",
            );
        if running_as_root {
            cmd.arg("--user=mysql");
        }
        if let Some(files) = &server_tls {
            cmd.arg(format!("--ssl-ca={}", files.ca.display()))
                .arg(format!("--ssl-cert={}", files.cert.display()))
                .arg(format!("--ssl-key={}", files.key.display()));
        }
        let args: Vec<std::ffi::OsString> = cmd.get_args().map(|a| a.to_owned()).collect();
        let child = spawn_server(&server, &args, &tmp)?;
        let mut db = MariaDb {
            child,
            dir,
            port,
            server,
            args,
        };
        db.wait_ready(&socket, &log)?;
        Ok(db)
    }

    /// Kills the server at once (SIGKILL, no shutdown), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same data directory and port (after
    /// [`MariaDb::kill`]); InnoDB recovers what was committed.
    pub fn restart(&mut self) -> Result<(), LocalError> {
        self.kill();
        let tmp = self.dir.path().join("tmp");
        let socket = self.dir.path().join("mysql.sock");
        let _ = std::fs::remove_file(&socket);
        self.child = spawn_server(&self.server, &self.args, &tmp)?;
        let log = self.dir.path().join("error.log");
        self.wait_ready(&socket, &log)
    }

    fn wait_ready(&mut self, socket: &Path, log: &Path) -> Result<(), LocalError> {
        let client = find_binary(&["mariadb", "mysql"])?;
        let started = Instant::now();
        let limit = Duration::from_secs(60);
        let sql = format!(
            "CREATE USER IF NOT EXISTS '{TEST_USER}'@'127.0.0.1' IDENTIFIED BY '{TEST_PASSWORD}';\
             GRANT ALL PRIVILEGES ON *.* TO '{TEST_USER}'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;"
        );
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(LocalError::Command {
                    what: "mariadbd".into(),
                    detail: format!("exited with {status}; log: {}", tail(log)),
                });
            }
            if socket.exists() {
                let out = Command::new(&client)
                    .arg("--no-defaults")
                    .arg(format!("--socket={}", socket.display()))
                    .arg("-uroot")
                    .arg("-e")
                    .arg(&sql)
                    .output()?;
                if out.status.success() {
                    return Ok(());
                }
            }
            if started.elapsed() > limit {
                return Err(LocalError::Timeout {
                    port: self.port,
                    seconds: limit.as_secs(),
                    log: tail(log),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A `mysql://` URL for `database` with the test user.
    pub fn url(&self, database: &str) -> String {
        format!(
            "mysql://{TEST_USER}:{TEST_PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Runs SQL (several statements allowed) through the command-line client as root.
    pub fn run_sql(&self, sql: &str) -> Result<(), LocalError> {
        let client = find_binary(&["mariadb", "mysql"])?;
        let out = Command::new(client)
            .arg("--no-defaults")
            .arg(format!(
                "--socket={}",
                self.dir.path().join("mysql.sock").display()
            ))
            .arg("-uroot")
            .arg("-e")
            .arg(sql)
            .output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(LocalError::Command {
                what: "mariadb client".into(),
                detail: String::from_utf8_lossy(&out.stderr)
                    .chars()
                    .take(2000)
                    .collect(),
            })
        }
    }

    /// Runs a SQL file through the command-line client as root.
    pub fn run_file(&self, path: &Path) -> Result<(), LocalError> {
        self.run_sql(&format!("source {}", path.display()))
    }
}

fn tail(log: &Path) -> String {
    std::fs::read_to_string(log)
        .map(|s| {
            s.lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User of a throwaway PostgreSQL server ([`PostgreSql`]): its superuser,
/// trusted without a password.
pub const PG_USER: &str = "dmscdc";

/// The directory of the newest PostgreSQL server binaries installed
/// (`/usr/lib/postgresql/<version>/bin`), else the one `initdb` is in.
fn postgres_bin_dir() -> Result<PathBuf, LocalError> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    find_binary(&["initdb"])
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .ok_or(LocalError::Missing(
            "initdb (PostgreSQL server: apt-get install postgresql)",
        ))
}

/// A throwaway PostgreSQL server: `initdb` into a temporary folder (trust
/// authentication, superuser [`PG_USER`]), `pg_ctl start` on a free
/// 127.0.0.1 port with its socket in that folder; stopped (`pg_ctl stop -m
/// immediate`) and removed when dropped, also when a test panics. As root,
/// the server runs as the `postgres` user (PostgreSQL refuses root), which
/// owns the folder. It never touches a server someone else started.
#[derive(Debug)]
pub struct PostgreSql {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    run_as: Option<&'static str>,
    running: bool,
    /// Server options beyond the port, socket and address (TLS).
    extra: String,
}

impl PostgreSql {
    /// Initialises and starts a server.
    pub fn start() -> Result<PostgreSql, LocalError> {
        Self::start_with(None, "")
    }

    /// Starts a server like [`PostgreSql::start`] with logical decoding on
    /// (`wal_level = logical`, replication slots): a source to capture.
    pub fn start_logical() -> Result<PostgreSql, LocalError> {
        Self::start_with(
            None,
            " -c wal_level=logical -c max_replication_slots=4 -c max_wal_senders=4",
        )
    }

    /// Starts a server like [`PostgreSql::start`] that also accepts TLS
    /// (`ssl=on`) with `tls`'s server certificate, copied into the server's
    /// folder (the key readable by its user only, as PostgreSQL demands).
    pub fn start_tls(tls: &TlsFiles) -> Result<PostgreSql, LocalError> {
        Self::start_with(Some(tls), "")
    }

    fn start_with(tls: Option<&TlsFiles>, settings: &str) -> Result<PostgreSql, LocalError> {
        let bin = postgres_bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("dms-cdc-postgres-")
            .tempdir()?;
        let mut extra = settings.to_owned();
        if let Some(files) = tls {
            let cert = dir.path().join("server.pem");
            let key = dir.path().join("server-key.pem");
            std::fs::copy(&files.cert, &cert)?;
            std::fs::copy(&files.key, &key)?;
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
            extra.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                cert.display(),
                key.display()
            ));
        }
        let running_as_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
        let run_as = running_as_root.then_some("postgres");
        if let Some(user) = run_as {
            let status = Command::new("chown")
                .arg("-R")
                .arg(format!("{user}:"))
                .arg(dir.path())
                .status()?;
            if !status.success() {
                return Err(LocalError::Command {
                    what: format!("chown {user}"),
                    detail: status.to_string(),
                });
            }
        }
        let mut db = PostgreSql {
            dir,
            bin,
            port: free_port()?,
            run_as,
            running: false,
            extra,
        };
        let data = db.data_dir();
        db.run_tool(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                PG_USER.as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-locale".as_ref(),
                "--no-sync".as_ref(),
            ],
        )?;
        db.pg_ctl_start()?;
        Ok(db)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Runs one of the server's tools (as the server's user when root).
    fn run_tool(&self, tool: &str, args: &[&std::ffi::OsStr]) -> Result<(), LocalError> {
        let program = self.bin.join(tool);
        let mut cmd = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()?;
        if out.status.success() {
            return Ok(());
        }
        Err(LocalError::Command {
            what: tool.to_owned(),
            detail: format!(
                "{}{}; log: {}",
                String::from_utf8_lossy(&out.stderr)
                    .chars()
                    .take(2000)
                    .collect::<String>(),
                String::from_utf8_lossy(&out.stdout)
                    .chars()
                    .take(1000)
                    .collect::<String>(),
                tail(&self.log_file())
            ),
        })
    }

    fn pg_ctl_start(&mut self) -> Result<(), LocalError> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60{}",
            self.port,
            self.dir.path().display(),
            self.extra
        );
        let data = self.data_dir();
        let log = self.log_file();
        self.run_tool(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-l".as_ref(),
                log.as_os_str(),
                "-t".as_ref(),
                "60".as_ref(),
                "-w".as_ref(),
                "start".as_ref(),
            ],
        )?;
        self.running = true;
        Ok(())
    }

    /// Stops the server at once (`-m immediate`, as a crash would); it can
    /// be started again with [`PostgreSql::restart`].
    pub fn stop(&mut self) -> Result<(), LocalError> {
        if !self.running {
            return Ok(());
        }
        let data = self.data_dir();
        self.run_tool(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        )?;
        self.running = false;
        Ok(())
    }

    /// Starts the server again on the same data directory and port.
    pub fn restart(&mut self) -> Result<(), LocalError> {
        self.stop()?;
        self.pg_ctl_start()
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A `postgres://` URL for `database` as [`PG_USER`] (no password: trusted).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/{database}", self.port)
    }

    /// A `postgres://` URL for `database` as `user` with `password`.
    pub fn url_as(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    fn psql(&self, database: &str) -> Result<Command, LocalError> {
        let psql = self.bin.join("psql");
        let psql = if psql.exists() {
            psql
        } else {
            find_binary(&["psql"])?
        };
        let mut cmd = Command::new(psql);
        cmd.arg("-X")
            .arg("-q")
            .args(["-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(self.dir.path())
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", PG_USER, "-d", database])
            .stdin(Stdio::null());
        Ok(cmd)
    }

    fn run_psql(&self, mut cmd: Command) -> Result<(), LocalError> {
        let out = cmd.output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(LocalError::Command {
                what: "psql".into(),
                detail: String::from_utf8_lossy(&out.stderr)
                    .chars()
                    .take(2000)
                    .collect(),
            })
        }
    }

    /// Runs SQL (several statements allowed) in `database` through psql as [`PG_USER`].
    pub fn run_sql(&self, database: &str, sql: &str) -> Result<(), LocalError> {
        let mut cmd = self.psql(database)?;
        cmd.arg("-c").arg(sql);
        self.run_psql(cmd)
    }

    /// Runs a SQL file in `database` through psql as [`PG_USER`].
    pub fn run_file(&self, database: &str, path: &Path) -> Result<(), LocalError> {
        let mut cmd = self.psql(database)?;
        cmd.arg("-f").arg(path);
        self.run_psql(cmd)
    }

    /// Creates a database.
    pub fn create_database(&self, name: &str) -> Result<(), LocalError> {
        self.run_sql("postgres", &format!("CREATE DATABASE \"{name}\""))
    }

    /// Creates a login role that must give its password over TCP
    /// (`scram-sha-256`, placed before the trust rules in `pg_hba.conf`),
    /// with all privileges on `database`'s public schema.
    pub fn add_password_user(
        &self,
        user: &str,
        password: &str,
        database: &str,
    ) -> Result<(), LocalError> {
        self.run_sql(
            database,
            &format!(
                "CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}';
                 GRANT ALL ON SCHEMA public TO \"{user}\";
                 GRANT ALL ON ALL TABLES IN SCHEMA public TO \"{user}\";"
            ),
        )?;
        let hba = self.data_dir().join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba)?;
        std::fs::write(
            &hba,
            format!("host all \"{user}\" 127.0.0.1/32 scram-sha-256\n{rules}"),
        )?;
        self.run_sql(database, "SELECT pg_reload_conf()")
    }
}

impl Drop for PostgreSql {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A throwaway Kinesis emulator (kinesalite, from npm) on a free 127.0.0.1
/// port, stopped when dropped.
#[derive(Debug)]
pub struct Kinesalite {
    child: Child,
    port: u16,
}

/// The folder with the local services' npm package (`infra/local`).
pub fn local_services_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/local")
}

impl Kinesalite {
    /// Installs kinesalite if its npm package is missing, then starts it.
    pub fn start() -> Result<Kinesalite, LocalError> {
        use std::io::BufRead as _;
        let dir = local_services_dir();
        if !dir.join("node_modules/kinesalite").exists() {
            let out = Command::new("npm")
                .current_dir(&dir)
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .output()
                .map_err(|_| LocalError::Missing("npm"))?;
            if !out.status.success() {
                return Err(LocalError::Command {
                    what: "npm ci (infra/local)".into(),
                    detail: String::from_utf8_lossy(&out.stderr)
                        .chars()
                        .take(2000)
                        .collect(),
                });
            }
        }
        let port = free_port()?;
        let mut child = Command::new("node")
            .current_dir(&dir)
            .arg("kinesalite.js")
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|_| LocalError::Missing("node"))?;
        let stdout = child.stdout.take().ok_or_else(|| LocalError::Command {
            what: "kinesalite".into(),
            detail: "no stdout".into(),
        })?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        if !line.starts_with("ready") {
            let _ = child.kill();
            return Err(LocalError::Command {
                what: "kinesalite".into(),
                detail: format!("said {line:?}"),
            });
        }
        Ok(Kinesalite { child, port })
    }

    /// The endpoint URL for the AWS SDK.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Kinesalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
