#!/usr/bin/env python3
"""Turn criterion's results for the metering suite into the tables and the
plot of docs/benchmarks.md.

Reads <criterion dir>/kernel_*/<config>/new/estimates.json (the point
estimate of the mean, ns), prints a Markdown table of each configuration's
time and its ratio to unmetered wasm per kernel plus the geometric mean, and
writes an SVG bar chart of those ratios. Standard library only.

Usage: scripts/bench-report.py [CRITERION_DIR] [SVG_OUT]
  (defaults: ~/.cache/fuelhost/target-bench/criterion, docs/bench/metering-overhead.svg)
"""
import json
import math
import os
import sys

CONFIGS = [
    "native",
    "wasm",
    "fuel",
    "epoch",
    "fuel+epoch",
    "fuelhost-fuel",
    "fuelhost-fuel-deterministic",
    "fuelhost-cpu-time",
]
COLOURS = ["#4c72b0", "#8c8c8c", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#da8bc3", "#937860"]
# Each fuelhost mode beside the wasmtime configuration that compiles the
# same checks into the code: what fuelhost adds around them. The first pair
# is the paired bench's control (the same configuration on two engines).
COUNTERPARTS = [
    ("fuel-again", "fuel"),
    ("fuelhost-fuel-deterministic", "fuel"),
    ("fuelhost-fuel", "fuel+epoch"),
    ("fuelhost-cpu-time", "epoch"),
]


def load(root):
    results = {}
    for group in sorted(os.listdir(root)):
        if not group.startswith("kernel_"):
            continue
        kernel = group[len("kernel_"):]
        for config in CONFIGS:
            # criterion replaces '+' in directory names
            for name in (config, config.replace("+", "_")):
                path = os.path.join(root, group, name, "new", "estimates.json")
                if os.path.exists(path):
                    with open(path) as f:
                        results.setdefault(kernel, {})[config] = json.load(f)["mean"]["point_estimate"]
                    break
    return results


def fmt_time(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def table(results):
    kernels = sorted(results)
    configs = [c for c in CONFIGS if any(c in results[k] for k in kernels)]
    lines = ["| kernel | " + " | ".join(configs) + " |", "| --- |" + " --- |" * len(configs)]
    for k in kernels:
        base = results[k].get("wasm")
        cells = []
        for c in configs:
            t = results[k].get(c)
            if t is None:
                cells.append("-")
            elif base and c != "wasm":
                cells.append(f"{fmt_time(t)} (x{t / base:.2f})")
            else:
                cells.append(fmt_time(t))
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    geo = []
    for c in configs:
        ratios = [results[k][c] / results[k]["wasm"] for k in kernels if c in results[k] and "wasm" in results[k]]
        geo.append(f"x{math.exp(sum(map(math.log, ratios)) / len(ratios)):.2f}" if ratios else "-")
    lines.append("| geometric mean vs wasm | " + " | ".join(geo) + " |")
    return "\n".join(lines)


def counterparts(results):
    """A table of each fuelhost mode over its wasmtime counterpart, per
    kernel and as the geometric mean."""
    kernels = sorted(results)
    pairs = [(f, w) for f, w in COUNTERPARTS if any(f in results[k] and w in results[k] for k in kernels)]
    lines = [
        "| kernel | " + " | ".join(f"{f} / {w}" for f, w in pairs) + " |",
        "| --- |" + " --- |" * len(pairs),
    ]
    logs = {p: [] for p in pairs}
    for k in kernels:
        cells = []
        for f, w in pairs:
            if f in results[k] and w in results[k]:
                r = results[k][f] / results[k][w]
                logs[(f, w)].append(math.log(r))
                cells.append(f"x{r:.3f}")
            else:
                cells.append("-")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    geo = [f"x{math.exp(sum(logs[p]) / len(logs[p])):.3f}" if logs[p] else "-" for p in pairs]
    lines.append("| geometric mean | " + " | ".join(geo) + " |")
    return "\n".join(lines)


def paired(root):
    """The bench's paired comparison (alternate runs, median ratio), as a
    table; None when the bench wrote none."""
    path = os.path.join(root, "paired-kernels.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        rows = json.load(f)
    kernels = sorted({r["kernel"] for r in rows})
    pairs = [(f, w) for f, w in COUNTERPARTS if any(r["fuelhost"] == f for r in rows)]
    ratio = {(r["kernel"], r["fuelhost"]): r["ratio"] for r in rows}
    lines = [
        "| kernel | " + " | ".join(f"{f} / {w}" for f, w in pairs) + " |",
        "| --- |" + " --- |" * len(pairs),
    ]
    for k in kernels:
        cells = [f"x{ratio[(k, f)]:.3f}" if (k, f) in ratio else "-" for f, _ in pairs]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    geo = []
    for f, _ in pairs:
        rs = [ratio[(k, f)] for k in kernels if (k, f) in ratio]
        geo.append(f"x{math.exp(sum(map(math.log, rs)) / len(rs)):.3f}" if rs else "-")
    lines.append("| geometric mean | " + " | ".join(geo) + " |")
    return "\n".join(lines)


def svg(results, out):
    kernels = sorted(results)
    configs = [c for c in CONFIGS if c != "wasm" and any(c in results[k] for k in kernels)]
    ratios = {k: {c: results[k][c] / results[k]["wasm"] for c in configs if c in results[k]} for k in kernels}
    top = max([r for k in ratios for r in ratios[k].values()] + [1.0]) * 1.1
    width, height, left, bottom, top_pad = 760, 360, 60, 50, 40
    plot_w, plot_h = width - left - 20, height - bottom - top_pad
    group_w = plot_w / max(len(kernels), 1)
    bar_w = group_w * 0.8 / max(len(configs), 1)
    y = lambda v: top_pad + plot_h - v / top * plot_h
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{left}" y="20" font-size="13">Time per kernel run relative to unmetered wasm (lower is better)</text>']
    step = 0.5 if top < 4 else 1.0
    v = 0.0
    while v <= top:
        parts.append(f'<line x1="{left}" x2="{width - 20}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">x{v:.1f}</text>')
        v += step
    parts.append(f'<line x1="{left}" x2="{width - 20}" y1="{y(1):.1f}" y2="{y(1):.1f}" stroke="#333" stroke-dasharray="4 3"/>')
    for i, k in enumerate(kernels):
        x0 = left + i * group_w + group_w * 0.1
        for j, c in enumerate(configs):
            r = ratios[k].get(c)
            if r is None:
                continue
            colour = COLOURS[CONFIGS.index(c)]
            x = x0 + j * bar_w
            parts.append(f'<rect x="{x:.1f}" y="{y(r):.1f}" width="{bar_w - 1:.1f}" height="{y(0) - y(r):.1f}" fill="{colour}"><title>{k} {c}: x{r:.2f}</title></rect>')
        parts.append(f'<text x="{left + i * group_w + group_w / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle">{k}</text>')
    lx = left
    for c in configs:
        colour = COLOURS[CONFIGS.index(c)]
        parts.append(f'<rect x="{lx}" y="{height - 22}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 14}" y="{height - 13}">{c}</text>')
        lx += 14 + 7 * len(c) + 18
    parts.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/fuelhost/target-bench/criterion")
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "docs", "bench", "metering-overhead.svg")
    results = load(root)
    if not results:
        sys.exit(f"no kernel results under {root}: run `cargo bench -p fuelhost --bench kernels` first")
    print(table(results))
    print()
    print(counterparts(results))
    pairs = paired(root)
    if pairs:
        print("\npaired runs (median of alternate runs):\n")
        print(pairs)
    svg(results, out)
    print(f"\nplot: {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
