//! Line framing: bytes in, complete request lines out.
//!
//! Owns the partial line a connection has received so far and the `--max-line` limit.
//! It knows nothing of sockets or services. A line that arrives whole inside one read is
//! handed out as a slice of that read, with no copy and no allocation; only the tail of a
//! read (a line still missing its `\n`) is kept, and never more than the limit.

/// What the framer hands out for each `\n` it sees (or for each overlong line).
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// The bytes before `\n`, with one trailing `\r` removed.
    Line(&'a [u8]),
    /// A line went past the limit. Sent once, as soon as the limit is crossed; the rest of
    /// that line, up to its `\n`, is discarded without being stored.
    TooLong,
}

#[derive(Debug)]
pub struct LineBuffer {
    /// The start of a line whose `\n` has not arrived yet. Empty (and unallocated) for a
    /// connection that is between requests, which is most of them.
    partial: Vec<u8>,
    /// Longest line, in bytes before the `\n` (a trailing `\r` included), as SPEC says.
    max_line: usize,
    /// True from the moment a line crosses the limit until its `\n` arrives.
    discarding: bool,
}

/// A partial line this large keeps its buffer between requests; a larger one is given back,
/// so a client that once sent a long line does not hold that memory while idle.
const KEEP_CAPACITY: usize = 512;

impl LineBuffer {
    pub fn new(max_line: usize) -> LineBuffer {
        LineBuffer {
            partial: Vec::new(),
            max_line,
            discarding: false,
        }
    }

    /// Bytes held for an unfinished line.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    /// Feeds one read's bytes; calls `on_frame` for every complete (or overlong) line, in order.
    /// `on_frame` returns `false` to stop early (the connection is closing); the rest of `data`
    /// is then dropped.
    pub fn feed(&mut self, mut data: &[u8], mut on_frame: impl FnMut(Frame<'_>) -> bool) {
        while !data.is_empty() {
            let newline = data.iter().position(|&b| b == b'\n');
            let (chunk, rest, complete) = match newline {
                Some(i) => (&data[..i], &data[i + 1..], true),
                None => (data, &data[data.len()..], false),
            };
            data = rest;

            if self.discarding {
                // Still inside an overlong line: drop its bytes until the newline ends it.
                if complete {
                    self.discarding = false;
                }
                continue;
            }
            if self.partial.len() + chunk.len() > self.max_line {
                self.partial.clear();
                self.shrink();
                self.discarding = !complete;
                if !on_frame(Frame::TooLong) {
                    return;
                }
                continue;
            }
            if !complete {
                self.partial.extend_from_slice(chunk);
                return;
            }
            let keep_going = if self.partial.is_empty() {
                // The common case: the whole line is inside this read. No copy.
                on_frame(Frame::Line(strip_cr(chunk)))
            } else {
                self.partial.extend_from_slice(chunk);
                let keep_going = on_frame(Frame::Line(strip_cr(&self.partial)));
                self.partial.clear();
                self.shrink();
                keep_going
            };
            if !keep_going {
                return;
            }
        }
    }

    fn shrink(&mut self) {
        if self.partial.capacity() > KEEP_CAPACITY {
            self.partial = Vec::new();
        }
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `parts` one after another and returns what came out, lines as strings.
    fn frames(max: usize, parts: &[&[u8]]) -> Vec<String> {
        let mut buffer = LineBuffer::new(max);
        let mut out = Vec::new();
        for part in parts {
            buffer.feed(part, |frame| {
                out.push(match frame {
                    Frame::Line(l) => String::from_utf8_lossy(l).into_owned(),
                    Frame::TooLong => "<too long>".to_string(),
                });
                true
            });
        }
        out
    }

    #[test]
    fn whole_lines_in_one_read_come_out_in_order() {
        assert_eq!(frames(100, &[b"a\nbb\n\nccc\n"]), ["a", "bb", "", "ccc"]);
    }

    #[test]
    fn a_line_split_over_reads_is_joined() {
        assert_eq!(
            frames(100, &[b"+ 3", b" 4", b"\n1 +", b" 2\n"]),
            ["+ 3 4", "1 + 2"]
        );
    }

    #[test]
    fn carriage_return_before_newline_is_dropped_only_there() {
        assert_eq!(
            frames(100, &[b"a\r\nb\rc\n", b"d\r", b"\n"]),
            ["a", "b\rc", "d"]
        );
    }

    #[test]
    fn a_line_without_newline_stays_pending() {
        let mut buffer = LineBuffer::new(100);
        let mut count = 0;
        buffer.feed(b"abc", |_| {
            count += 1;
            true
        });
        assert_eq!(count, 0);
        assert_eq!(buffer.pending(), 3);
    }

    #[test]
    fn the_limit_counts_bytes_before_newline_including_cr() {
        assert_eq!(frames(3, &[b"abc\n"]), ["abc"]);
        assert_eq!(frames(3, &[b"abcd\n"]), ["<too long>"]);
        assert_eq!(frames(3, &[b"abc\r\n"]), ["<too long>"]);
    }

    #[test]
    fn overlong_line_gives_one_error_then_framing_goes_on() {
        assert_eq!(
            frames(4, &[b"ok\n123", b"456789", b"0123\nnext\n"]),
            ["ok", "<too long>", "next"]
        );
    }

    #[test]
    fn overlong_line_without_newline_is_not_stored() {
        let mut buffer = LineBuffer::new(10);
        let mut errors = 0;
        for _ in 0..1000 {
            buffer.feed(&[b'x'; 1000], |f| {
                assert_eq!(f, Frame::TooLong);
                errors += 1;
                true
            });
        }
        assert_eq!(errors, 1);
        assert_eq!(buffer.pending(), 0);
    }

    #[test]
    fn returning_false_stops_the_feed() {
        let mut buffer = LineBuffer::new(100);
        let mut seen = Vec::new();
        buffer.feed(b"q\nafter\n", |f| {
            seen.push(format!("{f:?}"));
            false
        });
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn framing_does_not_depend_on_how_bytes_are_split() {
        let input: &[u8] = b"+ 3 4\r\n\nhello world\n12345678901234567890\nx\n";
        let whole = frames(12, &[input]);
        for split in 0..input.len() {
            let (a, b) = input.split_at(split);
            assert_eq!(frames(12, &[a, b]), whole, "split at {split}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(frames(12, &bytes), whole);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Frames of `input` fed in pieces cut at `cuts`.
        fn framed(max: usize, input: &[u8], cuts: &[usize]) -> (Vec<Vec<u8>>, usize) {
            let mut buffer = LineBuffer::new(max);
            let mut out = Vec::new();
            let mut at = 0;
            let mut ends: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
            ends.sort_unstable();
            ends.push(input.len());
            for end in ends {
                buffer.feed(&input[at..end.max(at)], |frame| {
                    out.push(match frame {
                        Frame::Line(l) => l.to_vec(),
                        Frame::TooLong => b"<too long>".to_vec(),
                    });
                    true
                });
                at = end.max(at);
            }
            (out, buffer.pending())
        }

        proptest! {
            #[test]
            fn framing_is_independent_of_how_bytes_are_split(
                input in prop::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), any::<u8>()], 0..600),
                cuts in prop::collection::vec(any::<usize>(), 0..12),
                max in 1usize..64,
            ) {
                let (whole, pending_whole) = framed(max, &input, &[]);
                let (split, pending_split) = framed(max, &input, &cuts);
                prop_assert_eq!(whole, split);
                prop_assert_eq!(pending_whole, pending_split);
            }

            #[test]
            fn nothing_held_ever_exceeds_the_limit(
                input in prop::collection::vec(any::<u8>(), 0..2000),
                cuts in prop::collection::vec(any::<usize>(), 0..12),
                max in 1usize..100,
            ) {
                let (frames, pending) = framed(max, &input, &cuts);
                prop_assert!(pending <= max);
                for frame in frames {
                    prop_assert!(frame.len() <= max || frame == b"<too long>");
                }
            }
        }
    }
}
