//! Listening sockets that are not what they should be, against the real server: sockets passed
//! by a service manager (LISTEN_FDS) that do not listen, a listener that stops listening while
//! the server runs, and a second server started on a port that is taken.

mod common;

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, TestDir, WAIT, cpu_time, run_server};

/// The server as systemd starts it with socket activation: `fds` become descriptors 3, 4, ...,
/// `LISTEN_FDS` says how many there are (`count`, which may claim more), and `LISTEN_PID` is the
/// server's own pid (`sh` sets it to its own and execs the server, which keeps it).
fn activated(fds: &[RawFd], count: usize, args: &[&str]) -> Command {
    let mut command = Command::new("sh");
    command
        .args([
            "-c",
            &format!(
                "LISTEN_PID=$$ LISTEN_FDS={count} exec {} \"$@\"",
                env!("CARGO_BIN_EXE_securetcp")
            ),
            "securetcp",
        ])
        .args(args);
    let fds = fds.to_vec();
    // SAFETY: between fork and exec only fcntl, dup2 and close (async-signal-safe) run: each fd
    // is first moved out of the way (above 100), then onto 3, 4, ... and kept across exec.
    unsafe {
        command.pre_exec(move || {
            let mut high = Vec::with_capacity(fds.len());
            for &fd in &fds {
                let moved = libc::fcntl(fd, libc::F_DUPFD, 100);
                if moved < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                high.push(moved);
            }
            for (i, &fd) in high.iter().enumerate() {
                let target = 3 + i as RawFd;
                if libc::dup2(fd, target) < 0 || libc::fcntl(target, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // What LISTEN_FDS claims beyond them is surely not open (the test harness may have
            // inherited descriptors there, such as a jobserver's).
            for missing in 3 + high.len()..3 + count {
                libc::close(missing as RawFd);
            }
            Ok(())
        });
    }
    command
}

/// Runs `command` in `dir` until it exits (killed after WAIT): its exit code, stdout, stderr.
fn run_to_exit(mut command: Command, dir: &TestDir) -> (Option<i32>, String, String) {
    let mut child: Child = command
        .current_dir(&dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > WAIT {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {WAIT:?}: stdout {:?}, stderr {:?}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn passed_sockets_that_do_not_listen_on_tcp_are_a_start_error_naming_them() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let bound = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    bound
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    // What `Accept=yes` passes: one accepted connection.
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let unix_dir = TestDir::new("unix-listener");
    let unix = std::os::unix::net::UnixListener::bind(unix_dir.0.join("s")).unwrap();
    let cases: [(Vec<RawFd>, usize, &str); 6] = [
        (
            vec![udp.as_raw_fd()],
            1,
            "descriptor 3 passed by systemd (LISTEN_FDS) is not a listening TCP socket: it is a UDP socket",
        ),
        (
            vec![bound.as_raw_fd()],
            1,
            "descriptor 3 passed by systemd (LISTEN_FDS) is not a listening TCP socket: it is a TCP socket that is not listening",
        ),
        (
            vec![accepted.as_raw_fd()],
            1,
            "descriptor 3 passed by systemd (LISTEN_FDS) is not a listening TCP socket: it is a connected TCP socket",
        ),
        (
            vec![unix.as_raw_fd()],
            1,
            "descriptor 3 passed by systemd (LISTEN_FDS) is not a listening TCP socket: it is a Unix socket",
        ),
        // A good one first, a bad one second: the second is named.
        (
            vec![listener.as_raw_fd(), udp.as_raw_fd()],
            2,
            "descriptor 4 passed by systemd (LISTEN_FDS) is not a listening TCP socket: it is a UDP socket",
        ),
        (
            vec![listener.as_raw_fd()],
            2,
            "descriptor 4 passed by systemd (LISTEN_FDS) is not a listening TCP socket: it is not open",
        ),
    ];
    for (fds, count, said) in cases {
        let dir = TestDir::new("passed");
        let (code, stdout, stderr) = run_to_exit(activated(&fds, count, &["--no-tls"]), &dir);
        assert_eq!(
            code,
            Some(1),
            "{said}: stdout {stdout:?}, stderr {stderr:?}"
        );
        assert!(stdout.is_empty(), "a ready line: {stdout}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.contains("--no-tls")).collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(
            lines[0].starts_with(&format!("securetcp: {said}")),
            "{stderr}"
        );
    }
    drop(client);
}

#[test]
fn a_listener_that_stops_listening_never_spins_the_loop_and_sigterm_is_served() {
    // The server serves a socket passed to it; the test keeps a copy of that socket and makes
    // it stop listening (shutdown), so that every accept fails with EINVAL from then on.
    let passed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut command = activated(&[passed.as_raw_fd()], 1, &["--workers", "2"]);
    command.args(["--handshake-timeout", "2"]);
    let mut server = Server::launch(command, TestDir::new("stops-listening"), &[], &[], 1, None);
    assert_eq!(server.connect().request("+ 1 1").unwrap(), "OK 2");
    // SAFETY: shutdown on a descriptor this test owns.
    assert_eq!(
        unsafe { libc::shutdown(passed.as_raw_fd(), libc::SHUT_RD) },
        0
    );
    std::thread::sleep(Duration::from_millis(200));
    let pid = server.child.id();
    let before = cpu_time(pid);
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_time(pid) - before;
    assert!(used < Duration::from_millis(300), "{used:?} of CPU in 1 s");
    // The log says why nobody is accepted any more.
    server.wait_for_log("event=accept-paused error=\"Invalid argument");
    let took = server.stop_with(libc::SIGTERM);
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn a_second_server_with_workers_on_a_taken_port_fails_to_start() {
    let first = Server::start(&["--workers", "2", "--no-tls"]);
    let port = first.addr().port().to_string();
    let dir = TestDir::new("second");
    for workers in ["2", "1", "3"] {
        let (status, stdout, stderr) = run_server(
            &dir.0,
            &[
                "--workers",
                workers,
                "--no-tls",
                "--service",
                "quiz",
                "127.0.0.1",
                &port,
            ],
        );
        assert_eq!(
            status.code(),
            Some(1),
            "{workers} workers: {stdout}{stderr}"
        );
        assert!(stdout.is_empty(), "{stdout}");
        assert!(
            stderr.contains(&format!("cannot listen on 127.0.0.1:{port}"))
                && stderr.contains("in use"),
            "{stderr}"
        );
    }
    // The first goes on alone: every client reaches it (a calc server, not a quiz).
    for _ in 0..8 {
        let mut stream = common::raw_tcp(first.addr());
        let mut greeting = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(&mut stream), &mut greeting)
            .unwrap();
        assert!(greeting.starts_with("HELLO calc"), "{greeting}");
    }
}
