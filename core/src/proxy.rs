//! The PROXY protocol's header: what a load balancer such as HAProxy writes before the client's
//! first byte (v1 text with `send-proxy`, v2 binary with `send-proxy-v2`). Pure: the connection
//! asks [`parse`] whether the bytes handed in hold a whole header and how long it is; nothing
//! here does IO. Who may send one (`--proxy-from`) is the server's business.
//!
//! Parsing is the `ppp` crate's (both versions, tested against the specification's examples);
//! this module only turns its answer into what the reactor needs: the header's length, and the
//! client's address or none (v2 `LOCAL`, v1 `UNKNOWN`: the balancer speaking for itself).

use core::net::SocketAddr;

use ppp::{HeaderResult, PartialResult, v1, v2};

/// The most header bytes a connection may send: v1 is at most 107 bytes; v2 may carry TLVs,
/// and HAProxy's (SSL details, unique id) stay far below this.
pub const MAX_HEADER: usize = 1024;

/// A v2 header's fixed part: the signature, version and command, family, and length.
const V2_FIXED: usize = 16;

/// A v1 header's longest line (the specification's 107 bytes, CRLF included), and its start.
const V1_MAX: usize = 107;
const V1_START: &[u8] = b"PROXY ";

/// What the bytes received so far hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A header has begun but is not whole yet.
    Incomplete,
    /// A whole header of `len` bytes; `client` is `None` for a balancer's own connection
    /// (v2 `LOCAL`, v1 `UNKNOWN`, or an address family without ports).
    Header {
        len: usize,
        client: Option<SocketAddr>,
        local: bool,
    },
    /// Not a PROXY header, or a broken one: the words for the log.
    Invalid(&'static str),
}

/// Reads the header at the start of `bytes` (which may go on with the client's own bytes).
pub fn parse(bytes: &[u8]) -> Parsed {
    if could_be_v1(bytes) {
        // A v1 header is one line of at most 107 bytes, judged here byte by byte as it comes:
        // a byte no v1 header can hold, or a line not ended by CRLF, is refused at once. ppp
        // judges a partial line by what it lacks, which is not reliable (`... 54367 ` with the
        // last port still to come is "invalid" to it), so it sees the line only once it has ended.
        match scan_v1(bytes) {
            V1Line::Ended => {}
            V1Line::Partial => return Parsed::Incomplete,
            V1Line::Refused(why) => return Parsed::Invalid(why),
        }
    }
    let result = HeaderResult::parse(bytes);
    if !matches!(result, HeaderResult::V1(_)) && result.is_incomplete() {
        // A v2 header says its length in its 15th and 16th bytes: one longer than we take is
        // refused as soon as it says so, not after waiting for all of it.
        let announced = bytes
            .get(14..16)
            .map(|len| V2_FIXED + usize::from(u16::from_be_bytes([len[0], len[1]])));
        return if bytes.len() >= MAX_HEADER || announced.is_some_and(|len| len > MAX_HEADER) {
            Parsed::Invalid("PROXY header too long")
        } else {
            Parsed::Incomplete
        };
    }
    match result {
        HeaderResult::V2(Ok(header)) => {
            let local = header.command == v2::Command::Local;
            let client = match header.addresses {
                _ if local => None,
                v2::Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
                v2::Addresses::IPv6(a) => Some(canonical((a.source_address, a.source_port).into())),
                v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
            };
            if header.len() > MAX_HEADER {
                return Parsed::Invalid("PROXY header too long");
            }
            Parsed::Header {
                len: header.len(),
                client,
                local,
            }
        }
        HeaderResult::V1(Ok(header)) => {
            let client = match header.addresses {
                v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
                v1::Addresses::Tcp6(a) => Some(canonical((a.source_address, a.source_port).into())),
                v1::Addresses::Unknown => None,
            };
            Parsed::Header {
                len: header.header.len(),
                client,
                local: client.is_none(),
            }
        }
        HeaderResult::V1(Err(_)) | HeaderResult::V2(Err(_)) => {
            Parsed::Invalid("no valid PROXY header")
        }
    }
}

/// Whether `bytes` begin as a v1 header does (`PROXY `, or a first part of it).
fn could_be_v1(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes[..bytes.len().min(V1_START.len())] == V1_START[..bytes.len().min(V1_START.len())]
}

/// How far a v1 header line has come.
#[derive(Debug, PartialEq, Eq)]
enum V1Line {
    /// Its CRLF has arrived: the whole line is there to be parsed.
    Ended,
    /// Every byte so far can be part of a header; the rest is to come.
    Partial,
    /// It cannot become a header: the words for the log.
    Refused(&'static str),
}

/// The protocol words a v1 header may name after `PROXY `.
const V1_PROTOCOLS: [&[u8]; 3] = [b"TCP4", b"TCP6", b"UNKNOWN"];

/// Judges a v1 line (`bytes` start with a part of `PROXY `) as far as it has come. After
/// `PROXY ` comes a protocol word; after `TCP4`/`TCP6`, only addresses and ports (hex digits,
/// `.`, `:`, spaces); after `UNKNOWN`, anything printable (the receiver ignores it). The line
/// ends in CRLF within 107 bytes: a bare LF, a CR followed by anything else, a control
/// character or a byte past 0x7e is refused.
fn scan_v1(bytes: &[u8]) -> V1Line {
    const NOT_A_HEADER: V1Line = V1Line::Refused("no valid PROXY header");
    let line = &bytes[..bytes.len().min(V1_MAX)];
    let Some(after_start) = line.get(V1_START.len()..) else {
        return V1Line::Partial; // a part of `PROXY ` only (checked by the caller)
    };
    let word_len = after_start
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .unwrap_or(after_start.len());
    let (word, rest) = after_start.split_at(word_len);
    let word_whole = !rest.is_empty();
    let word_fits = V1_PROTOCOLS.iter().any(|p| {
        if word_whole {
            *p == word
        } else {
            p.starts_with(word)
        }
    });
    if !word_fits {
        return NOT_A_HEADER;
    }
    let unknown = word == b"UNKNOWN";
    for (i, &b) in rest.iter().enumerate() {
        let after_cr = i > 0 && rest[i - 1] == b'\r';
        match b {
            b'\n' if after_cr => return V1Line::Ended,
            b'\n' => return V1Line::Refused("PROXY v1 header line ends in a bare LF, not CRLF"),
            _ if after_cr => return V1Line::Refused("PROXY v1 header line has a CR without LF"),
            b'\r' => {}
            b' ' | b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' | b'.' | b':' => {}
            0x21..=0x7e if unknown => {}
            _ => return NOT_A_HEADER,
        }
    }
    if line.len() >= V1_MAX {
        V1Line::Refused("PROXY header too long")
    } else {
        V1Line::Partial
    }
}

/// An IPv4 client seen as IPv4-mapped IPv6 (`::ffff:10.0.0.1`) is written as its IPv4 self, as
/// the server's `peer::canonical` has every address.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2_header(command: u8, family: u8, addresses: &[u8]) -> Vec<u8> {
        let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        header.push(0x20 | command);
        header.push(family);
        header.extend_from_slice(&(addresses.len() as u16).to_be_bytes());
        header.extend_from_slice(addresses);
        header
    }

    #[test]
    fn v1_header_and_what_follows_it() {
        let bytes = b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 5000\r\n\x16\x03\x01";
        assert_eq!(
            parse(bytes),
            Parsed::Header {
                len: bytes.len() - 3,
                client: Some("192.0.2.7:56324".parse().unwrap()),
                local: false
            }
        );
        let v6 = b"PROXY TCP6 2001:db8::1 ::1 4000 5000\r\n";
        assert!(matches!(parse(v6), Parsed::Header { client: Some(c), .. } if c.port() == 4000));
        assert!(matches!(
            parse(b"PROXY UNKNOWN\r\n"),
            Parsed::Header {
                client: None,
                local: true,
                ..
            }
        ));
    }

    #[test]
    fn v2_proxy_and_local() {
        let mut addresses = vec![198, 51, 100, 9, 10, 0, 0, 1];
        addresses.extend_from_slice(&40000u16.to_be_bytes());
        addresses.extend_from_slice(&5000u16.to_be_bytes());
        let mut bytes = v2_header(1, 0x11, &addresses);
        let len = bytes.len();
        bytes.extend_from_slice(b"\x16\x03\x01 the client hello");
        assert_eq!(
            parse(&bytes),
            Parsed::Header {
                len,
                client: Some("198.51.100.9:40000".parse().unwrap()),
                local: false
            }
        );
        let local = v2_header(0, 0x00, &[]);
        assert_eq!(
            parse(&local),
            Parsed::Header {
                len: 16,
                client: None,
                local: true
            }
        );
    }

    #[test]
    fn partial_headers_wait_and_broken_ones_do_not() {
        assert_eq!(parse(b"PROXY TCP4 192.0"), Parsed::Incomplete);
        assert_eq!(parse(b"\r\n\r\n\0\r\n"), Parsed::Incomplete);
        let whole = v2_header(1, 0x11, &[1; 12]);
        assert_eq!(parse(&whole[..20]), Parsed::Incomplete);
        assert!(matches!(parse(b"\x16\x03\x01\x02\x00"), Parsed::Invalid(_)));
        assert!(matches!(
            parse(b"PROXY TCP4 nonsense\r\n"),
            Parsed::Invalid(_)
        ));
        assert!(matches!(parse(b"GET / HTTP/1.1\r\n"), Parsed::Invalid(_)));
        // A v1 line that never ends.
        let long = [b'P', b'R', b'O', b'X', b'Y', b' '].repeat(40);
        assert!(matches!(parse(&long), Parsed::Invalid(_)));
        // A v2 header announcing more than we take: refused on its first 16 bytes.
        let mut huge = v2_header(1, 0x11, &[0; 12]);
        huge[14..16].copy_from_slice(&2000u16.to_be_bytes());
        assert_eq!(parse(&huge[..16]), Parsed::Invalid("PROXY header too long"));
        let mut most = v2_header(1, 0x11, &[0; 12]);
        most[14..16].copy_from_slice(&((MAX_HEADER - 16) as u16).to_be_bytes());
        assert_eq!(parse(&most[..16]), Parsed::Incomplete);
        huge.resize(16 + 2000, 0);
        assert!(matches!(parse(&huge), Parsed::Invalid(_)));
    }

    #[test]
    fn a_v1_line_is_refused_at_the_first_byte_it_cannot_hold() {
        let refused = |bytes: &[u8]| matches!(parse(bytes), Parsed::Invalid(_));
        // Not ended by CRLF: a bare LF, or a CR followed by something else.
        assert_eq!(
            parse(b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 5000\n"),
            Parsed::Invalid("PROXY v1 header line ends in a bare LF, not CRLF")
        );
        assert!(refused(b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 5000\r+"));
        assert!(refused(b"PROXY UNKNOWN\n"));
        // Bytes no header holds, long before the line could end.
        assert!(refused(b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 5000 x"));
        assert!(refused(b"PROXY TCP4 203.0.113.7\t"));
        assert!(refused(b"PROXY TCP4 203.0.113.7\0"));
        assert!(refused(b"PROXY TCP5"));
        assert!(refused(b"PROXY tcp4"));
        assert!(refused(b"PROXY  TCP4"));
        assert!(refused(b"PROXY UNKNOWN \x80"));
        assert!(refused(b"PROXYX"));
        // What may still become a header waits; UNKNOWN may carry any printable bytes.
        assert_eq!(parse(b"PROXY UNK"), Parsed::Incomplete);
        assert_eq!(
            parse(b"PROXY UNKNOWN whatever [it] says"),
            Parsed::Incomplete
        );
        assert_eq!(
            parse(b"PROXY TCP6 2001:DB8::1 ::1 4000 5000\r"),
            Parsed::Incomplete
        );
        assert!(matches!(
            parse(b"PROXY UNKNOWN whatever [it] says\r\n"),
            Parsed::Header { client: None, .. }
        ));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever a peer sends: no panic, a header never longer than what came or than
            /// the limit, and a prefix of a whole header is never judged before it is whole.
            #[test]
            fn any_bytes_get_an_answer_and_prefixes_wait(
                noise in prop::collection::vec(any::<u8>(), 0..1200),
                cut in any::<usize>(),
                port in 1u16..,
                a in any::<[u8; 4]>(),
            ) {
                if let Parsed::Header { len, .. } = parse(&noise) {
                    prop_assert!(len <= noise.len() && len <= MAX_HEADER);
                }
                let ip = core::net::Ipv4Addr::from(a);
                let header = format!("PROXY TCP4 {ip} 10.0.0.1 {port} 5000\r\n").into_bytes();
                let prefix = &header[..cut % header.len()];
                prop_assert_eq!(parse(prefix), Parsed::Incomplete);
                let mut whole = header.clone();
                whole.extend_from_slice(&noise);
                prop_assert_eq!(
                    parse(&whole),
                    Parsed::Header {
                        len: header.len(),
                        client: Some(SocketAddr::from((ip, port))),
                        local: false,
                    }
                );
            }

            /// TCP6 headers: any prefix waits, the whole is read, and an IPv4-mapped source
            /// comes out as the IPv4 address it maps.
            #[test]
            fn tcp6_headers_wait_whole_and_mapped_sources_are_ipv4(
                cut in any::<usize>(),
                port in 1u16..,
                segments in any::<[u16; 8]>(),
                mapped in any::<bool>(),
            ) {
                let mut ip = core::net::Ipv6Addr::from(segments);
                if mapped {
                    ip = core::net::Ipv4Addr::from(segments[0] as u32 * 65_537).to_ipv6_mapped();
                }
                let header = format!("PROXY TCP6 {ip} ::1 {port} 5000\r\n").into_bytes();
                prop_assert_eq!(parse(&header[..cut % header.len()]), Parsed::Incomplete);
                let expected = SocketAddr::new(ip.to_canonical(), port);
                prop_assert_eq!(expected.is_ipv4(), ip.to_ipv4_mapped().is_some());
                prop_assert_eq!(
                    parse(&header),
                    Parsed::Header { len: header.len(), client: Some(expected), local: false }
                );
            }
        }
    }
}
