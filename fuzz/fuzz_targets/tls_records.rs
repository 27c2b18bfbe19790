//! Any bytes in place of TLS records, processed the way `Conn::read` does (read_tls,
//! process_new_packets, then the plaintext reader), with the server's own configuration:
//! an error ends the connection, nothing panics. And the certificate-subject parser used for
//! the log of mutual TLS, on the same bytes.
#![no_main]

use std::io::Read;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use rustls::{ServerConfig, ServerConnection};

fn config() -> Arc<ServerConfig> {
    static CONFIG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("securetcp-fuzz-{}", std::process::id()));
            let files = securetcp::tls::generate_dev_certs(&dir, &[]).expect("certificates");
            securetcp::tls::server_config(&files.cert, &files.key, None).expect("config")
        })
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let _ = securetcp::tls::subject(data);
    let mut conn = ServerConnection::new(config()).expect("connection");
    let mut input = data;
    let mut plaintext = [0u8; 4096];
    while !input.is_empty() {
        match conn.read_tls(&mut input) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if conn.process_new_packets().is_err() {
            break;
        }
        while let Ok(n) = conn.reader().read(&mut plaintext) {
            if n == 0 {
                break;
            }
        }
    }
});
