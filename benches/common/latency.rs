//! Network latency for the end-to-end benchmark: a TCP proxy on 127.0.0.1
//! that holds every byte for half a round trip in each direction, so a
//! client on this machine sees its server as a Lambda sees Aurora in a VPC
//! (a round trip costs time, not CPU).
//!
//! Bytes are forwarded in order and without a bandwidth limit: a chunk read
//! at time t is written at t + delay, and chunks read meanwhile wait behind
//! it, never longer than their own delay. Plain threads with
//! `std::thread::sleep` hold the bytes: tokio's timer ticks in whole
//! milliseconds, too coarse for a 0.5 ms round trip.
//!
//! Connections are few in a benchmark run (a handful of pooled ones): each
//! costs four threads, which live until either side closes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A running proxy (it serves until the process ends).
pub struct DelayProxy {
    port: u16,
}

impl DelayProxy {
    /// Listens on a free 127.0.0.1 port and forwards every connection to
    /// `upstream`, adding `round_trip` to each request/response exchange.
    pub fn start(upstream: SocketAddr, round_trip: Duration) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let one_way = round_trip / 2;
        thread::Builder::new()
            .name(format!("delay-proxy-{port}"))
            .spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { continue };
                    if let Err(e) = connect(client, upstream, one_way) {
                        eprintln!("delay proxy: connection to {upstream} failed: {e}");
                    }
                }
            })?;
        Ok(Self { port })
    }

    /// The port to connect to instead of the server's.
    pub fn port(&self) -> u16 {
        self.port
    }
}

fn connect(client: TcpStream, upstream: SocketAddr, one_way: Duration) -> io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    pipe(client.try_clone()?, server.try_clone()?, one_way)?;
    pipe(server, client, one_way)
}

/// Forwards `from` to `to`, each chunk `delay` after it was read.
fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration) -> io::Result<()> {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    thread::Builder::new().spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0
                || tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
            {
                break;
            }
        }
        // Dropping `tx` lets the writer flush what is queued, then close.
    })?;
    thread::Builder::new().spawn(move || {
        for (due, bytes) in rx {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    })?;
    Ok(())
}

/// `url` with its `127.0.0.1:PORT` replaced by the proxy's port.
pub fn through(url: &str, server_port: u16, proxy: &DelayProxy) -> String {
    url.replace(
        &format!("127.0.0.1:{server_port}"),
        &format!("127.0.0.1:{}", proxy.port()),
    )
}
