#!/bin/sh
# Training text from Debian packages, unpacked into DIR (default data; data/ is not committed):
#   fortunes/     fortunes + fortunes-min: English records between lines holding `%` (fortune files)
#   fortunes-zh/  fortunes-zh: Chinese fortunes, Tang and Song poems (fortune files; their ANSI colour escapes are
#                 dropped when `longcat train --data` reads them)
#   jargon.txt    jargon-text: the Jargon File, plain English prose (a text file)
# Index files (.dat) and links (.u8) are left out. Usage: scripts/fetch-data.sh [DIR]
set -eu
cd "$(dirname "$0")/.."
OUT=${1:-data}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && apt-get download fortunes fortunes-min fortunes-zh jargon-text >/dev/null 2>&1)
for deb in "$WORK"/*.deb; do
    name=$(basename "$deb" | cut -d_ -f1)
    dpkg -x "$deb" "$WORK/$name"
done
copy_fortunes() {  # DEST PACKAGE...
    dest=$1; shift
    mkdir -p "$dest"
    for package in "$@"; do
        for f in "$WORK/$package"/usr/share/games/fortunes/*; do
            case "$f" in *.dat|*.u8) continue ;; esac
            [ -f "$f" ] && [ ! -L "$f" ] && cp "$f" "$dest/"
        done
    done
}
copy_fortunes "$OUT/fortunes" fortunes fortunes-min
copy_fortunes "$OUT/fortunes-zh" fortunes-zh
gunzip -c "$WORK/jargon-text/usr/share/doc/jargon-text/jargon.txt.gz" > "$OUT/jargon.txt"
for part in fortunes fortunes-zh jargon.txt; do
    echo "$OUT/$part: $(find "$OUT/$part" -type f | wc -l) files, $(find "$OUT/$part" -type f -exec cat {} + | wc -c) bytes"
done
