//! A refused handshake's close line names its cause (SPEC "Trust at the edges": a `tls-error`
//! says no version, no cipher suite, no key-exchange group, no signature scheme in common, no
//! client certificate, an unknown CA, an expired client certificate, each in its own words).
//! Real server, real clients: openssl s_client offering what the server lacks, and the project's
//! client with certificates rcgen makes here.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::certs::TestCa;
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

#[test]
fn client_certificates_refused_say_why() {
    let ours = TestDir::new("tls-errors-ca");
    let trusted = TestCa::new("trusted test CA");
    let ca = trusted.write(&ours.0.join("ca.pem"));
    let expired = trusted.client(&ours.0, "client", "old-timer", -30, -2);
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
    let (cert, key) =
        TestCa::new("another test CA").client(&elsewhere.0, "client", "stranger", -1, 30);
    attempt(&options(Some((&cert, &key))));
    assert_eq!(
        nth_tls_error(&server, 3),
        "certificate signed by an unknown CA"
    );
}
