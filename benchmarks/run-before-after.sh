#!/bin/sh
# Inference speed of two builds on bench-1b, alternated over rounds so the host's drift hits both alike:
# one `longcat bench --json` file per run in OUT (before-R.json, after-R.json).
# Usage: benchmarks/run-before-after.sh BEFORE_BINARY AFTER_BINARY [WEIGHTS_DIR [OUT [ROUNDS]]]
#   (defaults /tmp/bench-1b, benchmarks/before-after, 5); BENCH_ARGS adds bench options (e.g. "--quantize q8").
# Then: python3 benchmarks/render.py OUT/*.json
set -eu
cd "$(dirname "$0")/.."
BEFORE=$1 AFTER=$2 M=${3:-/tmp/bench-1b} OUT=${4:-benchmarks/before-after} ROUNDS=${5:-5}
[ -f "$M/config.json" ] || "$AFTER" init --config benchmarks/kit/bench-1b.config.json --out "$M" --dtype bf16
mkdir -p "$OUT"
for round in $(seq 1 "$ROUNDS"); do
    for which in before after; do
        if [ $which = before ]; then B=$BEFORE; else B=$AFTER; fi
        echo "== round $round, $which: $B bench --model $M --prompt-tokens 128 --gen-tokens 64 --concurrency 1,16 ${BENCH_ARGS:-}" >&2
        # shellcheck disable=SC2086
        "$B" bench --model "$M" --prompt-tokens 128 --gen-tokens 64 --concurrency 1,16 ${BENCH_ARGS:-} --json > "$OUT/$which-$round.json"
    done
done
