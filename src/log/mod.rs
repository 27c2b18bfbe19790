//! The server log (`server.log`): one `key=value` line per event, UTC RFC 3339 timestamps.
//!
//! Each reactor formats lines into a memory buffer of its own (a `Log`, no syscall per line) and
//! hands the whole buffer to the one writer thread once per loop turn, so it never waits on the
//! disk. With several workers each has its own `Log` (`another`), all feeding the same writer,
//! one file. The writer gives emptied buffers back for reuse. `LogWriter::finish` waits until
//! every `Log` has handed over the rest and the writer has written it, so a clean shutdown
//! leaves a complete log; but no longer than `FINISH_WAIT`: an output that takes nothing (a
//! pipe nobody reads, a hung network volume) must not keep the process from exiting. The
//! writer thread and its file, through a full disk and logrotate, are `sink`'s.

mod sink;

use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::outbox::ByteWriter;
use sink::{Output, Sink, ToWriter};

/// Where the server log goes (`--log FILE`, `--log -`, `--no-log`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    File(PathBuf),
    Stderr,
    Off,
}

/// Values longer than this are cut in the log (a request line may be 4 KiB or more).
const MAX_VALUE_BYTES: usize = 200;

/// Memory the writer thread may have in hand before the reactor stops handing it more, and
/// the most the reactor keeps meanwhile. Past both, lines are dropped and counted (then logged
/// as `event=log-dropped lines=N`): a disk slower than the clients must not grow memory without
/// bound, and must not stall the reactor either. In hand counts the buffers handed over, not
/// their lines: each loop turn hands over a buffer of at least 64 KiB, often for a line or two,
/// so a writer thread a few thousand turns behind (a loaded machine, a slow disk) held
/// gigabytes while its lines stayed far under the limit.
const MAX_IN_FLIGHT: usize = 4 << 20;
const MAX_BUFFERED: usize = 4 << 20;

/// Emptied buffers kept for the next turns once the writer thread is done with them; the rest
/// are freed. Unbounded, every buffer a lagging writer ever had in hand was kept for good: the
/// server's memory ratcheted up with each lag (tests/limits.rs churn saw +5 MiB a round).
const MAX_SPARES: usize = 4;

pub struct Log {
    buffer: Vec<u8>,
    /// Lines dropped since the last report, because the disk could not keep up.
    dropped: u64,
    /// Lines dropped and already reported in the log.
    dropped_reported: u64,
    /// The timestamp of the current loop turn, already formatted.
    stamp: String,
    writer: Option<Writer>,
}

/// One `Log`'s way to the writer thread.
struct Writer {
    to_writer: Sender<ToWriter>,
    give_back: SyncSender<Vec<u8>>,
    recycled: Receiver<Vec<u8>>,
    /// Bytes handed to the writer thread and not yet written (shared by every `Log`).
    in_flight: Arc<AtomicUsize>,
    /// Lines the writer could not write (a full disk): shared by every `Log`, and counted in
    /// the metrics by the first one only (`Log::open`'s), so the workers' sum counts them once.
    lost_by_writer: Arc<AtomicU64>,
    counts_writer_losses: bool,
}

/// The writer thread; `finish` waits for it once every `Log` is finished or dropped.
pub struct LogWriter {
    thread: Option<JoinHandle<()>>,
    /// Told when the writer thread has written everything and ends.
    done: Option<Receiver<()>>,
    /// Where the log goes, for the warning when it could not be finished.
    target: LogTarget,
}

/// How long `LogWriter::finish` waits for the last lines to be written. The reactors take up to
/// 1.5 s to close their clients after SIGTERM, and the process must be gone within 2 s.
const FINISH_WAIT: Duration = Duration::from_millis(300);

impl LogWriter {
    /// Waits until everything every `Log` handed over is written, at most `FINISH_WAIT` once
    /// every `Log` is finished; past that the rest is lost, and stderr says so (unless the log
    /// is stderr, which is then what does not take it).
    pub fn finish(mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let finished = self
            .done
            .take()
            .map_or(Ok(()), |done| done.recv_timeout(FINISH_WAIT));
        match finished {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                let _ = thread.join();
            }
            Err(RecvTimeoutError::Timeout) => {
                if let LogTarget::File(path) = &self.target {
                    sink::warn(&format!(
                        "the server log {} took no more lines for {FINISH_WAIT:?}; the last ones \
                         are lost",
                        path.display()
                    ));
                }
            }
        }
    }
}

impl Log {
    /// A log that writes nothing (`--no-log`).
    pub fn off() -> Log {
        Log {
            buffer: Vec::new(),
            dropped: 0,
            dropped_reported: 0,
            stamp: String::new(),
            writer: None,
        }
    }

    /// Opens the log and starts its writer thread. Finish every `Log` (or drop it), then the
    /// `LogWriter`.
    pub fn open(target: &LogTarget) -> Result<(Log, LogWriter), String> {
        let output = match target {
            LogTarget::Off => {
                let writer = LogWriter {
                    thread: None,
                    done: None,
                    target: LogTarget::Off,
                };
                return Ok((Log::off(), writer));
            }
            LogTarget::Stderr => Output::Stderr,
            LogTarget::File(path) => Output::open(path)
                .map_err(|e| format!("cannot open log {}: {e}", path.display()))?,
        };
        let (to_writer, from_reactors) = mpsc::channel::<ToWriter>();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let lost_by_writer = Arc::new(AtomicU64::new(0));
        let sink = Sink::new(output, Arc::clone(&lost_by_writer));
        let written = Arc::clone(&in_flight);
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                sink.run(from_reactors, written);
                let _ = done_tx.send(());
            })
            .map_err(|e| format!("cannot start the log writer: {e}"))?;
        let mut log = Log::front(to_writer, in_flight, lost_by_writer);
        if let Some(writer) = log.writer.as_mut() {
            writer.counts_writer_losses = true;
        }
        Ok((
            log,
            LogWriter {
                thread: Some(thread),
                done: Some(done),
                target: target.clone(),
            },
        ))
    }

    fn front(
        to_writer: Sender<ToWriter>,
        in_flight: Arc<AtomicUsize>,
        lost_by_writer: Arc<AtomicU64>,
    ) -> Log {
        let (give_back, recycled) = mpsc::sync_channel::<Vec<u8>>(MAX_SPARES);
        let mut log = Log {
            buffer: Vec::with_capacity(64 * 1024),
            dropped: 0,
            dropped_reported: 0,
            stamp: String::new(),
            writer: Some(Writer {
                to_writer,
                give_back,
                recycled,
                in_flight,
                lost_by_writer,
                counts_writer_losses: false,
            }),
        };
        log.set_time(SystemTime::now());
        log
    }

    /// Another `Log` writing to the same file through the same writer (a worker's own).
    pub fn another(&self) -> Log {
        match &self.writer {
            None => Log::off(),
            Some(w) => Log::front(
                w.to_writer.clone(),
                Arc::clone(&w.in_flight),
                Arc::clone(&w.lost_by_writer),
            ),
        }
    }

    /// Lines dropped since the last `event=log-dropped` report (the disk fell behind).
    pub fn dropped_lines(&self) -> u64 {
        self.dropped
    }

    /// Lines dropped since this `Log` began (for the metrics): those it could not hand over
    /// (the disk fell behind), and, for the first `Log` only, every line the writer could not
    /// write (a full disk), so that the sum over the workers counts each lost line once.
    pub fn dropped_total(&self) -> u64 {
        let by_writer = match &self.writer {
            Some(w) if w.counts_writer_losses => w.lost_by_writer.load(Ordering::Relaxed),
            _ => 0,
        };
        self.dropped_reported + self.dropped + by_writer
    }

    pub fn enabled(&self) -> bool {
        self.writer.is_some()
    }

    /// Sets the timestamp of the lines that follow (once per loop turn: one clock read for
    /// all the events of the turn).
    pub fn set_time(&mut self, now: SystemTime) {
        if self.enabled() {
            self.stamp.clear();
            let _ = write_rfc3339(&mut self.stamp, now);
        }
    }

    /// Appends one line: the timestamp, a space, `fields`, a newline.
    pub fn line(&mut self, fields: fmt::Arguments<'_>) {
        if !self.enabled() {
            return;
        }
        if self.buffer.len() >= MAX_BUFFERED {
            self.dropped += 1;
            return;
        }
        self.buffer.extend_from_slice(self.stamp.as_bytes());
        self.buffer.push(b' ');
        let _ = ByteWriter(&mut self.buffer).write_fmt(fields);
        self.buffer.push(b'\n');
    }

    /// Hands what was written so far to the writer thread.
    pub fn flush(&mut self) {
        self.hand_over(false);
    }

    /// Gives the buffer to the writer thread; unless `force`d, not while it is far behind.
    fn hand_over(&mut self, force: bool) {
        let Some(writer) = &self.writer else { return };
        if self.buffer.is_empty() && self.dropped == 0 {
            return;
        }
        if !force && writer.in_flight.load(Ordering::Acquire) >= MAX_IN_FLIGHT {
            return; // the disk is behind: keep buffering (up to MAX_BUFFERED), try next turn
        }
        let spare = writer
            .recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(64 * 1024));
        let mut full = std::mem::replace(&mut self.buffer, spare);
        if self.dropped > 0 {
            let note = format!("{} event=log-dropped lines={}\n", self.stamp, self.dropped);
            full.extend_from_slice(note.as_bytes());
            self.dropped_reported += self.dropped;
            self.dropped = 0;
        }
        writer
            .in_flight
            .fetch_add(full.capacity(), Ordering::AcqRel);
        // If the writer thread is gone (its disk write panicked), the lines are lost but the
        // server goes on: a log must never take the service down.
        let _ = writer
            .to_writer
            .send(ToWriter::Lines(full, writer.give_back.clone()));
    }

    /// Opens the log file again by its name once the lines handed over so far are written
    /// (SIGUSR1, SIGHUP: logrotate has moved it). Nothing for stderr or `--no-log`.
    pub fn reopen(&mut self) {
        self.hand_over(true);
        if let Some(writer) = &self.writer {
            let _ = writer.to_writer.send(ToWriter::Reopen);
        }
    }

    /// Hands over everything and lets go of the writer (shutdown); `LogWriter::finish` then
    /// waits until it is written.
    pub fn finish(&mut self) {
        self.hand_over(true);
        self.writer = None;
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A log value: bare when it is a simple word, else in double quotes with `"` and `\` escaped.
/// Control characters and invalid UTF-8 are escaped too, so one request is always one log line;
/// long values are cut to MAX_VALUE_BYTES.
pub struct Value<'a>(pub &'a [u8]);

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (shown, cut) = if self.0.len() > MAX_VALUE_BYTES {
            (&self.0[..MAX_VALUE_BYTES], true)
        } else {
            (self.0, false)
        };
        let plain = !shown.is_empty()
            && !cut
            && shown
                .iter()
                .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\\' && b != b'=');
        if plain {
            // Only printable ASCII here, so this is valid UTF-8.
            return f.write_str(std::str::from_utf8(shown).unwrap_or("?"));
        }
        f.write_char('"')?;
        for chunk in shown.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    c if hides_or_moves_text(c) => write!(f, "{}", c.escape_default())?,
                    c => f.write_char(c)?,
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        if cut {
            f.write_str("...")?;
        }
        f.write_char('"')
    }
}

/// True for what a log value shows escaped, not as itself: control characters (a line break
/// would forge a log line), format characters (a bidi override reorders what follows it on the
/// operator's screen, a zero-width space hides a difference) and the line and paragraph
/// separators (some readers break lines there).
fn hides_or_moves_text(c: char) -> bool {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    c.is_control()
        || matches!(
            c.general_category(),
            G::Format | G::LineSeparator | G::ParagraphSeparator
        )
}

/// `2026-11-21T20:15:03.120Z`
pub fn write_rfc3339(out: &mut impl fmt::Write, time: SystemTime) -> fmt::Result {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since_epoch.subsec_millis()
    )
}

/// Days since 1970-01-01 to a (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_rfc3339_with_milliseconds() {
        let mut s = String::new();
        let t = UNIX_EPOCH + Duration::from_millis(1_795_292_103_120);
        write_rfc3339(&mut s, t).unwrap();
        assert_eq!(s, "2026-11-21T20:15:03.120Z");
        s.clear();
        write_rfc3339(&mut s, UNIX_EPOCH + Duration::from_secs(951_782_400)).unwrap();
        assert_eq!(s, "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn values_are_quoted_when_needed() {
        assert_eq!(Value(b"alice").to_string(), "alice");
        assert_eq!(Value(b"+ 3 4").to_string(), "\"+ 3 4\"");
        assert_eq!(Value(b"a\"b\\c").to_string(), "\"a\\\"b\\\\c\"");
        assert_eq!(Value(b"").to_string(), "\"\"");
        assert_eq!(Value(b"x\ny").to_string(), "\"x\\ny\"");
        // A bidi override, a zero-width space and a line separator are shown, not obeyed.
        assert_eq!(
            Value("a\u{202E}b\u{200B}c\u{2028}d".as_bytes()).to_string(),
            "\"a\\u{202e}b\\u{200b}c\\u{2028}d\""
        );
        assert_eq!(Value(b"\xff").to_string(), "\"\\xff\"");
        let long = Value(&[b'a'; 1000]).to_string();
        assert!(long.ends_with("...\"") && long.len() < 210);
    }

    #[test]
    fn a_log_that_cannot_keep_up_drops_lines_and_says_how_many() {
        let path = std::env::temp_dir().join(format!("securetcp-log-drop-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let (mut log, writer) = Log::open(&LogTarget::File(path.clone())).unwrap();
        // Never flushed during the burst: the buffer stops at MAX_BUFFERED and counts the rest.
        let line = "y".repeat(100);
        for _ in 0..(2 * MAX_BUFFERED / 100) {
            log.line(format_args!("{line}"));
        }
        assert!(log.buffer.len() < MAX_BUFFERED + 200);
        assert!(log.dropped > 0);
        let dropped = log.dropped;
        log.finish();
        writer.finish();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.ends_with(&format!("event=log-dropped lines={dropped}\n")),
            "{}",
            &text[text.len() - 80..]
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_writer_far_behind_holds_bounded_memory_and_keeps_few_spares() {
        // A writer thread that does not run for 2,000 turns of a line each (a loaded machine).
        let (to_writer, stalled) = mpsc::channel::<ToWriter>();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let mut log = Log::front(to_writer, Arc::clone(&in_flight), Arc::default());
        for i in 0..2000 {
            log.line(format_args!("conn={i} event=open"));
            log.flush();
        }
        // The buffers it has in hand are bounded by their memory, not by their lines...
        let handed: Vec<_> = stalled.try_iter().collect();
        let memory: usize = handed
            .iter()
            .map(|message| match message {
                ToWriter::Lines(chunk, _) => chunk.capacity(),
                ToWriter::Reopen => 0,
            })
            .sum();
        assert!(
            memory <= MAX_IN_FLIGHT + (64 << 10),
            "{memory} bytes in hand"
        );
        assert_eq!(in_flight.load(Ordering::Acquire), memory);
        // ...and the lines it did not get wait in the reactor's buffer, none lost.
        assert_eq!(log.dropped, 0);
        // Once it has written them, a few buffers are kept for reuse and the others freed.
        for message in handed {
            if let ToWriter::Lines(chunk, give_back) = message {
                sink::give_back_emptied(chunk, &give_back, &in_flight);
            }
        }
        assert_eq!(in_flight.load(Ordering::Acquire), 0);
        let spares = log.writer.as_ref().unwrap().recycled.try_iter().count();
        assert!(spares <= MAX_SPARES, "{spares} spare buffers kept");
    }

    #[test]
    fn lines_reach_the_file_after_finish() {
        let path = std::env::temp_dir().join(format!("securetcp-log-test-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let (mut log, writer) = Log::open(&LogTarget::File(path.clone())).unwrap();
        log.line(format_args!("conn=1 event=open"));
        log.flush();
        log.line(format_args!("conn=1 event=close reason=quit"));
        // A second front (another worker's) into the same file.
        let mut other = log.another();
        other.line(format_args!("conn=2 event=open"));
        other.finish();
        log.finish();
        writer.finish();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].ends_with("Z conn=1 event=open"));
        assert!(lines[2].ends_with("event=close reason=quit"));
        let _ = std::fs::remove_file(&path);
    }
}
