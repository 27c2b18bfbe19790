//! What a connection's first bytes looked like, kept while it handshakes: enough to tell a
//! plain-text line (answered with one plain `ERR` line) from binary that is not TLS (answered
//! with rustls's alert), and to say in the log what came (SPEC "Trust at the edges").
//!
//! Seven bytes per connection, and the scan stops at the first byte that decides it: a TLS
//! client's first byte (0x16) is not text, so for every real client it ends at once. Text with no
//! line end yet is given up to [`MAX_TEXT_LINE`] bytes to show its `\n` (a plain client's line may
//! come in several TCP segments); past that it is not a line a person typed.

/// How many bytes of text may come before their `\n` and still be answered as a plain-text
/// line: a typed command, not a file.
pub(crate) const MAX_TEXT_LINE: u16 = 16 * 1024;

/// The first bytes seen on a TLS connection, before rustls took them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FirstBytes {
    /// The first three bytes (fewer while fewer came): an SSLv2 hello shows itself there.
    head: [u8; 3],
    head_len: u8,
    text: Text,
    /// Bytes of text so far, while `text` is undecided (at most [`MAX_TEXT_LINE`]).
    text_len: u16,
}

/// Whether the bytes so far read as a line of text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Text {
    /// Only printable bytes so far, no line end yet.
    #[default]
    Undecided,
    /// Printable bytes, then `\n`: a plain-text line.
    Line,
    /// A byte no text line holds before its `\n` (a control byte other than tab and CR).
    Binary,
}

impl FirstBytes {
    /// Whether more bytes could change the verdict (the head is not full, or the text is open).
    pub(crate) fn wants_more(&self) -> bool {
        usize::from(self.head_len) < self.head.len() || self.text == Text::Undecided
    }

    /// Takes note of the next bytes that came, in order.
    pub(crate) fn note(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if !self.wants_more() {
                return;
            }
            if let Some(slot) = self.head.get_mut(usize::from(self.head_len)) {
                *slot = byte;
                self.head_len += 1;
            }
            if self.text == Text::Undecided {
                self.text = match byte {
                    b'\n' => Text::Line,
                    // Too long to be a line someone typed: whatever it is, it is not that.
                    _ if self.text_len >= MAX_TEXT_LINE => Text::Binary,
                    // Printable ASCII, tab, CR (telnet's CRLF), and UTF-8's bytes: text.
                    b'\t' | b'\r' | 0x20..=0x7E | 0x80..=0xFF => Text::Undecided,
                    _ => Text::Binary,
                };
                self.text_len += 1;
            }
        }
    }

    /// The bytes so far are text with no line end yet: the next bytes may make them a line.
    pub(crate) fn is_text_so_far(&self) -> bool {
        self.head_len > 0 && self.text == Text::Undecided
    }

    /// The peer sent a plain-text line: printable bytes ending in `\n` (SPEC: only that is
    /// answered with the plain `ERR this port speaks TLS`).
    pub(crate) fn is_plain_text_line(&self) -> bool {
        self.text == Text::Line
    }

    /// What came, for the close line of a connection whose bytes rustls found were not TLS
    /// (an unknown record content type).
    pub(crate) fn describe(&self) -> String {
        let head = &self.head[..usize::from(self.head_len)];
        match head {
            _ if self.is_plain_text_line() => "not TLS: a plain-text line".into(),
            // SSLv2's record header: the length's high bit set, then message type 1 (RFC 6101
            // appendix E.2; the format SSLv2-compatible hellos use).
            [first, _, 1] if first & 0x80 != 0 => {
                "not TLS: an SSLv2-format hello (SSL 2.0 is not spoken)".into()
            }
            [first, ..] if first & 0x80 != 0 => "not TLS: an SSLv2-format record".into(),
            // The first record was TLS (handshake, alert, CCS, application data, heartbeat);
            // a later one was not.
            [20..=24, ..] => "a TLS record of unknown content type".into(),
            [_, ..] if self.text == Text::Undecided => "not TLS: text with no line end".into(),
            [first, ..] => format!("not TLS: binary bytes (the first is 0x{first:02x})"),
            [] => "not TLS".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(chunks: &[&[u8]]) -> FirstBytes {
        let mut first = FirstBytes::default();
        for chunk in chunks {
            first.note(chunk);
        }
        first
    }

    #[test]
    fn only_printable_bytes_ending_in_a_newline_are_a_plain_text_line() {
        for line in [
            &b"hello\n"[..],
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"+ 3 4\n",
            "name Zoë\n".as_bytes(),
            b"\tq\n",
        ] {
            assert!(seen(&[line]).is_plain_text_line(), "{line:?}");
        }
        // Split anywhere, it is the same line.
        assert!(seen(&[b"hel", b"", b"lo", b"\n"]).is_plain_text_line());
        assert!(seen(&[b"hello"]).is_text_so_far());
        // A line end only after more than a typed line's worth of text is no typed line.
        let long = vec![b'a'; usize::from(MAX_TEXT_LINE) + 1];
        assert!(!seen(&[&long, b"\n"]).is_plain_text_line());
        assert!(!seen(&[&long]).is_text_so_far());
        let just = vec![b'a'; usize::from(MAX_TEXT_LINE) - 1];
        assert!(seen(&[&just, b"\n"]).is_plain_text_line());
        for not_a_line in [
            &b"hello"[..],                             // no line end (yet)
            b"\x80\x2e\x01\x03\x01\x00\x15\x00\x00\n", // SSLv2 hello
            b"\x16\x03\x01\x00\x05hello\n",            // a TLS record
            b"\x99\x03\x03\x00\x01\x00",               // an unknown content type
            b"hel\x00lo\n",                            // a NUL before the line end
            b"\x1b[A\n",                               // an escape sequence
            b"",
        ] {
            assert!(!seen(&[not_a_line]).is_plain_text_line(), "{not_a_line:?}");
        }
    }

    #[test]
    fn what_came_is_said_in_words() {
        assert_eq!(seen(&[b"hello\n"]).describe(), "not TLS: a plain-text line");
        assert_eq!(
            seen(&[b"\x80\x2e\x01\x03\x01"]).describe(),
            "not TLS: an SSLv2-format hello (SSL 2.0 is not spoken)"
        );
        assert_eq!(
            seen(&[b"\x80\x00", b"\x00"]).describe(),
            "not TLS: an SSLv2-format record"
        );
        assert_eq!(
            seen(&[b"\x16\x03\x01\x00\x30"]).describe(),
            "a TLS record of unknown content type"
        );
        assert_eq!(
            seen(&[b"\x00\x01\x02\x03"]).describe(),
            "not TLS: binary bytes (the first is 0x00)"
        );
        assert_eq!(
            seen(&[b"hello"]).describe(),
            "not TLS: text with no line end"
        );
    }

    #[test]
    fn the_scan_stops_once_decided() {
        let mut first = seen(&[b"\x16\x03\x01"]);
        assert!(!first.wants_more());
        first.note(b"hello\n");
        assert!(!first.is_plain_text_line());
        assert!(seen(&[b"ab"]).wants_more());
        assert!(!seen(&[b"ab\ncd"]).wants_more());
    }
}
