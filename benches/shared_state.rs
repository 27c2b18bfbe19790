//! What `--workers` shares, per operation: the costs that decide which shared thing contends
//! first on a machine with many cores. Each is measured alone (one thread) and with a second
//! thread hammering the same thing (both cores busy).
//!
//! - `admit_depart`: the process-wide `--max-clients` count, once per connection (a CAS and a sub).
//! - `next_serial`: the connection id, once per connection (one fetch_add).
//! - `room_claim_release`: the chat directory's mutex, once per login and logout.
//! - `room_line_to_peer`: one room line to another worker (channel send + eventfd wake), once
//!   per chat message per worker per loop turn.
//! - `log_line_and_handover`: formatting a log line into the worker's own buffer, with the buffer
//!   handed to the writer thread every 1,024 lines.
//!
//! Run: `cargo bench --bench shared_state` (about a minute).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mio::{Poll, Waker};
use securetcp::bus::{Directory, RoomLine};
use securetcp::config::LogTarget;
use securetcp::log::Log;
use securetcp::reactor::WAKER_TOKEN;
use securetcp::shared::{Shared, WorkerMsg};

/// Runs `work` on a second thread until the returned guard is dropped: the contended case.
fn rival(work: impl Fn() + Send + 'static) -> impl Drop {
    struct Stop(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
            if let Some(t) = self.1.take() {
                let _ = t.join();
            }
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            work();
        }
    });
    Stop(stop, Some(thread))
}

fn shared_state(c: &mut Criterion) {
    let mut group = c.benchmark_group("shared_state");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    for contended in [false, true] {
        let tag = if contended { "2 threads" } else { "1 thread" };

        let shared = Shared::new(2, usize::MAX / 2);
        let _rival = contended.then(|| {
            let shared = Arc::clone(&shared);
            rival(move || {
                if shared.admit() {
                    shared.depart();
                }
            })
        });
        group.bench_function(format!("admit_depart/{tag}"), |b| {
            b.iter(|| {
                if shared.admit() {
                    shared.depart();
                }
            })
        });
        drop(_rival);

        let _rival = contended.then(|| {
            let shared = Arc::clone(&shared);
            rival(move || {
                shared.next_serial();
            })
        });
        group.bench_function(format!("next_serial/{tag}"), |b| {
            b.iter(|| shared.next_serial())
        });
        drop(_rival);

        let room = Directory::new();
        for i in 0..100 {
            room.claim(&format!("member{i}"));
        }
        let _rival = contended.then(|| {
            let room = Arc::clone(&room);
            rival(move || {
                room.claim("rival");
                room.release("rival");
            })
        });
        group.bench_function(format!("room_claim_release/{tag}"), |b| {
            b.iter(|| {
                room.claim("alice");
                room.release("alice");
            })
        });
        drop(_rival);
    }

    // One line to one other worker: what a chat message costs per extra worker.
    let shared = Shared::new(2, 10);
    let polls: Vec<Poll> = (0..2).map(|_| Poll::new().unwrap()).collect();
    let mut inboxes = Vec::new();
    let mut peers = Vec::new();
    for poll in &polls {
        let (tx, rx) = mpsc::channel::<WorkerMsg>();
        peers.push((tx, Waker::new(poll.registry(), WAKER_TOKEN).unwrap()));
        inboxes.push(rx);
    }
    shared.link(peers);
    let line: RoomLine = Arc::from(&b"MSG alice hello everyone in the room\n"[..]);
    group.bench_function("room_line_to_peer", |b| {
        b.iter(|| {
            shared.room_published(0, line.len());
            shared.send_room(0, std::slice::from_ref(&line));
            for message in inboxes[1].try_iter() {
                if let WorkerMsg::Room(lines) = message {
                    shared.room_delivered(1, lines.iter().map(|l| l.len()).sum());
                }
            }
        })
    });

    // A request's log line, formatted into the worker's own buffer; the buffer goes to the
    // writer thread (here writing to /dev/null, so the disk is not what is measured) every 1,024
    // lines, about what a busy loop turn holds.
    let (mut log, writer) = Log::open(&LogTarget::File("/dev/null".into())).unwrap();
    let mut lines = 0u32;
    group.bench_function("log_line_and_handover", |b| {
        b.iter(|| {
            log.line(format_args!("conn=17 name=- req=\"+ 3 4\" reply=\"OK 7\""));
            lines += 1;
            if lines % 1024 == 0 {
                log.flush();
            }
        })
    });
    assert_eq!(
        log.dropped_lines(),
        0,
        "the writer fell behind: the bench measured drops"
    );
    log.finish();
    writer.finish();
    group.finish();
}

criterion_group!(benches, shared_state);
criterion_main!(benches);
