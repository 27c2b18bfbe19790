//! One load-generator connection: its non-blocking socket (bound to 127.0.0.K with `--sources`),
//! its rustls client, the PROXY header it may send first, and the requests it has in flight.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

/// One client connection and where it is in its conversation.
pub struct Client {
    pub stream: TcpStream,
    pub tls: Option<ClientConnection>,
    /// `--proxy`: the PROXY header, until it is sent.
    pub preamble: Vec<u8>,
    pub greeted: bool,
    /// Received plaintext not yet split into lines.
    pub inbox: Vec<u8>,
    /// Plaintext to send (plain TCP only; with TLS rustls holds it).
    pub outbox: Vec<u8>,
    /// Send times of the requests in flight, oldest first.
    pub in_flight: VecDeque<Instant>,
    pub replies: u64,
}

/// What a pump of a client found.
pub enum Pumped {
    Lines(Vec<String>),
    Closed,
}

impl Client {
    pub fn open(
        addr: SocketAddr,
        source: u8,
        tls: &Option<Arc<ClientConfig>>,
        proxy: bool,
    ) -> io::Result<Client> {
        let stream = connect_from(addr, source)?;
        // The header goes out before anything else (TLS records wait for it: `write_preamble`).
        let preamble = if proxy {
            format!("PROXY TCP4 192.0.2.{source} 10.0.0.1 40000 5000\r\n").into_bytes()
        } else {
            Vec::new()
        };
        let tls = match tls {
            Some(config) => {
                let name = ServerName::IpAddress(addr.ip().into());
                Some(ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?)
            }
            None => None,
        };
        Ok(Client {
            stream,
            tls,
            preamble,
            greeted: false,
            inbox: Vec::new(),
            outbox: Vec::new(),
            in_flight: VecDeque::new(),
            replies: 0,
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.tls {
            Some(tls) => tls.writer().write_all(bytes),
            None => {
                self.outbox.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    /// The PROXY header, before anything else; false while some of it is still unsent.
    pub fn write_preamble(&mut self) -> io::Result<bool> {
        while !self.preamble.is_empty() {
            match self.stream.write(&self.preamble) {
                Ok(n) => {
                    self.preamble.drain(..n);
                }
                Err(e) if would_block(&e) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Writes what can be written, reads what has arrived, returns complete lines.
    pub fn pump(&mut self) -> io::Result<Pumped> {
        self.write_preamble()?;
        let mut eof = false;
        let mut buf = [0u8; 16 * 1024];
        match &mut self.tls {
            Some(tls) => {
                loop {
                    match tls.read_tls(&mut self.stream) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(_) => {
                            tls.process_new_packets().map_err(io::Error::other)?;
                            loop {
                                match tls.reader().read(&mut buf) {
                                    Ok(0) => {
                                        eof = true;
                                        break;
                                    }
                                    Ok(n) => self.inbox.extend_from_slice(&buf[..n]),
                                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                    Err(e) => return Err(e),
                                }
                            }
                        }
                        Err(e) if would_block(&e) => break,
                        Err(e) => return Err(e),
                    }
                }
                while self.preamble.is_empty() && tls.wants_write() {
                    match tls.write_tls(&mut self.stream) {
                        Ok(_) => {}
                        Err(e) if would_block(&e) => break,
                        Err(e) => return Err(e),
                    }
                }
            }
            None => {
                loop {
                    match self.stream.read(&mut buf) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(n) => self.inbox.extend_from_slice(&buf[..n]),
                        Err(e) if would_block(&e) => break,
                        Err(e) => return Err(e),
                    }
                }
                while !self.outbox.is_empty() {
                    match self.stream.write(&self.outbox) {
                        Ok(n) => {
                            self.outbox.drain(..n);
                        }
                        Err(e) if would_block(&e) => break,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        let mut lines = Vec::new();
        while let Some(i) = self.inbox.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.inbox.drain(..=i).collect();
            lines.push(String::from_utf8_lossy(&line[..i]).into_owned());
        }
        if eof && lines.is_empty() {
            return Ok(Pumped::Closed);
        }
        Ok(Pumped::Lines(lines))
    }

    /// Writes what is queued, without reading: reading belongs to `pump`, whose caller looks at
    /// the lines it returns (a read here would throw replies away).
    pub fn write_out(&mut self) {
        if !matches!(self.write_preamble(), Ok(true)) {
            return;
        }
        match &mut self.tls {
            Some(tls) => {
                while tls.wants_write() {
                    if tls.write_tls(&mut self.stream).is_err() {
                        break; // WouldBlock (the next writable event retries) or a dead socket
                    }
                }
            }
            None => {
                while !self.outbox.is_empty() {
                    match self.stream.write(&self.outbox) {
                        Ok(n) => {
                            self.outbox.drain(..n);
                        }
                        Err(_) => break,
                    }
                }
            }
        }
    }

    pub fn close(mut self) {
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
        }
        self.write_out();
    }
}

pub fn would_block(e: &io::Error) -> bool {
    // ENOTCONN: the connect is still in progress.
    e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOTCONN)
}

/// A non-blocking connect from 127.0.0.`source` (spreading the ephemeral port use); from any
/// address for `source` 0 or 1, or an IPv6 server.
pub fn connect_from(addr: SocketAddr, source: u8) -> io::Result<TcpStream> {
    if source <= 1 || !addr.is_ipv4() {
        return TcpStream::connect(addr);
    }
    let stream = crate::sockets::connect_from(addr, Ipv4Addr::new(127, 0, 0, source))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
