"""The README as a new user meets it: the walkthrough, run line by line with the installed `sbnb` script in a fresh
folder; the set-up in a copy of the project with nothing beside it; and the project speaking only of itself."""

import os, re, shlex, shutil, subprocess, sys
from pathlib import Path

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
    for f in (
        "corpus/train.jsonl",
        "proxy/checkpoint-30",
        "traj.jsonl",
        "up.jsonl",
        "up_report/selection.json",
        "weights.json",
        "target/model.safetensors",
        "eval/summary.json",
        "sim.json",
        "run.json",
    ):
        assert (d / f).exists(), f


# ---------------------------------------------------------------- the lever in a Hugging Face user's own Trainer
def trainer_block() -> str:
    "The Python block of the README section 'Use the lever in your own Trainer'."
    text = (ROOT / "README.md").read_text()
    return text.split("## Use the lever in your own Trainer", 1)[1].split("```python", 1)[1].split("```", 1)[0]


CHECK = """
assert type(ds) is type(up) is type(same) is Dataset                      # a Dataset in, a Dataset out
assert len(up) == len(same) == len(ds) + len(sel) == len(set(up["id"]))  # every pick twice, every id once
assert sorted(same["id"]) == sorted(r["copy_of"] or r["id"] for r in up)  # the two routes: one distribution
assert sel.config.recipe == "authors" and sel.summary().startswith("recipe authors")
"""


def test_the_trainer_section_runs_as_written(tmp_path):
    "The README's Python block, as written, from a folder that holds the shipped sample data as the repository does."
    shutil.copytree(ROOT / "data" / "sample", tmp_path / "data" / "sample")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1"
    )
    env.update(SBNB_PROGRESS="0", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    r = subprocess.run(
        [sys.executable, "-c", trainer_block() + CHECK],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "sources selected whole by the small-source rule" in r.stdout


# ---------------------------------------------------------------- a new user's clone
BESIDE = "../" + "shared"  # spelled apart, so that this file does not name it either
FORBIDDEN = re.compile(
    "|".join(
        ["device" + " tool", "was" + " lent", "lent" + " to", "files" + "_at", "budget" + "_left", r"\." + "library/"]
    ),
    re.I,
)


def setup_block() -> list[str]:
    "The command lines of the README's set-up block (after 'Set-up and the two commands'), comments dropped."
    block = (
        (ROOT / "README.md")
        .read_text()
        .split("## Set-up and the two commands", 1)[1]
        .split("```bash", 1)[1]
        .split("```", 1)[0]
    )
    return [l.split("#", 1)[0].strip() for l in block.strip().splitlines() if l.strip()]


def tracked_files() -> list[str]:
    return subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()


def test_the_project_speaks_only_of_itself():
    "No file outside .ci/ names a folder beside the checkout; none (results aside) describes the machines it was built on."
    for f in tracked_files():
        p = ROOT / f
        if not p.is_file() or p.is_symlink():
            continue
        text = p.read_text(errors="ignore")
        if not f.startswith(".ci/"):
            assert BESIDE not in text, f
        if not f.startswith("results/"):
            assert not FORBIDDEN.search(text), (f, FORBIDDEN.search(text).group(0))


def test_readme_set_up_in_a_clone_with_nothing_beside_it(tmp_path, sample_benchmarks):
    """The README's set-up as a new user meets it: a copy of the tracked files with nothing beside it, an empty home,
    no SBNB_BENCHMARKS, offline. The two make commands are only parsed here (`make -n`: they take minutes; CI runs
    them); the optional third is run, offline (one line naming --from) and with --from; `sbnb eval --benchmarks gsm8k`
    names the folder it looked in and the fetch command. The checkout's .venv is reused (linked), with the copy's code."""
    cmds = setup_block()
    assert cmds == ["make experiment", "make test", ".venv/bin/sbnb benchmarks fetch"], cmds
    clone, home = tmp_path / "work" / "sbnb", tmp_path / "home"
    for f in tracked_files():
        if (ROOT / f).is_file():
            (clone / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, clone / f)
    home.mkdir()
    (clone / ".venv").symlink_to(Path(sys.prefix))  # the set-up's virtual environment, running this test
    assert not (clone.parent / "shared").exists() and list(clone.parent.iterdir()) == [clone]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBNB_", "XDG_"))}
    env.update(
        HOME=str(home),
        PYTHONPATH=str(clone),
        SBNB_PROGRESS="0",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )

    def sh(line, timeout=300):
        return subprocess.run(shlex.split(line), cwd=clone, env=env, capture_output=True, text=True, timeout=timeout)

    where = home / ".cache" / "sbnb" / "benchmarks"
    r = sh(".venv/bin/python -c 'import sbnb.core as c; print(c.project_root(), c.benchmarks_dir())'")
    assert r.stdout.split() == [str(clone), str(where)], r.stdout + r.stderr  # the copy's code, the user's cache
    for make, runs in zip(cmds[:2], (".venv/bin/sbnb experiment", ".venv/bin/python -m pytest")):
        r = sh(f"make -n {make.split()[1]}")
        assert r.returncode == 0 and runs in r.stdout, r.stdout + r.stderr
    r = sh(cmds[2])  # offline, nothing to copy from: one line naming the flag
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--from DIR" in r.stderr, r.stderr
    r = sh(".venv/bin/sbnb eval --model tiny-char-base --benchmarks gsm8k --out ev")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert str(where) in r.stderr and "sbnb benchmarks fetch gsm8k" in r.stderr and not (clone / "ev").exists()
    r = sh(".venv/bin/sbnb benchmarks list")
    assert r.returncode == 0 and f"benchmark folder: {where}" in r.stdout and "`sbnb benchmarks fetch`" in r.stdout
    r = sh(f"{cmds[2]} --from {sample_benchmarks}")
    assert r.returncode == 0, r.stderr
    r = sh(".venv/bin/sbnb benchmarks list")
    assert r.returncode == 0 and "missing" not in r.stdout and r.stdout.count(" ok ") == 12, r.stdout


# ---------------------------------------------------------------- the paper on GPUs, its CPU lines
def gpu_block() -> list[str]:
    "The command lines of the README block under 'Reproduce the paper on GPUs', comments dropped."
    block = (
        (ROOT / "README.md")
        .read_text()
        .split("## Reproduce the paper on GPUs", 1)[1]
        .split("```bash", 1)[1]
        .split("```", 1)[0]
    )
    return [l.split("  #", 1)[0].strip() for l in block.strip().splitlines() if l.strip()]


def test_the_gpu_sections_cpu_lines_run_as_written(tmp_path):
    "The plan and the CPU rehearsal of `--preset paper` (the lines that need neither a GPU nor the hub) run as the README gives them."
    lines = gpu_block()
    cpu = [l for l in lines if "--plan" in l or "mathinstruct-like" in l or "tiny-qwen3" in l]
    assert len(cpu) == 3 and all(l.startswith("sbnb ") for l in cpu), cpu
    env = dict(os.environ, SBNB_PROGRESS="0", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    for line in cpu:
        r = subprocess.run(
            [str(SBNB), *shlex.split(line)[1:]], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=900
        )
        assert r.returncode == 0, f"{line}\n{r.stderr[-2000:]}"
    assert (tmp_path / "plan" / "plan.json").exists() and (tmp_path / "mi.json").exists()
    assert list((tmp_path / "demo").rglob("comparisons.json")), "the CPU rehearsal wrote no comparisons"
