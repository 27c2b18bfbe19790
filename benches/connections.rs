//! Connection benchmarks on real loopback sockets against the real server binary:
//! a full TLS handshake plus greeting, and one request/reply round trip on an open connection.
//! (The comparison servers and the many-connection runs come with the benchmark issue.)
//!
//! Run: `cargo bench --bench connections`. Each group states what one iteration is.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use securetcp::client::{ClientOptions, Session};

struct Server {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Server {
    fn start() -> Server {
        let dir = std::env::temp_dir().join(format!("securetcp-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("bench directory");
        let mut child = Command::new(env!("CARGO_BIN_EXE_securetcp"))
            .args(["127.0.0.1", "0", "--no-log"])
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

    fn options(&self) -> ClientOptions {
        ClientOptions {
            ca: Some(self.dir.join("certs/ca.pem")),
            ..ClientOptions::default()
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn connections(c: &mut Criterion) {
    let server = Server::start();
    let options = server.options();
    let mut group = c.benchmark_group("reactor");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));

    // One iteration: TCP connect, full TLS 1.3 handshake, greeting read, close.
    group.bench_function("handshake_full", |b| {
        b.iter(|| {
            let session = Session::connect("127.0.0.1", server.port, &options).expect("connect");
            session.close();
        })
    });

    // One iteration: one calc request and its reply on an open TLS connection.
    let mut session = Session::connect("127.0.0.1", server.port, &options).expect("connect");
    group.bench_function("round_trip_1_conn", |b| {
        b.iter(|| {
            let reply = session.request("12 + 42").expect("reply");
            assert_eq!(reply, "OK 54");
        })
    });
    group.finish();
}

criterion_group!(benches, connections);
criterion_main!(benches);
