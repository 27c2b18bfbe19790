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
# A/B of a change: BASELINE=/path/to/an/older/securetcp adds that binary as the server `baseline`,
# run in the same rounds with the same arguments, and the summary pairs securetcp with it too.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${1:-5}
section=${2:-all}
peer=${PEER_TOKIO:-}
baseline=${BASELINE:-}
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
  local label=$1; shift
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

# One table, alternating: every server is started once (all pinned to core 0; an idle one costs
# nothing), then each round runs every load against each server in turn, so the servers are
# compared within a round (the VM's speed drifts between runs). Memory per idle connection needs a
# fresh process each, so `hold` restarts them.
single() {
  local rounds=${ROUNDS:-3}
  start cert-maker "${reactor[@]}"
  stop
  local servers=(securetcp tokio threads floor)
  declare -A cmd port_of pid_of
  cmd[securetcp]="${reactor[*]}"
  cmd[threads]="$blocking --threads 127.0.0.1 0"
  cmd[floor]="$root/target/release/examples/floor_server 127.0.0.1 0"
  if [ -n "$peer" ]; then
    cmd[tokio]="$peer --addr 127.0.0.1:0 --cert certs/server.pem --key certs/server.key --greeting --threads 1"
  else
    servers=(securetcp threads floor)
  fi
  if [ -n "$baseline" ]; then
    cmd[baseline]="$baseline 127.0.0.1 0 --no-log"
    servers=(securetcp baseline "${servers[@]:1}")
  fi
  for s in "${servers[@]}"; do
    # shellcheck disable=SC2086
    taskset -c 0 ${cmd[$s]} >"ready-$s.txt" 2>"err-$s.txt" &
    pid_of[$s]=$!
    for _ in $(seq 100); do grep -q listening "ready-$s.txt" 2>/dev/null && break; sleep 0.1; done
    port_of[$s]=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "ready-$s.txt" | head -1)
    [ -n "${port_of[$s]}" ] || { echo "$s did not start"; cat "err-$s.txt"; exit 1; }
  done
  local loads=(
    "rr c100 d1|rr --conns 100 --depth 1 --secs $secs"
    "rr c100 d16|rr --conns 100 --depth 16 --secs $secs"
    "rr c1000 d1|rr --conns 1000 --depth 1 --secs $secs"
    "rr c1000 48k/s|rr --conns 1000 --depth 1 --rate 48000 --secs $secs"
    "connect full|connect --conns 8 --secs $secs --no-resume"
    "connect resumed|connect --conns 8 --secs $secs"
  )
  for round in $(seq "$rounds"); do
    for entry in "${loads[@]}"; do
      label=${entry%%|*}
      # shellcheck disable=SC2206
      args=(${entry#*|})
      for s in "${servers[@]}"; do
        # The floor and the threads server only take part in the request loads they can serve.
        case "$s/$label" in floor/connect*|floor/*c1000*|threads/*c1000*) continue ;; esac
        name=$s pid=${pid_of[$s]} port=${port_of[$s]}
        if [ "$s" = floor ]; then cp ready-floor.txt ready.txt; else cp "ready-$s.txt" ready.txt; fi
        load "$label #$round" "${args[@]}"
      done
    done
  done
  for s in "${servers[@]}"; do kill "${pid_of[$s]}" 2>/dev/null || true; wait "${pid_of[$s]}" 2>/dev/null || true; done
  pid=""
  # Idle TLS connections: a fresh process per server, 10,000 held, RSS per connection.
  for s in "${servers[@]}"; do
    [ "$s" = floor ] && continue
    # shellcheck disable=SC2086
    start "$s" ${cmd[$s]}
    load "hold 10000" hold --conns 10000
  done
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
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{'server':<14} {'run':<20} {'rate/s':>10} {'p50 us':>8} {'p99 us':>8} {'p99.9 us':>9} {'srv CPU us/op':>14} {'RSS B/conn':>11} {'errors':>6}")
for r in rows:
    if "error" in r:
        print(f"{r['server']:<14} {r['run']:<20} failed: {r['error'][:80]}")
        continue
    x = r["result"]
    f = lambda v, d=0: "-" if v is None else f"{v:.{d}f}"
    print(f"{r['server']:<14} {r['run']:<20} {f(x['rate']):>10} {f(x['p50_us']):>8} {f(x['p99_us']):>8} {f(x['p999_us']):>9} "
          f"{f(x['server_cpu_us_per_op'], 2):>14} {f(x['server_rss_bytes_per_conn']):>11} {x['errors']:>6}")
# Rounds: the median and range of each figure, and securetcp / tokio paired within each round.
groups = {}
for r in rows:
    if "error" in r or " #" not in r["run"]:
        continue
    load, rnd = r["run"].rsplit(" #", 1)
    groups.setdefault((r["server"], load), {})[rnd] = r["result"]
if groups:
    print()
    print(f"{'server':<12} {'load':<16} {'CPU us/op median (range)':>26} {'p99 us median':>14} {'/ tokio, per round':>28} {'median':>7}")
    for (server, load), by_round in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        cpu = [v["server_cpu_us_per_op"] for v in by_round.values() if v["server_cpu_us_per_op"] is not None]
        p99 = [v["p99_us"] for v in by_round.values() if v["p99_us"] is not None]
        def paired(other):
            ratios = []
            for rnd, v in sorted(by_round.items()):
                t = groups.get((other, load), {}).get(rnd)
                if t and v["server_cpu_us_per_op"] and t["server_cpu_us_per_op"]:
                    ratios.append(v["server_cpu_us_per_op"] / t["server_cpu_us_per_op"])
            return ratios
        ratios = paired("tokio")
        cpu_s = f"{statistics.median(cpu):.2f} ({min(cpu):.2f}-{max(cpu):.2f})" if cpu else "-"
        p99_s = f"{statistics.median(p99):.0f}" if p99 else "-"
        rat_s = " ".join(f"{x:.2f}" for x in ratios) if ratios else "-"
        med = f"{statistics.median(ratios):.2f}" if ratios else "-"
        print(f"{server:<12} {load:<16} {cpu_s:>26} {p99_s:>14} {rat_s:>28} {med:>7}")
        if server == "securetcp" and groups.get(("baseline", load)):
            ab = paired("baseline")
            if ab:
                print(f"{'  / baseline':<29} {'':>26} {'':>14} {' '.join(f'{x:.2f}' for x in ab):>28} {statistics.median(ab):>7.2f}")
PY
