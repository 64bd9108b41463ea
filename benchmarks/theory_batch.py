"""Time `sbnb.theory.simulate`: 8 seeds batched against 1 seed (goal: ratio ≤ 2.0), and a large pool against a small one.

Usage: .venv/bin/python benchmarks/theory_batch.py [--steps 2000] [--optimizer gd sam] [--repeats 3] [--pools 1024 16384]
Prints one line per setting and the ratios (best of `repeats` runs each, training loop only, single thread). A full-batch
step on a pool uses the pool's moments (`Pool.moments`), so its cost should not grow with the pool size (goal ≤ 1.5).
"""

import argparse
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
    ap.add_argument("--pools", nargs=2, type=int, default=[1024, 16384], help="small and large pool size")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for opt in args.optimizer:
        t1 = best_time(SimConfig(seeds=1, steps=args.steps, optimizer=opt), args.repeats)
        t8 = best_time(SimConfig(seeds=8, steps=args.steps, optimizer=opt), args.repeats)
        print(
            f"{opt}: 1 seed {t1:.3f} s, 8 seeds batched {t8:.3f} s, ratio {t8 / t1:.2f} (goal <= 2.0; a Python loop would be ~8)"
        )
    small, large = (best_time(SimConfig(seeds=8, steps=args.steps, pool=p), args.repeats) for p in args.pools)
    print(
        f"gd on a pool, 8 seeds: {args.pools[0]} prompts {small:.3f} s, {args.pools[1]} prompts {large:.3f} s, "
        f"ratio {large / small:.2f} (goal <= 1.5; per-prompt gradients would be ~{args.pools[1] / args.pools[0]:.0f})"
    )
