//! The number exchange of the sum service, as both sides write and read it:
//! `Client of <NAME>;<N>` and its parts (the name rule of the exchange, the number 1..100).

/// The accepted range of both numbers.
pub const RANGE: std::ops::RangeInclusive<i64> = 1..=100;

/// Why an exchange line was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ExchangeError {
    NotAnExchange,
    BadName(&'static str),
    BadNumber,
}

/// Parses `Client of <NAME>;<N>`: spaces around `;` allowed, N a decimal integer 1..100 with
/// an optional `+` and leading zeros.
pub fn parse_exchange(line: &str) -> Result<(&str, i64), ExchangeError> {
    let rest = line
        .trim()
        .strip_prefix("Client of ")
        .ok_or(ExchangeError::NotAnExchange)?;
    let (name, number) = rest.split_once(';').ok_or(ExchangeError::NotAnExchange)?;
    let name = name.trim();
    check_exchange_name(name).map_err(ExchangeError::BadName)?;
    let n = parse_number(number).ok_or(ExchangeError::BadNumber)?;
    Ok((name, n))
}

/// The longest name in an exchange, the server's `--name` included.
pub const MAX_EXCHANGE_NAME_CHARS: usize = 64;

/// SPEC's rule for the names in an exchange (`--name "John Q. Smith"`, as in the fourth seed):
/// 1-64 characters, spaces allowed, no control characters and no `;` (it ends the name).
pub fn check_exchange_name(name: &str) -> Result<(), &'static str> {
    let chars = name.chars().count();
    if name.trim().is_empty() || chars > MAX_EXCHANGE_NAME_CHARS {
        Err("name must be 1-64 characters (spaces allowed)")
    } else if name.chars().any(char::is_control) {
        Err("name must not contain control characters")
    } else if name.contains(';') {
        Err("name must not contain ';'")
    } else {
        Ok(())
    }
}

/// A decimal integer 1..100, spaces around it, an optional `+` and leading zeros allowed.
pub fn parse_number(text: &str) -> Option<i64> {
    let digits = text.trim();
    let digits = digits.strip_prefix('+').unwrap_or(digits);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Leading zeros are fine; anything past 100 (however long) is out of range.
    match digits.trim_start_matches('0').parse::<i64>() {
        Ok(n) if RANGE.contains(&n) => Some(n),
        _ => None,
    }
}
