//! One connection: its socket, its TLS state, its partial line and its queued output, and the
//! phases it goes through: handshaking -> open -> closing -> lingering -> gone.
//!
//! `Conn` knows nothing of any service's protocol. The reactor asks it for plaintext
//! ([`Conn::read`]), gives it reply bytes ([`Conn::queue`]), and tells it when to write
//! ([`Conn::flush`]); the connection says what it needs next through [`Conn::interest`].

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use mio::Interest;
use mio::net::TcpStream;
use rustls::{ServerConfig, ServerConnection};

use crate::line::LineBuffer;
use crate::outbox::ConnId;
use crate::proxy::Parsed;
use crate::rate::TokenBucket;

/// Reply bytes queued beyond this (not yet taken by the kernel) stop the reading of more
/// requests from the same client until they drain: a client that pipelines without reading
/// is slowed down, not buffered without bound.
pub const READ_PAUSE_OUTPUT: usize = 64 * 1024;

/// Output queued beyond this is a client that does not read at all (SPEC: 1 MiB for chat);
/// it is disconnected as a slow reader so that nobody else waits and memory stays bounded.
pub const MAX_PENDING_OUTPUT: usize = 1 << 20;

/// The plain-text answer to a client that speaks plain text on a TLS port.
pub const PLAIN_TEXT_ON_TLS_REPLY: &[u8] = b"ERR this port speaks TLS\n";

/// An emptied output buffer larger than this is given back to the allocator, so an idle
/// connection holds little memory.
const KEEP_OUTPUT_CAPACITY: usize = 4 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `--proxy-protocol`: waiting for the balancer's PROXY header; nothing else is read yet.
    AwaitingProxy,
    /// TLS handshake in progress; nothing is read or sent in plaintext yet.
    Handshaking,
    /// Greeted; requests are read and answered.
    Open,
    /// Flushing queued output, then close_notify, then FIN. Requests are no longer read.
    Closing,
    /// Our side is shut. Reading and discarding until the peer closes too, so the kernel does
    /// not answer its late bytes with a reset that could destroy replies it has not read yet.
    Lingering,
}

/// Why a connection ended: the `reason=` of its `event=close` log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    Quit,
    Eof,
    Reset,
    TlsError,
    Busy,
    HandshakeTimeout,
    IdleTimeout,
    SlowReader,
    Shutdown,
    /// Over `--max-per-ip`: told so after the handshake, then closed.
    PerIp,
    /// `--proxy-protocol`: no valid PROXY header in time, or one from an untrusted address.
    ProxyError,
}

impl CloseReason {
    /// Every reason, in declaration order (`reason as usize` indexes it).
    pub const ALL: [CloseReason; 11] = [
        CloseReason::Quit,
        CloseReason::Eof,
        CloseReason::Reset,
        CloseReason::TlsError,
        CloseReason::Busy,
        CloseReason::HandshakeTimeout,
        CloseReason::IdleTimeout,
        CloseReason::SlowReader,
        CloseReason::Shutdown,
        CloseReason::PerIp,
        CloseReason::ProxyError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Quit => "quit",
            CloseReason::Eof => "eof",
            CloseReason::Reset => "reset",
            CloseReason::TlsError => "tls-error",
            CloseReason::Busy => "busy",
            CloseReason::HandshakeTimeout => "handshake-timeout",
            CloseReason::IdleTimeout => "idle-timeout",
            CloseReason::SlowReader => "slow-reader",
            CloseReason::Shutdown => "shutdown",
            CloseReason::PerIp => "per-ip",
            CloseReason::ProxyError => "proxy-error",
        }
    }

    /// True when the peer can still receive: queued replies and close_notify are sent first.
    fn is_orderly(self) -> bool {
        !matches!(
            self,
            CloseReason::Reset
                | CloseReason::TlsError
                | CloseReason::SlowReader
                | CloseReason::HandshakeTimeout
                | CloseReason::ProxyError
        )
    }
}

/// Why a connection is refused: told after its handshake, then closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over `--max-clients`.
    Busy,
    /// Over `--max-per-ip`.
    PerIp,
}

impl Refusal {
    pub fn reply(self) -> &'static [u8] {
        match self {
            Refusal::Busy => b"ERR server busy, try again later\n",
            Refusal::PerIp => b"ERR too many connections from your address\n",
        }
    }

    pub fn reason(self) -> CloseReason {
        match self {
            Refusal::Busy => CloseReason::Busy,
            Refusal::PerIp => CloseReason::PerIp,
        }
    }
}

/// Bytes moved on client sockets (TLS records included), for the metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct Traffic {
    pub received: u64,
    pub sent: u64,
}

/// What one call to [`Conn::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadEvent {
    /// Plaintext bytes in the caller's buffer.
    Data(usize),
    /// The PROXY header was read (`peer` is now the client it names): admission by address,
    /// then on to the handshake (or, without TLS, the greeting).
    ProxyDone,
    /// The TLS handshake just finished: time to greet.
    HandshakeDone,
    /// Nothing more until the next readiness event.
    WouldBlock,
    /// The connection cannot be read any more, and why.
    Closed(CloseReason),
}

pub struct Conn {
    pub id: ConnId,
    /// The client: the socket's peer, or the address a PROXY header gave.
    pub peer: SocketAddr,
    /// The balancer's address, when a PROXY header named the client.
    pub proxy: Option<SocketAddr>,
    /// The PROXY header said `LOCAL`: the balancer itself, most likely a health check.
    pub health_check: bool,
    /// Why the PROXY header was refused, for the close line.
    pub proxy_error: Option<&'static str>,
    /// Counted under `--max-per-ip` (with a PROXY header, only once the header named the client).
    pub ip_counted: bool,
    socket: TcpStream,
    /// `None` for `--no-tls`. Boxed: a rustls connection is large, and the table of slots
    /// should stay dense.
    tls: Option<Box<ServerConnection>>,
    phase: Phase,
    pub lines: LineBuffer,
    /// Plaintext replies not yet handed to rustls (or to the socket, without TLS).
    out: Vec<u8>,
    out_sent: usize,
    close_notify_sent: bool,
    peer_closed: bool,
    pub close_reason: Option<CloseReason>,
    /// What rustls refused, for the log's `tls-error` close line (boxed: rare, and the slot
    /// table should stay small).
    pub tls_error: Option<Box<rustls::Error>>,
    /// Over `--max-clients` or `--max-per-ip`: after the handshake it is told why and closed.
    pub refusal: Option<Refusal>,
    /// A connection to the `--metrics` endpoint (plain HTTP, not a client of the service).
    pub scrape: bool,
    /// `--rate-limit`: the tokens for its request lines, and whether it waits for one.
    pub bucket: Option<Box<TokenBucket>>,
    pub rate_waiting: bool,
    pub greeted: bool,
    pub name: Option<Box<str>>,
    pub requests: u64,
    pub opened_at: Instant,
    pub last_activity: Instant,
    /// Set while closing: past it the connection is dropped whatever the peer does.
    pub close_deadline: Option<Instant>,
    /// Reading stopped because too much output is queued (see READ_PAUSE_OUTPUT).
    pub read_paused: bool,
    /// Reading stopped because members receiving this client's messages are behind (chat).
    pub fanout_paused: bool,
    /// When the socket last took output bytes: a client far behind that still drains is slow,
    /// one that does not is stalled.
    pub last_drained: Instant,
    /// In the reactor's list of connections to flush at the end of this loop turn.
    pub dirty: bool,
    registered: Interest,
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

fn interrupted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}

impl Conn {
    /// A new connection, registered for reading. With TLS it starts handshaking; without,
    /// it is open at once.
    pub fn new(
        id: ConnId,
        socket: TcpStream,
        peer: SocketAddr,
        tls: Option<&Arc<ServerConfig>>,
        expect_proxy: bool,
        max_line: usize,
        now: Instant,
    ) -> Result<Conn, rustls::Error> {
        let tls = match tls {
            Some(config) => Some(Box::new(ServerConnection::new(Arc::clone(config))?)),
            None => None,
        };
        Ok(Conn {
            id,
            peer,
            proxy: None,
            health_check: false,
            proxy_error: None,
            ip_counted: false,
            socket,
            phase: match (expect_proxy, tls.is_some()) {
                (true, _) => Phase::AwaitingProxy,
                (false, true) => Phase::Handshaking,
                (false, false) => Phase::Open,
            },
            tls,
            lines: LineBuffer::new(max_line),
            out: Vec::new(),
            out_sent: 0,
            close_notify_sent: false,
            peer_closed: false,
            close_reason: None,
            tls_error: None,
            refusal: None,
            scrape: false,
            bucket: None,
            rate_waiting: false,
            greeted: false,
            name: None,
            requests: 0,
            opened_at: now,
            last_activity: now,
            close_deadline: None,
            read_paused: false,
            fanout_paused: false,
            last_drained: now,
            dirty: false,
            registered: Interest::READABLE,
        })
    }

    pub fn socket_mut(&mut self) -> &mut TcpStream {
        &mut self.socket
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Requests are read only while the connection is open and not throttled.
    pub fn may_read_requests(&self) -> bool {
        self.phase == Phase::Open && !self.read_paused
    }

    /// `TLSv1_3/TLS13_AES_256_GCM_SHA384`, or `plain`.
    pub fn tls_description(&self) -> String {
        match &self.tls {
            None => "plain".to_string(),
            Some(tls) => match (tls.protocol_version(), tls.negotiated_cipher_suite()) {
                (Some(version), Some(suite)) => {
                    // A resumed session (a returning client's ticket) says so.
                    let resumed = tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                    format!(
                        "{version:?}/{:?}{}",
                        suite.suite(),
                        if resumed { " resumed=yes" } else { "" }
                    )
                }
                _ => "-".to_string(),
            },
        }
    }

    /// The subject of the certificate the client presented (mutual TLS), for the log.
    pub fn client_subject(&self) -> Option<String> {
        let certs = self.tls.as_ref()?.peer_certificates()?;
        crate::tls::subject(certs.first()?)
    }

    /// The name the certificate the client presented gives it (mutual TLS): its CN, else its
    /// first DNS or e-mail name; `Some("")` when it gives none, `None` without a certificate.
    pub fn client_identity(&self) -> Option<String> {
        let certs = self.tls.as_ref()?.peer_certificates()?;
        Some(crate::tls::certificate_name(certs.first()?).unwrap_or_default())
    }

    /// Reads what the peer sent: TLS records are decrypted, handshake messages processed.
    /// Call it until it returns `WouldBlock` or `Closed` (readiness is edge-triggered).
    pub fn read(&mut self, buf: &mut [u8], traffic: &mut Traffic) -> ReadEvent {
        if self.phase == Phase::Lingering {
            return self.discard_until_eof(buf);
        }
        if self.phase == Phase::AwaitingProxy {
            return self.read_proxy_header(buf, traffic);
        }
        loop {
            let Some(tls) = &mut self.tls else {
                return match self.socket.read(buf) {
                    Ok(0) => ReadEvent::Closed(CloseReason::Eof),
                    Ok(n) => {
                        traffic.received += n as u64;
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
                // A clean close_notify from the peer.
                Ok(0) => return ReadEvent::Closed(CloseReason::Eof),
                Ok(n) => return ReadEvent::Data(n),
                Err(e) if would_block(&e) => {}
                // TCP closed without close_notify: the peer is gone all the same.
                Err(_) => return ReadEvent::Closed(CloseReason::Eof),
            }
            if self.peer_closed {
                return ReadEvent::Closed(CloseReason::Eof);
            }
            match tls.read_tls(&mut self.socket) {
                Ok(0) => self.peer_closed = true,
                Ok(n) => traffic.received += n as u64,
                Err(e) if would_block(&e) => return ReadEvent::WouldBlock,
                Err(e) if interrupted(&e) => continue,
                Err(_) => return ReadEvent::Closed(CloseReason::Reset),
            }
            if let Err(e) = tls.process_new_packets() {
                // rustls has queued an alert for the peer; finish() tries to send it.
                self.tls_error = Some(Box::new(e));
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
            match self.socket.peek(&mut buf[..window]) {
                Ok(0) => return self.refuse_proxy("the connection ended before a PROXY header"),
                Ok(n) => break n,
                Err(e) if would_block(&e) => return ReadEvent::WouldBlock,
                Err(e) if interrupted(&e) => continue,
                Err(_) => return ReadEvent::Closed(CloseReason::Reset),
            }
        };
        let (len, client, local) = match crate::proxy::parse(&buf[..seen]) {
            // More will come (a new readiness edge), or the handshake timeout ends the wait.
            Parsed::Incomplete => return ReadEvent::WouldBlock,
            Parsed::Invalid(why) => return self.refuse_proxy(why),
            Parsed::Header { len, client, local } => (len, client, local),
        };
        if self.socket.read_exact(&mut buf[..len]).is_err() {
            return ReadEvent::Closed(CloseReason::Reset);
        }
        traffic.received += len as u64;
        if let Some(client) = client {
            self.proxy = Some(std::mem::replace(&mut self.peer, client));
        }
        self.health_check = local;
        self.phase = if self.tls.is_some() {
            Phase::Handshaking
        } else {
            Phase::Open
        };
        ReadEvent::ProxyDone
    }

    fn refuse_proxy(&mut self, why: &'static str) -> ReadEvent {
        self.proxy_error = Some(why);
        ReadEvent::Closed(CloseReason::ProxyError)
    }

    /// While lingering: throw away whatever arrives until the peer's EOF.
    fn discard_until_eof(&mut self, buf: &mut [u8]) -> ReadEvent {
        loop {
            match self.socket.read(buf) {
                Ok(0) => return ReadEvent::Closed(self.close_reason.unwrap_or(CloseReason::Eof)),
                Ok(_) => continue,
                Err(e) if would_block(&e) => return ReadEvent::WouldBlock,
                Err(e) if interrupted(&e) => continue,
                Err(_) => {
                    return ReadEvent::Closed(self.close_reason.unwrap_or(CloseReason::Reset));
                }
            }
        }
    }

    /// Queues reply bytes. Returns false when the client has more than MAX_PENDING_OUTPUT
    /// waiting: it is not reading, and the caller disconnects it.
    pub fn queue(&mut self, bytes: &[u8]) -> bool {
        if self.phase == Phase::Lingering || self.close_notify_sent {
            return true; // Too late to send anything; dropping it is the only option.
        }
        if self.pending_output() + bytes.len() > MAX_PENDING_OUTPUT {
            return false;
        }
        self.out.extend_from_slice(bytes);
        true
    }

    /// Reply bytes waiting in our queue (rustls's own buffer, at most 64 KiB, not counted).
    pub fn pending_output(&self) -> usize {
        self.out.len() - self.out_sent
    }

    /// Writes as much queued output as the socket takes. `Err` means the peer is gone.
    pub fn flush(&mut self, now: Instant, traffic: &mut Traffic) -> Result<(), CloseReason> {
        let closing = self.phase == Phase::Closing;
        loop {
            let mut progress = false;
            match &mut self.tls {
                Some(tls) => {
                    if self.out_sent < self.out.len() && !tls.is_handshaking() {
                        // rustls takes at most its buffer limit; the rest waits in `out`.
                        let n = tls.writer().write(&self.out[self.out_sent..]).unwrap_or(0);
                        self.out_sent += n;
                    }
                    if self.out_sent == self.out.len() && closing && !self.close_notify_sent {
                        tls.send_close_notify();
                        self.close_notify_sent = true;
                    }
                    if tls.wants_write() {
                        match tls.write_tls(&mut self.socket) {
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
                        match self.socket.write(&self.out[self.out_sent..]) {
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
                    if self.out_sent == self.out.len() && closing {
                        self.close_notify_sent = true; // nothing to send without TLS
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
            if progress {
                // SPEC: any byte in either direction restarts the idle clock.
                self.last_activity = now;
                self.last_drained = now;
            } else {
                break;
            }
        }
        if closing && self.close_notify_sent && !self.wants_write() {
            // Everything is out: send FIN, then wait for the peer's.
            let _ = self.socket.shutdown(Shutdown::Write);
            self.phase = Phase::Lingering;
        }
        Ok(())
    }

    fn wants_write(&self) -> bool {
        self.out_sent < self.out.len() || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Starts an orderly close: queued replies, then close_notify, then FIN, then waiting for
    /// the peer's FIN until `deadline`. Returns false when the reason calls for dropping the
    /// connection at once instead (reset, TLS error, slow reader, handshake timeout).
    pub fn begin_close(&mut self, reason: CloseReason, deadline: Instant) -> bool {
        if self.close_reason.is_none() {
            self.close_reason = Some(reason);
        }
        if !reason.is_orderly() || self.phase == Phase::Handshaking {
            return false;
        }
        if self.phase == Phase::Open {
            self.phase = Phase::Closing;
            self.close_deadline = Some(deadline);
        }
        true
    }

    /// True once a closing connection has nothing left to do: it can be dropped.
    pub fn is_finished(&self) -> bool {
        match self.phase {
            Phase::Lingering => self.peer_closed,
            _ => false,
        }
    }

    /// The peer's EOF arrived while we were closing.
    pub fn note_peer_closed(&mut self) {
        self.peer_closed = true;
    }

    /// Last words before the socket is dropped after a TLS error: to a client that spoke plain
    /// text, one plain line that says why (a TLS alert would read as binary noise); to anyone
    /// else, the alert rustls queued. Best effort, one try: the peer may not read at all.
    pub fn send_last_words(&mut self) {
        let spoke_plain_text = self.phase == Phase::Handshaking
            && matches!(
                self.tls_error.as_deref(),
                Some(rustls::Error::InvalidMessage(
                    rustls::InvalidMessage::InvalidContentType
                ))
            );
        if spoke_plain_text {
            let _ = self.socket.write(PLAIN_TEXT_ON_TLS_REPLY);
        } else if let Some(tls) = &mut self.tls {
            let _ = tls.write_tls(&mut self.socket);
        }
    }

    /// The readiness this connection needs now: always readable (EOF and resets must be
    /// seen), writable only while there is something to write, or the loop would spin.
    pub fn interest(&self) -> Interest {
        if self.wants_write() && self.phase != Phase::Lingering {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// Updates the registration when the needed interest changed (one syscall, only then).
    pub fn update_registration(&mut self, registry: &mio::Registry) -> io::Result<()> {
        let wanted = self.interest();
        if wanted != self.registered {
            registry.reregister(&mut self.socket, mio::Token(self.id.as_usize()), wanted)?;
            self.registered = wanted;
        }
        Ok(())
    }
}
