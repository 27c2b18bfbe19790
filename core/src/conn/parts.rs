//! What a connection carries and reports, as plain values: its phase (each with its own data),
//! its kind, the places it holds, the reasons it is not read, who its peer is, its session's
//! numbers, how it is set up, and what a read found. The state machine that moves between them
//! is `conn/mod.rs`.

use core::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ServerConfig;

use super::{CloseReason, Refusal};

/// Where a connection is in its life. Each phase carries what only it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `--proxy-protocol`: waiting for the balancer's PROXY header; nothing else is read yet.
    AwaitingProxy,
    /// TLS handshake in progress; nothing is read or sent in plaintext yet.
    Handshaking,
    /// Ready: greeted (or being told it is refused); requests are read and answered.
    Open,
    /// Flushing queued output, then close_notify, then FIN. Requests are no longer read.
    Closing {
        reason: CloseReason,
        deadline: Instant,
        close_notify_sent: bool,
    },
    /// Our side is shut. Reading and discarding until the peer closes too, so the kernel does
    /// not answer its late bytes with a reset that could destroy replies it has not read yet.
    Lingering {
        reason: CloseReason,
        deadline: Instant,
    },
}

/// What a connection is, chosen once at accept (or, for `--max-per-ip` behind a balancer, when
/// the PROXY header names the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A client of the service: greeted once ready.
    Client,
    /// A client over a limit: told why once ready, then closed.
    Refused(Refusal),
    /// A connection to the `--metrics` endpoint: plain HTTP, no client of the service.
    Scrape,
}

/// The places a connection holds under the limits (`reactor::admission` owns the counts). A
/// connection gives them back exactly once, when its session ends ([`Conn::take_places`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Places {
    /// A `--max-clients` place.
    pub client: bool,
    /// A `--max-per-ip` place for this address.
    pub per_ip: Option<IpAddr>,
    /// One of the few connections being told `ERR server busy` at once.
    pub busy_reply: bool,
    /// One of the few `--metrics` connections at once.
    pub scrape: bool,
}

/// Why a connection is not read now. Reading goes on once the set is empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pauses(u8);

impl Pauses {
    /// Its own replies are more than READ_PAUSE_OUTPUT behind.
    pub const OUTPUT: Pauses = Pauses(1);
    /// Members receiving its chat messages are far behind (see `room::flow`).
    pub const FANOUT: Pauses = Pauses(2);
    /// `--rate-limit`: no token for its next line.
    pub const RATE: Pauses = Pauses(4);

    pub fn contains(self, other: Pauses) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(super) fn insert(&mut self, other: Pauses) {
        self.0 |= other.0;
    }

    pub(super) fn remove(&mut self, other: Pauses) {
        self.0 &= !other.0;
    }
}

/// Bytes moved on client sockets (TLS records included), for the metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct Traffic {
    pub received: u64,
    pub sent: u64,
}

/// What one call to [`Conn::handle_bytes`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadEvent {
    /// Plaintext bytes in the buffer the caller lent.
    Data(usize),
    /// The PROXY header was read (`peer` is now the client it names): admission by address,
    /// then on to the handshake (or, without TLS, the greeting).
    ProxyDone,
    /// The TLS handshake just finished: time to greet.
    HandshakeDone,
    /// Every byte handed in is taken, and nothing more comes out of them: read the socket.
    NeedBytes,
    /// The connection cannot be read any more, and why.
    Closed(CloseReason),
}

/// The session's own numbers, for the log.
#[derive(Debug, Default)]
pub struct Session {
    /// The name the client took with `name NAME`, as the service accepted it.
    pub name: Option<Box<str>>,
    /// Request lines answered (bad ones included).
    pub requests: u64,
}

impl Session {
    /// Remembers the name the service accepted (no allocation when it is the same name again).
    pub fn set_name(&mut self, new: &[u8]) {
        let new = String::from_utf8_lossy(new);
        if self.name.as_deref() != Some(&*new) {
            self.name = Some(new.into());
        }
    }
}

/// Who is at the other end.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The client: the socket's peer, or the address a PROXY header gave.
    pub addr: SocketAddr,
    /// The balancer's address, when a PROXY header named the client.
    pub proxy: Option<SocketAddr>,
    /// The PROXY header said `LOCAL`: the balancer itself, most likely a health check.
    pub health_check: bool,
}

/// The timeouts a connection's deadline depends on (`None` = never).
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeouts {
    pub handshake: Option<Duration>,
    pub idle: Option<Duration>,
    pub line: Option<Duration>,
}

/// How a connection is set up at accept.
pub struct Setup<'a> {
    pub tls: Option<&'a Arc<ServerConfig>>,
    pub expect_proxy: bool,
    pub max_line: usize,
    /// `--rate-limit`, or the chat's default pace.
    pub rate_limit: Option<crate::rate::Pace>,
}
