//! A session as the window holds it (its link, its screen, its input line, how it ended), and
//! what a drawn frame asks the window to do next. Shared by `gui::app` (which owns the phases)
//! and `gui::views` (which draws), so neither imports the other's types.

use super::net::{Ending, Link};
use super::screens::Screen;
use crate::proto::ServiceKind;

/// A connected (or just ended) session: its screen stays readable after the end.
pub(super) struct Session {
    pub link: Link,
    pub screen: Screen,
    pub service: ServiceKind,
    /// The input line of the service's screen.
    pub input: String,
    /// How far Up went back in the calc history.
    pub recalled: Option<usize>,
    /// Set once the session is over: the screen shows it with a way to connect again.
    pub ended: Option<Ending>,
    /// `q` was sent: the `BYE` that follows is no failure.
    pub leaving: bool,
}

impl Session {
    /// Sends a line the screen accepted.
    pub fn send(&self, line: String) {
        self.link.send(line);
    }
}

/// What a frame asks the app to do once drawing is done.
pub(super) enum Action {
    None,
    Connect,
    BackToForm(Option<String>),
}
