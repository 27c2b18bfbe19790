//! The members' run of `--cluster` and `--chaos`: members on both instances, each sending
//! numbered, time-stamped messages at its share of the rate and reading the whole room. What each
//! member got from each other member is kept in a [`Ledger`]: lost, duplicated, reordered, and
//! the delay from the stamp to its arrival (sender and receivers run on this machine: one clock).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use securetcp::client::{ClientOptions, Session};

use crate::now_ns;

/// How long the members may take to see each other in `who` (both instances' buses up).
const JOIN_WAIT: Duration = Duration::from_secs(20);
/// A sequence number past this is no message of this bench.
const MAX_SEQUENCE: u64 = 100_000_000;

/// A member: its name, the instance it is on, its session.
pub struct Member {
    pub name: String,
    pub instance: usize,
    session: Session,
}

/// Logs `per_instance` members into each of `instances` (`a0`, `a1`... on the first, `b0`...
/// on the second), and waits until every member's `who` lists them all.
pub fn join(
    instances: &[SocketAddr],
    per_instance: usize,
    ca: &Path,
) -> Result<Vec<Member>, String> {
    let options = ClientOptions {
        ca: Some(ca.to_path_buf()),
        ..ClientOptions::default()
    };
    let mut members = Vec::new();
    for (instance, addr) in instances.iter().enumerate() {
        for k in 0..per_instance {
            let name = format!("{}{k}", (b'a' + instance as u8) as char);
            let mut session = Session::connect(&addr.ip().to_string(), addr.port(), &options)
                .map_err(|e| format!("{addr}: {e}"))?;
            let _ = session.set_read_timeout(Some(Duration::from_secs(2)));
            let welcome = session
                .request(&format!("name {name}"))
                .map_err(|e| e.to_string())?;
            if !welcome.starts_with("OK") {
                return Err(format!("{name}: {welcome}"));
            }
            members.push(Member {
                name,
                instance,
                session,
            });
        }
    }
    let mut everyone: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    everyone.sort_unstable();
    let everyone = everyone.join(" ");
    let start = Instant::now();
    for member in &mut members {
        loop {
            let session = &mut member.session;
            session.send_line("who").map_err(|e| e.to_string())?;
            let answer = loop {
                match session.read_line() {
                    Ok(Some(line)) if line.starts_with("OK ") => break line,
                    Ok(Some(_)) => continue, // JOINs
                    _ => return Err("a member's session ended while joining".into()),
                }
            };
            let mut listed: Vec<&str> = answer["OK ".len()..].split(' ').collect();
            listed.sort_unstable();
            if listed.join(" ") == everyone {
                break;
            }
            if start.elapsed() > JOIN_WAIT {
                return Err(format!(
                    "the instances never joined: who said {answer:?}, not {everyone:?} \
                     (a build from before Redis passwords needs --no-redis-password)"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(members)
}

/// What one member got from one other member.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Which sequence numbers arrived.
    seen: Vec<bool>,
    /// Arrivals, duplicates included.
    pub received: u64,
    pub duplicated: u64,
    /// Arrivals with a number below one that arrived before (duplicates not counted).
    pub reordered: u64,
    highest: Option<u64>,
    /// Delay from the stamp, in microseconds, of each first arrival.
    pub delays_us: Vec<u32>,
    /// The sender's `end` arrived.
    pub ended: bool,
}

impl Ledger {
    pub fn note(&mut self, sequence: u64, delay_us: u32) {
        self.received += 1;
        let i = sequence as usize;
        if self.seen.len() <= i {
            self.seen.resize(i + 1, false);
        }
        if self.seen[i] {
            self.duplicated += 1;
            return;
        }
        self.seen[i] = true;
        if self.highest.is_some_and(|h| sequence < h) {
            self.reordered += 1;
        }
        self.highest = Some(self.highest.map_or(sequence, |h| h.max(sequence)));
        self.delays_us.push(delay_us);
    }

    /// Of the `sent` messages (numbered 0..sent), how many never arrived.
    pub fn lost(&self, sent: u64) -> u64 {
        let arrived = self.seen.iter().take(sent as usize).filter(|s| **s).count() as u64;
        sent - arrived
    }
}

/// How the members send.
pub struct Plan {
    /// Messages per second from all members together (0: as fast as the servers take them).
    pub rate: f64,
    pub secs: f64,
    /// Bytes of each message's text.
    pub size: usize,
    /// After the last message, how long the last ones may take to arrive.
    pub drain: Duration,
}

/// What one member's reading found.
#[derive(Default)]
pub struct Heard {
    /// By sender (index into the members).
    pub ledgers: Vec<Ledger>,
    /// `LEFT` lines naming a member of the bench: announced gone while it was there.
    pub left: Vec<String>,
    /// The session ended (`BYE`, closed) before the run did.
    pub ended_early: Option<String>,
}

/// The outcome of a run.
pub struct Outcome {
    /// By member: how many messages it sent.
    pub sent: Vec<u64>,
    /// By member: what it heard.
    pub heard: Vec<Heard>,
    /// From the first message to the last sent.
    pub sending: Duration,
    /// From the first message until every member had everything (or the drain ran out).
    pub whole: Duration,
}

/// Runs the members by `plan`. `meanwhile(started)` runs on this thread once the members send
/// (the chaos: Redis killed and started again); `at_start` and `at_end` are called just
/// before the first message and once every member has everything (the CPU readings).
pub fn run(
    members: Vec<Member>,
    plan: &Plan,
    at_start: impl FnOnce(),
    meanwhile: impl FnOnce(Instant),
    at_end: impl FnOnce(),
) -> Outcome {
    let names: Arc<Vec<String>> = Arc::new(members.iter().map(|m| m.name.clone()).collect());
    let count = members.len();
    let per_member = plan.rate / count as f64;
    let started = Instant::now() + Duration::from_millis(200);
    // Milliseconds after `started` at which the readers give up on what has not come.
    let stop_at = Arc::new(AtomicU64::new(u64::MAX));
    let mut senders = Vec::new();
    let mut readers = Vec::new();
    for (me, member) in members.into_iter().enumerate() {
        let (transport, mut reader) = member.session.into_parts();
        let (names, stop_at) = (Arc::clone(&names), Arc::clone(&stop_at));
        readers.push(std::thread::spawn(move || {
            read_room(&mut reader, me, &names, started, &stop_at)
        }));
        let (secs, size) = (plan.secs, plan.size);
        senders.push(std::thread::spawn(move || {
            send_numbered(&transport, per_member, secs, size, started)
        }));
    }
    if let Some(wait) = started.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
    at_start();
    meanwhile(started);
    let sent: Vec<u64> = senders.into_iter().map(|s| s.join().unwrap_or(0)).collect();
    let sending = started.elapsed();
    stop_at.store((sending + plan.drain).as_millis() as u64, Ordering::Relaxed);
    let heard: Vec<Heard> = readers
        .into_iter()
        .map(|r| r.join().unwrap_or_default())
        .collect();
    let whole = started.elapsed();
    at_end();
    Outcome {
        sent,
        heard,
        sending,
        whole,
    }
}

/// Sends `<number> <stamp> <padding>` at `rate` a second (0: as fast as taken) for `secs`, the
/// messages due at once in one write, then `end <count>`; returns how many it sent.
fn send_numbered(
    transport: &securetcp::client::Transport,
    rate: f64,
    secs: f64,
    size: usize,
    started: Instant,
) -> u64 {
    let padding = "x".repeat(size.saturating_sub(30));
    let mut batch = String::new();
    let mut sent = 0u64;
    if let Some(wait) = started.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
    loop {
        let elapsed = started.elapsed().as_secs_f64();
        if elapsed >= secs {
            break;
        }
        let due = match rate > 0.0 {
            true => ((elapsed * rate) as u64 + 1).min(sent + 256),
            false => sent + 64,
        };
        if due <= sent {
            let next = started + Duration::from_secs_f64(sent as f64 / rate);
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            continue;
        }
        batch.clear();
        let stamp = now_ns();
        for number in sent..due {
            batch.push_str(&format!("{number} {stamp} {padding}\n"));
        }
        if transport.write_all(batch.as_bytes()).is_err() {
            return sent;
        }
        sent = due;
    }
    let _ = transport.write_all(format!("end {sent}\n").as_bytes());
    sent
}

/// Reads the room until every other member's `end` came or `stop_at` passed.
fn read_room(
    reader: &mut securetcp::client::LineReader,
    me: usize,
    names: &[String],
    started: Instant,
    stop_at: &AtomicU64,
) -> Heard {
    let mut heard = Heard {
        ledgers: (0..names.len()).map(|_| Ledger::default()).collect(),
        ..Heard::default()
    };
    let mut waiting_for = names.len() - 1;
    while waiting_for > 0 {
        if started.elapsed().as_millis() as u64 >= stop_at.load(Ordering::Relaxed) {
            break;
        }
        let line = match reader.read_line() {
            Ok(Some(line)) => line,
            Ok(None) => {
                heard.ended_early = Some("the session ended".into());
                break;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => {
                heard.ended_early = Some(e.to_string());
                break;
            }
        };
        let arrived = now_ns();
        if let Some(name) = line.strip_prefix("LEFT ") {
            if names.iter().any(|n| n == name) {
                heard.left.push(name.to_string());
            }
            continue;
        }
        if line.starts_with("BYE") {
            heard.ended_early = Some(line);
            break;
        }
        let Some(rest) = line.strip_prefix("MSG ") else {
            continue;
        };
        let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
        let Some(from) = names.iter().position(|n| n == name) else {
            continue;
        };
        if from == me {
            continue;
        }
        let ledger = &mut heard.ledgers[from];
        if text.starts_with("end ") {
            if !ledger.ended {
                ledger.ended = true;
                waiting_for -= 1;
            }
            continue;
        }
        let mut fields = text.split(' ');
        let number = fields.next().and_then(|n| n.parse::<u64>().ok());
        let stamp = fields.next().and_then(|s| s.parse::<u128>().ok());
        if let (Some(number), Some(stamp)) = (number, stamp) {
            if number < MAX_SEQUENCE {
                let delay_us = (arrived.saturating_sub(stamp) / 1000).min(u32::MAX as u128);
                ledger.note(number, delay_us as u32);
            }
        }
    }
    heard
}
