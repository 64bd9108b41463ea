"""The README's walkthrough, run line by line as a user runs it: the installed `sbnb` script, in a fresh folder."""
import os, re, shlex, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SBNB = Path(sys.executable).parent / "sbnb"

def walkthrough() -> list[str]:
    "The command lines of the README block that follows 'The method, step by step'."
    text = (ROOT / "README.md").read_text()
    block = text.split("The method, step by step", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [l.strip() for l in block.strip().splitlines() if l.strip() and not l.startswith("#")]

def test_the_walkthrough_is_the_method_in_pipeline_order():
    cmds = [shlex.split(c)[1] for c in walkthrough()]
    assert cmds == ["data", "train", "profile", "upsample", "upsample", "train", "eval", "simulate"]

def test_every_walkthrough_line_runs(tmp_path):
    env = dict(os.environ, SBNB_PROGRESS="0")
    for line in walkthrough():
        argv = shlex.split(line)
        assert argv[0] == "sbnb"
        r = subprocess.run([str(SBNB), *argv[1:]], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=900)
        assert r.returncode == 0, f"{line}\n{r.stderr[-2000:]}"
    d = tmp_path / "demo"
    for f in ("corpus/train.jsonl", "proxy/checkpoint-30", "traj.jsonl", "up.jsonl", "up_report/selection.json", "weights.json",
              "target/model.safetensors", "eval/summary.json", "sim.json", "run.json"):
        assert (d / f).exists(), f
