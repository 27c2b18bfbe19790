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
        loop {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer, Some(index) == self.scrape_listener),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    // Out of descriptors. Retrying now would spin; wait until one is freed
                    // (a close resumes at once) or the pause ends.
                    self.log.line(format_args!(
                        "event=accept-paused error={}",
                        Value(e.to_string().as_bytes())
                    ));
                    self.accept_paused_until = Some(self.now + ACCEPT_PAUSE);
                    return;
                }
                // ECONNABORTED and the like concern one connection that is already gone.
                Err(_) => continue,
            }
        }
    }

    /// A new socket: a place under `--max-clients` (process-wide) and under `--max-per-ip`, or
    /// refused (told why after its handshake, holding no place meanwhile).
    pub(super) fn admit(&mut self, stream: TcpStream, peer: SocketAddr, scrape: bool) {
        let refusal = if !self.shared.admit() {
            Some(Refusal::Busy)
        } else if !self.shared.admit_ip(peer.ip()) {
            self.shared.depart();
            Some(Refusal::PerIp)
        } else {
            None
        };
        if refusal.is_some() && self.busy_now >= MAX_BUSY_REPLIES {
            // Too many even to tell them: drop the socket, which frees its descriptor.
            let serial = self.shared.next_serial();
            self.log.line(format_args!(
                "conn={serial}{} peer={peer} event=open tls=-",
                super::worker_tag(&self.shared, self.worker)
            ));
            let reason = refusal.map_or(CloseReason::Busy, Refusal::reason);
            self.log.line(format_args!(
                "conn={serial} event=close reason={} requests=0",
                reason.as_str()
            ));
            return;
        }
        if !self.take_slot(stream, peer, refusal, scrape) && refusal.is_none() {
            // The places it took are free again.
            self.shared.depart();
            self.shared.depart_ip(peer.ip());
        }
    }

    /// Puts the connection in a slot and registers it; false (logged) when that failed.
    fn take_slot(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
        refusal: Option<Refusal>,
        scrape: bool,
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
        let mut conn = match Conn::new(id, stream, peer, tls, self.settings.max_line, self.now) {
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
        if !scrape {
            conn.bucket = self
                .settings
                .rate_limit
                .map(|n| Box::new(TokenBucket::new(n, self.now)));
        }
        let handshaking = conn.phase() == Phase::Handshaking;
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
