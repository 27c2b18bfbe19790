//! TLS set-up: rustls configurations for the server and the client, PEM loading, and the
//! development certificates that rcgen makes on first start.
//!
//! Every failure is a `String` a user can act on ("cannot read certs/server.key: ..."),
//! because start-up errors end the program with one clear line, never a panic.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Where the development certificates live, relative to the working directory.
pub const CERT_DIR: &str = "certs";
pub const CA_FILE: &str = "certs/ca.pem";
pub const SERVER_CERT_FILE: &str = "certs/server.pem";
pub const SERVER_KEY_FILE: &str = "certs/server.key";

/// The crypto provider of both sides. `ring`: see Cargo.toml for why.
///
/// The suites are rustls's defaults (AEAD with forward secrecy only), reordered so the server
/// prefers the SHA-256 ones: `perf` showed SHA-384's software implementation taking 12% of the
/// server's CPU in a handshake-heavy run, while SHA-256 uses the CPU's SHA instructions.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[cfg(not(feature = "aws-lc"))]
    let mut provider = rustls::crypto::ring::default_provider();
    // The measured alternative (see Cargo.toml): not the default.
    #[cfg(feature = "aws-lc")]
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|suite| !format!("{:?}", suite.suite()).ends_with("SHA256"));
    Arc::new(provider)
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read certificate {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot parse certificate {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate found in {}", path.display()));
    }
    Ok(certs)
}

pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("cannot read private key {}: {e}", path.display()))
}

fn root_store(ca_files: &[&Path]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for path in ca_files {
        for cert in load_certs(path)? {
            roots
                .add(cert)
                .map_err(|e| format!("bad CA certificate in {}: {e}", path.display()))?;
        }
    }
    Ok(roots)
}

/// The server's rustls configuration: TLS 1.2 and 1.3 (rustls's safe defaults), and client
/// certificates required when `client_ca` is given.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, String> {
    let chain = load_certs(cert)?;
    let key = load_key(key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(root_store(&[ca])?),
                provider(),
            )
            .build()
            .map_err(|e| format!("--client-ca {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("{}: {}", cert.display(), describe_error(&e)))?;
    // The server's order of cipher suites (strongest first), not whatever a client prefers.
    config.ignore_client_order = true;
    // TLS 1.3 session tickets: a returning client skips the full handshake, and the server
    // keeps no per-client state for it (the ticket carries it, encrypted under a rotating key).
    #[cfg(not(feature = "aws-lc"))]
    let ticketer = rustls::crypto::ring::Ticketer::new();
    #[cfg(feature = "aws-lc")]
    let ticketer = rustls::crypto::aws_lc_rs::Ticketer::new();
    config.ticketer = ticketer.map_err(|e| format!("cannot set up session tickets: {e}"))?;
    // One ticket per handshake, not rustls's default two: each is encrypted and written at the
    // end of every full handshake, and a client resumes with one (paired A/B in docs/performance.md).
    config.send_tls13_tickets = 1;
    Ok(Arc::new(config))
}

/// Where the server's TLS set-up comes from, kept so that SIGHUP can load it again.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    pub fn load(&self) -> Result<Arc<ServerConfig>, String> {
        server_config(&self.cert, &self.key, self.client_ca.as_deref())
    }

    /// The files loaded again (SIGHUP), with new session-ticket keys and an empty session cache.
    ///
    /// Nothing of `previous`'s TLS sessions is carried over, on purpose: rustls does not verify a
    /// client's certificate again when it resumes, so a ticket issued under the old `--client-ca`
    /// would keep authenticating a client the new CA refuses (the class of CVE-2025-68121). A
    /// reload is the operator saying what is trusted now; every client that returns after it
    /// makes one full handshake under the new set. Keeping the keys when the files are unchanged
    /// was considered and left out: it saves one handshake per client per reload, and any
    /// comparison of "what is trusted" is a second place to get wrong.
    pub fn reload(&self) -> Result<Arc<ServerConfig>, String> {
        // `load` makes a new ticketer and rustls's default session cache.
        self.load()
    }
}

/// The client's rustls configuration: the public webpki roots plus any CA files given
/// (the development CA by default), and an optional client certificate.
pub fn client_config(
    ca_files: &[&Path],
    client_cert: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, String> {
    let mut roots = root_store(ca_files)?;
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_root_certificates(roots);
    let config = match client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(|e| {
                format!(
                    "client certificate {}: {}",
                    cert.display(),
                    describe_error(&e)
                )
            })?,
    };
    Ok(Arc::new(config))
}

/// A server set-up with a fresh self-signed certificate for `localhost`, and a client that
/// trusts exactly it: TLS with no files, for the tests and benches that drive a connection in
/// memory. Panics if rcgen or rustls refuse (they do not, for this input).
pub fn in_memory_pair() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    use rustls::pki_types::PrivatePkcs8KeyDer;
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("a self-signed certificate for localhost");
    let cert = CertificateDer::from(made.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let server = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the provider's protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("the certificate just made");
    let mut roots = RootCertStore::empty();
    roots.add(cert).expect("the certificate just made");
    let client = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the provider's protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

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

/// The files a development set-up writes.
#[derive(Debug, Clone)]
pub struct DevCerts {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// A client certificate from the same CA, to try mutual TLS (`--client-ca certs/ca.pem`).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl DevCerts {
    pub fn in_dir(dir: &Path) -> DevCerts {
        DevCerts {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        }
    }
}

/// The name in the development client certificate's CN: a valid name (see `crate::name`), so
/// the development client can log in to the chat under mutual TLS.
pub const DEV_CLIENT_NAME: &str = "dev-client";

/// Makes a fresh development CA and a server certificate it signs, valid for `localhost`,
/// `127.0.0.1`, `::1` and `extra_names`. Writes the CA certificate, the server chain and the
/// server key (mode 0600). The CA's private key is dropped here: nobody can sign with it later.
pub fn generate_dev_certs(dir: &Path, extra_names: &[String]) -> Result<DevCerts, String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let fail = |e: rcgen::Error| format!("cannot generate development certificates: {e}");

    // Valid from yesterday for 397 days: browsers' and scanners' limit for server certificates.
    let today = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        / 86_400) as i64;
    let date = |days: i64| {
        let (y, m, d) = crate::log::civil_from_days(days);
        rcgen::date_time_ymd(y as i32, m as u8, d as u8)
    };
    let (not_before, not_after) = (date(today - 1), date(today + 396));

    let ca_key = KeyPair::generate().map_err(fail)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    // RFC 5280 4.2.1.1-2: strict verifiers (`openssl verify -x509_strict`, Python 3.13's default
    // context) want the Authority Key Identifier; rcgen writes the Subject Key Identifier of any
    // certificate whose `is_ca` is set, and the CA's own AKI equals its SKI.
    ca_params.use_authority_key_identifier_extension = true;
    ca_params.not_before = not_before;
    ca_params.not_after = not_after;
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "securetcp development CA");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(fail)?;
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);

    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    for name in extra_names {
        if !names.contains(name) && !name.is_empty() && name != "0.0.0.0" && name != "::" {
            names.push(name.clone());
        }
    }
    // A leaf certificate signed by the CA, for a server or a client.
    let issue = |names: Vec<String>, common_name: &str, usage: rcgen::ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        // Said outright (basicConstraints CA:FALSE), which also makes rcgen write the Subject Key
        // Identifier; the Authority Key Identifier names the CA's key (RFC 5280 4.2.1.1-2).
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.not_before = not_before;
        params.not_after = not_after;
        Ok::<_, rcgen::Error>((params.signed_by(&key, &issuer)?, key))
    };
    let (server_cert, server_key) = issue(
        names,
        "securetcp development server",
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    )
    .map_err(fail)?;
    let (client_cert, client_key) = issue(
        Vec::new(),
        DEV_CLIENT_NAME,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    )
    .map_err(fail)?;

    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let files = DevCerts::in_dir(dir);
    write_file(&files.client_cert, client_cert.pem().as_bytes(), 0o644)?;
    write_file(
        &files.client_key,
        client_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_file(&files.ca, ca_cert.pem().as_bytes(), 0o644)?;
    // The chain: the server certificate, then the CA that signed it.
    let chain = format!("{}{}", server_cert.pem(), ca_cert.pem());
    write_file(&files.cert, chain.as_bytes(), 0o644)?;
    write_file(&files.key, server_key.serialize_pem().as_bytes(), 0o600)?;
    Ok(files)
}

/// The hosts of `hosts` the certificate chain in `cert_file` is not valid for, judged as a client
/// trusting `ca_file` judges it (rustls's own verifier). Wildcard listen addresses (`0.0.0.0`,
/// `::`) name no host and are left out. Empty when the files cannot be read or the chain is not
/// from that CA at all: only a certificate that would be refused for its names is reported.
pub fn hosts_not_covered(cert_file: &Path, ca_file: &Path, hosts: &[String]) -> Vec<String> {
    use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};
    let (Ok(chain), Ok(roots)) = (load_certs(cert_file), root_store(&[ca_file])) else {
        return Vec::new();
    };
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Vec::new();
    };
    let Ok(verifier) =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
    else {
        return Vec::new();
    };
    let mut uncovered = Vec::new();
    for host in hosts {
        if host == "0.0.0.0" || host == "::" || uncovered.contains(host) {
            continue;
        }
        let Ok(name) = ServerName::try_from(host.as_str()) else {
            continue;
        };
        let verdict = verifier.verify_server_cert(leaf, intermediates, &name, &[], UnixTime::now());
        if let Err(rustls::Error::InvalidCertificate(
            NotValidForName | NotValidForNameContext { .. },
        )) = verdict
        {
            uncovered.push(host.clone());
        }
    }
    uncovered
}

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

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    // Remove first, so the mode applies even when the file existed with a wider one.
    let _ = fs::remove_file(path);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(fail)?;
    file.write_all(contents).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("securetcp-tls-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
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

    #[test]
    fn generated_certificates_load_into_both_configs() {
        let dir = temp_dir("gen");
        let files = generate_dev_certs(&dir, &["example.test".to_string()]).unwrap();
        assert!(server_config(&files.cert, &files.key, None).is_ok());
        assert!(client_config(&[&files.ca], None).is_ok());
        assert_eq!(load_certs(&files.cert).unwrap().len(), 2);
        let client = load_certs(&files.client_cert).unwrap();
        assert_eq!(subject(&client[0]).as_deref(), Some("CN=dev-client"));
        assert_eq!(
            certificate_name(&client[0]).as_deref(),
            Some(DEV_CLIENT_NAME)
        );
        assert_eq!(crate::proto::name::check(DEV_CLIENT_NAME), Ok(()));
        let server = load_certs(&files.cert).unwrap();
        assert_eq!(
            subject(&server[0]).as_deref(),
            Some("CN=securetcp development server")
        );
        assert!(client_config(&[&files.ca], Some((&files.client_cert, &files.client_key))).is_ok());
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&files.key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let _ = fs::remove_dir_all(&dir);
    }

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

    #[test]
    fn missing_files_give_a_clear_message() {
        let err = server_config(
            Path::new("/nonexistent/a.pem"),
            Path::new("/nonexistent/a.key"),
            None,
        )
        .unwrap_err();
        assert!(err.contains("/nonexistent/a.pem"), "{err}");
    }
}
