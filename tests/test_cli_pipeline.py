"""The pipeline `sbnb --help` shows, run line by line as written in an empty folder, with `tiny-char` and a few steps."""

import shlex
from collections import Counter
import pytest
import torch
from sbnb.cli import build_parser, main
from sbnb.core import read_json, read_jsonl

FAST = {  # appended to the lines as written: the tiny model and a few steps, so that the whole pipeline takes seconds
    "train": ["--model", "tiny-char", "--max-steps", "6", "--save-steps", "3"],
    "eval": ["--limit", "4", "--max-new-tokens", "8"],
}


def help_pipeline() -> list[str]:
    "The command lines `sbnb --help` gives under 'the same, run in an empty folder'."
    h = build_parser().format_help()
    block = h.split("the same, run in an empty folder:\n", 1)[1].split("\nwithout copies", 1)[0]
    return [l.strip() for l in block.splitlines()]


@pytest.fixture
def one_thread(monkeypatch):
    monkeypatch.setenv("SBNB_PROGRESS", "0")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_the_help_pipeline_runs_as_written(tmp_path, monkeypatch, capsys, one_thread):
    lines = help_pipeline()
    assert [shlex.split(l)[1] for l in lines] == ["data", "train", "profile", "upsample", "train", "eval"]
    monkeypatch.chdir(tmp_path)
    for line in lines:
        argv = shlex.split(line)
        assert argv[0] == "sbnb"
        rc = main(argv[1:] + FAST.get(argv[1], []))
        assert rc == 0, f"{line}\n{capsys.readouterr().err[-2000:]}"
    train, up = read_jsonl(tmp_path / "corpus" / "train.jsonl"), read_jsonl(tmp_path / "corpus" / "up.jsonl")
    assert up[: len(train)] == train and len({r["id"] for r in up}) == len(up) > len(train)  # originals, then new ids
    picked = set((tmp_path / "up_report" / "selected_ids.txt").read_text().split())
    assert Counter(r["copy_of"] for r in up[len(train) :]) == Counter(picked)  # each pick copied once (x2)
    assert (
        read_json(tmp_path / "corpus" / "up.jsonl.meta.json")["config"]["recipe"] == "authors"
    )  # the paper's, by default
    assert (tmp_path / "runs" / "target" / "model.safetensors").exists()
    assert (tmp_path / "eval" / "summary.json").exists()
    capsys.readouterr()
    assert main(["data", "show", "corpus/up.jsonl"]) == 0
    out = capsys.readouterr().out
    assert f"{len(up)} examples" in out and f"{len(up) - len(train)} rows are copies" in out
