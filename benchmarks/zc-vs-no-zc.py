#!/usr/bin/env python3
"""Does the zero-computation budget pay? Held-out loss of the two runs of recipes/longcat-tiny.json (identity experts
or none) against their decode speed: a plot (SVG) and a markdown table from the measurements' JSON.

Inputs in DIR (default runs/longcat-tiny-no-zc/measurements): eval-zc.json and eval-no-zc.json (`longcat eval --text
... --json` of each run's final bf16 weights) and bench-zc-R.json, bench-no-zc-R.json (`longcat bench --prompt-tokens
128 --gen-tokens 256 --json`, rounds R alternated between the two). Writes DIR/../loss-vs-decode.svg and prints the table.
"""
import glob
import json
import os
import statistics
import sys

folder = sys.argv[1] if len(sys.argv) > 1 else "runs/longcat-tiny-no-zc/measurements"
runs = {"zc": "16 FFN + 8 identity experts", "no-zc": "16 FFN experts, no identity"}
colours = {"zc": "#1f77b4", "no-zc": "#d62728"}
rows = {}
for run in runs:
    evaluation = json.load(open(os.path.join(folder, f"eval-{run}.json")))
    benches = [json.load(open(p))["runs"][0] for p in sorted(glob.glob(os.path.join(folder, f"bench-{run}-*.json")))]
    rows[run] = {
        "texts": {os.path.basename(t["file"]): t["bits_per_byte"] for t in evaluation["texts"]},
        "decode": [b["per_session_decode_tokens_per_second"] for b in benches],
        "prefill": [b["prefill_tokens_per_second"] for b in benches],
        "experts": statistics.median(b["ffn_experts_per_token"] for b in benches),
        "bytes": statistics.median(b["active_weight_bytes_per_token"] for b in benches),
    }
texts = list(rows["zc"]["texts"])

# Table: one row per run; bits per byte per held-out text, decode and prefill medians over the rounds.
print("| run | " + " | ".join(f"{t} bits/byte" for t in texts) + " | FFN experts per token | active MB per token | decode tok/s (rounds; median) | prefill tok/s (median) |")
print("| --- |" + " ---: |" * (len(texts) + 4))
for run, r in rows.items():
    cells = [f"{r['texts'][t]:.3f}" for t in texts]
    decode = " / ".join(f"{d:,.0f}" for d in r["decode"]) + f"; **{statistics.median(r['decode']):,.0f}**"
    print(f"| {runs[run]} | " + " | ".join(cells) + f" | {r['experts']:.2f} | {r['bytes'] / 1e6:.2f} | {decode} | {statistics.median(r['prefill']):,.0f} |")

# Plot: bits per byte of each held-out text against median decode speed, one marker per run, a line joining a text's
# two points (down and to the right is better on both counts).
W, H, L, R, T, B = 640, 380, 70, 200, 40, 50
xs = [statistics.median(r["decode"]) for r in rows.values()]
ys = [v for r in rows.values() for v in r["texts"].values()]
x0, x1 = min(xs) * 0.97, max(xs) * 1.03
y0, y1 = min(ys) - 0.05, max(ys) + 0.05
X = lambda x: L + (x - x0) / (x1 - x0) * (W - L - R)
Y = lambda y: T + (y1 - y) / (y1 - y0) * (H - T - B)
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       '<rect width="100%" height="100%" fill="white"/>',
       f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">Held-out bits per byte against decode speed</text>']
for i in range(5):
    y = y0 + (y1 - y0) * i / 4
    svg.append(f'<line x1="{L}" x2="{W - R}" y1="{Y(y):.1f}" y2="{Y(y):.1f}" stroke="#e5e5e5"/>')
    svg.append(f'<text x="{L - 6}" y="{Y(y) + 4:.1f}" text-anchor="end">{y:.2f}</text>')
    x = x0 + (x1 - x0) * i / 4
    svg.append(f'<text x="{X(x):.1f}" y="{H - B + 16}" text-anchor="middle">{x:,.0f}</text>')
svg.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">decode tokens/s, one session (median of the rounds)</text>')
svg.append(f'<text transform="translate(16 {(T + H - B) / 2}) rotate(-90)" text-anchor="middle">bits per byte</text>')
for t in texts:
    a, b = ((statistics.median(rows[run]["decode"]), rows[run]["texts"][t]) for run in runs)
    svg.append(f'<line x1="{X(a[0]):.1f}" y1="{Y(a[1]):.1f}" x2="{X(b[0]):.1f}" y2="{Y(b[1]):.1f}" stroke="#999"/>')
    svg.append(f'<text x="{X(max(a[0], b[0])) + 8:.1f}" y="{Y(a[1] if a[0] > b[0] else b[1]) + 4:.1f}">{t}</text>')
for k, (run, r) in enumerate(rows.items()):
    for v in r["texts"].values():
        svg.append(f'<circle cx="{X(statistics.median(r["decode"])):.1f}" cy="{Y(v):.1f}" r="4" fill="{colours[run]}"/>')
    svg.append(f'<circle cx="{W - R + 100}" cy="{H - B - 30 + 16 * k}" r="4" fill="{colours[run]}"/>')
    svg.append(f'<text x="{W - R + 108}" y="{H - B - 26 + 16 * k}" font-size="10">{run}</text>')
svg.append("</svg>")
with open(os.path.join(folder, "..", "loss-vs-decode.svg"), "w") as f:
    f.write("\n".join(svg) + "\n")
