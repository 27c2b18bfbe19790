//! The syscall floor for a request/reply over plain TCP: the least a server can do per request
//! with mio on this kernel. It greets (`HELLO floor`), then answers every `\n` it reads with
//! `OK 54`, with no TLS, no parsing, no service, no log: one read until `WouldBlock` and one
//! write per readiness event. `loadgen rr --no-tls --pid PID` against it gives the server CPU per
//! request that the reactor's own figure is compared with.
//!
//! `floor_server [HOST [PORT]]`, ready line `listening on ADDR (plain, floor)`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(0);

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let host = args.first().map_or("127.0.0.1", String::as_str);
    let port = args.get(1).map_or("5000", String::as_str);
    let addr: SocketAddr = format!("{host}:{port}").parse().map_err(io::Error::other)?;
    let mut listener = TcpListener::bind(addr)?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("listening on {} (plain, floor)", listener.local_addr()?);
    io::stdout().flush()?;

    let mut conns: HashMap<Token, TcpStream> = HashMap::new();
    let mut next = 1;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut replies = Vec::new();
    loop {
        poll.poll(&mut events, None)?;
        for event in events.iter() {
            if event.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    let _ = stream.set_nodelay(true);
                    let token = Token(next);
                    next += 1;
                    poll.registry()
                        .register(&mut stream, token, Interest::READABLE)?;
                    let _ = stream.write_all(b"HELLO floor\n");
                    conns.insert(token, stream);
                }
                continue;
            }
            let Some(stream) = conns.get_mut(&event.token()) else {
                continue;
            };
            let mut closed = false;
            replies.clear();
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => {
                        let lines = buf[..n].iter().filter(|&&b| b == b'\n').count();
                        for _ in 0..lines {
                            replies.extend_from_slice(b"OK 54\n");
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
            // Replies are tiny; a full socket buffer would only drop some (this is a floor, not a server).
            if !replies.is_empty() {
                let _ = stream.write_all(&replies);
            }
            if closed {
                conns.remove(&event.token());
            }
        }
    }
}
