//! Accepting and admission: draining a listener's backlog, pausing on EMFILE instead of
//! spinning, and admitting each socket as a `Conn` in a free slot, or as busy past
//! `--max-clients` (told so after its handshake, and not counted against the limit).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use mio::net::TcpStream;
use mio::{Interest, Token};

use super::{ACCEPT_PAUSE, MAX_BUSY_REPLIES, Reactor};
use crate::config::ListenSpec;
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

    pub(super) fn admit(&mut self, stream: TcpStream, peer: SocketAddr) {
        let busy = self.live - self.busy_now >= self.settings.max_clients;
        if busy && self.busy_now >= MAX_BUSY_REPLIES {
            // Too many even to tell them: drop the socket, which frees its descriptor.
            self.last_serial += 1;
            self.log.line(format_args!(
                "conn={} peer={peer} event=open tls=-",
                self.last_serial
            ));
            self.log.line(format_args!(
                "conn={} event=close reason=busy requests=0",
                self.last_serial
            ));
            return;
        }
        // Small replies must leave at once, not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        self.last_serial += 1;
        let id = ConnId::new(self.last_serial, slot);
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
                return;
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
            return;
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
    }
}

pub(super) fn resolve(spec: &ListenSpec) -> Result<Vec<SocketAddr>, String> {
    let mut addrs: Vec<SocketAddr> = (spec.host.as_str(), spec.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", spec.host))?
        .collect();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(format!("{} has no address", spec.host));
    }
    Ok(addrs)
}
