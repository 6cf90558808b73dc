//! Lambda init (issue 18): how long a cold start takes before the function
//! asks for its first event, with the pools connecting lazily (nothing is
//! connected before the first batch).
//!
//! ```sh
//! cargo bench --bench init                       # Function::init in-process, per target
//! cargo bench --bench init -- --rounds 50
//! # the real binary under a local Lambda Runtime API (build it first):
//! cargo build --release -p mysql-target
//! cargo bench --bench init -- --binary target/release/mysql-target
//! ```
//!
//! In-process: `Function::init` (configuration, the compiled-in mapping,
//! the lazily connected pools) for each target's function, the first call
//! (cold: first use of the code and allocator) and the median of the rest.
//!
//! `--binary`: the function's process is started with
//! `AWS_LAMBDA_RUNTIME_API` pointing at a listener on 127.0.0.1 that
//! records when the runtime's first `GET .../invocation/next` arrives: the
//! whole cold start to ready (exec, allocator, logging, init). The
//! baseline of the same run is `curl` asking the same listener the same
//! thing: a process that only makes that request.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dms_cdc::capture::Sources;
use dms_cdc::lambda::{Config, Connection, Function, TargetAdapter};
use dms_cdc::mapping::Transforms;

const MAPPING: &str = include_str!("../fixtures/mapping.toml");

fn config(target: &str) -> Config {
    Config {
        mapping: None,
        source: Connection::Url("mysql://reader:secret@127.0.0.1:3306/recipes_src".into()),
        target: Connection::Url(target.into()),
        source_tls: Default::default(),
        target_tls: Default::default(),
        chunk_size: 500,
        source_pool_size: 2,
        target_pool_size: 2,
        function_name: "init-bench".into(),
    }
}

/// The first `Function::init` and the median of `rounds` more, in ms.
async fn in_process<T: TargetAdapter>(target: &str, rounds: usize) -> (f64, f64) {
    let mut times = Vec::with_capacity(rounds + 1);
    for _ in 0..=rounds {
        let started = Instant::now();
        let function =
            Function::<Sources, T>::init(config(target), MAPPING, Transforms::standard())
                .await
                .expect("init without connecting");
        times.push(started.elapsed().as_secs_f64() * 1e3);
        drop(function);
    }
    let first = times[0];
    let mut rest = times[1..].to_vec();
    rest.sort_by(f64::total_cmp);
    (first, rest[rest.len() / 2])
}

/// Starts `command` and returns how long until the listener got a request.
fn until_first_request(listener: &TcpListener, mut command: Command) -> Duration {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the process starts");
    let (mut stream, _) = listener.accept().expect("a request");
    let elapsed = started.elapsed();
    let mut buf = [0u8; 1024];
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.read(&mut buf);
    assert!(
        buf.starts_with(b"GET /2018-06-01/runtime/invocation/next"),
        "not the runtime's first request: {}",
        String::from_utf8_lossy(&buf[..64])
    );
    let _ = stream.write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n");
    drop(stream);
    let _ = child.kill();
    let _ = child.wait();
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn binary(path: &str, rounds: usize) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
    let api = listener.local_addr().unwrap().to_string();
    let function = (0..rounds)
        .map(|_| {
            let mut command = Command::new(path);
            command
                .env_clear()
                .env("AWS_LAMBDA_RUNTIME_API", &api)
                .env("AWS_LAMBDA_FUNCTION_NAME", "init-bench")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
                .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
                .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
                .env(
                    "DMS_CDC_SOURCE_URL",
                    "mysql://reader:secret@127.0.0.1:3306/recipes_src",
                )
                .env("DMS_CDC_TARGET_URL", target_url_for(path));
            until_first_request(&listener, command)
        })
        .collect::<Vec<_>>();
    let baseline = (0..rounds)
        .map(|_| {
            let mut command = Command::new("curl");
            command.args([
                "-s",
                "-o",
                "/dev/null",
                &format!("http://{api}/2018-06-01/runtime/invocation/next"),
            ]);
            until_first_request(&listener, command)
        })
        .collect::<Vec<_>>();
    let (f, b) = (median(function.clone()), median(baseline));
    println!(
        "{path}: cold start to the first `invocation/next`: median {:.2} ms (min {:.2} ms) over {rounds} starts; \
         baseline `curl` making the same request: median {:.2} ms; function / baseline {:.2}x",
        f.as_secs_f64() * 1e3,
        function.iter().min().unwrap().as_secs_f64() * 1e3,
        b.as_secs_f64() * 1e3,
        f.as_secs_f64() / b.as_secs_f64()
    );
}

/// A target URL of the kind the binary writes (from its name).
fn target_url_for(path: &str) -> &'static str {
    if path.contains("postgres") {
        "postgres://writer:secret@127.0.0.1:5432/global"
    } else if path.contains("opensearch") {
        "http://127.0.0.1:9200"
    } else {
        "mysql://writer:secret@127.0.0.1:3306/global"
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if args.iter().any(|a| a == "--list") {
        return;
    }
    // `cargo bench -- --test` (the CI smoke): one round.
    let rounds: usize = if args.iter().any(|a| a == "--test") {
        1
    } else {
        value("--rounds")
            .and_then(|r| r.parse().ok())
            .unwrap_or(20)
            .max(1)
    };
    if let Some(path) = value("--binary") {
        binary(&path, rounds);
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    for (name, (first, median)) in [
        (
            "mysql-target",
            runtime.block_on(in_process::<dms_cdc_mysql::Mysql>(
                "mysql://writer:secret@127.0.0.1:3306/global",
                rounds,
            )),
        ),
        (
            "postgres-target",
            runtime.block_on(in_process::<dms_cdc::postgres::Postgres>(
                "postgres://writer:secret@127.0.0.1:5432/global",
                rounds,
            )),
        ),
        (
            "opensearch-target",
            runtime.block_on(in_process::<dms_cdc::opensearch::OpenSearch>(
                "http://127.0.0.1:9200",
                rounds,
            )),
        ),
    ] {
        println!(
            "{name}: Function::init (lazy pools, nothing connected): first {first:.3} ms, median of {rounds} more {median:.3} ms"
        );
    }
}
