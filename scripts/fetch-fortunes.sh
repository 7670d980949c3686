#!/bin/sh
# Training text from Debian: the fortunes (English) packages, unpacked into DIR (default data/fortunes; data/ is not
# committed). The record files are plain text with records between lines holding `%`; `longcat train --data`
# reads them as fortune files. Index files (.dat) and links (.u8) are left out.
# Usage: scripts/fetch-fortunes.sh [DIR]
set -eu
cd "$(dirname "$0")/.."
OUT=${1:-data/fortunes}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && apt-get download fortunes fortunes-min >/dev/null 2>&1)
for deb in "$WORK"/*.deb; do dpkg -x "$deb" "$WORK/root"; done
mkdir -p "$OUT"
for f in "$WORK"/root/usr/share/games/fortunes/*; do
    case "$f" in *.dat|*.u8) continue ;; esac
    [ -f "$f" ] && [ ! -L "$f" ] && cp "$f" "$OUT/"
done
echo "$(ls "$OUT" | wc -l) files, $(cat "$OUT"/* | wc -c) bytes in $OUT"
