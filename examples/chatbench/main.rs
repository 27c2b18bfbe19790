//! Chat fan-out, measured: one sender, K receivers, each message stamped with the time it was
//! sent; the receivers report messages per second and the delivery latency (p50, p99, max).
//!
//! ```text
//! chatbench --send ADDR --receive ADDR [--receivers K] [--rate R] [--secs T] [--ca FILE] [--size B]
//!           [--flooders F] [--flood-size B]
//! chatbench --cluster|--chaos [--members N] [--rate R] [--secs T] [--size B] [--server FILE]
//!           [--workers N] [--unpaced] [--redis-server FILE] [--no-redis-password]
//!           [--kill-at S] [--outage S] [--keep]
//! ```
//!
//! `--flooders F`: F more members (on `--send`'s instance) send lines of `--flood-size` bytes as
//! fast as the server takes them for the whole run, and read what the room sends them; the
//! receivers read the flood too, and measure only the one sender's messages: how long another
//! member's messages take to reach the room while some member floods it.
//!
//! `--send` and `--receive` may name the same instance (one room on one instance) or two
//! instances on one Redis channel (`--chat-redis`): the difference is the cost of the bus.
//! `--rate 0` sends as fast as the server takes the lines. Sender and receivers are blocking
//! clients (the library's `Session`) on threads of their own, on this machine, so the stamps
//! and the receivers' clock are the same clock.
//!
//! `--cluster` starts a cluster of its own (`cluster.rs`): a `redis-server` with a password on a
//! free loopback port and two instances of `--server` (default: the securetcp built beside this
//! example) joined through it; `--members N` on each instance all send numbered, time-stamped
//! messages (`--rate` is the whole room's) and read the room (`room.rs`). It reports, per pair
//! of members on different instances, what was lost, duplicated and reordered, the delay
//! (p50, p99, max), and the CPU time the instances used per message. `--chaos` is the same with
//! Redis killed (SIGKILL) `--kill-at` seconds in (default: a third of the run) and started again
//! on its port `--outage` seconds later (default 3). `--keep` leaves the cluster's directory (the
//! instances' logs) and says where. The exit status is 1 when anything was
//! lost, duplicated or reordered, or a member was announced `LEFT` or sent away. The server paces
//! each chat member at 64 KiB of lines a second (about 1,000 of these messages) unless told
//! otherwise: past that share of `--rate` per member, add members or `--unpaced` (the instances
//! get `--rate-limit 0`, as builds before the pace were).

mod cluster;
mod room;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use securetcp::client::{ClientOptions, Session};

struct Options {
    /// `--cluster` or `--chaos`: a cluster of the bench's own.
    cluster: Option<ClusterOptions>,
    send: SocketAddr,
    receive: SocketAddr,
    receivers: usize,
    rate: f64,
    secs: f64,
    ca: PathBuf,
    size: usize,
    flooders: usize,
    flood_size: usize,
}

struct ClusterOptions {
    chaos: bool,
    members: usize,
    server: PathBuf,
    workers: usize,
    unpaced: bool,
    keep: bool,
    redis_server: PathBuf,
    password: bool,
    /// Seconds into the run; `None`: a third of it.
    kill_at: Option<f64>,
    outage: f64,
    rate: Option<f64>,
    secs: Option<f64>,
}

/// The securetcp built beside this example (`target/release/examples/chatbench` ->
/// `target/release/securetcp`).
fn server_beside() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("securetcp")))
        .unwrap_or_else(|| PathBuf::from("securetcp"))
}

fn parse() -> Result<Options, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = Options {
        cluster: None,
        send: "127.0.0.1:5000".parse().unwrap(),
        receive: "127.0.0.1:5000".parse().unwrap(),
        receivers: 4,
        rate: 5000.0,
        secs: 5.0,
        ca: PathBuf::from("certs/ca.pem"),
        size: 64,
        flooders: 0,
        flood_size: 64,
    };
    let mut c = ClusterOptions {
        chaos: false,
        members: 2,
        server: server_beside(),
        workers: 1,
        unpaced: false,
        keep: false,
        redis_server: PathBuf::from("redis-server"),
        password: true,
        kill_at: None,
        outage: 3.0,
        rate: None,
        secs: None,
    };
    let mut cluster = false;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--cluster" => cluster = true,
            "--chaos" => (cluster, c.chaos) = (true, true),
            "--no-redis-password" => c.password = false,
            "--unpaced" => c.unpaced = true,
            "--keep" => c.keep = true,
            _ => {
                let value = args
                    .get(i + 1)
                    .ok_or(format!("{} needs a value", args[i]))?;
                let bad = || format!("{} {value}: not understood", args[i]);
                match args[i].as_str() {
                    "--send" => o.send = value.parse().map_err(|_| bad())?,
                    "--receive" => o.receive = value.parse().map_err(|_| bad())?,
                    "--receivers" => o.receivers = value.parse().map_err(|_| bad())?,
                    "--rate" => c.rate = Some(value.parse().map_err(|_| bad())?),
                    "--secs" => c.secs = Some(value.parse().map_err(|_| bad())?),
                    "--ca" => o.ca = PathBuf::from(value),
                    "--size" => o.size = value.parse().map_err(|_| bad())?,
                    "--flooders" => o.flooders = value.parse().map_err(|_| bad())?,
                    "--flood-size" => o.flood_size = value.parse().map_err(|_| bad())?,
                    "--members" => c.members = value.parse().map_err(|_| bad())?,
                    "--server" => c.server = PathBuf::from(value),
                    "--workers" => c.workers = value.parse().map_err(|_| bad())?,
                    "--redis-server" => c.redis_server = PathBuf::from(value),
                    "--kill-at" => c.kill_at = Some(value.parse().map_err(|_| bad())?),
                    "--outage" => c.outage = value.parse().map_err(|_| bad())?,
                    other => return Err(format!("unknown option {other}")),
                }
                i += 1;
            }
        }
        i += 1;
    }
    o.rate = c.rate.unwrap_or(o.rate);
    o.secs = c.secs.unwrap_or(o.secs);
    if cluster {
        if c.members == 0 {
            return Err("--members must be at least 1".into());
        }
        o.cluster = Some(c);
    }
    Ok(o)
}

fn connect(addr: SocketAddr, ca: &Path, name: &str) -> Result<Session, String> {
    let options = ClientOptions {
        ca: Some(ca.to_path_buf()),
        ..ClientOptions::default()
    };
    let mut session = Session::connect(&addr.ip().to_string(), addr.port(), &options)
        .map_err(|e| format!("{addr}: {e}"))?;
    let welcome = session
        .request(&format!("name {name}"))
        .map_err(|e| e.to_string())?;
    if !welcome.starts_with("OK") {
        return Err(format!("{name}: {welcome}"));
    }
    Ok(session)
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("chatbench: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(c) = &o.cluster {
        return run_cluster(&o, c);
    }
    let tag = std::process::id();
    let mut receivers = Vec::new();
    for k in 0..o.receivers {
        match connect(o.receive, &o.ca, &format!("r{tag}x{k}")) {
            Ok(s) => receivers.push(s),
            Err(e) => {
                eprintln!("chatbench: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let sender = match connect(o.send, &o.ca, &format!("s{tag}")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("chatbench: {e}");
            return ExitCode::from(1);
        }
    };
    let mut flooders = Vec::new();
    for k in 0..o.flooders {
        match connect(o.send, &o.ca, &format!("f{tag}x{k}")) {
            Ok(s) => flooders.push(s),
            Err(e) => {
                eprintln!("chatbench: {e}");
                return ExitCode::from(1);
            }
        }
    }
    // Everyone is in the room (the JOINs crossed) before the first message.
    std::thread::sleep(Duration::from_millis(1500));
    let start_line = Arc::new(Barrier::new(o.receivers + o.flooders + 1));
    let flood_line = format!("{}\n", "f".repeat(o.flood_size.max(1)));
    let flooded = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for session in flooders {
        let (transport, mut reader) = session.into_parts();
        // What the room sends a flooder is read and dropped (a flooder that does not read is
        // another case: it is cut off as a slow reader).
        std::thread::spawn(move || while let Ok(Some(_)) = reader.read_line() {});
        let (start_line, line, flooded) = (
            Arc::clone(&start_line),
            flood_line.clone().into_bytes(),
            Arc::clone(&flooded),
        );
        // Runs until the process ends (a paused flooder blocks in write).
        std::thread::spawn(move || {
            start_line.wait();
            let batch = line.repeat(64);
            while transport.write_all(&batch).is_ok() {
                flooded.fetch_add(64, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
    let handles: Vec<_> = receivers
        .into_iter()
        .map(|mut session| {
            let start_line = Arc::clone(&start_line);
            let prefix = format!("MSG s{tag} ");
            std::thread::spawn(move || {
                let _ = session.set_read_timeout(Some(Duration::from_secs(10)));
                start_line.wait();
                let mut latencies = Vec::new();
                let mut first_last = None::<(Instant, Instant)>;
                while let Ok(Some(line)) = session.read_line() {
                    let Some(body) = line.strip_prefix(&prefix) else {
                        continue;
                    };
                    if body.starts_with("end") {
                        break;
                    }
                    let sent: u128 = body
                        .split(' ')
                        .nth(1)
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(0);
                    latencies.push((now_ns().saturating_sub(sent)) as u64);
                    let at = Instant::now();
                    first_last = Some(first_last.map_or((at, at), |(f, _)| (f, at)));
                }
                (latencies, first_last)
            })
        })
        .collect();
    // The sender reads what the room sends it (the flood), or it would be cut off as a slow
    // reader.
    let (sender, mut sender_reader) = sender.into_parts();
    std::thread::spawn(move || while let Ok(Some(_)) = sender_reader.read_line() {});
    let send_line = |line: &str| sender.write_all(format!("{line}\n").as_bytes());
    start_line.wait();
    let padding = "x".repeat(o.size.saturating_sub(40));
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed().as_secs_f64() < o.secs {
        if o.rate > 0.0 {
            let due = started + Duration::from_secs_f64(sent as f64 / o.rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        if send_line(&format!("{sent} {} {padding}", now_ns())).is_err() {
            break;
        }
        sent += 1;
    }
    let _ = send_line("end");
    let mut all = Vec::new();
    let mut rates = Vec::new();
    let mut received = 0u64;
    for handle in handles {
        let (latencies, first_last) = handle.join().unwrap_or_default();
        received += latencies.len() as u64;
        if let Some((first, last)) = first_last {
            let span = last.duration_since(first).as_secs_f64().max(1e-9);
            rates.push(latencies.len() as f64 / span);
        }
        all.extend(latencies);
    }
    all.sort_unstable();
    let pick = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |ns| *ns as f64 / 1e6)
    };
    let expected = sent * o.receivers as u64;
    if o.flooders > 0 {
        let lines = flooded.load(std::sync::atomic::Ordering::Relaxed);
        println!(
            "flooders {} sent {lines} lines of {} bytes ({:.0}/s)",
            o.flooders,
            o.flood_size,
            lines as f64 / started.elapsed().as_secs_f64()
        );
    }
    let mean_rate = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
    println!(
        "sent {sent} in {:.2} s ({:.0}/s); delivered {received}/{expected}; per receiver {:.0} msg/s; \
         latency ms p50 {:.3} p99 {:.3} max {:.3}",
        started.elapsed().as_secs_f64(),
        sent as f64 / started.elapsed().as_secs_f64(),
        mean_rate,
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
    ExitCode::SUCCESS
}

/// `--cluster` and `--chaos`: the bench's own Redis and two instances, members on both.
fn run_cluster(o: &Options, c: &ClusterOptions) -> ExitCode {
    let plan = room::Plan {
        rate: c.rate.unwrap_or(if c.chaos { 1000.0 } else { 5000.0 }),
        secs: c.secs.unwrap_or(if c.chaos { 12.0 } else { 5.0 }),
        size: o.size,
        // Past the longest outage the contract covers (10 s) and the reconnection after it.
        drain: Duration::from_secs(20),
    };
    let setup = cluster::Setup {
        server: c.server.clone(),
        redis_server: c.redis_server.clone(),
        workers: c.workers,
        unpaced: c.unpaced,
        keep: c.keep,
        password: c.password.then(|| format!("chatbench-{:x}", now_ns())),
    };
    let mut cluster = match cluster::Cluster::start(&setup) {
        Ok(cluster) => cluster,
        Err(e) => {
            eprintln!("chatbench: {e}");
            return ExitCode::from(1);
        }
    };
    let addrs: Vec<SocketAddr> = cluster.instances.iter().map(|i| i.addr).collect();
    let members = match room::join(&addrs, c.members, &cluster.ca) {
        Ok(members) => members,
        Err(e) => {
            eprintln!("chatbench: {e}");
            return ExitCode::from(1);
        }
    };
    let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
    let instance_of: Vec<usize> = members.iter().map(|m| m.instance).collect();
    println!(
        "cluster: redis-server on 127.0.0.1:{} ({}), 2 instances of {} ({} worker{} each{}), \
         {} members on each; {:.0} msg/s from all members together, {} bytes, {:.1} s",
        cluster.redis_port,
        if c.password {
            "with a password"
        } else {
            "no password"
        },
        c.server.display(),
        c.workers,
        if c.workers == 1 { "" } else { "s" },
        if c.unpaced { ", --rate-limit 0" } else { "" },
        c.members,
        plan.rate,
        o.size,
        plan.secs,
    );
    let kill_at = Duration::from_secs_f64(c.kill_at.unwrap_or(plan.secs / 3.0));
    let outage = Duration::from_secs_f64(c.outage);
    let mut cpu_before = (Vec::new(), Duration::ZERO);
    let mut cpu_after = (Vec::new(), Duration::ZERO);
    let mut chaos_report = None;
    let cluster_cell = std::cell::RefCell::new(&mut cluster);
    let outcome = room::run(
        members,
        &plan,
        || {
            let cluster = cluster_cell.borrow();
            cpu_before = (cluster.instances_cpu(), cluster.redis_cpu());
        },
        |started| {
            if !c.chaos {
                return;
            }
            let mut cluster = cluster_cell.borrow_mut();
            if let Some(wait) = (started + kill_at).checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            cluster.kill_redis();
            let killed = started.elapsed();
            std::thread::sleep(outage);
            let restarted = cluster.start_redis();
            chaos_report = Some((killed, started.elapsed(), restarted));
        },
        || {
            let cluster = cluster_cell.borrow();
            cpu_after = (cluster.instances_cpu(), cluster.redis_cpu());
        },
    );
    let alive = cluster.instances_alive();
    if let Some((killed, answering, restarted)) = &chaos_report {
        if let Err(e) = restarted {
            eprintln!("chatbench: Redis did not start again: {e}");
            return ExitCode::from(1);
        }
        println!(
            "chaos: Redis killed at {:.2} s, answering again at {:.2} s ({:.2} s without Redis); \
             instance A: bus-down {}, bus-up {}; instance B: bus-down {}, bus-up {}",
            killed.as_secs_f64(),
            answering.as_secs_f64(),
            (*answering - *killed).as_secs_f64(),
            cluster.log_count(0, "event=bus-down"),
            cluster.log_count(0, "event=bus-up"),
            cluster.log_count(1, "event=bus-down"),
            cluster.log_count(1, "event=bus-up"),
        );
    }
    let report = report_pairs(&outcome, &names, &instance_of);
    let cpu: Vec<Duration> = cpu_after
        .0
        .iter()
        .zip(&cpu_before.0)
        .map(|(after, before)| after.saturating_sub(*before))
        .collect();
    let messages: u64 = outcome.sent.iter().sum();
    let servers = cpu.iter().sum::<Duration>();
    println!(
        "server CPU (user+system) from the first message until all arrived ({:.2} s): \
         A {:.2} s, B {:.2} s: {:.1} µs per message sent; redis {:.2} s{}",
        outcome.whole.as_secs_f64(),
        cpu.first().copied().unwrap_or_default().as_secs_f64(),
        cpu.get(1).copied().unwrap_or_default().as_secs_f64(),
        servers.as_secs_f64() * 1e6 / messages.max(1) as f64,
        cpu_after.1.saturating_sub(cpu_before.1).as_secs_f64(),
        if c.chaos {
            " (the restarted one only)"
        } else {
            ""
        },
    );
    if !alive {
        println!("FAILED: an instance died during the run");
        return ExitCode::from(1);
    }
    if report.faults > 0 {
        println!("FAILED: {} faults (see above)", report.faults);
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// What the pairs' ledgers add up to.
struct PairsReport {
    /// Lost, duplicated or reordered messages, `LEFT`s of members there all along, members sent
    /// away: anything the contract does not allow.
    faults: u64,
}

/// Prints the run: messages sent, then per pair of members on different instances (and in sum
/// for pairs on one instance) lost, duplicated, reordered and the delay.
fn report_pairs(outcome: &room::Outcome, names: &[String], instance_of: &[usize]) -> PairsReport {
    let messages: u64 = outcome.sent.iter().sum();
    println!(
        "sent {messages} in {:.2} s ({:.0}/s) by {} members",
        outcome.sending.as_secs_f64(),
        messages as f64 / outcome.sending.as_secs_f64().max(1e-9),
        names.len()
    );
    let mut faults = 0;
    let mut delays: Vec<u32> = Vec::new();
    let (mut expected, mut delivered) = (0u64, 0u64);
    let mut sum = [0u64; 3]; // cross-instance lost, duplicated, reordered
    let mut local = [0u64; 3];
    for (receiver, heard) in outcome.heard.iter().enumerate() {
        for (sender, ledger) in heard.ledgers.iter().enumerate() {
            if sender == receiver {
                continue;
            }
            let sent = outcome.sent[sender];
            let counts = [ledger.lost(sent), ledger.duplicated, ledger.reordered];
            faults += counts.iter().sum::<u64>();
            if instance_of[sender] == instance_of[receiver] {
                for (total, n) in local.iter_mut().zip(counts) {
                    *total += n;
                }
                continue;
            }
            for (total, n) in sum.iter_mut().zip(counts) {
                *total += n;
            }
            expected += sent;
            delivered += sent - counts[0];
            let mut pair = ledger.delays_us.clone();
            pair.sort_unstable();
            println!(
                "  {} -> {}: sent {sent}, got {} (lost {}, duplicated {}, reordered {}), \
                 delay ms p50 {:.2} p99 {:.2} max {:.2}{}",
                names[sender],
                names[receiver],
                ledger.received,
                counts[0],
                counts[1],
                counts[2],
                percentile(&pair, 0.5),
                percentile(&pair, 0.99),
                percentile(&pair, 1.0),
                if ledger.ended {
                    ""
                } else {
                    " (its end never came)"
                },
            );
            delays.extend(pair);
        }
        if !heard.left.is_empty() {
            faults += heard.left.len() as u64;
            println!(
                "  {} was told LEFT for members that never left: {}",
                names[receiver],
                heard.left.join(" ")
            );
        }
        if let Some(why) = &heard.ended_early {
            faults += 1;
            println!("  {}'s session ended early: {why}", names[receiver]);
        }
    }
    delays.sort_unstable();
    println!(
        "across instances: {delivered}/{expected} delivered; lost {}, duplicated {}, reordered {}; \
         delay ms p50 {:.2} p99 {:.2} max {:.2}; on one instance: lost {}, duplicated {}, \
         reordered {}",
        sum[0],
        sum[1],
        sum[2],
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        percentile(&delays, 1.0),
        local[0],
        local[1],
        local[2],
    );
    PairsReport { faults }
}

/// The `q` quantile of sorted microseconds, in milliseconds.
fn percentile(sorted: &[u32], q: f64) -> f64 {
    let at = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(at).map_or(0.0, |us| *us as f64 / 1000.0)
}
