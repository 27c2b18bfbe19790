//! The wire vocabulary both sides share: the services, the reply and push lines, the commands
//! every service knows, names and what makes two of them one, the sum exchange, and the
//! addresses people type. Text in, values out, and back: no IO, no sockets, no server state.
//! The server writes with it and both clients (terminal and GUI) read with it; it depends on
//! nothing else in the crate, so every arrow points down to it.

mod address;
mod answer;
mod command;
pub mod exchange;
pub mod name;
mod reply;
mod service_kind;

pub use address::{DEFAULT_HOST, DEFAULT_PORT, host_of, parse_port, port_given_as_host};
pub use answer::{Answer, parse_answer};
pub use command::{Common, common_command};
pub use reply::Reply;
pub use service_kind::ServiceKind;

/// The version in the greeting, `HELLO calc securetcp/<VERSION>`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The software the greeting names: `securetcp/<VERSION>`.
pub const SOFTWARE: &str = concat!("securetcp/", env!("CARGO_PKG_VERSION"));
