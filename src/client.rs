//! The blocking client used by `examples/client.rs` (and by the tests and benches):
//! its command line, the TLS connection, and the per-service conversations.
//!
//! Blocking on purpose: it is the simple counterpart of the reactor, one connection, and
//! the way a person or a script talks to the server. The transport can be shared by two
//! threads (one reading the socket, one reading stdin), which the chat needs.

use std::fmt;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use getopts::Options;
use rustls::ClientConnection;
use rustls::pki_types::ServerName;

use crate::config::{DEFAULT_HOST, DEFAULT_PORT};
use crate::expr;
use crate::service::{Common, common_command};

/// How long the client waits to connect before giving up with a clear message.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
        match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => ClientError::Closed,
            _ => ClientError::Io(e),
        }
    }
}

/// A connected socket, with or without TLS, that two threads may share: one reading, one
/// writing. The rustls state sits behind a mutex that is never held while blocking on a read.
pub struct Transport {
    socket: TcpStream,
    tls: Option<Mutex<TlsState>>,
    /// Held while writing to the socket, so records leave in the order rustls made them. The TLS
    /// lock is not held during the write: a writer blocked by a full socket must not stop the
    /// reader from draining replies (the server may be waiting for exactly that).
    writing: Mutex<()>,
}

struct TlsState {
    conn: ClientConnection,
    /// Bytes read from the socket that rustls could not take yet (its plaintext buffer was
    /// full); they go in before the socket is read again.
    unread: Vec<u8>,
}

impl TlsState {
    /// Hands rustls as much of `unread` as it takes, and decrypts it.
    fn feed(&mut self) -> io::Result<()> {
        let mut rest = &self.unread[..];
        let taken = self.conn.read_tls(&mut rest)?;
        self.unread.drain(..taken);
        self.conn.process_new_packets().map_err(io::Error::other)?;
        Ok(())
    }

    /// The TLS records rustls has ready to send, taken out so they can be written without the lock.
    fn take_output(&mut self) -> io::Result<Vec<u8>> {
        let mut records = Vec::new();
        while self.conn.wants_write() {
            self.conn.write_tls(&mut records)?;
        }
        Ok(records)
    }
}

impl Transport {
    fn lock(tls: &Mutex<TlsState>) -> MutexGuard<'_, TlsState> {
        // A panic in the other thread while holding the lock leaves a usable connection state
        // (rustls never leaves it half-updated), so the poison flag is ignored.
        tls.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads plaintext. `Ok(0)` is the end of the session.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = &self.tls else {
            return (&self.socket).read(buf);
        };
        let mut raw = [0u8; 16 * 1024];
        loop {
            {
                let mut state = Self::lock(tls);
                match state.conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if !state.unread.is_empty() {
                    state.feed()?;
                    continue;
                }
            }
            // Block on the socket without holding the lock, so the other thread can write.
            let n = (&self.socket).read(&mut raw)?;
            let mut state = Self::lock(tls);
            if n == 0 {
                state.conn.read_tls(&mut io::empty())?;
                state.conn.process_new_packets().map_err(io::Error::other)?;
            } else {
                state.unread.extend_from_slice(&raw[..n]);
                state.feed()?;
            }
            // Anything rustls wants to send in answer (rare in TLS 1.3) leaves with the next write.
        }
    }

    /// Sends bytes (whole lines) and flushes them to the socket.
    pub fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tls) = &self.tls else {
            return (&self.socket).write_all(bytes);
        };
        let records = {
            let mut state = Self::lock(tls);
            state.conn.writer().write_all(bytes)?;
            state.take_output()?
        };
        (&self.socket).write_all(&records)
    }

    /// Sends close_notify (with TLS) and shuts the write side.
    pub fn close(&self) {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tls) = &self.tls {
            let records = {
                let mut state = Self::lock(tls);
                state.conn.send_close_notify();
                state.take_output().unwrap_or_default()
            };
            let _ = (&self.socket).write_all(&records);
        }
        let _ = self.socket.shutdown(std::net::Shutdown::Write);
    }
}

/// A line-oriented session over a [`Transport`].
pub struct Session {
    pub transport: Arc<Transport>,
    pending: Vec<u8>,
    /// The greeting's service name: `calc`, `chat`, `sum`, `quiz`.
    pub service: String,
}

impl Session {
    /// Connects, completes the TLS handshake and reads the greeting.
    pub fn connect(host: &str, port: u16, o: &ClientOptions) -> Result<Session, ClientError> {
        let addrs: Vec<_> = (host, port)
            .to_socket_addrs()
            .map_err(|e| ClientError::Resolve(format!("cannot resolve {host}: {e}")))?
            .collect();
        let mut last_error = ClientError::Resolve(format!("{host} has no address"));
        let mut socket = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(s) => {
                    socket = Some(s);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    last_error = ClientError::Refused(addr.to_string());
                }
                Err(e) => last_error = ClientError::Connect(addr.to_string(), e),
            }
        }
        let Some(mut socket) = socket else {
            return Err(last_error);
        };
        let _ = socket.set_nodelay(true);

        let tls = if o.no_tls {
            None
        } else {
            let default_ca = Path::new(crate::tls::CA_FILE);
            let ca = match &o.ca {
                Some(ca) => Some(ca.as_path()),
                None => default_ca.exists().then_some(default_ca),
            };
            let cas: Vec<&Path> = ca.into_iter().collect();
            let client_cert = o.cert.as_deref().zip(o.key.as_deref());
            let config =
                crate::tls::client_config(&cas, client_cert).map_err(ClientError::Setup)?;
            let name = ServerName::try_from(host.to_string()).map_err(|e| {
                ClientError::Setup(format!("'{host}' is not a valid server name: {e}"))
            })?;
            let mut conn =
                ClientConnection::new(config, name).map_err(|e| ClientError::Tls(e.to_string()))?;
            while conn.is_handshaking() {
                if let Err(e) = conn.complete_io(&mut socket) {
                    return Err(handshake_error(e));
                }
            }
            Some(Mutex::new(TlsState {
                conn,
                unread: Vec::new(),
            }))
        };
        let mut session = Session {
            transport: Arc::new(Transport {
                socket,
                tls,
                writing: Mutex::new(()),
            }),
            pending: Vec::new(),
            service: String::new(),
        };
        let greeting = session.read_line()?.ok_or(ClientError::Closed)?;
        if greeting.starts_with("ERR server busy") {
            return Err(ClientError::Busy);
        }
        match greeting.strip_prefix("HELLO ") {
            Some(rest) => session.service = rest.split(' ').next().unwrap_or("").to_string(),
            None => {
                return Err(ClientError::Setup(format!(
                    "unexpected greeting: {greeting}"
                )));
            }
        }
        Ok(session)
    }

    /// Bounds every later read (tests and benches must never hang on a silent server).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.transport.socket.set_read_timeout(timeout)
    }

    pub fn send_line(&self, line: &str) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.transport.write_all(&bytes)
    }

    /// The next line from the server, without `\n`; `None` at the end of the session.
    pub fn read_line(&mut self) -> io::Result<Option<String>> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=i).collect();
                let text = String::from_utf8_lossy(&line[..i]);
                return Ok(Some(text.trim_end_matches('\r').to_string()));
            }
            match self.transport.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                // A peer that closes without close_notify still ended the session.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends a line and reads the one reply line.
    pub fn request(&mut self, line: &str) -> Result<String, ClientError> {
        self.send_line(line)?;
        self.read_line()?.ok_or(ClientError::Closed)
    }

    pub fn close(&self) {
        self.transport.close();
    }
}

fn handshake_error(e: io::Error) -> ClientError {
    let text = e.to_string();
    if let Some(rustls_error) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        if matches!(rustls_error, rustls::Error::InvalidCertificate(_)) {
            return ClientError::Untrusted(text);
        }
        return ClientError::Tls(text);
    }
    ClientError::from(e)
}

/// Where lines come from: `--exec` or stdin (a terminal gets a prompt).
enum Input {
    Exec(std::vec::IntoIter<String>),
    Stdin { terminal: bool },
}

impl Input {
    fn next_line(&mut self, prompt: &str) -> Option<String> {
        match self {
            Input::Exec(lines) => lines.next(),
            Input::Stdin { terminal } => {
                if *terminal {
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
    let host = match &o.host {
        Some(h) => h.clone(),
        None if terminal && o.exec.is_empty() => ask("Server IP address", DEFAULT_HOST),
        None => DEFAULT_HOST.to_string(),
    };
    let port = match o.port {
        Some(p) => p,
        None if terminal && o.exec.is_empty() => {
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
    let mut session = match Session::connect(&host, port, &o) {
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
    let result = converse(&mut session, &o, input, terminal);
    session.close();
    match result {
        Ok(failures) if failures > 0 && !o.exec.is_empty() => 1,
        Ok(_) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// The request/reply conversation (calc, and any service the client has no special mode for).
/// Returns how many lines got an `ERR` (or were refused locally).
fn converse(
    session: &mut Session,
    o: &ClientOptions,
    mut input: Input,
    terminal: bool,
) -> Result<usize, ClientError> {
    let mut failures = 0;
    if terminal && matches!(input, Input::Stdin { .. }) {
        println!(
            "Connected to a {} server. Type help for the commands, q to quit.",
            session.service
        );
    }
    if let Some(name) = &o.name {
        let reply = session.request(&format!("name {name}"))?;
        failures += show_reply(&reply);
    }
    while let Some(line) = input.next_line("> ") {
        let line = line.trim();
        if let Err(warning) = local_check(&session.service, line) {
            println!("warning: not sent: {warning}");
            failures += 1;
            continue;
        }
        let reply = session.request(line)?;
        if reply.starts_with("BYE") {
            println!("Session ended");
            return Ok(failures);
        }
        failures += show_reply(&reply);
    }
    // End of input: leave politely.
    let reply = session.request("q")?;
    if reply.starts_with("BYE") {
        println!("Session ended");
    } else {
        show_reply(&reply);
    }
    Ok(failures)
}

/// Prints a reply as a person wants to read it; returns 1 for an `ERR`, else 0.
fn show_reply(reply: &str) -> usize {
    if let Some(text) = reply.strip_prefix("OK ") {
        println!("{text}");
        0
    } else if let Some(reason) = reply.strip_prefix("ERR ") {
        println!("error: {reason}");
        1
    } else {
        println!("{reply}");
        0
    }
}

/// The check a line passes before it is sent: nothing empty, and for calc nothing that is not
/// an expression (a division by zero is sent: that is the server's answer to give).
pub fn local_check(service: &str, line: &str) -> Result<(), String> {
    if line.is_empty() {
        return Err("empty line".into());
    }
    if common_command(line).is_some_and(|c| !matches!(c, Common::Name(_))) {
        return Ok(());
    }
    if let Some(Common::Name(name)) = common_command(line) {
        return crate::service::check_name(name).map_err(str::to_string);
    }
    if service == "calc" {
        if let Err(e) = expr::evaluate(line) {
            if e.is_malformed() {
                return Err(e.to_string());
            }
        }
    }
    Ok(())
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
