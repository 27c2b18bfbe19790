//! Two instances behind a real HAProxy (Debian's package; `.ci/run` installs it) in TCP mode:
//! TLS passes through, `send-proxy-v2` names each client, health checks (v2 `LOCAL`) stay out of
//! the log, and when one instance is killed every new client is still served by the other.

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, TestDir};
use securetcp::client::Session;

const WAIT: Duration = Duration::from_secs(15);

struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// HAProxy in front of `backends`, as `scripts/cluster.sh` configures it; returns it and the
/// front address once it accepts.
fn haproxy(dir: &TestDir, backends: &[SocketAddr]) -> (Haproxy, SocketAddr) {
    let front = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap();
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, addr)| {
            format!("  server s{i} {addr} send-proxy-v2 check inter 200ms fall 1 rise 1\n")
        })
        .collect();
    let config = format!(
        "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n  \
         retries 2\n  option redispatch\n\
         frontend front\n  bind {front}\n  default_backend securetcp\n\
         backend securetcp\n  balance roundrobin\n{servers}"
    );
    let path = dir.0.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let child = Command::new("haproxy")
        .arg("-f")
        .arg(&path)
        .arg("-db")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy runs (Debian package haproxy; .ci/run installs it)");
    let start = Instant::now();
    while std::net::TcpStream::connect(front).is_err() {
        assert!(start.elapsed() < WAIT, "haproxy did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Haproxy(child), front)
}

/// One calc request through the front; the connection's own address comes back.
fn served(front: SocketAddr, ca: &std::path::Path) -> SocketAddr {
    let options = securetcp::client::ClientOptions {
        ca: Some(ca.to_path_buf()),
        ..Default::default()
    };
    let mut session = Session::connect("127.0.0.1", front.port(), &options)
        .unwrap_or_else(|e| panic!("not served through {front}: {e}"));
    session.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(session.request("+ 20 22").unwrap(), "OK 42");
    session.local_addr().unwrap()
}

#[test]
fn behind_haproxy_every_new_client_is_served_when_an_instance_dies() {
    if !common::require_program("haproxy", "haproxy") {
        return;
    }
    let a = Server::start(&["--proxy-protocol"]);
    let b = Server::start_in(
        TestDir::borrowed(&a.dir.0),
        &["127.0.0.1", "0"],
        &["--proxy-protocol", "--log", "b.log"],
        1,
    );
    let dir = TestDir::new("haproxy");
    let (_haproxy, front) = haproxy(&dir, &[a.addr(), b.addr()]);
    // Both instances serve, and each logs the real client, with the balancer as proxy=.
    let mut clients = Vec::new();
    for _ in 0..6 {
        clients.push(served(front, &a.ca()));
    }
    let log_a = a.log();
    let log_b = std::fs::read_to_string(a.dir.0.join("b.log")).unwrap();
    for client in &clients {
        let line = format!("peer={client} proxy=127.0.0.1:");
        assert!(
            log_a.contains(&line) || log_b.contains(&line),
            "{client} not logged:\n{log_a}\n{log_b}"
        );
    }
    assert!(log_a.contains("req=\"+ 20 22\"") && log_b.contains("req=\"+ 20 22\""));
    // Health checks every 200 ms meanwhile (a v2 LOCAL header, then gone): none in the logs.
    // Every open line there is a client's, named by HAProxy (the test's first probe of the
    // front, which closed at once, included).
    std::thread::sleep(Duration::from_millis(600));
    let logs = a.log() + &std::fs::read_to_string(a.dir.0.join("b.log")).unwrap();
    for line in logs.lines().filter(|l| l.contains("event=open")) {
        assert!(
            line.contains(" proxy=127.0.0.1:"),
            "a check was logged: {line}"
        );
    }
    assert!(
        logs.matches("event=open").count() <= clients.len() + 1,
        "{logs}"
    );

    // One instance dies without a word: every new client is still served.
    let mut a = a;
    a.signal(libc::SIGKILL);
    let _ = a.wait_exit(WAIT);
    for _ in 0..20 {
        served(front, &b.ca());
    }
}
