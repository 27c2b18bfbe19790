//! systemd integration: readiness notifications (`NOTIFY_SOCKET`) and socket activation
//! (`LISTEN_FDS`/`LISTEN_PID`).
//!
//! Written here rather than with the `sd-notify` crate: both halves are a few lines over what std
//! already has (a Unix datagram, `from_raw_fd`), and the protocol is fixed: a datagram of
//! `KEY=VALUE` lines to the socket named in `NOTIFY_SOCKET` (a path, or `@name` in the abstract
//! namespace), and listening sockets passed as descriptors 3, 4, ... when `LISTEN_PID` is ours.
//! Each passed descriptor is checked before it is used: only a listening TCP socket (IPv4 or
//! IPv6) is served; anything else (a UDP socket, a bound socket that does not listen, the
//! connected socket `Accept=yes` passes, a Unix socket, a file) is a start error that names it.

use std::io;
use std::net::TcpListener;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixDatagram;

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const FIRST_PASSED_FD: i32 = 3;

/// Tells the service manager `state` (`READY=1`, `STOPPING=1`) when `NOTIFY_SOCKET` is set.
/// Without it, or if it cannot be reached, nothing happens: the server runs the same either way.
pub fn notify(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = target.as_encoded_bytes();
    let _ = match bytes.strip_prefix(b"@") {
        Some(name) => {
            abstract_address(name).and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
        }
        None => socket.send_to(state.as_bytes(), &target),
    };
}

fn abstract_address(name: &[u8]) -> std::io::Result<std::os::unix::net::SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    std::os::unix::net::SocketAddr::from_abstract_name(name)
}

/// The listening sockets systemd passed to this process (socket activation): `Ok(None)` when it
/// passed none (or they were meant for another process), an error naming the first descriptor
/// that is not a listening TCP socket. The variables are removed, so nothing started later
/// inherits them.
pub fn passed_listeners() -> Result<Option<Vec<TcpListener>>, String> {
    let (Ok(pid), Ok(count)) = (std::env::var("LISTEN_PID"), std::env::var("LISTEN_FDS")) else {
        return Ok(None);
    };
    // SAFETY: removing variables while no other thread runs yet (called before any is started).
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    if pid.parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(None); // meant for another process
    }
    let count: i32 = match count.parse() {
        Ok(0) => return Ok(None),
        Ok(n) if n > 0 && n <= MAX_PASSED => n,
        _ => {
            return Err(format!(
                "LISTEN_FDS={count} is not a count of passed sockets (1 to {MAX_PASSED})"
            ));
        }
    };
    let fds = FIRST_PASSED_FD..FIRST_PASSED_FD + count;
    // Every one is checked before any is taken: a descriptor is wrapped only once it is known
    // to be an open listening socket.
    for fd in fds.clone() {
        if let Some(what) = not_a_tcp_listener(fd) {
            return Err(format!(
                "descriptor {fd} passed by systemd (LISTEN_FDS) is not a listening TCP socket: \
                 it is {what}"
            ));
        }
    }
    let listeners = fds
        .map(|fd| {
            // SAFETY: systemd passed these descriptors to us, and each was just found to be an
            // open listening socket; from here on each is owned by exactly one TcpListener.
            // CLOEXEC is set so children do not inherit them.
            unsafe {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                TcpListener::from_raw_fd(fd)
            }
        })
        .collect();
    Ok(Some(listeners))
}

/// More than any unit passes; a larger LISTEN_FDS is a mistake, not a list to walk.
const MAX_PASSED: i32 = 4096;

/// `None` when `fd` is an open, listening TCP socket (IPv4 or IPv6); else what it is instead,
/// in words (`a UDP socket`, `a TCP socket that is bound but not listening`...).
fn not_a_tcp_listener(fd: i32) -> Option<String> {
    // SAFETY: F_GETFD only reads the descriptor's flags; a closed fd gives EBADF.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Some("not open".into());
    }
    let domain = match socket_option(fd, libc::SO_DOMAIN) {
        Ok(domain) => domain,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => return Some("not a socket".into()),
        Err(e) => return Some(format!("a socket that cannot be inspected ({e})")),
    };
    let kind = socket_option(fd, libc::SO_TYPE).unwrap_or(-1);
    let protocol = socket_option(fd, libc::SO_PROTOCOL).unwrap_or(-1);
    match domain {
        libc::AF_INET | libc::AF_INET6 => {}
        libc::AF_UNIX => return Some("a Unix socket".into()),
        other => return Some(format!("a socket of address family {other}")),
    }
    match (kind, protocol) {
        (libc::SOCK_STREAM, libc::IPPROTO_TCP | IPPROTO_MPTCP) => {}
        (libc::SOCK_DGRAM, _) => return Some("a UDP socket".into()),
        (libc::SOCK_STREAM, libc::IPPROTO_SCTP) | (libc::SOCK_SEQPACKET, _) => {
            return Some("an SCTP socket".into());
        }
        _ => return Some(format!("an IP socket of type {kind}, protocol {protocol}")),
    }
    if socket_option(fd, libc::SO_ACCEPTCONN).unwrap_or(0) == 1 {
        return None;
    }
    Some(if has_peer(fd) {
        "a connected TCP socket (as Accept=yes passes; use Accept=no)".into()
    } else {
        "a TCP socket that is not listening".into()
    })
}

/// Multipath TCP (`IPPROTO_MPTCP`), which listens and accepts as TCP does.
const IPPROTO_MPTCP: i32 = 262;

/// An integer socket option of `fd`.
fn socket_option(fd: i32, option: i32) -> io::Result<i32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`, which has that size.
    let done = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if done == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether the socket `fd` is connected to a peer.
fn has_peer(fd: i32) -> bool {
    // SAFETY: sockaddr_storage is plain data, valid zeroed; getpeername writes at most `len`.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: as above; the pointers are to locals that outlive the call.
    unsafe {
        libc::getpeername(
            fd,
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        ) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn only_a_listening_tcp_socket_passes_the_check() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(not_a_tcp_listener(listener.as_raw_fd()), None);
        let v6 = std::net::TcpListener::bind("[::1]:0");
        if let Ok(v6) = v6 {
            assert_eq!(not_a_tcp_listener(v6.as_raw_fd()), None);
        }
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(not_a_tcp_listener(udp.as_raw_fd()).unwrap(), "a UDP socket");
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let connected = not_a_tcp_listener(client.as_raw_fd()).unwrap();
        assert!(
            connected.starts_with("a connected TCP socket"),
            "{connected}"
        );
        let bound =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        bound
            .bind(
                &"127.0.0.1:0"
                    .parse::<std::net::SocketAddr>()
                    .unwrap()
                    .into(),
            )
            .unwrap();
        assert_eq!(
            not_a_tcp_listener(bound.as_raw_fd()).unwrap(),
            "a TCP socket that is not listening"
        );
        let unix = std::os::unix::net::UnixDatagram::unbound().unwrap();
        assert_eq!(
            not_a_tcp_listener(unix.as_raw_fd()).unwrap(),
            "a Unix socket"
        );
        let file = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(
            not_a_tcp_listener(file.as_raw_fd()).unwrap(),
            "not a socket"
        );
    }
}
