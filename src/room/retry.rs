//! When to try Redis again, and which `bus-down`/`bus-up` lines the log gets (`--chat-redis`):
//! the pure half of `redis.rs`'s reconnection. No IO, no clock of its own; tested below with
//! made-up instants.
//!
//! A Redis may take the connection and then refuse a command (`NOPERM` on `PUBLISH` for an ACL
//! user, `READONLY`, `OOM`). Such a link looks up at every try, so the backoff is reset only
//! once the link has carried the room's traffic for [`BACKOFF_RESET_AFTER`], not when a
//! handshake succeeds; and the log says each distinct error at most once per
//! [`DOWN_LINE_EVERY`] (SPEC "Operations (additions)"; the class of elastic/beats#7781).

use std::time::{Duration, Instant};

/// The first retry after the link is lost (or never came).
pub const FIRST_RETRY: Duration = Duration::from_millis(250);
/// The backoff doubles up to this. Short enough that instances coming back from one outage
/// find each other within a few seconds of each other (see `Presence::bus_up`).
pub const LAST_RETRY: Duration = Duration::from_secs(2);
/// The backoff starts again from [`FIRST_RETRY`] only after the link has carried the room's
/// traffic this long (our heartbeat coming back through Redis all along). A refusal comes
/// within a heartbeat of the handshake (we publish at once), so a link that lasts 30 s is one
/// Redis really serves; and 30 s is short next to the outages worth a quick first retry.
pub const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(30);
/// At most one `bus-down` line per distinct error this long: a link that keeps failing the
/// same way (a flapping network, a Redis that refuses us after each handshake) says so once a
/// minute, which is enough for a person reading the log and bounds its growth.
pub const DOWN_LINE_EVERY: Duration = Duration::from_secs(60);

/// The backoff and what the log said last.
#[derive(Debug)]
pub struct Retry {
    backoff: Duration,
    /// When the link came up, while it is up.
    up_since: Option<Instant>,
    /// What the log says now: the link up (after a `bus-up` line) or down.
    logged_up: bool,
    /// The error of the last `bus-down` line, while the log says down: the same error again is
    /// the same outage, not a new line.
    logged_error: Option<Box<str>>,
    /// The `bus-down` lines of the last [`DOWN_LINE_EVERY`]: error and when written (at most
    /// one per try, so at most 240 a minute).
    recent: Vec<(Box<str>, Instant)>,
    /// Failures not written since the last `bus-down` line because the same error had a line
    /// less than [`DOWN_LINE_EVERY`] ago.
    unwritten: u64,
}

/// What to do about a failure of the link.
#[derive(Debug, PartialEq, Eq)]
pub struct Down {
    /// Try again then.
    pub retry_at: Instant,
    /// Write the `bus-down` line, with the failures not written since the last one (`Some(0)`:
    /// none), or not (`None`).
    pub line: Option<u64>,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            backoff: FIRST_RETRY,
            up_since: None,
            logged_up: false,
            logged_error: None,
            recent: Vec::new(),
            unwritten: 0,
        }
    }
}

impl Retry {
    /// The link failed (or could not be made) at `now` with `error`.
    pub fn down(&mut self, error: &str, now: Instant) -> Down {
        self.up_since = None;
        let retry_at = now + self.backoff;
        self.backoff = (self.backoff * 2).min(LAST_RETRY);
        self.recent
            .retain(|(_, at)| now.saturating_duration_since(*at) < DOWN_LINE_EVERY);
        let same_outage = !self.logged_up && self.logged_error.as_deref() == Some(error);
        if same_outage {
            return Down {
                retry_at,
                line: None,
            };
        }
        if self.recent.iter().any(|(e, _)| &**e == error) {
            self.unwritten += 1;
            return Down {
                retry_at,
                line: None,
            };
        }
        self.recent.push((error.into(), now));
        self.logged_up = false;
        self.logged_error = Some(error.into());
        Down {
            retry_at,
            line: Some(std::mem::take(&mut self.unwritten)),
        }
    }

    /// The link is up at `now`: true when the `bus-up` line is to be written (not when the log
    /// still says up, its failure having gone unwritten).
    pub fn up(&mut self, now: Instant) -> bool {
        self.up_since = Some(now);
        if self.logged_up {
            return false;
        }
        self.logged_up = true;
        self.logged_error = None;
        true
    }

    /// Our heartbeat came back through the link at `alive`: it carries the room's traffic.
    pub fn carried(&mut self, alive: Instant) {
        if self
            .up_since
            .is_some_and(|since| alive.saturating_duration_since(since) >= BACKOFF_RESET_AFTER)
        {
            self.backoff = FIRST_RETRY;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOPERM: &str = "NOPERM this user has no permissions to run the 'publish' command";

    #[test]
    fn an_unreachable_redis_is_tried_with_a_doubling_backoff_and_said_once() {
        let mut retry = Retry::default();
        let mut now = Instant::now();
        let mut waits = Vec::new();
        let mut lines = 0;
        for _ in 0..10 {
            let down = retry.down("Connection refused", now);
            waits.push(down.retry_at - now);
            lines += usize::from(down.line.is_some());
            now = down.retry_at + Duration::from_secs(60); // long outages: still one line
        }
        assert_eq!(lines, 1);
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(
            ms,
            [250, 500, 1000, 2000, 2000, 2000, 2000, 2000, 2000, 2000]
        );
        // Another error is said at once.
        assert_eq!(retry.down("Redis closed the connection", now).line, Some(0));
    }

    #[test]
    fn a_redis_that_refuses_after_the_handshake_backs_off_and_is_said_once_a_minute() {
        let mut retry = Retry::default();
        let start = Instant::now();
        let mut now = start;
        let (mut downs, mut ups) = (0, 0);
        let mut last_wait = Duration::ZERO;
        // Up at every try, refused a moment later, for three minutes.
        while now < start + Duration::from_secs(180) {
            ups += usize::from(retry.up(now));
            retry.carried(now + Duration::from_millis(1));
            let down = retry.down(NOPERM, now + Duration::from_millis(2));
            if let Some(unwritten) = down.line {
                downs += 1;
                assert!(downs == 1 || unwritten > 0, "{unwritten}");
            }
            last_wait = down.retry_at - now;
            now = down.retry_at;
        }
        assert_eq!(last_wait.as_millis(), 2002, "the backoff was reset");
        assert_eq!(downs, 3, "one bus-down line a minute");
        assert_eq!(ups, 4, "bus-up at first and once after each bus-down line");
    }

    #[test]
    fn the_backoff_is_reset_only_after_thirty_seconds_of_carried_traffic() {
        let mut retry = Retry::default();
        let now = Instant::now();
        for _ in 0..4 {
            retry.down("Connection refused", now);
        }
        retry.up(now);
        retry.carried(now + BACKOFF_RESET_AFTER - Duration::from_millis(1));
        let down = retry.down("Redis closed the connection", now + BACKOFF_RESET_AFTER);
        assert_eq!(down.retry_at - (now + BACKOFF_RESET_AFTER), LAST_RETRY);
        let back = now + Duration::from_secs(60);
        assert!(retry.up(back));
        retry.carried(back + BACKOFF_RESET_AFTER);
        let later = back + BACKOFF_RESET_AFTER + Duration::from_secs(1);
        let down = retry.down("Redis closed the connection", later);
        assert_eq!(down.retry_at - later, FIRST_RETRY);
        assert_eq!(
            down.line,
            Some(0),
            "a minute since the last line of that error"
        );
    }
}
