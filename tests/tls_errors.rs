//! A refused handshake's close line names its cause (SPEC "Trust at the edges": a `tls-error`
//! says no version, no cipher suite, no key-exchange group, no signature scheme in common, no
//! client certificate, an unknown CA, an expired client certificate, each in its own words).
//! Real server, real clients: openssl s_client offering what the server lacks, and the project's
//! client with certificates rcgen makes here.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{Server, TestDir};
use securetcp::client::{ClientOptions, Session};

/// The `error="..."` of the `n`-th (from 1) `tls-error` close line, waiting for it.
fn nth_tls_error(server: &Server, n: usize) -> String {
    let log = server.wait_for_log_count("reason=tls-error", n);
    let line = log
        .lines()
        .filter(|l| l.contains("reason=tls-error"))
        .nth(n - 1)
        .unwrap()
        .to_string();
    line.split_once(" error=\"")
        .map(|(_, e)| e.trim_end_matches('"').to_string())
        .unwrap_or_else(|| panic!("no error= in {line}"))
}

#[test]
fn openssl_offering_what_the_server_lacks_is_logged_by_what_was_missing() {
    if !common::require_program("openssl", "openssl") {
        return;
    }
    let server = Server::start(&[]);
    let port = server.addr().port().to_string();
    let cases: [(&[&str], &str); 5] = [
        // Only finite-field Diffie-Hellman, which rustls does not offer.
        (
            &["-tls1_3", "-groups", "ffdhe2048"],
            "no key-exchange group in common",
        ),
        // Only RSA-PSS signatures, and the server's key is ECDSA.
        (
            &["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256"],
            "no signature scheme in common",
        ),
        // TLS 1.2 with only a CBC suite (rustls speaks AEAD only).
        (
            &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"],
            "no cipher suite in common",
        ),
        // TLS 1.3 with only the CCM suite, which rustls lacks.
        (
            &["-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_SHA256"],
            "no cipher suite in common",
        ),
        // TLS 1.1: rustls sees no signature_algorithms (a TLS 1.2 extension) first.
        (
            &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
            "no TLS version in common",
        ),
    ];
    for (n, (args, cause)) in cases.iter().enumerate() {
        let out = Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(*args)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl");
        assert!(!out.status.success(), "openssl {args:?} got through");
        let error = nth_tls_error(&server, n + 1);
        assert!(error.starts_with(cause), "openssl {args:?}: {error}");
    }
}

/// A CA of this test's own, named `ca_name` (rcgen keeps its key, so it can sign a client certificate that has
/// expired), written as `ca.pem`; and a client certificate it signs, valid from `not_before` to
/// `not_after` (days from today), written as `client.pem` and `client.key`.
fn ca_and_client(dir: &Path, ca_name: &str, not_before: i64, not_after: i64) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let day = |offset: i64| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let days = (now / 86_400 + offset) as u64;
        rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(days * 86_400)
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, &ca_key);
    let key = KeyPair::generate().unwrap();
    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client
        .distinguished_name
        .push(DnType::CommonName, "old-timer");
    client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    client.not_before = day(not_before);
    client.not_after = day(not_after);
    let client_cert = client.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("client.pem"), client_cert.pem()).unwrap();
    std::fs::write(dir.join("client.key"), key.serialize_pem()).unwrap();
}

#[test]
fn client_certificates_refused_say_why() {
    let ours = TestDir::new("tls-errors-ca");
    ca_and_client(&ours.0, "trusted test CA", -30, -2);
    let ca = ours.0.join("ca.pem");
    let server = {
        let dir = TestDir::new("tls-errors");
        std::fs::create_dir_all(dir.0.join("certs")).unwrap();
        let files = securetcp::tls::generate_dev_certs(&dir.0.join("certs"), &[]).unwrap();
        let args = [
            "--cert",
            files.cert.to_str().unwrap(),
            "--key",
            files.key.to_str().unwrap(),
            "--client-ca",
            ca.to_str().unwrap(),
        ];
        Server::start_in(dir, &["127.0.0.1", "0"], &args, 1)
    };
    let options = |cert: Option<(&Path, &Path)>| ClientOptions {
        ca: Some(server.ca()),
        cert: cert.map(|(c, _)| c.to_path_buf()),
        key: cert.map(|(_, k)| k.to_path_buf()),
        ..ClientOptions::default()
    };
    let attempt = |options: &ClientOptions| {
        Session::connect("127.0.0.1", server.addr().port(), options)
            .and_then(|mut s| s.request("+ 1 2"))
            .expect_err("served")
    };

    // An expired client certificate from the trusted CA.
    let expired = (ours.0.join("client.pem"), ours.0.join("client.key"));
    attempt(&options(Some((&expired.0, &expired.1))));
    let error = nth_tls_error(&server, 1);
    assert!(error.starts_with("certificate expired on "), "{error}");

    // None at all.
    attempt(&options(None));
    assert_eq!(
        nth_tls_error(&server, 2),
        "no client certificate: the client sent none"
    );

    // One from a CA the server does not trust.
    let elsewhere = TestDir::new("tls-errors-other");
    ca_and_client(&elsewhere.0, "another test CA", -1, 30);
    let (cert, key) = (
        elsewhere.0.join("client.pem"),
        elsewhere.0.join("client.key"),
    );
    attempt(&options(Some((&cert, &key))));
    assert_eq!(
        nth_tls_error(&server, 3),
        "certificate signed by an unknown CA"
    );
}
