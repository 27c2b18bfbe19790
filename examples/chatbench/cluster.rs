//! The bench's own cluster (`--cluster`, `--chaos`): a `redis-server` and two securetcp instances
//! joined through it, on loopback ports chosen at run time, in a temporary directory of their
//! own. Redis can be killed and started again on the same port (`--chaos`); the CPU time each
//! process used is read from /proc. Everything started here is ended here, by the PIDs it got;
//! no other Redis is touched.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a process may take to be ready (Redis answering PING, an instance's ready line).
const START_WAIT: Duration = Duration::from_secs(15);

/// What to start.
pub struct Setup {
    /// The securetcp binary of both instances (one build: the cost of a build is compared by
    /// running the bench once per build).
    pub server: PathBuf,
    pub redis_server: PathBuf,
    /// `--workers` of each instance.
    pub workers: usize,
    /// `--rate-limit 0` to each instance: members not paced (builds before the pace had none).
    pub unpaced: bool,
    /// Redis's password (`requirepass`), given to the instances in `SECURETCP_REDIS_PASSWORD`;
    /// `None` for builds from before Redis passwords.
    pub password: Option<String>,
    /// Leave the directory (the instances' logs and stderr) for a look afterwards.
    pub keep: bool,
}

/// A securetcp instance of the cluster.
pub struct Instance {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
}

/// The running cluster; dropping it ends its processes and removes its directory.
pub struct Cluster {
    dir: PathBuf,
    pub ca: PathBuf,
    redis_server: PathBuf,
    redis_conf: PathBuf,
    pub redis_port: u16,
    password: Option<String>,
    redis: Option<Child>,
    pub instances: Vec<Instance>,
    keep: bool,
}

impl Cluster {
    /// Redis first, then the two instances (each waited for). Errors: a program that does not
    /// start or is not ready within [`START_WAIT`], as a sentence.
    pub fn start(setup: &Setup) -> Result<Cluster, String> {
        let dir = std::env::temp_dir().join(format!("chatbench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let certs = securetcp::tls::generate_dev_certs(&dir, &[])?;
        let redis_port = free_port()?;
        let redis_conf = dir.join("redis.conf");
        let mut conf = format!(
            "port {redis_port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\n",
            dir.display()
        );
        if let Some(password) = &setup.password {
            conf.push_str(&format!("requirepass {password}\n"));
        }
        write_private(&redis_conf, &conf)?;
        let mut cluster = Cluster {
            dir,
            ca: certs.ca.clone(),
            redis_server: setup.redis_server.clone(),
            redis_conf,
            redis_port,
            password: setup.password.clone(),
            redis: None,
            instances: Vec::new(),
            keep: setup.keep,
        };
        cluster.start_redis()?;
        let url = format!("redis://127.0.0.1:{redis_port}");
        for name in ["a", "b"] {
            let log = cluster.dir.join(format!("{name}.log"));
            let mut command = Command::new(&setup.server);
            command
                .args(["--service", "chat", "--chat-redis", &url])
                .arg("--cert")
                .arg(&certs.cert)
                .arg("--key")
                .arg(&certs.key)
                .arg("--log")
                .arg(&log)
                .args(["--workers", &setup.workers.to_string()])
                .args(
                    setup
                        .unpaced
                        .then_some(["--rate-limit", "0"])
                        .into_iter()
                        .flatten(),
                )
                .args(["127.0.0.1", "0"])
                .current_dir(&cluster.dir)
                .env_remove("SECURETCP_REDIS_PASSWORD");
            if let Some(password) = &setup.password {
                command.env("SECURETCP_REDIS_PASSWORD", password);
            }
            let stderr = std::fs::File::create(cluster.dir.join(format!("{name}.stderr")))
                .map_err(|e| e.to_string())?;
            let mut child = command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(stderr)
                .spawn()
                .map_err(|e| format!("{}: {e}", setup.server.display()))?;
            let addr = ready_line(&mut child);
            // Held before the error check, so that Drop ends it either way.
            cluster.instances.push(Instance {
                child,
                addr: addr?,
                log,
            });
        }
        Ok(cluster)
    }

    /// Starts Redis on its port and waits until it answers PING.
    pub fn start_redis(&mut self) -> Result<(), String> {
        let child = Command::new(&self.redis_server)
            .arg(&self.redis_conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "{}: {e} (install Debian's package redis-server)",
                    self.redis_server.display()
                )
            })?;
        self.redis = Some(child);
        let start = Instant::now();
        while !self.redis_answers() {
            if start.elapsed() > START_WAIT {
                return Err("redis-server did not answer PING".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// SIGKILL to Redis (no shutdown, no goodbye to its clients), waited for.
    pub fn kill_redis(&mut self) {
        if let Some(mut child) = self.redis.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn redis_answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, self.redis_port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut ask = String::new();
        if let Some(password) = &self.password {
            ask.push_str(&format!("AUTH {password}\r\n"));
        }
        ask.push_str("PING\r\n");
        if stream.write_all(ask.as_bytes()).is_err() {
            return false;
        }
        // `+OK` to AUTH first, if sent; Redis keeps the connection open, so read line by line.
        let mut reader = BufReader::new(stream).take(256);
        let mut answer = String::new();
        while reader.read_line(&mut answer).is_ok_and(|n| n > 0) {
            if answer.ends_with("+PONG\r\n") {
                return true;
            }
        }
        false
    }

    /// CPU time (user + system) each instance has used so far.
    pub fn instances_cpu(&self) -> Vec<Duration> {
        self.instances
            .iter()
            .map(|i| securetcp::procstat::cpu_time(i.child.id()).unwrap_or_default())
            .collect()
    }

    /// CPU time the running Redis has used (since it was last started).
    pub fn redis_cpu(&self) -> Duration {
        self.redis
            .as_ref()
            .and_then(|r| securetcp::procstat::cpu_time(r.id()))
            .unwrap_or_default()
    }

    /// How many lines of instance `i`'s log contain `needle` (`event=bus-down`).
    pub fn log_count(&self, i: usize, needle: &str) -> usize {
        std::fs::read_to_string(&self.instances[i].log)
            .unwrap_or_default()
            .matches(needle)
            .count()
    }

    /// Whether every instance is still running.
    pub fn instances_alive(&mut self) -> bool {
        self.instances
            .iter_mut()
            .all(|i| matches!(i.child.try_wait(), Ok(None)))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for instance in &mut self.instances {
            let _ = instance.child.kill();
            let _ = instance.child.wait();
        }
        self.kill_redis();
        if self.keep {
            println!("kept: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A loopback port free now (Redis is started on it at once).
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Written readable by this user only (Redis's configuration holds the password).
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The address of an instance's ready line (`listening on 127.0.0.1:PORT (tls, chat)`); its
/// stdout is read (and dropped) on a thread of its own from then on.
fn ready_line(child: &mut Child) -> Result<SocketAddr, String> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let addr = line
                .strip_prefix("listening on ")
                .and_then(|rest| rest.split(' ').next())
                .and_then(|addr| addr.parse::<SocketAddr>().ok());
            if let Some(addr) = addr {
                let _ = tx.send(addr);
            }
        }
    });
    rx.recv_timeout(START_WAIT)
        .map_err(|_| "an instance printed no ready line (see its .stderr)".to_string())
}
