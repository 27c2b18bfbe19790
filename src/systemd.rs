//! systemd integration: readiness notifications (`NOTIFY_SOCKET`) and socket activation
//! (`LISTEN_FDS`/`LISTEN_PID`).
//!
//! Written here rather than with the `sd-notify` crate: both halves are a few lines over what std
//! already has (a Unix datagram, `from_raw_fd`), and the protocol is fixed: a datagram of
//! `KEY=VALUE` lines to the socket named in `NOTIFY_SOCKET` (a path, or `@name` in the abstract
//! namespace), and listening sockets passed as descriptors 3, 4, ... when `LISTEN_PID` is ours.

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

/// The listening sockets systemd passed to this process (socket activation), or `None` when it
/// passed none. The variables are removed, so nothing started later inherits them.
pub fn passed_listeners() -> Option<Vec<TcpListener>> {
    let pid = std::env::var("LISTEN_PID").ok()?;
    let count = std::env::var("LISTEN_FDS").ok()?;
    // SAFETY: removing variables while no other thread runs yet (called before any is started).
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    if pid.parse::<u32>().ok()? != std::process::id() {
        return None; // meant for another process
    }
    let count: i32 = count.parse().ok().filter(|&n| n > 0)?;
    let listeners = (FIRST_PASSED_FD..FIRST_PASSED_FD + count)
        .map(|fd| {
            // SAFETY: systemd passed these descriptors to us, open, one socket each; from here on
            // each is owned by exactly one TcpListener. CLOEXEC is set so children do not inherit them.
            unsafe {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                TcpListener::from_raw_fd(fd)
            }
        })
        .collect();
    Some(listeners)
}
