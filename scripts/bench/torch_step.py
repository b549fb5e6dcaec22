"""The worker's model and training step in PyTorch, for the ratio in docs/benchmarks.md.

Same architecture as ml/src/model.rs (Qwen3 style: RMSNorm, RoPE rotate-half, grouped-query
attention with q/k norm, SwiGLU, untied head), same sizes, AdamW, fp32, CPU. Prints one JSON line
per size: median step time and forward (evaluation) time per batch, in seconds.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SIZES = {
    "tiny": dict(vocab=256, hidden=64, layers=2, heads=4, kv=2, head_dim=16, ffn=176, batch=8, seq=64, steps=5),
    "m100": dict(vocab=256, hidden=768, layers=13, heads=12, kv=4, head_dim=64, ffn=2560, batch=4, seq=128, steps=3),
}


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, q, kv = c["hidden"], c["heads"] * c["head_dim"], c["kv"] * c["head_dim"]
        self.c = c
        self.input_layernorm = RMSNorm(h)
        self.q_proj, self.k_proj = nn.Linear(h, q, bias=False), nn.Linear(h, kv, bias=False)
        self.v_proj, self.o_proj = nn.Linear(h, kv, bias=False), nn.Linear(q, h, bias=False)
        self.q_norm, self.k_norm = RMSNorm(c["head_dim"]), RMSNorm(c["head_dim"])
        self.post_attention_layernorm = RMSNorm(h)
        self.gate_proj, self.up_proj = nn.Linear(h, c["ffn"], bias=False), nn.Linear(h, c["ffn"], bias=False)
        self.down_proj = nn.Linear(c["ffn"], h, bias=False)

    def forward(self, x, cos, sin, mask):
        b, s, _ = x.shape
        c = self.c
        y = self.input_layernorm(x)
        q = self.q_norm(self.q_proj(y).view(b, s, c["heads"], c["head_dim"]).transpose(1, 2))
        k = self.k_norm(self.k_proj(y).view(b, s, c["kv"], c["head_dim"]).transpose(1, 2))
        v = self.v_proj(y).view(b, s, c["kv"], c["head_dim"]).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        rep = c["heads"] // c["kv"]
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        scores = (q @ k.transpose(2, 3)) / math.sqrt(c["head_dim"])
        attn = torch.softmax(scores.masked_fill(mask, -1e9), dim=-1) @ v
        x = x + self.o_proj(attn.transpose(1, 2).reshape(b, s, -1))
        y = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(y)) * self.up_proj(y))


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed = nn.Embedding(c["vocab"], c["hidden"])
        self.layers = nn.ModuleList(Block(c) for _ in range(c["layers"]))
        self.norm = RMSNorm(c["hidden"])
        self.lm_head = nn.Linear(c["hidden"], c["vocab"], bias=False)
        d = c["head_dim"]
        pos = torch.arange(512, dtype=torch.float64)[:, None]
        inv = 1.0 / (10000.0 ** (2 * (torch.arange(d) % (d // 2)).double() / d))
        self.cos, self.sin = torch.cos(pos * inv).float(), torch.sin(pos * inv).float()

    def loss(self, tokens):
        x, y = tokens[:, :-1], tokens[:, 1:]
        s = x.shape[1]
        mask = torch.triu(torch.ones(s, s, dtype=torch.bool), 1)
        h = self.embed(x)
        for layer in self.layers:
            h = layer(h, self.cos[:s], self.sin[:s], mask)
        logits = self.lm_head(self.norm(h))
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def measure(name):
    c = SIZES[name]
    torch.manual_seed(1)
    model = Model(c)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = []
    for i in range(c["steps"] + 1):
        tokens = torch.randint(0, 256, (c["batch"], c["seq"] + 1))
        start = time.perf_counter()
        optim.zero_grad()
        model.loss(tokens).backward()
        optim.step()
        if i > 0:
            times.append(time.perf_counter() - start)
    times.sort()
    with torch.no_grad():
        n = max(c["steps"], 2)
        start = time.perf_counter()
        for _ in range(n):
            model.loss(torch.randint(0, 256, (c["batch"], c["seq"] + 1)))
        eval_batch = (time.perf_counter() - start) / n
    params = sum(p.numel() for p in model.parameters())
    return dict(size=name, params=params, step=times[len(times) // 2], eval_batch=eval_batch,
                torch=torch.__version__, threads=torch.get_num_threads())


if __name__ == "__main__":
    for name in (sys.argv[1:] or os.environ.get("BENCH_SIZES", "tiny,m100").split(",")):
        print(json.dumps(measure(name.strip())), flush=True)
