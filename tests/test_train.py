"""sbnb.train: every tiny model x optimizer learns a repeated batch; runs record their cost; resume; CLI; benchmark smoke."""

import importlib.util, json, os, random, subprocess, sys
from pathlib import Path
import pytest
import torch
from sbnb.core import SbnbError, read_json, write_jsonl
from sbnb.models import MODELS, TINY_MODELS, REAL_MODELS, load_model, load_tokenizer, count_parameters
from sbnb.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]


def examples(n):
    r, out = random.Random(0), []
    for i in range(n):
        a, b = r.randint(2, 40), r.randint(2, 40)
        op, sym, val = ("plus", "+", a + b) if i % 2 == 0 else ("times", "*", a * b)
        out.append(
            {
                "id": f"ex{i}",
                "source": ["add", "mul"][i % 2],
                "instruction": f"What is {a} {op} {b}?",
                "output": f"We compute {a} {sym} {b} = {val}. The answer is {val}.",
                "answer": str(val),
            }
        )
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    "A data file of 16 examples and a small BPE tokenizer trained on them with sbnb.data."
    from sbnb.data import train_tokenizer, format_response
    from sbnb.benchmarks import format_prompt

    d = tmp_path_factory.mktemp("corpus")
    rows = examples(16)
    train_tokenizer([format_prompt(r) + format_response(r) for r in rows], d / "tok", vocab_size=200)
    write_jsonl(d / "train.jsonl", rows)
    write_jsonl(d / "batch.jsonl", rows[:4])
    return d


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("opt", ["adamw", "muon", "sam", "fsam", "muon+sam"])
@pytest.mark.parametrize("model", TINY_MODELS)
def test_loss_falls_on_a_repeated_batch(model, opt, corpus, tmp_path):
    # 4 examples, batch 4: every step sees the same batch
    cfg = TrainConfig(
        model=model,
        data=str(corpus / "batch.jsonl"),
        tokenizer=str(corpus / "tok"),
        out=str(tmp_path / "run"),
        max_steps=6,
        batch_size=4,
        warmup=0,
        scheduler="constant",
        logging_steps=1,
        save_steps=1000,
        max_length=96,
        optim=dict(name=opt, lr=3e-3, rho=0.05),
    )
    run = train(cfg)
    losses = [h["loss"] for h in read_json(run / "trainer_state.json")["log_history"] if "loss" in h]
    assert len(losses) == 6
    assert losses[-1] < 0.9 * losses[0], f"{model} {opt}: {losses}"
    cost = read_json(run / "cost.json")
    passes = 2 if "sam" in opt else 1
    assert (cost["forward_passes"], cost["backward_passes"], cost["optimizer_steps"]) == (6 * passes, 6 * passes, 6)
    assert 0 < cost["loss_tokens"] < cost["tokens"] and cost["wall_clock_s"] > 0 and cost["memory"]["device"] == "cpu"


def test_trainer_sam_step_equals_hand_written_update(corpus, tmp_path):
    "One SAM step through SbnbTrainer = w - lr * grad L(w + rho g/|g|) computed by hand on the same batch."
    from safetensors.torch import load_file
    from sbnb.core import seed_everything, read_jsonl
    from sbnb.train import Collator, tokenize_rows

    lr, rho = 0.5, 0.1
    cfg = TrainConfig(
        model="tiny-llama",
        data=str(corpus / "batch.jsonl"),
        tokenizer=str(corpus / "tok"),
        out=str(tmp_path / "s"),
        max_steps=1,
        batch_size=4,
        warmup=0,
        scheduler="constant",
        max_grad_norm=0,
        max_length=96,
        save_steps=100,
        optim=dict(name="sam", base="sgd", lr=lr, rho=rho, sgd_momentum=0.0),
    )
    got = load_file(str(train(cfg) / "model.safetensors"))
    seed_everything(cfg.seed)
    tok = load_tokenizer("tiny-llama", corpus / "tok")
    m = load_model("tiny-llama", tok)
    batch = Collator(tok.pad_token_id)(tokenize_rows(read_jsonl(corpus / "batch.jsonl"), tok, 96)[0])
    ps = [p for p in m.parameters()]
    g = torch.autograd.grad(m(**batch).loss, ps)
    norm = torch.stack([x.norm() for x in g]).norm()
    w0 = [p.detach().clone() for p in ps]
    with torch.no_grad():
        for p, x in zip(ps, g):
            p.add_(rho * x / norm)
    g2 = torch.autograd.grad(m(**batch).loss, ps)
    want = {n: w - lr * x for (n, _), w, x in zip(m.named_parameters(), w0, g2)}
    err = max((got[k] - want[k]).abs().max().item() for k in got)
    moved = max((got[k] - dict(zip([n for n, _ in m.named_parameters()], w0))[k]).abs().max().item() for k in got)
    print(f"trainer SAM step vs hand: max error {err:.1e}, max move {moved:.1e}")
    assert moved > 1e-2 and err < 1e-4 * moved, (err, moved)


def test_run_dir_records_everything(corpus, tmp_path):
    run = train(
        TrainConfig(
            model="tiny-llama",
            data=str(corpus / "train.jsonl"),
            tokenizer=str(corpus / "tok"),
            out=str(tmp_path / "run"),
            max_steps=2,
            batch_size=4,
            save_steps=1,
            max_length=96,
            seed=7,
            optim=dict(name="muon+sam", lr=1e-3),
        )
    )
    rec = read_json(run / "run.json")
    assert rec["seed"] == 7 and rec["config"]["optim"]["name"] == "muon+sam" and rec["status"] == "ok"
    assert rec["versions"]["torch"] and rec["versions"]["transformers"] and "commit" in rec["git"]
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    ck = run / "checkpoint-2"
    for f in ("model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json", "tokenizer.json"):
        assert (ck / f).exists(), f
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(ck)  # what the profiler does
    assert type(m).__name__ == "LlamaForCausalLM"


@pytest.mark.parametrize("opt", ["adamw", "fsam", "muon"])
def test_resume_matches_uninterrupted_run(opt, corpus, tmp_path):
    base = TrainConfig(
        model="tiny-qwen3",
        data=str(corpus / "train.jsonl"),
        tokenizer=str(corpus / "tok"),
        max_steps=4,
        batch_size=4,
        save_steps=2,
        max_length=96,
        optim=dict(name=opt, lr=3e-3),
    )
    full = train(base.replace(out=str(tmp_path / "full")))
    import shutil

    part = tmp_path / "part"
    shutil.copytree(full / "checkpoint-2", part / "checkpoint-2")
    train(base.replace(out=str(part), resume="last"))
    from safetensors.torch import load_file

    a, b = load_file(str(full / "model.safetensors")), load_file(str(part / "model.safetensors"))
    assert read_json(part / "trainer_state.json")["global_step"] == 4
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6


@pytest.mark.parametrize("opt", ["sam", "muon"])
def test_lora_run(opt, corpus, tmp_path):
    run = train(
        TrainConfig(
            model="tiny-gemma3",
            data=str(corpus / "batch.jsonl"),
            tokenizer=str(corpus / "tok"),
            out=str(tmp_path / "lora"),
            max_steps=3,
            batch_size=4,
            max_length=96,
            lora=True,
            warmup=0,
            logging_steps=1,
            optim=dict(name=opt, lr=1e-2),
        )
    )
    assert (run / "adapter_config.json").exists() and (run / "merged" / "config.json").exists()
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(run / "merged")
    losses = [h["loss"] for h in read_json(run / "trainer_state.json")["log_history"] if "loss" in h]
    assert losses[-1] < losses[0], losses
    m = read_json(run / "run.json")["model"]  # the run record names the model and counts only the adapters as trainable
    assert (m["name"], m["architecture"]) == ("tiny-gemma3", "Gemma3ForCausalLM") and 0 < m["trainable_parameters"] < m[
        "parameters"
    ]


def test_repeat_counts_sampler(corpus, tmp_path):
    w = tmp_path / "counts.json"
    w.write_text(json.dumps([3, 1, 1, 1]))
    run = train(
        TrainConfig(
            model="tiny-qwen3",
            data=str(corpus / "batch.jsonl"),
            tokenizer=str(corpus / "tok"),
            out=str(tmp_path / "w"),
            epochs=1,
            batch_size=2,
            max_length=96,
            weights=str(w),
        )
    )
    assert read_json(run / "cost.json")["examples"] == 6  # sum of counts, one epoch
    run = train(
        TrainConfig(
            model="tiny-qwen3",
            data=str(corpus / "batch.jsonl"),
            tokenizer=str(corpus / "tok"),
            out=str(tmp_path / "ww"),
            epochs=1,
            batch_size=2,
            max_length=96,
            weights=str(w),
            sampler="weighted",
        )
    )
    assert read_json(run / "cost.json")["examples"] == 6  # sum(counts) draws with replacement
    w.write_text(json.dumps([1, 1]))
    with pytest.raises(SbnbError, match="2 counts for 4 data rows"):
        train(
            TrainConfig(
                model="tiny-qwen3",
                data=str(corpus / "batch.jsonl"),
                tokenizer=str(corpus / "tok"),
                out=str(tmp_path / "w2"),
                max_steps=1,
                weights=str(w),
            )
        )


def test_tiny_model_takes_the_tokenizer_beside_the_data(corpus, tmp_path):
    import shutil

    shutil.copytree(corpus / "tok", tmp_path / "tokenizer")
    shutil.copy(corpus / "batch.jsonl", tmp_path / "train.jsonl")
    tok = load_tokenizer("tiny-qwen3", None, tmp_path / "train.jsonl")
    assert len(tok) == len(load_tokenizer("tiny-qwen3", corpus / "tok"))


def test_tiny_models_train_on_any_data_out_of_the_box(tmp_path, capsys):
    "A fresh clone: data with no tokenizer beside it and no generated corpus -> the shipped character-level tokenizer."
    import shutil
    from sbnb.cli import main
    from sbnb.core import project_root

    shutil.copy(project_root() / "data" / "sample" / "train.jsonl", tmp_path / "mine.jsonl")
    assert (
        main(
            [
                "train",
                "--model",
                "tiny-qwen3",
                "--data",
                str(tmp_path / "mine.jsonl"),
                "--max-steps",
                "2",
                "--batch-size",
                "4",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    m = read_json(tmp_path / "run" / "run.json")["model"]
    assert (m["kind"], m["name"], m["init"], m["architecture"]) == (
        "registered",
        "tiny-qwen3",
        "random",
        "Qwen3ForCausalLM",
    )
    assert m["parameters"] == m["trainable_parameters"] > 0
    # --tokenizer may name a corpus folder (it holds tokenizer/); a folder without a tokenizer is one line naming it
    shutil.copytree(project_root() / "data" / "sample" / "tokenizer", tmp_path / "corpus" / "tokenizer")
    assert (
        main(
            [
                "train",
                "--model",
                "tiny-llama",
                "--data",
                str(tmp_path / "mine.jsonl"),
                "--tokenizer",
                str(tmp_path / "corpus"),
                "--max-steps",
                "1",
                "--batch-size",
                "4",
                "--out",
                str(tmp_path / "run2"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "train",
                "--model",
                "tiny-llama",
                "--data",
                str(tmp_path / "mine.jsonl"),
                "--tokenizer",
                str(tmp_path),
                "--max-steps",
                "1",
                "--out",
                str(tmp_path / "run3"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"tokenizer {tmp_path}: no tokenizer.json" in err[0] and "corpus folder" in err[0]


def test_unknown_names_and_registry():
    with pytest.raises(SbnbError, match="valid: phi-2, llama-3.2-1b, gemma-3-1b-pt, qwen3-0.6b-base"):
        TrainConfig(model="gpt2")
    with pytest.raises(SbnbError, match="valid: adamw, muon, sam, fsam, muon\\+sam"):
        TrainConfig().override(["optim.name=lion"])
    twins = [t for t in TINY_MODELS if MODELS[t].twin_of]  # tiny-char is the experiment's own model, no twin
    assert {MODELS[t].twin_of for t in twins} == set(REAL_MODELS) and set(TINY_MODELS) - set(twins) == {"tiny-char"}
    assert {MODELS[t].arch for t in twins} == {MODELS[r].arch for r in REAL_MODELS}


def test_real_configs_have_published_sizes():
    sizes = {n: count_parameters(n) / 1e9 for n in REAL_MODELS}
    for n, want in {"phi-2": 2.78, "llama-3.2-1b": 1.24, "gemma-3-1b-pt": 1.00, "qwen3-0.6b-base": 0.60}.items():
        assert abs(sizes[n] - want) < 0.01, (n, sizes[n])


def test_cli_in_process(corpus, tmp_path):
    from sbnb.cli import main

    assert (
        main(
            [
                "train",
                "--model",
                "tiny-phi-2",
                "--data",
                str(corpus / "batch.jsonl"),
                "--optimizer",
                "sam",
                "--base",
                "muon",
                "--out",
                str(tmp_path / "cli"),
                "--max-steps",
                "2",
                "--lr",
                "1e-3",
                "--tokenizer",
                str(corpus / "tok"),
                "--set",
                "max_length=96",
                "--set",
                "optim.rho=0.1",
            ]
        )
        == 0
    )
    cfg = read_json(tmp_path / "cli" / "train_config.json")
    assert (cfg["optim"]["name"], cfg["optim"]["base"], cfg["optim"]["rho"]) == ("sam", "muon", 0.1)
    assert (
        main(["train", "--model", "tiny-gpt", "--data", str(corpus / "batch.jsonl"), "--out", str(tmp_path / "x")]) == 2
    )
    assert (
        main(["train", "--optimizer", "lion", "--data", str(corpus / "batch.jsonl"), "--out", str(tmp_path / "x")]) == 2
    )


def _env():
    return {
        **os.environ,
        "SBNB_PROGRESS": "0",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def test_python_m_sbnb_cli_train(corpus, tmp_path):
    "`python -m sbnb.cli train` (what `accelerate launch -m sbnb.cli train` runs in each process)."
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "sbnb.cli",
            "train",
            "--model",
            "tiny-qwen3",
            "--data",
            str(corpus / "batch.jsonl"),
            "--optimizer",
            "muon",
            "--out",
            str(tmp_path / "m"),
            "--max-steps",
            "2",
            "--tokenizer",
            str(corpus / "tok"),
            "--lr",
            "1e-3",
            "--set",
            "max_length=96",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert read_json(tmp_path / "m" / "cost.json")["optimizer_steps"] == 2


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _max_diff(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    x, y = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert set(x) == set(y)
    return max((x[k] - y[k]).abs().max().item() for k in x)


_DDP = dict(batch_size=4, max_steps=3, save_steps=0, max_length=96)  # 16 rows: an epoch is 2 global batches of 2 x 4


def _one_process_accumulating(corpus, out, opt, weights=None):
    "The reference: one process, the same two micro-batches of 4 per step accumulated (grad_accum 2)."
    return train(
        TrainConfig(
            model="tiny-qwen3",
            data=str(corpus / "train.jsonl"),
            tokenizer=str(corpus / "tok"),
            out=str(out),
            grad_accum=2,
            weights=weights,
            progress=False,
            optim=dict(name=opt, lr=1e-2),
            **_DDP,
        )
    )


def test_two_processes_train_to_the_weights_of_one_accumulating(corpus, tmp_path):
    """Data parallelism proven: `accelerate launch --config_file configs/accelerate_cpu2.yaml` really starts 2 CPU
    processes (gloo), every rank exits 0, and AdamW, SAM (its ascent on the all-reduced gradient) and Muon end at the
    weights of one process accumulating the same two micro-batches per step."""
    script = tmp_path / "runs.py"
    script.write_text(
        "import sys\nfrom sbnb.cli import main\n"
        "for opt in ('adamw', 'sam', 'muon'):\n"
        f"    assert main(['train', '--model', 'tiny-qwen3', '--data', {str(corpus / 'train.jsonl')!r}, '--tokenizer', "
        f"{str(corpus / 'tok')!r}, '--optimizer', opt, '--lr', '1e-2', '--batch-size', '4', '--max-steps', '3', "
        f"'--save-steps', '0', '--set', 'max_length=96', '--out', {str(tmp_path / 'ddp')!r} + '/' + opt]) == 0\n"
    )
    acc = Path(sys.executable).parent / "accelerate"
    r = subprocess.run(
        [
            str(acc),
            "launch",
            "--config_file",
            str(ROOT / "configs" / "accelerate_cpu2.yaml"),
            "--main_process_port",
            str(_free_port()),
            str(script),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    for opt in ("adamw", "sam", "muon"):
        ref = _one_process_accumulating(corpus, tmp_path / "one" / opt, opt)
        ddp, one = read_json(tmp_path / "ddp" / opt / "cost.json"), read_json(ref / "cost.json")
        assert (ddp["world_size"], one["world_size"], ddp["optimizer_steps"], one["optimizer_steps"]) == (2, 1, 3, 3)
        assert 2 * ddp["examples"] == one["examples"] == 24  # rank 0 saw half of every global batch
        d = _max_diff(tmp_path / "ddp" / opt, ref)
        print(f"{opt}: 2 processes vs 1 accumulating, max |weight difference| {d:.1e}")
        assert d <= 1e-5, (opt, d)


def test_torchrun_repeat_counts_shard_across_ranks(corpus, tmp_path):
    """`torchrun --nproc_per_node 2 -m sbnb.cli train --weights W` exits 0 on every rank (rank 1 waits for rank 0's
    cost.json), and the repeat-count sampler shards across ranks: the same weights as one process accumulating. The
    counts add up to 24 appearances per epoch, 3 global batches, so both sides cut epochs at the same step (where an
    epoch is not a multiple of the global batch, accelerate completes each rank's last batch with rows from the epoch's
    start, while one process takes a shorter last step: see 30_train)."""
    w = tmp_path / "counts.json"
    w.write_text(json.dumps([3] * 4 + [1] * 12))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(_free_port()),
            "-m",
            "sbnb.cli",
            "train",
            "--model",
            "tiny-qwen3",
            "--data",
            str(corpus / "train.jsonl"),
            "--tokenizer",
            str(corpus / "tok"),
            "--weights",
            str(w),
            "--lr",
            "1e-2",
            "--batch-size",
            "4",
            "--max-steps",
            "3",
            "--save-steps",
            "0",
            "--set",
            "max_length=96",
            "--out",
            str(tmp_path / "ddp"),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("trained tiny-qwen3") == 1  # rank 0 reports for both
    ref = _one_process_accumulating(corpus, tmp_path / "one", "adamw", weights=str(w))
    assert read_json(tmp_path / "ddp" / "cost.json")["world_size"] == 2
    d = _max_diff(tmp_path / "ddp", ref)
    print(f"repeat counts: 2 processes vs 1 accumulating, max |weight difference| {d:.1e}")
    assert d <= 1e-5, d


@pytest.mark.slow
def test_accelerate_launch_one_cpu_process(corpus, tmp_path):
    acc = Path(sys.executable).parent / "accelerate"
    r = subprocess.run(
        [
            str(acc),
            "launch",
            "--cpu",
            "--num_processes",
            "1",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "-m",
            "sbnb.cli",
            "train",
            "--model",
            "tiny-qwen3",
            "--data",
            str(corpus / "batch.jsonl"),
            "--optimizer",
            "sam",
            "--out",
            str(tmp_path / "acc"),
            "--max-steps",
            "2",
            "--tokenizer",
            str(corpus / "tok"),
            "--set",
            "max_length=96",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert read_json(tmp_path / "acc" / "cost.json")["forward_passes"] == 4


def test_gpu_benchmark_smoke(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_finetune", ROOT / "benchmarks" / "gpu_finetune.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--smoke", "--models", "tiny-qwen3", "--optimizers", "adamw", "sam", "--out", str(tmp_path)]) == 0
    rows = json.loads(next(tmp_path.glob("gpu_finetune_smoke-*.json")).read_text())["rows"]
    assert [(r["model"], r["optimizer"], r["passes_per_batch"]) for r in rows] == [
        ("tiny-qwen3", "adamw", 1),
        ("tiny-qwen3", "sam", 2),
    ]
    assert all(r["tokens_per_s"] > 0 for r in rows)
    assert "| tiny-qwen3 | sam |" in next(tmp_path.glob("gpu_finetune_smoke-*.md")).read_text()


@pytest.mark.gpu
def test_gpu_benchmark_qwen3(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_finetune", ROOT / "benchmarks" / "gpu_finetune.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (
        mod.main(
            ["--models", "qwen3-0.6b-base", "--optimizers", "adamw", "sam", "--steps", "6", "--out", str(tmp_path)]
        )
        == 0
    )


def test_group_by_length_keeps_the_epoch_and_pads_less(corpus, tmp_path):
    "`group_by_length=True`: one epoch sees the same examples (repeat counts kept), in micro-batches of similar length."
    from sbnb.upsample import LengthGrouped

    w = tmp_path / "counts.json"
    w.write_text(json.dumps([3, 1, 1, 1]))
    kw = dict(
        model="tiny-qwen3",
        data=str(corpus / "batch.jsonl"),
        tokenizer=str(corpus / "tok"),
        epochs=1,
        batch_size=2,
        max_length=96,
        weights=str(w),
    )
    a = read_json(train(TrainConfig(**kw, out=str(tmp_path / "a"))) / "cost.json")
    b = read_json(train(TrainConfig(**kw, out=str(tmp_path / "b"), group_by_length=True)) / "cost.json")
    assert a["examples"] == b["examples"] == 6 and a["tokens"] == b["tokens"]  # the same examples: the same real tokens
    with pytest.raises(SbnbError, match="group_by_length regroups whole epochs"):
        TrainConfig(**kw, out=str(tmp_path / "c"), group_by_length=True, upsample_until=1)
    lengths = [5, 50, 6, 49, 7, 48, 8, 47]
    order = list(LengthGrouped(range(8), lengths, 2, window=4))
    assert sorted(order) == list(range(8)) and all(
        abs(lengths[order[i]] - lengths[order[i + 1]]) < 5 for i in (0, 2, 4, 6)
    )
