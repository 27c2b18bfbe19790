//! Drawing: the session frame (who we talk to, Disconnect, the end of a session) and each
//! service's screen. Widgets carry the labels a person reads; the tests find them by those
//! labels through the accessibility tree, as a screen reader would.

use eframe::egui::{self, Color32, RichText};

use super::form::ConnectForm;
use super::screens::{Calc, Chat, ChatKind, Quiz, Screen, Sum, SumResult, Verdict};
use super::session::{Action, Session};
use crate::proto::Reply;
use crate::proto::common_command;

const ERROR_RED: Color32 = Color32::from_rgb(0xd0, 0x40, 0x40);
const RIGHT_GREEN: Color32 = Color32::from_rgb(0x30, 0xa0, 0x50);
const MINE_BLUE: Color32 = Color32::from_rgb(0x50, 0x90, 0xe0);

/// A failure, in one sentence, in red.
pub fn error_banner(ui: &mut egui::Ui, text: &str) {
    ui.add_space(4.0);
    ui.label(RichText::new(text).color(ERROR_RED).strong());
    ui.add_space(4.0);
}

/// The form's widest: past it, the form is centred and the fields stop growing.
pub const FORM_WIDTH: f32 = 640.0;
/// A session screen's widest: lines longer than that are hard to read.
pub const SESSION_WIDTH: f32 = 960.0;
/// Below this width the form puts each label above its field, and the chat its members above
/// the messages.
const NARROW: f32 = 520.0;

/// Draws `add` in a column at most `max_width` wide, centred in what `ui` has left.
pub fn column(ui: &mut egui::Ui, max_width: f32, add: impl FnOnce(&mut egui::Ui)) {
    let space = ui.available_rect_before_wrap();
    let width = space.width().min(max_width);
    let left = space.left() + (space.width() - width) / 2.0;
    let rect = egui::Rect::from_min_size(
        egui::pos2(left, space.top()),
        egui::vec2(width, space.height()),
    );
    ui.scope_builder(egui::UiBuilder::new().max_rect(rect), |ui| {
        ui.set_width(width);
        add(ui)
    });
}

/// The form's rows: a label and a field that takes the rest of the width, or on a narrow
/// window the label above its field.
pub struct FormRows {
    stacked: bool,
}

impl FormRows {
    /// Rows for a column `width` wide.
    pub fn for_width(width: f32) -> FormRows {
        FormRows {
            stacked: width < NARROW,
        }
    }

    /// A labelled single-line field, as wide as the column.
    pub fn field(&self, ui: &mut egui::Ui, label: &str, value: &mut String, hint: &str) {
        self.row(ui, label, |ui, label| {
            let edit = egui::TextEdit::singleline(value)
                .hint_text(hint)
                .desired_width(ui.available_width());
            ui.add(edit).labelled_by(label);
        });
    }

    /// A field for a file's path with a button that opens the picker (`picker_title` is the
    /// button's accessible name). True when the button was clicked.
    pub fn file_field(
        &self,
        ui: &mut egui::Ui,
        label: &str,
        value: &mut String,
        hint: &str,
        picker_title: &str,
    ) -> bool {
        let mut clicked = false;
        self.row(ui, label, |ui, label| {
            // One line high: a right-to-left layout would otherwise take (and centre in) all the
            // height left when the label is above the field.
            let line = egui::vec2(ui.available_width(), ui.spacing().interact_size.y);
            let layout = egui::Layout::right_to_left(egui::Align::Center);
            ui.allocate_ui_with_layout(line, layout, |ui| {
                let button = ui.button("Choose…");
                let title = picker_title.to_string();
                button.widget_info(|| {
                    egui::WidgetInfo::labeled(egui::Role::Button, true, title.clone())
                });
                clicked = button.clicked();
                let edit = egui::TextEdit::singleline(value)
                    .hint_text(hint)
                    .desired_width(ui.available_width());
                ui.add(edit).labelled_by(label);
            });
        });
        clicked
    }

    fn row(&self, ui: &mut egui::Ui, label: &str, field: impl FnOnce(&mut egui::Ui, egui::Id)) {
        if self.stacked {
            let label = ui.label(label);
            field(ui, label.id);
            ui.add_space(2.0);
            return;
        }
        ui.horizontal(|ui| {
            let size = egui::vec2(150.0, ui.spacing().interact_size.y);
            let label = ui
                .allocate_ui_with_layout(
                    size,
                    egui::Layout::left_to_right(egui::Align::Center),
                    |ui| {
                        ui.set_min_size(size);
                        ui.label(label)
                    },
                )
                .inner;
            field(ui, label.id);
        });
    }
}

/// The input line at the bottom of a screen: a labelled field and a button; Enter sends too.
/// Returns the text to submit, if the person submitted it.
fn input_line(
    ui: &mut egui::Ui,
    session: &mut Session,
    label: &str,
    button: &str,
) -> Option<String> {
    let mut submitted = false;
    ui.horizontal(|ui| {
        let label = ui.label(label);
        // Right to left: the button keeps its place at the right edge, the field takes the rest.
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.button(button).clicked() {
                submitted = true;
            }
            let field = ui
                .add(
                    egui::TextEdit::singleline(&mut session.input)
                        .desired_width(ui.available_width()),
                )
                .labelled_by(label.id);
            if field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                submitted = true;
            }
            if let Screen::Calc(calc) = &session.screen
                && field.has_focus()
            {
                recall(ui, calc, &mut session.input, &mut session.recalled);
            }
            // The input line keeps the keyboard: after sending, and whenever nothing else has it.
            if submitted || ui.memory(|m| m.focused().is_none()) {
                field.request_focus();
            }
        });
    });
    if !submitted {
        return None;
    }
    session.recalled = None;
    Some(std::mem::take(&mut session.input))
}

/// Up and Down walk the calc history, as in a terminal.
fn recall(ui: &egui::Ui, calc: &Calc, input: &mut String, recalled: &mut Option<usize>) {
    let (up, down) = ui.input(|i| {
        (
            i.key_pressed(egui::Key::ArrowUp),
            i.key_pressed(egui::Key::ArrowDown),
        )
    });
    let last = calc.typed.len();
    let at = match (up, down, *recalled) {
        (true, _, None) if last > 0 => Some(last - 1),
        (true, _, Some(i)) => Some(i.saturating_sub(1)),
        (_, true, Some(i)) if i + 1 < last => Some(i + 1),
        (_, true, Some(_)) => {
            *recalled = None;
            input.clear();
            return;
        }
        _ => return,
    };
    *recalled = at;
    if let Some(i) = at {
        *input = calc.typed[i].clone();
    }
}

/// A whole session: the top bar, the end (if it came), the service's screen.
pub(super) fn session(ui: &mut egui::Ui, session: &mut Session, form: &ConnectForm) -> Action {
    let mut action = Action::None;
    egui::Panel::top("session-bar").show(ui, |ui| {
        ui.add_space(4.0);
        ui.horizontal(|ui| {
            let place = format!(
                "{} at {}:{}",
                session.service,
                form.host.trim(),
                form.port.trim()
            );
            // Right to left: Disconnect stays in sight at the right edge; the place is cut short.
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if session.ended.is_none() && ui.button("Disconnect").clicked() {
                    session.leaving = true;
                    session.send("q".into());
                }
                ui.with_layout(egui::Layout::left_to_right(egui::Align::Center), |ui| {
                    ui.add(egui::Label::new(RichText::new(place).strong()).truncate());
                });
            });
        });
        if let Some(ending) = &session.ended {
            let text = ending.sentence();
            error_banner(ui, &text);
            ui.horizontal_wrapped(|ui| {
                if ui.button("Reconnect").clicked() {
                    action = Action::Connect;
                }
                if ui.button("Back to the form").clicked() {
                    action = Action::BackToForm(None);
                }
            });
        }
        ui.add_space(2.0);
    });
    let live = session.ended.is_none();
    egui::Panel::bottom("input").show(ui, |ui| {
        ui.add_space(4.0);
        column(ui, SESSION_WIDTH, |ui| {
            ui.add_enabled_ui(live, |ui| input_for(ui, session));
        });
        ui.add_space(4.0);
    });
    let ended = session.ended.is_some();
    egui::CentralPanel::default().show(ui, |ui| {
        column(ui, SESSION_WIDTH, |ui| match &session.screen {
            Screen::Calc(calc) => calc_view(ui, calc),
            Screen::Chat(chat) => chat_view(ui, chat, ended),
            Screen::Sum(sum) => sum_view(ui, sum),
            Screen::Quiz(quiz) => quiz_view(ui, quiz),
        })
    });
    action
}

/// The bottom line of each screen, and where what is typed goes.
fn input_for(ui: &mut egui::Ui, session: &mut Session) {
    let (label, button) = match &session.screen {
        Screen::Calc(_) => ("Expression", "Calculate"),
        Screen::Chat(chat) if chat.me.is_none() => ("Your name", "Join"),
        Screen::Chat(_) => ("Message", "Send"),
        Screen::Sum(_) => ("Number (1-100)", "Exchange"),
        Screen::Quiz(_) => ("Your answer", "Answer"),
    };
    if let Screen::Chat(chat) = &mut session.screen
        && chat.me.is_none()
        && !chat.logging_in()
        && session.input.is_empty()
        && !chat.suggested.is_empty()
    {
        session.input = std::mem::take(&mut chat.suggested);
    }
    let refused = match &session.screen {
        Screen::Calc(calc) => calc.refused.clone(),
        Screen::Chat(chat) => chat.login_error.clone(),
        Screen::Sum(sum) => sum.refused.clone(),
        Screen::Quiz(quiz) => quiz.refused.clone(),
    };
    if let Some(why) = refused {
        ui.label(RichText::new(why).color(ERROR_RED));
    }
    let Some(typed) = input_line(ui, session, label, button) else {
        return;
    };
    let line = match &mut session.screen {
        Screen::Calc(calc) => calc.submit(&typed),
        Screen::Chat(chat) if chat.me.is_none() => chat.log_in(&typed),
        Screen::Chat(chat) => chat.say(&typed),
        Screen::Sum(sum) => sum.submit(&typed),
        Screen::Quiz(quiz) => quiz.submit(&typed),
    };
    match line {
        Some(line) => session.send(line),
        // Refused locally: keep the text so it can be mended.
        None => session.input = typed,
    }
}

fn scrolling(ui: &mut egui::Ui, id: &str, contents: impl FnOnce(&mut egui::Ui)) {
    egui::ScrollArea::vertical()
        .id_salt(id)
        .auto_shrink(false)
        .stick_to_bottom(true)
        .show(ui, contents);
}

fn calc_view(ui: &mut egui::Ui, calc: &Calc) {
    scrolling(ui, "calc-history", |ui| {
        for exchange in &calc.exchanges {
            let text = match exchange.reply.as_deref() {
                None => format!("{}  ...", exchange.request),
                Some(reply) => match Reply::parse(reply) {
                    // `name` and `help` get words back, not a value.
                    Some(Reply::Ok(words)) if common_command(&exchange.request).is_some() => {
                        format!("{}: {words}", exchange.request)
                    }
                    Some(Reply::Ok(result)) => format!("{} = {result}", exchange.request),
                    other => {
                        let why = other.and_then(|r| r.text()).unwrap_or(reply);
                        let shown = format!("{}: {why}", exchange.request);
                        ui.label(RichText::new(shown).monospace().color(ERROR_RED));
                        continue;
                    }
                },
            };
            ui.label(RichText::new(text).monospace());
        }
    });
}

fn chat_view(ui: &mut egui::Ui, chat: &Chat, ended: bool) {
    let members = |ui: &mut egui::Ui| {
        if ended {
            ui.strong("Members");
            ui.label(RichText::new("You are no longer in the room.").weak());
            return;
        }
        ui.strong(format!("Members ({})", chat.members.len()));
        for member in &chat.members {
            let you = chat.me.as_deref() == Some(member.as_str());
            ui.label(if you {
                format!("{member} (you)")
            } else {
                member.clone()
            });
        }
    };
    if ui.available_width() < NARROW {
        // Narrow: the members above the messages, one wrapped line, so the messages keep the width.
        egui::Panel::top("members")
            .resizable(false)
            .show(ui, |ui| ui.horizontal_wrapped(members));
    } else {
        egui::Panel::right("members")
            .resizable(false)
            .min_size(160.0)
            .show(ui, members);
    }
    scrolling(ui, "chat-lines", |ui| {
        for line in &chat.lines {
            match line.kind {
                ChatKind::Mine => ui.label(
                    RichText::new(format!("{} (you): {}", line.from, line.text))
                        .color(MINE_BLUE)
                        .strong(),
                ),
                ChatKind::Theirs => ui.label(format!("{}: {}", line.from, line.text)),
                ChatKind::Notice => ui.label(RichText::new(&line.text).italics().weak()),
            };
        }
    });
}

fn sum_view(ui: &mut egui::Ui, sum: &Sum) {
    ui.label(format!("You are \"{}\" in the exchange.", sum.name));
    ui.add_space(6.0);
    scrolling(ui, "sum-exchanges", |ui| {
        for (n, result) in &sum.exchanges {
            match result {
                SumResult::Waiting => ui.label(format!("Client of {};{n}  ...", sum.name)),
                SumResult::Answered { server, number } => {
                    ui.label(format!("{server} answered {number}."));
                    ui.label(
                        RichText::new(format!("{n} (client) + {number} (server) = {}", n + number))
                            .strong(),
                    )
                }
                SumResult::Refused(why) => {
                    ui.label(RichText::new(format!("{n}: {why}")).color(ERROR_RED))
                }
            };
        }
    });
}

fn quiz_view(ui: &mut egui::Ui, quiz: &Quiz) {
    ui.vertical_centered(|ui| {
        ui.add_space(16.0);
        let question = match &quiz.question {
            Some(q) => format!("What is {q}?"),
            None => "Waiting for the question...".into(),
        };
        ui.label(RichText::new(question).size(36.0).strong());
        ui.add_space(12.0);
        match &quiz.verdict {
            Some(Verdict::Right(sum)) => {
                let text = format!("Right: {sum}");
                ui.label(RichText::new(text).size(22.0).color(RIGHT_GREEN));
            }
            Some(Verdict::Wrong(sum)) => {
                let text = format!("Wrong: {sum}");
                ui.label(RichText::new(text).size(22.0).color(ERROR_RED));
            }
            Some(Verdict::Note(note)) => {
                ui.label(RichText::new(note).size(18.0));
            }
            None => {}
        }
        ui.add_space(12.0);
        let score = quiz.score.as_deref().unwrap_or("0/0");
        ui.label(RichText::new(format!("Score: {score}")).size(22.0));
    });
}
