//! The thin layer under a connection: the only socket calls the connection core makes. A
//! [`Transport`] is a byte stream that can also be peeked at (a PROXY header is read without
//! taking the client's bytes behind it) and half-closed (our FIN while we wait for the peer's).
//!
//! `mio::net::TcpStream` is the real one; the connection's unit tests use an in-memory pipe, so
//! every rule of the connection core is tested with no socket at all (as rustls's `read_tls` and
//! `write_tls` take any `Read`/`Write`).

use std::io::{self, Read, Write};
use std::net::Shutdown;

/// A non-blocking byte stream: `read`/`write` return `WouldBlock` when the kernel has nothing
/// (or no room), `Ok(0)` from `read` is the peer's FIN.
pub trait Transport: Read + Write {
    /// Reads without consuming (`MSG_PEEK`): the same bytes come again on the next read.
    fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// Sends our FIN (`shutdown(SHUT_WR)`); reading goes on.
    fn shutdown_write(&mut self) -> io::Result<()>;
}

impl Transport for mio::net::TcpStream {
    fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        mio::net::TcpStream::peek(self, buf)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

pub(crate) fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

pub(crate) fn interrupted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}
