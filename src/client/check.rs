//! The check a client makes before sending a typed line (SPEC: calc checks a line and warns
//! instead of sending nonsense; quiz answers are whole numbers), shared by the terminal client
//! and the GUI. Pure: a line in, the reason to refuse it out.

use crate::expr;
use crate::proto::ServiceKind;
use crate::proto::name::check as check_name;
use crate::proto::{Common, common_command};

/// The check a line passes before it is sent: nothing empty, a valid name for `name`, and for
/// calc nothing that is not an expression (a division by zero is sent: that answer is the server's).
pub fn local_check(service: ServiceKind, line: &str) -> Result<(), String> {
    if line.is_empty() {
        return Err("empty line".into());
    }
    match common_command(line) {
        Some(Common::Name(name)) => return check_name(name).map_err(|why| why.to_string()),
        Some(_) => return Ok(()),
        None => {}
    }
    match service {
        ServiceKind::Calc => match expr::evaluate(line) {
            Err(e) if e.is_malformed() => Err(e.to_string()),
            _ => Ok(()),
        },
        ServiceKind::Quiz
            if crate::proto::parse_answer(line) == crate::proto::Answer::NotANumber =>
        {
            Err("answer with a whole number".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_check_refuses_nonsense_only() {
        assert!(local_check(ServiceKind::Calc, "+ 3 4").is_ok());
        assert!(local_check(ServiceKind::Calc, "1 / 0").is_ok());
        assert!(local_check(ServiceKind::Calc, "help").is_ok());
        assert!(local_check(ServiceKind::Calc, "name bob").is_ok());
        assert!(local_check(ServiceKind::Calc, "name").is_err());
        assert!(local_check(ServiceKind::Calc, "hello").is_err());
        assert!(local_check(ServiceKind::Calc, "3 +").is_err());
        assert!(local_check(ServiceKind::Calc, "").is_err());
        assert!(local_check(ServiceKind::Chat, "hello").is_ok());
    }

    #[test]
    fn quiz_answers_must_be_whole_numbers() {
        assert!(local_check(ServiceKind::Quiz, "42").is_ok());
        assert!(local_check(ServiceKind::Quiz, "-3").is_ok());
        assert!(local_check(ServiceKind::Quiz, "four").is_err());
        assert!(local_check(ServiceKind::Quiz, "help").is_ok());
    }
}
