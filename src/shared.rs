//! What the workers of one process share, and nothing else: each use is a single atomic
//! operation or a rare lock, never per request.
//!
//! - the `--max-clients` count (one compare-and-swap per accepted connection, exact under
//!   concurrent accepts), the `--max-per-ip` counts, and the connection serials (`conn=` ids
//!   unique in the process);
//! - the greeted count, for `--exit-when-empty`;
//! - the chat room's lines between workers (a channel and a `mio::Waker` per worker) and one
//!   "congested" flag per worker, so a member far behind on worker 2 slows the senders on worker 1
//!   as it would on its own worker;
//! - each worker's published counters, for `--metrics`;
//! - the memory of the output buffers of all connections together, against
//!   `--max-output-memory` (one atomic add per change of a connection's buffers);
//! - the messages one worker sends the others (`WorkerMsg`): shutdown, a reloaded TLS set-up.
//!
//! It knows no reactor and no service: the reactors, the scrape and the worker set point down to it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, OnceLock};

use mio::Waker;
use rustls::ServerConfig;

use crate::bus::RoomLine;
use crate::metrics::{self, Counters, Published};
use crate::tls::expiry::ExpiryWarning;
use crate::tls::{ServerTls, Validity};

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
    /// Worker 0 only: how the reload went, for the log, and the new certificate's expiry
    /// warning when it expires within 14 days.
    Reloaded(Result<Option<ExpiryWarning>, String>),
    /// Another worker took a place over `--max-clients` (`Shared::admit_over`): give one back
    /// by evicting a connection still handshaking here, if there is one.
    Evict,
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
    /// Connections counted against `--max-clients` (not those told busy). Above the limit only
    /// while places taken by `admit_over` wait to be given back by an eviction.
    counted: AtomicUsize,
    /// Per worker: its connections still handshaking (or awaiting a PROXY header), as it last
    /// published them: the places it could give back by eviction.
    handshaking: Box<[AtomicUsize]>,
    next_serial: AtomicU64,
    greeted_now: AtomicUsize,
    greeted_ever: AtomicBool,
    /// Per worker: a member there is far behind and still reading (chat flow control).
    congested: Box<[AtomicBool]>,
    /// Per worker: room bytes sent to it and not yet handed to its members. The other half of
    /// the chat's flow control: lines waiting in a channel are behind too.
    room_backlog: Box<[AtomicUsize]>,
    peers: OnceLock<Vec<Peer>>,
    /// Held by a reload from reading the files to installing what it read: two SIGHUPs close
    /// together load one after the other, so the set read last is the set installed last (a
    /// slow first read finishing after a second would put the older files back in force).
    reloading: std::sync::Mutex<()>,
    /// Each worker's counters as last published (for `--metrics`).
    stats: Box<[Published]>,
    /// The server certificate's notAfter in Unix seconds (`i64::MIN`: none, or unread).
    certificate_not_after: AtomicI64,
    metrics_on: bool,
    /// `--max-per-ip`: connections now, per client address (only with the option).
    per_ip: Option<(usize, Mutex<HashMap<IpAddr, usize>>)>,
    /// `--max-output-memory`: the bound on `output_memory`, in bytes.
    output_budget: AtomicUsize,
    /// Memory held by the output buffers of every connection of every worker (the replies
    /// queued and not yet taken by the kernel, as allocated), in bytes.
    output_memory: AtomicUsize,
}

/// `--max-output-memory`'s default: 256 MiB, which fits a small machine (SPEC "Memory under
/// pressure").
pub const DEFAULT_OUTPUT_BUDGET: usize = 256 << 20;

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
            handshaking: (0..workers).map(|_| AtomicUsize::new(0)).collect(),
            next_serial: AtomicU64::new(0),
            greeted_now: AtomicUsize::new(0),
            greeted_ever: AtomicBool::new(false),
            congested: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            room_backlog: (0..workers).map(|_| AtomicUsize::new(0)).collect(),
            peers: OnceLock::new(),
            reloading: std::sync::Mutex::new(()),
            stats: (0..workers).map(|_| Published::default()).collect(),
            certificate_not_after: AtomicI64::new(i64::MIN),
            metrics_on,
            per_ip: max_per_ip.map(|limit| (limit, Mutex::new(HashMap::new()))),
            output_budget: AtomicUsize::new(DEFAULT_OUTPUT_BUDGET),
            output_memory: AtomicUsize::new(0),
        })
    }

    /// Sets `--max-output-memory` (bytes), before the workers start.
    pub fn set_output_budget(&self, bytes: usize) {
        self.output_budget.store(bytes, Ordering::Relaxed);
    }

    /// `--max-output-memory`, in bytes.
    pub fn output_budget(&self) -> usize {
        self.output_budget.load(Ordering::Relaxed)
    }

    /// Memory held by the output buffers of all connections together, in bytes.
    pub fn output_memory(&self) -> usize {
        self.output_memory.load(Ordering::Relaxed)
    }

    /// One connection's output buffers grew by `bytes`, or (`shrank`) gave that many back.
    pub fn output_changed(&self, bytes: usize, shrank: bool) {
        if shrank {
            self.output_memory.fetch_sub(bytes, Ordering::Relaxed);
        } else {
            self.output_memory.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Whether `--metrics` is on (then every worker publishes its counters).
    pub fn metrics_on(&self) -> bool {
        self.metrics_on
    }

    /// Publishes worker `me`'s counters (once per loop turn, with `--metrics`).
    pub fn publish(&self, me: usize, counters: &Counters) {
        self.stats[me].store(counters);
    }

    /// The server certificate now served: its validity, for the expiry gauge.
    pub fn set_certificate(&self, validity: Option<Validity>) {
        let not_after = validity.map_or(i64::MIN, |v| v.not_after);
        self.certificate_not_after
            .store(not_after, Ordering::Relaxed);
    }

    /// The served server certificate's notAfter in Unix seconds, when known.
    pub fn certificate_not_after(&self) -> Option<i64> {
        Some(self.certificate_not_after.load(Ordering::Relaxed)).filter(|&t| t != i64::MIN)
    }

    /// Every worker's counters, summed: what a scrape shows.
    pub fn counters(&self) -> Counters {
        Counters {
            output_memory: self.output_memory() as u64,
            ..metrics::sum(self.stats.iter().map(Published::load))
        }
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

    /// Worker `me` holds `n` connections still handshaking (published once a loop turn).
    pub fn publish_handshaking(&self, me: usize, n: usize) {
        if let Some(slot) = self.handshaking.get(me) {
            slot.store(n, Ordering::Release);
        }
    }

    /// Every place is taken and worker `me` has no handshaking connection to evict for a
    /// newcomer: the newcomer takes a place over the limit when the other workers hold more
    /// handshaking connections than places are already over, and they are told to give one
    /// back by evicting one (`repay_overdraft`). So the stalled connections on one worker make
    /// room for a real client on another (SPEC: any number of sockets that never handshake
    /// cannot keep a real client out). False: nobody can give a place back.
    pub fn admit_over(&self, me: usize) -> bool {
        if self.workers < 2 {
            return false;
        }
        let others: usize = (0..self.workers)
            .filter(|&i| i != me)
            .map(|i| self.handshaking[i].load(Ordering::Acquire))
            .sum();
        let admitted = self
            .counted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n.saturating_sub(self.max_clients) < others).then_some(n + 1)
            })
            .is_ok();
        if admitted {
            self.tell_others(me, || WorkerMsg::Evict);
        }
        admitted
    }

    /// Whether places were taken over the limit and not yet given back.
    pub fn overdrawn(&self) -> bool {
        self.counted.load(Ordering::Acquire) > self.max_clients
    }

    /// Gives back one place taken over the limit, for a connection about to be evicted (its
    /// own place goes with this: its close must not give it back again). False when no place
    /// is over the limit any more (a client left meanwhile).
    pub fn repay_overdraft(&self) -> bool {
        self.counted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n > self.max_clients).then(|| n - 1)
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

    /// Runs `reload` (reads the TLS files, off the reactors' threads) and installs its outcome,
    /// one reload at a time: see `reloading`.
    pub fn reload_tls_with(
        &self,
        reload: impl FnOnce() -> Result<(ServerTls, Option<ExpiryWarning>), String>,
    ) {
        // A reload that panicked left nothing half-done behind the lock: go on.
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        self.install_tls(reload());
    }

    /// The outcome of a reload (built off the reactors' threads): a new set-up goes to every
    /// worker, and worker 0 logs how it went. A failure keeps the set-up in use.
    pub fn install_tls(&self, reloaded: Result<(ServerTls, Option<ExpiryWarning>), String>) {
        let report = match reloaded {
            Ok((loaded, warning)) => {
                self.set_certificate(loaded.validity);
                self.tell_others(usize::MAX, || WorkerMsg::Tls(Arc::clone(&loaded.config)));
                Ok(warning)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_over_the_limit_only_while_another_worker_can_evict_and_given_back_once() {
        let shared = Shared::new(2, 1);
        assert!(shared.admit());
        assert!(!shared.admit());
        // Worker 1 has nothing to evict: no place over the limit.
        assert!(!shared.admit_over(0));
        shared.publish_handshaking(1, 1);
        assert!(shared.admit_over(0));
        assert!(shared.overdrawn());
        // One handshaking connection gives back one place, not two.
        assert!(!shared.admit_over(0));
        assert!(shared.repay_overdraft());
        assert!(!shared.overdrawn());
        assert!(!shared.repay_overdraft());
        // One worker alone never goes over.
        let alone = Shared::new(1, 1);
        assert!(alone.admit());
        alone.publish_handshaking(0, 5);
        assert!(!alone.admit_over(0));
    }
    use mio::{Poll, Token};
    use std::sync::mpsc;

    /// Any token: only this test's poll sees it.
    const WAKER_TOKEN: Token = Token(7);

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
