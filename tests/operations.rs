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
