//! What a certificate says: its subject, the name a client certificate gives its holder under
//! mutual TLS, and when it is valid. Read with x509-parser (see Cargo.toml), never by hand.

use x509_parser::asn1_rs::{Oid, Tag};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    OID_X509_COMMON_NAME, OID_X509_COUNTRY_NAME, OID_X509_LOCALITY_NAME,
    OID_X509_ORGANIZATION_NAME, OID_X509_ORGANIZATIONAL_UNIT, OID_X509_STATE_OR_PROVINCE_NAME,
};
use x509_parser::x509::X509Name;

/// The subject attributes people read, by their short names (RFC 4514 3).
const SHORT_NAMES: [(Oid<'static>, &str); 6] = [
    (OID_X509_COMMON_NAME, "CN"),
    (OID_X509_COUNTRY_NAME, "C"),
    (OID_X509_LOCALITY_NAME, "L"),
    (OID_X509_STATE_OR_PROVINCE_NAME, "ST"),
    (OID_X509_ORGANIZATION_NAME, "O"),
    (OID_X509_ORGANIZATIONAL_UNIT, "OU"),
];

/// The certificate in `der`, when it parses as one X.509 certificate.
fn parse(der: &[u8]) -> Option<X509Certificate<'_>> {
    x509_parser::parse_x509_certificate(der)
        .ok()
        .map(|(_, cert)| cert)
}

/// The subject of a DER certificate as `CN=...,O=...` (the attributes people read, in the
/// certificate's order; others are left out), or `None` if the certificate cannot be read. For
/// the log line of a client that presented a certificate; rustls has already verified it, this
/// only names it.
pub fn subject(cert: &[u8]) -> Option<String> {
    let cert = parse(cert)?;
    let mut parts = Vec::new();
    for attribute in cert.subject().iter_attributes() {
        let oid = attribute.attr_type();
        let short = SHORT_NAMES
            .into_iter()
            .find_map(|(known, short)| (known == *oid).then_some(short));
        if let Some(short) = short {
            let value = attribute.attr_value();
            let text = directory_string(value.tag(), value.data)
                .unwrap_or_else(|| String::from_utf8_lossy(value.data).into_owned());
            parts.push(format!("{short}={text}"));
        }
    }
    Some(parts.join(","))
}

/// The name a client certificate gives its holder (mutual TLS): the subject's first CN, else its
/// first DNS or e-mail subject alternative name, as text; `None` when it has none that reads as
/// text (UTF8String, PrintableString, IA5String or BMPString) or the certificate cannot be read.
/// Whether the name is a valid name is for [`crate::proto::name::check`] to say. The server reads the
/// certificate the client presented (verified by rustls), the clients their `--cert`.
pub fn certificate_name(cert: &[u8]) -> Option<String> {
    let cert = parse(cert)?;
    common_name(cert.subject()).or_else(|| alternative_name(&cert))
}

/// When a certificate is valid: its notBefore and notAfter, in Unix seconds (RFC 5280 4.1.2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    pub not_before: i64,
    pub not_after: i64,
}

/// The validity period of a DER certificate, `None` if it cannot be read.
pub fn validity(cert: &[u8]) -> Option<Validity> {
    let validity = parse(cert)?.validity().clone();
    Some(Validity {
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
    })
}

/// The subject's first CN, as text.
fn common_name(name: &X509Name<'_>) -> Option<String> {
    let value = name.iter_common_name().next()?.attr_value();
    directory_string(value.tag(), value.data)
}

/// The first DNS name or e-mail address of the subjectAltName extension, if any.
fn alternative_name(cert: &X509Certificate<'_>) -> Option<String> {
    let names = cert.subject_alternative_name().ok()??;
    names
        .value
        .general_names
        .iter()
        .find_map(|name| match name {
            GeneralName::RFC822Name(text) | GeneralName::DNSName(text) => Some(text.to_string()),
            _ => None,
        })
}

/// A DER string as text: UTF8String, PrintableString and IA5String are UTF-8 (or its ASCII
/// subset), BMPString is UTF-16 big-endian; anything else, or bytes that do not decode, is None.
fn directory_string(tag: Tag, value: &[u8]) -> Option<String> {
    match tag {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {
            String::from_utf8(value.to_vec()).ok()
        }
        Tag::BmpString if value.len() % 2 == 0 => {
            let units = value.chunks(2).map(|p| u16::from_be_bytes([p[0], p[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        _ => None,
    }
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
