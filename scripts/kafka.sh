#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft) broker for Parley tests and demos,
# run straight from the Maven Central jars (no Docker, no Kafka tarball).
#
#   scripts/kafka.sh fetch
#       Download the broker jars once into
#       ${PARLEY_KAFKA_HOME:-$HOME/.cache/parley/kafka-4.4.0}/lib (needs mvn).
#   scripts/kafka.sh start DIR [--watch-pid PID [--cleanup]]
#       Create a fresh broker in DIR (server.properties, data/, broker.log,
#       broker.pid, bootstrap), start it in the background, wait until it
#       really serves clients (group and transaction coordinators loaded) and
#       print the bootstrap address (127.0.0.1:PORT) as the last stdout line.
#       With --watch-pid PID, a detached watchdog stops the broker as soon as
#       PID no longer exists. With --cleanup it then also
#       deletes DIR (for test runs).
#   scripts/kafka.sh stop DIR
#       Stop the broker of DIR (TERM, KILL after 10 s) and its watchdog. Its
#       data stays in DIR.
#   scripts/kafka.sh restart DIR
#       Start the stopped broker of DIR again on the same ports with the same
#       data (a broker outage, for tests), wait until it serves clients and
#       print the bootstrap address as the last stdout line. A --watch-pid
#       given to start is watched again.
#
# Environment:
#   PARLEY_KAFKA_HOME   jar cache (default ~/.cache/parley/kafka-4.4.0)
#   JAVA_HOME / JAVA    java to use (default: java on PATH; needs a JDK >= 17)
#   MVN                 maven to use (default: mvn)
#   PARLEY_KAFKA_START_TIMEOUT  seconds to wait for readiness (default 60)
#   PARLEY_KAFKA_HEAP   broker heap flags (default "-Xms256m -Xmx768m")
#   PARLEY_KAFKA_JVM_FLAGS  other broker JVM flags
#                       (default "-XX:+UseSerialGC -XX:TieredStopAtLevel=1")
#   PARLEY_KAFKA_CDS=0  do not use/create class-data-sharing archives
set -euo pipefail

KAFKA_VERSION=4.4.0
self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
root="$(cd "$(dirname "$self")/.." && pwd)"
pom="$root/kafka/pom.xml"
log4j_conf="$root/kafka/log4j2.xml"
probe_src="$root/kafka/ReadyProbe.java"
home="${PARLEY_KAFKA_HOME:-$HOME/.cache/parley/kafka-$KAFKA_VERSION}"
lib="$home/lib"
marker="$home/lib.complete"

if [[ -n "${JAVA:-}" ]]; then
  java="$JAVA"
elif [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
  java="$JAVA_HOME/bin/java"
else
  java=java
fi

# JVM flags. Unified JVM logging is limited to errors so that class-data-sharing
# (CDS) notes never reach the logs.
jvm_common=(-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto
  -Xlog:disable -Xlog:all=error:stderr -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$log4j_conf")
# shellcheck disable=SC2206
broker_jvm=(${PARLEY_KAFKA_HEAP:--Xms256m -Xmx768m}
  ${PARLEY_KAFKA_JVM_FLAGS--XX:+UseSerialGC -XX:TieredStopAtLevel=1}
  -Xshare:auto -Xlog:disable -Xlog:all=error:stderr -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$log4j_conf")

die() { echo "kafka.sh: $*" >&2; exit 1; }
usage() {
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$self" >&2
  exit 2
}
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
secs_since() {
  local d=$(($(now_ms) - $1))
  printf '%d.%d' $((d / 1000)) $(((d % 1000) / 100))
}

# --- class-data-sharing archives ---------------------------------------------
# The first run of each JVM kind (format, broker, probe) dumps the classes it
# loaded into $home/cds-*/KIND.jsa; later runs map that archive, which roughly
# halves JVM start-up. Archives depend on the exact JVM and classpath, so the
# directory is keyed by the java binary and wiped on every fetch. A stale or
# mismatched archive is ignored by the JVM (-Xshare:auto).
cds_dir() {
  local bin
  bin="$(readlink -f "$(command -v "$java")")"
  echo "$home/cds-$(printf '%s\n' "$bin" "$(stat -c %Y "$bin")" | sha256sum | cut -c1-12)"
}

# cds_flags KIND: print the JVM flag that uses (or creates) the archive.
cds_flags() {
  [[ "${PARLEY_KAFKA_CDS:-1}" != 0 ]] || return 0
  local d
  d="$(cds_dir)"
  mkdir -p "$d"
  if [[ -s "$d/$1.jsa" ]]; then
    echo "-XX:SharedArchiveFile=$d/$1.jsa"
  else
    # Leftovers of runs that died before publishing their archive.
    find "$d" -name '*.tmp.*' -mmin +10 -delete 2>/dev/null || true
    echo "-XX:ArchiveClassesAtExit=$d/$1.jsa.tmp.$$"
  fi
}

# cds_publish FLAG: after a JVM that got FLAG exited cleanly, move the archive
# it dumped into place.
cds_publish() {
  local f="${1:-}" tmp
  [[ "$f" == -XX:ArchiveClassesAtExit=* ]] || return 0
  tmp="${f#*=}"
  if [[ -s "$tmp" ]]; then mv -f "$tmp" "${tmp%.tmp.*}"; else rm -f "$tmp"; fi
}

# cds_discard FLAG: drop the (possibly partial) archive of a JVM that died.
cds_discard() {
  local f="${1:-}"
  [[ "$f" == -XX:ArchiveClassesAtExit=* ]] || return 0
  rm -f "${f#*=}"
}

# --- fetch ------------------------------------------------------------------

# Compile the readiness probe into the cache (keyed by its source hash).
probe_jar() {
  local sum dir tmp javac
  sum="$(sha256sum "$probe_src" | cut -c1-16)"
  dir="$home/probe-$sum"
  if [[ ! -f "$dir/probe.jar" ]]; then
    javac="$(dirname "$(readlink -f "$(command -v "$java")")")/javac"
    [[ -x "$javac" ]] || javac=javac
    command -v "$javac" >/dev/null 2>&1 || die "javac not found (a JDK >= 17 is needed)"
    tmp="$(mktemp -d "$home/probe.tmp.XXXXXX")"
    "$javac" -nowarn -d "$tmp/classes" -cp "$lib/*" "$probe_src" >&2 \
      || { rm -rf "$tmp"; die "javac $probe_src failed"; }
    # A jar, not a class directory: CDS refuses non-empty directories.
    python3 - "$tmp/classes" "$tmp/probe.jar" <<'EOF'
import os, sys, zipfile
src, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w") as z:
    for d, _, files in os.walk(src):
        for f in sorted(files):
            p = os.path.join(d, f)
            z.write(p, os.path.relpath(p, src))
EOF
    rm -rf "$tmp/classes" "$dir"
    mv "$tmp" "$dir"
  fi
  echo "$dir/probe.jar"
}

# fetch [QUIET]: make sure $lib is complete. The one-line report goes to
# stdout, or to stderr with QUIET (start keeps stdout for the address).
fetch() {
  local out=1
  [[ -n "${1:-}" ]] && out=2
  command -v python3 >/dev/null 2>&1 || die "python3 is required"
  mkdir -p "$home"
  # Serialize concurrent fetches (parallel test runs) when flock exists.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$home/.lock"
    flock 9
  fi
  if [[ -f "$marker" && -d "$lib" ]]; then
    [[ $out == 2 ]] || echo "kafka $KAFKA_VERSION jars already in $lib"
  else
    command -v "${MVN:-mvn}" >/dev/null 2>&1 || die "mvn not found (needed once to download the Kafka jars)"
    local t0 tmp n
    t0="$(now_ms)"
    rm -rf "$lib" "$marker" "$home"/lib.tmp.* "$home"/cds-* "$home"/probe-*
    tmp="$(mktemp -d "$home/lib.tmp.XXXXXX")"
    if ! "${MVN:-mvn}" -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" -DincludeScope=runtime > "$home/fetch.log" 2>&1; then
      rm -rf "$tmp"
      tail -n 40 "$home/fetch.log" >&2
      die "maven failed to download the Kafka $KAFKA_VERSION jars (log: $home/fetch.log)"
    fi
    [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] \
      || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after download"; }
    mv "$tmp" "$lib"
    probe_jar > /dev/null
    n="$(find "$lib" -name '*.jar' | wc -l)"
    echo "kafka $KAFKA_VERSION: $n jars" > "$marker"
    echo "fetched kafka $KAFKA_VERSION ($n jars) into $lib in $(secs_since "$t0")s" >&$out
  fi
  probe_jar > /dev/null
  if command -v flock >/dev/null 2>&1; then
    exec 9>&-
  fi
}

# --- helpers ------------------------------------------------------------------

# alive PID: the process exists and is not a zombie.
alive() {
  local pid="$1" state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/stat" ]] || { kill -0 "$pid" 2>/dev/null; return; }
  state="$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# cmdline_has PID WORD: WORD is one of the arguments of PID.
cmdline_has() {
  [[ -r "/proc/$1/cmdline" ]] || return 0 # no /proc: cannot check, trust the pid
  tr '\0' '\n' < "/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "$2"
}

# is_broker PID DIR: PID is the live broker started for DIR (guards against
# pid reuse).
is_broker() { alive "$1" && cmdline_has "$1" "$2/server.properties"; }

read_pid() { if [[ -f "$1" ]]; then tr -dc '0-9' < "$1"; fi; }

# stop_broker DIR: TERM, wait up to 10 s, then KILL.
stop_broker() {
  local dir="$1" pid i killed=0
  pid="$(read_pid "$dir/broker.pid")"
  if [[ -n "$pid" ]] && is_broker "$pid" "$dir"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      killed=1
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
    fi
  fi
  if [[ -f "$dir/broker.cds" ]]; then
    if ((killed)); then
      cds_discard "$(cat "$dir/broker.cds")"
    else
      cds_publish "$(cat "$dir/broker.cds")"
    fi
    rm -f "$dir/broker.cds"
  fi
  rm -f "$dir/broker.pid"
}

stop_watchdog() {
  local dir="$1" wpid
  wpid="$(read_pid "$dir/watchdog.pid")"
  if [[ -n "$wpid" && "$wpid" != "$$" ]] && alive "$wpid" && cmdline_has "$wpid" _watchdog; then
    kill -TERM "$wpid" 2>/dev/null || true
  fi
  rm -f "$dir/watchdog.pid"
}

# Two distinct free loopback ports.
free_ports() {
  python3 - <<'EOF'
import socket
ss = []
for _ in range(2):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    ss.append(s)
print(" ".join(str(s.getsockname()[1]) for s in ss))
EOF
}

# A cluster id the way Kafka's Uuid.randomUuid() makes one: 16 random bytes,
# url-safe base64 without padding, not starting with '-', not a reserved id.
cluster_id() {
  python3 - <<'EOF'
import base64, uuid
while True:
    u = uuid.uuid4().bytes
    s = base64.urlsafe_b64encode(u).decode().rstrip("=")
    if not s.startswith("-") and u not in (bytes(16), bytes(15) + b"\x01"):
        print(s)
        break
EOF
}

port_open() { (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }

# spawn_broker DIR PORT DEADLINE: launches DIR's broker and waits until it listens on PORT,
# dies, or DEADLINE (in $SECONDS) passes. Sets the caller's `pid` and `cds` (bash locals are
# dynamically scoped), so start and restart launch the broker the same way.
spawn_broker() {
  local dir="$1" port="$2" deadline="$3" i
  cds="$(cds_flags broker)"
  [[ -z "$cds" ]] || echo "$cds" > "$dir/broker.cds"
  # New session, no tty, every fd away from the caller's pipes: the broker
  # survives the calling shell and never holds the caller's stdout open.
  setsid nohup bash -c 'echo $$ > "$1/broker.pid"; shift; exec "$@"' _ "$dir" \
    "$java" "${broker_jvm[@]}" ${cds:+"$cds"} -cp "$cp" kafka.Kafka "$dir/server.properties" \
    < /dev/null >> "$dir/broker.log" 2>&1 &
  for ((i = 0; i < 100; i++)); do [[ -s "$dir/broker.pid" ]] && break; sleep 0.05; done
  pid="$(read_pid "$dir/broker.pid")"
  [[ -n "$pid" ]] || die "broker did not start"
  while ((SECONDS < deadline)) && alive "$pid" && ! port_open "$port"; do sleep 0.1; done
}

write_props() {
  local dir="$1" port="$2" cport="$3"
  cat > "$dir/server.properties" <<EOF
# generated by scripts/kafka.sh (parley local test broker)
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:$cport
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
}

# --- start / stop ---------------------------------------------------------------

start() {
  local dir="" watch="" cleanup=""
  while (($#)); do
    case "$1" in
      --watch-pid) [[ $# -ge 2 ]] || usage; watch="$2"; shift 2 ;;
      --watch-pid=*) watch="${1#*=}"; shift ;;
      --cleanup) cleanup=1; shift ;;
      -*) usage ;;
      *) [[ -z "$dir" ]] || usage; dir="$1"; shift ;;
    esac
  done
  [[ -n "$dir" ]] || usage
  if [[ -n "$watch" ]]; then
    alive "$watch" || die "--watch-pid $watch: no such process"
  fi
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"

  local oldpid
  oldpid="$(read_pid "$dir/broker.pid")"
  if [[ -n "$oldpid" ]] && is_broker "$oldpid" "$dir"; then
    die "a broker is already running from $dir (pid $oldpid); run: $self stop $dir"
  fi
  if [[ -e "$dir/data" ]] && ! grep -qs '^# generated by scripts/kafka.sh' "$dir/server.properties"; then
    die "$dir/data exists and was not created by kafka.sh; refusing to delete it"
  fi
  stop_watchdog "$dir"
  rm -f "$dir/bootstrap" "$dir/broker.pid" "$dir/broker.cds"

  fetch quiet
  local probe cp timeout=${PARLEY_KAFKA_START_TIMEOUT:-60}
  probe="$(probe_jar)"
  cp="$lib/*"

  local attempt port cport pid i ok=0 t0 t_fmt t_listen t_ready deadline left cds
  t0="$(now_ms)"
  deadline=$((SECONDS + timeout))
  for attempt in 1 2 3; do
    read -r port cport < <(free_ports)
    write_props "$dir" "$port" "$cport"
    rm -rf "$dir/data"

    cds="$(cds_flags format)"
    if ! "$java" "${jvm_common[@]}" ${cds:+"$cds"} -cp "$cp" kafka.tools.StorageTool format \
        --standalone -t "$(cluster_id)" -c "$dir/server.properties" > "$dir/format.log" 2>&1; then
      cat "$dir/format.log" >&2
      die "kafka-storage format failed"
    fi
    cds_publish "$cds"
    t_fmt="$(secs_since "$t0")"

    : > "$dir/broker.log"
    spawn_broker "$dir" "$port" "$deadline"
    if ! alive "$pid"; then
      cds_discard "$cds"
      rm -f "$dir/broker.cds"
      if grep -q 'Address already in use' "$dir/broker.log" && ((attempt < 3)); then
        echo "kafka.sh: port $port or $cport got taken, retrying with new ports" >&2
        continue
      fi
      break
    fi
    t_listen="$(secs_since "$t0")"

    # Readiness: cluster metadata + group coordinator + transaction coordinator.
    left=$((deadline - SECONDS))
    cds="$(cds_flags probe)"
    if ((left > 0)) && "$java" "${jvm_common[@]}" ${cds:+"$cds"} -cp "$cp:$probe" \
        ReadyProbe "127.0.0.1:$port" "$((left * 1000))" < /dev/null >&2; then
      cds_publish "$cds"
      ok=1
    else
      cds_publish "$cds"
    fi
    break
  done

  if ((ok == 0)); then
    if [[ -n "${pid:-}" ]] && ! alive "$pid"; then
      echo "kafka.sh: broker in $dir exited during start-up; last 40 lines of $dir/broker.log:" >&2
    else
      echo "kafka.sh: broker in $dir did not become ready within ${timeout}s; last 40 lines of $dir/broker.log:" >&2
    fi
    tail -n 40 "$dir/broker.log" >&2 || true
    stop_broker "$dir"
    exit 1
  fi
  t_ready="$(secs_since "$t0")"

  echo "127.0.0.1:$port" > "$dir/bootstrap"
  if [[ -n "$watch" ]]; then
    [[ -n "$cleanup" ]] && touch "$dir/cleanup-on-exit"
    echo "$watch" > "$dir/watched.pid"
    setsid nohup "$self" _watchdog "$dir" "$watch" "$pid" < /dev/null > /dev/null 2>&1 &
    echo $! > "$dir/watchdog.pid"
  fi
  echo "kafka.sh: broker pid $pid ready in ${t_ready}s (formatted ${t_fmt}s, listening ${t_listen}s; dir $dir${watch:+; stops when pid $watch exits})" >&2
  echo "127.0.0.1:$port"
}

# restart DIR: the broker of DIR again, after stop, same ports and data.
restart() {
  [[ $# -eq 1 ]] || usage
  local dir="$1"
  [[ -d "$dir" ]] || die "no such directory: $dir"
  dir="$(cd "$dir" && pwd)"
  grep -qs '^# generated by scripts/kafka.sh' "$dir/server.properties" \
    || die "$dir has no broker created by kafka.sh start"
  [[ -d "$dir/data" ]] || die "$dir/data is missing; use start for a fresh broker"
  local oldpid
  oldpid="$(read_pid "$dir/broker.pid")"
  if [[ -n "$oldpid" ]] && is_broker "$oldpid" "$dir"; then
    die "a broker is already running from $dir (pid $oldpid)"
  fi
  stop_watchdog "$dir"
  rm -f "$dir/bootstrap" "$dir/broker.pid" "$dir/broker.cds"

  fetch quiet
  local probe cp timeout=${PARLEY_KAFKA_START_TIMEOUT:-60} port pid i cds t0 deadline left watch
  probe="$(probe_jar)"
  cp="$lib/*"
  port="$(sed -n 's|^advertised.listeners=PLAINTEXT://127.0.0.1:\([0-9]*\)$|\1|p' "$dir/server.properties")"
  [[ -n "$port" ]] || die "no port in $dir/server.properties"
  t0="$(now_ms)"
  deadline=$((SECONDS + timeout))
  echo "# restarted $(date -u +%FT%TZ)" >> "$dir/broker.log"
  spawn_broker "$dir" "$port" "$deadline"
  left=$((deadline - SECONDS))
  if ! alive "$pid" || ((left <= 0)) || ! "$java" "${jvm_common[@]}" -cp "$cp:$probe" \
      ReadyProbe "127.0.0.1:$port" "$((left * 1000))" < /dev/null >&2; then
    echo "kafka.sh: broker in $dir did not come back within ${timeout}s; last 40 lines of $dir/broker.log:" >&2
    tail -n 40 "$dir/broker.log" >&2 || true
    stop_broker "$dir"
    exit 1
  fi
  echo "127.0.0.1:$port" > "$dir/bootstrap"
  watch="$(read_pid "$dir/watched.pid")"
  if [[ -n "$watch" ]] && alive "$watch"; then
    setsid nohup "$self" _watchdog "$dir" "$watch" "$pid" < /dev/null > /dev/null 2>&1 &
    echo $! > "$dir/watchdog.pid"
  fi
  echo "kafka.sh: broker pid $pid back in $(secs_since "$t0")s (dir $dir)" >&2
  echo "127.0.0.1:$port"
}

# _watchdog DIR WATCHED_PID BROKER_PID (internal; runs detached)
watchdog() {
  local dir="$1" watched="$2" broker="$3"
  while alive "$watched" && is_broker "$broker" "$dir"; do sleep 1; done
  if [[ "$(read_pid "$dir/broker.pid")" == "$broker" ]]; then
    stop_broker "$dir"
    rm -f "$dir/bootstrap"
  fi
  if [[ "$(read_pid "$dir/watchdog.pid")" == "$$" ]]; then
    rm -f "$dir/watchdog.pid"
  fi
  # The watched process (a test run) is gone and asked for it: leave nothing behind.
  if ! alive "$watched" && [[ -f "$dir/cleanup-on-exit" ]]; then
    rm -rf "$dir"
  fi
}

stop() {
  [[ $# -eq 1 ]] || usage
  local dir="$1"
  [[ -d "$dir" ]] || die "no such directory: $dir"
  dir="$(cd "$dir" && pwd)"
  stop_watchdog "$dir"
  stop_broker "$dir"
  rm -f "$dir/bootstrap"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  fetch) [[ $# -eq 0 ]] || usage; fetch ;;
  start) start "$@" ;;
  stop) stop "$@" ;;
  restart) restart "$@" ;;
  _watchdog) watchdog "$@" ;;
  *) usage ;;
esac
