//! Resource limits under attack, each pinned end to end against the real server:
//! slowloris handshakes, clients that never read, running out of descriptors, connection churn,
//! a 100 MiB line, and SIGTERM while 500 clients are mid-conversation.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Server, TestDir, WAIT, cpu_time, fd_count, raw_tcp, rss_kib};
use securetcp::client::Session;

/// These tests load both cores on purpose; run them one at a time so that each measures the
/// server, not its neighbours (cargo runs the tests of one file in parallel).
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
use securetcp::client::reset_on_drop;

#[test]
fn slowloris_handshakes_are_all_closed_while_a_normal_client_is_served() {
    let _alone = one_at_a_time();
    const SLOW: usize = 1000;
    let server = Server::start(&["--handshake-timeout", "2"]);
    let mut slow: Vec<TcpStream> = (0..SLOW).map(|_| raw_tcp(server.addr())).collect();
    // A TLS handshake record, one byte a second: never finishes.
    let hello = [0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01];
    let started = Instant::now();
    for byte in &hello[..2] {
        for s in &mut slow {
            let _ = s.write_all(&[*byte]);
        }
        // Meanwhile a normal client is served, without waiting for the slow ones.
        let t = Instant::now();
        let mut normal = server.connect();
        assert_eq!(normal.request("+ 3 4").unwrap(), "OK 7");
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "normal client waited {:?}",
            t.elapsed()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    // Every slow connection is closed by the server (EOF or reset) once the timeout passed.
    for s in &mut slow {
        s.set_read_timeout(Some(WAIT)).unwrap();
        let (_, _) = common::read_to_end_timed(s);
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let log = server.wait_for_log("reason=handshake-timeout");
    assert!(
        log.matches("reason=handshake-timeout").count() >= SLOW,
        "not all slow handshakes were timed out"
    );
}

#[test]
fn a_client_that_sends_without_reading_is_throttled_then_dropped_and_memory_stays_bounded() {
    let _alone = one_at_a_time();
    let server = Server::start(&["--idle-timeout", "2"]);
    let pid = server.child.id();
    let before = rss_kib(pid);
    let s = server.connect();
    let transport = std::sync::Arc::clone(&s.transport);
    let sender = std::thread::spawn(move || {
        let chunk = "99 * 99\n".repeat(8192);
        let mut sent = 0usize;
        while sent < 200 << 20 && transport.write_all(chunk.as_bytes()).is_ok() {
            sent += chunk.len();
        }
        sent
    });
    // The server stops reading it (its replies are not taken), so the sender blocks; with no byte
    // moving either way it is idle and gets closed.
    let log = server.wait_for_log("reason=idle-timeout");
    let sent = sender.join().unwrap();
    assert!(
        sent < 200 << 20,
        "the server kept reading a client that never reads"
    );
    let after = rss_kib(pid);
    assert!(
        after < before + 16 * 1024,
        "server RSS grew from {before} KiB to {after} KiB"
    );
    assert!(log.contains("event=close reason=idle-timeout"), "{log}");
    drop(s);
}

#[test]
fn out_of_descriptors_pauses_accepting_without_spinning_and_recovers() {
    let _alone = one_at_a_time();
    // 64 descriptors, as `prlimit --nofile=64` would set.
    let dir = TestDir::new("emfile");
    let server = Server::start_limited(
        dir,
        &["127.0.0.1", "0"],
        &["--handshake-timeout", "30"],
        1,
        Some(64),
    );
    let pid = server.child.id();
    // More connections than descriptors: the kernel queues the rest in the backlog, and each
    // takes the place of a silent one at the descriptor limit.
    let hogs: Vec<TcpStream> = (0..100).map(|_| raw_tcp(server.addr())).collect();
    server.wait_for_log("reason=evicted");
    let cpu_before = cpu_time(pid);
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_time(pid) - cpu_before;
    assert!(
        used < Duration::from_millis(300),
        "the reactor spun: {used:?} of CPU in 1 s"
    );
    // Free the descriptors: the server serves again.
    drop(hogs);
    let start = Instant::now();
    loop {
        let attempt = Session::connect("127.0.0.1", server.addr().port(), &server.options())
            .and_then(|mut s| s.request("+ 3 4"));
        match attempt {
            Ok(reply) => {
                assert_eq!(reply, "OK 7");
                break;
            }
            Err(e) => {
                assert!(start.elapsed() < WAIT, "never served again: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Issue 31 item 10, SPEC "Operations (additions)": at the descriptor limit with a client
/// waiting, the accept pause is one `event=accept-paused` line when it begins and one
/// `event=accept-resumed waited=N` when it ends, however many times accepting is retried in
/// between (the old code wrote a line per retry, ten a second).
#[test]
fn the_accept_pause_is_logged_once_when_it_begins_and_once_when_it_ends() {
    let _alone = one_at_a_time();
    const LIMIT: usize = 64;
    let server = Server::start_limited(
        TestDir::new("accept-pause"),
        &["127.0.0.1", "0"],
        &[],
        1,
        Some(LIMIT as u64),
    );
    let pid = server.child.id();
    let session = || {
        let mut s = Session::connect("127.0.0.1", server.addr().port(), &server.options())
            .expect("a session below the descriptor limit");
        s.set_read_timeout(Some(WAIT)).unwrap();
        assert_eq!(s.request("+ 1 1").unwrap(), "OK 2");
        s
    };
    // Greeted sessions (never evicted) up to the last descriptor.
    let mut held = Vec::new();
    while fd_count(pid) < LIMIT {
        held.push(session());
    }
    // Then clients one at a time until one waits in the backlog (the server may have had a
    // descriptor in use for a moment while we counted).
    let waiter = loop {
        let (port, options) = (server.addr().port(), server.options());
        let (done, finished) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let attempt = Session::connect("127.0.0.1", port, &options).and_then(|mut s| {
                s.set_read_timeout(Some(WAIT))?;
                let reply = s.request("+ 3 4")?;
                Ok((s, reply))
            });
            let _ = done.send(());
            attempt
        });
        match finished.recv_timeout(Duration::from_millis(500)) {
            Ok(()) => held.push(waiter.join().unwrap().expect("served below the limit").0),
            Err(_) => break waiter,
        }
        assert!(held.len() < LIMIT, "never out of descriptors");
    };
    server.wait_for_log("event=accept-paused");
    // Twenty retries' worth of pause.
    std::thread::sleep(Duration::from_secs(2));
    let log = server.log();
    assert_eq!(log.matches("event=accept-paused").count(), 1, "{log}");
    assert!(!log.contains("event=accept-resumed"), "{log}");
    // A descriptor frees: the waiter is served, and the pause ends with one line.
    drop(held.pop());
    assert_eq!(waiter.join().unwrap().unwrap().1, "OK 7");
    let log = server.wait_for_log("event=accept-resumed");
    assert!(log.contains("event=accept-resumed waited=1"), "{log}");
    assert_eq!(log.matches("event=accept-paused").count(), 1, "{log}");
    drop(held);
}

#[test]
fn ten_thousand_connections_of_churn_leave_descriptors_and_memory_where_they_were() {
    let _alone = one_at_a_time();
    let server = Server::start(&[]);
    let pid = server.child.id();
    let addr = server.addr();
    let options = server.options();
    let session = move |i: usize| {
        let mut s = Session::connect("127.0.0.1", addr.port(), &options).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        assert_eq!(
            s.request(&format!("{i} + 1")).unwrap(),
            format!("OK {}", i + 1)
        );
        s
    };
    // Warm up the allocator and the table, then count the descriptors.
    for i in 0..300 {
        let mut s = session(i);
        assert_eq!(s.request("q").unwrap(), "BYE session ended");
    }
    std::thread::sleep(Duration::from_millis(300));
    let fds_before = fd_count(pid);

    const CHURN: usize = 10_000;
    let churn = || {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let session = session.clone();
                std::thread::spawn(move || {
                    for i in (w..CHURN).step_by(4) {
                        match i % 4 {
                            // A clean session: request, q, close_notify.
                            0 => {
                                let mut s = session(i);
                                assert_eq!(s.request("q").unwrap(), "BYE session ended");
                            }
                            // A session that ends with a reset after a request.
                            1 => session(i).transport.reset_on_drop(),
                            // Half a handshake, then a reset.
                            2 => {
                                let mut raw = raw_tcp(addr);
                                let _ = raw.write_all(&[0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00]);
                                reset_on_drop(&raw);
                            }
                            // Connect and close before saying anything.
                            _ => drop(raw_tcp(addr)),
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
    };
    let descriptors_back = || {
        let start = Instant::now();
        while fd_count(pid) > fds_before {
            assert!(
                start.elapsed() < WAIT,
                "descriptors leaked: {} > {fds_before}",
                fd_count(pid)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Every connection accepted is logged: each has its close line (a log that fell behind the
    // disk says how many lines it dropped). A connection reset before the server's accept never
    // reaches it, so raw resets may be fewer than sent; TLS sessions all arrive.
    let logged = |at_least: usize| {
        let start = Instant::now();
        loop {
            let log = server.log();
            let dropped: usize = log
                .lines()
                .filter_map(|l| l.split("event=log-dropped lines=").nth(1))
                .filter_map(|n| n.trim().parse::<usize>().ok())
                .sum();
            let opens = log.matches("event=open").count();
            let closes = log.matches("event=close").count();
            if closes + dropped >= opens && opens + dropped >= at_least {
                return;
            }
            assert!(
                start.elapsed() < WAIT,
                "{opens} opened, {closes} closed, {dropped} log lines dropped"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Memory: a leak grows with every round; the allocator's high-water mark does not. How high
    // that mark is depends on how many connections the server held at once and how far its log
    // writer fell behind, that is on how busy the machine was: a later round that happens to
    // pile up more than the ones before raises it by a few MiB (4-5 MiB seen on a loaded 2-core
    // machine, with no byte leaked: heaptrack), and then it stays. So the first round sets the
    // mark, and the server passes once a further round of 10,000 connections leaves RSS less
    // than 1 MiB (about 100 bytes a connection) above where the round before left it; a leak
    // of that size or more grows RSS in every round, and fails after MAX_ROUNDS.
    const MAX_ROUNDS: usize = 6;
    let mut rounds = 1;
    churn();
    descriptors_back();
    logged(300 + CHURN / 2);
    let mut rss = vec![rss_kib(pid)];
    loop {
        churn();
        rounds += 1;
        // Every connection is closed: the descriptors come back (the last ones within a
        // moment), and every close is logged.
        descriptors_back();
        logged(300 + rounds * CHURN / 2);
        let (before, after) = (rss[rss.len() - 1], rss_kib(pid));
        rss.push(after);
        if after < before + 1024 {
            break;
        }
        assert!(
            rounds < MAX_ROUNDS,
            "RSS grew in every round of {CHURN} connections (KiB after each): {rss:?}"
        );
    }
    assert_eq!(fd_count(pid), fds_before, "descriptors leaked");
}

#[test]
fn a_100_mib_line_gets_one_err_and_memory_stays_bounded() {
    let _alone = one_at_a_time();
    let server = Server::start(&[]);
    let pid = server.child.id();
    let before = rss_kib(pid);
    let mut s = server.connect();
    let transport = std::sync::Arc::clone(&s.transport);
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'7'; 1 << 20];
        for _ in 0..100 {
            transport.write_all(&chunk).unwrap();
        }
        transport.write_all(b"\n+ 3 4\n").unwrap();
    });
    assert_eq!(
        s.read_line().unwrap().unwrap(),
        "ERR line too long (limit 4096 bytes)"
    );
    assert_eq!(s.read_line().unwrap().unwrap(), "OK 7");
    sender.join().unwrap();
    let after = rss_kib(pid);
    assert!(
        after < before + 4 * 1024,
        "server RSS grew from {before} KiB to {after} KiB"
    );
}

#[test]
fn sigterm_with_500_clients_mid_conversation_answers_everything_read() {
    let _alone = one_at_a_time();
    const CLIENTS: usize = 500;
    const PIPELINED: usize = 20;
    let mut server = Server::start(&[]);
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let options = server.options();
            let port = server.addr().port();
            std::thread::spawn(move || {
                (0..CLIENTS / 10)
                    .map(|_| {
                        let s = Session::connect("127.0.0.1", port, &options).unwrap();
                        s.set_read_timeout(Some(WAIT)).unwrap();
                        s
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let sessions: Vec<Session> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    // Everyone sends a burst of requests; SIGTERM arrives while they are in flight.
    for (c, s) in sessions.iter().enumerate() {
        let burst: String = (0..PIPELINED)
            .map(|i| format!("{c} * 100 + {i}\n"))
            .collect();
        s.transport.write_all(burst.as_bytes()).unwrap();
    }
    let start = Instant::now();
    server.signal(libc::SIGTERM);
    let mut answered = 0;
    for (c, mut s) in sessions.into_iter().enumerate() {
        let mut i = 0;
        let mut told = false;
        while let Some(line) = s.read_line().unwrap() {
            assert!(!told, "client {c}: {line:?} after the BYE");
            if line == "BYE server shutting down" {
                told = true;
                continue;
            }
            assert_eq!(
                line,
                format!("OK {}", c * 100 + i),
                "client {c}: replies in order"
            );
            i += 1;
        }
        assert!(told, "client {c} was not told the server is shutting down");
        assert!(s.ended_cleanly(), "client {c} got no close_notify");
        answered += i;
    }
    let status = server.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
    // SPEC: exit within 2 s (this also counts the time taken to read 500 sessions here).
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // The log is complete: every request it shows was answered, every connection closed.
    let log = server.log();
    assert_eq!(
        log.matches(" req=").count(),
        answered,
        "requests logged vs replies received"
    );
    assert_eq!(log.matches("event=close").count(), CLIENTS);
    assert!(log.trim_end().ends_with("event=stop"));
}
