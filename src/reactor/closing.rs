//! Writing and ending: the before-sleep flush (one batched write per connection with output),
//! orderly and immediate closes, the end of a connection (its log lines, its places, the
//! service told), and the shutdown of the whole reactor.

use std::net::SocketAddr;

use super::{CLOSE_GRACE, Reactor, SHUTDOWN_GRACE, SHUTDOWN_REPLY, Worker};
use crate::conn::{CloseReason, Conn, ConnError, Kind, Phase};
use crate::log::{Log, Value};
use crate::outbox::ConnId;

impl Reactor {
    /// The "before sleep" flush: every connection that got output this turn writes it now,
    /// all of it in one batch (one `write_tls` carries every reply a read produced).
    pub(super) fn flush_dirty(&mut self) {
        while let Some(id) = self.conns.next_dirty() {
            let Some((conn, socket)) = self.conns.get_with_socket(id) else {
                continue;
            };
            let (transmit, traffic) = (&mut self.transmit, &mut self.meter.traffic);
            let resumed =
                match super::driver::flush(conn, socket, transmit, self.clock.now, traffic) {
                    Ok(resumed) => resumed,
                    Err(reason) => {
                        self.close(id, reason);
                        self.settle(None);
                        continue;
                    }
                };
            self.conns.recount(id, &self.worker.shared, self.clock.now);
            let Some(conn) = self.conns.get(id) else {
                continue;
            };
            if matches!(conn.phase(), Phase::Lingering { .. }) {
                // Our FIN is out; the peer's may already be waiting to be read.
                self.read_from(id);
            } else if resumed {
                // Its replies drained: read it again next turn, not in this one, so a client
                // that sends as fast as the kernel takes our replies cannot keep the turn (and
                // the signals and timers behind it) to itself.
                self.conns.read_later(id);
            }
            if self
                .conns
                .update_registration(id, self.poll.registry())
                .is_err()
            {
                self.close(id, CloseReason::Reset);
                self.settle(None);
            }
        }
        self.review_fanout();
    }

    /// Resumes the chat senders no receiver holds back any more.
    pub(super) fn review_fanout(&mut self) {
        let conns = &self.conns;
        let review = self.room.review(self.clock.now, |id| {
            conns
                .get(id)
                .map(|c| (c.pending_output(), c.last_drained()))
        });
        if let Some(at) = review.look_again_at {
            self.clock.note_deadline(at);
        }
        for id in review.resume {
            if let Some(conn) = self.conns.get_mut(id) {
                conn.set_fanout_pause(false);
                self.conns.read_later(id);
            }
        }
    }

    /// Starts closing a connection: orderly (flush, close_notify, FIN) when the peer can still
    /// listen, at once otherwise. Either way its session is over: its places are free now.
    pub(super) fn close(&mut self, id: ConnId, reason: CloseReason) {
        let deadline = match self.clock.shutdown_deadline {
            Some(shutdown) => shutdown.min(self.clock.now + CLOSE_GRACE),
            None => self.clock.now + CLOSE_GRACE,
        };
        self.end_session(id);
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if conn.begin_close(reason, deadline) {
            self.clock.note_deadline(deadline);
            self.conns.mark_dirty(id);
        } else {
            self.finish(id, reason);
        }
    }

    /// SPEC "A session ends at BYE": the moment a connection is told `BYE` or a refusal (or is
    /// closed for any reason), its places are free and a greeted client leaves the service (the
    /// room hears `LEFT`, `who` no longer lists it, its name is free), whether or not its TCP
    /// connection is still open: a client may keep its socket long after our close_notify.
    /// Once per connection: the places are taken only once.
    fn end_session(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let Some(places) = conn.take_places() else {
            return; // ended already
        };
        self.admission.release(places);
        if conn.was_greeted() {
            self.worker.shared.ungreeted();
            self.service.on_close(id, &mut self.outbox);
        }
    }

    /// Drops a connection: deregisters it, logs its close, frees its slot (its session ended
    /// when its close began, or ends now).
    pub(super) fn finish(&mut self, id: ConnId, reason: CloseReason) {
        self.end_session(id);
        let Some((mut conn, mut socket)) = self.conns.remove(id, &self.worker.shared) else {
            return;
        };
        let reason = conn.close_reason().unwrap_or(reason);
        if reason == CloseReason::TlsError {
            super::driver::send_last_words(&mut conn, &mut socket, &mut self.transmit);
        }
        if conn.kind() == Kind::Scrape {
            // A scrape writes at most one line: this one.
            self.log.line(format_args!(
                "conn={id} peer={} event=scrape requests={} reason={}",
                conn.peer().addr,
                conn.session().requests,
                reason.as_str()
            ));
            if let Some(scrape) = &mut self.meter.scrape {
                scrape.on_close(id, &mut self.outbox);
            }
        } else {
            self.log_close(&conn, reason);
            self.meter.counters.closed(reason);
            if conn.phase() == Phase::Handshaking && self.settings.tls.is_some() {
                self.meter.counters.handshakes_failed += 1;
            }
        }
        drop((conn, socket));
        if self.clock.accept_paused_until.is_some() {
            // A descriptor was just freed: accept again now rather than at the pause's end.
            self.clock.accept_paused_until = Some(self.clock.now);
        }
    }

    /// The close line (and, for one that never got ready, its open line first).
    fn log_close(&mut self, conn: &Conn, reason: CloseReason) {
        let id = conn.id();
        let never_ready = conn.is_handshaking();
        // A balancer's health check (`LOCAL` header, then gone) is not worth two log lines a
        // second per balancer: it is counted in the metrics only.
        let health_check = conn.peer().health_check
            && never_ready
            && matches!(reason, CloseReason::Eof | CloseReason::Reset);
        if health_check {
            return;
        }
        if never_ready {
            // Never got to `on_ready`: its open line is written now, so every connection has one.
            self.log.line(format_args!(
                "conn={id}{} peer={}{} event=open tls=-",
                worker_tag(&self.worker),
                conn.peer().addr,
                ProxyTag(conn.peer().proxy)
            ));
        }
        let requests = conn.session().requests;
        let error = match reason {
            CloseReason::TlsError | CloseReason::ProxyError => conn.error().map(|e| match e {
                ConnError::Tls(e) => crate::tls::describe_error(e),
                ConnError::NotTls(what) => what,
                ConnError::Proxy(why) => why.to_string(),
            }),
            _ => None,
        };
        match error {
            Some(error) => self.log.line(format_args!(
                "conn={id} event=close reason={} requests={requests} error={}",
                reason.as_str(),
                Value(error.as_bytes())
            )),
            None => self.log.line(format_args!(
                "conn={id} event=close reason={} requests={requests}",
                reason.as_str()
            )),
        }
    }

    /// Stops accepting and closes every connection in order; `run` exits when all are gone or
    /// the grace period ends.
    pub(super) fn begin_shutdown(&mut self) {
        if self.clock.shutdown_deadline.is_some() {
            return;
        }
        self.clock.shutdown_deadline = Some(self.clock.now + SHUTDOWN_GRACE);
        if self.worker.index == 0 {
            crate::systemd::notify("STOPPING=1");
        }
        self.log.line(format_args!(
            "event=shutdown connections={}",
            self.conns.live()
        ));
        self.listeners.close_all(self.poll.registry());
        for id in self.conns.ids() {
            if let Some(conn) = self.conns.get_mut(id) {
                // SPEC: every greeted client is told why, after the replies to what was read.
                if conn.was_greeted() && conn.phase() == Phase::Open {
                    conn.queue(SHUTDOWN_REPLY);
                }
            }
            self.close(id, CloseReason::Shutdown);
        }
        self.settle(None);
    }

    /// After the loop: whoever is still here did not finish closing in time; the Redis link
    /// says goodbye; the log is written out.
    pub(super) fn close_the_rest(&mut self) {
        for id in self.conns.ids() {
            self.finish(id, CloseReason::Shutdown);
        }
        self.room
            .farewell(self.poll.registry(), self.clock.now, &mut self.log);
        self.log.finish();
    }
}

/// A ready connection's open line: who, through which balancer, over what TLS, and (mutual
/// TLS) who the certificate says this is.
pub(super) fn log_open(log: &mut Log, worker: &Worker, conn: &Conn) {
    let id = conn.id();
    let (peer, tls) = (conn.peer().addr, conn.tls_description());
    let proxy = ProxyTag(conn.peer().proxy);
    match conn
        .client_certificate()
        .and_then(|c| crate::tls::subject(c))
    {
        Some(subject) => log.line(format_args!(
            "conn={id}{} peer={peer}{proxy} event=open tls={tls} client={}",
            worker_tag(worker),
            Value(subject.as_bytes())
        )),
        None => log.line(format_args!(
            "conn={id}{} peer={peer}{proxy} event=open tls={tls}",
            worker_tag(worker)
        )),
    }
}

/// ` proxy=ADDR` after `peer=` when a PROXY header named the client (the balancer's address).
struct ProxyTag(Option<SocketAddr>);

impl std::fmt::Display for ProxyTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(proxy) => write!(f, " proxy={proxy}"),
            None => Ok(()),
        }
    }
}

/// ` worker=N` on a connection's open line when there is more than one worker.
pub(super) fn worker_tag(worker: &Worker) -> impl std::fmt::Display {
    struct Tag(Option<usize>);
    impl std::fmt::Display for Tag {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self.0 {
                Some(n) => write!(f, " worker={n}"),
                None => Ok(()),
            }
        }
    }
    Tag((worker.shared.workers() > 1).then_some(worker.index))
}
