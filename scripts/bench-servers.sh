#!/usr/bin/env bash
# Runs the load generator against the servers, the server pinned to core 0 and the load
# generator to core 1, and prints one table (plus the raw JSON lines in target/bench-servers.jsonl).
#
#   scripts/bench-servers.sh [SECONDS] [SECTION]      (default 5 s per run, all sections)
#
# SECTION: `single` (the one-thread servers side by side), `workers` (--workers 1 and 2, against
# the tokio yardstick with 1 and 2 runtime threads), or `all`.
# The tokio yardstick is a tokio + tokio-rustls calc server kept outside this repo; build it and
# give its binary as PEER_TOKIO=/path/to/peer-tokio. Without it, its rows are left out.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${1:-5}
section=${2:-all}
peer=${PEER_TOKIO:-}
cargo build --release --quiet --bins --examples
work=$(mktemp -d)
out="$root/target/bench-servers.jsonl"
: >"$out"
pid=""
stop() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  pid=""
}
trap 'stop; rm -rf "$work"' EXIT
cd "$work"

start() { # start NAME COMMAND...
  stop
  name=$1; shift
  taskset -c "${server_cores:-0}" "$@" >ready.txt 2>server.err &
  pid=$!
  for _ in $(seq 100); do grep -q listening ready.txt 2>/dev/null && break; sleep 0.1; done
  port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' ready.txt | head -1)
  [ -n "$port" ] || { echo "$name did not start"; cat server.err; exit 1; }
}

load() { # load LABEL LOADGEN-ARGS...
  label=$1; shift
  local tls=()
  grep -q "(tls" ready.txt && tls=(--ca certs/ca.pem) || tls=(--no-tls)
  if result=$(timeout 300 taskset -c "${load_cores:-1}" "$root/target/release/examples/loadgen" "$@" --addr "127.0.0.1:$port" \
      "${tls[@]}" --pid "$pid" --json 2>err.txt); then
    echo "{\"server\":\"$name\",\"run\":\"$label\",\"result\":$result}" >>"$out"
  else
    echo "{\"server\":\"$name\",\"run\":\"$label\",\"error\":\"$(tr -d '"\n' <err.txt)\"}" >>"$out"
  fi
}

reactor=("$root/target/release/securetcp" 127.0.0.1 0 --no-log)
blocking="$root/target/release/examples/blocking_server"

single() {
start reactor "${reactor[@]}"
load "rr c100 d1" rr --conns 100 --depth 1 --secs "$secs"
load "rr c100 d16" rr --conns 100 --depth 16 --secs "$secs"
load "rr c512 d1" rr --conns 512 --depth 1 --secs "$secs"
load "rr c1000 d1" rr --conns 1000 --depth 1 --secs "$secs"
load "connect full" connect --conns 8 --secs "$secs" --no-resume
load "connect resumed" connect --conns 8 --secs "$secs"
start reactor-hold "${reactor[@]}"
load "hold 10000" hold --conns 10000
start reactor-plain "${reactor[@]}" --no-tls
load "rr c100 d1" rr --conns 100 --depth 1 --secs "$secs"
load "rr c100 d16" rr --conns 100 --depth 16 --secs "$secs"
start threads "$blocking" --threads 127.0.0.1 0
load "rr c100 d1" rr --conns 100 --depth 1 --secs "$secs"
load "rr c100 d16" rr --conns 100 --depth 16 --secs "$secs"
load "rr c512 d1" rr --conns 512 --depth 1 --secs "$secs"
load "connect full" connect --conns 8 --secs "$secs" --no-resume
start iterative "$blocking" --iterative 127.0.0.1 0
load "rr c1 d1" rr --conns 1 --depth 1 --secs "$secs"
load "connect full" connect --conns 1 --secs "$secs" --no-resume
start floor "$root/target/release/examples/floor_server" 127.0.0.1 0
load "rr c100 d1" rr --conns 100 --depth 1 --secs "$secs"
start reactor-1conn "${reactor[@]}"
load "rr c1 d1" rr --conns 1 --depth 1 --secs "$secs"
stop
}

# --workers: server CPU per request with 1 and 2 workers on the same core (does shared state make
# a request dearer?), then with the two cores shared by server and load generator (what a second
# worker buys when nothing is left idle). tokio's multi-thread runtime is measured the same way.
workers() {
  # The development certificate, made by a first start, serves the tokio yardstick too.
  start cert-maker "${reactor[@]}"
  stop
  local peer_args=(--addr 127.0.0.1:0 --cert certs/server.pem --key certs/server.key --greeting)
  for n in 1 2; do
    start "reactor-w$n" "${reactor[@]}" --workers "$n"
    load "rr c100 d1 core0" rr --conns 100 --depth 1 --secs "$secs"
    load "rr c100 d16 core0" rr --conns 100 --depth 16 --secs "$secs"
    if [ -n "$peer" ]; then
      start "tokio-t$n" "$peer" "${peer_args[@]}" --threads "$n"
      load "rr c100 d1 core0" rr --conns 100 --depth 1 --secs "$secs"
      load "rr c100 d16 core0" rr --conns 100 --depth 16 --secs "$secs"
    fi
  done
  for n in 1 2; do
    server_cores=0,1 load_cores=0,1 start "reactor-w$n" "${reactor[@]}" --workers "$n"
    server_cores=0,1 load_cores=0,1 load "rr c100 d16 shared" rr --conns 100 --depth 16 --secs "$secs"
    if [ -n "$peer" ]; then
      server_cores=0,1 load_cores=0,1 start "tokio-t$n" "$peer" "${peer_args[@]}" --threads "$n"
      server_cores=0,1 load_cores=0,1 load "rr c100 d16 shared" rr --conns 100 --depth 16 --secs "$secs"
    fi
  done
  stop
}

case "$section" in
  single) single ;;
  workers) workers ;;
  all) single; workers ;;
  *) echo "unknown section '$section' (single, workers or all)"; exit 2 ;;
esac

python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{'server':<14} {'run':<16} {'rate/s':>10} {'p50 us':>8} {'p99 us':>8} {'p99.9 us':>9} {'srv CPU us/op':>14} {'RSS B/conn':>11} {'errors':>6}")
for r in rows:
    if "error" in r:
        print(f"{r['server']:<14} {r['run']:<16} failed: {r['error'][:80]}")
        continue
    x = r["result"]
    f = lambda v, d=0: "-" if v is None else f"{v:.{d}f}"
    print(f"{r['server']:<14} {r['run']:<16} {f(x['rate']):>10} {f(x['p50_us']):>8} {f(x['p99_us']):>8} {f(x['p999_us']):>9} "
          f"{f(x['server_cpu_us_per_op'], 2):>14} {f(x['server_rss_bytes_per_conn']):>11} {x['errors']:>6}")
PY
