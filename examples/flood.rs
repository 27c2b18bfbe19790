//! A handshake flood, measured: many sockets that connect and never send a byte, then real
//! clients; how many of the real ones are served.
//!
//! ```text
//! flood --addr 127.0.0.1:5000 --silent N --sources K --clients M [--threads C] [--ca FILE] [--reopen]
//! ```
//!
//! The N silent sockets are spread over the source addresses 127.0.0.2 .. 127.0.0.(K+1) (the
//! client socket is bound to each before it connects), so the flood comes from K addresses as a
//! small botnet's would. Once they are connected, M real TLS clients (from 127.0.0.1, C at a
//! time) connect, read the greeting and ask `+ 2 3`; a client is served when it gets `OK 5`.
//! `--reopen`: a silent socket the server closes (evicted, or its handshake timed out) is opened
//! again at once, so the flood keeps its size while the real clients run.
//!
//! One line out: silent sockets connected and closed by the server, real clients served (and
//! the share), and the time a real client took from connect to its answer (p50, p99, max).

#[path = "shared/sockets.rs"]
mod sockets;

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use securetcp::client::{ClientOptions, Session};

struct Options {
    addr: SocketAddr,
    silent: usize,
    sources: u8,
    clients: usize,
    threads: usize,
    ca: PathBuf,
    reopen: bool,
}

fn parse() -> Result<Options, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = Options {
        addr: "127.0.0.1:5000".parse().unwrap(),
        silent: 10_000,
        sources: 10,
        clients: 200,
        threads: 4,
        ca: PathBuf::from("certs/ca.pem"),
        reopen: false,
    };
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--reopen" {
            o.reopen = true;
            i += 1;
            continue;
        }
        let value = args
            .get(i + 1)
            .ok_or(format!("{} needs a value", args[i]))?;
        let bad = || format!("{} {value}: not understood", args[i]);
        match args[i].as_str() {
            "--addr" => o.addr = value.parse().map_err(|_| bad())?,
            "--silent" => o.silent = value.parse().map_err(|_| bad())?,
            "--sources" => o.sources = value.parse().map_err(|_| bad())?,
            "--clients" => o.clients = value.parse().map_err(|_| bad())?,
            "--threads" => o.threads = value.parse().map_err(|_| bad())?,
            "--ca" => o.ca = PathBuf::from(value),
            other => return Err(format!("unknown option {other}")),
        }
        i += 2;
    }
    if o.sources == 0 || o.sources > 250 || o.threads == 0 {
        return Err("--sources 1..250 and --threads 1.. please".into());
    }
    Ok(o)
}

fn main() -> ExitCode {
    match parse().and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flood: {e}");
            ExitCode::from(1)
        }
    }
}

/// The silent sockets, kept in a poll so that the ones the server closes are seen (and, with
/// `--reopen`, replaced).
struct Flood {
    poll: Poll,
    sockets: Vec<Option<TcpStream>>,
    addr: SocketAddr,
    sources: u8,
    connected: Vec<bool>,
}

impl Flood {
    fn open(&mut self, slot: usize) -> io::Result<()> {
        let source = 2 + (slot % usize::from(self.sources)) as u8;
        let mut stream = sockets::connect_from(self.addr, Ipv4Addr::new(127, 0, 0, source))?;
        self.poll.registry().register(
            &mut stream,
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.sockets[slot] = Some(stream);
        self.connected[slot] = false;
        Ok(())
    }

    /// One poll round: connects completed, and sockets the server closed (dropped, and counted).
    fn pump(&mut self, events: &mut Events, wait: Duration) -> (usize, Vec<usize>) {
        let _ = self.poll.poll(events, Some(wait));
        let (mut newly_connected, mut closed) = (0, Vec::new());
        for event in events.iter() {
            let slot = event.token().0;
            let Some(stream) = self.sockets[slot].as_mut() else {
                continue;
            };
            if event.is_writable() && !self.connected[slot] && stream.peer_addr().is_ok() {
                self.connected[slot] = true;
                newly_connected += 1;
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                let mut byte = [0u8; 64];
                let gone = match stream.read(&mut byte) {
                    Ok(_) => true, // EOF, or bytes we never asked for: either way, done
                    Err(e) => e.kind() != io::ErrorKind::WouldBlock,
                };
                if gone {
                    if let Some(mut s) = self.sockets[slot].take() {
                        let _ = self.poll.registry().deregister(&mut s);
                    }
                    closed.push(slot);
                }
            }
        }
        (newly_connected, closed)
    }
}

fn run(o: Options) -> Result<(), String> {
    sockets::raise_fd_limit();
    let mut flood = Flood {
        poll: Poll::new().map_err(|e| e.to_string())?,
        sockets: (0..o.silent).map(|_| None).collect(),
        addr: o.addr,
        sources: o.sources,
        connected: vec![false; o.silent],
    };
    let mut events = Events::with_capacity(4096);
    let (mut connected, mut closed_by_server) = (0usize, 0u64);
    // Opened in waves, so that the listen backlog is not what limits the flood.
    const WAVE: usize = 500;
    let started = Instant::now();
    for slot in 0..o.silent {
        flood
            .open(slot)
            .map_err(|e| format!("silent socket {slot}: {e}"))?;
        if slot % WAVE == WAVE - 1 {
            let (new, closed) = flood.pump(&mut events, Duration::from_millis(10));
            connected += new;
            closed_by_server += closed.len() as u64;
        }
    }
    while connected < o.silent - closed_by_server as usize
        && started.elapsed() < Duration::from_secs(30)
    {
        let (new, closed) = flood.pump(&mut events, Duration::from_millis(100));
        connected += new;
        closed_by_server += closed.len() as u64;
    }
    // A moment for the server to accept the last ones.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_millis(500) {
        let (new, closed) = flood.pump(&mut events, Duration::from_millis(50));
        connected += new;
        closed_by_server += closed.len() as u64;
    }
    let flood_ready = connected;

    // The flood is held (and, with --reopen, kept at size) while the real clients run.
    let stop = Arc::new(AtomicBool::new(false));
    let closed_total = Arc::new(AtomicU64::new(closed_by_server));
    let holder = {
        let (stop, closed_total, reopen) = (Arc::clone(&stop), Arc::clone(&closed_total), o.reopen);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (_, closed) = flood.pump(&mut events, Duration::from_millis(20));
                closed_total.fetch_add(closed.len() as u64, Ordering::Relaxed);
                if reopen {
                    for slot in closed {
                        let _ = flood.open(slot);
                    }
                }
            }
            flood.sockets.iter().filter(|s| s.is_some()).count()
        })
    };
    let options = ClientOptions {
        ca: Some(o.ca.clone()),
        ..ClientOptions::default()
    };
    let clients_started = Instant::now();
    let per_thread = o.clients.div_ceil(o.threads);
    let workers: Vec<_> = (0..o.threads)
        .map(|t| {
            let (options, addr) = (options.clone(), o.addr);
            let count = per_thread.min(o.clients.saturating_sub(t * per_thread));
            std::thread::spawn(move || {
                let mut results = Vec::new();
                for _ in 0..count {
                    let began = Instant::now();
                    let served = Session::connect(&addr.ip().to_string(), addr.port(), &options)
                        .map_err(|e| e.to_string())
                        .and_then(|mut s| s.request("+ 2 3").map_err(|e| e.to_string()))
                        .map(|answer| answer == "OK 5");
                    results.push((served, began.elapsed()));
                }
                results
            })
        })
        .collect();
    let mut took = Vec::new();
    let (mut served, mut failures) = (0usize, std::collections::BTreeMap::<String, usize>::new());
    for worker in workers {
        for (result, elapsed) in worker.join().map_err(|_| "a client thread panicked")? {
            took.push(elapsed);
            match result {
                Ok(true) => served += 1,
                Ok(false) => *failures.entry("wrong answer".into()).or_default() += 1,
                Err(e) => *failures.entry(e).or_default() += 1,
            }
        }
    }
    let clients_took = clients_started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let still_open = holder.join().map_err(|_| "the flood thread panicked")?;
    took.sort_unstable();
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e3);
    println!(
        "silent {flood_ready}/{} connected from {} addresses; real clients served {served}/{} ({:.1}%) \
         in {:.2} s, each p50 {:.1} ms p99 {:.1} ms max {:.1} ms; silent sockets closed by the server {} \
         (still open {still_open}{})",
        o.silent,
        o.sources,
        o.clients,
        100.0 * served as f64 / o.clients.max(1) as f64,
        clients_took.as_secs_f64(),
        ms(took.get(took.len() / 2)),
        ms(took.get(took.len() * 99 / 100)),
        ms(took.last()),
        closed_total.load(Ordering::Relaxed),
        if o.reopen { ", reopened" } else { "" },
    );
    for (why, n) in failures {
        println!("  not served {n}: {why}");
    }
    Ok(())
}
