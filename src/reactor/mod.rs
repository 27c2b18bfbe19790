//! The reactor: one thread, one `mio::Poll`, its connections. `--workers N` runs N of them
//! (`workers.rs`), each with its own listening sockets; this file is one of them.
//!
//! Read [`Reactor::run`] first: one turn is poll, then each event to its part by token, then
//! timers, then the "before sleep" step (as in Redis's `ae.c`):
//!
//! ```text
//! poll -> Source::Listener -> accept.rs     admission, a Conn per socket, a slot per Conn
//!      -> Source::Conn     -> requests.rs   driver::read (the socket) -> Conn::handle_bytes
//!                                           (rustls) -> lines -> Service -> Outbox -> replies
//!                                           queued, backpressure after every line
//!      -> Source::Waker    -> other workers' room lines, shutdown, reloaded TLS
//!      -> Source::Redis    -> room/         the other instances' room lines
//!      -> Source::Signals  -> stop, reload, reopen the log
//! timers                   -> timers.rs     handshake, line, idle and closing deadlines
//! before sleep             -> room lines to the other workers, then flush: one batched TLS
//!                             write per connection with output (driver::flush), closing.rs
//!                             ends the finished
//! ```
//!
//! The parts: `slots` (the connection table and its work lists), `admission` (every place),
//! `room` (the chat relay beyond this reactor and its flow control), `metrics::Meter` (what
//! this worker counts). The reactor knows no service's protocol: services speak only through
//! the `Service` trait and the `Outbox`.

mod accept;
mod admission;
mod closing;
mod driver;
mod requests;
mod slots;
mod timers;
mod tokens;

use std::io;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant, SystemTime};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll};
use rustls::ServerConfig;
use signal_hook_mio::v1_0::Signals;

use crate::bus::Directory;
use crate::config::Config;
use crate::conn::Timeouts;
use crate::log::{Log, Value};
use crate::metrics::Meter;
use crate::outbox::Outbox;
use crate::room::Room;
use crate::service::Service;
use crate::shared::{Shared, WorkerMsg};
use crate::tls::TlsFiles;
use crate::tls::expiry::ExpiryWarning;

use accept::Listeners;
use admission::Admission;
use slots::Slots;
use timers::Clock;
pub use tokens::WAKER_TOKEN;
use tokens::{SIGNAL_TOKEN, Source};

/// How long an orderly close may take (flush, close_notify, the peer's FIN).
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// SPEC: exit within 2 s of SIGTERM even if some client does not read.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);

/// The buffer every connection's socket is read into, and the one its plaintext is handed out
/// in: one each per reactor, so an idle connection holds no read buffer (rustls records are at
/// most 16 KiB; a plain read's bytes go through in one piece).
const READ_BUFFER: usize = 64 * 1024;

/// The last line every greeted client gets when the server stops (SIGINT/SIGTERM).
pub const SHUTDOWN_REPLY: &[u8] = b"BYE server shutting down\n";

/// Everything one worker is built from, before its thread starts.
pub struct WorkerParts {
    pub index: usize,
    pub poll: Poll,
    pub listeners: Vec<TcpListener>,
    pub inbox: Receiver<WorkerMsg>,
    pub shared: Arc<Shared>,
    /// Worker 0 with `--metrics`: the endpoint's listener and service.
    pub metrics: Option<(TcpListener, Box<dyn Service>)>,
    /// The chat room's directory (worker 0 keeps the other instances' names in it).
    pub room: Arc<Directory>,
}

pub struct Reactor {
    poll: Poll,
    listeners: Listeners,
    /// SIGINT/SIGTERM/SIGHUP: worker 0 only (see `workers`).
    signals: Option<Signals>,
    /// Which worker this is, what the workers share, and the messages the others send it.
    worker: Worker,
    conns: Slots,
    admission: Admission,
    room: Room,
    /// What this worker counts, published for `--metrics`, and the scrape's service.
    meter: Meter,
    service: Box<dyn Service>,
    outbox: Outbox,
    log: Log,
    settings: Settings,
    clock: Clock,
    /// What the socket gave, lent to one connection at a time (see READ_BUFFER).
    scratch: Box<[u8]>,
    /// The plaintext a connection hands out of `scratch`'s bytes (see READ_BUFFER).
    plaintext: Box<[u8]>,
    /// The bytes a connection hands out to write, lent to one connection at a time.
    transmit: Vec<u8>,
}

struct Worker {
    index: usize,
    shared: Arc<Shared>,
    inbox: Receiver<WorkerMsg>,
}

struct Settings {
    /// The TLS set-up new connections get (`None`: `--no-tls`); SIGHUP replaces it.
    tls: Option<Arc<ServerConfig>>,
    /// Where the TLS set-up is loaded from again on SIGHUP (worker 0, with TLS).
    tls_files: Option<TlsFiles>,
    max_line: usize,
    rate_limit: Option<crate::rate::Pace>,
    timeouts: Timeouts,
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
            listeners,
            inbox,
            shared,
            metrics,
            room,
        } = parts;
        let redis = match (&config.chat_redis, index) {
            (Some(url), 0) if config.service == crate::proto::ServiceKind::Chat => Some(
                crate::room::redis::RedisBus::new(url.clone(), room, Instant::now())?,
            ),
            _ => None,
        };
        let (metrics_listener, scrape) = metrics.unzip();
        let listeners = Listeners::register(listeners, metrics_listener, poll.registry())?;
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
            admission: Admission::new(Arc::clone(&shared), index, config.proxy_from.clone()),
            room: Room::new(index, Arc::clone(&shared), redis),
            worker: Worker {
                index,
                shared,
                inbox,
            },
            conns: Slots::default(),
            meter: Meter::new(scrape),
            service,
            outbox: Outbox::new(),
            log,
            settings: Settings {
                tls,
                tls_files,
                max_line: config.max_line,
                rate_limit: config.rate_limit,
                timeouts: Timeouts {
                    handshake: config.handshake_timeout,
                    idle: config.idle_timeout,
                    line: config.line_timeout,
                },
                exit_when_empty: config.exit_when_empty,
            },
            clock: Clock::new(Instant::now()),
            scratch: vec![0; READ_BUFFER].into_boxed_slice(),
            plaintext: vec![0; READ_BUFFER].into_boxed_slice(),
            transmit: Vec::new(),
        })
    }

    /// Runs until SIGINT/SIGTERM (or `--exit-when-empty`), then closes every connection cleanly.
    pub fn run(mut self) -> Result<(), String> {
        let mut events = Events::with_capacity(1024);
        if self.room.has_redis() {
            self.clock.note_deadline(self.clock.now); // connect to Redis on the first turn
        }
        loop {
            let timeout = self.clock.poll_timeout(self.conns.has_read_later());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue; // a signal arrived; its event comes through the signal pipe
                }
                return Err(format!("poll failed: {e}"));
            }
            self.clock.now = Instant::now();
            self.log.set_time(SystemTime::now());
            if self.worker.shared.workers() > 1 {
                // Other workers' room lines first, whatever the order of this poll's events: a
                // line they sent before a client of theirs could answer it is older than
                // anything that client makes others send here.
                self.on_messages();
            }
            for id in self.conns.take_read_later() {
                self.read_from(id);
            }
            for event in events.iter() {
                match Source::of(event.token(), self.listeners.len()) {
                    Source::Signals => self.on_signal(),
                    // With other workers their messages were read above; one worker is woken
                    // only by a reload.
                    Source::Waker => self.on_messages(),
                    Source::Redis(token) => self.on_redis(token),
                    Source::Listener(index) => self.accept_all(index),
                    Source::Conn(id) => {
                        if event.is_writable() {
                            self.conns.mark_dirty(id);
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.read_from(id);
                        }
                    }
                }
            }
            self.run_timers();
            self.before_sleep();
            if self.clock.shutdown_due(self.conns.live()) {
                break;
            }
        }
        self.close_the_rest();
        Ok(())
    }

    /// The "before sleep" step: room lines out (before this turn's replies, so no client hears a
    /// reply before the other workers have what caused it), what this worker could evict, then
    /// every connection with output writes it in one batch, then the counters and the log.
    fn before_sleep(&mut self) {
        self.redis_turn();
        self.room.end_of_turn();
        if self.worker.shared.workers() > 1 {
            // What this worker could evict, for a full worker with nothing of its own to evict.
            // Before the flush: a client greeted this turn may connect again at once, and the
            // other worker must not count it as handshaking still (a place taken over the limit
            // that nobody can give back: a fourth client served under `--max-clients 3`).
            let now = self.clock.now;
            let conns = &self.conns;
            let handshaking = self
                .admission
                .handshaking(|id| accept::candidate(conns, id, now));
            self.worker
                .shared
                .publish_handshaking(self.worker.index, handshaking);
        }
        self.flush_dirty();
        if self.worker.shared.metrics_on() {
            let conns = &self.conns;
            let counters = self.meter.snapshot(
                conns.live() - self.admission.scrapes(),
                self.clock.now,
                self.log.dropped_total(),
                || conns.iter().filter(|c| !c.pauses().is_empty()).count() as u64,
            );
            self.worker.shared.publish(self.worker.index, counters);
        }
        if self.settings.exit_when_empty && self.worker.shared.everyone_left() {
            self.worker.shared.shutdown_all();
            self.begin_shutdown();
            self.flush_dirty();
        }
        self.log.flush();
    }

    /// What the other workers sent: room lines for our members, a calm room, or shutdown.
    fn on_messages(&mut self) {
        while let Ok(message) = self.worker.inbox.try_recv() {
            match message {
                WorkerMsg::Room(lines) => {
                    for line in &lines {
                        self.service.on_room_line(line, &mut self.outbox);
                    }
                    self.settle(None);
                    self.room.delivered_from_workers(&lines);
                }
                WorkerMsg::RoomCalm => self.review_fanout(),
                WorkerMsg::Evict => self.repay_overdraft(),
                WorkerMsg::Shutdown => self.begin_shutdown(),
                // Only new connections get it; open ones keep the set-up they began with.
                WorkerMsg::Tls(config) => self.settings.tls = Some(config),
                WorkerMsg::Reloaded(Ok(warning)) => {
                    self.log.line(format_args!("event=reload ok=1"));
                    if let Some(warning) = warning {
                        log_expiry(&mut self.log, &warning);
                    }
                }
                WorkerMsg::Reloaded(Err(why)) => self.log.line(format_args!(
                    "event=reload ok=0 error={}",
                    Value(why.as_bytes())
                )),
            }
        }
    }

    /// `--chat-redis`: the link's timers and this turn's lines out; theirs in to our members.
    fn redis_turn(&mut self) {
        let next = self
            .room
            .redis_turn(self.poll.registry(), self.clock.now, &mut self.log);
        if let Some(at) = next {
            self.clock.note_deadline(at);
        }
        self.deliver_from_other_instances();
    }

    fn on_redis(&mut self, token: mio::Token) {
        self.room
            .on_redis_event(token, self.poll.registry(), self.clock.now, &mut self.log);
        self.deliver_from_other_instances();
    }

    /// Room lines from the other instances: to our members, and to the other workers' members,
    /// as far as the room's flow control lets them go now (`Room::take_from_instances`).
    fn deliver_from_other_instances(&mut self) {
        loop {
            let lines = self.room.take_from_instances();
            if lines.is_empty() {
                break;
            }
            for line in &lines {
                self.service.on_room_line(line, &mut self.outbox);
            }
            self.settle(None);
            self.room.delivered_from_instances(lines);
        }
        if let Some(at) = self.room.from_instances_due(self.clock.now) {
            self.clock.note_deadline(at);
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
            self.worker.shared.shutdown_all();
            self.begin_shutdown();
        }
    }

    /// Loads the certificate, key and client CA again on a thread of its own (reading and
    /// parsing files is no work for a reactor); the workers get the result as a message.
    fn reload_tls(&mut self) {
        let Some(files) = self.settings.tls_files.clone() else {
            self.log.line(format_args!(
                "event=reload ok=0 error=\"no TLS (--no-tls): nothing to reload\""
            ));
            return;
        };
        let shared = Arc::clone(&self.worker.shared);
        let started = std::thread::Builder::new()
            .name("tls-reload".into())
            .spawn(move || {
                shared.reload_tls_with(|| {
                    files.reload().map(|loaded| {
                        let warning = files.expiry_warning(&loaded);
                        (loaded, warning)
                    })
                });
            });
        if let Err(e) = started {
            self.log.line(format_args!(
                "event=reload ok=0 error={}",
                Value(format!("cannot start the reload: {e}").as_bytes())
            ));
        }
    }
}

/// The `event=cert-expiry` line: the server certificate expires within 14 days, or has.
/// With ` not_valid_before=<date>` when its notBefore is still to come.
pub fn log_expiry(log: &mut Log, warning: &ExpiryWarning) {
    let early = warning
        .not_valid_before
        .map(|t| format!(" not_valid_before={}", crate::tls::expiry::utc_date(t)))
        .unwrap_or_default();
    log.line(format_args!(
        "event=cert-expiry cert={} not_after={} days_left={}{early}",
        Value(warning.cert.as_bytes()),
        warning.date(),
        warning.days_left
    ));
}
