//! The connection table: a slot per connection, reused through a free list, each holding the
//! `Conn`, its socket, its registration with the poll and whether it has output to write this turn. It also
//! owns the reactor's work lists of connections (to flush at the end of the turn, to read again
//! next turn, to close once the current step is done), so each of those flags has one owner.
//!
//! A `ConnId` is slot + serial: a stale id (a late event, a service's old handle) never reaches
//! the next connection in the same slot.
//!
//! It also keeps the account of its connections' output buffers, for `--max-output-memory`: each
//! entry remembers how much of their memory the process-wide count (`Shared`) holds, and brings
//! that up to date when asked (`recount`), so the count stays exact whatever changed the buffers,
//! and since when its socket has taken nothing of its queue (how far behind it is). A connection
//! shed for the budget no longer counts and gets nothing more.

use std::io;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::conn::{CloseReason, Conn, Phase};
use crate::outbox::ConnId;
use crate::shared::Shared;

struct Entry {
    conn: Conn,
    /// Read and written only through `driver`.
    socket: TcpStream,
    /// The interest last given to the poll (changed only when the wanted one differs).
    registered: Interest,
    /// In `dirty`: to be flushed at the end of this turn.
    dirty: bool,
    /// Its output buffers' memory as the process-wide count holds it (see `recount`).
    counted: usize,
    /// Its queued output at the last `recount`.
    queued: usize,
    /// While it has output queued: when its socket last took some, or when its queue last
    /// went from empty to not (the reader that drains is recent, the one that never reads is
    /// old, whatever the bytes each got this turn before the flush).
    behind_since: Option<Instant>,
    /// Cut for the output budget: it is closing, and gets no more output.
    shed: bool,
}

#[derive(Default)]
pub struct Slots {
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    live: usize,
    dirty: Vec<ConnId>,
    /// Connections that used up their read budget with bytes still waiting: read next turn.
    read_later: Vec<ConnId>,
    /// Connections to close once the current step is done (never closed mid-iteration).
    to_close: Vec<(ConnId, CloseReason)>,
    /// The sum of the entries' `counted`: this worker's part of the process's output buffers.
    counted: usize,
    /// Entries not shed with output queued: when none is, no victim is looked for (memory
    /// kept by idle connections' buffers must not cost a scan of the table per line).
    behind: usize,
}

impl Slots {
    /// Connections in the table, closing ones included.
    pub fn live(&self) -> usize {
        self.live
    }

    /// The id the next connection will get, for the serial `serial`.
    pub fn next_id(&mut self, serial: u64) -> ConnId {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.entries.push(None);
            self.entries.len() - 1
        });
        ConnId::new(serial, slot)
    }

    /// Gives back an id from `next_id` that got no connection.
    pub fn unused(&mut self, id: ConnId) {
        self.free.push(id.slot());
    }

    /// Puts a connection and its socket in its slot (from `next_id`) and registers the socket
    /// for reading.
    pub fn insert(
        &mut self,
        conn: Conn,
        mut socket: TcpStream,
        registry: &Registry,
    ) -> io::Result<()> {
        let id = conn.id();
        if let Err(e) = registry.register(&mut socket, Token(id.as_usize()), Interest::READABLE) {
            self.free.push(id.slot());
            return Err(e);
        }
        self.entries[id.slot()] = Some(Entry {
            conn,
            socket,
            registered: Interest::READABLE,
            dirty: false,
            counted: 0,
            queued: 0,
            behind_since: None,
            shed: false,
        });
        self.live += 1;
        Ok(())
    }

    pub fn get(&self, id: ConnId) -> Option<&Conn> {
        self.entries
            .get(id.slot())
            .and_then(Option::as_ref)
            .map(|e| &e.conn)
            .filter(|c| c.id() == id)
    }

    /// The socket of `id`, to look at (the driver's `has_bytes_waiting`).
    pub fn socket(&self, id: ConnId) -> Option<&TcpStream> {
        self.entries
            .get(id.slot())
            .and_then(Option::as_ref)
            .filter(|e| e.conn.id() == id)
            .map(|e| &e.socket)
    }

    /// The connection and its socket, for the driver.
    pub fn get_with_socket(&mut self, id: ConnId) -> Option<(&mut Conn, &mut TcpStream)> {
        self.entries
            .get_mut(id.slot())
            .and_then(Option::as_mut)
            .filter(|e| e.conn.id() == id)
            .map(|e| (&mut e.conn, &mut e.socket))
    }

    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.entries
            .get_mut(id.slot())
            .and_then(Option::as_mut)
            .map(|e| &mut e.conn)
            .filter(|c| c.id() == id)
    }

    /// Takes a connection out of the table; its slot is free again. The caller drops it, and
    /// closing its socket takes it out of the poll: a file description leaves every epoll interest
    /// list when its last descriptor closes (epoll(7)), and a connection's socket is never
    /// duplicated. So no `EPOLL_CTL_DEL`, one syscall fewer per connection (tokio makes it).
    /// Its output buffers leave the process-wide count in `shared`.
    pub fn remove(&mut self, id: ConnId, shared: &Shared) -> Option<(Conn, TcpStream)> {
        let slot = self.entries.get_mut(id.slot())?;
        if slot.as_ref().is_none_or(|e| e.conn.id() != id) {
            return None;
        }
        let entry = slot.take()?;
        self.free.push(id.slot());
        self.live -= 1;
        self.counted -= entry.counted;
        shared.output_changed(entry.counted, true);
        if !entry.shed && entry.queued > 0 {
            self.behind -= 1;
        }
        Some((entry.conn, entry.socket))
    }

    /// Brings the process-wide count of output memory (`shared`) up to date with what this
    /// connection's buffers hold now (`Conn::output_memory`). Call it after queueing to or
    /// flushing a connection, at `now`.
    pub fn recount(&mut self, id: ConnId, shared: &Shared, now: Instant) {
        let Some(entry) = self.entries.get_mut(id.slot()).and_then(Option::as_mut) else {
            return;
        };
        if entry.conn.id() != id || entry.shed {
            return;
        }
        let (queued, memory) = (entry.conn.pending_output(), entry.conn.output_memory());
        entry.behind_since = match entry.behind_since {
            _ if queued == 0 => None,
            // Empty until now, or its socket took some: behind from now on.
            None => Some(now),
            Some(_) if queued < entry.queued => Some(now),
            Some(since) => Some(since),
        };
        match (entry.queued > 0, queued > 0) {
            (false, true) => self.behind += 1,
            (true, false) => self.behind -= 1,
            _ => {}
        }
        entry.queued = queued;
        if memory >= entry.counted {
            shared.output_changed(memory - entry.counted, false);
            self.counted += memory - entry.counted;
        } else {
            shared.output_changed(entry.counted - memory, true);
            self.counted -= entry.counted - memory;
        }
        entry.counted = memory;
    }

    /// This worker's part of the process's output buffers, in bytes.
    pub fn queued_here(&self) -> usize {
        self.counted
    }

    /// The connection furthest behind, of those not shed already and with output queued: the
    /// one whose socket has taken nothing for the longest, and of those the one with the most
    /// queued. (Bytes alone cannot tell: every member gets a turn's room lines before the
    /// turn's flush, the one that reads as well as the one that never does.)
    pub fn furthest_behind(&self) -> Option<ConnId> {
        if self.behind == 0 {
            return None;
        }
        self.entries
            .iter()
            .flatten()
            .filter(|e| !e.shed && e.queued > 0)
            .min_by_key(|e| (e.behind_since, std::cmp::Reverse(e.counted)))
            .map(|e| e.conn.id())
    }

    /// Cuts a connection for the output budget (`reason=slow-reader`, once the current step is
    /// done): its bytes leave the count now, and it gets no more output.
    pub fn shed(&mut self, id: ConnId, shared: &Shared) {
        let Some(entry) = self.entries.get_mut(id.slot()).and_then(Option::as_mut) else {
            return;
        };
        if entry.conn.id() != id || entry.shed {
            return;
        }
        entry.shed = true;
        if entry.queued > 0 {
            self.behind -= 1;
        }
        shared.output_changed(entry.counted, true);
        self.counted -= entry.counted;
        entry.counted = 0;
        self.to_close.push((id, CloseReason::SlowReader));
    }

    /// Whether the connection was cut for the output budget (or is gone).
    pub fn is_shed(&self, id: ConnId) -> bool {
        self.entries
            .get(id.slot())
            .and_then(Option::as_ref)
            .is_none_or(|e| e.conn.id() != id || e.shed)
    }

    /// Every connection now in the table.
    pub fn ids(&self) -> Vec<ConnId> {
        self.iter().map(Conn::id).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Conn> {
        self.entries.iter().flatten().map(|e| &e.conn)
    }

    /// Notes that a connection has output to write at the end of this turn (once per turn).
    pub fn mark_dirty(&mut self, id: ConnId) {
        if let Some(entry) = self.entries.get_mut(id.slot()).and_then(Option::as_mut)
            && entry.conn.id() == id
            && !entry.dirty
        {
            entry.dirty = true;
            self.dirty.push(id);
        }
    }

    /// The next connection to flush this turn.
    pub fn next_dirty(&mut self) -> Option<ConnId> {
        let id = self.dirty.pop()?;
        if let Some(entry) = self.entries.get_mut(id.slot()).and_then(Option::as_mut)
            && entry.conn.id() == id
        {
            entry.dirty = false;
        }
        Some(id)
    }

    pub fn read_later(&mut self, id: ConnId) {
        self.read_later.push(id);
    }

    pub fn take_read_later(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.read_later)
    }

    pub fn has_read_later(&self) -> bool {
        !self.read_later.is_empty()
    }

    /// Asks for a connection to be closed once the current step is done.
    pub fn close_later(&mut self, id: ConnId, reason: CloseReason) {
        self.to_close.push((id, reason));
    }

    pub fn next_to_close(&mut self) -> Option<(ConnId, CloseReason)> {
        self.to_close.pop()
    }

    /// Tells the poll the readiness the connection needs now, if that changed (one syscall,
    /// only then).
    pub fn update_registration(&mut self, id: ConnId, registry: &Registry) -> io::Result<()> {
        let Some(entry) = self.entries.get_mut(id.slot()).and_then(Option::as_mut) else {
            return Ok(());
        };
        let wanted = interest(&entry.conn);
        if entry.conn.id() == id && wanted != entry.registered {
            registry.reregister(&mut entry.socket, Token(id.as_usize()), wanted)?;
            entry.registered = wanted;
        }
        Ok(())
    }
}

/// The readiness a connection needs now: always readable (EOF and resets must be seen), writable
/// only while it has something to write, or the loop would spin.
fn interest(conn: &Conn) -> Interest {
    if conn.wants_write() && !matches!(conn.phase(), Phase::Lingering { .. }) {
        Interest::READABLE | Interest::WRITABLE
    } else {
        Interest::READABLE
    }
}
