//! The `Service` seam: what a line protocol must provide, and the commands every service shares.
//!
//! A service is sans-IO: it gets events (a greeting is due, a line arrived, a connection
//! closed) and writes its intentions into an [`Outbox`]. It never sees a socket, so each one is
//! unit-tested with no network at all, and the reactor never knows any protocol.

pub mod calc;
pub mod chat;
pub mod quiz;
pub mod sum;

use std::collections::HashMap;
use std::sync::Arc;

use crate::bus::Directory;

pub use crate::line::BadLine;

pub use crate::outbox::{ConnId, Outbox};
pub use crate::proto::{Common, common_command};

/// The version in the greeting (`HELLO calc securetcp/0.1.0`).
pub use crate::proto::VERSION;
use crate::proto::{Reply, ServiceKind};

pub use crate::proto::name::MAX_NAME_CHARS;

pub trait Service: Send {
    /// The name in the greeting and on the ready line: `calc`, `chat`, `sum`, `quiz`.
    fn name(&self) -> &'static str;

    /// The TLS handshake is done (or the plain connection accepted): greet the client.
    /// `identity` is the name its certificate gives it under mutual TLS (`crate::tls::
    /// certificate_name`; `Some("")` for a certificate that gives none), `None` without a
    /// client certificate. A service that has a `name` command keeps it until `on_close`: with
    /// a certificate, that is the only name the client may take (see [`check_requested_name`]).
    fn greeting(&mut self, id: ConnId, identity: Option<&str>, out: &mut Outbox) {
        let _ = identity;
        hello(self.name(), id, out);
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

/// `HELLO <service> securetcp/<version>`.
pub fn hello(service: &str, id: ConnId, out: &mut Outbox) {
    let hello = Reply::Hello {
        service,
        software: crate::proto::SOFTWARE,
    };
    out.send(id, format_args!("{hello}"));
}

/// The certificate names of a reactor's clients (mutual TLS), from greeting to close. Empty, and
/// never allocated, without `--client-ca`.
#[derive(Debug, Default)]
pub struct Certified(HashMap<ConnId, Box<str>>);

impl Certified {
    /// Notes the `identity` handed to `Service::greeting`.
    pub fn greet(&mut self, id: ConnId, identity: Option<&str>) {
        if let Some(name) = identity {
            self.0.insert(id, name.into());
        }
    }

    /// The name the certificate of `id` gives, if it presented one.
    pub fn of(&self, id: ConnId) -> Option<&str> {
        self.0.get(&id).map(|n| &**n)
    }

    pub fn forget(&mut self, id: ConnId) {
        self.0.remove(&id);
    }
}

/// May a client take `name` (`name NAME`, any service)? Without a certificate, when the name
/// follows [`check_name`]. With one (`certificate` is its name, see `Service::greeting`), only
/// that name, and only when it is valid: otherwise `Err` with the reason, written for a person
/// (`your certificate names you alice`).
pub fn check_requested_name(name: &str, certificate: Option<&str>) -> Result<(), String> {
    let Some(certified) = certificate else {
        return check_name(name).map_err(|why| why.to_string());
    };
    if certified.is_empty() {
        return Err("your certificate gives no name (no CN, DNS or e-mail name)".into());
    }
    let valid = check_name(certified);
    let shown = shown_certificate_name(certified);
    if name != certified {
        return Err(format!("your certificate names you {shown}"));
    }
    valid.map_err(|why| format!("your certificate's name {shown} cannot be used: {why}"))
}

/// A certificate's name as it goes into a reply: escaped when it holds a control, invisible or
/// format character (a certificate may hold anything, a newline too), else as it is.
pub fn shown_certificate_name(name: &str) -> String {
    let hidden =
        |c: char| c.is_control() || crate::proto::name::is_invisible(c) || c.is_whitespace();
    if name.chars().any(|c| hidden(c) && c != ' ') {
        name.escape_debug().to_string()
    } else {
        name.to_string()
    }
}

/// Builds the service `--service NAME` asks for; `server_name` and `number` are for sum, `room`
/// is the chat room's directory, shared by every reactor of the process.
pub fn create(
    kind: ServiceKind,
    server_name: &str,
    number: i64,
    room: &Arc<Directory>,
) -> Box<dyn Service> {
    match kind {
        ServiceKind::Calc => Box::new(calc::Calc::default()),
        ServiceKind::Chat => Box::new(chat::Chat::in_room(Arc::clone(room))),
        ServiceKind::Sum => Box::new(sum::Sum::new(server_name, number)),
        ServiceKind::Quiz => Box::new(quiz::Quiz::seeded_from_clock()),
    }
}

/// The rule for names in every service (see [`crate::proto::name::check`]): 1-32 characters, no
/// whitespace, control, invisible or format characters, no letters of scripts no language mixes.
pub fn check_name(name: &str) -> Result<(), crate::proto::name::NameError> {
    crate::proto::name::check(name)
}

/// The usual answers to `name`, `help` and `q`, for services with nothing special to add;
/// `certificate` is the client's certificate name, if any (see [`check_requested_name`]).
/// Returns false when the line is not one of them.
pub fn answer_common(
    line: &str,
    id: ConnId,
    help: &str,
    certificate: Option<&str>,
    out: &mut Outbox,
) -> bool {
    match common_command(line) {
        Some(Common::Name(name)) => match check_requested_name(name, certificate) {
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
    fn a_certificate_s_name_is_the_only_name_its_holder_may_take() {
        assert_eq!(check_requested_name("bob", None), Ok(()));
        assert_eq!(check_requested_name("alice", Some("alice")), Ok(()));
        assert_eq!(
            check_requested_name("bob", Some("alice")),
            Err("your certificate names you alice".to_string())
        );
        assert_eq!(
            check_requested_name("Alice", Some("alice")),
            Err("your certificate names you alice".to_string())
        );
        assert_eq!(
            check_requested_name("x", Some("")),
            Err("your certificate gives no name (no CN, DNS or e-mail name)".to_string())
        );
        let spaced = "securetcp development client";
        assert_eq!(
            check_requested_name(spaced, Some(spaced)),
            Err(format!(
                "your certificate's name {spaced} cannot be used: name must be 1-32 characters without spaces"
            ))
        );
        // A certificate name that could break the reply line is shown escaped.
        let why = check_requested_name("bob", Some("eve\nMSG admin hi")).unwrap_err();
        assert_eq!(why, "your certificate names you eve\\nMSG admin hi");
        assert!(!why.contains('\n'));
    }

    #[test]
    fn with_a_certificate_every_service_s_name_command_follows_it() {
        let id = ConnId::new(1, 1);
        let mut out = Outbox::new();
        assert!(answer_common("name bob", id, "", Some("alice"), &mut out));
        assert!(answer_common("name alice", id, "", Some("alice"), &mut out));
        assert_eq!(
            out.lines_for(id),
            ["ERR your certificate names you alice", "OK hello alice"]
        );
    }

    #[test]
    fn every_service_is_built() {
        let room = Directory::new();
        for kind in ServiceKind::ALL {
            assert_eq!(create(kind, "s", 50, &room).name(), kind.name());
        }
    }
}
