//! The reactor's clock: the time of this turn, how long the poll may sleep, and the deadlines of
//! every connection (handshake, line, idle, closing), of a paused accept and of the shutdown. No
//! timer thread: the nearest deadline bounds the poll, and the connection table is scanned only
//! when that deadline has passed. Lines held by `--rate-limit` are read again when their token
//! is due.

use std::time::{Duration, Instant};

use super::Reactor;
use crate::conn::{Expiry, Pauses};

pub struct Clock {
    /// The time of this loop turn (read once after the poll returns).
    pub now: Instant,
    /// The earliest deadline of any connection, or later (never earlier): when to scan.
    next_wake: Option<Instant>,
    pub accept_paused_until: Option<Instant>,
    pub shutdown_deadline: Option<Instant>,
}

impl Clock {
    pub fn new(now: Instant) -> Clock {
        Clock {
            now,
            next_wake: None,
            accept_paused_until: None,
            shutdown_deadline: None,
        }
    }

    /// Sleep until the nearest deadline (connection timers, paused accept, shutdown), or forever;
    /// not at all while connections wait to be read on.
    pub fn poll_timeout(&self, read_later: bool) -> Option<Duration> {
        if read_later {
            return Some(Duration::ZERO); // only collect new events: reading goes on at once
        }
        [
            self.next_wake,
            self.accept_paused_until,
            self.shutdown_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
        // Rounded up a millisecond so a wake-up is never just before the deadline.
        .map(|at| at.saturating_duration_since(Instant::now()) + Duration::from_millis(1))
    }

    pub fn note_deadline(&mut self, at: Instant) {
        if self.next_wake.is_none_or(|w| at < w) {
            self.next_wake = Some(at);
        }
    }

    /// True once shutting down and everyone is gone, or the grace period is over.
    pub fn shutdown_due(&self, live: usize) -> bool {
        self.shutdown_deadline
            .is_some_and(|deadline| live == 0 || self.now >= deadline)
    }
}

impl Reactor {
    pub(super) fn run_timers(&mut self) {
        let now = self.clock.now;
        if self.clock.accept_paused_until.is_some_and(|at| now >= at) {
            self.retry_accepts();
        }
        if self.clock.next_wake.is_none_or(|at| now < at) {
            return;
        }
        // One pass over the table: expire what is due, resume what a token freed, find the next
        // deadline.
        let mut next: Option<Instant> = None;
        let mut expired = Vec::new();
        let mut rate_due = Vec::new();
        for conn in self.conns.iter() {
            if conn.pauses().contains(Pauses::RATE) {
                rate_due.push(conn.id());
            }
            match conn.poll_timeout(&self.settings.timeouts) {
                Some((at, _)) if at <= now => expired.push(conn.id()),
                Some((at, _)) => next = Some(next.map_or(at, |n| n.min(at))),
                None => {}
            }
        }
        self.clock.next_wake = next;
        for id in rate_due {
            self.resume_when_token(id);
        }
        for id in expired {
            let timeouts = &self.settings.timeouts;
            let expiry = self
                .conns
                .get_mut(id)
                .and_then(|c| c.handle_timeout(now, timeouts));
            match expiry {
                Some(Expiry::Close(reason)) => self.close(id, reason),
                Some(Expiry::Drop(reason)) => self.finish(id, reason),
                None => {}
            }
        }
        self.settle(None);
    }

    /// `--rate-limit`: reads a held connection again once its bucket has a token; until then
    /// the poll wakes for it.
    pub(super) fn resume_when_token(&mut self, id: crate::outbox::ConnId) {
        let now = self.clock.now;
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        match conn.rate_token_due(now) {
            Ok(()) => self.conns.read_later(id),
            Err(wait) => self.clock.note_deadline(now + wait),
        }
    }
}
