//! The four services, as one type: what `--service` accepts, what the greeting names, and what
//! the clients switch on. Replaces lists and comparisons of strings.

use std::fmt;
use std::str::FromStr;

/// A service the server can offer (SPEC, wire protocol: calc, chat, sum, quiz).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ServiceKind {
    /// Arithmetic, one `OK value` per expression (the default).
    #[default]
    Calc,
    /// One room: messages to every member, `JOIN`/`LEFT`/`MSG` pushes.
    Chat,
    /// The number exchange of the fourth seed.
    Sum,
    /// The addition quiz of the fifth seed: a `QUIZ` line after every reply.
    Quiz,
}

impl ServiceKind {
    /// Every service, in the order the help lists them.
    pub const ALL: [ServiceKind; 4] = [
        ServiceKind::Calc,
        ServiceKind::Chat,
        ServiceKind::Sum,
        ServiceKind::Quiz,
    ];

    /// The name on the wire and on the command line: `calc`, `chat`, `sum`, `quiz`.
    pub const fn name(self) -> &'static str {
        match self {
            ServiceKind::Calc => "calc",
            ServiceKind::Chat => "chat",
            ServiceKind::Sum => "sum",
            ServiceKind::Quiz => "quiz",
        }
    }

    /// The service with that exact name; `None` for anything else.
    pub fn parse(text: &str) -> Option<ServiceKind> {
        ServiceKind::ALL
            .into_iter()
            .find(|kind| kind.name() == text)
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ServiceKind {
    /// `unknown service (choose one of: calc, chat, sum, quiz)`.
    type Err = String;

    fn from_str(text: &str) -> Result<ServiceKind, String> {
        ServiceKind::parse(text).ok_or_else(|| {
            let names: Vec<&str> = ServiceKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown service (choose one of: {})", names.join(", "))
        })
    }
}

/// So a test can say `assert_eq!(session.service, "chat")`.
impl PartialEq<&str> for ServiceKind {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in ServiceKind::ALL {
            assert_eq!(ServiceKind::parse(&kind.to_string()), Some(kind));
            assert_eq!(kind.name().parse::<ServiceKind>(), Ok(kind));
        }
        assert_eq!(ServiceKind::default(), ServiceKind::Calc);
        assert_eq!(ServiceKind::parse("Chat"), None);
        assert_eq!(
            "echo".parse::<ServiceKind>().unwrap_err(),
            "unknown service (choose one of: calc, chat, sum, quiz)"
        );
        assert!(ServiceKind::Chat == "chat");
    }
}
