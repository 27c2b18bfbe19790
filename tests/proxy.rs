//! `--proxy-protocol`: PROXY v1 and v2 headers written by the test byte for byte, then TLS or
//! plain lines, against the real server; untrusted, malformed, oversized, missing and late
//! headers; `--max-per-ip` by the header's address; a v2 LOCAL health check.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};

use common::{Server, raw_tcp, read_to_end_timed};
use rustls::pki_types::ServerName;

/// A v2 PROXY header for a TCP/IPv4 client `source` (the destination is not read).
fn v2_proxy(source: SocketAddr) -> Vec<u8> {
    let SocketAddr::V4(source) = source else {
        panic!("IPv4 only here")
    };
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend_from_slice(&[0x21, 0x11, 0, 12]);
    header.extend_from_slice(&source.ip().octets());
    header.extend_from_slice(&[10, 0, 0, 1]);
    header.extend_from_slice(&source.port().to_be_bytes());
    header.extend_from_slice(&5000u16.to_be_bytes());
    header
}

/// A v2 `LOCAL` header: the balancer speaking for itself (a health check).
const V2_LOCAL: &[u8] = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";

/// Sends `first` (a header and whatever the test puts behind it) in one write, then reads
/// plain lines.
fn plain(server: &Server, first: &[u8]) -> (TcpStream, BufReader<TcpStream>) {
    let mut stream = raw_tcp(server.addr());
    stream.write_all(first).unwrap();
    let reader = BufReader::new(stream.try_clone().unwrap());
    (stream, reader)
}

fn line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line.trim_end().to_string()
}

/// A TLS session behind `header`, whose ClientHello goes out in the same write as the header
/// (the server must not lose it); returns the stream after the greeting, and the greeting.
fn tls_behind(
    server: &Server,
    header: &[u8],
) -> (
    rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    String,
) {
    let config = securetcp::tls::client_config(&[server.ca().as_path()], None).unwrap();
    let mut tls =
        rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut first = header.to_vec();
    tls.write_tls(&mut first).unwrap();
    let mut tcp = raw_tcp(server.addr());
    tcp.write_all(&first).unwrap();
    let mut stream = rustls::StreamOwned::new(tls, tcp);
    let mut greeting = String::new();
    BufReader::new(&mut stream)
        .read_line(&mut greeting)
        .unwrap();
    (stream, greeting)
}

#[test]
fn v1_header_then_tls_in_the_same_segment() {
    let server = Server::start(&["--proxy-protocol"]);
    let (mut stream, greeting) =
        tls_behind(&server, b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 5000\r\n");
    assert!(greeting.starts_with("HELLO calc"), "{greeting}");
    let balancer = stream.get_ref().local_addr().unwrap();
    stream.write_all(b"+ 3 4\n").unwrap();
    let mut reply = String::new();
    BufReader::new(&mut stream).read_line(&mut reply).unwrap();
    assert_eq!(reply, "OK 7\n");
    let log = server.wait_for_log("req=\"+ 3 4\"");
    assert!(
        log.contains(&format!(
            "peer=192.0.2.7:56324 proxy={balancer} event=open tls=TLSv1_3"
        )),
        "{log}"
    );
}

#[test]
fn v2_header_then_plain_lines_in_the_same_segment() {
    let server = Server::start(&["--proxy-protocol", "--no-tls"]);
    let mut first = v2_proxy("198.51.100.9:40000".parse().unwrap());
    first.extend_from_slice(b"+ 1 2\n");
    let (_stream, mut reader) = plain(&server, &first);
    assert!(line(&mut reader).starts_with("HELLO calc"));
    assert_eq!(line(&mut reader), "OK 3");
    let log = server.wait_for_log("reply=\"OK 3\"");
    assert!(
        log.contains("peer=198.51.100.9:40000 proxy=127.0.0.1:"),
        "{log}"
    );
}

#[test]
fn a_local_header_keeps_the_real_peer_and_a_health_check_stays_out_of_the_log() {
    let server = Server::start(&["--proxy-protocol"]);
    // A balancer's health check: LOCAL, then gone before any TLS.
    let mut check = raw_tcp(server.addr());
    check.write_all(V2_LOCAL).unwrap();
    drop(check);
    // A LOCAL connection that goes on to talk is served, under its real address.
    let (mut stream, greeting) = tls_behind(&server, V2_LOCAL);
    assert!(greeting.starts_with("HELLO calc"), "{greeting}");
    let me = stream.get_ref().local_addr().unwrap();
    stream.write_all(b"+ 2 2\n").unwrap();
    let log = server.wait_for_log("reply=\"OK 4\"");
    assert!(
        log.contains(&format!("peer={me} event=open tls=TLS")),
        "{log}"
    );
    // Wait for the check's close to have been handled, then count.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = server.log();
    assert_eq!(
        log.matches("event=open").count(),
        1,
        "the check is not logged:\n{log}"
    );
    assert_eq!(log.matches("event=close").count(), 0, "{log}");
}

/// The connection is closed without a word, and the log says why.
fn refused(server: &Server, bytes: &[u8], why: &str) {
    let mut stream = raw_tcp(server.addr());
    let _ = stream.write_all(bytes);
    let (got, _) = read_to_end_timed(&mut stream);
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    server.wait_for_log(&format!("reason=proxy-error requests=0 error=\"{why}\""));
}

#[test]
fn missing_malformed_oversized_and_late_headers_are_proxy_errors() {
    let server = Server::start(&["--proxy-protocol", "--handshake-timeout", "1"]);
    // A TLS client straight at the server: its ClientHello is no header.
    let mut hello = Vec::new();
    let config = securetcp::tls::client_config(&[server.ca().as_path()], None).unwrap();
    rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap())
        .unwrap()
        .write_tls(&mut hello)
        .unwrap();
    refused(&server, &hello, "no valid PROXY header");
    refused(&server, b"PROXY TCP4 1.2.3.4\r\n", "no valid PROXY header");
    refused(&server, &[b'P'; 300], "no valid PROXY header");
    let mut huge = v2_proxy("192.0.2.1:1".parse().unwrap());
    huge[14..16].copy_from_slice(&3000u16.to_be_bytes());
    huge.resize(16 + 3000, 0);
    refused(&server, &huge, "PROXY header too long");
    refused(
        &server,
        b"PROXY TCP4 192.0",
        "no PROXY header within --handshake-timeout",
    );
    refused(&server, b"", "no PROXY header within --handshake-timeout");
    // And the server goes on.
    let (_stream, greeting) = tls_behind(&server, b"PROXY TCP4 192.0.2.1 10.0.0.1 1000 5000\r\n");
    assert!(greeting.starts_with("HELLO calc"), "{greeting}");
}

#[test]
fn a_header_from_outside_proxy_from_is_refused() {
    let server = Server::start(&["--proxy-protocol", "--proxy-from", "10.0.0.0/8"]);
    refused(
        &server,
        b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 5000\r\n",
        "connection from an address not in --proxy-from",
    );
}

#[test]
fn max_per_ip_counts_the_address_in_the_header() {
    let server = Server::start(&["--proxy-protocol", "--no-tls", "--max-per-ip", "1"]);
    let header = |ip: &str| format!("PROXY TCP4 {ip} 10.0.0.1 1000 5000\r\n");
    let (_first, mut reader) = plain(&server, header("192.0.2.7").as_bytes());
    assert!(line(&mut reader).starts_with("HELLO"));
    // The same client again, through the same balancer: over the limit.
    let (_second, mut reader) = plain(&server, header("192.0.2.7").as_bytes());
    assert_eq!(
        line(&mut reader),
        "ERR too many connections from your address"
    );
    // Another client through the same balancer (same socket peer): served.
    let (_third, mut reader) = plain(&server, header("192.0.2.8").as_bytes());
    assert!(line(&mut reader).starts_with("HELLO"));
    let log = server.wait_for_log("reason=per-ip");
    assert!(
        log.contains("peer=192.0.2.8:1000 proxy=127.0.0.1:"),
        "{log}"
    );
}

#[test]
fn a_header_split_across_segments_is_waited_for() {
    let server = Server::start(&["--proxy-protocol", "--no-tls"]);
    // Cut after the space before the last port: that part alone looks wrong to a parser that
    // judges partial lines (found by the property test in src/proxy.rs), and must be waited on.
    let (mut stream, mut reader) = plain(&server, b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 ");
    std::thread::sleep(std::time::Duration::from_millis(150));
    stream.write_all(b"5000\r").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    stream.write_all(b"\n+ 5 5\n").unwrap();
    assert!(line(&mut reader).starts_with("HELLO calc"));
    assert_eq!(line(&mut reader), "OK 10");
    let log = server.wait_for_log("reply=\"OK 10\"");
    assert!(
        log.contains("peer=192.0.2.7:56324 proxy=127.0.0.1:"),
        "{log}"
    );
}

#[test]
fn urgent_data_inside_a_split_header_is_no_end_of_the_connection() {
    // TCP urgent data (telnet's Ctrl-C) raises its own readiness event; it once read as "the
    // peer closed", and the header was refused as cut short ("ended inside its PROXY header").
    use std::os::fd::AsRawFd;
    let server = Server::start(&["--proxy-protocol", "--no-tls"]);
    let (mut stream, mut reader) = plain(&server, b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 ");
    // SAFETY: send() reads one byte of a static slice, on a socket we own.
    let sent = unsafe { libc::send(stream.as_raw_fd(), b"!".as_ptr().cast(), 1, libc::MSG_OOB) };
    assert_eq!(sent, 1);
    // The server must see the urgent byte while the header is still incomplete.
    std::thread::sleep(std::time::Duration::from_millis(150));
    stream.write_all(b"5000\r\n+ 5 5\n").unwrap();
    assert!(line(&mut reader).starts_with("HELLO calc"));
    assert_eq!(line(&mut reader), "OK 10");
}

#[test]
fn a_v1_line_not_ended_by_crlf_or_with_a_foreign_byte_is_refused_at_once() {
    // The default handshake timeout (10 s): each refusal must come long before it.
    let server = Server::start(&["--proxy-protocol"]);
    let cases: [(&[u8], &str); 4] = [
        (
            b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 5000\n",
            "PROXY v1 header line ends in a bare LF, not CRLF",
        ),
        (
            b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 5000\r+ 1 1\n",
            "PROXY v1 header line has a CR without LF",
        ),
        (b"PROXY TCP4 203.0.113.7 GET", "no valid PROXY header"),
        (b"PROXY TCP4 \x16\x03\x01", "no valid PROXY header"),
    ];
    for (bytes, why) in cases {
        let mut stream = raw_tcp(server.addr());
        stream.write_all(bytes).unwrap();
        let (got, took) = read_to_end_timed(&mut stream);
        assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
        assert!(
            took < std::time::Duration::from_secs(3),
            "{:?} closed only after {took:?}",
            String::from_utf8_lossy(bytes)
        );
        server.wait_for_log(&format!("reason=proxy-error requests=0 error=\"{why}\""));
    }
}

#[test]
fn a_v2_header_announcing_more_than_is_taken_is_refused_at_its_16th_byte() {
    let server = Server::start(&["--proxy-protocol"]);
    let mut header = v2_proxy("192.0.2.1:1".parse().unwrap());
    header[14..16].copy_from_slice(&3000u16.to_be_bytes());
    let mut stream = raw_tcp(server.addr());
    stream.write_all(&header[..16]).unwrap();
    let (got, took) = read_to_end_timed(&mut stream);
    assert!(got.is_empty());
    assert!(
        took < std::time::Duration::from_secs(3),
        "closed only after {took:?}"
    );
    server.wait_for_log("reason=proxy-error requests=0 error=\"PROXY header too long\"");
}
