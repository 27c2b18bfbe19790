//! securetcp's connection core: one client connection as a sans-IO state machine, and the pure
//! parts it is made of. Bytes and time go in, bytes, timers and events come out; nothing here
//! touches a socket, reads a clock or names `mio` (the crate does not depend on it), as
//! quinn-proto is to quinn. The server's reactor (`securetcp`, `src/reactor/`) does the IO.
//!
//! - [`conn`]: the connection (`Conn`): its phases, its TLS session (rustls, fed from slices),
//!   its pauses, its deadlines and what they mean. Its module documentation gives the order in
//!   which to call its methods.
//! - [`line`]: request framing and the `--max-line` limit.
//! - [`outbox`]: `ConnId`, and the `Outbox` the services write what they want done into.
//! - [`rate`]: the `--rate-limit` token bucket.
//! - [`proxy`]: the PROXY protocol header (v1 and v2), parsed from the bytes handed in.

pub mod conn;
pub mod line;
pub mod outbox;
pub mod proxy;
pub mod rate;
