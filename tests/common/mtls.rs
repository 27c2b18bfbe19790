//! Mutual TLS set-up shared by tests/mtls.rs, tests/first_use.rs and tests/names.rs: a server
//! that requires client certificates from its own development CA, and the terminal client
//! run with a client certificate.

use std::path::Path;
use std::process::ExitStatus;

use securetcp::tls::{DevCerts, generate_dev_certs};

use super::{Server, TestDir, run_client};

/// A server in a directory of its own (named after `tag`) requiring client certificates from
/// the development CA made there; the files made, client certificate and key included.
pub fn mtls_server(tag: &str) -> (Server, DevCerts) {
    let dir = TestDir::new(tag);
    let files = generate_dev_certs(&dir.0.join("certs"), &[]).unwrap();
    let args = [
        "--cert",
        files.cert.to_str().unwrap(),
        "--key",
        files.key.to_str().unwrap(),
        "--client-ca",
        files.ca.to_str().unwrap(),
    ];
    let server = Server::start_in(dir, &["127.0.0.1", "0"], &args, 1);
    (server, files)
}

/// The terminal client, run in `dir`, to 127.0.0.1:`port` with `files`' client certificate
/// and key, sending `line` (`-e`): (exit status, stdout, stderr).
pub fn run_client_with_cert(
    dir: &Path,
    port: &str,
    files: &DevCerts,
    line: &str,
) -> (ExitStatus, String, String) {
    run_client(
        dir,
        &[
            "127.0.0.1",
            port,
            "--cert",
            files.client_cert.to_str().unwrap(),
            "--key",
            files.client_key.to_str().unwrap(),
            "-e",
            line,
        ],
        None,
    )
}
