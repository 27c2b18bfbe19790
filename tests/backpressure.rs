//! Output is bounded per line, not per read, against the real binary: a chat member that sends
//! thousands of `who` lines in one TLS record and never reads does not make the server's memory
//! jump, however large the room.

mod common;

use std::time::Duration;

use common::{Server, WAIT};
use securetcp::client::Session;

/// The server's peak resident memory (VmHWM) in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc")
}

#[test]
fn one_record_of_who_lines_does_not_grow_memory_with_the_room() {
    // Unpaced (`--rate-limit 0`): every `who` is answered as fast as the server can.
    let server = Server::start(&["--service", "chat", "--rate-limit", "0"]);
    let pid = server.child.id();
    // A room whose `who` answer is about 9 KiB.
    let members: Vec<Session> = (0..300)
        .map(|i| {
            let mut s = server.connect();
            let reply = s
                .request(&format!("name member-with-a-long-name-{i:04}"))
                .unwrap();
            assert!(reply.starts_with("OK welcome"), "{reply}");
            s
        })
        .collect();
    let mut flooder = server.connect();
    assert!(flooder.request("name flooder").unwrap().starts_with("OK"));
    std::thread::sleep(Duration::from_millis(300));
    let before = peak_rss_kib(pid);
    // 4,096 requests in one write (16 KiB: one TLS record), and never a read.
    flooder.transport.write_all(&b"who\n".repeat(4096)).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let after = peak_rss_kib(pid);
    // Answered all at once, the replies are 4,096 x 9 KiB = 36 MiB; bounded per line, the
    // server holds at most its read-pause mark and one outbox of them.
    assert!(
        after < before + 8 * 1024,
        "peak memory grew from {before} KiB to {after} KiB"
    );
    // The room is still served.
    let mut other = server.connect();
    other.set_read_timeout(Some(WAIT)).unwrap();
    assert!(
        other
            .request("name late")
            .unwrap()
            .starts_with("OK welcome")
    );
    drop(members);
}
