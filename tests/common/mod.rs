//! Test helpers: start the real server binary in its own directory on 127.0.0.1:0, wait for
//! its ready line, and talk to it with real TLS using the CA it generated.
#![allow(dead_code)] // each test file uses a different part of this module

pub mod certs;
pub mod mtls;
pub mod pty;
pub mod redis;
mod require;
pub mod room;

#[allow(unused_imports)] // only the tests that drive an outside program use it
pub use require::require_program;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use securetcp::client::{ClientOptions, Session};

/// Long enough for a debug build on a loaded 2-core machine, short enough that a hang fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// A directory of its own for one test, removed when dropped (unless borrowed).
pub struct TestDir(pub PathBuf, bool);

impl TestDir {
    pub fn new(tag: &str) -> TestDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("securetcp-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TestDir(dir, true)
    }

    /// Another handle on a directory someone else owns and removes.
    pub fn borrowed(path: &Path) -> TestDir {
        TestDir(path.to_path_buf(), false)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub struct Server {
    pub child: Child,
    pub addrs: Vec<SocketAddr>,
    pub dir: TestDir,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Server {
    /// Starts `securetcp 127.0.0.1 0 ARGS...` and waits for `listeners` ready lines.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with(&["127.0.0.1", "0"], args, 1)
    }

    pub fn start_with(address: &[&str], args: &[&str], listeners: usize) -> Server {
        Server::start_in(TestDir::new("server"), address, args, listeners)
    }

    /// Starts the server with `--metrics` on a port of its own; the server and that address.
    pub fn start_with_metrics(args: &[&str]) -> (Server, SocketAddr) {
        let args: Vec<&str> = args
            .iter()
            .copied()
            .chain(["--metrics", "127.0.0.1:0"])
            .collect();
        let server = Server::start_with(&["127.0.0.1", "0"], &args, 2);
        let metrics = server.addrs[1];
        (server, metrics)
    }

    pub fn start_in(dir: TestDir, address: &[&str], args: &[&str], listeners: usize) -> Server {
        Server::start_limited(dir, address, args, listeners, None)
    }

    /// Starts the server with its descriptor limit (soft and hard) set to `nofile`, as
    /// `prlimit --nofile=N` would, without needing prlimit.
    pub fn start_limited(
        dir: TestDir,
        address: &[&str],
        args: &[&str],
        listeners: usize,
        nofile: Option<u64>,
    ) -> Server {
        Server::launch(
            Command::new(env!("CARGO_BIN_EXE_securetcp")),
            dir,
            address,
            args,
            listeners,
            nofile,
        )
    }

    /// Starts an example server (`blocking_server`) the same way, in a fresh directory.
    pub fn start_example(name: &str, args: &[&str]) -> Server {
        let command = Command::new(example_bin(name));
        Server::launch(command, TestDir::new(name), &[], args, 1, None)
    }

    pub fn launch(
        mut command: Command,
        dir: TestDir,
        address: &[&str],
        args: &[&str],
        listeners: usize,
        nofile: Option<u64>,
    ) -> Server {
        if let Some(limit) = nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: between fork and exec only setrlimit (async-signal-safe) runs.
            unsafe {
                command.pre_exec(move || {
                    let rl = libc::rlimit {
                        rlim_cur: limit as libc::rlim_t,
                        rlim_max: limit as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command
            .args(address)
            .args(args)
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server");
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut addrs = Vec::new();
        while addrs.len() < listeners {
            let line = rx.recv_timeout(WAIT).unwrap_or_else(|_| {
                panic!("no ready line from the server; stderr: {:?}", child.kill())
            });
            // "listening on 127.0.0.1:5000 (tls, calc)"
            let addr = line
                .strip_prefix("listening on ")
                .and_then(|rest| rest.split(' ').next())
                .unwrap_or_else(|| panic!("unexpected ready line: {line}"));
            addrs.push(addr.parse().unwrap());
        }
        Server {
            child,
            addrs,
            dir,
            stderr: Some(stderr),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.0.join("certs/ca.pem")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.0.join("server.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Waits until the log contains `needle` (the log is written once per loop turn).
    pub fn wait_for_log(&self, needle: &str) -> String {
        self.wait_for_log_count(needle, 1)
    }

    /// Waits until the log shows `needle` at least `times` times (the log is written by a
    /// thread of its own, a moment after the event it records).
    pub fn wait_for_log_count(&self, needle: &str, times: usize) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.matches(needle).count() >= times {
                return log;
            }
            assert!(
                start.elapsed() < WAIT,
                "log never showed {needle:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn options(&self) -> ClientOptions {
        ClientOptions {
            ca: Some(self.ca()),
            ..ClientOptions::default()
        }
    }

    /// A TLS session that has read the greeting.
    pub fn connect(&self) -> Session {
        self.connect_to(self.addr())
    }

    pub fn connect_to(&self, addr: SocketAddr) -> Session {
        let session = Session::connect(&addr.ip().to_string(), addr.port(), &self.options())
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        session.set_read_timeout(Some(WAIT)).unwrap();
        session
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill() only sends a signal to the child we started.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Sends `signal`, checks the server exits with 0 (within 5 s), returns how long it took.
    pub fn stop_with(&mut self, signal: i32) -> Duration {
        let start = Instant::now();
        self.signal(signal);
        let status = self.wait_exit(Duration::from_secs(5));
        assert_eq!(status.code(), Some(0));
        start.elapsed()
    }

    /// Waits for the server to exit by itself, within `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        wait_for_exit(&mut self.child, limit, || {
            format!("the server did not exit within {limit:?}")
        })
    }

    /// Whether stderr so far contains `needle` (ends the server's stderr capture).
    pub fn stderr_now_contains(&mut self, needle: &str) -> bool {
        self.signal(libc::SIGTERM);
        let _ = self.wait_exit(WAIT);
        self.stderr().contains(needle)
    }

    pub fn stderr(&mut self) -> String {
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens `threads` x `per_thread` sessions at once (handshakes overlap), each answering one
/// request, then asks each a second question once all are open: every one is still served.
pub fn many_concurrent_clients(server: &Server, threads: usize, per_thread: usize) -> Vec<Session> {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (options, port) = (server.options(), server.addr().port());
            std::thread::spawn(move || {
                (0..per_thread)
                    .map(|i| {
                        let mut s = Session::connect("127.0.0.1", port, &options).unwrap();
                        s.set_read_timeout(Some(WAIT)).unwrap();
                        let n = t * 1000 + i;
                        assert_eq!(
                            s.request(&format!("{n} * 2")).unwrap(),
                            format!("OK {}", n * 2)
                        );
                        s
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<Session> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(all.len(), threads * per_thread);
    for s in &mut all {
        assert_eq!(s.request("+ 1 1").unwrap(), "OK 2");
    }
    all
}

/// Waits for `child` to exit by itself within `limit`; past it, fails with `why()`.
pub fn wait_for_exit(child: &mut Child, limit: Duration, why: impl Fn() -> String) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < limit, "{}", why());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs the server binary to completion (for start-up errors), bounded in time.
pub fn run_server(dir: &Path, args: &[&str]) -> (ExitStatus, String, String) {
    run_bounded(
        Command::new(env!("CARGO_BIN_EXE_securetcp"))
            .args(args)
            .current_dir(dir),
        None,
    )
}

/// The terminal client's binary, `securetcp-client` (the workspace member client/), built once
/// per test process as `cargo build -p securetcp-client` builds it.
pub fn client_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            cargo(&["build", "--quiet", "-p", "securetcp-client"]).join("securetcp-client")
        })
        .clone()
}

/// An example's binary. `cargo test` builds the examples, but `cargo test --test NAME` does not,
/// so they are (re)built once per test process to be sure they are current.
pub fn example_bin(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let examples = BUILT.get_or_init(|| {
        // With the `gui` feature on (the GUI tests), the GUI example is built too.
        let gui: &[&str] = if cfg!(feature = "gui") {
            &["--features", "gui"]
        } else {
            &[]
        };
        cargo(&[&["build", "--quiet", "--examples"], gui].concat()).join("examples")
    });
    examples.join(name)
}

/// Runs `cargo ARGS` on this package as a person would (a nested build, in the test's own
/// target directory); panics unless it succeeds. Returns the profile's directory
/// (`target/debug`).
pub fn cargo(args: &[&str]) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let status = cargo_command(args).status().expect("run cargo");
    assert!(status.success(), "cargo {args:?} failed");
    dir
}

/// `cargo ARGS` on this package, as a person would type it in the checkout.
pub fn cargo_command(args: &[&str]) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    // Cargo sets these for the test binary; a nested build that sees them thinks the
    // environment changed and rebuilds dependencies (ring watches CARGO_MANIFEST_DIR).
    for (key, _) in std::env::vars() {
        let set_for_tests = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_",
            "CARGO_TARGET_TMPDIR",
        ];
        if set_for_tests.iter().any(|prefix| key.starts_with(prefix)) || key == "OUT_DIR" {
            command.env_remove(key);
        }
    }
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

/// Runs the client with `args` and `stdin`, in `dir`; returns (status, stdout, stderr).
pub fn run_client(dir: &Path, args: &[&str], stdin: Option<&str>) -> (ExitStatus, String, String) {
    run_bounded(
        Command::new(client_bin()).args(args).current_dir(dir),
        stdin,
    )
}

fn run_bounded(command: &mut Command, stdin: Option<&str>) -> (ExitStatus, String, String) {
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).unwrap();
    }
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > WAIT {
            let _ = child.kill();
            panic!("process did not finish within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status, out.join().unwrap(), err.join().unwrap())
}

/// A raw TCP connection with a read timeout, for speaking something other than TLS.
pub fn raw_tcp(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
}

/// Reads until EOF or a reset; returns what arrived and how long it took.
pub fn read_to_end_timed(stream: &mut TcpStream) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("connection still open after {:?}", start.elapsed())
            }
            Err(_) => break, // reset: closed all the same
        }
    }
    (all, start.elapsed())
}

/// Resident memory of a process in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    securetcp::procstat::rss_kib(pid).expect("VmRSS in /proc")
}

/// Open descriptors of a process.
pub fn fd_count(pid: u32) -> usize {
    securetcp::procstat::fd_count(pid).expect("/proc/PID/fd")
}

/// CPU time (user + system) a process has used.
pub fn cpu_time(pid: u32) -> Duration {
    securetcp::procstat::cpu_time(pid).expect("/proc/PID/stat")
}
