//! The blocking client's library half, shared by the terminal client (`client/`), the
//! GUI, the tests and the benches: its command line, the TLS connection and session, the
//! local check of a typed line, and the text shown to a person. The terminal front end (line
//! editor, conversations) is the example's own, so the server's build carries none of it.
//!
//! Blocking on purpose: it is the simple counterpart of the reactor, one connection, and
//! the way a person or a script talks to the server. The transport can be shared by two
//! threads (one reading the socket, one reading stdin), which the chat needs.

mod check;
mod text;
mod transport;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use getopts::Options;

pub use check::local_check;
pub use text::{capitalise, quote, visible};
pub use transport::{LineReader, Session, Transport, reset_on_drop};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientOptions {
    pub host: Option<String>,
    pub port: Option<u16>,
    /// The CA to trust besides the public (webpki) roots, which are always trusted: `None`:
    /// `certs/ca.pem` if it exists; an empty path (`--ca ''`, the GUI's empty CA field): none,
    /// the public roots only; else that PEM file.
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub no_tls: bool,
    pub name: Option<String>,
    pub exec: Vec<String>,
    /// `--server HOST:PORT`, in order: the servers to try, and to move to when one fails.
    pub servers: Vec<(String, u16)>,
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
        "CA certificate to trust besides the public roots (default certs/ca.pem if present; \
         '' for the public roots only)",
        "FILE",
    );
    o.optopt("", "cert", "client certificate for mutual TLS", "FILE");
    o.optopt("", "key", "private key of --cert", "FILE");
    o.optflag("", "no-tls", "plain TCP");
    o.optopt(
        "",
        "name",
        "your name: sent as 'name NAME' (chat: to log in; sum: in the exchange)",
        "NAME",
    );
    o.optmulti(
        "e",
        "exec",
        "send this line, print the reply (repeatable), then quit",
        "LINE",
    );
    o.optmulti(
        "",
        "server",
        "a server to use, in order (repeatable; [::1]:5000 for IPv6): the first that answers \
         serves, the next takes over when it fails",
        "HOST:PORT",
    );
    o.optflag("h", "help", "print this help");
    o.optflag("V", "version", "print the version");
    o
}

pub fn usage() -> String {
    let help = options().usage(&format!(
        "{USAGE_LINE}\n\nTalks to a securetcp server (default 127.0.0.1 5000; IPv6 as ::1 or [::1])."
    ));
    // getopts pads a flag whose description wraps with spaces at the end of its line.
    help.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The synopsis, which a usage error prints under its message (the options are in `--help`).
pub const USAGE_LINE: &str = "Usage: client [OPTIONS] [HOST [PORT]]";

pub fn parse_args<S: AsRef<str>>(args: &[S]) -> Result<ClientCommand, String> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let m = options()
        .parse(&args)
        .map_err(|e| crate::cli::explain_getopts(&e))?;
    if m.opt_present("help") {
        return Ok(ClientCommand::Help);
    }
    if m.opt_present("version") {
        return Ok(ClientCommand::Version);
    }
    let mut o = ClientOptions::default();
    match m.free.as_slice() {
        [] => {}
        [host] => match crate::proto::port_given_as_host("client", host) {
            Some(why) => return Err(why),
            None => o.host = Some(host_of(host)),
        },
        [host, port] => {
            o.host = Some(host_of(host));
            o.port = Some(parse_port(port)?);
        }
        [_, _, extra, ..] => return Err(format!("unexpected argument {}", quote(extra))),
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
        // The widest rule (sum's, spaces allowed); `name NAME` in the other services checks
        // the login rule when it is sent.
        crate::proto::exchange::check_exchange_name(name)
            .map_err(|why| format!("--name: {why}"))?;
    }
    o.exec = m.opt_strs("exec");
    for text in m.opt_strs("server") {
        let spec = crate::addr::parse_address("--server", &text)?;
        o.servers.push((spec.host, spec.port));
    }
    Ok(ClientCommand::Run(o))
}

pub use crate::proto::host_of;

/// A port as a person types it (surrounding spaces allowed); the error quotes the text.
pub fn parse_port(text: &str) -> Result<u16, String> {
    // Port 0 asks the system for any free port when listening; no server is ever at it.
    match text.trim().parse() {
        Ok(0) | Err(_) => Err(format!("{} is not a port (1-65535)", quote(text))),
        Ok(port) => Ok(port),
    }
}

/// `HOST:PORT`, IPv6 in brackets, as a person writes it.
pub fn server_name(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Why the client could not talk to the server: one clear line each.
#[derive(Debug)]
pub enum ClientError {
    Resolve(String),
    Refused(String),
    Connect(String, io::Error),
    Untrusted(String),
    /// The certificate is trusted but names other hosts than the one we asked for.
    NotForThisName(String),
    /// The server asks for a client certificate (`--client-ca`) and we gave none.
    NeedsClientCertificate,
    Tls(String),
    /// A TLS client at a `--no-tls` server.
    ServerIsPlain,
    /// A `--no-tls` client at a TLS port.
    ServerIsTls,
    Busy,
    /// The server took the connection and then said nothing, handshake or greeting.
    Silent(std::time::Duration),
    /// The server said why it would not serve us (`too many connections from your address`).
    Turned(String),
    Closed,
    /// The session's server went away without `BYE`, and no server answered again: `from` is the
    /// server lost, `retry` why the one server of the list refused a new connection (`None`
    /// when a list of servers was tried, each said in a note of its own).
    Lost {
        from: String,
        retry: Option<Box<ClientError>>,
    },
    /// The chat refused the name, and nobody is there to type another.
    Login(String),
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
            ClientError::NotForThisName(host) => write!(
                f,
                "TLS certificate not valid for this name ({host}): connect by a name it holds, \
                 or, for a development server, start it with --gen-certs to make a certificate \
                 that covers its listen hosts"
            ),
            ClientError::NeedsClientCertificate => {
                f.write_str("the server requires a client certificate: give --cert FILE --key FILE")
            }
            ClientError::Tls(why) => write!(f, "TLS handshake failed: {why}"),
            ClientError::ServerIsPlain => f.write_str("the server speaks plain TCP: try --no-tls"),
            ClientError::ServerIsTls => f.write_str("the server speaks TLS: leave out --no-tls"),
            ClientError::Login(reason) => f.write_str(reason),
            ClientError::Busy => f.write_str("server busy, try again later"),
            ClientError::Silent(limit) => write!(
                f,
                "the server took the connection but did not answer within {} s",
                limit.as_secs()
            ),
            ClientError::Turned(reason) => write!(f, "the server turned us away: {reason}"),
            ClientError::Closed => f.write_str("the server closed the connection"),
            ClientError::Lost { from, retry: None } => write!(
                f,
                "lost the connection to {from}, and no server of the list answered"
            ),
            ClientError::Lost {
                from,
                retry: Some(why),
            } => match why.as_ref() {
                ClientError::Refused(_) => write!(
                    f,
                    "lost the connection to {from}, and it refuses a new one: is the server running?"
                ),
                why => write!(
                    f,
                    "lost the connection to {from}, and could not connect again: {why}"
                ),
            },
            ClientError::Io(e) => write!(f, "connection failed: {e}"),
        }
    }
}

impl ClientError {
    /// Whether the sentence already says which server it is about, so a note need not say it
    /// again.
    pub fn names_the_server(&self) -> bool {
        matches!(
            self,
            ClientError::Refused(_) | ClientError::Connect(..) | ClientError::Lost { .. }
        )
    }

    /// The server's TLS alert, during the handshake or on the first read after it (TLS 1.3
    /// judges the client's certificate after the client thinks the handshake is done).
    pub(crate) fn from_alert(alert: rustls::AlertDescription) -> ClientError {
        use rustls::AlertDescription as Alert;
        match alert {
            Alert::CertificateRequired => ClientError::NeedsClientCertificate,
            Alert::BadCertificate | Alert::UnknownCA | Alert::CertificateUnknown => {
                ClientError::Tls(
                    "the server refused our client certificate (not signed by a CA it trusts)"
                        .into(),
                )
            }
            _ => ClientError::Tls(crate::tls::describe_error(&rustls::Error::AlertReceived(
                alert,
            ))),
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> ClientError {
        if let Some(rustls::Error::AlertReceived(alert)) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return ClientError::from_alert(*alert);
        }
        match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => ClientError::Closed,
            _ => ClientError::Io(e),
        }
    }
}

/// The name a PEM client certificate (`--cert FILE`) gives its holder: the subject's CN, else its
/// first DNS or e-mail name, the only name a server with mutual TLS lets it take. Errors name the
/// file and say what is wrong.
pub fn certificate_name(path: &Path) -> Result<String, String> {
    let certs = crate::tls::load_certs("--cert", path)?;
    crate::tls::certificate_name(&certs[0]).ok_or_else(|| {
        format!(
            "{} gives no name (no CN, DNS or e-mail name)",
            path.display()
        )
    })
}

/// The name to log in with (chat) or to exchange under (sum): `--name`, else, with `--cert`, the
/// certificate's name (a server with mutual TLS takes no other). calc and quiz send `--name` only.
/// A certificate that cannot be read is left to the handshake to report, in its own words.
pub fn login_name(o: &ClientOptions) -> Option<String> {
    o.name
        .clone()
        .or_else(|| o.cert.as_deref().and_then(|c| certificate_name(c).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_of_a_pem_certificate_is_read_for_the_login() {
        let dir =
            std::env::temp_dir().join(format!("securetcp-client-cert-{}", std::process::id()));
        let files = crate::tls::generate_dev_certs(&dir, &[]).unwrap();
        assert_eq!(
            certificate_name(&files.client_cert).as_deref(),
            Ok(crate::tls::DEV_CLIENT_NAME)
        );
        // The server's certificate names the server (CN), a missing file says so.
        assert_eq!(
            certificate_name(&files.cert).as_deref(),
            Ok("securetcp development server")
        );
        let missing = certificate_name(&dir.join("none.pem")).unwrap_err();
        assert!(missing.contains("none.pem"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }

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
        assert!(parse_args(&["--name", "a;b"]).is_err());
        assert!(
            parse_args(&["5000"])
                .unwrap_err()
                .contains("is a port, not a host")
        );
        let ClientCommand::Run(o) = parse_args(&["[::1]", "5001"]).unwrap() else {
            panic!()
        };
        assert_eq!(o.host.as_deref(), Some("::1"));
        assert_eq!(
            parse_args(&["--bogus"]).unwrap_err(),
            "unknown option --bogus"
        );
        let ClientCommand::Run(o) = parse_args(&["--name", "John Q. Smith"]).unwrap() else {
            panic!()
        };
        assert_eq!(o.name.as_deref(), Some("John Q. Smith"));
    }
}
