#!/bin/sh
# Inference speed of two builds on bench-1b, alternated over 5 rounds so the host's drift hits both alike:
# one `longcat bench --json` file per run in benchmarks/before-after/ (before-R.json, after-R.json).
# Usage: benchmarks/run-before-after.sh BEFORE_BINARY AFTER_BINARY [WEIGHTS_DIR]   (default /tmp/bench-1b)
# Then: python3 benchmarks/render.py benchmarks/before-after/*.json
set -eu
cd "$(dirname "$0")/.."
BEFORE=$1 AFTER=$2 M=${3:-/tmp/bench-1b}
[ -f "$M/config.json" ] || "$AFTER" init --config benchmarks/kit/bench-1b.config.json --out "$M" --dtype bf16
mkdir -p benchmarks/before-after
for round in 1 2 3 4 5; do
    for which in before after; do
        if [ $which = before ]; then B=$BEFORE; else B=$AFTER; fi
        echo "== round $round, $which: $B bench --model $M --prompt-tokens 128 --gen-tokens 64 --concurrency 1,16" >&2
        "$B" bench --model "$M" --prompt-tokens 128 --gen-tokens 64 --concurrency 1,16 --json > "benchmarks/before-after/$which-$round.json"
    done
done
