//! Text for a person's screen, shared by the terminal client and the GUI: what came from the
//! network made harmless (control and invisible characters shown, never acted on), quoted or
//! capitalised.

use std::borrow::Cow;

/// Text with every control character made visible: C0 and DEL in caret notation (`^[`, `^?`),
/// C1 as `\u{9b}`; and every invisible or format character (`crate::proto::name::is_invisible`: ZWSP,
/// ZWJ, bidi overrides, the BOM...) and the line and paragraph separators as `\u{200b}`.
/// Nothing that came from the network can drive the terminal or hide in plain sight.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() || is_hidden(c)) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c as u32 {
            code @ 0..=0x1f => {
                shown.push('^');
                shown.push(char::from(b'@' + code as u8));
            }
            0x7f => shown.push_str("^?"),
            code if c.is_control() || is_hidden(c) => shown.push_str(&format!("\\u{{{code:x}}}")),
            _ => shown.push(c),
        }
    }
    Cow::Owned(shown)
}

/// Shows nothing, or changes how the text around it shows, or ends a line for some readers.
fn is_hidden(c: char) -> bool {
    !c.is_ascii() && (crate::proto::name::is_invisible(c) || c == '\u{2028}' || c == '\u{2029}')
}

/// `welcome ann` -> `Welcome ann`: a reply's words as the start of a sentence.
pub fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Quotes what someone typed inside a warning: made visible and cut to a sane length.
pub fn quote(text: &str) -> String {
    const MAX_QUOTED_CHARS: usize = 40;
    let shown = visible(text);
    if shown.chars().count() <= MAX_QUOTED_CHARS {
        format!("\"{shown}\"")
    } else {
        let cut: String = shown.chars().take(MAX_QUOTED_CHARS).collect();
        format!("\"{cut}...\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_made_visible() {
        assert_eq!(visible("hello"), "hello");
        assert!(matches!(visible("plain text"), Cow::Borrowed(_)));
        assert_eq!(visible("\u{1b}[2J\u{1b}]0;owned\u{7}"), "^[[2J^[]0;owned^G");
        assert_eq!(visible("a\rb\tc\u{7f}"), "a^Mb^Ic^?");
        assert_eq!(visible("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(visible("été ✓"), "été ✓");
    }

    #[test]
    fn invisible_and_format_characters_are_made_visible() {
        assert_eq!(visible("a\u{200B}lice"), "a\\u{200b}lice");
        assert_eq!(visible("alice\u{200D}"), "alice\\u{200d}");
        assert_eq!(visible("\u{202E}alice"), "\\u{202e}alice");
        assert_eq!(visible("\u{2066}x\u{2069}"), "\\u{2066}x\\u{2069}");
        assert_eq!(visible("\u{FEFF}x\u{2060}y"), "\\u{feff}x\\u{2060}y");
        assert_eq!(visible("a\u{2028}b\u{2029}"), "a\\u{2028}b\\u{2029}");
        assert_eq!(visible("\u{3164}"), "\\u{3164}");
        // Letters, marks and emoji that show are left alone.
        assert_eq!(visible("Zoë 日本 e\u{301} 🚀"), "Zoë 日本 e\u{301} 🚀");
    }

    #[test]
    fn welcome_is_capitalised() {
        assert_eq!(capitalise("welcome bob, 2 online"), "Welcome bob, 2 online");
        assert_eq!(capitalise(""), "");
    }

    #[test]
    fn quotes_are_visible_and_short() {
        assert_eq!(quote("0"), "\"0\"");
        assert_eq!(quote("\u{1b}c"), "\"^[c\"");
        let long = quote(&"x".repeat(10_000));
        assert_eq!(long, format!("\"{}...\"", "x".repeat(40)));
    }
}
