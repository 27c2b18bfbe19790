//! The example client driven as a person or a script would: `--exec`, a stdin pipe, and each
//! way of failing with one clear line and exit code 1. Here stdout is always a pipe, so status
//! lines (`Session ended`, the reply to `--name`, the chat's welcome) are on stderr and stdout
//! holds the replies alone; on a terminal they stay on stdout (tests/client_tty.rs).

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

/// Issue 21, friction 9: `x=$(client -e '+ 3 4' 2>/dev/null)` is `7`, not `7` and
/// `Session ended` (the old code printed both on stdout).
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
    assert_eq!(stdout, "7\n54\n");
    assert_eq!(stderr, "Session ended\n");
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
    assert_eq!(stdout, "2\n");
    assert_eq!(stderr, "error: division by zero\nSession ended\n");
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
    assert_eq!(stdout, "");
    assert!(stderr.ends_with("\nSession ended\n"), "{stderr}");
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
    // `hello bob` answers a line of the script: a reply, on stdout.
    assert_eq!(stdout, "7\nhello bob\n9\n");
    assert_eq!(stderr, "Session ended\n");
}

#[test]
fn end_of_stdin_quits_politely() {
    let server = Server::start(&[]);
    let base = port_args(&server);
    let (status, stdout, stderr) = run_client(&server.dir.0, &args(&base, &[]), Some("2 ^ 10\n"));
    assert!(status.success());
    assert_eq!(stdout, "1024\n");
    assert_eq!(stderr, "Session ended\n");
    server.wait_for_log("reason=quit");
}

/// Issue 21, friction 9: the reply to `--name` is status, not a reply of the script's (the old
/// code printed `hello carol` on stdout).
#[test]
fn name_option_is_sent_first() {
    let server = Server::start(&[]);
    let base = port_args(&server);
    let (status, stdout, stderr) = run_client(
        &server.dir.0,
        &args(&base, &["--name", "carol", "-e", "+ 1 2"]),
        None,
    );
    assert!(status.success());
    assert_eq!(stdout, "3\n");
    assert_eq!(stderr, "hello carol\nSession ended\n");
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
    assert_eq!(stdout, "7\n");
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
    assert_eq!(stdout, "42\n");
}

#[test]
fn usage_errors_exit_two() {
    let dir = TestDir::new("client-usage");
    let (status, _, stderr) = run_client(&dir.0, &["--bogus"], None);
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("Usage: securetcp-client"), "{stderr}");
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
        "warning: not sent: please enter an integer between 1 and 100 (not \"0\")\n\
         Session ended\n"
    );
    server.wait_for_log("sum=\"25 (client) + 50 (server) = 75\"");
    let (status, stdout, _) = run_client(&server.dir.0, &args(&base, &["-e", "7"]), None);
    assert!(status.success());
    assert_eq!(
        stdout,
        "Server of securetcp answered 50\n7 (client) + 50 (server) = 57\n"
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
    assert_eq!(
        stderr,
        "warning: not sent: answer with a whole number\nSession ended\n"
    );
}

/// Issue 21, friction 9: a piped chat without `--name` takes its first line as the name, as
/// the chat asks for one, but says so on stderr (the old code did it silently).
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
    assert_eq!(stdout, "Your name:\n");
    assert_eq!(
        stderr,
        "note: no --name given, so the first line of input, \"dave\", is the name\n\
         Welcome dave, 2 online\nSession ended\n"
    );
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
        .stderr(Stdio::piped())
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
    let mut status_lines = String::new();
    std::io::Read::read_to_string(&mut alice.stderr.take().unwrap(), &mut status_lines).unwrap();
    assert_eq!(status_lines, "Welcome alice, 2 online\nSession ended\n");
    assert!(alice.wait().unwrap().success());
    assert!(rx.recv_timeout(common::WAIT).is_err(), "more on stdout");
}

#[test]
fn chat_exec_sends_then_quits() {
    let server = Server::start(&["--service", "chat"]);
    let mut bob = server.connect();
    assert!(bob.request("name bob").unwrap().starts_with("OK"));
    let base = port_args(&server);
    let (status, stdout, stderr) = run_client(
        &server.dir.0,
        &args(&base, &["--name", "carol", "-e", "one", "-e", "two"]),
        None,
    );
    assert!(status.success());
    assert_eq!(stdout, "");
    assert_eq!(stderr, "Welcome carol, 2 online\nSession ended\n");
    assert_eq!(bob.read_line().unwrap().unwrap(), "JOIN carol");
    assert_eq!(bob.read_line().unwrap().unwrap(), "MSG carol one");
    assert_eq!(bob.read_line().unwrap().unwrap(), "MSG carol two");
    assert_eq!(bob.read_line().unwrap().unwrap(), "LEFT carol");
}

#[test]
fn chat_text_cannot_drive_another_members_terminal() {
    let server = Server::start(&["--service", "chat"]);
    let mut mallory = server.connect();
    assert!(mallory.request("name mallory").unwrap().starts_with("OK"));
    let port = server.addr().port().to_string();
    let mut alice = std::process::Command::new(common::client_bin())
        .args(["127.0.0.1", &port, "--name", "alice"])
        .current_dir(&server.dir.0)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(mallory.read_line().unwrap().unwrap(), "JOIN alice");
    // The server refuses control characters in a line; invisible and bidi characters are text,
    // and the client shows them.
    assert_eq!(
        mallory
            .request("\u{1b}[2J\u{1b}]0;owned\u{7} hi \u{9b}1m")
            .unwrap(),
        "ERR line contains a control character"
    );
    mallory.send_line("hi \u{202E}dlrow\u{200B}!").unwrap();
    // Give the push time to arrive before alice's input ends.
    mallory.send_line("who").unwrap();
    assert_eq!(mallory.read_line().unwrap().unwrap(), "OK mallory alice");
    std::thread::sleep(std::time::Duration::from_millis(200));
    drop(alice.stdin.take());
    let out = alice.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("mallory: hi \\u{202e}dlrow\\u{200b}!\n"),
        "{stdout:?}"
    );
    assert!(
        !stdout.contains('\u{202E}') && !stdout.contains('\u{200B}'),
        "{stdout:?}"
    );
}

#[test]
fn a_taken_name_is_never_replaced_by_a_later_line() {
    let server = Server::start(&["--service", "chat"]);
    let mut alice = server.connect();
    assert!(alice.request("name alice").unwrap().starts_with("OK"));
    let base = port_args(&server);
    let (status, stdout, stderr) = run_client(
        &server.dir.0,
        &args(&base, &["--name", "alice"]),
        Some("hello?\nsecond line\n"),
    );
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert_eq!(stderr, "error: name taken\n");
    alice.send_line("who").unwrap();
    assert_eq!(alice.read_line().unwrap().unwrap(), "OK alice");
    assert!(!server.log().contains("hello?"), "{}", server.log());
    // Without --name, the first piped line is the name; taken, it is not retried either.
    let (status, _, stderr) = run_client(&server.dir.0, &args(&base, &[]), Some("alice\nbob\n"));
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        stderr,
        "note: no --name given, so the first line of input, \"alice\", is the name\n\
         error: name taken\n"
    );
}

#[test]
fn chat_log_lines_follow_the_order_of_the_requests() {
    let server = Server::start(&["--service", "chat"]);
    let base = port_args(&server);
    let (status, _, stderr) = run_client(
        &server.dir.0,
        &args(&base, &["--name", "ann", "-e", "hi", "-e", "who"]),
        None,
    );
    assert!(status.success(), "{stderr}");
    let log = server.wait_for_log("reason=quit");
    let order: Vec<&str> = log
        .lines()
        .filter_map(|l| {
            ["event=msg", "req=who", "req=q"]
                .into_iter()
                .find(|k| l.contains(k))
        })
        .collect();
    assert_eq!(order, ["event=msg", "req=who", "req=q"], "{log}");
}

#[test]
fn tls_and_plain_mixed_up_say_so_at_once() {
    let plain = Server::start(&["--no-tls"]);
    let dir = TestDir::new("client-mixed");
    let port = plain.addr().port().to_string();
    let (status, stdout, stderr) =
        run_client(&plain.dir.0, &["127.0.0.1", &port, "-e", "+ 1 1"], None);
    assert_eq!(status.code(), Some(1));
    assert!(stdout.is_empty());
    assert_eq!(stderr, "error: the server speaks plain TCP: try --no-tls\n");

    let tls = Server::start(&[]);
    let port = tls.addr().port().to_string();
    let started = std::time::Instant::now();
    let (status, _, stderr) = run_client(
        &dir.0,
        &["127.0.0.1", &port, "--no-tls", "-e", "+ 1 1"],
        None,
    );
    assert_eq!(status.code(), Some(1));
    assert_eq!(stderr, "error: the server speaks TLS: leave out --no-tls\n");
    // Not the 10 s handshake timeout: a second of silence, then one probe line.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn addresses_as_people_write_them() {
    let dir = TestDir::new("client-addr");
    let (status, _, stderr) = run_client(&dir.0, &["5000"], None);
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.starts_with("error: '5000' is a port, not a host: give the host first"),
        "{stderr}"
    );
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped the IPv6 part: this machine has no ::1");
        return;
    }
    let server = Server::start_with(&["::1", "0"], &[], 1);
    let port = server.addr().port().to_string();
    let (status, stdout, stderr) =
        run_client(&server.dir.0, &["[::1]", &port, "-e", "+ 3 4"], None);
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, "7\n");
}

#[test]
fn sum_shows_the_server_by_name_and_passes_help_on() {
    let server = Server::start(&[
        "--service",
        "sum",
        "--name",
        "John Q. Smith",
        "--number",
        "9",
    ]);
    let base = port_args(&server);
    let (status, stdout, stderr) = run_client(
        &server.dir.0,
        &args(&base, &["--name", "Ann Lee", "-e", "help", "-e", "3"]),
        None,
    );
    assert!(status.success(), "{stderr}");
    assert_eq!(
        stdout,
        "commands: Client of <NAME>;<N> with N from 1 to 100 | name NAME | help | q\n\
         Server of John Q. Smith answered 9\n3 (client) + 9 (server) = 12\n"
    );
    server.wait_for_log("name=\"Ann Lee\" event=sum");
}

#[test]
fn the_server_shutting_down_ends_the_client_with_zero() {
    use std::process::{Command, Stdio};
    let mut server = Server::start(&[]);
    let port = server.addr().port().to_string();
    let mut client = Command::new(common::client_bin())
        .args(["127.0.0.1", &port])
        .current_dir(&server.dir.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Held open to the end: the client is waiting for a line when the server stops.
    let _stdin = client.stdin.take();
    server.wait_for_log("event=open");
    server.stop_with(libc::SIGTERM);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(client.wait_with_output().unwrap()));
    let out = rx
        .recv_timeout(common::WAIT)
        .expect("the client did not exit by itself");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Session ended: server shutting down\n"
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn quiz_passes_help_on_and_asks_the_same_question_again() {
    let server = Server::start(&["--service", "quiz"]);
    let base = port_args(&server);
    let (status, stdout, stderr) = run_client(&server.dir.0, &args(&base, &["-e", "help"]), None);
    assert!(status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("What is ") && lines[0].ends_with("? help"),
        "{stdout}"
    );
    assert!(lines[1].starts_with("commands: "), "{stdout}");
    assert_eq!(stderr, "Session ended\n");
    server.wait_for_log("req=help");
}

/// Issue 21, friction 9: `--exec` answers in the quiz print the question each answered, with
/// the answer, as a person sees it on a terminal (the old code printed only the verdicts).
#[test]
fn quiz_exec_prints_each_question_with_its_answer() {
    let server = Server::start(&["--service", "quiz"]);
    let base = port_args(&server);
    let (status, stdout, stderr) =
        run_client(&server.dir.0, &args(&base, &["-e", "5", "-e", "7"]), None);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    let mut right = 0;
    for (turn, (answer, pair)) in ["5", "7"].iter().zip(lines.chunks(2)).enumerate() {
        // `What is a + b? 5`, then the verdict on that very question.
        let question = pair[0]
            .strip_prefix("What is ")
            .and_then(|rest| rest.strip_suffix(&format!("? {answer}")))
            .unwrap_or_else(|| panic!("no question with its answer: {stdout}"));
        let (a, b) = question.split_once(" + ").unwrap();
        let sum: i64 = a.parse::<i64>().unwrap() + b.parse::<i64>().unwrap();
        let asked = turn + 1;
        let verdict = if sum.to_string() == *answer {
            right += 1;
            format!("correct, score {right}/{asked}")
        } else {
            format!("wrong, {question} = {sum}, score {right}/{asked}")
        };
        assert_eq!(pair[1], verdict, "{stdout}");
    }
    // A wrong answer counts as an `ERR` for the exit code.
    assert_eq!(status.code(), Some(if right == 2 { 0 } else { 1 }));
    assert_eq!(stderr, "Session ended\n");
}

/// The terminal client is the workspace's binary `securetcp-client` (client/), a crate of its own:
/// `cargo build` at the root puts it beside the server (SPEC: Names), the server's own
/// dependency tree has no line editor, and the client's has none of the tests' or benches'
/// dependencies (the README's `cargo run --release --bin securetcp-client` builds only these).
#[test]
fn the_client_is_the_binary_securetcp_client_with_a_build_of_its_own() {
    let installed = common::client_bin();
    let server = Server::start(&[]);
    let port = server.addr().port().to_string();
    let out = std::process::Command::new(&installed)
        .args(["127.0.0.1", &port, "-e", "+ 3 4"])
        .current_dir(&server.dir.0)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "7\n");
    let version = std::process::Command::new(&installed)
        .arg("-V")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!("securetcp-client {}\n", env!("CARGO_PKG_VERSION"))
    );

    let tree = |package: &str| {
        let out = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
            .args([
                "tree",
                "--offline",
                "-e",
                "normal",
                "--prefix",
                "none",
                "-p",
                package,
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let server_tree = tree("securetcp");
    assert!(
        !server_tree.contains("rustyline"),
        "the server's build: {server_tree}"
    );
    let client_tree = tree("securetcp-client");
    assert!(client_tree.contains("rustyline"));
    for test_only in [
        "criterion",
        "proptest",
        "prometheus-parse",
        "rayon",
        "plotters",
    ] {
        assert!(
            !client_tree.contains(test_only),
            "{test_only} in the client's build"
        );
    }
}

/// Issue 27 defect 2, SPEC "An idle close says so": a client whose session the server ends for
/// `--idle-timeout` says so and does not reconnect (the old one took the silent close for a lost
/// server and connected again after every idle period). Its input pipe stays open and silent.
#[test]
fn an_idle_timeout_ends_the_session_once_without_reconnecting() {
    use std::process::{Command, Stdio};
    let server = Server::start(&["--idle-timeout", "1"]);
    let mut client = Command::new(common::client_bin())
        .args(port_args(&server))
        .current_dir(&server.dir.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = client.stdin.take().unwrap(); // open, and nothing typed
    let status = common::wait_for_exit(&mut client, std::time::Duration::from_secs(6), || {
        format!("the client did not end; the log:\n{}", server.log())
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut client.stderr.take().unwrap(), &mut stderr).unwrap();
    drop(stdin);
    assert!(status.success(), "{status:?} {stderr}");
    assert_eq!(stderr, "disconnected after 1 s idle\n");
    let log = server.wait_for_log("reason=idle-timeout");
    assert_eq!(log.matches("event=open").count(), 1, "{log}");
}
