//! Steps in the chat room shared by the tests across instances (tests/cluster.rs,
//! tests/chat_redis.rs): give another instance the first one's certificates, log in as a
//! member, read the next room line, read until a line, ask who is in the room.

use std::time::{Duration, Instant};

use securetcp::client::Session;

use super::{Server, TestDir};

/// How long a room line may take to arrive across instances.
const ROOM_WAIT: Duration = Duration::from_secs(15);

/// Copies `first`'s certificates (CA, server certificate and key) into `dir`'s `certs/`, so
/// that clients trusting one instance trust the other.
pub fn copy_certs(first: &Server, dir: &TestDir) {
    std::fs::create_dir_all(dir.0.join("certs")).unwrap();
    for file in ["ca.pem", "server.pem", "server.key"] {
        std::fs::copy(
            first.dir.0.join("certs").join(file),
            dir.0.join("certs").join(file),
        )
        .unwrap();
    }
}

/// A session on `server` logged in as `name` (the welcome checked).
pub fn member(server: &Server, name: &str) -> Session {
    let mut session = server.connect();
    let welcome = session.request(&format!("name {name}")).unwrap();
    assert!(
        welcome.starts_with(&format!("OK welcome {name}")),
        "{welcome}"
    );
    session
}

/// The next room line; the session must go on.
pub fn next(session: &mut Session) -> String {
    session.read_line().unwrap().expect("the session goes on")
}

/// Reads until `wanted` (skipping other room lines); returns how long it took.
pub fn until(session: &mut Session, wanted: &str) -> Duration {
    let start = Instant::now();
    loop {
        let line = next(session);
        if line == wanted {
            return start.elapsed();
        }
        assert!(start.elapsed() < ROOM_WAIT, "never got {wanted:?}");
    }
}

/// The names `who` lists, sorted: across instances the order is the order in which this
/// instance heard of each member (a member of another instance may be heard of after one here
/// logged in later), so a test that spans instances compares the names only. Room lines pushed
/// before the reply (`JOIN`, `MSG`, `LEFT`) are skipped.
pub fn members(session: &mut Session) -> Vec<String> {
    session.send_line("who").unwrap();
    loop {
        let line = next(session);
        if let Some(names) = line.strip_prefix("OK ") {
            let mut names: Vec<String> = names.split(' ').map(str::to_string).collect();
            names.sort();
            return names;
        }
        assert!(
            ["JOIN ", "MSG ", "LEFT "]
                .iter()
                .any(|p| line.starts_with(p)),
            "who: {line}"
        );
    }
}
