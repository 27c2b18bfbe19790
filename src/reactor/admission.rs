//! Admission owns every place a connection can hold: a `--max-clients` place (process-wide, in
//! `Shared`), a `--max-per-ip` place, one of the few busy replies being told at once, and one of
//! the few `--metrics` connections. A connection gets its places at accept (behind a balancer,
//! the per-address one when the PROXY header names the client) and gives them back once, when
//! its session ends: the moment it is told `BYE` or a refusal, not when its close completes.
//!
//! When every place is taken, the connection that has waited longest without finishing its
//! handshake (or PROXY header) gives its place to the newcomer (`reason=evicted`): sockets that
//! never handshake cannot keep real clients out. Scrapes take no client place.
//!
//! Who goes first: of the connections accepted more than [`NEWCOMER_GRACE`] ago, those that have
//! sent nothing, then those that have sent something, each oldest first; a connection accepted
//! less than that ago only when no older one is handshaking (SPEC "Memory under pressure": a
//! real client that has not been read yet is not "silent", it is new). Among those newcomers,
//! one that has sent nothing goes before one mid-handshake (a real client's handshake takes
//! milliseconds; a burst of silent sockets must not push it out), each oldest first. Last of
//! all, whatever its age, a connection whose ClientHello the server has answered: a real client
//! waiting on its round trip (a 300 ms path, or TLS 1.2's two), which a flood of sockets that
//! come and go faster than the grace would otherwise leave as the only one past it.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::conn::{CloseReason, Kind, Places, Refusal};
use crate::outbox::ConnId;
use crate::proxy::ProxyFrom;
use crate::shared::Shared;

/// Connections beyond `--max-clients` that are still accepted, handshaken and told
/// `ERR server busy`. Past this many at once, new ones are closed right after `accept`.
pub const MAX_BUSY_REPLIES: usize = 64;

/// `--metrics` connections at once; the next one is answered `503` and closed.
pub const MAX_SCRAPES: usize = 16;

/// A connection accepted less than this ago is a newcomer: it has had no fair chance to send
/// its ClientHello (or PROXY header), which a real client sends with its connection's last
/// ACK, so having sent nothing yet says nothing about it. Short, so that under a flood of
/// sockets that never send, the flood's own older sockets are always the first victims.
pub const NEWCOMER_GRACE: Duration = Duration::from_millis(250);

/// How many newcomers, from the oldest, are looked at for one that has sent nothing.
const NEWCOMERS_LOOKED_AT: usize = 64;

/// What admission decided for a new socket.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// In, as this kind, holding these places.
    Admit(Kind, Places),
    /// Every client place is taken, and someone still handshaking could give up theirs.
    Full,
    /// Closed at once, with no place and no reply (too many to even tell them).
    DropAtOnce(CloseReason, Option<&'static str>),
    /// The metrics endpoint is full: `503`, then closed.
    ScrapesFull,
}

pub struct Admission {
    shared: Arc<Shared>,
    /// This worker's index (places over the limit are asked of the others).
    worker: usize,
    /// `--proxy-protocol`: who may send the header; `None` when no header is expected.
    proxy_from: Option<ProxyFrom>,
    busy_replies: usize,
    scrapes: usize,
    /// Connections in the order they were accepted while handshaking (some may have finished
    /// or gone since: looked up when a victim is needed).
    handshaking: VecDeque<ConnId>,
    /// Handshaking connections past their grace found, when looking for a victim, to have sent
    /// something (a ClientHello, part of a PROXY header): evicted only once no silent one is
    /// left, so a flood of sockets that never send cannot push out real clients mid-handshake.
    spoken: VecDeque<ConnId>,
    /// Handshaking connections whose hello the server answered, oldest first: the last victims.
    answered: VecDeque<ConnId>,
    /// `handshaking` is cleared of finished ids once it grows past this.
    compact_at: usize,
}

/// The smallest length at which the queue of handshaking ids is compacted.
const MIN_COMPACT: usize = 1024;

impl Admission {
    pub fn new(shared: Arc<Shared>, worker: usize, proxy_from: Option<ProxyFrom>) -> Admission {
        Admission {
            shared,
            worker,
            proxy_from,
            busy_replies: 0,
            scrapes: 0,
            handshaking: VecDeque::new(),
            spoken: VecDeque::new(),
            answered: VecDeque::new(),
            compact_at: MIN_COMPACT,
        }
    }

    /// Whether connections start with a PROXY header.
    pub fn expects_proxy(&self) -> bool {
        self.proxy_from.is_some()
    }

    /// Scrapes open now (they are not clients).
    pub fn scrapes(&self) -> usize {
        self.scrapes
    }

    /// A new socket from `peer`. `evicting` is true on the second try, after a handshaking
    /// connection gave up its place: then a full server refuses instead of asking again.
    pub fn admit(&mut self, peer: IpAddr, scrape: bool, evicting: bool) -> Verdict {
        if scrape {
            if self.scrapes >= MAX_SCRAPES {
                return Verdict::ScrapesFull;
            }
            self.scrapes += 1;
            let places = Places {
                scrape: true,
                ..Places::default()
            };
            return Verdict::Admit(Kind::Scrape, places);
        }
        // Behind a balancer the socket's peer is the balancer: the client's address, and its
        // place under `--max-per-ip`, come with the PROXY header (`admit_proxied`).
        let proxied = self.proxy_from.is_some();
        if self.proxy_from.as_ref().is_some_and(|f| !f.allows(peer)) {
            return Verdict::DropAtOnce(
                CloseReason::ProxyError,
                Some("connection from an address not in --proxy-from"),
            );
        }
        // The address's own limit first: a newcomer refused for its address must not make
        // anyone else give up a place.
        if !proxied && !self.shared.admit_ip(peer) {
            return self.refuse(Refusal::PerIp);
        }
        if !self.shared.admit() {
            let waiting = !self.handshaking.is_empty()
                || !self.spoken.is_empty()
                || !self.answered.is_empty();
            let full = if !evicting && waiting {
                Some(Verdict::Full)
            } else if evicting || !self.shared.admit_over(self.worker) {
                // None to evict here: another worker may give a place back
                // (`Shared::admit_over`); else it is told busy.
                Some(self.refuse(Refusal::Busy))
            } else {
                None
            };
            if let Some(verdict) = full {
                if !proxied {
                    self.shared.depart_ip(peer);
                }
                return verdict;
            }
        }
        let places = Places {
            client: true,
            per_ip: (!proxied).then_some(peer),
            ..Places::default()
        };
        Verdict::Admit(Kind::Client, places)
    }

    fn refuse(&mut self, refusal: Refusal) -> Verdict {
        if self.busy_replies >= MAX_BUSY_REPLIES {
            return Verdict::DropAtOnce(refusal.reason(), None);
        }
        self.busy_replies += 1;
        let places = Places {
            busy_reply: true,
            ..Places::default()
        };
        Verdict::Admit(Kind::Refused(refusal), places)
    }

    /// The PROXY header named the client `ip`: its `--max-per-ip` place, or the refusal to tell
    /// it (the client place it held is given back). `None`: admitted.
    pub fn admit_proxied(&mut self, ip: IpAddr, held: Places) -> Result<Places, (Refusal, Places)> {
        if !held.client || self.shared.admit_ip(ip) {
            return Ok(Places {
                per_ip: held.client.then_some(ip),
                ..held
            });
        }
        self.release(held);
        match self.refuse(Refusal::PerIp) {
            Verdict::Admit(_, places) => Err((Refusal::PerIp, places)),
            _ => Err((Refusal::PerIp, Places::default())),
        }
    }

    /// Gives back the places a connection held (its session ended).
    pub fn release(&mut self, places: Places) {
        if places.client {
            self.shared.depart();
        }
        if let Some(ip) = places.per_ip {
            self.shared.depart_ip(ip);
        }
        if places.busy_reply {
            self.busy_replies -= 1;
        }
        if places.scrape {
            self.scrapes -= 1;
        }
    }

    /// A connection that must finish its handshake (or PROXY header) before it is ready.
    /// Ids at the front that `still_handshaking` no longer holds are forgotten on the way, so
    /// the queue stays as long as the handshakes now in progress, not all that ever were.
    pub fn note_handshaking(&mut self, id: ConnId, candidate: impl Fn(ConnId) -> Candidate) {
        self.forget_finished_at_front(&candidate);
        let still_handshaking = |id| candidate(id) != Candidate::Gone;
        self.handshaking.push_back(id);
        if self.handshaking.len() > self.compact_at {
            // Finished ones behind a slow one at the front: dropped in one pass, amortized.
            self.handshaking.retain(|&id| still_handshaking(id));
            self.compact_at = (2 * self.handshaking.len()).max(MIN_COMPACT);
        }
        if self.spoken.len() + self.answered.len() > self.compact_at {
            // The queues eviction sorted into keep ids that finished since: dropped likewise.
            self.spoken.retain(|&id| still_handshaking(id));
            self.answered.retain(|&id| still_handshaking(id));
        }
    }

    /// How many connections may still be handshaking (an upper bound: ids behind the front
    /// that finished are only dropped when the queue is compacted), after dropping finished
    /// ones at the front.
    pub fn handshaking(&mut self, candidate: impl Fn(ConnId) -> Candidate) -> usize {
        self.forget_finished_at_front(&candidate);
        self.handshaking.len() + self.spoken.len() + self.answered.len()
    }

    /// Drops the ids at the front of the queue that finished or went.
    fn forget_finished_at_front(&mut self, candidate: &impl Fn(ConnId) -> Candidate) {
        while self
            .handshaking
            .front()
            .is_some_and(|&front| candidate(front) == Candidate::Gone)
        {
            self.handshaking.pop_front();
        }
    }

    /// `id`, just taken by `longest_handshaking` but not evicted, is again the first in line.
    pub fn keep_first(&mut self, id: ConnId) {
        self.handshaking.push_front(id);
    }

    /// The victim when every place is taken: of the connections past their grace, the one
    /// that has waited longest without finishing its handshake and without sending anything,
    /// else the one that has waited longest of those that sent something; only then the oldest
    /// newcomer. `candidate` says which a connection is now. Ids that finished or went are
    /// forgotten on the way.
    pub fn longest_handshaking(
        &mut self,
        candidate: impl Fn(ConnId) -> Candidate,
    ) -> Option<ConnId> {
        // In accept order: once the front is a newcomer, so is everything behind it.
        while let Some(&id) = self.handshaking.front() {
            match candidate(id) {
                Candidate::NewSilent | Candidate::NewSpoken => break,
                Candidate::Silent => {
                    self.handshaking.pop_front();
                    return Some(id);
                }
                Candidate::Spoken => {
                    self.handshaking.pop_front();
                    self.spoken.push_back(id);
                }
                Candidate::Answered => {
                    self.handshaking.pop_front();
                    self.answered.push_back(id);
                }
                Candidate::Gone => {
                    self.handshaking.pop_front();
                }
            }
        }
        while let Some(id) = self.spoken.pop_front() {
            match candidate(id) {
                Candidate::Gone => {}
                // Its hello came whole since: it waits with the others answered.
                Candidate::Answered => self.answered.push_back(id),
                _ => return Some(id),
            }
        }
        // No older one is handshaking: the oldest newcomer that has sent nothing (looked for
        // among the first few, so a victim costs O(1)), else the oldest newcomer.
        let silent = self
            .handshaking
            .iter()
            .take(NEWCOMERS_LOOKED_AT)
            .position(|&id| candidate(id) == Candidate::NewSilent);
        if let Some(at) = silent {
            return self.handshaking.remove(at);
        }
        while let Some(id) = self.handshaking.pop_front() {
            match candidate(id) {
                Candidate::Gone => {}
                Candidate::Answered => self.answered.push_back(id),
                _ => return Some(id),
            }
        }
        // Only clients mid-handshake are left: the one that has waited longest.
        while let Some(id) = self.answered.pop_front() {
            if candidate(id) == Candidate::Answered {
                return Some(id);
            }
        }
        None
    }
}

/// What a connection in the eviction queues is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidate {
    /// Finished its handshake, went, or holds no client place (a refused one): not a victim.
    Gone,
    /// Handshaking, holding a client place, accepted less than [`NEWCOMER_GRACE`] ago, and
    /// has sent nothing yet: a victim only when no older connection is handshaking.
    NewSilent,
    /// A newcomer that has sent something (a real client mid-handshake): the last victims.
    NewSpoken,
    /// Handshaking, holding a client place, past its grace, and has sent nothing yet: the
    /// first victims.
    Silent,
    /// Handshaking, holding a client place, past its grace, but it has sent something.
    Spoken,
    /// Handshaking, holding a client place, and the server has answered its ClientHello: a
    /// client waiting on a round trip, of any age. The very last victims.
    Answered,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn places_of(verdict: Verdict) -> Places {
        match verdict {
            Verdict::Admit(_, places) => places,
            other => panic!("not admitted: {other:?}"),
        }
    }

    #[test]
    fn a_full_server_refuses_with_a_busy_reply_and_frees_the_place_at_session_end() {
        let shared = Shared::configured(1, 1, None, false);
        let mut admission = Admission::new(shared, 0, None);
        let first = places_of(admission.admit(ip("10.0.0.1"), false, false));
        assert!(first.client);
        match admission.admit(ip("10.0.0.2"), false, false) {
            Verdict::Admit(Kind::Refused(Refusal::Busy), places) => {
                assert!(places.busy_reply && !places.client);
                admission.release(places);
            }
            other => panic!("{other:?}"),
        }
        admission.release(first);
        assert!(places_of(admission.admit(ip("10.0.0.2"), false, false)).client);
    }

    #[test]
    fn per_address_places_are_counted_and_given_back() {
        let shared = Shared::configured(1, 100, Some(1), false);
        let mut admission = Admission::new(shared, 0, None);
        let first = places_of(admission.admit(ip("10.0.0.1"), false, false));
        assert!(matches!(
            admission.admit(ip("10.0.0.1"), false, false),
            Verdict::Admit(Kind::Refused(Refusal::PerIp), _)
        ));
        admission.release(first);
        assert!(matches!(
            admission.admit(ip("10.0.0.1"), false, false),
            Verdict::Admit(Kind::Client, _)
        ));
    }

    #[test]
    fn scrapes_take_no_client_place_and_are_bounded() {
        let shared = Shared::configured(1, 1, None, true);
        let mut admission = Admission::new(shared, 0, None);
        for _ in 0..MAX_SCRAPES {
            assert!(!places_of(admission.admit(ip("10.0.0.1"), true, false)).client);
        }
        assert_eq!(
            admission.admit(ip("10.0.0.1"), true, false),
            Verdict::ScrapesFull
        );
        // The one client place is still free.
        assert!(places_of(admission.admit(ip("10.0.0.1"), false, false)).client);
    }

    #[test]
    fn a_full_server_with_a_handshaking_connection_offers_its_place() {
        let shared = Shared::configured(1, 1, None, false);
        let mut admission = Admission::new(shared, 0, None);
        let stalled = ConnId::new(1, 0);
        let held = places_of(admission.admit(ip("10.0.0.1"), false, false));
        admission.note_handshaking(stalled, |_| Candidate::Silent);
        assert_eq!(admission.admit(ip("10.0.0.2"), false, false), Verdict::Full);
        assert_eq!(
            admission.longest_handshaking(|_| Candidate::Silent),
            Some(stalled)
        );
        admission.release(held);
        assert!(places_of(admission.admit(ip("10.0.0.2"), false, true)).client);
    }

    #[test]
    fn too_many_refusals_at_once_are_dropped_without_a_reply() {
        let shared = Shared::configured(1, 0, None, false);
        let mut admission = Admission::new(shared, 0, None);
        for _ in 0..MAX_BUSY_REPLIES {
            assert!(places_of(admission.admit(ip("10.0.0.1"), false, false)).busy_reply);
        }
        assert_eq!(
            admission.admit(ip("10.0.0.1"), false, false),
            Verdict::DropAtOnce(CloseReason::Busy, None)
        );
    }

    #[test]
    fn silent_connections_are_evicted_before_those_that_spoke() {
        let shared = Shared::configured(1, 10, None, false);
        let mut admission = Admission::new(shared, 0, None);
        let (spoke, silent, gone) = (ConnId::new(1, 0), ConnId::new(2, 1), ConnId::new(3, 2));
        let state = |id: ConnId| match id {
            id if id == spoke => Candidate::Spoken,
            id if id == silent => Candidate::Silent,
            _ => Candidate::Gone,
        };
        for id in [spoke, gone, silent] {
            admission.note_handshaking(id, |_| Candidate::Silent);
        }
        assert_eq!(admission.longest_handshaking(state), Some(silent));
        assert_eq!(admission.longest_handshaking(state), Some(spoke));
        assert_eq!(admission.longest_handshaking(state), None);
    }

    /// Issue 31 item 15: a newcomer not yet read has sent nothing, yet it goes last: after every
    /// older connection, silent or not.
    #[test]
    fn a_newcomer_is_evicted_only_when_no_older_connection_is_handshaking() {
        let shared = Shared::configured(1, 10, None, false);
        let mut admission = Admission::new(shared, 0, None);
        let ids: Vec<ConnId> = (0..5).map(|n| ConnId::new(n + 1, n as usize)).collect();
        let (old_spoke, old_silent, newer_spoke, new_a, new_b) =
            (ids[0], ids[1], ids[2], ids[3], ids[4]);
        for &id in &ids {
            admission.note_handshaking(id, |_| Candidate::NewSilent);
        }
        let state = |id: ConnId| match id {
            id if id == old_spoke || id == newer_spoke => Candidate::Spoken,
            id if id == old_silent => Candidate::Silent,
            id if id == new_a => Candidate::NewSpoken,
            _ => Candidate::NewSilent,
        };
        assert_eq!(admission.longest_handshaking(state), Some(old_silent));
        assert_eq!(admission.longest_handshaking(state), Some(old_spoke));
        assert_eq!(admission.longest_handshaking(state), Some(newer_spoke));
        // Newcomers last: the silent one before the one mid-handshake, though it is younger.
        assert_eq!(admission.longest_handshaking(state), Some(new_b));
        assert_eq!(admission.longest_handshaking(state), Some(new_a));
        assert_eq!(admission.longest_handshaking(state), None);
    }

    #[test]
    fn a_client_whose_hello_was_answered_goes_after_every_newcomer() {
        // The attack round of issue 31: sockets that come and go faster than the grace are all
        // newcomers, and a real client on a 300 ms path, past its grace, was the only victim.
        let shared = Shared::configured(1, 10, None, false);
        let mut admission = Admission::new(shared, 0, None);
        let ids: Vec<ConnId> = (0..4).map(|n| ConnId::new(n + 1, n as usize)).collect();
        let (slow_real, older_real, new_silent, new_spoke) = (ids[0], ids[1], ids[2], ids[3]);
        admission.note_handshaking(older_real, |_| Candidate::NewSilent);
        admission.note_handshaking(slow_real, |_| Candidate::NewSilent);
        admission.note_handshaking(new_silent, |_| Candidate::NewSilent);
        admission.note_handshaking(new_spoke, |_| Candidate::NewSilent);
        let state = |id: ConnId| match id {
            id if id == slow_real || id == older_real => Candidate::Answered,
            id if id == new_silent => Candidate::NewSilent,
            _ => Candidate::NewSpoken,
        };
        assert_eq!(admission.longest_handshaking(state), Some(new_silent));
        assert_eq!(admission.longest_handshaking(state), Some(new_spoke));
        // Then the answered ones, the one that has waited longest first.
        assert_eq!(admission.longest_handshaking(state), Some(older_real));
        assert_eq!(admission.longest_handshaking(state), Some(slow_real));
        assert_eq!(admission.longest_handshaking(state), None);
    }
}
