#!/usr/bin/env python3
"""Comparisons for scripts/gpu-check.sh (and scripts/cpu-bench.sh): parity of `valex inspect`
dumps across devices and against the HF reference, statistics across devices, and the speed
table of `valex bench` against torch_baseline.py.

    compare.py inspect OUT   OUT/inspect-<arch>-<dev>-<dtype>.safetensors
    compare.py stats OUT     OUT/stats-<dev>-<dtype>.safetensors
    compare.py speed OUT     OUT/valex-<shape>.json + OUT/torch.json
Relative error = max |a - b| / max |b| over real (mask = 1) positions.
"""
import glob
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file

F32_TOL, BF16_TOL = 1e-4, 3e-2


def rel(a, b, mask=None):
    a, b = a.astype(np.float64), b.astype(np.float64)
    if mask is not None:
        a, b = a[mask], b[mask]
    scale = np.abs(b).max()
    return float(np.abs(a - b).max() / scale) if scale > 0 else float(np.abs(a - b).max())


def inspect(out):
    worst = {}
    ok = True
    for arch in ["llama", "qwen2", "mistral", "llama3", "gpt2"]:
        path = lambda d, t: os.path.join(out, f"inspect-{arch}-{d}-{t}.safetensors")
        if not os.path.exists(path("cpu", "f32")):
            print(f"{arch:8s} missing cpu dump"); ok = False; continue
        cpu = load_file(path("cpu", "f32"))
        ref = load_file(f"tests/fixtures/hf/{arch}/reference.safetensors")
        mask = cpu["attention_mask"] == 1
        e_ref = max(rel(cpu[k], ref[f"right.{k}"], mask) for k in cpu if k not in ("input_ids", "attention_mask"))
        line = f"{arch:8s} cpu-f32 vs HF {e_ref:.2e}"
        ok &= e_ref <= F32_TOL
        for dev, dt, tol in [("cuda", "f32", F32_TOL), ("cuda", "bf16", BF16_TOL)]:
            if not os.path.exists(path(dev, dt)):
                line += f"  {dev}-{dt}: MISSING"; ok = False; continue
            g = load_file(path(dev, dt))
            e = max(rel(g[k], cpu[k], mask) for k in cpu if k not in ("input_ids", "attention_mask"))
            line += f"  {dev}-{dt} vs cpu {e:.2e} ({'ok' if e <= tol else 'FAIL'})"
            ok &= e <= tol
            worst[(dev, dt)] = max(worst.get((dev, dt), 0.0), e)
        print(line)
    print("PARITY", "PASS" if ok else "FAIL", {f"{d}-{t}": f"{v:.2e}" for (d, t), v in worst.items()})


def stats(out):
    cpu_path = os.path.join(out, "stats-cpu-f32.safetensors")
    if not os.path.exists(cpu_path):
        print("STATS FAIL: no cpu statistics"); return
    cpu = load_file(cpu_path)
    ok = True
    for dev, dt, tol in [("cuda", "f32", F32_TOL), ("cuda", "bf16", BF16_TOL)]:
        p = os.path.join(out, f"stats-{dev}-{dt}.safetensors")
        if not os.path.exists(p):
            print(f"{dev}-{dt}: MISSING"); ok = False; continue
        g = load_file(p)
        parts = []
        for k in sorted(cpu):
            if cpu[k].dtype.kind != "f":
                continue
            e = rel(g[k], cpu[k])
            parts.append(f"{k} {e:.1e}")
            if "active" in k or "count" in k:
                frac = float(np.mean(g[k] != cpu[k]))
                parts[-1] += f" ({frac:.2%} cells differ)"
            else:
                ok &= e <= tol
        print(f"{dev}-{dt} vs cpu-f32: " + "; ".join(parts[:8]) + (" ..." if len(parts) > 8 else ""))
    print("STATS", "PASS" if ok else "FAIL")


def speed(out):
    """Medians over every valex-<shape>[-r<k>].json and torch*.json file of OUT."""
    import statistics
    t = {}
    for p in sorted(glob.glob(os.path.join(out, "torch*.json"))):
        for r in json.load(open(p)):
            t.setdefault((r["model"], r["mode"]), []).append(r["tokens_per_s"])
    v = {}
    for p in sorted(glob.glob(os.path.join(out, "valex-*.json"))):
        d = json.load(open(p))
        for r in d["rows"]:
            v.setdefault((d["shape"]["name"], r["mode"]), []).append(r["tokens_per_s"])
    med = lambda xs: statistics.median(xs) if xs else float("nan")
    shapes = sorted({s for s, _ in v}, key=lambda s: ["tiny", "mid", "qwen2_0_5b", "qwen2_7b", "llama3_8b"].index(s) if s in ["tiny", "mid", "qwen2_0_5b", "qwen2_7b", "llama3_8b"] else 9)
    print(f"{'shape':11s} {'mode':7s} {'valex tok/s':>12s} {'torch tok/s':>12s} {'ratio':>6s}  (medians; n = runs)")
    for shape in shapes:
        for mode in ["plain", "layers", "stats", "ablate"]:
            if (shape, mode) not in v:
                continue
            a, b = med(v[(shape, mode)]), med(t.get((shape, mode), []))
            ratio = f"{a / b:.2f}" if b == b else "-"
            print(f"{shape:11s} {mode:7s} {a:12.0f} {b:12.0f} {ratio:>6s}  n={len(v[(shape, mode)])}/{len(t.get((shape, mode), []))}")
        m = lambda mode: med(v.get((shape, mode), []))
        if (shape, "stats") in v and (shape, "layers") in v:
            print(f"{shape:11s} valex stats overhead over its layers-only forward: {m('layers') / m('stats') - 1:+.1%}")
        if (shape, "stats") in t and (shape, "plain") in t:
            print(f"{shape:11s} torch stats-hooks overhead over its plain forward: {med(t[(shape, 'plain')]) / med(t[(shape, 'stats')]) - 1:+.1%}")
        if (shape, "stats") in v and (shape, "stats") in t:
            print(f"{shape:11s} valex stats vs PyTorch-with-hooks: {m('stats') / med(t[(shape, 'stats')]):.2f}x")


if __name__ == "__main__":
    {"inspect": inspect, "stats": stats, "speed": speed}[sys.argv[1]](sys.argv[2])
