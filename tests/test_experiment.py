"""`sbnb experiment`: the smoke preset end to end (files and columns, not accuracy values), resume, bad input."""
import csv, json
from pathlib import Path
import pytest
from sbnb.cli import main
from sbnb.core import read_jsonl, read_json

@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("exp")
    assert main(["experiment", "--preset", "smoke", "--out", str(out)]) == 0
    return out / "smoke"

def _csv(p):
    with open(p) as f: return list(csv.DictReader(f))

def test_smoke_writes_every_table_plot_and_record(smoke):
    for f in ("summary.md", "runs.jsonl", "results.csv", "results.json", "cost.csv", "sb.csv", "selection.json",
              "selection_diagnostics.csv", "accuracy.png", "curves.png", "selection.png", "run.json"):
        assert (smoke / f).exists(), f
    res = _csv(smoke / "results.csv")
    assert {"run", "arm", "budget", "seeds", "steps", "test_mean", "test_ci", "ood_mean", "ood_ci"} <= set(res[0])
    assert {"test_diff", "test_diff_ci", "test_diff_positive", "test_rel_gain", "ood_diff"} <= set(res[1])
    runs = {r["run"] for r in res}
    assert runs == {"adamw", "adamw+up (epochs)", "adamw+up (steps)", "adamw+random (epochs)", "adamw+random (steps)", "sam"}
    cost = {r["run"]: r for r in _csv(smoke / "cost.csv")}
    assert float(cost["sam"]["passes_vs_adamw"]) == 2.0 and float(cost["adamw"]["time_vs_adamw"]) == 1.0
    assert {"sb_log2_std", "sb_ratio"} <= set(_csv(smoke / "sb.csv")[0])
    diag = _csv(smoke / "selection_diagnostics.csv")
    assert {"source", "size", "picked", "proxy_jaccard", "final_loss_picked", "final_loss_other"} <= set(diag[0])
    rec = read_json(smoke / "run.json")
    assert rec["status"] == "ok" and rec["config"]["preset"] == "smoke" and "commit" in rec["git"]

def test_runs_have_paired_seeds_budgets_and_evals(smoke):
    runs = read_jsonl(smoke / "runs.jsonl")
    assert len(runs) == 6 * 2
    by = {(r["arm"], r["budget"], r["seed"]): r for r in runs}
    for s in (0, 1):
        base, up_e, up_s = by[("adamw", "base", s)], by[("adamw+up", "epochs", s)], by[("adamw+up", "steps", s)]
        assert up_e["n_train"] > base["n_train"] == base["n_original"]
        assert up_e["steps"] > base["steps"] == up_s["steps"]          # same epochs = more steps; same steps = same
        assert by[("sam", "base", s)]["cost"]["forward_passes"] == 2 * base["cost"]["forward_passes"]
        for r in (base, up_e):
            assert r["evals"][0]["step"] == 0 and r["evals"][-1]["step"] == r["steps"] and len(r["evals"]) >= 3
            assert set(r["evals"][-1]["test"]) == set(r["evals"][-1]["ood"])

def test_rerun_reuses_finished_parts(smoke, tmp_path):
    before = read_jsonl(smoke / "runs.jsonl")
    assert main(["experiment", "--preset", "smoke", "--out", str(smoke.parent)]) == 0
    assert read_jsonl(smoke / "runs.jsonl") == before

def test_bad_override_is_a_one_line_error(tmp_path, capsys):
    assert main(["experiment", "--preset", "smoke", "--out", str(tmp_path), "seedz=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown key 'seedz'" in err[0] and "did you mean 'seeds'" in err[0]
    assert main(["experiment", "--preset", "smoke", "--out", str(tmp_path), "arms=adamw,adamw+magic"]) == 2
