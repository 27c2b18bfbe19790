//! chat, sum and quiz end to end: the real server binary, real TLS clients.

mod common;

use std::time::Duration;

use common::{Server, WAIT, rss_kib};
use securetcp::client::Session;

fn login(server: &Server, name: &str) -> Session {
    let mut s = server.connect();
    assert_eq!(s.service, "chat");
    let reply = s.request(&format!("name {name}")).unwrap();
    assert!(
        reply.starts_with(&format!("OK welcome {name}, ")),
        "{reply}"
    );
    s
}

/// Reads lines until one satisfies `want` (pushes from others may come first).
fn read_until(s: &mut Session, want: impl Fn(&str) -> bool) -> String {
    loop {
        let line = s.read_line().unwrap().expect("connection ended");
        if want(&line) {
            return line;
        }
    }
}

#[test]
fn three_chat_members_talk() {
    let server = Server::start(&["--service", "chat"]);
    let mut alice = login(&server, "alice");
    let mut bob = login(&server, "bob");
    assert_eq!(alice.read_line().unwrap().unwrap(), "JOIN bob");
    let mut carol = login(&server, "carol");
    assert_eq!(alice.read_line().unwrap().unwrap(), "JOIN carol");
    assert_eq!(bob.read_line().unwrap().unwrap(), "JOIN carol");

    alice.send_line("hello both").unwrap();
    assert_eq!(bob.read_line().unwrap().unwrap(), "MSG alice hello both");
    assert_eq!(carol.read_line().unwrap().unwrap(), "MSG alice hello both");
    assert_eq!(bob.request("who").unwrap(), "OK alice bob carol");

    // A taken name, a second login, and a guest who has not logged in.
    let mut guest = server.connect();
    assert_eq!(guest.request("name bob").unwrap(), "ERR name taken");
    assert_eq!(
        guest.request("hi").unwrap(),
        "ERR log in first: name <NAME>"
    );
    assert_eq!(
        alice.request("name alice2").unwrap(),
        "ERR already logged in"
    );

    // q says LEFT; so does a member that just drops.
    assert_eq!(carol.request("q").unwrap(), "BYE session ended");
    assert_eq!(alice.read_line().unwrap().unwrap(), "LEFT carol");
    drop(bob);
    assert_eq!(alice.read_line().unwrap().unwrap(), "LEFT bob");
    let log = server.wait_for_log("name=alice event=msg bytes=10");
    assert!(
        !log.contains("hello both"),
        "chat text must not be logged:\n{log}"
    );
}

#[test]
fn a_hundred_members_each_receive_one_message() {
    let server = Server::start(&["--service", "chat"]);
    let mut members: Vec<Session> = (0..100).map(|i| login(&server, &format!("m{i}"))).collect();
    let speaker = login(&server, "speaker");
    speaker.send_line("one for all").unwrap();
    for (i, m) in members.iter_mut().enumerate() {
        let line = read_until(m, |l| l.starts_with("MSG "));
        assert_eq!(line, "MSG speaker one for all", "member {i}");
    }
}

#[test]
fn a_member_that_never_reads_is_cut_off_and_nobody_else_waits() {
    // Unpaced (`--rate-limit 0`): the sender goes as fast as the server takes its lines.
    let server = Server::start(&["--service", "chat", "--rate-limit", "0"]);
    let pid = server.child.id();
    let _stuck = login(&server, "stuck"); // never reads anything again
    let mut reader = login(&server, "reader");
    let sender = login(&server, "sender");
    let before = rss_kib(pid);

    // 10 MiB in 10,240 messages of 1 KiB, sent as fast as the server takes them.
    const MESSAGES: usize = 10_240;
    let counter = std::thread::spawn(move || {
        let mut got = 0;
        let mut saw_stuck_leave = false;
        while got < MESSAGES {
            let line = reader
                .read_line()
                .unwrap()
                .expect("reader was disconnected");
            if line.starts_with("MSG sender ") {
                got += 1;
            } else if line == "LEFT stuck" {
                saw_stuck_leave = true;
            }
        }
        (got, saw_stuck_leave, reader)
    });
    let body = "x".repeat(1000);
    let mut batch = String::new();
    for i in 0..MESSAGES {
        batch.push_str(&format!("{i:023} {body}\n"));
        if batch.len() > 64 * 1024 {
            sender.transport.write_all(batch.as_bytes()).unwrap();
            batch.clear();
        }
    }
    sender.transport.write_all(batch.as_bytes()).unwrap();
    let (got, saw_stuck_leave, _reader) = counter.join().unwrap();
    assert_eq!(got, MESSAGES);
    assert!(
        saw_stuck_leave,
        "the member that never reads was not cut off"
    );
    server.wait_for_log("reason=slow-reader");
    let after = rss_kib(pid);
    // 10 MiB went through; the server may keep a few MiB of buffers, never the whole stream.
    assert!(
        after < before + 8 * 1024,
        "server RSS grew from {before} KiB to {after} KiB"
    );
}

#[test]
fn sum_exchanges_numbers_and_survives_bad_ones() {
    let server = Server::start(&["--service", "sum", "--name", "Server-X", "--number", "50"]);
    let mut s = server.connect();
    assert_eq!(s.service, "sum");
    assert_eq!(
        s.request("Client of Alice;25").unwrap(),
        "OK Server of Server-X;50"
    );
    assert_eq!(
        s.request("Client of Alice ; +007").unwrap(),
        "OK Server of Server-X;50"
    );
    for bad in [
        "Client of Alice;0",
        "Client of Alice;101",
        "Client of Alice;2.5",
        "Client of Alice;abc",
    ] {
        assert_eq!(
            s.request(bad).unwrap(),
            "ERR number must be an integer from 1 to 100",
            "{bad}"
        );
    }
    // The server is still there for everyone.
    let mut other = server.connect();
    assert_eq!(
        other.request("Client of Bob;1").unwrap(),
        "OK Server of Server-X;50"
    );
    let log = server.wait_for_log("1 (client) + 50 (server) = 51");
    assert!(
        log.contains("sum=\"25 (client) + 50 (server) = 75\""),
        "{log}"
    );
}

#[test]
fn quiz_asks_scores_and_asks_again() {
    let server = Server::start(&["--service", "quiz"]);
    let mut s = server.connect();
    assert_eq!(s.service, "quiz");
    let answer = |q: &str| -> i64 {
        let (a, b) = q.strip_prefix("QUIZ ").unwrap().split_once(" + ").unwrap();
        a.parse::<i64>().unwrap() + b.parse::<i64>().unwrap()
    };
    let q1 = s.read_line().unwrap().unwrap();
    assert_eq!(
        s.request(&answer(&q1).to_string()).unwrap(),
        "OK correct, score 1/1"
    );
    let q2 = s.read_line().unwrap().unwrap();
    let reply = s.request(&(answer(&q2) + 1).to_string()).unwrap();
    assert!(
        reply.starts_with("ERR wrong, ")
            && reply.ends_with(&format!("= {}, score 1/2", answer(&q2))),
        "{reply}"
    );
    let q3 = s.read_line().unwrap().unwrap();
    assert_eq!(
        s.request("seven").unwrap(),
        "ERR answer with a whole number"
    );
    assert_eq!(
        s.read_line().unwrap().unwrap(),
        q3,
        "the same question again"
    );
    assert_eq!(s.request("").unwrap(), "ERR empty line");
    assert_eq!(s.read_line().unwrap().unwrap(), q3);
    assert_eq!(s.request("q").unwrap(), "BYE session ended");
    assert_eq!(s.read_line().unwrap(), None);
}

#[test]
fn chat_exit_when_empty_exits_after_the_last_member() {
    let mut server = Server::start(&["--service", "chat", "--exit-when-empty"]);
    let mut a = login(&server, "a");
    assert_eq!(a.request("q").unwrap(), "BYE session ended");
    drop(a);
    let status = server.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0));
    std::thread::sleep(Duration::from_millis(10));
}

/// Issue 31 item 6, SPEC "A session ends at BYE": a member who said `q` and read his `BYE` but
/// keeps his socket open (Python does while a `makefile()` lives) has left the room at once:
/// the others hear `LEFT`, `who` no longer lists him, and his name is free, long before the
/// 2 s the server waits for his side of the close.
#[test]
fn a_member_who_quits_leaves_at_bye_though_his_socket_stays_open() {
    let server = Server::start(&["--service", "chat"]);
    let mut alice = login(&server, "alice");
    let mut bob = login(&server, "bob");
    assert_eq!(alice.read_line().unwrap().unwrap(), "JOIN bob");
    assert_eq!(bob.request("q").unwrap(), "BYE session ended");
    // bob's socket stays open: no close_notify, no FIN from him until the end of the test.
    let prompt = Duration::from_secs(1);
    alice.set_read_timeout(Some(prompt)).unwrap();
    let start = std::time::Instant::now();
    let left = alice.read_line();
    assert!(
        matches!(&left, Ok(Some(line)) if line == "LEFT bob"),
        "no LEFT within {prompt:?} of bob's BYE: {left:?}"
    );
    assert_eq!(alice.request("who").unwrap(), "OK alice");
    assert!(start.elapsed() < prompt, "{:?}", start.elapsed());
    let mut bob_again = login(&server, "bob");
    assert_eq!(alice.read_line().unwrap().unwrap(), "JOIN bob");
    assert_eq!(bob_again.request("who").unwrap(), "OK alice bob");
    drop(bob);
}

/// Issue 27 defect 2, SPEC "An idle close says so": `--idle-timeout` ends a chat member's
/// session with `BYE idle timeout`, and the room hears him leave at that moment.
#[test]
fn an_idle_member_is_told_bye_idle_timeout_and_the_room_hears_left() {
    let server = Server::start(&["--service", "chat", "--idle-timeout", "1"]);
    let mut quiet = login(&server, "quiet");
    let mut talker = login(&server, "talker");
    assert_eq!(quiet.read_line().unwrap().unwrap(), "JOIN talker");
    // talker keeps his own session alive with `who` (its replies reach him alone, so quiet
    // hears nothing and is idle) until he hears quiet leave.
    talker
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let start = std::time::Instant::now();
    let mut heard = Vec::new();
    while !heard.iter().any(|l| l == "LEFT quiet") && start.elapsed() < Duration::from_secs(5) {
        talker.send_line("who").unwrap();
        while let Ok(Some(line)) = talker.read_line() {
            heard.push(line);
        }
    }
    assert_eq!(
        quiet.read_line().unwrap().as_deref(),
        Some("BYE idle timeout")
    );
    assert_eq!(quiet.read_line().unwrap(), None);
    assert!(heard.iter().any(|l| l == "LEFT quiet"), "{heard:?}");
    let log = server.wait_for_log("reason=idle-timeout");
    assert_eq!(log.matches("reason=idle-timeout").count(), 1, "{log}");
}
