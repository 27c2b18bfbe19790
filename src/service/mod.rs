//! The `Service` seam: what a line protocol must provide, and the commands every service shares.
//!
//! A service is sans-IO: it gets events (a greeting is due, a line arrived, a connection
//! closed) and writes its intentions into an [`Outbox`]. It never sees a socket, so each one is
//! unit-tested with no network at all, and the reactor never knows any protocol.

pub mod calc;
pub mod chat;
pub mod quiz;
pub mod scrape;
pub mod sum;

use std::fmt;
use std::sync::Arc;

use crate::bus::Directory;

pub use crate::outbox::{ConnId, Outbox};

/// The version in the greeting (`HELLO calc securetcp/0.1.0`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The longest name a client may take (SPEC: 1–32 characters, no spaces).
pub const MAX_NAME_CHARS: usize = 32;

pub trait Service: Send {
    /// The name in the greeting and on the ready line: `calc`, `chat`, `sum`, `quiz`.
    fn name(&self) -> &'static str;

    /// The TLS handshake is done (or the plain connection accepted): greet the client.
    fn greeting(&mut self, id: ConnId, out: &mut Outbox) {
        out.send(
            id,
            format_args!("HELLO {} securetcp/{VERSION}", self.name()),
        );
    }

    /// One request line (without `\n`, valid UTF-8, not empty, within `--max-line`).
    fn on_line(&mut self, id: ConnId, line: &str, out: &mut Outbox);

    /// A line that is empty, not UTF-8 or too long. By default one `ERR` line.
    fn on_bad_line(&mut self, id: ConnId, bad: BadLine, out: &mut Outbox) {
        out.send(id, format_args!("ERR {bad}"));
    }

    /// The connection is gone (quit, EOF, error, timeout, shutdown). It can no longer be sent to.
    fn on_close(&mut self, _id: ConnId, _out: &mut Outbox) {}

    /// A room line published by the same service on another reactor (see `bus`): whole lines,
    /// `\n` included, for this reactor's members. Only the chat has a room.
    fn on_room_line(&mut self, _lines: &[u8], _out: &mut Outbox) {}
}

/// A request line that never reaches `on_line`, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadLine {
    Empty,
    NotUtf8,
    TooLong { max: usize },
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadLine::Empty => f.write_str("empty line"),
            BadLine::NotUtf8 => f.write_str("line is not valid UTF-8"),
            BadLine::TooLong { max } => write!(f, "line too long (limit {max} bytes)"),
        }
    }
}

/// The service names `--service` accepts.
pub const SERVICES: [&str; 4] = ["calc", "chat", "sum", "quiz"];

/// Builds the service `--service NAME` asks for; `server_name` and `number` are for sum, `room`
/// is the chat room's directory, shared by every reactor of the process.
pub fn create(
    name: &str,
    server_name: &str,
    number: i64,
    room: &Arc<Directory>,
) -> Result<Box<dyn Service>, String> {
    match name {
        "calc" => Ok(Box::new(calc::Calc)),
        "chat" => Ok(Box::new(chat::Chat::in_room(Arc::clone(room)))),
        "sum" => Ok(Box::new(sum::Sum::new(server_name, number))),
        "quiz" => Ok(Box::new(quiz::Quiz::seeded_from_clock())),
        other => Err(format!(
            "--service {other}: unknown service (choose one of: {})",
            SERVICES.join(", ")
        )),
    }
}

/// The commands every service understands.
#[derive(Debug, PartialEq, Eq)]
pub enum Common<'a> {
    /// `name NAME`; the name is not checked yet (see [`check_name`]).
    Name(&'a str),
    Help,
    Quit,
}

/// Recognises `name NAME`, `help`, `q` and `quit` (surrounding spaces ignored).
pub fn common_command(line: &str) -> Option<Common<'_>> {
    let line = line.trim();
    match line {
        "help" => Some(Common::Help),
        "q" | "quit" => Some(Common::Quit),
        "name" => Some(Common::Name("")),
        _ => line
            .strip_prefix("name ")
            .map(|rest| Common::Name(rest.trim())),
    }
}

/// SPEC's rule for names in every service: 1–32 characters, no whitespace.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(|c| c.is_whitespace()) {
        Err("name must be 1-32 characters without spaces")
    } else if name.chars().any(|c| c.is_control()) {
        Err("name must not contain control characters")
    } else {
        Ok(())
    }
}

/// The usual answers to `name`, `help` and `q`, for services with nothing special to add.
/// Returns false when the line is not one of them.
pub fn answer_common(line: &str, id: ConnId, help: &str, out: &mut Outbox) -> bool {
    match common_command(line) {
        Some(Common::Name(name)) => match check_name(name) {
            Ok(()) => {
                out.set_name(id, name);
                out.send(id, format_args!("OK hello {name}"));
            }
            Err(why) => out.send(id, format_args!("ERR {why}")),
        },
        Some(Common::Help) => out.send(id, format_args!("OK {help}")),
        Some(Common::Quit) => quit(id, out),
        None => return false,
    }
    true
}

/// `BYE session ended`, then close (the reactor sends close_notify).
pub fn quit(id: ConnId, out: &mut Outbox) {
    out.send(id, "BYE session ended");
    out.close(id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_commands_are_recognised() {
        assert_eq!(common_command("help"), Some(Common::Help));
        assert_eq!(common_command(" q "), Some(Common::Quit));
        assert_eq!(common_command("quit"), Some(Common::Quit));
        assert_eq!(common_command("name alice"), Some(Common::Name("alice")));
        assert_eq!(common_command("name"), Some(Common::Name("")));
        assert_eq!(common_command("names"), None);
        assert_eq!(common_command("+ 3 4"), None);
    }

    #[test]
    fn names_follow_the_rule() {
        assert!(check_name("alice").is_ok());
        assert!(check_name(&"é".repeat(32)).is_ok());
        assert!(check_name(&"a".repeat(33)).is_err());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("a\u{7}").is_err());
    }

    #[test]
    fn every_service_is_built_and_unknown_ones_are_refused() {
        let room = Directory::new();
        for name in SERVICES {
            assert_eq!(create(name, "s", 50, &room).unwrap().name(), name);
        }
        assert!(
            create("http", "s", 50, &room)
                .err()
                .unwrap()
                .contains("unknown service")
        );
    }
}
