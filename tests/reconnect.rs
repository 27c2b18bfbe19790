//! One address in front of several instances (as HAProxy's front is): when the instance a
//! client talks to dies without a word, the client tries that same address once more and goes
//! on with a live instance. The front here is a few lines of TCP forwarding in the test, so it
//! runs without HAProxy.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use common::{Server, TestDir, WAIT, client_bin};

/// A TCP front on 127.0.0.1:0 that forwards each new connection to the backend set now.
fn front(backend: Arc<Mutex<SocketAddr>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            let target = *backend.lock().unwrap();
            let Ok(server) = TcpStream::connect(target) else {
                continue; // the client sees its connection closed, as behind a balancer
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    addr
}

#[test]
fn with_one_server_a_lost_connection_is_tried_again_once() {
    let dir = TestDir::new("one-front");
    let mut a = Server::start_in(TestDir::borrowed(&dir.0), &["127.0.0.1", "0"], &[], 1);
    let b = Server::start_in(
        TestDir::borrowed(&dir.0),
        &["127.0.0.1", "0"],
        &["--log", "b.log"],
        1,
    );
    let backend = Arc::new(Mutex::new(a.addr()));
    let front = front(Arc::clone(&backend));
    let mut client = Command::new(client_bin())
        .args(["127.0.0.1", &front.port().to_string()])
        .current_dir(&dir.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    let (out_tx, out) = mpsc::channel();
    let stdout = client.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = out_tx.send(line);
        }
    });
    writeln!(stdin, "+ 1 1").unwrap();
    assert_eq!(out.recv_timeout(WAIT).unwrap(), "2");
    // A dies without a word; the front now leads to B.
    *backend.lock().unwrap() = b.addr();
    a.child.kill().unwrap();
    let _ = a.child.wait();
    std::thread::sleep(Duration::from_millis(200));
    writeln!(stdin, "+ 2 2").unwrap();
    assert_eq!(out.recv_timeout(WAIT).unwrap(), "4");
    writeln!(stdin, "q").unwrap();
    drop(stdin);
    let status = common::wait_for_exit(&mut client, WAIT, || "the client did not exit".into());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut client.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("reconnected to 127.0.0.1:{}", front.port())),
        "{stderr}"
    );
}

#[test]
fn a_server_lost_for_good_is_one_line_that_says_what_happened_and_what_was_tried() {
    // Issue 27 friction 3: losing the one server printed `note: A: connection refused by A: is
    // the server running?`, then `error: the server closed the connection`: two lines that
    // seem to disagree, in the wrong order, with the address twice.
    let mut server = Server::start(&[]);
    let port = server.addr().port().to_string();
    let mut client = Command::new(client_bin())
        .args(["--ca", server.ca().to_str().unwrap(), "127.0.0.1", &port])
        .current_dir(&server.dir.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    let mut stdout = BufReader::new(client.stdout.take().unwrap());
    writeln!(stdin, "+ 1 1").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "2\n");
    server.child.kill().unwrap();
    let _ = server.child.wait();
    // The client hears the loss by itself (its reader sees EOF) and tries the address again.
    let status = common::wait_for_exit(&mut client, WAIT, || "the client did not exit".into());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut client.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    // The dying process may still hold its listening socket for a moment after the client's
    // connection ended (the kernel closes a killed process's sockets one by one): then the
    // retry is taken and dropped instead of refused. Either way, one line that says both.
    let refused = format!(
        "error: lost the connection to 127.0.0.1:{port}, and it refuses a new one: is the server \
         running?\n"
    );
    let dropped = format!(
        "error: lost the connection to 127.0.0.1:{port}, and could not connect again: the server \
         closed the connection\n"
    );
    assert!(stderr == refused || stderr == dropped, "{stderr}");
}
