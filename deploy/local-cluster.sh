#!/usr/bin/env bash
# Starts the scale-out topology's NATS part on this machine's loopback: a 3-node NATS cluster with
# JetStream, using the installed nats-server (several processes on separate ports, each with its
# own -sd folder), configured from deploy/nats/cluster.conf — the same file the compose file's
# nodes use. The tests use it (tests/api/relay.rs), so these files are exercised.
#
#   deploy/local-cluster.sh start [DIR] [BASE_PORT]   # nodes listen on BASE_PORT+1..3 (default 4300)
#   deploy/local-cluster.sh stop  [DIR]
#   deploy/local-cluster.sh kill-node N [DIR]          # kill -9 node N (1..3)
#   deploy/local-cluster.sh start-node N [DIR]         # start node N again with its data
#   deploy/local-cluster.sh urls [DIR]                 # the client URLs, comma-separated
#
# DIR (default ./data/cluster) holds each node's config, store, pid and log.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
nats_server="${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}"
command="${1:-}"
shift || true

node_start() {
  local dir="$1" n="$2" base
  base="$(cat "$dir/base")"
  NATS_NAME="nats-$n" NATS_HOST=127.0.0.1 NATS_PORT="$((base + n))" \
    NATS_CLUSTER_PORT="$((base + 100 + n))" NATS_STORE="$dir/node-$n/store" \
    NATS_ROUTE_1="nats-route://127.0.0.1:$((base + 101))" \
    NATS_ROUTE_2="nats-route://127.0.0.1:$((base + 102))" \
    NATS_ROUTE_3="nats-route://127.0.0.1:$((base + 103))" \
    "$nats_server" -c "$here/nats/cluster.conf" -l "$dir/node-$n/nats.log" -P "$dir/node-$n/nats.pid" \
    </dev/null >/dev/null 2>&1 &
  disown
}

node_wait() {
  local dir="$1" n="$2" port
  port="$(cat "$dir/node-$n/port")"
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "node $n did not start; see $dir/node-$n/nats.log" >&2
  return 1
}

urls() {
  local dir="$1" out=""
  for n in 1 2 3; do out="$out${out:+,}nats://127.0.0.1:$(cat "$dir/node-$n/port")"; done
  echo "$out"
}

case "$command" in
  start)
    dir="${1:-data/cluster}"
    base="${2:-4300}"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    echo "$base" > "$dir/base"
    for n in 1 2 3; do
      mkdir -p "$dir/node-$n/store"
      echo "$((base + n))" > "$dir/node-$n/port"
      node_start "$dir" "$n"
    done
    for n in 1 2 3; do node_wait "$dir" "$n"; done
    urls "$dir"
    ;;
  stop)
    dir="${1:-data/cluster}"
    for n in 1 2 3; do
      pid_file="$dir/node-$n/nats.pid"
      if [ -f "$pid_file" ]; then kill "$(cat "$pid_file")" 2>/dev/null || true; rm -f "$pid_file"; fi
    done
    ;;
  kill-node)
    n="$1"; dir="${2:-data/cluster}"
    kill -9 "$(cat "$dir/node-$n/nats.pid")"
    rm -f "$dir/node-$n/nats.pid"
    ;;
  start-node)
    n="$1"; dir="${2:-data/cluster}"
    dir="$(cd "$dir" && pwd)"
    node_start "$dir" "$n"
    node_wait "$dir" "$n"
    ;;
  urls)
    urls "${1:-data/cluster}"
    ;;
  *)
    sed -n '2,14p' "$0" >&2
    exit 2
    ;;
esac
