//! What a connection's TLS session says about the other end, in words: the protocol and cipher
//! suite for the log's open line, and, with mutual TLS, the certificate's subject (for the log)
//! and name (the only name the client may take).

use super::Conn;

impl Conn {
    /// `TLSv1_3/TLS13_AES_256_GCM_SHA384`, or `plain`.
    pub fn tls_description(&self) -> String {
        match &self.tls {
            None => "plain".to_string(),
            Some(tls) => match (tls.protocol_version(), tls.negotiated_cipher_suite()) {
                (Some(version), Some(suite)) => {
                    // A resumed session (a returning client's ticket) says so.
                    let resumed = tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                    format!(
                        "{version:?}/{:?}{}",
                        suite.suite(),
                        if resumed { " resumed=yes" } else { "" }
                    )
                }
                _ => "-".to_string(),
            },
        }
    }

    /// The subject of the certificate the client presented (mutual TLS), for the log.
    pub fn client_subject(&self) -> Option<String> {
        let certs = self.tls.as_ref()?.peer_certificates()?;
        crate::tls::subject(certs.first()?)
    }

    /// The name the certificate the client presented gives it (mutual TLS): its CN, else its
    /// first DNS or e-mail name; `Some("")` when it gives none, `None` without a certificate.
    pub fn client_identity(&self) -> Option<String> {
        let certs = self.tls.as_ref()?.peer_certificates()?;
        Some(crate::tls::certificate_name(certs.first()?).unwrap_or_default())
    }
}
