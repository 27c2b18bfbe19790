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
//! It does no IO at all (sans-IO, as quinn-proto's `Connection` and rustls's connections): the
//! reactor's driver (`reactor/driver.rs`) reads the socket and hands the bytes in, writes what
//! the connection hands out, and passes the time in. Nothing here names a socket, an
//! `io::ErrorKind` or `mio`, and a connection holds no buffer of its own for reading: the
//! reactor lends one for the plaintext of each call.
//!
//! Methods come in quinn-proto's four groups: getters; input (`handle_bytes`, `handle_eof`,
//! `on_plaintext`); commands (`queue`, `begin_close`, pauses); output (`poll_transmit` and
//! `handle_transmitted`, `poll_fin`, `deadline`). The order to call them in:
//!
//! ```text
//! socket readable -> while may_read(): read the socket (the driver), then
//!                    handle_bytes(&mut input, plaintext, now) until NeedBytes or Closed,
//!                    on_plaintext(..) for each Data; read 0 bytes: handle_eof(), then
//!                    handle_bytes with no input for what is left
//! output queued   -> (before sleep) poll_transmit(buf), write buf, handle_transmitted(buf, n)
//!                    until the buffer comes back empty or the socket is full; then poll_fin()
//!                    (send FIN) and resume_if_drained()
//! any change      -> wants_write() for the write interest, poll_timeout() for the next wake-up
//! deadline passed -> handle_timeout(now): the consequence (`ERR line took too long` queued,
//!                    the PROXY error noted) and what the reactor is to do (close, or drop)
//! ```

mod first_bytes;
mod identity;
mod parts;
mod reason;

#[cfg(test)]
mod tests;

use core::net::SocketAddr;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ServerConnection;

use crate::line::{Flow, Frame, LineBuffer};
use crate::outbox::ConnId;
use crate::proxy::Parsed;
use crate::rate::TokenBucket;

use first_bytes::FirstBytes;
pub use parts::{Kind, Pauses, Peer, Phase, Places, ReadEvent, Session, Setup, Timeouts, Traffic};
pub use reason::{CloseReason, Refusal};

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

/// What a client reads when its line did not end within `--line-timeout` (SPEC).
pub const LINE_TIMEOUT_REPLY: &[u8] = b"ERR line took too long\n";

/// The last line a greeted client gets when `--idle-timeout` ends its session (SPEC "An idle
/// close says so": a client takes it for the end of the session, not for a lost server).
pub const IDLE_TIMEOUT_REPLY: &[u8] = b"BYE idle timeout\n";

/// The plain-text answer to a client that speaks plain text on a TLS port.
pub const PLAIN_TEXT_ON_TLS_REPLY: &[u8] = b"ERR this port speaks TLS\n";

/// An emptied output buffer larger than this is given back to the allocator, so an idle
/// connection holds little memory.
const KEEP_OUTPUT_CAPACITY: usize = 4 * 1024;

/// Plain (no TLS) output handed out per [`Conn::poll_transmit`]: a client far behind is not
/// copied in full at every try.
const TRANSMIT_CHUNK: usize = 64 * 1024;

/// One connection (see the module's first lines).
pub struct Conn {
    id: ConnId,
    kind: Kind,
    peer: Peer,
    /// `None` for `--no-tls` and scrapes. Boxed: a rustls connection is large, and the table of
    /// slots should stay dense.
    tls: Option<Box<ServerConnection>>,
    phase: Phase,
    lines: LineBuffer,
    /// Plaintext replies not yet handed to rustls (or to the socket, without TLS).
    out: Vec<u8>,
    out_sent: usize,
    /// TLS records rustls has sealed that the socket did not take: sent first next time.
    /// Empty (unallocated) unless the socket was full.
    unsent: Vec<u8>,
    /// Bytes handed out by the last `poll_transmit`, not yet reported by `handle_transmitted`.
    in_flight: usize,
    /// Decrypted plaintext rustls holds for us (its `IoState` says how much).
    tls_plaintext: usize,
    /// The peer's close_notify was processed: nothing more comes over TLS.
    tls_closed: bool,
    /// The start of a PROXY header that has not all arrived (at most `proxy::MAX_HEADER`).
    header: Vec<u8>,
    /// The peer's FIN was seen (the driver read 0 bytes).
    peer_closed: bool,
    /// Everything is sent and the peer has not closed: the driver is to send our FIN.
    fin_due: bool,
    /// Some byte has come from the peer (eviction spares those that spoke).
    spoke: bool,
    /// While handshaking, the server has sent its answer to the peer's hello (the ServerHello
    /// flight): the peer sent a whole ClientHello, and the handshake waits on its round trip
    /// (eviction spares these last of all).
    hello_answered: bool,
    /// What the first bytes to rustls looked like: a plain-text line, or binary that is not TLS.
    first_bytes: FirstBytes,
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

impl Conn {
    /// A new connection of `kind`. With TLS it starts handshaking (after the PROXY header, when
    /// one is expected); without, it is open at once. Errors: rustls could not start a session.
    pub fn new(
        id: ConnId,
        peer: SocketAddr,
        kind: Kind,
        places: Places,
        setup: Setup<'_>,
        now: Instant,
    ) -> Result<Conn, rustls::Error> {
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
            tls,
            phase,
            lines: LineBuffer::new(setup.max_line),
            out: Vec::new(),
            out_sent: 0,
            unsent: Vec::new(),
            in_flight: 0,
            tls_plaintext: 0,
            tls_closed: false,
            header: Vec::new(),
            peer_closed: false,
            fin_due: false,
            spoke: false,
            hello_answered: false,
            first_bytes: FirstBytes::default(),
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

    /// Whether the server has answered the peer's hello while handshaking: the peer is a TLS
    /// client mid-handshake, waiting on a round trip, not a socket holding a place.
    pub fn hello_answered(&self) -> bool {
        self.hello_answered
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

    /// What went wrong, for the close line (`error=`), if anything did.
    pub fn error(&self) -> Option<ConnError<'_>> {
        Some(match self.failure.as_deref()? {
            Failure::Tls(rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType,
            )) => ConnError::NotTls(self.first_bytes.describe()),
            Failure::Tls(e) => ConnError::Tls(e),
            Failure::Proxy(why) => ConnError::Proxy(why),
        })
    }

    /// Reply bytes waiting in our queue (rustls's own buffer, at most 64 KiB, not counted).
    pub fn pending_output(&self) -> usize {
        self.out.len() - self.out_sent
    }

    /// The memory our output buffers hold now, in bytes: what was allocated for the queue
    /// (sent bytes included until it empties) and for the TLS records not yet sent. The
    /// process-wide `--max-output-memory` bound counts this.
    pub fn output_memory(&self) -> usize {
        self.out.capacity() + self.unsent.capacity()
    }

    /// When this connection must be dealt with next, and the reason it closes if nothing else
    /// happens first: the handshake (or PROXY header) timeout, the line and idle timeouts while
    /// open, the close deadline while closing. `None`: no deadline. Once that time has come,
    /// call [`Conn::handle_timeout`].
    pub fn poll_timeout(&self, timeouts: &Timeouts) -> Option<(Instant, CloseReason)> {
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

    /// Whether the peer's FIN has been seen.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    // ---- input ----

    /// Takes bytes the peer sent from the front of `input` (a PROXY header, TLS records, or plain
    /// request bytes) and says what they brought. `Data(n)`: `n` bytes of plaintext are in
    /// `plaintext` (lent by the reactor: at least 16 KiB + 256, a TLS record's plaintext). Call it
    /// again until it says `NeedBytes` (all of `input` is taken) or `Closed`: each call stops at
    /// an event the caller must act on before the next bytes (the PROXY header's end, the
    /// handshake's end), so that the greeting comes before the replies to requests behind it.
    pub fn handle_bytes(
        &mut self,
        input: &mut &[u8],
        plaintext: &mut [u8],
        now: Instant,
    ) -> ReadEvent {
        if !input.is_empty() {
            self.spoke = true;
        }
        let event = match self.phase {
            Phase::Lingering { reason, .. } => {
                // Thrown away until the peer's FIN: our side is shut.
                *input = &[];
                match self.peer_closed {
                    true => ReadEvent::Closed(reason),
                    false => ReadEvent::NeedBytes,
                }
            }
            Phase::Closing { .. } => {
                // Requests are no longer read; what came behind the last one is dropped.
                *input = &[];
                ReadEvent::NeedBytes
            }
            Phase::AwaitingProxy => self.take_proxy_header(input),
            Phase::Handshaking | Phase::Open => self.take_plaintext(input, plaintext),
        };
        if matches!(event, ReadEvent::Data(_)) {
            // SPEC: any byte in either direction restarts the idle clock.
            self.last_activity = now;
        }
        event
    }

    /// The driver read 0 bytes: the peer's FIN. What the connection still holds is handed out
    /// by `handle_bytes` (with no input) before it says `Closed`.
    pub fn handle_eof(&mut self) {
        self.peer_closed = true;
    }

    fn take_plaintext(&mut self, input: &mut &[u8], plaintext: &mut [u8]) -> ReadEvent {
        loop {
            let Some(tls) = &mut self.tls else {
                if input.is_empty() {
                    return self.end_of_input();
                }
                let n = input.len().min(plaintext.len());
                plaintext[..n].copy_from_slice(&input[..n]);
                *input = &input[n..];
                return ReadEvent::Data(n);
            };
            // Plaintext rustls has already decrypted comes first.
            if self.tls_plaintext > 0 {
                let want = self.tls_plaintext.min(plaintext.len());
                // rustls's `IoState` said this much is there: the read neither blocks nor fails.
                let n = tls.reader().read(&mut plaintext[..want]).unwrap_or(0);
                self.tls_plaintext = if n == 0 { 0 } else { self.tls_plaintext - n };
                if n > 0 {
                    return ReadEvent::Data(n);
                }
            }
            if self.failure.is_some() && self.phase == Phase::Handshaking {
                // Text that is not TLS, waiting for its line end before the verdict (see
                // `refuse_tls`): the bytes only go to the note, never to rustls again.
                self.first_bytes.note(input);
                *input = &[];
                if self.first_bytes.is_text_so_far() && !self.peer_closed {
                    return ReadEvent::NeedBytes;
                }
                return ReadEvent::Closed(CloseReason::TlsError);
            }
            if self.tls_closed {
                // A clean close_notify from the peer: whatever follows is not read.
                *input = &[];
                return ReadEvent::Closed(CloseReason::Eof);
            }
            if input.is_empty() {
                // TCP closed without close_notify: the peer is gone all the same.
                return self.end_of_input();
            }
            // rustls takes at most a few KiB at a time: the rest of `input` waits its turn.
            let before = *input;
            let read = tls.read_tls(input);
            if self.phase == Phase::Handshaking && self.first_bytes.wants_more() {
                self.first_bytes.note(&before[..before.len() - input.len()]);
            }
            if read.is_err() {
                // Its buffers are full: cannot happen while its plaintext is taken out first.
                return self.refuse_tls(rustls::Error::General("a TLS record too large".into()));
            }
            match tls.process_new_packets() {
                Ok(state) => {
                    self.tls_plaintext = state.plaintext_bytes_to_read();
                    self.tls_closed = state.peer_has_closed();
                }
                // rustls has queued an alert for the peer; `poll_last_words` hands it out.
                Err(e) => {
                    let not_tls = matches!(
                        e,
                        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
                    );
                    let event = self.refuse_tls(e);
                    // A plain client's line may be cut across TCP segments: text with no line
                    // end yet waits for the rest (up to first_bytes::MAX_TEXT_LINE bytes, or
                    // the handshake timeout) before it is answered as a line or with the alert.
                    if not_tls && self.first_bytes.is_text_so_far() && !self.peer_closed {
                        self.first_bytes.note(input);
                        *input = &[];
                        if self.first_bytes.is_text_so_far() {
                            return ReadEvent::NeedBytes;
                        }
                    }
                    return event;
                }
            }
            if self.phase == Phase::Handshaking && !tls.is_handshaking() {
                self.phase = Phase::Open;
                return ReadEvent::HandshakeDone;
            }
        }
    }

    fn end_of_input(&self) -> ReadEvent {
        match self.peer_closed {
            true => ReadEvent::Closed(CloseReason::Eof),
            false => ReadEvent::NeedBytes,
        }
    }

    fn refuse_tls(&mut self, e: rustls::Error) -> ReadEvent {
        self.failure = Some(Box::new(Failure::Tls(e)));
        ReadEvent::Closed(CloseReason::TlsError)
    }

    /// Gathers the PROXY header from the bytes handed in, then takes exactly the header: the
    /// client's own bytes behind it stay in `input` for rustls (or the line framer), so nothing
    /// that came in the same segment is lost. A header cut across reads is kept until it is whole.
    fn take_proxy_header(&mut self, input: &mut &[u8]) -> ReadEvent {
        if input.is_empty() {
            return match (self.peer_closed, self.header.is_empty()) {
                (false, _) => ReadEvent::NeedBytes,
                (true, true) => self.refuse_proxy("the connection ended before a PROXY header"),
                (true, false) => self.refuse_proxy("the connection ended inside its PROXY header"),
            };
        }
        let before = self.header.len();
        let parsed = if before == 0 {
            // The common case: the whole header in one read, parsed where it lies.
            crate::proxy::parse(input)
        } else {
            let take = input.len().min(crate::proxy::MAX_HEADER - before);
            self.header.extend_from_slice(&input[..take]);
            crate::proxy::parse(&self.header)
        };
        let seen = if before == 0 {
            input.len()
        } else {
            self.header.len()
        };
        let (len, client, local) = match parsed {
            Parsed::Incomplete if seen >= crate::proxy::MAX_HEADER => {
                return self.refuse_proxy("a PROXY header longer than the protocol allows");
            }
            Parsed::Incomplete => {
                if before == 0 {
                    self.header.extend_from_slice(input);
                }
                *input = &[];
                // More will come, or the handshake timeout ends the wait.
                return ReadEvent::NeedBytes;
            }
            Parsed::Invalid(why) => return self.refuse_proxy(why),
            Parsed::Header { len, client, local } => (len, client, local),
        };
        *input = &input[len - before..];
        self.header = Vec::new();
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

    /// The time is `now`: if the time [`Conn::poll_timeout`] gave has come, its consequence,
    /// decided here. A line begun and not finished in time gets `ERR line took too long`
    /// queued, a greeted client idle too long `BYE idle timeout`; a PROXY header not come in
    /// time is a `proxy-error` with its reason. `None`: nothing is due yet.
    pub fn handle_timeout(&mut self, now: Instant, timeouts: &Timeouts) -> Option<Expiry> {
        let (at, reason) = self.poll_timeout(timeouts)?;
        if now < at {
            return None;
        }
        Some(match self.phase {
            Phase::AwaitingProxy => {
                self.refuse_proxy("no PROXY header within --handshake-timeout");
                Expiry::Close(reason)
            }
            // Its close took too long: the peer does not read, or does not close.
            Phase::Closing { .. } | Phase::Lingering { .. } => Expiry::Drop(reason),
            Phase::Open if reason == CloseReason::LineTimeout => {
                self.queue(LINE_TIMEOUT_REPLY);
                Expiry::Close(reason)
            }
            Phase::Open if reason == CloseReason::IdleTimeout && self.was_greeted() => {
                self.queue(IDLE_TIMEOUT_REPLY);
                Expiry::Close(reason)
            }
            Phase::Handshaking | Phase::Open => Expiry::Close(reason),
        })
    }

    /// Plaintext that came in the same read as a pause (or behind held lines): kept unanswered,
    /// to be answered through [`Conn::take_held`] once the connection may be read again.
    pub fn hold(&mut self, data: &[u8]) {
        self.lines.hold(data);
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
        // The sent prefix goes once it is as large as what is left: the queue empties only when
        // the client catches up, and one that is always a little behind must not keep all that
        // was ever sent to it (MAX_PENDING_OUTPUT bounds the unsent part alone). Amortized: a
        // move of at most as many bytes as were sent since the last one.
        if self.in_flight == 0
            && self.out_sent > KEEP_OUTPUT_CAPACITY
            && self.out_sent >= self.pending_output()
        {
            self.out.drain(..self.out_sent);
            self.out_sent = 0;
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

    /// Last words before the socket is dropped after a TLS error, appended to `buf`: to a client
    /// whose first bytes were a plain-text line, one plain line that says why (a TLS alert would
    /// read as binary noise); to anyone else (an SSLv2 hello, binary, a bad record
    /// mid-handshake), the alert rustls queued. The driver tries once: the peer may not read at
    /// all.
    pub fn poll_last_words(&mut self, buf: &mut Vec<u8>) {
        let spoke_plain_text = self.phase == Phase::Handshaking
            && self.first_bytes.is_plain_text_line()
            && matches!(
                self.failure.as_deref(),
                Some(Failure::Tls(rustls::Error::InvalidMessage(
                    rustls::InvalidMessage::InvalidContentType
                )))
            );
        if spoke_plain_text {
            buf.extend_from_slice(PLAIN_TEXT_ON_TLS_REPLY);
        } else if let Some(tls) = &mut self.tls {
            // Into a `Vec`: cannot fail.
            while tls.wants_write() && tls.write_tls(buf).is_ok() {}
        }
    }

    // ---- output ----

    /// Appends to `buf` (empty) the bytes to write to the socket now: queued replies (sealed
    /// into TLS records), and a closing connection's close_notify. The caller writes what the
    /// socket takes and reports it with [`Conn::handle_transmitted`] before calling again; an
    /// empty `buf` means there is nothing to write.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) {
        debug_assert_eq!(
            self.in_flight, 0,
            "handle_transmitted comes between two polls"
        );
        match &mut self.tls {
            Some(_) if !self.unsent.is_empty() => {
                // What the socket did not take last time goes first, alone.
                buf.extend_from_slice(&self.unsent);
                self.unsent.clear();
            }
            // Refused: rustls's alert (or the plain line) is the last words', never sent ahead
            // of them, while text that is not TLS still waits for its line end.
            Some(_) if self.failure.is_some() && self.phase == Phase::Handshaking => {}
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
                // Into a `Vec`: cannot fail.
                while tls.wants_write() && tls.write_tls(buf).is_ok() {}
            }
            None => {
                let end = self.out.len().min(self.out_sent + TRANSMIT_CHUNK);
                buf.extend_from_slice(&self.out[self.out_sent..end]);
                if self.out_sent == self.out.len()
                    && let Phase::Closing {
                        close_notify_sent, ..
                    } = &mut self.phase
                {
                    *close_notify_sent = true; // nothing to send without TLS
                }
            }
        }
        self.in_flight = buf.len();
        self.release_sent_output();
        self.advance_close();
    }

    /// The socket took `n` of the `buf` bytes [`Conn::poll_transmit`] handed out (0 when it
    /// took none); the rest is sent next time.
    pub fn handle_transmitted(&mut self, buf: &[u8], n: usize, now: Instant) {
        debug_assert_eq!(self.in_flight, buf.len());
        self.in_flight = 0;
        match self.tls {
            Some(_) => self.unsent.extend_from_slice(&buf[n..]),
            None => self.out_sent += n,
        }
        if self.unsent.is_empty() && self.unsent.capacity() > KEEP_OUTPUT_CAPACITY {
            self.unsent = Vec::new();
        }
        if n > 0 {
            // SPEC: any byte in either direction restarts the idle clock.
            self.last_activity = now;
            self.last_drained = now;
            if self.phase == Phase::Handshaking && self.failure.is_none() {
                self.hello_answered = true;
            }
        }
        self.release_sent_output();
        self.advance_close();
    }

    /// An emptied output queue starts over, and a large one is given back to the allocator.
    fn release_sent_output(&mut self) {
        if self.out_sent == self.out.len() && self.out_sent > 0 {
            self.out.clear();
            self.out_sent = 0;
            if self.out.capacity() > KEEP_OUTPUT_CAPACITY {
                self.out = Vec::new();
            }
        }
    }

    /// A closing connection whose output, close_notify included, is all out lingers: our FIN
    /// goes next (unless the peer's FIN is here: then dropping the socket sends ours, with no
    /// `shutdown` and no read to wait for a FIN that came).
    fn advance_close(&mut self) {
        if let Phase::Closing {
            reason,
            deadline,
            close_notify_sent: true,
        } = self.phase
            && !self.wants_write()
        {
            self.fin_due = !self.peer_closed;
            self.phase = Phase::Lingering { reason, deadline };
        }
    }

    /// True once, when everything is out and the driver is to send our FIN (`shutdown(SHUT_WR)`)
    /// and read on until the peer's.
    pub fn poll_fin(&mut self) -> bool {
        std::mem::take(&mut self.fin_due)
    }

    /// True when a reader paused for its output backlog may be read again: its replies drained
    /// to half the pause mark.
    pub fn resume_if_drained(&mut self) -> bool {
        let resumed =
            self.pauses.contains(Pauses::OUTPUT) && self.pending_output() <= READ_PAUSE_OUTPUT / 2;
        if resumed {
            self.pauses.remove(Pauses::OUTPUT);
        }
        resumed
    }

    /// True once a lingering connection's peer has closed too: it can be dropped.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Lingering { .. }) && self.peer_closed
    }

    /// Whether there are bytes to write (the write interest follows it: registered while there
    /// is output, or the loop would spin).
    pub fn wants_write(&self) -> bool {
        self.out_sent < self.out.len()
            || self.in_flight > 0
            || !self.unsent.is_empty()
            || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }
}

/// What a passed deadline asks of the reactor ([`Conn::handle_timeout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Close it for this reason: in order when the reason allows (`CloseReason::is_orderly`).
    Close(CloseReason),
    /// It was closing and its close took too long: drop it now.
    Drop(CloseReason),
}

/// What went wrong on a connection, as [`Conn::error`] tells it.
#[derive(Debug, PartialEq)]
pub enum ConnError<'a> {
    /// What rustls refused (the server puts it in words: `tls::describe_error`).
    Tls(&'a rustls::Error),
    /// The bytes were not TLS at all: what came, in words (`not TLS: a plain-text line`).
    NotTls(String),
    /// Why the PROXY header was refused, in words.
    Proxy(&'a str),
}

/// What went wrong on a connection, kept for its close line.
#[derive(Debug)]
enum Failure {
    /// What rustls refused.
    Tls(rustls::Error),
    /// Why the PROXY header was refused.
    Proxy(Box<str>),
}
