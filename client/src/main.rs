//! The blocking securetcp client, `securetcp-client [OPTIONS] [HOST [PORT]]`: `cargo run --release
//! --bin securetcp-client -- ...` at the repository root, which builds the server's library and
//! this crate, none of the tests' or benches' dependencies.
//!
//! The terminal front end lives here: the address prompts, the console (rustyline on a
//! terminal, a pipe, or `--exec`) and one conversation per service. The connection, the
//! command line and the checks are the library's (`securetcp::client`), which the GUI and the
//! tests share; so the server's own build carries no line editor.

mod console;
mod modes;

use std::io::{self, BufRead, IsTerminal, Write};
use std::process::ExitCode;

use securetcp::client::{
    self, ClientCommand, ClientOptions, Session, host_of, parse_port, server_name, visible,
};
use securetcp::proto::{DEFAULT_HOST, DEFAULT_PORT};

fn main() -> ExitCode {
    let program = program_name();
    // The usage's own word for the program is `client`: the name it was started by replaces it.
    let named = |text: &str| text.replacen("client", &program, 1);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match client::parse_args(&args) {
        Ok(ClientCommand::Run(options)) => run(options),
        Ok(ClientCommand::Help) => {
            println!("{}", named(&client::usage()));
            0
        }
        Ok(ClientCommand::Version) => {
            println!("{program} {}", securetcp::proto::VERSION);
            0
        }
        Err(message) => {
            eprintln!(
                "error: {message}\n{}; try --help for the options",
                named(client::USAGE_LINE)
            );
            2
        }
    };
    ExitCode::from(code as u8)
}

/// The name the program was started by (`securetcp-client`, or a link's name).
fn program_name() -> String {
    std::env::args()
        .next()
        .as_deref()
        .map(std::path::Path::new)
        .and_then(|path| path.file_name()?.to_str().map(str::to_string))
        .unwrap_or_else(|| "securetcp-client".to_string())
}

/// Asks for a missing host or port when stdin is a terminal (the seeds' prompts); `None` at
/// the end of input. With stdout captured (`x=$(client)`), the question goes to stderr, where
/// the person is.
fn ask(prompt: &str, default: &str) -> Option<String> {
    let question = format!("{prompt} [{default}]: ");
    if io::stdout().is_terminal() {
        print!("{question}");
        let _ = io::stdout().flush();
    } else {
        eprint!("{question}");
    }
    let mut answer = String::new();
    match io::stdin().lock().read_line(&mut answer) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(match answer.trim() {
            "" => default.to_string(),
            given => given.to_string(),
        }),
    }
}

/// Runs the client: connects, then talks as the greeted service wants. Returns the exit code.
fn run(o: ClientOptions) -> i32 {
    let interactive = io::stdin().is_terminal() && o.exec.is_empty();
    // `--server` alone: no question asked; HOST PORT given too come first.
    if o.host.is_none() && o.port.is_none() && !o.servers.is_empty() {
        return talk_to(o.servers.clone(), &o);
    }
    let host = match &o.host {
        Some(h) => h.clone(),
        // A host that does not resolve is said at once, and asked again, before the port.
        None if interactive => loop {
            let Some(answer) = ask("Server IP address", DEFAULT_HOST) else {
                return 0;
            };
            let host = host_of(&answer);
            match securetcp::addr::resolve(&host, 0) {
                Ok(_) => break host,
                Err(why) => eprintln!("error: {}", visible(&why)),
            }
        },
        None => DEFAULT_HOST.to_string(),
    };
    let port = match o.port {
        Some(p) => p,
        None if interactive => loop {
            let Some(answer) = ask("Port", &DEFAULT_PORT.to_string()) else {
                return 0;
            };
            match parse_port(&answer) {
                Ok(p) => break p,
                Err(why) => eprintln!("error: {why}"),
            }
        },
        None => DEFAULT_PORT,
    };
    let mut servers = vec![(host, port)];
    servers.extend(o.servers.iter().cloned());
    talk_to(servers, &o)
}

/// Connects to the first of `servers` that answers, then talks; returns the exit code.
fn talk_to(servers: Vec<(String, u16)>, o: &ClientOptions) -> i32 {
    let mut last_error = None;
    let mut connected = None;
    for (index, (host, port)) in servers.iter().enumerate() {
        match Session::connect(host, *port, o) {
            Ok(session) => {
                connected = Some((session, index));
                break;
            }
            Err(e) => {
                // The last one's failure is the error line below, said once.
                if index + 1 < servers.len() {
                    match e.names_the_server() {
                        true => eprintln!("note: {e} (trying the next server)"),
                        false => eprintln!(
                            "note: {}: {e} (trying the next server)",
                            server_name(host, *port)
                        ),
                    }
                }
                last_error = Some(e);
            }
        }
    }
    let Some((session, index)) = connected else {
        if let Some(e) = last_error {
            eprintln!("error: {e}");
        }
        return 1;
    };
    let exec = !o.exec.is_empty();
    match modes::converse(session, o, servers, index) {
        Ok(failures) if failures > 0 && exec => 1,
        Ok(_) => 0,
        Err(e) => {
            eprintln!("error: {}", visible(&e.to_string()));
            1
        }
    }
}
