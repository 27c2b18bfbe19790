//! The number exchange of the sum service, as both sides write and read it:
//! `Client of <NAME>;<N>` and its parts (the name rule of the exchange, the number 1..100).

/// The accepted range of both numbers.
pub const RANGE: std::ops::RangeInclusive<i64> = 1..=100;

use super::name::NameError;
pub use super::name::{MAX_EXCHANGE_NAME_CHARS, check_exchange as check_exchange_name};

/// Why an exchange line was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ExchangeError {
    NotAnExchange,
    /// The name breaks the exchange's name rule; the reason a person reads after `ERR `.
    BadName(NameError),
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
