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
use super::picker::{self, PickFor, Picked, Picker};
use super::screens::Screen;
use super::session::{Action, Session};
use super::{style, views};
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
    /// The file picker, open over the form for one of its file fields.
    picker: Option<Picker>,
    /// The type sizes and fallback fonts are set on the first frame (the context comes then).
    styled: bool,
}

impl App {
    pub fn new(form: ConnectForm) -> App {
        App {
            form,
            phase: Phase::Form { error: None },
            picker: None,
            styled: false,
        }
    }

    /// One frame: take what the network sent, then draw.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        if !self.styled {
            style::install(ui.ctx());
            self.styled = true;
        }
        self.drain_network();
        let mut action = Action::None;
        match &mut self.phase {
            Phase::Form { .. } if self.picker.is_some() => self.pick(ui),
            Phase::Form { error } => match form_ui(ui, &mut self.form, error.clone()) {
                FormAction::Connect => action = Action::Connect,
                FormAction::Pick(target) => {
                    let current = match target {
                        PickFor::Ca => &self.form.ca,
                        PickFor::Cert => &self.form.cert,
                        PickFor::Key => &self.form.key,
                    };
                    self.picker = Some(Picker::open(target, current));
                }
                FormAction::None => {}
            },
            Phase::Connecting { .. } => {
                egui::CentralPanel::default().show(ui, |ui| {
                    views::column(ui, views::FORM_WIDTH, |ui| {
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

    /// The picker in place of the form; a chosen file fills the field it was opened for.
    fn pick(&mut self, ui: &mut egui::Ui) {
        let Some(open) = &mut self.picker else { return };
        let target = open.target;
        match picker::show(ui, open) {
            Picked::Nothing => return,
            Picked::Cancelled => {}
            Picked::File(path) => {
                let text = shortest_path(&path);
                match target {
                    PickFor::Ca => self.form.ca = text,
                    PickFor::Cert => self.form.cert = text,
                    PickFor::Key => self.form.key = text,
                }
            }
        }
        self.picker = None;
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
                error: Some(ending.sentence()),
            },
            (Phase::Session(mut session), FromNet::Line(line)) => {
                session.screen.on_line(&line);
                // A name the server refused is not offered again by the form (Back to the form,
                // Disconnect, Reconnect); one it welcomed is kept there for the next time.
                if let Some(refused) = session.screen.take_refused_name()
                    && self.form.name.trim() == refused
                {
                    self.form.name.clear();
                }
                if let Screen::Chat(chat) = &session.screen
                    && let Some(me) = &chat.me
                {
                    self.form.name.clone_from(me);
                }
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
                session.screen.on_end();
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

/// What the form asks for this frame.
enum FormAction {
    None,
    Connect,
    Pick(PickFor),
}

/// The connect form, centred and at most [`views::FORM_WIDTH`] wide; a failure shows above it,
/// and its button then says Reconnect.
fn form_ui(ui: &mut egui::Ui, form: &mut ConnectForm, error: Option<String>) -> FormAction {
    let mut action = FormAction::None;
    egui::CentralPanel::default().show(ui, |ui| {
        egui::ScrollArea::vertical().show(ui, |ui| {
            views::column(ui, views::FORM_WIDTH, |ui| {
                ui.heading("securetcp");
                if let Some(error) = &error {
                    views::error_banner(ui, error);
                }
                let rows = views::FormRows::for_width(ui.available_width());
                rows.field(
                    ui,
                    "Address",
                    &mut form.host,
                    "127.0.0.1, ::1 or a host name",
                );
                rows.field(ui, "Port", &mut form.port, "5000");
                let mut file = |ui: &mut egui::Ui,
                                label: &str,
                                value: &mut String,
                                hint: &str,
                                target: PickFor| {
                    if rows.file_field(ui, label, value, hint, target.title()) {
                        action = FormAction::Pick(target);
                    }
                };
                file(
                    ui,
                    "CA file",
                    &mut form.ca,
                    "public roots only",
                    PickFor::Ca,
                );
                rows.field(ui, "Name", &mut form.name, "optional");
                file(
                    ui,
                    "Client certificate",
                    &mut form.cert,
                    "optional (mutual TLS)",
                    PickFor::Cert,
                );
                file(
                    ui,
                    "Client key",
                    &mut form.key,
                    "with the certificate",
                    PickFor::Key,
                );
                ui.checkbox(&mut form.no_tls, "Plain TCP (no TLS)");
                ui.add_space(8.0);
                let label = if error.is_some() {
                    "Reconnect"
                } else {
                    "Connect"
                };
                let enter = ui.input(|i| i.key_pressed(egui::Key::Enter));
                let button = egui::Button::new(label).min_size(egui::vec2(140.0, 34.0));
                if ui.add(button).clicked() || enter {
                    action = FormAction::Connect;
                }
            });
        });
    });
    action
}

/// A picked file as the form shows it: relative to the working directory when it is inside it
/// (`certs/ca.pem`), else the whole path.
fn shortest_path(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .filter(|relative| !relative.as_os_str().is_empty())
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        App::ui(self, ui);
    }
}
