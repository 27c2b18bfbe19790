//! Reading and answering: a connection's readiness turns into reads (`driver::read`) whose bytes
//! go to `Conn::handle_bytes`, its plaintext into
//! request lines for the service, and the service's `Outbox` into queued replies. Backpressure is
//! checked after every line: a read holding many lines stops at the first one after which the
//! outbox is heavy, the client's own replies are far behind, or the room's receivers are.

use super::slots::Slots;
use super::{Reactor, driver};
use crate::conn::{CloseReason, Conn, Kind, Phase, ReadEvent};
use crate::line::{Flow, Frame};
use crate::log::{Log, Value};
use crate::outbox::{Action, ConnId, Outbox};
use crate::room::Room;
use crate::service::Service;
use crate::shared::Shared;

/// Plaintext read from one connection in one loop turn before the others get their turn. A
/// client that sends faster than we answer would otherwise keep the loop to itself (readiness is
/// edge-triggered, so "read until WouldBlock" has no end while it keeps sending).
const READ_BUDGET: usize = 256 * 1024;

/// The outbox is applied before it holds more than this (line bytes and target lists): lines
/// after the one that filled it wait, so one read cannot grow it without bound.
const OUTBOX_SOFT: usize = 64 * 1024;

impl Reactor {
    /// Reads until the socket has nothing more (or the connection is paused or closing): each
    /// read's bytes go to the connection core, and what it hands out is acted on.
    pub(super) fn read_from(&mut self, id: ConnId) {
        let mut budget = READ_BUDGET;
        loop {
            let Some((conn, socket)) = self.conns.get_with_socket(id) else {
                return;
            };
            if !conn.may_read() {
                return;
            }
            if conn.has_held() {
                // Lines already read (held by a pause) come before anything read later.
                let held = conn.take_held();
                let keep_reading = self.handle_plaintext(id, &held);
                if let Some(conn) = self.conns.get_mut(id) {
                    conn.give_back_held(held);
                }
                if !keep_reading {
                    return;
                }
                continue;
            }
            let n = match driver::read_unless_ended(conn.peer_closed(), socket, &mut self.scratch) {
                driver::Read::Data(n) => n,
                driver::Read::WouldBlock => {
                    // Handshake messages (or a TLS key update) may be waiting to go out.
                    if conn.wants_write() {
                        self.conns.mark_dirty(id);
                    }
                    return;
                }
                driver::Read::Eof => {
                    // What the connection still holds comes out before it says `Closed`.
                    conn.handle_eof();
                    0
                }
                driver::Read::Gone => {
                    self.close(id, CloseReason::Reset);
                    self.settle(None);
                    return;
                }
            };
            self.meter.traffic.received += n as u64;
            budget = budget.saturating_sub(n);
            // Lent out while the bytes are handled (an empty Box: no allocation).
            let scratch = std::mem::take(&mut self.scratch);
            let open = self.take_input(id, &scratch[..n]);
            self.scratch = scratch;
            // After the FIN (`n == 0`) nothing more can come.
            if !open || n == 0 {
                return;
            }
            if budget == 0 {
                self.conns.read_later(id);
                return;
            }
        }
    }

    /// Hands one read's bytes to the connection and acts on each thing it reports, until it has
    /// taken them all. Plaintext that comes while the connection may not be answered (a pause
    /// in the middle of the read, or lines held before) is held, in order, for later. False
    /// once the connection is closed.
    fn take_input(&mut self, id: ConnId, mut input: &[u8]) -> bool {
        loop {
            let Some(conn) = self.conns.get_mut(id) else {
                return false;
            };
            let mut plaintext = std::mem::take(&mut self.plaintext);
            let event = conn.handle_bytes(&mut input, &mut plaintext, self.clock.now);
            match event {
                ReadEvent::Data(_) if conn.phase() != Phase::Open => {} // after we closed: ignored
                ReadEvent::Data(n) if conn.has_held() || !conn.may_read() => {
                    conn.hold(&plaintext[..n]);
                }
                ReadEvent::Data(n) => {
                    self.handle_plaintext(id, &plaintext[..n]);
                }
                ReadEvent::ProxyDone => self.admit_proxied(id),
                ReadEvent::HandshakeDone => {
                    let took = self.clock.now - conn.opened_at();
                    self.meter.counters.handshake_done(took);
                    self.on_ready(id);
                }
                ReadEvent::NeedBytes => {
                    self.plaintext = plaintext;
                    return true;
                }
                ReadEvent::Closed(reason) => {
                    self.plaintext = plaintext;
                    if conn.is_finished() {
                        self.finish(id, reason);
                    } else {
                        if reason == CloseReason::Eof
                            && !conn.peer_closed()
                            && let Some((conn, socket)) = self.conns.get_with_socket(id)
                            && driver::fin_is_here(socket)
                        {
                            // A close_notify, and the FIN behind it: no `shutdown` needed.
                            conn.handle_eof();
                        }
                        self.close(id, reason);
                    }
                    self.settle(None);
                    return false;
                }
            }
            self.plaintext = plaintext;
        }
    }

    /// Lines of plaintext to the connection's service, and what follows: replies queued, and
    /// whether the connection may be read on (not when a chat receiver is behind, when its own
    /// replies pile up, or when `--rate-limit` held the rest of its lines).
    fn handle_plaintext(&mut self, id: ConnId, data: &[u8]) -> bool {
        let Some(conn) = self.conns.get_mut(id) else {
            return false;
        };
        let scrape = conn.kind() == Kind::Scrape;
        let service = match (self.meter.scrape.as_mut(), scrape) {
            (Some(scrape), true) => scrape.as_mut(),
            _ => self.service.as_mut(),
        };
        let requests_before = conn.session().requests;
        let log = if scrape { None } else { Some(&mut self.log) };
        dispatch_lines(
            conn,
            data,
            service,
            &mut self.outbox,
            log,
            self.settings.max_line,
            self.clock.now,
        );
        let (requests, rate_paused) = (
            conn.session().requests - requests_before,
            conn.pauses().contains(crate::conn::Pauses::RATE),
        );
        if !scrape {
            self.meter.counters.requests += requests;
        }
        // A line just begun (`--line-timeout`) may be the nearest deadline.
        if let Some((at, _)) = conn.poll_timeout(&self.settings.timeouts) {
            self.clock.note_deadline(at);
        }
        self.settle(Some(id));
        let Some(conn) = self.conns.get_mut(id) else {
            return false;
        };
        if self.room.holds_back() {
            self.room.pause(conn);
            self.clock
                .note_deadline(self.clock.now + crate::room::STALLED_AFTER);
        }
        if conn.review_output_backlog() {
            self.conns.mark_dirty(id);
        }
        if rate_paused {
            self.resume_when_token(id);
        }
        let conn = self.conns.get(id);
        conn.is_some_and(|c| c.may_read())
    }

    /// The connection is ready for requests (TLS handshake done, or plain accept): greet it,
    /// or tell it why it is refused.
    pub(super) fn on_ready(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let kind = conn.kind();
        if self.log.enabled() && kind != Kind::Scrape {
            super::closing::log_open(&mut self.log, &self.worker, conn);
        }
        let out_of_time = match kind {
            Kind::Client => resumed_certificate_out_of_time(conn),
            _ => None,
        };
        match kind {
            Kind::Refused(refusal) => {
                conn.queue(refusal.reply());
                self.close(id, refusal.reason());
            }
            Kind::Client if out_of_time.is_some() => {
                // A resumed session's certificate ran out since it was verified: no greeting.
                if let Some(e) = out_of_time {
                    conn.refuse_certificate(e);
                }
                self.close(id, CloseReason::TlsError);
            }
            Kind::Client => {
                // Mutual TLS: the name the client's certificate gives it, for the service.
                // Its CN, else its first DNS or e-mail name; "" when it gives none.
                let identity = conn
                    .client_certificate()
                    .map(|cert| crate::tls::certificate_name(cert).unwrap_or_default());
                self.worker.shared.greeted();
                self.service
                    .greeting(id, identity.as_deref(), &mut self.outbox);
            }
            // A scrape is no client: it is neither greeted nor counted as one.
            Kind::Scrape => {}
        }
        if kind != Kind::Scrape
            && let Some(timeout) = self.settings.timeouts.idle
        {
            self.clock.note_deadline(self.clock.now + timeout);
        }
        self.conns.mark_dirty(id);
        self.settle(None);
    }

    // ---- carrying out what services asked ----

    /// Applies the outbox and closes whoever must be closed, until nothing is left to do
    /// (closing a chat member makes the service announce it to the others, and so on).
    /// `sender` is the connection whose request is being answered (its own replies congest
    /// nobody), `None` for lines from elsewhere.
    pub(super) fn settle(&mut self, sender: Option<ConnId>) {
        loop {
            self.apply_outbox(sender);
            let Some((id, reason)) = self.conns.next_to_close() else {
                break;
            };
            self.close(id, reason);
        }
    }

    fn apply_outbox(&mut self, sender: Option<ConnId>) {
        if self.outbox.is_empty() {
            return;
        }
        let mut shutdown = false;
        for (id, fields) in self.outbox.logs() {
            let name = self.conns.get(id).and_then(|c| c.session().name.as_deref());
            write_service_log(&mut self.log, id, name, fields);
        }
        let now = self.clock.now;
        let Reactor {
            outbox,
            conns,
            room,
            worker,
            ..
        } = self;
        let shared = &*worker.shared;
        let deliver = |conns: &mut Slots, room: &mut Room, to: ConnId, bytes: &[u8]| {
            if conns.is_shed(to) {
                return;
            }
            keep_output_budget(conns, shared, bytes.len());
            if conns.is_shed(to) {
                return; // it was the furthest behind itself
            }
            let Some(conn) = conns.get_mut(to) else {
                return;
            };
            if !conn.queue(bytes) {
                conns.shed(to, shared);
                return;
            }
            room.note_receiver(conn, sender, now);
            conns.recount(to, shared, now);
            conns.mark_dirty(to);
        };
        for action in outbox.actions() {
            match action {
                Action::Send { to, bytes } => deliver(conns, room, *to, outbox.bytes(bytes)),
                Action::SendMany { to, bytes } => {
                    let line = outbox.bytes(bytes);
                    for &target in outbox.targets(to) {
                        deliver(conns, room, target, line);
                    }
                }
                Action::SetName { id, name } => {
                    if let Some(conn) = conns.get_mut(*id) {
                        conn.set_name(outbox.bytes(name));
                    }
                }
                Action::Publish { bytes } => room.publish(outbox.bytes(bytes)),
                Action::Close(id) => conns.close_later(*id, CloseReason::Quit),
                Action::Shutdown => shutdown = true,
            }
        }
        outbox.clear();
        if shutdown {
            self.worker.shared.shutdown_all();
            self.begin_shutdown();
        }
    }
}

/// SPEC "Memory under pressure": before `incoming` more bytes are queued, while they would take
/// the memory of the whole process's output buffers past `--max-output-memory`, the connection
/// furthest behind is cut (`reason=slow-reader`): the bound holds before the allocation (within
/// one buffer's growth). A worker
/// cuts only its own connections, and only while it holds more than its share of the bound
/// (the bound over the workers): one that holds little does not cut its clients for another's
/// backlog, and the one that holds more than its share cuts when its own output next grows.
fn keep_output_budget(conns: &mut Slots, shared: &Shared, incoming: usize) {
    let budget = shared.output_budget();
    let share = budget / shared.workers();
    while shared.output_memory() + incoming > budget && conns.queued_here() + incoming > share {
        let Some(victim) = conns.furthest_behind() else {
            return;
        };
        conns.shed(victim, shared);
    }
}

/// Frames one read's plaintext into lines and hands each to the service, logging request and
/// reply. Stops at a line that closes the connection (`q`): what follows it is not answered;
/// holds the rest once the outbox is heavy (it is applied, then reading goes on).
fn dispatch_lines(
    conn: &mut Conn,
    data: &[u8],
    service: &mut dyn Service,
    out: &mut Outbox,
    mut log: Option<&mut Log>,
    max_line: usize,
    now: std::time::Instant,
) {
    let id = conn.id();
    conn.on_plaintext(data, now, |session, frame| {
        let mark = out.mark();
        match crate::line::classify(frame, max_line) {
            Ok(text) => service.on_line(id, text, out),
            Err(bad) => service.on_bad_line(id, bad, out),
        }
        let request: &[u8] = match frame {
            Frame::Line(bytes) => bytes,
            Frame::TooLong => b"(too long)",
        };
        let quiet = out.take_quiet();
        if let Some(new_name) = out.name_since(mark, id) {
            // Now, for this line's log line; `apply_outbox` finds it already set.
            session.set_name(new_name);
        }
        if let Some(log) = log.as_deref_mut() {
            if !quiet && log.enabled() {
                log.line(format_args!(
                    "conn={id} name={} req={} reply={}",
                    Value(session.name.as_deref().unwrap_or("-").as_bytes()),
                    Value(request),
                    Value(out.reply_since(mark, id).unwrap_or(b"-"))
                ));
            }
            // What the service logged about this line comes right after it (a chat message's
            // `event=msg` before the next request's line), not at the end of the read.
            for (about, fields) in out.logs() {
                write_service_log(log, about, session.name.as_deref(), fields);
            }
        }
        out.clear_logs();
        if out.closes_since(mark, id) {
            Flow::Stop
        } else if out.weight() > OUTBOX_SOFT {
            Flow::Hold
        } else {
            Flow::Continue
        }
    });
}

/// One log line a service asked for: `conn=ID name=NAME` and its fields.
fn write_service_log(log: &mut Log, id: ConnId, name: Option<&str>, fields: &[u8]) {
    log.line(format_args!(
        "conn={id} name={} {}",
        Value(name.unwrap_or("-").as_bytes()),
        String::from_utf8_lossy(fields)
    ));
}

/// Mutual TLS and a resumed session: rustls verified the client's chain when the session began,
/// not now. A certificate of that chain that has expired since (or is not valid yet by the
/// clock now) is refused as a full handshake would refuse it, so a ticket renewed on every
/// resumption never outlives the certificate it was issued for (the class of CVE-2025-68121).
fn resumed_certificate_out_of_time(conn: &crate::conn::Conn) -> Option<rustls::Error> {
    use rustls::CertificateError;
    use rustls::pki_types::UnixTime;
    let chain = conn.resumed_client_chain()?;
    let now = UnixTime::now();
    let at =
        |secs: i64| UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs.max(0) as u64));
    for cert in chain {
        let Some(validity) = crate::tls::validity(cert) else {
            continue;
        };
        let now_secs = now.as_secs() as i64;
        if now_secs > validity.not_after {
            return Some(rustls::Error::InvalidCertificate(
                CertificateError::ExpiredContext {
                    time: now,
                    not_after: at(validity.not_after),
                },
            ));
        }
        if now_secs < validity.not_before {
            return Some(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYetContext {
                    time: now,
                    not_before: at(validity.not_before),
                },
            ));
        }
    }
    None
}
