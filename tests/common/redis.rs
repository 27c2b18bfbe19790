//! A `redis-server` of a test's own (Debian's package) on a loopback port chosen at run time,
//! with extra configuration lines, ended with the test: shared by tests/cluster.rs and
//! tests/chat_redis.rs.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long `redis-server` may take to answer PING after it is started.
const START_WAIT: Duration = Duration::from_secs(15);

/// A running `redis-server`, killed when dropped.
pub struct Redis {
    child: Child,
    pub port: u16,
    args: Vec<String>,
    /// What `ask` sends first (`AUTH ...`), if Redis needs it.
    auth: Option<String>,
}

impl Redis {
    /// On a free loopback port, with `args` as extra configuration and `auth` sent before each
    /// `ask`.
    pub fn start(args: &[&str], auth: Option<&str>) -> Redis {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let args = args.iter().map(|a| a.to_string()).collect();
        Redis::start_on(port, args, auth.map(str::to_string))
    }

    /// On `port` (again, after a kill); waits until it answers PING.
    pub fn start_on(port: u16, args: Vec<String>, auth: Option<String>) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (Debian package redis-server; .ci/run installs it)");
        let redis = Redis {
            child,
            port,
            args,
            auth,
        };
        let start = Instant::now();
        while redis.ask("PING").as_deref() != Some("+PONG") {
            assert!(start.elapsed() < START_WAIT, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    /// Ends `child`, a redis-server the test started its own way (TLS only, say) on `port`,
    /// with the test.
    pub fn adopt(child: Child, port: u16) -> Redis {
        Redis {
            child,
            port,
            args: Vec::new(),
            auth: None,
        }
    }

    /// One command (inline form), after AUTH if needed; Redis's one-line answer.
    pub fn ask(&self, command: &str) -> Option<String> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        let mut reader = BufReader::new(stream.try_clone().ok()?);
        let mut line = String::new();
        if let Some(auth) = &self.auth {
            stream.write_all(format!("{auth}\r\n").as_bytes()).ok()?;
            reader.read_line(&mut line).ok()?;
            line.clear();
        }
        stream.write_all(format!("{command}\r\n").as_bytes()).ok()?;
        reader.read_line(&mut line).ok()?;
        Some(line.trim_end().to_string())
    }

    /// A number of `INFO stats` (`total_connections_received`, say), after AUTH if needed.
    pub fn stat(&self, field: &str) -> Option<u64> {
        use std::io::Read;
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        let mut reader = BufReader::new(stream.try_clone().ok()?);
        let mut line = String::new();
        if let Some(auth) = &self.auth {
            stream.write_all(format!("{auth}\r\n").as_bytes()).ok()?;
            reader.read_line(&mut line).ok()?;
            line.clear();
        }
        stream.write_all(b"INFO stats\r\n").ok()?;
        reader.read_line(&mut line).ok()?;
        let len: usize = line.trim_end().strip_prefix('$')?.parse().ok()?;
        let mut body = vec![0; len];
        reader.read_exact(&mut body).ok()?;
        String::from_utf8_lossy(&body).lines().find_map(|l| {
            l.strip_prefix(field)?
                .strip_prefix(':')?
                .trim()
                .parse()
                .ok()
        })
    }

    /// The `--chat-redis` URL; `credentials` is `""`, `":password@"` or `"user:password@"`.
    pub fn url(&self, credentials: &str) -> String {
        format!("redis://{credentials}127.0.0.1:{}", self.port)
    }

    /// Sends `signal` (SIGSTOP, SIGCONT) to this redis-server.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill() sends a signal to the redis-server this test started.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills this redis-server now and starts it again on the same port with the same
    /// configuration after `delay`, on another thread (the test goes on meanwhile).
    pub fn kill_and_restart_after(&mut self, delay: Duration) -> JoinHandle<Redis> {
        self.kill();
        let (port, args) = (self.port, self.args.clone());
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            Redis::start_on(port, args, None)
        })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
