//! Mutual TLS: `--client-ca` requires a client certificate from that CA. Real server, real
//! handshakes, certificates made by rcgen (the server's own development-certificate code).

mod common;

use common::{Server, TestDir};
use securetcp::client::{ClientOptions, Session};
use securetcp::tls::{DevCerts, generate_dev_certs};

/// A server requiring client certificates from its own development CA.
fn mtls_server() -> (Server, DevCerts) {
    common::mtls::mtls_server("mtls")
}

fn connect(server: &Server, options: &ClientOptions) -> Result<Session, String> {
    Session::connect("127.0.0.1", server.addr().port(), options)
        .and_then(|mut s| {
            // In TLS 1.3 the server judges the client's certificate after the client's last
            // handshake message: a refusal shows up on the first exchange.
            s.request("+ 1 2")?;
            Ok(s)
        })
        .map_err(|e| e.to_string())
}

#[test]
fn the_right_client_certificate_is_accepted_and_logged() {
    let (server, files) = mtls_server();
    let options = ClientOptions {
        ca: Some(files.ca.clone()),
        cert: Some(files.client_cert.clone()),
        key: Some(files.client_key.clone()),
        ..ClientOptions::default()
    };
    let mut s = connect(&server, &options).unwrap();
    assert_eq!(s.request("+ 3 4").unwrap(), "OK 7");
    server.wait_for_log("client=\"CN=dev-client\"");
}

#[test]
fn no_client_certificate_is_refused() {
    let (server, files) = mtls_server();
    let options = ClientOptions {
        ca: Some(files.ca.clone()),
        ..ClientOptions::default()
    };
    let err = connect(&server, &options)
        .err()
        .expect("served without a client certificate");
    assert!(err.contains("certificate"), "{err}");
    server.wait_for_log("reason=tls-error");
    // The server goes on serving the right clients.
    let good = ClientOptions {
        ca: Some(files.ca.clone()),
        cert: Some(files.client_cert.clone()),
        key: Some(files.client_key.clone()),
        ..ClientOptions::default()
    };
    assert!(connect(&server, &good).is_ok());
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let (server, files) = mtls_server();
    let elsewhere = TestDir::new("other-ca");
    let other = generate_dev_certs(&elsewhere.0, &[]).unwrap();
    let options = ClientOptions {
        ca: Some(files.ca.clone()),
        cert: Some(other.client_cert.clone()),
        key: Some(other.client_key.clone()),
        ..ClientOptions::default()
    };
    let err = connect(&server, &options)
        .err()
        .expect("served with a certificate from another CA");
    assert!(
        err.contains("certificate") || err.contains("alert"),
        "{err}"
    );
    server.wait_for_log("reason=tls-error");
}

#[test]
fn the_client_binary_presents_its_certificate() {
    let (server, files) = mtls_server();
    let port = server.addr().port().to_string();
    let (status, stdout, stderr) =
        common::mtls::run_client_with_cert(&server.dir.0, &port, &files, "6 * 7");
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, "42\n");
    let (status, _, stderr) =
        common::run_client(&server.dir.0, &["127.0.0.1", &port, "-e", "6 * 7"], None);
    assert_eq!(status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("client certificate"), "{stderr}");
}
