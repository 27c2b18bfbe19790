//! The lines the server sends (SPEC, wire protocol): the replies `OK`, `ERR`, `BYE`, and the
//! pushes `HELLO`, `MSG`, `JOIN`, `LEFT`, `QUIZ`. One type to write them and to read them, so
//! no client parses by string prefix and the two sides cannot drift apart.

use std::fmt;

/// One line from the server, without its `\n`, borrowing its text from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `OK <text>`: the request was served.
    Ok(&'a str),
    /// `ERR <reason>`: it was not; the connection goes on (unless the server is busy).
    Err(&'a str),
    /// `BYE <text>`: the session ends (`session ended`, `server shutting down`).
    Bye(&'a str),
    /// `HELLO <service> <software>`: the greeting, `software` as `securetcp/0.1.0`.
    Hello { service: &'a str, software: &'a str },
    /// `MSG <from> <text>`: a chat message from another member.
    Msg { from: &'a str, text: &'a str },
    /// `JOIN <name>`: a member came into the chat room.
    Join(&'a str),
    /// `LEFT <name>`: a member left it.
    Left(&'a str),
    /// `QUIZ <question>`: the quiz's question, as `12 + 30`.
    Quiz(&'a str),
}

impl<'a> Reply<'a> {
    /// Reads a line; `None` when it starts with no tag of the protocol. A tag alone (`OK`,
    /// `BYE`) has empty text; a tag must be followed by a space or the end of the line
    /// (`OKAY` is not `OK`).
    pub fn parse(line: &'a str) -> Option<Reply<'a>> {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        Some(match tag {
            "OK" => Reply::Ok(rest),
            "ERR" => Reply::Err(rest),
            "BYE" => Reply::Bye(rest),
            "JOIN" => Reply::Join(rest),
            "LEFT" => Reply::Left(rest),
            "QUIZ" => Reply::Quiz(rest),
            "MSG" => {
                let (from, text) = rest.split_once(' ').unwrap_or((rest, ""));
                Reply::Msg { from, text }
            }
            "HELLO" => {
                let (service, software) = rest.split_once(' ').unwrap_or((rest, ""));
                Reply::Hello { service, software }
            }
            _ => return None,
        })
    }

    /// The text after the tag of `OK`, `ERR` and `BYE`; `None` for the pushes.
    pub fn text(&self) -> Option<&'a str> {
        match *self {
            Reply::Ok(text) | Reply::Err(text) | Reply::Bye(text) => Some(text),
            _ => None,
        }
    }
}

impl fmt::Display for Reply<'_> {
    /// The line as it goes on the wire, without its `\n`. A tag with empty text is the tag alone.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (tag, first, second) = match *self {
            Reply::Ok(text) => ("OK", text, None),
            Reply::Err(text) => ("ERR", text, None),
            Reply::Bye(text) => ("BYE", text, None),
            Reply::Join(name) => ("JOIN", name, None),
            Reply::Left(name) => ("LEFT", name, None),
            Reply::Quiz(question) => ("QUIZ", question, None),
            Reply::Msg { from, text } => ("MSG", from, Some(text)),
            Reply::Hello { service, software } => ("HELLO", service, Some(software)),
        };
        f.write_str(tag)?;
        if !first.is_empty() {
            write!(f, " {first}")?;
        }
        match second {
            Some(more) if !more.is_empty() => write!(f, " {more}"),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_the_protocol_reads_and_writes_back() {
        let lines = [
            ("OK 7", Reply::Ok("7")),
            (
                "OK welcome ann, 2 online",
                Reply::Ok("welcome ann, 2 online"),
            ),
            ("ERR division by zero", Reply::Err("division by zero")),
            ("BYE session ended", Reply::Bye("session ended")),
            (
                "HELLO calc securetcp/0.1.0",
                Reply::Hello {
                    service: "calc",
                    software: "securetcp/0.1.0",
                },
            ),
            (
                "MSG bob hi there",
                Reply::Msg {
                    from: "bob",
                    text: "hi there",
                },
            ),
            ("JOIN cy", Reply::Join("cy")),
            ("LEFT cy", Reply::Left("cy")),
            ("QUIZ 12 + 30", Reply::Quiz("12 + 30")),
            ("OK", Reply::Ok("")),
            ("BYE", Reply::Bye("")),
        ];
        for (line, reply) in lines {
            assert_eq!(Reply::parse(line), Some(reply), "{line}");
            assert_eq!(reply.to_string(), line);
        }
    }

    #[test]
    fn other_lines_are_not_replies() {
        for line in ["", "OKAY 1", "ok 1", "ERR", "7", "\u{15}\u{3}\u{3}"] {
            if line == "ERR" {
                assert_eq!(Reply::parse(line), Some(Reply::Err("")));
            } else {
                assert_eq!(Reply::parse(line), None, "{line:?}");
            }
        }
        assert_eq!(Reply::parse("OK 7").and_then(|r| r.text()), Some("7"));
        assert_eq!(Reply::parse("JOIN x").and_then(|r| r.text()), None);
    }
}
