//! The wording of command-line mistakes, shared by the server's command line (`config.rs`) and
//! the clients' (`client/`): below both, so neither imports the other.

/// A command-line mistake as a person reads it: `unknown option --bogus`, not getopts's
/// `Unrecognized option: 'bogus'`. Shared with the client.
pub fn explain_getopts(fail: &getopts::Fail) -> String {
    use getopts::Fail;
    let dashed = |name: &str| {
        if name.chars().count() == 1 {
            format!("-{name}")
        } else {
            format!("--{name}")
        }
    };
    match fail {
        Fail::UnrecognizedOption(name) => format!("unknown option {}", dashed(name)),
        Fail::ArgumentMissing(name) => format!("option {} needs a value", dashed(name)),
        Fail::OptionDuplicated(name) => format!("option {} given more than once", dashed(name)),
        Fail::OptionMissing(name) => format!("option {} is required", dashed(name)),
        Fail::UnexpectedArgument(name) => format!("option {} takes no value", dashed(name)),
    }
}

/// An operating-system error in a person's words: `no such file`, `address already in use`,
/// never Rust's `No such file or directory (os error 2)` nor an `ErrorKind` name.
pub fn io_words(e: &std::io::Error) -> String {
    use std::io::ErrorKind as Kind;
    match e.kind() {
        Kind::NotFound => "no such file".into(),
        Kind::PermissionDenied => "permission denied".into(),
        Kind::AddrInUse => "address already in use".into(),
        Kind::AddrNotAvailable => "no such address on this machine".into(),
        Kind::ConnectionRefused => "connection refused".into(),
        Kind::IsADirectory => "a directory, not a file".into(),
        Kind::InvalidData => "not text (invalid UTF-8)".into(),
        _ => {
            let text = e.to_string();
            // `Broken pipe (os error 32)` -> `broken pipe`
            let text = match text.rfind(" (os error ") {
                Some(at) if text.ends_with(')') => &text[..at],
                _ => &text,
            };
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => "unknown error".into(),
            }
        }
    }
}

#[cfg(test)]
mod io_words_tests {
    use super::io_words;
    use std::io::{Error, ErrorKind};

    #[test]
    fn os_errors_read_as_words_without_their_numbers() {
        assert_eq!(io_words(&Error::from_raw_os_error(2)), "no such file");
        assert_eq!(
            io_words(&Error::from_raw_os_error(98)),
            "address already in use"
        );
        assert_eq!(io_words(&Error::from_raw_os_error(32)), "broken pipe");
        assert_eq!(
            io_words(&Error::from(ErrorKind::PermissionDenied)),
            "permission denied"
        );
        assert!(!io_words(&Error::from_raw_os_error(5)).contains("os error"));
    }
}
