//! Flow control: a client with too much unsent output is not read until it drains
//! (READ_PAUSE_OUTPUT); a chat sender is not read while a member that still reads is FANOUT_SOFT
//! behind, and goes on once it caught up or stalled (STALLED_AFTER); `Queue` puts the outbox's
//! lines on the connections and notes who is congested.

use std::time::Instant;

use super::{FANOUT_SOFT, Reactor, STALLED_AFTER, slot_mut};
use crate::conn::{CloseReason, Conn, READ_PAUSE_OUTPUT};
use crate::outbox::ConnId;

impl Reactor {
    /// A client with much unsent output stops being read until it catches up.
    pub(super) fn throttle_if_behind(&mut self, id: ConnId) {
        let now = self.now;
        let Some(conn) = slot_mut(&mut self.conns, id) else {
            return;
        };
        if conn.pending_output() <= READ_PAUSE_OUTPUT {
            return;
        }
        if conn.flush(now, &mut self.traffic).is_err() {
            self.close(id, CloseReason::Reset);
            self.settle();
            return;
        }
        if conn.pending_output() > READ_PAUSE_OUTPUT {
            conn.read_paused = true;
            self.read_paused_now += 1;
            self.mark_dirty(id);
        }
    }

    /// Stops reading a sender whose messages go to members that are behind but still reading;
    /// `review_fanout` lets it go on once they have caught up or stalled.
    pub(super) fn pause_sender(&mut self, id: ConnId) {
        if let Some(conn) = slot_mut(&mut self.conns, id) {
            if !conn.fanout_paused {
                conn.fanout_paused = true;
                self.fanout_paused.push(id);
            }
        }
        self.note_deadline(self.now + STALLED_AFTER);
    }

    /// Once per loop turn: resumes the paused senders when no receiver holds them back, here or
    /// on another worker, and tells the other workers whether members here are behind.
    pub(super) fn review_fanout(&mut self) {
        let others_congested = self.shared.others_congested(self.worker);
        if self.fanout_paused.is_empty() && self.congested.is_empty() && !self.flagged_congested {
            return;
        }
        let now = self.now;
        let conns = &mut self.conns;
        self.congested.retain(|&id| {
            slot_mut(conns, id).is_some_and(|c| {
                c.pending_output() > FANOUT_SOFT / 2
                    && now.duration_since(c.last_drained) < STALLED_AFTER
            })
        });
        let congested_here = !self.congested.is_empty();
        if self.shared.workers() > 1 && congested_here != self.flagged_congested {
            self.flagged_congested = congested_here;
            self.shared.set_congested(self.worker, congested_here);
        }
        if congested_here || others_congested {
            // Look again even if nothing else happens: a member may stall, or another
            // worker's may catch up (which also wakes us with `RoomCalm`).
            self.note_deadline(now + STALLED_AFTER);
            return;
        }
        for id in std::mem::take(&mut self.fanout_paused) {
            if let Some(conn) = slot_mut(&mut self.conns, id) {
                conn.fanout_paused = false;
                self.read_later.push(id);
            }
        }
    }
}

/// Where the outbox's lines go: the connections' queues, with the bookkeeping that follows.
pub(super) struct Queue<'a> {
    pub(super) conns: &'a mut [Option<Conn>],
    pub(super) dirty: &'a mut Vec<ConnId>,
    pub(super) to_close: &'a mut Vec<(ConnId, CloseReason)>,
    pub(super) congested: &'a mut Vec<ConnId>,
    pub(super) source: Option<ConnId>,
    pub(super) now: Instant,
}

impl Queue<'_> {
    pub(super) fn push(&mut self, id: ConnId, bytes: &[u8]) {
        let Some(conn) = slot_mut(self.conns, id) else {
            return;
        };
        if !conn.queue(bytes) {
            self.to_close.push((id, CloseReason::SlowReader));
            return;
        }
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(id);
        }
        // A receiver of someone else's line that is far behind but still reading holds the sender back.
        let behind = conn.pending_output() > FANOUT_SOFT
            && self.now.duration_since(conn.last_drained) < STALLED_AFTER;
        // `source` is `None` for lines from elsewhere (another worker's room lines, a timer).
        if behind && self.source != Some(id) && !self.congested.contains(&id) {
            self.congested.push(id);
        }
    }
}
