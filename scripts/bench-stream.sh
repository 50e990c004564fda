#!/usr/bin/env bash
# End-to-end benchmark of the service on this machine: a local Kafka broker, `parley run`, and
# `parley loadgen` twice: a flood (throughput) and a steady offered rate (latency).
# Usage: scripts/bench-stream.sh [MESSAGES] [RATE]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked
parley="$CARGO_TARGET_DIR/release/parley"
messages="${1:-3000}"
rate="${2:-100}"

work="$(mktemp -d "${TMPDIR:-/tmp}/parley-bench.XXXXXX")"
service_pid=""
cleanup() {
  [[ -n "$service_pid" ]] && kill -TERM "$service_pid" 2>/dev/null && wait "$service_pid" 2>/dev/null || true
  bash scripts/kafka.sh stop "$work/kafka" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/kafka"
brokers="$(bash scripts/kafka.sh start "$work/kafka" --watch-pid $$ | tail -n 1)"
# A free port unless one is given, so a demo or another run on this machine is no obstacle.
port="${PARLEY_BENCH_METRICS_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
metrics="127.0.0.1:$port"
log="${PARLEY_BENCH_LOG:-$work/parley.log}"
"$parley" run --brokers "$brokers" --state-dir "$work/state" --metrics-addr "$metrics" \
  --partitions 6 2> "$log" &
service_pid=$!
# The service creates its topics on this fresh broker and waits for their leaders; ready
# means it has its partitions and the orders table has caught up.
ready=""
for _ in $(seq 1 600); do
  curl -fs "http://$metrics/readyz" >/dev/null 2>&1 && { ready=1; break; }
  kill -0 "$service_pid" 2>/dev/null || { echo "parley run exited:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.2
done
[[ -n "$ready" ]] || { echo "parley run not ready after 120 s:" >&2; cat "$log" >&2; exit 1; }
echo "machine: $(nproc) cores; broker, service and load generator all on it"
"$parley" loadgen --brokers "$brokers" --messages "$messages" --conversations 300
"$parley" loadgen --brokers "$brokers" --messages $((rate * 10)) --conversations 300 --rate "$rate"
curl -fs "http://$metrics/metrics" | grep -E '^parley_(batch_size|inference_duration_seconds|transaction_duration_seconds)_(sum|count)'
