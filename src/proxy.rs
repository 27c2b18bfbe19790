//! `--proxy-from`: who may (and must) begin a connection with a PROXY header. The header itself
//! is parsed by the connection core (`securetcp_core::proxy`, re-exported here).

use std::net::IpAddr;

use ipnet::IpNet;

pub use securetcp_core::proxy::{MAX_HEADER, Parsed, parse};

/// `--proxy-from`: the networks whose connections must, and may, start with a header.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyFrom(Vec<IpNet>);

impl Default for ProxyFrom {
    /// The loopback networks: a balancer on the same machine.
    fn default() -> ProxyFrom {
        ProxyFrom(vec![
            "127.0.0.0/8".parse().expect("a valid network"),
            "::1/128".parse().expect("a valid network"),
        ])
    }
}

impl ProxyFrom {
    /// Parses `--proxy-from` values: `10.0.0.0/8`, `::1/128`, or a bare address (one host).
    pub fn parse(values: &[String]) -> Result<ProxyFrom, String> {
        let mut nets = Vec::with_capacity(values.len());
        for value in values {
            let net = value
                .parse::<IpNet>()
                .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("--proxy-from: '{value}' is not a network (as 10.0.0.0/8 or ::1/128)")
                })?;
            nets.push(canonical_net(net));
        }
        Ok(ProxyFrom(nets))
    }

    /// True when a connection from `ip` may (and must) send a header. An IPv4 peer seen on an
    /// IPv6 socket (`::ffff:10.0.0.1`) counts as its IPv4 self (as `peer::canonical` has it).
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// A network inside `::ffff:0:0/96` written as IPv6 (`::ffff:10.0.0.0/104`) is the IPv4
/// network it maps (`10.0.0.0/8`): addresses are matched in their IPv4 form.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            // A prefix of 96..=128 leaves 0..=32 bits: always a valid IPv4 prefix.
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_from_networks() {
        let default = ProxyFrom::default();
        assert!(default.allows("127.0.0.1".parse().unwrap()));
        assert!(default.allows("::1".parse().unwrap()));
        assert!(default.allows("::ffff:127.0.0.2".parse().unwrap()));
        assert!(!default.allows("10.0.0.1".parse().unwrap()));
        let given = ProxyFrom::parse(&["10.0.0.0/8".into(), "192.0.2.1".into()]).unwrap();
        assert!(given.allows("10.200.0.1".parse().unwrap()));
        assert!(given.allows("192.0.2.1".parse().unwrap()));
        assert!(!given.allows("127.0.0.1".parse().unwrap()));
        // Written as IPv4-mapped IPv6, a network matches its IPv4 addresses.
        let mapped =
            ProxyFrom::parse(&["::ffff:10.0.0.0/104".into(), "::ffff:192.0.2.9".into()]).unwrap();
        assert!(mapped.allows("10.1.2.3".parse().unwrap()));
        assert!(mapped.allows("::ffff:10.1.2.3".parse().unwrap()));
        assert!(mapped.allows("192.0.2.9".parse().unwrap()));
        assert!(!mapped.allows("192.0.2.10".parse().unwrap()));
        assert_eq!(
            mapped,
            ProxyFrom::parse(&["10.0.0.0/8".into(), "192.0.2.9/32".into()]).unwrap()
        );
        assert!(ProxyFrom::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(ProxyFrom::parse(&["nowhere".into()]).is_err());
    }
}
