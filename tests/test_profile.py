"""sbnb.profile: per-example response losses over checkpoints, resume, the Trainer callback, the generic entry and the CLI."""

import json
import numpy as np
import pytest
import torch
from sbnb.core import SbnbError, read_json, read_jsonl, write_jsonl
from sbnb.record import portable_path
from sbnb.data import tokenize_example
import sbnb.profile as P
from sbnb.profile import (
    ProfileConfig,
    find_checkpoints,
    length_batches,
    model_losses,
    profile_checkpoints,
    profile_losses,
    read_rows,
    TrajectoryRecorder,
    trajectory_callback,
)
from sbnb.cli import main

torch.set_num_threads(1)


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;?!+-*/=()#\n")
    vocab = {c: i for i, c in enumerate(["<pad>", "<unk>", "<s>", "</s>"] + chars)}
    t = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    return PreTrainedTokenizerFast(
        tokenizer_object=t, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )


def tiny_llama(tok, seed):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=512,
            pad_token_id=tok.pad_token_id,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
        )
    )


def make_examples(n=30, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a, b = rng.integers(1, 10 ** int(rng.integers(1, 5)), size=2).tolist()
        out.append(
            {
                "id": f"e{i:03d}",
                "source": ["add", "sub", "mul"][i % 3],
                "instruction": f"What is {a} + {b}?",
                "output": f"{a} + {b} = {a + b}." + " Check." * int(rng.integers(0, 4)),
                "answer": str(a + b),
            }
        )
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("prof")
    tok = tiny_tokenizer()
    for step, seed in [(1000, 2), (50, 0), (500, 1)]:  # deliberately not in step order on disk
        d = root / "run" / f"checkpoint-{step}"
        tiny_llama(tok, seed).save_pretrained(d)
        tok.save_pretrained(d)
    (root / "run" / "checkpoint-x").mkdir()  # not a checkpoint: ignored
    ex = make_examples()
    write_jsonl(root / "data.jsonl", ex)
    return root, tok, ex


def direct_loss(model, tok, ex):
    t = tokenize_example(ex, tok, 512)
    x, y = torch.tensor([t["input_ids"]]), torch.tensor([t["labels"]])
    with torch.no_grad():
        lg = model(input_ids=x).logits[0, :-1]
    return torch.nn.functional.cross_entropy(lg, y[0, 1:], ignore_index=-100).item()


def test_find_checkpoints_sorted_by_step(setup, tmp_path):
    root, _, _ = setup
    assert [s for s, _ in find_checkpoints(root / "run")] == [50, 500, 1000]
    with pytest.raises(SbnbError, match="no checkpoint-<step> folders"):
        find_checkpoints(tmp_path)
    with pytest.raises(SbnbError, match="not a directory"):
        find_checkpoints(tmp_path / "nope")


def test_losses_match_direct_computation(setup):
    root, tok, ex = setup
    cfg = ProfileConfig(batch_size=7, device="cpu")
    bs = length_batches(ex, tok, cfg)
    assert sorted(torch.cat([b[0] for b in bs]).tolist()) == list(range(len(ex)))
    pad = sum(int((b[2] == 0).sum()) for b in bs)
    total = sum(b[2].numel() for b in bs)
    assert pad / total < 0.1  # sorted by length: little padding
    m = tiny_llama(tok, 0)
    got = model_losses(m, bs, len(ex), cfg)
    want = torch.tensor([direct_loss(m, tok, e) for e in ex])
    assert torch.allclose(got, want, atol=1e-4)


def test_profile_checkpoints_and_meta(setup, tmp_path):
    root, tok, ex = setup
    cfg = ProfileConfig(batch_size=8, device="cpu")
    rows = profile_checkpoints(root / "run", ex, tmp_path / "traj.parquet", config=cfg)
    assert [r["id"] for r in rows] == [e["id"] for e in ex] and [r["source"] for r in rows] == [e["source"] for e in ex]
    assert all(len(r["losses"]) == 3 for r in rows)
    assert read_rows(tmp_path / "traj.parquet") == rows
    # column order = step order: column 0 is checkpoint-50 = seed 0
    assert abs(rows[4]["losses"][0] - direct_loss(tiny_llama(tok, 0), tok, ex[4])) < 1e-4
    assert abs(rows[4]["losses"][2] - direct_loss(tiny_llama(tok, 2), tok, ex[4])) < 1e-4
    meta = read_json(tmp_path / "traj.parquet.meta.json")
    assert meta["steps"] == [50, 500, 1000] and meta["config"]["batch_size"] == 8
    assert (
        meta["model"]["architecture"] == "LlamaForCausalLM" and meta["model"]["parameters"] > 0
    )  # the first checkpoint
    assert "commit" in meta["git"] and meta["versions"]["transformers"]
    assert not (tmp_path / "traj.parquet.partial").exists()


def test_resume_after_kill_gives_identical_file(setup, tmp_path, monkeypatch):
    root, tok, ex = setup
    cfg = ProfileConfig(batch_size=8, device="cpu")
    profile_checkpoints(root / "run", ex, tmp_path / "full.jsonl", config=cfg)
    orig, calls = P.model_losses, []

    def killed_after_first(*a, **k):
        if calls:
            raise KeyboardInterrupt("killed")
        calls.append(1)
        return orig(*a, **k)

    monkeypatch.setattr(P, "model_losses", killed_after_first)
    with pytest.raises(KeyboardInterrupt):
        profile_checkpoints(root / "run", ex, tmp_path / "t.jsonl", config=cfg)
    assert not (tmp_path / "t.jsonl").exists()
    assert [p.name for p in (tmp_path / "t.jsonl.partial").iterdir()] == ["step-50.json"]
    monkeypatch.setattr(P, "model_losses", orig)
    ran = []
    monkeypatch.setattr(P, "model_losses", lambda *a, **k: ran.append(1) or orig(*a, **k))
    profile_checkpoints(root / "run", ex, tmp_path / "t.jsonl", config=cfg)
    assert len(ran) == 2  # the done checkpoint was skipped
    assert (tmp_path / "t.jsonl").read_bytes() == (tmp_path / "full.jsonl").read_bytes()
    assert [t["resumed"] for t in read_json(tmp_path / "t.jsonl.meta.json")["timing"]] == [True, False, False]


def test_stale_partial_is_recomputed(setup, tmp_path, monkeypatch):
    root, tok, ex = setup
    part = tmp_path / "t.jsonl.partial"
    part.mkdir()
    (part / "step-50.json").write_text(
        json.dumps(
            {
                "fingerprint": "other",
                "checkpoint": str(root / "run" / "checkpoint-50"),
                "step": 50,
                "losses": [0.0] * len(ex),
            }
        )
    )
    rows = profile_checkpoints(root / "run", ex, tmp_path / "t.jsonl", config=ProfileConfig(batch_size=8, device="cpu"))
    assert all(r["losses"][0] > 0 for r in rows)


def test_errors(setup, tmp_path):
    root, tok, ex = setup
    with pytest.raises(SbnbError, match="id e000: no response token within max_length=20"):
        length_batches(ex, tok, ProfileConfig(max_length=20))
    with pytest.raises(SbnbError, match="id 'e001'\\): duplicate id"):
        length_batches(ex + [ex[1]], tok)
    with pytest.raises(SbnbError, match="id 'e000'\\): missing field 'source'"):
        length_batches([{k: v for k, v in ex[0].items() if k != "source"}], tok)
    with pytest.raises(SbnbError, match="batch_size must be at least 1"):
        ProfileConfig(batch_size=0)


def test_generic_profile_losses():
    X = torch.randn(50, 4)
    w = torch.tensor([1.0, -1.0, 2.0, 0.5])
    models = []
    for s in (0.0, 0.5, 1.0):
        m = torch.nn.Linear(4, 1, bias=False)
        m.weight.data = (s * w)[None]
        models.append(m)
    fn = lambda m, xb: (m(xb)[:, 0] - xb @ w) ** 2
    rows = profile_losses(models, X, fn, batch_size=16, sources=["a"] * 25 + ["b"] * 25)
    assert len(rows) == 50 and rows[30]["source"] == "b" and rows[30]["id"] == "30"
    L = np.array([r["losses"] for r in rows])
    assert np.allclose(L[:, 2], 0) and np.allclose(L[:, 0], (X @ w).numpy() ** 2, atol=1e-5)
    assert profile_losses(lambda: iter(models), X, fn, sources=["a"] * 25 + ["b"] * 25) == rows
    with pytest.raises(SbnbError, match="returned"):
        profile_losses(models, X, lambda m, xb: torch.zeros(1))


def test_trainer_callback(setup, tmp_path):
    from transformers import Trainer, TrainingArguments, DataCollatorForSeq2Seq

    root, tok, ex = setup
    train = [{k: tokenize_example(e, tok, 512)[k] for k in ("input_ids", "labels", "attention_mask")} for e in ex]
    rec = TrajectoryRecorder(ex, tok, ProfileConfig(batch_size=16))
    args = TrainingArguments(
        str(tmp_path / "tr"),
        max_steps=6,
        per_device_train_batch_size=10,
        learning_rate=3e-3,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    tr = Trainer(
        model=tiny_llama(tok, 0),
        args=args,
        train_dataset=train,
        data_collator=DataCollatorForSeq2Seq(tok, padding=True),
        callbacks=[trajectory_callback(rec, every=3, out=tmp_path / "cb.jsonl")],
    )
    tr.train()
    assert rec.steps == [0, 3, 6]
    rows = read_jsonl(tmp_path / "cb.jsonl")
    L = np.array([r["losses"] for r in rows])
    assert L.shape == (len(ex), 3)
    assert abs(L[0, 0] - direct_loss(tiny_llama(tok, 0), tok, ex[0])) < 1e-4  # step 0 = the initial model
    assert L[:, 2].mean() < L[:, 0].mean()  # training on these examples lowers their loss
    assert read_json(tmp_path / "cb.jsonl.meta.json")["steps"] == [0, 3, 6]


def test_cli(setup, tmp_path, capsys):
    root, tok, ex = setup
    rc = main(
        [
            "profile",
            "--checkpoints",
            str(root / "run"),
            "--data",
            str(root / "data.jsonl"),
            "--out",
            str(tmp_path / "t.jsonl"),
            "--batch-size",
            "5",
            "--max-length",
            "400",
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    rows = read_jsonl(tmp_path / "t.jsonl")
    assert len(rows) == len(ex) and all(len(r["losses"]) == 3 for r in rows)
    assert read_json(tmp_path / "t.jsonl.meta.json")["config"]["max_length"] == 400
    capsys.readouterr()
    assert (
        main(
            [
                "profile",
                "--checkpoints",
                str(tmp_path / "none"),
                "--data",
                str(root / "data.jsonl"),
                "--out",
                str(tmp_path / "x.jsonl"),
            ]
        )
        == 2
    )
    assert "not a directory" in capsys.readouterr().err
    assert (
        main(
            [
                "profile",
                "--checkpoints",
                str(root / "run"),
                "--data",
                str(root / "data.jsonl"),
                "--out",
                str(tmp_path / "x.jsonl"),
                "--max-length",
                "20",
            ]
        )
        == 2
    )
    assert "no response token" in capsys.readouterr().err
    # --model as step 0: the run record names it as resolved; --tokenizer may name a corpus folder holding tokenizer/
    tok.save_pretrained(tmp_path / "corpus" / "tokenizer")
    assert (
        main(
            [
                "profile",
                "--model",
                str(root / "run" / "checkpoint-50"),
                "--checkpoints",
                str(root / "run"),
                "--tokenizer",
                str(tmp_path / "corpus"),
                "--data",
                str(root / "data.jsonl"),
                "--out",
                str(tmp_path / "m.jsonl"),
                "--max-length",
                "400",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    for rec in (read_json(tmp_path / "m.jsonl.meta.json"), read_json(tmp_path / "run-m.jsonl.json")):
        m = rec["model"]
        assert (m["spec"], m["kind"], m["architecture"]) == (
            portable_path(root / "run" / "checkpoint-50", tmp_path),  # relative to the record's folder
            "folder",
            "LlamaForCausalLM",
        )
        assert (tmp_path / m["spec"]).resolve() == (root / "run" / "checkpoint-50").resolve()


def test_list_of_models_and_paths(setup, tmp_path):
    root, tok, ex = setup
    cfg = ProfileConfig(batch_size=8, device="cpu")
    mods = profile_checkpoints([tiny_llama(tok, 0), tiny_llama(tok, 1)], ex, tokenizer=tok, config=cfg)
    paths = profile_checkpoints(
        [root / "run" / "checkpoint-50", root / "run" / "checkpoint-500"], ex, tmp_path / "p.jsonl", config=cfg
    )
    assert np.allclose([r["losses"] for r in mods], [r["losses"] for r in paths], atol=1e-6)
    assert read_json(tmp_path / "p.jsonl.meta.json")["steps"] == [0, 1]  # positions in the list
    with pytest.raises(SbnbError, match="no tokenizer found"):
        profile_checkpoints([tiny_llama(tok, 0)], ex, config=cfg)


@pytest.mark.gpu
def test_bf16_autocast_on_gpu_close_to_float32(setup):
    root, tok, ex = setup
    m = tiny_llama(tok, 0)
    bs = length_batches(ex, tok, ProfileConfig(batch_size=8))
    cpu = model_losses(m, bs, len(ex), ProfileConfig(device="cpu"))
    gpu = model_losses(m, bs, len(ex), ProfileConfig(device="cuda"))  # bf16 autocast by default on CUDA
    assert torch.allclose(cpu, gpu, rtol=0.02, atol=0.02)
