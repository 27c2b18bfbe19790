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

pub const DEFAULT_CHANNEL: &str = "securetcp:chat";

/// `redis://HOST:PORT[/CHANNEL]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisUrl {
    pub host: String,
    pub port: u16,
    pub channel: String,
}

impl RedisUrl {
    pub fn parse(text: &str) -> Result<RedisUrl, String> {
        let bad = || format!("--chat-redis {text}: expected redis://HOST:PORT[/CHANNEL]");
        let rest = text.strip_prefix("redis://").ok_or_else(bad)?;
        let (address, channel) = rest.split_once('/').unwrap_or((rest, ""));
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
        })
    }
}

/// The other instances, as heard on the channel.
#[derive(Debug)]
pub struct Presence {
    me: String,
    room: Arc<Directory>,
    others: HashMap<String, Instance>,
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
        if from == self.me || from.is_empty() {
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

    /// Instances not heard for [`SILENCE_LIMIT`] are gone: their members leave the room.
    pub fn expire(&mut self, now: Instant, deliver: &mut Vec<RoomLine>) {
        let silent: Vec<String> = self
            .others
            .iter()
            .filter(|(_, o)| now.duration_since(o.last_heard) >= SILENCE_LIMIT)
            .map(|(id, _)| id.clone())
            .collect();
        for id in silent {
            self.forget(&id, deliver);
        }
    }

    /// When the next instance would expire, if any.
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
        presence.expire(start + HEARTBEAT * 2 + SILENCE_LIMIT / 2, &mut got);
        assert!(got.is_empty());
        assert_eq!(
            presence.next_expiry(),
            Some(start + HEARTBEAT * 2 + SILENCE_LIMIT)
        );
        presence.expire(start + HEARTBEAT * 2 + SILENCE_LIMIT, &mut got);
        assert_eq!(texts(&got), ["LEFT carol"]);
        assert!(room.is_empty());
        got.clear();
        presence.on_message(b"C HERE dan", start, &mut got);
        presence.on_message(b"C BYE", start, &mut got);
        assert_eq!(texts(&got), ["JOIN dan", "LEFT dan"]);
        assert_eq!(presence.next_expiry(), None);
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
                presence.expire(now + SILENCE_LIMIT, &mut got);
                prop_assert_eq!(room.list(), "me");
                prop_assert_eq!(presence.next_expiry(), None);
            }
        }
    }
}
