//! The `securetcp` server: command line -> `Config` -> certificates, log -> the workers (one
//! reactor each; see `workers`).
//! Exit codes: 0 after a clean shutdown, 1 for a failure at start, 2 for a usage error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use securetcp::config::{self, Command, Config};
use securetcp::log::Log;
use securetcp::{service, tls, workers};

fn main() -> ExitCode {
    // Before any thread starts: no signal but SIGINT/SIGTERM may end the server.
    securetcp::signals::ignore_the_harmless();
    // Before any thread starts: it reads and removes systemd's variables.
    let passed = securetcp::systemd::passed_listeners();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match config::parse(&args) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => {
            println!("{}", config::usage());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("securetcp {}", service::VERSION);
            return ExitCode::SUCCESS;
        }
        Err(config::UsageError(message)) => return usage_error(&message),
    };
    match start(&config, passed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("securetcp: {message}");
            ExitCode::from(1)
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!(
        "securetcp: {message}\n{}; try --help for the options",
        config::USAGE_LINE
    );
    ExitCode::from(2)
}

fn start(
    config: &Config,
    passed: Result<Option<Vec<std::net::TcpListener>>, String>,
) -> Result<(), String> {
    let passed = passed?;
    // Every address first: a host that does not resolve is the one thing to say, before any
    // certificate is made or warned about for it.
    if passed.is_none() {
        for spec in &config.listen {
            securetcp::addr::resolve(&spec.host, spec.port)?;
        }
    }
    if let Some(spec) = &config.metrics {
        securetcp::addr::resolve(&spec.host, spec.port).map_err(|e| format!("--metrics: {e}"))?;
    }
    raise_descriptor_limit(config.max_clients);
    let tls = if config.tls {
        let (cert, key) = certificate_paths(config)?;
        let files = tls::TlsFiles {
            cert,
            key,
            client_ca: config.client_ca.clone(),
        };
        Some((files.load()?, files))
    } else {
        if config.gen_certs {
            generate_dev_certs(config)?;
        }
        eprintln!(
            "securetcp: warning: --no-tls: everything travels in plain text, readable and alterable by anyone on the path"
        );
        None
    };
    let (log, writer) = Log::open(&config.log)?;
    let served = workers::serve(config, tls, log, passed);
    writer.finish();
    served
}

/// `--cert/--key` when given; else the development certificate, generated when missing
/// (or when `--gen-certs` asks).
fn certificate_paths(config: &Config) -> Result<(PathBuf, PathBuf), String> {
    if let (Some(cert), Some(key)) = (&config.cert, &config.key) {
        return Ok((cert.clone(), key.clone()));
    }
    if config.gen_certs || !Path::new(tls::SERVER_CERT_FILE).exists() {
        generate_dev_certs(config)?;
    }
    let hosts: Vec<String> = config.listen.iter().map(|l| l.host.clone()).collect();
    let uncovered = tls::hosts_not_covered(
        Path::new(tls::SERVER_CERT_FILE),
        Path::new(tls::CA_FILE),
        &hosts,
    );
    if !uncovered.is_empty() {
        eprintln!(
            "securetcp: warning: the development certificate {} is not valid for {} (clients \
             will refuse it there); start once with --gen-certs to make one that covers every \
             listen host",
            tls::SERVER_CERT_FILE,
            uncovered.join(", ")
        );
    }
    Ok((tls::SERVER_CERT_FILE.into(), tls::SERVER_KEY_FILE.into()))
}

fn generate_dev_certs(config: &Config) -> Result<(), String> {
    let hosts: Vec<String> = config.listen.iter().map(|l| l.host.clone()).collect();
    let files = tls::generate_dev_certs(Path::new(tls::CERT_DIR), &hosts)?;
    eprintln!(
        "securetcp: generated development certificates: {} (the CA clients trust), {} and {} \
         (mode 0600), and a client certificate {} / {} for trying --client-ca; the CA's private \
         key was not kept",
        files.ca.display(),
        files.cert.display(),
        files.key.display(),
        files.client_cert.display(),
        files.client_key.display()
    );
    Ok(())
}

/// SPEC: raise the soft RLIMIT_NOFILE toward the hard limit as far as `--max-clients` needs
/// (listeners, the log and a margin included), and warn when the hard limit is too low.
fn raise_descriptor_limit(max_clients: usize) {
    const SPARE: libc::rlim_t = 64;
    let wanted = max_clients as libc::rlim_t + SPARE;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass; no other memory is touched.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    if limit.rlim_cur >= wanted {
        return;
    }
    // Root (CAP_SYS_RESOURCE) may raise the hard limit too; everyone else stops at it.
    let above_hard = libc::rlimit {
        rlim_cur: wanted,
        rlim_max: wanted.max(limit.rlim_max),
    };
    let within_hard = libc::rlimit {
        rlim_cur: wanted.min(limit.rlim_max),
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &above_hard) } == 0 {
        return;
    }
    // SAFETY: as above.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &within_hard) };
    if limit.rlim_max < wanted {
        eprintln!(
            "securetcp: warning: --max-clients {max_clients} needs about {wanted} open files but the \
             hard limit is {}; raise it (ulimit -Hn) or expect accept to pause when descriptors run out",
            limit.rlim_max
        );
    }
}
