//! securetcp: a TLS server for small line protocols, one mio reactor per worker thread.
//!
//! Start reading at [`reactor`]: it shows how bytes become lines, lines become replies, and
//! replies become bytes again. The services ([`service`]) and the parsers ([`line`], [`expr`])
//! do no IO and are tested without sockets.

pub mod addr;
pub mod bus;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod expr;
#[cfg(feature = "gui")]
pub mod gui;
pub mod listen;
pub mod log;
pub mod metrics;
pub mod peer;
pub mod procstat;
pub mod proto;
pub mod proxy;
pub mod reactor;
pub mod room;
pub mod scrape;
pub mod service;
pub mod shared;
pub mod signals;
pub mod systemd;
pub mod tls;
pub mod workers;

// The connection core (core/, its own crate with no mio), under the names the server has always
// used for it.
pub use securetcp_core::{conn, line, outbox, rate};
