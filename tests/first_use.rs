//! What a person meets on first use, from the command line: the address as the seeds write it
//! (host first, IPv6 in brackets), whom the client trusts (`--ca ''`), and each certificate
//! mistake said with its fix (a certificate for other names, a missing client certificate).

mod common;

use common::{Server, TestDir, cargo_command, run_client, run_server};

/// The README's first command, `cargo run --release`, must start the server although the package
/// also has the clients' binaries (`default-run`). Here without `--release`, so the build the tests
/// already made is used, and with `--version` so it ends at once.
#[test]
fn cargo_run_runs_the_server() {
    let output = cargo_command(&["run", "--quiet", "--", "--version"])
        .output()
        .expect("run cargo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.starts_with("securetcp "),
        "cargo run --version: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_port_alone_is_a_usage_error_that_says_the_host_comes_first() {
    let dir = TestDir::new("port-alone");
    let (status, stdout, stderr) = run_server(&dir.0, &["5001"]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(
            "'5001' is a port, not a host: give the host first, as in: securetcp 127.0.0.1 5001"
        ),
        "{stderr}"
    );
}

#[test]
fn the_server_takes_an_ipv6_host_in_brackets() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        return; // no IPv6 loopback on this machine: nothing to listen on
    }
    let server = Server::start_with(&["[::1]", "0"], &[], 1);
    assert!(server.addr().is_ipv6(), "{}", server.addr());
    let mut session = server.connect();
    assert_eq!(session.request("+ 2 2").unwrap(), "OK 4");
}

/// `--ca ''` trusts the public roots only: the development CA beside the client
/// (`certs/ca.pem`, trusted by default) is not used.
#[test]
fn an_empty_ca_means_the_public_roots_only() {
    let server = Server::start(&[]);
    let port = server.addr().port().to_string();
    let (status, stdout, stderr) =
        run_client(&server.dir.0, &["127.0.0.1", &port, "-e", "+ 3 4"], None);
    assert!(
        status.success(),
        "the default trusts certs/ca.pem: {stderr}"
    );
    assert_eq!(stdout, "7\n");
    let (status, stdout, stderr) = run_client(
        &server.dir.0,
        &["127.0.0.1", &port, "--ca", "", "-e", "+ 3 4"],
        None,
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("TLS certificate not trusted"),
        "--ca '' still trusted certs/ca.pem, or failed otherwise: {stderr}"
    );
}

/// Development certificates made for 127.0.0.1, then a server on 127.0.0.2: the server warns
/// at start, and the client names the fix (`--gen-certs`), not `--ca`.
#[test]
fn a_development_certificate_for_other_hosts_is_said_with_its_fix() {
    let dir = TestDir::new("other-host");
    drop(Server::start_in(
        TestDir::borrowed(&dir.0),
        &["127.0.0.1", "0"],
        &[],
        1,
    ));
    let mut server = Server::start_in(dir, &["127.0.0.2", "0"], &[], 1);
    let dir = server.dir.0.clone();
    let port = server.addr().port().to_string();
    let (status, _, stderr) = run_client(&dir, &["127.0.0.2", &port, "-e", "+ 3 4"], None);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("not valid for this name (127.0.0.2)") && stderr.contains("--gen-certs"),
        "{stderr}"
    );
    assert!(!stderr.contains("--ca"), "{stderr}");
    assert!(
        server.stderr_now_contains(
            "warning: the development certificate certs/server.pem is not valid for 127.0.0.2"
        ),
        "no warning at start"
    );
}

#[test]
fn a_missing_client_certificate_says_which_options_to_give() {
    let (server, _files) = common::mtls::mtls_server("needs-client-cert");
    let port = server.addr().port().to_string();
    let (status, _, stderr) = run_client(&server.dir.0, &["127.0.0.1", &port, "-e", "6 * 7"], None);
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        stderr,
        "error: the server requires a client certificate: give --cert FILE --key FILE\n"
    );
}

/// A usage error is the message and the synopsis, not the whole help; the help has no
/// trailing spaces.
#[test]
fn usage_errors_are_two_lines_and_the_help_is_clean() {
    let dir = TestDir::new("usage-lines");
    let (status, _, stderr) = run_server(&dir.0, &["--bogus"]);
    assert_eq!(status.code(), Some(2));
    assert_eq!(
        stderr,
        "securetcp: unknown option --bogus\n\
         Usage: securetcp [OPTIONS] [HOST [PORT]]; try --help for the options\n"
    );
    let (status, _, stderr) = run_client(&dir.0, &["--bogus"], None);
    assert_eq!(status.code(), Some(2));
    assert_eq!(
        stderr,
        "error: unknown option --bogus\n\
         Usage: securetcp-client [OPTIONS] [HOST [PORT]]; try --help for the options\n"
    );
    let (_, server_help, _) = run_server(&dir.0, &["--help"]);
    let (_, client_help, _) = run_client(&dir.0, &["--help"], None);
    for help in [server_help, client_help] {
        assert!(help.contains("--help"), "{help}");
        for line in help.lines() {
            assert_eq!(line, line.trim_end(), "trailing spaces in the help");
        }
    }
}

#[test]
fn start_errors_name_the_option_and_the_file_and_speak_plainly() {
    // Issue 27 friction 4: `cannot read certificate /nope.pem: I/O error: No such file or
    // directory (os error 2)` for --client-ca, `no items found` for a key, a --metrics address
    // not named as such, a certificate warning before `cannot resolve`, `999.1.1.1` resolved as
    // a host name.
    let dir = TestDir::new("start-words");
    std::fs::write(dir.0.join("junk.key"), "junk\n").unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let cases: [(&[&str], String); 5] = [
        (
            &["--client-ca", "/nope.pem", "127.0.0.1", "0"],
            "securetcp: --client-ca /nope.pem: cannot read it: no such file\n".into(),
        ),
        (
            &[
                "--cert",
                "certs/server.pem",
                "--key",
                "junk.key",
                "127.0.0.1",
                "0",
            ],
            "securetcp: --key junk.key: no private key in it (expected a PEM block)\n".into(),
        ),
        (
            &["--metrics", &taken, "127.0.0.1", "0"],
            format!("securetcp: --metrics: cannot listen on {taken}: address already in use\n"),
        ),
        (
            &["nosuchhost.invalid", "5000"],
            "securetcp: cannot resolve nosuchhost.invalid: no such host\n".into(),
        ),
        (
            &["999.1.1.1", "5000"],
            "securetcp: 999.1.1.1 is not an IPv4 address (four parts of 0-255, as 127.0.0.1)\n"
                .into(),
        ),
    ];
    // The development certificates exist already, so nothing else is said.
    tls_dev_certs_in(&dir.0);
    for (args, expected) in cases {
        let mut args = args.to_vec();
        args.push("--no-log");
        let (status, _, stderr) = run_server(&dir.0, &args);
        assert_eq!(status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr, expected, "{args:?}");
    }
    // A warning of a running server says whose it is, in words.
    let mut server = Server::start(&["--service", "chat", "--chat-redis", "redis://127.0.0.1:1"]);
    server.wait_for_log("event=bus-down");
    let needle = "securetcp: warning: --chat-redis: no Redis at 127.0.0.1:1: connection refused; \
                  serving the local room, retrying";
    assert!(server.stderr_now_contains(needle), "{}", server.stderr());
}

/// Makes the development certificates in `dir/certs` the way the server does.
fn tls_dev_certs_in(dir: &std::path::Path) {
    securetcp::tls::generate_dev_certs(&dir.join("certs"), &[]).unwrap();
}
