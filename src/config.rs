//! The server's command line (getopts) turned into a checked `Config`.
//!
//! Pure: no sockets, no files. Every mistake a user can type becomes a `UsageError` with a
//! message that says what to change (exit code 2); name resolution and binding happen later.

use std::path::PathBuf;
use std::time::Duration;

use getopts::Options;

pub use crate::addr::ListenSpec;
use crate::cluster::RedisUrl;
pub use crate::log::LogTarget;
use crate::proto::ServiceKind;
use crate::proxy::ProxyFrom;
use crate::rate::Pace;

pub use crate::proto::{DEFAULT_HOST, DEFAULT_PORT};

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: Vec<ListenSpec>,
    pub service: ServiceKind,
    /// `None`: the development certificate in `certs/`, generated when missing.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub gen_certs: bool,
    pub client_ca: Option<PathBuf>,
    pub tls: bool,
    pub log: LogTarget,
    pub max_clients: usize,
    pub max_line: usize,
    /// `None` means never.
    pub handshake_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    /// `--line-timeout`: a request line must be complete within this of its first byte.
    pub line_timeout: Option<Duration>,
    pub name: String,
    pub number: i64,
    pub exit_when_empty: bool,
    /// Reactor threads; `0` on the command line means one per CPU, resolved by `worker_count`.
    pub workers: usize,
    /// `--metrics ADDR:PORT`: the plain-HTTP Prometheus endpoint.
    pub metrics: Option<ListenSpec>,
    /// `--max-per-ip N`: connections at once from one address; `None` = no limit.
    pub max_per_ip: Option<usize>,
    /// `--max-output-memory BYTES`: the memory of all connections' output buffers together; past it
    /// the connections furthest behind are cut (`reason=slow-reader`).
    pub max_output_memory: usize,
    /// `--rate-limit N`: request lines per second per connection; `None` = no limit. Without
    /// the option, chat members get the chat's default pace ([`Pace::CHAT_DEFAULT`]).
    pub rate_limit: Option<Pace>,
    /// `--proxy-protocol`: every connection starts with a PROXY header, accepted only from
    /// these networks (`--proxy-from`); `None` = no header expected.
    pub proxy_from: Option<ProxyFrom>,
    /// `--chat-redis redis[s]://[[USER]:PASSWORD@]HOST:PORT[/CHANNEL]` (the password also from
    /// `SECURETCP_REDIS_PASSWORD`): the chat room spans every instance there.
    pub chat_redis: Option<RedisUrl>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: vec![ListenSpec {
                host: DEFAULT_HOST.to_string(),
                port: DEFAULT_PORT,
            }],
            service: ServiceKind::Calc,
            cert: None,
            key: None,
            gen_certs: false,
            client_ca: None,
            tls: true,
            log: LogTarget::File(PathBuf::from("server.log")),
            max_clients: 10_000,
            max_line: 4096,
            handshake_timeout: Some(Duration::from_secs(10)),
            idle_timeout: Some(Duration::from_secs(300)),
            line_timeout: Some(Duration::from_secs(30)),
            name: "securetcp".to_string(),
            number: 50,
            exit_when_empty: false,
            workers: 1,
            metrics: None,
            max_per_ip: None,
            max_output_memory: crate::shared::DEFAULT_OUTPUT_BUDGET,
            rate_limit: None,
            proxy_from: None,
            chat_redis: None,
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Run(Box<Config>),
    Help,
    Version,
}

#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

fn options() -> Options {
    let mut o = Options::new();
    o.optmulti(
        "l",
        "listen",
        "one more listener (repeatable; [::1]:5001 for IPv6)",
        "ADDR:PORT",
    );
    o.optopt(
        "s",
        "service",
        "calc, chat, sum or quiz (default calc)",
        "NAME",
    );
    o.optopt(
        "",
        "cert",
        "PEM certificate chain (default certs/server.pem)",
        "FILE",
    );
    o.optopt(
        "",
        "key",
        "PEM private key (default certs/server.key)",
        "FILE",
    );
    o.optflag(
        "",
        "gen-certs",
        "(re)generate the development CA and certificate in certs/",
    );
    o.optopt(
        "",
        "client-ca",
        "require client certificates signed by this CA",
        "FILE",
    );
    o.optflag("", "no-tls", "plain TCP (prints a warning)");
    o.optopt(
        "",
        "log",
        "server log file, - for stderr (default server.log)",
        "FILE",
    );
    o.optflag("", "no-log", "no log at all");
    o.optopt(
        "",
        "max-clients",
        "connections at once (default 10000)",
        "N",
    );
    o.optopt(
        "",
        "max-output-memory",
        "bound on the memory of all clients' queued output together; the furthest behind are cut past it (default 268435456, 256 MiB)",
        "BYTES",
    );
    o.optopt(
        "",
        "max-line",
        "longest request line in bytes (default 4096)",
        "BYTES",
    );
    o.optopt(
        "",
        "handshake-timeout",
        "close unfinished handshakes after this (default 10, 0 = never)",
        "SECS",
    );
    o.optopt(
        "",
        "idle-timeout",
        "close silent connections after this (default 300, 0 = never)",
        "SECS",
    );
    o.optopt(
        "",
        "line-timeout",
        "a request line must end within this of its first byte (default 30, 0 = never)",
        "SECS",
    );
    o.optopt(
        "",
        "name",
        "the server's name (sum service; default securetcp)",
        "NAME",
    );
    o.optopt(
        "",
        "number",
        "the server's number for sum, 1..100 (default 50)",
        "N",
    );
    o.optflag("", "exit-when-empty", "exit once the last client has left");
    o.optopt(
        "",
        "metrics",
        "plain-HTTP listener for GET /metrics (Prometheus text format)",
        "ADDR:PORT",
    );
    o.optopt(
        "",
        "max-per-ip",
        "connections at once from one client address (default 0 = no limit)",
        "N",
    );
    o.optopt(
        "",
        "rate-limit",
        "request lines per second per connection, burst N (default 0 = no limit; chat: 64 KiB of lines a second)",
        "N",
    );
    o.optflag(
        "",
        "proxy-protocol",
        "every connection starts with a PROXY protocol header (v1 or v2), as HAProxy's send-proxy writes",
    );
    o.optmulti(
        "",
        "proxy-from",
        "who may send that header (repeatable; default 127.0.0.0/8 and ::1/128)",
        "CIDR",
    );
    o.optopt(
        "",
        "chat-redis",
        "the chat room spans every instance on this Redis channel (default channel securetcp:chat)",
        "redis[s]://[[USER]:PASSWORD@]HOST:PORT[/CHANNEL]",
    );
    o.optopt(
        "",
        "redis-ca",
        "with rediss://: the CA that Redis's certificate must chain to (default: the public roots)",
        "FILE",
    );
    o.optopt(
        "w",
        "workers",
        "reactor threads, each with its own poll and SO_REUSEPORT sockets (default 1, 0 = one per CPU)",
        "N",
    );
    o.optflag("h", "help", "print this help");
    o.optflag("V", "version", "print the version");
    o
}

pub fn usage() -> String {
    let help = options().usage(&format!("{USAGE_LINE}\n\nA TLS server for small line protocols: one mio reactor, or one per worker with --workers (default 127.0.0.1 5000)."));
    // getopts pads a flag whose description wraps with spaces at the end of its line.
    help.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The synopsis, which a usage error prints under its message (the options are in `--help`).
pub const USAGE_LINE: &str = "Usage: securetcp [OPTIONS] [HOST [PORT]]";

/// Parses the arguments after the program name.
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Command, UsageError> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let m = options()
        .parse(&args)
        .map_err(|e| UsageError(explain_getopts(&e)))?;
    if m.opt_present("help") {
        return Ok(Command::Help);
    }
    if m.opt_present("version") {
        return Ok(Command::Version);
    }
    let mut c = Config::default();

    let mut listen = Vec::new();
    match m.free.as_slice() {
        [] => listen.push(c.listen[0].clone()),
        [host] => {
            if let Some(why) = crate::proto::port_given_as_host("securetcp", host) {
                return Err(UsageError(why));
            }
            listen.push(ListenSpec {
                host: crate::proto::host_of(host),
                port: DEFAULT_PORT,
            })
        }
        [host, port] => listen.push(ListenSpec {
            host: crate::proto::host_of(host),
            port: parse_port(port)?,
        }),
        [_, _, extra, ..] => return Err(UsageError(format!("unexpected argument '{extra}'"))),
    }
    for addr in m.opt_strs("listen") {
        listen.push(parse_listen(&addr)?);
    }
    c.listen = listen;

    if let Some(service) = m.opt_str("service") {
        c.service = service
            .parse()
            .map_err(|why| UsageError(format!("--service {service}: {why}")))?;
    }
    c.cert = m.opt_str("cert").map(PathBuf::from);
    c.key = m.opt_str("key").map(PathBuf::from);
    if c.cert.is_some() != c.key.is_some() {
        return Err(UsageError("--cert and --key go together".into()));
    }
    c.gen_certs = m.opt_present("gen-certs");
    if c.gen_certs && c.cert.is_some() {
        return Err(UsageError(
            "--gen-certs makes the development certificate; it cannot be combined with --cert"
                .into(),
        ));
    }
    c.client_ca = m.opt_str("client-ca").map(PathBuf::from);
    c.tls = !m.opt_present("no-tls");
    if !c.tls && c.client_ca.is_some() {
        return Err(UsageError(
            "--client-ca needs TLS; it cannot be combined with --no-tls".into(),
        ));
    }
    c.log = match (m.opt_present("no-log"), m.opt_str("log")) {
        (true, Some(_)) => {
            return Err(UsageError(
                "--log and --no-log contradict each other".into(),
            ));
        }
        (true, None) => LogTarget::Off,
        (false, Some(path)) if path == "-" => LogTarget::Stderr,
        (false, Some(path)) => LogTarget::File(PathBuf::from(path)),
        (false, None) => c.log,
    };
    if let Some(n) = m.opt_str("max-clients") {
        c.max_clients = parse_count("--max-clients", &n)?;
        // Half the slot space: the busy replies beyond --max-clients need slots too.
        if c.max_clients > crate::outbox::ConnId::MAX_SLOTS / 2 {
            return Err(UsageError(format!(
                "--max-clients {n}: at most {}",
                crate::outbox::ConnId::MAX_SLOTS / 2
            )));
        }
    }
    if let Some(n) = m.opt_str("max-output-memory") {
        c.max_output_memory = parse_count("--max-output-memory", &n)?;
    }
    if let Some(n) = m.opt_str("max-line") {
        c.max_line = parse_count("--max-line", &n)?;
    }
    if let Some(s) = m.opt_str("handshake-timeout") {
        c.handshake_timeout = parse_timeout("--handshake-timeout", &s)?;
    }
    if let Some(s) = m.opt_str("idle-timeout") {
        c.idle_timeout = parse_timeout("--idle-timeout", &s)?;
    }
    if let Some(s) = m.opt_str("line-timeout") {
        c.line_timeout = parse_timeout("--line-timeout", &s)?;
    }
    if let Some(name) = m.opt_str("name") {
        crate::proto::exchange::check_exchange_name(&name)
            .map_err(|why| UsageError(format!("--name: {why}")))?;
        c.name = name;
    }
    if let Some(n) = m.opt_str("number") {
        c.number = match n.parse::<i64>() {
            Ok(v) if (1..=100).contains(&v) => v,
            _ => {
                return Err(UsageError(format!(
                    "--number {n}: must be an integer from 1 to 100"
                )));
            }
        };
    }
    c.exit_when_empty = m.opt_present("exit-when-empty");
    if let Some(addr) = m.opt_str("metrics") {
        c.metrics = Some(
            parse_listen(&addr)
                .map_err(|UsageError(why)| UsageError(why.replace("--listen", "--metrics")))?,
        );
    }
    if let Some(n) = m.opt_str("max-per-ip") {
        c.max_per_ip = parse_limit("--max-per-ip", &n)?;
    }
    match m.opt_str("rate-limit") {
        Some(n) => {
            c.rate_limit = parse_limit("--rate-limit", &n)?
                .map(|v| Pace::lines(u32::try_from(v).unwrap_or(u32::MAX)));
        }
        // One member cannot fill the others' queues and delay their messages (see `Pace`).
        None if c.service == ServiceKind::Chat => c.rate_limit = Some(Pace::CHAT_DEFAULT),
        None => {}
    }
    let proxy_from = m.opt_strs("proxy-from");
    if m.opt_present("proxy-protocol") {
        c.proxy_from = Some(if proxy_from.is_empty() {
            ProxyFrom::default()
        } else {
            ProxyFrom::parse(&proxy_from).map_err(UsageError)?
        });
    } else if !proxy_from.is_empty() {
        return Err(UsageError(
            "--proxy-from needs --proxy-protocol (it says who may send the header)".into(),
        ));
    }
    if let Some(url) = m.opt_str("chat-redis") {
        let password = std::env::var(crate::cluster::PASSWORD_VARIABLE).ok();
        let url = RedisUrl::parse(&url).map_err(UsageError)?;
        let mut url = url.with_password_from_env(password);
        url.ca = m.opt_str("redis-ca").map(PathBuf::from);
        if url.ca.is_some() && !url.tls {
            return Err(UsageError(
                "--redis-ca is for a rediss:// URL (TLS to Redis)".into(),
            ));
        }
        c.chat_redis = Some(url);
        if c.service != ServiceKind::Chat {
            return Err(UsageError("--chat-redis is for --service chat".into()));
        }
    } else if m.opt_present("redis-ca") {
        return Err(UsageError(
            "--redis-ca is for --chat-redis rediss://...".into(),
        ));
    }
    if let Some(n) = m.opt_str("workers") {
        c.workers = match n.parse::<usize>() {
            Ok(0) => worker_count_for_cpus(),
            Ok(v) if v <= MAX_WORKERS => v,
            _ => {
                return Err(UsageError(format!(
                    "--workers {n}: must be a whole number from 0 (one per CPU) to {MAX_WORKERS}"
                )));
            }
        };
    }
    Ok(Command::Run(Box::new(c)))
}

pub use crate::cli::explain_getopts;

/// More reactor threads than this is a typo, not a machine.
pub const MAX_WORKERS: usize = 1024;

/// `--workers 0`: one reactor per CPU this process may run on.
fn worker_count_for_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS))
}

fn parse_port(text: &str) -> Result<u16, UsageError> {
    crate::proto::parse_port(text).map_err(UsageError)
}

/// `ADDR:PORT`, with IPv6 addresses in brackets: `[::1]:5001`.
fn parse_listen(text: &str) -> Result<ListenSpec, UsageError> {
    parse_address("--listen", text)
}

/// `ADDR:PORT` for `option`, as a usage error when it is not one.
fn parse_address(option: &str, text: &str) -> Result<ListenSpec, UsageError> {
    crate::addr::parse_address(option, text).map_err(UsageError)
}

/// A limit where `0` means none.
fn parse_limit(option: &str, text: &str) -> Result<Option<usize>, UsageError> {
    match text.parse::<usize>() {
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(UsageError(format!(
            "{option} {text}: must be a whole number (0 = no limit)"
        ))),
    }
}

fn parse_count(option: &str, text: &str) -> Result<usize, UsageError> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(UsageError(format!(
            "{option} {text}: must be a whole number of at least 1"
        ))),
    }
}

fn parse_timeout(option: &str, text: &str) -> Result<Option<Duration>, UsageError> {
    match text.parse::<f64>() {
        Ok(0.0) => Ok(None),
        Ok(secs) if secs > 0.0 && secs <= 1e9 => Ok(Some(Duration::from_secs_f64(secs))),
        _ => Err(UsageError(format!(
            "{option} {text}: must be a number of seconds (0 = never)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Config {
        match parse(args) {
            Ok(Command::Run(c)) => *c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn usage_error(args: &[&str]) -> String {
        match parse(args) {
            Err(UsageError(msg)) => msg,
            other => panic!("{args:?} should be a usage error: {other:?}"),
        }
    }

    #[test]
    fn redis_ca_goes_with_a_rediss_url() {
        let chat = ["--service", "chat", "--chat-redis"];
        let config = run(&[&chat[..], &["rediss://h:1", "--redis-ca", "ca.pem"]].concat());
        let url = config.chat_redis.unwrap();
        assert!(url.tls);
        assert_eq!(url.ca, Some(PathBuf::from("ca.pem")));
        let error = usage_error(&[&chat[..], &["redis://h:1", "--redis-ca", "ca.pem"]].concat());
        assert!(error.contains("rediss://"), "{error}");
        assert!(usage_error(&["--redis-ca", "ca.pem"]).contains("--chat-redis"));
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = run(&[]);
        assert_eq!(
            c.listen,
            [ListenSpec {
                host: "127.0.0.1".into(),
                port: 5000
            }]
        );
        assert_eq!(c.service, ServiceKind::Calc);
        assert_eq!(c.max_clients, 10_000);
        assert_eq!(c.max_line, 4096);
        assert_eq!(c.handshake_timeout, Some(Duration::from_secs(10)));
        assert_eq!(c.idle_timeout, Some(Duration::from_secs(300)));
        assert_eq!(c.log, LogTarget::File("server.log".into()));
        assert!(c.tls);
    }

    #[test]
    fn host_port_and_listeners() {
        let c = run(&[
            "0.0.0.0",
            "0",
            "--listen",
            "[::1]:5001",
            "-l",
            "localhost:7",
        ]);
        assert_eq!(
            c.listen[0],
            ListenSpec {
                host: "0.0.0.0".into(),
                port: 0
            }
        );
        assert_eq!(
            c.listen[1],
            ListenSpec {
                host: "::1".into(),
                port: 5001
            }
        );
        assert_eq!(
            c.listen[2],
            ListenSpec {
                host: "localhost".into(),
                port: 7
            }
        );
        assert_eq!(run(&["::1"]).listen[0].port, 5000);
    }

    #[test]
    fn options_are_read() {
        let c = run(&[
            "--no-tls",
            "--log",
            "-",
            "--max-clients",
            "1",
            "--max-line",
            "10",
            "--handshake-timeout",
            "1",
            "--idle-timeout",
            "0",
            "--name",
            "bob",
            "--number",
            "7",
            "--exit-when-empty",
            "-s",
            "calc",
        ]);
        assert!(!c.tls);
        assert_eq!(c.log, LogTarget::Stderr);
        assert_eq!((c.max_clients, c.max_line), (1, 10));
        assert_eq!(c.handshake_timeout, Some(Duration::from_secs(1)));
        assert_eq!(c.idle_timeout, None);
        assert_eq!((c.name.as_str(), c.number), ("bob", 7));
        assert!(c.exit_when_empty);
        assert_eq!(c.workers, 1);
        let ops = run(&[
            "--metrics",
            "127.0.0.1:9100",
            "--max-per-ip",
            "3",
            "--rate-limit",
            "50",
        ]);
        assert_eq!(ops.metrics.unwrap().port, 9100);
        assert_eq!(
            (ops.max_per_ip, ops.rate_limit),
            (Some(3), Some(Pace::lines(50)))
        );
        let none = run(&["--max-per-ip", "0", "--rate-limit", "0"]);
        assert_eq!((none.max_per_ip, none.rate_limit), (None, None));
        // The chat is paced unless told otherwise; other services are not.
        assert_eq!(run(&["-s", "chat"]).rate_limit, Some(Pace::CHAT_DEFAULT));
        assert_eq!(run(&["-s", "chat", "--rate-limit", "0"]).rate_limit, None);
        assert_eq!(
            run(&["-s", "chat", "--rate-limit", "9"]).rate_limit,
            Some(Pace::lines(9))
        );
        assert_eq!(run(&["-s", "quiz"]).rate_limit, None);
        assert!(usage_error(&["--metrics", "9100"]).contains("--metrics"));
        assert!(usage_error(&["--rate-limit", "fast"]).contains("--rate-limit"));
        assert_eq!(run(&["--workers", "4"]).workers, 4);
        assert_eq!(run(&["-w", "0"]).workers, worker_count_for_cpus());
        assert!(usage_error(&["--workers", "-1"]).contains("--workers"));
        assert!(usage_error(&["--workers", "5000"]).contains("1024"));
        assert_eq!(run(&[]).proxy_from, None);
        assert_eq!(
            run(&["--proxy-protocol"]).proxy_from,
            Some(ProxyFrom::default())
        );
        let from = run(&["--proxy-protocol", "--proxy-from", "10.0.0.0/8"]).proxy_from;
        assert!(from.unwrap().allows("10.1.2.3".parse().unwrap()));
        assert!(usage_error(&["--proxy-from", "10.0.0.0/8"]).contains("--proxy-protocol"));
        assert!(usage_error(&["--proxy-protocol", "--proxy-from", "x"]).contains("'x'"));
        assert_eq!(run(&["--no-log"]).log, LogTarget::Off);
    }

    #[test]
    fn mistakes_are_usage_errors() {
        assert_eq!(usage_error(&["--bogus"]), "unknown option --bogus");
        assert_eq!(usage_error(&["-x"]), "unknown option -x");
        assert_eq!(
            usage_error(&["--max-line"]),
            "option --max-line needs a value"
        );
        assert_eq!(
            usage_error(&["--no-tls=yes"]),
            "option --no-tls takes no value"
        );
        assert!(usage_error(&["127.0.0.1", "http"]).contains("not a port"));
        assert!(usage_error(&["a", "1", "b"]).contains("unexpected"));
        assert!(usage_error(&["--max-line", "0"]).contains("at least 1"));
        assert!(usage_error(&["--max-clients", "-3"]).contains("at least 1"));
        assert!(usage_error(&["--idle-timeout", "soon"]).contains("seconds"));
        assert!(usage_error(&["--number", "101"]).contains("1 to 100"));
        assert!(usage_error(&["--service", "http"]).contains("unknown service"));
        assert!(usage_error(&["--listen", "::1:5"]).contains("ADDR:PORT"));
        assert!(usage_error(&["--cert", "a.pem"]).contains("together"));
        assert!(usage_error(&["--log", "x", "--no-log"]).contains("contradict"));
        assert!(usage_error(&["--name", "a;b"]).contains("name"));
        assert!(usage_error(&["--name", ""]).contains("name"));
        assert_eq!(run(&["--name", "John Q. Smith"]).name, "John Q. Smith");
    }

    #[test]
    fn help_and_version() {
        assert!(matches!(parse(&["-h"]), Ok(Command::Help)));
        assert!(matches!(parse(&["--version"]), Ok(Command::Version)));
        assert!(usage().contains("--max-clients"));
    }
}
