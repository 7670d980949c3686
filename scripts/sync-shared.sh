#!/usr/bin/env bash
# Copies the team's shared material into the repository, so a clone stands on its own:
#   ../shared/fixtures   -> Tests/Fixtures        (golden outputs the tests check against)
#   ../shared/DESIGN.md  -> docs/DESIGN.md        (the design notes the README cites)
#   ../shared/bench      -> benchmarks/kit        (benchmark shapes and the llama.cpp side-by-side kit)
# Usage: scripts/sync-shared.sh [FOLDER ...]   (fixture folders to copy; default: every one under ../shared/fixtures)
# SharedCopyTests compares every carried file with its twin in ../shared, so the copies cannot drift.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${SHARED:-../shared}
[ -d "$shared/fixtures" ] || { echo "error: $shared/fixtures not found (set SHARED=DIR to the team's shared folder)" >&2; exit 65; }

mkdir -p Tests/Fixtures docs benchmarks/kit
if [ $# -eq 0 ]; then
    set -- $(cd "$shared/fixtures" && ls -d */ | tr -d /)
    cp "$shared/fixtures/README.md" Tests/Fixtures/README.md
fi
for folder in "$@"; do
    rm -rf "Tests/Fixtures/$folder"
    cp -R "$shared/fixtures/$folder" "Tests/Fixtures/$folder"
    echo "Tests/Fixtures/$folder: $(find "Tests/Fixtures/$folder" -type f | wc -l) files"
done
cp "$shared/DESIGN.md" docs/DESIGN.md
rm -rf benchmarks/kit && cp -R "$shared/bench" benchmarks/kit
echo "docs/DESIGN.md, benchmarks/kit: copied"
