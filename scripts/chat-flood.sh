#!/usr/bin/env bash
# scripts/chat-flood.sh [RUNS] [-- SERVER ARGS...]: one chat member floods the room while another
# member's messages are timed, measured on loopback against the release server.
#
# For each flood line size (64 bytes, and 4000: near --max-line), RUNS times (default 3), each
# against a fresh `securetcp --service chat` with SERVER ARGS: examples/chatbench with one member
# sending 200 timestamped messages a second for SECS seconds (default 4), 2 receivers timing
# them, and one more member (--flooders 1) sending lines as fast as the server takes them. A run
# without the flood comes first, for comparison. Each run prints chatbench's lines: latency p50,
# p99 and max of the timed member's messages at the receivers. Goal: p99 under 5 ms while one
# member floods.
set -euo pipefail
RUNS=${1:-3}
shift || true
[ "${1:-}" = -- ] && shift
SECS=${SECS:-4}
repo=$(cd "$(dirname "$0")/.." && pwd)

cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin securetcp --example chatbench
server="$repo/target/release/securetcp"
bench="$repo/target/release/examples/chatbench"
run=$(mktemp -d /tmp/securetcp-chat-flood.XXXXXX)
server_pid=
stop() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  server_pid=
}
trap 'stop; rm -rf "$run"' EXIT

start() {
  stop
  : >"$run/ready"
  (cd "$run" && exec "$server" --service chat --no-log "$@" 127.0.0.1 0 >"$run/ready" 2>"$run/stderr") &
  server_pid=$!
  for _ in $(seq 100); do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$run/ready")
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  echo "chat-flood.sh: the server did not start:" >&2
  cat "$run/stderr" >&2
  exit 1
}

bench() {
  "$bench" --send "127.0.0.1:$port" --receive "127.0.0.1:$port" --ca "$run/certs/ca.pem" \
    --receivers 2 --rate 200 --secs "$SECS" "$@"
}

echo "machine: $(nproc) cores, $(uname -sr); server args: ${*:-(none)}"
for _ in $(seq "$RUNS"); do
  start "$@"
  echo "-- no flood"; bench
  echo "-- one member floods, 64-byte lines"; bench --flooders 1 --flood-size 64
  start "$@"
  echo "-- one member floods, 4000-byte lines"; bench --flooders 1 --flood-size 4000
done
