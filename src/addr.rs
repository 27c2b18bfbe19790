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

#[cfg(test)]
mod tests {
    use super::*;

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
