//! The GUI client (feature `gui`) driven through egui's own harness, without a screen, against
//! the real server binary: it clicks and types by the labels a person reads, and asserts what
//! the window shows. Runs with `cargo test --features gui`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Server, TestDir, client_bin};
use eframe::egui::{FontId, Key, Modifiers, TextStyle, Vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use securetcp::gui::{App, ConnectForm};

const WAIT: Duration = Duration::from_secs(15);

type Window = Harness<'static, App>;

/// A window whose form points at `addr`, trusting `ca` (empty: the public roots only).
fn window(addr: SocketAddr, ca: &str, name: &str) -> Window {
    let form = ConnectForm {
        host: addr.ip().to_string(),
        port: addr.port().to_string(),
        ca: ca.to_string(),
        name: name.to_string(),
        cert: String::new(),
        key: String::new(),
        no_tls: false,
    };
    Harness::builder()
        .with_size([800.0, 600.0])
        .build_ui_state(|ui, app: &mut App| app.ui(ui), App::new(form))
}

/// The window for `server`, connected: the form filled, Connect clicked, the screen shown.
fn connected(server: &Server, name: &str, service: &str) -> Window {
    let mut w = window(server.addr(), &server.ca().display().to_string(), name);
    w.get_by_label("Connect").click();
    wait_for(&mut w, &format!("{service} at {}", server.addr()));
    w
}

fn shows(w: &Window, label: &str) -> bool {
    w.query_all_by_label(label).next().is_some()
}

/// Every label and value in the window, one per line (for failure messages).
fn texts(w: &Window) -> Vec<String> {
    w.query_all_by(|n| n.label().or(n.value()).is_some_and(|t| !t.is_empty()))
        .map(|n| format!("{:?} {}", n.accesskit_node().role(), text_of(&n)))
        .collect()
}

/// What a widget says: a button's label, a label's text.
fn text_of(node: &egui_kittest::Node<'_>) -> String {
    let node = node.accesskit_node();
    node.label().or(node.value()).unwrap_or_default()
}

/// Steps the window until a widget labelled `label` shows; the window keeps running meanwhile,
/// which is the point: the network never holds it up.
fn wait_for(w: &mut Window, label: &str) {
    let start = Instant::now();
    loop {
        w.step();
        if shows(w, label) {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "the window never showed {label:?}; it shows:\n{}",
            texts(w).join("\n")
        );
        std::thread::sleep(Duration::from_millis(15));
    }
}

/// Types `text` into the field labelled `field` and presses Enter.
fn enter(w: &mut Window, field: &str, text: &str) {
    w.get_by_label(field).focus();
    w.step();
    w.get_by_label(field).type_text(text);
    w.step();
    w.key_press(Key::Enter);
    w.step();
    w.step();
}

fn form_error(addr: SocketAddr, ca: &str, no_tls: bool) -> Window {
    let mut w = window(addr, ca, "");
    w.state_mut().form.no_tls = no_tls;
    w.get_by_label("Connect").click();
    w
}

#[test]
fn calc_shows_results_refuses_nonsense_and_recalls_history() {
    let server = Server::start(&[]);
    let mut w = connected(&server, "ann", "calc");
    wait_for(&mut w, "name ann: hello ann");
    enter(&mut w, "Expression", "+ 3 4");
    wait_for(&mut w, "+ 3 4 = 7");
    enter(&mut w, "Expression", "1 / 0");
    wait_for(&mut w, "1 / 0: division by zero");
    enter(&mut w, "Expression", "3 +");
    wait_for(
        &mut w,
        "Not sent: incomplete expression: a number is missing at the end.",
    );
    // The refused line stays in the field to be mended; it never reached the server.
    assert_eq!(w.get_by_label("Expression").value().as_deref(), Some("3 +"));
    assert!(!server.log().contains("req=\"3 +\""), "{}", server.log());
    // Up recalls the last line sent.
    w.get_by_label("Expression").focus();
    w.step();
    w.key_press(Key::ArrowUp);
    w.step();
    w.step();
    assert_eq!(
        w.get_by_label("Expression").value().as_deref(),
        Some("1 / 0")
    );
    w.get_by_label("Disconnect").click();
    wait_for(&mut w, "Connect");
    server.wait_for_log("reason=quit");
}

/// The terminal client as a person would run it in a pipe, read line by line on a thread.
struct Terminal {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Terminal {
    fn start(dir: &TestDir, server: &Server, name: &str) -> Terminal {
        let mut child = Command::new(client_bin())
            .args(["--name", name, "--ca"])
            .arg(server.ca())
            .arg(server.addr().ip().to_string())
            .arg(server.addr().port().to_string())
            .current_dir(&dir.0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Both streams, as a person at a terminal sees them: with stdout a pipe, the status
        // lines (the welcome, `Session ended`) are on stderr.
        let (tx, lines) = mpsc::channel();
        let streams: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for stream in streams {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Terminal {
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    fn say(&mut self, line: &str) {
        writeln!(self.stdin.as_mut().unwrap(), "{line}").unwrap();
    }

    fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while let Ok(line) = self.lines.recv_timeout(deadline - Instant::now()) {
            if line == needle {
                return;
            }
        }
        panic!("the terminal client never printed {needle:?}");
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn chat_between_the_window_and_a_terminal_client() {
    let server = Server::start(&["--service", "chat"]);
    let mut w = connected(&server, "ann", "chat");
    wait_for(&mut w, "Welcome ann, 1 online");
    wait_for(&mut w, "ann (you)");

    let dir = TestDir::new("gui-chat");
    let mut bob = Terminal::start(&dir, &server, "bob");
    bob.wait_for("Welcome bob, 2 online");
    wait_for(&mut w, "bob joined");
    wait_for(&mut w, "Members (2)");
    assert!(shows(&w, "bob"));

    // Control characters never get past the server; invisible and bidi ones are shown.
    bob.say("hello ann \u{202E}\u{200B}!");
    wait_for(&mut w, "bob: hello ann \\u{202e}\\u{200b}!");
    enter(&mut w, "Message", "hi bob");
    wait_for(&mut w, "ann (you): hi bob");
    bob.wait_for("ann: hi bob");

    // A second window cannot take a name in use, and is asked for another.
    let mut other = connected(&server, "bob", "chat");
    wait_for(&mut other, "Name taken.");
    enter(&mut other, "Your name", "2");
    wait_for(&mut other, "Welcome bob2, 3 online");
    wait_for(&mut w, "bob2 joined");

    // The form keeps the name the server welcomed, and forgets one it refused (issue 21: Back to
    // the form, or Disconnect, offered the refused name again).
    assert_eq!(other.state().form.name, "bob2");
    let mut third = connected(&server, "ann", "chat");
    wait_for(&mut third, "Name taken.");
    third.get_by_label("Disconnect").click();
    wait_for(&mut third, "Address");
    assert_eq!(third.get_by_label("Name").value().as_deref(), Some(""));

    bob.say("q");
    bob.wait_for("Session ended");
    wait_for(&mut w, "bob left");
    wait_for(&mut w, "Members (2)");
    assert!(!shows(&w, "bob"));
}

#[test]
fn sum_checks_the_number_then_shows_the_exchange() {
    let server = Server::start(&["--service", "sum", "--name", "Big Server", "--number", "42"]);
    let mut w = connected(&server, "John Q. Smith", "sum");
    wait_for(&mut w, "You are \"John Q. Smith\" in the exchange.");
    enter(&mut w, "Number (1-100)", "0");
    wait_for(&mut w, "Please enter an integer between 1 and 100.");
    enter(&mut w, "Number (1-100)", "7");
    wait_for(&mut w, "Big Server answered 42.");
    wait_for(&mut w, "7 (client) + 42 (server) = 49");
    let log = server.wait_for_log("event=sum");
    assert_eq!(
        log.matches("event=sum").count(),
        1,
        "0 was never sent:\n{log}"
    );
}

/// The question the window shows, `a + b`, answered (once the question is there).
fn answer_of(w: &mut Window) -> i64 {
    let start = Instant::now();
    while w.query_all_by_label_contains("What is ").next().is_none() {
        assert!(start.elapsed() < WAIT, "no question came");
        w.step();
        std::thread::sleep(Duration::from_millis(15));
    }
    let question = text_of(&w.get_by_label_contains("What is "));
    let sum = question
        .trim_start_matches("What is ")
        .trim_end_matches('?');
    let (a, b) = sum.split_once(" + ").unwrap();
    a.parse::<i64>().unwrap() + b.parse::<i64>().unwrap()
}

#[test]
fn quiz_three_right_one_wrong_and_the_score() {
    let server = Server::start(&["--service", "quiz"]);
    let mut w = connected(&server, "", "quiz");
    wait_for(&mut w, "Score: 0/0");
    for round in 1..=3 {
        let answer = answer_of(&mut w);
        let question = text_of(&w.get_by_label_contains("What is "));
        let sum = question
            .trim_start_matches("What is ")
            .trim_end_matches('?');
        enter(&mut w, "Your answer", &answer.to_string());
        wait_for(&mut w, &format!("Score: {round}/{round}"));
        assert!(shows(&w, &format!("Right: {sum} = {answer}")));
    }
    enter(&mut w, "Your answer", "seven");
    wait_for(&mut w, "Answer with a whole number.");
    // The refused text stays in the field; replace it with one too many.
    let answer = answer_of(&mut w);
    enter_replacing(&mut w, "Your answer", &(answer + 1).to_string());
    wait_for(&mut w, "Score: 3/4");
    assert!(
        w.query_all_by_label_contains(&format!(" = {answer}"))
            .any(|n| text_of(&n).starts_with("Wrong: ")),
        "the window says plainly what the sum was"
    );
}

/// Selects everything in the field, then types `text` over it and presses Enter.
fn enter_replacing(w: &mut Window, field: &str, text: &str) {
    w.get_by_label(field).focus();
    w.step();
    w.key_press_modifiers(Modifiers::COMMAND, Key::A);
    w.step();
    enter(w, field, text);
}

#[test]
fn failures_are_one_sentence_with_a_way_to_reconnect() {
    // Refused: nobody listens on the port; Reconnect once a server is there.
    let port = {
        let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        probe.local_addr().unwrap().port()
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut w = form_error(addr, "", false);
    wait_for(
        &mut w,
        &format!("Connection refused by {addr}: is the server running?"),
    );
    let port_text = port.to_string();
    let server = Server::start_with(&["127.0.0.1", &port_text], &[], 1);
    w.state_mut().form.ca = server.ca().display().to_string();
    w.get_by_label("Reconnect").click();
    wait_for(&mut w, &format!("calc at {addr}"));

    // Not trusted: the public roots alone do not know the development CA.
    let mut w = form_error(server.addr(), "", false);
    wait_for(
        &mut w,
        "The server's certificate is not trusted (certificate signed by an unknown CA): choose the CA file that signed it.",
    );

    // Plain/TLS mismatch, both ways.
    let mut w = form_error(server.addr(), "", true);
    wait_for(
        &mut w,
        "The server speaks TLS: untick \"Plain TCP (no TLS)\" and connect again.",
    );
    let plain = Server::start(&["--no-tls"]);
    let mut w = form_error(plain.addr(), "", false);
    wait_for(
        &mut w,
        "The server speaks plain TCP: tick \"Plain TCP (no TLS)\" and connect again.",
    );

    // Busy: the only place is taken.
    let full = Server::start(&["--max-clients", "1"]);
    let _holder = full.connect();
    let mut w = form_error(full.addr(), &full.ca().display().to_string(), false);
    wait_for(&mut w, "The server is busy: try again later.");
    assert!(shows(&w, "Reconnect"));
}

#[test]
fn a_lost_or_closing_server_shows_on_the_screen_it_was_using() {
    let mut server = Server::start(&["--service", "chat"]);
    let mut w = connected(&server, "ann", "chat");
    wait_for(&mut w, "Welcome ann, 1 online");
    wait_for(&mut w, "ann (you)");
    server.stop_with(libc::SIGTERM);
    wait_for(
        &mut w,
        "The server is shutting down, so the session has ended.",
    );
    // The conversation stays readable, with a way back; the wire's `BYE` is not in it, and the
    // members are not shown as if still there (issue 21).
    assert!(shows(&w, "Welcome ann, 1 online"));
    assert!(shows(&w, "Reconnect") && shows(&w, "Back to the form"));
    assert!(
        !texts(&w).iter().any(|t| t.contains("BYE")),
        "{:#?}",
        texts(&w)
    );
    assert!(shows(&w, "You are no longer in the room."));
    assert!(!shows(&w, "ann (you)") && !shows(&w, "Members (1)"));

    let server = Server::start(&[]);
    let mut w = connected(&server, "", "calc");
    server.signal(libc::SIGKILL);
    wait_for(
        &mut w,
        "Connection lost: the server went away without a word.",
    );
    w.get_by_label("Back to the form").click();
    wait_for(&mut w, "Address");
}

#[test]
fn a_silent_server_never_freezes_the_window() {
    // Accepts, then says nothing: the handshake waits, the window does not.
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = silent.local_addr().unwrap();
    let mut w = form_error(addr, "", false);
    wait_for(&mut w, &format!("Connecting to {addr}..."));
    let start = Instant::now();
    for _ in 0..20 {
        w.step();
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "frames kept coming"
    );
    w.get_by_label("Cancel").click();
    wait_for(&mut w, "Connect");
    // Left alone, the attempt ends by itself with a sentence.
    let mut w = form_error(addr, "", false);
    wait_for(
        &mut w,
        "The server took the connection but did not answer within 10 s.",
    );
}

/// The real window, as a person starts it: `examples/gui` under Xvfb, drawn by Mesa's software
/// renderer (what a headless machine has). It must open its window and stay up.
#[test]
fn the_real_window_opens_under_xvfb_with_mesa() {
    if !common::require_program("Xvfb", "xvfb") || !common::require_program("xwininfo", "x11-utils")
    {
        return;
    }
    let server = Server::start(&[]);
    let xvfb = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1024x768x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb runs (Debian package xvfb; .ci/run installs it)");
    let mut xvfb = KilledChild(xvfb);
    let mut display = String::new();
    BufReader::new(xvfb.0.stdout.take().unwrap())
        .read_line(&mut display)
        .unwrap();
    let display = format!(":{}", display.trim());
    let gui = Command::new(common::example_bin("gui"))
        .args(["--ca".as_ref(), server.ca().as_os_str()])
        .arg(server.addr().ip().to_string())
        .arg(server.addr().port().to_string())
        .env("DISPLAY", &display)
        .env_remove("WAYLAND_DISPLAY")
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut gui = KilledChild(gui);
    let start = Instant::now();
    loop {
        let tree = Command::new("xwininfo")
            .args(["-root", "-tree", "-display", &display])
            .output()
            .expect("xwininfo runs (Debian package x11-utils)");
        if String::from_utf8_lossy(&tree.stdout).contains("\"securetcp\"") {
            break;
        }
        if let Some(status) = gui.0.try_wait().unwrap() {
            let mut why = String::new();
            let _ = std::io::Read::read_to_string(gui.0.stderr.as_mut().unwrap(), &mut why);
            panic!("the GUI exited ({status}) instead of opening its window:\n{why}");
        }
        assert!(start.elapsed() < WAIT, "no window named securetcp appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Drawn frames, not a crash a moment later.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(gui.0.try_wait().unwrap().is_none(), "the GUI stays up");
}

/// A program this test started, ended when the test ends, however it ends.
struct KilledChild(Child);

impl Drop for KilledChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Issue 21, defect 4: Chinese and emoji were empty boxes. The window's fonts must know a CJK
/// ideograph, a kana and an emoji. The emoji font is built in; CJK comes from the system's fonts,
/// so a machine without one skips that half with one line (CI, which installs one, may not).
#[test]
fn the_fonts_know_cjk_and_emoji() {
    let mut w = window(SocketAddr::from((Ipv4Addr::LOCALHOST, 1)), "", "");
    w.step();
    let font = FontId::proportional(16.0);
    let has = |c: char| w.ctx.fonts_mut(|fonts| fonts.has_glyph(&font, c));
    assert!(has('😀'), "an emoji has a glyph");
    assert!(has('🎉'), "an emoji has a glyph");
    if !has('中') || !has('あ') {
        let fc = Command::new("fc-list")
            .arg(":charset=4e2d")
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default();
        let ci = std::env::var("CI").as_deref() == Ok("true");
        if fc.is_empty() && !ci {
            eprintln!(
                "skipped: the_fonts_know_cjk_and_emoji (CJK half) needs a CJK font \
                 (install Debian package fonts-droid-fallback)"
            );
            return;
        }
        panic!("the system has a CJK font, yet the window's fonts lack 中 or あ");
    }
}

/// Issue 21: a readable type size, and layouts that stretch: at 1200 px the form is centred and
/// its fields grow past the old fixed 360 px; at 360 px nothing is cut off at the right edge.
#[test]
fn the_layout_stretches_from_360_to_1200_px() {
    let server = Server::start(&[]);
    let mut w = window(server.addr(), &server.ca().display().to_string(), "");
    w.set_size(Vec2::new(1200.0, 800.0));
    w.run_steps(3);
    let body = w.ctx.global_style().text_styles[&TextStyle::Body].size;
    assert!(body >= 15.0, "body text is {body} pt");
    let address = w.get_by_label("Address").rect();
    assert!(address.width() > 400.0, "the Address field is {address:?}");
    let form = w.get_by_label("Connect").rect().union(address);
    let centre = form.center().x;
    assert!(
        (centre - 600.0).abs() < 80.0,
        "the form is not centred: {form:?}"
    );

    w.set_size(Vec2::new(360.0, 640.0));
    w.run_steps(3);
    for label in ["Address", "Choose the CA file", "Connect"] {
        let rect = w.get_by_label(label).rect();
        assert!(
            rect.max.x <= 360.0,
            "{label} is cut off at 360 px: {rect:?}"
        );
    }
    w.get_by_label("Connect").click();
    wait_for(&mut w, &format!("calc at {}", server.addr()));
    w.run_steps(3);
    let button = w.get_by_label("Calculate").rect();
    assert!(button.max.x <= 360.0, "Calculate is cut off: {button:?}");
    let field = w.get_by_label("Expression").rect();
    assert!(field.width() > 100.0, "the Expression field is {field:?}");
    w.set_size(Vec2::new(1200.0, 800.0));
    w.run_steps(3);
    let field = w.get_by_label("Expression").rect();
    assert!(
        field.width() > 500.0,
        "the Expression field stays {field:?} at 1200 px"
    );
}

/// Issue 21: a file picker for the CA, certificate and key, drawn in the window.
#[test]
fn the_picker_fills_the_ca_field() {
    let dir = TestDir::new("gui-picker");
    std::fs::create_dir_all(dir.0.join("certs")).unwrap();
    std::fs::write(dir.0.join("certs/ca.pem"), "x").unwrap();
    std::fs::write(dir.0.join("certs/notes.txt"), "x").unwrap();
    let mut w = window(SocketAddr::from((Ipv4Addr::LOCALHOST, 1)), "", "");
    w.state_mut().form.ca = dir.0.display().to_string();
    w.step();
    w.get_by_label("Choose the CA file").click();
    wait_for(&mut w, "Show all files");
    w.get_by_label("certs/").click();
    wait_for(&mut w, "ca.pem");
    assert!(!shows(&w, "notes.txt"), "only TLS files unless asked");
    w.get_by_label("ca.pem").click();
    w.step();
    w.get_by_label("Choose").click();
    wait_for(&mut w, "Address");
    assert_eq!(
        w.get_by_label("CA file").value(),
        Some(dir.0.join("certs/ca.pem").display().to_string())
    );
    // Cancel leaves the field as it was.
    w.get_by_label("Choose the client key").click();
    wait_for(&mut w, "Cancel");
    w.get_by_label("Cancel").click();
    wait_for(&mut w, "Address");
    assert_eq!(w.get_by_label("Client key").value().as_deref(), Some(""));
}

/// Issue 21: without a display, one line for a person (it was winit's report, with a path into
/// the cargo registry).
#[test]
fn without_a_display_one_line_says_so() {
    let out = Command::new(common::example_bin("gui"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: no display to open the window on"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(".cargo") && !stderr.contains("registry"),
        "{stderr}"
    );
}
