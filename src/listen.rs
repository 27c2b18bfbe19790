//! Listening sockets: every address of every `--listen` (a host name gets one per address),
//! once per worker. With more than one worker every socket has `SO_REUSEPORT`, so each worker
//! owns a socket of its own on the same address and the kernel spreads new connections over them;
//! with port 0 the first socket picks the port and the others take the same one.
//!
//! `SO_REUSEPORT` joins this process's workers only: the first socket of each address is bound
//! without it, so the bind fails (address in use) when any other socket already has the address,
//! another server's `SO_REUSEPORT` group included, exactly as with one worker. Only once bound
//! does it take `SO_REUSEPORT`, for this process's other workers to join it.
//!
//! socket2 sets the options std's `TcpListener::bind` cannot (`SO_REUSEPORT`).

use std::net::SocketAddr;

use mio::net::TcpListener;
use socket2::{Domain, Protocol, Socket, Type};

use crate::addr::ListenSpec;

/// The kernel's queue of connections not yet accepted, per socket.
const BACKLOG: i32 = 1024;

/// Every worker's listening sockets, in the same order for each, and their addresses.
pub struct Bound {
    /// `sockets[worker][i]` listens on `addrs[i]`.
    pub sockets: Vec<Vec<TcpListener>>,
    pub addrs: Vec<SocketAddr>,
}

pub fn bind_all(specs: &[ListenSpec], workers: usize) -> Result<Bound, String> {
    let mut sockets: Vec<Vec<TcpListener>> = (0..workers).map(|_| Vec::new()).collect();
    let mut addrs = Vec::new();
    for spec in specs {
        for wanted in resolve(spec)? {
            let (first_role, others) = match workers {
                1 => (Role::Alone, Role::Alone),
                _ => (Role::First, Role::Join),
            };
            let first = bind(wanted, first_role)?;
            // With port 0 the others must join the port the first one got.
            let addr = first
                .local_addr()
                .map_err(|e| format!("cannot read the listening address: {e}"))?;
            sockets[0].push(first);
            for worker in sockets.iter_mut().skip(1) {
                worker.push(bind(addr, others)?);
            }
            addrs.push(addr);
        }
    }
    Ok(Bound { sockets, addrs })
}

/// A listening socket's part in its address's group of workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// One worker: the address is this socket's alone.
    Alone,
    /// The first of several: bound alone (so it fails if anyone else has the address), then
    /// open to the others (`SO_REUSEPORT` after `bind`).
    First,
    /// One of the others, joining the first (`SO_REUSEPORT` before `bind`).
    Join,
}

fn bind(addr: SocketAddr, role: Role) -> Result<TcpListener, String> {
    let fail = |e: std::io::Error| format!("cannot listen on {addr}: {}", crate::cli::io_words(&e));
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(fail)?;
    // As std's bind does: a restarted server can bind while old connections are in TIME_WAIT.
    socket.set_reuse_address(true).map_err(fail)?;
    if role == Role::Join {
        socket.set_reuse_port(true).map_err(fail)?;
    }
    socket.set_nonblocking(true).map_err(fail)?;
    socket.bind(&addr.into()).map_err(fail)?;
    if role == Role::First {
        // Linux checks SO_REUSEPORT when a socket binds: set now, it lets our other workers
        // in, while the bind above, without it, was refused if the address was anyone's.
        socket.set_reuse_port(true).map_err(fail)?;
    }
    socket.listen(BACKLOG).map_err(fail)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Sockets systemd passed (socket activation) instead of binding: every worker gets its own
/// descriptor for each (a `dup`), all accepting from the same socket.
pub fn from_passed(passed: Vec<std::net::TcpListener>, workers: usize) -> Result<Bound, String> {
    let fail = |e: std::io::Error| format!("cannot use a socket systemd passed: {e}");
    let mut sockets: Vec<Vec<TcpListener>> = (0..workers).map(|_| Vec::new()).collect();
    let mut addrs = Vec::new();
    for listener in passed {
        listener.set_nonblocking(true).map_err(fail)?;
        addrs.push(listener.local_addr().map_err(fail)?);
        for worker in sockets.iter_mut().skip(1) {
            worker.push(TcpListener::from_std(listener.try_clone().map_err(fail)?));
        }
        sockets[0].push(TcpListener::from_std(listener));
    }
    Ok(Bound { sockets, addrs })
}

/// One plain listener on the first address of `spec` (the `--metrics` endpoint), and its address.
pub fn bind_one(spec: &ListenSpec) -> Result<(TcpListener, SocketAddr), String> {
    let role = |e: String| format!("--metrics: {e}");
    let wanted = resolve(spec).map_err(role)?[0];
    let listener = bind(wanted, Role::Alone).map_err(role)?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    Ok((listener, addr))
}

pub fn resolve(spec: &ListenSpec) -> Result<Vec<SocketAddr>, String> {
    crate::addr::resolve(&spec.host, spec.port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_share_one_real_port_when_port_zero_is_asked() {
        let spec = ListenSpec {
            host: "127.0.0.1".into(),
            port: 0,
        };
        let bound = bind_all(&[spec], 3).unwrap();
        assert_eq!(bound.addrs.len(), 1);
        assert_ne!(bound.addrs[0].port(), 0);
        for worker in &bound.sockets {
            assert_eq!(worker.len(), 1);
            assert_eq!(worker[0].local_addr().unwrap(), bound.addrs[0]);
        }
    }

    #[test]
    fn workers_do_not_join_another_process_s_reuseport_group() {
        // Another server's workers already listen on the address, SO_REUSEPORT on each.
        let theirs = bind_all(
            &[ListenSpec {
                host: "127.0.0.1".into(),
                port: 0,
            }],
            2,
        )
        .unwrap();
        let port = theirs.addrs[0].port();
        let taken = ListenSpec {
            host: "127.0.0.1".into(),
            port,
        };
        // This process's workers do not join it, however many.
        for workers in [1, 2, 3] {
            let err = bind_all(std::slice::from_ref(&taken), workers)
                .err()
                .unwrap();
            assert!(err.contains("in use"), "{workers} workers: {err}");
        }
    }

    #[test]
    fn one_worker_does_not_share_its_port() {
        let spec = ListenSpec {
            host: "127.0.0.1".into(),
            port: 0,
        };
        let bound = bind_all(&[spec], 1).unwrap();
        let taken = ListenSpec {
            host: "127.0.0.1".into(),
            port: bound.addrs[0].port(),
        };
        let err = bind_all(&[taken], 1).err().unwrap();
        assert!(err.contains("cannot listen on"), "{err}");
    }
}
