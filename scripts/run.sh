#!/usr/bin/env bash
# Sets up what is missing, builds Parley and runs the shipped intent model over sample
# customer messages (examples/realistic.jsonl), printing what it understood.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked
parley="$CARGO_TARGET_DIR/release/parley"

echo
echo "Classifying examples/realistic.jsonl with models/intent-en:"
echo
"$parley" classify --model models/intent-en < examples/realistic.jsonl |
  python3 -c '
import json, sys
gold = [json.loads(l)["intent"] for l in open("examples/realistic.jsonl")]
right = 0
for want, line in zip(gold, sys.stdin):
    p = json.loads(line)
    ok = p["intent"] == want
    right += ok
    mark = "  " if ok else "x "
    print(mark + "%-58s  %-26s %.2f" % (p["text"][:58], p["intent"], p["confidence"]))
print(f"\n{right}/{len(gold)} as labelled by hand")
'
