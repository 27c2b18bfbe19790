//! Socket set-up the load tools share (`examples/flood.rs`, `examples/loadgen/`): the descriptor
//! limit raised to the hard limit, and a non-blocking connect from a chosen loopback source
//! address, so the server sees many addresses and the ephemeral ports spread over them. Not an
//! example of its own: included with `#[path]`.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use mio::net::TcpStream;

/// A non-blocking connect to `addr` from `source` (bound first, so the server sees that
/// address). IPv4 only; errors are the socket calls' own.
pub fn connect_from(addr: SocketAddr, source: Ipv4Addr) -> io::Result<TcpStream> {
    // SAFETY: plain socket calls on a descriptor we create and own; sockaddr_in is filled in full.
    unsafe {
        use std::os::fd::FromRawFd;
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let stream = std::net::TcpStream::from_raw_fd(fd);
        let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(ip).to_be(),
            },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let local = sockaddr(source, 0);
        if libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        let SocketAddr::V4(v4) = addr else {
            return Err(io::Error::other("a chosen source address is IPv4 only"));
        };
        let peer = sockaddr(*v4.ip(), v4.port());
        if libc::connect(fd, (&peer as *const libc::sockaddr_in).cast(), len) != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(e);
            }
        }
        Ok(TcpStream::from_std(stream))
    }
}

/// Raises our own descriptor limit to the hard limit (a flood or a load needs one
/// descriptor per socket).
pub fn raise_fd_limit() {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
    }
}
