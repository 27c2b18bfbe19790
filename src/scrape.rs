//! The `--metrics` endpoint: just enough HTTP/1.x for a Prometheus scrape, as a line service.
//!
//! The reactor frames the request like any other: the request line, the header lines, then the
//! empty line that ends the head (which arrives as `BadLine::Empty`). `GET /metrics` gets `200`
//! and the text format; `HEAD` the same head without the body (RFC 9110 §9.3.2); any other path
//! `404`; another method `405` with `Allow: GET, HEAD` (RFC 9110 §15.5.6); anything that is not an HTTP
//! request line (or a line that is not UTF-8 or too long) `400`. Every answer closes the
//! connection. A scrape takes no client place: the metrics listener holds at most 16 at once, each
//! for at most 10 s (`reactor::admission`, `conn::SCRAPE_LIFETIME`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::bus::Directory;
use crate::outbox::{ConnId, Outbox};
use crate::service::{BadLine, Service};
use crate::shared::Shared;

/// What the request line asked for; answered once the head ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// `GET` (`head_only: false`) or `HEAD` of `/metrics`.
    Metrics {
        head_only: bool,
    },
    /// `GET` or `HEAD` of another path.
    NotFound {
        head_only: bool,
    },
    NotAllowed,
}

/// The methods this endpoint answers, for the `Allow` header of a `405`.
const ALLOWED_METHODS: &str = "GET, HEAD";

pub struct Scrape {
    shared: Arc<Shared>,
    room: Arc<Directory>,
    /// Connections whose request line was read, until their head ends.
    pending: HashMap<ConnId, Answer>,
}

impl Scrape {
    pub fn new(shared: Arc<Shared>, room: Arc<Directory>) -> Scrape {
        Scrape {
            shared,
            room,
            pending: HashMap::new(),
        }
    }

    /// Writes the status line, the headers (`extra_headers` is empty or ends in `\r\n`) and,
    /// unless `head_only`, the body; `Content-Length` is the body's either way.
    #[allow(clippy::too_many_arguments)]
    fn respond(
        &mut self,
        id: ConnId,
        status: &str,
        content_type: &str,
        extra_headers: &str,
        body: &str,
        head_only: bool,
        out: &mut Outbox,
    ) {
        self.pending.remove(&id);
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra_headers}Connection: close\r\n\r\n",
            body.len()
        );
        out.send_many_raw([id], head.as_bytes());
        if !head_only {
            out.send_many_raw([id], body.as_bytes());
        }
        out.close(id);
    }

    fn bad_request(&mut self, id: ConnId, out: &mut Outbox) {
        self.respond(
            id,
            "400 Bad Request",
            "text/plain",
            "",
            "not an HTTP request\n",
            false,
            out,
        );
    }
}

/// `GET /metrics HTTP/1.1` -> what to answer; `None` when the line is no HTTP request line.
/// RFC 9112 §3: the method is a token (any, case-sensitive: `get` is a method this endpoint does
/// not allow); the target is origin-form (`/metrics`), absolute-form (`http://host/metrics`,
/// which a server must accept, §3.2.2) or, for CONNECT, authority-form, or `*` for OPTIONS; the
/// version is HTTP/1.x (a later 1.x is answered as 1.1, §2.6).
fn request_line(line: &str) -> Option<Answer> {
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let is_token = !method.is_empty() && method.bytes().all(is_tchar);
    let minor = version.strip_prefix("HTTP/1.")?;
    if parts.next().is_some()
        || !is_token
        || minor.is_empty()
        || !minor.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let path = match target {
        _ if target.starts_with('/') => target,
        _ if target.starts_with("http://") || target.starts_with("https://") => {
            let after_scheme = &target[target.find("://")? + 3..];
            after_scheme.find('/').map_or("/", |at| &after_scheme[at..])
        }
        // Authority-form (CONNECT) and `*` (OPTIONS): no path of ours, and not GET or HEAD.
        _ if !target.is_empty() && method != "GET" && method != "HEAD" => {
            return Some(Answer::NotAllowed);
        }
        _ => return None,
    };
    let path = path.split('?').next().unwrap_or(path);
    Some(match (method, path) {
        ("GET" | "HEAD", "/metrics") => Answer::Metrics {
            head_only: method == "HEAD",
        },
        ("GET" | "HEAD", _) => Answer::NotFound {
            head_only: method == "HEAD",
        },
        _ => Answer::NotAllowed,
    })
}

impl Service for Scrape {
    fn name(&self) -> &'static str {
        "metrics"
    }

    /// HTTP clients speak first: no greeting.
    fn greeting(&mut self, _id: ConnId, _identity: Option<&str>, _out: &mut Outbox) {}

    fn on_line(&mut self, id: ConnId, line: &str, out: &mut Outbox) {
        if self.pending.contains_key(&id) {
            out.quiet(); // a header line: nothing to log, nothing to answer yet
            return;
        }
        match request_line(line) {
            Some(answer) => {
                self.pending.insert(id, answer);
            }
            None => self.bad_request(id, out),
        }
    }

    fn on_bad_line(&mut self, id: ConnId, bad: BadLine, out: &mut Outbox) {
        let answer = match bad {
            BadLine::Empty => self.pending.get(&id).copied(),
            BadLine::NotUtf8 | BadLine::TooLong { .. } | BadLine::ControlChar => None,
        };
        match answer {
            Some(Answer::Metrics { head_only }) => {
                let body = crate::metrics::render(
                    &self.shared.counters(),
                    self.room.len(),
                    self.shared.workers(),
                    self.shared.certificate_not_after(),
                );
                let kind = "text/plain; version=0.0.4; charset=utf-8";
                self.respond(id, "200 OK", kind, "", &body, head_only, out);
            }
            Some(Answer::NotFound { head_only }) => self.respond(
                id,
                "404 Not Found",
                "text/plain",
                "",
                "not found: try /metrics\n",
                head_only,
                out,
            ),
            Some(Answer::NotAllowed) => self.respond(
                id,
                "405 Method Not Allowed",
                "text/plain",
                &format!("Allow: {ALLOWED_METHODS}\r\n"),
                "only GET and HEAD\n",
                false,
                out,
            ),
            None => self.bad_request(id, out),
        }
    }

    fn on_close(&mut self, id: ConnId, _out: &mut Outbox) {
        self.pending.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape() -> Scrape {
        Scrape::new(Shared::new(1, 10), Directory::new())
    }

    fn answer(lines: &[&str]) -> String {
        let mut s = scrape();
        let mut out = Outbox::new();
        let id = ConnId::new(1, 0);
        for line in lines {
            match *line {
                "" => s.on_bad_line(id, BadLine::Empty, &mut out),
                text => s.on_line(id, text, &mut out),
            }
        }
        assert!(out.is_closing(id), "every answer closes");
        out.lines_for(id).join("\n")
    }

    #[test]
    fn a_scrape_gets_the_text_format() {
        let text = answer(&["GET /metrics HTTP/1.1", "Host: x", "Accept: */*", ""]);
        assert!(text.starts_with("HTTP/1.1 200 OK\n"), "{text}");
        assert!(text.contains("Content-Type: text/plain; version=0.0.4"));
        assert!(text.contains("securetcp_connections "));
    }

    #[test]
    fn head_is_a_get_without_the_body() {
        // `answer` gives the lines: the head's end is the empty line, and nothing follows it.
        let get = answer(&["GET /metrics HTTP/1.1", ""]);
        let head = answer(&["HEAD /metrics HTTP/1.1", ""]);
        let (get_head, body) = get.split_once("\n\n").unwrap();
        assert!(body.contains("securetcp_connections "));
        assert!(head.starts_with("HTTP/1.1 200 OK\n"), "{head}");
        assert!(
            head.ends_with("Connection: close\n"),
            "a body after HEAD: {head}"
        );
        // The Content-Length a GET carries (the same rendering of the same counters).
        let length = |text: &str| {
            let at = text.find("Content-Length: ").unwrap() + "Content-Length: ".len();
            text[at..].split('\n').next().unwrap().to_string()
        };
        assert_eq!(length(&head), length(get_head));
        let missing = answer(&["HEAD /nope HTTP/1.1", ""]);
        assert!(
            missing.starts_with("HTTP/1.1 404") && missing.ends_with("close\n"),
            "{missing}"
        );
    }

    #[test]
    fn other_paths_methods_and_noise_are_refused() {
        assert!(answer(&["GET / HTTP/1.1", ""]).starts_with("HTTP/1.1 404"));
        assert!(answer(&["POST /metrics HTTP/1.1", ""]).starts_with("HTTP/1.1 405"));
        // The attack round: any method token, CONNECT's authority-form, OPTIONS *, absolute-form
        // targets and later 1.x versions are HTTP too.
        for line in [
            "get /metrics HTTP/1.1",
            "CONNECT 127.0.0.1:9100 HTTP/1.1",
            "OPTIONS * HTTP/1.1",
        ] {
            assert!(answer(&[line, ""]).starts_with("HTTP/1.1 405"), "{line}");
        }
        for line in [
            "GET http://127.0.0.1:9100/metrics HTTP/1.1",
            "GET /metrics HTTP/1.2",
        ] {
            assert!(answer(&[line, ""]).starts_with("HTTP/1.1 200"), "{line}");
        }
        assert!(answer(&["GET http://127.0.0.1:9100/ HTTP/1.1", ""]).starts_with("HTTP/1.1 404"));
        for method in ["POST", "OPTIONS", "PUT", "DELETE"] {
            let refused = answer(&[&format!("{method} /metrics HTTP/1.1"), ""]);
            assert!(refused.starts_with("HTTP/1.1 405"), "{refused}");
            assert!(refused.contains("\nAllow: GET, HEAD\n"), "{refused}");
        }
        assert!(answer(&["hello there"]).starts_with("HTTP/1.1 400"));
        assert!(answer(&["GET /metrics SMTP/1.0"]).starts_with("HTTP/1.1 400"));
        assert!(answer(&["+ 3 4"]).starts_with("HTTP/1.1 400"));
        assert!(answer(&[""]).starts_with("HTTP/1.1 400"));
    }
}
