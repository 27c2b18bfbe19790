//! The reactor: one thread, one `mio::Poll`, its connections. `--workers N` runs N of them
//! (`workers.rs`), each with its own listening sockets; this file is one of them.
//!
//! Read this file top to bottom to follow the data:
//!
//! ```text
//! poll -> other workers' room lines -> on_messages -> Service::on_room_line  (chat across workers)
//!      -> listener readable -> accept_all -> admit            (accept.rs: a Conn per socket, a slot per Conn)
//!      -> conn readable     -> read_from -> Conn::read         (rustls decrypts; handshake done -> greet)
//!                                        -> dispatch_lines     (LineBuffer frames, Service answers into Outbox)
//!                                        -> apply_outbox       (replies queued on their connections)
//!      -> timers            -> run_timers                      (timers.rs: handshake, idle and closing deadlines)
//!      -> end of the turn   -> send_room_lines                 (this turn's room lines to the other workers)
//!                           -> flush_dirty -> Conn::flush      (one batched TLS write per connection)
//!                           -> review_fanout                   (flow.rs: paused chat senders go on once receivers caught up)
//! ```
//!
//! Fairness and memory: a connection is read at most READ_BUDGET per turn (the rest next turn, via
//! `read_later`); one with 64 KiB of unsent replies is not read until they drain; a chat sender is
//! not read while a receiver that still reads is FANOUT_SOFT behind, on this worker or another;
//! 1 MiB queued cuts a client off.
//!
//! It owns its listeners, its connection table, its timers and its shutdown (and, on worker 0,
//! the signals). It knows no service's protocol: services speak only through the `Service` trait
//! and the `Outbox`.

mod accept;
mod flow;
mod redis;
mod timers;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant, SystemTime};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use rustls::ServerConfig;
use signal_hook_mio::v1_0::Signals;

use crate::bus::RoomLine;
use crate::config::Config;
use crate::conn::{CloseReason, Conn, Phase, READ_PAUSE_OUTPUT, ReadEvent, Traffic};
use crate::line::{Flow, Frame};
use crate::log::{Log, Value};
use crate::metrics::Counters;
use crate::outbox::{Action, ConnId, Outbox};
use crate::service::Service;
use crate::tls::TlsFiles;
use crate::workers::{Shared, WAKER_TOKEN, WorkerMsg, WorkerParts};

/// The signal pipe's token. Listeners use tokens 0..n; connection tokens are their `ConnId`,
/// whose serial part starts at 1, so they are never below 2^24.
const SIGNAL_TOKEN: Token = Token(ConnId::MAX_SLOTS - 1);

/// Connections beyond `--max-clients` that are still accepted, handshaken and told
/// `ERR server busy`. Past this many at once, new ones are closed right after `accept`.
const MAX_BUSY_REPLIES: usize = 64;

/// How long an orderly close may take (flush, close_notify, the peer's FIN).
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// SPEC: exit within 2 s of SIGTERM even if some client does not read.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);

/// After EMFILE/ENFILE, accepting pauses this long instead of spinning on the error.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Plaintext read buffer, shared by every connection (rustls records are at most 16 KiB).
const READ_BUFFER: usize = 64 * 1024;

/// Plaintext read from one connection in one loop turn before the others get their turn. A
/// client that sends faster than we answer would otherwise keep the loop to itself (readiness is
/// edge-triggered, so "read until WouldBlock" has no end while it keeps sending).
const READ_BUDGET: usize = 256 * 1024;

/// Fan-out flow control (chat): while a member that receives a sender's messages has more than
/// this queued, the sender is not read, so a fast sender cannot outrun members that read...
const FANOUT_SOFT: usize = 256 * 1024;

/// ...as long as they do read: a member whose socket took nothing for this long holds nobody
/// back any more. It then runs into MAX_PENDING_OUTPUT and is cut off as a slow reader.
const STALLED_AFTER: Duration = Duration::from_millis(250);

/// The last line every greeted client gets when the server stops (SIGINT/SIGTERM).
pub const SHUTDOWN_REPLY: &[u8] = b"BYE server shutting down\n";

pub struct Reactor {
    poll: Poll,
    listeners: Vec<TcpListener>,
    /// SIGINT/SIGTERM/SIGHUP: worker 0 only (see `workers`).
    signals: Option<Signals>,
    /// Where the TLS set-up is loaded from again on SIGHUP (worker 0, with TLS).
    tls_files: Option<TlsFiles>,
    /// Which worker this is, what the workers share, and the messages the others send it.
    worker: usize,
    shared: Arc<Shared>,
    inbox: Receiver<WorkerMsg>,
    /// Room lines published this turn, handed to the other workers at its end.
    room_out: Vec<RoomLine>,
    /// `--chat-redis` (worker 0): the link to the other instances, and this instance's room
    /// lines of this turn for them.
    redis: Option<redis::RedisBus>,
    redis_out: Vec<RoomLine>,
    /// This worker's congested flag as last published in `shared`.
    flagged_congested: bool,
    /// The `--metrics` endpoint's service and listener (worker 0, with the option).
    scrape: Option<Box<dyn Service>>,
    scrape_listener: Option<usize>,
    /// What this worker counted, published for `--metrics` once per loop turn.
    counters: Counters,
    traffic: Traffic,
    read_paused_now: u64,
    /// Connections with lines held by `--rate-limit`, waiting for a token.
    rate_waiting: Vec<ConnId>,
    /// Open connections to the metrics endpoint (not counted as clients).
    scrapes_now: usize,
    tls: Option<Arc<ServerConfig>>,
    service: Box<dyn Service>,
    outbox: Outbox,
    log: Log,
    settings: Settings,
    /// The connection table: a slot per connection, reused through `free_slots`.
    conns: Vec<Option<Conn>>,
    free_slots: Vec<usize>,
    live: usize,
    /// Connections over `--max-clients`, being told `ERR server busy`: they are in `live` but do
    /// not count against the limit, so the next client after a real one leaves gets in at once.
    busy_now: usize,
    scratch: Box<[u8]>,
    /// Connections with output to write at the end of this loop turn.
    dirty: Vec<ConnId>,
    /// Connections that used up their READ_BUDGET and still have bytes waiting: read next turn.
    read_later: Vec<ConnId>,
    /// The connection whose request is being handled (its own replies do not congest anyone).
    source: Option<ConnId>,
    /// Receivers of fan-out that are over FANOUT_SOFT and still draining.
    congested: Vec<ConnId>,
    /// Senders not read until `congested` clears.
    fanout_paused: Vec<ConnId>,
    /// Connections to close once the current step is done (never closed mid-iteration).
    to_close: Vec<(ConnId, CloseReason)>,
    /// The earliest deadline of any connection, or later (never earlier): when to scan.
    next_wake: Option<Instant>,
    accept_paused_until: Option<Instant>,
    shutdown_deadline: Option<Instant>,
    now: Instant,
}

#[derive(Debug, Clone)]
struct Settings {
    max_line: usize,
    /// `--proxy-protocol`: who may send the header; `None` when no header is expected.
    proxy_from: Option<crate::proxy::ProxyFrom>,
    rate_limit: Option<u32>,
    handshake_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    exit_when_empty: bool,
}

impl Reactor {
    /// A reactor over `parts` (its poll, listeners and inbox, built by `workers::serve`);
    /// worker 0 also takes the signals.
    pub fn new(
        config: &Config,
        parts: WorkerParts,
        (tls, tls_files): (Option<Arc<ServerConfig>>, Option<TlsFiles>),
        service: Box<dyn Service>,
        log: Log,
    ) -> Result<Reactor, String> {
        let WorkerParts {
            index,
            poll,
            mut listeners,
            inbox,
            shared,
            metrics,
            room,
        } = parts;
        let redis = match (&config.chat_redis, index) {
            (Some(url), 0) if config.service == "chat" => {
                Some(redis::RedisBus::new(url.clone(), room, Instant::now())?)
            }
            _ => None,
        };
        // The metrics endpoint is one more listener, the last; its connections get `scrape`.
        let (scrape_listener, scrape) = match metrics {
            Some((listener, service)) => {
                listeners.push(listener);
                (Some(listeners.len() - 1), Some(service))
            }
            None => (None, None),
        };
        for (i, listener) in listeners.iter_mut().enumerate() {
            poll.registry()
                .register(listener, Token(i), Interest::READABLE)
                .map_err(|e| format!("cannot register a listener: {e}"))?;
        }
        let signals = match index {
            0 => {
                let mut signals = Signals::new(crate::signals::HANDLED)
                    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
                poll.registry()
                    .register(&mut signals, SIGNAL_TOKEN, Interest::READABLE)
                    .map_err(|e| format!("cannot register signals: {e}"))?;
                Some(signals)
            }
            _ => None,
        };
        Ok(Reactor {
            poll,
            listeners,
            signals,
            tls_files,
            worker: index,
            shared,
            inbox,
            room_out: Vec::new(),
            redis,
            redis_out: Vec::new(),
            flagged_congested: false,
            scrape,
            scrape_listener,
            counters: Counters::default(),
            traffic: Traffic::default(),
            read_paused_now: 0,
            rate_waiting: Vec::new(),
            scrapes_now: 0,
            tls,
            service,
            outbox: Outbox::new(),
            log,
            settings: Settings {
                max_line: config.max_line,
                proxy_from: config.proxy_from.clone(),
                rate_limit: config.rate_limit,
                handshake_timeout: config.handshake_timeout,
                idle_timeout: config.idle_timeout,
                exit_when_empty: config.exit_when_empty,
            },
            conns: Vec::new(),
            free_slots: Vec::new(),
            live: 0,
            busy_now: 0,
            scratch: vec![0; READ_BUFFER].into_boxed_slice(),
            dirty: Vec::new(),
            read_later: Vec::new(),
            source: None,
            congested: Vec::new(),
            fanout_paused: Vec::new(),
            to_close: Vec::new(),
            next_wake: None,
            accept_paused_until: None,
            shutdown_deadline: None,
            now: Instant::now(),
        })
    }

    /// Runs until SIGINT/SIGTERM (or `--exit-when-empty`), then closes every connection cleanly.
    pub fn run(mut self) -> Result<(), String> {
        let mut events = Events::with_capacity(1024);
        if self.redis.is_some() {
            self.note_deadline(self.now); // connect to Redis on the first turn
        }
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue; // a signal arrived; its event comes through the signal pipe
                }
                return Err(format!("poll failed: {e}"));
            }
            self.now = Instant::now();
            self.log.set_time(SystemTime::now());
            if self.shared.workers() > 1 {
                // Other workers' room lines first, whatever the order of this poll's events: a
                // line they sent before a client of theirs could answer it is older than
                // anything that client makes others send here.
                self.on_messages();
            }
            for id in std::mem::take(&mut self.read_later) {
                self.read_from(id);
            }
            for event in events.iter() {
                match event.token() {
                    SIGNAL_TOKEN => self.on_signal(),
                    // With other workers their messages were read above; one worker is woken
                    // only by a reload.
                    WAKER_TOKEN => self.on_messages(),
                    redis::SUBSCRIBER_TOKEN | redis::PUBLISHER_TOKEN => {
                        self.on_redis(event.token())
                    }
                    Token(i) if i < self.listeners.len() => self.accept_all(i),
                    Token(t) => {
                        let id = ConnId::from_usize(t);
                        if event.is_writable() {
                            self.mark_dirty(id);
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.read_from(id);
                        }
                    }
                }
            }
            self.run_timers();
            self.resume_rate_limited();
            self.redis_turn();
            // Room lines leave before this turn's replies, so no client hears a reply before
            // the other workers have what caused it.
            self.send_room_lines();
            self.flush_dirty();
            if self.shared.metrics_on() {
                self.publish_counters();
            }
            if self.settings.exit_when_empty && self.shared.everyone_left() {
                self.shared.shutdown_all();
                self.begin_shutdown();
                self.flush_dirty();
            }
            self.log.flush();
            if let Some(deadline) = self.shutdown_deadline {
                if self.live == 0 || self.now >= deadline {
                    break;
                }
            }
        }
        // Whoever is still here did not finish closing in time.
        for slot in 0..self.conns.len() {
            if let Some(id) = self.conns[slot].as_ref().map(|c| c.id) {
                self.finish(id, CloseReason::Shutdown);
            }
        }
        if let Some(bus) = self.redis.as_mut() {
            let registry = self.poll.registry();
            for line in self.redis_out.drain(..) {
                bus.publish(&line, registry, self.now, &mut self.log);
            }
            bus.farewell(registry, self.now, &mut self.log);
        }
        self.log.finish();
        Ok(())
    }

    /// What the other workers sent: room lines for our members, a calm room, or shutdown.
    fn on_messages(&mut self) {
        while let Ok(message) = self.inbox.try_recv() {
            match message {
                WorkerMsg::Room(lines) => {
                    let mut bytes = 0;
                    for line in &lines {
                        self.service.on_room_line(line, &mut self.outbox);
                        bytes += line.len();
                    }
                    if self.redis.is_some() {
                        // This instance's lines, from another worker: for the other instances too.
                        self.redis_out.extend(lines.iter().cloned());
                    }
                    self.settle();
                    self.shared.room_delivered(self.worker, bytes);
                    // Members now far behind hold the senders elsewhere back at once, not at
                    // the end of this turn.
                    if !self.congested.is_empty() && !self.flagged_congested {
                        self.flagged_congested = true;
                        self.shared.set_congested(self.worker, true);
                    }
                }
                WorkerMsg::RoomCalm => self.review_fanout(),
                WorkerMsg::Shutdown => self.begin_shutdown(),
                // Only new connections get it; open ones keep the set-up they began with.
                WorkerMsg::Tls(config) => self.tls = Some(config),
                WorkerMsg::Reloaded(Ok(())) => self.log.line(format_args!("event=reload ok=1")),
                WorkerMsg::Reloaded(Err(why)) => self.log.line(format_args!(
                    "event=reload ok=0 error={}",
                    Value(why.as_bytes())
                )),
            }
        }
    }

    /// What a scrape reads: this worker's counters, as of the end of this turn.
    fn publish_counters(&mut self) {
        let c = &mut self.counters;
        c.connections = (self.live - self.scrapes_now) as u64;
        c.bytes_received = self.traffic.received;
        c.bytes_sent = self.traffic.sent;
        c.log_dropped = self.log.dropped_total();
        c.paused_readers =
            self.read_paused_now + (self.fanout_paused.len() + self.rate_waiting.len()) as u64;
        self.shared.publish(self.worker, c);
    }

    /// `--chat-redis`: the bus's timers, this turn's lines out to the other instances, and theirs
    /// in to our members (here and, through `room_out`, on the other workers).
    fn redis_turn(&mut self) {
        let Some(bus) = self.redis.as_mut() else {
            return;
        };
        let registry = self.poll.registry();
        let mut arrived = Vec::new();
        let next = bus.tick(registry, self.now, &mut self.log, &mut arrived);
        for line in self.redis_out.drain(..) {
            bus.publish(&line, registry, self.now, &mut self.log);
        }
        bus.flush(registry, self.now, &mut self.log);
        self.note_deadline(next);
        self.deliver_from_other_instances(arrived);
    }

    fn on_redis(&mut self, token: Token) {
        let Some(bus) = self.redis.as_mut() else {
            return;
        };
        let mut arrived = Vec::new();
        bus.on_event(
            token,
            self.poll.registry(),
            self.now,
            &mut self.log,
            &mut arrived,
        );
        self.deliver_from_other_instances(arrived);
    }

    /// Room lines from the other instances: to our members, and to the other workers' members.
    fn deliver_from_other_instances(&mut self, lines: Vec<RoomLine>) {
        if lines.is_empty() {
            return;
        }
        for line in &lines {
            self.service.on_room_line(line, &mut self.outbox);
        }
        self.settle();
        if self.shared.workers() > 1 {
            for line in &lines {
                self.shared.room_published(self.worker, line.len());
            }
            self.room_out.extend(lines);
        }
    }

    /// The end of the turn: the room lines published during it go to the other workers, in one
    /// message each.
    fn send_room_lines(&mut self) {
        if !self.room_out.is_empty() {
            self.shared.send_room(self.worker, &self.room_out);
            self.room_out.clear();
        }
    }

    fn mark_dirty(&mut self, id: ConnId) {
        if let Some(conn) = slot_mut(&mut self.conns, id) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(id);
            }
        }
    }

    // ---- reading ----

    /// Reads until the socket has nothing more (or the connection is throttled or closing).
    fn read_from(&mut self, id: ConnId) {
        let mut budget = READ_BUDGET;
        loop {
            let Some(conn) = slot_mut(&mut self.conns, id) else {
                return;
            };
            let throttled = conn.read_paused || conn.fanout_paused;
            if conn.phase() == Phase::Closing || (conn.phase() == Phase::Open && throttled) {
                return;
            }
            if conn.phase() == Phase::Open && conn.lines.has_held() {
                // --rate-limit: lines already read come first, once there is a token for them.
                if !conn.bucket.as_mut().is_some_and(|b| b.has_token(self.now)) {
                    self.wait_for_token(id);
                    return;
                }
                let held = conn.lines.take_held();
                if !self.handle_plaintext(id, &held) {
                    return;
                }
                continue;
            }
            match conn.read(&mut self.scratch, &mut self.traffic) {
                ReadEvent::Data(n) => {
                    conn.last_activity = self.now;
                    budget = budget.saturating_sub(n);
                    if conn.phase() != Phase::Open {
                        continue; // bytes after we closed: ignored
                    }
                    // Lent out while the lines are handled (an empty Box: no allocation).
                    let scratch = std::mem::take(&mut self.scratch);
                    let keep_reading = self.handle_plaintext(id, &scratch[..n]);
                    self.scratch = scratch;
                    if !keep_reading {
                        return;
                    }
                    if budget == 0 {
                        self.read_later.push(id);
                        return;
                    }
                }
                ReadEvent::ProxyDone => {
                    self.admit_proxied(id);
                }
                ReadEvent::HandshakeDone => {
                    self.counters.handshake_done(self.now - conn.opened_at);
                    self.on_ready(id);
                }
                ReadEvent::WouldBlock => {
                    // Handshake messages (or a TLS key update) may be waiting to go out.
                    if conn.interest().is_writable() {
                        self.mark_dirty(id);
                    }
                    return;
                }
                ReadEvent::Closed(reason) => {
                    if let Some(conn) = slot_mut(&mut self.conns, id) {
                        conn.note_peer_closed();
                        if conn.phase() == Phase::Lingering {
                            let reason = conn.close_reason.unwrap_or(reason);
                            self.finish(id, reason);
                            self.settle();
                            return;
                        }
                    }
                    self.close(id, reason);
                    self.settle();
                    return;
                }
            }
        }
    }

    /// Lines of plaintext to the connection's service, and what follows: replies queued, and
    /// whether the connection may be read on (not when a chat receiver is behind, when its own
    /// replies pile up, or when `--rate-limit` held the rest of its lines).
    fn handle_plaintext(&mut self, id: ConnId, data: &[u8]) -> bool {
        let Some(conn) = slot_mut(&mut self.conns, id) else {
            return false;
        };
        let service = match (&mut self.scrape, conn.scrape) {
            (Some(scrape), true) => scrape.as_mut(),
            _ => self.service.as_mut(),
        };
        let requests_before = conn.requests;
        dispatch_lines(
            conn,
            data,
            service,
            &mut self.outbox,
            &mut self.log,
            self.settings.max_line,
            self.now,
        );
        if !conn.scrape {
            self.counters.requests += conn.requests - requests_before;
        }
        let held = conn.lines.has_held();
        self.source = Some(id);
        self.settle();
        self.source = None;
        if !self.congested.is_empty() || self.shared.others_congested(self.worker) {
            self.pause_sender(id);
            return false;
        }
        self.throttle_if_behind(id);
        if held {
            self.wait_for_token(id);
            return false;
        }
        true
    }

    /// The connection is ready for requests (TLS handshake done, or plain accept): greet it,
    /// or tell it the server is busy.
    fn on_ready(&mut self, id: ConnId) {
        let now = self.now;
        let Some(conn) = slot_mut(&mut self.conns, id) else {
            return;
        };
        conn.last_activity = now;
        if self.log.enabled() {
            let (peer, tls) = (conn.peer, conn.tls_description());
            let proxy = ProxyTag(conn.proxy);
            match conn.client_subject() {
                // Mutual TLS: the log names who the certificate says this is.
                Some(subject) => self.log.line(format_args!(
                    "conn={id}{} peer={peer}{proxy} event=open tls={tls} client={}",
                    worker_tag(&self.shared, self.worker),
                    Value(subject.as_bytes())
                )),
                None => self.log.line(format_args!(
                    "conn={id}{} peer={peer}{proxy} event=open tls={tls}",
                    worker_tag(&self.shared, self.worker)
                )),
            }
        }
        // Mutual TLS: the name the client's certificate gives it, for the service.
        let identity = conn.client_identity();
        if let Some(refusal) = conn.refusal {
            conn.queue(refusal.reply());
            self.close(id, refusal.reason());
        } else {
            if !conn.scrape {
                // A scrape is no client: it is neither greeted nor counted as one.
                conn.greeted = true;
                self.shared.greeted();
                self.service
                    .greeting(id, identity.as_deref(), &mut self.outbox);
            }
            if let Some(timeout) = self.settings.idle_timeout {
                self.note_deadline(now + timeout);
            }
        }
        self.mark_dirty(id);
        self.settle();
    }

    // ---- carrying out what services asked ----

    /// Applies the outbox and closes whoever must be closed, until nothing is left to do
    /// (closing a chat member makes the service announce it to the others, and so on).
    fn settle(&mut self) {
        loop {
            self.apply_outbox();
            let Some((id, reason)) = self.to_close.pop() else {
                break;
            };
            self.close(id, reason);
        }
    }

    fn apply_outbox(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        let mut shutdown = false;
        for (id, fields) in self.outbox.logs() {
            let name = slot_mut(&mut self.conns, id).and_then(|c| c.name.as_deref());
            write_service_log(&mut self.log, id, name, fields);
        }
        let Reactor {
            outbox,
            conns,
            dirty,
            to_close,
            congested,
            source,
            now,
            ..
        } = self;
        let mut queue = flow::Queue {
            conns,
            dirty,
            to_close,
            congested,
            source: *source,
            now: *now,
        };
        for action in outbox.actions() {
            match action {
                Action::Send { to, bytes } => queue.push(*to, outbox.bytes(bytes)),
                Action::SendMany { to, bytes } => {
                    let line = outbox.bytes(bytes);
                    for &target in outbox.targets(to) {
                        queue.push(target, line);
                    }
                }
                Action::SetName { id, name } => {
                    if let Some(conn) = slot_mut(queue.conns, *id) {
                        set_name(&mut conn.name, outbox.bytes(name));
                    }
                }
                Action::Publish { bytes } => {
                    // Only when other workers or instances exist: one reactor alone keeps its
                    // room to itself.
                    let (workers, redis) = (self.shared.workers() > 1, self.redis.is_some());
                    if workers || redis {
                        let line = RoomLine::from(outbox.bytes(bytes));
                        if redis {
                            self.redis_out.push(RoomLine::clone(&line));
                        }
                        if workers {
                            self.shared.room_published(self.worker, line.len());
                            self.room_out.push(line);
                        }
                    }
                }
                Action::Close(id) => queue.to_close.push((*id, CloseReason::Quit)),
                Action::Shutdown => shutdown = true,
            }
        }
        outbox.clear();
        if shutdown {
            self.shared.shutdown_all();
            self.begin_shutdown();
        }
    }

    // ---- closing ----

    /// Starts closing a connection: orderly (flush, close_notify, FIN) when the peer can still
    /// listen, at once otherwise.
    fn close(&mut self, id: ConnId, reason: CloseReason) {
        let deadline = match self.shutdown_deadline {
            Some(shutdown) => shutdown.min(self.now + CLOSE_GRACE),
            None => self.now + CLOSE_GRACE,
        };
        let Some(conn) = slot_mut(&mut self.conns, id) else {
            return;
        };
        if conn.begin_close(reason, deadline) {
            self.note_deadline(deadline);
            self.mark_dirty(id);
        } else {
            self.finish(id, reason);
        }
    }

    /// Drops a connection: deregisters it, logs its close, tells the service, frees its slot.
    fn finish(&mut self, id: ConnId, reason: CloseReason) {
        let Some(mut conn) = self.conns.get_mut(id.slot()).and_then(|slot| {
            if slot.as_ref().is_some_and(|c| c.id == id) {
                slot.take()
            } else {
                None
            }
        }) else {
            return;
        };
        let reason = conn.close_reason.unwrap_or(reason);
        if reason == CloseReason::TlsError {
            conn.send_last_words();
        }
        let _ = self.poll.registry().deregister(conn.socket_mut());
        let never_ready = matches!(conn.phase(), Phase::Handshaking | Phase::AwaitingProxy);
        // A balancer's health check (`LOCAL` header, then gone) is not worth two log lines a
        // second per balancer: it is counted in the metrics only.
        let health_check = conn.health_check
            && never_ready
            && matches!(reason, CloseReason::Eof | CloseReason::Reset);
        if never_ready && !health_check {
            // Never got to `on_ready`: its open line is written now, so every connection has one.
            self.log.line(format_args!(
                "conn={id}{} peer={}{} event=open tls=-",
                worker_tag(&self.shared, self.worker),
                conn.peer,
                ProxyTag(conn.proxy)
            ));
        }
        let error = match (reason, conn.tls_error.as_deref(), conn.proxy_error) {
            (CloseReason::TlsError, Some(error), _) => Some(crate::tls::describe_error(error)),
            (CloseReason::ProxyError, _, Some(why)) => Some(why.to_string()),
            _ => None,
        };
        match error {
            _ if health_check => {}
            Some(error) => self.log.line(format_args!(
                "conn={id} event=close reason={} requests={} error={}",
                reason.as_str(),
                conn.requests,
                Value(error.as_bytes())
            )),
            None => self.log.line(format_args!(
                "conn={id} event=close reason={} requests={}",
                reason.as_str(),
                conn.requests
            )),
        }
        if conn.refusal.is_some() {
            self.busy_now -= 1;
        } else {
            self.shared.depart();
        }
        if conn.ip_counted {
            self.shared.depart_ip(conn.peer.ip());
        }
        if conn.read_paused {
            self.read_paused_now -= 1;
        }
        if conn.greeted {
            self.shared.ungreeted();
            self.service.on_close(id, &mut self.outbox);
        }
        if conn.scrape {
            self.scrapes_now -= 1;
            if let Some(scrape) = &mut self.scrape {
                scrape.on_close(id, &mut self.outbox);
            }
        } else {
            self.counters.closed(reason);
            if conn.phase() == Phase::Handshaking && !health_check && self.tls.is_some() {
                self.counters.handshakes_failed += 1;
            }
        }
        drop(conn);
        self.free_slots.push(id.slot());
        self.live -= 1;
        if self.accept_paused_until.is_some() {
            // A descriptor was just freed: accept again now rather than at the pause's end.
            self.accept_paused_until = Some(self.now);
        }
    }

    /// Worker 0's signals (`signals`): SIGINT/SIGTERM shut every worker down; SIGHUP reloads
    /// the TLS files and reopens the log; SIGUSR1 reopens the log.
    fn on_signal(&mut self) {
        let Some(signals) = self.signals.as_mut() else {
            return;
        };
        let (mut stop, mut reload, mut reopen) = (false, false, false);
        for signal in signals.pending() {
            let asked = crate::signals::asked(signal);
            (stop, reload, reopen) = (
                stop || asked.stop,
                reload || asked.reload_tls,
                reopen || asked.reopen_log,
            );
        }
        if reopen {
            self.log.reopen();
        }
        if reload {
            self.reload_tls();
        }
        if stop {
            self.shared.shutdown_all();
            self.begin_shutdown();
        }
    }

    /// Loads the certificate, key and client CA again on a thread of its own (reading and
    /// parsing files is no work for a reactor); the workers get the result as a message.
    fn reload_tls(&mut self) {
        let (Some(files), Some(current)) = (self.tls_files.clone(), self.tls.clone()) else {
            self.log.line(format_args!(
                "event=reload ok=0 error=\"no TLS (--no-tls): nothing to reload\""
            ));
            return;
        };
        let shared = Arc::clone(&self.shared);
        let started = std::thread::Builder::new()
            .name("tls-reload".into())
            .spawn(move || shared.install_tls(files.reload(&current)));
        if let Err(e) = started {
            self.log.line(format_args!(
                "event=reload ok=0 error={}",
                Value(format!("cannot start the reload: {e}").as_bytes())
            ));
        }
    }

    /// Stops accepting and closes every connection in order; `run` exits when all are gone or
    /// the grace period ends.
    fn begin_shutdown(&mut self) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        self.shutdown_deadline = Some(self.now + SHUTDOWN_GRACE);
        if self.worker == 0 {
            crate::systemd::notify("STOPPING=1");
        }
        self.log
            .line(format_args!("event=shutdown connections={}", self.live));
        for mut listener in self.listeners.drain(..) {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let ids: Vec<ConnId> = self.conns.iter().flatten().map(|c| c.id).collect();
        for id in ids {
            if let Some(conn) = slot_mut(&mut self.conns, id) {
                // SPEC: every greeted client is told why, after the replies to what was read.
                if conn.greeted && conn.phase() == Phase::Open {
                    conn.queue(SHUTDOWN_REPLY);
                }
            }
            self.close(id, CloseReason::Shutdown);
        }
        self.settle();
    }

    // ---- writing ----

    /// The "before sleep" step: every connection that got output this turn writes it now,
    /// all of it in one batch (one `write_tls` carries every reply a read produced).
    fn flush_dirty(&mut self) {
        while let Some(id) = self.dirty.pop() {
            let now = self.now;
            let Some(conn) = slot_mut(&mut self.conns, id) else {
                continue;
            };
            conn.dirty = false;
            if let Err(reason) = conn.flush(now, &mut self.traffic) {
                self.close(id, reason);
                self.settle();
                continue;
            }
            if conn.is_finished() {
                let reason = conn.close_reason.unwrap_or(CloseReason::Eof);
                self.finish(id, reason);
                self.settle();
                continue;
            }
            if conn.phase() == Phase::Lingering {
                // Our FIN is out; the peer's may already be waiting to be read.
                self.read_from(id);
            } else if conn.read_paused && conn.pending_output() <= READ_PAUSE_OUTPUT / 2 {
                conn.read_paused = false;
                self.read_paused_now -= 1;
                self.read_from(id);
            }
            let Some(conn) = slot_mut(&mut self.conns, id) else {
                continue;
            };
            if conn.update_registration(self.poll.registry()).is_err() {
                self.close(id, CloseReason::Reset);
                self.settle();
            }
        }
        self.review_fanout();
    }
}

/// Frames one read's plaintext into lines and hands each to the service, logging request and
/// reply. Stops at a line that closes the connection (`q`): what follows it is not answered.
fn dispatch_lines(
    conn: &mut Conn,
    data: &[u8],
    service: &mut dyn Service,
    out: &mut Outbox,
    log: &mut Log,
    max_line: usize,
    now: Instant,
) {
    let id = conn.id;
    let Conn {
        lines,
        name,
        requests,
        bucket,
        ..
    } = conn;
    lines.feed(data, |frame| {
        *requests += 1;
        let mark = out.mark();
        match crate::line::classify(frame, max_line) {
            Ok(text) => service.on_line(id, text, out),
            Err(bad) => service.on_bad_line(id, bad, out),
        }
        let request: &[u8] = match frame {
            Frame::Line(bytes) => bytes,
            Frame::TooLong => b"(too long)",
        };
        if !out.take_quiet() && log.enabled() {
            log.line(format_args!(
                "conn={id} name={} req={} reply={}",
                Value(name.as_deref().unwrap_or("-").as_bytes()),
                Value(request),
                Value(out.reply_since(mark, id).unwrap_or(b"-"))
            ));
        }
        if let Some(new_name) = out.name_since(mark, id) {
            set_name(name, new_name);
        }
        // What the service logged about this line comes right after it (a chat message's
        // `event=msg` before the next request's line), not at the end of the read.
        for (about, fields) in out.logs() {
            write_service_log(log, about, name.as_deref(), fields);
        }
        out.clear_logs();
        if out.closes_since(mark, id) {
            return Flow::Stop;
        }
        // --rate-limit: this line took a token; without another, the rest waits.
        match bucket {
            Some(bucket) => {
                bucket.spend();
                if bucket.has_token(now) {
                    Flow::Continue
                } else {
                    Flow::Hold
                }
            }
            None => Flow::Continue,
        }
    });
}

/// Remembers a connection's name for the log (no allocation when it is the same name again).
fn set_name(name: &mut Option<Box<str>>, new: &[u8]) {
    let new = String::from_utf8_lossy(new);
    if name.as_deref() != Some(&*new) {
        *name = Some(new.into());
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
fn worker_tag(shared: &Shared, worker: usize) -> impl std::fmt::Display {
    struct Tag(Option<usize>);
    impl std::fmt::Display for Tag {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self.0 {
                Some(n) => write!(f, " worker={n}"),
                None => Ok(()),
            }
        }
    }
    Tag((shared.workers() > 1).then_some(worker))
}

/// One log line a service asked for: `conn=ID name=NAME` and its fields.
fn write_service_log(log: &mut Log, id: ConnId, name: Option<&str>, fields: &[u8]) {
    log.line(format_args!(
        "conn={id} name={} {}",
        Value(name.unwrap_or("-").as_bytes()),
        String::from_utf8_lossy(fields)
    ));
}

/// The connection in `id`'s slot, if it is still that connection (not a later one reusing the slot).
fn slot_mut(conns: &mut [Option<Conn>], id: ConnId) -> Option<&mut Conn> {
    conns
        .get_mut(id.slot())
        .and_then(Option::as_mut)
        .filter(|c| c.id == id)
}
