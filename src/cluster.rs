//! The chat room across instances (`--chat-redis`), the pure half: what travels on the Redis
//! channel, and who is in the room on the other instances. The sockets and RESP are
//! `reactor/redis.rs`; this file does no IO and is tested below without Redis.
//!
//! Every message on the channel is `<instance> <what>`, one line of text:
//! - `<instance> JOIN alice`, `<instance> MSG alice hi`, `<instance> LEFT alice`: the room lines
//!   of that instance's members, exactly as its own members got them;
//! - `<instance> HERE alice bob`: its members, once a second (presence and heartbeat at once);
//! - `<instance> BYE`: it stops.
//!
//! [`Presence`] turns what arrives into room lines for this instance's members, and keeps the
//! other instances' names in the shared [`Directory`] so that `who` and name uniqueness span the
//! room. An instance not heard for [`SILENCE_LIMIT`] is gone: its members are announced `LEFT`.
//! Names first heard in a `HERE` (after this instance or that one reconnected) are announced
//! `JOIN`, so the rooms join again once Redis is back.

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

/// The other instances, as heard on the channel.
#[derive(Debug)]
pub struct Presence {
    me: String,
    room: Arc<Directory>,
    others: HashMap<String, Instance>,
    /// When our own message last came back through the subscription: the link worked then, so
    /// an instance silent since long before is gone, not cut off by the bus.
    link_alive_at: Option<Instant>,
}

#[derive(Debug)]
struct Instance {
    /// Its members whose names this instance holds in the directory for it.
    names: Vec<Box<str>>,
    last_heard: Instant,
}

impl Presence {
    /// `me` names this instance on the channel (no spaces); `room` is its directory.
    pub fn new(me: String, room: Arc<Directory>) -> Presence {
        Presence {
            me,
            room,
            others: HashMap::new(),
            link_alive_at: None,
        }
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
        }
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    /// A room line of ours for the channel, into `payload`: `JOIN alice\n` -> `<me> JOIN alice`.
    pub fn outgoing(&self, line: &[u8], payload: &mut Vec<u8>) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        payload.clear();
        payload.extend_from_slice(self.me.as_bytes());
        payload.push(b' ');
        payload.extend_from_slice(line);
    }

    /// `<me> HERE alice bob`: this instance's own members (the directory minus the others').
    pub fn heartbeat(&self) -> Vec<u8> {
        let mut payload = format!("{} HERE", self.me);
        for name in self.room.snapshot() {
            if !self.others.values().any(|o| o.names.contains(&name)) {
                payload.push(' ');
                payload.push_str(&name);
            }
        }
        payload.into_bytes()
    }

    /// `<me> BYE`.
    pub fn farewell(&self) -> Vec<u8> {
        format!("{} BYE", self.me).into_bytes()
    }

    /// A message from the channel; the room lines it means for this instance's members are
    /// pushed to `deliver`. Our own messages come back too, and are skipped.
    pub fn on_message(&mut self, payload: &[u8], now: Instant, deliver: &mut Vec<RoomLine>) {
        let Ok(text) = std::str::from_utf8(payload) else {
            return;
        };
        let Some((from, what)) = text.split_once(' ') else {
            return;
        };
        if from == self.me {
            self.link_alive_at = Some(now);
            return;
        }
        if from.is_empty() {
            return;
        }
        let (kind, rest) = what.split_once(' ').unwrap_or((what, ""));
        if kind == "BYE" {
            return self.forget(from, deliver);
        }
        let instance = self
            .others
            .entry(from.to_string())
            .or_insert_with(|| Instance {
                names: Vec::new(),
                last_heard: now,
            });
        instance.last_heard = now;
        match kind {
            "JOIN"
                if crate::service::check_name(rest).is_ok()
                    && Self::adopt(&self.room, instance, rest) =>
            {
                deliver.push(line(&format!("JOIN {rest}")));
            }
            "LEFT" if Self::drop_name(&self.room, instance, rest) => {
                deliver.push(line(&format!("LEFT {rest}")));
            }
            "MSG" => {
                // `MSG alice text`: from a member we know of, as sent; never a line with a
                // control character (every instance refuses those, but anyone may publish).
                let sender = rest.split(' ').next().unwrap_or_default();
                if instance.names.iter().any(|n| &**n == sender) && !crate::line::has_control(what)
                {
                    deliver.push(line(what));
                }
            }
            "HERE" => {
                let listed: Vec<&str> = rest
                    .split(' ')
                    .filter(|n| crate::service::check_name(n).is_ok())
                    .collect();
                let gone: Vec<Box<str>> = instance
                    .names
                    .iter()
                    .filter(|n| !listed.contains(&&***n))
                    .cloned()
                    .collect();
                for name in gone {
                    Self::drop_name(&self.room, instance, &name);
                    deliver.push(line(&format!("LEFT {name}")));
                }
                for name in listed {
                    if !instance.names.iter().any(|n| &**n == name)
                        && Self::adopt(&self.room, instance, name)
                    {
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
        if let Some(instance) = self.others.remove(id) {
            for name in instance.names {
                self.room.release(&name);
                deliver.push(line(&format!("LEFT {name}")));
            }
        }
    }

    /// Holds `name` in the directory for `instance`; false when the name is taken here (two
    /// instances that logged the same name in while apart: ours keeps it).
    fn adopt(room: &Directory, instance: &mut Instance, name: &str) -> bool {
        if instance.names.iter().any(|n| &**n == name) || !room.claim(name) {
            return false;
        }
        instance.names.push(name.into());
        true
    }

    fn drop_name(room: &Directory, instance: &mut Instance, name: &str) -> bool {
        let Some(i) = instance.names.iter().position(|n| &**n == name) else {
            return false;
        };
        instance.names.remove(i);
        room.release(name);
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
        presence.on_message(b"B JOIN bob", now, &mut got);
        presence.on_message(b"B MSG bob hi there", now, &mut got);
        presence.on_message(b"A MSG alice my own echo", now, &mut got);
        presence.on_message(b"B MSG mallory not a member", now, &mut got);
        presence.on_message(b"B MSG bob hi\rMSG admin forged", now, &mut got);
        assert_eq!(texts(&got), ["JOIN bob", "MSG bob hi there"]);
        assert_eq!(room.list(), "alice bob");
        assert!(!room.claim("bob"), "a name on another instance is taken");
        assert_eq!(presence.heartbeat(), b"A HERE alice");
        let mut payload = Vec::new();
        presence.outgoing(b"MSG alice x\n", &mut payload);
        assert_eq!(payload, b"A MSG alice x");
        got.clear();
        presence.on_message(b"B LEFT bob", now, &mut got);
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
        presence.on_message(b"B JOIN Alice", now, &mut got);
        presence.on_message(
            "B HERE bob \u{0430}lice a\u{200B}b".as_bytes(),
            now,
            &mut got,
        );
        presence.on_message(b"B JOIN Bob", now, &mut got);
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
        presence.on_message(b"B HERE bob carol", start, &mut got);
        presence.on_message(b"B HERE bob carol", start + HEARTBEAT, &mut got);
        assert_eq!(texts(&got), ["JOIN bob", "JOIN carol"]);
        got.clear();
        presence.on_message(b"B HERE carol", start + HEARTBEAT * 2, &mut got);
        assert_eq!(texts(&got), ["LEFT bob"]);
        got.clear();
        presence.on_message(
            b"A HERE",
            start + HEARTBEAT * 2 + SILENCE_LIMIT / 2,
            &mut got,
        );
        presence.expire(&mut got);
        assert!(got.is_empty());
        assert_eq!(
            presence.next_expiry(),
            Some(start + HEARTBEAT * 2 + SILENCE_LIMIT)
        );
        presence.on_message(b"A HERE", start + HEARTBEAT * 2 + SILENCE_LIMIT, &mut got);
        presence.expire(&mut got);
        assert_eq!(texts(&got), ["LEFT carol"]);
        assert!(room.is_empty());
        got.clear();
        presence.on_message(b"C HERE dan", start, &mut got);
        presence.on_message(b"C BYE", start, &mut got);
        assert_eq!(texts(&got), ["JOIN dan", "LEFT dan"]);
        assert_eq!(presence.next_expiry(), None);
    }

    #[test]
    fn nobody_leaves_for_an_outage_of_the_bus() {
        let room = Directory::new();
        let mut presence = Presence::new("A".into(), Arc::clone(&room));
        let start = Instant::now();
        let mut got = Vec::new();
        presence.on_message(b"B HERE bob", start, &mut got);
        presence.on_message(b"A HERE", start, &mut got);
        got.clear();
        // The bus is down (or Redis stalled): our heartbeat does not come back, bob stays.
        presence.expire(&mut got);
        assert!(got.is_empty());
        // Back after 10 s: B has the grace to be heard again...
        let back = start + Duration::from_secs(10);
        presence.bus_up(back);
        presence.on_message(b"A HERE", back + SILENCE_LIMIT, &mut got);
        presence.expire(&mut got);
        assert!(got.is_empty(), "{:?}", texts(&got));
        // ...and if it never is, it went away: bob leaves.
        presence.on_message(b"A HERE", back + SILENCE_LIMIT + RECONNECT_GRACE, &mut got);
        presence.expire(&mut got);
        assert_eq!(texts(&got), ["LEFT bob"]);
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
                        "[AB] (JOIN|LEFT|HERE|MSG|BYE)( [a-c]{1,2}){0,3}",
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
                presence.on_message(b"Z HERE", now + SILENCE_LIMIT, &mut got);
                presence.expire(&mut got);
                prop_assert_eq!(room.list(), "me");
                prop_assert_eq!(presence.next_expiry(), None);
            }
        }
    }
}
