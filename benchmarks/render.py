"""Renders `longcat bench --json` files as the Markdown tables of BENCHMARKS.md (one row per run)."""
import json
import os
import sys


def weights(d):
    """What decode streams: q8/q4 when quantized at load, else the dtype holding most of the file's bytes."""
    if d["quantize"] != "none":
        return d["quantize"]
    stored = d.get("stored_bytes_by_dtype") or {"BF16": 1}
    dtype = max(stored, key=stored.get)
    return {"F8_E4M3": "fp8", "I8": "q8", "U8": "q4"}.get(dtype, dtype.lower())


def rounds_table(paths):
    """Medians of one-session decode over the interleaved rounds (files rounds/<weights>-<round>.json)."""
    decode, limit = {}, {}
    for path in paths:
        with open(path) as f:
            d = json.load(f)
        for r in d["runs"]:
            key = weights(d) if r["concurrency"] == 1 else f"{weights(d)}, {r['concurrency']} sessions"
            decode.setdefault(key, []).append(r["aggregate_decode_tokens_per_second"])
            if r["concurrency"] == 1:
                limit.setdefault(key, []).append(r["fraction_of_bandwidth_limit"])

    def median(v):
        return sorted(v)[len(v) // 2]

    print("| weights | rounds | decode tok/s per round | median | vs bf16, 1 session | vs bandwidth limit per round (median) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for q in sorted(decode, key=lambda q: (q != "bf16", "sessions" not in q, q)):
        fractions = f"{' / '.join(f'{100 * x:.0f}%' for x in limit[q])} ({100 * median(limit[q]):.0f}%)" if q in limit else ""
        print(f"| {q} | {len(decode[q])} | {' / '.join(f'{x:.1f}' for x in decode[q])} | {median(decode[q]):.1f} "
              f"| {median(decode[q]) / median(decode['bf16']):.2f}x | {fractions} |")


def ngram_table(paths):
    """LongCat-Flash-Lite's tables: what they hold resident per decoded token against the rows read, beside peak RSS."""
    rows = []
    for path in paths:
        with open(path) as f:
            d = json.load(f)
        if d.get("ngram_tables"):
            rows.append((os.path.splitext(os.path.basename(path))[0], d))
    if not rows:
        return
    print()
    print("| run | tables start | prompt + decode tokens | table / other weights GB | table RSS after prefill MB "
          "| table RSS per decoded token KB | rows read per token (bytes each) | new rows in decode | RSS per new row KB "
          "| table decode tok/s | peak RSS MB | engine decode tok/s (1 session) | MB/token incl. rows | vs bandwidth limit |")
    print("| --- " * 14 + "|")
    for name, d in rows:
        t = d["ngram_tables"]
        r = next(r for r in d["runs"] if r["concurrency"] == 1)
        print(f"| {name} | {'on disk' if t['cold'] else 'in page cache'} | {t['prompt_tokens']} + {t['decode_tokens']} "
              f"| {t['table_bytes'] / 1e9:.2f} / {t['other_weight_bytes'] / 1e9:.2f} "
              f"| {t['resident_bytes_after_prefill'] / 1e6:.1f} | {t['resident_bytes_per_decode_token'] / 1e3:.0f} "
              f"| {t['tables']} ({t['row_bytes_per_token'] // t['tables']}) | {t['new_rows_in_decode']} "
              f"| {t['resident_bytes_per_new_row'] / 1e3:.1f} | {t['decode_tokens_per_second']:.1f} "
              f"| {d['peak_resident_bytes'] / 1e6:.0f} | {r['aggregate_decode_tokens_per_second']:.1f} "
              f"| {r['active_weight_bytes_per_token'] / 1e6:.0f} | {100 * r['fraction_of_bandwidth_limit']:.0f}% of "
              f"{r['decode_bandwidth_limit_tokens_per_second']:.1f} |")


def main(paths):
    rounds = [p for p in paths if os.path.basename(os.path.dirname(p)) == "rounds"]
    paths = [p for p in paths if p not in rounds]
    print("| run | threads | weights | sessions | prefill tok/s | prefill vs matmul | decode tok/s | "
          "MB/token | FFN experts/token | decode vs bandwidth limit | decode vs roofline limit | vs 1 session "
          "| roofline vs 1 session's limit | peak RSS MB |")
    print("| --- " * 14 + "|")
    contexts = []
    for path in paths:
        with open(path) as f:
            d = json.load(f)
        name = os.path.splitext(os.path.basename(path))[0]
        m = d["machine"]
        one = next((r for r in d["runs"] if r["concurrency"] == 1), None)
        for r in d["runs"]:
            # One session streams its weights alone: bandwidth is its limit. Several share each weight read,
            # so a step takes the longer of its arithmetic (matmul rate) and the weights it reads (bandwidth).
            single = r["concurrency"] == 1
            bandwidth = f"{100 * r['fraction_of_bandwidth_limit']:.0f}% of {r['decode_bandwidth_limit_tokens_per_second']:.1f}" if single else ""
            roofline = "" if single else (
                f"{100 * r['fraction_of_roofline_limit']:.0f}% of {r['decode_roofline_limit_tokens_per_second']:.1f} "
                f"({'compute' if r['decode_compute_limit_tokens_per_second'] <= r['decode_memory_limit_tokens_per_second'] else 'weights'})")
            speedup = r.get("speedup_over_one_session")
            ceiling = ""
            if one and not single:
                ceiling = f"{r['decode_roofline_limit_tokens_per_second'] / one['decode_bandwidth_limit_tokens_per_second']:.2f}x"
            print(f"| {name} | {m['threads']} | {weights(d)} | {r['concurrency']} "
                  f"| {r['prefill_tokens_per_second']:.1f} | {100 * r['prefill_fraction_of_matmul_rate']:.0f}% "
                  f"| {r['aggregate_decode_tokens_per_second']:.1f} | {r['active_weight_bytes_per_token'] / 1e6:.0f} "
                  f"| {r['ffn_experts_per_token']:.2f} | {bandwidth} | {roofline} "
                  f"| {f'{speedup:.2f}x' if speedup and not single else ''} | {ceiling} | {d['peak_resident_bytes'] / 1e6:.0f} |")
        contexts += [(name, c, m) for c in d.get("contexts", [])]
    print()
    print("| run | machine: read / triad GB/s | BF16 matmul GFLOP/s |")
    print("| --- | --- | --- |")
    for path in paths:
        with open(path) as f:
            d = json.load(f)
        m = d["machine"]
        print(f"| {os.path.splitext(os.path.basename(path))[0]} | {m['read_bytes_per_second'] / 1e9:.1f} / "
              f"{m['triad_bytes_per_second'] / 1e9:.1f} | {m['matmul_flops_per_second'] / 1e9:.1f} |")
    for path in paths:
        with open(path) as f:
            d = json.load(f)
        if d.get("schedules"):
            print()
            print("| schedule | prefill tok/s | vs default | decode tok/s | vs default | identity picks/token |")
            print("| --- | --- | --- | --- | --- | --- |")
            for s in d["schedules"]:
                print(f"| {s['schedule']} | {s['prefill_tokens_per_second']:.1f} | {s['prefill_vs_default']:.2f}x "
                      f"| {s['decode_tokens_per_second']:.1f} | {s['decode_vs_default']:.2f}x | {s['identity_picks_per_token']:.2f} |")
    for path in paths:
        with open(path) as f:
            d = json.load(f)
        p = d.get("paired")
        if p:
            print()
            print("| window | decode tok/s | MB/token | bandwidth around it GB/s | decode vs that limit |")
            print("| --- | --- | --- | --- | --- |")
            for i, (t, b, bw, f) in enumerate(zip(p["decode_tokens_per_second"], p["bytes_per_token"],
                                                  p["bandwidth_bytes_per_second"], p["fraction_of_bandwidth_limit"])):
                print(f"| {i + 1} | {t:.1f} | {b / 1e6:.0f} | {bw / 1e9:.1f} | {100 * f:.0f}% |")
            print(f"| median | {sorted(p['decode_tokens_per_second'])[len(p['decode_tokens_per_second']) // 2]:.1f} | "
                  f"| {sorted(p['bandwidth_bytes_per_second'])[len(p['bandwidth_bytes_per_second']) // 2] / 1e9:.1f} "
                  f"| {100 * p['median_fraction_of_bandwidth_limit']:.0f}% |")
    ngram_table(paths)
    if rounds:
        print()
        rounds_table(sorted(rounds, key=lambda p: int(os.path.splitext(p)[0].rsplit("-", 1)[1])))
    if contexts:
        print()
        print("| run | context | decode tok/s | MB/token with the cache | vs bandwidth limit |")
        print("| --- | --- | --- | --- | --- |")
        for name, c, m in contexts:
            print(f"| {name} | {c['context']} | {c['decode_tokens_per_second']:.1f} | {c['bytes_per_token'] / 1e6:.0f} "
                  f"| {100 * c['fraction_of_decode_limit']:.0f}% |")


if __name__ == "__main__":
    main(sys.argv[1:])
