#!/usr/bin/env python3
"""Text a model wrote itself, for fitting its MTP head (`longcat train --train-only mtp`), as a fortune file (records
between lines holding %): each record is a snippet of the training texts followed by the model's plain greedy
continuation of it (no repetition penalty, as speculative decoding's greedy check and `bench` decode).

Speculative decoding accepts a draft when it equals the main model's greedy choice, so the head should learn to predict
what the model will say, not what the texts say next: on its own continuations the two are the same thing. Fitted on
the texts alone, the head of the shipped model agreed with its greedy choice on a third of the positions it drafted.

Usage: scripts/make-self-distill.py --model models/longcat-tiny --seed 1 --records 1500 --out data/self-distill.txt
       data/train/fortunes.txt data/train/fortunes-zh.txt data/train/jargon.txt data/train/debian.txt
"""
import argparse
import json
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--model", required=True, help="model directory (its MTP head is what the text is for)")
parser.add_argument("--binary", default=".build/release/longcat")
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--records", type=int, default=1500)
parser.add_argument("--prompt-chars", type=int, default=240, help="snippet length (cut back to a space)")
parser.add_argument("--max-tokens", type=int, default=192, help="tokens the model adds to each snippet")
parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="generate processes at once (one thread each)")
parser.add_argument("--out", required=True)
parser.add_argument("texts", nargs="+", help="texts the snippets are drawn from (each file equally often)")
args = parser.parse_args()

texts = []
for path in args.texts:
    with open(path, encoding="utf-8", errors="replace") as f:
        # Fortune files' % separators would end a snippet mid-record; drop them.
        texts.append("\n".join(line for line in f.read().split("\n") if line.strip() != "%"))
rng = random.Random(args.seed)
snippets = []
while len(snippets) < args.records:
    text = rng.choice(texts)
    start = text.find("\n", rng.randrange(max(1, len(text) - 2 * args.prompt_chars))) + 1
    snippet = text[start:start + args.prompt_chars]
    snippet = snippet[:snippet.rfind(" ")] if " " in snippet[1:] else snippet
    if snippet.strip():
        snippets.append(snippet)


def continuation(snippet):
    result = subprocess.run([args.binary, "generate", "--model", args.model, "--prompt=" + snippet,
                             "--max-tokens", str(args.max_tokens), "--temperature", "0", "--repetition-penalty", "1",
                             "--threads", "1", "--json"], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"generate failed on {snippet!r}: {result.stderr.strip()}")
    return json.loads(result.stdout)


tokens = 0
with open(args.out, "w", encoding="utf-8") as out, ThreadPoolExecutor(args.jobs) as pool:
    # map keeps the snippets' order, so the file does not depend on --jobs.
    for snippet, answer in zip(snippets, pool.map(continuation, snippets)):
        tokens += len(answer["tokens"])
        record = "\n".join(line for line in (snippet + answer["text"]).split("\n") if line.strip() != "%")
        out.write(record.rstrip("\n") + "\n%\n")
print(f"wrote {args.records} records, {tokens} generated tokens, to {args.out}")
