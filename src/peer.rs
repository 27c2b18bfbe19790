//! A client's address in the one form every part of the server sees: an IPv4 client reached
//! through an IPv6 socket (a listener on `[::]` or `[::ffff:127.0.0.1]`) or named in a PROXY
//! header as `::ffff:a.b.c.d` is the IPv4 address `a.b.c.d`. Applied where an address enters
//! (accept, the PROXY header), so `--max-per-ip` counts one client once, `--proxy-from` matches
//! it, and the log names it one way.

use std::net::SocketAddr;

/// `addr` with an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, RFC 4291 2.5.5.2) turned into
/// its IPv4 address, port kept; any other address as it is (`::1`, `2001:db8::1`, and the
/// deprecated IPv4-compatible `::a.b.c.d`, which is a real IPv6 address today).
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        canonical(text.parse().unwrap()).to_string()
    }

    #[test]
    fn mapped_addresses_become_ipv4_and_others_stay() {
        assert_eq!(canon("[::ffff:127.0.0.1]:5000"), "127.0.0.1:5000");
        assert_eq!(canon("[::ffff:203.0.113.50]:1"), "203.0.113.50:1");
        assert_eq!(canon("[::FFFF:cb00:7132]:1"), "203.0.113.50:1");
        assert_eq!(canon("203.0.113.50:1"), "203.0.113.50:1");
        assert_eq!(canon("[::1]:7"), "[::1]:7");
        assert_eq!(canon("[::7f00:1]:7"), "[::7f00:1]:7");
        assert_eq!(canon("[2001:db8::1]:7"), "[2001:db8::1]:7");
        assert_eq!(canon("[::]:7"), "[::]:7");
    }
}
