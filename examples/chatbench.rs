//! Chat fan-out, measured: one sender, K receivers, each message stamped with the time it was
//! sent; the receivers report messages per second and the delivery latency (p50, p99, max).
//!
//! ```text
//! chatbench --send ADDR --receive ADDR [--receivers K] [--rate R] [--secs T] [--ca FILE] [--size B]
//!           [--flooders F] [--flood-size B]
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

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use securetcp::client::{ClientOptions, Session};

struct Options {
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

fn parse() -> Result<Options, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = Options {
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
    let mut i = 0;
    while i < args.len() {
        let value = args
            .get(i + 1)
            .ok_or(format!("{} needs a value", args[i]))?;
        let bad = || format!("{} {value}: not understood", args[i]);
        match args[i].as_str() {
            "--send" => o.send = value.parse().map_err(|_| bad())?,
            "--receive" => o.receive = value.parse().map_err(|_| bad())?,
            "--receivers" => o.receivers = value.parse().map_err(|_| bad())?,
            "--rate" => o.rate = value.parse().map_err(|_| bad())?,
            "--secs" => o.secs = value.parse().map_err(|_| bad())?,
            "--ca" => o.ca = PathBuf::from(value),
            "--size" => o.size = value.parse().map_err(|_| bad())?,
            "--flooders" => o.flooders = value.parse().map_err(|_| bad())?,
            "--flood-size" => o.flood_size = value.parse().map_err(|_| bad())?,
            other => return Err(format!("unknown option {other}")),
        }
        i += 2;
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
