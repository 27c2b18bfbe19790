//! The chat room's relay beyond this reactor, and its flow control. The chat service keeps the
//! room of this reactor's members; this part carries the room's lines to the members elsewhere
//! and back:
//! - to the other workers of the process: the lines published in a loop turn leave at its end,
//!   in one message per worker (a channel and a `mio::Waker`, in `Shared`);
//! - to the other instances over Redis (`--chat-redis`, worker 0 only, `redis.rs`), which also
//!   relays the other workers' lines of this instance.
//!
//! Flow control (fan-out): a receiver far behind (FANOUT_SOFT) that still drains its socket holds
//! the senders back, here or, through a flag in `Shared`, on another worker; a sender is paused
//! after the line that found it so and goes on once receivers caught up or stalled
//! (STALLED_AFTER). A receiver that stalls runs into MAX_PENDING_OUTPUT and is cut off.
//! The other instances cannot be held back: their lines wait here instead, and are handed to
//! the members only while none of them is far behind, at most FANOUT_SOFT bytes a loop turn
//! (after an outage of Redis a whole backlog arrives at once; given out in one go it cut every
//! member off as a slow reader).
//!
//! It knows no protocol: lines are bytes, delivered through `Service::on_room_line`.

mod history;
pub mod redis;
mod retry;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Registry, Token};

use crate::bus::RoomLine;
use crate::conn::Conn;
use crate::log::Log;
use crate::outbox::ConnId;
use crate::shared::Shared;

/// While a member that receives a sender's messages has more than this queued, the sender is
/// not read, so a fast sender cannot outrun members that read...
pub const FANOUT_SOFT: usize = 256 * 1024;

/// ...as long as they do read: a member whose socket took nothing for this long holds nobody
/// back any more. It then runs into MAX_PENDING_OUTPUT and is cut off as a slow reader.
pub const STALLED_AFTER: Duration = Duration::from_millis(250);

/// Lines from the other instances waiting for members here past this many bytes no longer wait
/// for members far behind: those are cut off as slow readers rather than the room waiting for
/// them without bound (the other instances are not held back).
const FROM_INSTANCES_MAX: usize = 32 << 20;

pub struct Room {
    worker: usize,
    shared: Arc<Shared>,
    /// Room lines published this turn, handed to the other workers at its end.
    to_workers: Vec<RoomLine>,
    /// `--chat-redis` (worker 0): the link to the other instances, and this instance's room
    /// lines of this turn for them.
    redis: Option<redis::RedisBus>,
    to_redis: Vec<RoomLine>,
    /// Lines from the other instances not yet handed to the members here, and their bytes.
    from_instances: VecDeque<RoomLine>,
    from_instances_bytes: usize,
    /// Bytes of them handed out this loop turn (at most FANOUT_SOFT).
    handed_this_turn: usize,
    /// This worker's congested flag as last published in `shared`.
    flagged_congested: bool,
    /// Receivers of fan-out that are over FANOUT_SOFT and still draining.
    congested: Vec<ConnId>,
    /// Senders not read until `congested` clears.
    paused: Vec<ConnId>,
}

/// What a review of the room's flow found.
#[derive(Debug, Default)]
pub struct Review {
    /// Senders that may be read again.
    pub resume: Vec<ConnId>,
    /// Look again then, even if nothing else happens (a receiver may stall).
    pub look_again_at: Option<Instant>,
}

impl Room {
    pub fn new(worker: usize, shared: Arc<Shared>, redis: Option<redis::RedisBus>) -> Room {
        Room {
            worker,
            shared,
            to_workers: Vec::new(),
            redis,
            to_redis: Vec::new(),
            from_instances: VecDeque::new(),
            from_instances_bytes: 0,
            handed_this_turn: 0,
            flagged_congested: false,
            congested: Vec::new(),
            paused: Vec::new(),
        }
    }

    /// Whether there is anyone beyond this reactor to relay to.
    fn spans_more(&self) -> bool {
        self.shared.workers() > 1 || self.redis.is_some()
    }

    /// A line this reactor's room published (a chat line of one of its members).
    pub fn publish(&mut self, line: &[u8]) {
        if !self.spans_more() {
            return; // one reactor alone keeps its room to itself
        }
        let line = RoomLine::from(line);
        if self.redis.is_some() {
            self.to_redis.push(RoomLine::clone(&line));
        }
        if self.shared.workers() > 1 {
            self.shared.room_published(self.worker, line.len());
            self.to_workers.push(line);
        }
    }

    /// Lines from the other workers, just delivered to this reactor's members: for the other
    /// instances too, and counted as delivered (the other half of the flow control).
    pub fn delivered_from_workers(&mut self, lines: &[RoomLine]) {
        if self.redis.is_some() {
            self.to_redis.extend(lines.iter().cloned());
        }
        let bytes = lines.iter().map(|l| l.len()).sum();
        self.shared.room_delivered(self.worker, bytes);
        // Members now far behind hold the senders elsewhere back at once, not at the end of
        // this turn.
        if !self.congested.is_empty() && !self.flagged_congested {
            self.flagged_congested = true;
            self.shared.set_congested(self.worker, true);
        }
    }

    /// The next lines from the other instances for the members here, in order: none while
    /// members here or on another worker are far behind (unless FROM_INSTANCES_MAX bytes
    /// wait), none past FANOUT_SOFT bytes this turn. Hand them to the members, then to
    /// [`Self::delivered_from_instances`].
    pub fn take_from_instances(&mut self) -> Vec<RoomLine> {
        let overfull = self.from_instances_bytes > FROM_INSTANCES_MAX;
        if self.from_instances.is_empty()
            || self.handed_this_turn >= FANOUT_SOFT
            || (self.holds_back() && !overfull)
        {
            return Vec::new();
        }
        // Small batches, so that a member falling behind is noticed before much more is queued
        // for it.
        let mut batch = Vec::new();
        let mut bytes = 0;
        while bytes < FANOUT_SOFT / 8 {
            let Some(line) = self.from_instances.pop_front() else {
                break;
            };
            bytes += line.len();
            batch.push(line);
        }
        self.from_instances_bytes -= bytes;
        self.handed_this_turn += bytes;
        batch
    }

    /// While lines from the other instances wait: when to look again (at once for the next
    /// turn's share, or once members far behind may have caught up or stalled).
    pub fn from_instances_due(&self, now: Instant) -> Option<Instant> {
        match self.from_instances.is_empty() {
            true => None,
            false if self.holds_back() => Some(now + STALLED_AFTER),
            false => Some(now),
        }
    }

    /// Lines from the other instances, just delivered to this reactor's members: for the other
    /// workers' members too.
    pub fn delivered_from_instances(&mut self, lines: Vec<RoomLine>) {
        if self.shared.workers() > 1 {
            for line in &lines {
                self.shared.room_published(self.worker, line.len());
            }
            self.to_workers.extend(lines);
        }
    }

    /// A line was queued for `receiver`; `sender` is the connection whose request caused it
    /// (`None` for lines from elsewhere). A receiver far behind but still reading holds
    /// senders back (its own replies congest nobody).
    pub fn note_receiver(&mut self, receiver: &Conn, sender: Option<ConnId>, now: Instant) {
        let id = receiver.id();
        let behind = receiver.pending_output() > FANOUT_SOFT
            && now.duration_since(receiver.last_drained()) < STALLED_AFTER;
        if behind && sender != Some(id) && !self.congested.contains(&id) {
            self.congested.push(id);
        }
    }

    /// Whether a sender must stop after its last line: receivers here or on another worker are
    /// behind.
    pub fn holds_back(&self) -> bool {
        !self.congested.is_empty() || self.shared.others_congested(self.worker)
    }

    /// Notes a paused sender, to resume it in `review`.
    pub fn pause(&mut self, sender: &mut Conn) {
        if !sender.pauses().contains(crate::conn::Pauses::FANOUT) {
            sender.set_fanout_pause(true);
            self.paused.push(sender.id());
        }
    }

    /// Once per loop turn: which paused senders may go on (no receiver holds them back, here
    /// or on another worker), and tells the other workers whether members here are behind.
    /// `backlog(id)` gives a receiver's queued bytes and when its socket last took some.
    pub fn review(
        &mut self,
        now: Instant,
        backlog: impl Fn(ConnId) -> Option<(usize, Instant)>,
    ) -> Review {
        let others_congested = self.shared.others_congested(self.worker);
        if self.paused.is_empty() && self.congested.is_empty() && !self.flagged_congested {
            return Review::default();
        }
        self.congested.retain(|&id| {
            backlog(id).is_some_and(|(queued, drained)| {
                queued > FANOUT_SOFT / 2 && now.duration_since(drained) < STALLED_AFTER
            })
        });
        let congested_here = !self.congested.is_empty();
        if self.shared.workers() > 1 && congested_here != self.flagged_congested {
            self.flagged_congested = congested_here;
            self.shared.set_congested(self.worker, congested_here);
        }
        if congested_here || others_congested {
            // Another worker's members catching up also wakes us with `RoomCalm`.
            return Review {
                resume: Vec::new(),
                look_again_at: Some(now + STALLED_AFTER),
            };
        }
        Review {
            resume: std::mem::take(&mut self.paused),
            look_again_at: None,
        }
    }

    /// Senders paused now (for the metrics).
    pub fn paused(&self) -> usize {
        self.paused.len()
    }

    /// The end of the turn: this turn's lines to the other workers, in one message each.
    pub fn end_of_turn(&mut self) {
        self.handed_this_turn = 0;
        if !self.to_workers.is_empty() {
            self.shared.send_room(self.worker, &self.to_workers);
            self.to_workers.clear();
        }
    }

    /// Whether `token` is one of the Redis link's sockets.
    pub fn owns(token: Token) -> bool {
        token == redis::SUBSCRIBER_TOKEN || token == redis::PUBLISHER_TOKEN
    }

    pub fn has_redis(&self) -> bool {
        self.redis.is_some()
    }

    /// A readiness event on the Redis link: the other instances' lines that arrived wait for
    /// [`Self::take_from_instances`].
    pub fn on_redis_event(
        &mut self,
        token: Token,
        registry: &Registry,
        now: Instant,
        log: &mut Log,
    ) {
        let mut arrived = Vec::new();
        if let Some(bus) = self.redis.as_mut() {
            bus.on_event(token, registry, now, log, &mut arrived);
        }
        self.queue_from_instances(arrived);
    }

    /// The Redis link's turn: its timers, this turn's lines out to the other instances (the
    /// lines that arrived wait for [`Self::take_from_instances`]); when it wants to be called
    /// again.
    pub fn redis_turn(
        &mut self,
        registry: &Registry,
        now: Instant,
        log: &mut Log,
    ) -> Option<Instant> {
        let bus = self.redis.as_mut()?;
        let mut arrived = Vec::new();
        let next = bus.tick(registry, now, log, &mut arrived);
        for line in self.to_redis.drain(..) {
            bus.publish(&line, registry, now, log);
        }
        bus.flush(registry, now, log);
        self.queue_from_instances(arrived);
        Some(next)
    }

    fn queue_from_instances(&mut self, lines: Vec<RoomLine>) {
        self.from_instances_bytes += lines.iter().map(|l| l.len()).sum::<usize>();
        self.from_instances.extend(lines);
    }

    /// At shutdown: the last lines out, and a farewell so the other instances announce our
    /// members `LEFT` at once.
    pub fn farewell(&mut self, registry: &Registry, now: Instant, log: &mut Log) {
        if let Some(bus) = self.redis.as_mut() {
            for line in self.to_redis.drain(..) {
                bus.publish(&line, registry, now, log);
            }
            bus.farewell(registry, now, log);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_from_other_instances_go_out_in_order_a_share_per_turn() {
        let mut room = Room::new(0, Shared::new(1, 100), None);
        // A backlog of 1 MB arrives at once (after an outage of Redis).
        let lines: Vec<RoomLine> = (0..16_384)
            .map(|i| RoomLine::from(format!("MSG bob {i:056}\n").into_bytes()))
            .collect();
        room.queue_from_instances(lines.clone());
        let now = Instant::now();
        let mut handed = Vec::new();
        let mut turns = 0;
        while room.from_instances_due(now).is_some() {
            let mut this_turn = 0;
            loop {
                let batch = room.take_from_instances();
                if batch.is_empty() {
                    break;
                }
                this_turn += batch.iter().map(|l| l.len()).sum::<usize>();
                handed.extend(batch);
            }
            // A share, and at most the batch that went past it.
            let most = FANOUT_SOFT + FANOUT_SOFT / 8 + 65;
            assert!(this_turn <= most, "{this_turn} bytes in one turn");
            room.end_of_turn();
            turns += 1;
        }
        assert_eq!(handed, lines);
        let total: usize = lines.iter().map(|l| l.len()).sum();
        assert_eq!(turns, total.div_ceil(FANOUT_SOFT));
    }
}
