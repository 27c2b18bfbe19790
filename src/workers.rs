//! The worker set: `--workers N` complete reactors, each on a thread of its own with its own
//! `mio::Poll`, its own `SO_REUSEPORT` listening socket per address (the kernel spreads new
//! connections over them) and its own connections. Nothing is shared on the request path.
//!
//! What the workers do share is [`Shared`], and each use is a single atomic operation or a rare
//! lock, never per request:
//! - the `--max-clients` count (one compare-and-swap per accepted connection, exact under
//!   concurrent accepts) and the connection serials (`conn=` ids unique in the process);
//! - the greeted count, for `--exit-when-empty`;
//! - the chat room: its directory (`bus::Directory`, locked at login, logout and `who`), the room
//!   lines each worker hands the others once per loop turn (a channel and a `mio::Waker` per
//!   worker), and one "congested" flag per worker, so a member far behind on worker 2 slows the
//!   senders on worker 1 as it would on its own worker;
//! - the log writer (one file; each worker formats into a buffer of its own) and the TLS set-up.
//!
//! Worker 0 runs on the main thread and also owns the signals: SIGINT/SIGTERM there (or a service
//! asking, or `--exit-when-empty`) sends every worker `Shutdown`, and each closes its own clients.
//! `--workers 1` is the one-thread server: one reactor on the main thread, no other worker.

use std::collections::HashMap;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

use mio::net::TcpListener;
use mio::{Poll, Token, Waker};
use rustls::ServerConfig;

use crate::bus::{Directory, RoomLine};
use crate::config::Config;
use crate::log::Log;
use crate::metrics::{self, Counters, Published};
use crate::reactor::Reactor;
use crate::service;
use crate::service::scrape::Scrape;
use crate::tls::TlsFiles;

/// Room bytes on their way to one worker beyond which the senders of the room are paused (the
/// same bound as a member's own queue, `FANOUT_SOFT`).
const ROOM_BACKLOG_SOFT: usize = 256 * 1024;

/// What one worker tells another.
#[derive(Debug)]
pub enum WorkerMsg {
    /// Room lines (chat `JOIN`/`MSG`/`LEFT`) for this worker's members, in the order sent.
    Room(Vec<RoomLine>),
    /// The sender's members have caught up: paused chat senders may go on.
    RoomCalm,
    /// Close every connection and stop.
    Shutdown,
    /// New connections get this TLS set-up from now on (SIGHUP reloaded the files).
    Tls(Arc<ServerConfig>),
    /// Worker 0 only: how the reload went, for the log.
    Reloaded(Result<(), String>),
}

/// One worker as the others reach it.
struct Peer {
    inbox: Sender<WorkerMsg>,
    waker: Waker,
}

/// What the workers of one process share (see the module's first lines).
pub struct Shared {
    workers: usize,
    max_clients: usize,
    /// Connections counted against `--max-clients` (not those told busy).
    counted: AtomicUsize,
    next_serial: AtomicU64,
    greeted_now: AtomicUsize,
    greeted_ever: AtomicBool,
    /// Per worker: a member there is far behind and still reading (chat flow control).
    congested: Box<[AtomicBool]>,
    /// Per worker: room bytes sent to it and not yet handed to its members. The other half of
    /// the chat's flow control: lines waiting in a channel are behind too.
    room_backlog: Box<[AtomicUsize]>,
    peers: OnceLock<Vec<Peer>>,
    /// Each worker's counters as last published (for `--metrics`).
    stats: Box<[Published]>,
    metrics_on: bool,
    /// `--max-per-ip`: connections now, per client address (only with the option).
    per_ip: Option<(usize, Mutex<HashMap<IpAddr, usize>>)>,
}

impl Shared {
    pub fn new(workers: usize, max_clients: usize) -> Arc<Shared> {
        Shared::configured(workers, max_clients, None, false)
    }

    /// `max_per_ip`: at most this many connections at once from one client address;
    /// `metrics_on`: every worker publishes its counters for `--metrics`.
    pub fn configured(
        workers: usize,
        max_clients: usize,
        max_per_ip: Option<usize>,
        metrics_on: bool,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            workers,
            max_clients,
            counted: AtomicUsize::new(0),
            next_serial: AtomicU64::new(0),
            greeted_now: AtomicUsize::new(0),
            greeted_ever: AtomicBool::new(false),
            congested: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            room_backlog: (0..workers).map(|_| AtomicUsize::new(0)).collect(),
            peers: OnceLock::new(),
            stats: (0..workers).map(|_| Published::default()).collect(),
            metrics_on,
            per_ip: max_per_ip.map(|limit| (limit, Mutex::new(HashMap::new()))),
        })
    }

    /// Whether `--metrics` is on (then every worker publishes its counters).
    pub fn metrics_on(&self) -> bool {
        self.metrics_on
    }

    /// Publishes worker `me`'s counters (once per loop turn, with `--metrics`).
    pub fn publish(&self, me: usize, counters: &Counters) {
        self.stats[me].store(counters);
    }

    /// Every worker's counters, summed: what a scrape shows.
    pub fn counters(&self) -> Counters {
        metrics::sum(self.stats.iter().map(Published::load))
    }

    /// Takes a `--max-per-ip` place for `ip`; false when that address has its limit already.
    /// Without the option, always true (and no lock).
    pub fn admit_ip(&self, ip: IpAddr) -> bool {
        let Some((limit, counts)) = &self.per_ip else {
            return true;
        };
        let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= *limit {
            return false; // `limit` is at least 1, so this address is in the map already
        }
        *n += 1;
        true
    }

    /// A connection that held a `--max-per-ip` place for `ip` has gone.
    pub fn depart_ip(&self, ip: IpAddr) {
        let Some((_, counts)) = &self.per_ip else {
            return;
        };
        let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&ip); // the map holds only addresses with connections
            }
        }
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Connects the workers: each one's inbox and waker, in worker order (once).
    pub fn link(&self, peers: Vec<(Sender<WorkerMsg>, Waker)>) {
        let peers = peers
            .into_iter()
            .map(|(inbox, waker)| Peer { inbox, waker })
            .collect();
        let _ = self.peers.set(peers);
    }

    /// Takes a `--max-clients` place for a new connection; false when the server is full.
    pub fn admit(&self) -> bool {
        self.counted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_clients).then_some(n + 1)
            })
            .is_ok()
    }

    /// A connection that held a place has gone.
    pub fn depart(&self) {
        self.counted.fetch_sub(1, Ordering::AcqRel);
    }

    /// The next connection serial, unique in the process (`conn=` in the log).
    pub fn next_serial(&self) -> u64 {
        self.next_serial.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn greeted(&self) {
        self.greeted_now.fetch_add(1, Ordering::AcqRel);
        self.greeted_ever.store(true, Ordering::Release);
    }

    pub fn ungreeted(&self) {
        self.greeted_now.fetch_sub(1, Ordering::AcqRel);
    }

    /// `--exit-when-empty`: a client came, and every greeted client has left.
    pub fn everyone_left(&self) -> bool {
        self.greeted_ever.load(Ordering::Acquire) && self.greeted_now.load(Ordering::Acquire) == 0
    }

    /// Worker `from` published a room line of `bytes` (sent at the end of its turn): it counts
    /// toward every other worker's backlog at once, so the next read of the sender sees it.
    pub fn room_published(&self, from: usize, bytes: usize) {
        for (i, backlog) in self.room_backlog.iter().enumerate() {
            if i != from {
                backlog.fetch_add(bytes, Ordering::AcqRel);
            }
        }
    }

    /// Hands room lines to every other worker (one message and one wake-up each).
    pub fn send_room(&self, from: usize, lines: &[RoomLine]) {
        self.tell_others(from, || WorkerMsg::Room(lines.to_vec()));
    }

    /// Worker `me` handed `bytes` of room lines to its members. When that brings its backlog
    /// back under the limit, paused senders elsewhere are told at once.
    pub fn room_delivered(&self, me: usize, bytes: usize) {
        let before = self.room_backlog[me].fetch_sub(bytes, Ordering::AcqRel);
        if before > ROOM_BACKLOG_SOFT && before - bytes <= ROOM_BACKLOG_SOFT {
            self.tell_others(me, || WorkerMsg::RoomCalm);
        }
    }

    /// Asks every worker, `from` included, to shut down.
    pub fn shutdown_all(&self) {
        for peer in self.peers.get().into_iter().flatten() {
            let _ = peer.inbox.send(WorkerMsg::Shutdown);
            let _ = peer.waker.wake();
        }
    }

    /// The outcome of a reload (built off the reactors' threads): a new set-up goes to every
    /// worker, and worker 0 logs how it went. A failure keeps the set-up in use.
    pub fn install_tls(&self, reloaded: Result<Arc<ServerConfig>, String>) {
        let report = match reloaded {
            Ok(config) => {
                self.tell_others(usize::MAX, || WorkerMsg::Tls(Arc::clone(&config)));
                Ok(())
            }
            Err(why) => Err(why),
        };
        if let Some(first) = self.peers.get().and_then(|peers| peers.first()) {
            let _ = first.inbox.send(WorkerMsg::Reloaded(report));
            let _ = first.waker.wake();
        }
    }

    fn tell_others(&self, from: usize, message: impl Fn() -> WorkerMsg) {
        for (i, peer) in self.peers.get().into_iter().flatten().enumerate() {
            if i != from {
                // A worker that is gone has nobody left to deliver to.
                let _ = peer.inbox.send(message());
                let _ = peer.waker.wake();
            }
        }
    }

    /// Worker `me`'s chat members are (or are no longer) far behind. When they catch up, the
    /// others are told at once, so their paused senders do not wait for a timer.
    pub fn set_congested(&self, me: usize, congested: bool) {
        let was = self.congested[me].swap(congested, Ordering::AcqRel);
        if was && !congested {
            self.tell_others(me, || WorkerMsg::RoomCalm);
        }
    }

    /// Another worker is behind: a member there far behind and still reading, or room lines
    /// piling up on their way to it.
    pub fn others_congested(&self, me: usize) -> bool {
        self.workers > 1
            && (0..self.workers).any(|i| {
                i != me
                    && (self.congested[i].load(Ordering::Acquire)
                        || self.room_backlog[i].load(Ordering::Acquire) > ROOM_BACKLOG_SOFT)
            })
    }
}

/// Everything one worker is built from, before its thread starts.
pub struct WorkerParts {
    pub index: usize,
    pub poll: Poll,
    pub listeners: Vec<TcpListener>,
    pub inbox: Receiver<WorkerMsg>,
    pub shared: Arc<Shared>,
    /// Worker 0 with `--metrics`: the endpoint's listener and service.
    pub metrics: Option<(TcpListener, Box<dyn service::Service>)>,
    /// The chat room's directory (worker 0 keeps the other instances' names in it).
    pub room: Arc<Directory>,
}

/// The waker's token: listeners use 0..n, connection tokens are never below 2^24 (see reactor).
pub const WAKER_TOKEN: Token = Token(crate::outbox::ConnId::MAX_SLOTS - 2);

/// Binds every worker's listeners, prints the ready lines, runs the workers until shutdown and
/// waits for them all. Worker 0 runs on this thread.
pub fn serve(
    config: &Config,
    tls: Option<(Arc<ServerConfig>, TlsFiles)>,
    log: Log,
    passed: Option<Vec<std::net::TcpListener>>,
) -> Result<(), String> {
    let (tls, tls_files) = tls.unzip();
    let workers = config.workers.max(1);
    let shared = Shared::configured(
        workers,
        config.max_clients,
        config.max_per_ip,
        config.metrics.is_some(),
    );
    let room = Directory::new();
    let mut main_log = log.another();
    let listeners = match passed {
        // Socket activation: systemd's sockets, not the command line's addresses.
        Some(sockets) => crate::listen::from_passed(sockets, workers)?,
        None => crate::listen::bind_all(&config.listen, workers)?,
    };
    let mut metrics = match &config.metrics {
        Some(spec) => Some(crate::listen::bind_one(spec)?),
        None => None,
    };
    let metrics_addr = metrics.as_ref().map(|(_, addr)| *addr);

    let mut parts = Vec::with_capacity(workers);
    let mut peers = Vec::with_capacity(workers);
    for (index, listeners) in listeners.sockets.into_iter().enumerate() {
        let poll = Poll::new().map_err(|e| format!("cannot create a poll: {e}"))?;
        let waker = Waker::new(poll.registry(), WAKER_TOKEN)
            .map_err(|e| format!("cannot create a waker: {e}"))?;
        let (inbox_tx, inbox) = mpsc::channel();
        peers.push((inbox_tx, waker));
        parts.push(WorkerParts {
            index,
            poll,
            listeners,
            inbox,
            shared: Arc::clone(&shared),
            // Worker 0 serves the metrics endpoint: scrapes are rare, and it sums every worker.
            metrics: metrics.take().map(|(listener, _)| {
                let scrape = Scrape::new(Arc::clone(&shared), Arc::clone(&room));
                (listener, Box::new(scrape) as Box<dyn service::Service>)
            }),
            room: Arc::clone(&room),
        });
    }
    shared.link(peers);

    let mut reactors = Vec::with_capacity(workers);
    let mut log = Some(log);
    for part in parts {
        let service = service::create(&config.service, &config.name, config.number, &room)?;
        let worker_log = match part.index {
            0 => log.take().unwrap_or_else(Log::off),
            _ => main_log.another(),
        };
        // Worker 0 owns the signals, so it reloads the TLS files on SIGHUP.
        let reload = (part.index == 0).then(|| tls_files.clone()).flatten();
        reactors.push(Reactor::new(
            config,
            part,
            (tls.clone(), reload),
            service,
            worker_log,
        )?);
    }
    announce(
        config,
        &listeners.addrs,
        tls.is_some(),
        workers,
        &mut main_log,
    )?;
    if let Some(addr) = metrics_addr {
        announce_metrics(addr, &mut main_log)?;
    }
    crate::systemd::notify("READY=1");

    let mut reactors = reactors.into_iter();
    let first = reactors.next().ok_or("no worker to run")?;
    let threads: Vec<_> = reactors
        .enumerate()
        .map(|(i, reactor)| {
            std::thread::Builder::new()
                .name(format!("worker-{}", i + 1))
                .spawn(move || reactor.run())
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot start a worker thread: {e}"))?;
    let mut result = first.run();
    if result.is_err() {
        shared.shutdown_all(); // worker 0 failed: the process must not go on half-served
    }
    for thread in threads {
        let outcome = thread
            .join()
            .unwrap_or_else(|_| Err("a worker stopped unexpectedly".to_string()));
        if result.is_ok() {
            result = outcome;
        }
    }
    main_log.set_time(std::time::SystemTime::now()); // its clock was last set at start
    main_log.line(format_args!("event=stop"));
    main_log.finish();
    result
}

/// The metrics endpoint's ready line, after the service's.
fn announce_metrics(addr: SocketAddr, log: &mut Log) -> Result<(), String> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {addr} (http, metrics)")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write the ready line: {e}"))?;
    log.line(format_args!(
        "event=listen addr={addr} mode=http service=metrics"
    ));
    Ok(())
}

/// The ready lines on stdout (flushed: scripts and tests wait for them), and the log's start.
fn announce(
    config: &Config,
    addrs: &[SocketAddr],
    tls: bool,
    workers: usize,
    log: &mut Log,
) -> Result<(), String> {
    use std::io::Write;
    let mode = if tls { "tls" } else { "plain" };
    let count = match workers {
        1 => String::new(),
        n => format!(", {n} workers"),
    };
    let mut stdout = std::io::stdout().lock();
    for addr in addrs {
        writeln!(
            stdout,
            "listening on {addr} ({mode}, {}{count})",
            config.service
        )
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write the ready line: {e}"))?;
        log.line(format_args!(
            "event=listen addr={addr} mode={mode} service={} workers={workers}",
            config.service
        ));
    }
    log.flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_clients_is_exact_under_concurrent_admission() {
        let shared = Shared::new(4, 100);
        let admitted: usize = (0..4)
            .map(|_| {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || (0..1000).filter(|_| shared.admit()).count())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(admitted, 100);
        shared.depart();
        assert!(shared.admit());
        assert!(!shared.admit());
    }

    #[test]
    fn serials_are_unique_across_threads() {
        let shared = Shared::new(2, 10);
        let mut all: Vec<u64> = (0..4)
            .map(|_| {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || {
                    (0..500).map(|_| shared.next_serial()).collect::<Vec<_>>()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 2000);
        assert_eq!(all[0], 1);
    }

    #[test]
    fn room_lines_reach_every_other_worker_in_order_and_wake_it() {
        let shared = Shared::new(3, 10);
        let mut polls = Vec::new();
        let mut inboxes = Vec::new();
        let mut peers = Vec::new();
        for _ in 0..3 {
            let poll = Poll::new().unwrap();
            let waker = Waker::new(poll.registry(), WAKER_TOKEN).unwrap();
            let (tx, rx) = mpsc::channel();
            peers.push((tx, waker));
            inboxes.push(rx);
            polls.push(poll);
        }
        shared.link(peers);
        let line = |text: &str| -> RoomLine { Arc::from(text.as_bytes()) };
        shared.send_room(1, &[line("JOIN bob\n"), line("MSG bob hi\n")]);
        shared.send_room(1, &[line("MSG bob again\n")]);
        assert!(inboxes[1].try_recv().is_err(), "not to the sender");
        for i in [0, 2] {
            let mut events = mio::Events::with_capacity(4);
            polls[i]
                .poll(&mut events, Some(std::time::Duration::ZERO))
                .unwrap();
            assert!(events.iter().any(|e| e.token() == WAKER_TOKEN));
            let got: Vec<String> = inboxes[i]
                .try_iter()
                .flat_map(|m| match m {
                    WorkerMsg::Room(lines) => lines,
                    other => panic!("{other:?}"),
                })
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .collect();
            assert_eq!(got, ["JOIN bob\n", "MSG bob hi\n", "MSG bob again\n"]);
        }
        // Lines waiting for worker 0 beyond the limit hold the others back until delivered.
        let big: RoomLine = Arc::from(vec![b'x'; ROOM_BACKLOG_SOFT + 1]);
        shared.room_published(1, big.len());
        shared.send_room(1, &[big]);
        assert!(shared.others_congested(1) && shared.others_congested(2));
        shared.room_delivered(0, ROOM_BACKLOG_SOFT + 1);
        shared.room_delivered(2, ROOM_BACKLOG_SOFT + 1);
        assert!(!shared.others_congested(1));
        for i in [1, 2] {
            let calm = inboxes[i]
                .try_iter()
                .any(|m| matches!(m, WorkerMsg::RoomCalm));
            assert!(calm, "worker {i} not told");
        }
        inboxes[0].try_iter().for_each(drop);
        // Congestion on worker 2 is seen by 0; its end is announced.
        shared.set_congested(2, true);
        assert!(shared.others_congested(0));
        assert!(!shared.others_congested(2));
        shared.set_congested(2, false);
        assert!(!shared.others_congested(0));
        assert!(matches!(inboxes[0].try_recv(), Ok(WorkerMsg::RoomCalm)));
    }
}
