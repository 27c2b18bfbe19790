//! Accepting and admission: draining a listener's backlog, pausing on EMFILE instead of
//! spinning, and admitting each socket as a `Conn` in a free slot, or refused past
//! `--max-clients` or `--max-per-ip` (told so after its handshake, and holding no place).

use std::io;
use std::net::SocketAddr;

use mio::net::TcpStream;
use mio::{Interest, Token};

use super::{ACCEPT_PAUSE, MAX_BUSY_REPLIES, Reactor};
use crate::conn::{CloseReason, Conn, Phase, Refusal};
use crate::log::Value;
use crate::outbox::ConnId;
use crate::rate::TokenBucket;

impl Reactor {
    /// Accepts until the backlog is empty (edge-triggered: a missed connection would wait
    /// for the next one to arrive).
    pub(super) fn accept_all(&mut self, index: usize) {
        if self.accept_paused_until.is_some() || self.shutdown_deadline.is_some() {
            return;
        }
        let mut failures = 0;
        loop {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    // One client, one address: `::ffff:a.b.c.d` is `a.b.c.d` from here on.
                    let peer = crate::peer::canonical(peer);
                    self.admit(stream, peer, Some(index) == self.scrape_listener)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ECONNABORTED, and the network errors Linux hands on from a connection
                    // that failed in the backlog (accept(2)), concern that one connection: the
                    // next may be fine. But the same numbers come from a socket that can never
                    // accept (EOPNOTSUPP from UDP), so only a few in a row are passed over.
                    // Anything else (EMFILE, ENFILE, ENOBUFS, EINVAL from a socket that stopped
                    // listening...) pauses accepting: retrying at once would spin the loop and
                    // starve signals and timers. A close resumes at once (a freed descriptor),
                    // else the pause's end.
                    failures += 1;
                    if failures < MAX_ACCEPT_FAILURES_IN_A_ROW && one_connection_failed(&e) {
                        continue;
                    }
                    self.log.line(format_args!(
                        "event=accept-paused error={}",
                        Value(e.to_string().as_bytes())
                    ));
                    self.accept_paused_until = Some(self.now + ACCEPT_PAUSE);
                    return;
                }
            }
        }
    }

    /// A new socket: a place under `--max-clients` (process-wide) and under `--max-per-ip`, or
    /// refused (told why after its handshake, holding no place meanwhile).
    pub(super) fn admit(&mut self, stream: TcpStream, peer: SocketAddr, scrape: bool) {
        // Behind a balancer the socket's peer is the balancer: the client's address, and its
        // place under `--max-per-ip`, come with the PROXY header (`admit_proxied`).
        let proxied = !scrape && self.settings.proxy_from.is_some();
        if proxied
            && !self
                .settings
                .proxy_from
                .as_ref()
                .is_some_and(|f| f.allows(peer.ip()))
        {
            self.log_refused_at_once(
                peer,
                CloseReason::ProxyError,
                Some("connection from an address not in --proxy-from"),
            );
            return;
        }
        let refusal = if !self.shared.admit() {
            Some(Refusal::Busy)
        } else if !proxied && !self.shared.admit_ip(peer.ip()) {
            self.shared.depart();
            Some(Refusal::PerIp)
        } else {
            None
        };
        if let Some(refusal) = refusal
            && self.busy_now >= MAX_BUSY_REPLIES
        {
            // Too many even to tell them: drop the socket, which frees its descriptor.
            self.log_refused_at_once(peer, refusal.reason(), None);
            return;
        }
        if !self.take_slot(stream, peer, refusal, scrape, proxied) && refusal.is_none() {
            // The places it took are free again.
            self.shared.depart();
            if !proxied {
                self.shared.depart_ip(peer.ip());
            }
        }
    }

    /// A connection dropped right after `accept` (its socket closes as it goes): its open and
    /// close lines all the same.
    fn log_refused_at_once(&mut self, peer: SocketAddr, reason: CloseReason, why: Option<&str>) {
        let serial = self.shared.next_serial();
        self.log.line(format_args!(
            "conn={serial}{} peer={peer} event=open tls=-",
            super::worker_tag(&self.shared, self.worker)
        ));
        match why {
            Some(why) => self.log.line(format_args!(
                "conn={serial} event=close reason={} requests=0 error={}",
                reason.as_str(),
                Value(why.as_bytes())
            )),
            None => self.log.line(format_args!(
                "conn={serial} event=close reason={} requests=0",
                reason.as_str()
            )),
        }
        self.counters.connections_total += 1;
        self.counters.closed(reason);
    }

    /// The PROXY header named the client: its place under `--max-per-ip` is taken now (or it
    /// is refused like any connection over the limit), and a plain connection is greeted.
    pub(super) fn admit_proxied(&mut self, id: ConnId) {
        let Some(conn) = super::slot_mut(&mut self.conns, id) else {
            return;
        };
        if conn.refusal.is_none() {
            if self.shared.admit_ip(conn.peer.ip()) {
                conn.ip_counted = true;
            } else {
                self.shared.depart();
                conn.refusal = Some(Refusal::PerIp);
                self.busy_now += 1;
            }
        }
        if conn.phase() == Phase::Open {
            self.on_ready(id);
        }
    }

    /// Puts the connection in a slot and registers it; false (logged) when that failed.
    fn take_slot(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
        refusal: Option<Refusal>,
        scrape: bool,
        proxied: bool,
    ) -> bool {
        // Small replies must leave at once, not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let id = ConnId::new(self.shared.next_serial(), slot);
        // The metrics endpoint speaks plain HTTP, whatever the service's listeners speak.
        let tls = if scrape { None } else { self.tls.as_ref() };
        let max_line = self.settings.max_line;
        let mut conn = match Conn::new(id, stream, peer, tls, proxied, max_line, self.now) {
            Ok(conn) => conn,
            Err(e) => {
                self.free_slots.push(slot);
                self.log.line(format_args!(
                    "conn={id} peer={peer} event=error error={}",
                    Value(e.to_string().as_bytes())
                ));
                return false;
            }
        };
        if let Err(e) = self.poll.registry().register(
            conn.socket_mut(),
            Token(id.as_usize()),
            Interest::READABLE,
        ) {
            self.free_slots.push(slot);
            self.log.line(format_args!(
                "conn={id} peer={peer} event=error error={}",
                Value(e.to_string().as_bytes())
            ));
            return false;
        }
        conn.refusal = refusal;
        conn.scrape = scrape;
        conn.ip_counted = refusal.is_none() && !proxied;
        if !scrape {
            conn.bucket = self
                .settings
                .rate_limit
                .map(|n| Box::new(TokenBucket::new(n, self.now)));
        }
        // The handshake timeout covers the wait for a PROXY header too.
        let handshaking = matches!(conn.phase(), Phase::Handshaking | Phase::AwaitingProxy);
        self.conns[slot] = Some(conn);
        self.live += 1;
        self.busy_now += usize::from(refusal.is_some());
        if scrape {
            self.scrapes_now += 1;
        } else {
            self.counters.connections_total += 1;
        }
        if handshaking {
            if let Some(timeout) = self.settings.handshake_timeout {
                self.note_deadline(self.now + timeout);
            }
        } else {
            self.on_ready(id);
        }
        true
    }
}

/// Failed accepts in one call before accepting pauses, whatever the error.
const MAX_ACCEPT_FAILURES_IN_A_ROW: usize = 64;

/// Errors that `accept` reports for one connection that failed while it waited in the backlog
/// (ECONNABORTED; for TCP, accept(2) lists the network errors passed on this way).
fn one_connection_failed(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNABORTED
                | libc::EPROTO
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
                | libc::EPERM
        )
    )
}
