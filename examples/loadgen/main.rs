//! A non-blocking load generator: many TLS (or plain) connections from one thread, on mio and
//! rustls like the server itself (no async runtime).
//!
//! ```text
//! loadgen rr      --conns C --depth D --secs T   requests/s and latency p50/p99/p99.9
//! loadgen connect --conns C --secs T [--no-resume]   full (or resumed) handshakes/s
//! loadgen hold    --conns N                          hold N connections, then check each answers
//! common: --addr 127.0.0.1:5000  --ca certs/ca.pem  --no-tls  --sources K  --pid PID  --json
//!         --proxy (each connection starts with a PROXY v1 header, for --proxy-protocol servers)
//! ```
//!
//! `--pid` names the server process: its CPU time (from /proc/PID/stat) is reported per request
//! or per connection, and for `hold` its resident memory per connection. `--sources K` spreads the
//! connections over 127.0.0.1 .. 127.0.0.K, so more than one port range's worth can be opened.

mod client;
#[path = "../shared/sockets.rs"]
mod sockets;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use rustls::ClientConfig;

use client::{Client, Pumped};

const REQUEST: &[u8] = b"12 + 42\n";
const REPLY: &str = "OK 54";

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    RequestReply,
    Connect,
    Hold,
}

struct Options {
    mode: Mode,
    addr: SocketAddr,
    conns: usize,
    depth: usize,
    secs: f64,
    tls: Option<Arc<ClientConfig>>,
    sources: u8,
    pid: Option<u32>,
    json: bool,
    /// rr: an open-loop total rate (requests/s) instead of "a new request per reply".
    rate: Option<f64>,
    /// Send a PROXY v1 header first, as a balancer would.
    proxy: bool,
}

fn main() -> ExitCode {
    match parse().and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(1)
        }
    }
}

fn parse() -> Result<Options, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = getopts::Options::new();
    o.optopt(
        "",
        "addr",
        "server address (default 127.0.0.1:5000)",
        "ADDR:PORT",
    );
    o.optopt("", "conns", "connections (default 100)", "C");
    o.optopt(
        "",
        "depth",
        "requests in flight per connection, rr (default 1)",
        "D",
    );
    o.optopt("", "secs", "measured seconds (default 5)", "T");
    o.optopt("", "ca", "CA to trust (default certs/ca.pem)", "FILE");
    o.optflag("", "no-tls", "plain TCP");
    o.optflag("", "proxy", "start each connection with a PROXY v1 header");
    o.optflag(
        "",
        "no-resume",
        "connect: full handshakes only (no session resumption)",
    );
    o.optopt(
        "",
        "sources",
        "spread over 127.0.0.1..127.0.0.K (default 1)",
        "K",
    );
    o.optopt(
        "",
        "pid",
        "the server's PID: report its CPU time and memory",
        "PID",
    );
    o.optflag("", "json", "one JSON object instead of a table");
    o.optopt(
        "",
        "rate",
        "rr: send R requests/s in all (open loop), at most --depth in flight per connection",
        "R",
    );
    let usage = o.usage("Usage: loadgen rr|connect|hold [OPTIONS]");
    let m = o.parse(&args).map_err(|e| format!("{e}\n\n{usage}"))?;
    let mode = match m.free.first().map(String::as_str) {
        Some("rr") => Mode::RequestReply,
        Some("connect") => Mode::Connect,
        Some("hold") => Mode::Hold,
        _ => return Err(usage),
    };
    let num = |name: &str, default: f64| -> Result<f64, String> {
        m.opt_str(name)
            .map(|v| {
                v.parse::<f64>()
                    .map_err(|_| format!("--{name} {v}: not a number"))
            })
            .unwrap_or(Ok(default))
    };
    let tls = if m.opt_present("no-tls") {
        None
    } else {
        let ca = PathBuf::from(
            m.opt_str("ca")
                .unwrap_or_else(|| securetcp::tls::CA_FILE.into()),
        );
        let config = securetcp::tls::client_config(&[&ca], None)?;
        let mut config = (*config).clone();
        if m.opt_present("no-resume") {
            config.resumption = rustls::client::Resumption::disabled();
        } else {
            config.resumption = rustls::client::Resumption::in_memory_sessions(100_000);
        }
        Some(Arc::new(config))
    };
    Ok(Options {
        mode,
        addr: m
            .opt_str("addr")
            .unwrap_or_else(|| "127.0.0.1:5000".into())
            .parse()
            .map_err(|_| "--addr: expected IP:PORT".to_string())?,
        conns: num("conns", 100.0)? as usize,
        depth: (num("depth", 1.0)? as usize).max(1),
        secs: num("secs", 5.0)?,
        tls,
        sources: num("sources", 1.0)?.clamp(1.0, 254.0) as u8,
        proxy: m.opt_present("proxy"),
        pid: m.opt_str("pid").and_then(|p| p.parse().ok()),
        json: m.opt_present("json"),
        rate: m.opt_str("rate").and_then(|r| r.parse().ok()),
    })
}

fn server_cpu(pid: Option<u32>) -> Option<Duration> {
    securetcp::procstat::cpu_time(pid?)
}

fn server_rss_kib(pid: Option<u32>) -> Option<u64> {
    securetcp::procstat::rss_kib(pid?)
}

struct Run {
    poll: Poll,
    clients: Vec<Option<Client>>,
    o: Options,
}

impl Run {
    fn open(&mut self, slot: usize) -> io::Result<()> {
        let source = 1 + (slot % usize::from(self.o.sources)) as u8;
        let mut client = Client::open(self.o.addr, source, &self.o.tls, self.o.proxy)?;
        self.poll.registry().register(
            &mut client.stream,
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        client.write_out(); // the ClientHello, if the connect is already done
        self.clients[slot] = Some(client);
        Ok(())
    }

    fn drop_client(&mut self, slot: usize) {
        if let Some(mut client) = self.clients[slot].take() {
            let _ = self.poll.registry().deregister(&mut client.stream);
            client.close();
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i])
}

fn run(o: Options) -> Result<(), String> {
    sockets::raise_fd_limit();
    let rss_before = server_rss_kib(o.pid);
    let conns = o.conns;
    let mut run = Run {
        poll: Poll::new().map_err(|e| e.to_string())?,
        clients: (0..conns).map(|_| None).collect(),
        o,
    };
    let mut events = Events::with_capacity(4096);
    // Connections are opened in waves so that the server's accept backlog is not overrun.
    const WAVE: usize = 256;
    let mut opened = 0;
    let mut greeted = 0usize;
    let mut latencies: Vec<u32> = Vec::new();
    let mut completed: u64 = 0; // replies (rr) or handshakes (connect)
    let mut errors: u64 = 0;
    let mut measuring_since: Option<Instant> = None;
    let mut cpu_at_start = None;
    let mut checked = 0usize; // hold: connections that answered the final request
    let (mut issued, mut cursor) = (0u64, 0usize); // --rate: requests issued, round-robin position
    let deadline_after = Duration::from_secs_f64(run.o.secs);
    let started = Instant::now();

    loop {
        while opened < conns && opened < greeted + WAVE {
            if run.open(opened).is_err() {
                errors += 1;
            }
            opened += 1;
        }
        // Measurement starts once every connection is up (rr, hold) or at once (connect).
        if measuring_since.is_none() && (run.o.mode == Mode::Connect || greeted >= conns) {
            measuring_since = Some(Instant::now());
            cpu_at_start = server_cpu(run.o.pid);
            if run.o.mode == Mode::Hold {
                std::thread::sleep(Duration::from_millis(500));
                break;
            }
        }
        if let Some(since) = measuring_since {
            if since.elapsed() >= deadline_after {
                break;
            }
        }
        if measuring_since.is_none() && started.elapsed() > Duration::from_secs(60) {
            for (slot, client) in run.clients.iter_mut().enumerate() {
                if let Some(c) = client.as_mut().filter(|c| !c.greeted) {
                    let tls = c
                        .tls
                        .as_ref()
                        .map(|t| (t.is_handshaking(), t.wants_write(), t.wants_read()));
                    eprintln!(
                        "slot {slot}: local {:?} peer {:?} tls (handshaking, wants_write, wants_read) {tls:?}",
                        c.stream.local_addr(),
                        c.stream.peer_addr()
                    );
                }
            }
            return Err(format!(
                "gave up: only {greeted} of {conns} connections greeted"
            ));
        }
        if let (Some(rate), Some(since)) = (run.o.rate, measuring_since) {
            // Open loop: issue what the schedule says is due, round-robin over the connections
            // that have room. A request that finds no room is skipped (the server is behind).
            let due = (rate * since.elapsed().as_secs_f64()) as u64;
            let now = Instant::now();
            let mut tries = 0;
            while issued < due && tries < conns {
                cursor = (cursor + 1) % conns;
                tries += 1;
                if let Some(client) = run.clients[cursor].as_mut() {
                    if client.greeted && client.in_flight.len() < run.o.depth {
                        client.in_flight.push_back(now);
                        let _ = client.send(REQUEST);
                        client.write_out();
                        issued += 1;
                        tries = 0;
                    }
                }
            }
            issued = issued.max(due.saturating_sub(conns as u64)); // do not pile up a backlog
        }
        let tick = if run.o.rate.is_some() {
            Duration::from_micros(200)
        } else {
            Duration::from_millis(100)
        };
        run.poll
            .poll(&mut events, Some(tick))
            .map_err(|e| e.to_string())?;
        for event in events.iter() {
            let slot = event.token().0;
            let Some(client) = run.clients[slot].as_mut() else {
                continue;
            };
            let pumped = match client.pump() {
                Ok(p) => p,
                Err(_) => Pumped::Closed,
            };
            let lines = match pumped {
                Pumped::Lines(lines) => lines,
                Pumped::Closed => {
                    errors += 1;
                    let was_greeted = client.greeted;
                    run.drop_client(slot);
                    // A connection that failed before its greeting is tried again (counted as an
                    // error); in connect mode every slot reconnects anyway.
                    if run.o.mode == Mode::Connect || !was_greeted {
                        let _ = run.open(slot);
                    }
                    continue;
                }
            };
            let now = Instant::now();
            let mut answered = 0;
            for line in lines {
                if !client.greeted {
                    if !line.starts_with("HELLO ") {
                        errors += 1;
                    }
                    client.greeted = true;
                    greeted += 1;
                    match run.o.mode {
                        Mode::RequestReply if run.o.rate.is_some() => {}
                        Mode::RequestReply => {
                            for _ in 0..run.o.depth {
                                client.in_flight.push_back(now);
                                let _ = client.send(REQUEST);
                            }
                        }
                        Mode::Connect => {
                            if measuring_since.is_some() {
                                completed += 1;
                            }
                        }
                        Mode::Hold => {}
                    }
                    continue;
                }
                if line != REPLY {
                    errors += 1;
                }
                client.replies += 1;
                if let Some(sent) = client.in_flight.pop_front() {
                    if measuring_since.is_some() {
                        latencies.push(
                            now.duration_since(sent)
                                .as_micros()
                                .min(u128::from(u32::MAX)) as u32,
                        );
                        completed += 1;
                    }
                }
                answered += 1;
            }
            match run.o.mode {
                Mode::RequestReply if answered > 0 && run.o.rate.is_none() => {
                    // Keep `depth` requests in flight: one new request per reply, in one write.
                    let mut batch = Vec::with_capacity(REQUEST.len() * answered);
                    for _ in 0..answered {
                        client.in_flight.push_back(now);
                        batch.extend_from_slice(REQUEST);
                    }
                    let _ = client.send(&batch);
                    client.write_out();
                }
                Mode::RequestReply => client.write_out(),
                Mode::Connect if client.greeted => {
                    run.drop_client(slot);
                    if run.open(slot).is_err() {
                        errors += 1;
                    }
                }
                _ => client.write_out(),
            }
        }
    }

    let elapsed = measuring_since.map(|s| s.elapsed()).unwrap_or_default();
    let cpu = cpu_at_start
        .zip(server_cpu(run.o.pid))
        .map(|(a, b)| b.saturating_sub(a));
    let rss_held = server_rss_kib(run.o.pid);

    if run.o.mode == Mode::Hold {
        // Every held connection must still answer.
        for client in run.clients.iter_mut().flatten() {
            client.in_flight.push_back(Instant::now());
            let _ = client.send(REQUEST);
            client.write_out();
        }
        let check_started = Instant::now();
        while checked < greeted && check_started.elapsed() < Duration::from_secs(60) {
            run.poll
                .poll(&mut events, Some(Duration::from_millis(100)))
                .map_err(|e| e.to_string())?;
            for event in events.iter() {
                let Some(client) = run.clients[event.token().0].as_mut() else {
                    continue;
                };
                if let Ok(Pumped::Lines(lines)) = client.pump() {
                    for line in lines {
                        if line == REPLY {
                            checked += 1;
                        } else {
                            errors += 1;
                        }
                    }
                }
            }
        }
    }

    latencies.sort_unstable();
    let secs = elapsed.as_secs_f64().max(1e-9);
    let rate = completed as f64 / secs;
    let cpu_per_op_us = cpu
        .filter(|_| completed > 0)
        .map(|c| c.as_secs_f64() * 1e6 / completed as f64);
    let rss_per_conn = rss_before
        .zip(rss_held)
        .filter(|_| greeted > 0)
        .map(|(before, held)| held.saturating_sub(before) as f64 * 1024.0 / greeted as f64);
    let mode = match run.o.mode {
        Mode::RequestReply => "rr",
        Mode::Connect => "connect",
        Mode::Hold => "hold",
    };
    let opt = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.4}"));
    if run.o.json {
        println!(
            "{{\"mode\":\"{mode}\",\"conns\":{conns},\"depth\":{},\"secs\":{secs:.3},\"completed\":{completed},\"rate\":{rate:.1},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"server_cpu_us_per_op\":{},\"server_rss_bytes_per_conn\":{},\"held\":{greeted},\"answered\":{checked},\"errors\":{errors}}}",
            run.o.depth,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            percentile(&latencies, 0.999),
            opt(cpu_per_op_us),
            opt(rss_per_conn),
        );
    } else {
        println!("mode            {mode}");
        println!("connections     {conns} (greeted {greeted})");
        match run.o.mode {
            Mode::RequestReply => {
                println!("depth           {}", run.o.depth);
                println!("requests/s      {rate:.0}  ({completed} in {secs:.2} s)");
                println!(
                    "latency         p50 {:.0} us  p99 {:.0} us  p99.9 {:.0} us",
                    percentile(&latencies, 0.5),
                    percentile(&latencies, 0.99),
                    percentile(&latencies, 0.999)
                );
                println!("server CPU/req  {} us", opt(cpu_per_op_us));
            }
            Mode::Connect => {
                println!("handshakes/s    {rate:.0}  ({completed} in {secs:.2} s)");
                println!("server CPU/conn {} us", opt(cpu_per_op_us));
            }
            Mode::Hold => {
                println!("server RSS/conn {} bytes", opt(rss_per_conn));
                println!("answered        {checked} of {greeted}");
            }
        }
        println!("errors          {errors}");
    }
    if run.o.mode == Mode::Hold && checked < greeted {
        return Err(format!(
            "only {checked} of {greeted} held connections answered"
        ));
    }
    Ok(())
}
