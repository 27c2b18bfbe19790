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

/// Whether a short read proves the socket drained: where mio's readiness is edge-triggered
/// epoll, which also reports urgent data (`EPOLLPRI`, see [`Readiness`]).
const SHORT_READ_DRAINS: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// The readiness a connection is always registered for: readable, and where the system has it,
/// urgent (out-of-band) data, which ends the short-read shortcut (see [`Readiness`]).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub const READ_INTEREST: mio::Interest = mio::Interest::READABLE.add(mio::Interest::PRIORITY);
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub const READ_INTEREST: mio::Interest = mio::Interest::READABLE;

/// What the reads since the socket's last readiness event tell of it.
///
/// Readiness is edge-triggered: a read that returns fewer bytes than it asked for has emptied
/// the kernel's receive buffer at that moment, and every byte that arrives after it raises a new
/// event (epoll(7), "Questions and answers", 9). So the read after a short one, which could only
/// return `EAGAIN`, is not made: it answers `WouldBlock` itself. tokio does the same (`PollEvented::poll_read` clears readiness
/// on a short read), and so does netty's epoll transport. mio itself promises a new event only
/// after `WouldBlock`; this relies on the kernel's behaviour beneath it, on the systems above.
///
/// Not once the peer's FIN (or an error) was reported: that event is not raised again, so from
/// then on reading goes on until `WouldBlock` or the end of the stream. Nor once urgent data was
/// reported (`EPOLLPRI`, TCP's out-of-band byte, which telnet sends for Ctrl-C): a read stops
/// short at the urgent mark with more bytes behind it, and no new event comes for those.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Readiness {
    /// The last read since the last event came back short.
    short: bool,
    /// The poll reported the peer's side closed, or urgent data: a short read proves nothing.
    read_closed: bool,
}

impl Readiness {
    /// A readiness event arrived for the socket.
    pub(crate) fn on_event(&mut self, read_closed: bool) {
        self.short = false;
        self.read_closed |= read_closed;
    }

    /// Reads from `transport`, noting whether the read came back short. After a short read, and
    /// until the next event, it is `WouldBlock` at once: the read that could only say `EAGAIN`
    /// (a `recvfrom` per request) is not made.
    pub(crate) fn read<T: Read>(&mut self, transport: &mut T, buf: &mut [u8]) -> io::Result<usize> {
        if self.short && !self.read_closed {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = transport.read(buf)?;
        self.short = SHORT_READ_DRAINS && 0 < n && n < buf.len();
        Ok(n)
    }

    /// The peer's FIN was reported, and a read since then came back short: every byte before
    /// the FIN is read, and the FIN is all the socket still holds. (Closing it now sends our FIN,
    /// not a reset: the kernel resets only over unread data, and a FIN is none.)
    pub(crate) fn only_fin_left(&self) -> bool {
        self.short && self.read_closed
    }

    /// `transport` as a reader that notes short reads (for rustls's `read_tls`, which reads once
    /// per call, at most 4 KiB beyond what it holds).
    pub(crate) fn reader<'a, T: Read>(&'a mut self, transport: &'a mut T) -> ShortReads<'a, T> {
        ShortReads {
            readiness: self,
            transport,
        }
    }
}

/// A transport read through [`Readiness::read`].
pub(crate) struct ShortReads<'a, T> {
    readiness: &'a mut Readiness,
    transport: &'a mut T,
}

impl<T: Read> Read for ShortReads<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.readiness.read(self.transport, buf)
    }
}

pub(crate) fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

pub(crate) fn interrupted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}
