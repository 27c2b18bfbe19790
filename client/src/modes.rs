//! What the client does once greeted: one conversation per service.
//!
//! - calc (and any service without a mode of its own): a line, its reply, printed as a person
//!   reads it; nonsense is refused locally with a warning.
//! - chat: messages from others are printed as they come, above the line being typed.
//! - sum: asks for a number, exchanges it, prints which server answered and the sum.
//! - quiz: shows each question, sends the answer, shows the verdict and the score.
//!
//! A thread reads the socket and the [`Console`] reads the person; both arrive as [`Event`]s on
//! one channel, so each conversation is one loop over one channel, and a server that ends the
//! session (`BYE server shutting down`) is noticed even while the client waits for typing.
//! Each conversation counts the lines that got an `ERR` (or were refused locally): with
//! `--exec`, any makes the exit code 1.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use securetcp::client::{
    ClientError, ClientOptions, LineReader, Session, Transport, capitalise, local_check,
    login_name, quote, server_name,
};
use securetcp::proto::{Reply, ServiceKind};

use super::console::{Console, Event, Prompt};
use securetcp::proto::exchange::{self as sum, check_exchange_name};
use securetcp::proto::name::check as check_name;
use securetcp::proto::{Common, common_command};

/// Runs the conversation the greeting asked for, with `servers[current]`, moving to the next
/// server when this one goes away; returns how many lines failed.
pub fn converse(
    session: Session,
    o: &ClientOptions,
    servers: Vec<(String, u16)>,
    current: usize,
) -> Result<usize, ClientError> {
    let service = session.service;
    let (transport, reader) = session.into_parts();
    let (console, events_in, events) = Console::new(o.exec.clone());
    read_server(reader, events_in.clone());
    let mut talk = Talk {
        transport,
        events,
        events_in,
        console,
        typed_ahead: VecDeque::new(),
        service,
        failures: 0,
        servers,
        current,
        options: o.clone(),
        relogin: None,
        stale_ends: 0,
        last_traffic: Cell::new(Instant::now()),
    };
    let result = match talk.service {
        ServiceKind::Chat => chat(&mut talk, o),
        ServiceKind::Sum => sum(&mut talk, o),
        ServiceKind::Quiz => quiz(&mut talk, o),
        ServiceKind::Calc => request_reply(&mut talk, o),
    };
    talk.transport.close();
    result.map(|()| talk.failures)
}

/// What the person did next.
enum Typed {
    Line(String),
    /// End of input (Ctrl-D, end of the pipe, the last `--exec` line): leave politely.
    End,
    /// The server ended the session meanwhile (its `BYE` is already shown): nothing more to do.
    ServerEnded,
}

/// The server's lines, read on a thread of their own into the conversation's one channel.
fn read_server(mut reader: LineReader, events: Sender<Event>) {
    std::thread::spawn(move || {
        loop {
            let line = reader.read_line();
            let end = !matches!(line, Ok(Some(_)));
            if events.send(Event::Server(line)).is_err() || end {
                return;
            }
        }
    });
}

/// What the server said next.
enum Heard {
    Line(String),
    /// The server went away without a `BYE` and the next one took over (logged in again
    /// where the service needs it): a request in flight got no answer.
    Moved,
}

struct Talk {
    transport: Arc<Transport>,
    events: Receiver<Event>,
    /// For the reader thread of the next server after a failover.
    events_in: Sender<Event>,
    console: Console,
    /// Typed lines that arrived while the conversation waited for the server.
    typed_ahead: VecDeque<Option<String>>,
    service: ServiceKind,
    failures: usize,
    /// The servers, in order, and the one talking now (`--server`).
    servers: Vec<(String, u16)>,
    current: usize,
    options: ClientOptions,
    /// The line that logs in again on the next server (`name NAME`, once accepted).
    relogin: Option<String>,
    /// Ends of connections already failed over from (a write found the server gone before
    /// its reader thread said so): each reader says it once, and that is no new failure.
    stale_ends: usize,
    /// When a line last went either way: how long the session had been idle when the server
    /// ends it with `BYE idle timeout`.
    last_traffic: Cell<Instant>,
}

impl Talk {
    fn send(&self, line: &str) -> Result<(), ClientError> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.transport.write_all(&bytes)?;
        self.last_traffic.set(Instant::now());
        Ok(())
    }

    /// A line from the server arrived (its `BYE` does not count: it ends the idle time).
    fn heard(&self, line: &str) {
        if !is_bye(line) {
            self.last_traffic.set(Instant::now());
        }
    }

    /// The next line from the server; what is typed meanwhile waits its turn. A server that
    /// goes away without a `BYE` is replaced by the next one of the list, if there is one.
    fn server_line(&mut self) -> Result<Heard, ClientError> {
        loop {
            match self.events.recv() {
                Ok(Event::Typed(typed)) => {
                    self.console.typed_arrived();
                    self.typed_ahead.push_back(typed);
                }
                Ok(Event::Server(Ok(Some(line)))) => {
                    self.heard(&line);
                    return Ok(Heard::Line(line));
                }
                Ok(Event::Server(_)) if self.stale_ends > 0 => self.stale_ends -= 1,
                Ok(Event::Server(Ok(None))) => return self.fail_over(),
                // Whatever ended it (a reset, EOF without close_notify), the server is gone.
                Ok(Event::Server(Err(_))) => return self.fail_over(),
                Err(_) => return Err(ClientError::Closed),
            }
        }
    }

    /// The server went away without a `BYE`: the next servers of the list are tried in turn,
    /// once round at most; the first that answers takes over, and the conversation logs in
    /// again where it had. A single server is tried once more: behind a balancer's one address
    /// (HAProxy in front of several instances) that reaches a live instance. When none answers,
    /// the error says the server was lost and why the retry failed, in one line.
    fn fail_over(&mut self) -> Result<Heard, ClientError> {
        let count = self.servers.len();
        let tries = count.max(2) - 1;
        let (host, port) = &self.servers[self.current];
        let from = server_name(host, *port);
        if count > 1 {
            self.console.tell(&format!(
                "note: lost the connection to {from}; trying the next server"
            ));
        }
        let mut retry = None;
        for step in 1..=tries {
            let index = (self.current + step) % count;
            let (host, port) = self.servers[index].clone();
            let name = server_name(&host, port);
            let session = match Session::connect(&host, port, &self.options) {
                Ok(session) => session,
                Err(e) if count > 1 => {
                    match e.names_the_server() {
                        true => self.console.tell(&format!("note: {e}")),
                        false => self.console.tell(&format!("note: {name}: {e}")),
                    }
                    continue;
                }
                Err(e) => {
                    retry = Some(Box::new(e));
                    continue;
                }
            };
            self.current = index;
            let (transport, reader) = session.into_parts();
            self.transport = transport;
            read_server(reader, self.events_in.clone());
            self.console.tell(&format!("reconnected to {name}"));
            if let Some(line) = self.relogin.clone() {
                self.log_in_again(&line, &name)?;
            }
            return Ok(Heard::Moved);
        }
        // One line that says what happened and what was tried, not the loss and the retry's
        // failure as two that seem to disagree.
        Err(ClientError::Lost { from, retry })
    }

    /// A write found the server gone: [`Talk::fail_over`], and the end its reader thread
    /// will report is not a failure of the next server.
    fn fail_over_from_write(&mut self) -> Result<Heard, ClientError> {
        self.stale_ends += 1;
        self.fail_over()
    }

    /// Sends `line` (`name NAME`) to the server that just took over. Its answer may be
    /// `ERR name taken` for our own name: the old session is still listed there until the
    /// room finds its server gone (3.5 s for another instance's member). That is asked again
    /// every [`RELOGIN_EVERY`] for up to [`RELOGIN_FOR`]; a chat still refused then could not
    /// be restored, which is an error (the client exits 1), never a session left logged out.
    fn log_in_again(&mut self, line: &str, server: &str) -> Result<(), ClientError> {
        let deadline = Instant::now() + RELOGIN_FOR;
        let mut told = false;
        loop {
            if self.send(line).is_err() {
                // That server went away too: the next one takes over, and logs in.
                self.fail_over_from_write()?;
                return Ok(());
            }
            let reply = match self.server_line()? {
                Heard::Line(reply) => reply,
                // That server went away too: the next one took over, logged in.
                Heard::Moved => return Ok(()),
            };
            let Some(Reply::Err(reason)) = Reply::parse(&reply) else {
                return Ok(());
            };
            if reason == "name taken" && Instant::now() < deadline {
                if !told {
                    told = true;
                    self.console.tell(&format!(
                        "note: {} is still held at {server} by the session that was lost; trying \
                         again for up to {} s",
                        quote(line.strip_prefix("name ").unwrap_or(line)),
                        RELOGIN_FOR.as_secs()
                    ));
                }
                std::thread::sleep(RELOGIN_EVERY);
                continue;
            }
            if self.service != ServiceKind::Chat {
                self.console.error(reason);
                return Ok(()); // calc goes on without the name
            }
            let name = line.strip_prefix("name ").unwrap_or(line);
            return Err(ClientError::Login(format!(
                "could not log in again as {} on {server}: {reason}{}; the session could not be \
                 restored",
                quote(name),
                match reason == "name taken" {
                    true => format!(" (still, {} s after reconnecting)", RELOGIN_FOR.as_secs()),
                    false => String::new(),
                },
            )));
        }
    }

    /// The next typed line. What the server sends meanwhile is shown; a `BYE` ends the wait.
    fn typed(&mut self, prompt: &str, shown: Prompt) -> Result<Typed, ClientError> {
        self.console.ask(prompt, shown);
        loop {
            // What the server said meanwhile first: a server gone is noticed before a line
            // typed ahead is written into its dead socket (where it would be lost).
            let event = match self.events.try_recv() {
                Ok(event) => Ok(event),
                Err(_) => match self.typed_ahead.pop_front() {
                    Some(typed) => return Ok(typed.map_or(Typed::End, Typed::Line)),
                    None => self.events.recv(),
                },
            };
            match event {
                Ok(Event::Typed(typed)) => {
                    self.console.typed_arrived();
                    self.typed_ahead.push_back(typed);
                }
                Ok(Event::Server(Ok(Some(line)))) if is_bye(&line) => {
                    self.show_bye(&line);
                    return Ok(Typed::ServerEnded);
                }
                Ok(Event::Server(Ok(Some(line)))) => {
                    self.heard(&line);
                    self.show_unasked(&line);
                }
                Ok(Event::Server(_)) if self.stale_ends > 0 => self.stale_ends -= 1,
                // Gone without a word while the person types: the next server takes over.
                Ok(Event::Server(Ok(None))) => _ = self.fail_over()?,
                Ok(Event::Server(Err(_))) => _ = self.fail_over()?,
                Err(_) => return Err(ClientError::Closed),
            }
        }
    }

    /// Sends a line and returns its reply; `None` when the server said `BYE` instead (shown).
    /// A line whose server went away unanswered goes again to the next server (calc, sum);
    /// a quiz begins anew there instead.
    fn request(&mut self, line: &str) -> Result<Option<String>, ClientError> {
        loop {
            let heard = match self.send(line) {
                Ok(()) => self.server_line()?,
                Err(_) => self.fail_over_from_write()?,
            };
            match heard {
                Heard::Line(reply) if is_bye(&reply) => {
                    self.show_bye(&reply);
                    return Ok(None);
                }
                Heard::Line(reply) => return Ok(Some(reply)),
                Heard::Moved if self.service == ServiceKind::Quiz => {
                    return Ok(Some("OK a new quiz begins".into()));
                }
                Heard::Moved => continue,
            }
        }
    }

    /// Prints a reply as a person wants to read it: `OK` text on stdout, `ERR` as `error:` on
    /// stderr (and counted).
    fn show_reply(&mut self, reply: &str) {
        match Reply::parse(reply) {
            Some(Reply::Ok(text)) => self.console.say(text),
            Some(Reply::Err(reason)) => {
                self.console.error(reason);
                self.failures += 1;
            }
            Some(Reply::Bye(_)) => self.show_bye(reply),
            _ => self.console.say(reply),
        }
    }

    /// `BYE session ended` reads `Session ended`; any other reason follows it. `BYE idle timeout`
    /// reads `disconnected after N s idle` (on stderr): the session is over, the server is not
    /// lost, so nothing reconnects (SPEC "An idle close says so").
    fn show_bye(&mut self, line: &str) {
        match Reply::parse(line) {
            Some(Reply::Bye(IDLE_TIMEOUT)) => {
                let idle = self.last_traffic.get().elapsed().as_secs_f64().round();
                self.console
                    .farewell_note(&format!("disconnected after {idle} s idle"));
            }
            Some(Reply::Bye(reason)) if !reason.is_empty() && reason != "session ended" => {
                self.console.farewell(&format!("Session ended: {reason}"))
            }
            _ => self.console.farewell("Session ended"),
        }
    }

    /// A line the server sent without being asked right now: a chat push, or anything else.
    fn show_unasked(&mut self, line: &str) {
        // Only the chat pushes lines of its own (MSG, JOIN, LEFT) at any time.
        if self.service != ServiceKind::Chat {
            return self.show_reply(line);
        }
        match Reply::parse(line) {
            Some(Reply::Msg { from, text }) => self.console.say(&format!("{from}: {text}")),
            Some(Reply::Join(who)) => self.console.say(&format!("* {who} joined")),
            Some(Reply::Left(who)) => self.console.say(&format!("* {who} left")),
            _ => self.show_reply(line),
        }
    }

    /// Sends `q` and shows what arrives until the `BYE`.
    fn leave(&mut self) -> Result<(), ClientError> {
        self.send("q")?;
        loop {
            match self.server_line()? {
                Heard::Line(line) if is_bye(&line) => {
                    self.show_bye(&line);
                    return Ok(());
                }
                Heard::Line(line) => self.show_unasked(&line),
                // Leaving a server that is gone: leave its successor instead.
                Heard::Moved => self.send("q")?,
            }
        }
    }

    /// Sends `q` and waits for the `BYE` without a word: for a session that never began (a
    /// script's chat login refused), whose one line saying why follows.
    fn leave_quietly(&mut self) -> Result<(), ClientError> {
        self.send("q")?;
        loop {
            match self.server_line()? {
                Heard::Line(line) if is_bye(&line) => return Ok(()),
                Heard::Line(_) => {}
                Heard::Moved => self.send("q")?,
            }
        }
    }

    /// A line refused before sending: a warning, counted as an `ERR`.
    fn refuse(&mut self, why: &str) {
        self.console.warning(&format!("not sent: {why}"));
        self.failures += 1;
    }
}

/// After a failover, how long our own name may still be held by the old session before the
/// client gives up: another instance announces a killed one's members gone within 5 s (SPEC
/// "Chat across instances"), measured from the death, which came before our reconnection.
const RELOGIN_FOR: Duration = Duration::from_secs(5);
/// How often the login is tried again meanwhile.
const RELOGIN_EVERY: Duration = Duration::from_millis(250);

/// The reason of the `BYE` that ends an idle session (`--idle-timeout`).
const IDLE_TIMEOUT: &str = "idle timeout";

/// `BYE ...`: the server ends the session.
fn is_bye(line: &str) -> bool {
    matches!(Reply::parse(line), Some(Reply::Bye(_)))
}

fn is_quit(line: &str) -> bool {
    common_command(line) == Some(Common::Quit)
}

/// `--name` sent as `name NAME` (calc and quiz): a name the server would refuse is not sent.
/// Its `OK` (`hello bob`) is a status line, not one of the script's replies.
fn send_name(talk: &mut Talk, o: &ClientOptions) -> Result<bool, ClientError> {
    let Some(name) = &o.name else {
        return Ok(true);
    };
    if let Err(why) = check_name(name) {
        talk.refuse(&format!("--name {}: {why}", quote(name)));
        return Ok(true);
    }
    match talk.request(&format!("name {name}"))? {
        Some(reply) => {
            match Reply::parse(&reply) {
                Some(Reply::Ok(greeting)) => talk.console.status(greeting),
                _ => talk.show_reply(&reply),
            }
            // calc remembers the name on the next server too (a quiz there starts afresh).
            if talk.service != ServiceKind::Quiz
                && matches!(Reply::parse(&reply), Some(Reply::Ok(_)))
            {
                talk.relogin = Some(format!("name {name}"));
            }
            Ok(true)
        }
        None => Ok(false),
    }
}

/// calc, and any service the client has no special mode for.
fn request_reply(talk: &mut Talk, o: &ClientOptions) -> Result<(), ClientError> {
    if talk.console.is_interactive() {
        let note = format!(
            "Connected to a {} server. Type help for the commands, q to quit.",
            talk.service
        );
        talk.console.tell(&note);
    }
    if !send_name(talk, o)? {
        return Ok(());
    }
    loop {
        let line = match talk.typed("> ", Prompt::EditorOnly)? {
            Typed::Line(line) => line,
            Typed::End => break,
            Typed::ServerEnded => return Ok(()),
        };
        let line = line.trim();
        if line.is_empty() && talk.console.is_interactive() {
            continue; // Enter on an empty line: nothing to send, nothing to complain about
        }
        if let Err(why) = local_check(talk.service, line) {
            talk.refuse(&why);
            continue;
        }
        if is_quit(line) {
            break;
        }
        match talk.request(line)? {
            Some(reply) => talk.show_reply(&reply),
            None => return Ok(()),
        }
    }
    talk.leave()
}

/// The name for sum (and the chat's fallback): `--name` (or the `--cert`'s name), else `$USER`,
/// else `client`.
fn default_name(o: &ClientOptions, valid: fn(&str) -> bool) -> String {
    login_name(o)
        .filter(|n| valid(n))
        .or_else(|| std::env::var("USER").ok().filter(|u| check_name(u).is_ok()))
        .unwrap_or_else(|| "client".to_string())
}

/// What was typed at a sum or quiz prompt.
enum Answer {
    /// A line to act on, trimmed.
    Line(String),
    /// An empty line at a terminal: ask again.
    Blank,
    /// End of input or a quit word: leave politely.
    Leave,
    /// The server ended the session meanwhile.
    ServerEnded,
}

/// Asks `prompt` and sorts out what was typed.
fn answer_typed(talk: &mut Talk, prompt: &str, shown: Prompt) -> Result<Answer, ClientError> {
    let line = match talk.typed(prompt, shown)? {
        Typed::Line(line) => line,
        Typed::End => return Ok(Answer::Leave),
        Typed::ServerEnded => return Ok(Answer::ServerEnded),
    };
    let line = line.trim();
    if is_quit(line) {
        return Ok(Answer::Leave);
    }
    if line.is_empty() && talk.console.is_interactive() {
        return Ok(Answer::Blank);
    }
    Ok(Answer::Line(line.to_string()))
}

const SUM_PROMPT: &str = "Please enter an integer between 1 and 100:";

fn sum(talk: &mut Talk, o: &ClientOptions) -> Result<(), ClientError> {
    let name = default_name(o, |n| check_exchange_name(n).is_ok());
    loop {
        let line = match answer_typed(talk, &format!("{SUM_PROMPT} "), Prompt::Piped)? {
            Answer::Line(line) => line,
            Answer::Blank => continue,
            Answer::Leave => break,
            Answer::ServerEnded => return Ok(()),
        };
        let line = line.as_str();
        // `help` and `name` are the server's to answer, as in every mode.
        if common_command(line).is_some() {
            if let Err(why) = local_check(ServiceKind::Sum, line) {
                talk.refuse(&why);
                continue;
            }
            match talk.request(line)? {
                Some(reply) => talk.show_reply(&reply),
                None => return Ok(()),
            }
            continue;
        }
        let Some(n) = sum::parse_number(line) else {
            talk.refuse(&format!(
                "please enter an integer between 1 and 100 (not {})",
                quote(line)
            ));
            continue;
        };
        let Some(reply) = talk.request(&format!("Client of {name};{n}"))? else {
            return Ok(());
        };
        // `OK Server of <server-name>;<M>`: the server's name may hold spaces, never `;`.
        let answer = Reply::parse(&reply)
            .and_then(|r| match r {
                Reply::Ok(text) => text.strip_prefix("Server of "),
                _ => None,
            })
            .and_then(|rest| rest.rsplit_once(';'))
            .and_then(|(server, m)| Some((server, m.trim().parse::<i64>().ok()?)));
        match answer {
            Some((server, m)) => {
                talk.console
                    .say(&format!("Server of {server} answered {m}"));
                talk.console
                    .say(&format!("{n} (client) + {m} (server) = {}", n + m));
            }
            None => talk.show_reply(&reply),
        }
    }
    talk.leave()
}

fn quiz(talk: &mut Talk, o: &ClientOptions) -> Result<(), ClientError> {
    // The greeting's question comes first; `name` is answered with `OK` and the question again.
    let Some(mut question) = next_question(talk)? else {
        return Ok(());
    };
    if o.name.is_some() {
        if !send_name(talk, o)? {
            return Ok(());
        }
        match next_question(talk)? {
            Some(q) => question = q,
            None => return Ok(()),
        }
    }
    loop {
        let line = match answer_typed(talk, &format!("What is {question}? "), Prompt::Question)? {
            Answer::Line(line) => line,
            Answer::Blank => continue,
            Answer::Leave => break,
            Answer::ServerEnded => return Ok(()),
        };
        let line = line.as_str();
        if let Err(why) = local_check(ServiceKind::Quiz, line) {
            talk.refuse(&why);
            continue;
        }
        let Some(reply) = talk.request(line)? else {
            return Ok(());
        };
        match Reply::parse(&reply) {
            // A wrong answer is part of the game: shown as a reply, counted for `--exec`.
            Some(Reply::Err(verdict)) if verdict.starts_with("wrong") => {
                talk.console.say(verdict);
                talk.failures += 1;
            }
            _ => talk.show_reply(&reply),
        }
        match next_question(talk)? {
            Some(q) => question = q,
            None => return Ok(()),
        }
    }
    talk.leave()
}

/// Reads up to the next `QUIZ a + b` line and returns `a + b`; `None` if the server said `BYE`.
fn next_question(talk: &mut Talk) -> Result<Option<String>, ClientError> {
    loop {
        let line = match talk.server_line()? {
            Heard::Line(line) => line,
            // A new quiz on the next server: its first question follows.
            Heard::Moved => continue,
        };
        match Reply::parse(&line) {
            Some(Reply::Quiz(question)) => return Ok(Some(question.to_string())),
            Some(Reply::Bye(_)) => {
                talk.show_bye(&line);
                return Ok(None);
            }
            _ => talk.show_reply(&line),
        }
    }
}

fn chat(talk: &mut Talk, o: &ClientOptions) -> Result<(), ClientError> {
    // Log in first: one request, one reply (nothing else is sent to a guest).
    let mut candidate = login_name(o);
    let name = loop {
        let name = match candidate.take() {
            Some(name) => name,
            None if talk.console.is_exec() => default_name(o, |n| check_name(n).is_ok()),
            None => match talk.typed("Your name: ", Prompt::Piped)? {
                // A pipe answers the question with its first line: said on stderr, so a
                // script that meant it as a message learns why it was not sent.
                Typed::Line(name) if !talk.console.is_interactive() => {
                    let name = name.trim().to_string();
                    talk.console.tell(&format!(
                        "note: no --name given, so the first line of input, {}, is the name",
                        quote(&name)
                    ));
                    name
                }
                Typed::Line(name) => name.trim().to_string(),
                Typed::End => return talk.leave(),
                Typed::ServerEnded => return Ok(()),
            },
        };
        let refusal = match check_name(&name) {
            Err(why) => why.to_string(),
            Ok(()) => match talk.request(&format!("name {name}"))? {
                None => return Ok(()),
                Some(reply) => match Reply::parse(&reply) {
                    Some(Reply::Ok(welcome)) => {
                        talk.console.status(&capitalise(welcome));
                        talk.relogin = Some(format!("name {name}"));
                        break name;
                    }
                    Some(Reply::Err(why)) => why.to_string(),
                    _ => reply.clone(),
                },
            },
        };
        // A person is asked again; a script is never logged in under a later line.
        if !talk.console.is_interactive() {
            talk.leave_quietly()?;
            return Err(ClientError::Login(refusal));
        }
        talk.console.error(&refusal);
    };

    let prompt = format!("{name}> ");
    loop {
        match talk.typed(&prompt, Prompt::EditorOnly)? {
            Typed::Line(line) => {
                let line = line.trim_end();
                if line.trim().is_empty() {
                    continue; // nothing to say
                }
                if is_quit(line) {
                    break;
                }
                if talk.send(line).is_err() {
                    // The server went away under this line: it goes to the next one.
                    talk.fail_over_from_write()?;
                    talk.send(line)?;
                }
            }
            Typed::End => break,
            Typed::ServerEnded => return Ok(()),
        }
    }
    talk.leave()
}
