//! What each service's screen knows, without egui: the lines sent, the lines received, and
//! what they mean for the window (the calc history, the chat's members, the sum's exchanges,
//! the quiz's question and score). The window (`gui::app`) only draws this state and hands it
//! what was typed; the network thread hands it what arrived. Tested below without a screen.
//!
//! Every text from the network goes through [`visible`] before it is kept, so a control
//! character shows as `^[` and is never acted on.

use std::collections::VecDeque;

use crate::client::{capitalise, local_check, visible};
use crate::proto::exchange as sum;
use crate::proto::name::check as check_name;
use crate::proto::{Reply, ServiceKind};

/// The screen of the service the greeting named.
#[derive(Debug)]
pub enum Screen {
    Calc(Calc),
    Chat(Chat),
    Sum(Sum),
    Quiz(Quiz),
}

impl Screen {
    /// The screen for `HELLO <service>`; `name` is the connect form's name, if any.
    pub fn for_service(service: ServiceKind, name: Option<&str>) -> Screen {
        match service {
            ServiceKind::Chat => Screen::Chat(Chat::new(name)),
            ServiceKind::Sum => Screen::Sum(Sum::new(name)),
            ServiceKind::Quiz => Screen::Quiz(Quiz::default()),
            ServiceKind::Calc => Screen::Calc(Calc::new(service)),
        }
    }

    /// The lines to send as soon as the session starts (a chat login, a name to remember).
    pub fn opening_lines(&mut self, name: Option<&str>) -> Vec<String> {
        let Some(name) = name.filter(|n| check_name(n).is_ok()) else {
            return Vec::new();
        };
        match self {
            Screen::Chat(chat) => chat.log_in(name).into_iter().collect(),
            Screen::Calc(calc) => calc.submit(&format!("name {name}")).into_iter().collect(),
            Screen::Quiz(quiz) => {
                quiz.expected_notes += 1;
                quiz.naming = Some(name.to_string());
                vec![format!("name {name}")]
            }
            // sum has no use for `name`: the name travels in each `Client of NAME;N`.
            Screen::Sum(_) => Vec::new(),
        }
    }

    /// One line from the server. `BYE` is not shown here: the session's end says it, in words.
    pub fn on_line(&mut self, line: &str) {
        let line = visible(line);
        if let Some(Reply::Bye(_)) = Reply::parse(&line) {
            return;
        }
        match self {
            Screen::Calc(calc) => calc.on_line(&line),
            Screen::Chat(chat) => chat.on_line(&line),
            Screen::Sum(sum) => sum.on_line(&line),
            Screen::Quiz(quiz) => quiz.on_line(&line),
        }
    }
}

impl Screen {
    /// The session is over: nobody is in the room any more, as far as this window knows.
    pub fn on_end(&mut self) {
        if let Screen::Chat(chat) = self {
            chat.members.clear();
            chat.awaiting_who = false;
            chat.asked = None;
        }
    }

    /// A name the server refused since the last call (a chat login, calc's or quiz's `name`),
    /// so that the form does not offer it again.
    pub fn take_refused_name(&mut self) -> Option<String> {
        match self {
            Screen::Chat(chat) => chat.refused_name.take(),
            Screen::Calc(calc) => calc.refused_name.take(),
            Screen::Quiz(quiz) => quiz.refused_name.take(),
            Screen::Sum(_) => None,
        }
    }
}

/// One request and, once it came, its reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub request: String,
    pub reply: Option<String>,
}

/// calc: an input line with history, and the list of requests and their replies.
#[derive(Debug)]
pub struct Calc {
    service: ServiceKind,
    pub exchanges: Vec<Exchange>,
    /// Indices into `exchanges` still waiting for their reply, oldest first.
    unanswered: VecDeque<usize>,
    /// What was sent, for Up and Down in the input line.
    pub typed: Vec<String>,
    /// Why the last line was not sent, if it was not.
    pub refused: Option<String>,
    /// The name of a `name NAME` the server answered with `ERR`, until the app takes it.
    refused_name: Option<String>,
}

impl Calc {
    pub fn new(service: ServiceKind) -> Calc {
        Calc {
            service,
            exchanges: Vec::new(),
            unanswered: VecDeque::new(),
            typed: Vec::new(),
            refused: None,
            refused_name: None,
        }
    }

    /// The line to send for what was typed, or `None` (and `refused` says why) when the local
    /// check finds it is no expression: nonsense is not sent, as in the terminal client.
    pub fn submit(&mut self, typed: &str) -> Option<String> {
        let line = typed.trim();
        if let Err(why) = local_check(self.service, line) {
            self.refused = Some(format!("Not sent: {why}."));
            return None;
        }
        self.refused = None;
        if self.typed.last().map(String::as_str) != Some(line) {
            self.typed.push(line.to_string());
        }
        self.unanswered.push_back(self.exchanges.len());
        self.exchanges.push(Exchange {
            request: line.to_string(),
            reply: None,
        });
        Some(line.to_string())
    }

    fn on_line(&mut self, line: &str) {
        // Replies come in the order of the requests: the oldest unanswered one gets this.
        match self.unanswered.pop_front() {
            Some(index) => {
                let exchange = &mut self.exchanges[index];
                exchange.reply = Some(line.to_string());
                if let (Some(name), Some(Reply::Err(_))) =
                    (exchange.request.strip_prefix("name "), Reply::parse(line))
                {
                    self.refused_name = Some(name.trim().to_string());
                }
            }
            None => self.exchanges.push(Exchange {
                request: String::new(),
                reply: Some(line.to_string()),
            }),
        }
    }
}

/// How a line of the chat is shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChatKind {
    /// A line this window sent.
    Mine,
    /// Another member's message.
    Theirs,
    /// Someone came or went, the welcome, the server's answers.
    Notice,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatLine {
    pub kind: ChatKind,
    /// The sender, for `Mine` and `Theirs`.
    pub from: String,
    pub text: String,
}

/// chat: the messages, the members, and the login.
#[derive(Debug)]
pub struct Chat {
    /// Our name once the server welcomed it.
    pub me: Option<String>,
    /// The name sent and not answered yet.
    asked: Option<String>,
    /// `who` sent after the welcome, its `OK` not yet back.
    awaiting_who: bool,
    /// Members in the order the server listed them, then in the order they joined.
    pub members: Vec<String>,
    pub lines: Vec<ChatLine>,
    /// Why the last name was refused (the login form shows it).
    pub login_error: Option<String>,
    /// The name the login field starts with: the form's, or the one just refused.
    pub suggested: String,
    /// The name the server just refused, until the app takes it.
    refused_name: Option<String>,
}

impl Chat {
    pub fn new(name: Option<&str>) -> Chat {
        Chat {
            me: None,
            asked: None,
            awaiting_who: false,
            members: Vec::new(),
            lines: Vec::new(),
            login_error: None,
            suggested: name.unwrap_or_default().to_string(),
            refused_name: None,
        }
    }

    /// The `name` line for a login, or `None` (and `login_error` says why) for a name the
    /// server would refuse anyway.
    pub fn log_in(&mut self, name: &str) -> Option<String> {
        let name = name.trim();
        if let Err(why) = check_name(name) {
            self.login_error = Some(format!("{}.", capitalise(&why.to_string())));
            return None;
        }
        self.login_error = None;
        self.suggested.clear();
        self.asked = Some(name.to_string());
        Some(format!("name {name}"))
    }

    /// True while a name is on its way and the form should wait.
    pub fn logging_in(&self) -> bool {
        self.asked.is_some()
    }

    /// The line to send for a typed message; our own line is kept, marked as ours (the server
    /// does not echo it back).
    pub fn say(&mut self, typed: &str) -> Option<String> {
        let me = self.me.clone()?;
        let text = typed.trim_end();
        if text.trim().is_empty() {
            return None;
        }
        self.lines.push(ChatLine {
            kind: ChatKind::Mine,
            from: me,
            text: visible(text).into_owned(),
        });
        Some(text.to_string())
    }

    /// After the welcome, the member list is asked for once; JOIN and LEFT keep it current.
    pub fn wants_who(&mut self) -> bool {
        if self.me.is_some() && !self.awaiting_who && self.members.is_empty() {
            self.awaiting_who = true;
            return true;
        }
        false
    }

    fn notice(&mut self, text: String) {
        self.lines.push(ChatLine {
            kind: ChatKind::Notice,
            from: String::new(),
            text,
        });
    }

    fn on_line(&mut self, line: &str) {
        let reply = Reply::parse(line);
        match reply {
            Some(Reply::Msg { from, text }) => self.lines.push(ChatLine {
                kind: ChatKind::Theirs,
                from: from.to_string(),
                text: text.to_string(),
            }),
            Some(Reply::Join(name)) => {
                if !self.members.iter().any(|m| m == name) {
                    self.members.push(name.to_string());
                }
                self.notice(format!("{name} joined"));
            }
            Some(Reply::Left(name)) => {
                self.members.retain(|m| m != name);
                self.notice(format!("{name} left"));
            }
            // The one reply to a login.
            _ if self.asked.is_some() => {
                let asked = self.asked.take().unwrap_or_default();
                match reply {
                    Some(Reply::Ok(welcome)) => {
                        self.notice(capitalise(welcome));
                        self.me = Some(asked);
                    }
                    _ => {
                        let why = reply.and_then(|r| r.text()).unwrap_or(line);
                        self.login_error = Some(format!("{}.", capitalise(why)));
                        // Offered again in the name field, to be changed.
                        self.refused_name = Some(asked.clone());
                        self.suggested = asked;
                    }
                }
            }
            Some(Reply::Ok(listed)) if self.awaiting_who => {
                self.awaiting_who = false;
                self.members = listed.split_whitespace().map(str::to_string).collect();
            }
            // Answers to commands (`help`, a refused line): the server's words as a sentence.
            Some(Reply::Ok(text)) => self.notice(capitalise(text)),
            Some(Reply::Err(text)) => self.notice(format!("{}.", capitalise(text))),
            _ => self.notice(line.to_string()),
        }
    }
}

/// The sum's number field accepts 1..100, checked before anything is sent.
pub const SUM_RANGE: std::ops::RangeInclusive<i64> = 1..=100;

/// One `Client of NAME;N` and what came back.
#[derive(Debug, Clone, PartialEq)]
pub enum SumResult {
    Waiting,
    /// The server's name and number.
    Answered {
        server: String,
        number: i64,
    },
    Refused(String),
}

#[derive(Debug)]
pub struct Sum {
    /// The name in `Client of NAME;N`.
    pub name: String,
    pub exchanges: Vec<(i64, SumResult)>,
    pub refused: Option<String>,
}

impl Sum {
    pub fn new(name: Option<&str>) -> Sum {
        let valid = |n: &String| sum::check_exchange_name(n).is_ok();
        let name = name
            .map(str::to_string)
            .filter(valid)
            .or_else(|| std::env::var("USER").ok().filter(valid))
            .unwrap_or_else(|| "client".to_string());
        Sum {
            name,
            exchanges: Vec::new(),
            refused: None,
        }
    }

    /// The exchange line for what was typed in the number field, or `None` with `refused` set.
    pub fn submit(&mut self, typed: &str) -> Option<String> {
        match sum::parse_number(typed.trim()).filter(|n| SUM_RANGE.contains(n)) {
            Some(n) => {
                self.refused = None;
                self.exchanges.push((n, SumResult::Waiting));
                Some(format!("Client of {};{n}", self.name))
            }
            None => {
                self.refused = Some("Please enter an integer between 1 and 100.".into());
                None
            }
        }
    }

    fn on_line(&mut self, line: &str) {
        let Some((_, result)) = self
            .exchanges
            .iter_mut()
            .find(|(_, r)| *r == SumResult::Waiting)
        else {
            return;
        };
        // `OK Server of <server-name>;<M>`: the server's name may hold spaces, never `;`.
        let reply = Reply::parse(line);
        let answer = match reply {
            Some(Reply::Ok(text)) => text.strip_prefix("Server of "),
            _ => None,
        }
        .and_then(|rest| rest.rsplit_once(';'))
        .and_then(|(server, m)| Some((server, m.trim().parse::<i64>().ok()?)));
        *result = match answer {
            Some((server, number)) => SumResult::Answered {
                server: server.to_string(),
                number,
            },
            None => SumResult::Refused(reply.and_then(|r| r.text()).unwrap_or(line).to_string()),
        };
    }
}

/// Whether the last answer was right.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The question and the answer given: `a + b = answer`.
    Right(String),
    /// What the server said: `a + b = sum`.
    Wrong(String),
    /// Not an answer the server took (`answer with a whole number`), or a note.
    Note(String),
}

#[derive(Debug, Default)]
pub struct Quiz {
    /// `a + b` of the current question.
    pub question: Option<String>,
    /// `R/T` as the server counts it.
    pub score: Option<String>,
    pub verdict: Option<Verdict>,
    /// Replies to lines that were not answers (`name`), shown as notes.
    expected_notes: usize,
    /// `a + b = answer` of the answer on its way, so that the verdict can say what it judged.
    answered: Option<String>,
    pub refused: Option<String>,
    /// The name of a `name NAME` the server answered with `ERR`, until the app takes it.
    refused_name: Option<String>,
    /// The name sent with `name`, until its reply.
    naming: Option<String>,
}

impl Quiz {
    /// The answer line, or `None` with `refused` set when it is not a whole number.
    pub fn submit(&mut self, typed: &str) -> Option<String> {
        let line = typed.trim();
        if let Err(why) = local_check(crate::proto::ServiceKind::Quiz, line) {
            self.refused = Some(format!("{}.", capitalise(&why)));
            return None;
        }
        self.refused = None;
        // The question is answered: none is shown until the server sends the next one.
        self.answered = self.question.take().map(|q| format!("{q} = {line}"));
        Some(line.to_string())
    }

    fn on_line(&mut self, line: &str) {
        let reply = Reply::parse(line);
        if let Some(Reply::Quiz(question)) = reply {
            self.question = Some(question.to_string());
            return;
        }
        if self.expected_notes > 0 {
            self.expected_notes -= 1;
            let named = self.naming.take();
            if let Some(Reply::Err(_)) = reply {
                self.refused_name = named;
            }
            return;
        }
        let right = match reply {
            Some(Reply::Ok(text)) => text.strip_prefix("correct, score "),
            _ => None,
        };
        let wrong = match reply {
            Some(Reply::Err(text)) => text.strip_prefix("wrong, "),
            _ => None,
        };
        if let Some(score) = right {
            self.score = Some(score.to_string());
            self.verdict = Some(Verdict::Right(self.answered.take().unwrap_or_default()));
        } else if let Some(rest) = wrong {
            let (sum, score) = rest.split_once(", score ").unwrap_or((rest, ""));
            self.score = Some(score.to_string());
            self.answered = None;
            self.verdict = Some(Verdict::Wrong(sum.to_string()));
        } else {
            let text = reply.and_then(|r| r.text()).unwrap_or(line);
            self.verdict = Some(Verdict::Note(capitalise(text)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calc_pairs_replies_with_requests_in_order() {
        let mut screen = Screen::for_service(ServiceKind::Calc, None);
        let Screen::Calc(calc) = &mut screen else {
            panic!()
        };
        assert_eq!(calc.submit(" + 3 4 ").as_deref(), Some("+ 3 4"));
        assert_eq!(calc.submit("1 / 0").as_deref(), Some("1 / 0"));
        assert_eq!(calc.submit("3 +"), None);
        assert!(calc.refused.as_deref().unwrap().starts_with("Not sent: "));
        screen.on_line("OK 7");
        let Screen::Calc(calc) = &screen else {
            panic!()
        };
        assert_eq!(calc.exchanges[0].reply.as_deref(), Some("OK 7"));
        assert_eq!(calc.exchanges[1].reply, None);
        assert_eq!(calc.typed, ["+ 3 4", "1 / 0"]);
    }

    #[test]
    fn calc_sends_the_forms_name_and_shows_its_reply() {
        let mut screen = Screen::for_service(ServiceKind::Calc, Some("ann"));
        assert_eq!(screen.opening_lines(Some("ann")), ["name ann"]);
        screen.on_line("OK hello ann");
        let Screen::Calc(calc) = &screen else {
            panic!()
        };
        assert_eq!(calc.exchanges[0].reply.as_deref(), Some("OK hello ann"));
        // A name the server would refuse is not sent at all.
        let mut screen = Screen::for_service(ServiceKind::Calc, None);
        assert!(screen.opening_lines(Some("two words")).is_empty());
    }

    #[test]
    fn chat_login_members_and_messages() {
        let mut screen = Screen::for_service(ServiceKind::Chat, Some("ann"));
        assert_eq!(screen.opening_lines(Some("ann")), ["name ann"]);
        screen.on_line("ERR name taken");
        let Screen::Chat(chat) = &mut screen else {
            panic!()
        };
        assert_eq!(chat.login_error.as_deref(), Some("Name taken."));
        assert!(chat.me.is_none() && !chat.logging_in());
        assert_eq!(chat.log_in("a b"), None);
        assert_eq!(chat.log_in("ann2").as_deref(), Some("name ann2"));
        screen.on_line("OK welcome ann2, 2 online");
        let Screen::Chat(chat) = &mut screen else {
            panic!()
        };
        assert_eq!(chat.me.as_deref(), Some("ann2"));
        assert!(chat.wants_who());
        assert!(!chat.wants_who(), "who is asked once");
        screen.on_line("OK bob ann2");
        screen.on_line("JOIN cy");
        screen.on_line("MSG bob hi \u{1b}[2J there");
        // A name from an older server, and a message, with invisible and bidi characters.
        screen.on_line("MSG a\u{200B}lice \u{202E}olleh\u{2066}");
        screen.on_line("LEFT bob");
        let Screen::Chat(chat) = &mut screen else {
            panic!()
        };
        assert_eq!(chat.members, ["ann2", "cy"]);
        assert_eq!(chat.say("  hello  ").as_deref(), Some("  hello"));
        assert_eq!(chat.say("   "), None);
        let shown: Vec<(ChatKind, &str, &str)> = chat
            .lines
            .iter()
            .map(|l| (l.kind, l.from.as_str(), l.text.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                (ChatKind::Notice, "", "Welcome ann2, 2 online"),
                (ChatKind::Notice, "", "cy joined"),
                (ChatKind::Theirs, "bob", "hi ^[[2J there"),
                (
                    ChatKind::Theirs,
                    "a\\u{200b}lice",
                    "\\u{202e}olleh\\u{2066}"
                ),
                (ChatKind::Notice, "", "bob left"),
                (ChatKind::Mine, "ann2", "  hello"),
            ]
        );
    }

    #[test]
    fn sum_checks_the_number_before_sending() {
        let mut sum = Sum::new(Some("John Q. Smith"));
        assert_eq!(sum.submit("0"), None);
        assert_eq!(sum.submit("101"), None);
        assert_eq!(sum.submit("ten"), None);
        assert!(sum.refused.is_some());
        assert_eq!(
            sum.submit(" 7 ").as_deref(),
            Some("Client of John Q. Smith;7")
        );
        assert_eq!(sum.refused, None);
        sum.on_line("OK Server of Big Server;50");
        assert_eq!(
            sum.exchanges,
            [(
                7,
                SumResult::Answered {
                    server: "Big Server".into(),
                    number: 50
                }
            )]
        );
        sum.submit("8");
        sum.on_line("ERR number must be an integer from 1 to 100");
        assert_eq!(
            sum.exchanges[1].1,
            SumResult::Refused("number must be an integer from 1 to 100".into())
        );
    }

    #[test]
    fn quiz_keeps_question_score_and_verdict() {
        let mut screen = Screen::for_service(ServiceKind::Quiz, Some("ann"));
        screen.on_line("QUIZ 2 + 3");
        assert_eq!(screen.opening_lines(Some("ann")), ["name ann"]);
        screen.on_line("OK hello ann");
        screen.on_line("QUIZ 2 + 3");
        let Screen::Quiz(quiz) = &mut screen else {
            panic!()
        };
        assert_eq!(quiz.verdict, None, "the name's reply is no verdict");
        assert_eq!(quiz.submit("five"), None);
        assert_eq!(quiz.submit("5").as_deref(), Some("5"));
        screen.on_line("OK correct, score 1/1");
        screen.on_line("QUIZ 10 + 20");
        let Screen::Quiz(quiz) = &mut screen else {
            panic!()
        };
        assert_eq!(quiz.verdict, Some(Verdict::Right("2 + 3 = 5".into())));
        assert_eq!(quiz.question.as_deref(), Some("10 + 20"));
        screen.on_line("ERR wrong, 10 + 20 = 30, score 1/2");
        let Screen::Quiz(quiz) = &screen else {
            panic!()
        };
        assert_eq!(quiz.verdict, Some(Verdict::Wrong("10 + 20 = 30".into())));
        assert_eq!(quiz.score.as_deref(), Some("1/2"));
    }

    /// Issue 21: the protocol's words never reach the screen as they are: `BYE` is left to the
    /// session's end (in words), a chat's `ERR` is a sentence, and the end empties the members.
    #[test]
    fn chat_shows_sentences_and_no_members_after_the_end() {
        let mut screen = Screen::for_service(ServiceKind::Chat, Some("ann"));
        screen.opening_lines(Some("ann"));
        screen.on_line("OK welcome ann, 1 online");
        if let Screen::Chat(chat) = &mut screen {
            assert!(chat.wants_who());
        }
        screen.on_line("OK ann");
        screen.on_line("ERR line too long");
        screen.on_line("BYE server shutting down");
        screen.on_end();
        let Screen::Chat(chat) = &screen else {
            panic!()
        };
        let texts: Vec<&str> = chat.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["Welcome ann, 1 online", "Line too long."]);
        assert!(chat.members.is_empty());
    }

    /// Issue 21: a name the server refused is handed to the app once, so the form forgets it.
    #[test]
    fn refused_names_are_reported_once() {
        let mut chat = Screen::for_service(ServiceKind::Chat, Some("bob"));
        chat.opening_lines(Some("bob"));
        chat.on_line("ERR name taken");
        assert_eq!(chat.take_refused_name().as_deref(), Some("bob"));
        assert_eq!(chat.take_refused_name(), None);

        let mut calc = Screen::for_service(ServiceKind::Calc, Some("eve"));
        calc.opening_lines(Some("eve"));
        calc.on_line("ERR name must match your certificate");
        assert_eq!(calc.take_refused_name().as_deref(), Some("eve"));

        let mut quiz = Screen::for_service(ServiceKind::Quiz, Some("eve"));
        quiz.opening_lines(Some("eve"));
        quiz.on_line("OK hello eve");
        assert_eq!(quiz.take_refused_name(), None);

        // A calc line that is no `name` is never taken for one.
        let mut calc = Screen::for_service(ServiceKind::Calc, None);
        if let Screen::Calc(c) = &mut calc {
            c.submit("1 / 0");
        }
        calc.on_line("ERR division by zero");
        assert_eq!(calc.take_refused_name(), None);
    }
}
