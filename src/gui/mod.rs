//! The desktop GUI client (cargo feature `gui`, `examples/gui.rs`): egui/eframe on the window's
//! thread, the terminal client's blocking transport on threads beside it.
//!
//! - [`app`]: the window's phases (form, connecting, session) and the flow of events;
//! - [`form`]: the connect form's data and the options it gives the transport;
//! - [`picker`]: the file picker for the form's CA, certificate and key;
//! - [`session`]: a session's state and the actions a frame asks for (shared by app and views,
//!   so the arrows go app -> views -> session, never back);
//! - [`net`]: the network threads and the sentences for failures;
//! - [`screens`]: each service's state, pure and unit-tested;
//! - [`views`]: drawing those states, in layouts that stretch from 360 px to a wide screen;
//! - [`style`]: the type sizes, and the fallback fonts for every script and emoji.

pub mod app;
pub mod form;
pub mod net;
pub mod picker;
pub mod screens;
mod session;
pub mod style;
mod views;

pub use app::App;
pub use form::ConnectForm;

use std::ffi::OsString;

use eframe::egui;

/// Opens the window and runs until it is closed.
///
/// Errors: [`NoDisplay`] without `DISPLAY` and `WAYLAND_DISPLAY` (checked first, so a person
/// reads one sentence rather than winit's backend report), else eframe's own.
pub fn run(form: ConnectForm) -> Result<(), RunError> {
    if !has_display(
        std::env::var_os("DISPLAY"),
        std::env::var_os("WAYLAND_DISPLAY"),
    ) {
        return Err(RunError::NoDisplay);
    }
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("securetcp")
            .with_inner_size([800.0, 600.0])
            .with_min_inner_size([320.0, 400.0]),
        // `App` adds the system's fonts itself (`style::install`), in the window and in tests.
        system_font_fallback: false,
        ..eframe::NativeOptions::default()
    };
    eframe::run_native(
        "securetcp",
        options,
        Box::new(|_creation| Ok(Box::new(App::new(form)))),
    )
    .map_err(|e| RunError::Window(one_line(&e.to_string())))
}

/// Why the window did not open.
#[derive(Debug, PartialEq)]
pub enum RunError {
    /// Neither an X11 nor a Wayland display to open it on.
    NoDisplay,
    /// The windowing system refused it; eframe's message on one line.
    Window(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::NoDisplay => f.write_str(
                "no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set): \
                 run it from a desktop session, or under Xvfb",
            ),
            RunError::Window(why) => write!(f, "cannot open the window: {why}"),
        }
    }
}

/// Whether a windowing system is there to open a window on, given `DISPLAY` and
/// `WAYLAND_DISPLAY`: on Linux and the BSDs, X11 or Wayland (a set, non-empty variable);
/// elsewhere the system always has one.
fn has_display(x11: Option<OsString>, wayland: Option<OsString>) -> bool {
    if !cfg!(all(
        unix,
        not(target_os = "macos"),
        not(target_os = "android")
    )) {
        return true;
    }
    [x11, wayland]
        .into_iter()
        .any(|v| v.is_some_and(|v| !v.is_empty()))
}

/// A message squeezed onto one line (winit's reports span several).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_display_is_x11_or_wayland_and_not_empty() {
        let set = |v: &str| Some(OsString::from(v));
        assert!(has_display(set(":0"), None));
        assert!(has_display(None, set("wayland-0")));
        assert!(!has_display(None, None));
        assert!(!has_display(set(""), None));
        assert_eq!(RunError::NoDisplay.to_string().lines().count(), 1);
        assert_eq!(one_line("a\n  b\tc"), "a b c");
    }
}
