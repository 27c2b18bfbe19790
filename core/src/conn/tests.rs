//! The connection core driven with no socket: a real rustls client on one side, the `Conn` on
//! the other, bytes carried between them by an in-memory pipe, time passed in by hand (as
//! quinn-proto's tests pair a client and a server in memory). Each test starts from the phase it
//! is about through a fixture (`open_pair`, `plain_conn`), as smoltcp's do.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConfig};

use super::*;
use crate::line::Flow;

/// A TCP connection as the server's socket sees it, both directions.
#[derive(Default)]
struct Pipe {
    /// Bytes the client sent, not yet read by the server.
    incoming: VecDeque<u8>,
    /// The client sent its FIN.
    client_fin: bool,
    /// Bytes the server wrote, not yet read by the client.
    outgoing: Vec<u8>,
    /// The server sent its FIN.
    server_fin: bool,
    /// How many more bytes the kernel takes from the server (`None`: any number).
    room: Option<usize>,
    /// Reads of the socket made (each a `recvfrom` on a real socket).
    reads: usize,
}

/// A connection and its in-memory socket, with the few lines of driving the reactor's driver
/// does: bytes read from the pipe are handed in, bytes handed out are written to it. The tests
/// reach the connection itself through `Deref`.
struct Served {
    conn: Conn,
    transport: Pipe,
    /// The last read's bytes, and how many the connection has taken.
    input: Vec<u8>,
    taken: usize,
}

impl std::ops::Deref for Served {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl std::ops::DerefMut for Served {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

impl Served {
    /// The next thing the connection reports; the socket is read when it needs bytes.
    /// `NeedBytes`: the socket has nothing more.
    fn read(&mut self, plaintext: &mut [u8], now: Instant, _: &mut Traffic) -> ReadEvent {
        loop {
            let mut input = &self.input[self.taken..];
            let event = self.conn.handle_bytes(&mut input, plaintext, now);
            self.taken = self.input.len() - input.len();
            if event != ReadEvent::NeedBytes {
                return event;
            }
            self.transport.reads += 1;
            if self.transport.incoming.is_empty() {
                if self.transport.client_fin && !self.conn.peer_closed() {
                    self.conn.handle_eof();
                    continue;
                }
                return ReadEvent::NeedBytes;
            }
            self.input = self.transport.incoming.drain(..).collect();
            self.taken = 0;
        }
    }

    /// Writes what the connection hands out while the pipe takes it, then our FIN if asked.
    fn flush(&mut self, now: Instant, _: &mut Traffic) -> Result<bool, CloseReason> {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            self.conn.poll_transmit(&mut buf);
            if buf.is_empty() {
                break;
            }
            if self.transport.server_fin {
                self.conn.handle_transmitted(&buf, 0, now);
                return Err(CloseReason::Reset);
            }
            let n = self.transport.room.map_or(buf.len(), |r| r.min(buf.len()));
            self.transport.outgoing.extend_from_slice(&buf[..n]);
            if let Some(room) = &mut self.transport.room {
                *room -= n;
            }
            self.conn.handle_transmitted(&buf, n, now);
            if n < buf.len() {
                break;
            }
        }
        if self.conn.poll_fin() {
            self.transport.server_fin = true;
        }
        Ok(self.conn.resume_if_drained())
    }

    fn send_last_words(&mut self) {
        let mut buf = Vec::new();
        self.conn.poll_last_words(&mut buf);
        self.transport.outgoing.extend_from_slice(&buf);
    }
}

/// A rustls server and client that trust each other: a self-signed certificate for `localhost`
/// made now, ring's provider.
fn in_memory_pair() -> (Arc<ServerConfig>, Arc<rustls::ClientConfig>) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("a self-signed certificate for localhost");
    let cert = CertificateDer::from(made.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let server = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("the provider's protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("the certificate just made");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("the certificate just made");
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the provider's protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

const MAX_LINE: usize = 4096;

fn id() -> ConnId {
    ConnId::new(1, 0)
}

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

fn conn(tls: Option<&Arc<ServerConfig>>, expect_proxy: bool, rate: Option<u32>) -> Served {
    let setup = Setup {
        tls,
        expect_proxy,
        max_line: MAX_LINE,
        rate_limit: rate.map(crate::rate::Pace::lines),
    };
    let places = Places {
        client: true,
        ..Places::default()
    };
    let conn = Conn::new(id(), peer(), Kind::Client, places, setup, t0()).unwrap();
    served(conn)
}

fn served(conn: Conn) -> Served {
    Served {
        conn,
        transport: Pipe::default(),
        input: Vec::new(),
        taken: 0,
    }
}

/// A fixed start of time: every test passes the clock in.
fn t0() -> Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *START.get_or_init(Instant::now)
}

struct Pair {
    server: Served,
    client: ClientConnection,
    traffic: Traffic,
    now: Instant,
}

impl Pair {
    fn new(expect_proxy: bool) -> Pair {
        let (server, client) = in_memory_pair();
        let name = ServerName::try_from("localhost").unwrap();
        Pair {
            server: conn(Some(&server), expect_proxy, None),
            client: ClientConnection::new(client, name).unwrap(),
            traffic: Traffic::default(),
            now: t0(),
        }
    }

    /// Client -> server: whatever the client has to send.
    fn client_sends(&mut self) {
        let mut wire = Vec::new();
        while self.client.wants_write() {
            self.client.write_tls(&mut wire).unwrap();
        }
        arrive(&mut self.server, &wire);
    }

    /// The server reads until it would block; the events it reported and the plaintext.
    fn server_reads(&mut self) -> (Vec<ReadEvent>, Vec<u8>) {
        let (mut events, mut data) = (Vec::new(), Vec::new());
        let mut buf = [0u8; 1024];
        for _ in 0..1000 {
            if !self.server.may_read() {
                break;
            }
            match self.server.read(&mut buf, self.now, &mut self.traffic) {
                ReadEvent::Data(n) => data.extend_from_slice(&buf[..n]),
                ReadEvent::NeedBytes => {
                    events.push(ReadEvent::NeedBytes);
                    break;
                }
                closed @ ReadEvent::Closed(_) => {
                    events.push(closed);
                    break;
                }
                other => events.push(other),
            }
        }
        (events, data)
    }

    /// Server -> client: the server flushes, the client takes the bytes; its plaintext.
    fn client_receives(&mut self) -> Vec<u8> {
        self.server.flush(self.now, &mut self.traffic).unwrap();
        let wire = std::mem::take(&mut self.server.transport.outgoing);
        let mut cursor = io::Cursor::new(wire);
        while (cursor.position() as usize) < cursor.get_ref().len() {
            if self.client.read_tls(&mut cursor).unwrap() == 0 {
                break;
            }
            self.client.process_new_packets().unwrap();
        }
        let mut plain = Vec::new();
        let _ = self.client.reader().read_to_end(&mut plain);
        plain
    }

    /// Runs the handshake to the end: the server reports `HandshakeDone` once.
    fn handshake(&mut self) {
        let mut done = 0;
        for _ in 0..10 {
            self.client_sends();
            let (events, _) = self.server_reads();
            done += events
                .iter()
                .filter(|e| **e == ReadEvent::HandshakeDone)
                .count();
            self.client_receives();
            if !self.client.is_handshaking() && done > 0 {
                break;
            }
        }
        assert_eq!(done, 1, "the handshake finishes exactly once");
        assert_eq!(self.server.phase(), Phase::Open);
    }

    fn client_writes(&mut self, text: &[u8]) {
        self.client.writer().write_all(text).unwrap();
        self.client_sends();
    }
}

/// A pair past the handshake: the phase every test about an open connection starts from.
fn open_pair() -> Pair {
    let mut pair = Pair::new(false);
    pair.handshake();
    pair
}

/// A pair whose server has begun an orderly close (`q`, a 2 s deadline), its last reply queued
/// and not yet sent: the phase every test about closing starts from.
fn closing_pair(last_reply: &[u8]) -> Pair {
    let mut pair = open_pair();
    pair.server.queue(last_reply);
    let deadline = pair.now + Duration::from_secs(2);
    assert!(pair.server.begin_close(CloseReason::Quit, deadline));
    pair
}

/// A pair whose server lingers: its reply, close_notify and FIN are out, the client has read
/// them, and the client's FIN has not come.
fn lingering_pair() -> Pair {
    let mut pair = closing_pair(b"BYE\n");
    assert_eq!(pair.client_receives(), b"BYE\n");
    assert!(matches!(pair.server.phase(), Phase::Lingering { .. }));
    pair
}

/// The peer's bytes reach the kernel's buffer.
fn arrive(conn: &mut Served, bytes: &[u8]) {
    conn.transport.incoming.extend(bytes);
}

/// The peer's FIN reaches the kernel, behind whatever it sent.
fn peer_fin(conn: &mut Served) {
    conn.transport.client_fin = true;
}

/// A `--no-tls` connection: open from the start.
fn plain_conn(rate: Option<u32>) -> Served {
    conn(None, false, rate)
}

fn lines_of(conn: &mut Served, data: &[u8]) -> Vec<String> {
    let mut seen = Vec::new();
    conn.on_plaintext(data, t0(), |_, frame| {
        seen.push(match frame {
            Frame::Line(l) => String::from_utf8_lossy(l).into_owned(),
            Frame::TooLong => "<too long>".into(),
        });
        Flow::Continue
    });
    seen
}

#[test]
fn a_tls_connection_handshakes_then_reads_plaintext() {
    let mut pair = Pair::new(false);
    assert_eq!(pair.server.phase(), Phase::Handshaking);
    assert!(pair.server.is_handshaking());
    pair.handshake();
    assert!(pair.server.was_greeted());
    pair.client_writes(b"+ 3 4\n");
    let (_, data) = pair.server_reads();
    assert_eq!(data, b"+ 3 4\n");
    assert!(pair.server.tls_description().starts_with("TLSv1_3/"));
}

#[test]
fn queued_replies_leave_in_one_flush_and_write_interest_follows_them() {
    let mut pair = open_pair();
    assert!(!pair.server.wants_write());
    assert!(pair.server.queue(b"OK 7\n"));
    assert!(pair.server.queue(b"OK 8\n"));
    assert!(pair.server.wants_write());
    assert_eq!(pair.client_receives(), b"OK 7\nOK 8\n");
    assert!(!pair.server.wants_write());
    assert_eq!(pair.server.pending_output(), 0);
}

#[test]
fn a_full_socket_keeps_output_queued_until_it_drains() {
    let mut pair = open_pair();
    pair.server.transport.room = Some(0);
    assert!(pair.server.queue(b"OK 1\n"));
    pair.server.flush(pair.now, &mut pair.traffic).unwrap();
    assert!(pair.server.wants_write(), "still wants to write");
    pair.server.transport.room = None;
    assert_eq!(pair.client_receives(), b"OK 1\n");
}

#[test]
fn the_peers_close_notify_reads_as_eof() {
    let mut pair = open_pair();
    pair.client.send_close_notify();
    pair.client_sends();
    let (events, _) = pair.server_reads();
    assert_eq!(events.last(), Some(&ReadEvent::Closed(CloseReason::Eof)));
}

#[test]
fn a_fin_without_close_notify_reads_as_eof_too() {
    let mut pair = open_pair();
    peer_fin(&mut pair.server);
    let (events, _) = pair.server_reads();
    assert_eq!(events.last(), Some(&ReadEvent::Closed(CloseReason::Eof)));
}

#[test]
fn an_orderly_close_sends_the_replies_then_close_notify_then_fin_then_lingers() {
    let mut pair = closing_pair(b"BYE session ended\n");
    assert!(!pair.server.may_read(), "requests are no longer read");
    assert_eq!(pair.server.close_reason(), Some(CloseReason::Quit));
    assert_eq!(pair.client_receives(), b"BYE session ended\n");
    assert!(pair.server.transport.server_fin, "our FIN went out");
    assert!(matches!(pair.server.phase(), Phase::Lingering { .. }));
    // The client reads close_notify as the clean end of the stream.
    let mut rest = Vec::new();
    assert_eq!(pair.client.reader().read_to_end(&mut rest).unwrap(), 0);
}

#[test]
fn a_lingering_connection_throws_late_bytes_away_until_the_peers_fin() {
    let mut pair = lingering_pair();
    assert!(pair.server.may_read(), "read, to see the peer's FIN");
    arrive(&mut pair.server, b"late bytes");
    let (events, data) = pair.server_reads();
    assert_eq!(
        (events.as_slice(), data.as_slice()),
        ([ReadEvent::NeedBytes].as_slice(), b"".as_slice())
    );
    assert!(!pair.server.is_finished());
    peer_fin(&mut pair.server);
    let (events, _) = pair.server_reads();
    assert_eq!(events, [ReadEvent::Closed(CloseReason::Quit)]);
    assert!(pair.server.is_finished());
}

#[test]
fn closing_keeps_its_first_reason_and_its_deadline() {
    let mut pair = open_pair();
    let deadline = pair.now + Duration::from_secs(2);
    assert!(pair.server.begin_close(CloseReason::Quit, deadline));
    assert!(pair.server.begin_close(CloseReason::Shutdown, deadline));
    let timeouts = Timeouts::default();
    assert_eq!(
        pair.server.poll_timeout(&timeouts),
        Some((deadline, CloseReason::Quit))
    );
}

#[test]
fn a_reset_or_a_handshaking_connection_is_dropped_at_once() {
    let mut pair = Pair::new(false);
    let later = pair.now + Duration::from_secs(2);
    assert!(!pair.server.begin_close(CloseReason::Shutdown, later));
    let mut open = open_pair();
    assert!(!open.server.begin_close(CloseReason::Reset, later));
    assert!(!open.server.begin_close(CloseReason::SlowReader, later));
}

#[test]
fn the_handshake_has_a_deadline_and_an_open_connection_an_idle_one() {
    let timeouts = Timeouts {
        handshake: Some(Duration::from_secs(10)),
        idle: Some(Duration::from_secs(300)),
        line: Some(Duration::from_secs(30)),
    };
    let mut pair = Pair::new(false);
    assert_eq!(
        pair.server.poll_timeout(&timeouts),
        Some((
            t0() + Duration::from_secs(10),
            CloseReason::HandshakeTimeout
        ))
    );
    pair.handshake();
    assert_eq!(
        pair.server.poll_timeout(&timeouts),
        Some((t0() + Duration::from_secs(300), CloseReason::IdleTimeout))
    );
    // Any byte restarts the idle clock.
    pair.now += Duration::from_secs(100);
    pair.client_writes(b"x\n");
    pair.server_reads();
    assert_eq!(
        pair.server.poll_timeout(&timeouts),
        Some((
            pair.now + Duration::from_secs(300),
            CloseReason::IdleTimeout
        ))
    );
}

#[test]
fn a_begun_line_must_end_within_the_line_timeout() {
    let timeouts = Timeouts {
        handshake: None,
        idle: Some(Duration::from_secs(300)),
        line: Some(Duration::from_secs(30)),
    };
    let mut conn = plain_conn(None);
    assert_eq!(lines_of(&mut conn, b"+ 1"), Vec::<String>::new());
    assert_eq!(
        conn.poll_timeout(&timeouts),
        Some((t0() + Duration::from_secs(30), CloseReason::LineTimeout))
    );
    // Trickling more of the same line does not move the deadline.
    conn.on_plaintext(b" 2", t0() + Duration::from_secs(20), |_, _| Flow::Continue);
    assert_eq!(
        conn.poll_timeout(&timeouts).map(|d| d.1),
        Some(CloseReason::LineTimeout)
    );
    assert_eq!(lines_of(&mut conn, b"\n"), ["+ 1 2"]);
    assert_eq!(
        conn.poll_timeout(&timeouts).map(|d| d.1),
        Some(CloseReason::IdleTimeout)
    );
}

#[test]
fn output_past_the_pause_mark_stops_reading_until_it_drains() {
    // Without TLS, so that every queued byte waits in our queue (rustls keeps up to 64 KiB of
    // its own, which the pause does not count).
    let mut conn = plain_conn(None);
    let mut traffic = Traffic::default();
    conn.transport.room = Some(0);
    let reply = vec![b'x'; 1000];
    while conn.pending_output() <= READ_PAUSE_OUTPUT {
        assert!(conn.queue(&reply));
    }
    assert!(conn.review_output_backlog());
    assert!(!conn.may_read());
    assert!(!conn.flush(t0(), &mut traffic).unwrap(), "nothing drained");
    conn.transport.room = Some(10_000);
    assert!(
        !conn.flush(t0(), &mut traffic).unwrap(),
        "not yet below half"
    );
    conn.transport.room = None;
    assert!(conn.flush(t0(), &mut traffic).unwrap(), "resumed");
    assert!(conn.may_read());
}

#[test]
fn a_client_that_never_reads_is_a_slow_reader_past_one_mebibyte() {
    let mut conn = plain_conn(None);
    conn.transport.room = Some(0);
    let chunk = vec![b'm'; 64 * 1024];
    let mut queued = 0;
    while conn.queue(&chunk) {
        queued += chunk.len();
        assert!(queued <= MAX_PENDING_OUTPUT);
    }
    assert_eq!(queued, MAX_PENDING_OUTPUT);
}

#[test]
fn the_rate_limit_holds_lines_without_a_token_and_loses_none() {
    let mut conn = plain_conn(Some(1));
    let seen = lines_of(&mut conn, b"a\nb\nc\n");
    assert_eq!(seen, ["a"], "the burst of one line, then a pause");
    assert!(conn.pauses().contains(Pauses::RATE));
    assert!(!conn.may_read());
    assert!(conn.rate_token_due(t0()).is_err());
    assert!(conn.rate_token_due(t0() + Duration::from_secs(1)).is_ok());
    assert!(conn.may_read());
    let held = conn.take_held();
    assert_eq!(held, b"b\nc\n");
    let mut later = Vec::new();
    conn.on_plaintext(&held, t0() + Duration::from_secs(3), |_, f| {
        if let Frame::Line(l) = f {
            later.push(l.to_vec());
        }
        Flow::Continue
    });
    assert_eq!(later, [b"b".to_vec(), b"c".to_vec()]);
}

#[test]
fn a_quit_line_drops_what_follows_it_and_a_hold_keeps_it() {
    let mut conn = plain_conn(None);
    conn.on_plaintext(b"one\ntwo\nthree\n", t0(), |_, f| match f {
        Frame::Line(b"one") => Flow::Hold,
        _ => Flow::Continue,
    });
    assert_eq!(conn.take_held(), b"two\nthree\n");
    conn.on_plaintext(b"q\nlost\n", t0(), |_, _| Flow::Stop);
    assert!(!conn.has_held());
    assert_eq!(conn.session().requests, 2);
}

#[test]
fn fanout_pause_is_one_of_the_reasons_not_to_read() {
    let mut conn = plain_conn(None);
    assert!(conn.may_read());
    conn.set_fanout_pause(true);
    assert!(!conn.may_read());
    conn.set_fanout_pause(false);
    assert!(conn.may_read());
}

#[test]
fn a_proxy_header_split_across_reads_is_taken_off_exactly() {
    let mut pair = Pair::new(true);
    assert_eq!(pair.server.phase(), Phase::AwaitingProxy);
    let header = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 5000\r\n";
    arrive(&mut pair.server, &header[..20]);
    let (events, _) = pair.server_reads();
    assert_eq!(events, [ReadEvent::NeedBytes]);
    arrive(&mut pair.server, &header[20..]);
    // The client's hello comes in the same segment as the header's end.
    pair.client_sends();
    let (events, _) = pair.server_reads();
    assert_eq!(events[0], ReadEvent::ProxyDone);
    assert_eq!(
        pair.server.peer().addr,
        "203.0.113.7:51234".parse().unwrap()
    );
    assert_eq!(pair.server.peer().proxy, Some(peer()));
    pair.client_receives();
    pair.handshake();
}

#[test]
fn a_malformed_proxy_header_is_refused_with_its_reason() {
    let mut conn = conn(None, true, None);
    arrive(&mut conn, b"GET / HTTP/1.1\r\n\r\n");
    let mut buf = [0u8; 256];
    let event = conn.read(&mut buf, t0(), &mut Traffic::default());
    assert_eq!(event, ReadEvent::Closed(CloseReason::ProxyError));
    assert!(conn.error().is_some());
}

#[test]
fn plain_text_on_a_tls_port_gets_one_plain_line_before_the_drop() {
    let (server, _) = in_memory_pair();
    let mut conn = conn(Some(&server), false, None);
    arrive(&mut conn, b"+ 3 4\n");
    let mut buf = [0u8; 256];
    let event = conn.read(&mut buf, t0(), &mut Traffic::default());
    assert_eq!(event, ReadEvent::Closed(CloseReason::TlsError));
    conn.send_last_words();
    assert_eq!(conn.transport.outgoing, PLAIN_TEXT_ON_TLS_REPLY);
    assert!(conn.error().is_some());
}

#[test]
fn binary_that_is_not_tls_gets_the_alert_rustls_queued_not_the_plain_line() {
    let (server, _) = in_memory_pair();
    // An SSLv2-format hello's first bytes, and text with no line end.
    for bytes in [
        &b"\x80\x2e\x01\x03\x01\x00\x15\x00\x00\x00\x10"[..],
        b"hello",
    ] {
        let mut conn = conn(Some(&server), false, None);
        arrive(&mut conn, bytes);
        let mut buf = [0u8; 256];
        let event = conn.read(&mut buf, t0(), &mut Traffic::default());
        if bytes == b"hello" {
            // Text may still become a line: the verdict waits for more, sending nothing...
            assert_eq!(event, ReadEvent::NeedBytes);
            conn.flush(t0(), &mut Traffic::default()).unwrap();
            assert!(conn.transport.outgoing.is_empty(), "the alert went ahead");
            // ...until the peer hangs up without a line end.
            peer_fin(&mut conn);
            let event = conn.read(&mut buf, t0(), &mut Traffic::default());
            assert_eq!(event, ReadEvent::Closed(CloseReason::TlsError));
        } else {
            assert_eq!(event, ReadEvent::Closed(CloseReason::TlsError));
        }
        conn.send_last_words();
        // An alert record: content type 21, then a fatal decode_error (2, 50).
        assert_eq!(conn.transport.outgoing.first(), Some(&21), "{bytes:?}");
        assert!(conn.transport.outgoing.ends_with(&[2, 50]), "{bytes:?}");
        assert!(
            matches!(conn.error(), Some(ConnError::NotTls(what)) if what.starts_with("not TLS: ")),
            "{bytes:?}"
        );
    }
}

#[test]
fn a_key_update_from_the_client_keeps_the_stream_going() {
    let mut pair = open_pair();
    pair.client_writes(b"before\n");
    pair.client.refresh_traffic_keys().unwrap();
    pair.client_writes(b"after\n");
    let (_, data) = pair.server_reads();
    assert_eq!(data, b"before\nafter\n");
    // The server answers the key update with its own, then replies as usual.
    pair.server.queue(b"OK\n");
    assert_eq!(pair.client_receives(), b"OK\n");
}

#[test]
fn places_are_given_back_exactly_once() {
    let mut conn = plain_conn(None);
    assert_eq!(conn.take_places().map(|p| p.client), Some(true));
    assert_eq!(conn.take_places(), None);
}

#[test]
fn reads_in_small_pieces_lose_nothing() {
    let mut pair = open_pair();
    let text: Vec<u8> = (0..5000u32)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    pair.client_writes(&text);
    let mut buf = [0u8; 7];
    let mut got = Vec::new();
    loop {
        match pair.server.read(&mut buf, pair.now, &mut pair.traffic) {
            ReadEvent::Data(n) => got.extend_from_slice(&buf[..n]),
            ReadEvent::NeedBytes => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, text);
}

#[test]
fn a_scrape_lives_ten_seconds_whatever_it_does() {
    let setup = Setup {
        tls: None,
        expect_proxy: true,
        max_line: MAX_LINE,
        rate_limit: Some(crate::rate::Pace::lines(1)),
    };
    let places = Places {
        scrape: true,
        ..Places::default()
    };
    let conn = Conn::new(id(), peer(), Kind::Scrape, places, setup, t0()).unwrap();
    // No PROXY header and no rate limit for the metrics endpoint: it is open at once.
    assert_eq!(conn.phase(), Phase::Open);
    assert!(!conn.was_greeted());
    let timeouts = Timeouts {
        idle: Some(Duration::from_secs(300)),
        ..Timeouts::default()
    };
    assert_eq!(
        conn.poll_timeout(&timeouts),
        Some((t0() + SCRAPE_LIFETIME, CloseReason::IdleTimeout))
    );
}

#[test]
fn every_byte_handed_in_is_taken_before_more_is_asked_for() {
    // Two requests in one read, a plaintext buffer that holds one: both come out, then
    // `NeedBytes` with the input all taken.
    let mut conn = plain_conn(None);
    let mut input: &[u8] = b"+ 2 2\n+ 1 1\n";
    let mut buf = [0u8; 6];
    for expected in [b"+ 2 2\n", b"+ 1 1\n"] {
        assert_eq!(
            conn.handle_bytes(&mut input, &mut buf, t0()),
            ReadEvent::Data(6)
        );
        assert_eq!(&buf, expected);
    }
    assert_eq!(
        conn.handle_bytes(&mut input, &mut buf, t0()),
        ReadEvent::NeedBytes
    );
    assert!(input.is_empty());
    // With TLS: two records in one read.
    let mut pair = open_pair();
    pair.client_writes(b"+ 3 4\n");
    pair.client_writes(b"+ 5 6\n");
    let (events, data) = pair.server_reads();
    assert_eq!(
        (events.as_slice(), data.as_slice()),
        (
            [ReadEvent::NeedBytes].as_slice(),
            b"+ 3 4\n+ 5 6\n".as_slice()
        )
    );
}

#[test]
fn a_full_read_or_a_reported_fin_reads_on_to_the_end() {
    // A read that filled the buffer proves nothing: the next read is made.
    let mut plain = plain_conn(None);
    arrive(&mut plain, b"+ 2 2\n+ 3 3\n");
    let mut buf = [0u8; 6];
    assert_eq!(
        plain.read(&mut buf, t0(), &mut Traffic::default()),
        ReadEvent::Data(6)
    );
    assert_eq!(
        plain.read(&mut buf, t0(), &mut Traffic::default()),
        ReadEvent::Data(6)
    );
    // Data and FIN in one event: reading goes on past the data to the FIN.
    let mut pair = open_pair();
    pair.client_writes(b"last line\n");
    peer_fin(&mut pair.server);
    let (events, data) = pair.server_reads();
    assert_eq!(data, b"last line\n");
    assert_eq!(events.last(), Some(&ReadEvent::Closed(CloseReason::Eof)));
}

#[test]
fn a_peer_that_closed_first_gets_close_notify_and_the_socket_is_dropped_without_shutdown() {
    let mut pair = open_pair();
    pair.client.send_close_notify();
    pair.client_sends();
    peer_fin(&mut pair.server);
    let (events, _) = pair.server_reads();
    assert_eq!(events.last(), Some(&ReadEvent::Closed(CloseReason::Eof)));
    // The close_notify ends the reading; the driver reads on and finds the FIN behind it
    // (`reactor::driver::fin_is_here`).
    pair.server.handle_eof();
    let deadline = pair.now + Duration::from_secs(2);
    assert!(pair.server.begin_close(CloseReason::Eof, deadline));
    let reads = pair.server.transport.reads;
    // Our close_notify goes out; dropping the socket sends the FIN (no unread byte: no reset).
    assert_eq!(pair.client_receives(), b"");
    assert!(!pair.server.transport.server_fin, "no shutdown(SHUT_WR)");
    assert!(pair.server.is_finished());
    let (events, _) = pair.server_reads();
    assert_eq!(events, [ReadEvent::Closed(CloseReason::Eof)]);
    assert_eq!(
        pair.server.transport.reads, reads,
        "no read to wait for the FIN that is here"
    );
}

#[test]
fn a_proxy_header_and_the_bytes_behind_it_in_one_read_are_told_apart() {
    let mut conn = conn(None, true, None);
    let mut input: &[u8] = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 5000\r\n+ 3 4\n";
    let mut buf = [0u8; 64];
    assert_eq!(
        conn.handle_bytes(&mut input, &mut buf, t0()),
        ReadEvent::ProxyDone
    );
    assert_eq!(
        input, b"+ 3 4\n",
        "the client's bytes stay for the line framer"
    );
    assert_eq!(
        conn.handle_bytes(&mut input, &mut buf, t0()),
        ReadEvent::Data(6)
    );
    assert_eq!(&buf[..6], b"+ 3 4\n");
}

#[test]
fn a_fin_inside_the_proxy_header_refuses_it_as_cut_short() {
    let mut conn = conn(None, true, None);
    let mut buf = [0u8; 64];
    let mut input: &[u8] = b"PROXY TCP4 203.0.113.7 ";
    assert_eq!(
        conn.handle_bytes(&mut input, &mut buf, t0()),
        ReadEvent::NeedBytes
    );
    conn.handle_eof();
    assert_eq!(
        conn.handle_bytes(&mut &b""[..], &mut buf, t0()),
        ReadEvent::Closed(CloseReason::ProxyError)
    );
    assert_eq!(
        conn.error(),
        Some(ConnError::Proxy(
            "the connection ended inside its PROXY header"
        ))
    );
}

#[test]
fn each_timeout_decides_its_own_consequence_on_simulated_time() {
    let timeouts = Timeouts {
        handshake: Some(Duration::from_secs(10)),
        idle: Some(Duration::from_secs(300)),
        line: Some(Duration::from_secs(30)),
    };
    let secs = |n| t0() + Duration::from_secs(n);
    // A line begun and not finished: nothing before its deadline, then the SPEC's ERR line and
    // an orderly close.
    let mut conn = plain_conn(None);
    assert_eq!(lines_of(&mut conn, b"+ 1"), Vec::<String>::new());
    assert_eq!(conn.handle_timeout(secs(29), &timeouts), None);
    assert_eq!(
        conn.handle_timeout(secs(30), &timeouts),
        Some(Expiry::Close(CloseReason::LineTimeout))
    );
    assert_eq!(conn.pending_output(), LINE_TIMEOUT_REPLY.len());
    // An idle greeted client: told `BYE idle timeout` (SPEC "An idle close says so"), then
    // closed in order.
    let mut idle = plain_conn(None);
    assert_eq!(
        idle.handle_timeout(secs(300), &timeouts),
        Some(Expiry::Close(CloseReason::IdleTimeout))
    );
    assert_eq!(idle.pending_output(), IDLE_TIMEOUT_REPLY.len());
    // No PROXY header in time: a proxy error that says so.
    let mut proxied = conn_with_proxy();
    assert_eq!(
        proxied.handle_timeout(secs(10), &timeouts),
        Some(Expiry::Close(CloseReason::ProxyError))
    );
    assert_eq!(
        proxied.error(),
        Some(ConnError::Proxy(
            "no PROXY header within --handshake-timeout"
        ))
    );
    // A close that takes past its deadline: dropped, for the reason it began with.
    let mut closing = plain_conn(None);
    assert!(closing.begin_close(CloseReason::Quit, secs(2)));
    closing.queue(b"BYE\n");
    assert_eq!(closing.handle_timeout(secs(1), &timeouts), None);
    assert_eq!(
        closing.handle_timeout(secs(2), &timeouts),
        Some(Expiry::Drop(CloseReason::Quit))
    );
}

fn conn_with_proxy() -> Served {
    conn(None, true, None)
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Hands `wire` to `conn` cut into pieces of the sizes in `cuts` (cycled), as reads of any
    /// size would bring it; returns the events (`NeedBytes` left out) and the plaintext.
    fn feed_in_pieces(conn: &mut Conn, wire: &[u8], cuts: &[usize]) -> (Vec<ReadEvent>, Vec<u8>) {
        let (mut events, mut plain) = (Vec::new(), Vec::new());
        let mut buf = [0u8; 17 * 1024];
        let mut at = 0;
        for &cut in cuts.iter().cycle() {
            if at >= wire.len() {
                break;
            }
            let end = (at + cut).min(wire.len());
            let mut input = &wire[at..end];
            at = end;
            loop {
                match conn.handle_bytes(&mut input, &mut buf, t0()) {
                    ReadEvent::NeedBytes => break,
                    ReadEvent::Data(n) => plain.extend_from_slice(&buf[..n]),
                    other => events.push(other),
                }
            }
        }
        (events, plain)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// TLS records cut anywhere, in reads of any size, give the same plaintext, once.
        #[test]
        fn tls_records_cut_anywhere_give_the_same_plaintext(
            lines in proptest::collection::vec("[ -~]{0,300}", 1..20),
            cuts in proptest::collection::vec(1usize..5000, 1..8),
        ) {
            let mut pair = open_pair();
            let mut text = Vec::new();
            let mut wire = Vec::new();
            for line in &lines {
                let line = format!("{line}\n");
                text.extend_from_slice(line.as_bytes());
                pair.client.writer().write_all(line.as_bytes()).unwrap();
                while pair.client.wants_write() {
                    pair.client.write_tls(&mut wire).unwrap();
                }
            }
            let (events, plain) = feed_in_pieces(&mut pair.server, &wire, &cuts);
            prop_assert!(events.is_empty(), "{events:?}");
            prop_assert_eq!(plain, text);
        }

        /// A PROXY header and the lines behind it, cut anywhere: the header is taken once, the
        /// lines come out whole.
        #[test]
        fn a_proxy_header_and_its_tail_cut_anywhere_are_told_apart(
            tail in "[ -~\n]{0,200}",
            cuts in proptest::collection::vec(1usize..64, 1..8),
        ) {
            let mut served = conn(None, true, None);
            let mut wire = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 5000\r\n".to_vec();
            wire.extend_from_slice(tail.as_bytes());
            let (events, plain) = feed_in_pieces(&mut served, &wire, &cuts);
            prop_assert_eq!(events, vec![ReadEvent::ProxyDone]);
            prop_assert_eq!(plain, tail.as_bytes());
            prop_assert_eq!(served.peer().addr, "203.0.113.7:51234".parse().unwrap());
        }
    }
}

/// A client always a little behind (it takes 900 of every 1,000 bytes queued) never lets the
/// queue empty: the bytes it has taken are dropped from the front as the queue grows, so the
/// memory follows what is unsent, not all that was ever sent (2 MB here before).
#[test]
fn a_reader_always_a_little_behind_keeps_only_its_unsent_output() {
    let mut conn = plain_conn(None);
    let mut traffic = Traffic::default();
    for _ in 0..2000 {
        assert!(conn.queue(&[b'x'; 1000]));
        conn.transport.room = Some(900);
        conn.flush(t0(), &mut traffic).unwrap();
    }
    let (pending, memory) = (conn.pending_output(), conn.output_memory());
    assert_eq!(pending, 2000 * 100);
    assert!(
        memory <= 4 * pending + 64 * 1024,
        "{memory} bytes held for {pending} unsent"
    );
}
