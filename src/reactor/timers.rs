//! The reactor's clock: how long the poll may sleep, and the deadlines of every connection
//! (handshake, idle, closing) and of a paused accept. No timer thread: the nearest deadline bounds
//! the poll, and the connection table is scanned only when that deadline has passed. Lines held
//! by `--rate-limit` are read again when their token is due.

use std::time::{Duration, Instant};

use super::{Reactor, slot_mut};
use crate::conn::{CloseReason, Phase};
use crate::outbox::ConnId;

impl Reactor {
    /// `--rate-limit`: a connection whose lines wait for a token is read again once it has one;
    /// the others keep a deadline at their next token, so the poll wakes for them.
    pub(super) fn resume_rate_limited(&mut self) {
        if self.rate_waiting.is_empty() {
            return;
        }
        let now = self.now;
        let mut next: Option<Instant> = None;
        let (conns, read_later) = (&mut self.conns, &mut self.read_later);
        self.rate_waiting.retain(|&id| {
            let Some(conn) = slot_mut(conns, id) else {
                return false;
            };
            let Some(bucket) = conn.bucket.as_mut() else {
                return false;
            };
            if bucket.has_token(now) {
                conn.rate_waiting = false;
                read_later.push(id);
                return false;
            }
            let at = now + bucket.wait();
            next = Some(next.map_or(at, |n| n.min(at)));
            true
        });
        if let Some(at) = next {
            self.note_deadline(at);
        }
    }

    /// Holds a connection's reading until its bucket has a token again.
    pub(super) fn wait_for_token(&mut self, id: ConnId) {
        let now = self.now;
        let Some(conn) = slot_mut(&mut self.conns, id) else {
            return;
        };
        let Some(bucket) = conn.bucket.as_mut() else {
            return;
        };
        let _ = bucket.has_token(now); // brings `wait` up to now
        let at = now + bucket.wait();
        if !conn.rate_waiting {
            conn.rate_waiting = true;
            self.rate_waiting.push(id);
        }
        self.note_deadline(at);
    }

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
                Phase::AwaitingProxy => (
                    self.settings.handshake_timeout.map(|t| conn.opened_at + t),
                    CloseReason::ProxyError,
                ),
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
            if phase == Phase::AwaitingProxy
                && let Some(conn) = super::slot_mut(&mut self.conns, id)
            {
                conn.proxy_error = Some("no PROXY header within --handshake-timeout");
            }
            match phase {
                Phase::Closing | Phase::Lingering => self.finish(id, reason),
                _ => self.close(id, reason),
            }
        }
        self.settle();
    }
}
