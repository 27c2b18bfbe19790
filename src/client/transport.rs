//! The client's connection: a socket with or without TLS that a reading thread and a writing
//! thread can share, and a line-oriented session on top that connects, handshakes and reads
//! the greeting.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::ClientConnection;
use rustls::pki_types::ServerName;

use super::{ClientError, ClientOptions};
use crate::proto::{Reply, ServiceKind};

/// How long the client waits to connect before giving up with a clear message.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// With several servers (`--server`), this much silence moves on to the next one.
pub(super) const FAILOVER_SILENCE: Duration = Duration::from_secs(3);

/// How long the client waits for a server that took the connection to answer.
pub(super) fn silence_limit(o: &ClientOptions) -> Duration {
    if o.servers.is_empty() {
        CONNECT_TIMEOUT
    } else {
        FAILOVER_SILENCE
    }
}

/// Without TLS the server greets at once. Silence this long means it may be a TLS port, which
/// waits for a handshake: the client then sends one line to find out (see `plain_greeting`).
const PLAIN_GREETING_WAIT: Duration = Duration::from_secs(1);

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

    /// Makes the connection end with a reset (RST, no close_notify, no FIN) once it is dropped:
    /// how a crashed client looks to the server.
    pub fn reset_on_drop(&self) {
        reset_on_drop(&self.socket);
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

/// Reads whole lines from a [`Transport`]; owned by whichever thread reads.
pub struct LineReader {
    transport: Arc<Transport>,
    pending: Vec<u8>,
    /// The session ended with the server's close_notify (or a plain FIN without TLS), not a cut.
    clean_end: bool,
}

impl LineReader {
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
                Ok(0) => {
                    self.clean_end = true;
                    return Ok(None);
                }
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                // A peer that closes without close_notify still ended the session.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }
}

/// A line-oriented session over a [`Transport`].
pub struct Session {
    pub transport: Arc<Transport>,
    reader: LineReader,
    /// The service the greeting named.
    pub service: ServiceKind,
}

impl Session {
    /// Connects, completes the TLS handshake and reads the greeting.
    pub fn connect(host: &str, port: u16, o: &ClientOptions) -> Result<Session, ClientError> {
        let silence = silence_limit(o);
        let mut socket = connect_any(host, port, silence)?;
        let _ = socket.set_nodelay(true);
        let tls = if o.no_tls {
            None
        } else {
            Some(Mutex::new(TlsState {
                conn: handshake(&mut socket, host, o)?,
                unread: Vec::new(),
            }))
        };
        let transport = Arc::new(Transport {
            socket,
            tls,
            writing: Mutex::new(()),
        });
        let mut session = Session {
            reader: LineReader {
                transport: Arc::clone(&transport),
                pending: Vec::new(),
                clean_end: false,
            },
            transport,
            service: ServiceKind::default(),
        };
        let greeting = if o.no_tls {
            session.plain_greeting()?
        } else {
            session.set_read_timeout(Some(silence))?;
            let greeting = session
                .read_line()
                .map_err(|e| handshake_error(e, host, silence))?;
            session.set_read_timeout(None)?;
            greeting.ok_or(ClientError::Closed)?
        };
        session.service = match Reply::parse(&greeting) {
            Some(Reply::Err(reason)) if reason.starts_with("server busy") => {
                return Err(ClientError::Busy);
            }
            Some(Reply::Err(reason)) => return Err(ClientError::Turned(reason.to_string())),
            Some(Reply::Hello { service, .. }) => ServiceKind::parse(service).ok_or_else(|| {
                ClientError::Setup(format!(
                    "the server offers a service this client does not know: {}",
                    super::quote(service)
                ))
            })?,
            _ => {
                return Err(ClientError::Setup(format!(
                    "unexpected greeting: {}",
                    super::quote(&greeting)
                )));
            }
        };
        Ok(session)
    }

    /// The greeting of a plain-TCP server. A TLS port says nothing until it gets a handshake,
    /// so after a second of silence the client sends `help`: a TLS port answers that it speaks
    /// TLS (securetcp says so in plain text; others send a binary alert), a slow plain server
    /// greets and answers `help`, whose reply is skipped.
    fn plain_greeting(&mut self) -> Result<String, ClientError> {
        self.set_read_timeout(Some(PLAIN_GREETING_WAIT))?;
        let first = match self.read_line() {
            Ok(line) => line,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                self.set_read_timeout(Some(CONNECT_TIMEOUT))?;
                self.send_line("help")?;
                let answer = self.read_line()?.ok_or(ClientError::ServerIsTls)?;
                if let Some(Reply::Hello { .. }) = Reply::parse(&answer) {
                    // The probe's reply follows the greeting (in quiz, after the question).
                    while let Some(line) = self.read_line()? {
                        if let Some(Reply::Ok(_)) = Reply::parse(&line) {
                            break;
                        }
                    }
                }
                Some(answer)
            }
            Err(e) => return Err(e.into()),
        };
        self.set_read_timeout(None)?;
        let greeting = first.ok_or(ClientError::Closed)?;
        if greeting.starts_with("ERR this port speaks TLS") || greeting.starts_with('\u{15}') {
            return Err(ClientError::ServerIsTls);
        }
        Ok(greeting)
    }

    /// This end's address (tests match it to the server log's `peer=`).
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.transport.socket.local_addr()
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
        self.reader.read_line()
    }

    /// True once the session has ended with the server's close_notify (TLS) or FIN (plain).
    pub fn ended_cleanly(&self) -> bool {
        self.reader.clean_end
    }

    /// Sends a line and reads the one reply line.
    pub fn request(&mut self, line: &str) -> Result<String, ClientError> {
        self.send_line(line)?;
        self.read_line()?.ok_or(ClientError::Closed)
    }

    pub fn close(&self) {
        self.transport.close();
    }

    /// The writing half and the reading half, for two threads (the chat).
    pub fn into_parts(self) -> (Arc<Transport>, LineReader) {
        (self.transport, self.reader)
    }
}

/// Makes a TCP connection end with a reset when it is closed (SO_LINGER 0), as a crashed peer's would.
pub fn reset_on_drop(socket: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads `linger` for the duration of the call; the descriptor is valid.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Tries each address of `host` in turn; the error says why the last one failed.
fn connect_any(host: &str, port: u16, silence: Duration) -> Result<TcpStream, ClientError> {
    let addrs = crate::addr::resolve(host, port).map_err(ClientError::Resolve)?;
    let mut last_error = ClientError::Resolve(format!("{host} has no address"));
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, silence) {
            Ok(socket) => return Ok(socket),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                last_error = ClientError::Refused(addr.to_string());
            }
            Err(e) => last_error = ClientError::Connect(addr.to_string(), e),
        }
    }
    Err(last_error)
}

/// The blocking TLS handshake: the development CA (or `--ca`) and the webpki roots are trusted.
fn handshake(
    socket: &mut TcpStream,
    host: &str,
    o: &ClientOptions,
) -> Result<ClientConnection, ClientError> {
    let default_ca = Path::new(crate::tls::CA_FILE);
    let ca = match &o.ca {
        // `--ca ''`, or the GUI's empty CA field: the public roots only, no fallback.
        Some(ca) if ca.as_os_str().is_empty() => None,
        Some(ca) => Some(ca.as_path()),
        None => default_ca.exists().then_some(default_ca),
    };
    let cas: Vec<&Path> = ca.into_iter().collect();
    let client_cert = o.cert.as_deref().zip(o.key.as_deref());
    let config = crate::tls::client_config(&cas, client_cert).map_err(ClientError::Setup)?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| ClientError::Setup(format!("'{host}' is not a valid server name: {e}")))?;
    let mut conn =
        ClientConnection::new(config, name).map_err(|e| ClientError::Tls(e.to_string()))?;
    // Our writes hand rustls whole batches and flush them at once; its default 64 KiB limit
    // would make a larger `write_all` fail half-way.
    conn.set_buffer_limit(None);
    // A server that accepts and then says nothing must not hold the client forever.
    let silence = silence_limit(o);
    socket.set_read_timeout(Some(silence))?;
    while conn.is_handshaking() {
        conn.complete_io(socket)
            .map_err(|e| handshake_error(e, host, silence))?;
    }
    socket.set_read_timeout(None)?;
    Ok(conn)
}

fn handshake_error(e: io::Error, host: &str, silence: Duration) -> ClientError {
    if let Some(rustls_error) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        return match rustls_error {
            rustls::Error::InvalidCertificate(NotValidForName | NotValidForNameContext { .. }) => {
                ClientError::NotForThisName(host.to_string())
            }
            rustls::Error::AlertReceived(alert) => ClientError::from_alert(*alert),
            rustls::Error::InvalidCertificate(_) => {
                ClientError::Untrusted(crate::tls::describe_error(rustls_error))
            }
            // The first byte back was no TLS record: `HELLO ...` from a `--no-tls` server.
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
                ClientError::ServerIsPlain
            }
            other => ClientError::Tls(crate::tls::describe_error(other)),
        };
    }
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Silent(silence),
        _ => ClientError::from(e),
    }
}
