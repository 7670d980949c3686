#!/bin/sh
# The bench-lite measurements of BENCHMARKS.md (LongCat-Flash-Lite's layer shape with 4.1 GB of N-gram tables):
# one `longcat bench --json` file per run in benchmarks/lite/. Each run also measures the tables: their pages
# are unmapped, then a session of prompt + decode tokens reads its rows, and /proc/self/smaps tells what the
# tables' mapping holds resident. How much a row costs depends on the folios the page cache holds the file in,
# so the runs differ in how the file got there.
# Usage: benchmarks/run-lite.sh [WEIGHTS_DIR]   (default /tmp/bench-lite; rewritten by the first run)
# Then: python3 benchmarks/render.py benchmarks/lite/*.json   prints the tables.
set -eu
cd "$(dirname "$0")/.."
swift build -c release --product longcat
B=.build/release/longcat
L=${1:-/tmp/bench-lite}
mkdir -p benchmarks/lite
run() { name=$1; w=$2; shift 2; echo "== $name: longcat bench --model $w $*" >&2; $B bench --model "$w" "$@" --json > "benchmarks/lite/$name.json"; }
# The file as its writer left it in the page cache (as after a download).
rm -rf "$L" && $B init --config benchmarks/kit/bench-lite.config.json --out "$L" --dtype bf16
run written "$L" --prompt-tokens 128 --gen-tokens 64
# Dropped from the page cache, then read through once (readahead's folios).
sync
for f in "$L"/*.safetensors; do dd if="$f" iflag=nocache count=0 status=none; cat "$f" > /dev/null; done
run read-through "$L" --prompt-tokens 128 --gen-tokens 64
# The tables out of the page cache (after loading, and again before the table measurement): every new row comes
# from the disk, as when the tables exceed memory.
run cold "$L" --prompt-tokens 128 --gen-tokens 64 --cold-tables
run cold-long "$L" --prompt-tokens 16 --gen-tokens 512 --cold-tables
# q8 tables in a written checkpoint stay mapped (half the bytes per row).
rm -rf "$L-q8" && $B quantize --model "$L" --out "$L-q8" --format q8
run q8-cold "$L-q8" --prompt-tokens 128 --gen-tokens 64 --cold-tables
# bench-1b (LongCat-Flash's layer shape, no tables) in the same session, for the decode fraction on this host.
[ -f /tmp/bench-1b/config.json ] || $B init --config benchmarks/kit/bench-1b.config.json --out /tmp/bench-1b --dtype bf16
run bench-1b-reference /tmp/bench-1b --prompt-tokens 128 --gen-tokens 64
