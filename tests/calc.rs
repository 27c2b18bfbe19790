//! The calc service end to end: the real server binary, real TLS, every row of SPEC's calc
//! table and of its bad-input rules.

mod common;

use std::io::Write;

use common::Server;

#[test]
fn greeting_names_the_service_and_version() {
    let server = Server::start(&[]);
    let session = server.connect();
    assert_eq!(session.service, "calc");
}

#[test]
fn every_row_of_the_calc_table() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    let rows = [
        ("+ 3 4", "OK 7"),
        ("12 + 42", "OK 54"),
        ("3.24 - 45", "OK -41.76"),
        ("4.5 / -6", "OK -0.75"),
        ("add 3 4", "OK 7"),
        ("subtract 10 4", "OK 6"),
        ("multiply 6 7", "OK 42"),
        ("divide 7 5", "OK 1.4"),
        ("sub 1 2", "OK -1"),
        ("mul 2 3", "OK 6"),
        ("div 8 2", "OK 4"),
        ("(1 + 2) * 3 ^ 2 % 5", "OK 2"),
        ("-2 ^ 2", "OK -4"),
        ("1e3", "OK 1000"),
        ("/ 7 5", "OK 1.4"),
        ("1 / 0", "ERR division by zero"),
        ("9223372036854775807 + 1", "ERR overflow"),
        ("1e308 * 10", "ERR overflow"),
        ("- 3 4", "OK -1"),
        ("- 3 -4", "OK 7"),
        ("- 3", "OK -3"),
        ("-7 % 3", "OK -1"),
        ("2 ^ -1", "OK 0.5"),
        ("0 ^ -1", "ERR division by zero"),
        ("(-8) ^ 0.5", "ERR not a real number"),
        ("0.1 + 0.2", "OK 0.30000000000000004"),
        ("1e20 * 10", "OK 1e21"),
    ];
    for (request, reply) in rows {
        assert_eq!(s.request(request).unwrap(), reply, "{request}");
    }
    for malformed in ["+ 3", "3 +", "hello"] {
        let reply = s.request(malformed).unwrap();
        assert!(
            reply.starts_with("ERR ") && reply.len() > 4,
            "{malformed}: {reply}"
        );
    }
}

#[test]
fn name_help_and_quit() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    assert_eq!(s.request("name alice").unwrap(), "OK hello alice");
    assert!(s.request("help").unwrap().starts_with("OK "));
    assert_eq!(s.request("+ 1 1").unwrap(), "OK 2");
    assert_eq!(s.request("q").unwrap(), "BYE session ended");
    // After BYE the server sends close_notify: a clean end of the session.
    assert_eq!(s.read_line().unwrap(), None);
    let log = server.wait_for_log("reason=quit");
    assert!(
        log.contains("name=alice req=\"+ 1 1\" reply=\"OK 2\""),
        "{log}"
    );
}

#[test]
fn empty_line_gets_err_and_connection_continues() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    assert_eq!(s.request("").unwrap(), "ERR empty line");
    assert_eq!(s.request("   ").unwrap(), "ERR empty line");
    assert_eq!(s.request("+ 3 4").unwrap(), "OK 7");
}

#[test]
fn invalid_utf8_gets_err_and_connection_continues() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    s.transport.write_all(b"1 + \xff\xfe\n").unwrap();
    assert_eq!(
        s.read_line().unwrap().unwrap(),
        "ERR line is not valid UTF-8"
    );
    assert_eq!(s.request("+ 3 4").unwrap(), "OK 7");
}

#[test]
fn crlf_line_endings_are_accepted() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    s.transport.write_all(b"+ 3 4\r\n").unwrap();
    assert_eq!(s.read_line().unwrap().unwrap(), "OK 7");
}

#[test]
fn overlong_line_gets_one_err_and_connection_continues() {
    let server = Server::start(&["--max-line", "100"]);
    let mut s = server.connect();
    // 100 bytes is the limit and is fine; 101 is too long, discarded up to its newline.
    let exactly = format!("1{}", " + 0".repeat(24)) + "   ";
    assert_eq!(exactly.len(), 100);
    assert_eq!(s.request(&exactly).unwrap(), "OK 1");
    let mut long = "1 + 1".repeat(10_000);
    long.push('\n');
    long.push_str("2 * 21\n");
    s.transport.write_all(long.as_bytes()).unwrap();
    assert_eq!(
        s.read_line().unwrap().unwrap(),
        "ERR line too long (limit 100 bytes)"
    );
    assert_eq!(s.read_line().unwrap().unwrap(), "OK 42");
}

#[test]
fn deep_nesting_is_refused_without_stack_overflow() {
    let server = Server::start(&["--max-line", "100000"]);
    let mut s = server.connect();
    let deep = "(".repeat(10_000) + "1" + &")".repeat(10_000);
    assert_eq!(s.request(&deep).unwrap(), "ERR expression too deep");
    let open = "(".repeat(10_000);
    assert_eq!(s.request(&open).unwrap(), "ERR expression too deep");
    assert_eq!(s.request("+ 3 4").unwrap(), "OK 7");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    let mut batch = String::new();
    for i in 0..2000 {
        batch.push_str(&format!("{i} + 1\n"));
    }
    s.transport.write_all(batch.as_bytes()).unwrap();
    for i in 0..2000 {
        assert_eq!(s.read_line().unwrap().unwrap(), format!("OK {}", i + 1));
    }
    assert_eq!(s.request("q").unwrap(), "BYE session ended");
}

#[test]
fn lines_after_quit_in_the_same_read_are_not_answered() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    s.transport.write_all(b"+ 1 2\nq\n+ 3 4\n").unwrap();
    assert_eq!(s.read_line().unwrap().unwrap(), "OK 3");
    assert_eq!(s.read_line().unwrap().unwrap(), "BYE session ended");
    assert_eq!(s.read_line().unwrap(), None);
}

#[test]
fn a_client_pipelining_without_reading_is_slowed_not_buffered() {
    // 8 MB of requests produce far more output than the server may queue: it stops reading
    // until the client reads, and then every reply still arrives, in order.
    let server = Server::start(&[]);
    let mut s = server.connect();
    let line = "123456 * 2\n";
    let count = 8_000_000 / line.len();
    let writer = {
        let transport = std::sync::Arc::clone(&s.transport);
        std::thread::spawn(move || {
            let chunk = line.repeat(1000);
            for _ in 0..count / 1000 {
                transport.write_all(chunk.as_bytes()).unwrap();
            }
        })
    };
    // Start reading only once the writer is well ahead (or done).
    std::thread::sleep(std::time::Duration::from_millis(500));
    for _ in 0..(count / 1000) * 1000 {
        assert_eq!(s.read_line().unwrap().unwrap(), "OK 246912");
    }
    writer.join().unwrap();
    std::io::stdout().flush().unwrap();
}
