//! Addresses as people write them on both command lines (server and clients): `HOST PORT`
//! with IPv6 as `::1` or `[::1]`, and the defaults. Text in, values or a message out.
//! (`HOST:PORT` for options is `crate::addr`.)

/// The address both sides use when none is given.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// The port both sides use when none is given.
pub const DEFAULT_PORT: u16 = 5000;

/// `[::1]` and `::1` both name the IPv6 loopback: the brackets are how URLs write it.
pub fn host_of(text: &str) -> String {
    text.strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(text)
        .to_string()
}

/// A port, 0-65535; the error says what was wrong with `text`.
pub fn parse_port(text: &str) -> Result<u16, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a port (0-65535)"))
}

/// A lone `HOST` argument that is really a port (`securetcp 5001`): the message that says the
/// host comes first, as in `PROGRAM 127.0.0.1 5001`; `None` for a real host.
pub fn port_given_as_host(program: &str, text: &str) -> Option<String> {
    text.parse::<u16>().is_ok().then(|| {
        format!(
            "'{text}' is a port, not a host: give the host first, as in: {program} {DEFAULT_HOST} {text}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_ports_and_pairs() {
        assert_eq!(host_of("[::1]"), "::1");
        assert_eq!(host_of("::1"), "::1");
        assert_eq!(host_of("example.org"), "example.org");
        assert_eq!(parse_port("5001"), Ok(5001));
        assert!(parse_port("fifty").unwrap_err().contains("not a port"));
        assert!(
            port_given_as_host("securetcp", "5001")
                .unwrap()
                .contains("give the host first, as in: securetcp 127.0.0.1 5001")
        );
        assert_eq!(port_given_as_host("securetcp", "::1"), None);
    }
}
