//! What the client does once greeted: one conversation per service.
//!
//! - calc (and any service without a mode of its own): a line, its reply, printed as a person
//!   reads it; nonsense is refused locally with a warning.
//! - chat: a thread reads the socket and prints what others say while the main thread reads stdin.
//! - sum: asks for a number, exchanges it, prints `25 (client) + 50 (server) = 75`.
//! - quiz: shows each question, sends the answer, shows the verdict and the score.
//!
//! Every function returns how many lines got an `ERR` (or were refused locally): with `--exec`,
//! any makes the exit code 1.

use std::io::{self, Write};

use super::{ClientError, ClientOptions, Input, LineReader, Session};
use crate::expr;
use crate::service::{Common, check_name, common_command, sum};

pub(super) fn converse(
    mut session: Session,
    o: &ClientOptions,
    input: Input,
) -> Result<usize, ClientError> {
    let result = match session.service.as_str() {
        "chat" => return chat(session, o, input),
        "sum" => sum(&mut session, o, input),
        "quiz" => quiz(&mut session, o, input),
        _ => request_reply(&mut session, o, input),
    };
    session.close();
    result
}

/// Prints a reply as a person wants to read it; returns 1 for an `ERR`, else 0.
fn show_reply(reply: &str) -> usize {
    if let Some(text) = reply.strip_prefix("OK ") {
        println!("{text}");
        0
    } else if let Some(reason) = reply.strip_prefix("ERR ") {
        println!("error: {reason}");
        1
    } else if reply.starts_with("BYE") {
        println!("Session ended");
        0
    } else {
        println!("{reply}");
        0
    }
}

/// The check a line passes before it is sent: nothing empty, a valid name for `name`, and for
/// calc nothing that is not an expression (a division by zero is sent: that answer is the server's).
pub fn local_check(service: &str, line: &str) -> Result<(), String> {
    if line.is_empty() {
        return Err("empty line".into());
    }
    match common_command(line) {
        Some(Common::Name(name)) => return check_name(name).map_err(str::to_string),
        Some(_) => return Ok(()),
        None => {}
    }
    match service {
        "calc" => match expr::evaluate(line) {
            Err(e) if e.is_malformed() => Err(e.to_string()),
            _ => Ok(()),
        },
        "quiz" if line.parse::<i64>().is_err() => Err("answer with a whole number".into()),
        _ => Ok(()),
    }
}

fn is_quit(line: &str) -> bool {
    common_command(line) == Some(Common::Quit)
}

/// Sends `q` and reads until `BYE` (anything else that arrives is shown).
fn leave(session: &mut Session) -> Result<usize, ClientError> {
    session.send_line("q")?;
    let mut failures = 0;
    while let Some(line) = session.read_line()? {
        failures += show_reply(&line);
        if line.starts_with("BYE") {
            return Ok(failures);
        }
    }
    Err(ClientError::Closed)
}

/// calc, and any service the client has no special mode for.
fn request_reply(
    session: &mut Session,
    o: &ClientOptions,
    mut input: Input,
) -> Result<usize, ClientError> {
    let mut failures = 0;
    if input.is_terminal() {
        println!(
            "Connected to a {} server. Type help for the commands, q to quit.",
            session.service
        );
    }
    if let Some(name) = &o.name {
        failures += show_reply(&session.request(&format!("name {name}"))?);
    }
    while let Some(line) = input.next_line("> ") {
        let line = line.trim();
        if let Err(warning) = local_check(&session.service, line) {
            println!("warning: not sent: {warning}");
            failures += 1;
            continue;
        }
        if is_quit(line) {
            break;
        }
        failures += show_reply(&session.request(line)?);
    }
    Ok(failures + leave(session)?)
}

/// The name for sum (and the chat's fallback): `--name`, else `$USER`, else `client`.
fn default_name(o: &ClientOptions) -> String {
    o.name
        .clone()
        .or_else(|| std::env::var("USER").ok().filter(|u| check_name(u).is_ok()))
        .unwrap_or_else(|| "client".to_string())
}

const SUM_PROMPT: &str = "Please enter an integer between 1 and 100:";

/// Asks a prompt: inline on a terminal, on a line of its own when stdin is piped (so the
/// output still reads well), not at all for `--exec`.
fn prompt_line(input: &mut Input, prompt: &str) -> Option<String> {
    if matches!(input, Input::Stdin { terminal: false }) {
        println!("{prompt}");
    }
    input.next_line(&format!("{prompt} "))
}

fn sum(session: &mut Session, o: &ClientOptions, mut input: Input) -> Result<usize, ClientError> {
    let name = default_name(o);
    let mut failures = 0;
    while let Some(line) = prompt_line(&mut input, SUM_PROMPT) {
        let line = line.trim();
        if is_quit(line) {
            break;
        }
        let Some(n) = sum::parse_number(line) else {
            println!(
                "warning: not sent: {} (not {line:?})",
                SUM_PROMPT.trim_end_matches(':').to_lowercase()
            );
            failures += 1;
            continue;
        };
        let reply = session.request(&format!("Client of {name};{n}"))?;
        let server_number = reply
            .strip_prefix("OK Server of ")
            .and_then(|rest| rest.rsplit_once(';'))
            .and_then(|(_, m)| m.trim().parse::<i64>().ok());
        match server_number {
            Some(m) => println!("{n} (client) + {m} (server) = {}", n + m),
            None => failures += show_reply(&reply),
        }
    }
    Ok(failures + leave(session)?)
}

fn quiz(session: &mut Session, o: &ClientOptions, mut input: Input) -> Result<usize, ClientError> {
    let mut failures = 0;
    if let Some(name) = &o.name {
        failures += show_reply(&session.request(&format!("name {name}"))?);
        session.read_line()?; // the question again, which we already have
    }
    let mut question = next_question(session)?;
    loop {
        let prompt = format!("What is {question}?");
        let Some(line) = prompt_line(&mut input, &prompt) else {
            break;
        };
        let line = line.trim();
        if is_quit(line) {
            break;
        }
        if let Err(warning) = local_check("quiz", line) {
            println!("warning: not sent: {warning}");
            failures += 1;
            continue;
        }
        let reply = session.request(line)?;
        match reply.strip_prefix("ERR wrong") {
            // A wrong answer is part of the game, not a failure to report as an error.
            Some(rest) => {
                println!("wrong{rest}");
                failures += 1;
            }
            None => failures += show_reply(&reply),
        }
        question = next_question(session)?;
    }
    Ok(failures + leave(session)?)
}

/// Reads up to the next `QUIZ a + b` line and returns `a + b`.
fn next_question(session: &mut Session) -> Result<String, ClientError> {
    loop {
        let line = session.read_line()?.ok_or(ClientError::Closed)?;
        if let Some(question) = line.strip_prefix("QUIZ ") {
            return Ok(question.to_string());
        }
        show_reply(&line);
    }
}

/// How a chat line from the server reads on screen.
fn chat_display(line: &str) -> (String, bool) {
    let mut words = line.splitn(3, ' ');
    let (tag, first, rest) = (
        words.next().unwrap_or(""),
        words.next().unwrap_or(""),
        words.next(),
    );
    let shown = match tag {
        "MSG" => format!("{first}: {}", rest.unwrap_or("")),
        "JOIN" => format!("* {first} joined"),
        "LEFT" => format!("* {first} left"),
        "OK" => line[3..].to_string(),
        "ERR" => return (format!("error: {}", &line[4..]), true),
        "BYE" => "Session ended".to_string(),
        _ => line.to_string(),
    };
    (shown, false)
}

fn chat(mut session: Session, o: &ClientOptions, mut input: Input) -> Result<usize, ClientError> {
    let mut failures = 0;
    // Log in first (one request, one reply: nothing else is sent to a guest).
    let mut name = o.name.clone();
    loop {
        let candidate = match name.take() {
            Some(n) => n,
            None if input.is_exec() => default_name(o),
            None => match prompt_line(&mut input, "Your name:") {
                Some(n) => n.trim().to_string(),
                None => return Ok(failures + leave(&mut session)?),
            },
        };
        let reply = session.request(&format!("name {candidate}"))?;
        match reply.strip_prefix("OK ") {
            Some(welcome) => {
                println!("{}", capitalise(welcome));
                break;
            }
            None => {
                failures += show_reply(&reply);
                if input.is_exec() {
                    return Ok(failures + leave(&mut session)?);
                }
            }
        }
    }

    // From here two threads: this one reads stdin and sends, the other prints what arrives.
    let (transport, reader) = session.into_parts();
    let printer = std::thread::spawn(move || print_until_bye(reader));
    while let Some(line) = input.next_line("") {
        let line = line.trim_end();
        if line.trim().is_empty() {
            continue; // nothing to say
        }
        if is_quit(line) {
            break;
        }
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        if transport.write_all(&bytes).is_err() {
            break; // the printer reports why the session ended
        }
    }
    let _ = transport.write_all(b"q\n");
    let printed = printer.join().unwrap_or(Err(ClientError::Closed));
    transport.close();
    Ok(failures + printed?)
}

/// The chat's socket reader: prints every line until `BYE` (or the end of the connection).
fn print_until_bye(mut reader: LineReader) -> Result<usize, ClientError> {
    let mut failures = 0;
    loop {
        let Some(line) = reader.read_line()? else {
            // The server ended the session without BYE (shutdown, or we were too slow).
            println!("The server closed the connection");
            let _ = io::stdout().flush();
            std::process::exit(1);
        };
        let (shown, is_error) = chat_display(&line);
        println!("{shown}");
        let _ = io::stdout().flush();
        failures += usize::from(is_error);
        if line.starts_with("BYE") {
            return Ok(failures);
        }
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_lines_read_like_a_conversation() {
        assert_eq!(chat_display("MSG bob hi there").0, "bob: hi there");
        assert_eq!(chat_display("JOIN bob").0, "* bob joined");
        assert_eq!(chat_display("LEFT bob").0, "* bob left");
        assert_eq!(chat_display("OK alice bob").0, "alice bob");
        assert_eq!(
            chat_display("ERR name taken"),
            ("error: name taken".to_string(), true)
        );
        assert_eq!(chat_display("BYE session ended").0, "Session ended");
    }

    #[test]
    fn quiz_answers_must_be_whole_numbers() {
        assert!(local_check("quiz", "42").is_ok());
        assert!(local_check("quiz", "-3").is_ok());
        assert!(local_check("quiz", "four").is_err());
        assert!(local_check("quiz", "help").is_ok());
    }
}
