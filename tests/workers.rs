//! `--workers N`: several reactors in one process, each with its own SO_REUSEPORT socket, sharing
//! only the limits, the log, the conn ids and the chat room. Real binary, real TLS, loopback.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Server, WAIT};
use securetcp::client::{ClientError, Session};

/// The worker each open connection landed on, by its client port (`worker=` on the open line).
fn workers_by_port(server: &Server) -> HashMap<u16, usize> {
    server
        .log()
        .lines()
        .filter(|l| l.contains("event=open"))
        .filter_map(|l| {
            let field = |key: &str| {
                l.split(' ')
                    .find_map(|kv| kv.strip_prefix(key))
                    .map(str::to_string)
            };
            let worker = field("worker=")?.parse().ok()?;
            let peer: SocketAddr = field("peer=")?.parse().ok()?;
            Some((peer.port(), worker))
        })
        .collect()
}

fn worker_of(server: &Server, session: &Session) -> usize {
    let port = session.local_addr().unwrap().port();
    let start = Instant::now();
    loop {
        if let Some(&w) = workers_by_port(server).get(&port) {
            return w;
        }
        assert!(start.elapsed() < WAIT, "no open line for port {port}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Opens sessions until `per_worker` are on each of `workers` workers (the kernel picks).
fn sessions_on_every_worker(
    server: &Server,
    workers: usize,
    per_worker: usize,
) -> Vec<Vec<Session>> {
    let mut by_worker: Vec<Vec<Session>> = (0..workers).map(|_| Vec::new()).collect();
    for _ in 0..200 {
        if by_worker.iter().all(|w| w.len() >= per_worker) {
            return by_worker;
        }
        let session = server.connect();
        let w = worker_of(server, &session);
        if by_worker[w].len() < per_worker {
            by_worker[w].push(session);
        }
    }
    panic!("200 connections never reached every worker");
}

#[test]
fn the_ready_line_names_the_workers_and_every_worker_serves() {
    let server = Server::start(&["--workers", "2"]);
    let log = server.wait_for_log("event=listen");
    assert!(log.contains("workers=2"), "{log}");
    let on_each = sessions_on_every_worker(&server, 2, 1);
    for mut s in on_each.into_iter().flatten() {
        assert_eq!(s.request("+ 3 4").unwrap(), "OK 7");
    }
}

#[test]
fn two_workers_serve_two_hundred_concurrent_clients() {
    let server = Server::start(&["--workers", "2"]);
    let _all = common::many_concurrent_clients(&server, 8, 25);
    // Both workers took a share, and every conn id in the log is unique.
    let log = server.wait_for_log("conn=200 ");
    let opens: Vec<&str> = log.lines().filter(|l| l.contains("event=open")).collect();
    assert_eq!(opens.len(), 200);
    let ids: HashSet<&str> = opens.iter().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(ids.len(), 200, "conn ids repeat");
    let per_worker = workers_by_port(&server);
    for w in 0..2 {
        assert!(
            per_worker.values().any(|&x| x == w),
            "worker {w} served nobody"
        );
    }
}

#[test]
fn max_clients_counts_the_whole_process() {
    let server = Server::start(&["--workers", "2", "--max-clients", "3"]);
    // Three places, whichever worker each lands on; the fourth client is told busy.
    let mut seated: Vec<Session> = (0..3).map(|_| server.connect()).collect();
    for _ in 0..6 {
        match Session::connect("127.0.0.1", server.addr().port(), &server.options()) {
            Err(ClientError::Busy) => {}
            Err(other) => panic!("expected busy, got {other}"),
            Ok(_) => panic!("a fourth client was served with --max-clients 3"),
        }
    }
    // One leaves: the next is served at once, on whichever worker.
    assert_eq!(seated[0].request("q").unwrap(), "BYE session ended");
    drop(seated.remove(0));
    server.wait_for_log("reason=quit");
    let mut next = server.connect();
    assert_eq!(next.request("1 + 1").unwrap(), "OK 2");
}

#[test]
fn one_chat_room_spans_the_workers() {
    let server = Server::start(&["--workers", "2", "--service", "chat"]);
    let mut members: Vec<(String, Session)> = sessions_on_every_worker(&server, 2, 5)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, s)| (format!("m{i}"), s))
        .collect();
    // Log in one by one; everyone already in hears each JOIN.
    for i in 0..members.len() {
        let name = members[i].0.clone();
        let welcome = members[i].1.request(&format!("name {name}")).unwrap();
        assert_eq!(welcome, format!("OK welcome {name}, {} online", i + 1));
        for (_, earlier) in &mut members[..i] {
            assert_eq!(
                earlier.read_line().unwrap().unwrap(),
                format!("JOIN {name}")
            );
        }
    }
    // A name taken on the other worker is taken.
    let mut late = server.connect();
    assert_eq!(late.request("name m3").unwrap(), "ERR name taken");
    // Everyone sends three messages; everyone gets every other's, each sender's in order.
    for (name, s) in &members {
        for k in 0..3 {
            s.send_line(&format!("{name} says {k}")).unwrap();
        }
    }
    for (me, s) in &mut members {
        let mut next_from: HashMap<String, usize> = HashMap::new();
        for _ in 0..(9 * 3) {
            let line = s.read_line().unwrap().unwrap();
            let text = line
                .strip_prefix("MSG ")
                .unwrap_or_else(|| panic!("{me} got {line}"));
            let (from, said) = text.split_once(' ').unwrap();
            assert_ne!(from, me.as_str());
            let k = next_from.entry(from.to_string()).or_default();
            assert_eq!(
                said,
                format!("{from} says {k}"),
                "{me}: out of order from {from}"
            );
            *k += 1;
        }
        assert_eq!(next_from.len(), 9);
    }
    // `who` lists all ten, from either worker.
    let all: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    for i in [0, 9] {
        let who = members[i].1.request("who").unwrap();
        assert_eq!(who, format!("OK {}", all.join(" ")));
    }
    // A member who drops on one worker is LEFT on the other.
    let (gone, dropped) = members.remove(0);
    let gone_worker = worker_of(&server, &dropped);
    drop(dropped);
    let other = members
        .iter_mut()
        .find(|(_, s)| worker_of(&server, s) != gone_worker)
        .unwrap();
    assert_eq!(
        other.1.read_line().unwrap().unwrap(),
        format!("LEFT {gone}")
    );
    // And the name is free again, on any worker.
    assert_eq!(
        late.request(&format!("name {gone}")).unwrap(),
        format!("OK welcome {gone}, 10 online")
    );
}

#[test]
fn a_slow_member_on_one_worker_does_not_stall_the_other() {
    // Unpaced (`--rate-limit 0`): the sender goes as fast as the server takes its lines.
    let server = Server::start(&["--workers", "2", "--service", "chat", "--rate-limit", "0"]);
    let mut on = sessions_on_every_worker(&server, 2, 2);
    let (mut w1, mut w0) = (on.pop().unwrap(), on.pop().unwrap());
    // Worker 0: a member who never reads. Worker 1: a sender and a reader.
    let mut stuck = w0.pop().unwrap();
    let mut sender = w1.pop().unwrap();
    let mut reader = w1.pop().unwrap();
    for (name, s) in [
        ("stuck", &mut stuck),
        ("reader", &mut reader),
        ("sender", &mut sender),
    ] {
        assert!(
            s.request(&format!("name {name}"))
                .unwrap()
                .starts_with("OK welcome")
        );
    }
    while reader.read_line().unwrap().unwrap() != "JOIN sender" {}
    // 10 MiB of messages: the stuck member is cut off (1 MiB queued past what the kernel holds),
    // the reader on the other worker gets them all.
    let line = "x".repeat(1000);
    let total = 10 * 1024;
    let feeder = {
        let transport = std::sync::Arc::clone(&sender.transport);
        let line = line.clone();
        std::thread::spawn(move || {
            for _ in 0..total {
                transport.write_all(format!("{line}\n").as_bytes()).unwrap();
            }
        })
    };
    let started = Instant::now();
    let mut got = 0;
    while got < total {
        let l = reader.read_line().unwrap().unwrap();
        if l.starts_with("MSG sender ") {
            got += 1;
        }
    }
    feeder.join().unwrap();
    assert!(started.elapsed() < WAIT);
    server.wait_for_log("reason=slow-reader");
    drop(stuck);
}

#[test]
fn sigterm_with_clients_on_both_workers_answers_everything_and_exits_in_time() {
    let mut server = Server::start(&["--workers", "2"]);
    let on = sessions_on_every_worker(&server, 2, 10);
    let mut sessions: Vec<Session> = on.into_iter().flatten().collect();
    for (c, s) in sessions.iter().enumerate() {
        let burst: String = (0..20).map(|i| format!("{c} * 100 + {i}\n")).collect();
        s.transport.write_all(burst.as_bytes()).unwrap();
    }
    let start = Instant::now();
    server.signal(libc::SIGTERM);
    for (c, s) in sessions.iter_mut().enumerate() {
        let mut i = 0;
        while let Some(line) = s.read_line().unwrap() {
            if line == "BYE server shutting down" {
                continue;
            }
            assert_eq!(line, format!("OK {}", c * 100 + i), "client {c}");
            i += 1;
        }
        assert!(s.ended_cleanly(), "client {c}: no close_notify");
    }
    assert_eq!(server.wait_exit(Duration::from_secs(5)).code(), Some(0));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let log = server.log();
    assert!(log.trim_end().ends_with("event=stop"), "{log}");
    assert_eq!(log.matches("event=stop").count(), 1);
    // Every request the log shows was answered (its reply is on the same line).
    assert!(!log.contains("reply=-"));
}

#[test]
fn exit_when_empty_counts_clients_of_every_worker() {
    let mut server = Server::start(&["--workers", "2", "--exit-when-empty"]);
    let mut on = sessions_on_every_worker(&server, 2, 1);
    let mut last = on.pop().unwrap().pop().unwrap();
    let mut first = on.pop().unwrap().pop().unwrap();
    assert_eq!(first.request("q").unwrap(), "BYE session ended");
    drop(first);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "exited with a client left"
    );
    assert_eq!(last.request("q").unwrap(), "BYE session ended");
    drop(last);
    assert_eq!(server.wait_exit(WAIT).code(), Some(0));
}

#[test]
fn a_fast_sender_on_one_worker_is_held_back_for_a_reader_on_the_other() {
    // Unpaced (`--rate-limit 0`): the sender goes as fast as the server takes its lines.
    let server = Server::start(&["--workers", "2", "--service", "chat", "--rate-limit", "0"]);
    let mut on = sessions_on_every_worker(&server, 2, 1);
    let mut sender = on.pop().unwrap().pop().unwrap();
    let mut reader = on.pop().unwrap().pop().unwrap();
    assert!(reader.request("name reader").unwrap().starts_with("OK"));
    assert!(sender.request("name sender").unwrap().starts_with("OK"));
    assert_eq!(reader.read_line().unwrap().unwrap(), "JOIN sender");
    // 10 MiB as fast as the sender can write; the reader (slower: it checks every line) must
    // not fall 1 MiB behind and be cut off: the sender is paused while it catches up.
    let total = 10 * 1024;
    let feeder = {
        let transport = std::sync::Arc::clone(&sender.transport);
        std::thread::spawn(move || {
            let line = format!("{}\n", "y".repeat(1000));
            for _ in 0..total {
                transport.write_all(line.as_bytes()).unwrap();
            }
        })
    };
    for i in 0..total {
        let Some(line) = reader.read_line().unwrap() else {
            panic!("the reader was cut off at line {i}:\n{}", server.log());
        };
        assert!(line.starts_with("MSG sender yyy"), "line {i}: {line}");
        if i % 1024 == 0 {
            std::thread::sleep(Duration::from_millis(20)); // a reader that is a little slow
        }
    }
    feeder.join().unwrap();
    assert!(!server.log().contains("slow-reader"));
}

#[test]
fn a_worker_that_cannot_bind_fails_the_start_with_exit_one() {
    let dir = common::TestDir::new("workers-inuse");
    // Taken without SO_REUSEPORT: no worker can share it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (status, stdout, stderr) =
        common::run_server(&dir.0, &["127.0.0.1", &port, "--workers", "2"]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(!stdout.contains("listening"), "{stdout}");
    assert!(stderr.contains("cannot listen on 127.0.0.1:"), "{stderr}");
}
