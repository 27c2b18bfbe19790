//! The development certificates as verifiers nobody here wrote judge them, at their strictest
//! (SPEC "Trust at the edges"): `openssl verify -x509_strict` and Python's `ssl` module with
//! `VERIFY_X509_STRICT` (what Python 3.13's default context turns on). Both want the Authority
//! and Subject Key Identifiers of RFC 5280.

mod common;

use std::process::Command;

use common::{Server, TestDir};
use securetcp::tls::generate_dev_certs;

#[test]
fn openssl_strict_verify_accepts_the_server_and_client_certificates() {
    if !common::require_program("openssl", "openssl") {
        return;
    }
    let dir = TestDir::new("strict-openssl");
    let files = generate_dev_certs(&dir.0, &[]).unwrap();
    // server.pem holds the chain; `openssl verify` checks the first certificate of the file.
    for leaf in [&files.cert, &files.client_cert] {
        let out = Command::new("openssl")
            .args(["verify", "-x509_strict", "-CAfile"])
            .arg(&files.ca)
            .arg(leaf)
            .output()
            .expect("run openssl");
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "openssl verify -x509_strict {}: {said}",
            leaf.display()
        );
    }
    // The CA itself, checked as its own anchor.
    let out = Command::new("openssl")
        .args(["verify", "-x509_strict", "-CAfile"])
        .arg(&files.ca)
        .arg(&files.ca)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "the CA: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_strict_python_client_connects_to_a_fresh_server_and_reads_the_greeting() {
    if !common::require_program("python3", "python3") {
        return;
    }
    let server = Server::start(&[]);
    let script = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
ctx.verify_flags |= ssl.VERIFY_X509_STRICT
with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=20) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        print(tls.makefile("r").readline().strip())
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(server.ca())
        .arg(server.addr().port().to_string())
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("HELLO "),
        "python3 strict client: stdout {stdout:?}, stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
