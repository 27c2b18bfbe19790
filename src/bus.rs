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
use std::time::Instant;

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

/// Redis's clock as this instance last read it (`TIME`), pinned to this instance's monotonic
/// clock: the order every instance shares for who took a name first (SPEC "Who took a name
/// first"), where the instances' own wall clocks may be hours apart. Between two readings our
/// monotonic clock carries it (it drifts by parts per million; it is read again every minute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedClock {
    /// Redis's time, milliseconds since the Unix epoch...
    millis: u64,
    /// ...at this moment of ours.
    at: Instant,
}

impl SharedClock {
    pub fn new(millis: u64, at: Instant) -> SharedClock {
        SharedClock { millis, at }
    }

    /// Redis's time at our moment `then` (milliseconds since the Unix epoch).
    pub fn at(&self, then: Instant) -> u64 {
        match then.checked_duration_since(self.at) {
            Some(after) => self.millis.saturating_add(after.as_millis() as u64),
            None => self
                .millis
                .saturating_sub(self.at.duration_since(then).as_millis() as u64),
        }
    }
}

/// A claim's time on the shared clock when it is not known (no reading of Redis's clock yet):
/// last, so a claim that cannot be placed never takes a name from one that can.
pub const UNKNOWN_CLAIM_TIME: u64 = u64::MAX;

#[derive(Debug)]
struct Member {
    name: Box<str>,
    key: NameKey,
    /// When it was claimed, on our monotonic clock...
    claimed: Instant,
    /// ...and on the [`SharedClock`], fixed once known.
    shared: Option<u64>,
}

#[derive(Debug, Default)]
struct Members {
    list: Vec<Member>,
    clock: Option<SharedClock>,
}

/// The names in the room, in join order, as typed; compared by their [`NameKey`], so that a
/// name that would pass for a member's (`Alice` while `alice` is here) is taken. Each with when
/// it was claimed on the [`SharedClock`]: across instances, the first keeps it.
#[derive(Debug, Default)]
pub struct Directory {
    members: Mutex<Members>,
}

impl Directory {
    pub fn new() -> Arc<Directory> {
        Arc::new(Directory::default())
    }

    fn members(&self) -> MutexGuard<'_, Members> {
        // A panic elsewhere while holding the lock leaves a valid list (every change is one
        // push, one remove or one time filled in), so the poison flag is ignored.
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `name` for a new member; false when someone in the room already has it, or a
    /// name that is the same by [`NameKey`].
    pub fn claim(&self, name: &str) -> bool {
        let key = NameKey::of(name);
        let claimed = Instant::now();
        let mut members = self.members();
        if members.list.iter().any(|m| m.key.same_as(&key)) {
            return false;
        }
        let shared = members.clock.map(|clock| clock.at(claimed));
        members.list.push(Member {
            name: name.into(),
            key,
            claimed,
            shared,
        });
        true
    }

    /// A reading of Redis's clock: later claims are placed on it when made, earlier ones not
    /// placed yet (made before Redis was ever reached) now.
    pub fn set_shared_clock(&self, clock: SharedClock) {
        let mut members = self.members();
        members.clock = Some(clock);
        for member in members.list.iter_mut().filter(|m| m.shared.is_none()) {
            member.shared = Some(clock.at(member.claimed));
        }
    }

    /// True when `name`, or one the same by [`NameKey`], is in the room.
    pub fn is_taken(&self, name: &str) -> bool {
        let key = NameKey::of(name);
        self.members().list.iter().any(|m| m.key.same_as(&key))
    }

    /// The name held in the room that is the same as `name` by [`NameKey`], as claimed, and
    /// when it was claimed on the [`SharedClock`] (milliseconds since the Unix epoch;
    /// [`UNKNOWN_CLAIM_TIME`] before any reading of it).
    pub fn holder(&self, name: &str) -> Option<(Box<str>, u64)> {
        let key = NameKey::of(name);
        let members = self.members();
        let held = members.list.iter().find(|m| m.key.same_as(&key))?;
        Some((held.name.clone(), held.shared.unwrap_or(UNKNOWN_CLAIM_TIME)))
    }

    /// The member with `name` (exactly as claimed) has left.
    pub fn release(&self, name: &str) {
        let mut members = self.members();
        if let Some(i) = members.list.iter().position(|m| &*m.name == name) {
            members.list.remove(i);
        }
    }

    /// `alice bob carol`: every member, in join order, for `who`.
    pub fn list(&self) -> String {
        let members = self.members();
        let names: Vec<&str> = members.list.iter().map(|m| &*m.name).collect();
        names.join(" ")
    }

    /// Every name with when it was claimed, as [`Directory::holder`] gives it, in join order
    /// (the Redis side's heartbeat picks this instance's own).
    pub fn snapshot(&self) -> Vec<(Box<str>, u64)> {
        self.members()
            .list
            .iter()
            .map(|m| (m.name.clone(), m.shared.unwrap_or(UNKNOWN_CLAIM_TIME)))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.members().list.len()
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
    fn claims_are_placed_on_redis_clock_never_on_the_wall_clock() {
        // Two instances read the same Redis clock at different moments of their own; their
        // wall clocks play no part (SystemTime is not read).
        let redis_now = 1_700_000_000_000;
        let start = Instant::now();
        let a = Directory::new();
        let b = Directory::new();
        // A claims bob before it ever reached Redis: placed once it does.
        assert!(a.claim("bob"));
        assert_eq!(a.holder("bob").unwrap().1, UNKNOWN_CLAIM_TIME);
        let a_read = Instant::now();
        a.set_shared_clock(SharedClock::new(redis_now, a_read));
        let (_, a_bob) = a.holder("bob").unwrap();
        assert!(a_bob <= redis_now && redis_now - a_bob <= 1_000, "{a_bob}");
        // B read Redis's clock 50 ms (of Redis's) later; its bob comes after A's.
        b.set_shared_clock(SharedClock::new(redis_now + 50, a_read));
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(b.claim("bob"));
        let (_, b_bob) = b.holder("bob").unwrap();
        assert!(b_bob > a_bob, "{b_bob} {a_bob}");
        assert_eq!(b.snapshot(), [("bob".into(), b_bob)]);
        // A later reading does not move a claim already placed.
        a.set_shared_clock(SharedClock::new(redis_now + 99_999, Instant::now()));
        assert_eq!(a.holder("bob").unwrap().1, a_bob);
        // The clock before and after its reading.
        let clock = SharedClock::new(10_000, start + std::time::Duration::from_secs(5));
        assert_eq!(clock.at(start), 5_000);
        assert_eq!(clock.at(start + std::time::Duration::from_secs(7)), 12_000);
        assert_eq!(
            SharedClock::new(10, start + std::time::Duration::from_secs(5)).at(start),
            0
        );
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
