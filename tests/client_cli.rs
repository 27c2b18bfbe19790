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
    let (status, stdout, stderr) = run_client(
        &server.dir.0,
        &args(&base, &["-e", "1 / 0", "-e", "+ 1 1"]),
        None,
    );
    assert_eq!(status.code(), Some(1));
    // Replies on stdout, errors on stderr.
    assert_eq!(stdout, "2\nSession ended\n");
    assert_eq!(stderr, "error: division by zero\n");
}

#[test]
fn nonsense_is_refused_locally_with_a_warning_and_counts_as_err() {
    let server = Server::start(&[]);
    let base = port_args(&server);
    let (status, stdout, stderr) = run_client(
        &server.dir.0,
        &args(&base, &["-e", "hello", "-e", "3 +"]),
        None,
    );
    assert_eq!(status.code(), Some(1));
    assert_eq!(stdout, "Session ended\n");
    assert!(
        stderr.starts_with("warning: not sent: unknown word 'hello'"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("warning: not sent").count(), 2, "{stderr}");
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

#[test]
fn sum_mode_asks_for_a_number_and_prints_the_sum() {
    let server = Server::start(&["--service", "sum", "--number", "50"]);
    let base = port_args(&server);
    let (status, stdout, stderr) = run_client(
        &server.dir.0,
        &args(&base, &["--name", "alice"]),
        Some("25\n0\n"),
    );
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.contains("Please enter an integer between 1 and 100:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Server of securetcp answered 50\n25 (client) + 50 (server) = 75\n"),
        "{stdout}"
    );
    assert_eq!(
        stderr,
        "warning: not sent: please enter an integer between 1 and 100 (not \"0\")\n"
    );
    assert!(stdout.ends_with("Session ended\n"), "{stdout}");
    server.wait_for_log("sum=\"25 (client) + 50 (server) = 75\"");
    let (status, stdout, _) = run_client(&server.dir.0, &args(&base, &["-e", "7"]), None);
    assert!(status.success());
    assert_eq!(
        stdout,
        "Server of securetcp answered 50\n7 (client) + 50 (server) = 57\nSession ended\n"
    );
}

#[test]
fn quiz_mode_shows_questions_and_verdicts() {
    let server = Server::start(&["--service", "quiz"]);
    let base = port_args(&server);
    let (status, stdout, stderr) =
        run_client(&server.dir.0, &args(&base, &[]), Some("0\nseven\n1\n"));
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout.matches("What is ").count(), 4, "{stdout}");
    // 0 and 1 are never right (both addends are at least 1).
    assert!(
        stdout.contains("wrong, ") && stdout.contains("score 0/1") && stdout.contains("score 0/2"),
        "{stdout}"
    );
    assert_eq!(stderr, "warning: not sent: answer with a whole number\n");
    assert!(stdout.ends_with("Session ended\n"), "{stdout}");
}

#[test]
fn chat_mode_asks_for_a_name_and_talks() {
    let server = Server::start(&["--service", "chat"]);
    let mut bob = server.connect();
    assert!(
        bob.request("name bob")
            .unwrap()
            .starts_with("OK welcome bob")
    );
    let base = port_args(&server);
    let (status, stdout, stderr) =
        run_client(&server.dir.0, &args(&base, &[]), Some("dave\nhello bob\n"));
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("Your name:"), "{stdout}");
    assert!(stdout.contains("Welcome dave, 2 online"), "{stdout}");
    assert!(stdout.ends_with("Session ended\n"), "{stdout}");
    assert_eq!(bob.read_line().unwrap().unwrap(), "JOIN dave");
    assert_eq!(bob.read_line().unwrap().unwrap(), "MSG dave hello bob");
    assert_eq!(bob.read_line().unwrap().unwrap(), "LEFT dave");
}

#[test]
fn chat_mode_prints_messages_as_they_arrive() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let server = Server::start(&["--service", "chat"]);
    let mut bob = server.connect();
    assert!(
        bob.request("name bob")
            .unwrap()
            .starts_with("OK welcome bob")
    );
    let port = server.addr().port().to_string();
    let mut alice = Command::new(common::client_bin())
        .args(["127.0.0.1", &port, "--name", "alice"])
        .current_dir(&server.dir.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = alice.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = || {
        rx.recv_timeout(common::WAIT)
            .expect("alice printed nothing")
    };
    assert_eq!(next(), "Welcome alice, 2 online");
    assert_eq!(bob.read_line().unwrap().unwrap(), "JOIN alice");
    // Alice has typed nothing; bob's message still shows up at once.
    bob.send_line("hi alice").unwrap();
    assert_eq!(next(), "bob: hi alice");
    let mut stdin = alice.stdin.take().unwrap();
    stdin.write_all(b"hi bob\n").unwrap();
    assert_eq!(bob.read_line().unwrap().unwrap(), "MSG alice hi bob");
    drop(bob);
    assert_eq!(next(), "* bob left");
    drop(stdin); // end of input: the client says q
    assert_eq!(next(), "Session ended");
    assert!(alice.wait().unwrap().success());
}

#[test]
fn chat_exec_sends_then_quits() {
    let server = Server::start(&["--service", "chat"]);
    let mut bob = server.connect();
    assert!(bob.request("name bob").unwrap().starts_with("OK"));
    let base = port_args(&server);
    let (status, stdout, _) = run_client(
        &server.dir.0,
        &args(&base, &["--name", "carol", "-e", "one", "-e", "two"]),
        None,
    );
    assert!(status.success());
    assert_eq!(stdout, "Welcome carol, 2 online\nSession ended\n");
    assert_eq!(bob.read_line().unwrap().unwrap(), "JOIN carol");
    assert_eq!(bob.read_line().unwrap().unwrap(), "MSG carol one");
    assert_eq!(bob.read_line().unwrap().unwrap(), "MSG carol two");
    assert_eq!(bob.read_line().unwrap().unwrap(), "LEFT carol");
}
