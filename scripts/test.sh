#!/usr/bin/env bash
# Runs Parley's whole test suite: unit tests and integration tests (real model, real files).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --release --locked "$@" 2>&1 | tee "$log"
# One closing line over all test binaries.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$log"
