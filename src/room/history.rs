//! What this instance sent to the other instances, kept so that nothing is lost while Redis is
//! away (`--chat-redis`): every room line gets the next number and is kept here, whole (the
//! payload as published), for [`REPLAY_WINDOW`] and at most [`HISTORY_BYTES`]. Lines Redis did
//! not acknowledge are published again once the bus is back; a receiver that finds a gap in the
//! numbers asks for the lines from the first it missed (`cluster.rs`). Pure: no IO, no clock.
//!
//! The bytes live in one ring buffer, so once it has grown nothing is allocated per line.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long a line may be asked for again: an outage of up to 10 s loses nothing (the
/// contract), with the reconnection's few seconds on top.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(20);

/// At most this much is kept; past it the oldest lines go first, and a receiver asking for
/// them is told they are gone. A 10 s outage and the reconnection after it (11.75 s at worst)
/// at 20,000 lines a second of ~90 bytes (64-byte messages with their numbers) is 21 MB:
/// 16 MiB lost 47,000 lines each way in `chatbench --chaos --unpaced --rate 40000 --members 1
/// --outage 10` (two instances, 20,000 lines a second each).
pub const HISTORY_BYTES: usize = 32 << 20;

#[derive(Debug)]
struct Entry {
    number: u64,
    len: usize,
    at: Instant,
}

/// The numbered lines of this instance, oldest first.
#[derive(Debug, Default)]
pub struct History {
    bytes: VecDeque<u8>,
    entries: VecDeque<Entry>,
    /// The number the next line gets (lines are numbered from 1).
    next: u64,
    /// The highest number Redis acknowledged (`PUBLISH` answered).
    acknowledged: u64,
}

impl History {
    pub fn new() -> History {
        History {
            next: 1,
            ..History::default()
        }
    }

    /// The number the next line will get.
    pub fn next_number(&self) -> u64 {
        self.next
    }

    /// The number of the last line (0 before the first).
    pub fn last_number(&self) -> u64 {
        self.next - 1
    }

    /// Keeps `payload` as line number [`Self::next_number`] (which the caller wrote into it),
    /// and drops what is past the window or the size limit.
    pub fn record(&mut self, payload: &[u8], now: Instant) -> u64 {
        let number = self.next;
        self.next += 1;
        self.bytes.extend(payload);
        self.entries.push_back(Entry {
            number,
            len: payload.len(),
            at: now,
        });
        self.trim(now);
        number
    }

    /// Redis answered the `PUBLISH` of line `number`.
    pub fn acknowledged(&mut self, number: u64) {
        self.acknowledged = self.acknowledged.max(number);
    }

    /// The first line Redis has not acknowledged.
    pub fn first_unacknowledged(&self) -> u64 {
        self.acknowledged + 1
    }

    /// The oldest line still kept (the next number when none is).
    pub fn oldest(&self) -> u64 {
        self.entries.front().map_or(self.next, |e| e.number)
    }

    /// Drops lines older than the window, and the oldest past the size limit.
    pub fn trim(&mut self, now: Instant) {
        while let Some(first) = self.entries.front() {
            let old = now.saturating_duration_since(first.at) > REPLAY_WINDOW;
            if !old && self.bytes.len() <= HISTORY_BYTES {
                break;
            }
            self.bytes.drain(..first.len);
            self.entries.pop_front();
        }
    }

    /// Each kept line from `first` on, oldest first, through `each(number, payload)`; the
    /// payload is copied into `scratch` (reused) when the ring buffer wraps.
    pub fn replay(&self, first: u64, scratch: &mut Vec<u8>, mut each: impl FnMut(u64, &[u8])) {
        let mut offset = 0;
        for entry in &self.entries {
            let range = offset..offset + entry.len;
            offset += entry.len;
            if entry.number < first {
                continue;
            }
            scratch.clear();
            scratch.extend(self.bytes.range(range));
            each(entry.number, scratch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replayed(history: &History, first: u64) -> Vec<(u64, String)> {
        let mut got = Vec::new();
        let mut scratch = Vec::new();
        history.replay(first, &mut scratch, |n, p| {
            got.push((n, String::from_utf8_lossy(p).into_owned()))
        });
        got
    }

    #[test]
    fn lines_are_numbered_kept_and_replayed_from_any_number() {
        let mut history = History::new();
        let now = Instant::now();
        assert_eq!((history.last_number(), history.oldest()), (0, 1));
        for text in ["a", "bb", "ccc"] {
            history.record(text.as_bytes(), now);
        }
        assert_eq!(history.last_number(), 3);
        assert_eq!(
            replayed(&history, 2),
            [(2, "bb".to_string()), (3, "ccc".to_string())]
        );
        history.acknowledged(2);
        history.acknowledged(1);
        assert_eq!(history.first_unacknowledged(), 3);
    }

    #[test]
    fn old_lines_and_lines_past_the_size_limit_are_dropped_first() {
        let mut history = History::new();
        let start = Instant::now();
        history.record(b"old", start);
        history.record(b"newer", start + REPLAY_WINDOW / 2);
        history.trim(start + REPLAY_WINDOW + Duration::from_millis(1));
        assert_eq!(history.oldest(), 2);
        assert_eq!(replayed(&history, 1), [(2, "newer".to_string())]);
        let big = vec![b'x'; HISTORY_BYTES / 2];
        let now = start + REPLAY_WINDOW;
        history.record(&big, now);
        history.record(&big, now);
        history.record(b"last", now);
        assert_eq!(history.oldest(), 4);
        assert_eq!(history.bytes.len(), big.len() + 4);
    }

    #[test]
    fn a_wrapped_ring_buffer_replays_whole_lines() {
        let mut history = History::new();
        let now = Instant::now();
        for i in 0..1000u64 {
            history.record(format!("line {i}").as_bytes(), now);
            if i % 3 == 0 {
                // Drops from the front while adding at the back: the ring wraps.
                let first = history.entries.pop_front().unwrap();
                history.bytes.drain(..first.len);
            }
        }
        let got = replayed(&history, 990);
        let want: Vec<(u64, String)> = (990..=1000)
            .map(|n| (n, format!("line {}", n - 1)))
            .collect();
        assert_eq!(got, want);
    }
}
