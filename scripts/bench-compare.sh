#!/usr/bin/env bash
# Parley next to the Python stack, on this machine, side by side (see bench/README.md).
# Usage: scripts/bench-compare.sh
# Knobs (environment): PARLEY_BENCH_ROUNDS (3), PARLEY_BENCH_BATCHES (1,8,32,128),
# PARLEY_BENCH_SECONDS (3, per measurement), PARLEY_BENCH_MODEL (models/intent-en),
# PARLEY_BENCH_E2E (1; 0 skips bench/compare/e2e.sh).
# Installs: the Debian packages and Rust build of scripts/setup.sh, and a Python venv with pinned
# PyPI packages at ${XDG_CACHE_HOME:-$HOME/.cache}/parley-bench-venv (several GB with torch).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked
parley="$CARGO_TARGET_DIR/release/parley"

rounds="${PARLEY_BENCH_ROUNDS:-3}"
batches="${PARLEY_BENCH_BATCHES:-1,8,32,128}"
seconds="${PARLEY_BENCH_SECONDS:-3}"
model="${PARLEY_BENCH_MODEL:-models/intent-en}"

# --- the Python stack ---------------------------------------------------------------------
# Pinned; the stamp records what the venv holds, so a change of pins reinstalls.
torch_pin="torch==2.15.0"
other_pins=(transformers==5.23.0 confluent-kafka==2.16.1 safetensors tokenizers)
venv="${XDG_CACHE_HOME:-$HOME/.cache}/parley-bench-venv"
venv_python="$venv/bin/python"
want="$torch_pin ${other_pins[*]}"
if [[ ! -x "$venv_python" || "$(cat "$venv/.parley-pins" 2>/dev/null)" != "$want" ]]; then
  command -v python3 >/dev/null || { echo "bench-compare: python3 is needed" >&2; exit 1; }
  python3 -m venv "$venv" 2>/dev/null || {
    # Debian's python3 lacks venv (ensurepip) until python3-venv is installed.
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  }
  echo "bench-compare: installing $want into $venv"
  "$venv_python" -m pip install -q --upgrade pip
  # The CPU-only torch wheel (about 200 MB) where download.pytorch.org is reachable; else
  # PyPI's, which also pulls the CUDA libraries (several GB) that a CPU run never loads.
  "$venv_python" -m pip install -q --timeout 15 --retries 1 "$torch_pin" \
    --index-url https://download.pytorch.org/whl/cpu 2>/dev/null \
    || "$venv_python" -m pip install -q "$torch_pin"
  "$venv_python" -m pip install -q "$torch_pin" "${other_pins[@]}"
  echo "$want" > "$venv/.parley-pins"
fi

# --- the machine ----------------------------------------------------------------------------
cores="$(nproc)"
cpu="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)"
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2- || true) "
have=()
for f in avx2 avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8; do
  if [[ "$flags" == *" $f "* ]]; then have+=("$f"); else have+=("-$f"); fi
done
echo
echo "machine: ${cpu:-unknown CPU}, $cores cores"
echo "cpu features (- = absent): ${have[*]}"
# Both sides use every core, so anything else running skews the figures (PyTorch's OpenMP
# threads suffer far more from a competing process than Parley's rayon pool does).
cpu_ticks() { awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat; }
read -r used0 idle0 < <(cpu_ticks); sleep 2; read -r used1 idle1 < <(cpu_ticks)
busy=$(( 100 * (used1 - used0) / (used1 - used0 + idle1 - idle0 + 1) ))
echo "before starting, ${busy}% of all cores were busy (2 s sample)"
if (( busy > 10 )); then
  echo "bench-compare: WARNING: the machine is busy; the figures will be skewed. Busiest:" >&2
  { top -b -n 2 -d 1 -w 120 | awk '/^ *PID/ { n++ } n == 2' | head -4 >&2; } || true
fi

# --- the model alone: parley bench vs PyTorch + transformers --------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/parley-compare.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$parley" bench --print-messages > "$work/messages.json"
echo "model: $model, the $(
  "$venv_python" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$work/messages.json"
) texts of parley bench, all cores; pytorch: f32, padded to the longest of each batch"
echo "rounds: $rounds, interleaved (at batch b: parley, parley --cpu-kernels f32, pytorch), >= ${seconds} s each; median shown"
# The same model: both classify the 16 texts in one batch, and must agree on every label.
"$parley" classify --model "$model" --device cpu --batch-size 64 \
  < <("$venv_python" -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))))' \
    "$work/messages.json") > "$work/parley-predict.jsonl"
"$venv_python" bench/compare/model_torch.py --model "$model" --messages "$work/messages.json" \
  --predict > "$work/torch-predict.jsonl" 2>/dev/null
"$venv_python" - "$work" <<'EOF'
import json, sys
load = lambda f: [json.loads(l) for l in open(f"{sys.argv[1]}/{f}") if l.strip()]
p, t = load("parley-predict.jsonl"), load("torch-predict.jsonl")
same = sum(a["intent"] == b["intent"] for a, b in zip(p, t))
diff = max(abs(a["confidence"] - b["confidence"]) for a, b in zip(p, t))
print(f"same predictions: {same}/{len(p)} labels agree, confidences within {diff:.4f}")
sys.exit(0 if same == len(p) == len(t) else 1)
EOF
IFS=',' read -r -a batch_list <<< "$batches"
for r in $(seq 1 "$rounds"); do
  for b in "${batch_list[@]}"; do
    "$parley" bench --model "$model" --device cpu --batch-sizes "$b" --seconds "$seconds" --no-peak --json \
      > "$work/parley-$b-$r.json"
    # Parley's f32 kernels too: what the int8 kernels (chosen by default where the CPU has
    # AVX-512 VNNI) add, in the same run.
    "$parley" --cpu-kernels f32 bench --model "$model" --device cpu --batch-sizes "$b" \
      --seconds "$seconds" --no-peak --json > "$work/parley-f32-$b-$r.json"
    "$venv_python" bench/compare/model_torch.py --model "$model" --messages "$work/messages.json" \
      --batch-sizes "$b" --seconds "$seconds" \
      > "$work/torch-$b-$r.json" 2> "$work/torch-$b-$r.log" \
      || { cat "$work/torch-$b-$r.log" >&2; exit 1; }
    echo "  round $r batch $b: parley $("$venv_python" -c \
      'import json,sys; print("%.1f" % json.load(open(sys.argv[1]))["rows"][0]["messages_per_second"])' \
      "$work/parley-$b-$r.json") msgs/s (f32 kernels $("$venv_python" -c \
      'import json,sys; print("%.1f" % json.load(open(sys.argv[1]))["rows"][0]["messages_per_second"])' \
      "$work/parley-f32-$b-$r.json")), pytorch $("$venv_python" -c \
      'import json,sys; print("%.1f" % list(json.load(open(sys.argv[1])).values())[0])' \
      "$work/torch-$b-$r.json") msgs/s"
  done
done
"$venv_python" - "$work" "$rounds" "$batches" <<'EOF'
import json, statistics, sys
work, rounds, batches = sys.argv[1], int(sys.argv[2]), [int(b) for b in sys.argv[3].split(",")]
first = json.load(open(f"{work}/parley-{batches[0]}-1.json"))
torch_info = open(f"{work}/torch-{batches[0]}-1.log").readline().strip()
print(f"parley: {first['threads']} threads, {first.get('kernels', 'f32 kernels')}; "
      f"its f32 kernels use {first['kernel_gemm_library']}")
print(torch_info)
print()
print(f"{'batch':>6} | {'parley msgs/s':>14} | {'parley f32':>11} | {'pytorch msgs/s':>14} | {'ratio':>6} | {'f32 ratio':>9}")
print(f"{'-'*6}-+-{'-'*14}-+-{'-'*11}-+-{'-'*14}-+-{'-'*6}-+-{'-'*9}")
rate = lambda f: json.load(open(f))["rows"][0]["messages_per_second"]
for b in batches:
    p = statistics.median(rate(f"{work}/parley-{b}-{r}.json") for r in range(1, rounds + 1))
    f = statistics.median(rate(f"{work}/parley-f32-{b}-{r}.json") for r in range(1, rounds + 1))
    t = statistics.median(
        json.load(open(f"{work}/torch-{b}-{r}.json"))[str(b)] for r in range(1, rounds + 1))
    print(f"{b:>6} | {p:>14.1f} | {f:>11.1f} | {t:>14.1f} | {p / t:>5.2f}x | {f / t:>8.2f}x")
print("ratio = parley / pytorch (above 1: parley is faster); f32 ratio: parley's f32 kernels")
EOF

# --- end to end (the service against the Python one; transport) ------------------------------
if [[ "${PARLEY_BENCH_E2E:-1}" != 0 && -f bench/compare/e2e.sh ]]; then
  echo
  bash bench/compare/e2e.sh "$venv_python"
fi
