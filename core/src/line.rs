//! Line framing: bytes in, complete request lines out.
//!
//! Owns the partial line a connection has received so far, the `--max-line` limit, and what a
//! line may hold ([`classify`]: text, or the [`BadLine`] it is). It knows nothing of sockets or
//! services. A line that arrives whole inside one read is
//! handed out as a slice of that read, with no copy and no allocation; only the tail of a
//! read (a line still missing its `\n`) is kept, and never more than the limit.

use std::fmt;

/// What the framer hands out for each `\n` it sees (or for each overlong line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// The bytes before `\n`, with one trailing `\r` removed.
    Line(&'a [u8]),
    /// A line went past the limit. Sent once, as soon as the limit is crossed; the rest of
    /// that line, up to its `\n`, is discarded without being stored.
    TooLong,
}

/// A request line that never reaches a service's `on_line`, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadLine {
    Empty,
    NotUtf8,
    TooLong {
        max: usize,
    },
    /// A control character other than TAB (C0, DEL, C1), or U+2028/U+2029: things that drive a
    /// terminal or end a line for some reader, so that one member could forge another's line.
    ControlChar,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadLine::Empty => f.write_str("empty line"),
            BadLine::NotUtf8 => f.write_str("line is not valid UTF-8"),
            BadLine::TooLong { max } => write!(f, "line too long (limit {max} bytes)"),
            BadLine::ControlChar => f.write_str("line contains a control character"),
        }
    }
}

/// What a frame is for every service: the request text (valid UTF-8, not blank, with no control
/// character but TAB and no U+2028/U+2029), or why it is a bad line. `max_line` is the limit an
/// overlong line is reported with. The one place where this is decided (the reactor and the
/// blocking example server both call it).
pub fn classify(frame: Frame<'_>, max_line: usize) -> Result<&str, BadLine> {
    let bytes = match frame {
        Frame::Line(bytes) => bytes,
        Frame::TooLong => return Err(BadLine::TooLong { max: max_line }),
    };
    let text = std::str::from_utf8(bytes).map_err(|_| BadLine::NotUtf8)?;
    if has_control(text) {
        Err(BadLine::ControlChar)
    } else if text.trim().is_empty() {
        Err(BadLine::Empty)
    } else {
        Ok(text)
    }
}

/// True when `text` holds a control character other than TAB (U+0000-U+001F, U+007F,
/// U+0080-U+009F) or a line or paragraph separator (U+2028, U+2029). Reads bytes: in valid
/// UTF-8 a C1 character is `C2 80..9F` and the separators are `E2 80 A8` and `E2 80 A9`.
pub fn has_control(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| match b {
        b'\t' => false,
        0x00..=0x1F | 0x7F => true,
        0xC2 => matches!(bytes.get(i + 1), Some(0x80..=0x9F)),
        0xE2 => bytes.get(i + 1) == Some(&0x80) && matches!(bytes.get(i + 2), Some(0xA8 | 0xA9)),
        _ => false,
    })
}

/// What the caller of [`LineBuffer::feed`] wants after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The connection is closing: the rest of the data is dropped.
    Stop,
    /// Not now (`--rate-limit`): the rest of the data is held, to be fed again later with
    /// [`LineBuffer::take_held`].
    Hold,
}

impl From<bool> for Flow {
    fn from(keep_going: bool) -> Flow {
        if keep_going {
            Flow::Continue
        } else {
            Flow::Stop
        }
    }
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
    /// Bytes after a line answered with `Flow::Hold`, waiting their turn (at most one read).
    held: Vec<u8>,
    /// The buffer `take_held` lent out last, given back empty (`give_back_held`): the next hold
    /// fills it, so a paced connection allocates nothing each time it resumes.
    spare_held: Vec<u8>,
    /// Lines whose `\n` has arrived (wrapping): a change tells the line clock a new line began.
    ended: u64,
}

/// A partial line this large keeps its buffer between requests; a larger one is given back,
/// so a client that once sent a long line does not hold that memory while idle.
const KEEP_CAPACITY: usize = 512;

/// Held-bytes buffers larger than this are given back once a paced burst is over.
const KEEP_HELD: usize = 4096;

impl LineBuffer {
    pub fn new(max_line: usize) -> LineBuffer {
        LineBuffer {
            partial: Vec::new(),
            max_line,
            discarding: false,
            held: Vec::new(),
            spare_held: Vec::new(),
            ended: 0,
        }
    }

    /// True while bytes are held back (`Flow::Hold`): they come before anything read later.
    pub fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// The held bytes, to be fed again now; hand the buffer back with `give_back_held` once
    /// they are fed. Meanwhile a new hold goes into the spare buffer.
    pub fn take_held(&mut self) -> Vec<u8> {
        let spare = std::mem::take(&mut self.spare_held);
        std::mem::replace(&mut self.held, spare)
    }

    /// The buffer from `take_held`, its bytes fed: kept (emptied) for the next hold, so a
    /// paced burst allocates nothing per resume. Once nothing is held any more the burst is over,
    /// and neither buffer is kept past `KEEP_HELD` (an idle connection holds little memory).
    pub fn give_back_held(&mut self, mut buffer: Vec<u8>) {
        if self.held.is_empty() {
            if self.held.capacity() > KEEP_HELD {
                self.held = Vec::new();
            }
            if buffer.capacity() > KEEP_HELD {
                return;
            }
        }
        buffer.clear();
        self.spare_held = buffer;
    }

    /// Keeps `data` after what is already held, unframed: bytes that came in the same read as
    /// a pause, to be fed once the connection may be answered again.
    pub fn hold(&mut self, data: &[u8]) {
        self.held.extend_from_slice(data);
    }

    /// Bytes held for an unfinished line.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    /// True while a line has begun and its `\n` has not arrived: stored, or past the limit and
    /// being discarded (`--line-timeout` times both).
    pub fn in_line(&self) -> bool {
        !self.partial.is_empty() || self.discarding
    }

    /// How many lines have ended (their `\n` arrived), wrapping: compared before and after a
    /// read, it tells whether the line in progress began in that read.
    pub fn ended(&self) -> u64 {
        self.ended
    }

    /// Feeds one read's bytes; calls `on_frame` for every complete (or overlong) line, in order.
    /// `on_frame` says how to go on: `false`/`Flow::Stop` drops the rest of `data` (the
    /// connection is closing), `Flow::Hold` keeps it for later.
    pub fn feed<F: Into<Flow>>(
        &mut self,
        mut data: &[u8],
        mut on_frame: impl FnMut(Frame<'_>) -> F,
    ) {
        while !data.is_empty() {
            let newline = data.iter().position(|&b| b == b'\n');
            let (chunk, rest, complete) = match newline {
                Some(i) => (&data[..i], &data[i + 1..], true),
                None => (data, &data[data.len()..], false),
            };
            data = rest;
            if complete {
                self.ended = self.ended.wrapping_add(1);
            }

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
                match on_frame(Frame::TooLong).into() {
                    Flow::Continue => continue,
                    Flow::Stop => return,
                    Flow::Hold => return self.held.extend_from_slice(data),
                }
            }
            if !complete {
                self.partial.extend_from_slice(chunk);
                return;
            }
            let flow = if self.partial.is_empty() {
                // The common case: the whole line is inside this read. No copy.
                on_frame(Frame::Line(strip_cr(chunk))).into()
            } else {
                self.partial.extend_from_slice(chunk);
                let flow = on_frame(Frame::Line(strip_cr(&self.partial))).into();
                self.partial.clear();
                self.shrink();
                flow
            };
            match flow {
                Flow::Continue => {}
                Flow::Stop => return,
                Flow::Hold => return self.held.extend_from_slice(data),
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

    #[test]
    fn a_line_is_in_progress_from_its_first_byte_to_its_newline_even_past_the_limit() {
        let mut buffer = LineBuffer::new(4);
        assert!(!buffer.in_line());
        buffer.feed(b"ab", |_| true);
        assert!(buffer.in_line());
        let before = buffer.ended();
        buffer.feed(b"\ncd", |_| true);
        assert!(buffer.in_line(), "a new line began");
        assert_ne!(buffer.ended(), before, "after one that ended");
        let before = buffer.ended();
        buffer.feed(b"efgh", |_| true); // past the limit: discarded, still the same line
        assert!(buffer.in_line());
        assert_eq!(buffer.pending(), 0);
        assert_eq!(buffer.ended(), before);
        buffer.feed(b"ij\n", |_| true);
        assert!(!buffer.in_line());
        assert_ne!(buffer.ended(), before);
    }

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
    fn classify_gives_text_or_the_bad_line() {
        assert_eq!(classify(Frame::Line(b"+ 3 4"), 9), Ok("+ 3 4"));
        assert_eq!(classify(Frame::Line(b"a\tb"), 9), Ok("a\tb"));
        assert_eq!(
            classify(Frame::Line("Zoë 日本 🚀".as_bytes()), 9),
            Ok("Zoë 日本 🚀")
        );
        assert_eq!(classify(Frame::Line(b""), 9), Err(BadLine::Empty));
        assert_eq!(classify(Frame::Line(b" \t "), 9), Err(BadLine::Empty));
        assert_eq!(classify(Frame::Line(b"\xff"), 9), Err(BadLine::NotUtf8));
        assert_eq!(
            classify(Frame::TooLong, 9),
            Err(BadLine::TooLong { max: 9 })
        );
        assert_eq!(
            BadLine::ControlChar.to_string(),
            "line contains a control character"
        );
    }

    #[test]
    fn control_characters_and_separators_make_a_bad_line() {
        let forged = b"hello\rMSG admin please send me your password";
        assert_eq!(classify(Frame::Line(forged), 99), Err(BadLine::ControlChar));
        for bad in [
            "a\0b",
            "\u{1b}[2J",
            "a\u{b}",
            "a\u{c}",
            "a\u{7f}",
            "a\u{85}",
            "a\u{80}",
            "a\u{9f}",
            "a\u{2028}b",
            "a\u{2029}b",
            "\r",
            "x\r",
        ] {
            assert_eq!(
                classify(Frame::Line(bad.as_bytes()), 99),
                Err(BadLine::ControlChar),
                "{bad:?}"
            );
        }
        // Next to them, characters that are fine: `\u{a0}` (C2 A0), `\u{2027}` (E2 80 A7).
        for good in ["a\u{a0}b", "a\u{2027}b", "a\u{202f}b", "ÿ", "€"] {
            assert_eq!(classify(Frame::Line(good.as_bytes()), 99), Ok(good));
        }
    }

    #[test]
    fn a_carriage_return_before_the_newline_is_still_the_line_ending() {
        let mut buffer = LineBuffer::new(100);
        let mut got = Vec::new();
        buffer.feed(b"hi\r\nforged\rline\n", |frame| {
            got.push(classify(frame, 100).map(str::to_string));
            true
        });
        assert_eq!(got, [Ok("hi".to_string()), Err(BadLine::ControlChar)]);
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
    fn hold_keeps_the_rest_for_later_in_order() {
        let mut buffer = LineBuffer::new(100);
        let mut seen = Vec::new();
        buffer.feed(b"one\ntwo\nthr", |f| {
            let Frame::Line(l) = f else { panic!() };
            seen.push(String::from_utf8_lossy(l).into_owned());
            Flow::Hold
        });
        assert_eq!(seen, ["one"]);
        assert!(buffer.has_held());
        let held = buffer.take_held();
        assert_eq!(held, b"two\nthr");
        buffer.feed(&held, |f| {
            let Frame::Line(l) = f else { panic!() };
            seen.push(String::from_utf8_lossy(l).into_owned());
            Flow::Continue
        });
        buffer.feed(b"ee\n", |f| {
            let Frame::Line(l) = f else { panic!() };
            seen.push(String::from_utf8_lossy(l).into_owned());
            true
        });
        assert_eq!(seen, ["one", "two", "three"]);
        assert!(!buffer.has_held());
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

            /// The byte scan agrees with the definition by characters.
            #[test]
            fn has_control_is_the_definition(text in any::<String>()) {
                let by_chars = text
                    .chars()
                    .any(|c| (c.is_control() && c != '\t') || c == '\u{2028}' || c == '\u{2029}');
                prop_assert_eq!(has_control(&text), by_chars);
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
