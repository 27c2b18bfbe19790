//! A pseudo-terminal for driving the client as a person at a keyboard would: the client sees
//! a real terminal (its line editor switches to raw mode), the test types bytes and reads the
//! screen. Written on libc's `openpty` (libc is already a dependency): about a page, where a
//! crate such as `rexpect` would bring nix, regex and tempfile for the same few calls.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::WAIT;

pub struct Pty {
    master: File,
    child: Child,
    screen: Arc<Mutex<Vec<u8>>>,
    /// What the program wrote to the stream that is a pipe instead of the terminal, if any.
    piped: Arc<Mutex<Vec<u8>>>,
    /// The thread reading that pipe, joined once the program exits (it has read everything).
    pipe_reader: Option<std::thread::JoinHandle<()>>,
}

/// Which of the program's output streams is a pipe rather than the terminal (as in
/// `x=$(client)`, where a person types at the terminal and stdout is captured).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Captured {
    Nothing,
    Stdout,
    Stderr,
}

impl Pty {
    /// Starts `program ARGS` in `dir` with a terminal of 120 x 40 as stdin, stdout and stderr.
    pub fn spawn(program: &Path, args: &[&str], dir: &Path) -> Pty {
        Pty::spawn_capturing(program, args, dir, Captured::Nothing)
    }

    /// As [`Pty::spawn`], with the `captured` stream a pipe the test reads ([`Pty::captured`]).
    pub fn spawn_capturing(program: &Path, args: &[&str], dir: &Path, captured: Captured) -> Pty {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: 40,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors; the name and termios pointers may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened for us and are owned from here on.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(dir)
            .env("TERM", "xterm")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(match captured {
                Captured::Stdout => Stdio::piped(),
                _ => Stdio::from(slave.try_clone().unwrap()),
            })
            .stderr(match captured {
                Captured::Stderr => Stdio::piped(),
                _ => Stdio::from(slave),
            });
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec only setsid and ioctl run (async-signal-safe): the
        // terminal becomes the child's controlling terminal, as a login shell's would.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().expect("start the program on a terminal");
        drop(command); // closes our copies of the terminal's slave side
        let piped = Arc::new(Mutex::new(Vec::new()));
        let pipe: Option<Box<dyn Read + Send>> = match captured {
            Captured::Stdout => Some(Box::new(child.stdout.take().unwrap())),
            Captured::Stderr => Some(Box::new(child.stderr.take().unwrap())),
            Captured::Nothing => None,
        };
        let pipe_reader = pipe.map(|mut pipe| {
            let sink = Arc::clone(&piped);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            })
        });
        let screen = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the child has exited and the slave side is closed.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            master,
            child,
            screen,
            piped,
            pipe_reader,
        }
    }

    /// What the program wrote to its captured stream: so far, or all of it after
    /// [`Pty::wait_exit`] (see [`Pty::spawn_capturing`]).
    pub fn captured(&self) -> String {
        String::from_utf8_lossy(&self.piped.lock().unwrap()).into_owned()
    }

    /// Types `text` (use `\r` for Enter, `\x04` for Ctrl-D, `\x1b[A` for the up arrow).
    pub fn type_text(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Everything the program wrote, as text.
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// The screen as a person sees it now: every line written so far (no scrolling off),
    /// after carriage returns, cursor moves and erasures.
    pub fn lines(&self) -> Vec<String> {
        render(&self.raw())
    }

    /// Waits until the screen shows `needle` `times` times in all.
    pub fn expect_n(&self, needle: &str, times: usize) {
        let needle = needle.trim_end(); // the screen's lines end without their trailing spaces
        let start = Instant::now();
        while self.lines().join("\n").matches(needle).count() < times {
            assert!(
                start.elapsed() < WAIT,
                "the terminal never showed {needle:?} {times} time(s); it shows:\n{}",
                self.lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn expect(&self, needle: &str) {
        self.expect_n(needle, 1);
    }

    /// Waits for the program to exit by itself.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let screen = std::sync::Arc::clone(&self.screen);
        let status = super::wait_for_exit(&mut self.child, WAIT, move || {
            let raw = String::from_utf8_lossy(&screen.lock().unwrap()).into_owned();
            format!(
                "the program did not exit; the terminal shows:\n{}",
                render(&raw).join("\n")
            )
        });
        // The program is gone, so its end of the pipe is closed: the reader is at its end.
        if let Some(reader) = self.pipe_reader.take() {
            reader.join().unwrap();
        }
        status
    }

    /// The terminal's line discipline now: (canonical mode, echo), both on for a shell prompt.
    pub fn cooked(&self) -> (bool, bool) {
        // SAFETY: tcgetattr fills the zeroed struct; on Linux the master reports the slave's mode.
        let mut settings: libc::termios = unsafe { std::mem::zeroed() };
        assert_eq!(
            unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut settings) },
            0
        );
        (
            settings.c_lflag & libc::ICANON != 0,
            settings.c_lflag & libc::ECHO != 0,
        )
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small terminal: plays the output onto a grid of lines that never scrolls away, handling
/// what a line editor writes (CR, LF, backspace, cursor moves, erasing, colours ignored).
pub fn render(output: &str) -> Vec<String> {
    let mut rows: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = output.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => col = 0,
            '\n' => row += 1,
            '\u{8}' => col = col.saturating_sub(1),
            '\u{7}' => {}
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    let mut params = String::new();
                    let mut last = ' ';
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            last = c;
                            break;
                        }
                        params.push(c);
                    }
                    let n = params.parse::<usize>().unwrap_or(0);
                    let line = &mut rows[row];
                    match last {
                        'A' => row = row.saturating_sub(n.max(1)),
                        'B' => row += n.max(1),
                        'C' => col += n.max(1),
                        'D' => col = col.saturating_sub(n.max(1)),
                        'G' => col = n.saturating_sub(1),
                        'K' if n == 2 => line.clear(),
                        'K' => line.truncate(col),
                        'J' => {
                            line.truncate(col);
                            rows.truncate(row + 1);
                        }
                        _ => {} // colours, modes
                    }
                }
                Some(']') => {
                    for c in chars.by_ref() {
                        if c == '\u{7}' {
                            break;
                        }
                    }
                }
                _ => {}
            },
            c => {
                let line = &mut rows[row];
                if line.len() <= col {
                    line.resize(col, ' ');
                    line.push(c);
                } else {
                    line[col] = c;
                }
                col += 1;
            }
        }
        while rows.len() <= row {
            rows.push(Vec::new());
        }
    }
    rows.into_iter()
        .map(|r| r.into_iter().collect::<String>().trim_end().to_string())
        .collect()
}
