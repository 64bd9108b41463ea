"""Time `sbnb.theory.simulate` with 8 seeds batched against 1 seed (goal: ratio ≤ 2.0).

Usage: .venv/bin/python benchmarks/theory_batch.py [--steps 2000] [--optimizer gd] [--repeats 3]
Prints one line per setting and the ratio (best of `repeats` runs each, single thread).
"""
import argparse, time
import torch
from sbnb.theory import SimConfig, simulate

def best_time(cfg: SimConfig, repeats: int) -> float:
    "The fastest of `repeats` runs of `simulate(cfg)`, in seconds (training loop only)."
    return min(simulate(cfg, curves=False)["train_seconds"] for _ in range(repeats))

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--optimizer", nargs="+", default=["gd", "sam"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    for opt in args.optimizer:
        t1 = best_time(SimConfig(seeds=1, steps=args.steps, optimizer=opt), args.repeats)
        t8 = best_time(SimConfig(seeds=8, steps=args.steps, optimizer=opt), args.repeats)
        print(f"{opt}: 1 seed {t1:.3f} s, 8 seeds batched {t8:.3f} s, ratio {t8 / t1:.2f} (goal <= 2.0; a Python loop would be ~8)")
