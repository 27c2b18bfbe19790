//! The calc service: every request line is an expression (see `expr.rs`), answered `OK value`
//! or `ERR reason`, besides the common `name`, `help` and `q`.

use super::{Certified, ConnId, Outbox, Service, answer_common, hello};
use crate::expr;

pub const HELP: &str =
    "commands: + 3 4 | 12 + 42 | add/sub/mul/div 3 4 | (1 + 2) * 3 ^ 2 % 5 | name NAME | help | q";

/// A calculation depends on nothing but its line; the only state is the certificate names of
/// clients under mutual TLS, for `name`.
#[derive(Debug, Default)]
pub struct Calc {
    certified: Certified,
}

impl Service for Calc {
    fn name(&self) -> &'static str {
        "calc"
    }

    fn greeting(&mut self, id: ConnId, identity: Option<&str>, out: &mut Outbox) {
        self.certified.greet(id, identity);
        hello(self.name(), id, out);
    }

    fn on_line(&mut self, id: ConnId, line: &str, out: &mut Outbox) {
        // The common shapes first (`12 + 42`): no command looks like one.
        let result = match expr::evaluate_simple(line) {
            Some(result) => result,
            None if answer_common(line, id, HELP, self.certified.of(id), out) => return,
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

    fn on_close(&mut self, id: ConnId, _out: &mut Outbox) {
        self.certified.forget(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::BadLine;

    fn talk(lines: &[&str]) -> Vec<String> {
        let id = ConnId::new(1, 0);
        let mut calc = Calc::default();
        let mut out = Outbox::new();
        calc.greeting(id, None, &mut out);
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
    fn with_a_client_certificate_name_takes_only_its_name() {
        let (alice, other) = (ConnId::new(1, 0), ConnId::new(2, 1));
        let mut calc = Calc::default();
        let mut out = Outbox::new();
        calc.greeting(alice, Some("alice"), &mut out);
        calc.greeting(other, None, &mut out);
        out.clear();
        calc.on_line(alice, "name bob", &mut out);
        calc.on_line(alice, "name alice", &mut out);
        calc.on_line(other, "name bob", &mut out);
        assert_eq!(
            out.lines_for(alice),
            ["ERR your certificate names you alice", "OK hello alice"]
        );
        assert_eq!(out.lines_for(other), ["OK hello bob"]);
        // Forgotten on close: the next connection in that slot has its own certificate or none.
        calc.on_close(alice, &mut out);
        assert_eq!(calc.certified.of(alice), None);
    }

    #[test]
    fn quit_asks_the_reactor_to_close() {
        let id = ConnId::new(3, 2);
        let mut out = Outbox::new();
        Calc::default().on_line(id, "quit", &mut out);
        assert!(out.is_closing(id));
    }

    #[test]
    fn bad_lines_get_one_err_each() {
        let id = ConnId::new(1, 0);
        let mut out = Outbox::new();
        let mut calc = Calc::default();
        for bad in [
            BadLine::Empty,
            BadLine::NotUtf8,
            BadLine::TooLong { max: 4096 },
            BadLine::ControlChar,
        ] {
            calc.on_bad_line(id, bad, &mut out);
        }
        assert_eq!(
            out.lines_for(id),
            [
                "ERR empty line",
                "ERR line is not valid UTF-8",
                "ERR line too long (limit 4096 bytes)",
                "ERR line contains a control character"
            ]
        );
    }
}
