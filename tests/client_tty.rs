//! The interactive client on a real (pseudo-)terminal, driven by keystrokes as a person would:
//! the address prompts, the line editor (history, Ctrl-D), a chat where messages arrive above the
//! line being typed without breaking it, and a server that shuts down while the editor waits.

mod common;

use common::Server;
use common::pty::Pty;

fn client_on_terminal(server: &Server, args: &[&str]) -> Pty {
    Pty::spawn(&common::client_bin(), args, &server.dir.0)
}

#[test]
fn address_prompts_then_editing_and_history() {
    let server = Server::start(&[]);
    let port = server.addr().port().to_string();
    let mut client = client_on_terminal(&server, &[]);
    client.expect("Server IP address [127.0.0.1]: ");
    client.type_text("\r");
    client.expect("Port [5000]: ");
    client.type_text("fifty\r");
    client.expect("error: \"fifty\" is not a port (0-65535)");
    client.expect_n("Port [5000]: ", 2);
    client.type_text(&format!("{port}\r"));
    client.expect("Type help for the commands, q to quit.");
    client.expect("> ");
    // Editing: "2 * 5", cursor left, backspace (the space), "1": the line sent is "2 *15".
    client.type_text("2 * 5\x1b[D\x7f1\r");
    server.wait_for_log("req=\"2 *15\" reply=\"OK 30\"");
    client.expect("30");
    // History: the up arrow brings the line back, Enter sends it again.
    client.type_text("\x1b[A\r");
    let start = std::time::Instant::now();
    while server.log().matches("req=\"2 *15\"").count() < 2 {
        assert!(start.elapsed() < common::WAIT, "history was not sent again");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    client.type_text("\x04"); // Ctrl-D
    client.expect("Session ended");
    assert!(client.wait_exit().success());
}

#[test]
fn chat_messages_arrive_above_the_line_being_typed() {
    let server = Server::start(&["--service", "chat"]);
    let port = server.addr().port().to_string();
    let mut bob = server.connect();
    assert!(bob.request("name bob").unwrap().starts_with("OK"));
    // bob's name is taken: a person is asked again, and the refusal is no login.
    let mut alice = client_on_terminal(&server, &["127.0.0.1", &port, "--name", "bob"]);
    alice.expect("error: name taken");
    alice.expect("Your name: ");
    alice.type_text("alice\r");
    alice.expect("Welcome alice, 2 online");
    assert_eq!(bob.read_line().unwrap().unwrap(), "JOIN alice");
    alice.expect("alice> ");
    // Half a line typed, then three messages arrive before Enter.
    alice.type_text("a long line that is half");
    std::thread::sleep(std::time::Duration::from_millis(300));
    for i in 0..3 {
        bob.send_line(&format!("interruption {i}")).unwrap();
        alice.expect(&format!("bob: interruption {i}"));
    }
    alice.type_text(" typed when they came\r");
    assert_eq!(
        bob.read_line().unwrap().unwrap(),
        "MSG alice a long line that is half typed when they came"
    );
    // Each message stands on a line of its own, never inside the typed text.
    let lines = alice.lines();
    for i in 0..3 {
        let shown = format!("bob: interruption {i}");
        assert!(
            lines.iter().any(|l| l.trim_end() == shown),
            "{shown:?} not on a line of its own: {lines:#?}"
        );
    }
    // The input line is redrawn below the last message, whole.
    let last_message = lines
        .iter()
        .rposition(|l| l.contains("bob: interruption 2"))
        .unwrap();
    assert!(
        lines[last_message + 1..]
            .iter()
            .any(|l| l.contains("alice> a long line that is half")),
        "{lines:#?}"
    );
    alice.type_text("\x04");
    alice.expect("Session ended");
    assert!(alice.wait_exit().success());
    assert_eq!(bob.read_line().unwrap().unwrap(), "LEFT alice");
}

#[test]
fn a_shutdown_while_the_editor_waits_ends_cleanly_and_restores_the_terminal() {
    let mut server = Server::start(&["--service", "chat"]);
    let port = server.addr().port().to_string();
    let mut alice = client_on_terminal(&server, &["127.0.0.1", &port, "--name", "alice"]);
    alice.expect("alice> ");
    alice.type_text("unfinished");
    alice.expect("alice> unfinished");
    assert_eq!(
        alice.cooked(),
        (false, false),
        "the editor runs in raw mode"
    );
    server.stop_with(libc::SIGTERM);
    alice.expect("Session ended: server shutting down");
    assert!(alice.wait_exit().success());
    assert_eq!(alice.cooked(), (true, true), "terminal left in raw mode");
}

#[test]
fn the_small_terminal_plays_what_an_editor_writes() {
    let shown =
        common::pty::render("a> hel\rbob: hi\x1b[K\r\na> hel\x08\x08xy\x1b[Kz\r\nnext\x1b[31m!");
    assert_eq!(shown, ["bob: hi", "a> hxyz", "next!"]);
}
