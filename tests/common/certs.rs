//! Certificates with chosen validity periods, from a CA whose key the test keeps (the
//! development CA drops its key): expired, not yet valid, expiring soon.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A CA of a test's own.
pub struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    /// Its certificate, PEM.
    pub pem: String,
}

/// Sets `params`' validity from `from` to `to` days from today (UTC midnights).
pub fn valid_days(params: &mut CertificateParams, from: i64, to: i64) {
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 86_400;
    let day = |offset: i64| std::time::Duration::from_secs((today + offset) as u64 * 86_400);
    params.not_before = rcgen::date_time_ymd(1970, 1, 1) + day(from);
    params.not_after = rcgen::date_time_ymd(1970, 1, 1) + day(to);
}

/// Unix seconds of midnight UTC `offset` days from today: a notAfter [`valid_days`] set.
pub fn midnight(offset: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (now / 86_400 + offset) * 86_400
}

impl TestCa {
    /// A CA named `name`, valid from a year ago for ten years.
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        valid_days(&mut params, -365, 3650);
        let pem = params.self_signed(&key).unwrap().pem();
        TestCa { params, key, pem }
    }

    /// An intermediate CA named `name` that this one signs, valid from `from` to `to` (days from
    /// today). Its leaves' chain files hold the leaf, then it.
    pub fn intermediate(&self, name: &str, from: i64, to: i64) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        valid_days(&mut params, from, to);
        let issuer = rcgen::Issuer::new(self.params.clone(), &self.key);
        let pem = params.signed_by(&key, &issuer).unwrap().pem();
        TestCa { params, key, pem }
    }

    /// Writes the CA certificate to `path`.
    pub fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, &self.pem).unwrap();
        path.to_path_buf()
    }

    /// A server certificate for `localhost` and `127.0.0.1`, valid from `from` to `to` (days
    /// from today), written as `<stem>.pem` (with the CA after it) and `<stem>.key` in `dir`.
    pub fn server(&self, dir: &Path, stem: &str, from: i64, to: i64) -> (PathBuf, PathBuf) {
        self.leaf(
            dir,
            stem,
            vec!["localhost".into(), "127.0.0.1".into()],
            "test server",
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            (from, to),
        )
    }

    /// A client certificate named `name` (its CN), valid from `from` to `to` (days from today),
    /// written as `<stem>.pem` and `<stem>.key` in `dir`.
    pub fn client(
        &self,
        dir: &Path,
        stem: &str,
        name: &str,
        from: i64,
        to: i64,
    ) -> (PathBuf, PathBuf) {
        self.leaf(
            dir,
            stem,
            Vec::new(),
            name,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            (from, to),
        )
    }

    /// A client certificate named `name`, valid from a day ago until `secs` seconds from now:
    /// one that expires while a test holds its TLS session.
    pub fn client_for_secs(
        &self,
        dir: &Path,
        stem: &str,
        name: &str,
        secs: u64,
    ) -> (PathBuf, PathBuf) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        self.leaf_valid(
            dir,
            stem,
            Vec::new(),
            name,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            |params| {
                params.not_before = epoch + (now - std::time::Duration::from_secs(86_400));
                params.not_after = epoch + (now + std::time::Duration::from_secs(secs));
            },
        )
    }

    fn leaf(
        &self,
        dir: &Path,
        stem: &str,
        names: Vec<String>,
        common_name: &str,
        usage: rcgen::ExtendedKeyUsagePurpose,
        (from, to): (i64, i64),
    ) -> (PathBuf, PathBuf) {
        let validity = |params: &mut CertificateParams| valid_days(params, from, to);
        self.leaf_valid(dir, stem, names, common_name, usage, validity)
    }

    /// A leaf this CA signs, valid as `set_validity` says, written as `<stem>.pem` (with the CA
    /// after it) and `<stem>.key` in `dir`.
    fn leaf_valid(
        &self,
        dir: &Path,
        stem: &str,
        names: Vec<String>,
        common_name: &str,
        usage: rcgen::ExtendedKeyUsagePurpose,
        set_validity: impl FnOnce(&mut CertificateParams),
    ) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        set_validity(&mut params);
        let issuer = rcgen::Issuer::new(self.params.clone(), &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let (cert_path, key_path) = (
            dir.join(format!("{stem}.pem")),
            dir.join(format!("{stem}.key")),
        );
        std::fs::write(&cert_path, format!("{}{}", cert.pem(), self.pem)).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}
