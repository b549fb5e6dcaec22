#!/usr/bin/env python3
"""The reference side of `scripts/gpu-check`: PyTorch + transformers on the same GPU, same shapes
and workloads as `blyan-worker gpu-check` (random bf16 Qwen3 weights made on the GPU), plus the
GPU's measured copy bandwidth (the roofline's denominator).

Usage: torch_reference.py OUT.json [--shapes 0.6b,8b] [--prompt 128] [--decode 128]
       [--clients 16] [--client-tokens 64]
"""
import argparse
import json
import sys
import time

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

SHAPES = {
    "0.6b": dict(hidden_size=1024, num_hidden_layers=28, num_attention_heads=16,
                 num_key_value_heads=8, head_dim=128, intermediate_size=3072),
    "8b": dict(hidden_size=4096, num_hidden_layers=36, num_attention_heads=32,
               num_key_value_heads=8, head_dim=128, intermediate_size=12288),
}


def config(shape):
    # Untied head, as Blyan's model: both read the same bytes per decoding step.
    return Qwen3Config(vocab_size=151936, max_position_embeddings=4096, rope_theta=1e6,
                       rms_norm_eps=1e-6, tie_word_embeddings=False, **SHAPES[shape])


def sync_time(f):
    torch.cuda.synchronize()
    t = time.perf_counter()
    out = f()
    torch.cuda.synchronize()
    return time.perf_counter() - t, out


def bandwidth():
    """Device-to-device copy of 4 GiB: bytes read + written per second (mean of 10 after 3)."""
    n = 1 << 31
    a = torch.empty(n, dtype=torch.bfloat16, device="cuda")
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    dt, _ = sync_time(lambda: [b.copy_(a) for _ in range(10)])
    del a, b
    return 2 * n * 2 * 10 / dt


def make_model(shape, dtype):
    """Random weights (transformers' own normal(0, 0.02) initialisation) made on the GPU."""
    with torch.device("cuda"):
        try:
            model = Qwen3ForCausalLM._from_config(config(shape), dtype=dtype)
        except TypeError:
            model = Qwen3ForCausalLM._from_config(config(shape), torch_dtype=dtype)
    return model.eval()


@torch.no_grad()
def decode_bench(shape, a):
    t_load, model = sync_time(lambda: make_model(shape, torch.bfloat16))
    prompt = (torch.arange(a.prompt, device="cuda") * 7919 % 150000).unsqueeze(0)
    # A pad id the prompts never hold, and an explicit mask: no prompt token is taken for padding.
    gen = dict(do_sample=False, pad_token_id=151935, eos_token_id=None)

    def generate(ids, n):
        return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,
                              min_new_tokens=n, **gen)

    generate(prompt, 8)  # warm-up
    ttft, _ = sync_time(lambda: generate(prompt, 1))
    total, _ = sync_time(lambda: generate(prompt, a.decode + 1))
    decode_tps = a.decode / max(total - ttft, 1e-9)
    batch = torch.stack([(torch.arange(32, device="cuda") * 7919 + c * 1000) % 150000
                         for c in range(a.clients)])
    generate(batch, 4)
    prefill, _ = sync_time(lambda: generate(batch, 1))
    total, _ = sync_time(lambda: generate(batch, a.client_tokens + 1))
    agg = a.clients * a.client_tokens / max(total - prefill, 1e-9)
    params = sum(p.numel() for p in model.parameters())
    del model
    torch.cuda.empty_cache()
    return dict(shape=shape, dtype="bf16", parameters=params, ttft_ms=ttft * 1000,
                decode_tokens_per_s=decode_tps, aggregate_tokens_per_s=agg, load_s=t_load)


def train_bench():
    # PyTorch's default f32 matrix products are strict IEEE f32 (no TF32), while cubecl's may use
    # TF32 tensor cores: the comparison favours neither silently (docs/benchmarks.md says so).
    model = make_model("0.6b", torch.float32).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    batch, seq = 4, 256
    ids = (torch.arange(batch * (seq + 1), device="cuda") * 7919 % 150000).view(batch, seq + 1)

    def step():
        out = model(ids[:, :-1], labels=None)
        loss = torch.nn.functional.cross_entropy(
            out.logits.reshape(-1, out.logits.shape[-1]), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(2):
        step()
    dt, _ = sync_time(lambda: [step() for _ in range(3)])
    del model, opt
    torch.cuda.empty_cache()
    return dict(shape="0.6b", dtype="f32", batch=batch, seq=seq, step_ms=dt / 3 * 1000,
                tokens_per_s=batch * seq * 3 / dt)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--shapes", default="0.6b,8b")
    p.add_argument("--prompt", type=int, default=128)
    p.add_argument("--decode", type=int, default=128)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--client-tokens", type=int, default=64)
    a = p.parse_args()
    report = dict(torch=torch.__version__, gpu=torch.cuda.get_device_name(0),
                  bandwidth_bytes_per_s=bandwidth(), decode=[], train=[],
                  workload=dict(prompt=a.prompt, decode=a.decode, clients=a.clients,
                                client_tokens=a.client_tokens))
    print(f"bandwidth {report['bandwidth_bytes_per_s'] / 1e12:.2f} TB/s", flush=True)
    for shape in a.shapes.split(","):
        r = decode_bench(shape, a)
        print(r, flush=True)
        report["decode"].append(r)
    r = train_bench()
    print(r, flush=True)
    report["train"].append(r)
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
