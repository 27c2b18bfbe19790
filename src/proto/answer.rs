//! A quiz answer as both sides read it: a whole number, written in decimal with an optional sign
//! and spaces around it. A whole number too big for the machine is still a whole number (and a
//! wrong answer), not "not a number".

/// What an answer line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A whole number within i64.
    Number(i64),
    /// A whole number beyond i64: certainly not the sum of two numbers below 100.
    TooBig,
    /// Anything else: words, a fraction, an empty line.
    NotANumber,
}

/// Reads `text` as a quiz answer: `42`, ` -7 `, `+3`; `99999999999999999999` is [`Answer::TooBig`].
pub fn parse_answer(text: &str) -> Answer {
    let text = text.trim();
    if let Ok(n) = text.parse::<i64>() {
        return Answer::Number(n);
    }
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    match !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        true => Answer::TooBig,
        false => Answer::NotANumber,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_of_any_size_are_answers() {
        assert_eq!(parse_answer("42"), Answer::Number(42));
        assert_eq!(parse_answer(" -7 "), Answer::Number(-7));
        assert_eq!(parse_answer("+3"), Answer::Number(3));
        assert_eq!(parse_answer("99999999999999999999"), Answer::TooBig);
        assert_eq!(parse_answer("-99999999999999999999"), Answer::TooBig);
        for not in ["", "-", "4.5", "four", "1e3", "--1", "1 2"] {
            assert_eq!(parse_answer(not), Answer::NotANumber, "{not:?}");
        }
    }
}
