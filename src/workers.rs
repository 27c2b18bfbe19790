//! The worker set: `--workers N` complete reactors, each on a thread of its own with its own
//! `mio::Poll`, its own `SO_REUSEPORT` listening socket per address (the kernel spreads new
//! connections over them) and its own connections. Nothing is shared on the request path.
//!
//! What the workers do share is [`Shared`] (`shared.rs`), and each use is a single atomic
//! operation or a rare lock, never per request:
//! - the `--max-clients` count (one compare-and-swap per accepted connection, exact under
//!   concurrent accepts) and the connection serials (`conn=` ids unique in the process);
//! - the greeted count, for `--exit-when-empty`;
//! - the chat room: its directory (`bus::Directory`, locked at login, logout and `who`), the room
//!   lines each worker hands the others once per loop turn (a channel and a `mio::Waker` per
//!   worker), and one "congested" flag per worker, so a member far behind on worker 2 slows the
//!   senders on worker 1 as it would on its own worker;
//! - the log writer (one file; each worker formats into a buffer of its own) and the TLS set-up.
//!
//! Worker 0 runs on the main thread and also owns the signals: SIGINT/SIGTERM there (or a service
//! asking, or `--exit-when-empty`) sends every worker `Shutdown`, and each closes its own clients.
//! `--workers 1` is the one-thread server: one reactor on the main thread, no other worker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;

use mio::{Poll, Waker};

use crate::bus::Directory;
use crate::config::Config;
use crate::log::Log;
use crate::reactor::{Reactor, WAKER_TOKEN, WorkerParts};
use crate::scrape::Scrape;
use crate::service;
use crate::shared::Shared;
use crate::tls::{ServerTls, TlsFiles};

/// Binds every worker's listeners, prints the ready lines, runs the workers until shutdown and
/// waits for them all. Worker 0 runs on this thread.
pub fn serve(
    config: &Config,
    tls: Option<(ServerTls, TlsFiles)>,
    log: Log,
    passed: Option<Vec<std::net::TcpListener>>,
) -> Result<(), String> {
    let (loaded, tls_files) = tls.unzip();
    let tls = loaded.as_ref().map(|loaded| Arc::clone(&loaded.config));
    let workers = config.workers.max(1);
    let shared = Shared::configured(
        workers,
        config.max_clients,
        config.max_per_ip,
        config.metrics.is_some(),
    );
    shared.set_output_budget(config.max_output_memory);
    let room = Directory::new();
    let mut main_log = log.another();
    if let (Some(loaded), Some(files)) = (&loaded, &tls_files) {
        // SPEC: a certificate expiring within 14 days (or expired) is warned of at start, and
        // served all the same (refused only at reload).
        shared.set_certificate(loaded.validity);
        if let Some(warning) = files.expiry_warning(loaded) {
            crate::reactor::log_expiry(&mut main_log, &warning);
        }
    }
    let listeners = match passed {
        // Socket activation: systemd's sockets, not the command line's addresses.
        Some(sockets) => crate::listen::from_passed(sockets, workers)?,
        None => crate::listen::bind_all(&config.listen, workers)?,
    };
    let mut metrics = match &config.metrics {
        Some(spec) => Some(crate::listen::bind_one(spec)?),
        None => None,
    };
    let metrics_addr = metrics.as_ref().map(|(_, addr)| *addr);

    let mut parts = Vec::with_capacity(workers);
    let mut peers = Vec::with_capacity(workers);
    for (index, listeners) in listeners.sockets.into_iter().enumerate() {
        let poll = Poll::new().map_err(|e| format!("cannot create a poll: {e}"))?;
        let waker = Waker::new(poll.registry(), WAKER_TOKEN)
            .map_err(|e| format!("cannot create a waker: {e}"))?;
        let (inbox_tx, inbox) = mpsc::channel();
        peers.push((inbox_tx, waker));
        parts.push(WorkerParts {
            index,
            poll,
            listeners,
            inbox,
            shared: Arc::clone(&shared),
            // Worker 0 serves the metrics endpoint: scrapes are rare, and it sums every worker.
            metrics: metrics.take().map(|(listener, _)| {
                let scrape = Scrape::new(Arc::clone(&shared), Arc::clone(&room));
                (listener, Box::new(scrape) as Box<dyn service::Service>)
            }),
            room: Arc::clone(&room),
        });
    }
    shared.link(peers);

    let mut reactors = Vec::with_capacity(workers);
    let mut log = Some(log);
    for part in parts {
        let service = service::create(config.service, &config.name, config.number, &room);
        let worker_log = match part.index {
            0 => log.take().unwrap_or_else(Log::off),
            _ => main_log.another(),
        };
        // Worker 0 owns the signals, so it reloads the TLS files on SIGHUP.
        let reload = (part.index == 0).then(|| tls_files.clone()).flatten();
        reactors.push(Reactor::new(
            config,
            part,
            (tls.clone(), reload),
            service,
            worker_log,
        )?);
    }
    announce(
        config,
        &listeners.addrs,
        tls.is_some(),
        workers,
        &mut main_log,
    )?;
    if let Some(addr) = metrics_addr {
        announce_metrics(addr, &mut main_log)?;
    }
    crate::systemd::notify("READY=1");

    let mut reactors = reactors.into_iter();
    let first = reactors.next().ok_or("no worker to run")?;
    let threads: Vec<_> = reactors
        .enumerate()
        .map(|(i, reactor)| {
            std::thread::Builder::new()
                .name(format!("worker-{}", i + 1))
                .spawn(move || reactor.run())
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot start a worker thread: {e}"))?;
    let mut result = first.run();
    if result.is_err() {
        shared.shutdown_all(); // worker 0 failed: the process must not go on half-served
    }
    for thread in threads {
        let outcome = thread
            .join()
            .unwrap_or_else(|_| Err("a worker stopped unexpectedly".to_string()));
        if result.is_ok() {
            result = outcome;
        }
    }
    main_log.set_time(std::time::SystemTime::now()); // its clock was last set at start
    main_log.line(format_args!("event=stop"));
    main_log.finish();
    result
}

/// The metrics endpoint's ready line, after the service's.
fn announce_metrics(addr: SocketAddr, log: &mut Log) -> Result<(), String> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {addr} (http, metrics)")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write the ready line: {e}"))?;
    log.line(format_args!(
        "event=listen addr={addr} mode=http service=metrics"
    ));
    log.flush(); // now, beside the service's listen line, not at the stop
    Ok(())
}

/// The ready lines on stdout (flushed: scripts and tests wait for them), and the log's start.
fn announce(
    config: &Config,
    addrs: &[SocketAddr],
    tls: bool,
    workers: usize,
    log: &mut Log,
) -> Result<(), String> {
    use std::io::Write;
    let mode = if tls { "tls" } else { "plain" };
    let count = match workers {
        1 => String::new(),
        n => format!(", {n} workers"),
    };
    let mut stdout = std::io::stdout().lock();
    for addr in addrs {
        writeln!(
            stdout,
            "listening on {addr} ({mode}, {}{count})",
            config.service
        )
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write the ready line: {e}"))?;
        log.line(format_args!(
            "event=listen addr={addr} mode={mode} service={} workers={workers}",
            config.service
        ));
    }
    log.flush();
    Ok(())
}
