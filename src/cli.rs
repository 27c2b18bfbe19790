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
