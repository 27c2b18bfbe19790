//! The reactor's clock: how long the poll may sleep, and the deadlines of every connection
//! (handshake, idle, closing) and of a paused accept. No timer thread: the nearest deadline bounds
//! the poll, and the connection table is scanned only when that deadline has passed.

use std::time::{Duration, Instant};

use super::Reactor;
use crate::conn::{CloseReason, Phase};

impl Reactor {
    /// Sleep until the nearest deadline (connection timers, paused accept, shutdown), or forever.
    pub(super) fn poll_timeout(&self) -> Option<Duration> {
        if !self.read_later.is_empty() {
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

    pub(super) fn note_deadline(&mut self, at: Instant) {
        if self.next_wake.is_none_or(|w| at < w) {
            self.next_wake = Some(at);
        }
    }

    pub(super) fn run_timers(&mut self) {
        if self.accept_paused_until.is_some_and(|at| self.now >= at) {
            self.accept_paused_until = None;
            for index in 0..self.listeners.len() {
                self.accept_all(index);
            }
        }
        if self.next_wake.is_none_or(|at| self.now < at) {
            return;
        }
        // One pass over the table: expire what is due, find the next deadline.
        let mut next: Option<Instant> = None;
        let mut expired = Vec::new();
        for conn in self.conns.iter().flatten() {
            let (deadline, reason) = match conn.phase() {
                Phase::Handshaking => (
                    self.settings.handshake_timeout.map(|t| conn.opened_at + t),
                    CloseReason::HandshakeTimeout,
                ),
                Phase::Open => (
                    self.settings.idle_timeout.map(|t| conn.last_activity + t),
                    CloseReason::IdleTimeout,
                ),
                Phase::Closing | Phase::Lingering => (
                    conn.close_deadline,
                    conn.close_reason.unwrap_or(CloseReason::Shutdown),
                ),
            };
            match deadline {
                Some(at) if at <= self.now => expired.push((conn.id, conn.phase(), reason)),
                Some(at) => next = Some(next.map_or(at, |n| n.min(at))),
                None => {}
            }
        }
        self.next_wake = next;
        for (id, phase, reason) in expired {
            match phase {
                Phase::Closing | Phase::Lingering => self.finish(id, reason),
                _ => self.close(id, reason),
            }
        }
        self.settle();
    }
}
