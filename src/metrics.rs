//! The server's counters and the Prometheus text format a scrape of `--metrics` gets.
//!
//! Each worker counts in plain integers on its own thread ([`Counters`]: no atomic operation on
//! the request path) and publishes them once per loop turn into its own cache-line-aligned
//! [`Published`] slot; a scrape sums the slots of every worker. Written by hand rather than with
//! the `prometheus-client` crate: the format is a few lines of text per series, the series are
//! fixed, and a registry of dynamic metric objects would put its own atomics on the request path.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::conn::{CloseReason, Traffic};
use crate::service::Service;

/// Upper bounds of the handshake-time histogram buckets, in seconds (`+Inf` is implied).
pub const HANDSHAKE_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// How often the paused-readers gauge is counted (a scan of the connection table).
const PAUSED_SCAN_EVERY: Duration = Duration::from_secs(1);

/// What one reactor counts, and the scrape's service (worker 0 with `--metrics`).
pub struct Meter {
    pub counters: Counters,
    pub traffic: Traffic,
    pub scrape: Option<Box<dyn Service>>,
    paused_scanned_at: Option<Instant>,
}

impl Meter {
    pub fn new(scrape: Option<Box<dyn Service>>) -> Meter {
        Meter {
            counters: Counters::default(),
            traffic: Traffic::default(),
            scrape,
            paused_scanned_at: None,
        }
    }

    /// This worker's counters as of now, to publish for a scrape (once per loop turn, with
    /// `--metrics`). `paused` counts the connections not read now; it is called at most once a
    /// second.
    pub fn snapshot(
        &mut self,
        connections: usize,
        now: Instant,
        log_dropped: u64,
        paused: impl FnOnce() -> u64,
    ) -> &Counters {
        let c = &mut self.counters;
        c.connections = connections as u64;
        c.bytes_received = self.traffic.received;
        c.bytes_sent = self.traffic.sent;
        c.log_dropped = log_dropped;
        if self
            .paused_scanned_at
            .is_none_or(|at| now.duration_since(at) >= PAUSED_SCAN_EVERY)
        {
            self.paused_scanned_at = Some(now);
            c.paused_readers = paused();
        }
        c
    }
}

/// One worker's counts, on its own thread.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Counters {
    /// Open connections (a gauge).
    pub connections: u64,
    pub connections_total: u64,
    pub handshakes_ok: u64,
    pub handshakes_failed: u64,
    pub requests: u64,
    pub closes: [u64; CloseReason::ALL.len()],
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub log_dropped: u64,
    /// Connections not read right now because they are behind (a gauge).
    pub paused_readers: u64,
    /// Memory held by the output buffers of all connections, in bytes (a gauge kept in `Shared`,
    /// not published per worker).
    pub output_memory: u64,
    /// Handshakes that took at most `HANDSHAKE_BUCKETS[i]`, not cumulative; the last is `+Inf`.
    pub handshake_buckets: [u64; HANDSHAKE_BUCKETS.len() + 1],
    pub handshake_seconds_micros: u64,
}

impl Counters {
    pub fn handshake_done(&mut self, took: Duration) {
        self.handshakes_ok += 1;
        let secs = took.as_secs_f64();
        let bucket = HANDSHAKE_BUCKETS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(HANDSHAKE_BUCKETS.len());
        self.handshake_buckets[bucket] += 1;
        self.handshake_seconds_micros += took.as_micros() as u64;
    }

    pub fn closed(&mut self, reason: CloseReason) {
        self.closes[reason as usize] += 1;
    }
}

/// The number of `u64` fields `Counters` publishes.
const FIELDS: usize = 10 + CloseReason::ALL.len() + HANDSHAKE_BUCKETS.len() + 1;

/// One worker's counters as the scrape reads them: written by that worker once per loop turn
/// (plain stores), read by whichever worker serves `/metrics`. Aligned so that no two workers'
/// slots share a cache line.
#[repr(align(128))]
pub struct Published {
    fields: [AtomicU64; FIELDS],
}

impl Default for Published {
    fn default() -> Published {
        Published {
            fields: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Published {
    pub fn store(&self, c: &Counters) {
        let scalars = [
            c.connections,
            c.connections_total,
            c.handshakes_ok,
            c.handshakes_failed,
            c.requests,
            c.bytes_received,
            c.bytes_sent,
            c.log_dropped,
            c.paused_readers,
            c.handshake_seconds_micros,
        ];
        let all = scalars.iter().chain(&c.closes).chain(&c.handshake_buckets);
        for (slot, value) in self.fields.iter().zip(all) {
            slot.store(*value, Ordering::Relaxed);
        }
    }

    pub fn load(&self) -> Counters {
        let v: Vec<u64> = self
            .fields
            .iter()
            .map(|f| f.load(Ordering::Relaxed))
            .collect();
        let mut c = Counters {
            connections: v[0],
            connections_total: v[1],
            handshakes_ok: v[2],
            handshakes_failed: v[3],
            requests: v[4],
            bytes_received: v[5],
            bytes_sent: v[6],
            log_dropped: v[7],
            paused_readers: v[8],
            handshake_seconds_micros: v[9],
            ..Counters::default()
        };
        let closes = &v[10..10 + c.closes.len()];
        c.closes.copy_from_slice(closes);
        let buckets = &v[10 + c.closes.len()..];
        c.handshake_buckets.copy_from_slice(buckets);
        c
    }
}

/// Sums the workers' counters.
pub fn sum(all: impl Iterator<Item = Counters>) -> Counters {
    let mut total = Counters::default();
    for c in all {
        total.connections += c.connections;
        total.connections_total += c.connections_total;
        total.handshakes_ok += c.handshakes_ok;
        total.handshakes_failed += c.handshakes_failed;
        total.requests += c.requests;
        total.bytes_received += c.bytes_received;
        total.bytes_sent += c.bytes_sent;
        total.log_dropped += c.log_dropped;
        total.paused_readers += c.paused_readers;
        total.handshake_seconds_micros += c.handshake_seconds_micros;
        for (t, x) in total.closes.iter_mut().zip(c.closes) {
            *t += x;
        }
        for (t, x) in total.handshake_buckets.iter_mut().zip(c.handshake_buckets) {
            *t += x;
        }
    }
    total
}

/// The Prometheus text format (version 0.0.4) of the process's counters.
/// `certificate_not_after`: the served server certificate's notAfter (Unix seconds), when the
/// server speaks TLS and the certificate was read.
pub fn render(
    c: &Counters,
    chat_members: usize,
    workers: usize,
    certificate_not_after: Option<i64>,
) -> String {
    let mut out = String::with_capacity(4096);
    let mut series = |name: &str, kind: &str, help: &str, lines: &[(String, String)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in lines {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let plain = |v: u64| vec![(String::new(), v.to_string())];
    // The series with one unlabelled value each.
    let scalars: [(&str, &str, &str, u64); 10] = [
        (
            "securetcp_connections",
            "gauge",
            "Client connections open now.",
            c.connections,
        ),
        (
            "securetcp_connections_total",
            "counter",
            "Client connections accepted.",
            c.connections_total,
        ),
        (
            "securetcp_requests_total",
            "counter",
            "Request lines read (each gets one reply, chat messages excepted).",
            c.requests,
        ),
        (
            "securetcp_bytes_received_total",
            "counter",
            "Bytes read from client sockets (TLS records included).",
            c.bytes_received,
        ),
        (
            "securetcp_bytes_sent_total",
            "counter",
            "Bytes written to client sockets (TLS records included).",
            c.bytes_sent,
        ),
        (
            "securetcp_log_dropped_lines_total",
            "counter",
            "Log lines not written: the disk could not keep up, or failed (full).",
            c.log_dropped,
        ),
        (
            "securetcp_chat_members",
            "gauge",
            "Members logged in to the chat room (every worker).",
            chat_members as u64,
        ),
        (
            "securetcp_paused_readers",
            "gauge",
            "Connections not read now because they (or the chat room) are behind.",
            c.paused_readers,
        ),
        (
            "securetcp_output_buffer_bytes",
            "gauge",
            "Memory held by the output buffers of all connections: replies not yet taken by the kernel, as allocated (bounded by --max-output-memory).",
            c.output_memory,
        ),
        (
            "securetcp_workers",
            "gauge",
            "Reactor threads.",
            workers as u64,
        ),
    ];
    for (name, kind, help, value) in scalars {
        series(name, kind, help, &plain(value));
    }
    if let Some(not_after) = certificate_not_after {
        series(
            "securetcp_certificate_expiry_timestamp_seconds",
            "gauge",
            "The served certificate chain's end: the server certificate's notAfter (or a CA certificate's sent with it, if that ends sooner), in Unix seconds.",
            &[(String::new(), not_after.to_string())],
        );
    }
    series(
        "securetcp_handshakes_total",
        "counter",
        "TLS handshakes, by result.",
        &[
            (r#"{result="ok"}"#.into(), c.handshakes_ok.to_string()),
            (
                r#"{result="failed"}"#.into(),
                c.handshakes_failed.to_string(),
            ),
        ],
    );
    let mut cumulative = 0;
    let mut buckets: Vec<(String, String)> = HANDSHAKE_BUCKETS
        .iter()
        .zip(&c.handshake_buckets)
        .map(|(bound, n)| {
            cumulative += n;
            (format!("_bucket{{le=\"{bound}\"}}"), cumulative.to_string())
        })
        .collect();
    cumulative += c.handshake_buckets[HANDSHAKE_BUCKETS.len()];
    buckets.push((r#"_bucket{le="+Inf"}"#.into(), cumulative.to_string()));
    buckets.push((
        "_sum".into(),
        format!("{}", c.handshake_seconds_micros as f64 / 1e6),
    ));
    buckets.push(("_count".into(), cumulative.to_string()));
    series(
        "securetcp_handshake_seconds",
        "histogram",
        "Time from accept to a completed TLS handshake.",
        &buckets,
    );
    let closes: Vec<(String, String)> = CloseReason::ALL
        .iter()
        .map(|r| {
            (
                format!("{{reason=\"{}\"}}", r.as_str()),
                c.closes[*r as usize].to_string(),
            )
        })
        .collect();
    series(
        "securetcp_closes_total",
        "counter",
        "Connections closed, by the reason the log gives.",
        &closes,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_close_reason_has_its_index() {
        for (i, reason) in CloseReason::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, i, "{reason:?}");
        }
    }

    #[test]
    fn counters_survive_publishing_and_sum_over_workers() {
        let mut c = Counters {
            connections: 2,
            requests: 7,
            ..Counters::default()
        };
        c.closed(CloseReason::Quit);
        c.handshake_done(Duration::from_micros(700));
        c.handshake_done(Duration::from_secs(5));
        let slot = Published::default();
        slot.store(&c);
        assert_eq!(slot.load(), c);
        let total = sum([c.clone(), c.clone()].into_iter());
        assert_eq!(total.requests, 14);
        assert_eq!(total.closes[CloseReason::Quit as usize], 2);
        assert_eq!(total.handshake_buckets[1], 2); // 0.7 ms <= 1 ms
        assert_eq!(total.handshake_buckets[HANDSHAKE_BUCKETS.len()], 2); // +Inf
    }

    #[test]
    fn the_text_has_help_type_and_cumulative_buckets() {
        let mut c = Counters::default();
        c.handshake_done(Duration::from_micros(300));
        c.handshake_done(Duration::from_millis(3));
        let text = render(&c, 4, 2, Some(1_798_761_600));
        assert!(text.contains("# TYPE securetcp_handshake_seconds histogram\n"));
        assert!(text.contains("securetcp_handshake_seconds_bucket{le=\"0.0005\"} 1\n"));
        assert!(text.contains("securetcp_handshake_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("securetcp_handshake_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("securetcp_handshake_seconds_count 2\n"));
        assert!(text.contains("securetcp_chat_members 4\n"));
        assert!(text.contains("securetcp_closes_total{reason=\"slow-reader\"} 0\n"));
        assert!(text.contains(
            "# TYPE securetcp_certificate_expiry_timestamp_seconds gauge\n\
             securetcp_certificate_expiry_timestamp_seconds 1798761600\n"
        ));
        // Without TLS (or a certificate read), no such series.
        assert!(!render(&c, 4, 2, None).contains("certificate_expiry"));
    }
}
