//! Connection benchmarks on real loopback sockets against the real servers: the reactor
//! (`securetcp`), the thread-per-client server and the iterative server (`blocking_server`).
//!
//! - `handshake_full/SERVER`: TCP connect + full TLS 1.3 handshake + greeting read + close.
//! - `handshake_resumed/SERVER`: the same with a session ticket from an earlier connection.
//! - `round_trip/SERVER/N`: N open connections; one iteration sends one calc request on each and
//!   reads every reply (so the time per iteration is N requests served concurrently). The
//!   iterative server only ever holds one connection, so it runs at N = 1 only.
//!
//! Run: `cargo bench --bench connections` (about 2 minutes on 2 cores). Client and server share the
//! machine; for per-core figures use `scripts/bench-servers.sh` (loadgen, pinned cores).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Server {
    fn start(name: &str, program: &Path, args: &[&str]) -> Server {
        let dir =
            std::env::temp_dir().join(format!("securetcp-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("bench directory");
        let mut child = Command::new(program)
            .args(args)
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("ready line");
        let port = line
            .split_whitespace()
            .nth(2)
            .and_then(|addr| addr.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .expect("port in the ready line");
        Server { child, port, dir }
    }

    fn client_config(&self, resume: bool) -> Arc<ClientConfig> {
        let ca = self.dir.join("certs/ca.pem");
        let mut config =
            (*securetcp::tls::client_config(&[&ca], None).expect("client config")).clone();
        if !resume {
            config.resumption = rustls::client::Resumption::disabled();
        }
        Arc::new(config)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A blocking TLS connection that has read the greeting.
struct Conn {
    stream: StreamOwned<ClientConnection, TcpStream>,
    pending: Vec<u8>,
}

impl Conn {
    fn open(port: u16, config: &Arc<ClientConfig>) -> Conn {
        let socket = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        socket.set_nodelay(true).unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let tls = ClientConnection::new(Arc::clone(config), name).expect("client");
        let mut conn = Conn {
            stream: StreamOwned::new(tls, socket),
            pending: Vec::new(),
        };
        let greeting = conn.read_line();
        assert!(
            greeting.starts_with(b"HELLO "),
            "{}",
            String::from_utf8_lossy(&greeting)
        );
        conn
    }

    fn read_line(&mut self) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                return self.pending.drain(..=i).collect();
            }
            let n = self.stream.read(&mut buf).expect("read");
            assert!(n > 0, "the server closed the connection");
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    fn close(mut self) {
        self.stream.conn.send_close_notify();
        let _ = self.stream.flush();
    }
}

fn bench_server(c: &mut Criterion, name: &str, server: &Server, sizes: &[usize]) {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let full = server.client_config(false);
    group.bench_function("handshake_full", |b| {
        b.iter(|| Conn::open(server.port, &full).close())
    });
    let resumed = server.client_config(true);
    Conn::open(server.port, &resumed).close(); // get a ticket
    group.bench_function("handshake_resumed", |b| {
        b.iter(|| Conn::open(server.port, &resumed).close())
    });
    for &n in sizes {
        let mut conns: Vec<Conn> = (0..n).map(|_| Conn::open(server.port, &resumed)).collect();
        group.bench_with_input(BenchmarkId::new("round_trip", n), &n, |b, _| {
            b.iter(|| {
                for conn in conns.iter_mut() {
                    conn.stream.write_all(b"12 + 42\n").expect("write");
                }
                for conn in conns.iter_mut() {
                    assert_eq!(conn.read_line(), b"OK 54\n");
                }
            })
        });
        for conn in conns {
            conn.close();
        }
    }
    group.finish();
}

/// Builds `examples/blocking_server.rs` in release mode (cargo does not build examples for a
/// bench), so all three servers are always measured, current. Fails with the command to run.
fn build_blocking_server() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // Cargo sets these for the bench process; a nested build that sees them thinks the
    // environment changed and rebuilds dependencies (ring watches CARGO_MANIFEST_DIR).
    for (key, _) in std::env::vars() {
        if [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_",
        ]
        .iter()
        .any(|prefix| key.starts_with(prefix))
            || key == "OUT_DIR"
        {
            command.env_remove(key);
        }
    }
    let built = command
        .args([
            "build",
            "--release",
            "--quiet",
            "--example",
            "blocking_server",
        ])
        .current_dir(&manifest)
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        built,
        "could not build the blocking servers; run: cargo build --release --example blocking_server"
    );
    manifest.join("target/release/examples/blocking_server")
}

fn connections(c: &mut Criterion) {
    let blocking = build_blocking_server();
    let reactor = Server::start(
        "reactor",
        Path::new(env!("CARGO_BIN_EXE_securetcp")),
        &["127.0.0.1", "0", "--no-log"],
    );
    bench_server(c, "reactor", &reactor, &[1, 64, 512]);
    drop(reactor);
    let threads = Server::start("threads", &blocking, &["--threads", "127.0.0.1", "0"]);
    bench_server(c, "threads", &threads, &[1, 64, 512]);
    drop(threads);
    let iterative = Server::start("iterative", &blocking, &["--iterative", "127.0.0.1", "0"]);
    bench_server(c, "iterative", &iterative, &[1]);
}

criterion_group!(benches, connections);
criterion_main!(benches);
