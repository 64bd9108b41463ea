"""sbnb.expcli: the `sbnb experiment` command: one-line errors for bad input, reruns reuse finished work."""

from pathlib import Path
import pytest
from sbnb.cli import main
from sbnb.core import read_json, read_jsonl

ROOT = Path(__file__).resolve().parents[1]


def test_bad_override_is_a_one_line_error(tmp_path, capsys):
    assert main(["experiment", "--preset", "smoke", "--out", str(tmp_path), "seedz=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown key 'seedz'" in err[0] and "did you mean 'seeds'" in err[0]
    assert main(["experiment", "--preset", "smoke", "--out", str(tmp_path), "arms=adamw,adamw+magic"]) == 2
    (tmp_path / "c.yaml").write_text("lr_adamw: 3\n")
    assert main(["experiment", "--preset", "smoke", "--out", str(tmp_path), "--config", str(tmp_path / "c.yaml")]) == 2
    assert str(tmp_path / "c.yaml") in capsys.readouterr().err


@pytest.mark.parametrize("name", ["default", "full", "llm-cpu-round1", "llm-cpu-round2"])
def test_report_recomputes_every_committed_comparison(name, tmp_path):
    "`sbnb experiment --report`: the committed comparisons come back from runs.jsonl exactly (keys added later are extra)."
    from sbnb.expcli import report

    rec = ROOT / "results" / name
    report(rec, tmp_path)
    old, new = read_json(rec / "comparisons.json"), read_json(tmp_path / "comparisons.json")
    assert len(new["comparisons"]) == len(old["comparisons"])
    for o, c in zip(old["comparisons"], new["comparisons"]):
        assert {k: c[k] for k in o} == o
    assert {k: new["baseline"][k] for k in old["baseline"]} == old["baseline"]


def test_the_main_job_never_edits_a_committed_record(tmp_path, monkeypatch, capsys):
    """`make experiment` then `make test`: a run goes to runs/ (ignored by git) under the working directory, never into
    results/; it ends by comparing itself with the committed record of its name; --promote is the explicit step."""
    import hashlib, subprocess

    def tree(p):
        return {
            str(f.relative_to(p)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(p.rglob("*"))
            if f.is_file()
        }

    before = tree(ROOT / "results")
    monkeypatch.chdir(tmp_path)
    argv = [
        "experiment",
        "--preset",
        "smoke",
        "seeds=1",
        "arms=adamw",
        "budgets=steps",
        "steps=4",
        "evals=2",
        "--name",
        "default",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert (
        tmp_path / "runs" / "default" / "runs.jsonl"
    ).exists() and f"compared with the record {ROOT / 'results' / 'default'}" in out
    assert tree(ROOT / "results") == before  # nothing committed was touched
    ignored = subprocess.run(["git", "check-ignore", "-q", "runs/default/runs.jsonl"], cwd=ROOT).returncode == 0
    assert ignored  # runs/ is ignored by git, so `git status` stays clean after the main job
    assert main(["experiment", "--promote", "runs/default", "--to", str(tmp_path / "rec")]) == 0
    assert read_jsonl(tmp_path / "rec" / "runs.jsonl") == read_jsonl(tmp_path / "runs" / "default" / "runs.jsonl")
    assert not (tmp_path / "rec" / "cache").exists()
    assert (
        main(["experiment", "--promote", "runs/default", "--to", str(tmp_path / "rec")]) == 2
    )  # never overwritten silently


def test_a_bad_value_is_refused_before_any_work(tmp_path, capsys):
    "`sbnb experiment --preset smoke lr=-1 --out X` exits 2 on one line within seconds and X is never made; --plan refuses it too."
    import time

    t0 = time.perf_counter()
    assert main(["experiment", "--preset", "smoke", "lr=-1", "--out", str(tmp_path / "X")]) == 2
    assert main(["experiment", "--preset", "paper", "lr=-1", "--plan", "--out", str(tmp_path / "P")]) == 2
    assert time.perf_counter() - t0 < 30 and not (tmp_path / "X").exists() and not (tmp_path / "P").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("lr must be positive" in e for e in err), err


def test_no_file_cites_a_design_document_the_repository_lacks():
    import subprocess

    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    bad = [
        f
        for f in files
        if not f.startswith(".ci/")
        and (ROOT / f).is_file()
        and f.endswith((".py", ".ipynb", ".md", ".ini", ".toml", ".txt", ".sh", "Makefile"))
        and any(d in (ROOT / f).read_text(errors="ignore") for d in ("DESIGN" + ".md", "STYLE" + ".md"))
    ]
    assert not bad, bad
