#!/usr/bin/env bash
# Parley's whole loop on this machine: sets up what is missing, builds Parley, starts a local
# Apache Kafka broker, starts `parley run` against it, plays the sample conversations in
# examples/conversations/ through Kafka and prints them as a transcript (customer line, reply,
# escalations and order requests), then shows a few metrics and stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked
parley="$CARGO_TARGET_DIR/release/parley"

work="$(mktemp -d "${TMPDIR:-/tmp}/parley-demo.XXXXXX")"
service_pid=""
cleanup() {
  if [[ -n "$service_pid" ]] && kill -0 "$service_pid" 2>/dev/null; then
    kill -TERM "$service_pid" 2>/dev/null || true
    wait "$service_pid" 2>/dev/null || true
  fi
  bash scripts/kafka.sh stop "$work/kafka" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "Starting a local Apache Kafka broker (jars from Maven Central, cached)..."
mkdir -p "$work/kafka"
brokers="$(bash scripts/kafka.sh start "$work/kafka" --watch-pid $$ | tail -n 1)"
echo "Kafka is up at $brokers"

metrics_addr="127.0.0.1:${PARLEY_DEMO_METRICS_PORT:-9898}"
"$parley" run --brokers "$brokers" --state-dir "$work/state" --metrics-addr "$metrics_addr" \
  --partitions 3 2> "$work/parley.log" &
service_pid=$!
echo "Starting parley run (log: $work/parley.log)..."
for _ in $(seq 1 300); do
  if ! kill -0 "$service_pid" 2>/dev/null; then
    cat "$work/parley.log" >&2
    echo "parley run exited" >&2
    exit 1
  fi
  if curl -fs "http://$metrics_addr/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
curl -fs "http://$metrics_addr/readyz" >/dev/null || { cat "$work/parley.log" >&2; exit 1; }
echo "Parley is ready. Publishing the demo shop's articles and catalogue (examples/kb/):"
"$parley" kb load --brokers "$brokers" examples/kb/
# The service embeds and indexes them as they arrive; wait until it has all of them.
expected="$(cat examples/kb/*.jsonl | grep -c .)"
for _ in $(seq 1 600); do
  docs="$( (curl -fs "http://$metrics_addr/metrics" || true) | awk '/^parley_knowledge_documents/ { n += $2 } END { print n + 0 }')"
  [ "$docs" -ge "$expected" ] && break
  sleep 0.2
done
echo "Parley holds $docs of the $expected articles and products."
echo "Playing examples/conversations/ through Kafka:"

"$parley" converse --transcript --brokers "$brokers" examples/conversations/ examples/kb-conversations/

echo
echo "Some of Parley's metrics (http://$metrics_addr/metrics):"
curl -fs "http://$metrics_addr/metrics" |
  grep -E '^parley_(messages_total|escalations_total|order_requests_total|transactions_total|inference_duration_seconds_(sum|count)|end_to_end_latency_seconds_(sum|count))' || true
