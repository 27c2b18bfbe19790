//! The log's writer thread and the file it writes: whole lines or nothing, through a full disk
//! and a log rotation.
//!
//! - A write that fails (`ENOSPC`, `EFBIG` past `RLIMIT_FSIZE`, `EIO`) loses the lines it could
//!   not write, never the reactor's time: they are counted (`securetcp_log_dropped_lines_total`),
//!   a line the disk took only in part is cut back out of the file, and one warning goes to
//!   stderr per outage. Every later batch is tried again, so writing resumes as soon as the
//!   disk takes it; the first line written then says how many were lost
//!   (`event=log-dropped lines=N error="..."`). A disk at the edge of full takes a short batch
//!   now and then between failures: failures less than `OUTAGE_GAP` apart are one outage, with
//!   one warning.
//! - `Reopen` (SIGUSR1, SIGHUP) opens the file again by its name: logrotate has moved the old
//!   one away, and the lines that follow go to the new one.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::{Duration, Instant, SystemTime};

use super::{Value, write_rfc3339};

/// Buffers larger than this are not kept for reuse after a burst.
const KEEP_BUFFER: usize = 256 * 1024;

/// A failure this soon after the last one belongs to the same outage (no new warning).
const OUTAGE_GAP: Duration = Duration::from_secs(60);

/// What a `Log` hands the writer thread.
pub(super) enum ToWriter {
    /// Whole lines (each ends in `\n`), and where to give the emptied buffer back.
    Lines(Vec<u8>, SyncSender<Vec<u8>>),
    /// Open the file again by its name (logrotate moved it away).
    Reopen,
}

/// A buffer written out is no longer in hand (its memory, as [`super::Log`] counted it); it
/// goes back for reuse unless it is large or enough spares are kept already (then it is freed).
pub(super) fn give_back_emptied(
    mut chunk: Vec<u8>,
    give_back: &SyncSender<Vec<u8>>,
    in_flight: &AtomicUsize,
) {
    in_flight.fetch_sub(chunk.capacity(), Ordering::AcqRel);
    if chunk.capacity() <= KEEP_BUFFER {
        chunk.clear();
        let _ = give_back.try_send(chunk);
    }
}

/// Where the lines go.
pub(super) enum Output {
    File { file: File, path: PathBuf },
    Stderr,
}

impl Output {
    /// The log file `path`, created when missing, appended to.
    pub(super) fn open(path: &Path) -> io::Result<Output> {
        Ok(Output::File {
            file: open_append(path)?,
            path: path.to_path_buf(),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Output::File { file, .. } => file.write(bytes),
            Output::Stderr => io::stderr().write(bytes),
        }
    }

    /// Takes the last `cut` bytes back out of the file (a line the disk took only in part).
    /// Only a regular file can be cut; elsewhere (a device, a pipe) false.
    fn take_back(&mut self, cut: u64) -> bool {
        let Output::File { file, .. } = self else {
            return false;
        };
        match file.metadata() {
            Ok(meta) if meta.is_file() => file.set_len(meta.len().saturating_sub(cut)).is_ok(),
            _ => false,
        }
    }

    fn name(&self) -> String {
        match self {
            Output::File { path, .. } => path.display().to_string(),
            Output::Stderr => "(stderr)".to_string(),
        }
    }
}

/// Opens `path` for appending, created when missing. Never waits: a FIFO with no reader is an
/// error at once (ENXIO), not a start that hangs in `open` until someone reads it. The file then
/// blocks as usual: its writes are the writer thread's to wait on.
fn open_append(path: &Path) -> io::Result<File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => io::Error::other("a FIFO nobody reads (start its reader first)"),
            _ => e,
        })?;
    // SAFETY: F_GETFL/F_SETFL on a descriptor this File owns; only O_NONBLOCK changes.
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) < 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(file)
}

/// The writer thread's state: the output, and the outage in progress if any.
pub(super) struct Sink {
    output: Output,
    /// The error that began the current outage; `None` while writing works.
    outage: Option<String>,
    /// When a write last failed: the outage it belongs to is warned about already.
    last_failure: Option<Instant>,
    /// Lines lost since the last note about it was written.
    lost_unreported: u64,
    /// Lines lost since the start (read by the metrics through the first `Log`).
    lost_total: Arc<AtomicU64>,
    /// A cut-off line could not be taken back: the next write starts on a line of its own.
    torn: bool,
}

impl Sink {
    pub(super) fn new(output: Output, lost_total: Arc<AtomicU64>) -> Sink {
        Sink {
            output,
            outage: None,
            last_failure: None,
            lost_unreported: 0,
            lost_total,
            torn: false,
        }
    }

    /// Writes what the `Log`s hand over until every one of them is gone.
    pub(super) fn run(mut self, input: Receiver<ToWriter>, in_flight: Arc<AtomicUsize>) {
        while let Ok(message) = input.recv() {
            match message {
                ToWriter::Lines(chunk, give_back) => {
                    self.write_lines(&chunk);
                    give_back_emptied(chunk, &give_back, &in_flight);
                }
                ToWriter::Reopen => self.reopen(),
            }
        }
    }

    /// Writes whole lines: first, after an outage, how many were lost; then `lines`.
    pub(super) fn write_lines(&mut self, lines: &[u8]) {
        if self.lost_unreported > 0 {
            let note = self.loss_note();
            if self.write_whole(&note).is_ok() {
                self.lost_unreported = 0;
            }
            // Else the outage goes on, and so does the count; the note is no line of the log.
        }
        match self.write_whole(lines) {
            Ok(()) => self.outage = None,
            Err((lost, error)) => self.lost(lost, &error),
        }
    }

    /// `<now> event=log-dropped lines=N error="..."`: the gap an outage left, said once the
    /// log can be written again.
    fn loss_note(&self) -> Vec<u8> {
        let mut note = String::new();
        let _ = write_rfc3339(&mut note, SystemTime::now());
        note.push_str(&format!(
            " event=log-dropped lines={}",
            self.lost_unreported
        ));
        if let Some(error) = &self.outage {
            note.push_str(&format!(" error={}", Value(error.as_bytes())));
        }
        note.push('\n');
        note.into_bytes()
    }

    /// Writes all of `bytes`, or as many whole lines as the output takes: a line written only
    /// in part is cut back out. `Err` carries how many lines were not written.
    fn write_whole(&mut self, bytes: &[u8]) -> Result<(), (u64, io::Error)> {
        if self.torn {
            // A line was cut off and could not be taken back: end it before writing more.
            if self.output.write(b"\n").is_ok_and(|n| n == 1) {
                self.torn = false;
            } else {
                let error = io::Error::other("the log's last line could not be ended");
                return Err((count_lines(bytes), error));
            }
        }
        let mut written = 0;
        let error = loop {
            if written == bytes.len() {
                return Ok(());
            }
            match self.output.write(&bytes[written..]) {
                Ok(0) => break io::Error::from(io::ErrorKind::WriteZero),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break e,
            }
        };
        let whole = bytes[..written]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let cut = (written - whole) as u64;
        if cut > 0 && !self.output.take_back(cut) {
            self.torn = true;
        }
        Err((count_lines(&bytes[whole..]), error))
    }

    /// `lines` were not written: counted, and the outage's first error told on stderr.
    fn lost(&mut self, lines: u64, error: &io::Error) {
        self.lost_unreported += lines;
        self.lost_total.fetch_add(lines, Ordering::Relaxed);
        let now = Instant::now();
        let same_outage = self
            .last_failure
            .is_some_and(|last| now.duration_since(last) < OUTAGE_GAP);
        if !same_outage {
            warn(&format!(
                "the server log {} cannot be written ({error}); its lines are counted and \
                 dropped until it can be written again",
                self.output.name()
            ));
        }
        self.last_failure = Some(now);
        if self.outage.is_none() {
            self.outage = Some(error.to_string());
        }
    }

    /// Opens the file again by its name. If that fails, the lines go on into the file already
    /// open, and both stderr and that file say why.
    fn reopen(&mut self) {
        let Output::File { path, .. } = &self.output else {
            return; // stderr: nothing to reopen
        };
        match open_append(path) {
            Ok(file) => {
                let path = path.clone();
                self.output = Output::File { file, path };
                self.torn = false;
            }
            Err(e) => {
                let why = format!("cannot reopen the log {}: {e}", path.display());
                warn(&format!("{why}; writing on into the file already open"));
                let mut line = String::new();
                let _ = write_rfc3339(&mut line, SystemTime::now());
                line.push_str(&format!(
                    " event=log-reopen ok=0 error={}\n",
                    Value(why.as_bytes())
                ));
                self.write_lines(line.as_bytes());
            }
        }
    }
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// One line on stderr. Never `eprintln!`: it panics when stderr is gone, and the writer thread
/// must outlive any output it has.
pub(super) fn warn(message: &str) {
    if cfg!(test) {
        // Unit tests: into the harness's capture, shown only when a test fails.
        eprintln!("securetcp: warning: {message}");
        return;
    }
    let _ = writeln!(io::stderr().lock(), "securetcp: warning: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink_into(path: &Path) -> (Sink, Arc<AtomicU64>) {
        let lost = Arc::new(AtomicU64::new(0));
        (
            Sink::new(Output::open(path).unwrap(), Arc::clone(&lost)),
            lost,
        )
    }

    fn temp(tag: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("securetcp-sink-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn a_full_device_loses_every_line_counted_and_warns_once() {
        let (mut sink, lost) = sink_into(Path::new("/dev/full"));
        sink.write_lines(b"a\nb\n");
        sink.write_lines(b"c\n");
        assert_eq!(lost.load(Ordering::Relaxed), 3);
        assert_eq!(sink.lost_unreported, 3);
        assert!(sink.outage.as_deref().unwrap().contains("No space left"));
        assert!(!sink.torn, "nothing was written, nothing to take back");
    }

    #[test]
    fn reopen_follows_the_name_to_a_new_file() {
        let path = temp("reopen");
        let moved = temp("reopen-moved");
        let (mut sink, _) = sink_into(&path);
        sink.write_lines(b"before\n");
        std::fs::rename(&path, &moved).unwrap();
        sink.write_lines(b"still the old file\n");
        sink.reopen();
        sink.write_lines(b"after\n");
        assert_eq!(
            std::fs::read_to_string(&moved).unwrap(),
            "before\nstill the old file\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&moved);
    }

    #[test]
    fn a_failed_reopen_writes_on_into_the_open_file_and_says_why() {
        let dir = temp("reopen-dir");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("server.log");
        let (mut sink, _) = sink_into(&path);
        sink.write_lines(b"one\n");
        let keep = dir.with_extension("moved");
        let _ = std::fs::remove_dir_all(&keep);
        std::fs::rename(&dir, &keep).unwrap(); // the directory is gone: no reopening there
        sink.reopen();
        sink.write_lines(b"two\n");
        let text = std::fs::read_to_string(keep.join("server.log")).unwrap();
        assert!(text.starts_with("one\n"), "{text}");
        assert!(
            text.contains("event=log-reopen ok=0 error=\"cannot reopen"),
            "{text}"
        );
        assert!(text.ends_with("two\n"), "{text}");
        let _ = std::fs::remove_dir_all(&keep);
    }

    #[test]
    fn lines_are_counted_by_their_newlines() {
        assert_eq!(count_lines(b""), 0);
        assert_eq!(count_lines(b"a\nb\n"), 2);
    }
}
