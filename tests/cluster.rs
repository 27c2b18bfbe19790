//! The chat room across instances (`--chat-redis`), against a real `redis-server` on a loopback
//! port chosen at run time (Debian's package; `.ci/run` installs it): JOIN, MSG, `who` and taken
//! names across instances, a killed instance's members announced LEFT within 5 s, Redis killed
//! (the local room goes on, nobody announced LEFT for it) and started again (the rooms join again).

mod common;

use std::time::{Duration, Instant};

use common::redis::Redis;
use common::room::{copy_certs, member, members, next, until};
use common::{Server, TestDir};

const WAIT: Duration = Duration::from_secs(15);

/// Two instances A and B on one Redis, both with their bus up; unpaced (`--rate-limit 0`):
/// these tests send megabytes through the bus, not at a member's pace.
fn two_instances(redis: &Redis) -> (Server, Server) {
    let a = Server::start(&[
        "--service",
        "chat",
        "--rate-limit",
        "0",
        "--chat-redis",
        &redis.url(""),
    ]);
    a.wait_for_log("event=bus-up");
    // B writes its own log in its own directory, with A's certificates.
    let b_dir = TestDir::new("instance-b");
    copy_certs(&a, &b_dir);
    let b = Server::start_in(
        b_dir,
        &["127.0.0.1", "0"],
        &[
            "--service",
            "chat",
            "--rate-limit",
            "0",
            "--chat-redis",
            &redis.url(""),
        ],
        1,
    );
    b.wait_for_log("event=bus-up");
    (a, b)
}

#[test]
fn one_room_across_two_instances() {
    if !common::require_program("redis-server", "redis-server") {
        return;
    }
    let redis = Redis::start(&[], None);
    let (a, b) = two_instances(&redis);
    let mut alice = member(&a, "alice");
    let mut bob = b.connect();
    assert_eq!(bob.request("name bob").unwrap(), "OK welcome bob, 2 online");
    assert_eq!(next(&mut alice), "JOIN bob");
    bob.send_line("hi alice").unwrap();
    assert_eq!(next(&mut alice), "MSG bob hi alice");
    alice.send_line("hello bob").unwrap();
    assert_eq!(next(&mut bob), "MSG alice hello bob");
    assert_eq!(alice.request("who").unwrap(), "OK alice bob");
    assert_eq!(bob.request("who").unwrap(), "OK alice bob");
    // A name in use on the other instance is taken here.
    let mut other = a.connect();
    assert_eq!(other.request("name bob").unwrap(), "ERR name taken");
    // One sender's messages arrive in the order sent.
    for i in 0..200 {
        bob.send_line(&format!("message {i}")).unwrap();
    }
    for i in 0..200 {
        assert_eq!(next(&mut alice), format!("MSG bob message {i}"));
    }
    // Leaving is seen across, and the name is free again everywhere.
    bob.send_line("q").unwrap();
    assert_eq!(next(&mut alice), "LEFT bob");
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        other
            .request("name bob")
            .unwrap()
            .starts_with("OK welcome bob")
    );
}

#[test]
fn a_look_alike_of_a_member_on_the_other_instance_is_taken() {
    if !common::require_program("redis-server", "redis-server") {
        return;
    }
    let redis = Redis::start(&[], None);
    let (a, b) = two_instances(&redis);
    let _alice = member(&a, "alice");
    let mut bob = member(&b, "bob");
    // Once B has heard of alice (her JOIN, or the next heartbeat; under load that may be after
    // bob logged in, and B then lists her after him)...
    let start = Instant::now();
    while members(&mut bob) != ["alice", "bob"] {
        assert!(start.elapsed() < WAIT, "B never heard of alice");
        std::thread::sleep(Duration::from_millis(50));
    }
    // ...no name that would pass for hers gets in there.
    for look_alike in ["Alice", "ALICE", "\u{430}lice", "ａlice", "aIice"] {
        let mut s = b.connect();
        assert_eq!(
            s.request(&format!("name {look_alike}")).unwrap(),
            "ERR name taken",
            "{look_alike}"
        );
    }
    assert_eq!(members(&mut bob), ["alice", "bob"]);
}

/// The order the look-alike test above met by chance on a loaded machine, made certain: alice's
/// JOIN reaches B only after bob logged in there (Redis paused meanwhile). B then announces her
/// to bob, lists her after him (in the order it heard of them), and her name is taken there.
#[test]
fn a_member_heard_of_after_ours_logged_in_is_announced_listed_and_taken() {
    if !common::require_program("redis-server", "redis-server") {
        return;
    }
    let redis = Redis::start(&[], None);
    let (a, b) = two_instances(&redis);
    redis.signal(libc::SIGSTOP);
    let _alice = member(&a, "alice");
    let mut bob = b.connect();
    assert_eq!(bob.request("name bob").unwrap(), "OK welcome bob, 1 online");
    redis.signal(libc::SIGCONT);
    assert_eq!(next(&mut bob), "JOIN alice");
    assert_eq!(bob.request("who").unwrap(), "OK bob alice");
    let mut s = b.connect();
    assert_eq!(s.request("name \u{430}lice").unwrap(), "ERR name taken");
}

#[test]
fn a_killed_instance_has_its_members_leave_within_five_seconds() {
    if !common::require_program("redis-server", "redis-server") {
        return;
    }
    let redis = Redis::start(&[], None);
    let (a, mut b) = two_instances(&redis);
    let mut alice = member(&a, "alice");
    let _bob = member(&b, "bob");
    assert_eq!(next(&mut alice), "JOIN bob");
    b.signal(libc::SIGKILL);
    let took = until(&mut alice, "LEFT bob");
    assert!(took < Duration::from_secs(5), "LEFT bob after {took:?}");
    let _ = b.wait_exit(WAIT);
    assert_eq!(alice.request("who").unwrap(), "OK alice");
}

#[test]
fn without_redis_the_local_room_goes_on_and_joins_again_when_it_is_back() {
    if !common::require_program("redis-server", "redis-server") {
        return;
    }
    let mut redis = Redis::start(&[], None);
    let port = redis.port;
    let (a, b) = two_instances(&redis);
    let mut alice = member(&a, "alice");
    let mut carol = member(&a, "carol");
    assert_eq!(next(&mut alice), "JOIN carol");
    let bob = member(&b, "bob");
    assert_eq!(next(&mut alice), "JOIN bob");
    assert_eq!(next(&mut carol), "JOIN bob");

    redis.kill();
    a.wait_for_log("event=bus-down");
    // The local room: alice and carol talk as before; bob is not announced LEFT for an outage
    // of the bus (his instance did not go away).
    carol.send_line("still here").unwrap();
    assert_eq!(next(&mut alice), "MSG carol still here");
    std::thread::sleep(Duration::from_secs(5)); // past the silence limit
    assert_eq!(alice.request("who").unwrap(), "OK alice carol bob");

    // Redis is back: the buses come up again, and the rooms join again.
    let _redis = Redis::start_on(port, Vec::new(), None);
    a.wait_for_log_count("event=bus-up", 2);
    b.wait_for_log_count("event=bus-up", 2);
    carol.send_line("welcome back").unwrap();
    assert_eq!(next(&mut alice), "MSG carol welcome back");
    bob.send_line("I was never away").unwrap();
    assert_eq!(next(&mut alice), "MSG bob I was never away");
    assert_eq!(alice.request("who").unwrap(), "OK alice carol bob");
}

#[test]
fn a_stalled_redis_never_holds_up_the_local_room() {
    if !common::require_program("redis-server", "redis-server") {
        return;
    }
    let redis = Redis::start(&[], None);
    let (a, _b) = two_instances(&redis);
    let mut alice = member(&a, "alice");
    let carol = member(&a, "carol");
    assert_eq!(next(&mut alice), "JOIN carol");
    // Redis stops reading and answering (SIGSTOP): its socket buffers fill up.
    redis.signal(libc::SIGSTOP);
    let text = "x".repeat(1000);
    let start = Instant::now();
    for i in 0..3000 {
        carol.send_line(&format!("{i} {text}")).unwrap();
    }
    for i in 0..3000 {
        assert_eq!(next(&mut alice), format!("MSG carol {i} {text}"));
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "3 MB to a local member took {took:?}"
    );
    redis.signal(libc::SIGCONT);
}

#[test]
fn an_instance_with_two_workers_is_one_part_of_the_room() {
    if !common::require_program("redis-server", "redis-server") {
        return;
    }
    let redis = Redis::start(&[], None);
    let a = Server::start(&[
        "--service",
        "chat",
        "--workers",
        "2",
        "--chat-redis",
        &redis.url(""),
    ]);
    a.wait_for_log("event=bus-up");
    let b = Server::start_in(
        TestDir::borrowed(&a.dir.0),
        &["127.0.0.1", "0"],
        &[
            "--service",
            "chat",
            "--chat-redis",
            &redis.url(""),
            "--log",
            "b.log",
        ],
        1,
    );
    let b_log = a.dir.0.join("b.log");
    let start = Instant::now();
    while !std::fs::read_to_string(&b_log)
        .unwrap_or_default()
        .contains("event=bus-up")
    {
        assert!(start.elapsed() < WAIT, "B's bus never came up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut bob = member(&b, "bob");
    // Members on A until both of A's workers have some (the kernel spreads the connections).
    let mut on_a = Vec::new();
    while on_a.len() < 4 || !(a.log().contains("worker=0") && a.log().contains("worker=1")) {
        assert!(on_a.len() < 40, "the kernel never used worker 1");
        let name = format!("a{}", on_a.len());
        on_a.push(member(&a, &name));
        until(&mut bob, &format!("JOIN {name}"));
    }
    // bob is heard on both workers of A, and every member of A is heard by bob.
    bob.send_line("hello A").unwrap();
    for session in &mut on_a {
        until(session, "MSG bob hello A");
    }
    for (i, session) in on_a.iter_mut().enumerate() {
        session.send_line(&format!("from a{i}")).unwrap();
        until(&mut bob, &format!("MSG a{i} from a{i}"));
    }
    let who = bob.request("who").unwrap();
    assert!(who.starts_with("OK bob a0 a1 a2 a3"), "{who}");
}
