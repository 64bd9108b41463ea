"""Profiler throughput against a bare batched no-grad forward pass over the same tokens (goal: ratio >= 0.9).

    .venv/bin/python benchmarks/profile_throughput.py [--n 128] [--hidden 128] [--layers 2] [--vocab 8192] [--device auto]

Both sides see the same length-sorted batches of the same token ids. "bare" is `model(input_ids, attention_mask)` under
`torch.inference_mode()` (full logits, no loss); "profiler" is `sbnb.profile.model_losses` (the same forward plus the
per-example response-token cross-entropy, bf16 autocast on CUDA for both). The ratio is profiler tokens/s divided by
bare tokens/s. "profiler (full logits)" hides `logits_to_keep` from the profiler, to show what the LM-head saving on
prompt positions is worth. Tokenization is done once per run (not per checkpoint) and is reported separately.
"""
import argparse, os, statistics, time
os.environ.setdefault("SBNB_PROGRESS", "0")
import torch
from sbnb.profile import ProfileConfig, length_batches, model_losses


class FullLogits(torch.nn.Module):
    "Wraps a causal LM so that the profiler cannot pass `logits_to_keep` (it computes every position's logits)."
    def __init__(self, m): super().__init__(); self.m = m
    def forward(self, input_ids, attention_mask=None, use_cache=False): return self.m(input_ids=input_ids, attention_mask=attention_mask, use_cache=use_cache)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=64, help="examples")
    ap.add_argument("--hidden", type=int, default=128); ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=8192); ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--min-len", type=int, default=48); ap.add_argument("--max-len", type=int, default=320)
    ap.add_argument("--repeats", type=int, default=5); ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = ProfileConfig(batch_size=a.batch_size, max_length=a.max_len, device=a.device)
    dev = cfg.resolved_device()
    g = torch.Generator().manual_seed(0)
    # synthetic tokenized examples: a prompt of 40-70% of the length, the rest response
    examples = []
    for i in range(a.n):
        L = int(torch.randint(a.min_len, a.max_len + 1, (1,), generator=g))
        p = int(L * (0.4 + 0.3 * torch.rand(1, generator=g)))
        ids = torch.randint(3, a.vocab, (L,), generator=g).tolist()
        examples.append({"id": f"x{i}", "source": "s", "_tok": {"input_ids": ids, "labels": [-100] * p + ids[p:],
                                                                 "attention_mask": [1] * L, "truncated": 0}})
    tok_fn = lambda ex, tokenizer, max_length=512, style="alpaca": ex["_tok"]
    t0 = time.perf_counter()
    batches = length_batches(examples, None, cfg, tok_fn)
    t_batch = time.perf_counter() - t0
    n_tok = sum(int(b[2].sum()) for b in batches)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=a.vocab, hidden_size=a.hidden, intermediate_size=4 * a.hidden,
                                         num_hidden_layers=a.layers, num_attention_heads=max(1, a.hidden // 32),
                                         num_key_value_heads=max(1, a.hidden // 32), max_position_embeddings=a.max_len + 8)).to(dev).eval()
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
    for f in fns.values(): f()  # warm-up
    ts = {k: [] for k in fns}
    for _ in range(a.repeats):  # interleaved, so that background load on a shared machine hits all three alike
        for k, f in fns.items():
            t = time.perf_counter(); f(); ts[k].append(time.perf_counter() - t)
    tb, tp, tf = (statistics.median(ts[k]) for k in fns)
    print(f"device {dev}, bf16 autocast {bf16}, {a.n} examples, {n_tok} tokens in {len(batches)} batches, "
          f"model hidden {a.hidden} x {a.layers} layers, vocab {a.vocab}")
    print(f"batching (once per run):        {t_batch:.3f} s")
    print(f"bare forward:                   {tb:.3f} s  {n_tok / tb:,.0f} tokens/s")
    print(f"profiler:                       {tp:.3f} s  {n_tok / tp:,.0f} tokens/s  ratio {tb / tp:.2f}")
    print(f"profiler (full logits):         {tf:.3f} s  {n_tok / tf:,.0f} tokens/s  ratio {tb / tf:.2f}")


if __name__ == "__main__":
    main()
