//! Who says what, against the real binary: look-alike names are one name across workers, a line
//! with a control character goes nowhere, and under mutual TLS the certificate names the client
//! (certificates made here with rcgen, from a CA of the test's own).

mod common;

use std::path::{Path, PathBuf};

use common::{Server, TestDir, WAIT};
use securetcp::client::{ClientOptions, Session};
use securetcp::tls::generate_dev_certs;

fn member(server: &Server, name: &str) -> Session {
    let mut session = server.connect();
    let welcome = session.request(&format!("name {name}")).unwrap();
    assert!(welcome.starts_with("OK welcome"), "{welcome}");
    session
}

#[test]
fn a_forged_line_never_reaches_another_member() {
    let server = Server::start(&["--service", "chat"]);
    let mut bob = member(&server, "bob");
    let mut mallory = member(&server, "mallory");
    assert_eq!(bob.read_line().unwrap().unwrap(), "JOIN mallory");
    let forgeries = [
        "hello\rMSG admin please send me your password",
        "a\0b",
        "\u{1b}[2J",
        "x\u{b}y",
        "x\u{c}y",
        "x\u{7f}",
        "x\u{85}MSG admin hi",
        "x\u{2028}MSG admin hi",
        "x\u{2029}MSG admin hi",
    ];
    for forged in forgeries {
        assert_eq!(
            mallory.request(forged).unwrap(),
            "ERR line contains a control character",
            "{forged:?}"
        );
    }
    // A `\r` before the `\n` is still the line ending, and TAB is text.
    mallory
        .transport
        .write_all(b"still here\r\nand\ttabs\n")
        .unwrap();
    assert_eq!(bob.read_line().unwrap().unwrap(), "MSG mallory still here");
    assert_eq!(bob.read_line().unwrap().unwrap(), "MSG mallory and\ttabs");
    // The log records the refusal, with the forged line escaped.
    let log = server.log();
    assert!(
        log.contains("reply=\"ERR line contains a control character\""),
        "{log}"
    );
    assert!(!log.contains('\r'), "{log}");
}

#[test]
fn every_service_refuses_a_line_with_a_control_character() {
    for service in ["calc", "sum", "quiz"] {
        let server = Server::start(&["--service", service]);
        let mut s = server.connect();
        if service == "quiz" {
            s.read_line().unwrap(); // the first question
        }
        assert_eq!(
            s.request("1 + 1\r+ 2 2").unwrap(),
            "ERR line contains a control character",
            "{service}"
        );
    }
}

#[test]
fn a_name_that_shows_nothing_is_refused_in_the_chat() {
    // Issue 31 item 7: a character fonts draw as nothing, alone or after a member's name, and
    // names made only of combining marks were welcome.
    let server = Server::start(&["--service", "chat"]);
    let _alice = member(&server, "alice");
    let mut other = server.connect();
    for (name, reason) in [
        (
            "\u{1D159}",
            "invisible or format characters (it holds U+1D159)",
        ),
        (
            "alice\u{1D159}",
            "invisible or format characters (it holds U+1D159)",
        ),
        (
            "\u{300}",
            "combining mark without a letter before it (U+0300)",
        ),
        (
            "\u{301}\u{301}",
            "combining mark without a letter before it (U+0301)",
        ),
        (
            "\u{20E3}",
            "combining mark without a letter before it (U+20E3)",
        ),
        (
            "\u{489}",
            "combining mark without a letter before it (U+0489)",
        ),
        ("\u{2603}", "at least one letter or digit"),
    ] {
        let reply = other.request(&format!("name {name}")).unwrap();
        assert!(
            reply.starts_with("ERR name must") && reply.contains(reason),
            "{name:?}: {reply}"
        );
    }
    assert_eq!(
        other.request("who").unwrap(),
        "ERR log in first: name <NAME>"
    );
    assert!(
        other
            .request("name bob")
            .unwrap()
            .starts_with("OK welcome bob")
    );
}

#[test]
fn the_sum_exchange_takes_names_by_the_same_rule_and_logs_none_it_refused() {
    // Issue 31 item 7: `Client of bob<U+202E>;50` was OK, and the bidi override went to the log.
    let server = Server::start(&["--service", "sum", "--name", "Big Server"]);
    let mut s = server.connect();
    for (line, reply) in [
        (
            "Client of bob\u{202E};50",
            "ERR name must not contain invisible or format characters (it holds U+202E)",
        ),
        (
            "Client of \u{1D159};50",
            "ERR name must not contain invisible or format characters (it holds U+1D159)",
        ),
        (
            "Client of \u{301};50",
            "ERR name must not hold a combining mark without a letter before it (U+0301)",
        ),
        (
            "Client of ---;50",
            "ERR name must hold at least one letter or digit",
        ),
        (
            "Client of Ann  Lee;50",
            "ERR name must be 1-64 characters, words separated by single spaces",
        ),
    ] {
        assert_eq!(s.request(line).unwrap(), reply, "{line:?}");
    }
    assert_eq!(
        s.request("Client of Ann Lee;50").unwrap(),
        "OK Server of Big Server;50"
    );
    let log = server.wait_for_log("event=sum");
    assert!(!log.contains('\u{202E}'), "{log}");
    assert_eq!(log.matches("event=sum").count(), 1, "{log}");
}

#[test]
fn a_look_alike_is_refused_while_the_name_is_on_the_other_worker() {
    let server = Server::start(&["--workers", "2", "--service", "chat"]);
    let _alice = member(&server, "alice");
    // The kernel spreads connections over both workers: try enough that both are used.
    for _ in 0..8 {
        for look_alike in ["Alice", "ALICE", "а\u{6c}ice", "ａlice"] {
            let mut s = server.connect();
            assert_eq!(
                s.request(&format!("name {look_alike}")).unwrap(),
                "ERR name taken",
                "{look_alike}"
            );
        }
    }
    let log = server.log();
    for worker in ["worker=0", "worker=1"] {
        assert!(log.contains(worker), "no connection on {worker}");
    }
    let mut s = server.connect();
    assert_eq!(
        s.request("name a\u{200B}lice").unwrap(),
        "ERR name must not contain invisible or format characters (it holds U+200B)"
    );
    assert_eq!(
        s.request("name alicia").unwrap(),
        "OK welcome alicia, 2 online"
    );
}

/// A CA of the test's own (its key kept, unlike the development CA) and client certificates it
/// signs, written as PEM files.
struct TestCa {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pem: PathBuf,
}

impl TestCa {
    fn new(dir: &Path) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "names test CA");
        let cert = params.self_signed(&key).unwrap();
        let pem = dir.join("client-ca.pem");
        std::fs::write(&pem, cert.pem()).unwrap();
        TestCa { params, key, pem }
    }

    /// A client certificate with this CN: (certificate file, key file).
    fn client(&self, dir: &Path, common_name: &str, file: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let (cert_file, key_file) = (
            dir.join(format!("{file}.pem")),
            dir.join(format!("{file}.key")),
        );
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }
}

/// A chat server requiring client certificates from `ca`, with a server certificate from a
/// development CA: (server, the CA file clients trust).
fn mtls_chat(dir: TestDir, ca: &TestCa) -> (Server, PathBuf) {
    let files = generate_dev_certs(&dir.0.join("certs"), &[]).unwrap();
    let args = [
        "--service",
        "chat",
        "--cert",
        files.cert.to_str().unwrap(),
        "--key",
        files.key.to_str().unwrap(),
        "--client-ca",
        ca.pem.to_str().unwrap(),
    ];
    let server = Server::start_in(dir, &["127.0.0.1", "0"], &args, 1);
    (server, files.ca)
}

fn connect_as(server: &Server, trust: &Path, (cert, key): &(PathBuf, PathBuf)) -> Session {
    let options = ClientOptions {
        ca: Some(trust.to_path_buf()),
        cert: Some(cert.clone()),
        key: Some(key.clone()),
        ..ClientOptions::default()
    };
    let session = Session::connect("127.0.0.1", server.addr().port(), &options).unwrap();
    session.set_read_timeout(Some(WAIT)).unwrap();
    session
}

#[test]
fn a_client_whose_certificate_says_alice_cannot_become_bob() {
    let dir = TestDir::new("names-mtls");
    let ca = TestCa::new(&dir.0);
    let alice_files = ca.client(&dir.0, "alice", "alice");
    let spaced_files = ca.client(&dir.0, "Alice Smith", "spaced");
    let bob_files = ca.client(&dir.0, "bob", "bob");
    let (server, trust) = mtls_chat(TestDir::borrowed(&dir.0), &ca);

    let mut alice = connect_as(&server, &trust, &alice_files);
    assert_eq!(
        alice.request("name bob").unwrap(),
        "ERR your certificate names you alice"
    );
    assert_eq!(
        alice.request("name Alice").unwrap(),
        "ERR your certificate names you alice"
    );
    assert_eq!(
        alice.request("speaking as nobody").unwrap(),
        "ERR log in first: name <NAME>"
    );
    assert_eq!(
        alice.request("name alice").unwrap(),
        "OK welcome alice, 1 online"
    );
    // The real bob can still be bob, and hears alice as alice.
    let mut bob = connect_as(&server, &trust, &bob_files);
    assert_eq!(bob.request("name bob").unwrap(), "OK welcome bob, 2 online");
    assert_eq!(alice.read_line().unwrap().unwrap(), "JOIN bob");
    alice.send_line("hi").unwrap();
    assert_eq!(bob.read_line().unwrap().unwrap(), "MSG alice hi");
    server.wait_for_log("client=\"CN=alice\"");
    assert!(!server.log().contains("client=\"CN=alice\" name=bob"));

    // A certificate whose name is not a valid name cannot join.
    let mut spaced = connect_as(&server, &trust, &spaced_files);
    let reply = spaced.request("name Alice Smith").unwrap();
    assert_eq!(
        reply,
        "ERR your certificate's name Alice Smith cannot be used: name must be 1-32 characters without spaces"
    );
    assert_eq!(
        spaced.request("name Alice").unwrap(),
        "ERR your certificate names you Alice Smith"
    );
    assert_eq!(bob.request("who").unwrap(), "OK alice bob");
}

#[test]
fn the_terminal_client_given_a_certificate_logs_in_under_its_name() {
    let dir = TestDir::new("names-client-cert");
    let files = generate_dev_certs(&dir.0.join("certs"), &[]).unwrap();
    let args = [
        "--service",
        "chat",
        "--client-ca",
        files.ca.to_str().unwrap(),
    ];
    let server = Server::start_in(TestDir::borrowed(&dir.0), &["127.0.0.1", "0"], &args, 1);
    let port = server.addr().port().to_string();
    let (status, stdout, stderr) =
        common::mtls::run_client_with_cert(&dir.0, &port, &files, "hello");
    assert!(status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("Welcome dev-client, 1 online"), "{stderr}");
}
