//! The ceiling for the reactor's handshake cost: what rustls itself spends on the server side of
//! one full TLS 1.3 handshake, in memory (no sockets, no syscalls, no event loop), with the
//! same development certificate (ECDSA P-256) and the same provider (ring) as `securetcp`.
//!
//! Only the server's calls are timed (`ServerConnection::new`, `read_tls`,
//! `process_new_packets`, `write_tls`); the client's work is done between the timed slices.
//! Compare with `loadgen connect --pid` (server CPU per connection) to see what the reactor adds.
//!
//! Run: `taskset -c 0 cargo bench --bench handshake_ceiling`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};

fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>, Arc<ClientConfig>) {
    let dir = std::env::temp_dir().join(format!("securetcp-ceiling-{}", std::process::id()));
    let files = securetcp::tls::generate_dev_certs(&dir, &[]).expect("certificates");
    let server =
        securetcp::tls::server_config(&files.cert, &files.key, None).expect("server config");
    let client = securetcp::tls::client_config(&[&files.ca], None).expect("client config");
    let mut full = (*client).clone();
    full.resumption = rustls::client::Resumption::disabled();
    let _ = std::fs::remove_dir_all(&dir);
    (server, Arc::new(full), client)
}

/// One handshake; returns the time spent in the server's calls.
fn handshake(server_config: &Arc<ServerConfig>, client_config: &Arc<ClientConfig>) -> Duration {
    let mut client = ClientConnection::new(
        Arc::clone(client_config),
        ServerName::try_from("localhost").unwrap(),
    )
    .expect("client");
    let mut spent = Duration::ZERO;
    let start = Instant::now();
    let mut server = ServerConnection::new(Arc::clone(server_config)).expect("server");
    spent += start.elapsed();
    let mut to_server = Vec::new();
    let mut to_client = Vec::new();
    while client.is_handshaking() || server.is_handshaking() || server.wants_write() {
        to_server.clear();
        while client.wants_write() {
            client.write_tls(&mut to_server).unwrap();
        }
        let start = Instant::now();
        let mut input = &to_server[..];
        while !input.is_empty() {
            server.read_tls(&mut input).unwrap();
            server.process_new_packets().expect("server handshake");
        }
        to_client.clear();
        while server.wants_write() {
            server.write_tls(&mut to_client).unwrap();
        }
        spent += start.elapsed();
        let mut input = &to_client[..];
        while !input.is_empty() {
            client.read_tls(&mut input).unwrap();
            client.process_new_packets().expect("client handshake");
        }
        if to_server.is_empty() && to_client.is_empty() {
            break;
        }
    }
    spent
}

fn ceiling(c: &mut Criterion) {
    let (server, full, resuming) = configs();
    let mut group = c.benchmark_group("rustls_server_side");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("handshake_full", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| handshake(&server, &full)).sum())
    });
    handshake(&server, &resuming); // a ticket for the resumed runs
    group.bench_function("handshake_resumed", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| handshake(&server, &resuming)).sum())
    });
    group.finish();
}

criterion_group!(benches, ceiling);
criterion_main!(benches);
