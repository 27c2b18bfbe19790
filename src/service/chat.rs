//! The chat room: log in with `name NAME`, then every line is a message to everyone else.
//!
//! This reactor's members are kept in join order with their connections; the names of the whole
//! room (every worker's members) are in the shared [`Directory`], which `who` reads and a login
//! claims. A message is written once into the Outbox as a room line: to the local members in one
//! `SendMany`, and published for the members on other reactors, whose chat services hand it to
//! theirs (`on_room_line`). No copy per member here, no thread per client anywhere. A member that
//! does not read is cut off by the reactor past 1 MiB of queued output, and `on_close` then says
//! `LEFT`.
//!
//! Names follow `crate::name`: a name that would pass for a member's (`Alice`, `аlice` while
//! `alice` is here) is taken, and under mutual TLS a member's name is its certificate's.

use std::sync::Arc;

use super::{
    Certified, Common, ConnId, Outbox, Service, check_requested_name, common_command, hello, quit,
};
use crate::bus::Directory;

pub const HELP: &str =
    "commands: name NAME (log in) | who | q | any other line is a message to the room";

pub struct Chat {
    /// This reactor's logged-in members in join order, with their names.
    members: Vec<(ConnId, Box<str>)>,
    /// Every name in the room, on every reactor.
    room: Arc<Directory>,
    /// Certificate names under mutual TLS: the only name each of those clients may take.
    certified: Certified,
}

impl Chat {
    /// A room of its own (one reactor, and the unit tests).
    pub fn new() -> Chat {
        Chat::in_room(Directory::new())
    }

    /// This reactor's part of a room that `room` names in full.
    pub fn in_room(room: Arc<Directory>) -> Chat {
        Chat {
            members: Vec::new(),
            room,
            certified: Certified::default(),
        }
    }

    fn name_of(&self, id: ConnId) -> Option<&str> {
        self.members
            .iter()
            .find(|(m, _)| *m == id)
            .map(|(_, n)| &**n)
    }

    /// This reactor's members but `id`.
    fn others(&self, id: ConnId) -> impl Iterator<Item = ConnId> + '_ {
        self.members
            .iter()
            .map(|(m, _)| *m)
            .filter(move |m| *m != id)
    }

    fn log_in(&mut self, id: ConnId, name: &str, out: &mut Outbox) {
        let certificate = self.certified.of(id);
        if let Err(why) = check_requested_name(name, certificate) {
            // A look-alike of a member is taken, whatever else is wrong with it (`аlice`, with a
            // Cyrillic `а`, mixes scripts too; what matters to its sender is that alice is here).
            let look_alike = certificate.is_none()
                && crate::proto::name::check_form(name).is_ok()
                && self.room.is_taken(name);
            return match look_alike {
                true => out.send(id, "ERR name taken"),
                false => out.send(id, format_args!("ERR {why}")),
            };
        }
        if !self.room.claim(name) {
            return out.send(id, "ERR name taken");
        }
        self.members.push((id, name.into()));
        out.set_name(id, name);
        out.send(
            id,
            format_args!("OK welcome {name}, {} online", self.room.len()),
        );
        out.send_room(self.others(id), format_args!("JOIN {name}"));
    }
}

impl Chat {
    /// Another instance's member had `name` first (the rooms were apart when ours logged in):
    /// ours goes, and everyone here and elsewhere hears it leave.
    fn taken_elsewhere(&mut self, name: &str, out: &mut Outbox) {
        let Some(index) = self.members.iter().position(|(_, n)| &**n == name) else {
            return; // on another reactor, or gone already
        };
        let (id, name) = self.members.remove(index);
        self.room.release(&name);
        out.send(id, "BYE name taken elsewhere");
        out.close(id);
        out.send_room(self.others(id), format_args!("LEFT {name}"));
    }
}

impl Default for Chat {
    fn default() -> Chat {
        Chat::new()
    }
}

impl Service for Chat {
    fn name(&self) -> &'static str {
        "chat"
    }

    fn greeting(&mut self, id: ConnId, identity: Option<&str>, out: &mut Outbox) {
        self.certified.greet(id, identity);
        hello(self.name(), id, out);
    }

    fn on_line(&mut self, id: ConnId, line: &str, out: &mut Outbox) {
        let logged_in = self.name_of(id).is_some();
        match common_command(line) {
            Some(Common::Help) => return out.send(id, format_args!("OK {HELP}")),
            Some(Common::Quit) => return quit(id, out),
            Some(Common::Name(_)) if logged_in => return out.send(id, "ERR already logged in"),
            Some(Common::Name(name)) => return self.log_in(id, name, out),
            None => {}
        }
        let Some(name) = self.name_of(id) else {
            return out.send(id, "ERR log in first: name <NAME>");
        };
        if line.trim() == "who" {
            return out.send(id, format_args!("OK {}", self.room.list()));
        }
        // A message: no reply; the log gets its size, never its text.
        out.send_room(self.others(id), format_args!("MSG {name} {line}"));
        out.quiet();
        out.log(id, format_args!("event=msg bytes={}", line.len()));
    }

    fn on_close(&mut self, id: ConnId, out: &mut Outbox) {
        self.certified.forget(id);
        let Some(index) = self.members.iter().position(|(m, _)| *m == id) else {
            return;
        };
        let (_, name) = self.members.remove(index);
        self.room.release(&name);
        // The reactor's close line already logs the departure.
        out.send_room(self.others(id), format_args!("LEFT {name}"));
    }

    fn on_room_line(&mut self, lines: &[u8], out: &mut Outbox) {
        if let Some(name) = crate::bus::as_taken_elsewhere(lines) {
            return self.taken_elsewhere(name, out);
        }
        out.send_many_raw(self.members.iter().map(|(m, _)| *m), lines);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> ConnId {
        ConnId::new(n, n as usize)
    }

    /// A room with members 1..=n logged in as m1, m2, ...; the outbox is cleared afterwards.
    fn room(n: u64) -> (Chat, Outbox) {
        let mut chat = Chat::new();
        let mut out = Outbox::new();
        for i in 1..=n {
            chat.greeting(id(i), None, &mut out);
            chat.on_line(id(i), &format!("name m{i}"), &mut out);
        }
        out.clear();
        (chat, out)
    }

    #[test]
    fn login_welcomes_and_announces() {
        let (mut chat, mut out) = room(2);
        chat.on_line(id(3), "name carol", &mut out);
        assert_eq!(out.lines_for(id(3)), ["OK welcome carol, 3 online"]);
        assert_eq!(out.lines_for(id(1)), ["JOIN carol"]);
        assert_eq!(out.lines_for(id(2)), ["JOIN carol"]);
    }

    #[test]
    fn a_member_whose_name_another_instance_had_first_is_told_and_leaves() {
        let (mut chat, mut out) = room(3);
        chat.on_room_line(&crate::bus::taken_elsewhere("m2"), &mut out);
        assert_eq!(out.lines_for(id(2)), ["BYE name taken elsewhere"]);
        assert!(out.is_closing(id(2)));
        assert_eq!(out.lines_for(id(1)), ["LEFT m2"]);
        assert_eq!(out.lines_for(id(3)), ["LEFT m2"]);
        // Nobody else hears it twice, and the line itself is for nobody.
        chat.on_close(id(2), &mut out);
        chat.on_room_line(&crate::bus::taken_elsewhere("m2"), &mut out);
        assert_eq!(out.lines_for(id(1)), ["LEFT m2"]);
        chat.on_line(id(1), "who", &mut out);
        assert_eq!(out.lines_for(id(1)).last().unwrap(), "OK m1 m3");
    }

    #[test]
    fn login_rules() {
        let (mut chat, mut out) = room(1);
        chat.on_line(id(2), "hello", &mut out);
        chat.on_line(id(2), "who", &mut out);
        chat.on_line(id(2), "name m1", &mut out);
        chat.on_line(id(2), "name two words", &mut out);
        chat.on_line(id(2), &format!("name {}", "x".repeat(33)), &mut out);
        chat.on_line(id(2), "name bob", &mut out);
        chat.on_line(id(2), "name bob2", &mut out);
        let lines = out.lines_for(id(2));
        assert_eq!(lines[0], "ERR log in first: name <NAME>");
        assert_eq!(lines[1], "ERR log in first: name <NAME>");
        assert_eq!(lines[2], "ERR name taken");
        assert!(lines[3].starts_with("ERR name must be"));
        assert!(lines[4].starts_with("ERR name must be"));
        assert_eq!(lines[5], "OK welcome bob, 2 online");
        assert_eq!(lines[6], "ERR already logged in");
    }

    #[test]
    fn look_alikes_of_a_member_are_taken_and_invisible_characters_refused() {
        let (mut chat, mut out) = room(0);
        chat.on_line(id(1), "name alice", &mut out);
        let attempts = [
            ("Alice", "ERR name taken"),
            ("ALICE", "ERR name taken"),
            ("ａlice", "ERR name taken"),
            ("аlice", "ERR name taken"), // Cyrillic а: mixes scripts, but taken first
            ("aIice", "ERR name taken"),
            (
                "a\u{200B}lice",
                "ERR name must not contain invisible or format characters (it holds U+200B)",
            ),
            (
                "alice\u{200D}",
                "ERR name must not contain invisible or format characters (it holds U+200D)",
            ),
            (
                "\u{202E}alice",
                "ERR name must not contain invisible or format characters (it holds U+202E)",
            ),
            ("pаypal", "ERR name must not mix Latin and Cyrillic letters"),
        ];
        for (n, (name, reply)) in attempts.iter().enumerate() {
            let guest = id(10 + n as u64);
            chat.on_line(guest, &format!("name {name}"), &mut out);
            assert_eq!(out.lines_for(guest), [*reply], "{name:?}");
        }
        // Different names are names of their own, shown as typed.
        for (n, name) in ["alicia", "Zoë", "日本"].iter().enumerate() {
            chat.on_line(id(30 + n as u64), &format!("name {name}"), &mut out);
        }
        chat.on_line(id(1), "who", &mut out);
        assert_eq!(
            out.lines_for(id(1)).last().unwrap(),
            "OK alice alicia Zoë 日本"
        );
        // Once alice has left, `Alice` may have the name, and keeps her capital.
        chat.on_close(id(1), &mut out);
        chat.on_line(id(40), "name Alice", &mut out);
        assert_eq!(out.lines_for(id(40)), ["OK welcome Alice, 4 online"]);
    }

    #[test]
    fn under_mutual_tls_the_certificate_names_the_member() {
        let mut chat = Chat::new();
        let mut out = Outbox::new();
        chat.greeting(id(1), Some("alice"), &mut out);
        chat.greeting(id(2), Some("securetcp development client"), &mut out);
        chat.greeting(id(3), Some(""), &mut out);
        out.clear();
        chat.on_line(id(1), "name bob", &mut out);
        chat.on_line(id(1), "hello", &mut out);
        chat.on_line(id(1), "name alice", &mut out);
        assert_eq!(
            out.lines_for(id(1)),
            [
                "ERR your certificate names you alice",
                "ERR log in first: name <NAME>",
                "OK welcome alice, 1 online"
            ]
        );
        chat.on_line(id(2), "name securetcp development client", &mut out);
        chat.on_line(id(2), "name x", &mut out);
        let lines = out.lines_for(id(2));
        assert!(
            lines[0].starts_with(
                "ERR your certificate's name securetcp development client cannot be used: name must be"
            ),
            "{lines:?}"
        );
        assert_eq!(
            lines[1],
            "ERR your certificate names you securetcp development client"
        );
        chat.on_line(id(3), "name carol", &mut out);
        assert_eq!(
            out.lines_for(id(3)),
            ["ERR your certificate gives no name (no CN, DNS or e-mail name)"]
        );
        assert_eq!(chat.room.list(), "alice");
    }

    #[test]
    fn help_and_quit_work_before_login() {
        let (mut chat, mut out) = room(0);
        chat.on_line(id(1), "help", &mut out);
        chat.on_line(id(1), "q", &mut out);
        let lines = out.lines_for(id(1));
        assert!(lines[0].starts_with("OK commands:"));
        assert_eq!(lines[1], "BYE session ended");
        assert!(out.is_closing(id(1)));
    }

    #[test]
    fn a_message_goes_once_to_every_other_member_with_no_reply() {
        let (mut chat, mut out) = room(100);
        chat.on_line(id(7), "hello room", &mut out);
        assert!(out.lines_for(id(7)).is_empty());
        for i in (1..=100).filter(|&i| i != 7) {
            assert_eq!(out.lines_for(id(i)), ["MSG m7 hello room"], "member {i}");
        }
        // One Send-to-many and its log line: the message text is stored once.
        let sends = out
            .actions()
            .iter()
            .filter(|a| matches!(a, crate::outbox::Action::SendMany { .. }))
            .count();
        assert_eq!(sends, 1);
        assert!(out.take_quiet());
    }

    #[test]
    fn who_lists_members_in_join_order() {
        let (mut chat, mut out) = room(3);
        chat.on_line(id(2), "who", &mut out);
        assert_eq!(out.lines_for(id(2)), ["OK m1 m2 m3"]);
    }

    #[test]
    fn leaving_or_dropping_says_left_and_frees_the_name() {
        let (mut chat, mut out) = room(3);
        chat.on_line(id(2), "q", &mut out);
        chat.on_close(id(2), &mut out);
        chat.on_close(id(3), &mut out); // dropped without q
        assert_eq!(out.lines_for(id(1)), ["LEFT m2", "LEFT m3"]);
        out.clear();
        chat.on_line(id(4), "name m2", &mut out);
        assert_eq!(out.lines_for(id(4)), ["OK welcome m2, 2 online"]);
    }

    #[test]
    fn two_reactors_share_one_room_through_the_directory_and_room_lines() {
        // Two chat services, as two workers would have, with one directory; the test carries the
        // published lines from one to the other, as the reactors' bus does.
        let room = Directory::new();
        let (mut one, mut two) = (Chat::in_room(room.clone()), Chat::in_room(room.clone()));
        let (mut out1, mut out2) = (Outbox::new(), Outbox::new());
        one.on_line(id(1), "name alice", &mut out1);
        two.on_line(id(2), "name alice", &mut out2);
        assert_eq!(out2.lines_for(id(2)), ["ERR name taken"]);
        two.on_line(id(2), "name bob", &mut out2);
        assert_eq!(out2.lines_for(id(2))[1], "OK welcome bob, 2 online");
        assert_eq!(out2.published(), ["JOIN bob"]);
        for line in out2.published() {
            one.on_room_line(format!("{line}\n").as_bytes(), &mut out1);
        }
        assert_eq!(out1.lines_for(id(1))[1], "JOIN bob");
        out1.clear();
        out2.clear();
        one.on_line(id(1), "hello bob", &mut out1);
        one.on_line(id(1), "who", &mut out1);
        assert_eq!(out1.published(), ["MSG alice hello bob"]);
        assert_eq!(out1.lines_for(id(1)), ["OK alice bob"]);
        for line in out1.published() {
            two.on_room_line(format!("{line}\n").as_bytes(), &mut out2);
        }
        assert_eq!(out2.lines_for(id(2)), ["MSG alice hello bob"]);
        // Leaving frees the name in the whole room and is published.
        out1.clear();
        one.on_close(id(1), &mut out1);
        assert_eq!(out1.published(), ["LEFT alice"]);
        assert_eq!(room.list(), "bob");
    }

    #[test]
    fn a_look_alike_on_another_worker_is_taken() {
        let room = Directory::new();
        let (mut one, mut two) = (Chat::in_room(room.clone()), Chat::in_room(room.clone()));
        let (mut out1, mut out2) = (Outbox::new(), Outbox::new());
        one.on_line(id(1), "name alice", &mut out1);
        two.on_line(id(2), "name Alice", &mut out2);
        assert_eq!(out2.lines_for(id(2)), ["ERR name taken"]);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Letters that look alike, or fold alike, across scripts and cases, and some that do not.
        const ALPHABET: &[&str] = &[
            "a", "а", "A", "А", "ａ", "l", "I", "1", "|", "i", "ı", "e", "е", "E", "o", "о", "0",
            "O", "rn", "m", "c", "с", "ß", "ss", "é", "e\u{301}", "x",
        ];

        fn name() -> impl Strategy<Value = String> {
            prop::collection::vec(prop::sample::select(ALPHABET), 1..5).prop_map(|p| p.concat())
        }

        fn welcomed(out: &Outbox, who: ConnId) -> bool {
            out.lines_for(who)
                .iter()
                .any(|l| l.starts_with("OK welcome"))
        }

        proptest! {
            /// Two names with one UTS #39 skeleton, or one NFKC + case-folded form, never both
            /// get `OK welcome`, whichever logs in first.
            #[test]
            fn names_that_render_alike_never_both_get_in(a in name(), b in name()) {
                let mut chat = Chat::new();
                let mut out = Outbox::new();
                chat.on_line(id(1), &format!("name {a}"), &mut out);
                chat.on_line(id(2), &format!("name {b}"), &mut out);
                let skeleton = |s: &str| unicode_security::skeleton(s).collect::<String>();
                let fold = |s: &str| caseless::default_case_fold_str(&s.nfkc().collect::<String>());
                use unicode_normalization::UnicodeNormalization;
                if skeleton(&a) == skeleton(&b) || fold(&a) == fold(&b) {
                    prop_assert!(!(welcomed(&out, id(1)) && welcomed(&out, id(2))), "{a:?} and {b:?}");
                }
            }
        }
    }

    #[test]
    fn a_guest_that_never_logged_in_leaves_silently() {
        let (mut chat, mut out) = room(2);
        chat.on_close(id(9), &mut out);
        assert!(out.is_empty());
    }
}
