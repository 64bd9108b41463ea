"""sbnb.plan: the paper's cost plan, offline, adding up."""

from sbnb.cli import main
from sbnb.core import read_json
from sbnb.arms import run_names
from sbnb.expconfig import ExperimentConfig
from sbnb.plan import GPU_SOURCE


def test_paper_plan_is_offline_and_adds_up(tmp_path, capsys):
    "`sbnb experiment --preset paper --plan --out DIR`: every run of the four targets and the proxy, FLOPs = 6 (or 2) x params x tokens."
    import math

    assert main(["experiment", "--preset", "paper", "--plan", "--out", str(tmp_path)]) == 0
    assert "GPU-hours" in capsys.readouterr().out
    p = read_json(tmp_path / "plan.json")
    assert {"gpu", "mfu", "total_gpu_hours", "runs", "models", "weights_missing"} <= set(p)
    assert (
        p["gpu"] == {"name": "h100", "peak_tflops": 989.0, "memory_gib": 80, "source": GPU_SOURCE} and p["mfu"] == 0.35
    )
    assert {m["name"] for m in p["models"]} == {
        "phi-2",
        "llama-3.2-1b",
        "gemma-3-1b-pt",
        "qwen3-0.6b-base",
        "pythia-70m",
    }
    assert all(m["config_shipped"] for m in p["models"]) and p["configs_missing"] == []
    for r in p["runs"]:
        assert {
            "name",
            "role",
            "model",
            "params",
            "steps",
            "tokens",
            "flops",
            "gpu_hours",
            "memory_gib",
            "fits",
        } <= set(r)
        assert r["role"] in ("proxy", "target", "eval")
        assert r["flops"] == (6 if r["kind"] == "train" else 2) * r["params"] * r["tokens"] + r["optimizer_flops"]
    assert math.isclose(p["total_gpu_hours"], sum(r["gpu_hours"] for r in p["runs"]), abs_tol=0.01)
    cfg = ExperimentConfig.from_preset("paper")
    assert sum(r["role"] == "target" for r in p["runs"]) == 4 * len(run_names(cfg.arms, cfg.budgets)) * cfg.seeds
    assert {r["model"] for r in p["runs"] if r["role"] == "proxy"} == {"pythia-70m"}
    assert (
        main(
            [
                "experiment",
                "--preset",
                "paper",
                "--plan",
                "--gpu",
                "a100",
                "--mfu",
                "0.5",
                "--model",
                "phi-2",
                "--out",
                str(tmp_path / "a100"),
            ]
        )
        == 0
    )
    q = read_json(tmp_path / "a100" / "plan.json")
    assert q["gpu"]["peak_tflops"] == 312.0 and {r["model"] for r in q["runs"] if r["role"] == "target"} == {"phi-2"}
