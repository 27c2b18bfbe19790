//! TLS set-up: rustls configurations for the server and the client, PEM loading, and where
//! the server's files come from (SIGHUP loads them again). What else TLS needs has a file of its
//! own: `dev_certs` (the development certificates rcgen makes on first start), `error` (rustls's
//! errors in words), `x509` (what a certificate says: its names, its validity), `expiry`
//! (certificates in time: refused out of date at reload, warned of 14 days ahead).
//!
//! Every failure is a `String` a user can act on ("cannot read certs/server.key: ..."),
//! because start-up errors end the program with one clear line, never a panic.

mod dev_certs;
mod error;
pub mod expiry;
mod x509;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

pub use dev_certs::{DEV_CLIENT_NAME, DevCerts, generate_dev_certs};
pub use error::describe_error;
pub use expiry::expiry_warning;
pub use x509::{Validity, certificate_name, subject, validity};

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

/// The certificates of the PEM file at `path`, which `role` (the option that named it, such as
/// `--client-ca`) says what it is for. Errors name the option, the file and what is wrong in
/// words: `--client-ca /nope.pem: cannot read it: no such file`.
pub fn load_certs(role: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let fail = |why: String| format!("{role} {}: {why}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(pem_words(&e, "certificate")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(pem_words(&e, "certificate")))?;
    if certs.is_empty() {
        return Err(fail(
            "no certificate in it (a PEM CERTIFICATE block)".into(),
        ));
    }
    Ok(certs)
}

/// The private key of the PEM file at `path` (`role`: the option that named it, `--key`).
pub fn load_key(role: &str, path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        format!(
            "{role} {}: {}",
            path.display(),
            pem_words(&e, "private key")
        )
    })
}

/// A PEM reading error in words (`what`: what the file should hold).
fn pem_words(e: &rustls::pki_types::pem::Error, what: &str) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(io) => format!("cannot read it: {}", crate::cli::io_words(io)),
        Error::NoItemsFound => format!("no {what} in it (expected a PEM block)"),
        _ => format!("not a valid PEM file ({what} expected)"),
    }
}

fn root_store(role: &str, ca_files: &[&Path]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for path in ca_files {
        for cert in load_certs(role, path)? {
            roots.add(cert).map_err(|e| {
                format!(
                    "{role} {}: not a usable CA certificate: {e}",
                    path.display()
                )
            })?;
        }
    }
    Ok(roots)
}

/// The most bytes of CA names the server lists in its CertificateRequest (the
/// `certificate_authorities` hints that help a client pick its certificate). The list's length is
/// a 16-bit field (RFC 8446 §4.2.4, RFC 5246 §7.4.4), and rustls 0.23 panics while encoding a
/// longer one, which would end the process at the first handshake; past this, no hints are sent
/// (a client with one certificate, which is every usual client, does not need them; OpenSSL
/// servers met the same limit, openssl/openssl#6609). Kept under 64 KiB for the list's own
/// framing and the rest of the message.
const MAX_ROOT_HINTS_BYTES: usize = 60_000;

/// What the CA names of `roots` take in a CertificateRequest: each subject with its 2-byte length.
fn roots_hint_size(roots: &RootCertStore) -> usize {
    roots
        .roots
        .iter()
        .map(|anchor| anchor.subject.len() + 2)
        .sum()
}

/// The server's rustls configuration: TLS 1.2 and 1.3 (rustls's safe defaults), and client
/// certificates required when `client_ca` is given.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, String> {
    server_config_for(load_certs("--cert", cert)?, cert, key, client_ca)
}

/// [`server_config`] for a chain already read from `cert`.
fn server_config_for(
    chain: Vec<CertificateDer<'static>>,
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, String> {
    let key = load_key("--key", key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = Arc::new(root_store("--client-ca", &[ca])?);
            let hints_fit = roots_hint_size(&roots) <= MAX_ROOT_HINTS_BYTES;
            let mut verifier = WebPkiClientVerifier::builder_with_provider(roots, provider());
            if !hints_fit {
                verifier = verifier.clear_root_hint_subjects();
            }
            let verifier = verifier
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

/// A server TLS set-up as loaded: the rustls configuration, and when its certificate chain is
/// valid (`None` if x509-parser could not read the certificate rustls took).
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    /// When every certificate the server sends is valid at once (see [`expiry::chain_validity`]).
    pub validity: Option<Validity>,
    /// The subject of a CA certificate sent with the server's own that ends before it, if any:
    /// then the chain's end is that certificate's, and the messages name it.
    pub ended_by: Option<String>,
}

impl ServerTls {
    /// What the chain's end is, for messages: the certificate file, or a CA certificate in it.
    fn what_ends(&self, cert: &Path) -> String {
        match &self.ended_by {
            None => cert.display().to_string(),
            Some(ca) => format!("{} (its CA certificate {ca})", cert.display()),
        }
    }
}

impl TlsFiles {
    /// The files as loaded at start. A certificate out of its validity period is not refused
    /// here (SPEC: warned of at start); [`expiry_warning`] says so.
    pub fn load(&self) -> Result<ServerTls, String> {
        let chain = load_certs("--cert", &self.cert)?;
        let (validity, ended_by) = expiry::chain_validity(&chain).unzip();
        let config = server_config_for(chain, &self.cert, &self.key, self.client_ca.as_deref())?;
        Ok(ServerTls {
            config,
            validity,
            ended_by: ended_by.flatten(),
        })
    }

    /// The files loaded again (SIGHUP), with new session-ticket keys and an empty session cache.
    /// Errors: any file that does not load, and a server certificate (or a CA certificate sent
    /// with it) that has expired or is not valid yet (`... expired on 2026-01-01T00:00:00Z`):
    /// the caller keeps the previous set.
    ///
    /// Nothing of `previous`'s TLS sessions is carried over, on purpose: rustls does not verify a
    /// client's certificate again when it resumes, so a ticket issued under the old `--client-ca`
    /// would keep authenticating a client the new CA refuses (the class of CVE-2025-68121). A
    /// reload is the operator saying what is trusted now; every client that returns after it
    /// makes one full handshake under the new set. Keeping the keys when the files are unchanged
    /// was considered and left out: it saves one handshake per client per reload, and any
    /// comparison of "what is trusted" is a second place to get wrong.
    pub fn reload(&self) -> Result<ServerTls, String> {
        // `load` makes a new ticketer and rustls's default session cache.
        let loaded = self.load()?;
        if let Some(validity) = &loaded.validity {
            expiry::check_in_time(validity, expiry::now())
                .map_err(|why| format!("{}: {why}", loaded.what_ends(&self.cert)))?;
        }
        Ok(loaded)
    }

    /// The warning due for `loaded`'s certificate now (it expires within 14 days, or has),
    /// written once to stderr here; the caller logs it (`event=cert-expiry`).
    pub fn expiry_warning(&self, loaded: &ServerTls) -> Option<expiry::ExpiryWarning> {
        let what = loaded.what_ends(&self.cert);
        let warning = expiry_warning(&what, loaded.validity.as_ref()?, expiry::now())?;
        eprintln!("securetcp: {}", warning.sentence());
        Some(warning)
    }
}

/// The client's rustls configuration: the public webpki roots plus any CA files given
/// (the development CA by default), and an optional client certificate.
pub fn client_config(
    ca_files: &[&Path],
    client_cert: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, String> {
    let mut roots = root_store("--ca", ca_files)?;
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_root_certificates(roots);
    let config = match client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs("--cert", cert)?, load_key("--key", key)?)
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

/// The hosts of `hosts` the certificate chain in `cert_file` is not valid for, judged as a client
/// trusting `ca_file` judges it (rustls's own verifier). Wildcard listen addresses (`0.0.0.0`,
/// `::`) name no host and are left out. Empty when the files cannot be read or the chain is not
/// from that CA at all: only a certificate that would be refused for its names is reported.
pub fn hosts_not_covered(cert_file: &Path, ca_file: &Path, hosts: &[String]) -> Vec<String> {
    use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};
    let (Ok(chain), Ok(roots)) = (
        load_certs("--cert", cert_file),
        root_store("--ca", &[ca_file]),
    ) else {
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

#[cfg(test)]
mod tests {
    use super::*;

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
