#!/usr/bin/env python3
"""Tables of `scripts/gpu-check run`: blyan-worker's GPU reports beside PyTorch's on the same GPU.

Usage: report.py TORCH.json BLYAN.json...   (markdown on stdout; a missing file is named, skipped)
"""
import json
import sys

HIDDEN = {"0.6b": 1024, "8b": 4096}
VOCAB = 151936


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"_{path}: {e}_\n")
        return None


def main():
    torch = load(sys.argv[1])
    blyans = [b for b in map(load, sys.argv[2:]) if b]
    bw = (torch or {}).get("bandwidth_bytes_per_s")
    if blyans:
        g = blyans[0]["gpu"]
        print(f"GPU: {g['name']}, {g['memory_mb']} MiB, compute capability "
              f"{g['compute_capability'][0]}.{g['compute_capability'][1]}")
    if torch:
        print(f"PyTorch {torch['torch']}; measured copy bandwidth "
              f"{bw / 1e12:.2f} TB/s (bytes read + written)" if bw else "")
    print()
    print("| check | precision | result | detail |\n|---|---|---|---|")
    for b in blyans:
        for c in b["checks"]:
            print(f"| {c['name']} ({b.get('engine', '')}) | {b['precision']} | "
                  f"{'PASS' if c['passed'] else 'FAIL'} | {c['detail']} |")
        a = b["logits"]
        print(f"| CPU vs GPU logits (measured) | {b['precision']} | {a['top1_agree']}/{a['steps']} "
              f"same top token | max abs {a['max_abs_diff']:.3e}, max rel {a['max_rel_diff']:.3e} |")
        d = b.get("training_divergence") or []
        if d:
            steps = ", ".join(f"step {i + 1}: {x:.2e}" for i, x in enumerate(d) if i in (0, 4, 9, 14, 19))
            print(f"| CUDA vs CPU training, relative weight distance | f32 | measured | {steps} |")
    print()
    rows = []
    for b in blyans:
        rows += [(f"blyan ({b.get('engine', 'burn CUDA')})", r) for r in b.get("decode", [])]
    rows += [("PyTorch + transformers", r) for r in (torch or {}).get("decode", [])]
    if rows:
        def bytes_per_token(r):
            # Weights read per decoding step: all but the embedding table, of which one row.
            if "decode_bytes_per_token" in r:
                return r["decode_bytes_per_token"]
            h = HIDDEN.get(r["shape"])
            size = {"bf16": 2, "f32": 4}.get(r["dtype"])
            return (r["parameters"] - VOCAB * h + h) * size if h and size else None

        w = (torch or {}).get("workload", {})
        print(f"| shape | dtype | engine | TTFT ms ({w.get('prompt', 128)}-token prompt) | "
              f"decode tok/s | share of bandwidth roofline | {w.get('clients', 16)} clients, "
              "tok/s |\n|---|---|---|---|---|---|---|")
        for who, r in sorted(rows, key=lambda x: (x[1]["shape"], x[1]["dtype"], x[0])):
            per = bytes_per_token(r)
            roof = (f"{r['decode_tokens_per_s'] * per / bw * 100:.1f} %"
                    if bw and per else "n/a")
            print(f"| {r['shape']} | {r['dtype']} | {who} | {r['ttft_ms']:.1f} | "
                  f"{r['decode_tokens_per_s']:.1f} | {roof} | {r['aggregate_tokens_per_s']:.1f} |")
        print()
    train = [(w, r) for w, rep in [(f"blyan ({b.get('engine', '')})", b) for b in blyans] + [("PyTorch", torch)]
             for r in (rep or {}).get("train", [])]
    if train:
        print("| training step (0.6B shape, f32, AdamW, 4 × 256 tokens) | ms | tokens/s |\n|---|---|---|")
        for who, r in train:
            print(f"| {who} | {r['step_ms']:.1f} | {r['tokens_per_s']:.0f} |")


if __name__ == "__main__":
    main()
