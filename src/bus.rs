//! The room bus: what the chat room needs from the rest of the process so that one room spans
//! every reactor (and, through the same seam, every instance).
//!
//! Two halves, both sans-IO from the chat service's point of view:
//! - the **directory** of names in the room, in join order: `who` reads it, a login claims a name
//!   in it (so a name is unique in the whole room, exactly, even when two workers log the same
//!   name in at once), a departure releases it. Logins and `who` are rare; messages never touch it.
//! - **room lines**: every `JOIN`, `MSG` and `LEFT` a member causes is written once by the chat
//!   service as a line for its local members and published (`Outbox::send_room`, which records a `Publish` action); the reactor hands
//!   published lines to the other workers at the end of its loop turn, and each worker's chat
//!   service gives the lines it receives to its own members (`Service::on_room_line`). One
//!   sender's lines travel one FIFO channel, so they arrive in the order sent.
//!
//! The chat service does not know who is at the other end of either half.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::proto::name::NameKey;

/// A line for every member of the room on another reactor (`MSG alice hi\n`), shared by all
/// receivers: one allocation per published line, however many workers there are.
pub type RoomLine = Arc<[u8]>;

/// The room line that tells the reactor holding a member that its name is another instance's
/// (the two logged in while apart, and that one took it first): `\0taken-elsewhere NAME\n`. It
/// starts with a byte no member's line can hold, so nobody can send it.
const TAKEN_ELSEWHERE: &[u8] = b"\0taken-elsewhere ";

/// The line telling the member called `name` (exactly as claimed) to go.
pub fn taken_elsewhere(name: &str) -> RoomLine {
    let mut line = TAKEN_ELSEWHERE.to_vec();
    line.extend_from_slice(name.as_bytes());
    line.push(b'\n');
    RoomLine::from(line)
}

/// The name a [`taken_elsewhere`] line names, if `line` is one.
pub fn as_taken_elsewhere(line: &[u8]) -> Option<&str> {
    let name = line.strip_prefix(TAKEN_ELSEWHERE)?.strip_suffix(b"\n")?;
    std::str::from_utf8(name).ok()
}

/// The names in the room, in join order, as typed; compared by their [`NameKey`], so that a
/// name that would pass for a member's (`Alice` while `alice` is here) is taken. Each with when
/// it was claimed (milliseconds since the Unix epoch): across instances, the first keeps it.
#[derive(Debug, Default)]
pub struct Directory {
    members: Mutex<Vec<(Box<str>, NameKey, u64)>>,
}

impl Directory {
    pub fn new() -> Arc<Directory> {
        Arc::new(Directory::default())
    }

    fn members(&self) -> MutexGuard<'_, Vec<(Box<str>, NameKey, u64)>> {
        // A panic elsewhere while holding the lock leaves a valid list (every change is one
        // push or one remove), so the poison flag is ignored.
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `name` for a new member; false when someone in the room already has it, or a
    /// name that is the same by [`NameKey`].
    pub fn claim(&self, name: &str) -> bool {
        let key = NameKey::of(name);
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut members = self.members();
        if members.iter().any(|(_, k, _)| k.same_as(&key)) {
            return false;
        }
        members.push((name.into(), key, since_epoch));
        true
    }

    /// True when `name`, or one the same by [`NameKey`], is in the room.
    pub fn is_taken(&self, name: &str) -> bool {
        let key = NameKey::of(name);
        self.members().iter().any(|(_, k, _)| k.same_as(&key))
    }

    /// The name held in the room that is the same as `name` by [`NameKey`], as claimed, and
    /// when it was claimed (milliseconds since the Unix epoch).
    pub fn holder(&self, name: &str) -> Option<(Box<str>, u64)> {
        let key = NameKey::of(name);
        let members = self.members();
        let (held, _, at) = members.iter().find(|(_, k, _)| k.same_as(&key))?;
        Some((held.clone(), *at))
    }

    /// The member with `name` (exactly as claimed) has left.
    pub fn release(&self, name: &str) {
        let mut members = self.members();
        if let Some(i) = members.iter().position(|(n, _, _)| &**n == name) {
            members.remove(i);
        }
    }

    /// `alice bob carol`: every member, in join order, for `who`.
    pub fn list(&self) -> String {
        let members = self.members();
        let names: Vec<&str> = members.iter().map(|(n, _, _)| &**n).collect();
        names.join(" ")
    }

    /// Every name with when it was claimed, in join order (the Redis side's heartbeat picks
    /// this instance's own).
    pub fn snapshot(&self) -> Vec<(Box<str>, u64)> {
        self.members()
            .iter()
            .map(|(n, _, at)| (n.clone(), *at))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.members().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_claimed_once_and_listed_in_join_order() {
        let room = Directory::new();
        assert!(room.claim("alice"));
        assert!(room.claim("bob"));
        assert!(!room.claim("alice"));
        assert!(room.claim("carol"));
        assert_eq!(room.list(), "alice bob carol");
        room.release("bob");
        assert_eq!(room.list(), "alice carol");
        assert!(room.claim("bob"));
        assert_eq!(room.list(), "alice carol bob");
        assert_eq!(room.len(), 3);
    }

    #[test]
    fn a_look_alike_of_a_member_is_taken_and_the_name_is_kept_as_typed() {
        let room = Directory::new();
        assert!(room.claim("Alice"));
        for look_alike in ["alice", "ALICE", "аlice", "ａlice", "AIice"] {
            assert!(!room.claim(look_alike), "{look_alike}");
            assert!(room.is_taken(look_alike), "{look_alike}");
        }
        assert!(room.claim("alicia"));
        assert_eq!(room.list(), "Alice alicia");
        room.release("alice"); // not the name as claimed: nothing happens
        assert_eq!(room.len(), 2);
        room.release("Alice");
        assert!(room.claim("alice"));
    }

    #[test]
    fn concurrent_claims_of_one_name_give_it_to_exactly_one() {
        let room = Directory::new();
        let winners: usize = (0..8)
            .map(|_| {
                let room = Arc::clone(&room);
                std::thread::spawn(move || usize::from(room.claim("alice")))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(winners, 1);
    }
}
