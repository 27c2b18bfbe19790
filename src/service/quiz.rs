//! The addition quiz (the fifth seed): the server asks `QUIZ a + b`, checks each answer, keeps
//! the score, and asks again. Every reply but `BYE` is followed by a `QUIZ` line, so a client
//! always knows the question it is answering.

use std::collections::HashMap;

use super::{
    BadLine, Certified, Common, ConnId, Outbox, Service, answer_common, common_command, hello,
};

pub const HELP: &str = "commands: answer each QUIZ line with a whole number | name NAME | help | q";

/// Addends are drawn from 1..=99, as SPEC says.
const MAX_ADDEND: u64 = 99;

/// One player's state: the open question and the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Player {
    a: u64,
    b: u64,
    right: u32,
    total: u32,
}

pub struct Quiz {
    players: HashMap<ConnId, Player>,
    /// Certificate names under mutual TLS, for `name`.
    certified: Certified,
    rng: XorShift,
}

/// A small seeded generator (xorshift64*): quiz questions need variety, not cryptography,
/// and a fixed seed makes the tests repeatable.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn addend(&mut self) -> u64 {
        1 + (self.next() >> 32) % MAX_ADDEND
    }
}

impl Quiz {
    /// `seed` 0 is replaced (xorshift must not start at 0).
    pub fn new(seed: u64) -> Quiz {
        Quiz {
            players: HashMap::new(),
            certified: Certified::default(),
            rng: XorShift(if seed == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                seed
            }),
        }
    }

    /// A seed from the clock, for the real server.
    pub fn seeded_from_clock() -> Quiz {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Quiz::new(nanos ^ u64::from(std::process::id()))
    }

    fn new_question(&mut self, id: ConnId) {
        let (a, b) = (self.rng.addend(), self.rng.addend());
        let player = self.players.entry(id).or_insert(Player {
            a,
            b,
            right: 0,
            total: 0,
        });
        player.a = a;
        player.b = b;
    }

    fn ask(&self, id: ConnId, out: &mut Outbox) {
        if let Some(p) = self.players.get(&id) {
            out.send(id, format_args!("QUIZ {} + {}", p.a, p.b));
        }
    }
}

impl Service for Quiz {
    fn name(&self) -> &'static str {
        "quiz"
    }

    fn greeting(&mut self, id: ConnId, identity: Option<&str>, out: &mut Outbox) {
        self.certified.greet(id, identity);
        hello(self.name(), id, out);
        self.new_question(id);
        self.ask(id, out);
    }

    fn on_line(&mut self, id: ConnId, line: &str, out: &mut Outbox) {
        if common_command(line) == Some(Common::Quit) {
            return super::quit(id, out);
        }
        if answer_common(line, id, HELP, self.certified.of(id), out) {
            return self.ask(id, out); // name and help: their OK, then the same question again
        }
        let answer = match crate::proto::parse_answer(line) {
            crate::proto::Answer::Number(n) => Some(n),
            // Wrong for sure (the sum is below 200), and counted as any wrong answer.
            crate::proto::Answer::TooBig => None,
            crate::proto::Answer::NotANumber => {
                out.send(id, "ERR answer with a whole number");
                return self.ask(id, out);
            }
        };
        let Some(player) = self.players.get_mut(&id) else {
            return;
        };
        let sum = player.a + player.b;
        player.total += 1;
        if answer == Some(sum as i64) {
            player.right += 1;
            out.send(
                id,
                format_args!("OK correct, score {}/{}", player.right, player.total),
            );
        } else {
            out.send(
                id,
                format_args!(
                    "ERR wrong, {} + {} = {sum}, score {}/{}",
                    player.a, player.b, player.right, player.total
                ),
            );
        }
        self.new_question(id);
        self.ask(id, out);
    }

    fn on_bad_line(&mut self, id: ConnId, bad: BadLine, out: &mut Outbox) {
        out.send(id, format_args!("ERR {bad}"));
        self.ask(id, out);
    }

    fn on_close(&mut self, id: ConnId, _out: &mut Outbox) {
        self.players.remove(&id);
        self.certified.forget(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses "QUIZ a + b" into a + b.
    fn answer_of(question: &str) -> u64 {
        let rest = question.strip_prefix("QUIZ ").unwrap();
        let (a, b) = rest.split_once(" + ").unwrap();
        let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
        assert!((1..=99).contains(&a) && (1..=99).contains(&b), "{question}");
        a + b
    }

    #[test]
    fn greeting_asks_the_first_question() {
        let id = ConnId::new(1, 0);
        let mut quiz = Quiz::new(42);
        let mut out = Outbox::new();
        quiz.greeting(id, None, &mut out);
        let lines = out.lines_for(id);
        assert!(lines[0].starts_with("HELLO quiz "));
        answer_of(&lines[1]);
    }

    #[test]
    fn scoring_right_and_wrong_answers() {
        let id = ConnId::new(1, 0);
        let mut quiz = Quiz::new(7);
        let mut out = Outbox::new();
        quiz.greeting(id, None, &mut out);
        let q1 = out.lines_for(id)[1].clone();
        out.clear();
        quiz.on_line(id, &answer_of(&q1).to_string(), &mut out);
        let lines = out.lines_for(id);
        assert_eq!(lines[0], "OK correct, score 1/1");
        let q2 = lines[1].clone();
        out.clear();
        let wrong = answer_of(&q2) + 1;
        quiz.on_line(id, &format!(" {wrong} "), &mut out);
        let lines = out.lines_for(id);
        let (a, b) = q2.strip_prefix("QUIZ ").unwrap().split_once(" + ").unwrap();
        assert_eq!(
            lines[0],
            format!("ERR wrong, {a} + {b} = {}, score 1/2", answer_of(&q2))
        );
        answer_of(&lines[1]);
    }

    #[test]
    fn a_whole_number_too_big_for_the_machine_is_a_wrong_answer() {
        // Issue 27 friction 6: it was "not a whole number".
        let id = ConnId::new(1, 0);
        let mut quiz = Quiz::new(5);
        let mut out = Outbox::new();
        quiz.greeting(id, None, &mut out);
        let question = out.lines_for(id)[1].clone();
        out.clear();
        quiz.on_line(id, "99999999999999999999", &mut out);
        let lines = out.lines_for(id);
        let (a, b) = question
            .strip_prefix("QUIZ ")
            .unwrap()
            .split_once(" + ")
            .unwrap();
        assert_eq!(
            lines[0],
            format!("ERR wrong, {a} + {b} = {}, score 0/1", answer_of(&question))
        );
        assert!(
            crate::client::local_check(crate::proto::ServiceKind::Quiz, "99999999999999999999")
                .is_ok()
        );
    }

    #[test]
    fn non_answers_repeat_the_same_question() {
        let id = ConnId::new(1, 0);
        let mut quiz = Quiz::new(3);
        let mut out = Outbox::new();
        quiz.greeting(id, None, &mut out);
        let question = out.lines_for(id)[1].clone();
        out.clear();
        quiz.on_line(id, "seven", &mut out);
        quiz.on_line(id, "help", &mut out);
        quiz.on_line(id, "name zoe", &mut out);
        quiz.on_bad_line(id, BadLine::Empty, &mut out);
        quiz.on_line(id, "q", &mut out);
        let lines = out.lines_for(id);
        assert_eq!(lines[0], "ERR answer with a whole number");
        assert_eq!(lines[1], question);
        assert!(lines[2].starts_with("OK commands:"));
        assert_eq!(lines[3], question);
        assert_eq!(lines[4], "OK hello zoe");
        assert_eq!(lines[5], question);
        assert_eq!(lines[6], "ERR empty line");
        assert_eq!(lines[7], question);
        assert_eq!(lines[8], "BYE session ended");
        assert_eq!(lines.len(), 9);
    }

    #[test]
    fn questions_cover_the_range_and_vary() {
        let mut rng = XorShift(12345);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let a = rng.addend();
            assert!((1..=99).contains(&a));
            seen.insert(a);
        }
        assert_eq!(seen.len(), 99);
    }

    #[test]
    fn players_are_forgotten_on_close() {
        let id = ConnId::new(1, 0);
        let mut quiz = Quiz::new(1);
        let mut out = Outbox::new();
        quiz.greeting(id, None, &mut out);
        quiz.on_close(id, &mut out);
        assert!(quiz.players.is_empty());
    }
}
