"""Profiler throughput against a bare batched no-grad forward pass over the same tokens (goal: ratio >= 0.9).

    .venv/bin/python benchmarks/profile_throughput.py [--n 64] [--hidden 128] [--layers 2] [--vocab 8192] [--device auto] [--json FILE]

Both sides see the same length-sorted batches of the same token ids. "bare" is `model(input_ids, attention_mask)` under
`torch.inference_mode()` (full logits, no loss); "profiler" is `sbnb.profile.model_losses` (the same forward plus the
per-example response-token cross-entropy, bf16 autocast on CUDA for both). The ratio is profiler tokens/s divided by
bare tokens/s. "profiler (full logits)" hides `logits_to_keep` from the profiler, to show what the LM-head saving on
prompt positions is worth. Tokenization is done once per run (not per checkpoint) and is reported separately.

The model is `sbnb.models.tiny_model(--model)` (default `tiny-llama`: a random Llama from its shipped config) reshaped
by --hidden (heads of 32 dimensions, MLP 4 x hidden), --layers and --vocab; 0 keeps the config's own value, so
`--model smollm2-135m --hidden 0 --layers 0 --vocab 0` times the real SmolLM2-135M shape (random weights: the cost of
a forward pass does not depend on their values).
"""

import argparse, json, os, statistics, time

os.environ.setdefault("SBNB_PROGRESS", "0")
import torch
from sbnb.profile import ProfileConfig, length_batches, model_losses


class FullLogits(torch.nn.Module):
    "Wraps a causal LM so that the profiler cannot pass `logits_to_keep` (it computes every position's logits)."

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask=None, use_cache=False):
        return self.m(input_ids=input_ids, attention_mask=attention_mask, use_cache=use_cache)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=64, help="examples")
    ap.add_argument("--model", default="tiny-llama", help="registered model whose shipped config is the starting point")
    ap.add_argument("--hidden", type=int, default=128, help="hidden size (0: the config's)")
    ap.add_argument("--layers", type=int, default=2, help="layers (0: the config's)")
    ap.add_argument("--vocab", type=int, default=8192, help="vocabulary (0: the config's)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--min-len", type=int, default=48)
    ap.add_argument("--max-len", type=int, default=320)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--json", default=None, help="also write the numbers to this file")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from sbnb.models import model_config, tiny_model

    shape = {}  # config overrides; the old LlamaConfig(...) shape when --model is tiny-llama
    if a.hidden:
        heads = max(1, a.hidden // 32)
        shape.update(
            hidden_size=a.hidden,
            intermediate_size=4 * a.hidden,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            head_dim=a.hidden // heads,
        )
    if a.layers:
        shape["num_hidden_layers"] = a.layers
    vocab = a.vocab or model_config(a.model).vocab_size
    cfg = ProfileConfig(batch_size=a.batch_size, max_length=a.max_len, device=a.device)
    dev = cfg.resolved_device()
    g = torch.Generator().manual_seed(0)
    # synthetic tokenized examples: a prompt of 40-70% of the length, the rest response
    examples = []
    for i in range(a.n):
        L = int(torch.randint(a.min_len, a.max_len + 1, (1,), generator=g))
        p = int(L * (0.4 + 0.3 * torch.rand(1, generator=g)))
        ids = torch.randint(3, vocab, (L,), generator=g).tolist()
        examples.append(
            {
                "id": f"x{i}",
                "source": "s",
                "_tok": {"input_ids": ids, "labels": [-100] * p + ids[p:], "attention_mask": [1] * L, "truncated": 0},
            }
        )
    tok_fn = lambda ex, tokenizer, max_length=512, style="alpaca": ex["_tok"]
    t0 = time.perf_counter()
    batches = length_batches(examples, None, cfg, tok_fn)
    t_batch = time.perf_counter() - t0
    n_tok = sum(int(b[2].sum()) for b in batches)
    model = tiny_model(a.model, seed=0, vocab_size=vocab, max_position_embeddings=a.max_len + 8, **shape).to(dev).eval()
    c = model.config
    bf16 = dev.startswith("cuda")
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)

    def bare():
        with torch.inference_mode(), torch.autocast(device_type=dev.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            for _, x, m, _y in batches:
                model(input_ids=x.to(dev), attention_mask=m.to(dev), use_cache=False).logits
        sync()

    prof = lambda: (model_losses(model, batches, a.n, cfg), sync())
    full = FullLogits(model)
    prof_full = lambda: (model_losses(full, batches, a.n, cfg), sync())

    fns = {"bare": bare, "prof": prof, "full": prof_full}
    for f in fns.values():
        f()  # warm-up
    ts = {k: [] for k in fns}
    for _ in range(a.repeats):  # interleaved, so that background load on a shared machine hits all three alike
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            ts[k].append(time.perf_counter() - t)
    tb, tp, tf = (statistics.median(ts[k]) for k in fns)
    print(
        f"device {dev}, bf16 autocast {bf16}, {a.n} examples, {n_tok} tokens in {len(batches)} batches, model {a.model} "
        f"hidden {c.hidden_size} x {c.num_hidden_layers} layers, {c.num_attention_heads}/{c.num_key_value_heads} heads, "
        f"MLP {c.intermediate_size}, vocab {c.vocab_size}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"batching (once per run):        {t_batch:.3f} s")
    print(f"bare forward:                   {tb:.3f} s  {n_tok / tb:,.0f} tokens/s")
    print(f"profiler:                       {tp:.3f} s  {n_tok / tp:,.0f} tokens/s  ratio {tb / tp:.2f}")
    print(f"profiler (full logits):         {tf:.3f} s  {n_tok / tf:,.0f} tokens/s  ratio {tb / tf:.2f}")
    if a.json:
        shape_out = {
            k: getattr(c, k)
            for k in (
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "num_key_value_heads",
                "intermediate_size",
                "vocab_size",
            )
        }
        out = {
            "device": dev,
            "gpu": torch.cuda.get_device_name(0) if dev.startswith("cuda") else None,
            "bf16": bf16,
            "model": a.model,
            "shape": shape_out,
            "examples": a.n,
            "tokens": n_tok,
            "batches": len(batches),
            "batch_size": a.batch_size,
            "min_len": a.min_len,
            "max_len": a.max_len,
            "repeats": a.repeats,
            "batching_s": t_batch,
            "seconds": {k: ts[k] for k in fns},
            "bare_s": tb,
            "profiler_s": tp,
            "profiler_full_logits_s": tf,
            "bare_tok_s": n_tok / tb,
            "profiler_tok_s": n_tok / tp,
            "profiler_full_logits_tok_s": n_tok / tf,
            "ratio_profiler_over_bare": tb / tp,
            "ratio_profiler_full_logits_over_bare": tb / tf,
            "loadavg": os.getloadavg(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
