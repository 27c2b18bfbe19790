//! Line framing on any bytes in any split: never a panic, never more than the limit held, and
//! the same frames as when the bytes arrive in one piece.
#![no_main]

use libfuzzer_sys::fuzz_target;
use securetcp::line::{Frame, LineBuffer};

fn frames(max: usize, pieces: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut buffer = LineBuffer::new(max);
    let mut out = Vec::new();
    for piece in pieces {
        buffer.feed(piece, |frame| {
            out.push(match frame {
                Frame::Line(l) => l.to_vec(),
                Frame::TooLong => b"<too long>".to_vec(),
            });
            true
        });
        assert!(buffer.pending() <= max);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let max = usize::from(control % 64) + 1;
    let cut = usize::from(control) % (input.len() + 1);
    let (a, b) = input.split_at(cut);
    assert_eq!(frames(max, &[input]), frames(max, &[a, b]));
});
