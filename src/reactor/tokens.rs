//! The poll's tokens, in one enum: what a readiness event is about. Listeners use `0..n`;
//! connection tokens are their `ConnId`, whose serial part starts at 1, so they are never below
//! 2^24; the few fixed sources sit just below `ConnId::MAX_SLOTS`.

use mio::Token;

use crate::outbox::ConnId;
use crate::room::redis::{PUBLISHER_TOKEN, SUBSCRIBER_TOKEN};

/// SIGINT/SIGTERM/SIGHUP, through signal-hook's pipe (worker 0).
pub const SIGNAL_TOKEN: Token = Token(ConnId::MAX_SLOTS - 1);

/// The other workers' messages (`Shared`'s waker).
pub const WAKER_TOKEN: Token = Token(ConnId::MAX_SLOTS - 2);

/// What one readiness event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Signals,
    Waker,
    /// One of the Redis link's two sockets (`room::redis`).
    Redis(Token),
    /// The listener with this index (the `--metrics` one is the last).
    Listener(usize),
    Conn(ConnId),
}

impl Source {
    pub fn of(token: Token, listeners: usize) -> Source {
        match token {
            SIGNAL_TOKEN => Source::Signals,
            WAKER_TOKEN => Source::Waker,
            SUBSCRIBER_TOKEN | PUBLISHER_TOKEN => Source::Redis(token),
            Token(i) if i < listeners => Source::Listener(i),
            Token(t) => Source::Conn(ConnId::from_usize(t)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_has_one_meaning() {
        assert_eq!(Source::of(Token(0), 2), Source::Listener(0));
        assert_eq!(Source::of(Token(1), 2), Source::Listener(1));
        assert_eq!(Source::of(SIGNAL_TOKEN, 2), Source::Signals);
        assert_eq!(Source::of(WAKER_TOKEN, 2), Source::Waker);
        let id = ConnId::new(1, 5);
        assert_eq!(Source::of(Token(id.as_usize()), 2), Source::Conn(id));
        assert!(Token(id.as_usize()).0 > 2);
    }
}
