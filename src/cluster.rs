//! The chat room across instances (`--chat-redis`), the pure half: what travels on the Redis
//! channel, and who is in the room on the other instances. The sockets and RESP are
//! `room/redis.rs`; this file does no IO and is tested below without Redis.
//!
//! Every message on the channel is `<instance> <number> <what>`, one line of text:
//! - `<instance> 7 JOIN alice`, `... 8 MSG alice hi`, `... 9 LEFT alice`: the room lines of that
//!   instance's members, exactly as its own members got them, numbered 1, 2, 3... per instance
//!   (`room/history.rs` keeps them for resending);
//! - `<instance> 9 HERE 1732912345678:alice ...`: its members with when each logged in
//!   (milliseconds since the Unix epoch on Redis's clock, [`crate::bus::SharedClock`], never
//!   the instance's own), once a second (presence and heartbeat at once), with
//!   the number of its last line, so a receiver also notices a lost last line;
//! - `<instance> 9 RESEND <other> 5`: asks `<other>` for its lines from number 5 on;
//! - `<instance> 9 SKIP 6`: its lines before 6 are no longer kept (an answer to RESEND);
//! - `<instance> 9 BYE`: it stops.
//!
//! Pub/sub delivers at most once; the numbers make it exactly once and in order: a receiver
//! takes an instance's lines only in sequence, drops what it already had, and, at a gap, drops
//! what comes until it has asked for the missing lines and they came (go-back-N).
//!
//! [`Presence`] turns what arrives into room lines for this instance's members, and keeps the
//! other instances' names in the shared [`Directory`] so that `who` and name uniqueness span the
//! room. An instance not heard for [`SILENCE_LIMIT`] while our own heartbeat came back is gone:
//! its members are announced `LEFT`. Names first heard in a `HERE` are announced `JOIN`, so the
//! rooms join again once Redis is back. Before an instance's first `HERE` (we were started after
//! it, or restarted), a `MSG` from a member we have not heard of announces that member and is
//! delivered at once. A name two other instances both list (a restarted
//! instance whose member logged in again before the old run was found silent) is one member:
//! its lines are delivered at once, and it leaves when the last of them lets it go.
//!
//! One name, one member: when a `HERE` lists a name one of our members holds (the two logged in
//! while the rooms were apart), the one who logged in first keeps it (ties: the instance name
//! that sorts first); if that is theirs, ours is told to go ([`crate::bus::taken_elsewhere`]),
//! and its `LEFT` reaches everyone. Each instance decides the same from the same two times, both
//! on Redis's clock: the instances' wall clocks may be hours apart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bus::{Directory, RoomLine};

/// How often an instance says who is here.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// An instance silent this long is gone (its members `LEFT` within 5 s of its death: this,
/// plus at most one heartbeat of scheduling).
pub const SILENCE_LIMIT: Duration = Duration::from_millis(3500);
/// After an outage, how long the other instances have beyond [`SILENCE_LIMIT`] to be heard
/// again: they reconnect on their own backoff, a few seconds apart at worst.
pub const RECONNECT_GRACE: Duration = Duration::from_secs(5);

pub const DEFAULT_CHANNEL: &str = "securetcp:chat";

/// `redis[s]://[[USER]:PASSWORD@]HOST:PORT[/CHANNEL]`, as `redis-cli -u` takes it (the user and
/// password percent-decoded, so `%40` is an `@` and `%2F` a `/`).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    pub host: String,
    pub port: u16,
    pub channel: String,
    /// An ACL user (`AUTH USER PASSWORD`); `None` is Redis's `default` user.
    pub user: Option<String>,
    /// Sent as `AUTH` on both connections before anything else; never logged.
    pub password: Option<String>,
    /// `rediss://`: TLS to Redis.
    pub tls: bool,
    /// `--redis-ca FILE`: the CA Redis's certificate must chain to; `None`: the public roots.
    pub ca: Option<std::path::PathBuf>,
}

/// The environment variable that gives the password without putting it on the command line
/// (where `ps` shows it to every user of the machine).
pub const PASSWORD_VARIABLE: &str = "SECURETCP_REDIS_PASSWORD";

impl std::fmt::Debug for RedisUrl {
    /// Everything but the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("channel", &self.channel)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("tls", &self.tls)
            .field("ca", &self.ca)
            .finish()
    }
}

impl RedisUrl {
    /// Errors: a text that is not such a URL, as a sentence for the usage message (it never
    /// repeats the password).
    pub fn parse(text: &str) -> Result<RedisUrl, String> {
        let shown = match text.rsplit_once('@') {
            Some((_, after)) => format!("redis://...@{after}"),
            None => text.to_string(),
        };
        let bad = || {
            format!(
                "--chat-redis {shown}: expected redis[s]://[[USER]:PASSWORD@]HOST:PORT[/CHANNEL]"
            )
        };
        let (tls, rest) = match (
            text.strip_prefix("redis://"),
            text.strip_prefix("rediss://"),
        ) {
            (Some(rest), _) => (false, rest),
            (_, Some(rest)) => (true, rest),
            _ => return Err(bad()),
        };
        let (authority, channel) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, address) = match authority.rsplit_once('@') {
            Some((credentials, address)) => (Some(credentials), address),
            None => (None, authority),
        };
        let (user, password) = match credentials {
            None => (None, None),
            Some(credentials) => {
                let (user, password) = credentials.split_once(':').ok_or_else(bad)?;
                let user = percent_decode(user).ok_or_else(bad)?;
                let password = percent_decode(password).ok_or_else(bad)?;
                ((!user.is_empty()).then_some(user), Some(password))
            }
        };
        let spec = crate::addr::parse_address("--chat-redis", address).map_err(|_| bad())?;
        let channel = if channel.is_empty() {
            DEFAULT_CHANNEL
        } else {
            channel
        };
        if channel.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        Ok(RedisUrl {
            host: spec.host,
            port: spec.port,
            channel: channel.to_string(),
            user,
            password,
            tls,
            ca: None,
        })
    }

    /// [`PASSWORD_VARIABLE`]'s value, when set, is the password (over one in the URL: the
    /// variable is the way that keeps it out of the process list).
    pub fn with_password_from_env(mut self, value: Option<String>) -> RedisUrl {
        if let Some(password) = value.filter(|p| !p.is_empty()) {
            self.password = Some(password);
        }
        self
    }
}

/// `%XX` escapes decoded; `None` for a bad escape or a result that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// How long a receiver waits for the lines it asked for before asking again.
pub const RESEND_AGAIN: Duration = Duration::from_secs(1);

/// The other instances, as heard on the channel.
#[derive(Debug)]
pub struct Presence {
    me: String,
    room: Arc<Directory>,
    others: HashMap<String, Instance>,
    /// When our own message last came back through the subscription: the link worked then, so
    /// an instance silent since long before is gone, not cut off by the bus.
    link_alive_at: Option<Instant>,
    /// Requests to publish: `(instance, first number wanted)`.
    asks: Vec<(String, u64)>,
    /// Asked of us: our lines from this number on.
    resend_from: Option<u64>,
    /// Lines the other instances no longer had when asked (for the log).
    lost: u64,
}

#[derive(Debug)]
struct Instance {
    /// Its members, as it listed them; each holds its name in the directory (or shares it with
    /// another instance that listed the same name).
    names: Vec<Box<str>>,
    last_heard: Instant,
    /// The number of the next line expected from it.
    next: u64,
    /// When we last asked for the lines of a gap, while it is not filled.
    asked_at: Option<Instant>,
    /// Whether a `HERE` of it came: until then its members are not all known, and a `MSG`
    /// from one we have not heard of is its member (adopted and delivered at once).
    listed: bool,
}

/// What a message from the channel says.
struct Message<'a> {
    from: &'a str,
    number: u64,
    kind: &'a str,
    /// After the kind (`alice hi` of `MSG alice hi`).
    rest: &'a str,
    /// The room line itself (`MSG alice hi`), for the numbered kinds.
    what: &'a str,
}

impl<'a> Message<'a> {
    fn parse(payload: &'a [u8]) -> Option<Message<'a>> {
        let text = std::str::from_utf8(payload).ok()?;
        let (from, rest) = text.split_once(' ')?;
        let (number, what) = rest.split_once(' ').unwrap_or((rest, ""));
        let number = number.parse().ok()?;
        let (kind, rest) = what.split_once(' ').unwrap_or((what, ""));
        (!from.is_empty()).then_some(Message {
            from,
            number,
            kind,
            rest,
            what,
        })
    }

    /// A room line of that instance's members (numbered; the others carry its last number).
    fn is_line(&self) -> bool {
        matches!(self.kind, "JOIN" | "MSG" | "LEFT")
    }
}

impl Presence {
    /// `me` names this instance on the channel (no spaces); `room` is its directory.
    pub fn new(me: String, room: Arc<Directory>) -> Presence {
        Presence {
            me,
            room,
            others: HashMap::new(),
            link_alive_at: None,
            asks: Vec::new(),
            resend_from: None,
            lost: 0,
        }
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    /// When our own message last came back through the subscription.
    pub fn link_alive_at(&self) -> Option<Instant> {
        self.link_alive_at
    }

    /// The bus is up again after an outage: whoever we knew is given until [`SILENCE_LIMIT`]
    /// and [`RECONNECT_GRACE`] from now to be heard again; nobody is `LEFT` for the outage.
    pub fn bus_up(&mut self, now: Instant) {
        self.link_alive_at = None;
        for instance in self.others.values_mut() {
            instance.last_heard = now + RECONNECT_GRACE;
            instance.asked_at = None;
        }
    }

    /// Room line number `number` of ours for the channel, into `payload`:
    /// `JOIN alice\n` -> `<me> 7 JOIN alice`.
    pub fn outgoing(&self, number: u64, line: &[u8], payload: &mut Vec<u8>) {
        use std::io::Write;
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        payload.clear();
        // Writing to a Vec cannot fail.
        let _ = write!(payload, "{} {number} ", self.me);
        payload.extend_from_slice(line);
    }

    /// `<me> <last> HERE alice bob`: this instance's own members (the directory minus the
    /// others').
    pub fn heartbeat(&self, last: u64) -> Vec<u8> {
        use std::fmt::Write;
        let mut payload = format!("{} {last} HERE", self.me);
        for (name, since) in self.room.snapshot() {
            if !self.others.values().any(|o| o.names.contains(&name)) {
                // Writing to a String cannot fail.
                let _ = write!(payload, " {since}:{name}");
            }
        }
        payload.into_bytes()
    }

    /// `<me> <last> BYE`.
    pub fn farewell(&self, last: u64) -> Vec<u8> {
        format!("{} {last} BYE", self.me).into_bytes()
    }

    /// Our requests for missed lines, to publish: `<me> <last> RESEND <instance> <first>`.
    pub fn take_asks(&mut self, last: u64, mut each: impl FnMut(&[u8])) {
        for (instance, first) in self.asks.drain(..) {
            each(format!("{} {last} RESEND {instance} {first}", self.me).as_bytes());
        }
    }

    /// The first of our lines another instance asked for since the last call.
    pub fn take_resend(&mut self) -> Option<u64> {
        self.resend_from.take()
    }

    /// `<me> <last> SKIP <oldest>`: our lines before `oldest` are gone.
    pub fn skip(&self, last: u64, oldest: u64) -> Vec<u8> {
        format!("{} {last} SKIP {oldest}", self.me).into_bytes()
    }

    /// Lines found gone since the last call (asked for, no longer kept by their sender).
    pub fn take_lost(&mut self) -> u64 {
        std::mem::take(&mut self.lost)
    }

    /// A message from the channel; the room lines it means for this instance's members are
    /// pushed to `deliver`. Our own messages come back too: they say the link works.
    pub fn on_message(&mut self, payload: &[u8], now: Instant, deliver: &mut Vec<RoomLine>) {
        let Some(message) = Message::parse(payload) else {
            return;
        };
        if message.from == self.me {
            self.link_alive_at = Some(now);
            return;
        }
        match message.kind {
            "BYE" => return self.forget(message.from, deliver),
            "RESEND" => {
                let asked = message.rest.split_once(' ');
                if let Some((to, first)) = asked
                    && to == self.me
                    && let Ok(first) = first.parse::<u64>()
                {
                    self.resend_from = Some(self.resend_from.map_or(first, |f| f.min(first)));
                }
            }
            _ => {}
        }
        // Expected next: this line, or the one after the last a message of another kind names.
        let expected = match message.is_line() {
            true => message.number,
            false => message.number + 1,
        };
        if !self.others.contains_key(message.from) {
            // Its lines from the first we hear on (a name allocated per instance, not per line).
            let instance = Instance {
                names: Vec::new(),
                last_heard: now,
                next: expected,
                asked_at: None,
                listed: false,
            };
            self.others.insert(message.from.to_string(), instance);
        }
        let Some(instance) = self.others.get_mut(message.from) else {
            return;
        };
        instance.last_heard = now;
        if message.kind == "SKIP" {
            if let Ok(oldest) = message.rest.parse::<u64>()
                && oldest > instance.next
            {
                self.lost += oldest - instance.next;
                instance.next = oldest;
            }
            return;
        }
        // Numbered lines in sequence only; the others only once we have every line before.
        if expected < instance.next {
            return; // had it already (a resend for another instance, or twice)
        }
        if expected > instance.next {
            let ask_again = instance
                .asked_at
                .is_none_or(|at| now.saturating_duration_since(at) >= RESEND_AGAIN);
            if ask_again {
                instance.asked_at = Some(now);
                self.asks.push((message.from.to_string(), instance.next));
            }
            return;
        }
        instance.asked_at = None;
        if message.is_line() {
            instance.next += 1;
        }
        let from = message.from;
        match message.kind {
            "JOIN"
                if crate::service::check_name(message.rest).is_ok()
                    && self.adopt(from, message.rest) =>
            {
                deliver.push(line(&format!("JOIN {}", message.rest)));
            }
            "LEFT" if self.drop_name(from, message.rest) => {
                deliver.push(line(&format!("LEFT {}", message.rest)));
            }
            "MSG" => {
                // `MSG alice text`: from a member we know of, as sent; never a line with a
                // control character (every instance refuses those, but anyone may publish).
                let sender = message.rest.split(' ').next().unwrap_or_default();
                let instance = &self.others[from];
                let known = |instance: &Instance| instance.names.iter().any(|n| &**n == sender);
                if !instance.listed
                    && !known(instance)
                    && crate::service::check_name(sender).is_ok()
                    && self.adopt(from, sender)
                {
                    // An instance whose `HERE` has not come yet (a restarted one, or one we
                    // were started after): its member is delivered at once (SPEC), announced
                    // first. Its `HERE` then confirms the name or lets it go.
                    deliver.push(line(&format!("JOIN {sender}")));
                }
                let known = known(&self.others[from]);
                if known && !crate::line::has_control(message.what) {
                    deliver.push(line(message.what));
                }
            }
            "HERE" => {
                if let Some(instance) = self.others.get_mut(from) {
                    instance.listed = true;
                }
                let listed: Vec<(u64, &str)> = message
                    .rest
                    .split(' ')
                    .filter_map(|item| {
                        let (since, name) = item.split_once(':')?;
                        let since = since.parse().ok()?;
                        crate::service::check_name(name)
                            .is_ok()
                            .then_some((since, name))
                    })
                    .collect();
                for &(since, name) in &listed {
                    if let Some(ours) = self.ours_goes(from, since, name) {
                        deliver.push(crate::bus::taken_elsewhere(&ours));
                    }
                }
                let listed: Vec<&str> = listed.into_iter().map(|(_, name)| name).collect();
                let gone: Vec<Box<str>> = self.others[from]
                    .names
                    .iter()
                    .filter(|n| !listed.contains(&&***n))
                    .cloned()
                    .collect();
                for name in gone {
                    if self.drop_name(from, &name) {
                        deliver.push(line(&format!("LEFT {name}")));
                    }
                }
                for name in listed {
                    if self.adopt(from, name) {
                        deliver.push(line(&format!("JOIN {name}")));
                    }
                }
            }
            _ => {}
        }
    }

    /// Instances not heard for [`SILENCE_LIMIT`] before our own message last came back are
    /// gone: their members leave the room. While the bus is down (or stalled) nobody is.
    pub fn expire(&mut self, deliver: &mut Vec<RoomLine>) {
        let Some(alive) = self.link_alive_at else {
            return;
        };
        let silent: Vec<String> = self
            .others
            .iter()
            .filter(|(_, o)| alive.saturating_duration_since(o.last_heard) >= SILENCE_LIMIT)
            .map(|(id, _)| id.clone())
            .collect();
        for id in silent {
            self.forget(&id, deliver);
        }
    }

    /// When the next instance would expire if our heartbeat keeps coming back, if any.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.others
            .values()
            .map(|o| o.last_heard + SILENCE_LIMIT)
            .min()
    }

    fn forget(&mut self, id: &str, deliver: &mut Vec<RoomLine>) {
        let Some(instance) = self.others.get(id) else {
            return;
        };
        for name in instance.names.clone() {
            if self.drop_name(id, &name) {
                deliver.push(line(&format!("LEFT {name}")));
            }
        }
        self.others.remove(id);
    }

    /// `from` lists `name`, logged in at `since`: when one of our members holds it (by
    /// [`crate::proto::name::NameKey`]) and logged in later (ties: the instance name that sorts
    /// first keeps it), the name ours holds, for it to go.
    fn ours_goes(&self, from: &str, since: u64, name: &str) -> Option<Box<str>> {
        let (held, our_since) = self.room.holder(name)?;
        let remote = self.others.values().any(|o| o.names.contains(&held));
        (!remote && (since, from) < (our_since, self.me.as_str())).then_some(held)
    }

    /// Whether another instance than `except` lists `name`.
    fn listed_elsewhere(&self, except: &str, name: &str) -> bool {
        self.others
            .iter()
            .any(|(id, o)| id != except && o.names.iter().any(|n| &**n == name))
    }

    /// `from` lists `name`: true when that is news to this room (announce `JOIN`). A name
    /// another instance already holds for the room is shared (one member to us, delivered
    /// at once); a name of ours is not taken over.
    fn adopt(&mut self, from: &str, name: &str) -> bool {
        if self.others[from].names.iter().any(|n| &**n == name) {
            return false;
        }
        let shared = self.listed_elsewhere(from, name);
        if !shared && !self.room.claim(name) {
            return false; // ours
        }
        if let Some(instance) = self.others.get_mut(from) {
            instance.names.push(name.into());
        }
        !shared
    }

    /// `from` no longer lists `name`: true when nobody else does (announce `LEFT`).
    fn drop_name(&mut self, from: &str, name: &str) -> bool {
        let Some(instance) = self.others.get_mut(from) else {
            return false;
        };
        let Some(i) = instance.names.iter().position(|n| &**n == name) else {
            return false;
        };
        instance.names.remove(i);
        if self.listed_elsewhere(from, name) {
            return false;
        }
        self.room.release(name);
        true
    }
}

fn line(text: &str) -> RoomLine {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(b'\n');
    RoomLine::from(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::SharedClock;

    fn texts(lines: &[RoomLine]) -> Vec<String> {
        lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).trim_end().to_string())
            .collect()
    }

    #[test]
    fn urls() {
        let url = RedisUrl::parse("redis://127.0.0.1:6379").unwrap();
        assert_eq!((url.port, url.channel.as_str()), (6379, DEFAULT_CHANNEL));
        let url = RedisUrl::parse("redis://[::1]:7000/room-2").unwrap();
        assert_eq!((url.host.as_str(), url.channel.as_str()), ("::1", "room-2"));
        assert!(RedisUrl::parse("http://x:1").is_err());
        assert!(RedisUrl::parse("redis://nohost").is_err());
        assert_eq!((url.user, url.password, url.tls), (None, None, false));
    }

    #[test]
    fn urls_with_a_password_or_an_acl_user() {
        let url = RedisUrl::parse("redis://:s3cret@127.0.0.1:6379/room").unwrap();
        assert_eq!(
            (url.user.as_deref(), url.password.as_deref()),
            (None, Some("s3cret"))
        );
        assert_eq!((url.port, url.channel.as_str()), (6379, "room"));
        let url = RedisUrl::parse("rediss://chat:p%40ss%2Fw@redis.example:6380").unwrap();
        assert_eq!(url.user.as_deref(), Some("chat"));
        assert_eq!(url.password.as_deref(), Some("p@ss/w"));
        assert!(url.tls);
        assert_eq!(url.host, "redis.example");
        // The password is never shown: not in an error, not in Debug.
        let error = RedisUrl::parse("redis://:hunter2@nohost").unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
        let url = RedisUrl::parse("redis://:hunter2@h:1").unwrap();
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(RedisUrl::parse("redis://nocolon@h:1").is_err());
        assert!(RedisUrl::parse("redis://:%zz@h:1").is_err());
        // The environment variable gives (or overrides) the password.
        let url = url.with_password_from_env(Some("from-env".into()));
        assert_eq!(url.password.as_deref(), Some("from-env"));
        let url = RedisUrl::parse("redis://h:1")
            .unwrap()
            .with_password_from_env(None);
        assert_eq!(url.password, None);
    }

    #[test]
    fn the_other_instances_members_join_talk_and_leave() {
        let room = Directory::new();
        assert!(room.claim("alice")); // ours
        let mut presence = Presence::new("A".into(), Arc::clone(&room));
        let now = Instant::now();
        let mut got = Vec::new();
        presence.on_message(b"B 1 JOIN bob", now, &mut got);
        presence.on_message(b"B 2 MSG bob hi there", now, &mut got);
        presence.on_message(b"A 1 MSG alice my own echo", now, &mut got);
        presence.on_message(b"B 2 HERE 1:bob", now, &mut got);
        presence.on_message(b"B 3 MSG mallory not a member", now, &mut got);
        presence.on_message(b"B 4 MSG bob hi\rMSG admin forged", now, &mut got);
        assert_eq!(texts(&got), ["JOIN bob", "MSG bob hi there"]);
        assert_eq!(room.list(), "alice bob");
        assert!(!room.claim("bob"), "a name on another instance is taken");
        let heartbeat = String::from_utf8(presence.heartbeat(0)).unwrap();
        let (_, since) = room.holder("alice").unwrap();
        assert_eq!(heartbeat, format!("A 0 HERE {since}:alice"));
        let mut payload = Vec::new();
        presence.outgoing(7, b"MSG alice x\n", &mut payload);
        assert_eq!(payload, b"A 7 MSG alice x");
        got.clear();
        presence.on_message(b"B 5 LEFT bob", now, &mut got);
        assert_eq!(texts(&got), ["LEFT bob"]);
        assert_eq!(room.list(), "alice");
    }

    #[test]
    fn names_from_another_instance_are_compared_by_their_key() {
        let room = Directory::new();
        assert!(room.claim("alice")); // ours
        let mut presence = Presence::new("A".into(), Arc::clone(&room));
        let now = Instant::now();
        let mut got = Vec::new();
        presence.on_message(b"B 1 JOIN Alice", now, &mut got);
        presence.on_message(
            "B 1 HERE 1:bob 99999999999999:\u{0430}lice 1:a\u{200B}b".as_bytes(),
            now,
            &mut got,
        );
        presence.on_message(b"B 2 JOIN Bob", now, &mut got);
        assert_eq!(texts(&got), ["JOIN bob"]);
        assert_eq!(room.list(), "alice bob");
        assert!(!room.claim("BOB"), "bob of the other instance has it");
    }

    #[test]
    fn heartbeats_bring_members_back_and_silence_sends_them_away() {
        let room = Directory::new();
        let mut presence = Presence::new("A".into(), Arc::clone(&room));
        let start = Instant::now();
        let mut got = Vec::new();
        presence.on_message(b"B 0 HERE 1:bob 1:carol", start, &mut got);
        presence.on_message(b"B 0 HERE 1:bob 1:carol", start + HEARTBEAT, &mut got);
        assert_eq!(texts(&got), ["JOIN bob", "JOIN carol"]);
        got.clear();
        presence.on_message(b"B 0 HERE 1:carol", start + HEARTBEAT * 2, &mut got);
        assert_eq!(texts(&got), ["LEFT bob"]);
        got.clear();
        presence.on_message(
            b"A 0 HERE",
            start + HEARTBEAT * 2 + SILENCE_LIMIT / 2,
            &mut got,
        );
        presence.expire(&mut got);
        assert!(got.is_empty());
        assert_eq!(
            presence.next_expiry(),
            Some(start + HEARTBEAT * 2 + SILENCE_LIMIT)
        );
        presence.on_message(b"A 0 HERE", start + HEARTBEAT * 2 + SILENCE_LIMIT, &mut got);
        presence.expire(&mut got);
        assert_eq!(texts(&got), ["LEFT carol"]);
        assert!(room.is_empty());
        got.clear();
        presence.on_message(b"C 0 HERE 1:dan", start, &mut got);
        presence.on_message(b"C 0 BYE", start, &mut got);
        assert_eq!(texts(&got), ["JOIN dan", "LEFT dan"]);
        assert_eq!(presence.next_expiry(), None);
    }

    #[test]
    fn nobody_leaves_for_an_outage_of_the_bus() {
        let room = Directory::new();
        let mut presence = Presence::new("A".into(), Arc::clone(&room));
        let start = Instant::now();
        let mut got = Vec::new();
        presence.on_message(b"B 0 HERE 1:bob", start, &mut got);
        presence.on_message(b"A 0 HERE", start, &mut got);
        got.clear();
        // The bus is down (or Redis stalled): our heartbeat does not come back, bob stays.
        presence.expire(&mut got);
        assert!(got.is_empty());
        // Back after 10 s: B has the grace to be heard again...
        let back = start + Duration::from_secs(10);
        presence.bus_up(back);
        presence.on_message(b"A 0 HERE", back + SILENCE_LIMIT, &mut got);
        presence.expire(&mut got);
        assert!(got.is_empty(), "{:?}", texts(&got));
        // ...and if it never is, it went away: bob leaves.
        presence.on_message(
            b"A 0 HERE",
            back + SILENCE_LIMIT + RECONNECT_GRACE,
            &mut got,
        );
        presence.expire(&mut got);
        assert_eq!(texts(&got), ["LEFT bob"]);
    }

    #[test]
    fn lines_are_taken_once_in_order_and_a_gap_is_asked_for() {
        let room = Directory::new();
        let mut presence = Presence::new("A".into(), Arc::clone(&room));
        let now = Instant::now();
        let mut got = Vec::new();
        presence.on_message(b"B 1 JOIN bob", now, &mut got);
        presence.on_message(b"B 2 MSG bob one", now, &mut got);
        presence.on_message(b"B 2 MSG bob one", now, &mut got); // twice: once
        // 3 and 4 lost: 5 is dropped, and 3 on is asked for (once per RESEND_AGAIN).
        presence.on_message(b"B 5 MSG bob five", now, &mut got);
        presence.on_message(b"B 6 MSG bob six", now, &mut got);
        let mut asks = Vec::new();
        presence.take_asks(0, |p| asks.push(String::from_utf8_lossy(p).into_owned()));
        assert_eq!(asks, ["A 0 RESEND B 3"]);
        // The resend, with lines already had; then the next ones.
        for message in ["B 2 MSG bob one", "B 3 MSG bob three", "B 4 MSG bob four"] {
            presence.on_message(message.as_bytes(), now, &mut got);
        }
        for message in ["B 5 MSG bob five", "B 6 MSG bob six", "B 7 MSG bob seven"] {
            presence.on_message(message.as_bytes(), now, &mut got);
        }
        assert_eq!(
            texts(&got),
            [
                "JOIN bob",
                "MSG bob one",
                "MSG bob three",
                "MSG bob four",
                "MSG bob five",
                "MSG bob six",
                "MSG bob seven"
            ]
        );
        // A lost last line shows in the heartbeat's number; a gap not filled is asked again.
        got.clear();
        presence.on_message(b"B 8 HERE 1:bob", now, &mut got);
        presence.on_message(b"B 8 HERE 1:bob", now + RESEND_AGAIN / 2, &mut got);
        presence.on_message(b"B 8 HERE 1:bob", now + RESEND_AGAIN, &mut got);
        asks.clear();
        presence.take_asks(0, |p| asks.push(String::from_utf8_lossy(p).into_owned()));
        assert_eq!(asks, ["A 0 RESEND B 8", "A 0 RESEND B 8"]);
        // Gone at the sender: skipped, and counted.
        presence.on_message(b"B 9 SKIP 9", now, &mut got);
        presence.on_message(b"B 9 MSG bob nine", now, &mut got);
        assert_eq!(texts(&got), ["MSG bob nine"]);
        assert_eq!(presence.take_lost(), 1);
        // Asked of us.
        presence.on_message(b"C 0 RESEND A 4", now, &mut got);
        presence.on_message(b"D 0 RESEND A 2", now, &mut got);
        presence.on_message(b"D 0 RESEND B 1", now, &mut got);
        assert_eq!(presence.take_resend(), Some(2));
        assert_eq!(presence.take_resend(), None);
    }

    #[test]
    fn a_restarted_instances_member_is_delivered_at_once() {
        let room = Directory::new();
        let mut presence = Presence::new("A".into(), Arc::clone(&room));
        let now = Instant::now();
        let mut got = Vec::new();
        presence.on_message(b"B 1 JOIN bob", now, &mut got);
        // B was killed; its new run logs bob in again before the old run is found silent.
        presence.on_message(b"B2 0 HERE", now, &mut got);
        presence.on_message(b"B2 1 JOIN bob", now, &mut got);
        presence.on_message(b"B2 2 MSG bob I am back", now, &mut got);
        assert_eq!(texts(&got), ["JOIN bob", "MSG bob I am back"]);
        // The old run goes silent: bob stays, held by the new run.
        got.clear();
        presence.on_message(b"A 0 HERE", now + SILENCE_LIMIT, &mut got);
        presence.on_message(b"B2 2 HERE 1:bob", now + SILENCE_LIMIT, &mut got);
        presence.expire(&mut got);
        assert!(got.is_empty(), "{:?}", texts(&got));
        assert_eq!(room.list(), "bob");
        presence.on_message(b"B2 3 LEFT bob", now, &mut got);
        assert_eq!(texts(&got), ["LEFT bob"]);
        assert!(room.is_empty());
    }

    #[test]
    fn a_member_of_an_instance_not_listed_yet_is_delivered_at_once() {
        let room = Directory::new();
        assert!(room.claim("alice")); // ours
        let mut presence = Presence::new("B2".into(), Arc::clone(&room));
        let now = Instant::now();
        let mut got = Vec::new();
        // We were (re)started while A's carol talks: her lines come before A's first HERE.
        presence.on_message(b"A 57 MSG carol one", now, &mut got);
        presence.on_message(b"A 58 MSG carol two", now, &mut got);
        // A name of ours is not taken over, nor one that breaks the name rules.
        presence.on_message(b"A 59 MSG alice impostor", now, &mut got);
        presence.on_message("A 60 MSG a\u{200B}b x".as_bytes(), now, &mut got);
        assert_eq!(
            texts(&got),
            ["JOIN carol", "MSG carol one", "MSG carol two"]
        );
        assert_eq!(room.list(), "alice carol");
        // Its HERE lists carol: no second JOIN; from then on only its listed members talk.
        got.clear();
        presence.on_message(b"A 60 HERE 1:carol", now, &mut got);
        presence.on_message(b"A 61 MSG dave not listed", now, &mut got);
        presence.on_message(b"A 62 MSG carol three", now, &mut got);
        assert_eq!(texts(&got), ["MSG carol three"]);
        // A member it no longer lists leaves.
        got.clear();
        presence.on_message(b"A 62 HERE", now, &mut got);
        assert_eq!(texts(&got), ["LEFT carol"]);
        assert_eq!(room.list(), "alice");
    }

    #[test]
    fn a_name_held_on_two_instances_stays_with_who_took_it_first() {
        let room = Directory::new();
        room.set_shared_clock(SharedClock::new(1_700_000_000_000, Instant::now()));
        assert!(room.claim("bob")); // ours, logged in while the rooms were apart
        let (_, ours) = room.holder("bob").unwrap();
        let mut presence = Presence::new("A".into(), Arc::clone(&room));
        let now = Instant::now();
        let mut got = Vec::new();
        // B's bob logged in later: ours keeps the name, B's is not announced.
        let later = format!("B 0 HERE {}:Bob", ours + 1);
        presence.on_message(later.as_bytes(), now, &mut got);
        assert!(got.is_empty(), "{:?}", texts(&got));
        // C's bob logged in first: ours is told to go (by the name it holds).
        let first = format!("C 0 HERE {}:BOB", ours - 1);
        presence.on_message(first.as_bytes(), now, &mut got);
        assert_eq!(
            got.iter()
                .map(|l| crate::bus::as_taken_elsewhere(l))
                .collect::<Vec<_>>(),
            [Some("bob")]
        );
        // Once ours has gone, C's is adopted with its next heartbeat.
        got.clear();
        room.release("bob");
        presence.on_message(first.as_bytes(), now, &mut got);
        assert_eq!(texts(&got), ["JOIN BOB"]);
        // The same time: the instance name that sorts first keeps it.
        let room = Directory::new();
        room.set_shared_clock(SharedClock::new(1_700_000_000_000, Instant::now()));
        assert!(room.claim("eve"));
        let (_, ours) = room.holder("eve").unwrap();
        let mut presence = Presence::new("M".into(), Arc::clone(&room));
        got.clear();
        presence.on_message(format!("Z 0 HERE {ours}:eve").as_bytes(), now, &mut got);
        assert!(got.is_empty());
        presence.on_message(format!("B 0 HERE {ours}:eve").as_bytes(), now, &mut got);
        assert_eq!(got.len(), 1);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever arrives on the channel (another program may publish there): no panic,
            /// and once every other instance is silent, the directory holds our names only.
            #[test]
            fn any_channel_traffic_leaves_a_consistent_room(
                messages in prop::collection::vec(
                    prop_oneof![
                        "[AB] [0-4] (JOIN|LEFT|HERE|MSG|BYE|SKIP|RESEND)( [0-9:]{0,2}[a-c0-9]{1,2}){0,3}",
                        any::<Vec<u8>>().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
                    ],
                    0..40,
                ),
            ) {
                let room = Directory::new();
                assert!(room.claim("me"));
                let mut presence = Presence::new("Z".into(), Arc::clone(&room));
                let now = Instant::now();
                let mut got = Vec::new();
                for message in &messages {
                    presence.on_message(message.as_bytes(), now, &mut got);
                }
                presence.on_message(b"Z 0 HERE", now + SILENCE_LIMIT, &mut got);
                presence.expire(&mut got);
                prop_assert_eq!(room.list(), "me");
                prop_assert_eq!(presence.next_expiry(), None);
            }
        }
    }
}
