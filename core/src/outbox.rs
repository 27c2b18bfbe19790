//! The Outbox: what a service wants done, written down for the reactor to carry out.
//!
//! Services never touch sockets (they are sans-IO, like rustls). They write intentions here —
//! send a line to a connection, send one line to many, close a connection, shut the server
//! down — and the reactor applies them after the service returns. Line bytes go into one
//! buffer that is reused for the life of the server, so a reply costs no allocation.

use std::fmt::{self, Write as _};
use std::ops::Range;

/// Identifies one connection for its whole life. The low bits are its slot in the reactor's
/// table, the high bits a serial number that is never reused, so a stale id held by a
/// service can never reach the next connection in the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

const SLOT_BITS: u32 = 24;

impl ConnId {
    /// The most connections one reactor can hold (16 million slots).
    pub const MAX_SLOTS: usize = 1 << SLOT_BITS;

    pub fn new(serial: u64, slot: usize) -> ConnId {
        debug_assert!(slot < Self::MAX_SLOTS);
        ConnId((serial << SLOT_BITS) | slot as u64)
    }

    pub fn slot(self) -> usize {
        (self.0 & ((1 << SLOT_BITS) - 1)) as usize
    }

    /// The number the log shows (`conn=17`): connections are numbered from 1 in accept order.
    pub fn serial(self) -> u64 {
        self.0 >> SLOT_BITS
    }

    /// The id as a poll token value (the reactor registers the socket under it).
    pub fn as_usize(self) -> usize {
        self.0 as usize
    }

    pub fn from_usize(value: usize) -> ConnId {
        ConnId(value as u64)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.serial())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Queue `bytes` (one or more lines, each ending in `\n`) for connection `to`.
    Send { to: ConnId, bytes: Range<usize> },
    /// Queue the same bytes for every connection in `targets[to]`: one copy of the line,
    /// however many members a chat room has.
    SendMany {
        to: Range<usize>,
        bytes: Range<usize>,
    },
    /// Remember a name for the connection (it appears in the log).
    SetName { id: ConnId, name: Range<usize> },
    /// Hand these bytes (a chat line) to the rest of the room: the members on other reactors.
    Publish { bytes: Range<usize> },
    /// Flush what is queued for the connection, then close it (TLS close_notify included).
    Close(ConnId),
    /// Stop the server cleanly, as SIGTERM would.
    Shutdown,
}

#[derive(Debug, Default)]
pub struct Outbox {
    bytes: Vec<u8>,
    targets: Vec<ConnId>,
    actions: Vec<Action>,
    /// Log lines about connections (`key=value` fields), kept apart from the actions so that
    /// the reactor writes them right after the request that caused them, in request order.
    logs: Vec<(ConnId, Range<usize>)>,
    /// Set by a service for the current request when its text must not reach the log
    /// (chat messages are logged as a size, never as text).
    quiet: bool,
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Writes `line` and a `\n` into the shared buffer and returns its range.
    fn push_line(&mut self, line: impl fmt::Display) -> Range<usize> {
        let start = self.bytes.len();
        // Writing into a Vec cannot fail; an error here could only come from a Display
        // impl that reports one, and then the line is simply cut short.
        let _ = write!(ByteWriter(&mut self.bytes), "{line}");
        self.bytes.push(b'\n');
        start..self.bytes.len()
    }

    /// Sends one line (the `\n` is added) to a connection.
    pub fn send(&mut self, to: ConnId, line: impl fmt::Display) {
        let bytes = self.push_line(line);
        self.actions.push(Action::Send { to, bytes });
    }

    /// Sends one line that `write` puts together byte by byte (the `\n` is added): for replies
    /// on the request path, which need no `core::fmt`.
    pub fn send_with(&mut self, to: ConnId, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.bytes.len();
        write(&mut self.bytes);
        self.bytes.push(b'\n');
        self.actions.push(Action::Send {
            to,
            bytes: start..self.bytes.len(),
        });
    }

    /// Sends one line to every connection in `to`.
    pub fn send_many(&mut self, to: impl IntoIterator<Item = ConnId>, line: impl fmt::Display) {
        let start = self.targets.len();
        self.targets.extend(to);
        if self.targets.len() == start {
            return;
        }
        let bytes = self.push_line(line);
        self.actions.push(Action::SendMany {
            to: start..self.targets.len(),
            bytes,
        });
    }

    /// A room line: to the local members in `to`, and published to the rest of the room (the
    /// members on other reactors), from one copy of the line.
    pub fn send_room(&mut self, to: impl IntoIterator<Item = ConnId>, line: impl fmt::Display) {
        let bytes = self.push_line(line);
        let start = self.targets.len();
        self.targets.extend(to);
        if self.targets.len() > start {
            self.actions.push(Action::SendMany {
                to: start..self.targets.len(),
                bytes: bytes.clone(),
            });
        }
        self.actions.push(Action::Publish { bytes });
    }

    /// Bytes that are already whole lines (a room line from another reactor) to every
    /// connection in `to`.
    pub fn send_many_raw(&mut self, to: impl IntoIterator<Item = ConnId>, lines: &[u8]) {
        let start = self.targets.len();
        self.targets.extend(to);
        if self.targets.len() == start {
            return;
        }
        let from = self.bytes.len();
        self.bytes.extend_from_slice(lines);
        self.actions.push(Action::SendMany {
            to: start..self.targets.len(),
            bytes: from..self.bytes.len(),
        });
    }

    pub fn set_name(&mut self, id: ConnId, name: &str) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(name.as_bytes());
        let name = start..self.bytes.len();
        self.actions.push(Action::SetName { id, name });
    }

    /// Adds a log line for the connection, e.g. `event=msg bytes=12`.
    pub fn log(&mut self, id: ConnId, fields: impl fmt::Display) {
        let start = self.bytes.len();
        let _ = write!(ByteWriter(&mut self.bytes), "{fields}");
        let fields = start..self.bytes.len();
        self.logs.push((id, fields));
    }

    /// The log lines asked for since the last [`Outbox::clear_logs`]: connection and fields.
    pub fn logs(&self) -> impl Iterator<Item = (ConnId, &[u8])> {
        self.logs
            .iter()
            .map(|(id, fields)| (*id, &self.bytes[fields.clone()]))
    }

    /// Forgets the log lines once written (their bytes stay until [`Outbox::clear`]).
    pub fn clear_logs(&mut self) {
        self.logs.clear();
    }

    /// Keeps the current request and its reply out of the log.
    pub fn quiet(&mut self) {
        self.quiet = true;
    }

    pub fn close(&mut self, id: ConnId) {
        self.actions.push(Action::Close(id));
    }

    pub fn shutdown(&mut self) {
        self.actions.push(Action::Shutdown);
    }

    // ---- for the reactor (and tests): reading what the services asked for ----

    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    pub fn bytes(&self, range: &Range<usize>) -> &[u8] {
        &self.bytes[range.clone()]
    }

    pub fn targets(&self, range: &Range<usize>) -> &[ConnId] {
        &self.targets[range.clone()]
    }

    /// How many actions there are now; pass it to [`Outbox::reply_since`] later.
    pub fn mark(&self) -> usize {
        self.actions.len()
    }

    /// The first line sent to `id` after `mark`, without its `\n`: the reply the log shows.
    pub fn reply_since(&self, mark: usize, id: ConnId) -> Option<&[u8]> {
        self.actions[mark..].iter().find_map(|action| match action {
            Action::Send { to, bytes } if *to == id => {
                let line = &self.bytes[bytes.clone()];
                Some(line.split(|&b| b == b'\n').next().unwrap_or(line))
            }
            _ => None,
        })
    }

    /// The name the service gave `id` after `mark`, if any.
    pub fn name_since(&self, mark: usize, id: ConnId) -> Option<&[u8]> {
        self.actions[mark..]
            .iter()
            .rev()
            .find_map(|action| match action {
                Action::SetName { id: named, name } if *named == id => {
                    Some(&self.bytes[name.clone()])
                }
                _ => None,
            })
    }

    /// True once the service has asked to close `id` in this batch: later lines of the same
    /// read are not processed.
    pub fn is_closing(&self, id: ConnId) -> bool {
        self.closes_since(0, id)
    }

    /// True when, after `mark`, the service asked to close `id` (or the whole server).
    pub fn closes_since(&self, mark: usize, id: ConnId) -> bool {
        self.actions[mark..]
            .iter()
            .any(|a| *a == Action::Close(id) || *a == Action::Shutdown)
    }

    /// Reads and resets the quiet flag.
    pub fn take_quiet(&mut self) -> bool {
        std::mem::take(&mut self.quiet)
    }

    /// Roughly the memory the outbox holds now, in bytes: its line bytes and its target lists.
    /// The reactor applies it before this passes a bound, so one read cannot grow it without
    /// limit.
    pub fn weight(&self) -> usize {
        self.bytes.len() + self.targets.len() * std::mem::size_of::<ConnId>()
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.logs.is_empty()
    }

    /// Empties the outbox, keeping its buffers for the next batch.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.targets.clear();
        self.actions.clear();
        self.logs.clear();
        self.quiet = false;
    }

    /// Every line published to the rest of the room, as text: for the services' unit tests.
    pub fn published(&self) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|action| match action {
                Action::Publish { bytes } => Some(
                    String::from_utf8_lossy(self.bytes(bytes))
                        .trim_end()
                        .to_string(),
                ),
                _ => None,
            })
            .collect()
    }

    /// Every line queued for `id`, as text: for the services' unit tests.
    pub fn lines_for(&self, id: ConnId) -> Vec<String> {
        let mut lines = Vec::new();
        for action in &self.actions {
            let bytes = match action {
                Action::Send { to, bytes } if *to == id => bytes,
                Action::SendMany { to, bytes } if self.targets(to).contains(&id) => bytes,
                _ => continue,
            };
            let text = String::from_utf8_lossy(self.bytes(bytes));
            lines.extend(text.lines().map(str::to_string));
        }
        lines
    }
}

/// `fmt::Write` over a byte vector, so `write!` formats straight into a reused buffer.
pub struct ByteWriter<'a>(pub &'a mut Vec<u8>);

impl fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_id_keeps_slot_and_serial_apart() {
        let id = ConnId::new(17, 5);
        assert_eq!(id.slot(), 5);
        assert_eq!(id.serial(), 17);
        assert_eq!(id.to_string(), "17");
        assert_ne!(id, ConnId::new(18, 5));
        assert_eq!(ConnId::from_usize(id.as_usize()), id);
    }

    #[test]
    fn send_and_reply_since_mark() {
        let (a, b) = (ConnId::new(1, 0), ConnId::new(2, 1));
        let mut out = Outbox::new();
        out.send(a, "first");
        let mark = out.mark();
        out.send(b, "for b");
        out.send(a, format_args!("OK {}", 7));
        assert_eq!(out.reply_since(mark, a), Some(&b"OK 7"[..]));
        assert_eq!(out.lines_for(a), ["first", "OK 7"]);
        assert!(!out.is_closing(a));
        out.close(a);
        assert!(out.is_closing(a));
        assert!(!out.is_closing(b));
    }

    #[test]
    fn send_many_stores_the_line_once() {
        let ids: Vec<ConnId> = (0..100).map(|i| ConnId::new(i + 1, i as usize)).collect();
        let mut out = Outbox::new();
        out.send_many(ids.iter().copied(), "MSG alice hi");
        assert_eq!(out.actions().len(), 1);
        assert_eq!(out.bytes.len(), "MSG alice hi\n".len());
        assert_eq!(out.lines_for(ids[42]), ["MSG alice hi"]);
        out.send_many([], "nobody");
        assert_eq!(out.actions().len(), 1);
    }

    #[test]
    fn clear_keeps_capacity() {
        let mut out = Outbox::new();
        out.send(ConnId::new(1, 0), "x".repeat(1000));
        let capacity = out.bytes.capacity();
        out.clear();
        assert!(out.is_empty());
        assert_eq!(out.bytes.capacity(), capacity);
    }
}
