//! The blocking comparison servers speak the same calc protocol as the reactor.

mod common;

use common::Server;

#[test]
fn iterative_server_answers_calc_and_serves_clients_one_after_another() {
    let server = Server::start_example("blocking_server", &["--iterative", "127.0.0.1", "0"]);
    for i in 0..3 {
        let mut s = server.connect();
        assert_eq!(s.service, "calc");
        assert_eq!(
            s.request(&format!("{i} + 40")).unwrap(),
            format!("OK {}", i + 40)
        );
        assert_eq!(s.request("1 / 0").unwrap(), "ERR division by zero");
        assert_eq!(s.request("q").unwrap(), "BYE session ended");
        assert_eq!(s.read_line().unwrap(), None);
    }
}

#[test]
fn threaded_server_serves_clients_at_once() {
    let server = Server::start_example("blocking_server", &["--threads", "127.0.0.1", "0"]);
    let mut a = server.connect();
    let mut b = server.connect();
    assert_eq!(b.request("2 * 21").unwrap(), "OK 42");
    assert_eq!(a.request("+ 3 4").unwrap(), "OK 7");
    let mut batch = String::new();
    for i in 0..500 {
        batch.push_str(&format!("{i} * 2\n"));
    }
    a.transport.write_all(batch.as_bytes()).unwrap();
    for i in 0..500 {
        assert_eq!(a.read_line().unwrap().unwrap(), format!("OK {}", i * 2));
    }
}

#[test]
fn plain_mode_works_too() {
    use std::io::Write;
    let server = Server::start_example(
        "blocking_server",
        &["--threads", "--no-tls", "127.0.0.1", "0"],
    );
    let mut s = common::raw_tcp(server.addr());
    s.write_all(b"+ 3 4\nq\n").unwrap();
    let (text, _) = common::read_to_end_timed(&mut s);
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.starts_with("HELLO calc securetcp/") && text.ends_with("OK 7\nBYE session ended\n"),
        "{text}"
    );
}
