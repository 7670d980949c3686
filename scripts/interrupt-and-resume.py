"""A real training run stopped with SIGINT and continued with --resume ends where the same run without the interruption
ends: the same log (timing keys aside), the same weights and the same trainer state, byte for byte.

Usage: python3 scripts/interrupt-and-resume.py --model DIR --work DIR --interrupt-at K [--binary B] -- TRAIN-ARGS...
TRAIN-ARGS are `longcat train` options besides --model/--out/--log/--resume (e.g. --recipe R --data FILES --steps N).
Prints what it did and a JSON summary; exits 1 when the two runs differ."""

import argparse
import filecmp
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMING_KEYS = {"seconds", "tokens_per_second", "mfu"}


def log(path):
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS} for line in path.read_text().splitlines()]


def files(directory):
    # recipe.json records each invocation's own options (the resumed one has no --model): not compared.
    return sorted(p.relative_to(directory) for p in directory.rglob("*") if p.is_file() and p.name != "recipe.json")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--interrupt-at", type=int, required=True, help="send SIGINT once the log has this many steps")
    ap.add_argument("--binary", default=str(ROOT / ".build" / "release" / "longcat"))
    ap.add_argument("train_args", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    extra = [a for a in args.train_args if a != "--"]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=False)

    def command(name, *more):
        return [args.binary, "train", "--out", str(work / name), "--log", str(work / f"{name}.jsonl"), *more, *extra]

    start = time.time()
    subprocess.run(command("straight", "--model", args.model), check=True, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"uninterrupted run: {len(log(work / 'straight.jsonl'))} steps in {time.time() - start:.0f} s", flush=True)

    process = subprocess.Popen(command("interrupted", "--model", args.model), stdin=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    log_path = work / "interrupted.jsonl"
    while not log_path.exists() or len(log_path.read_text().splitlines()) < args.interrupt_at:
        if process.poll() is not None:
            sys.exit("the run ended before the interruption")
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stderr = process.communicate(timeout=600)[1]
    stopped = len(log(log_path))
    print(f"SIGINT after step {args.interrupt_at}: exit status {process.returncode}, log at {stopped} steps; "
          f"last message: {stderr.strip().splitlines()[-1]!r}", flush=True)
    subprocess.run(command("interrupted", "--resume"), check=True, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    straight, resumed = work / "straight", work / "interrupted"
    same_files = files(straight) == files(resumed)
    differing = [str(f) for f in files(straight) if not filecmp.cmp(straight / f, resumed / f, shallow=False)] if same_files else ["file lists"]
    same_log = log(work / "straight.jsonl") == log(log_path)
    summary = {"steps": len(log(work / "straight.jsonl")), "interrupted_at": stopped, "exit_status": process.returncode,
               "same_log": same_log, "files_compared": [str(f) for f in files(straight)], "differing_files": differing}
    print(json.dumps(summary))
    sys.exit(0 if same_log and not differing else 1)


if __name__ == "__main__":
    main()
