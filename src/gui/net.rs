//! The GUI's network side: the terminal client's blocking transport on threads of its own,
//! channels both ways, so the window never waits on a socket.
//!
//! One thread connects (TCP, TLS handshake, greeting) and then reads lines until the session
//! ends; a second one writes what the window queued, so a server that does not read cannot
//! block the window either. Each event wakes the window (`wake`, egui's `request_repaint`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Instant;

use crate::client::{ClientError, ClientOptions, Session, Transport};
use crate::proto::{Reply, ServiceKind};

/// What the network tells the window.
#[derive(Debug)]
pub enum FromNet {
    /// The greeting arrived: `HELLO <service> ...`.
    Connected { service: ServiceKind },
    /// One line from the server.
    Line(String),
    /// The session is over; the sentence says why, for a person.
    Ended(Ending),
}

/// Why a session ended or never began.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// The server said `BYE <text>`: after our `q`, or because it shuts down.
    Bye(String),
    /// The server ended the session after this many seconds without a line either way
    /// (`BYE idle timeout`): the end of the session, not a lost server.
    Idle(u64),
    /// The connection could not be made, or broke: one clear sentence.
    Failed(String),
}

/// The window's end of one connection. Dropping it closes the connection.
pub struct Link {
    to_net: Sender<String>,
    from_net: Receiver<FromNet>,
    /// Set once connected, so that dropping the link can close the socket under the reader.
    transport: Option<Arc<Transport>>,
    transport_rx: Receiver<Arc<Transport>>,
}

impl Ending {
    /// Why the session ended, in one sentence for a person.
    pub fn sentence(&self) -> String {
        match self {
            Ending::Bye(text) => bye_sentence(text),
            Ending::Idle(seconds) => format!("Disconnected after {seconds} s idle."),
            Ending::Failed(why) => why.clone(),
        }
    }
}

/// When a line last went either way on one connection, in milliseconds since it began: the
/// reader and the writer thread both note theirs.
struct LastTraffic {
    start: Instant,
    millis: AtomicU64,
}

impl LastTraffic {
    fn new() -> LastTraffic {
        LastTraffic {
            start: Instant::now(),
            millis: AtomicU64::new(0),
        }
    }

    fn note(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.millis.store(now, Ordering::Relaxed);
    }

    /// Whole seconds since the last line.
    fn idle_seconds(&self) -> u64 {
        let now = self.start.elapsed().as_millis() as u64;
        let idle = now.saturating_sub(self.millis.load(Ordering::Relaxed));
        (idle + 500) / 1000
    }
}

impl Link {
    /// Starts connecting to `host:port` on a new thread and returns at once.
    pub fn open(
        host: String,
        port: u16,
        options: ClientOptions,
        wake: impl Fn() + Send + 'static,
    ) -> Link {
        let (to_window, mut from_net) = mpsc::channel();
        let (to_net, outgoing) = mpsc::channel::<String>();
        let (transport_tx, transport_rx) = mpsc::channel();
        let spawned = thread::Builder::new()
            .name("gui-net".into())
            .spawn(move || {
                let send = |event| {
                    let _ = to_window.send(event);
                    wake();
                };
                let session = match Session::connect(&host, port, &options) {
                    Ok(session) => session,
                    Err(e) => return send(FromNet::Ended(Ending::Failed(sentence(&e)))),
                };
                send(FromNet::Connected {
                    service: session.service,
                });
                let (transport, mut reader) = session.into_parts();
                let _ = transport_tx.send(Arc::clone(&transport));
                let last_traffic = Arc::new(LastTraffic::new());
                spawn_writer(transport, outgoing, Arc::clone(&last_traffic));
                loop {
                    match reader.read_line() {
                        Ok(Some(line)) => {
                            let ending = match Reply::parse(&line) {
                                // SPEC "An idle close says so": said as such, and not taken
                                // for a lost server.
                                Some(Reply::Bye("idle timeout")) => {
                                    Some(Ending::Idle(last_traffic.idle_seconds()))
                                }
                                Some(Reply::Bye(text)) => Some(Ending::Bye(text.to_string())),
                                _ => None,
                            };
                            last_traffic.note();
                            send(FromNet::Line(line));
                            if let Some(ending) = ending {
                                return send(FromNet::Ended(ending));
                            }
                        }
                        Ok(None) | Err(_) => {
                            let why = "Connection lost: the server went away without a word.";
                            return send(FromNet::Ended(Ending::Failed(why.into())));
                        }
                    }
                }
            });
        if spawned.is_err() {
            // No thread, no connection: the window hears it like any other failure.
            let (tx, rx) = mpsc::channel();
            let _ = tx.send(FromNet::Ended(Ending::Failed(
                "Cannot start the network thread.".into(),
            )));
            from_net = rx;
        }
        Link {
            to_net,
            from_net,
            transport: None,
            transport_rx,
        }
    }

    /// Queues a line for the server (without its `\n`).
    pub fn send(&self, line: String) {
        let _ = self.to_net.send(line);
    }

    /// The next event, if one is waiting; never blocks.
    pub fn poll(&mut self) -> Option<FromNet> {
        if self.transport.is_none() {
            self.transport = self.transport_rx.try_recv().ok();
        }
        self.from_net.try_recv().ok()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // close_notify and FIN; the server closes in turn, and the reader thread sees the end.
        if let Some(transport) = self
            .transport
            .take()
            .or_else(|| self.transport_rx.try_recv().ok())
        {
            transport.close();
        }
    }
}

/// Writes queued lines until the window drops its sender or the socket fails.
fn spawn_writer(
    transport: Arc<Transport>,
    outgoing: Receiver<String>,
    last_traffic: Arc<LastTraffic>,
) {
    let _ = thread::Builder::new()
        .name("gui-net-write".into())
        .spawn(move || {
            for mut line in outgoing {
                line.push('\n');
                if transport.write_all(line.as_bytes()).is_err() {
                    break;
                }
                last_traffic.note();
            }
        });
}

/// The server's `BYE <text>` as a sentence for a person (the raw words never reach the screen).
pub fn bye_sentence(text: &str) -> String {
    match text.trim() {
        "" => "The server ended the session.".into(),
        "session ended" => "The session has ended.".into(),
        "server shutting down" => "The server is shutting down, so the session has ended.".into(),
        "name taken elsewhere" => {
            "Someone took your name on another server of the room, so the session has ended.".into()
        }
        other => format!(
            "The server ended the session: {}.",
            other.trim_end_matches('.')
        ),
    }
}

/// One sentence for a person at a window: what went wrong and what to do about it.
pub fn sentence(e: &ClientError) -> String {
    match e {
        ClientError::Refused(addr) => {
            format!("Connection refused by {addr}: is the server running?")
        }
        ClientError::Untrusted(why) => format!(
            "The server's certificate is not trusted ({why}): choose the CA file that signed it."
        ),
        ClientError::NotForThisName(host) => format!(
            "The server's certificate is not valid for {host}: connect by a name it holds, or \
             start a development server with --gen-certs to cover its addresses."
        ),
        ClientError::NeedsClientCertificate => {
            "The server requires a client certificate: choose its certificate and key files.".into()
        }
        ClientError::Busy => "The server is busy: try again later.".into(),
        ClientError::ServerIsPlain => {
            "The server speaks plain TCP: tick \"Plain TCP (no TLS)\" and connect again.".into()
        }
        ClientError::ServerIsTls => {
            "The server speaks TLS: untick \"Plain TCP (no TLS)\" and connect again.".into()
        }
        ClientError::Closed => "The server closed the connection before greeting.".into(),
        other => {
            let text = other.to_string();
            format!("{}.", crate::client::capitalise(text.trim_end_matches('.')))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 21: `BYE server shutting down` reaches a person as a sentence, not as the wire's words.
    #[test]
    fn bye_is_said_in_words() {
        assert_eq!(
            bye_sentence("server shutting down"),
            "The server is shutting down, so the session has ended."
        );
        assert_eq!(bye_sentence("session ended"), "The session has ended.");
        assert_eq!(bye_sentence(""), "The server ended the session.");
        assert_eq!(
            bye_sentence("idle for 300 s"),
            "The server ended the session: idle for 300 s."
        );
    }

    /// Issue 27 defect 2: `BYE idle timeout` is the end of the session, said with how long.
    #[test]
    fn an_idle_close_says_how_long() {
        assert_eq!(
            Ending::Idle(300).sentence(),
            "Disconnected after 300 s idle."
        );
        let last = LastTraffic::new();
        last.note();
        assert_eq!(last.idle_seconds(), 0);
    }
}
