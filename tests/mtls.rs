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

/// One TLS session to `server` on `config` (whose session cache carries tickets from one
/// connection to the next, as any rustls client's does): the greeting line, or the error that
/// ended the handshake, and whether the handshake was a resumption.
fn greeting_over(
    server: &Server,
    config: &std::sync::Arc<rustls::ClientConfig>,
) -> (Result<String, String>, bool) {
    use std::io::{BufRead, BufReader};
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = rustls::ClientConnection::new(std::sync::Arc::clone(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(server.addr()).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(rustls::StreamOwned::new(tls, tcp));
    let mut line = String::new();
    let greeting = reader
        .read_line(&mut line)
        .map_err(|e| e.to_string())
        .and_then(|n| match n {
            0 => Err("closed before the greeting".to_string()),
            _ => Ok(line.trim_end().to_string()),
        });
    // The server's ticket comes just after the greeting's flight: one request makes sure the
    // client has read it before this connection ends.
    if greeting.is_ok() {
        use std::io::Write;
        let stream = reader.get_mut();
        stream.write_all(b"+ 1 2\n").unwrap();
        let mut reply = String::new();
        reader.read_line(&mut reply).unwrap();
        assert_eq!(reply, "OK 3\n");
    }
    let resumed = reader.get_ref().conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    (greeting, resumed)
}

/// A client on exactly `version` trusting `ca`, presenting `cert` and `key`.
fn client_on(
    version: &'static rustls::SupportedProtocolVersion,
    ca: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let chain = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let config = rustls::ClientConfig::builder_with_provider(securetcp::tls::provider())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(key).unwrap())
        .unwrap();
    std::sync::Arc::new(config)
}

#[test]
fn a_tls13_session_from_before_a_client_ca_change_does_not_log_in_by_resumption() {
    no_login_by_resumption_after_a_client_ca_change(&rustls::version::TLS13);
}

#[test]
fn a_tls12_session_from_before_a_client_ca_change_does_not_log_in_by_resumption() {
    no_login_by_resumption_after_a_client_ca_change(&rustls::version::TLS12);
}

fn no_login_by_resumption_after_a_client_ca_change(
    version: &'static rustls::SupportedProtocolVersion,
) {
    // Issue 31 item 1 (the class of CVE-2025-68121): the server trusts caA, mallory (signed by
    // caA) connects and keeps her TLS 1.3 ticket. The operator replaces the CA file with caB and
    // sends SIGHUP. A full handshake with mallory's certificate is refused, and so must be
    // resuming the old session.
    let (server, files) = mtls_server();
    let mallory = client_on(version, &files.ca, &files.client_cert, &files.client_key);
    let (greeting, _) = greeting_over(&server, &mallory);
    assert!(greeting.unwrap().starts_with("HELLO calc"));
    // The control: before the reload she does resume (else this test could not fail).
    let (greeting, resumed) = greeting_over(&server, &mallory);
    assert!(greeting.unwrap().starts_with("HELLO calc"));
    assert!(resumed, "the client never resumed: the test proves nothing");

    let elsewhere = TestDir::new("ca-b");
    let other = generate_dev_certs(&elsewhere.0, &[]).unwrap();
    // The server's own certificate still comes from caA: the clients keep trusting it.
    let server_ca = elsewhere.0.join("server-ca.pem");
    std::fs::copy(&files.ca, &server_ca).unwrap();
    std::fs::copy(&other.ca, &files.ca).unwrap();
    server.signal(libc::SIGHUP);
    server.wait_for_log("event=reload ok=1");

    let (greeting, resumed) = greeting_over(&server, &mallory);
    assert!(
        greeting.is_err(),
        "mallory logged in after her CA was removed (resumed: {resumed}): {greeting:?}"
    );
    assert!(!resumed, "a session from the old trust was resumed");
    server.wait_for_log("reason=tls-error");

    // The new CA's clients are served.
    let (greeting, _) = greeting_over(
        &server,
        &client_on(version, &server_ca, &other.client_cert, &other.client_key),
    );
    assert!(greeting.unwrap().starts_with("HELLO calc"));
}

#[test]
fn a_client_certificate_that_expired_since_its_session_began_does_not_log_in_by_resumption() {
    // The attack round of issue 31: mallory's certificate ran out after she logged in; a full
    // handshake was refused ("certificate expired"), but resuming the session was welcomed, and
    // every resumption renewed the ticket, forever.
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let dir = TestDir::new("expired-resume");
        let ca = common::certs::TestCa::new("test client CA");
        let ca_file = ca.write(&dir.0.join("ca.pem"));
        let (cert, key) = ca.server(&dir.0, "server", -1, 300);
        let (client_cert, client_key) = ca.client_for_secs(&dir.0, "mallory", "mallory", 2);
        let args = [
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--client-ca",
            ca_file.to_str().unwrap(),
        ];
        let server = Server::start_in(dir, &["127.0.0.1", "0"], &args, 1);
        let mallory = client_on(version, &ca_file, &client_cert, &client_key);
        let (greeting, _) = greeting_over(&server, &mallory);
        assert!(greeting.unwrap().starts_with("HELLO calc"));
        // Her certificate's notAfter passes (a real clock is the point here).
        std::thread::sleep(std::time::Duration::from_secs(3));
        let (greeting, resumed) = greeting_over(&server, &mallory);
        assert!(
            resumed,
            "{version:?}: the client did not resume: the test proves nothing"
        );
        assert!(
            greeting.is_err(),
            "{version:?}: an expired certificate logged in by resumption: {greeting:?}"
        );
        server.wait_for_log("reason=tls-error");
        let log = server.log();
        assert!(log.contains("error=\"certificate expired on "), "{log}");
    }
}

#[test]
fn two_reloads_close_together_install_the_files_read_last() {
    // The attack round of issue 31: SIGHUP while a slow read of the old --client-ca (caA) runs,
    // the file replaced by caB, SIGHUP again: the second reload finished first, the first one
    // last, and caA was back in force with two `reload ok=1` lines.
    let (server, files) = mtls_server();
    let mallory = client_on(
        &rustls::version::TLS13,
        &files.ca,
        &files.client_cert,
        &files.client_key,
    );
    let (greeting, _) = greeting_over(&server, &mallory);
    assert!(greeting.unwrap().starts_with("HELLO calc"));
    // caA behind many lines of text the PEM reader must pass over: a slow first read.
    let elsewhere = TestDir::new("ca-b-race");
    let other = generate_dev_certs(&elsewhere.0, &[]).unwrap();
    let mut slow = std::fs::read(&files.ca).unwrap();
    let padding =
        b"a comment line that the PEM reader skips, as it skips any text between blocks\n";
    for _ in 0..(160 << 20) / padding.len() {
        slow.extend_from_slice(padding);
    }
    let slow_path = elsewhere.0.join("slow-ca.pem");
    std::fs::write(&slow_path, &slow).unwrap();
    std::fs::rename(&slow_path, &files.ca).unwrap();
    server.signal(libc::SIGHUP);
    std::thread::sleep(std::time::Duration::from_millis(20)); // the first reload is reading
    let fast_path = elsewhere.0.join("fast-ca.pem");
    std::fs::copy(&other.ca, &fast_path).unwrap();
    std::fs::rename(&fast_path, &files.ca).unwrap();
    server.signal(libc::SIGHUP);
    server.wait_for_log_count("event=reload ok=1", 2);
    let (greeting, resumed) = greeting_over(&server, &mallory);
    assert!(!resumed);
    assert!(
        greeting.is_err(),
        "the CA replaced by the second reload is in force again: {greeting:?}"
    );
}

#[test]
fn a_client_ca_file_with_hundreds_of_cas_is_served_not_aborted() {
    // The attack round of issue 31: a --client-ca bundle of 720 CAs made the CertificateRequest's
    // list of CA names longer than its 16-bit length field, rustls panicked while encoding it,
    // and the process aborted (exit 134) at the first handshake, every session lost.
    let (mut server, files) = mtls_server();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut bundle = std::fs::read_to_string(&files.ca).unwrap();
    for i in 0..1000 {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("a filler CA of a bundle as large as a system trust store, with a long name as some have, number {i}"),
        );
        bundle.push_str(&params.self_signed(&key).unwrap().pem());
    }
    std::fs::write(&files.ca, bundle).unwrap();
    server.signal(libc::SIGHUP);
    server.wait_for_log("event=reload ok=1");
    let mallory = client_on(
        &rustls::version::TLS13,
        &server.dir.0.join("certs/ca.pem"),
        &files.client_cert,
        &files.client_key,
    );
    for _ in 0..2 {
        let (greeting, _) = greeting_over(&server, &mallory);
        assert!(greeting.unwrap().starts_with("HELLO calc"));
    }
    server.stop_with(libc::SIGTERM); // exit 0: still the process that started
}
