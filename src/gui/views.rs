//! Drawing: the session frame (who we talk to, Disconnect, the end of a session) and each
//! service's screen. Widgets carry the labels a person reads; the tests find them by those
//! labels through the accessibility tree, as a screen reader would.

use eframe::egui::{self, Color32, RichText};

use super::form::ConnectForm;
use super::net::Ending;
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

/// A labelled single-line field in a two-column grid.
pub fn field(ui: &mut egui::Ui, label: &str, value: &mut String, hint: &str) {
    let label = ui.label(label);
    ui.add(
        egui::TextEdit::singleline(value)
            .hint_text(hint)
            .desired_width(320.0),
    )
    .labelled_by(label.id);
    ui.end_row();
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
        let field = ui
            .add(egui::TextEdit::singleline(&mut session.input).desired_width(360.0))
            .labelled_by(label.id);
        if field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            submitted = true;
        }
        if let Screen::Calc(calc) = &session.screen
            && field.has_focus()
        {
            recall(ui, calc, &mut session.input, &mut session.recalled);
        }
        if ui.button(button).clicked() {
            submitted = true;
        }
        // The input line keeps the keyboard: after sending, and whenever nothing else has it.
        if submitted || ui.memory(|m| m.focused().is_none()) {
            field.request_focus();
        }
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
        ui.horizontal(|ui| {
            ui.strong(format!(
                "{} at {}:{}",
                session.service,
                form.host.trim(),
                form.port.trim()
            ));
            if session.ended.is_none() && ui.button("Disconnect").clicked() {
                session.leaving = true;
                session.send("q".into());
            }
        });
        if let Some(ending) = &session.ended {
            let text = match ending {
                Ending::Bye(text) => format!("The server ended the session: {text}."),
                Ending::Failed(why) => why.clone(),
            };
            error_banner(ui, &text);
            ui.horizontal(|ui| {
                if ui.button("Reconnect").clicked() {
                    action = Action::Connect;
                }
                if ui.button("Back to the form").clicked() {
                    action = Action::BackToForm(None);
                }
            });
        }
    });
    let live = session.ended.is_none();
    egui::Panel::bottom("input").show(ui, |ui| {
        ui.add_enabled_ui(live, |ui| input_for(ui, session));
    });
    egui::CentralPanel::default().show(ui, |ui| match &session.screen {
        Screen::Calc(calc) => calc_view(ui, calc),
        Screen::Chat(chat) => chat_view(ui, chat),
        Screen::Sum(sum) => sum_view(ui, sum),
        Screen::Quiz(quiz) => quiz_view(ui, quiz),
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

fn chat_view(ui: &mut egui::Ui, chat: &Chat) {
    egui::Panel::right("members")
        .resizable(false)
        .min_size(140.0)
        .show(ui, |ui| {
            ui.strong(format!("Members ({})", chat.members.len()));
            for member in &chat.members {
                let you = chat.me.as_deref() == Some(member.as_str());
                ui.label(if you {
                    format!("{member} (you)")
                } else {
                    member.clone()
                });
            }
        });
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
                    ui.label(format!("Server of {server} answered {number}"));
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
