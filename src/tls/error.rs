//! rustls's errors in words a person can act on: the log's `error="..."`, the client's and the
//! server's messages. Never a Rust variant name.

/// A rustls error in words a person can act on (the log's `error="..."`, the client's and the
/// server's messages), never a Rust variant name.
pub fn describe_error(e: &rustls::Error) -> String {
    use rustls::{AlertDescription as Alert, CertificateError, Error, InconsistentKeys};
    match e {
        Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => {
            "the private key does not belong to the certificate".into()
        }
        Error::InconsistentKeys(_) => {
            "the private key cannot be checked against the certificate".into()
        }
        Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "not TLS: the peer sent something else (plain text?)".into()
        }
        Error::InvalidMessage(_) => "malformed TLS message".into(),
        Error::NoCertificatesPresented => "the client sent no certificate".into(),
        Error::PeerIncompatible(_) => "no TLS version or cipher suite in common".into(),
        Error::DecryptError => "a TLS record failed to decrypt (corrupt or forged)".into(),
        Error::AlertReceived(
            Alert::BadCertificate | Alert::UnknownCA | Alert::CertificateUnknown,
        ) => "the peer did not trust our certificate".into(),
        Error::AlertReceived(Alert::CertificateRequired) => {
            "the peer requires a client certificate".into()
        }
        Error::AlertReceived(alert) => format!(
            "the peer ended the handshake (TLS alert {})",
            camel_to_words(&format!("{alert:?}"), '_')
        ),
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "certificate signed by an unknown CA".into()
        }
        Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "certificate expired".into(),
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "certificate not valid for this name".into(),
        Error::InvalidCertificate(_) => "invalid certificate".into(),
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
