#!/bin/sh
# Runs every measurement BENCHMARKS.md reports and leaves one `longcat bench --json` file per run here.
# Usage: benchmarks/run.sh [WEIGHTS_DIR]   (default /tmp/bench-1b, created from benchmarks/kit if missing;
# the FP8 runs use WEIGHTS_DIR-fp8, made the same way with --dtype fp8)
# Then: python3 benchmarks/render.py benchmarks/*.json benchmarks/rounds/*.json   prints the tables.
set -eu
cd "$(dirname "$0")/.."
swift build -c release --product longcat
B=.build/release/longcat
M=${1:-/tmp/bench-1b}
F=$M-fp8
[ -f "$M/config.json" ] || $B init --config benchmarks/kit/bench-1b.config.json --out "$M" --dtype bf16
[ -f "$F/config.json" ] || $B init --config benchmarks/kit/bench-1b.config.json --out "$F" --dtype fp8
# run NAME ARGS...: one bench on $M (or on $W when set) into benchmarks/NAME.json
run() { name=$1; shift; w=${W:-$M}; W=; echo "== $name: longcat bench --model $w $*" >&2; $B bench --model "$w" "$@" --json > "benchmarks/$name.json"; }
run bf16 --prompt-tokens 128 --gen-tokens 64 --concurrency 1,4,16
run paired --paired-bandwidth --prompt-tokens 128 --gen-tokens 256
run q8 --quantize q8 --prompt-tokens 128 --gen-tokens 64 --concurrency 1,16
run q4 --quantize q4 --prompt-tokens 128 --gen-tokens 64 --concurrency 1,16
W=$F run fp8 --prompt-tokens 128 --gen-tokens 64 --concurrency 1,16
run prefill-512 --prompt-tokens 512 --gen-tokens 16
run contexts --prompt-tokens 16 --gen-tokens 32 --context 512,4096,16384
run schedules --compare-schedules --prompt-tokens 128 --gen-tokens 64
run overlap-moe --overlap-moe --prompt-tokens 128 --gen-tokens 64 --concurrency 16
run threads-1 --threads 1 --prompt-tokens 128 --gen-tokens 64
# BF16 (1 and 16 sessions) against q8, q4 and FP8 (1 session), interleaved over 5 rounds so the host's
# drift hits all alike; render.py reports the medians.
rm -rf benchmarks/rounds && mkdir -p benchmarks/rounds
for round in 1 2 3 4 5; do
    run "rounds/bf16-$round" --prompt-tokens 16 --gen-tokens 96 --concurrency 1,16
    for q in q8 q4; do run "rounds/$q-$round" --quantize $q --prompt-tokens 16 --gen-tokens 96; done
    W=$F run "rounds/fp8-$round" --prompt-tokens 16 --gen-tokens 96
done
