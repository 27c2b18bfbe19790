//! Certificates in time (SPEC "Trust at the edges"): a server certificate out of its validity
//! period is refused at SIGHUP and the previous set kept; one that expires within 14 days (or
//! has) is one warning on stderr and one `event=cert-expiry` line, at start and at each reload;
//! `--metrics` shows its notAfter. Real binary, certificates from a CA of the test's own.

mod common;

use std::io::Write;
use std::path::Path;

use common::certs::{TestCa, midnight};
use common::{Server, TestDir, WAIT};
use securetcp::client::{ClientOptions, Session};

/// The expiry gauge as `/metrics` shows it now.
fn expiry_gauge(metrics: std::net::SocketAddr) -> Option<i64> {
    let mut stream = common::raw_tcp(metrics);
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let (bytes, _) = common::read_to_end_timed(&mut stream);
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("securetcp_certificate_expiry_timestamp_seconds "))
        .map(|v| v.parse().unwrap())
}

/// A request over a fresh connection that verifies the server against `ca`.
fn served(server: &Server, ca: &Path) -> Result<String, String> {
    let options = ClientOptions {
        ca: Some(ca.to_path_buf()),
        ..ClientOptions::default()
    };
    let mut s =
        Session::connect("127.0.0.1", server.addr().port(), &options).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.request("+ 1 2").map_err(|e| e.to_string())
}

/// Puts `from`'s certificate and key in place of the served ones, sends SIGHUP, and returns the
/// `n`-th (from 1) `event=reload` line.
fn reload_with(server: &Server, live: (&Path, &Path), from: (&Path, &Path), n: usize) -> String {
    std::fs::copy(from.0, live.0).unwrap();
    std::fs::copy(from.1, live.1).unwrap();
    server.signal(libc::SIGHUP);
    let log = server.wait_for_log_count("event=reload ", n);
    log.lines()
        .filter(|l| l.contains("event=reload "))
        .nth(n - 1)
        .unwrap()
        .to_string()
}

#[test]
fn out_of_date_certificates_are_refused_at_reload_and_near_ends_are_warned_of() {
    let dir = TestDir::new("cert-expiry");
    let ca = TestCa::new("expiry test CA");
    let ca_file = ca.write(&dir.0.join("ca.pem"));
    let soon = ca.server(&dir.0, "soon", -30, 10);
    let long = ca.server(&dir.0, "long", -1, 300);
    let expired = ca.server(&dir.0, "expired", -60, -2);
    let not_yet = ca.server(&dir.0, "not-yet", 3, 300);
    let last_days = ca.server(&dir.0, "last-days", -30, 3);
    let live = (dir.0.join("server.pem"), dir.0.join("server.key"));
    std::fs::copy(&soon.0, &live.0).unwrap();
    std::fs::copy(&soon.1, &live.1).unwrap();
    let (mut server, metrics) = Server::start_with_metrics(&[
        "--cert",
        live.0.to_str().unwrap(),
        "--key",
        live.1.to_str().unwrap(),
    ]);
    let live = (live.0.as_path(), live.1.as_path());

    // At start: 10 days left, one warning, the gauge at its notAfter.
    let log = server.wait_for_log("event=cert-expiry");
    let line = log
        .lines()
        .find(|l| l.contains("event=cert-expiry"))
        .unwrap();
    assert!(
        line.contains(" days_left=9") || line.contains(" days_left=10"),
        "{line}"
    );
    assert_eq!(expiry_gauge(metrics), Some(midnight(10)));
    assert_eq!(served(&server, &ca_file).unwrap(), "OK 3");

    // A long-lived one: reloaded, no warning, the gauge moves.
    let line = reload_with(&server, live, (&long.0, &long.1), 1);
    assert!(line.ends_with("event=reload ok=1"), "{line}");
    assert_eq!(expiry_gauge(metrics), Some(midnight(300)));

    // An expired one: refused, with its date; the previous set stays (clients that verify
    // still get through) and so does the gauge.
    let line = reload_with(&server, live, (&expired.0, &expired.1), 2);
    assert!(line.contains("event=reload ok=0 error=\""), "{line}");
    let date = securetcp_date(midnight(-2));
    assert!(line.contains(&format!("expired on {date}")), "{line}");
    assert_eq!(served(&server, &ca_file).unwrap(), "OK 3");
    assert_eq!(expiry_gauge(metrics), Some(midnight(300)));

    // One not valid yet: refused too.
    let line = reload_with(&server, live, (&not_yet.0, &not_yet.1), 3);
    assert!(line.contains("event=reload ok=0"), "{line}");
    assert!(line.contains("not valid before"), "{line}");
    assert_eq!(served(&server, &ca_file).unwrap(), "OK 3");

    // Three days left: taken, and warned of a second time.
    let line = reload_with(&server, live, (&last_days.0, &last_days.1), 4);
    assert!(line.ends_with("event=reload ok=1"), "{line}");
    let log = server.wait_for_log_count("event=cert-expiry", 2);
    assert_eq!(log.matches("event=cert-expiry").count(), 2, "{log}");
    assert_eq!(expiry_gauge(metrics), Some(midnight(3)));

    let stderr = {
        server.signal(libc::SIGTERM);
        let _ = server.wait_exit(WAIT);
        server.stderr()
    };
    assert_eq!(
        stderr.matches("warning: the certificate").count(),
        2,
        "{stderr}"
    );
    assert!(
        stderr.contains("(in 2 days)") || stderr.contains("(in 3 days)"),
        "{stderr}"
    );
}

#[test]
fn an_expired_certificate_at_start_is_warned_of_not_refused() {
    let dir = TestDir::new("cert-expired-start");
    let ca = TestCa::new("expired start CA");
    let (cert, key) = ca.server(&dir.0, "server", -60, -5);
    let mut server = Server::start(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    let log = server.wait_for_log("event=cert-expiry");
    let line = log
        .lines()
        .find(|l| l.contains("event=cert-expiry"))
        .unwrap();
    assert!(line.contains(" days_left=-"), "{line}");
    assert!(
        line.contains(&format!("not_after={}", securetcp_date(midnight(-5)))),
        "{line}"
    );
    // Served all the same: the handshake reaches our client, which refuses the date.
    let ca_file = ca.write(&dir.0.join("ca.pem"));
    let refused = served(&server, &ca_file).unwrap_err();
    assert!(refused.contains("expired"), "{refused}");
    server.signal(libc::SIGTERM);
    let _ = server.wait_exit(WAIT);
    let stderr = server.stderr();
    assert!(stderr.contains("expired on"), "{stderr}");
    assert_eq!(
        stderr.matches("warning: the certificate").count(),
        1,
        "{stderr}"
    );
}

/// Unix seconds as the server writes dates: `2026-01-01T00:00:00Z`.
fn securetcp_date(secs: i64) -> String {
    let (y, m, d) = securetcp::log::civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}T00:00:00Z")
}

#[test]
fn an_intermediate_ca_that_ends_first_ends_the_chain() {
    let dir = TestDir::new("cert-expiry-chain");
    let root = TestCa::new("chain root CA");
    let root_file = root.write(&dir.0.join("root.pem"));
    // The server's own certificate has 300 days; the intermediate sent with it, 5; another, none.
    let short = root.intermediate("short intermediate", -30, 5);
    let (cert, key) = short.server(&dir.0, "server", -1, 300);
    let (mut server, metrics) = Server::start_with_metrics(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    let log = server.wait_for_log("event=cert-expiry");
    let line = log
        .lines()
        .find(|l| l.contains("event=cert-expiry"))
        .unwrap();
    assert!(line.contains("CN=short intermediate"), "{line}");
    assert_eq!(expiry_gauge(metrics), Some(midnight(5)));
    assert_eq!(served(&server, &root_file).unwrap(), "OK 3");

    // An expired intermediate is refused at reload, though the server certificate is in time.
    let gone = root.intermediate("expired intermediate", -60, -1);
    let stale = gone.server(&dir.0, "stale", -1, 300);
    let line = reload_with(&server, (&cert, &key), (&stale.0, &stale.1), 1);
    assert!(line.contains("event=reload ok=0"), "{line}");
    assert!(
        line.contains("(its CA certificate CN=expired intermediate)"),
        "{line}"
    );
    assert!(line.contains("expired on"), "{line}");
    assert_eq!(served(&server, &root_file).unwrap(), "OK 3");
    server.signal(libc::SIGTERM);
    let _ = server.wait_exit(WAIT);
}

#[test]
fn a_certificate_not_valid_yet_at_start_is_warned_of() {
    let dir = TestDir::new("cert-early-start");
    let ca = TestCa::new("early start CA");
    let (cert, key) = ca.server(&dir.0, "server", 2, 300);
    let mut server = Server::start(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    let log = server.wait_for_log("event=cert-expiry");
    let line = log
        .lines()
        .find(|l| l.contains("event=cert-expiry"))
        .unwrap();
    let date = securetcp_date(midnight(2));
    assert!(line.contains(&format!("not_valid_before={date}")), "{line}");
    server.signal(libc::SIGTERM);
    let _ = server.wait_exit(WAIT);
    let stderr = server.stderr();
    assert!(
        stderr.contains(&format!("is not valid before {date}")),
        "{stderr}"
    );
}
