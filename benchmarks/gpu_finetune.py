"""Fine-tuning throughput, peak memory and MFU per model and optimizer on one GPU, through sbnb's Trainer.

Each (model, optimizer) pair builds the model from its shipped config (`data/models/<name>`, random weights: the
cost of a step does not depend on the values), trains `--steps` optimizer steps on random token sequences of
`--seq` tokens with `sbnb.train`'s `SbnbTrainer` (the same code path as `sbnb train`: HF Trainer, bf16 autocast,
SAM's second pass inside `training_step`), and times the steps after `--warmup`.

* tokens/s: training tokens per second (each token counted once, whatever the optimizer's number of passes);
* peak memory: `torch.cuda.max_memory_allocated` over the run (weights, optimizer state, activations);
* MFU: model FLOPs executed per second / the GPU's peak dense bf16 FLOP/s. Model FLOPs per token and pass are
  6 x (parameters of the linear layers, head included) + 12 x layers x seq x (heads x head_dim) for attention
  (the PaLM convention, causal masking not discounted). SAM and f-SAM execute two passes, so their MFU counts both;
  gradient checkpointing's recomputation is not counted. The 6N assumes full fine-tuning: with --lora the frozen
  weights need no weight gradients (about 4N), so the MFU printed for LoRA runs is an overestimate.

Writes `gpu_finetune_<device>.md` and `.json` under `--out` (default benchmarks/results) with SAM's time and memory
as ratios of AdamW's for each model.

Usage (one GPU):   .venv/bin/python benchmarks/gpu_finetune.py --models qwen3-0.6b-base --optimizers adamw muon sam
All real models:   .venv/bin/python benchmarks/gpu_finetune.py
CPU smoke test:    .venv/bin/python benchmarks/gpu_finetune.py --smoke --out /tmp/bench   (tiny twins, seq 32, 3 steps)

Without a CUDA GPU and without --smoke (as under `make bench`), it says so on one line and runs the smoke test: the real
sizes do not fit a CPU. The table and JSON are rewritten after every (model, optimizer) pair, so a run stopped by a
time limit keeps the pairs it finished. MFU and the achieved model TFLOP/s are printed per pair and in the table.
"""

from __future__ import annotations
import argparse, gc, json, sys, time
from pathlib import Path

PEAK_BF16_TFLOPS = {
    "H100": 989.0,
    "H200": 989.0,
    "GH200": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "A10": 125.0,
    "L4": 121.0,
    "4090": 165.0,
    "B200": 2250.0,
}


def peak_flops(name: str, override: float | None) -> float | None:
    "Dense bf16 peak FLOP/s of the GPU named `name` (None if unknown and not given)."
    if override:
        return override * 1e12
    for k, v in PEAK_BF16_TFLOPS.items():
        if k in name:
            return v * 1e12
    return None


def model_flops_per_token(model, seq: int) -> float:
    "Training FLOPs per token for one forward+backward pass (6 N_linear + 12 L T d_attn)."
    import torch

    n_lin = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    c = model.config
    heads = c.num_attention_heads
    d_attn = heads * (getattr(c, "head_dim", None) or c.hidden_size // heads)
    return 6 * n_lin + 12 * c.num_hidden_layers * seq * d_attn


def run_one(name: str, optimizer: str, args) -> dict:
    "Train `args.steps` steps of model `name` with `optimizer` on random tokens; timings and memory."
    import torch
    from transformers import TrainingArguments, TrainerCallback
    from sbnb.train import load_model, trainer_class
    from sbnb.optim import OptimConfig

    gpu = torch.cuda.is_available()
    torch.manual_seed(0)
    with torch.device("cuda" if gpu else "cpu"):  # random init on the GPU: seconds, not minutes, for 2.7B
        model = load_model(name, None, init="random")
    if args.lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
        )
    V = model.config.vocab_size if not args.lora else model.base_model.model.config.vocab_size
    fpt = model_flops_per_token(model, args.seq)
    n = args.batch * (args.steps + 1)
    g = torch.Generator().manual_seed(0)
    data = [
        {
            "input_ids": (ids := torch.randint(0, V, (args.seq,), generator=g)),
            "labels": ids.clone(),
            "attention_mask": torch.ones(args.seq, dtype=torch.long),
        }
        for _ in range(n)
    ]

    class Timer(TrainerCallback):
        def __init__(self):
            self.t = []

        def on_step_end(self, a, state, control, **kw):
            if gpu:
                torch.cuda.synchronize()
            self.t.append(time.perf_counter())

    timer = Timer()
    targs = TrainingArguments(
        output_dir=str(Path(args.out) / "_tmp"),
        per_device_train_batch_size=args.batch,
        max_steps=args.steps,
        learning_rate=1e-5,
        lr_scheduler_type="constant",
        save_strategy="no",
        logging_steps=10**6,
        report_to="none",
        bf16=gpu,
        activation_checkpointing=args.grad_ckpt,
        use_cpu=not gpu,
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        max_grad_norm=1.0,
        seed=0,
        torch_compile=args.compile,
    )
    trainer = trainer_class()(
        model=model,
        args=targs,
        train_dataset=data,
        data_collator=lambda b: {k: torch.stack([x[k] for x in b]) for k in b[0]},
        optim_config=OptimConfig(name=optimizer, lr=1e-5),
        callbacks=[timer],
    )
    if gpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - t0
    w = min(args.warmup, len(timer.t) - 1)
    step_s = (
        (timer.t[-1] - timer.t[w]) / (len(timer.t) - 1 - w) if len(timer.t) - 1 > w else total / max(1, len(timer.t))
    )
    passes = trainer.cost["forward_passes"] / max(1, trainer.cost["micro_batches"])
    tokens_per_step = args.batch * args.seq
    out = {
        "model": name,
        "optimizer": optimizer,
        "lora": args.lora,
        "seq": args.seq,
        "batch": args.batch,
        "steps": args.steps,
        "step_s": step_s,
        "tokens_per_s": tokens_per_step / step_s,
        "passes_per_batch": passes,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if gpu else None,
        "params_b": sum(p.numel() for p in model.parameters()) / 1e9,
        "flops_per_token_pass": fpt,
    }
    pk = peak_flops(torch.cuda.get_device_name(0) if gpu else "cpu", args.peak_tflops)
    out["model_tflops"] = fpt * passes * tokens_per_step / step_s / 1e12  # achieved model FLOP/s, whatever the GPU
    out["mfu"] = out["model_tflops"] * 1e12 / pk if pk else None
    del trainer, model, data
    gc.collect()
    if gpu:
        torch.cuda.empty_cache()
    return out


def table(rows: list[dict], device: str) -> str:
    "A markdown table, with SAM-type optimizers' time and memory as ratios of AdamW's on the same model."
    base = {r["model"]: r for r in rows if r["optimizer"] == "adamw" and "error" not in r}
    lines = [
        f"# Fine-tuning cost on {device}",
        "",
        "| model | optimizer | tokens/s | step (s) | peak mem (GiB) | model TFLOP/s | MFU | time / AdamW | memory / AdamW |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['optimizer']} | {r['error']} | | | | | | |")
            continue
        b = base.get(r["model"])
        tr = f"{r['step_s'] / b['step_s']:.2f}" if b else ""
        mr = f"{r['peak_mem_gib'] / b['peak_mem_gib']:.2f}" if b and r["peak_mem_gib"] and b["peak_mem_gib"] else ""
        mem = f"{r['peak_mem_gib']:.1f}" if r["peak_mem_gib"] is not None else "n/a (CPU)"
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
        lines.append(
            f"| {r['model']} | {r['optimizer']} | {r['tokens_per_s']:.0f} | {r['step_s']:.3f} | {mem} | "
            f"{r['model_tflops']:.3g} | {mfu} | {tr} | {mr} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--models",
        nargs="+",
        default=None,
        help="registered names (default: every real model, sbnb.models.REAL_MODELS)",
    )
    ap.add_argument("--optimizers", nargs="+", default=["adamw", "muon", "sam", "fsam", "muon+sam"])
    ap.add_argument("--seq", type=int, default=512, help="tokens per sequence")
    ap.add_argument("--batch", type=int, default=8, help="sequences per step")
    ap.add_argument("--steps", type=int, default=12, help="optimizer steps (timed after --warmup)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed first steps")
    ap.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing (recompute not counted in MFU)")
    ap.add_argument("--lora", action="store_true", help="LoRA r 8 on q/v instead of full fine-tuning")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (TrainingArguments.torch_compile)")
    ap.add_argument(
        "--peak-tflops", type=float, default=None, help="GPU peak dense bf16 TFLOP/s if not in the built-in list"
    )
    ap.add_argument("--smoke", action="store_true", help="CPU smoke test: tiny twins, seq 32, batch 2, 3 steps")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"), help="folder for the table")
    args = ap.parse_args(argv)
    import torch
    from sbnb.models import REAL_MODELS, TINY_MODELS
    from sbnb.record import device_info

    if not args.smoke and not torch.cuda.is_available():
        print(
            "gpu_finetune: no CUDA GPU here, so this runs the CPU smoke test (--smoke: tiny twins, seq 32, 3 steps); "
            "the real sizes need a GPU",
            flush=True,
        )
        args.smoke = True
    if args.smoke:
        torch.set_num_threads(1)
        args.models = args.models or list(TINY_MODELS)
        args.seq, args.batch, args.steps, args.warmup = min(args.seq, 32), min(args.batch, 2), min(args.steps, 3), 1
    args.models = args.models or list(REAL_MODELS)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = ("smoke-" if args.smoke else "") + device.replace(" ", "_").replace("/", "_")
    rows = []

    def write() -> str:
        "The table and JSON of the rows so far (rewritten after every pair)."
        md = (
            table(rows, device)
            + f"\nseq {args.seq}, batch {args.batch}, {args.steps} steps ({args.warmup} untimed), bf16 autocast "
            f"{'on' if torch.cuda.is_available() else 'off'}, gradient checkpointing {'on' if args.grad_ckpt else 'off'}, "
            f"{'LoRA r 8 q/v' if args.lora else 'full fine-tuning'}, torch.compile {'on' if args.compile else 'off'}. Command: `{' '.join(sys.argv)}`\n"
        )
        (out / f"gpu_finetune_{tag}.md").write_text(md)
        (out / f"gpu_finetune_{tag}.json").write_text(
            json.dumps({"device": device_info(), "args": vars(args), "rows": rows}, indent=2)
        )
        return md

    for m in args.models:
        for o in args.optimizers:
            try:
                r = run_one(m, o, args)
            except torch.cuda.OutOfMemoryError:
                r = {"model": m, "optimizer": o, "error": "out of memory"}
                gc.collect()
                torch.cuda.empty_cache()
            rows.append(r)
            print(json.dumps(r), flush=True)
            if "error" not in r:
                mfu = "n/a (no known peak for this device)" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
                print(
                    f"{m} {o}: {r['tokens_per_s']:.0f} tokens/s, {r['model_tflops']:.3g} model TFLOP/s, MFU {mfu}",
                    flush=True,
                )
            write()
    import shutil

    shutil.rmtree(out / "_tmp", ignore_errors=True)
    print(write())
    return 0


if __name__ == "__main__":
    sys.exit(main())
