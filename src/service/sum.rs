//! The number exchange (the fourth seed): `Client of <NAME>;<N>` gets
//! `OK Server of <server-name>;<M>`, and the log gets `N (client) + M (server) = N+M`.
//! A bad number is an `ERR` and the conversation goes on: one client can never stop the server.

use super::{Certified, ConnId, Outbox, Service, answer_common, hello};
use crate::log::Value;
use crate::proto::exchange::{ExchangeError, parse_exchange};
pub use crate::proto::exchange::{check_exchange_name, parse_number};

pub const HELP: &str = "commands: Client of <NAME>;<N> with N from 1 to 100 | name NAME | help | q";

pub struct Sum {
    server_name: String,
    number: i64,
    /// Certificate names under mutual TLS, for `name`.
    certified: Certified,
}

impl Sum {
    pub fn new(server_name: &str, number: i64) -> Sum {
        Sum {
            server_name: server_name.to_string(),
            number,
            certified: Certified::default(),
        }
    }
}

impl Service for Sum {
    fn name(&self) -> &'static str {
        "sum"
    }

    fn greeting(&mut self, id: ConnId, identity: Option<&str>, out: &mut Outbox) {
        self.certified.greet(id, identity);
        hello(self.name(), id, out);
    }

    fn on_line(&mut self, id: ConnId, line: &str, out: &mut Outbox) {
        if answer_common(line, id, HELP, self.certified.of(id), out) {
            return;
        }
        match parse_exchange(line) {
            // Mutual TLS: the exchange speaks for the certificate's holder, under its name only.
            Ok((name, _)) if self.certified.of(id).is_some_and(|c| c != name) => {
                let certified = self.certified.of(id).unwrap_or_default();
                let shown = super::shown_certificate_name(certified);
                out.send(id, format_args!("ERR your certificate names you {shown}"))
            }
            Ok((name, n)) => {
                let m = self.number;
                out.set_name(id, name);
                out.send(id, format_args!("OK Server of {};{m}", self.server_name));
                let sum = format!("{n} (client) + {m} (server) = {}", n + m);
                out.log(id, format_args!("event=sum sum={}", Value(sum.as_bytes())));
            }
            Err(ExchangeError::BadNumber) => {
                out.send(id, "ERR number must be an integer from 1 to 100")
            }
            Err(ExchangeError::BadName(why)) => out.send(id, format_args!("ERR {why}")),
            Err(ExchangeError::NotAnExchange) => out.send(id, "ERR expected: Client of <NAME>;<N>"),
        }
    }

    fn on_close(&mut self, id: ConnId, _out: &mut Outbox) {
        self.certified.forget(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_a_client_certificate_the_exchange_is_under_its_name() {
        let id = ConnId::new(1, 0);
        let mut sum = Sum::new("S", 50);
        let mut out = Outbox::new();
        sum.greeting(id, Some("Alice Smith"), &mut out);
        out.clear();
        sum.on_line(id, "Client of Bob;5", &mut out);
        sum.on_line(id, "Client of Alice Smith;5", &mut out);
        assert_eq!(
            out.lines_for(id),
            [
                "ERR your certificate names you Alice Smith",
                "OK Server of S;50"
            ]
        );
    }

    #[test]
    fn exchange_lines_are_parsed_as_spec_says() {
        assert_eq!(parse_exchange("Client of Alice;25"), Ok(("Alice", 25)));
        assert_eq!(parse_exchange("Client of Alice ; 25"), Ok(("Alice", 25)));
        assert_eq!(parse_exchange("Client of Alice;+007"), Ok(("Alice", 7)));
        assert_eq!(parse_exchange("Client of Alice;100"), Ok(("Alice", 100)));
        assert_eq!(parse_exchange("Client of Alice;1"), Ok(("Alice", 1)));
        for bad in [
            "0",
            "101",
            "-5",
            "2.5",
            "",
            "ten",
            "99999999999999999999999",
            "+",
            "1 2",
        ] {
            assert_eq!(
                parse_exchange(&format!("Client of A;{bad}")),
                Err(ExchangeError::BadNumber),
                "{bad}"
            );
        }
        assert_eq!(parse_exchange("Hello"), Err(ExchangeError::NotAnExchange));
        assert_eq!(
            parse_exchange("Client of Alice 25"),
            Err(ExchangeError::NotAnExchange)
        );
        assert!(matches!(
            parse_exchange("Client of ;5"),
            Err(ExchangeError::BadName(_))
        ));
    }

    #[test]
    fn the_server_answers_with_its_name_and_number_and_logs_the_sum() {
        let id = ConnId::new(1, 0);
        let mut sum = Sum::new("Server-X", 50);
        let mut out = Outbox::new();
        sum.on_line(id, "Client of Alice;25", &mut out);
        assert_eq!(out.lines_for(id), ["OK Server of Server-X;50"]);
        let logged: Vec<_> = out.logs().collect();
        assert_eq!(
            logged,
            [(id, &b"event=sum sum=\"25 (client) + 50 (server) = 75\""[..])]
        );
    }

    #[test]
    fn names_with_spaces_take_part_in_the_exchange() {
        assert!(check_exchange_name("John Q. Smith").is_ok());
        assert!(check_exchange_name(&"x".repeat(64)).is_ok());
        assert!(check_exchange_name(&"x".repeat(65)).is_err());
        assert!(check_exchange_name("").is_err());
        assert!(check_exchange_name("   ").is_err());
        assert!(check_exchange_name("a;b").is_err());
        assert!(check_exchange_name("a\u{1b}[2J").is_err());
        assert_eq!(
            parse_exchange("Client of John Q. Smith;25"),
            Ok(("John Q. Smith", 25))
        );
        let id = ConnId::new(1, 0);
        let mut out = Outbox::new();
        Sum::new("John Q. Smith", 7).on_line(id, "Client of Ann Lee;3", &mut out);
        assert_eq!(out.lines_for(id), ["OK Server of John Q. Smith;7"]);
    }

    #[test]
    fn a_bad_number_is_an_err_and_the_exchange_can_go_on() {
        let id = ConnId::new(1, 0);
        let mut sum = Sum::new("s", 50);
        let mut out = Outbox::new();
        sum.on_line(id, "Client of A;0", &mut out);
        sum.on_line(id, "Client of A;abc", &mut out);
        sum.on_line(id, "Client of A;99", &mut out);
        sum.on_line(id, "q", &mut out);
        assert_eq!(
            out.lines_for(id),
            [
                "ERR number must be an integer from 1 to 100",
                "ERR number must be an integer from 1 to 100",
                "OK Server of s;50",
                "BYE session ended"
            ]
        );
        // Nothing here asks the server to stop.
        assert!(!out.actions().contains(&crate::outbox::Action::Shutdown));
    }
}
