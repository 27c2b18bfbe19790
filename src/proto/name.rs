//! Names: which names a client may take (the same rule in every service), and when two names are
//! one name (the chat room's directory, on every worker and every instance).
//!
//! The contract ("Names, and what a line may hold"): 1-32 characters, no whitespace, no control
//! characters, no invisible or format characters; two names are the same name when they are
//! equal after NFKC and case folding, or confusable by the UTS #39 skeleton. We go one step
//! further (docs/protocol.md explains why): a name may not mix letters of scripts that no
//! language writes together (Latin with Cyrillic, say), so that nobody can pass for a member who
//! is not online yet. Emoji and other symbols are allowed.
//!
//! Nothing here is a hand-written Unicode table: the categories, the scripts, normalization,
//! case folding and the confusables come from the unicode-rs crates (Cargo.toml says which).

use std::fmt;

use caseless::Caseless;
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
use unicode_script::{Script, UnicodeScript};
use unicode_security::GeneralSecurityProfile;
use unicode_security::general_security_profile::IdentifierType;
use unicode_security::mixed_script::AugmentedScriptSet;

/// The longest name a client may take, in characters (Unicode scalar values).
pub const MAX_NAME_CHARS: usize = 32;

/// Why a name cannot be taken. Its `Display` is the reason a person reads after `ERR `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    /// Empty, longer than [`MAX_NAME_CHARS`], or holding whitespace.
    Shape,
    /// A control character (C0, DEL, C1).
    Control,
    /// An invisible or format character (Unicode Cf, a default-ignorable code point, a blank
    /// filler): the character, shown as `U+200B`.
    Invisible(char),
    /// A code point Unicode has not assigned (nobody can tell how it will look).
    Unassigned(char),
    /// Letters of two scripts that no language writes together (the first two found).
    MixedScripts(Script, Script),
    /// No letter or digit at all (Unicode L* or N*): only marks, symbols or punctuation.
    NoLetterOrDigit,
    /// A combining mark with no base character before it (at the start, or after a space).
    LoneMark(char),
    /// An exchange name (sum's `Client of NAME;N`, the server's `--name`) that is empty, longer
    /// than [`MAX_EXCHANGE_NAME_CHARS`], or with spaces at its ends or two in a row.
    ExchangeShape,
    /// An exchange name holding `;`, which ends the name on the wire.
    Semicolon,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Shape => f.write_str("name must be 1-32 characters without spaces"),
            NameError::Control => f.write_str("name must not contain control characters"),
            NameError::Invisible(c) => write!(
                f,
                "name must not contain invisible or format characters (it holds U+{:04X})",
                u32::from(*c)
            ),
            NameError::Unassigned(c) => write!(
                f,
                "name must not contain unassigned characters (it holds U+{:04X})",
                u32::from(*c)
            ),
            NameError::MixedScripts(a, b) => write!(
                f,
                "name must not mix {} and {} letters",
                a.full_name(),
                b.full_name()
            ),
            NameError::NoLetterOrDigit => {
                f.write_str("name must hold at least one letter or digit")
            }
            NameError::LoneMark(c) => write!(
                f,
                "name must not hold a combining mark without a letter before it (U+{:04X})",
                u32::from(*c)
            ),
            NameError::ExchangeShape => {
                f.write_str("name must be 1-64 characters, words separated by single spaces")
            }
            NameError::Semicolon => f.write_str("name must not contain ';'"),
        }
    }
}

/// The longest name in sum's exchange (`Client of NAME;N`) and the server's `--name`.
pub const MAX_EXCHANGE_NAME_CHARS: usize = 64;

/// Every rule a name must follow, in every service: [`check_form`], [`check_visible`], then
/// [`check_scripts`].
pub fn check(name: &str) -> Result<(), NameError> {
    check_form(name)?;
    check_visible(name)?;
    check_scripts(name)
}

/// The rule for a name in sum's exchange and for the server's `--name`: the fourth seed's names
/// have spaces (`John Q. Smith`), so words separated by single spaces, 1-64 characters, no `;`
/// (it ends the name on the wire); each word follows the characters' rules of [`check`], and the
/// whole must be something one can see ([`check_visible`], [`check_scripts`]).
pub fn check_exchange(name: &str) -> Result<(), NameError> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_EXCHANGE_NAME_CHARS || name.starts_with(' ') || name.ends_with(' ')
    {
        return Err(NameError::ExchangeShape);
    }
    if name.contains(';') {
        return Err(NameError::Semicolon);
    }
    for word in name.split(' ') {
        if word.is_empty() {
            return Err(NameError::ExchangeShape);
        }
        // 64 characters at most in all, so no word is over the form's 32 by more than the whole.
        check_characters(word)?;
    }
    check_visible(name)?;
    check_scripts(name)
}

/// A name shows something: it holds at least one letter or digit (Unicode L* or N*), and every
/// combining mark (Unicode M*) follows a base character, directly or after other marks, so no
/// name is only accents, enclosing circles or marks stacked on a space.
pub fn check_visible(name: &str) -> Result<(), NameError> {
    let mut after_base = false;
    for c in name.chars() {
        let mark = is_mark(c);
        if mark && !after_base {
            return Err(NameError::LoneMark(c));
        }
        after_base = mark || !(c.is_whitespace() || c.is_control() || is_invisible(c));
    }
    if !name.chars().any(is_letter_or_digit) {
        return Err(NameError::NoLetterOrDigit);
    }
    Ok(())
}

fn is_mark(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::NonspacingMark
            | GeneralCategory::SpacingMark
            | GeneralCategory::EnclosingMark
    )
}

fn is_letter_or_digit(c: char) -> bool {
    use GeneralCategory as G;
    matches!(
        c.general_category(),
        G::UppercaseLetter
            | G::LowercaseLetter
            | G::TitlecaseLetter
            | G::ModifierLetter
            | G::OtherLetter
            | G::DecimalNumber
            | G::LetterNumber
            | G::OtherNumber
    )
}

/// The characters of a name: 1-32 of them, none of them whitespace, a control character, an
/// invisible or format character (zero-width space and joiners, bidi overrides and isolates,
/// the BOM, the word joiner, variation selectors, Hangul fillers...) or an unassigned one.
pub fn check_form(name: &str) -> Result<(), NameError> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(NameError::Shape);
    }
    check_characters(name)
}

/// The characters of a word: none of them whitespace, a control, invisible, format or unassigned
/// character (the part of [`check_form`] that does not count).
fn check_characters(name: &str) -> Result<(), NameError> {
    // Before whitespace: TAB and NEL are both, and "control" says more.
    if name.chars().any(char::is_control) {
        return Err(NameError::Control);
    }
    if name.chars().any(char::is_whitespace) {
        return Err(NameError::Shape);
    }
    if let Some(c) = name.chars().find(|&c| is_invisible(c)) {
        return Err(NameError::Invisible(c));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.general_category() == GeneralCategory::Unassigned)
    {
        return Err(NameError::Unassigned(c));
    }
    Ok(())
}

/// The letters of a name come from one script, or from a mix a language writes (Japanese: Han,
/// Hiragana, Katakana; Korean: Han, Hangul; Chinese: Han, Bopomofo; each with Latin), as UTS #39
/// "highly restrictive" allows. Digits, punctuation, symbols and emoji belong to every script.
pub fn check_scripts(name: &str) -> Result<(), NameError> {
    let all = AugmentedScriptSet::for_str(name);
    if !all.is_empty() {
        return Ok(());
    }
    let without_latin = name
        .chars()
        .filter(|&c| {
            !AugmentedScriptSet::for_char(c)
                .base
                .contains_script(Script::Latin)
        })
        .fold(AugmentedScriptSet::default(), |mut set, c| {
            set.intersect_with(AugmentedScriptSet::for_char(c));
            set
        });
    if without_latin.jpan || without_latin.kore || without_latin.hanb {
        return Ok(());
    }
    let mut scripts = name
        .chars()
        .map(|c| c.script())
        .filter(|s| !matches!(s, Script::Common | Script::Inherited | Script::Unknown));
    let first = scripts.next().unwrap_or(Script::Unknown);
    let second = scripts.find(|&s| s != first).unwrap_or(Script::Unknown);
    Err(NameError::MixedScripts(first, second))
}

/// True for a character that shows nothing, or changes how its neighbours show: Unicode Cf
/// (ZWSP, ZWJ/ZWNJ, LRM/RLM, bidi embeddings, overrides and isolates, the word joiner, the
/// BOM, invisible operators), default-ignorable code points (variation selectors, the
/// combining grapheme joiner, Hangul fillers, tags), and the assigned characters that fonts draw
/// as nothing although Unicode gives them no such property: the blank braille pattern, the
/// musical null notehead, the Khitan filler.
/// Clients use it too, to show such characters visibly.
pub fn is_invisible(c: char) -> bool {
    c.general_category() == GeneralCategory::Format
        || c.identifier_type() == Some(IdentifierType::Default_Ignorable)
        || DRAWN_AS_NOTHING.contains(&c)
}

/// Letters or symbols that draw as blank space without being whitespace, format characters or
/// default-ignorable: no Unicode property names them, so the list is the one public lists of
/// "invisible characters" agree on (Hangul fillers, U+2800, U+1D159 MUSICAL SYMBOL NULL
/// NOTEHEAD, U+16FE4 KHITAN SMALL SCRIPT FILLER, U+303F IDEOGRAPHIC HALF FILL SPACE).
const DRAWN_AS_NOTHING: [char; 8] = [
    '\u{115F}',
    '\u{1160}',
    '\u{3164}',
    '\u{FFA0}',
    '\u{2800}',
    '\u{1D159}',
    '\u{16FE4}',
    '\u{303F}',
];

/// What two names are compared by. Two names are the same name when
/// - their NFKC + case-folded forms have one UTS #39 skeleton (`Alice` and `alice`, fullwidth
///   `ａlice` and `alice`, Cyrillic `АLICE` and `alice`), or
/// - they have one skeleton as typed (`Ilse` and `llse`: a capital I looks like a small L, which
///   case folding would hide by making it `i`).
///
/// Names stay names of their own when they look different: `alicia`, `Zoë`, `日本`, `alice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameKey {
    folded: String,
    typed: String,
}

impl NameKey {
    pub fn of(name: &str) -> NameKey {
        let folded: String = name.nfkc().default_case_fold().nfkc().collect();
        NameKey {
            folded: unicode_security::skeleton(&folded).collect(),
            typed: unicode_security::skeleton(name).collect(),
        }
    }

    /// True when the two names would pass for each other.
    pub fn same_as(&self, other: &NameKey) -> bool {
        self.folded == other.folded || self.typed == other.typed
    }
}

/// True when `a` and `b` are one name (see [`NameKey`]).
pub fn same(a: &str, b: &str) -> bool {
    NameKey::of(a).same_as(&NameKey::of(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_length_counts_characters_not_bytes() {
        assert_eq!(check("alice"), Ok(()));
        assert_eq!(check(&"é".repeat(32)), Ok(()));
        assert_eq!(check(&"a".repeat(33)), Err(NameError::Shape));
        assert_eq!(check(""), Err(NameError::Shape));
        assert_eq!(check("a b"), Err(NameError::Shape));
        assert_eq!(check("a\u{3000}b"), Err(NameError::Shape)); // ideographic space
        assert_eq!(check("a\u{a0}b"), Err(NameError::Shape)); // no-break space
    }

    #[test]
    fn control_characters_are_refused() {
        for name in [
            "a\u{7}",
            "\u{1b}[31m",
            "a\u{7f}",
            "a\u{85}b",
            "a\u{9b}",
            "a\tb",
        ] {
            assert_eq!(check(name), Err(NameError::Control), "{name:?}");
        }
    }

    #[test]
    fn invisible_and_format_characters_are_refused_with_the_code_point() {
        let cases = [
            ("a\u{200B}lice", '\u{200B}'),   // zero-width space
            ("alice\u{200D}", '\u{200D}'),   // zero-width joiner
            ("al\u{200C}ice", '\u{200C}'),   // zero-width non-joiner
            ("\u{202E}alice", '\u{202E}'),   // right-to-left override
            ("\u{2066}alice", '\u{2066}'),   // left-to-right isolate
            ("alice\u{200F}", '\u{200F}'),   // right-to-left mark
            ("\u{FEFF}alice", '\u{FEFF}'),   // BOM
            ("ali\u{2060}ce", '\u{2060}'),   // word joiner
            ("alice\u{AD}", '\u{AD}'),       // soft hyphen
            ("a\u{34F}lice", '\u{34F}'),     // combining grapheme joiner
            ("alice\u{FE0F}", '\u{FE0F}'),   // variation selector
            ("alice\u{E0041}", '\u{E0041}'), // tag letter
            ("\u{3164}", '\u{3164}'),        // Hangul filler
            ("al\u{2800}ice", '\u{2800}'),   // blank braille pattern
            ("ali\u{180E}ce", '\u{180E}'),   // Mongolian vowel separator
            ("\u{1D159}", '\u{1D159}'),      // musical null notehead, alone
            ("alice\u{1D159}", '\u{1D159}'), // ... or after a member's name
            ("alice\u{303F}", '\u{303F}'),   // ideographic half fill space
        ];
        for (name, c) in cases {
            assert_eq!(check(name), Err(NameError::Invisible(c)), "{name:?}");
        }
        assert_eq!(
            NameError::Invisible('\u{200B}').to_string(),
            "name must not contain invisible or format characters (it holds U+200B)"
        );
    }

    #[test]
    fn a_name_holds_a_letter_or_a_digit() {
        for name in ["☃", "🚀🚀", "-_-", "...", "♥"] {
            assert_eq!(check(name), Err(NameError::NoLetterOrDigit), "{name}");
        }
        assert_eq!(check("7"), Ok(()));
        assert_eq!(
            NameError::NoLetterOrDigit.to_string(),
            "name must hold at least one letter or digit"
        );
    }

    #[test]
    fn combining_marks_only_follow_a_base_character() {
        for (name, mark) in [
            ("\u{300}", '\u{300}'),
            ("\u{301}\u{301}", '\u{301}'),
            ("\u{20E3}", '\u{20E3}'),
            ("\u{489}", '\u{489}'),
            ("\u{301}alice", '\u{301}'),
        ] {
            assert_eq!(check(name), Err(NameError::LoneMark(mark)), "{name:?}");
        }
        assert_eq!(check("1\u{20E3}"), Ok(()), "a keycap after its digit");
    }

    #[test]
    fn exchange_names_are_words_of_visible_characters() {
        for name in ["John Q. Smith", "Ann Lee", "bob", "日本 語"] {
            assert_eq!(check_exchange(name), Ok(()), "{name}");
        }
        assert_eq!(check_exchange(&"x".repeat(64)), Ok(()));
        for (name, why) in [
            ("", NameError::ExchangeShape),
            (" bob", NameError::ExchangeShape),
            ("bob ", NameError::ExchangeShape),
            ("a  b", NameError::ExchangeShape),
            ("   ", NameError::ExchangeShape),
            ("a;b", NameError::Semicolon),
            ("a\u{1b}[2J", NameError::Control),
            ("bob\u{202E}", NameError::Invisible('\u{202E}')),
            ("\u{1D159}", NameError::Invisible('\u{1D159}')),
            ("\u{301}\u{301}", NameError::LoneMark('\u{301}')),
            ("a \u{301}", NameError::LoneMark('\u{301}')),
            ("☃ ☃", NameError::NoLetterOrDigit),
            ("a\tb", NameError::Control),
            ("a\u{a0}b", NameError::Shape),
        ] {
            assert_eq!(check_exchange(name), Err(why), "{name:?}");
        }
        assert_eq!(
            check_exchange(&"x".repeat(65)),
            Err(NameError::ExchangeShape)
        );
    }

    #[test]
    fn unassigned_code_points_are_refused() {
        assert_eq!(
            check("a\u{378}"),
            Err(NameError::Unassigned('\u{378}')),
            "U+0378 is unassigned"
        );
    }

    #[test]
    fn names_in_one_script_or_a_language_s_mix_are_welcome() {
        for name in [
            "alice",
            "Zoë",
            "日本",
            "日本語のalice",
            "한국어abc",
            "Ελένη",
            "Иван",
            "bob🚀",
            "user-1",
            "o'brien",
            "x_y.z",
            "Łukasz",
            "مريم",
            "☃1",
            "e\u{301}",
            "a\u{300}\u{301}",
        ] {
            assert_eq!(check(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn letters_of_scripts_no_language_mixes_are_refused() {
        // `а` here is Cyrillic: the classic look-alike.
        assert_eq!(
            check("pаypal"),
            Err(NameError::MixedScripts(Script::Latin, Script::Cyrillic))
        );
        assert_eq!(
            NameError::MixedScripts(Script::Latin, Script::Cyrillic).to_string(),
            "name must not mix Latin and Cyrillic letters"
        );
        assert!(check("Ελένηx").is_err());
        assert!(check("Иванα").is_err());
    }

    #[test]
    fn the_issue_s_look_alikes_are_alice() {
        for name in [
            "Alice", "ALICE", "ａlice", "аlice", "АLICE", "aIice", "alıce",
        ] {
            assert!(same(name, "alice"), "{name} should be alice");
        }
        // Refused outright, and the same name anyway once the invisible part is gone.
        for name in ["a\u{200B}lice", "alice\u{200D}", "\u{202E}alice"] {
            assert!(check(name).is_err(), "{name:?}");
            assert!(same(name, "alice"), "{name:?}");
        }
    }

    #[test]
    fn look_alikes_beyond_case() {
        assert!(same("Ilse", "llse"), "capital I and small L");
        assert!(same("rnarc", "marc"), "r n and m");
        assert!(same("Straße", "STRASSE"), "full case folding");
        assert!(same("ﬁnn", "finn"), "ligature (NFKC)");
        assert!(same("Ζωή", "ζωή"), "Greek case");
    }

    #[test]
    fn different_names_stay_different() {
        for name in ["alicia", "Zoë", "日本", "alice2", "bob", "alic", "ali-ce"] {
            assert!(!same(name, "alice"), "{name} is not alice");
        }
        assert!(!same("Zoë", "Zoe"));
        assert!(!same("日本", "日木"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// No input makes the rules panic, and every accepted name is one a line can hold.
            #[test]
            fn any_text_is_judged_without_panic(name in any::<String>()) {
                if check(&name).is_ok() {
                    prop_assert!(!name.chars().any(|c| c.is_control() || c.is_whitespace()));
                    prop_assert!(!name.chars().any(is_invisible));
                    prop_assert!(name.chars().any(is_letter_or_digit));
                    prop_assert!(!name.chars().next().is_some_and(is_mark));
                }
                let _ = check_exchange(&name);
                let key = NameKey::of(&name);
                prop_assert!(key.same_as(&key));
            }

            /// Same is symmetric, and case never makes two names different.
            #[test]
            fn same_is_symmetric_and_ignores_case(a in "[a-zA-Zа-яА-Я0-9ıIl]{1,6}", b in "[a-zA-Zа-яА-Я0-9ıIl]{1,6}") {
                prop_assert_eq!(same(&a, &b), same(&b, &a));
                prop_assert!(same(&a, &a.to_uppercase()));
            }
        }
    }
}
