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

/// Sends `bytes` on a fresh connection, ends our side, and returns what the server sent back
/// before its close, and its `tls-error` close line (SPEC "Trust at the edges").
fn answer_to(server: &Server, bytes: &[u8]) -> (Vec<u8>, String) {
    let mut s = raw_tcp(server.addr());
    s.write_all(bytes).unwrap();
    let _ = s.shutdown(Shutdown::Write);
    let (reply, _) = read_to_end_timed(&mut s);
    let port = s.local_addr().unwrap().port();
    let log = server.wait_for_log(&format!("peer=127.0.0.1:{port} "));
    let conn = log
        .lines()
        .find(|l| l.contains(&format!("peer=127.0.0.1:{port} ")))
        .and_then(|l| l.split(' ').find(|w| w.starts_with("conn=")))
        .unwrap()
        .to_string();
    let close = server.wait_for_log(&format!("{conn} event=close"));
    let close = close
        .lines()
        .find(|l| l.contains(&format!("{conn} event=close")))
        .unwrap()
        .to_string();
    (reply, close)
}

/// A real ClientHello (rustls's, for `localhost`, TLS 1.2 only: the server's alert after its
/// flight then stays readable, where TLS 1.3 would encrypt it), as the records it is sent in.
fn client_hello() -> Vec<u8> {
    let config = rustls::ClientConfig::builder_with_provider(securetcp::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let mut client =
        rustls::ClientConnection::new(std::sync::Arc::new(config), "localhost".try_into().unwrap())
            .unwrap();
    let mut hello = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut hello).unwrap();
    }
    hello
}

#[test]
fn binary_that_is_not_tls_gets_a_tls_alert_and_only_a_text_line_gets_err() {
    let server = Server::start(&[]);
    // An SSLv2-format ClientHello (as old clients sent for compatibility): length 0x2e, type 1,
    // version 3.1, cipher specs, no session id, a 16-byte challenge.
    let mut sslv2 = vec![
        0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10,
    ];
    sslv2.extend([
        0x00, 0x00, 0x2f, 0x00, 0x00, 0x35, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x05,
    ]);
    sslv2.extend([0x00, 0x00, 0x04, 0x01, 0x00, 0x80, 0x07, 0x00, 0xc0]);
    sslv2.extend([0x5a; 16]);
    let (reply, close) = answer_to(&server, &sslv2);
    assert_eq!(reply.first(), Some(&0x15), "a TLS alert record: {reply:?}");
    assert!(!reply.starts_with(b"ERR"), "{reply:?}");
    assert!(
        close.contains("error=\"not TLS: an SSLv2-format hello"),
        "{close}"
    );

    // A good ClientHello, then a record of content type 0x99, before the handshake is done.
    let mut mid_handshake = client_hello();
    mid_handshake.extend([0x99, 0x03, 0x03, 0x00, 0x02, 0x01, 0x02]);
    let (reply, close) = answer_to(&server, &mid_handshake);
    // The ServerHello flight (handshake records, 0x16) may come first; the last record is an alert.
    assert!(!reply.windows(3).any(|w| w == b"ERR"), "{reply:?}");
    assert!(last_record_is_an_alert(&reply), "{reply:?}");
    assert!(
        close.contains("error=\"a TLS record of unknown content type\""),
        "{close}"
    );

    // Binary that is not text and not TLS: an alert too.
    let (reply, close) = answer_to(&server, b"\x00\x01\x02\x03\x04\x05\n");
    assert_eq!(reply.first(), Some(&0x15), "{reply:?}");
    assert!(close.contains("error=\"not TLS: binary bytes"), "{close}");

    // A plain-text line still gets the plain line.
    let (reply, close) = answer_to(&server, b"hello\n");
    assert_eq!(reply, b"ERR this port speaks TLS\n");
    assert!(
        close.contains("error=\"not TLS: a plain-text line\""),
        "{close}"
    );

    let mut normal = server.connect();
    assert_eq!(normal.request("+ 3 4").unwrap(), "OK 7");
}

#[test]
fn a_plain_text_line_cut_across_segments_still_gets_the_plain_line() {
    // A person's client writes `hello`, then the rest: the first segment alone is no TLS and
    // not yet a line; the server waits for the line end before it answers (it answered the
    // first segment with an alert).
    let server = Server::start(&[]);
    let mut s = raw_tcp(server.addr());
    s.set_nodelay(true).unwrap();
    s.write_all(b"hello").unwrap();
    // A real pause is the point: the two writes must reach the server as two reads.
    std::thread::sleep(std::time::Duration::from_millis(100));
    s.write_all(b" there\n").unwrap();
    let (reply, _) = read_to_end_timed(&mut s);
    assert_eq!(reply, b"ERR this port speaks TLS\n");
    server.wait_for_log("error=\"not TLS: a plain-text line\"");

    // Text that never ends its line before the client hangs up gets the alert, as binary does.
    let (reply, close) = answer_to(&server, b"hello");
    assert_eq!(reply.first(), Some(&0x15), "{reply:?}");
    assert!(
        close.contains("error=\"not TLS: text with no line end\""),
        "{close}"
    );
}

/// Whether `records` is whole TLS records whose last is an alert (content type 21).
fn last_record_is_an_alert(mut records: &[u8]) -> bool {
    let mut last = None;
    while records.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([records[3], records[4]]));
        if records.len() < 5 + len {
            return false;
        }
        last = Some(records[0]);
        records = &records[5 + len..];
    }
    records.is_empty() && last == Some(21)
}
