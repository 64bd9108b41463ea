"""Issue "First contact": each item as a new user meets it, checked as the user runs it (exit status, one-line
messages naming file/line/field, nothing overwritten, help texts, records)."""

import re
from pathlib import Path
import pytest
from sbnb.cli import main, build_parser
from sbnb.core import read_json, write_jsonl, corpus_dir

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"


def err_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and err[-1].startswith("sbnb: error:"), err
    return err[-1]


# 1. a named benchmark is read from its own file or refused
@pytest.mark.parametrize("bench", ["gsm8k", "math500"])
def test_named_benchmark_is_not_read_from_another_file(bench, tmp_path, capsys):
    model = tmp_path / "m"
    from sbnb.evaluate import tiny_model_and_tokenizer

    m, tok = tiny_model_and_tokenizer(["1 + 1"])
    m.save_pretrained(model)
    tok.save_pretrained(model)
    rc = main(
        ["eval", "--model", str(model), "--benchmarks", bench, "--data-dir", str(SAMPLE), "--out", str(tmp_path / "ev")]
    )
    line = err_line(capsys)
    assert rc == 2 and f"{bench}: its file is not under {SAMPLE}" in line and "looked for" in line
    assert not (tmp_path / "ev").exists()


# 5. an output that would replace an input is refused
def test_outputs_never_replace_inputs(tmp_path, capsys):
    rows = [{"id": f"a{i}", "source": "s", "instruction": f"{i}+1=", "output": str(i + 1)} for i in range(4)]
    write_jsonl(tmp_path / "d.jsonl", rows)
    write_jsonl(
        tmp_path / "t.jsonl", [{"id": r["id"], "source": "s", "losses": [2.0, 1.0 + i]} for i, r in enumerate(rows)]
    )
    before = (tmp_path / "d.jsonl").read_bytes()
    assert (
        main(
            [
                "upsample",
                "--data",
                str(tmp_path / "d.jsonl"),
                "--trajectories",
                str(tmp_path / "t.jsonl"),
                "--out",
                str(tmp_path / "d.jsonl"),
            ]
        )
        == 2
    )
    assert "would replace the input" in err_line(capsys) and (tmp_path / "d.jsonl").read_bytes() == before
    assert (
        main(
            [
                "profile",
                "--checkpoints",
                str(tmp_path),
                "--data",
                str(tmp_path / "d.jsonl"),
                "--out",
                str(tmp_path / "d.jsonl"),
            ]
        )
        == 2
    )
    assert "would replace the input" in err_line(capsys) and (tmp_path / "d.jsonl").read_bytes() == before


# 7. messages that help
def test_row_errors_name_file_and_line(tmp_path, capsys):
    rows = [{"id": f"a{i}", "source": "s", "instruction": "x", "output": "y"} for i in range(6)] + [{"source": "s"}]
    write_jsonl(tmp_path / "d.jsonl", rows)
    write_jsonl(tmp_path / "t.jsonl", [{"id": f"a{i}", "source": "s", "losses": [2.0, 1.0]} for i in range(6)])
    assert (
        main(
            [
                "upsample",
                "--data",
                str(tmp_path / "d.jsonl"),
                "--trajectories",
                str(tmp_path / "t.jsonl"),
                "--out",
                str(tmp_path / "u.jsonl"),
            ]
        )
        == 2
    )
    assert f"{tmp_path / 'd.jsonl'}:7: missing field 'id'" in err_line(capsys)


def test_unknown_key_points_to_the_nested_one_and_config_errors_name_the_file(tmp_path, capsys):
    from sbnb.train import TrainConfig
    from sbnb.core import SbnbError

    assert (
        TrainConfig().override(["lr=1e-3"]).optim.lr == 1e-3
    )  # a flat name users type is an alias of the nested field
    with pytest.raises(SbnbError, match=r"unknown key 'fsam_sigma' \(did you mean 'optim.fsam_sigma'\?\)"):
        TrainConfig().override(["fsam_sigma=1"])
    (tmp_path / "c.yaml").write_text("fsam_sigma: 0.5\n")
    assert (
        main(
            [
                "train",
                "--config",
                str(tmp_path / "c.yaml"),
                "--data",
                str(SAMPLE / "train.jsonl"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    line = err_line(capsys)
    assert str(tmp_path / "c.yaml") in line and "optim.fsam_sigma" in line


def test_json_error_column_folder_as_table_and_empty_file(tmp_path, capsys):
    (tmp_path / "t.jsonl").write_text(
        '{"id": "a", "source": "s", "losses": [1, 2]}\n{"id": "b", "source": "s", "losses": [1, 2,]}\n'
    )
    write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "source": "s"}, {"id": "b", "source": "s"}])
    assert (
        main(
            [
                "upsample",
                "--data",
                str(tmp_path / "d.jsonl"),
                "--trajectories",
                str(tmp_path / "t.jsonl"),
                "--out",
                str(tmp_path / "u.jsonl"),
            ]
        )
        == 2
    )
    assert "t.jsonl:2: invalid JSON (Expecting value at column 44)" in err_line(capsys)  # the ']' after '2,'
    assert main(["data", "show", str(tmp_path)]) == 2
    assert "is a folder" in err_line(capsys)
    (tmp_path / "e.jsonl").write_text("")
    assert main(["data", "show", str(tmp_path / "e.jsonl")]) == 2 and "no examples" in err_line(capsys)


def test_unwritable_out_is_refused_before_the_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "source": "s"}])
    # the trajectories do not even exist: the output is checked first, and the message names it, not a temp file
    assert (
        main(
            [
                "upsample",
                "--data",
                str(tmp_path / "d.jsonl"),
                "--trajectories",
                str(tmp_path / "nope.jsonl"),
                "--out",
                str(blocker / "u.jsonl"),
            ]
        )
        == 2
    )
    line = err_line(capsys)
    assert str(blocker / "u.jsonl") in line and ".tmp" not in line


# 8. help
def _subparsers():
    p = build_parser()
    sub = next(a for a in p._actions if a.__class__.__name__ == "_SubParsersAction")
    out = dict(sub.choices)
    for name, sp in list(out.items()):
        inner = [a for a in sp._actions if a.__class__.__name__ == "_SubParsersAction"]
        for a in inner:
            out.update({f"{name} {k}": v for k, v in a.choices.items()})
    return out


@pytest.mark.parametrize("name", sorted(_subparsers()))
def test_every_help_ends_with_examples_and_prints_each_default_once(name):
    h = _subparsers()[name].format_help()
    tail = h.lower().rsplit("\nexamples", 1)
    assert len(tail) == 2 and "sbnb " in tail[1], h[-300:]  # the help ends with runnable examples
    for block in re.split(r"\n  (?=-)", tail[0]):  # one block per option
        assert block.count("(default") <= 1, block


def test_train_help_shows_init_and_max_steps_defaults_and_requires_data():
    h = " ".join(_subparsers()["train"].format_help().split())
    assert re.search(r"--init \{auto,pretrained,random\} .*\(default auto\)", h) and re.search(
        r"--max-steps MAX_STEPS .*\(default -1", h
    )
    assert re.search(r"--data DATA training examples [^-]*required", h)


# 9. records and files
def test_profile_and_upsample_write_run_json(tmp_path):
    rows = [{"id": f"a{i}", "source": "s", "instruction": f"{i}+1=", "output": str(i + 1)} for i in range(8)]
    write_jsonl(tmp_path / "d.jsonl", rows)
    write_jsonl(
        tmp_path / "t.jsonl",
        [{"id": r["id"], "source": "s", "losses": [2.0, 1.0 + (i % 2)]} for i, r in enumerate(rows)],
    )
    (tmp_path / "o").mkdir()
    assert (
        main(
            [
                "upsample",
                "--data",
                str(tmp_path / "d.jsonl"),
                "--trajectories",
                str(tmp_path / "t.jsonl"),
                "--out",
                str(tmp_path / "o" / "u.jsonl"),
            ]
        )
        == 0
    )
    rec = read_json(tmp_path / "o" / "run.json")
    assert rec["outputs"] == ["u.jsonl"] and rec["status"] == "ok" and "commit" in rec["git"]


def test_data_generate_writes_where_eval_reads():
    build_parser()
    gen = _subparsers()["data generate"]
    assert next(a for a in gen._actions if a.dest == "out").default == str(corpus_dir())
    from sbnb.benchmarks import load_benchmark
    import inspect

    assert "corpus_dir()" in inspect.getsource(load_benchmark)
