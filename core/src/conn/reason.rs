//! Why a connection ends, and why one is refused: the words of the log's `event=close` lines and
//! of the replies a refused client reads. Plain values, shared by the connection, the reactor and
//! the metrics.

/// Why a connection ended: the `reason=` of its `event=close` log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    Quit,
    Eof,
    Reset,
    TlsError,
    Busy,
    HandshakeTimeout,
    IdleTimeout,
    SlowReader,
    Shutdown,
    /// Over `--max-per-ip`: told so after the handshake, then closed.
    PerIp,
    /// `--proxy-protocol`: no valid PROXY header in time, or one from an untrusted address.
    ProxyError,
    /// `--line-timeout`: a request line was begun and not finished in time.
    LineTimeout,
    /// Every place was taken and this connection had waited longest without finishing its
    /// handshake: its place went to a newcomer.
    Evicted,
}

impl CloseReason {
    /// Every reason, in declaration order (`reason as usize` indexes it).
    pub const ALL: [CloseReason; 13] = [
        CloseReason::Quit,
        CloseReason::Eof,
        CloseReason::Reset,
        CloseReason::TlsError,
        CloseReason::Busy,
        CloseReason::HandshakeTimeout,
        CloseReason::IdleTimeout,
        CloseReason::SlowReader,
        CloseReason::Shutdown,
        CloseReason::PerIp,
        CloseReason::ProxyError,
        CloseReason::LineTimeout,
        CloseReason::Evicted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Quit => "quit",
            CloseReason::Eof => "eof",
            CloseReason::Reset => "reset",
            CloseReason::TlsError => "tls-error",
            CloseReason::Busy => "busy",
            CloseReason::HandshakeTimeout => "handshake-timeout",
            CloseReason::IdleTimeout => "idle-timeout",
            CloseReason::SlowReader => "slow-reader",
            CloseReason::Shutdown => "shutdown",
            CloseReason::PerIp => "per-ip",
            CloseReason::ProxyError => "proxy-error",
            CloseReason::LineTimeout => "line-timeout",
            CloseReason::Evicted => "evicted",
        }
    }

    /// True when the peer can still receive: queued replies and close_notify are sent first.
    pub fn is_orderly(self) -> bool {
        !matches!(
            self,
            CloseReason::Reset
                | CloseReason::TlsError
                | CloseReason::SlowReader
                | CloseReason::HandshakeTimeout
                | CloseReason::ProxyError
                | CloseReason::Evicted
        )
    }
}

/// Why a connection is refused: told after its handshake, then closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over `--max-clients`.
    Busy,
    /// Over `--max-per-ip`.
    PerIp,
}

impl Refusal {
    /// The one line a refused client reads (SPEC wording), `\n` included.
    pub fn reply(self) -> &'static [u8] {
        match self {
            Refusal::Busy => b"ERR server busy, try again later\n",
            Refusal::PerIp => b"ERR too many connections from your address\n",
        }
    }

    pub fn reason(self) -> CloseReason {
        match self {
            Refusal::Busy => CloseReason::Busy,
            Refusal::PerIp => CloseReason::PerIp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_listed_in_declaration_order() {
        for (i, reason) in CloseReason::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, i, "{}", reason.as_str());
        }
    }
}
