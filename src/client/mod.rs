//! The blocking client used by `examples/client.rs` (and by the tests and benches):
//! its command line, the TLS connection, and the per-service conversations.
//!
//! Blocking on purpose: it is the simple counterpart of the reactor, one connection, and
//! the way a person or a script talks to the server. The transport can be shared by two
//! threads (one reading the socket, one reading stdin), which the chat needs.

mod modes;
mod transport;

use std::fmt;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;

use getopts::Options;

pub use transport::{LineReader, Session, Transport, reset_on_drop};

use crate::config::{DEFAULT_HOST, DEFAULT_PORT};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientOptions {
    pub host: Option<String>,
    pub port: Option<u16>,
    /// `None`: `certs/ca.pem` if it exists. The webpki roots are always trusted too.
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub no_tls: bool,
    pub name: Option<String>,
    pub exec: Vec<String>,
}

#[derive(Debug)]
pub enum ClientCommand {
    Run(ClientOptions),
    Help,
    Version,
}

fn options() -> Options {
    let mut o = Options::new();
    o.optopt(
        "",
        "ca",
        "CA certificate to trust (default certs/ca.pem if present)",
        "FILE",
    );
    o.optopt("", "cert", "client certificate for mutual TLS", "FILE");
    o.optopt("", "key", "private key of --cert", "FILE");
    o.optflag("", "no-tls", "plain TCP");
    o.optopt("", "name", "send 'name NAME' first", "NAME");
    o.optmulti(
        "e",
        "exec",
        "send this line, print the reply (repeatable), then quit",
        "LINE",
    );
    o.optflag("h", "help", "print this help");
    o.optflag("V", "version", "print the version");
    o
}

pub fn usage() -> String {
    options().usage("Usage: client [OPTIONS] [HOST [PORT]]\n\nTalks to a securetcp server (default 127.0.0.1 5000).")
}

pub fn parse_args<S: AsRef<str>>(args: &[S]) -> Result<ClientCommand, String> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let m = options().parse(&args).map_err(|e| e.to_string())?;
    if m.opt_present("help") {
        return Ok(ClientCommand::Help);
    }
    if m.opt_present("version") {
        return Ok(ClientCommand::Version);
    }
    let mut o = ClientOptions::default();
    match m.free.as_slice() {
        [] => {}
        [host] => o.host = Some(host.clone()),
        [host, port] => {
            o.host = Some(host.clone());
            o.port = Some(
                port.parse()
                    .map_err(|_| format!("'{port}' is not a port (0-65535)"))?,
            );
        }
        [_, _, extra, ..] => return Err(format!("unexpected argument '{extra}'")),
    }
    o.ca = m.opt_str("ca").map(PathBuf::from);
    o.cert = m.opt_str("cert").map(PathBuf::from);
    o.key = m.opt_str("key").map(PathBuf::from);
    if o.cert.is_some() != o.key.is_some() {
        return Err("--cert and --key go together".into());
    }
    o.no_tls = m.opt_present("no-tls");
    o.name = m.opt_str("name");
    if let Some(name) = &o.name {
        crate::service::check_name(name).map_err(|why| format!("--name: {why}"))?;
    }
    o.exec = m.opt_strs("exec");
    Ok(ClientCommand::Run(o))
}

/// Why the client could not talk to the server: one clear line each.
#[derive(Debug)]
pub enum ClientError {
    Resolve(String),
    Refused(String),
    Connect(String, io::Error),
    Untrusted(String),
    Tls(String),
    Busy,
    Closed,
    Io(io::Error),
    Setup(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Resolve(msg) | ClientError::Setup(msg) => f.write_str(msg),
            ClientError::Refused(addr) => {
                write!(f, "connection refused by {addr}: is the server running?")
            }
            ClientError::Connect(addr, e) => write!(f, "cannot connect to {addr}: {e}"),
            ClientError::Untrusted(why) => write!(
                f,
                "TLS certificate not trusted ({why}); give the server's CA with --ca FILE"
            ),
            ClientError::Tls(why) => write!(f, "TLS handshake failed: {why}"),
            ClientError::Busy => f.write_str("server busy, try again later"),
            ClientError::Closed => f.write_str("the server closed the connection"),
            ClientError::Io(e) => write!(f, "connection failed: {e}"),
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> ClientError {
        use rustls::AlertDescription as Alert;
        if let Some(rustls::Error::AlertReceived(alert)) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return ClientError::Tls(match alert {
                Alert::CertificateRequired => {
                    "the server requires a client certificate: give --cert FILE --key FILE".into()
                }
                Alert::BadCertificate | Alert::UnknownCA | Alert::CertificateUnknown => {
                    "the server refused our client certificate (not signed by a CA it trusts)"
                        .into()
                }
                other => format!("the server sent the TLS alert {other:?}"),
            });
        }
        match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => ClientError::Closed,
            _ => ClientError::Io(e),
        }
    }
}

/// Where lines come from: `--exec` or stdin (a terminal gets a prompt).
pub(crate) enum Input {
    Exec(std::vec::IntoIter<String>),
    Stdin { terminal: bool },
}

impl Input {
    pub(crate) fn is_exec(&self) -> bool {
        matches!(self, Input::Exec(_))
    }

    pub(crate) fn is_terminal(&self) -> bool {
        matches!(self, Input::Stdin { terminal: true })
    }

    /// The next line, or `None` at the end. A terminal is shown `prompt` first.
    pub(crate) fn next_line(&mut self, prompt: &str) -> Option<String> {
        match self {
            Input::Exec(lines) => lines.next(),
            Input::Stdin { terminal } => {
                if *terminal && !prompt.is_empty() {
                    print!("{prompt}");
                    let _ = io::stdout().flush();
                }
                let mut line = String::new();
                match io::stdin().lock().read_line(&mut line) {
                    Ok(0) | Err(_) => None,
                    Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_string()),
                }
            }
        }
    }
}

/// Asks for a missing host and port when stdin is a terminal (the seeds' prompts).
fn ask(prompt: &str, default: &str) -> String {
    print!("{prompt} [{default}]: ");
    let _ = io::stdout().flush();
    let mut answer = String::new();
    let _ = io::stdin().lock().read_line(&mut answer);
    let answer = answer.trim();
    if answer.is_empty() {
        default.to_string()
    } else {
        answer.to_string()
    }
}

/// Runs the client: connects, then talks as the greeted service wants. Returns the exit code.
pub fn run(o: ClientOptions) -> i32 {
    let terminal = io::stdin().is_terminal();
    let interactive = terminal && o.exec.is_empty();
    let host = match &o.host {
        Some(h) => h.clone(),
        None if interactive => ask("Server IP address", DEFAULT_HOST),
        None => DEFAULT_HOST.to_string(),
    };
    let port = match o.port {
        Some(p) => p,
        None if interactive => {
            let answer = ask("Port", &DEFAULT_PORT.to_string());
            match answer.parse() {
                Ok(p) => p,
                Err(_) => {
                    eprintln!("error: '{answer}' is not a port (0-65535)");
                    return 2;
                }
            }
        }
        None => DEFAULT_PORT,
    };
    let session = match Session::connect(&host, port, &o) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let input = if o.exec.is_empty() {
        Input::Stdin { terminal }
    } else {
        Input::Exec(o.exec.clone().into_iter())
    };
    let exec = input.is_exec();
    match modes::converse(session, &o, input) {
        Ok(failures) if failures > 0 && exec => 1,
        Ok(_) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_read() {
        let ClientCommand::Run(o) =
            parse_args(&["-e", "+ 3 4", "--exec", "q", "::1", "5001", "--name", "al"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(o.exec, ["+ 3 4", "q"]);
        assert_eq!(o.host.as_deref(), Some("::1"));
        assert_eq!(o.port, Some(5001));
        assert_eq!(o.name.as_deref(), Some("al"));
        assert!(parse_args(&["x", "port"]).is_err());
        assert!(parse_args(&["--cert", "c.pem"]).is_err());
        assert!(parse_args(&["--name", "a b"]).is_err());
    }

    #[test]
    fn local_check_refuses_nonsense_only() {
        use modes::local_check;
        assert!(local_check("calc", "+ 3 4").is_ok());
        assert!(local_check("calc", "1 / 0").is_ok());
        assert!(local_check("calc", "help").is_ok());
        assert!(local_check("calc", "name bob").is_ok());
        assert!(local_check("calc", "name").is_err());
        assert!(local_check("calc", "hello").is_err());
        assert!(local_check("calc", "3 +").is_err());
        assert!(local_check("calc", "").is_err());
        assert!(local_check("chat", "hello").is_ok());
    }
}
