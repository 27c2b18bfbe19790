//! What a certificate says, read from its DER: the subject, and the name a client certificate
//! gives its holder under mutual TLS.

/// The subject of a DER certificate as `CN=...,O=...` (the attributes people read; others are
/// left out), or `None` if the certificate cannot be read. For the log line of a client that
/// presented a certificate; rustls has already verified it, this only names it.
pub fn subject(cert: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    for (oid, _, value) in subject_attributes(tbs_fields(cert)?.subject?)? {
        let short = match oid {
            [0x55, 0x04, 0x03] => "CN",
            [0x55, 0x04, 0x06] => "C",
            [0x55, 0x04, 0x07] => "L",
            [0x55, 0x04, 0x08] => "ST",
            [0x55, 0x04, 0x0A] => "O",
            [0x55, 0x04, 0x0B] => "OU",
            _ => continue,
        };
        parts.push(format!("{short}={}", String::from_utf8_lossy(value)));
    }
    Some(parts.join(","))
}

/// The name a client certificate gives its holder (mutual TLS): the subject's first CN, else its
/// first DNS or e-mail subject alternative name, as text; `None` when it has none that reads as
/// text (UTF8String, PrintableString, IA5String or BMPString) or the certificate cannot be read.
/// Whether the name is a valid name is for [`crate::proto::name::check`] to say. The server reads the
/// certificate the client presented (verified by rustls), the clients their `--cert`.
pub fn certificate_name(cert: &[u8]) -> Option<String> {
    let fields = tbs_fields(cert)?;
    let common_name = subject_attributes(fields.subject?)?
        .into_iter()
        .find(|(oid, _, _)| *oid == [0x55, 0x04, 0x03])
        .and_then(|(_, tag, value)| directory_string(tag, value));
    common_name.or_else(|| alternative_name(fields.extensions?))
}

/// The parts of a tbsCertificate this file reads.
struct TbsFields<'a> {
    subject: Option<&'a [u8]>,
    extensions: Option<&'a [u8]>,
}

fn tbs_fields(cert: &[u8]) -> Option<TbsFields<'_>> {
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
    //   signature, issuer, validity, subject, subjectPublicKeyInfo, [1] [2] OPTIONAL,
    //   [3] extensions OPTIONAL }, ... }
    let (_, tbs, _) = der_item(der_item(cert)?.1)?;
    let mut rest = tbs;
    let mut universal = 0; // fields that are not context-tagged: serial is 0, subject 4
    let mut fields = TbsFields {
        subject: None,
        extensions: None,
    };
    while !rest.is_empty() {
        let (tag, body, after) = der_item(rest)?;
        rest = after;
        match tag {
            0xA3 => fields.extensions = Some(body),
            0xA0..=0xA2 => {}
            _ => {
                if universal == 4 {
                    fields.subject = Some(body);
                }
                universal += 1;
            }
        }
    }
    Some(fields)
}

/// One attribute of a Name: (OID, the value's tag, the value).
type Attribute<'a> = (&'a [u8], u8, &'a [u8]);

/// A Name's attributes in order.
fn subject_attributes(name: &[u8]) -> Option<Vec<Attribute<'_>>> {
    let mut attributes = Vec::new();
    let mut sets = name;
    while !sets.is_empty() {
        let (_, set, after) = der_item(sets)?;
        sets = after;
        let (_, attribute, _) = der_item(set)?;
        let (_, oid, value) = der_item(attribute)?;
        let (tag, value, _) = der_item(value)?;
        attributes.push((oid, tag, value));
    }
    Some(attributes)
}

/// The first DNS name or e-mail address of the subjectAltName extension (2.5.29.17), if any.
fn alternative_name(extensions: &[u8]) -> Option<String> {
    let (_, mut list, _) = der_item(extensions)?; // Extensions ::= SEQUENCE OF Extension
    while !list.is_empty() {
        let (_, extension, after) = der_item(list)?;
        list = after;
        // Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
        let (_, oid, mut rest) = der_item(extension)?;
        if oid != [0x55, 0x1D, 0x11] {
            continue;
        }
        let (mut tag, mut value, after) = der_item(rest)?;
        if tag == 0x01 {
            (tag, value, _) = der_item(after)?; // skip `critical`
        }
        if tag != 0x04 {
            return None;
        }
        (_, rest, _) = der_item(value)?; // GeneralNames ::= SEQUENCE OF GeneralName
        while !rest.is_empty() {
            let (tag, name, after) = der_item(rest)?;
            rest = after;
            // [1] rfc822Name and [2] dNSName, both IA5String, implicitly tagged.
            if tag == 0x81 || tag == 0x82 {
                return directory_string(0x16, name);
            }
        }
        return None;
    }
    None
}

/// A DER string as text: UTF8String, PrintableString and IA5String are UTF-8 (or its ASCII
/// subset), BMPString is UTF-16 big-endian; anything else, or bytes that do not decode, is None.
fn directory_string(tag: u8, value: &[u8]) -> Option<String> {
    match tag {
        0x0C | 0x13 | 0x16 => String::from_utf8(value.to_vec()).ok(),
        0x1E if value.len() % 2 == 0 => {
            let units = value.chunks(2).map(|p| u16::from_be_bytes([p[0], p[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        _ => None,
    }
}

/// One DER item: (tag, contents, what follows). Definite lengths only, as DER requires.
fn der_item(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[count..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate with this CN (none when `None`) and these SANs.
    fn certificate(common_name: Option<&str>, sans: Vec<rcgen::SanType>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example");
        if let Some(cn) = common_name {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        params.subject_alt_names = sans;
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_certificate_name_is_the_cn_else_the_first_dns_or_email_name() {
        use rcgen::SanType;
        let dns = |n: &str| SanType::DnsName(n.try_into().unwrap());
        let email = |n: &str| SanType::Rfc822Name(n.try_into().unwrap());
        let ip = SanType::IpAddress("127.0.0.1".parse().unwrap());
        let cases = [
            (Some("alice"), vec![dns("bob.example")], Some("alice")),
            (Some("Zoë 日本"), vec![], Some("Zoë 日本")),
            (
                None,
                vec![ip.clone(), dns("bob.example")],
                Some("bob.example"),
            ),
            (
                None,
                vec![email("carol@example.com"), dns("x.example")],
                Some("carol@example.com"),
            ),
            (None, vec![ip], None),
            (None, vec![], None),
        ];
        for (cn, sans, want) in cases {
            let der = certificate(cn, sans);
            assert_eq!(certificate_name(&der).as_deref(), want, "CN {cn:?}");
        }
        assert_eq!(
            subject(&certificate(Some("alice"), vec![])).as_deref(),
            Some("O=Example,CN=alice")
        );
    }

    #[test]
    fn subject_of_garbage_is_none_not_a_panic() {
        assert_eq!(subject(b""), None);
        assert_eq!(subject(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        let mut seed = 1u32;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            let _ = subject(&bytes);
            let _ = certificate_name(&bytes);
        }
    }
}
