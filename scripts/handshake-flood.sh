#!/usr/bin/env bash
# scripts/handshake-flood.sh [RUNS]: the handshake flood of the "Under attack" contract,
# measured on loopback against the release server.
#
#   1. securetcp with its defaults (--max-clients 10000): 10,000 sockets from the 10 addresses
#      127.0.0.2 .. 127.0.0.11 connect and never send a byte; then 200 real TLS clients
#      (4 at a time) each connect, read the greeting and ask `+ 2 3`.
#   2. securetcp --max-clients 1000: 1,200 such sockets, then 20 real clients.
#
# Each case runs RUNS times (default 3), each against a fresh server; every run prints one line
# from examples/flood.rs (served/total and the share). Goal: at least 99% served.
# Environment: SILENT, CLIENTS (case 1 sizes), REOPEN=1 (the flood reopens every socket the
# server closes, so it keeps its size while the real clients run), PEER_TOKIO=/path/to/peer-tokio
# (the tokio + tokio-rustls yardstick, kept outside this repo: case 1 is run against it too, in
# turn with securetcp, so the real clients' p50/p99 compare within one run).
# Needs a descriptor limit (ulimit -Hn) above 10,000 for the flood and for the server.
set -euo pipefail
RUNS=${1:-3}
SILENT=${SILENT:-10000}
CLIENTS=${CLIENTS:-200}
reopen=()
[ "${REOPEN:-0}" = 1 ] && reopen=(--reopen)
repo=$(cd "$(dirname "$0")/.." && pwd)

cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin securetcp --example flood
server="$repo/target/release/securetcp"
flood="$repo/target/release/examples/flood"
run=$(mktemp -d /tmp/securetcp-flood.XXXXXX)
server_pid=
stop() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
}
trap 'stop; rm -rf "$run"' EXIT
ulimit -n "$(ulimit -Hn)"

# Starts the server in $run with ARGS on a free port; sets server_pid and port.
start() {
  stop
  : >"$run/ready"
  (cd "$run" && exec "$server" "$@" 127.0.0.1 0 >"$run/ready" 2>"$run/stderr") &
  server_pid=$!
  wait_ready
}

# Starts the tokio yardstick in $run on a free port, with securetcp's development certificate.
start_tokio() {
  stop
  : >"$run/ready"
  (cd "$run" && exec "$PEER_TOKIO" --addr 127.0.0.1:0 --cert certs/server.pem --key certs/server.key \
    --greeting --threads 1 >"$run/ready" 2>"$run/stderr") &
  server_pid=$!
  wait_ready
}

wait_ready() {
  for _ in $(seq 100); do
    port=$(sed -n 's/^.*listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$run/ready")
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  echo "handshake-flood.sh: the server did not start:" >&2
  cat "$run/stderr" >&2
  exit 1
}

echo "machine: $(nproc) cores, $(uname -sr); securetcp $("$server" --version)"
echo "== defaults, $SILENT silent sockets from 10 addresses, $CLIENTS real clients"
for _ in $(seq "$RUNS"); do
  start
  echo -n "securetcp: "
  "$flood" --addr "127.0.0.1:$port" --ca "$run/certs/ca.pem" --silent "$SILENT" --sources 10 \
    --clients "$CLIENTS" --threads 4 "${reopen[@]}"
  if [ -n "${PEER_TOKIO:-}" ]; then
    start_tokio
    echo -n "tokio-rustls: "
    "$flood" --addr "127.0.0.1:$port" --ca "$run/certs/ca.pem" --silent "$SILENT" --sources 10 \
      --clients "$CLIENTS" --threads 4 "${reopen[@]}"
  fi
done
echo "== --max-clients 1000, 1200 silent sockets from 10 addresses, 20 real clients"
for _ in $(seq "$RUNS"); do
  start --max-clients 1000
  "$flood" --addr "127.0.0.1:$port" --ca "$run/certs/ca.pem" --silent 1200 --sources 10 \
    --clients 20 --threads 4 "${reopen[@]}"
done
