//! Accepting and admission: draining a listener's backlog, pausing on EMFILE instead of
//! spinning, and admitting each socket as a `Conn` in a free slot, or as busy past
//! `--max-clients` (told so after its handshake, and not counted against the limit).

use std::io;
use std::net::SocketAddr;

use mio::net::TcpStream;
use mio::{Interest, Token};

use super::{ACCEPT_PAUSE, MAX_BUSY_REPLIES, Reactor};
use crate::conn::Conn;
use crate::log::Value;
use crate::outbox::ConnId;

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
                Ok((stream, peer)) => self.admit(stream, peer),
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

    /// A new socket: a place under `--max-clients` (process-wide) or, past it, busy.
    pub(super) fn admit(&mut self, stream: TcpStream, peer: SocketAddr) {
        let busy = !self.shared.admit();
        if busy && self.busy_now >= MAX_BUSY_REPLIES {
            // Too many even to tell them: drop the socket, which frees its descriptor.
            let serial = self.shared.next_serial();
            self.log.line(format_args!(
                "conn={serial}{} peer={peer} event=open tls=-",
                super::worker_tag(&self.shared, self.worker)
            ));
            self.log.line(format_args!(
                "conn={serial} event=close reason=busy requests=0"
            ));
            return;
        }
        if !self.take_slot(stream, peer, busy) && !busy {
            self.shared.depart(); // the place it took is free again
        }
    }

    /// Puts the connection in a slot and registers it; false (logged) when that failed.
    fn take_slot(&mut self, stream: TcpStream, peer: SocketAddr, busy: bool) -> bool {
        // Small replies must leave at once, not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let id = ConnId::new(self.shared.next_serial(), slot);
        let mut conn = match Conn::new(
            id,
            stream,
            peer,
            self.tls.as_ref(),
            self.settings.max_line,
            self.now,
        ) {
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
        conn.busy = busy;
        self.conns[slot] = Some(conn);
        self.live += 1;
        self.busy_now += usize::from(busy);
        if self.tls.is_some() {
            if let Some(timeout) = self.settings.handshake_timeout {
                self.note_deadline(self.now + timeout);
            }
        } else {
            self.on_ready(id);
        }
        true
    }
}
