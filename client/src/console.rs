//! The person's side of the client: where typed lines come from and where output goes.
//!
//! - Lines come from `--exec`, a pipe, or a terminal. A terminal gets a real line editor
//!   (rustyline: editing, history, Ctrl-D) on a thread of its own, so the conversation can print
//!   what the server pushes while the person types: rustyline's external printer puts it above
//!   the input line and redraws the line, which is never broken.
//! - Every typed line and every server line arrives as an [`Event`] on one channel, so a
//!   conversation is a single loop that waits on one thing.
//! - Output: replies and pushes on stdout; `error:`, `warning:` and notes on stderr. Status
//!   lines ([`Console::status`]: `Session ended`, the reply to `--name`, the chat's welcome) are
//!   on stdout when it is a terminal, where they always were, and on stderr when it is not, so
//!   `x=$(client -e '+ 3 4')` holds the reply alone. Everything printed passes through
//!   [`visible`]: text from the network (or an echo of what was typed) can never move the cursor,
//!   clear the screen or retitle the terminal.

use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::mpsc::{Receiver, Sender, channel};

use rustyline::error::ReadlineError;
use rustyline::{Cmd, Config, DefaultEditor, ExternalPrinter, KeyCode, KeyEvent, Modifiers};
use securetcp::client::visible;

/// Something the conversation waits for.
#[derive(Debug)]
pub(crate) enum Event {
    /// A line the person typed (or `--exec` gave); `None` at the end of input (Ctrl-D, EOF).
    Typed(Option<String>),
    /// A line from the server; `Ok(None)` when the connection ended.
    Server(io::Result<Option<String>>),
}

/// How a prompt shows when there is no line editor to put it in front of the typing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prompt {
    /// Only on a terminal (calc's `> `, the chat's `NAME> `).
    EditorOnly,
    /// Also on a line of its own for a pipe, so the output reads as a conversation (sum's
    /// number prompt, the chat's `Your name: `).
    Piped,
    /// Server text the answer belongs to (the quiz's question): for a pipe as [`Prompt::Piped`],
    /// and with `--exec` followed by the line given, so a script's output says what it answered.
    Question,
}

/// Where typed lines come from.
enum Source {
    Exec(std::vec::IntoIter<String>),
    /// A pipe or a file: a thread reads it ahead, line by line.
    Pipe,
    /// A terminal: the editor thread reads one line per prompt it is sent.
    Editor(Sender<String>),
}

pub(crate) struct Console {
    source: Source,
    events: Sender<Event>,
    /// The terminal editor's printer, for output while a line is being edited.
    printer: Option<Box<dyn ExternalPrinter + Send>>,
    /// The terminal's settings before the editor touched them, restored when the client ends
    /// (the editor thread may still be inside `readline`, in raw mode).
    saved_terminal: Option<libc::termios>,
    /// The editor is inside `readline` (asked, no answer yet): printing goes through it.
    reading: bool,
    /// stdout is not a terminal: status lines go to stderr, and so do the prompts of a person
    /// typing at a terminal whose output is captured (`x=$(client)`).
    stdout_captured: bool,
}

impl Console {
    /// A console reading `exec` lines if any, else stdin; the events go to the returned receiver,
    /// which the caller shares with the socket reader.
    pub(crate) fn new(exec: Vec<String>) -> (Console, Sender<Event>, Receiver<Event>) {
        let (events, receiver) = channel();
        let mut console = Console {
            source: Source::Pipe,
            events: events.clone(),
            printer: None,
            saved_terminal: None,
            reading: false,
            stdout_captured: !io::stdout().is_terminal(),
        };
        console.source = if !exec.is_empty() {
            Source::Exec(exec.into_iter())
        } else if io::stdin().is_terminal() && io::stdout().is_terminal() {
            console
                .start_editor()
                .unwrap_or_else(|| console.start_pipe())
        } else {
            console.start_pipe()
        };
        (console, events, receiver)
    }

    fn start_pipe(&self) -> Source {
        let events = self.events.clone();
        std::thread::spawn(move || {
            let stdin = io::stdin();
            let mut lines = stdin.lock();
            loop {
                let mut line = String::new();
                let typed = match lines.read_line(&mut line) {
                    Ok(0) | Err(_) => None,
                    Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_string()),
                };
                let end = typed.is_none();
                if events.send(Event::Typed(typed)).is_err() || end {
                    return;
                }
            }
        });
        Source::Pipe
    }

    /// The line editor on its own thread; `None` when the terminal cannot be driven (then the
    /// terminal is read like a pipe).
    fn start_editor(&mut self) -> Option<Source> {
        let config = Config::builder()
            .auto_add_history(true)
            // Bracketed paste would be left switched on in the terminal if the client ended
            // while the editor waits (a server's BYE): off, so nothing is left behind.
            .bracketed_paste(false)
            .build();
        let mut editor = DefaultEditor::with_config(config).ok()?;
        // A terminal that wraps a paste in ESC [200~ .. ESC [201~ anyway: its lines are read as
        // keys, so each Enter in it sends a line, as if typed (rustyline would otherwise insert
        // the whole paste into one line).
        editor.bind_sequence(
            KeyEvent(KeyCode::BracketedPasteStart, Modifiers::NONE),
            Cmd::Noop,
        );
        // TAB is text in the protocol: typed or pasted, it goes into the line, never to
        // rustyline's completion (which would drop it).
        editor.bind_sequence(
            KeyEvent(KeyCode::Tab, Modifiers::NONE),
            Cmd::Insert(1, "\t".into()),
        );
        let printer = editor.create_external_printer().ok()?;
        self.printer = Some(Box::new(printer));
        self.saved_terminal = terminal_settings();
        if let Some(settings) = &self.saved_terminal {
            hold_raw_mode(settings);
        }
        let (prompts, prompt_rx) = channel::<String>();
        let events = self.events.clone();
        std::thread::spawn(move || {
            for prompt in prompt_rx {
                let typed = match editor.readline(&prompt) {
                    Ok(line) => Some(line),
                    // Ctrl-D, and Ctrl-C too: the person wants out; the session ends politely.
                    Err(ReadlineError::Eof | ReadlineError::Interrupted) => None,
                    Err(_) => None,
                };
                if events.send(Event::Typed(typed)).is_err() {
                    return;
                }
            }
        });
        Some(Source::Editor(prompts))
    }

    pub(crate) fn is_exec(&self) -> bool {
        matches!(self.source, Source::Exec(_))
    }

    /// A person at a terminal (who can be asked again), not a script.
    pub(crate) fn is_interactive(&self) -> bool {
        matches!(self.source, Source::Editor(_))
    }

    /// Asks for the next line; it arrives as [`Event::Typed`]. A terminal shows `prompt` in
    /// front of the line being edited; without the editor, `shown` says (see [`Prompt`]). A
    /// person typing at a terminal whose stdout is captured sees the prompt on stderr.
    pub(crate) fn ask(&mut self, prompt: &str, shown: Prompt) {
        match &mut self.source {
            Source::Exec(lines) => {
                let line = lines.next();
                if let (Prompt::Question, Some(answer)) = (shown, &line) {
                    let echo = format!("{prompt}{answer}");
                    self.say(&echo);
                }
                let _ = self.events.send(Event::Typed(line));
            }
            Source::Pipe if shown == Prompt::EditorOnly => {}
            Source::Pipe if self.stdout_captured && io::stdin().is_terminal() => {
                eprint!("{}", visible(prompt));
            }
            Source::Pipe => self.say(prompt.trim_end()),
            Source::Editor(prompts) => {
                self.reading = prompts.send(prompt.to_string()).is_ok();
            }
        }
    }

    /// The answer to the last [`Console::ask`] arrived.
    pub(crate) fn typed_arrived(&mut self) {
        self.reading = false;
    }

    /// The last words of a session that ends while the person may be typing: the editor is
    /// left (its half-typed line erased, the terminal as it was) and `text` is printed directly
    /// as a status line, because the client exits before the editor thread would show it.
    pub(crate) fn farewell(&mut self, text: &str) {
        self.leave_editor();
        self.status(text);
    }

    /// Like [`Console::farewell`], but a note for the person on stderr, whatever stdout is
    /// (`disconnected after 300 s idle`).
    pub(crate) fn farewell_note(&mut self, text: &str) {
        self.leave_editor();
        self.tell(text);
    }

    fn leave_editor(&mut self) {
        if let Some(settings) = &self.saved_terminal {
            // SAFETY: tcsetattr reads the struct we pass; fd 0 is our stdin, a terminal.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, settings) };
        }
        if self.reading {
            let mut out = io::stdout().lock();
            let _ = out.write_all(b"\r\x1b[K");
            let _ = out.flush();
            self.reading = false;
        }
        self.printer = None;
    }

    /// A reply or a push, on stdout.
    pub(crate) fn say(&mut self, text: &str) {
        let text = visible(text);
        match &mut self.printer {
            // The editor adds no newline while it is not reading a line: always give one.
            Some(printer) => {
                let _ = printer.print(format!("{text}\n"));
            }
            None => {
                let mut out = io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    }

    /// A status line for the person, not a reply a script reads (`Session ended`, `hello bob`
    /// after `--name`, `Welcome bob, 2 online`): on stdout when it is a terminal (where it has
    /// always been), else on stderr.
    pub(crate) fn status(&mut self, text: &str) {
        if self.stdout_captured {
            self.tell(text);
        } else {
            self.say(text);
        }
    }

    /// An `error:`, `warning:` or note line, on stderr (through the editor on a terminal, so
    /// the line being typed stays whole).
    pub(crate) fn tell(&mut self, text: &str) {
        let text = visible(text);
        match &mut self.printer {
            Some(printer) => {
                let _ = printer.print(format!("{text}\n"));
            }
            None => eprintln!("{text}"),
        }
    }

    /// `error: ...` for a server's `ERR` (or a failure); counts as a failure for `--exec`.
    pub(crate) fn error(&mut self, reason: &str) {
        self.tell(&format!("error: {reason}"));
    }

    pub(crate) fn warning(&mut self, text: &str) {
        self.tell(&format!("warning: {text}"));
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.leave_editor();
    }
}

/// Puts the terminal in the raw mode rustyline edits in, for the whole session instead of only
/// inside each `readline`. rustyline restores the mode it found when a line is done, so without
/// this the terminal is cooked between one line and the next prompt, and what is typed then goes
/// through the kernel's line discipline: Ctrl-D is swallowed as end-of-file, Ctrl-C kills the
/// client, and the keys are echoed twice. Raw, they wait as typed for the next `readline`.
/// The same flags as rustyline's own raw mode (output processing stays on).
fn hold_raw_mode(cooked: &libc::termios) {
    let mut raw = *cooked;
    raw.c_iflag &= !(libc::BRKINT | libc::ICRNL | libc::INPCK | libc::ISTRIP | libc::IXON);
    raw.c_cflag |= libc::CS8;
    raw.c_lflag &= !(libc::ECHO | libc::ICANON | libc::IEXTEN | libc::ISIG);
    raw.c_cc[libc::VMIN] = 1;
    raw.c_cc[libc::VTIME] = 0;
    // SAFETY: tcsetattr reads the struct we pass; fd 0 is our stdin, a terminal.
    unsafe { libc::tcsetattr(0, libc::TCSADRAIN, &raw) };
}

fn terminal_settings() -> Option<libc::termios> {
    // SAFETY: tcgetattr fills the zeroed struct we pass (termios is plain data).
    unsafe {
        let mut settings: libc::termios = std::mem::zeroed();
        (libc::tcgetattr(0, &mut settings) == 0).then_some(settings)
    }
}
