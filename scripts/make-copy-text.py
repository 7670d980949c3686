#!/usr/bin/env python3
"""Copying practice for a small model, as a fortune file (records between lines holding %): each record is a sentence
of words drawn at random from the training texts, then the same sentence again (sometimes a third time). The second
copy can only be predicted by finding the first in the context, which is what a model needs to call tools it has
never seen by their exact names; a model that cannot copy pays for every word twice.

Usage: scripts/make-copy-text.py --seed 1 --records 25000 --out data/copy.txt data/train/fortunes.txt data/train/fortunes-zh.txt data/train/jargon.txt
"""
import argparse
import random
import re

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--records", type=int, default=25000)
parser.add_argument("--out", required=True)
parser.add_argument("texts", nargs="+", help="texts whose words are drawn (Latin-script words of 2+ letters used 3+ times)")
args = parser.parse_args()

counts = {}
for path in args.texts:
    with open(path, encoding="utf-8", errors="replace") as f:
        for word in re.findall(r"[A-Za-z][a-z]+", f.read()):
            counts[word] = counts.get(word, 0) + 1
vocabulary = sorted(w for w, n in counts.items() if n >= 3)  # words the texts use, not their one-off names
rng = random.Random(args.seed)
with open(args.out, "w", encoding="utf-8") as out:
    for i in range(args.records):
        sentence = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(6, 24)))
        sentence = sentence[0].upper() + sentence[1:] + "."
        copies = 3 if rng.random() < 0.25 else 2
        out.write(" ".join([sentence] * copies) + "\n%\n")
print(f"wrote {args.records} records of {len(vocabulary)} words to {args.out}")
