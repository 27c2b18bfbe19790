#!/usr/bin/env bash
# scripts/cluster.sh [N] [SERVICE]: N securetcp instances (default 2) behind HAProxy on this
# machine, the chat room (SERVICE chat, the default) spanning them through Redis.
#
#   clients -> HAProxy (TCP mode, TLS passed through, send-proxy-v2, health checks)
#           -> N instances x WORKERS workers (--proxy-protocol; --chat-redis for chat)
#           -> redis-server (the chat room's pub/sub)
#
# Environment: FRONT (default 127.0.0.1:5000), FIRST_PORT (instances listen on FIRST_PORT,
# FIRST_PORT+1, ...; default 5101), WORKERS (per instance, default 1), REDIS_PORT (default 6390;
# a Redis already there is used as it is), REDIS_PASSWORD (the Redis started here requires it, as
# a production Redis does; default: a random one, kept in the run directory's redis.conf, mode
# 0600; the instances get it through SECURETCP_REDIS_PASSWORD, so `ps` never shows it; for a
# Redis already there, its password, empty for none). Needs haproxy and redis-server (Debian
# packages of the same names). Everything runs in a fresh directory it prints; Ctrl-C stops it all.
set -euo pipefail
N=${1:-2}
SERVICE=${2:-chat}
FRONT=${FRONT:-127.0.0.1:5000}
FIRST_PORT=${FIRST_PORT:-5101}
WORKERS=${WORKERS:-1}
REDIS_PORT=${REDIS_PORT:-6390}
repo=$(cd "$(dirname "$0")/.." && pwd)

for program in haproxy redis-server; do
  command -v "$program" >/dev/null || { echo "cluster.sh: $program is missing (apt-get install $program)" >&2; exit 1; }
done
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
server="$repo/target/release/securetcp"
run=$(mktemp -d /tmp/securetcp-cluster.XXXXXX)
pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT
trap 'exit 0' INT TERM

args=(--service "$SERVICE" --workers "$WORKERS" --proxy-protocol)
if [ "$SERVICE" = chat ]; then
  # redis-cli reads the password from REDISCLI_AUTH, securetcp from SECURETCP_REDIS_PASSWORD.
  redis_answers() { [ "$(REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    REDIS_PASSWORD=${REDIS_PASSWORD:-}
    redis_answers || { echo "cluster.sh: the Redis on port $REDIS_PORT does not take REDIS_PASSWORD" >&2; exit 1; }
  else
    REDIS_PASSWORD=${REDIS_PASSWORD:-$(head -c 18 /dev/urandom | base64 | tr -d '/+=')}
    (umask 077 && printf 'requirepass "%s"\n' "$REDIS_PASSWORD" > "$run/redis.conf")
    redis-server "$run/redis.conf" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
      --logfile "$run/redis.log" &
    pids+=($!)
    for _ in $(seq 1 50); do redis_answers && break; sleep 0.1; done
  fi
  export SECURETCP_REDIS_PASSWORD="$REDIS_PASSWORD"
  args+=(--chat-redis "redis://127.0.0.1:$REDIS_PORT")
fi

# Instance 1 writes the development certificates into $run/certs; the others use them.
backends=""
for i in $(seq 1 "$N"); do
  port=$((FIRST_PORT + i - 1))
  (cd "$run" && exec "$server" "${args[@]}" --log "instance-$i.log" 127.0.0.1 "$port") \
    > "$run/instance-$i.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q '^listening' "$run/instance-$i.out" && break; sleep 0.1; done
  grep -q '^listening' "$run/instance-$i.out" || { cat "$run/instance-$i.out" >&2; exit 1; }
  backends+="  server instance-$i 127.0.0.1:$port send-proxy-v2 check inter 1s fall 2 rise 2"$'\n'
done

cat > "$run/haproxy.cfg" <<CFG
defaults
  mode tcp
  timeout connect 2s
  timeout client 10m
  timeout server 10m
  retries 2
  option redispatch

frontend securetcp
  bind $FRONT
  default_backend instances

backend instances
  balance leastconn
$backends
CFG
haproxy -f "$run/haproxy.cfg" -db > "$run/haproxy.out" 2>&1 &
pids+=($!)
sleep 0.5

plural() { if [ "$1" = 1 ]; then echo "1 $2"; else echo "$1 ${2}s"; fi; }
echo "front: $FRONT ($SERVICE, TLS passed through to $(plural "$N" instance) of $(plural "$WORKERS" worker) each)"
echo "run directory: $run (instance-N.log, haproxy.cfg)"
echo "try: cargo run --release --bin securetcp-client -- --ca $run/certs/ca.pem ${FRONT%:*} ${FRONT##*:}"
echo "Ctrl-C stops everything."
wait
