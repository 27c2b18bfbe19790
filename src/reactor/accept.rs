//! Accepting: the listeners (the service's, and the `--metrics` one last), draining a
//! listener's backlog, pausing on EMFILE instead of spinning, and turning each socket into a
//! `Conn` in a free slot with the places admission gave it.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use super::Reactor;
use super::admission::{Candidate, NEWCOMER_GRACE, Verdict};
use super::slots::Slots;
use crate::conn::{CloseReason, Conn, Kind, Places, Setup};
use crate::log::Value;

/// After EMFILE/ENFILE, accepting pauses this long instead of spinning on the error.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// What a scrape is told when the metrics endpoint already serves MAX_SCRAPES connections.
const SCRAPES_FULL_REPLY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

pub struct Listeners {
    sockets: Vec<TcpListener>,
    /// The index of the `--metrics` listener (the last), if any.
    metrics: Option<usize>,
    /// Accepting is paused (out of descriptors, or an error that will not go away) while
    /// connections wait: how many have been accepted since it began. Logged once when it
    /// begins and once when it ends, never once per retry (SPEC "Operations (additions)").
    pause: Option<u64>,
}

impl Listeners {
    /// Registers every listener with the poll, its token its index.
    pub fn register(
        mut sockets: Vec<TcpListener>,
        metrics: Option<TcpListener>,
        registry: &Registry,
    ) -> Result<Listeners, String> {
        let metrics = metrics.map(|listener| {
            sockets.push(listener);
            sockets.len() - 1
        });
        for (i, listener) in sockets.iter_mut().enumerate() {
            registry
                .register(listener, Token(i), Interest::READABLE)
                .map_err(|e| format!("cannot register a listener: {e}"))?;
        }
        Ok(Listeners {
            sockets,
            metrics,
            pause: None,
        })
    }

    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Stops listening (shutdown): new connections are refused by the kernel.
    pub fn close_all(&mut self, registry: &Registry) {
        for mut listener in self.sockets.drain(..) {
            let _ = registry.deregister(&mut listener);
        }
    }
}

impl Reactor {
    /// Accepts until the backlog is empty (edge-triggered: a missed connection would wait
    /// for the next one to arrive).
    pub(super) fn accept_all(&mut self, index: usize) {
        if self.clock.accept_paused_until.is_some() || self.clock.shutdown_deadline.is_some() {
            return;
        }
        let mut failures = 0;
        let scrape = Some(index) == self.listeners.metrics;
        loop {
            let Some(listener) = self.listeners.sockets.get(index) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    if let Some(waited) = &mut self.listeners.pause {
                        *waited += 1;
                    }
                    // One client, one address: `::ffff:a.b.c.d` is `a.b.c.d` from here on.
                    let peer = crate::peer::canonical(peer);
                    self.admit(stream, peer, scrape)
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
                    // Out of descriptors is every place taken, as far as a newcomer can tell:
                    // the connection that has waited longest without handshaking gives way
                    // (its descriptor is freed at once), so a flood of silent sockets cannot
                    // keep real clients out below --max-clients either. Only for a newcomer
                    // that is there: Linux says EMFILE before it looks at the backlog.
                    let out_of_descriptors = out_of_descriptors(&e);
                    let waiting = out_of_descriptors && connection_waiting(listener);
                    if failures < MAX_ACCEPT_FAILURES_IN_A_ROW
                        && waiting
                        && self.evict_longest_handshaking()
                    {
                        continue;
                    }
                    if out_of_descriptors && !waiting {
                        // Nobody waits (Linux says EMFILE before it looks at the backlog): no
                        // pause, and the edge of the next arrival brings us back here.
                        return;
                    }
                    if self.listeners.pause.is_none() {
                        self.listeners.pause = Some(0);
                        self.log.line(format_args!(
                            "event=accept-paused error={}",
                            Value(e.to_string().as_bytes())
                        ));
                    }
                    self.clock.accept_paused_until = Some(self.clock.now + ACCEPT_PAUSE);
                    return;
                }
            }
        }
    }

    /// The pause's end is due (or a descriptor was freed): every listener is tried again. The
    /// pause is over once no try paused again: one line says so, with how many connections
    /// were accepted that had waited (counted from its start).
    pub(super) fn retry_accepts(&mut self) {
        self.clock.accept_paused_until = None;
        for index in 0..self.listeners.len() {
            self.accept_all(index);
        }
        if self.clock.accept_paused_until.is_none()
            && let Some(waited) = self.listeners.pause.take()
        {
            self.log
                .line(format_args!("event=accept-resumed waited={waited}"));
        }
    }

    /// A new socket: in with its places, refused (told why after its handshake), or dropped.
    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr, scrape: bool) {
        let mut verdict = self.admission.admit(peer.ip(), scrape, false);
        if verdict == Verdict::Full {
            // Every place is taken: the connection that has waited longest without finishing
            // its handshake gives its place to this one.
            self.evict_longest_handshaking();
            verdict = self.admission.admit(peer.ip(), scrape, true);
        }
        match verdict {
            Verdict::Admit(kind, places) => self.take_slot(stream, peer, kind, places),
            Verdict::ScrapesFull => {
                // One try on a fresh socket; the scrape is not worth a slot.
                let _ = stream.write(SCRAPES_FULL_REPLY);
            }
            Verdict::DropAtOnce(reason, why) => self.log_refused_at_once(peer, reason, why),
            Verdict::Full => self.log_refused_at_once(peer, CloseReason::Busy, None),
        }
    }

    /// Closes the connection that has waited longest without finishing its handshake
    /// (`reason=evicted`); false when there is none.
    fn evict_longest_handshaking(&mut self) -> bool {
        let now = self.clock.now;
        let conns = &self.conns;
        let victim = self
            .admission
            .longest_handshaking(|id| victim_candidate(conns, id, now));
        match victim {
            Some(victim) => {
                self.close(victim, CloseReason::Evicted);
                true
            }
            None => false,
        }
    }

    /// Another worker took places over `--max-clients` for newcomers it had no stalled
    /// connection to evict for: this worker's longest-handshaking connections give them back.
    pub(super) fn repay_overdraft(&mut self) {
        while self.worker.shared.overdrawn() {
            let (conns, now) = (&self.conns, self.clock.now);
            let Some(victim) = self
                .admission
                .longest_handshaking(|id| victim_candidate(conns, id, now))
            else {
                return;
            };
            let Some(conn) = self.conns.get_mut(victim) else {
                continue;
            };
            let Some(places) = conn.take_places() else {
                continue;
            };
            // Only a connection holding a client place can give one back (one that is to be
            // told busy holds none).
            if !places.client || !self.worker.shared.repay_overdraft() {
                conn.restore_places(places);
                if places.client {
                    // A client left meanwhile: nothing is over the limit any more, and this
                    // one keeps its turn as the next to give its place.
                    self.admission.keep_first(victim);
                    return;
                }
                continue;
            }
            // Its place went with the repayment: its close must not give it back again.
            conn.restore_places(Places {
                client: false,
                ..places
            });
            self.close(victim, CloseReason::Evicted);
        }
    }

    /// A connection dropped right after `accept` (its socket closes as it goes): its open and
    /// close lines all the same.
    fn log_refused_at_once(&mut self, peer: SocketAddr, reason: CloseReason, why: Option<&str>) {
        let serial = self.worker.shared.next_serial();
        self.log.line(format_args!(
            "conn={serial}{} peer={peer} event=open tls=-",
            super::closing::worker_tag(&self.worker)
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
        self.meter.counters.connections_total += 1;
        self.meter.counters.closed(reason);
    }

    /// Puts the connection in a slot and registers it; on failure its places are given back.
    fn take_slot(&mut self, stream: TcpStream, peer: SocketAddr, kind: Kind, places: Places) {
        // Small replies must leave at once, not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let id = self.conns.next_id(self.worker.shared.next_serial());
        let setup = Setup {
            tls: self.settings.tls.as_ref(),
            expect_proxy: self.admission.expects_proxy(),
            max_line: self.settings.max_line,
            rate_limit: self.settings.rate_limit,
        };
        let conn = match Conn::new(id, peer, kind, places, setup, self.clock.now) {
            Ok(conn) => conn,
            Err(e) => {
                self.conns.unused(id);
                self.admission.release(places);
                self.log.line(format_args!(
                    "conn={id} peer={peer} event=error error={}",
                    Value(e.to_string().as_bytes())
                ));
                return;
            }
        };
        let handshaking = conn.is_handshaking();
        if let Err(e) = self.conns.insert(conn, stream, self.poll.registry()) {
            self.admission.release(places);
            self.log.line(format_args!(
                "conn={id} peer={peer} event=error error={}",
                Value(e.to_string().as_bytes())
            ));
            return;
        }
        if kind != Kind::Scrape {
            self.meter.counters.connections_total += 1;
        }
        if handshaking {
            // The handshake timeout covers the wait for a PROXY header too.
            let now = self.clock.now;
            let conns = &self.conns;
            self.admission
                .note_handshaking(id, |id| candidate(conns, id, now));
            if let Some(timeout) = self.settings.timeouts.handshake {
                self.clock.note_deadline(self.clock.now + timeout);
            }
        } else {
            self.on_ready(id);
        }
        if kind == Kind::Scrape {
            self.clock
                .note_deadline(self.clock.now + crate::conn::SCRAPE_LIFETIME);
        }
    }

    /// The PROXY header named the client: its place under `--max-per-ip` is taken now (or it
    /// is refused like any connection over the limit), and a plain connection is greeted.
    pub(super) fn admit_proxied(&mut self, id: crate::outbox::ConnId) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if let Some(held) = conn.take_places() {
            match self.admission.admit_proxied(conn.peer().addr.ip(), held) {
                Ok(places) => conn.restore_places(places),
                Err((refusal, places)) => conn.refuse(refusal, places),
            }
        }
        if !conn.is_handshaking() {
            self.on_ready(id);
        }
    }
}

/// What a connection is to eviction at `now` (see `admission`): only a client holding its place
/// and still handshaking can give that place to a newcomer; one past its grace that has sent
/// nothing goes first, one accepted a moment ago last.
pub(super) fn candidate(conns: &Slots, id: crate::outbox::ConnId, now: Instant) -> Candidate {
    match conns.get(id) {
        Some(conn) if conn.kind() == Kind::Client && conn.is_handshaking() => {
            if conn.hello_answered() {
                return Candidate::Answered;
            }
            let new = now.saturating_duration_since(conn.opened_at()) < NEWCOMER_GRACE;
            match (new, conn.has_spoken()) {
                (true, false) => Candidate::NewSilent,
                (true, true) => Candidate::NewSpoken,
                (false, false) => Candidate::Silent,
                (false, true) => Candidate::Spoken,
            }
        }
        _ => Candidate::Gone,
    }
}

/// [`candidate`], when a victim is being chosen: a connection the core has heard nothing from
/// but whose bytes already wait in the kernel (its ClientHello came in this loop turn) has
/// spoken, so a burst of accepts cannot take a real client for a silent socket.
fn victim_candidate(conns: &Slots, id: crate::outbox::ConnId, now: Instant) -> Candidate {
    let waiting = || {
        conns
            .socket(id)
            .is_some_and(super::driver::has_bytes_waiting)
    };
    match candidate(conns, id, now) {
        Candidate::NewSilent if waiting() => Candidate::NewSpoken,
        Candidate::Silent if waiting() => Candidate::Spoken,
        other => other,
    }
}

/// Failed accepts in one call before accepting pauses, whatever the error.
const MAX_ACCEPT_FAILURES_IN_A_ROW: usize = 64;

/// Whether a connection waits in `listener`'s backlog (a poll that does not wait; the
/// reactor's own poll is edge-triggered and says nothing about what is still there).
fn connection_waiting(listener: &TcpListener) -> bool {
    use std::os::fd::AsRawFd;
    let mut probe = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd we own, for a descriptor the listener keeps open; no waiting.
    let ready = unsafe { libc::poll(&mut probe, 1, 0) };
    ready > 0 && probe.revents & libc::POLLIN != 0
}

/// EMFILE, ENFILE: no descriptor for the next connection (the process's or the system's).
fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

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
