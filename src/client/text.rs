//! Text for a person's screen, shared by the terminal client and the GUI: what came from the
//! network made harmless (control and invisible characters shown, never acted on), quoted or
//! capitalised.

use std::borrow::Cow;

/// Text as the person who typed it meant it, with what could drive the terminal or deceive made
/// visible: C0 controls but TAB in caret notation (`^[`, `^M`), DEL as `^?`, C1 as `\u{9b}`; bidi
/// marks, embeddings, overrides and isolates, the line and paragraph separators, and every
/// invisible or format character that stands alone (`\u{200b}`). What joins or styles the
/// characters around it prints as itself: a ZWJ between two emoji (`👨‍👩‍👧`), a ZWNJ between two
/// letters (Persian, Indic scripts), a variation selector after a visible character (`❤️`), tag
/// characters after a black flag (the flags of England, Scotland, Wales). The categories behind it
/// are in docs/clients.md.
pub fn visible(text: &str) -> Cow<'_, str> {
    let mut previous = None;
    let mut chars = text.chars().peekable();
    let mut plain = true;
    while let Some(c) = chars.next() {
        if !shown_as_itself(previous, c, chars.peek().copied()) {
            plain = false;
            break;
        }
        previous = Some(c);
    }
    if plain {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    let mut previous = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c as u32 {
            _ if shown_as_itself(previous, c, chars.peek().copied()) => shown.push(c),
            code @ 0..=0x1f => {
                shown.push('^');
                shown.push(char::from(b'@' + code as u8));
            }
            0x7f => shown.push_str("^?"),
            code => shown.push_str(&format!("\\u{{{code:x}}}")),
        }
        previous = Some(c);
    }
    Cow::Owned(shown)
}

/// Whether `c`, between `previous` and `next`, is printed as itself.
fn shown_as_itself(previous: Option<char>, c: char, next: Option<char>) -> bool {
    use unicode_properties::{UnicodeEmoji, emoji};
    let visible_base = |c: Option<char>| {
        c.is_some_and(|c| {
            !(c.is_control() || c.is_whitespace() || crate::proto::name::is_invisible(c))
        })
    };
    let emoji_side = |c: Option<char>| c.is_some_and(|c| c.is_emoji_char_or_emoji_component());
    match c {
        '\t' => true,
        c if c.is_ascii() => !c.is_ascii_control(),
        c if c.is_control() => false,
        // Bidi marks, embeddings, overrides, isolates: they reorder what follows (Trojan Source).
        '\u{61C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => {
            false
        }
        '\u{2028}' | '\u{2029}' => false,
        // A ZWJ joining two emoji into one picture (emoji components: skin tones, VS16, keycaps).
        '\u{200D}' => emoji_side(previous) && emoji_side(next),
        // A ZWNJ between two letters: how Persian and Indic scripts write some words.
        '\u{200C}' => {
            previous.is_some_and(char::is_alphabetic) && next.is_some_and(char::is_alphabetic)
        }
        // A variation selector styles the character before it (`❤️` is U+2764 U+FE0F).
        c if emoji::is_emoji_presentation_selector(c)
            || emoji::is_text_presentation_selector(c)
            || ('\u{FE00}'..='\u{FE0D}').contains(&c)
            || ('\u{E0100}'..='\u{E01EF}').contains(&c) =>
        {
            visible_base(previous)
        }
        // Tag characters spell a subdivision flag after U+1F3F4 WAVING BLACK FLAG.
        c if emoji::is_tag_character(c) => {
            previous.is_some_and(|p| p == '\u{1F3F4}' || emoji::is_tag_character(p))
        }
        c => !crate::proto::name::is_invisible(c),
    }
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
        assert_eq!(visible("a\rb\tc\u{7f}"), "a^Mb\tc^?");
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
    fn emoji_sequences_and_joined_letters_print_as_themselves() {
        for text in [
            "❤\u{FE0F}",              // what phone keyboards send for ❤️
            "👨\u{200D}👩\u{200D}👧", // a family, ZWJ-joined
            "👩\u{1F3FD}\u{200D}💻",  // with a skin tone before the ZWJ
            "1\u{FE0F}\u{20E3}",      // keycap one
            "\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}", // England
            "می\u{200C}خواهم",        // Persian with a ZWNJ
            "a\tb",
        ] {
            assert_eq!(visible(text), text, "{text:?}");
        }
    }

    #[test]
    fn lone_joiners_and_selectors_are_still_shown_as_codes() {
        assert_eq!(visible("al\u{200D}ice"), "al\\u{200d}ice");
        assert_eq!(visible("\u{200D}👩"), "\\u{200d}👩");
        assert_eq!(visible("👩\u{200D}"), "👩\\u{200d}");
        assert_eq!(visible("a\u{200C}"), "a\\u{200c}");
        assert_eq!(visible("\u{FE0F}x"), "\\u{fe0f}x");
        assert_eq!(visible(" \u{FE0F}"), " \\u{fe0f}");
        assert_eq!(visible("x\u{E0067}"), "x\\u{e0067}");
        // A bidi override stays visible, whatever surrounds it.
        assert_eq!(visible("👩\u{202E}👩"), "👩\\u{202e}👩");
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
