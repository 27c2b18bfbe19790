//! Reads that come back short, against the real server. A short read proves nothing (urgent data
//! stops a read at its mark with bytes behind it), so the server reads every connection until
//! `WouldBlock`. These tests pipeline TLS records of odd sizes, cut into TCP segments at odd
//! places, send urgent data, and end with a FIN in the same segment as the last request, and
//! check that no connection stalls waiting for an event that never comes.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::{Server, WAIT, raw_tcp};
use rustls::pki_types::ServerName;

/// Plaintext chunk sizes, each becoming one TLS record (or several, past 16 KiB): around rustls's
/// 4 KiB read size, the 16 KiB record limit, and small ones.
const RECORD_SIZES: [usize; 10] = [1, 2, 7, 100, 4095, 4096, 4097, 8191, 16383, 20000];

/// Sizes of the TCP writes the wire bytes are cut into, cycled; a pause after each third write
/// lets the server read (short) in between.
const SEGMENT_SIZES: [usize; 8] = [1, 5, 4095, 4097, 2, 16389, 333, 4096];

/// `count` calc requests, `+ i 1`, one per line.
fn requests(count: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|i| format!("+ {i} 1\n").into_bytes())
        .collect()
}

/// A TLS client to `server` after the handshake and the greeting.
fn connect(server: &Server) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let config = securetcp::tls::client_config(&[server.ca().as_path()], None).unwrap();
    let tls =
        rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let tcp = raw_tcp(server.addr());
    tcp.set_nodelay(true).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let mut stream = rustls::StreamOwned::new(tls, tcp);
    let mut greeting = String::new();
    BufReader::new(&mut stream)
        .read_line(&mut greeting)
        .unwrap();
    assert!(greeting.starts_with("HELLO calc"), "{greeting}");
    stream
}

/// `plain` as TLS records of the sizes in `RECORD_SIZES` (cycled): the bytes for the wire.
fn records(tls: &mut rustls::ClientConnection, plain: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    let (mut at, mut size) = (0, RECORD_SIZES.iter().cycle());
    while at < plain.len() {
        let end = (at + size.next().unwrap()).min(plain.len());
        tls.writer().write_all(&plain[at..end]).unwrap();
        while tls.wants_write() {
            tls.write_tls(&mut wire).unwrap();
        }
        at = end;
    }
    wire
}

/// Writes `wire` in segments of the sizes in `SEGMENT_SIZES`, pausing now and then.
fn send_in_segments(tcp: &mut TcpStream, wire: &[u8]) {
    let (mut at, mut size) = (0, SEGMENT_SIZES.iter().cycle());
    for n in 0.. {
        if at >= wire.len() {
            break;
        }
        let end = (at + size.next().unwrap()).min(wire.len());
        tcp.write_all(&wire[at..end]).unwrap();
        at = end;
        if n % 3 == 2 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Reads `count` replies; each must be `OK i+1` for request `i`.
fn expect_answers(stream: &mut impl BufRead, count: usize) {
    let mut line = String::new();
    for i in 0..count {
        line.clear();
        match stream.read_line(&mut line) {
            Ok(0) => panic!("the server closed after {i} of {count} replies"),
            Ok(_) => assert_eq!(line, format!("OK {}\n", i + 1), "reply {i}"),
            Err(e) => panic!("stalled after {i} of {count} replies: {e}"),
        }
    }
}

#[test]
fn pipelined_records_of_odd_sizes_cut_at_odd_places_all_get_their_answers() {
    let server = Server::start(&[]);
    let count = 3000; // about 30 KB of replies: they fit in the socket buffers while we send
    let mut stream = connect(&server);
    let wire = records(&mut stream.conn, &requests(count));
    send_in_segments(&mut stream.sock, &wire);
    expect_answers(&mut BufReader::new(&mut stream), count);
}

#[test]
fn a_fin_that_comes_with_the_last_bytes_is_seen() {
    let server = Server::start(&[]);
    for round in 0..20 {
        let mut stream = connect(&server);
        // The last request then the FIN (no close_notify: a client that just ends), in one
        // write and one shutdown: one readiness event for both, and a short read.
        let wire = records(&mut stream.conn, b"+ 0 1\n");
        stream.sock.write_all(&wire).unwrap();
        stream.sock.shutdown(Shutdown::Write).unwrap();
        let mut reader = BufReader::new(&mut stream);
        expect_answers(&mut reader, 1);
        // Then the server's end of the session, in time (not at the idle timeout).
        let mut rest = Vec::new();
        if let Err(e) = reader.read_to_end(&mut rest) {
            panic!("round {round}: the server did not close after the client's FIN: {e}");
        }
    }
}

#[test]
fn urgent_data_does_not_leave_lines_unanswered() {
    // TCP urgent data (telnet sends it for Ctrl-C): a read stops short at the urgent mark with
    // more bytes behind it, and no new readiness event comes for those; before the fix about a
    // third of these rounds kept `+ 5 6` unanswered until the next byte or the idle timeout.
    use std::os::fd::AsRawFd;
    let server = Server::start(&["--no-tls"]);
    for round in 0..20 {
        let mut tcp = raw_tcp(server.addr());
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut reader = BufReader::new(tcp.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap(); // the greeting
        std::thread::sleep(Duration::from_millis(5));
        let urgent = b"+ 1 2\n+ 3"; // the last byte goes out of band
        // SAFETY: send() reads `urgent` within its length from a socket we own.
        let sent = unsafe {
            libc::send(
                tcp.as_raw_fd(),
                urgent.as_ptr().cast(),
                urgent.len(),
                libc::MSG_OOB,
            )
        };
        assert_eq!(sent, urgent.len() as isize);
        tcp.write_all(b" 4\n+ 5 6\n").unwrap();
        let mut replies = Vec::new();
        for _ in 0..3 {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(n) if n > 0 => replies.push(line.trim_end().to_string()),
                other => panic!("round {round}: after {replies:?}, {other:?}"),
            }
        }
        assert_eq!(replies[0], "OK 3", "round {round}");
        assert_eq!(replies[2], "OK 11", "round {round}");
    }
}
