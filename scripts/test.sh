#!/usr/bin/env bash
# Runs Parley's whole test suite: unit tests and integration tests (real model, real files).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo test --release --locked "$@"
