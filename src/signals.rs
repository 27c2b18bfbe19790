//! What each signal does to the server (the operations contract): SIGINT and SIGTERM stop it
//! cleanly; SIGHUP reloads the certificates and reopens the log; SIGUSR1 reopens the log (as
//! nginx does: logrotate moves the file, then signals). No other signal stops it: those whose
//! default would end the process without saying anything about its health (SIGUSR2, SIGPIPE,
//! SIGALRM, SIGXFSZ past a file size limit, the real-time signals...) are ignored. Signals that
//! report a fault of the process itself (SIGSEGV, SIGBUS, SIGABRT...) keep their default.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};

/// The signals worker 0 handles (through `signal_hook`'s pipe, on its poll).
pub const HANDLED: [i32; 4] = [SIGINT, SIGTERM, SIGHUP, SIGUSR1];

/// What a handled signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked {
    pub stop: bool,
    pub reload_tls: bool,
    pub reopen_log: bool,
}

/// What `signal` (one of `HANDLED`) asks for.
pub fn asked(signal: i32) -> Asked {
    Asked {
        stop: signal == SIGINT || signal == SIGTERM,
        reload_tls: signal == SIGHUP,
        reopen_log: signal == SIGHUP || signal == SIGUSR1,
    }
}

/// Signals whose default action ends the process, that carry no news of a fault in it.
const IGNORED: [i32; 11] = [
    libc::SIGUSR2,
    libc::SIGPIPE,
    libc::SIGQUIT,
    libc::SIGALRM,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGIO,
    libc::SIGPWR,
    libc::SIGSTKFLT,
    libc::SIGXCPU,
    libc::SIGXFSZ,
];

/// Ignores every signal that would otherwise end the process, but for SIGINT and SIGTERM and
/// the faults; SIGHUP and SIGUSR1 too, until worker 0 takes them over (`HANDLED`), so that one
/// arriving during the start cannot end it. Call first thing in `main`: an ignored signal stays
/// ignored in every thread started later.
pub fn ignore_the_harmless() {
    let realtime = libc::SIGRTMIN()..=libc::SIGRTMAX();
    for signal in IGNORED.into_iter().chain([SIGHUP, SIGUSR1]).chain(realtime) {
        // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_int_and_term_stop_and_hup_does_both_other_things() {
        assert!(asked(SIGINT).stop && asked(SIGTERM).stop);
        assert_eq!(
            asked(SIGHUP),
            Asked {
                stop: false,
                reload_tls: true,
                reopen_log: true
            }
        );
        assert_eq!(
            asked(SIGUSR1),
            Asked {
                stop: false,
                reload_tls: false,
                reopen_log: true
            }
        );
        assert!(!IGNORED.contains(&SIGINT) && !IGNORED.contains(&SIGTERM));
    }
}
