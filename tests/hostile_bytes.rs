//! Arbitrary bytes, generated, sent to the real server: in place of TLS records on a TLS port,
//! and as request lines on a plain port. Each connection may be closed; the server must go on.

mod common;

use std::io::Write;
use std::net::Shutdown;

use common::{Server, raw_tcp, read_to_end_timed};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Bytes that often start like a TLS record (so they get past the first check), else anything.
fn tls_like() -> impl Strategy<Value = Vec<u8>> {
    let record_start = prop_oneof![
        Just(vec![]),
        Just(vec![0x16, 0x03, 0x01]),
        Just(vec![
            0x16, 0x03, 0x03, 0x00, 0x30, 0x01, 0x00, 0x00, 0x2c, 0x03, 0x03
        ]),
        Just(vec![0x17, 0x03, 0x03, 0x00, 0x10]),
        Just(vec![0x15, 0x03, 0x03, 0x00, 0x02]),
    ];
    (record_start, prop::collection::vec(any::<u8>(), 0..2048)).prop_map(|(mut head, tail)| {
        head.extend(tail);
        head
    })
}

#[test]
fn arbitrary_bytes_in_place_of_tls_records_never_stop_the_server() {
    let server = Server::start(&[]);
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    runner
        .run(&tls_like(), |bytes| {
            let mut s = raw_tcp(server.addr());
            let _ = s.write_all(&bytes);
            let _ = s.shutdown(Shutdown::Write);
            // The server answers with at most alerts or handshake records, then closes.
            let _ = read_to_end_timed(&mut s);
            Ok(())
        })
        .unwrap();
    let mut normal = server.connect();
    assert_eq!(normal.request("+ 3 4").unwrap(), "OK 7");
    assert!(server.child.id() > 0);
}

#[test]
fn arbitrary_request_bytes_get_replies_and_never_stop_the_server() {
    let server = Server::start(&["--no-tls", "--max-line", "64"]);
    let lines = prop::collection::vec(
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..100),
            prop::collection::vec(
                prop_oneof![Just(b'('), Just(b'1'), Just(b'+'), Just(b'-'), Just(b' ')],
                0..100
            ),
        ],
        1..20,
    );
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    runner
        .run(&lines, |lines| {
            let mut s = raw_tcp(server.addr());
            let mut sent = Vec::new();
            for line in &lines {
                sent.extend(line.iter().filter(|&&b| b != b'\n'));
                sent.push(b'\n');
            }
            s.write_all(&sent).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let (reply, _) = read_to_end_timed(&mut s);
            let text = String::from_utf8(reply).expect("replies are UTF-8");
            let replies: Vec<&str> = text.lines().skip(1).collect(); // after HELLO
            // One reply per line, each OK, ERR or BYE (a `q` line ends the session early).
            prop_assert!(replies.len() <= lines.len());
            for reply in &replies {
                prop_assert!(
                    reply.starts_with("OK ")
                        || reply.starts_with("ERR ")
                        || reply.starts_with("BYE"),
                    "{}",
                    reply
                );
            }
            if !replies.iter().any(|r| r.starts_with("BYE")) {
                prop_assert_eq!(replies.len(), lines.len());
            }
            Ok(())
        })
        .unwrap();
    let mut s = raw_tcp(server.addr());
    s.write_all(b"+ 3 4\n").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let (reply, _) = read_to_end_timed(&mut s);
    assert!(String::from_utf8_lossy(&reply).ends_with("OK 7\n"));
}
