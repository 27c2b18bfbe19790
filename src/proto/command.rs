//! The commands every service understands, as a line: `name NAME`, `help`, `q`/`quit`.

/// The commands every service understands.
#[derive(Debug, PartialEq, Eq)]
pub enum Common<'a> {
    /// `name NAME`; the name is not checked yet (see `check_name`).
    Name(&'a str),
    Help,
    Quit,
}

/// Recognises `name NAME`, `help`, `q` and `quit` (surrounding spaces ignored).
pub fn common_command(line: &str) -> Option<Common<'_>> {
    let line = line.trim();
    match line {
        "help" => Some(Common::Help),
        "q" | "quit" => Some(Common::Quit),
        "name" => Some(Common::Name("")),
        _ => line
            .strip_prefix("name ")
            .map(|rest| Common::Name(rest.trim())),
    }
}
