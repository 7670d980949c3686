"""Tokenizer training speed side by side: `longcat train-tokenizer` and Hugging Face `tokenizers`' BpeTrainer with the
same normalizer, pre-tokenizer, special tokens, vocabulary size and minimum pair frequency, on the same files (each
file one text), alternated over rounds. Also the bytes per token each result gives on the training text.

Usage: python3 benchmarks/tokenizer-training.py [--vocab-size 4006] [--rounds 3] FILE...   (needs `tokenizers`)"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

ROOT = Path(__file__).resolve().parents[1]
PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
SPECIAL = ["<unk>", "<s>", "</s>", "<pad>"]
ADDED = ["<longcat_tool_call>", "</longcat_tool_call>", "<longcat_tool_response>", "</longcat_tool_response>",
         "<longcat_think>", "</longcat_think>"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab-size", type=int, default=4006)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--binary", default=str(ROOT / ".build" / "release" / "longcat"))
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    texts = [Path(f).read_bytes().decode("utf-8") for f in args.files]
    nbytes = sum(len(t.encode()) for t in texts)
    work = Path(tempfile.mkdtemp(prefix="tokenizer-training-"))
    times = {"longcat": [], "tokenizers": []}
    for r in range(args.rounds):
        start = time.perf_counter()
        subprocess.run([args.binary, "train-tokenizer", "--data", *args.files, "--data-format", "text", "--vocab-size",
                        str(args.vocab_size), "--out", str(work / "longcat")], check=True, capture_output=True)
        times["longcat"].append(time.perf_counter() - start)
        tok = Tokenizer(models.BPE())
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(PATTERN), behavior="isolated"),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        trainer = trainers.BpeTrainer(vocab_size=args.vocab_size - len(ADDED), min_frequency=2, special_tokens=SPECIAL,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        start = time.perf_counter()
        tok.train_from_iterator(texts, trainer)
        times["tokenizers"].append(time.perf_counter() - start)
        print(f"round {r + 1}: longcat {times['longcat'][-1]:.2f} s, tokenizers {times['tokenizers'][-1]:.2f} s", flush=True)
    ours = Tokenizer.from_file(str(work / "longcat" / "tokenizer.json"))
    tokens = {"longcat": sum(len(ours.encode(t, add_special_tokens=False).ids) for t in texts),
              "tokenizers": sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts)}
    summary = {"files": len(args.files), "bytes": nbytes, "vocab_size": args.vocab_size,
               "rayon_threads": os.environ.get("RAYON_NUM_THREADS", "all cores"),
               "seconds_median": {k: round(statistics.median(v), 3) for k, v in times.items()},
               "bytes_per_token": {k: round(nbytes / v, 4) for k, v in tokens.items()}}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
