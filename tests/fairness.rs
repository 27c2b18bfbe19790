//! The chat room is fair by default, against the real binary: one member sending as fast as it
//! can does not push another member's messages behind its flood, because without
//! `--rate-limit` a member's lines are read at the chat's pace (64 KiB of lines a second).
//! Judged by order (how many flood lines come before the other member's message), not by time.

mod common;

use std::sync::Arc;

use common::Server;
use securetcp::client::Session;

fn member(server: &Server, name: &str) -> Session {
    let mut s = server.connect();
    let welcome = s.request(&format!("name {name}")).unwrap();
    assert!(welcome.starts_with("OK welcome"), "{welcome}");
    s
}

/// The line after `wanted`'s arrival: how many flood lines `reader` saw before `wanted`.
fn flood_lines_before(reader: &mut Session, wanted: &str) -> usize {
    let mut flood = 0;
    loop {
        let line = reader.read_line().unwrap().expect("the reader was cut off");
        if line == wanted {
            return flood;
        }
        if line.starts_with("MSG flooder ") {
            flood += 1;
        }
    }
}

/// Starts `flooder` writing `lines` lines of 4,000 bytes as fast as the server takes them (on a
/// thread of its own: the writes block while the server does not read them).
fn flood(flooder: &Session, lines: usize) {
    let transport = Arc::clone(&flooder.transport);
    std::thread::spawn(move || {
        let line = format!("{}\n", "f".repeat(4000));
        for _ in 0..lines {
            if transport.write_all(line.as_bytes()).is_err() {
                break; // the test is over and the server gone
            }
        }
    });
}

/// The room as a test sees it: a reader, a member who talks, one who floods.
fn room(args: &[&str]) -> (Server, Session, Session, Session) {
    let server = Server::start(args);
    let mut reader = member(&server, "reader");
    let talker = member(&server, "talker");
    let flooder = member(&server, "flooder");
    assert_eq!(reader.read_line().unwrap().unwrap(), "JOIN talker");
    assert_eq!(reader.read_line().unwrap().unwrap(), "JOIN flooder");
    (server, reader, talker, flooder)
}

#[test]
fn another_members_message_is_not_stuck_behind_a_flood() {
    let (_server, mut reader, talker, flooder) = room(&["--service", "chat"]);
    // 4 MB of messages, written at once.
    flood(&flooder, 1000);
    // The flood is on its way to the reader before the talker speaks.
    let first = reader.read_line().unwrap().unwrap();
    assert!(first.starts_with("MSG flooder fff"), "{first}");
    talker.send_line("may I say something").unwrap();
    let before = flood_lines_before(&mut reader, "MSG talker may I say something");
    // The flooder's burst is 64 KiB (16 of its lines), then 16 lines a second: the talker's
    // message comes after a few of them, not after the megabytes the flooder has written.
    assert!(
        before < 64,
        "{before} flood lines reached the reader before the other member's message"
    );
}

#[test]
fn the_flooder_loses_nothing_and_is_only_read_more_slowly() {
    let (_server, mut reader, talker, flooder) = room(&["--service", "chat"]);
    // Three bursts' worth: the first goes at once, the rest at the pace; all of it arrives.
    flood(&flooder, 48);
    talker.send_line("after the flood").unwrap();
    let mut flood_seen = 0;
    let mut talker_seen = false;
    while flood_seen < 48 {
        let line = reader.read_line().unwrap().expect("the reader was cut off");
        if line.starts_with("MSG flooder ") {
            assert_eq!(line.len(), "MSG flooder ".len() + 4000);
            flood_seen += 1;
        } else if line == "MSG talker after the flood" {
            talker_seen = true;
        }
    }
    assert!(
        talker_seen,
        "the talker's message did not come before the flood's end"
    );
}

#[test]
fn rate_limit_zero_lets_a_member_send_as_fast_as_the_room_reads() {
    // `--rate-limit 0` is the old, unpaced room: 200 lines of 4,000 bytes arrive at once (at
    // the pace they would take more than 10 s).
    let (_server, mut reader, _talker, flooder) = room(&["--service", "chat", "--rate-limit", "0"]);
    flood(&flooder, 200);
    let started = std::time::Instant::now();
    for i in 0..200 {
        let line = reader.read_line().unwrap().expect("the reader was cut off");
        assert!(line.starts_with("MSG flooder "), "line {i}: {line}");
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}
