//! The blocking comparison servers: the same calc protocol as the reactor, served the way the
//! seeds did it, so the benchmarks measure the difference instead of claiming it.
//!
//! ```text
//! blocking_server --iterative [OPTIONS] [HOST [PORT]]   one client at a time (the single-process seed)
//! blocking_server --threads   [OPTIONS] [HOST [PORT]]   a thread per client (the multi-process seed)
//! ```
//!
//! Same command-line shape and ready line as `securetcp` (`listening on 127.0.0.1:5000 (tls, calc)`),
//! same certificates (`certs/`, generated when missing), same parser, framing and replies (the
//! library's `LineBuffer` and `Calc` service). No log, no timeouts, no limits: it is a baseline.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use securetcp::line::{LineBuffer, classify};
use securetcp::outbox::{Action, ConnId, Outbox};
use securetcp::service::Service;
use securetcp::service::calc::Calc;
use securetcp::tls;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Iterative,
    Threads,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut options = getopts::Options::new();
    options.optflag("", "iterative", "serve one client at a time");
    options.optflag("", "threads", "a thread per client");
    options.optflag("", "no-tls", "plain TCP");
    options.optopt(
        "",
        "cert",
        "PEM certificate chain (default certs/server.pem)",
        "FILE",
    );
    options.optopt(
        "",
        "key",
        "PEM private key (default certs/server.key)",
        "FILE",
    );
    options.optopt(
        "",
        "max-line",
        "longest request line (default 4096)",
        "BYTES",
    );
    options.optflag("h", "help", "print this help");
    let usage =
        options.usage("Usage: blocking_server --iterative|--threads [OPTIONS] [HOST [PORT]]");
    let m = match options.parse(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("blocking_server: {e}\n\n{usage}");
            return ExitCode::from(2);
        }
    };
    if m.opt_present("help") {
        println!("{usage}");
        return ExitCode::SUCCESS;
    }
    let mode = match (m.opt_present("iterative"), m.opt_present("threads")) {
        (true, false) => Mode::Iterative,
        (false, true) => Mode::Threads,
        _ => {
            eprintln!("blocking_server: give exactly one of --iterative and --threads\n\n{usage}");
            return ExitCode::from(2);
        }
    };
    let host = m
        .free
        .first()
        .cloned()
        .unwrap_or_else(|| "127.0.0.1".into());
    let port = m.free.get(1).cloned().unwrap_or_else(|| "5000".into());
    let max_line = m
        .opt_str("max-line")
        .and_then(|n| n.parse().ok())
        .unwrap_or(4096);
    match run(
        mode,
        &host,
        &port,
        !m.opt_present("no-tls"),
        m.opt_str("cert"),
        m.opt_str("key"),
        max_line,
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blocking_server: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(
    mode: Mode,
    host: &str,
    port: &str,
    use_tls: bool,
    cert: Option<String>,
    key: Option<String>,
    max_line: usize,
) -> Result<(), String> {
    let config = if use_tls {
        let (cert, key) = match (cert, key) {
            (Some(c), Some(k)) => (c, k),
            _ => {
                if !Path::new(tls::SERVER_CERT_FILE).exists() {
                    tls::generate_dev_certs(Path::new(tls::CERT_DIR), &[host.to_string()])?;
                }
                (tls::SERVER_CERT_FILE.into(), tls::SERVER_KEY_FILE.into())
            }
        };
        Some(tls::server_config(Path::new(&cert), Path::new(&key), None)?)
    } else {
        None
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("'{port}' is not a port"))?;
    let listener = TcpListener::bind((host, port))
        .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!(
        "listening on {addr} ({}, calc)",
        if use_tls { "tls" } else { "plain" }
    );
    io::stdout().flush().map_err(|e| e.to_string())?;

    for (serial, stream) in listener.incoming().enumerate() {
        let Ok(stream) = stream else { continue };
        let config = config.clone();
        let id = ConnId::new(serial as u64 + 1, 0);
        match mode {
            Mode::Iterative => serve(stream, config, id, max_line),
            Mode::Threads => {
                std::thread::spawn(move || serve(stream, config, id, max_line));
            }
        }
    }
    Ok(())
}

/// One client, start to end, blocking. Errors just end the client.
fn serve(stream: TcpStream, config: Option<Arc<ServerConfig>>, id: ConnId, max_line: usize) {
    let _ = stream.set_nodelay(true);
    let result = match config {
        Some(config) => match ServerConnection::new(config) {
            Ok(conn) => talk(StreamOwned::new(conn, stream), id, max_line),
            Err(_) => return,
        },
        None => talk(stream, id, max_line),
    };
    let _ = result;
}

/// The calc conversation over any byte stream: greeting, then each read's lines answered with
/// one write. With TLS, `q` ends with close_notify.
fn talk<S: Read + Write + Closable>(mut stream: S, id: ConnId, max_line: usize) -> io::Result<()> {
    let mut calc = Calc::default();
    let mut out = Outbox::new();
    let mut lines = LineBuffer::new(max_line);
    let mut buf = vec![0u8; 16 * 1024];
    let mut replies = Vec::new();
    calc.greeting(id, None, &mut out);
    let mut quit = drain(&out, &mut replies);
    out.clear();
    stream.write_all(&replies)?;
    stream.flush()?;
    while !quit {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        lines.feed(&buf[..n], |frame| {
            match classify(frame, max_line) {
                Ok(text) => calc.on_line(id, text, &mut out),
                Err(bad) => calc.on_bad_line(id, bad, &mut out),
            }
            !out.is_closing(id)
        });
        replies.clear();
        quit = drain(&out, &mut replies);
        out.clear();
        stream.write_all(&replies)?;
        stream.flush()?;
    }
    stream.close();
    Ok(())
}

/// Collects the reply bytes from the outbox; true when the service asked to close.
fn drain(out: &Outbox, replies: &mut Vec<u8>) -> bool {
    let mut close = false;
    for action in out.actions() {
        match action {
            Action::Send { bytes, .. } => replies.extend_from_slice(out.bytes(bytes)),
            Action::Close(_) => close = true,
            _ => {}
        }
    }
    close
}

/// How a stream ends cleanly: close_notify for TLS, FIN for plain TCP.
trait Closable {
    fn close(&mut self);
}

impl Closable for TcpStream {
    fn close(&mut self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

impl Closable for StreamOwned<ServerConnection, TcpStream> {
    fn close(&mut self) {
        self.conn.send_close_notify();
        let _ = self.conn.complete_io(&mut self.sock);
        let _ = self.sock.shutdown(std::net::Shutdown::Write);
    }
}
