//! What a connection's TLS session says about the other end: the protocol and cipher suite in
//! words for the log's open line, and, with mutual TLS, the certificate the client presented (the
//! server reads its subject for the log and its name, the only name the client may take).

use rustls::pki_types::CertificateDer;

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

    /// The certificate the client presented (mutual TLS): the first of its chain.
    pub fn client_certificate(&self) -> Option<&CertificateDer<'static>> {
        self.tls.as_ref()?.peer_certificates()?.first()
    }

    /// The chain the client presented, when this session was resumed from a ticket or a session
    /// id rather than verified now: rustls does not verify a client's certificate again on
    /// resumption, so what changed since (its validity ran out) is the server's to check.
    pub fn resumed_client_chain(&self) -> Option<&[CertificateDer<'static>]> {
        let tls = self.tls.as_ref()?;
        if tls.handshake_kind() != Some(rustls::HandshakeKind::Resumed) {
            return None;
        }
        tls.peer_certificates()
    }

    /// The server refuses the client's certificate after the handshake (a resumed session whose
    /// certificate is no longer valid): the close that follows is a `tls-error` for `e`.
    pub fn refuse_certificate(&mut self, e: rustls::Error) {
        self.failure = Some(Box::new(super::Failure::Tls(e)));
    }
}
