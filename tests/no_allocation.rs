//! The hot path allocates nothing per request line: framing (`LineBuffer`), the calc service,
//! the pace (`TokenBucket`, the chat's default) and the `Outbox` reuse their buffers once warm;
//! so does the connection core (`Conn`: bytes in, frame, queue, bytes out), which adds no allocation to
//! what rustls's record layer makes. Counted with a global allocator that tallies every
//! allocation the measured thread makes (the test harness's own threads are not counted).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConnection};
use securetcp::conn::{Conn, Kind, Places, ReadEvent, Setup};

use securetcp::line::{Frame, LineBuffer};
use securetcp::outbox::{Action, ConnId, Outbox};
use securetcp::rate::{Pace, TokenBucket};
use securetcp::service::Service;
use securetcp::service::calc::Calc;

struct Counting;

thread_local! {
    /// Allocations made by this thread while it is measured (`None`: not measured). Per thread:
    /// the test harness's own threads (its output capture, its slow-test timer) and the other
    /// tests allocate when they like, and are not the request path.
    static ALLOCATIONS: Cell<Option<usize>> = const { Cell::new(None) };
}

fn count() {
    // `try_with`: a thread being torn down has no thread-locals left, and is not measured.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get().map(|n| n + 1)));
}

/// Runs `f` and says how many allocations (and reallocations) this thread made in it.
fn allocations_in(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|n| n.set(Some(0)));
    f();
    ALLOCATIONS.with(|n| n.take()).unwrap_or(0)
}

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One read's worth of pipelined requests through framing, the service and the outbox, the
/// replies gathered into one output queue as the reactor does.
fn serve_batch(
    lines: &mut LineBuffer,
    calc: &mut Calc,
    out: &mut Outbox,
    queue: &mut Vec<u8>,
    pace: &mut TokenBucket,
    input: &[u8],
) {
    let id = ConnId::new(1, 0);
    let now = std::time::Instant::now();
    lines.feed(input, |frame| {
        if let Frame::Line(bytes) = frame {
            if let Ok(text) = std::str::from_utf8(bytes) {
                calc.on_line(id, text, out);
            }
            pace.spend(bytes.len());
            let _ = pace.has_token(now);
        }
        true
    });
    for action in out.actions() {
        if let Action::Send { bytes, .. } = action {
            queue.extend_from_slice(out.bytes(bytes));
        }
    }
    out.clear();
}

#[test]
fn a_warm_request_path_allocates_nothing_per_line() {
    let mut lines = LineBuffer::new(4096);
    let mut calc = Calc::default();
    let mut out = Outbox::new();
    let mut queue = Vec::new();
    let mut pace = TokenBucket::new(Pace::CHAT_DEFAULT, std::time::Instant::now());
    // 100 requests per read, some split across reads, as a pipelining client sends them.
    let mut input = Vec::new();
    // Half the general parser's way, half the fast path's (`A OP B`, `OP A B`).
    for i in 0..50 {
        input.extend_from_slice(format!("{i} * 3 + (2 - 1) ^ 2\n").as_bytes());
        let fast = if i % 2 == 0 {
            format!("{i} * -3\n")
        } else {
            format!("+ {i} 7\n")
        };
        input.extend_from_slice(fast.as_bytes());
    }
    input.extend_from_slice(b"12 + ");
    let tail: &[u8] = b"42\n";
    // Warm up: buffers reach their working size.
    for _ in 0..3 {
        serve_batch(
            &mut lines, &mut calc, &mut out, &mut queue, &mut pace, &input,
        );
        serve_batch(&mut lines, &mut calc, &mut out, &mut queue, &mut pace, tail);
        queue.clear();
    }
    let allocations = allocations_in(|| {
        for _ in 0..100 {
            serve_batch(
                &mut lines, &mut calc, &mut out, &mut queue, &mut pace, &input,
            );
            serve_batch(&mut lines, &mut calc, &mut out, &mut queue, &mut pace, tail);
            queue.clear();
        }
    });
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for 10,100 requests"
    );
    // And the replies were real.
    serve_batch(
        &mut lines,
        &mut calc,
        &mut out,
        &mut queue,
        &mut pace,
        b"12 + 42\n",
    );
    assert_eq!(queue, b"OK 54\n");
}

/// An in-memory socket: what the client sent, what the server wrote, and the buffer the
/// reactor lends a connection to hand its output out in. Its buffers are reserved up front, so
/// it allocates nothing itself.
struct Wire {
    incoming: Vec<u8>,
    taken: usize,
    outgoing: Vec<u8>,
    transmit: Vec<u8>,
}

impl Wire {
    fn new() -> Wire {
        Wire {
            incoming: Vec::with_capacity(1 << 16),
            taken: 0,
            outgoing: Vec::with_capacity(1 << 16),
            transmit: Vec::with_capacity(1 << 16),
        }
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = &self.incoming[self.taken..];
        if left.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = left.len().min(buf.len());
        buf[..n].copy_from_slice(&left[..n]);
        self.taken += n;
        if self.taken == self.incoming.len() {
            self.incoming.clear();
            self.taken = 0;
        }
        Ok(n)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const REQUEST: &[u8] = b"+ 1 2\n";
const REPLY: &[u8] = b"OK 3\n";

/// One request through the connection core as the reactor's driver drives it: the bytes read
/// handed in, the plaintext framed, the reply queued, the bytes handed out written. Returns the
/// lines it framed.
fn conn_round(conn: &mut Conn, wire: &mut Wire, plaintext: &mut [u8], now: Instant) -> usize {
    let mut lines = 0;
    let mut input = &wire.incoming[wire.taken..];
    loop {
        match conn.handle_bytes(&mut input, plaintext, now) {
            ReadEvent::Data(n) => conn.on_plaintext(&plaintext[..n], now, |_, _| {
                lines += 1;
                securetcp::line::Flow::Continue
            }),
            ReadEvent::NeedBytes => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    wire.incoming.clear();
    wire.taken = 0;
    for _ in 0..lines {
        conn.queue(REPLY);
    }
    flush(conn, wire, now);
    lines
}

/// The driver's write: what the connection hands out, all taken by the socket.
fn flush(conn: &mut Conn, wire: &mut Wire, now: Instant) {
    loop {
        wire.transmit.clear();
        conn.poll_transmit(&mut wire.transmit);
        if wire.transmit.is_empty() {
            break;
        }
        wire.outgoing.extend_from_slice(&wire.transmit);
        conn.handle_transmitted(&wire.transmit, wire.transmit.len(), now);
    }
}

/// The client's side, not measured: a request into the server's socket, the replies out of it.
fn client_sends(client: &mut ClientConnection, to: &mut Wire, scratch: &mut Vec<u8>) {
    client.writer().write_all(REQUEST).unwrap();
    scratch.clear();
    while client.wants_write() {
        client.write_tls(scratch).unwrap();
    }
    to.incoming.extend_from_slice(scratch);
}

fn client_receives(client: &mut ClientConnection, from: &mut Wire) -> Vec<u8> {
    let mut wire = &from.outgoing[..];
    while !wire.is_empty() {
        client.read_tls(&mut wire).unwrap();
        client.process_new_packets().unwrap();
    }
    from.outgoing.clear();
    let mut plain = Vec::new();
    let _ = client.reader().read_to_end(&mut plain);
    plain
}

#[test]
fn the_connection_core_adds_no_allocation_to_a_request() {
    const ROUNDS: usize = 200;
    let now = Instant::now();
    let mut buf = vec![0u8; 16 * 1024];
    let mut scratch = Vec::with_capacity(1 << 16);
    let setup = |tls| Setup {
        tls,
        expect_proxy: false,
        max_line: 4096,
        rate_limit: None,
    };
    let new_conn = |tls| {
        let id = securetcp::outbox::ConnId::new(1, 0);
        let peer = "127.0.0.1:40000".parse().unwrap();
        let places = Places::default();
        Conn::new(id, peer, Kind::Client, places, setup(tls), now).unwrap()
    };

    // Without TLS: nothing at all.
    let mut plain = new_conn(None);
    let mut wire = Wire::new();
    let mut round = |conn: &mut Conn| {
        wire.incoming.extend_from_slice(REQUEST);
        let n = allocations_in(|| assert_eq!(conn_round(conn, &mut wire, &mut buf, now), 1));
        assert_eq!(wire.outgoing, REPLY);
        wire.outgoing.clear();
        n
    };
    for _ in 0..10 {
        round(&mut plain);
    }
    let allocations: usize = (0..ROUNDS).map(|_| round(&mut plain)).sum();
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for {ROUNDS} plain requests"
    );

    // With TLS: what the core makes, against what rustls alone makes for the same records.
    let (server_config, client_config) = securetcp::tls::in_memory_pair();
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = new_conn(Some(&server_config));
    let mut client = ClientConnection::new(Arc::clone(&client_config), name.clone()).unwrap();
    let mut wire = Wire::new();
    while conn.is_handshaking() {
        scratch.clear();
        while client.wants_write() {
            client.write_tls(&mut scratch).unwrap();
        }
        let mut input = &scratch[..];
        while !matches!(
            conn.handle_bytes(&mut input, &mut buf, now),
            ReadEvent::NeedBytes
        ) {}
        flush(&mut conn, &mut wire, now);
        client_receives(&mut client, &mut wire);
    }
    let mut core_round = |conn: &mut Conn, client: &mut ClientConnection| {
        client_sends(client, &mut wire, &mut scratch);
        let n = allocations_in(|| assert_eq!(conn_round(conn, &mut wire, &mut buf, now), 1));
        assert_eq!(client_receives(client, &mut wire), REPLY);
        n
    };
    for _ in 0..10 {
        core_round(&mut conn, &mut client);
    }
    let core: usize = (0..ROUNDS)
        .map(|_| core_round(&mut conn, &mut client))
        .sum();

    // rustls alone: the same record in, the same reply out.
    let mut server = ServerConnection::new(server_config).unwrap();
    let mut client = ClientConnection::new(client_config, name).unwrap();
    let mut wire = Wire::new();
    let mut plaintext = [0u8; 64];
    while server.is_handshaking() || client.is_handshaking() {
        scratch.clear();
        while client.wants_write() {
            client.write_tls(&mut scratch).unwrap();
        }
        wire.incoming.extend_from_slice(&scratch);
        while !wire.incoming.is_empty() {
            server.read_tls(&mut wire).unwrap();
            server.process_new_packets().unwrap();
        }
        while server.wants_write() {
            server.write_tls(&mut wire).unwrap();
        }
        client_receives(&mut client, &mut wire);
    }
    let mut rustls_round = |server: &mut ServerConnection, client: &mut ClientConnection| {
        client_sends(client, &mut wire, &mut scratch);
        let n = allocations_in(|| {
            while !wire.incoming.is_empty() {
                server.read_tls(&mut wire).unwrap();
                server.process_new_packets().unwrap();
            }
            let got = server.reader().read(&mut plaintext).unwrap_or(0);
            if got > 0 {
                server.writer().write_all(REPLY).unwrap();
            }
            while server.wants_write() {
                server.write_tls(&mut wire).unwrap();
            }
        });
        let replies = client_receives(client, &mut wire);
        (n, replies)
    };
    for _ in 0..10 {
        rustls_round(&mut server, &mut client);
    }
    let alone: usize = (0..ROUNDS)
        .map(|_| {
            let (n, replies) = rustls_round(&mut server, &mut client);
            assert_eq!(replies, REPLY);
            n
        })
        .sum();
    assert!(
        core <= alone,
        "the core made {core} allocations for {ROUNDS} TLS requests, rustls alone {alone}"
    );
    eprintln!(
        "{ROUNDS} TLS requests: {core} allocations through the core, {alone} in rustls alone"
    );
}

#[test]
fn a_paced_connection_resumes_without_allocating() {
    // `--rate-limit 1000`: a burst of 1,000 lines, then one a millisecond. One read brings 3,000
    // lines; the rest is held, and every resume answers what the bucket allows and holds the rest.
    let start = Instant::now();
    let setup = Setup {
        tls: None,
        expect_proxy: false,
        max_line: 4096,
        rate_limit: Some(Pace::lines(1000)),
    };
    let id = securetcp::outbox::ConnId::new(1, 0);
    let peer = "127.0.0.1:40000".parse().unwrap();
    let mut conn = Conn::new(id, peer, Kind::Client, Places::default(), setup, start).unwrap();
    let input: Vec<u8> = REQUEST.repeat(3000);
    let mut answered = 0;
    conn.on_plaintext(&input, start, |_, _| {
        answered += 1;
        securetcp::line::Flow::Continue
    });
    assert!(conn.has_held(), "the pace held the rest");
    let resume = |conn: &mut Conn, at: Instant, answered: &mut usize| {
        if conn.rate_token_due(at).is_ok() && conn.has_held() {
            let held = conn.take_held();
            conn.on_plaintext(&held, at, |_, _| {
                *answered += 1;
                securetcp::line::Flow::Continue
            });
            conn.give_back_held(held);
        }
    };
    let mut ms = 0;
    for _ in 0..10 {
        ms += 1;
        resume(&mut conn, start + Duration::from_millis(ms), &mut answered);
    }
    let before = answered;
    let allocations = allocations_in(|| {
        for _ in 0..500 {
            ms += 1;
            resume(&mut conn, start + Duration::from_millis(ms), &mut answered);
        }
    });
    assert!(
        answered - before >= 400,
        "resumes answered {}",
        answered - before
    );
    assert_eq!(allocations, 0, "{allocations} allocations for 500 resumes");
}
