//! The hot path allocates nothing per request line: framing (`LineBuffer`), the calc service,
//! the pace (`TokenBucket`, the chat's default) and the `Outbox` reuse their buffers once warm.
//! Counted with a global allocator that tallies every allocation the measured thread makes (the
//! test harness's own threads are not counted).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use securetcp::line::{Frame, LineBuffer};
use securetcp::outbox::{Action, ConnId, Outbox};
use securetcp::rate::{Pace, TokenBucket};
use securetcp::service::Service;
use securetcp::service::calc::Calc;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set on the thread being measured: the test harness's own threads (its output capture,
    /// its slow-test timer) allocate when they like, and are not the request path.
    static MEASURED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count() {
    // `try_with`: a thread being torn down has no thread-locals left, and is not measured.
    if MEASURED.try_with(|m| m.get()).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One read's worth of pipelined requests through framing, the service and the outbox, the
/// replies gathered into one output queue as the reactor does.
fn serve_batch(
    lines: &mut LineBuffer,
    calc: &mut Calc,
    out: &mut Outbox,
    queue: &mut Vec<u8>,
    pace: &mut TokenBucket,
    input: &[u8],
) {
    let id = ConnId::new(1, 0);
    let now = std::time::Instant::now();
    lines.feed(input, |frame| {
        if let Frame::Line(bytes) = frame {
            if let Ok(text) = std::str::from_utf8(bytes) {
                calc.on_line(id, text, out);
            }
            pace.spend(bytes.len());
            let _ = pace.has_token(now);
        }
        true
    });
    for action in out.actions() {
        if let Action::Send { bytes, .. } = action {
            queue.extend_from_slice(out.bytes(bytes));
        }
    }
    out.clear();
}

#[test]
fn a_warm_request_path_allocates_nothing_per_line() {
    let mut lines = LineBuffer::new(4096);
    let mut calc = Calc::default();
    let mut out = Outbox::new();
    let mut queue = Vec::new();
    let mut pace = TokenBucket::new(Pace::CHAT_DEFAULT, std::time::Instant::now());
    // 100 requests per read, some split across reads, as a pipelining client sends them.
    let mut input = Vec::new();
    // Half the general parser's way, half the fast path's (`A OP B`, `OP A B`).
    for i in 0..50 {
        input.extend_from_slice(format!("{i} * 3 + (2 - 1) ^ 2\n").as_bytes());
        let fast = if i % 2 == 0 {
            format!("{i} * -3\n")
        } else {
            format!("+ {i} 7\n")
        };
        input.extend_from_slice(fast.as_bytes());
    }
    input.extend_from_slice(b"12 + ");
    let tail: &[u8] = b"42\n";
    // Warm up: buffers reach their working size.
    for _ in 0..3 {
        serve_batch(
            &mut lines, &mut calc, &mut out, &mut queue, &mut pace, &input,
        );
        serve_batch(&mut lines, &mut calc, &mut out, &mut queue, &mut pace, tail);
        queue.clear();
    }
    MEASURED.with(|m| m.set(true));
    for _ in 0..100 {
        serve_batch(
            &mut lines, &mut calc, &mut out, &mut queue, &mut pace, &input,
        );
        serve_batch(&mut lines, &mut calc, &mut out, &mut queue, &mut pace, tail);
        queue.clear();
    }
    MEASURED.with(|m| m.set(false));
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for 10,100 requests"
    );
    // And the replies were real.
    serve_batch(
        &mut lines,
        &mut calc,
        &mut out,
        &mut queue,
        &mut pace,
        b"12 + 42\n",
    );
    assert_eq!(queue, b"OK 54\n");
}
