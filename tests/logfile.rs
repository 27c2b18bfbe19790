//! The log as an operator meets it, against the real server: signals that must not stop it,
//! rotation with the real `logrotate` and the shipped `deploy/logrotate.conf`, and a disk that
//! fills up (a small tmpfs the test mounts, or a file size limit where it cannot mount) and
//! then has room again.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, TestDir, WAIT};
use securetcp::client::Session;

/// Waits until `path` contains `needle`.
fn wait_for_text(path: &Path, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            start.elapsed() < WAIT,
            "{} never showed {needle:?}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn no_signal_but_int_and_term_stops_the_server_and_usr1_and_hup_reopen_the_log() {
    let mut server = Server::start(&["--workers", "2"]);
    let mut client = server.connect();
    assert_eq!(client.request("+ 1 1").unwrap(), "OK 2");
    let rtmin = libc::SIGRTMIN();
    for signal in [
        libc::SIGUSR2,
        libc::SIGPIPE,
        libc::SIGQUIT,
        libc::SIGALRM,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGIO,
        libc::SIGPWR,
        libc::SIGXFSZ,
        rtmin,
        rtmin + 5,
    ] {
        server.signal(signal);
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            server.child.try_wait().unwrap().is_none(),
            "signal {signal} stopped the server"
        );
        assert_eq!(client.request("+ 2 2").unwrap(), "OK 4", "signal {signal}");
    }
    // SIGUSR1, then SIGHUP: each time the log moved away, the next lines go to a new file by
    // the old name, and the server goes on.
    let log = server.log_path();
    for (signal, moved) in [
        (libc::SIGUSR1, "server.log.1"),
        (libc::SIGHUP, "server.log.2"),
    ] {
        let moved = server.dir.0.join(moved);
        std::fs::rename(&log, &moved).unwrap();
        server.signal(signal);
        // The moment of the reopen is the server's: ask until a reply is logged in the new file.
        let start = Instant::now();
        while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains("reply=\"OK 6\"")) {
            assert_eq!(client.request("+ 3 3").unwrap(), "OK 6");
            assert!(start.elapsed() < WAIT, "signal {signal}: no new log");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(std::fs::read_to_string(&moved).unwrap().contains("reply="));
    }
    assert!(server.stop_with(libc::SIGTERM) < Duration::from_secs(3));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.trim_end().ends_with("event=stop"), "{text}");
    assert!(!server.stderr().contains("panicked"));
}

/// Runs the real logrotate over `config` (its own state file in `dir`), with `bin` first on the
/// PATH.
fn logrotate(dir: &Path, config: &Path, bin: &Path) -> std::process::Output {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("logrotate")
        .args(["--force", "--state"])
        .arg(dir.join("logrotate.state"))
        .arg(config)
        .env("PATH", path)
        .output()
        .unwrap()
}

#[test]
fn logrotate_with_the_shipped_config_rotates_a_running_server_and_nothing_is_lost() {
    if !common::require_program("logrotate", "logrotate") {
        return;
    }
    let mut server = Server::start(&["--workers", "2"]);
    let dir = server.dir.0.clone();
    let log = server.log_path();
    // The shipped configuration, for this log instead of the unit's; `systemctl` is a stand-in
    // that checks what it is asked and signals the server as systemd would.
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/logrotate.conf"
    ))
    .unwrap();
    assert!(shipped.contains("/var/lib/securetcp/server.log {"));
    let config = dir.join("logrotate.conf");
    std::fs::write(
        &config,
        shipped.replace("/var/lib/securetcp/server.log", log.to_str().unwrap()),
    )
    .unwrap();
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let systemctl = bin.join("systemctl");
    std::fs::write(
        &systemctl,
        format!(
            "#!/bin/sh\n\
             [ \"$*\" = 'kill --signal=SIGUSR1 --kill-whom=main securetcp.service' ] || \
             {{ echo \"unexpected: systemctl $*\" >&2; exit 1; }}\n\
             echo \"$*\" >> {calls}\n\
             kill -USR1 {pid}\n",
            calls = dir.join("systemctl.calls").display(),
            pid = server.child.id()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&systemctl, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut client = server.connect();
    let mut rounds = Vec::new();
    for round in 1..=3 {
        // Requests before and during the rotation: each must be in some file, once.
        let question = format!("{round} * 1000");
        assert_eq!(
            client.request(&question).unwrap(),
            format!("OK {}", round * 1000)
        );
        server.wait_for_log(&format!("req=\"{question}\""));
        let out = logrotate(&dir, &config, &bin);
        assert!(
            out.status.success(),
            "logrotate: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // After the signal the server writes a new server.log.
        let after = format!("{round} * 7");
        let start = Instant::now();
        loop {
            assert_eq!(client.request(&after).unwrap(), format!("OK {}", round * 7));
            if std::fs::read_to_string(&log).is_ok_and(|t| t.contains(&format!("\"{after}\""))) {
                break;
            }
            assert!(start.elapsed() < WAIT, "round {round}: no new server.log");
        }
        rounds.push((question, after));
    }
    let calls = std::fs::read_to_string(dir.join("systemctl.calls")).unwrap();
    assert_eq!(calls.lines().count(), 3, "{calls}");
    // Three rotations: server.log.1 is the last one moved, .2.gz and .3.gz the ones before,
    // compressed one rotation late (delaycompress).
    assert!(dir.join("server.log.2.gz").exists() && dir.join("server.log.3.gz").exists());
    let gunzip = |name: &str| {
        let out = Command::new("gzip")
            .args(["-dc"])
            .arg(dir.join(name))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let files = [
        gunzip("server.log.3.gz"),
        gunzip("server.log.2.gz"),
        std::fs::read_to_string(dir.join("server.log.1")).unwrap(),
        std::fs::read_to_string(&log).unwrap(),
    ];
    for (i, (question, after)) in rounds.iter().enumerate() {
        assert!(
            files[i].contains(&format!("\"{question}\"")),
            "{}",
            files[i]
        );
        assert!(
            files[i + 1].contains(&format!("\"{after}\"")),
            "{}",
            files[i + 1]
        );
    }
    // Every line of the session is in exactly one file, none cut.
    let all: String = files.concat();
    assert_eq!(all.matches("event=listen").count(), 1, "{all}");
    assert_eq!(all.matches("event=open").count(), 1, "{all}");
    assert!(all.lines().all(|l| l.starts_with("20") && l.contains('Z')));
    server.stop_with(libc::SIGTERM);
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("event=stop")
    );
}

/// A small file system for the log: a tmpfs the test mounts (and unmounts when dropped), or,
/// where mounting is not allowed, `None`.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        std::fs::create_dir_all(at).unwrap();
        let target = CString::new(at.as_os_str().as_bytes()).unwrap();
        let options = CString::new(format!("size={size},mode=0755")).unwrap();
        // SAFETY: plain C strings that live across the call; mount reads them only.
        let mounted = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                options.as_ptr().cast(),
            )
        } == 0;
        mounted.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let target = CString::new(self.0.as_os_str().as_bytes()).unwrap();
        // SAFETY: a C string that lives across the call.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

/// `securetcp_log_dropped_lines_total` as the metrics endpoint at `metrics` says it now.
fn log_dropped(metrics: std::net::SocketAddr) -> u64 {
    use std::io::Read;
    let mut stream = common::raw_tcp(metrics);
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("securetcp_log_dropped_lines_total "))
        .unwrap_or_else(|| panic!("no dropped count in:\n{text}"))
        .parse()
        .unwrap()
}

/// Every line in the file is whole: a timestamp first, a newline last.
fn assert_whole_lines(text: &str) {
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a half line at the end"
    );
    for line in text.lines() {
        assert!(
            line.len() > 25 && line.starts_with("20") && line.as_bytes()[23] == b'Z',
            "not a whole line: {line:?}"
        );
    }
}

/// How many lines `event=log-dropped lines=N` notes in `text` say were lost.
fn noted_losses(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.split("event=log-dropped lines=").nth(1))
        .map(|rest| rest.split(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[test]
fn a_log_on_dev_full_counts_every_lost_line_and_serves_every_request() {
    let mut server = Server::start_with(
        &["127.0.0.1", "0"],
        &[
            "--workers",
            "2",
            "--log",
            "/dev/full",
            "--metrics",
            "127.0.0.1:0",
        ],
        2,
    );
    let metrics = server.addrs[1];
    let (clients, requests) = (4, 100);
    for c in 0..clients {
        let mut s = server.connect();
        for i in 0..requests {
            assert_eq!(
                s.request(&format!("{c} + {i}")).unwrap(),
                format!("OK {}", c + i)
            );
        }
        assert_eq!(s.request("q").unwrap(), "BYE session ended");
    }
    // Two listen lines, then per client: open, its requests and `q`, close. Each scrape adds
    // a few lines of its own on top (at most 5: open, request line, header end, close).
    let expected = 2 + clients * (requests + 3);
    let start = Instant::now();
    let mut scrapes = 0;
    let dropped = loop {
        let dropped = log_dropped(metrics);
        scrapes += 1;
        if dropped >= expected {
            break dropped;
        }
        assert!(
            start.elapsed() < WAIT,
            "only {dropped} of {expected} counted"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        dropped <= expected + 5 * scrapes,
        "{dropped} > {expected} + 5 x {scrapes}"
    );
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(WAIT).code(), Some(0));
    let stderr = server.stderr();
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("log")).collect();
    assert_eq!(warnings.len(), 1, "one warning per outage:\n{stderr}");
    assert!(warnings[0].contains("/dev/full"), "{stderr}");
}

/// Requests on one session until the server counts lost lines (the disk is full).
fn fill_the_disk(session: &mut Session, metrics: std::net::SocketAddr) -> u64 {
    let start = Instant::now();
    for round in 0.. {
        // 100 requests a round, each about 120 bytes of log.
        for i in 0..100 {
            let question = format!("{round} + {i} + 0000000000000000000000000000000000");
            let answer = session.request(&question).unwrap();
            assert_eq!(answer, format!("OK {}", round + i));
        }
        let dropped = log_dropped(metrics);
        if dropped > 0 {
            return dropped;
        }
        assert!(start.elapsed() < 3 * WAIT, "the disk never filled");
    }
    unreachable!()
}

#[test]
fn a_full_disk_loses_lines_counted_never_half_and_logging_resumes_when_room_is_made() {
    let dir = TestDir::new("full-disk");
    let mount_point = dir.0.join("disk");
    let tmpfs = Tmpfs::mount(&mount_point, "256k");
    let (log, limit_bytes) = match &tmpfs {
        Some(_) => (mount_point.join("server.log"), None),
        None => {
            // Not allowed to mount here: the same outage through a file size limit
            // (RLIMIT_FSIZE, SIGXFSZ ignored as the server does), freed by a rotation.
            println!("note: cannot mount a tmpfs here; using RLIMIT_FSIZE instead");
            (dir.0.join("server.log"), Some(128 * 1024))
        }
    };
    // With the tmpfs: a ballast file leaves the log about 64 KiB, and removing it makes room.
    let ballast = mount_point.join("ballast");
    if tmpfs.is_some() {
        std::fs::write(&ballast, vec![0u8; 192 * 1024]).unwrap();
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_securetcp"));
    if let Some(limit) = limit_bytes {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec only setrlimit and signal (async-signal-safe) run.
        unsafe {
            command.pre_exec(move || {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let rl = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &rl) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let log_arg = log.to_str().unwrap().to_string();
    let mut server = Server::launch(
        command,
        TestDir::borrowed(&dir.0),
        &["127.0.0.1", "0"],
        &["--log", &log_arg, "--metrics", "127.0.0.1:0"],
        2,
        None,
    );
    let metrics = server.addrs[1];
    let mut session = server.connect();
    let lost_first = fill_the_disk(&mut session, metrics);
    assert!(lost_first > 0);
    // Full: more requests, all answered, their lines counted.
    for i in 0..50 {
        assert_eq!(
            session.request(&format!("{i} * 2")).unwrap(),
            format!("OK {}", i * 2)
        );
    }
    // The writer thread counts a line as lost when it fails to write it, a moment after the
    // reply went out: wait for the count, never assert on a snapshot taken too early.
    let start = Instant::now();
    let lost = loop {
        let lost = log_dropped(metrics);
        if lost >= lost_first + 50 {
            break lost;
        }
        assert!(start.elapsed() < WAIT, "only {lost} lines counted as lost");
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert_whole_lines(&text);
    assert!(!text.contains("req=\"49 * 2\""));

    // Room again: remove the ballast (or rotate the file away under the size limit).
    match &tmpfs {
        Some(_) => std::fs::remove_file(&ballast).unwrap(),
        None => {
            std::fs::rename(&log, dir.0.join("server.log.1")).unwrap();
            server.signal(libc::SIGUSR1);
        }
    }
    let start = Instant::now();
    loop {
        assert_eq!(session.request("+ 40 2").unwrap(), "OK 42");
        if std::fs::read_to_string(&log).is_ok_and(|t| t.contains("req=\"+ 40 2\"")) {
            break;
        }
        assert!(start.elapsed() < WAIT, "logging never resumed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = wait_for_text(&log, "req=\"+ 40 2\"");
    assert_whole_lines(&text);
    // The files say how many lines they lack (a disk at the edge of full may take a note now
    // and then), and the metrics agree once every loss is counted.
    let rotated = std::fs::read_to_string(dir.0.join("server.log.1")).unwrap_or_default();
    let noted = noted_losses(&text) + noted_losses(&rotated);
    assert!(noted >= lost, "noted {noted}, counted {lost}");
    let start = Instant::now();
    loop {
        let counted = log_dropped(metrics);
        if counted == noted {
            break;
        }
        assert!(start.elapsed() < WAIT, "counted {counted}, noted {noted}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let note = text
        .lines()
        .find(|l| l.contains("event=log-dropped"))
        .unwrap();
    assert!(note.contains("error="), "{note}");

    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(WAIT).code(), Some(0));
    let stderr = server.stderr();
    let warnings = stderr
        .lines()
        .filter(|l| l.contains("cannot be written"))
        .count();
    assert_eq!(warnings, 1, "one warning per outage:\n{stderr}");
    drop(server);
    drop(tmpfs);
}

#[test]
fn a_log_output_that_takes_nothing_does_not_keep_the_server_from_stopping() {
    use std::io::{BufRead, BufReader};
    use std::os::fd::{FromRawFd, OwnedFd};
    // The log goes to stderr, a pipe nobody reads: once its 64 KiB are full, the writer waits.
    let mut fds = [0; 2];
    // SAFETY: pipe writes two new descriptors into the array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both were just made and are owned here alone.
    let (unread, stderr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let dir = TestDir::new("stuck-log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_securetcp"))
        .args(["--no-tls", "--log", "-", "127.0.0.1", "0"])
        .current_dir(&dir.0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    let addr: std::net::SocketAddr = ready.split(' ').nth(2).unwrap().parse().unwrap();
    let stream = common::raw_tcp(addr);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut line = String::new();
    reader.read_line(&mut line).unwrap(); // HELLO
    // About 300 KB of log, far more than the pipe holds: every request is still answered.
    for i in 0..3000 {
        writer.write_all(format!("{i} + 1\n").as_bytes()).unwrap();
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, format!("OK {}\n", i + 1));
    }
    writer.write_all(b"q\n").unwrap();
    drop((reader, writer));
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    // SAFETY: a signal to the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let pid = child.id() as i32;
    let status = common::wait_for_exit(&mut child, Duration::from_secs(5), || {
        // SAFETY: as above; the server must not outlive the test.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        "the server did not stop while its log output took nothing".to_string()
    });
    assert_eq!(status.code(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(unread);
}

#[test]
fn a_log_that_is_a_fifo_nobody_reads_is_a_start_error_not_a_hang() {
    use std::os::unix::ffi::OsStrExt;
    let dir = TestDir::new("fifo-log");
    let fifo = dir.0.join("server.log");
    let path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: a C string that lives across the call.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let (status, stdout, stderr) = common::run_server(
        &dir.0,
        &["--no-tls", "--log", "server.log", "127.0.0.1", "0"],
    );
    assert_eq!(status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("cannot open log server.log: a FIFO nobody reads"),
        "{stderr}"
    );
}

#[test]
fn the_metrics_listen_line_is_logged_at_the_start_not_at_the_stop() {
    let server = Server::start_with(
        &["127.0.0.1", "0"],
        &["--no-tls", "--metrics", "127.0.0.1:0"],
        2,
    );
    let _client = common::raw_tcp(server.addr());
    let log = server.wait_for_log("event=open");
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines[0].contains("event=listen") && lines[0].contains("service=calc"),
        "{log}"
    );
    assert!(
        lines[1].contains("event=listen") && lines[1].contains("service=metrics"),
        "{log}"
    );
}
