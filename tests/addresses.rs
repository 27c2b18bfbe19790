//! One address is one address: an IPv4 client reached through an IPv6 socket, or named in a
//! PROXY header as `::ffff:a.b.c.d`, is counted by `--max-per-ip`, and logged, as `a.b.c.d`.
//! Real binary, plain TCP (a certificate does not name `::ffff:127.0.0.1`), loopback.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};

use common::{Server, raw_tcp};

/// Connects, sends `first`, and returns the first line the server answers.
fn first_line(addr: SocketAddr, first: &[u8]) -> (TcpStream, String) {
    let mut stream = raw_tcp(addr);
    stream.write_all(first).unwrap();
    let mut line = String::new();
    BufReader::new(stream.try_clone().unwrap())
        .read_line(&mut line)
        .unwrap();
    (stream, line.trim_end().to_string())
}

#[test]
fn a_client_on_an_ipv4_and_an_ipv6_listener_is_one_address() {
    if std::net::TcpListener::bind("[::ffff:127.0.0.1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 (an IPv4-mapped listener needs it)");
        return;
    }
    // 127.0.0.1 on an IPv4 socket, the same 127.0.0.1 through a mapped IPv6 one and through a
    // dual-stack [::] one.
    let server = Server::start_with(
        &["127.0.0.1", "0"],
        &[
            "--no-tls",
            "--max-per-ip",
            "1",
            "-l",
            "[::ffff:127.0.0.1]:0",
            "-l",
            "[::]:0",
        ],
        3,
    );
    let (v4, mapped, dual) = (server.addrs[0], server.addrs[1], server.addrs[2]);
    assert!(mapped.is_ipv6() && dual.is_ipv6(), "{:?}", server.addrs);
    let (_first, hello) = first_line(v4, b"");
    assert!(hello.starts_with("HELLO"), "{hello}");
    // The same client through the IPv6 listeners: over its limit of one.
    let through_v4_of_dual = SocketAddr::from(([127, 0, 0, 1], dual.port()));
    for addr in [mapped, through_v4_of_dual] {
        let (_again, line) = first_line(addr, b"");
        assert_eq!(
            line, "ERR too many connections from your address",
            "via {addr}"
        );
    }
    let log = server.wait_for_log("conn=3 event=close reason=per-ip");
    assert!(!log.contains("peer=[::ffff:"), "logged as IPv6:\n{log}");
    assert_eq!(log.matches("peer=127.0.0.1:").count(), 3, "{log}");
}

#[test]
fn a_client_named_in_tcp4_and_mapped_tcp6_headers_is_one_address() {
    let server = Server::start(&["--proxy-protocol", "--no-tls", "--max-per-ip", "1"]);
    let (_first, hello) = first_line(
        server.addr(),
        b"PROXY TCP4 203.0.113.50 10.0.0.1 1000 5000\r\n",
    );
    assert!(hello.starts_with("HELLO"), "{hello}");
    let (_second, line) = first_line(
        server.addr(),
        b"PROXY TCP6 ::ffff:203.0.113.50 ::1 1001 5000\r\n",
    );
    assert_eq!(line, "ERR too many connections from your address");
    // v2, the same client as an IPv6 source (family 0x21: TCP over IPv6).
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24".to_vec();
    v2.extend_from_slice(
        &"::ffff:203.0.113.50"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    v2.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    v2.extend_from_slice(&1002u16.to_be_bytes());
    v2.extend_from_slice(&5000u16.to_be_bytes());
    let (_third, line) = first_line(server.addr(), &v2);
    assert_eq!(line, "ERR too many connections from your address");
    let log = server.wait_for_log("peer=203.0.113.50:1002");
    assert!(
        log.contains("peer=203.0.113.50:1001 proxy=127.0.0.1:"),
        "{log}"
    );
    assert!(!log.contains("peer=[::ffff:"), "logged as IPv6:\n{log}");
}
