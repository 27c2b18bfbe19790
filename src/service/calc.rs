//! The calc service: every request line is an expression (see `expr.rs`), answered `OK value`
//! or `ERR reason`, besides the common `name`, `help` and `q`.

use super::{ConnId, Outbox, Service, answer_common};
use crate::expr;

pub const HELP: &str =
    "commands: + 3 4 | 12 + 42 | add/sub/mul/div 3 4 | (1 + 2) * 3 ^ 2 % 5 | name NAME | help | q";

/// Stateless: a calculation depends on nothing but its line.
pub struct Calc;

impl Service for Calc {
    fn name(&self) -> &'static str {
        "calc"
    }

    fn on_line(&mut self, id: ConnId, line: &str, out: &mut Outbox) {
        // The common shapes first (`12 + 42`): no command looks like one.
        let result = match expr::evaluate_simple(line) {
            Some(result) => result,
            None if answer_common(line, id, HELP, out) => return,
            None => expr::evaluate(line),
        };
        match result {
            // Integers, nearly every reply, are written without `core::fmt`.
            Ok(expr::Value::Int(i)) => out.send_with(id, |bytes| {
                bytes.extend_from_slice(b"OK ");
                expr::write_int(bytes, i);
            }),
            Ok(value) => out.send(id, format_args!("OK {value}")),
            Err(error) => out.send(id, format_args!("ERR {error}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::BadLine;

    fn talk(lines: &[&str]) -> Vec<String> {
        let id = ConnId::new(1, 0);
        let mut calc = Calc;
        let mut out = Outbox::new();
        calc.greeting(id, &mut out);
        for line in lines {
            calc.on_line(id, line, &mut out);
        }
        out.lines_for(id)
    }

    #[test]
    fn greets_then_answers_each_line_in_order() {
        let lines = talk(&["+ 3 4", "12 + 42", "1 / 0", "hello"]);
        assert!(lines[0].starts_with("HELLO calc securetcp/"));
        assert_eq!(lines[1..3], ["OK 7", "OK 54"]);
        assert_eq!(lines[3], "ERR division by zero");
        assert!(lines[4].starts_with("ERR unknown word"));
    }

    #[test]
    fn name_help_and_quit() {
        let lines = talk(&["name alice", "name a b", "help", "q"]);
        assert_eq!(lines[1], "OK hello alice");
        assert!(lines[2].starts_with("ERR name must be"));
        assert!(lines[3].starts_with("OK commands:"));
        assert_eq!(lines[4], "BYE session ended");
    }

    #[test]
    fn quit_asks_the_reactor_to_close() {
        let id = ConnId::new(3, 2);
        let mut out = Outbox::new();
        Calc.on_line(id, "quit", &mut out);
        assert!(out.is_closing(id));
    }

    #[test]
    fn bad_lines_get_one_err_each() {
        let id = ConnId::new(1, 0);
        let mut out = Outbox::new();
        for bad in [
            BadLine::Empty,
            BadLine::NotUtf8,
            BadLine::TooLong { max: 4096 },
        ] {
            Calc.on_bad_line(id, bad, &mut out);
        }
        assert_eq!(
            out.lines_for(id),
            [
                "ERR empty line",
                "ERR line is not valid UTF-8",
                "ERR line too long (limit 4096 bytes)"
            ]
        );
    }
}
