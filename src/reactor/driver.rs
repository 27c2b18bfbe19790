//! The socket driver: the only code that calls `read`, `write` and `shutdown` on a client's
//! socket, and the only code that knows what an `io::ErrorKind` means for one. It moves bytes
//! between the socket and the connection core (`conn`, which does no IO) and turns the socket's
//! answers into plain outcomes. Each error branch says why it does what it does.

use std::io::{self, Read as _, Write};
use std::net::Shutdown;
use std::time::Instant;

use mio::net::TcpStream;

use crate::conn::{CloseReason, Conn, Traffic};

/// What one read from the socket found.
pub enum Read {
    /// `n` bytes at the front of the buffer.
    Data(usize),
    /// Nothing for now: readiness is edge-triggered, the next byte raises a new event.
    WouldBlock,
    /// The peer's FIN.
    Eof,
    /// The connection is broken (a reset, or any other error).
    Gone,
}

/// Reads once into `buf`. The caller reads again until `WouldBlock` (edge-triggered readiness).
pub fn read(socket: &mut TcpStream, buf: &mut [u8]) -> Read {
    loop {
        return match socket.read(buf) {
            Ok(0) => Read::Eof,
            Ok(n) => Read::Data(n),
            // The kernel has nothing more: wait for the next readiness event.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Read::WouldBlock,
            // A signal came in during the call: nothing happened, try again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // ECONNRESET and friends: the peer is gone.
            Err(_) => Read::Gone,
        };
    }
}

/// [`read`], unless the peer's FIN was read already (`ended`): then `Eof` with no syscall. A
/// connection that lingers after the peer closed first is finished without a read for a FIN
/// that is here.
pub fn read_unless_ended(ended: bool, socket: &mut TcpStream, buf: &mut [u8]) -> Read {
    match ended {
        true => Read::Eof,
        false => read(socket, buf),
    }
}

/// After the peer's close_notify: reads (and throws away) until `WouldBlock`, and says whether
/// the peer's FIN is here. It most likely came with the close_notify, and seeing it spares the
/// close a `shutdown` and a read later.
pub fn fin_is_here(socket: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match read(socket, &mut buf) {
            Read::Eof => return true,
            // Nothing may follow a close_notify: dropped.
            Read::Data(_) => continue,
            // Not yet (or never: a broken connection is found out when it is written to).
            Read::WouldBlock | Read::Gone => return false,
        }
    }
}

/// Whether the peer's bytes wait in the kernel, not read yet (a one-byte `MSG_PEEK`, which
/// takes nothing). Eviction asks it of a connection that has sent nothing as far as the core
/// knows: a real client's ClientHello that arrived in this loop turn is not silence.
pub fn has_bytes_waiting(socket: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    // WouldBlock: nothing waits. EOF (0) or an error: nothing that makes it a client.
    matches!(socket.peek(&mut byte), Ok(n) if n > 0)
}

/// Writes what the connection hands out until it has nothing more or the socket is full, then
/// sends our FIN if the connection asks for it. Returns true when a reader paused for its output
/// backlog may be read again. `Err`: the peer is gone. `transmit` is the reactor's buffer, lent.
pub fn flush(
    conn: &mut Conn,
    socket: &mut TcpStream,
    transmit: &mut Vec<u8>,
    now: Instant,
    traffic: &mut Traffic,
) -> Result<bool, CloseReason> {
    loop {
        transmit.clear();
        conn.poll_transmit(transmit);
        if transmit.is_empty() {
            break;
        }
        let taken = write(socket, transmit);
        conn.handle_transmitted(transmit, taken.unwrap_or(0), now);
        let n = taken?;
        traffic.sent += n as u64;
        if n < transmit.len() {
            break; // the socket is full: the write interest brings us back
        }
    }
    if conn.poll_fin() {
        // Everything is out: our FIN, then we wait for the peer's. A failure here (ENOTCONN: the
        // peer reset meanwhile) is found out by the read that follows.
        let _ = socket.shutdown(Shutdown::Write);
    }
    Ok(conn.resume_if_drained())
}

/// Writes once, as much of `bytes` as the socket takes (0 when it is full).
fn write(socket: &mut TcpStream, bytes: &[u8]) -> Result<usize, CloseReason> {
    loop {
        return match socket.write(bytes) {
            Ok(n) => Ok(n),
            // The socket's buffer is full: the rest waits for the write interest.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            // A signal came in during the call: nothing was written, try again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // EPIPE, ECONNRESET: the peer is gone.
            Err(_) => Err(CloseReason::Reset),
        };
    }
}

/// The last words of a connection dropped after a TLS error (see `Conn::poll_last_words`):
/// one try, whatever the socket says, since the peer may not read at all.
pub fn send_last_words(conn: &mut Conn, socket: &mut TcpStream, transmit: &mut Vec<u8>) {
    transmit.clear();
    conn.poll_last_words(transmit);
    if !transmit.is_empty() {
        let _ = write(socket, transmit);
    }
}
