//! `--rate-limit N`: a token bucket per connection. N tokens a second, at most N saved up (the
//! burst); a request line takes one. A connection without a token is not refused: its next line
//! waits (the bytes are held, the socket is not read) until the poll timeout brings a token.
//! Pure: the reactor passes the time in.

use std::time::{Duration, Instant};

/// One token, in the bucket's unit (a millionth of a token, so that every microsecond refills an
/// exact whole number of units at any rate).
const TOKEN: u64 = 1_000_000;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_second: u64,
    units: u64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket: a new connection may send its burst at once.
    pub fn new(per_second: u32, now: Instant) -> TokenBucket {
        let per_second = u64::from(per_second.max(1));
        TokenBucket {
            per_second,
            units: per_second * TOKEN,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let micros = now.saturating_duration_since(self.last).as_micros();
        let added = u64::try_from(micros)
            .unwrap_or(u64::MAX)
            .saturating_mul(self.per_second);
        self.units = self
            .units
            .saturating_add(added)
            .min(self.per_second * TOKEN);
        self.last = now;
    }

    /// True when a line may be handled now.
    pub fn has_token(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.units >= TOKEN
    }

    /// A line was handled: one token less.
    pub fn spend(&mut self) {
        self.units = self.units.saturating_sub(TOKEN);
    }

    /// How long until the next token (as of the last look at the clock), rounded up.
    pub fn wait(&self) -> Duration {
        let missing = TOKEN.saturating_sub(self.units);
        Duration::from_micros(missing.div_ceil(self.per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(50, start);
        for _ in 0..50 {
            assert!(bucket.has_token(start));
            bucket.spend();
        }
        assert!(!bucket.has_token(start));
        assert_eq!(bucket.wait(), Duration::from_millis(20));
        assert!(!bucket.has_token(start + Duration::from_millis(19)));
        assert!(bucket.has_token(start + Duration::from_millis(20)));
        bucket.spend();
        // A second later: 50 more, never more than the burst.
        assert!(bucket.has_token(start + Duration::from_secs(10)));
        let mut n = 0;
        while bucket.has_token(start + Duration::from_secs(10)) {
            bucket.spend();
            n += 1;
        }
        assert_eq!(n, 50);
    }

    #[test]
    fn odd_rates_refill_exactly() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(3, start);
        for _ in 0..3 {
            bucket.spend();
        }
        assert!(!bucket.has_token(start + Duration::from_micros(333_333)));
        assert!(bucket.has_token(start + Duration::from_micros(333_334)));
    }
}
