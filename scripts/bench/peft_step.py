"""The LoRA bench's step in PyTorch + peft, for the ratio in docs/benchmarks.md.

A Qwen3-0.6B-shaped model (transformers' Qwen3ForCausalLM, random weights, f32, tied head as
the real one), rank-16 adapters (alpha 32, dropout 0) on every projection, AdamW on the
adapters, CPU. The same batch and sequence length as ml/benches/lora.rs (BENCH_BATCH,
BENCH_SEQ, BENCH_STEPS; BENCH_THREADS for torch's threads). Prints one JSON line.
"""
import json
import os
import time

import peft
import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

batch = int(os.environ.get("BENCH_BATCH", 2))
seq = int(os.environ.get("BENCH_SEQ", 128))
steps = int(os.environ.get("BENCH_STEPS", 3))
threads = int(os.environ.get("BENCH_THREADS", os.cpu_count()))
torch.set_num_threads(threads)
torch.manual_seed(0)

config = Qwen3Config(
    vocab_size=151936, hidden_size=1024, num_hidden_layers=28, num_attention_heads=16,
    num_key_value_heads=8, head_dim=128, intermediate_size=3072, max_position_embeddings=4096,
    rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
)
model = Qwen3ForCausalLM(config).to(torch.float32)
lora = peft.LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
                       target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
model = peft.get_peft_model(model, lora)
model.train()
trainable, total = model.get_nb_trainable_parameters()
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
times = []
for step in range(steps + 1):
    ids = torch.tensor([[(i * 7919 + step * 104729) % config.vocab_size for i in range(r * (seq + 1), (r + 1) * (seq + 1))] for r in range(batch)])
    start = time.perf_counter()
    logits = model(ids[:, :-1]).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, config.vocab_size), ids[:, 1:].reshape(-1))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    if step > 0:
        times.append(time.perf_counter() - start)
times.sort()
print(json.dumps({
    "torch": torch.__version__, "peft": peft.__version__, "threads": threads,
    "trainable": trainable, "total": total, "step": times[len(times) // 2],
}))
