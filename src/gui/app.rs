//! The window: the connect form, then the screen of the service the greeting named, and every
//! failure as one sentence with a way to connect again.
//!
//! The data flow: the form builds [`ClientOptions`] and opens a [`Link`] (threads, never the
//! window's); each frame drains the link's events into the [`Screen`]; what is typed goes through
//! the screen (which checks it) and out through the link. Drawing the screens is `gui::views`.

use std::path::Path;

use eframe::egui;

use super::form::ConnectForm;
use super::net::{Ending, FromNet, Link};
use super::screens::Screen;
use super::session::{Action, Session};
use super::views;
use crate::proto::ServiceKind;

/// Where the window is.
enum Phase {
    /// The form; `error` is the last failure, shown above it.
    Form {
        error: Option<String>,
    },
    Connecting {
        link: Link,
    },
    // Boxed: a session (its screen, its history) is far larger than the other phases.
    Session(Box<Session>),
}

/// The GUI client: `eframe::App` for the real window, [`App::ui`] for tests.
pub struct App {
    pub form: ConnectForm,
    phase: Phase,
}

impl App {
    pub fn new(form: ConnectForm) -> App {
        App {
            form,
            phase: Phase::Form { error: None },
        }
    }

    /// One frame: take what the network sent, then draw.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.drain_network();
        let mut action = Action::None;
        match &mut self.phase {
            Phase::Form { error } => action = form_ui(ui, &mut self.form, error.clone()),
            Phase::Connecting { .. } => {
                egui::CentralPanel::default().show(ui, |ui| {
                    ui.heading("securetcp");
                    ui.label(format!(
                        "Connecting to {}:{}...",
                        self.form.host.trim(),
                        self.form.port.trim()
                    ));
                    if ui.button("Cancel").clicked() {
                        action = Action::BackToForm(None);
                    }
                });
            }
            Phase::Session(session) => action = views::session(ui, session, &self.form),
        }
        match action {
            Action::None => {}
            Action::Connect => self.connect(ui.ctx()),
            Action::BackToForm(error) => self.phase = Phase::Form { error },
        }
    }

    fn drain_network(&mut self) {
        loop {
            let event = match &mut self.phase {
                Phase::Connecting { link } => link.poll(),
                Phase::Session(session) if session.ended.is_none() => session.link.poll(),
                _ => None,
            };
            let Some(event) = event else { return };
            self.on_event(event);
        }
    }

    fn on_event(&mut self, event: FromNet) {
        let phase = std::mem::replace(&mut self.phase, Phase::Form { error: None });
        self.phase = match (phase, event) {
            (Phase::Connecting { link }, FromNet::Connected { service }) => {
                // No name typed but a client certificate: the chat logs in, and sum exchanges,
                // under its name, the only one a server with mutual TLS accepts (as the terminal
                // client does; calc and quiz send a typed name only).
                let name = Some(self.form.name.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .or_else(|| {
                        Some(self.form.cert.trim())
                            .filter(|c| {
                                !c.is_empty()
                                    && matches!(service, ServiceKind::Chat | ServiceKind::Sum)
                            })
                            .and_then(|c| crate::client::certificate_name(Path::new(c)).ok())
                    });
                let name = name.as_deref();
                let mut screen = Screen::for_service(service, name);
                for line in screen.opening_lines(name) {
                    link.send(line);
                }
                Phase::Session(Box::new(Session {
                    link,
                    screen,
                    service,
                    input: String::new(),
                    recalled: None,
                    ended: None,
                    leaving: false,
                }))
            }
            (Phase::Connecting { .. }, FromNet::Ended(ending)) => Phase::Form {
                error: Some(match ending {
                    Ending::Failed(why) => why,
                    Ending::Bye(text) => format!("The server said goodbye: {text}."),
                }),
            },
            (Phase::Session(mut session), FromNet::Line(line)) => {
                session.screen.on_line(&line);
                if let Screen::Chat(chat) = &mut session.screen
                    && chat.wants_who()
                {
                    session.send("who".into());
                }
                Phase::Session(session)
            }
            (Phase::Session(session), FromNet::Ended(Ending::Bye(_))) if session.leaving => {
                Phase::Form { error: None }
            }
            (Phase::Session(mut session), FromNet::Ended(ending)) => {
                session.ended = Some(ending);
                Phase::Session(session)
            }
            (phase, _) => phase,
        };
    }

    fn connect(&mut self, ctx: &egui::Context) {
        match self.form.target() {
            Ok((host, port, options)) => {
                let ctx = ctx.clone();
                let link = Link::open(host, port, options, move || ctx.request_repaint());
                self.phase = Phase::Connecting { link };
            }
            Err(why) => self.phase = Phase::Form { error: Some(why) },
        }
    }
}

/// The connect form; a failure shows above it, and its button then says Reconnect.
fn form_ui(ui: &mut egui::Ui, form: &mut ConnectForm, error: Option<String>) -> Action {
    let mut action = Action::None;
    egui::CentralPanel::default().show(ui, |ui| {
        ui.heading("securetcp");
        if let Some(error) = &error {
            views::error_banner(ui, error);
        }
        egui::Grid::new("connect-form")
            .num_columns(2)
            .spacing([12.0, 8.0])
            .show(ui, |ui| {
                views::field(
                    ui,
                    "Address",
                    &mut form.host,
                    "127.0.0.1, ::1 or a host name",
                );
                views::field(ui, "Port", &mut form.port, "5000");
                views::field(ui, "CA file", &mut form.ca, "public roots only");
                views::field(ui, "Name", &mut form.name, "optional");
                views::field(
                    ui,
                    "Client certificate",
                    &mut form.cert,
                    "optional (mutual TLS)",
                );
                views::field(ui, "Client key", &mut form.key, "with the certificate");
            });
        ui.checkbox(&mut form.no_tls, "Plain TCP (no TLS)");
        ui.add_space(8.0);
        let label = if error.is_some() {
            "Reconnect"
        } else {
            "Connect"
        };
        let enter = ui.input(|i| i.key_pressed(egui::Key::Enter));
        if ui.button(label).clicked() || enter {
            action = Action::Connect;
        }
    });
    action
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        App::ui(self, ui);
    }
}
