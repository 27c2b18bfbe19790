//! The example client driven as a person or a script would: `--exec`, a stdin pipe, and each
//! way of failing with one clear line and exit code 1.

mod common;

use std::net::TcpListener;

use common::{Server, TestDir, run_client};

fn port_args(server: &Server) -> Vec<String> {
    vec!["127.0.0.1".into(), server.addr().port().to_string()]
}

fn args<'a>(base: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter()
        .map(String::as_str)
        .chain(extra.iter().copied())
        .collect()
}

#[test]
fn exec_prints_results_and_ends_the_session() {
    let server = Server::start(&[]);
    let base = port_args(&server);
    // Run from the server's directory: the client finds certs/ca.pem there by default.
    let (status, stdout, stderr) = run_client(
        &server.dir.0,
        &args(&base, &["-e", "+ 3 4", "--exec", "12 + 42"]),
        None,
    );
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, "7\n54\nSession ended\n");
}

#[test]
fn exec_exits_one_when_a_line_gets_err() {
    let server = Server::start(&[]);
    let base = port_args(&server);
    let (status, stdout, _) = run_client(
        &server.dir.0,
        &args(&base, &["-e", "1 / 0", "-e", "+ 1 1"]),
        None,
    );
    assert_eq!(status.code(), Some(1));
    assert_eq!(stdout, "error: division by zero\n2\nSession ended\n");
}

#[test]
fn nonsense_is_refused_locally_with_a_warning_and_counts_as_err() {
    let server = Server::start(&[]);
    let base = port_args(&server);
    let (status, stdout, _) = run_client(
        &server.dir.0,
        &args(&base, &["-e", "hello", "-e", "3 +"]),
        None,
    );
    assert_eq!(status.code(), Some(1));
    assert!(
        stdout.starts_with("warning: not sent: unknown word 'hello'"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("warning: not sent").count(), 2, "{stdout}");
    // The server never saw them: only the final q is in its log.
    let log = server.wait_for_log("event=close");
    assert!(!log.contains("req=hello"), "{log}");
}

#[test]
fn piped_stdin_is_sent_line_by_line() {
    let server = Server::start(&[]);
    let base = port_args(&server);
    let input = "+ 3 4\nname bob\n(1 + 2) * 3\nq\n+ 5 5\n";
    let (status, stdout, stderr) = run_client(&server.dir.0, &args(&base, &[]), Some(input));
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, "7\nhello bob\n9\nSession ended\n");
}

#[test]
fn end_of_stdin_quits_politely() {
    let server = Server::start(&[]);
    let base = port_args(&server);
    let (status, stdout, _) = run_client(&server.dir.0, &args(&base, &[]), Some("2 ^ 10\n"));
    assert!(status.success());
    assert_eq!(stdout, "1024\nSession ended\n");
    server.wait_for_log("reason=quit");
}

#[test]
fn name_option_is_sent_first() {
    let server = Server::start(&[]);
    let base = port_args(&server);
    let (status, stdout, _) = run_client(
        &server.dir.0,
        &args(&base, &["--name", "carol", "-e", "+ 1 2"]),
        None,
    );
    assert!(status.success());
    assert_eq!(stdout, "hello carol\n3\nSession ended\n");
    server.wait_for_log("name=carol req=\"+ 1 2\"");
}

#[test]
fn ca_option_points_at_the_server_ca() {
    let server = Server::start(&[]);
    let base = port_args(&server);
    let elsewhere = TestDir::new("client-elsewhere");
    let ca = server.ca();
    let (status, stdout, stderr) = run_client(
        &elsewhere.0,
        &args(&base, &["--ca", ca.to_str().unwrap(), "-e", "+ 3 4"]),
        None,
    );
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, "7\nSession ended\n");
}

#[test]
fn untrusted_certificate_is_one_clear_line_and_exit_one() {
    let server = Server::start(&[]);
    let base = port_args(&server);
    // Another directory, no certs/ca.pem: the server's development CA is unknown there.
    let elsewhere = TestDir::new("client-untrusted");
    let (status, stdout, stderr) = run_client(&elsewhere.0, &args(&base, &["-e", "+ 3 4"]), None);
    assert_eq!(status.code(), Some(1));
    assert!(stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("TLS certificate not trusted"), "{stderr}");
}

#[test]
fn refused_connection_is_one_clear_line_and_exit_one() {
    let free_port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = TestDir::new("client-refused");
    let (status, _, stderr) = run_client(
        &dir.0,
        &["127.0.0.1", &free_port.to_string(), "-e", "+ 1 1"],
        None,
    );
    assert_eq!(status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("connection refused"), "{stderr}");
}

#[test]
fn busy_server_is_one_clear_line_and_exit_one() {
    let server = Server::start(&["--max-clients", "1"]);
    let _seated = server.connect();
    let base = port_args(&server);
    let (status, _, stderr) = run_client(&server.dir.0, &args(&base, &["-e", "+ 1 1"]), None);
    assert_eq!(status.code(), Some(1));
    assert_eq!(stderr.trim(), "error: server busy, try again later");
}

#[test]
fn no_tls_client_talks_to_a_no_tls_server() {
    let server = Server::start(&["--no-tls"]);
    let base = port_args(&server);
    let dir = TestDir::new("client-plain");
    let (status, stdout, stderr) =
        run_client(&dir.0, &args(&base, &["--no-tls", "-e", "6 * 7"]), None);
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, "42\nSession ended\n");
}

#[test]
fn usage_errors_exit_two() {
    let dir = TestDir::new("client-usage");
    let (status, _, stderr) = run_client(&dir.0, &["--bogus"], None);
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("Usage: client"), "{stderr}");
    let (status, stdout, _) = run_client(&dir.0, &["--help"], None);
    assert_eq!(status.code(), Some(0));
    assert!(stdout.contains("--exec"));
}
