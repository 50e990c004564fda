#!/usr/bin/env bash
# Side-by-side benchmark on one local Kafka broker (not run by CI):
#   end to end  `parley run` (models/intent-en) against bench/compare/service.py, the Python
#               stack a shop would write (confluent-kafka + transformers, exactly-once);
#   transport   `parley run` with a tiny model against examples/pipe.rs, a bare exactly-once
#               rdkafka pipe: what Parley's own work costs on top of Kafka.
# Each service runs alone, on its own fresh topics and group, warmed up, and is measured by
# `parley loadgen` (a flood: replies/s; a fixed offered rate: latency from send to committed
# reply).
#
# Usage: bench/compare/e2e.sh PYTHON [FLOOD] [RATE] [SECONDS] [TRANSPORT_FLOOD] [ROUNDS]
#   PYTHON           a python with torch, transformers and confluent-kafka
#   FLOOD            messages of the end-to-end flood (default 5000)
#   RATE, SECONDS    offered rate in msgs/s and its duration (default 15 for 20 s)
#   TRANSPORT_FLOOD  messages of the transport flood (default 100000)
#   ROUNDS           rounds, each side once per round, alternating; medians shown (default 3)
set -euo pipefail
if [[ $# -lt 1 ]]; then
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0" >&2
  exit 2
fi
py="$1"
command -v "$py" >/dev/null || { echo "e2e.sh: no python at $py" >&2; exit 2; }
flood="${2:-5000}"
rate="${3:-15}"
secs="${4:-20}"
tflood="${5:-100000}"
rounds="${6:-3}"
cd "$(dirname "$0")/../.."
source scripts/setup.sh
cargo build --release --locked --bin parley --example pipe
parley="$CARGO_TARGET_DIR/release/parley"
pipe="$CARGO_TARGET_DIR/release/examples/pipe"
conversations=300
partitions=6

work="$(mktemp -d "${TMPDIR:-/tmp}/parley-compare.XXXXXX")"
service_pid=""
stop_service() {
  [[ -n "$service_pid" ]] || return 0
  kill -TERM "$service_pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$service_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$service_pid" 2>/dev/null || true
  wait "$service_pid" 2>/dev/null || true
  service_pid=""
}
cleanup() {
  stop_service
  bash scripts/kafka.sh stop "$work/kafka" >/dev/null 2>&1 || true
  [[ -n "${PARLEY_COMPARE_KEEP:-}" ]] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/kafka"
brokers="$(bash scripts/kafka.sh start "$work/kafka" --watch-pid $$ | tail -n 1)"
log() { echo "[$(date +%T)] $*" >&2; }
log "broker at $brokers; $(nproc) cores, shared by broker, service and load generator; load average $(cut -d" " -f1-3 /proc/loadavg) (other work on the machine skews every figure)"

# Topics for the services that do not create their own (Parley does, with $partitions).
create_topics() {
  "$py" - "$brokers" "$partitions" "$@" <<'EOF'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
brokers, partitions, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
admin = AdminClient({"bootstrap.servers": brokers})
for f in admin.create_topics([NewTopic(n, partitions, 1) for n in names]).values():
    f.result(30)
EOF
}

# Starts "$@" as the service under test, its stderr in $work/TAG.log, and waits until it is
# ready: for Parley /readyz, for the others a "ready" line on stderr.
start_service() {
  local tag="$1" probe="$2"
  shift 2
  "$@" 2> "$work/$tag.log" > /dev/null &
  service_pid=$!
  for _ in $(seq 1 900); do
    if [[ "$probe" == ready-line ]]; then
      grep -qE "^(service\.py|pipe): ready" "$work/$tag.log" && return 0
    else
      curl -fs "http://$probe/readyz" >/dev/null 2>&1 && return 0
    fi
    kill -0 "$service_pid" 2>/dev/null || { log "$tag exited:"; cat "$work/$tag.log" >&2; exit 1; }
    sleep 0.2
  done
  log "$tag not ready after 180 s:"
  cat "$work/$tag.log" >&2
  exit 1
}

# start_parley TAG MODEL [EXTRA ARGS...]
start_parley() {
  local tag="$1" model="$2" port
  shift 2
  port="$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  start_service "$tag" "127.0.0.1:$port" "$parley" run --brokers "$brokers" --model "$model" \
    --group-id "$tag" --transactional-id "$tag-0" --state-dir "$work/$tag-state" \
    --metrics-addr "127.0.0.1:$port" --partitions "$partitions" \
    --topic-inbound "$tag.inbound" --topic-replies "$tag.replies" \
    --topic-escalations "$tag.escalations" --topic-agent-actions "$tag.agent-actions" \
    --topic-dead-letter "$tag.dead-letter" "$@"
}

# loadgen TAG ARGS...: one measurement against TAG's topics; its output in $work/TAG.out.
loadgen() {
  local tag="$1"
  shift
  "$parley" loadgen --brokers "$brokers" --group-id "$tag" --topic-inbound "$tag.inbound" \
    --topic-replies "$tag.replies" --conversations "$conversations" --timeout-secs 600 "$@" \
    > "$work/$tag.out" 2>> "$work/$tag.loadgen.log" || log "$tag: loadgen did not get every reply"
  cat "$work/$tag.out" | sed "s/^/  $tag: /" >&2
}
replies_per_s() { sed -n 's/.* = \([0-9.]*\) replies\/s.*/\1/p' "$work/$1.out"; }
percentiles() { sed -n 's/.*p50 \([0-9]*\) ms, p95 [0-9]* ms, p99 \([0-9]*\) ms.*/\1\/\2 ms/p' "$work/$1.out"; }
ratio() { "$py" -c 'import sys; a, b = sys.argv[1:]; print(f"{float(a) / float(b):.2f}" if a and b and float(b) else "n/a")' "${1:-}" "${2:-}"; }

# Warm up (first batches pay allocation, JIT and cache misses), flood, then the offered rate.
measure_e2e() {
  local tag="$1"
  loadgen "$tag" --messages 200
  loadgen "$tag" --messages "$flood"
  replies_per_s "$tag" > "$work/$tag.flood"
  # Each reply's send time and latency, kept with PARLEY_COMPARE_KEEP: when the slow ones were.
  loadgen "$tag" --messages $((rate * secs)) --rate "$rate" \
    --latencies-out "$work/$tag.round$round.latencies"
  percentiles "$tag" > "$work/$tag.lat"
}
measure_transport() {
  local tag="$1"
  loadgen "$tag" --messages 5000
  loadgen "$tag" --messages "$tflood"
  replies_per_s "$tag" > "$work/$tag.flood"
}
# record TAG: appends this round's figures to TAG.rounds ("flood p50 p99").
record() {
  local lat p50="" p99=""
  lat="$(cat "$work/$1.lat" 2>/dev/null || true)"
  if [[ "$lat" =~ ^([0-9]+)/([0-9]+) ]]; then p50="${BASH_REMATCH[1]}"; p99="${BASH_REMATCH[2]}"; fi
  echo "$(cat "$work/$1.flood" 2>/dev/null || true) $p50 $p99" >> "$work/$1.rounds"
  mv -f "$work/$1.log" "$work/$1.round$round.log" 2>/dev/null || true
  rm -f "$work/$1.flood" "$work/$1.lat"
}
# median TAG flood|p50|p99: the median over the rounds (empty if none was measured).
median() {
  "$py" - "$work/$1.rounds" "$2" <<'EOF'
import statistics, sys
col = {"flood": 0, "p50": 1, "p99": 2}[sys.argv[2]]
vals = []
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) > col:
        vals.append(float(f[col]))
if vals:
    m = statistics.median(vals)
    print(f"{m:.0f}" if col else f"{m:.1f}")
EOF
}

# Rounds alternate the two sides (the broker warms up over the run, which would favour whichever
# side went last); each figure is the median over the rounds.
t0=$SECONDS
create_topics python-e2e.inbound python-e2e.replies pipe.inbound pipe.replies
"$py" bench/compare/tiny_model.py models/intent-en "$work/tiny-model" 2> "$work/tiny-model.log"
for round in $(seq 1 "$rounds"); do
  log "round $round/$rounds, end to end: parley run (models/intent-en)"
  start_parley parley-e2e models/intent-en
  measure_e2e parley-e2e
  stop_service
  record parley-e2e

  log "round $round/$rounds, end to end: python service (transformers, models/intent-en)"
  start_service python-e2e ready-line "$py" bench/compare/service.py --brokers "$brokers" \
    --topic-inbound python-e2e.inbound --topic-replies python-e2e.replies \
    --group-id python-e2e --model models/intent-en
  measure_e2e python-e2e
  stop_service
  record python-e2e
done
t1=$SECONDS
for round in $(seq 1 "$rounds"); do
  log "round $round/$rounds, transport: parley run with a tiny model"
  # Batches of the pipe's size and wait (examples/pipe.rs, 500 and 5 ms). Parley runs its own
  # defaults otherwise: under the flood that is up to 4 batches per transaction
  # (`max_batches_per_transaction`), where the pipe commits each batch.
  start_parley parley-tiny "$work/tiny-model" --max-batch-size 500 --max-batch-wait-ms 5
  measure_transport parley-tiny
  stop_service
  record parley-tiny

  log "round $round/$rounds, transport: examples/pipe.rs"
  start_service pipe ready-line "$pipe" "$brokers" pipe.inbound pipe.replies pipe
  measure_transport pipe
  stop_service
  record pipe
done
t2=$SECONDS
parley_e2e_flood="$(median parley-e2e flood)"; python_e2e_flood="$(median python-e2e flood)"
parley_e2e_lat="$(median parley-e2e p50)/$(median parley-e2e p99) ms"
python_e2e_lat="$(median python-e2e p50)/$(median python-e2e p99) ms"
parley_tiny_flood="$(median parley-tiny flood)"; pipe_flood="$(median pipe flood)"

echo
echo "machine: $(nproc) cores, broker + service + loadgen on it; $conversations conversations, $partitions partitions; median of $rounds alternating rounds"
printf '%-26s | %-28s | %-28s | %s\n' \
  "end-to-end flood ($flood)" "parley ${parley_e2e_flood:-?} replies/s" \
  "python ${python_e2e_flood:-?} replies/s" "ratio $(ratio "${parley_e2e_flood:-}" "${python_e2e_flood:-}")"
printf '%-26s | %-28s | %-28s |\n' \
  "latency at $rate msg/s ${secs}s" "parley p50/p99 ${parley_e2e_lat:-?}" "python p50/p99 ${python_e2e_lat:-?}"
printf '%-26s | %-28s | %-28s | %s\n' \
  "transport flood ($tflood)" "parley-tiny ${parley_tiny_flood:-?} msgs/s" \
  "raw pipe ${pipe_flood:-?} msgs/s" "ratio $(ratio "${parley_tiny_flood:-}" "${pipe_flood:-}")"
echo "durations: end to end $((t1 - t0)) s, transport $((t2 - t1)) s"
"$py" - "$rate" "${parley_e2e_flood:-0}" "${python_e2e_flood:-0}" <<'EOF'
import sys
rate, *floods = (float(x or 0) for x in sys.argv[1:])
if rate > 0.5 * min(floods):
    print(f"note: {rate:g} msg/s is not well below both flood rates; the latency row then "
          "measures a queue, not a service at ease: give a lower RATE")
EOF
