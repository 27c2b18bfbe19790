//! Pacing a connection's request lines: a token bucket per connection, N tokens a second, at
//! most N saved up (the burst). With `--rate-limit N` a request line takes one token; the chat's
//! default pace ([`Pace::CHAT_DEFAULT`]) charges a line by its length, so that one member's
//! share of every other member's queue is bounded in bytes, whatever its lines hold. A
//! connection without a token is not refused: its next line waits (the bytes are held, the
//! socket is not read) until the poll timeout brings a token. Pure: the reactor passes the time in.

use std::time::{Duration, Instant};

/// One token, in the bucket's unit (a millionth of a token, so that every microsecond refills an
/// exact whole number of units at any rate).
const TOKEN: i64 = 1_000_000;

/// How a connection's request lines are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Tokens a second, and the most saved up (the burst).
    pub per_second: u32,
    /// A line costs one token per started `token_bytes` of its length (an empty line one);
    /// `None`: every line one token, as `--rate-limit` counts.
    pub token_bytes: Option<u32>,
}

impl Pace {
    /// `--rate-limit N`: N request lines a second, burst N.
    pub const fn lines(per_second: u32) -> Pace {
        Pace {
            per_second,
            token_bytes: None,
        }
    }

    /// A chat member's pace when `--rate-limit` is not given: 64 KiB of lines a second (1,000
    /// lines of up to 64 bytes; 16 of 4 KiB), burst the same. One member sending as fast as it
    /// can then adds at most that to every other member's queue, which any reader drains in
    /// well under a millisecond, so the others' messages are not stuck behind its flood.
    pub const CHAT_DEFAULT: Pace = Pace {
        per_second: 1000,
        token_bytes: Some(64),
    };

    /// The tokens a line of `len` bytes costs.
    pub fn cost(&self, len: usize) -> u32 {
        match self.token_bytes {
            None => 1,
            Some(unit) => {
                let tokens = len.div_ceil(unit.max(1) as usize).max(1);
                u32::try_from(tokens).unwrap_or(u32::MAX)
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct TokenBucket {
    pace: Pace,
    /// Below zero after a line that cost more than was saved up: the debt is paid first.
    units: i64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket: a new connection may send its burst at once.
    pub fn new(pace: Pace, now: Instant) -> TokenBucket {
        let pace = Pace {
            per_second: pace.per_second.max(1),
            ..pace
        };
        TokenBucket {
            pace,
            units: i64::from(pace.per_second) * TOKEN,
            last: now,
        }
    }

    fn per_second(&self) -> i64 {
        i64::from(self.pace.per_second)
    }

    fn refill(&mut self, now: Instant) {
        let micros = now.saturating_duration_since(self.last).as_micros();
        let added = i64::try_from(micros)
            .unwrap_or(i64::MAX)
            .saturating_mul(self.per_second());
        self.units = self
            .units
            .saturating_add(added)
            .min(self.per_second() * TOKEN);
        self.last = now;
    }

    /// True when a line may be handled now.
    pub fn has_token(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.units >= TOKEN
    }

    /// A line of `len` bytes was handled: its cost is taken (a line may cost more than is left;
    /// the debt, at most one burst, delays the next line).
    pub fn spend(&mut self, len: usize) {
        let cost = i64::from(self.pace.cost(len)).min(self.per_second()) * TOKEN;
        self.units = self
            .units
            .saturating_sub(cost)
            .max(-self.per_second() * TOKEN);
    }

    /// How long until the next token (as of the last look at the clock), rounded up.
    pub fn wait(&self) -> Duration {
        let missing = (TOKEN - self.units).max(0) as u64;
        Duration::from_micros(missing.div_ceil(self.per_second() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(Pace::lines(50), start);
        for _ in 0..50 {
            assert!(bucket.has_token(start));
            bucket.spend(1);
        }
        assert!(!bucket.has_token(start));
        assert_eq!(bucket.wait(), Duration::from_millis(20));
        assert!(!bucket.has_token(start + Duration::from_millis(19)));
        assert!(bucket.has_token(start + Duration::from_millis(20)));
        bucket.spend(1);
        // A second later: 50 more, never more than the burst.
        assert!(bucket.has_token(start + Duration::from_secs(10)));
        let mut n = 0;
        while bucket.has_token(start + Duration::from_secs(10)) {
            bucket.spend(1);
            n += 1;
        }
        assert_eq!(n, 50);
    }

    #[test]
    fn odd_rates_refill_exactly() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(Pace::lines(3), start);
        for _ in 0..3 {
            bucket.spend(1);
        }
        assert!(!bucket.has_token(start + Duration::from_micros(333_333)));
        assert!(bucket.has_token(start + Duration::from_micros(333_334)));
    }

    #[test]
    fn the_chat_pace_charges_a_line_by_its_length() {
        let pace = Pace::CHAT_DEFAULT;
        assert_eq!((pace.cost(0), pace.cost(64), pace.cost(65)), (1, 1, 2));
        assert_eq!(pace.cost(4096), 64);
        assert_eq!(Pace::lines(5).cost(4096), 1);
        let start = Instant::now();
        let mut bucket = TokenBucket::new(pace, start);
        // 64 KiB at once, then nothing more until it has been paid for.
        let mut sent = 0;
        while bucket.has_token(start) {
            bucket.spend(4096);
            sent += 4096;
        }
        assert_eq!(sent, 64 * 1024);
        // The last line went 24 tokens into debt: the next one waits for 25.
        assert!(!bucket.has_token(start + Duration::from_millis(24)));
        assert!(bucket.has_token(start + Duration::from_millis(25)));
        // Then 64 KiB a second: 16 such lines in the next second, not more.
        let mut lines = 0;
        for ms in 25..1025 {
            if bucket.has_token(start + Duration::from_millis(ms)) {
                bucket.spend(4096);
                lines += 1;
            }
        }
        assert_eq!(lines, 16);
    }

    #[test]
    fn a_line_dearer_than_what_is_left_is_paid_for_before_the_next() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(Pace::CHAT_DEFAULT, start);
        for _ in 0..999 {
            bucket.spend(1);
        }
        assert!(bucket.has_token(start));
        bucket.spend(4096); // 64 tokens with one left: 63 owed
        assert!(!bucket.has_token(start + Duration::from_millis(63)));
        assert!(bucket.has_token(start + Duration::from_millis(64)));
    }
}
