//! The desktop GUI client (cargo feature `gui`, `examples/gui.rs`): egui/eframe on the window's
//! thread, the terminal client's blocking transport on threads beside it.
//!
//! - [`app`]: the window's phases (form, connecting, session) and the flow of events;
//! - [`form`]: the connect form's data and the options it gives the transport;
//! - [`session`]: a session's state and the actions a frame asks for (shared by app and views,
//!   so the arrows go app -> views -> session, never back);
//! - [`net`]: the network threads and the sentences for failures;
//! - [`screens`]: each service's state, pure and unit-tested;
//! - [`views`]: drawing those states.

pub mod app;
pub mod form;
pub mod net;
pub mod screens;
mod session;
mod views;

pub use app::App;
pub use form::ConnectForm;

use eframe::egui;

/// Opens the window and runs until it is closed.
pub fn run(form: ConnectForm) -> eframe::Result {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("securetcp")
            .with_inner_size([760.0, 520.0]),
        ..eframe::NativeOptions::default()
    };
    eframe::run_native(
        "securetcp",
        options,
        Box::new(|_creation| Ok(Box::new(App::new(form)))),
    )
}
