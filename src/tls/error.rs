//! rustls's errors in words a person can act on: the log's `error="..."`, the client's and the
//! server's messages. Never a Rust variant name.

/// A rustls error in words a person can act on (the log's `error="..."`, the client's and the
/// server's messages), never a Rust variant name. One wording per family (SPEC "Trust at the
/// edges"): no TLS version, cipher suite, key-exchange group or signature scheme in common, no
/// client certificate, an unknown CA, an expired (or not yet valid) certificate, a bad record.
/// Within a family, rustls's own detail follows in words where it helps.
pub fn describe_error(e: &rustls::Error) -> String {
    use rustls::{AlertDescription as Alert, Error, InconsistentKeys};
    match e {
        Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => {
            "the private key does not belong to the certificate".into()
        }
        Error::InconsistentKeys(_) => {
            "the private key cannot be checked against the certificate".into()
        }
        // The connection knows better what came (`conn/first_bytes.rs`); this is the fallback.
        Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "a TLS record of unknown content type (not TLS?)".into()
        }
        Error::InvalidMessage(how) => bad_record(how),
        Error::PeerSentOversizedRecord => "a bad TLS record: larger than TLS allows".into(),
        Error::DecryptError => "a bad TLS record: it failed to decrypt (corrupt or forged)".into(),
        Error::NoCertificatesPresented => "no client certificate: the client sent none".into(),
        Error::PeerIncompatible(why) => incompatible(why),
        Error::AlertReceived(
            Alert::BadCertificate | Alert::UnknownCA | Alert::CertificateUnknown,
        ) => "the peer did not trust our certificate".into(),
        Error::AlertReceived(Alert::CertificateExpired) => {
            "the peer found our certificate expired".into()
        }
        Error::AlertReceived(Alert::CertificateRequired) => {
            "the peer requires a client certificate".into()
        }
        Error::AlertReceived(alert) => format!(
            "the peer ended the handshake (TLS alert {})",
            camel_to_words(&format!("{alert:?}"), '_')
        ),
        Error::InvalidCertificate(why) => invalid_certificate(why),
        // `ServerNameMustContainOneHostName` reads "server name must contain one host name" (an
        // IP address sent as SNI, as socat does for `[::1]`).
        Error::PeerMisbehaved(how) => format!(
            "the peer broke the TLS protocol: {}",
            camel_to_words(&format!("{how:?}"), ' ')
        ),
        Error::InappropriateMessage { .. } | Error::InappropriateHandshakeMessage { .. } => {
            "the peer broke the TLS protocol: a message out of place".into()
        }
        other => other.to_string(),
    }
}

/// The families of `PeerIncompatible`: what the two ends had nothing in common of.
fn incompatible(why: &rustls::PeerIncompatible) -> String {
    use rustls::PeerIncompatible as P;
    match why {
        P::Tls12NotOffered
        | P::Tls12NotOfferedOrEnabled
        | P::SupportedVersionsExtensionRequired
        | P::ServerDoesNotSupportTls12Or13
        | P::ServerTlsVersionIsDisabledByOurConfig
        | P::Tls13RequiredForQuic => {
            "no TLS version in common (this side speaks TLS 1.2 and 1.3)".into()
        }
        P::NoCipherSuitesInCommon => "no cipher suite in common".into(),
        P::NoKxGroupsInCommon
        | P::NamedGroupsExtensionRequired
        | P::KeyShareExtensionRequired
        | P::NoEcPointFormatsInCommon
        | P::EcPointsExtensionRequired
        | P::UncompressedEcPointsRequired => "no key-exchange group in common".into(),
        // rustls looks for signature_algorithms before the version, and only TLS 1.2 and later
        // send it: a hello without it is, in practice, TLS 1.1 or older.
        P::SignatureAlgorithmsExtensionRequired => {
            "no TLS version in common (a TLS 1.1 or older hello: no signature algorithms)".into()
        }
        P::NoSignatureSchemesInCommon | P::NoCertificateRequestSignatureSchemesInCommon => {
            "no signature scheme in common".into()
        }
        P::ExtendedMasterSecretExtensionRequired => {
            "the peer lacks the extended master secret (RFC 7627) that is required".into()
        }
        P::NullCompressionRequired => {
            "the peer offered only TLS compression, which is not spoken".into()
        }
        other => format!(
            "the peer's TLS is incompatible: {}",
            camel_to_words(&format!("{other:?}"), ' ')
        ),
    }
}

/// The families of `CertificateError`, with the dates rustls gives where it gives them.
fn invalid_certificate(why: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match why {
        C::UnknownIssuer => "certificate signed by an unknown CA".into(),
        C::Expired => "certificate expired".into(),
        C::ExpiredContext { not_after, .. } => {
            format!("certificate expired on {}", utc(not_after.as_secs() as i64))
        }
        C::NotValidYet => "certificate not valid yet".into(),
        C::NotValidYetContext { not_before, .. } => {
            format!(
                "certificate not valid before {}",
                utc(not_before.as_secs() as i64)
            )
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "certificate not valid for this name".into()
        }
        C::BadSignature => "certificate signature does not verify".into(),
        C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "certificate signed with an algorithm not supported here".into()
        }
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "certificate not made for this use (extended key usage)".into()
        }
        C::Revoked => "certificate revoked".into(),
        C::BadEncoding => "certificate malformed".into(),
        C::UnhandledCriticalExtension => {
            "certificate has a critical extension not understood".into()
        }
        other => format!(
            "invalid certificate: {}",
            camel_to_words(&format!("{other:?}"), ' ')
        ),
    }
}

/// A record or message rustls could not read.
fn bad_record(how: &rustls::InvalidMessage) -> String {
    use rustls::InvalidMessage as M;
    match how {
        M::UnknownProtocolVersion => "a bad TLS record: an unknown protocol version".into(),
        M::MessageTooLarge => "a bad TLS record: larger than TLS allows".into(),
        M::InvalidEmptyPayload => "a bad TLS record: empty where it may not be".into(),
        other => format!(
            "a malformed TLS message: {}",
            camel_to_words(&format!("{other:?}"), ' ')
        ),
    }
}

/// Unix seconds as `2026-12-07T21:04:50Z`.
/// Unix seconds (before 1970 too: a certificate may say 1950) as `2026-12-20T00:00:00Z`.
pub(crate) fn utc(secs: i64) -> String {
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::log::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// `HandshakeFailure` as `handshake_failure` (an alert, as the RFC names it) or as words.
fn camel_to_words(name: &str, separator: char) -> String {
    let name = name.split('(').next().unwrap_or(name); // a variant's payload is left out
    let mut words = String::with_capacity(name.len() + 8);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            words.push(separator);
        }
        words.push(c.to_ascii_lowercase());
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_of_error_has_its_own_words() {
        use rustls::pki_types::UnixTime;
        use rustls::{CertificateError as C, Error, InvalidMessage as M, PeerIncompatible as P};
        let at = |secs| UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
        let cases = [
            (
                Error::PeerIncompatible(P::Tls12NotOfferedOrEnabled),
                "no TLS version in common (this side speaks TLS 1.2 and 1.3)",
            ),
            (
                Error::PeerIncompatible(P::SupportedVersionsExtensionRequired),
                "no TLS version in common (this side speaks TLS 1.2 and 1.3)",
            ),
            (
                Error::PeerIncompatible(P::NoCipherSuitesInCommon),
                "no cipher suite in common",
            ),
            (
                Error::PeerIncompatible(P::NoKxGroupsInCommon),
                "no key-exchange group in common",
            ),
            (
                Error::PeerIncompatible(P::NoSignatureSchemesInCommon),
                "no signature scheme in common",
            ),
            (
                Error::PeerIncompatible(P::SignatureAlgorithmsExtensionRequired),
                "no TLS version in common (a TLS 1.1 or older hello: no signature algorithms)",
            ),
            (
                Error::NoCertificatesPresented,
                "no client certificate: the client sent none",
            ),
            (
                Error::InvalidCertificate(C::UnknownIssuer),
                "certificate signed by an unknown CA",
            ),
            (
                Error::InvalidCertificate(C::ExpiredContext {
                    time: at(1_800_000_000),
                    not_after: at(1_767_225_600),
                }),
                "certificate expired on 2026-01-01T00:00:00Z",
            ),
            (Error::InvalidCertificate(C::Expired), "certificate expired"),
            (
                Error::InvalidCertificate(C::NotValidYetContext {
                    time: at(0),
                    not_before: at(86_400),
                }),
                "certificate not valid before 1970-01-02T00:00:00Z",
            ),
            (
                Error::InvalidMessage(M::UnknownProtocolVersion),
                "a bad TLS record: an unknown protocol version",
            ),
            (
                Error::DecryptError,
                "a bad TLS record: it failed to decrypt (corrupt or forged)",
            ),
            (
                Error::InvalidMessage(M::MissingData("x")),
                "a malformed TLS message: missing data",
            ),
        ];
        for (error, words) in cases {
            assert_eq!(describe_error(&error), words, "{error:?}");
        }
        // No two families share their words.
        let families = [
            P::Tls12NotOffered,
            P::NoCipherSuitesInCommon,
            P::NoKxGroupsInCommon,
            P::NoSignatureSchemesInCommon,
        ]
        .map(|p| describe_error(&Error::PeerIncompatible(p)));
        for (i, a) in families.iter().enumerate() {
            assert!(!families[i + 1..].contains(a), "{a}");
        }
    }

    #[test]
    fn tls_errors_read_as_words() {
        use rustls::{AlertDescription, Error, PeerMisbehaved};
        assert_eq!(
            describe_error(&Error::PeerMisbehaved(
                PeerMisbehaved::ServerNameMustContainOneHostName
            )),
            "the peer broke the TLS protocol: server name must contain one host name"
        );
        assert_eq!(
            describe_error(&Error::AlertReceived(AlertDescription::HandshakeFailure)),
            "the peer ended the handshake (TLS alert handshake_failure)"
        );
        assert_eq!(
            describe_error(&Error::InconsistentKeys(
                rustls::InconsistentKeys::KeyMismatch
            )),
            "the private key does not belong to the certificate"
        );
    }
}
