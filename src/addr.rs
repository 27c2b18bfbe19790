//! Addresses as users write them: a host (name, IPv4, or IPv6 in brackets) and a port. Pure:
//! no name resolution (that happens when binding or connecting). Shared by the server's command
//! line, the client's `--server` and the Redis URL, so it sits below all of them.

/// One address as the user wrote it: a host (name or IP) and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    pub host: String,
    pub port: u16,
}

/// `ADDR:PORT` for `option` (`--listen`, `--metrics`, the client's `--server`, the Redis URL),
/// IPv6 in brackets: `[::1]:5001`. Errors: a sentence naming the option and an example.
pub fn parse_address(option: &str, text: &str) -> Result<ListenSpec, String> {
    let bad = || format!("{option} {text}: expected ADDR:PORT, e.g. 127.0.0.1:5001 or [::1]:5001");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').ok_or_else(bad)?,
        None if host.contains(':') => return Err(bad()),
        None => host,
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = port
        .parse()
        .map_err(|_| format!("'{port}' is not a port (0-65535)"))?;
    Ok(ListenSpec {
        host: host.to_string(),
        port,
    })
}

/// Resolves `host`:`port` as the server and the client both do, with the errors in words:
/// `999.1.1.1 is not an IPv4 address (each part is 0-255)` for what can only be a mistyped
/// address (digits and dots are never a host name), `cannot resolve NAME: no such host` when the
/// lookup fails, never the resolver's own `failed to lookup address information`.
pub fn resolve(host: &str, port: u16) -> Result<Vec<std::net::SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    if !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && host.parse::<std::net::Ipv4Addr>().is_err()
    {
        return Err(format!(
            "{host} is not an IPv4 address (four parts of 0-255, as 127.0.0.1)"
        ));
    }
    let mut addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| {
            // getaddrinfo's own failures carry no OS error number, only its words.
            let why = match e.raw_os_error() {
                Some(_) => crate::cli::io_words(&e),
                None if e.to_string().contains("Temporary failure") => {
                    "the name service did not answer; try again".to_string()
                }
                None => "no such host".to_string(),
            };
            format!("cannot resolve {host}: {why}")
        })?
        .collect();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(format!("{host} has no address"));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mistyped_addresses_and_unknown_hosts_are_said_in_words() {
        assert_eq!(
            resolve("999.1.1.1", 5000).unwrap_err(),
            "999.1.1.1 is not an IPv4 address (four parts of 0-255, as 127.0.0.1)"
        );
        assert!(
            resolve("1.2.3", 5000)
                .unwrap_err()
                .contains("not an IPv4 address")
        );
        assert_eq!(
            resolve("nosuchhost.invalid", 5000).unwrap_err(),
            "cannot resolve nosuchhost.invalid: no such host"
        );
        assert_eq!(resolve("127.0.0.1", 7).unwrap()[0].port(), 7);
    }

    #[test]
    fn hosts_ports_and_bracketed_ipv6_are_read() {
        let spec = parse_address("--listen", "[::1]:5001").unwrap();
        assert_eq!((spec.host.as_str(), spec.port), ("::1", 5001));
        let spec = parse_address("--listen", "localhost:0").unwrap();
        assert_eq!((spec.host.as_str(), spec.port), ("localhost", 0));
        assert!(parse_address("--listen", "::1:5001").is_err());
        assert!(parse_address("--listen", ":5001").is_err());
        assert!(parse_address("--listen", "host:99999").is_err());
        assert!(
            parse_address("--listen", "host")
                .unwrap_err()
                .contains("--listen host")
        );
    }
}
