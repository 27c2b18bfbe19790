//! Operations: certificate reload on SIGHUP, and (below) what an operator runs the server with.
//! Real binary, real TLS, loopback.

mod common;

use std::path::Path;

use common::{Server, TestDir, WAIT};
use securetcp::client::{ClientError, ClientOptions, Session};

/// A CA and a server certificate for 127.0.0.1, made for the test in `dir`.
fn make_ca(dir: &Path) -> securetcp::tls::DevCerts {
    securetcp::tls::generate_dev_certs(dir, &["127.0.0.1".to_string()]).unwrap()
}

fn connect_trusting(server: &Server, ca: &Path) -> Result<Session, ClientError> {
    let options = ClientOptions {
        ca: Some(ca.to_path_buf()),
        ..ClientOptions::default()
    };
    let session = Session::connect("127.0.0.1", server.addr().port(), &options)?;
    session.set_read_timeout(Some(WAIT)).unwrap();
    Ok(session)
}

#[test]
fn sighup_reloads_the_certificate_for_new_connections_only() {
    let (one, two) = (TestDir::new("ca-one"), TestDir::new("ca-two"));
    let (first, second) = (make_ca(&one.0), make_ca(&two.0));
    let live = TestDir::new("reload");
    let (cert, key) = (live.0.join("server.pem"), live.0.join("server.key"));
    std::fs::copy(&first.cert, &cert).unwrap();
    std::fs::copy(&first.key, &key).unwrap();
    let server = Server::start(&[
        "--workers",
        "2",
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    let mut old = connect_trusting(&server, &first.ca).unwrap();
    assert_eq!(old.request("+ 1 1").unwrap(), "OK 2");

    // The files change; SIGHUP: new connections get the new certificate, on every worker.
    std::fs::copy(&second.cert, &cert).unwrap();
    std::fs::copy(&second.key, &key).unwrap();
    server.signal(libc::SIGHUP);
    server.wait_for_log("event=reload ok=1");
    for _ in 0..6 {
        match connect_trusting(&server, &first.ca) {
            Err(ClientError::Untrusted(_)) => {}
            other => panic!("the old certificate is still served: {:?}", other.err()),
        }
        let mut new = connect_trusting(&server, &second.ca).unwrap();
        assert_eq!(new.request("2 * 3").unwrap(), "OK 6");
    }
    // The connection opened before goes on untouched.
    assert_eq!(old.request("+ 2 2").unwrap(), "OK 4");

    // A broken key: the reload fails, the log says why, the last good set stays.
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nnot a key\n").unwrap();
    server.signal(libc::SIGHUP);
    let log = server.wait_for_log("event=reload ok=0");
    let line = log
        .lines()
        .find(|l| l.contains("event=reload ok=0"))
        .unwrap();
    assert!(line.contains("error=\""), "{line}");
    let mut still = connect_trusting(&server, &second.ca).unwrap();
    assert_eq!(still.request("3 * 3").unwrap(), "OK 9");
    assert_eq!(old.request("+ 3 3").unwrap(), "OK 6");
}

#[test]
fn sighup_reloads_the_development_certificates_too() {
    let server = Server::start(&[]);
    let mut before = server.connect();
    // Another start in the same directory made new development certificates meanwhile.
    let other = TestDir::new("ca-other");
    let fresh = make_ca(&other.0);
    for (from, to) in [
        (&fresh.cert, "certs/server.pem"),
        (&fresh.key, "certs/server.key"),
        (&fresh.ca, "certs/ca.pem"),
    ] {
        std::fs::copy(from, server.dir.0.join(to)).unwrap();
    }
    server.signal(libc::SIGHUP);
    server.wait_for_log("event=reload ok=1");
    let mut after = connect_trusting(&server, &fresh.ca).unwrap();
    assert_eq!(after.request("+ 1 2").unwrap(), "OK 3");
    assert_eq!(before.request("+ 2 2").unwrap(), "OK 4");
}

/// An HTTP exchange on a raw socket: what the endpoint answered, head and body.
fn http(addr: std::net::SocketAddr, request: &[u8]) -> (String, String) {
    use std::io::Write;
    let mut stream = common::raw_tcp(addr);
    stream.write_all(request).unwrap();
    let (bytes, _) = common::read_to_end_timed(&mut stream);
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_string(), body.to_string())
}

fn scrape(addr: std::net::SocketAddr) -> prometheus_parse::Scrape {
    let (head, body) = http(addr, b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(length, body.len());
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// The value of `metric` with `label=value` (or the only one): counters, gauges.
fn value(scrape: &prometheus_parse::Scrape, metric: &str, label: Option<(&str, &str)>) -> f64 {
    use prometheus_parse::Value;
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("no {metric} {label:?}"));
    match sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        ref other => panic!("{metric}: {other:?}"),
    }
}

#[test]
fn metrics_count_known_traffic_exactly_across_workers() {
    use std::io::Write;
    let (server, metrics) = Server::start_with_metrics(&["--workers", "2"]);
    // Three clients, four requests each; one of them quits (`q` is a request too).
    let mut clients: Vec<Session> = (0..3).map(|_| server.connect()).collect();
    for c in &mut clients {
        for _ in 0..4 {
            assert_eq!(c.request("+ 1 1").unwrap(), "OK 2");
        }
    }
    assert_eq!(clients[0].request("q").unwrap(), "BYE session ended");
    drop(clients.remove(0));
    // One that is not TLS at all: a failed handshake, closed as a TLS error.
    let mut noise = common::raw_tcp(server.addr());
    noise.write_all(b"hello\n").unwrap();
    let _ = common::read_to_end_timed(&mut noise);
    server.wait_for_log("reason=tls-error");
    server.wait_for_log("reason=quit");

    let s = scrape(metrics);
    assert_eq!(value(&s, "securetcp_connections", None), 2.0);
    assert_eq!(value(&s, "securetcp_connections_total", None), 4.0);
    assert_eq!(
        value(&s, "securetcp_handshakes_total", Some(("result", "ok"))),
        3.0
    );
    assert_eq!(
        value(&s, "securetcp_handshakes_total", Some(("result", "failed"))),
        1.0
    );
    assert_eq!(value(&s, "securetcp_requests_total", None), 13.0);
    assert_eq!(
        value(&s, "securetcp_closes_total", Some(("reason", "quit"))),
        1.0
    );
    assert_eq!(
        value(&s, "securetcp_closes_total", Some(("reason", "tls-error"))),
        1.0
    );
    assert_eq!(
        value(&s, "securetcp_closes_total", Some(("reason", "busy"))),
        0.0
    );
    assert!(value(&s, "securetcp_bytes_received_total", None) > 13.0 * 6.0);
    assert!(value(&s, "securetcp_bytes_sent_total", None) > 12.0 * 5.0);
    assert_eq!(value(&s, "securetcp_log_dropped_lines_total", None), 0.0);
    assert_eq!(value(&s, "securetcp_workers", None), 2.0);
    let histogram = s
        .samples
        .iter()
        .find(|x| x.metric == "securetcp_handshake_seconds")
        .unwrap();
    match &histogram.value {
        prometheus_parse::Value::Histogram(buckets) => {
            let all = buckets.iter().find(|b| b.less_than.is_infinite()).unwrap();
            assert_eq!(all.count, 3.0);
        }
        other => panic!("{other:?}"),
    }
    // Scrapes are not clients: a second one sees the same counts.
    let again = scrape(metrics);
    assert_eq!(value(&again, "securetcp_connections_total", None), 4.0);
}

#[test]
fn metrics_answers_404_elsewhere_and_400_to_what_is_not_http() {
    let (server, metrics) = Server::start_with_metrics(&["--service", "chat"]);
    let (head, _) = http(metrics, b"GET / HTTP/1.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 404 Not Found"), "{head}");
    let (head, _) = http(metrics, b"\x16\x03\x01\x00\x05hello\r\n");
    assert!(head.starts_with("HTTP/1.1 400 Bad Request"), "{head}");
    let (head, _) = http(metrics, b"+ 3 4\n");
    assert!(head.starts_with("HTTP/1.1 400 Bad Request"), "{head}");
    // Chat members are counted in the whole room.
    let mut alice = server.connect();
    assert!(alice.request("name alice").unwrap().starts_with("OK"));
    assert_eq!(value(&scrape(metrics), "securetcp_chat_members", None), 1.0);
}

#[test]
fn metrics_head_is_a_get_without_a_body_and_other_methods_are_told_what_is_allowed() {
    // Issue 31 item 11: HEAD and OPTIONS got `405` with a body and no `Allow` header.
    let (_server, metrics) = Server::start_with_metrics(&[]);
    let (head, body) = http(metrics, b"HEAD /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(head.contains("Content-Length: "), "{head}");
    assert_eq!(body, "", "HEAD got a body");
    for method in ["OPTIONS", "POST", "DELETE"] {
        let request = format!("{method} /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
        let (head, _) = http(metrics, request.as_bytes());
        assert!(
            head.starts_with("HTTP/1.1 405 Method Not Allowed"),
            "{head}"
        );
        assert!(head.contains("\r\nAllow: GET, HEAD"), "{method}: {head}");
    }
}

#[test]
fn max_per_ip_turns_the_next_away_and_frees_the_place_again() {
    let server = Server::start(&["--workers", "2", "--max-per-ip", "2"]);
    let mut first = server.connect();
    let _second = server.connect();
    match Session::connect("127.0.0.1", server.addr().port(), &server.options()) {
        Err(ClientError::Turned(reason)) => {
            assert_eq!(reason, "too many connections from your address")
        }
        Err(other) => panic!("expected per-ip, got {other}"),
        Ok(_) => panic!("a third connection from one address was served"),
    }
    server.wait_for_log("reason=per-ip");
    assert_eq!(first.request("q").unwrap(), "BYE session ended");
    drop(first);
    server.wait_for_log("reason=quit");
    let mut next = server.connect();
    assert_eq!(next.request("1 + 1").unwrap(), "OK 2");
}

#[test]
fn notify_socket_hears_ready_then_stopping() {
    use std::os::unix::net::UnixDatagram;
    use std::process::Command;
    let dir = TestDir::new("notify");
    let path = dir.0.join("notify.sock");
    let manager = UnixDatagram::bind(&path).unwrap();
    manager.set_read_timeout(Some(WAIT)).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_securetcp"));
    command.env("NOTIFY_SOCKET", &path);
    let mut server = Server::launch(
        command,
        dir,
        &["127.0.0.1", "0"],
        &["--workers", "2"],
        1,
        None,
    );
    let mut buf = [0u8; 256];
    let n = manager.recv(&mut buf).expect("READY=1 once listening");
    assert_eq!(&buf[..n], b"READY=1");
    // Ready means ready: a client is served.
    assert_eq!(server.connect().request("+ 1 1").unwrap(), "OK 2");
    server.signal(libc::SIGTERM);
    let n = manager.recv(&mut buf).expect("STOPPING=1 at shutdown");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert_eq!(server.wait_exit(WAIT).code(), Some(0));
}

#[test]
fn socket_activation_serves_the_socket_passed_as_fd_3() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    use std::process::Command;
    // The socket a service manager would have bound: the server must not bind its own.
    let passed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = passed.local_addr().unwrap().port();
    let fd = passed.as_raw_fd();
    // `sh` sets LISTEN_PID to its own pid and execs the server, which keeps that pid.
    let mut command = Command::new("sh");
    command.args([
        "-c",
        &format!(
            "LISTEN_PID=$$ LISTEN_FDS=1 exec {} --workers 2 \"$@\"",
            env!("CARGO_BIN_EXE_securetcp")
        ),
        "securetcp",
    ]);
    // SAFETY: between fork and exec only dup2 and fcntl (async-signal-safe) run: the socket
    // becomes fd 3, kept open across exec (dup2 onto itself would not clear close-on-exec).
    unsafe {
        command.pre_exec(move || {
            if fd != 3 && libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = Server::launch(command, TestDir::new("activated"), &[], &[], 1, None);
    assert_eq!(server.addr().port(), port, "it serves the passed socket");
    drop(passed); // only the server holds it now
    for _ in 0..4 {
        let mut s = server.connect();
        assert_eq!(s.request("6 * 7").unwrap(), "OK 42");
    }
}

#[test]
fn rate_limit_reads_later_but_answers_everything_in_order() {
    let server = Server::start(&["--workers", "2", "--rate-limit", "50"]);
    let mut s = server.connect();
    let started = std::time::Instant::now();
    // 150 requests written at once: 50 may go at once (the burst), the rest at 50 a second.
    let burst: String = (0..150).map(|i| format!("{i} + 1\n")).collect();
    s.transport.write_all(burst.as_bytes()).unwrap();
    for i in 0..150 {
        assert_eq!(s.read_line().unwrap().unwrap(), format!("OK {}", i + 1));
    }
    let took = started.elapsed();
    // 100 past the burst at 50/s: two seconds; wide margins, this is no timing benchmark.
    assert!(
        took >= std::time::Duration::from_millis(1500),
        "{took:?}: not limited"
    );
    assert!(took < std::time::Duration::from_secs(8), "{took:?}");
    // Nothing was refused or lost, and the connection goes on.
    assert_eq!(s.request("q").unwrap(), "BYE session ended");
    assert!(!server.log().contains("reason=reset"));
}
