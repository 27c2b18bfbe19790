//! The development certificates: a CA, a server certificate and a client certificate that rcgen
//! makes on first start (or `--gen-certs`), so a fresh clone runs with one command.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

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
    use crate::tls::{certificate_name, client_config, load_certs, server_config, subject};

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("securetcp-tls-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn generated_certificates_load_into_both_configs() {
        let dir = temp_dir("gen");
        let files = generate_dev_certs(&dir, &["example.test".to_string()]).unwrap();
        assert!(server_config(&files.cert, &files.key, None).is_ok());
        assert!(client_config(&[&files.ca], None).is_ok());
        assert_eq!(load_certs("--cert", &files.cert).unwrap().len(), 2);
        let client = load_certs("--cert", &files.client_cert).unwrap();
        assert_eq!(subject(&client[0]).as_deref(), Some("CN=dev-client"));
        assert_eq!(
            certificate_name(&client[0]).as_deref(),
            Some(DEV_CLIENT_NAME)
        );
        assert_eq!(crate::proto::name::check(DEV_CLIENT_NAME), Ok(()));
        let server = load_certs("--cert", &files.cert).unwrap();
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
}
