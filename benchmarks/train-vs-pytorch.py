"""Training speed side by side: `longcat train` and PyTorch (transformers' LongcatFlashForCausalLM, float32, CE only,
AdamW) on the same checkpoint, batches and thread count, alternated over rounds. Outside CI (torch is several GB):
run it with a Python that has torch and transformers (e.g. the venv of scripts/transformers-roundtrip.sh).

Usage: python benchmarks/train-vs-pytorch.py [--steps 6] [--rounds 2] [--threads 2] [--binary .build/release/longcat]
Prints one line per run and a JSON summary: median tokens/s of the steps after the first of each run, and MFU: the
step's FLOPs (longcat's count, the same model and batch for both) per second against the best float32 matrix-multiply
rate either tool reaches on this machine (longcat's training-product probe, torch.mm), measured in the same run."""

import argparse
import json
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch
import transformers

ROOT = Path(__file__).resolve().parents[1]
# DESIGN.md's reference point: 12.5M parameters, hidden 256, 4 layers, 16 FFN + 8 identity experts, top-4.
SHAPE = {"hidden_size": 256, "num_layers": 4, "n_routed_experts": 16, "zero_expert_num": 8, "moe_topk": 4,
         "num_attention_heads": 4, "q_lora_rank": 128, "kv_lora_rank": 64, "qk_nope_head_dim": 32, "qk_rope_head_dim": 16,
         "v_head_dim": 32, "qk_head_dim": 48, "head_dim": 16, "ffn_hidden_size": 512, "expert_ffn_hidden_size": 128,
         "vocab_size": 4096, "max_position_embeddings": 2048}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--binary", default=str(ROOT / ".build" / "release" / "longcat"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="longcat-train-speed-"))
    config = json.loads((ROOT / "Tests" / "Fixtures" / "tiny-fp32" / "config.json").read_text())
    config.update(SHAPE)
    (work / "config.json").write_text(json.dumps(config))
    model_dir = work / "model"
    subprocess.run([args.binary, "init", "--config", str(work / "config.json"), "--out", str(model_dir), "--dtype", "f32"],
                   check=True, capture_output=True)
    rng = random.Random(1)
    steps = [{"input_ids": [[rng.randrange(3, SHAPE["vocab_size"]) for _ in range(args.seq)] for _ in range(args.batch)]}
             for _ in range(args.steps)]
    (work / "batches.json").write_text(json.dumps({"steps": steps}))
    tokens = args.batch * args.seq
    results = {"longcat": [], "pytorch": []}
    flops_per_token, rates = [], {"longcat": [], "torch.mm": []}

    def run_longcat(r):
        out = work / f"out-{r}"
        log = work / f"log-{r}.jsonl"
        subprocess.run([args.binary, "train", "--model", str(model_dir), "--out", str(out), "--log", str(log), "--batches",
                        str(work / "batches.json"), "--steps", str(args.steps), "--lr", "2e-3", "--eps", "1e-8",
                        "--bias-rate", "0", "--save-every", "0", "--threads", str(args.threads)], check=True, capture_output=True)
        lines = [json.loads(line) for line in log.read_text().splitlines()][1:]
        for line in lines:
            flops_per_token.append(line["flops"] / tokens)
            rates["longcat"].append(line["flops"] / line["seconds"] / line["mfu"])
        return statistics.median(line["tokens_per_second"] for line in lines)

    def torch_matmul_rate(size=1024):
        torch.set_num_threads(args.threads)
        a, b = torch.rand(size, size), torch.rand(size, size)
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
        return 2 * size ** 3 / best

    def run_pytorch():
        torch.set_num_threads(args.threads)
        # longcat's output (real experts only: transformers >= 5.25 refuses init's zero tensors for identity ids).
        model = transformers.AutoModelForCausalLM.from_pretrained(str(work / "out-0"), dtype=torch.float32)
        if hasattr(model, "set_experts_implementation"):
            model.set_experts_implementation("eager")
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
        rates = []
        for step in steps:
            ids = torch.tensor(step["input_ids"])
            start = time.perf_counter()
            loss = model(ids, labels=ids).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
            rates.append(tokens / (time.perf_counter() - start))
        return statistics.median(rates[1:])

    for r in range(args.rounds):
        rates["torch.mm"].append(torch_matmul_rate())
        for name, run in (("longcat", lambda: run_longcat(r)), ("pytorch", run_pytorch)):
            rate = run()
            results[name].append(rate)
            print(f"round {r + 1}, {name}: {rate:.0f} tokens/s", flush=True)
    summary = {name: statistics.median(v) for name, v in results.items()}
    summary["longcat_vs_pytorch"] = summary["longcat"] / summary["pytorch"]
    limit = max(max(v) for v in rates.values())
    summary["matmul_gflops"] = {name: round(max(v) / 1e9, 1) for name, v in rates.items()}
    summary["flops_per_token"] = statistics.median(flops_per_token)
    for name in ("longcat", "pytorch"):
        summary[f"{name}_mfu"] = round(summary[name] * summary["flops_per_token"] / limit, 3)
    summary.update({"threads": args.threads, "batch": args.batch, "seq": args.seq, "steps": args.steps, "rounds": results})
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
