#!/bin/sh
# Training text from Debian packages, unpacked into DIR (default data; data/ is not committed):
#   fortunes/     fortunes + fortunes-min: English records between lines holding `%` (fortune files)
#   fortunes-zh/  fortunes-zh: Chinese fortunes, Tang and Song poems (fortune files; their ANSI colour escapes are
#                 dropped when `longcat train --data` reads them)
#   jargon.txt    jargon-text: the Jargon File, plain English prose (a text file)
#   debian.txt    debian-policy + doc-debian: the Debian Policy Manual and its sub-policies, the Constitution, the
#                 Social Contract, the Manifesto and the bug-reporting guide: normative English prose (a text file)
#   debian-guides.txt  developers-reference + maint-guide: the Debian Developer's Reference and the New Maintainers'
#                 Guide, plain-text editions: English prose about packaging and the project's rules (a text file)
#   train/, heldout/  the same five corpora split for the default model: every 20th record (fortunes) or paragraph
#                 (Jargon File, Debian) goes to heldout/NAME.txt, the rest to train/NAME.txt (fortune files stay fortune files)
# Index files (.dat) and links (.u8) are left out. Usage: scripts/fetch-data.sh [DIR]
set -eu
cd "$(dirname "$0")/.."
OUT=${1:-data}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && apt-get download fortunes fortunes-min fortunes-zh jargon-text debian-policy doc-debian \
    developers-reference maint-guide >/dev/null 2>&1)
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
policy="$WORK/debian-policy/usr/share/doc/debian-policy" doc="$WORK/doc-debian/usr/share/doc/debian"
for f in "$policy/policy.txt.gz" "$policy/perl-policy.txt.gz" "$policy/menu-policy.txt.gz" "$policy/debconf_specification.txt.gz" \
         "$doc/constitution.txt.gz" "$doc/social-contract.txt.gz" "$doc/debian-manifesto.gz" "$doc/bug-reporting.txt.gz"; do
    gunzip -c "$f"
    printf '\n\n'
done > "$OUT/debian.txt"
gunzip -c "$WORK/developers-reference/usr/share/developers-reference/developers-reference.txt.gz" \
          "$WORK/maint-guide/usr/share/doc/maint-guide/maint-guide.en.txt.gz" > "$OUT/debian-guides.txt"
mkdir -p "$OUT/train" "$OUT/heldout"
split_fortunes() {  # NAME FILE...: records end at lines holding %
    name=$1; shift
    awk -v train="$OUT/train/$name.txt" -v heldout="$OUT/heldout/$name.txt" '
        function flush() { if (record != "") { n++; printf "%s%%\n", record > (n % 20 == 0 ? heldout : train) } record = "" }
        FNR == 1 { flush() }
        /^%\r?$/ { flush(); next }
        { record = record $0 "\n" }
        END { flush() }' "$@"
}
split_fortunes fortunes "$OUT"/fortunes/*
split_fortunes fortunes-zh "$OUT"/fortunes-zh/*
split_paragraphs() {  # NAME FILE: paragraphs end at blank lines
    awk -v train="$OUT/train/$1.txt" -v heldout="$OUT/heldout/$1.txt" \
        'BEGIN { RS = ""; ORS = "\n\n" } { print > (NR % 20 == 0 ? heldout : train) }' "$2"
}
split_paragraphs jargon "$OUT/jargon.txt"
split_paragraphs debian "$OUT/debian.txt"
split_paragraphs debian-guides "$OUT/debian-guides.txt"
for part in fortunes fortunes-zh jargon.txt debian.txt debian-guides.txt train heldout; do
    echo "$OUT/$part: $(find "$OUT/$part" -type f | wc -l) files, $(find "$OUT/$part" -type f -exec cat {} + | wc -c) bytes"
done
