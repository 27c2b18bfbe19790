#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers with cargo-fuzz (libFuzzer), on stable Rust.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s each; expr line tls_records)
#
# cargo-fuzz passes nightly-only flags (-Z...) to rustc; RUSTC_BOOTSTRAP=1 lets the stable
# compiler accept them. AddressSanitizer is off (`--sanitizer none`): it needs a nightly std;
# Rust's own checks (bounds, overflow in debug assertions) still turn bugs into crashes.
# Crashes land in fuzz/artifacts/TARGET/; the corpus grows in fuzz/corpus/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(expr line tls_records)

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== installing cargo-fuzz (once)"
  cargo install cargo-fuzz --locked
fi

# fuzz/Cargo.lock is committed and kept in step with the workspace: a stale one is said here,
# instead of being rewritten under the committed file (and fetched from the network).
if ! (cd fuzz && cargo metadata --locked --format-version 1 >/dev/null 2>&1); then
  echo "fuzz/Cargo.lock is out of step with the workspace: run 'cargo metadata' in fuzz/ and commit it" >&2
  exit 1
fi
export RUSTC_BOOTSTRAP=1
for target in "${targets[@]}"; do
  echo "== fuzzing $target for ${seconds}s"
  cargo fuzz run --sanitizer none --debug-assertions "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048
done
echo "== no crash found"
