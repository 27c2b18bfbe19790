//! The chat room across instances, the IO half (`--chat-redis`, worker 0 only): two
//! non-blocking connections to Redis registered with this reactor's poll, one subscribed to the
//! channel, one publishing to it, spoken in RESP through the sans-IO `redis-protocol` codec.
//! Redis is never waited on: a connection that is not there yet, is slow, or breaks leaves the
//! local room as it is (`event=bus-down`), and is tried again with backoff until it is back
//! (`event=bus-up`). What the messages mean is `cluster.rs`.
//!
//! Flow: this instance's room lines (published here or arriving from the other workers) go out
//! as `PUBLISH`; `message` frames from the subscription become room lines for the local members,
//! through `Service::on_room_line` here and the usual room path to the other workers.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::encode::encode_borrowed;
use redis_protocol::resp2::types::{BorrowedFrame, OwnedFrame};
use rustls::pki_types::ServerName;

use super::history::{HISTORY_BYTES, History};
use super::retry::Retry;
use crate::bus::{Directory, RoomLine, SharedClock};
use crate::cluster::{HEARTBEAT, Presence, RedisUrl};
use crate::log::{Log, Value};
use crate::outbox::ConnId;

pub(crate) const SUBSCRIBER_TOKEN: Token = Token(ConnId::MAX_SLOTS - 3);
pub(crate) const PUBLISHER_TOKEN: Token = Token(ConnId::MAX_SLOTS - 4);

/// Unsent `PUBLISH`es past this mean Redis is not keeping up: the link is dropped (and tried
/// again), rather than letting the backlog grow or the room wait. Room for a whole history
/// resent after an outage, and what comes meanwhile.
const MAX_BACKLOG: usize = 2 * HISTORY_BYTES + (4 << 20);
/// A frame larger than this from Redis is no chat message.
const MAX_FRAME: usize = 1 << 20;
/// A Redis that does not answer this long is down: the handshake (AUTH, SUBSCRIBE, PUBLISH) not
/// answered since the connection opened, or, once up, our own heartbeat (published each
/// [`HEARTBEAT`]) not back through the subscription. So a stalled Redis is `bus-down` within
/// this plus one heartbeat: under the 5 s of the contract.
const STALL_LIMIT: Duration = Duration::from_secs(3);
/// Redis's clock is read (`TIME`) in the handshake and then this often, so that a claim's
/// place on it never rests on our monotonic clock's drift over more than a minute.
const CLOCK_READ_EVERY: Duration = Duration::from_secs(60);
/// Our wall clock this far from Redis's is logged (`event=clock-skew`), and again when the
/// difference moves by as much: it decides nothing (Redis's clock orders the claims), but an
/// operator wants to know. Far above the round trip a reading carries as its error.
const CLOCK_SKEW_NOTED_MS: i64 = 1000;

/// What a reply of the publisher's connection answers, in the order sent.
#[derive(Debug, Clone, Copy)]
enum Owed {
    /// A `PUBLISH` of our line with this number (0: a message that is not a line).
    Publish(u64),
    /// A `TIME` asked then.
    Time(Instant),
}

/// One connection to Redis.
struct Side {
    stream: TcpStream,
    connected: bool,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Replies to the handshake (AUTH, then SUBSCRIBE or PUBLISH) not yet in: the side is ready
    /// at zero.
    handshake_owed: usize,
    /// `rediss://`: the TLS session the RESP goes through.
    tls: Option<rustls::ClientConnection>,
}

pub struct RedisBus {
    url: RedisUrl,
    addr: SocketAddr,
    /// `rediss://`: the TLS set-up, and the name Redis's certificate must carry.
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    presence: Presence,
    subscriber: Option<Side>,
    publisher: Option<Side>,
    /// Subscribed, and able to publish.
    up: bool,
    /// When the connections were opened (the handshake must be answered within STALL_LIMIT)
    /// or came up (our heartbeat must come back within it).
    since: Instant,
    /// Whether the start is past: the bus came up, or stderr said why it did not (once).
    start_reported: bool,
    /// The backoff, and which `bus-down`/`bus-up` lines to write.
    retry: Retry,
    retry_at: Option<Instant>,
    next_heartbeat: Instant,
    /// When to look again whether Redis still answers.
    stall_check_at: Instant,
    /// This instance's numbered lines, kept for resending.
    history: History,
    /// The commands of the publisher Redis has yet to answer, in order.
    unanswered: VecDeque<Owed>,
    /// Where Redis's clock is read and pinned, for who took a name first.
    room: Arc<Directory>,
    next_clock_read: Instant,
    /// Redis's clock minus our wall clock as last logged (0: not logged).
    logged_skew_ms: i64,
    /// The message being published, kept for the next one.
    payload: Vec<u8>,
}

impl RedisBus {
    /// Resolves the address once, at start (a name lookup would block the reactor later).
    pub(crate) fn new(
        url: RedisUrl,
        room: Arc<Directory>,
        now: Instant,
    ) -> Result<RedisBus, String> {
        let tls = match url.tls {
            true => Some(redis_tls(&url)?),
            false => None,
        };
        // The same resolution, and the same words, as every other address the server is given.
        let addr = crate::addr::resolve(&url.host, url.port)
            .map_err(|why| format!("--chat-redis: {why}"))?[0];
        let me = format!(
            "{:x}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        Ok(RedisBus {
            url,
            addr,
            tls,
            presence: Presence::new(me, Arc::clone(&room)),
            subscriber: None,
            publisher: None,
            up: false,
            since: now,
            start_reported: false,
            retry: Retry::default(),
            retry_at: Some(now),
            next_heartbeat: now,
            stall_check_at: now,
            history: History::new(),
            unanswered: VecDeque::new(),
            payload: Vec::new(),
            room,
            next_clock_read: now,
            logged_skew_ms: 0,
        })
    }

    /// Timers: (re)connecting, the heartbeat, and the other instances' silence. Returns when
    /// it wants to be called again.
    pub(crate) fn tick(
        &mut self,
        registry: &Registry,
        now: Instant,
        log: &mut Log,
        deliver: &mut Vec<RoomLine>,
    ) -> Instant {
        if self.retry_at.is_some_and(|at| now >= at) {
            self.retry_at = None;
            self.connect(registry, now, log);
        }
        if self.subscriber.is_some() {
            let answered = match self.up {
                true => self
                    .presence
                    .link_alive_at()
                    .map_or(self.since, |at| at.max(self.since)),
                false => self.since,
            };
            if let (true, Some(alive)) = (self.up, self.presence.link_alive_at()) {
                self.retry.carried(alive);
            }
            if now.duration_since(answered) >= STALL_LIMIT {
                let why = match self.up {
                    true => "Redis stopped answering (our heartbeat did not come back within 3 s)",
                    false => "Redis did not answer within 3 s",
                };
                self.down(why, registry, now, log);
            } else {
                self.stall_check_at = answered + STALL_LIMIT;
            }
        }
        if self.up
            && now >= self.next_clock_read
            && let Some(publisher) = self.publisher.as_mut()
        {
            command(&mut publisher.output, [b"TIME"]);
            self.unanswered.push_back(Owed::Time(now));
            self.next_clock_read = now + CLOCK_READ_EVERY;
        }
        if self.up && now >= self.next_heartbeat {
            self.next_heartbeat = now + HEARTBEAT;
            let beat = self.presence.heartbeat(self.history.last_number());
            self.publish_payload(&beat, 0, registry, now, log);
        }
        self.history.trim(now);
        self.presence.expire(deliver);
        let mut next = now + HEARTBEAT;
        for at in [self.retry_at, self.presence.next_expiry()]
            .into_iter()
            .flatten()
        {
            next = next.min(at);
        }
        if self.up {
            next = next.min(self.next_heartbeat);
        }
        if self.subscriber.is_some() {
            next = next.min(self.stall_check_at);
        }
        next
    }

    fn connect(&mut self, registry: &Registry, now: Instant, log: &mut Log) {
        let open = |token| -> Result<Side, String> {
            let tls = match &self.tls {
                Some((config, name)) => Some(
                    rustls::ClientConnection::new(Arc::clone(config), name.clone())
                        .map_err(|e| crate::tls::describe_error(&e))?,
                ),
                None => None,
            };
            let mut stream = TcpStream::connect(self.addr).map_err(|e| crate::cli::io_words(&e))?;
            registry
                .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                .map_err(|e| crate::cli::io_words(&e))?;
            Ok(Side {
                stream,
                connected: false,
                input: Vec::new(),
                output: Vec::new(),
                handshake_owed: 0,
                tls,
            })
        };
        match (open(SUBSCRIBER_TOKEN), open(PUBLISHER_TOKEN)) {
            (Ok(mut subscriber), Ok(mut publisher)) => {
                // AUTH first on both: Redis answers everything else with NOAUTH until then.
                for side in [&mut subscriber, &mut publisher] {
                    match (&self.url.user, &self.url.password) {
                        (Some(user), Some(password)) => {
                            command(
                                &mut side.output,
                                [b"AUTH", user.as_bytes(), password.as_bytes()],
                            );
                            side.handshake_owed += 1;
                        }
                        (None, Some(password)) => {
                            command(&mut side.output, [b"AUTH", password.as_bytes()]);
                            side.handshake_owed += 1;
                        }
                        _ => {}
                    }
                }
                command(
                    &mut subscriber.output,
                    [b"SUBSCRIBE", self.url.channel.as_bytes()],
                );
                // Redis's clock, the order of the name claims (SPEC "Who took a name first").
                command(&mut publisher.output, [b"TIME"]);
                publisher.handshake_owed += 1;
                // The publisher is ready once Redis took a PUBLISH to the channel: a Redis that
                // refuses it (an ACL user without it, `READONLY`, `OOM`) is refused here, not
                // seen up for a moment at every try. An empty message: every receiver drops
                // it (no instance name), ours included.
                command(
                    &mut publisher.output,
                    [b"PUBLISH", self.url.channel.as_bytes(), b""],
                );
                subscriber.handshake_owed += 1;
                publisher.handshake_owed += 1;
                self.subscriber = Some(subscriber);
                self.publisher = Some(publisher);
                self.since = now;
                self.stall_check_at = now + STALL_LIMIT;
            }
            (Err(e), _) | (_, Err(e)) => self.down(&e, registry, now, log),
        }
    }

    /// A readiness event on one of the two connections.
    pub(crate) fn on_event(
        &mut self,
        token: Token,
        registry: &Registry,
        now: Instant,
        log: &mut Log,
        deliver: &mut Vec<RoomLine>,
    ) {
        let Some(side) = self.side(token) else { return };
        if let Err(why) = side.pump() {
            return self.down(&why, registry, now, log);
        }
        // Everything that came: subscription confirmations, messages, PUBLISH counts. Decoded
        // where they lie and taken off the buffer once, at the end: taking each frame off the
        // front moved the rest of the buffer once per frame, and after an outage the buffer holds
        // megabytes of resent lines (a reactor busy for minutes: the room stood still).
        let mut decoded = 0;
        loop {
            let Some(side) = self.side(token) else { return };
            let frame = match decode(&side.input[decoded..]) {
                Ok(Some((frame, used))) => {
                    decoded += used;
                    frame
                }
                Ok(None) => {
                    side.input.drain(..decoded);
                    if side.input.len() > MAX_FRAME {
                        return self.down("a reply from Redis too long", registry, now, log);
                    }
                    return;
                }
                Err(_) => {
                    return self.down("Redis sent something that is not RESP", registry, now, log);
                }
            };
            if let OwnedFrame::Error(words) = &frame {
                // NOAUTH, WRONGPASS, NOPERM, OOM...: Redis's own words, and try again later.
                let words = words.clone();
                return self.down(&words, registry, now, log);
            }
            if token == SUBSCRIBER_TOKEN {
                self.on_subscriber_frame(frame, now, log, deliver);
            } else if let Some(publisher) = self.publisher.as_mut() {
                if publisher.handshake_owed > 0 {
                    publisher.handshake_owed -= 1;
                    if let Some(millis) = redis_time(&frame) {
                        self.read_clock(millis, self.since, now, log);
                    }
                    self.maybe_up(now, log);
                } else {
                    match self.unanswered.pop_front() {
                        Some(Owed::Publish(number)) => self.history.acknowledged(number),
                        Some(Owed::Time(asked)) => {
                            if let Some(millis) = redis_time(&frame) {
                                self.read_clock(millis, asked, now, log);
                            }
                        }
                        None => {}
                    }
                }
            }
        }
    }

    /// The connection a readiness event is for, while it is open.
    fn side(&mut self, token: Token) -> Option<&mut Side> {
        match token {
            SUBSCRIBER_TOKEN => self.subscriber.as_mut(),
            _ => self.publisher.as_mut(),
        }
    }

    fn on_subscriber_frame(
        &mut self,
        frame: OwnedFrame,
        now: Instant,
        log: &mut Log,
        deliver: &mut Vec<RoomLine>,
    ) {
        let parts = match frame {
            OwnedFrame::Array(parts) => parts,
            OwnedFrame::SimpleString(_) => return self.answered_handshake(), // AUTH's +OK
            _ => return,
        };
        match parts.as_slice() {
            [
                OwnedFrame::BulkString(kind),
                _,
                OwnedFrame::BulkString(payload),
            ] if kind == b"message" => {
                self.presence.on_message(payload, now, deliver);
            }
            [OwnedFrame::BulkString(kind), ..] if kind == b"subscribe" => {
                self.answered_handshake();
                self.maybe_up(now, log);
            }
            _ => {}
        }
    }

    /// A reply to the subscriber's handshake (`+OK` to AUTH, or the subscription).
    fn answered_handshake(&mut self) {
        if let Some(subscriber) = self.subscriber.as_mut() {
            subscriber.handshake_owed = subscriber.handshake_owed.saturating_sub(1);
        }
    }

    /// Both connections answered their handshake: the bus is up.
    fn maybe_up(&mut self, now: Instant, log: &mut Log) {
        let ready = |side: &Option<Side>| side.as_ref().is_some_and(|s| s.handshake_owed == 0);
        if self.up || !ready(&self.subscriber) || !ready(&self.publisher) {
            return;
        }
        self.up = true;
        self.start_reported = true;
        self.since = now;
        self.next_heartbeat = now; // say who is here at once
        // The handshake's reading spans the connection and AUTH too: read again at once, over
        // one round trip, for a reading as close as the link allows.
        self.next_clock_read = now;
        self.presence.bus_up(now);
        if self.retry.up(now) {
            log.line(format_args!(
                "event=bus-up redis={} channel={}",
                self.addr,
                Value(self.url.channel.as_bytes())
            ));
        }
        // What Redis never acknowledged (published while it was away, or lost with the old
        // connection) goes out again, in order; receivers drop what they already had.
        self.resend(self.history.first_unacknowledged());
    }

    /// Our lines from `first` on, published again (after `SKIP` when the oldest are gone).
    fn resend(&mut self, first: u64) {
        let Some(publisher) = self.publisher.as_mut() else {
            return;
        };
        let oldest = self.history.oldest();
        if first < oldest {
            let skip = self.presence.skip(self.history.last_number(), oldest);
            command(
                &mut publisher.output,
                [b"PUBLISH", self.url.channel.as_bytes(), &skip],
            );
            self.unanswered.push_back(Owed::Publish(0));
        }
        let channel = self.url.channel.as_bytes();
        let unanswered = &mut self.unanswered;
        self.history
            .replay(first, &mut self.payload, |number, payload| {
                command(&mut publisher.output, [b"PUBLISH", channel, payload]);
                unanswered.push_back(Owed::Publish(number));
            });
    }

    /// One of this instance's room lines (`JOIN alice\n`), for the other instances.
    pub(crate) fn publish(
        &mut self,
        line: &[u8],
        registry: &Registry,
        now: Instant,
        log: &mut Log,
    ) {
        // Numbered and kept whether the bus is up or not: it goes out when it is back.
        let mut payload = std::mem::take(&mut self.payload);
        let number = self.history.next_number();
        self.presence.outgoing(number, line, &mut payload);
        self.history.record(&payload, now);
        if self.up {
            self.publish_payload(&payload, number, registry, now, log);
        }
        self.payload = payload;
    }

    /// `number`: the line's, or 0 for a message that is not one.
    fn publish_payload(
        &mut self,
        payload: &[u8],
        number: u64,
        registry: &Registry,
        now: Instant,
        log: &mut Log,
    ) {
        let Some(publisher) = self.publisher.as_mut() else {
            return;
        };
        command(
            &mut publisher.output,
            [b"PUBLISH", self.url.channel.as_bytes(), payload],
        );
        self.unanswered.push_back(Owed::Publish(number));
        if publisher.output.len() > MAX_BACKLOG {
            self.down("Redis is not keeping up", registry, now, log);
        }
    }

    /// The end of the turn: what was queued goes out (as far as the sockets take it).
    pub(crate) fn flush(&mut self, registry: &Registry, now: Instant, log: &mut Log) {
        if self.up {
            self.answer_the_channel(registry, now, log);
        }
        let failed = [self.subscriber.as_mut(), self.publisher.as_mut()]
            .into_iter()
            .flatten()
            .find_map(|side| side.write_out().err());
        if let Some(why) = failed {
            self.down(&why, registry, now, log);
        }
    }

    /// Gaps found in the other instances' lines are asked for; lines asked of us are sent again.
    fn answer_the_channel(&mut self, registry: &Registry, now: Instant, log: &mut Log) {
        let mut asks = Vec::new();
        let last = self.history.last_number();
        self.presence.take_asks(last, |ask| asks.push(ask.to_vec()));
        for ask in asks {
            self.publish_payload(&ask, 0, registry, now, log);
        }
        if let Some(first) = self.presence.take_resend() {
            self.resend(first);
        }
        let lost = self.presence.take_lost();
        if lost > 0 {
            log.line(format_args!(
                "event=bus-gap lost={lost} error=\"lines asked for were no longer kept by their sender\""
            ));
        }
    }

    /// Stopping: the others hear `BYE` now rather than after the silence limit.
    pub(crate) fn farewell(&mut self, registry: &Registry, now: Instant, log: &mut Log) {
        if self.up {
            let bye = self.presence.farewell(self.history.last_number());
            self.publish_payload(&bye, 0, registry, now, log);
            self.flush(registry, now, log);
        }
    }

    /// Redis's clock said `millis` to a `TIME` asked at `asked`, answered `now`: pinned to the
    /// middle of the round trip. Our wall clock far from it is logged.
    fn read_clock(&mut self, millis: u64, asked: Instant, now: Instant, log: &mut Log) {
        let at = asked + now.saturating_duration_since(asked) / 2;
        self.room.set_shared_clock(SharedClock::new(millis, at));
        self.next_clock_read = now + CLOCK_READ_EVERY;
        let wall_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let wall_at = wall_now - now.saturating_duration_since(at).as_millis() as i64;
        let skew = millis as i64 - wall_at;
        if (skew - self.logged_skew_ms).abs() >= CLOCK_SKEW_NOTED_MS {
            self.logged_skew_ms = skew;
            log.line(format_args!(
                "event=clock-skew redis={} redis_minus_local_ms={skew} note=\"this machine's clock differs from Redis's; Redis's decides who took a name first\"",
                self.addr
            ));
        }
    }

    /// The link is lost (or never came): the local room goes on alone; try again later.
    fn down(&mut self, why: &str, registry: &Registry, now: Instant, log: &mut Log) {
        for mut side in [self.subscriber.take(), self.publisher.take()]
            .into_iter()
            .flatten()
        {
            let _ = registry.deregister(&mut side.stream);
        }
        if !self.start_reported {
            // Once, at start: a server started by hand says at once why its room is alone.
            eprintln!(
                "securetcp: warning: --chat-redis: no Redis at {}: {why}; serving the local room, retrying",
                self.addr
            );
            self.start_reported = true;
        }
        let down = self.retry.down(why, now);
        match down.line {
            Some(0) => log.line(format_args!(
                "event=bus-down redis={} error={}",
                self.addr,
                Value(why.as_bytes())
            )),
            // Failures since the last line that got none (the same error within a minute).
            Some(unwritten) => log.line(format_args!(
                "event=bus-down redis={} error={} unwritten={unwritten}",
                self.addr,
                Value(why.as_bytes())
            )),
            None => {}
        }
        self.up = false;
        self.unanswered.clear();
        self.retry_at = Some(down.retry_at);
    }
}

impl Side {
    /// Reads what arrived and writes what waits; a closed or failed connection is an error.
    fn pump(&mut self) -> Result<(), String> {
        if !self.connected {
            if let Some(e) = self.stream.take_error().ok().flatten() {
                return Err(crate::cli::io_words(&e));
            }
            match self.stream.peer_addr() {
                Ok(_) => self.connected = true,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
                Err(e) => return Err(crate::cli::io_words(&e)),
            }
        }
        let mut buf = [0u8; 16 * 1024];
        loop {
            let got = match self.tls.as_mut() {
                Some(tls) => tls.read_tls(&mut self.stream),
                None => self.stream.read(&mut buf),
            };
            match got {
                Ok(0) => return Err("Redis closed the connection".into()),
                Ok(n) => match self.tls.as_mut() {
                    None => self.input.extend_from_slice(&buf[..n]),
                    Some(tls) => {
                        tls.process_new_packets()
                            .map_err(|e| format!("TLS: {}", crate::tls::describe_error(&e)))?;
                        loop {
                            match tls.reader().read(&mut buf) {
                                Ok(0) => return Err("Redis closed the connection".into()),
                                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(e) => return Err(crate::cli::io_words(&e)),
                            }
                        }
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(crate::cli::io_words(&e)),
            }
        }
        self.write_out()
    }

    fn write_out(&mut self) -> Result<(), String> {
        if !self.connected {
            return Ok(()); // the writable event that says it connected comes later
        }
        let Some(tls) = self.tls.as_mut() else {
            while !self.output.is_empty() {
                match self.stream.write(&self.output) {
                    Ok(0) => return Err("Redis took no bytes".into()),
                    Ok(n) => {
                        self.output.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(crate::cli::io_words(&e)),
                }
            }
            return Ok(());
        };
        loop {
            // Into the TLS session as far as it takes plaintext (it holds it until the
            // handshake is done), then its records out as far as the socket takes them.
            let moved = match self.output.is_empty() {
                true => 0,
                false => tls
                    .writer()
                    .write(&self.output)
                    .map_err(|e| crate::cli::io_words(&e))?,
            };
            self.output.drain(..moved);
            if !tls.wants_write() {
                if moved == 0 {
                    return Ok(());
                }
                continue;
            }
            match tls.write_tls(&mut self.stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(crate::cli::io_words(&e)),
            }
        }
    }
}

/// `rediss://`: rustls with this server's crypto provider, trusting `--redis-ca` only when
/// given, else the public (webpki) roots; the certificate must name the URL's host. Errors: an
/// unreadable CA file, a host that is no server name (start errors).
fn redis_tls(url: &RedisUrl) -> Result<(Arc<rustls::ClientConfig>, ServerName<'static>), String> {
    let mut roots = rustls::RootCertStore::empty();
    match &url.ca {
        Some(ca) => {
            for cert in crate::tls::load_certs("--redis-ca", ca)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("--redis-ca {}: {e}", ca.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(url.host.clone()).map_err(|_| {
        format!(
            "--chat-redis: {} is no name a certificate can carry",
            url.host
        )
    })?;
    Ok((Arc::new(config), name))
}

/// Redis's answer to `TIME` (seconds and microseconds, as bulk strings) in milliseconds since
/// the Unix epoch; `None` for any other frame.
fn redis_time(frame: &OwnedFrame) -> Option<u64> {
    let OwnedFrame::Array(parts) = frame else {
        return None;
    };
    let [OwnedFrame::BulkString(secs), OwnedFrame::BulkString(micros)] = parts.as_slice() else {
        return None;
    };
    let number = |bytes: &[u8]| std::str::from_utf8(bytes).ok()?.parse::<u64>().ok();
    number(secs)?
        .checked_mul(1000)?
        .checked_add(number(micros)? / 1000)
}

/// A command as RESP (an array of bulk strings), appended to `out` (a buffer that only grows
/// while a backlog builds: no allocation per message once it has).
fn command<const N: usize>(out: &mut Vec<u8>, parts: [&[u8]; N]) {
    let frames = parts.map(BorrowedFrame::BulkString);
    let frame = BorrowedFrame::Array(&frames);
    let at = out.len();
    out.resize(at + frame.encode_len(false), 0);
    // The buffer was sized by the codec itself, so encoding cannot run out of room.
    let written = encode_borrowed(&mut out[at..], &frame, false).unwrap_or(0);
    out.truncate(at + written);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_time_is_read_in_milliseconds() {
        let bulk = |s: &str| OwnedFrame::BulkString(s.as_bytes().to_vec());
        let time = OwnedFrame::Array(vec![bulk("1700000000"), bulk("123999")]);
        assert_eq!(redis_time(&time), Some(1_700_000_000_123));
        for other in [
            OwnedFrame::Integer(1),
            OwnedFrame::Array(vec![bulk("1")]),
            OwnedFrame::Array(vec![bulk("x"), bulk("1")]),
            OwnedFrame::Array(vec![bulk("99999999999999999999"), bulk("1")]),
        ] {
            assert_eq!(redis_time(&other), None, "{other:?}");
        }
    }
}
