//! One connection as a state machine: its TLS state, its partial line, its queued output, the
//! reasons it is not read, and the phase it is in. It keeps its own invariants: its fields are
//! private and every change goes through a method named for what it means.
//!
//! ```text
//!  accept ─┬─ --proxy-protocol ─> AwaitingProxy ──header──┐
//!          ├─ TLS ───────────────────────────────────────> Handshaking ──done──┐
//!          └─ --no-tls ──────────────────────────────────────────────────────> Open
//!  Open ── quit / refusal sent / idle / line timeout / shutdown ──> Closing { reason, deadline }
//!  Closing ── output, close_notify and FIN all sent ──> Lingering { reason, deadline }
//!  Lingering ── peer's FIN, or deadline ──> gone
//!  any phase ── reset, TLS error, slow reader, handshake timeout, eviction ──> gone at once
//! ```
//!
//! It does no IO of its own choosing: the reactor tells it when to read ([`Conn::read`]) and when
//! to write ([`Conn::flush`]), and passes the time in; every byte goes through its [`Transport`]
//! (a `mio` socket, or an in-memory pipe in the unit tests). Methods come in the order quinn-proto
//! documents for its `Connection`: getters, `read`/`on_*` for input, commands (`queue`,
//! `begin_close`), then `flush` and `interest` for output.

mod first_bytes;
mod identity;
mod parts;
mod reason;
mod transport;

#[cfg(test)]
mod tests;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Interest;
use rustls::ServerConnection;

use crate::line::{Flow, Frame, LineBuffer};
use crate::outbox::ConnId;
use crate::proxy::Parsed;
use crate::rate::TokenBucket;

use first_bytes::FirstBytes;
pub use parts::{Kind, Pauses, Peer, Phase, Places, ReadEvent, Session, Setup, Timeouts, Traffic};
pub use reason::{CloseReason, Refusal};
pub use transport::Transport;
use transport::{interrupted, would_block};

/// Reply bytes queued beyond this (not yet taken by the kernel) stop the reading of more
/// requests from the same client until they drain: a client that pipelines without reading
/// is slowed down, not buffered without bound. Checked after every request line.
pub const READ_PAUSE_OUTPUT: usize = 64 * 1024;

/// Output queued beyond this is a client that does not read at all (SPEC: 1 MiB for chat);
/// it is disconnected as a slow reader so that nobody else waits and memory stays bounded.
pub const MAX_PENDING_OUTPUT: usize = 1 << 20;

/// A `--metrics` connection is closed this long after it was accepted, answered or not (SPEC:
/// the metrics listener holds its connections at most 10 s).
pub const SCRAPE_LIFETIME: Duration = Duration::from_secs(10);

/// The plain-text answer to a client that speaks plain text on a TLS port.
pub const PLAIN_TEXT_ON_TLS_REPLY: &[u8] = b"ERR this port speaks TLS\n";

/// An emptied output buffer larger than this is given back to the allocator, so an idle
/// connection holds little memory.
const KEEP_OUTPUT_CAPACITY: usize = 4 * 1024;

/// One connection (see the module's first lines). `T` is its socket: `mio::net::TcpStream` in
/// the server, an in-memory pipe in the tests.
pub struct Conn<T> {
    id: ConnId,
    kind: Kind,
    peer: Peer,
    transport: T,
    /// `None` for `--no-tls` and scrapes. Boxed: a rustls connection is large, and the table of
    /// slots should stay dense.
    tls: Option<Box<ServerConnection>>,
    phase: Phase,
    lines: LineBuffer,
    /// Plaintext replies not yet handed to rustls (or to the socket, without TLS).
    out: Vec<u8>,
    out_sent: usize,
    /// The peer's FIN (or close_notify) was seen.
    peer_closed: bool,
    /// Some byte has come from the peer (eviction spares those that spoke).
    spoke: bool,
    /// What the first bytes to rustls looked like: a plain-text line, or binary that is not TLS.
    first_bytes: FirstBytes,
    /// The poll said the peer closed its side while we waited for a PROXY header: peeking
    /// shows the same bytes again and again, so this is the only sign of the end.
    fin_before_header: bool,
    pauses: Pauses,
    /// `--rate-limit` (or the chat's default pace): the tokens for its request lines.
    bucket: Option<Box<TokenBucket>>,
    places: Option<Places>,
    session: Session,
    /// What went wrong, for a `tls-error` or `proxy-error` close line (boxed: rare).
    failure: Option<Box<Failure>>,
    opened_at: Instant,
    last_activity: Instant,
    /// When the socket last took output bytes: a client far behind that still drains is slow,
    /// one that does not is stalled.
    last_drained: Instant,
    /// When the line now being received began (`--line-timeout`); `None` between lines.
    line_started: Option<Instant>,
}

impl<T: Transport> Conn<T> {
    /// A new connection of `kind`. With TLS it starts handshaking (after the PROXY header, when
    /// one is expected); without, it is open at once. Errors: rustls could not start a session.
    pub fn new(
        id: ConnId,
        transport: T,
        peer: SocketAddr,
        kind: Kind,
        places: Places,
        setup: Setup<'_>,
        now: Instant,
    ) -> Result<Conn<T>, rustls::Error> {
        let tls = match (setup.tls, kind) {
            (_, Kind::Scrape) | (None, _) => None,
            (Some(config), _) => Some(Box::new(ServerConnection::new(Arc::clone(config))?)),
        };
        let phase = match (setup.expect_proxy && kind != Kind::Scrape, tls.is_some()) {
            (true, _) => Phase::AwaitingProxy,
            (false, true) => Phase::Handshaking,
            (false, false) => Phase::Open,
        };
        Ok(Conn {
            id,
            kind,
            peer: Peer {
                addr: peer,
                proxy: None,
                health_check: false,
            },
            transport,
            tls,
            phase,
            lines: LineBuffer::new(setup.max_line),
            out: Vec::new(),
            out_sent: 0,
            peer_closed: false,
            spoke: false,
            first_bytes: FirstBytes::default(),
            fin_before_header: false,
            pauses: Pauses::default(),
            bucket: match kind {
                Kind::Client => setup.rate_limit.map(|n| Box::new(TokenBucket::new(n, now))),
                _ => None,
            },
            places: Some(places),
            session: Session::default(),
            failure: None,
            opened_at: now,
            last_activity: now,
            last_drained: now,
            line_started: None,
        })
    }

    // ---- getters ----

    pub fn id(&self) -> ConnId {
        self.id
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn opened_at(&self) -> Instant {
        self.opened_at
    }

    pub fn last_drained(&self) -> Instant {
        self.last_drained
    }

    pub fn pauses(&self) -> Pauses {
        self.pauses
    }

    /// The socket, for registering it with the poll.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// True until the TLS handshake (and the PROXY header before it) is done.
    pub fn is_handshaking(&self) -> bool {
        matches!(self.phase, Phase::AwaitingProxy | Phase::Handshaking)
    }

    /// A client that got the greeting: it counts for `--exit-when-empty`, and the service is
    /// told when it goes. Orderly closes start only from `Open`, so a closing client was greeted.
    pub fn was_greeted(&self) -> bool {
        self.kind == Kind::Client && !self.is_handshaking()
    }

    /// Whether any byte has come from the peer yet.
    pub fn has_spoken(&self) -> bool {
        self.spoke
    }

    /// Whether the reactor may read now: while handshaking, open and not paused, or lingering
    /// (to see the peer's FIN). Never while closing: requests are no longer read.
    pub fn may_read(&self) -> bool {
        match self.phase {
            Phase::AwaitingProxy | Phase::Handshaking | Phase::Lingering { .. } => true,
            Phase::Open => self.pauses.is_empty(),
            Phase::Closing { .. } => false,
        }
    }

    /// The close reason once closing began.
    pub fn close_reason(&self) -> Option<CloseReason> {
        match self.phase {
            Phase::Closing { reason, .. } | Phase::Lingering { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// What went wrong, in words for the close line (`error=`), if anything did.
    pub fn error(&self) -> Option<String> {
        match self.failure.as_deref()? {
            Failure::Tls(rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType,
            )) => Some(self.first_bytes.describe()),
            Failure::Tls(e) => Some(crate::tls::describe_error(e)),
            Failure::Proxy(why) => Some(why.to_string()),
        }
    }

    /// Sets what went wrong when it was found outside the connection (no PROXY header in time).
    pub fn note_proxy_error(&mut self, why: &str) {
        self.failure = Some(Box::new(Failure::Proxy(why.into())));
    }

    /// Reply bytes waiting in our queue (rustls's own buffer, at most 64 KiB, not counted).
    pub fn pending_output(&self) -> usize {
        self.out.len() - self.out_sent
    }

    /// When this connection must be dealt with next, and the reason it closes if nothing else
    /// happens first: the handshake (or PROXY header) timeout, the line and idle timeouts while
    /// open, the close deadline while closing. `None`: no deadline.
    pub fn deadline(&self, timeouts: &Timeouts) -> Option<(Instant, CloseReason)> {
        let after = |start: Instant, limit: Option<Duration>| limit.map(|t| start + t);
        match self.phase {
            Phase::AwaitingProxy => {
                after(self.opened_at, timeouts.handshake).map(|at| (at, CloseReason::ProxyError))
            }
            Phase::Handshaking => after(self.opened_at, timeouts.handshake)
                .map(|at| (at, CloseReason::HandshakeTimeout)),
            Phase::Open if self.kind == Kind::Scrape => {
                Some((self.opened_at + SCRAPE_LIFETIME, CloseReason::IdleTimeout))
            }
            Phase::Open => {
                let idle = after(self.last_activity, timeouts.idle)
                    .map(|at| (at, CloseReason::IdleTimeout));
                let line = self
                    .line_started
                    .and_then(|start| after(start, timeouts.line))
                    .map(|at| (at, CloseReason::LineTimeout));
                match (idle, line) {
                    (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
                    (a, b) => a.or(b),
                }
            }
            Phase::Closing {
                reason, deadline, ..
            }
            | Phase::Lingering { reason, deadline } => Some((deadline, reason)),
        }
    }

    // ---- input ----

    /// Reads what the peer sent: TLS records are decrypted, handshake messages processed.
    /// Call it while [`Conn::may_read`], until it returns `WouldBlock` or `Closed`
    /// (readiness is edge-triggered).
    pub fn read(&mut self, buf: &mut [u8], now: Instant, traffic: &mut Traffic) -> ReadEvent {
        let event = match self.phase {
            Phase::Lingering { .. } => return self.discard_until_eof(buf),
            Phase::AwaitingProxy => self.read_proxy_header(buf, traffic),
            _ => self.read_plaintext(buf, traffic),
        };
        if matches!(event, ReadEvent::Data(_)) {
            // SPEC: any byte in either direction restarts the idle clock.
            self.last_activity = now;
        }
        event
    }

    fn read_plaintext(&mut self, buf: &mut [u8], traffic: &mut Traffic) -> ReadEvent {
        loop {
            let Some(tls) = &mut self.tls else {
                return match self.transport.read(buf) {
                    Ok(0) => {
                        self.peer_closed = true;
                        ReadEvent::Closed(CloseReason::Eof)
                    }
                    Ok(n) => {
                        traffic.received += n as u64;
                        self.spoke = true;
                        ReadEvent::Data(n)
                    }
                    Err(e) if would_block(&e) => ReadEvent::WouldBlock,
                    Err(e) if interrupted(&e) => continue,
                    // ECONNRESET and friends: the peer is gone.
                    Err(_) => ReadEvent::Closed(CloseReason::Reset),
                };
            };
            // Plaintext rustls has already decrypted comes first.
            match tls.reader().read(buf) {
                // A clean close_notify from the peer. Its FIN most likely came with it: read on
                // until `WouldBlock`, so that a FIN already here spares the close a `shutdown`
                // and a read later.
                Ok(0) => {
                    self.discard_until_would_block(buf);
                    return ReadEvent::Closed(CloseReason::Eof);
                }
                Ok(n) => return ReadEvent::Data(n),
                Err(e) if would_block(&e) => {}
                // TCP closed without close_notify: the peer is gone all the same.
                Err(_) => return ReadEvent::Closed(CloseReason::Eof),
            }
            if self.peer_closed {
                return ReadEvent::Closed(CloseReason::Eof);
            }
            // Read until `WouldBlock`, every time: readiness is edge-triggered, and a short read
            // proves nothing (urgent data stops a read at its mark with bytes behind it).
            let read = if self.phase == Phase::Handshaking && self.first_bytes.wants_more() {
                tls.read_tls(&mut self.first_bytes.noting(&mut self.transport))
            } else {
                tls.read_tls(&mut self.transport)
            };
            match read {
                Ok(0) => self.peer_closed = true,
                Ok(n) => {
                    traffic.received += n as u64;
                    self.spoke = true;
                }
                Err(e) if would_block(&e) => return ReadEvent::WouldBlock,
                Err(e) if interrupted(&e) => continue,
                Err(_) => return ReadEvent::Closed(CloseReason::Reset),
            }
            if let Err(e) = tls.process_new_packets() {
                // rustls has queued an alert for the peer; `send_last_words` tries to send it.
                self.failure = Some(Box::new(Failure::Tls(e)));
                return ReadEvent::Closed(CloseReason::TlsError);
            }
            if self.phase == Phase::Handshaking && !tls.is_handshaking() {
                self.phase = Phase::Open;
                return ReadEvent::HandshakeDone;
            }
        }
    }

    /// Peeks at what has arrived until a whole PROXY header is there, then takes exactly the
    /// header off the socket: the client's own bytes behind it stay in the kernel for rustls
    /// (or the line framer), so nothing that came in the same segment is lost.
    fn read_proxy_header(&mut self, buf: &mut [u8], traffic: &mut Traffic) -> ReadEvent {
        let window = buf.len().min(crate::proxy::MAX_HEADER);
        let seen = loop {
            match self.transport.peek(&mut buf[..window]) {
                Ok(0) => return self.refuse_proxy("the connection ended before a PROXY header"),
                Ok(n) => {
                    self.spoke = true;
                    break n;
                }
                Err(e) if would_block(&e) => return ReadEvent::WouldBlock,
                Err(e) if interrupted(&e) => continue,
                Err(_) => return ReadEvent::Closed(CloseReason::Reset),
            }
        };
        let (len, client, local) = match crate::proxy::parse(&buf[..seen]) {
            // More will come (a new readiness edge), or the handshake timeout ends the wait;
            // unless the peer has closed its side, and nothing more can come.
            Parsed::Incomplete if self.fin_before_header => {
                return self.refuse_proxy("the connection ended inside its PROXY header");
            }
            Parsed::Incomplete => return ReadEvent::WouldBlock,
            Parsed::Invalid(why) => return self.refuse_proxy(why),
            Parsed::Header { len, client, local } => (len, client, local),
        };
        if self.transport.read_exact(&mut buf[..len]).is_err() {
            return ReadEvent::Closed(CloseReason::Reset);
        }
        traffic.received += len as u64;
        if let Some(client) = client {
            self.peer.proxy = Some(std::mem::replace(&mut self.peer.addr, client));
        }
        self.peer.health_check = local;
        self.phase = if self.tls.is_some() {
            Phase::Handshaking
        } else {
            Phase::Open
        };
        ReadEvent::ProxyDone
    }

    fn refuse_proxy(&mut self, why: &str) -> ReadEvent {
        self.failure = Some(Box::new(Failure::Proxy(why.into())));
        ReadEvent::Closed(CloseReason::ProxyError)
    }

    /// Reads and throws away what the socket holds (nothing may follow a close_notify), noting
    /// the peer's FIN if it is there.
    fn discard_until_would_block(&mut self, buf: &mut [u8]) {
        while !self.peer_closed {
            match self.transport.read(buf) {
                Ok(0) => self.peer_closed = true,
                Ok(_) => {}
                Err(e) if interrupted(&e) => {}
                // `WouldBlock`: nothing more for now. Anything else: the peer is gone, and the
                // close that follows finds out when it writes.
                Err(_) => return,
            }
        }
    }

    /// While lingering: throw away whatever arrives until the peer's EOF.
    fn discard_until_eof(&mut self, buf: &mut [u8]) -> ReadEvent {
        let Phase::Lingering { reason, .. } = self.phase else {
            return ReadEvent::WouldBlock;
        };
        while !self.peer_closed {
            match self.transport.read(buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if would_block(&e) => return ReadEvent::WouldBlock,
                Err(e) if interrupted(&e) => continue,
                // The peer is gone all the same.
                Err(_) => break,
            }
        }
        self.peer_closed = true;
        // Done, for the reason we began closing.
        ReadEvent::Closed(reason)
    }

    /// The poll reported that the peer closed its side. Only a connection waiting for its PROXY
    /// header needs telling: peeking shows the same bytes again and again. Everywhere else a
    /// read sees the FIN itself.
    pub fn on_peer_closed(&mut self) {
        if self.phase == Phase::AwaitingProxy {
            self.fin_before_header = true;
        }
    }

    /// The PROXY header named the client, and admission over its address refused it.
    pub fn refuse(&mut self, refusal: Refusal, places: Places) {
        self.kind = Kind::Refused(refusal);
        self.places = Some(places);
    }

    /// Places given back by admission after [`Conn::take_places`] (behind a balancer, with
    /// the `--max-per-ip` place the PROXY header's address took).
    pub fn restore_places(&mut self, places: Places) {
        self.places = Some(places);
    }

    /// Frames plaintext into request lines and hands each to `answer`, which says how to go on.
    /// After each answered line the `--rate-limit` bucket is charged; without a token the rest
    /// is held (and the connection paused) until [`Conn::take_held`]. Held or stopped data is
    /// never lost: `Flow::Stop` (the connection is closing) drops only what follows a `q`.
    pub fn on_plaintext(
        &mut self,
        data: &[u8],
        now: Instant,
        mut answer: impl FnMut(&mut Session, Frame<'_>) -> Flow,
    ) {
        let ended_before = self.lines.ended();
        let Conn {
            lines,
            session,
            bucket,
            pauses,
            ..
        } = self;
        lines.feed(data, |frame| {
            session.requests += 1;
            let flow = answer(session, frame);
            if flow != Flow::Continue {
                return flow;
            }
            match bucket {
                Some(bucket) => {
                    bucket.spend(match frame {
                        Frame::Line(bytes) => bytes.len(),
                        // Refused, yet read in full: as dear as the whole burst.
                        Frame::TooLong => usize::MAX,
                    });
                    if bucket.has_token(now) {
                        Flow::Continue
                    } else {
                        pauses.insert(Pauses::RATE);
                        Flow::Hold
                    }
                }
                None => Flow::Continue,
            }
        });
        // The clock times the line in progress from its first byte: a line that began in this
        // read (one ended before it) starts now, not when an earlier line did; a line past
        // --max-line is still in progress while its rest is discarded.
        self.line_started = if !self.lines.in_line() {
            None
        } else if self.lines.ended() != ended_before {
            Some(now)
        } else {
            self.line_started.or(Some(now))
        };
    }

    /// Bytes read but not yet answered (held by a pause), to be answered before anything read
    /// later. Empty when nothing is held.
    pub fn take_held(&mut self) -> Vec<u8> {
        self.lines.take_held()
    }

    /// The buffer from [`Conn::take_held`], its bytes answered (or held again): kept for the
    /// next hold, so resuming allocates nothing.
    pub fn give_back_held(&mut self, buffer: Vec<u8>) {
        self.lines.give_back_held(buffer);
    }

    pub fn has_held(&self) -> bool {
        self.lines.has_held()
    }

    /// `--rate-limit`: true once the bucket has a token again (the pause is lifted); else how
    /// long until it has.
    pub fn rate_token_due(&mut self, now: Instant) -> Result<(), Duration> {
        let Some(bucket) = self.bucket.as_mut() else {
            self.pauses.remove(Pauses::RATE);
            return Ok(());
        };
        if bucket.has_token(now) {
            self.pauses.remove(Pauses::RATE);
            Ok(())
        } else {
            self.pauses.insert(Pauses::RATE);
            Err(bucket.wait())
        }
    }

    /// Remembers the name the service accepted (no allocation when it is the same name again).
    pub fn set_name(&mut self, new: &[u8]) {
        self.session.set_name(new);
    }

    /// Sets or lifts the fan-out pause (chat: members receiving its lines are far behind).
    pub fn set_fanout_pause(&mut self, paused: bool) {
        if paused {
            self.pauses.insert(Pauses::FANOUT);
        } else {
            self.pauses.remove(Pauses::FANOUT);
        }
    }

    /// Checked after every request line: with more than READ_PAUSE_OUTPUT of its own replies
    /// unsent, the connection is not read until they drain to half of that.
    pub fn review_output_backlog(&mut self) -> bool {
        if self.pending_output() > READ_PAUSE_OUTPUT {
            self.pauses.insert(Pauses::OUTPUT);
        }
        self.pauses.contains(Pauses::OUTPUT)
    }

    // ---- commands ----

    /// Queues reply bytes. Returns false when the client has more than MAX_PENDING_OUTPUT
    /// waiting: it is not reading, and the caller disconnects it.
    pub fn queue(&mut self, bytes: &[u8]) -> bool {
        let too_late = match self.phase {
            Phase::Lingering { .. } => true,
            Phase::Closing {
                close_notify_sent, ..
            } => close_notify_sent,
            _ => false,
        };
        if too_late {
            return true; // Too late to send anything; dropping it is the only option.
        }
        if self.pending_output() + bytes.len() > MAX_PENDING_OUTPUT {
            return false;
        }
        self.out.extend_from_slice(bytes);
        true
    }

    /// The session is over (told `BYE` or a refusal, or closing for any reason): the places it
    /// held, once. The second call returns `None`.
    pub fn take_places(&mut self) -> Option<Places> {
        self.places.take()
    }

    /// Starts an orderly close: queued replies, then close_notify, then FIN, then waiting for
    /// the peer's FIN until `deadline`. Returns false when the connection must be dropped at
    /// once instead (the reason calls for it, or it never became ready). A second call keeps
    /// the first reason.
    pub fn begin_close(&mut self, reason: CloseReason, deadline: Instant) -> bool {
        match self.phase {
            Phase::Open if reason.is_orderly() => {
                self.phase = Phase::Closing {
                    reason,
                    deadline,
                    close_notify_sent: false,
                };
                true
            }
            Phase::Closing { .. } | Phase::Lingering { .. } => reason.is_orderly(),
            _ => false,
        }
    }

    /// Last words before the socket is dropped after a TLS error: to a client whose first bytes
    /// were a plain-text line, one plain line that says why (a TLS alert would read as binary
    /// noise); to anyone else (an SSLv2 hello, binary, a bad record mid-handshake), the alert
    /// rustls queued. Best effort, one try: the peer may not read at all.
    pub fn send_last_words(&mut self) {
        let spoke_plain_text = self.phase == Phase::Handshaking
            && self.first_bytes.is_plain_text_line()
            && matches!(
                self.failure.as_deref(),
                Some(Failure::Tls(rustls::Error::InvalidMessage(
                    rustls::InvalidMessage::InvalidContentType
                )))
            );
        if spoke_plain_text {
            let _ = self.transport.write(PLAIN_TEXT_ON_TLS_REPLY);
        } else if let Some(tls) = &mut self.tls {
            let _ = tls.write_tls(&mut self.transport);
        }
    }

    // ---- output ----

    /// Writes as much queued output as the socket takes; a closing connection goes on to
    /// close_notify and FIN, and then lingers. Returns true when a paused reader may be read
    /// again (its output drained). `Err` means the peer is gone.
    pub fn flush(&mut self, now: Instant, traffic: &mut Traffic) -> Result<bool, CloseReason> {
        loop {
            let mut progress = false;
            let closing = matches!(self.phase, Phase::Closing { .. });
            match &mut self.tls {
                Some(tls) => {
                    if self.out_sent < self.out.len() && !tls.is_handshaking() {
                        // rustls takes at most its buffer limit; the rest waits in `out`.
                        let n = tls.writer().write(&self.out[self.out_sent..]).unwrap_or(0);
                        self.out_sent += n;
                    }
                    if self.out_sent == self.out.len()
                        && let Phase::Closing {
                            close_notify_sent: sent @ false,
                            ..
                        } = &mut self.phase
                    {
                        tls.send_close_notify();
                        *sent = true;
                    }
                    if tls.wants_write() {
                        match tls.write_tls(&mut self.transport) {
                            Ok(n) => {
                                traffic.sent += n as u64;
                                progress = true;
                            }
                            Err(e) if would_block(&e) => {}
                            Err(e) if interrupted(&e) => progress = true,
                            Err(_) => return Err(CloseReason::Reset),
                        }
                    }
                }
                None => {
                    if self.out_sent < self.out.len() {
                        match self.transport.write(&self.out[self.out_sent..]) {
                            Ok(n) => {
                                traffic.sent += n as u64;
                                self.out_sent += n;
                                progress = n > 0;
                            }
                            Err(e) if would_block(&e) => {}
                            Err(e) if interrupted(&e) => progress = true,
                            Err(_) => return Err(CloseReason::Reset),
                        }
                    }
                    if self.out_sent == self.out.len()
                        && closing
                        && let Phase::Closing {
                            close_notify_sent, ..
                        } = &mut self.phase
                    {
                        *close_notify_sent = true; // nothing to send without TLS
                    }
                }
            }
            if self.out_sent == self.out.len() && self.out_sent > 0 {
                self.out.clear();
                self.out_sent = 0;
                if self.out.capacity() > KEEP_OUTPUT_CAPACITY {
                    self.out = Vec::new();
                }
            }
            if !progress {
                break;
            }
            // SPEC: any byte in either direction restarts the idle clock.
            self.last_activity = now;
            self.last_drained = now;
        }
        if let Phase::Closing {
            reason,
            deadline,
            close_notify_sent: true,
        } = self.phase
            && !self.wants_write()
        {
            if self.peer_closed {
                // The peer's FIN was read: dropping the socket sends our FIN after the
                // close_notify. No `shutdown`, and no read to wait for a FIN that is here.
            } else {
                // Everything is out: send FIN, then wait for the peer's.
                let _ = self.transport.shutdown_write();
            }
            self.phase = Phase::Lingering { reason, deadline };
        }
        let resumed =
            self.pauses.contains(Pauses::OUTPUT) && self.pending_output() <= READ_PAUSE_OUTPUT / 2;
        if resumed {
            self.pauses.remove(Pauses::OUTPUT);
        }
        Ok(resumed)
    }

    /// True once a lingering connection's peer has closed too: it can be dropped.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Lingering { .. }) && self.peer_closed
    }

    fn wants_write(&self) -> bool {
        self.out_sent < self.out.len() || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// The readiness this connection needs now: always readable (EOF and resets must be
    /// seen), writable only while there is something to write, or the loop would spin.
    pub fn interest(&self) -> Interest {
        if self.wants_write() && !matches!(self.phase, Phase::Lingering { .. }) {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }
}

/// What went wrong on a connection, kept for its close line.
#[derive(Debug)]
enum Failure {
    /// What rustls refused.
    Tls(rustls::Error),
    /// Why the PROXY header was refused.
    Proxy(Box<str>),
}
