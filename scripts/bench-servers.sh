#!/usr/bin/env bash
# Runs the load generator against the three servers, the server pinned to core 0 and the load
# generator to core 1, and prints one table (plus the raw JSON lines in target/bench-servers.jsonl).
#
#   scripts/bench-servers.sh [SECONDS]      (default 5 s per run)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${1:-5}
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
  taskset -c 0 "$@" >ready.txt 2>server.err &
  pid=$!
  for _ in $(seq 100); do grep -q listening ready.txt 2>/dev/null && break; sleep 0.1; done
  port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\) .*/\1/p' ready.txt | head -1)
  [ -n "$port" ] || { echo "$name did not start"; cat server.err; exit 1; }
}

load() { # load LABEL LOADGEN-ARGS...
  label=$1; shift
  local tls=()
  grep -q "(tls," ready.txt && tls=(--ca certs/ca.pem) || tls=(--no-tls)
  if result=$(timeout 300 taskset -c 1 "$root/target/release/examples/loadgen" "$@" --addr "127.0.0.1:$port" \
      "${tls[@]}" --pid "$pid" --json 2>err.txt); then
    echo "{\"server\":\"$name\",\"run\":\"$label\",\"result\":$result}" >>"$out"
  else
    echo "{\"server\":\"$name\",\"run\":\"$label\",\"error\":\"$(tr -d '"\n' <err.txt)\"}" >>"$out"
  fi
}

reactor=("$root/target/release/securetcp" 127.0.0.1 0 --no-log)
blocking="$root/target/release/examples/blocking_server"

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
