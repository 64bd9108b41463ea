"""Tests of sbnb.data: schema and file round trips, error cases, MathInstruct, label masks, the local tokenizer, the CLI."""

import json
import pytest
from sbnb.core import SbnbError, project_root
from sbnb import data as D

ROW = {
    "id": "a-1",
    "source": "a",
    "instruction": "1+1=",
    "output": "2",
    "answer": "2",
    "meta": {"k": [1, 2, {"x": None}]},
    "note": "verbatim \u00e9",
}


def rows(n=4):
    return [{**ROW, "id": f"a-{i}", "source": "ab"[i % 2], "meta": {"i": i, "tags": ["x", "y"]}} for i in range(n)]


# --- schema and files ---------------------------------------------------------------------------------------------


def test_jsonl_round_trip_keeps_extra_fields(tmp_path):
    rs = rows() + [{**ROW, "id": "odd", "nested": {"a": None}, "nothing": None}]
    D.write_examples(rs, tmp_path / "x.jsonl")
    assert D.read_examples(tmp_path / "x.jsonl") == rs


def test_json_list_file(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps(rows(), indent=2))
    assert D.read_examples(tmp_path / "x.json") == rows()


def test_parquet_and_dataset_round_trip(tmp_path):
    rs = rows()
    assert D.read_examples(D.write_examples(rs, tmp_path / "x.parquet")) == rs
    ds = D.to_dataset(rs)
    assert len(ds) == 4 and set(ds.column_names) >= {"id", "source", "instruction", "output", "answer", "meta"}
    assert D.from_dataset(ds) == rs


@pytest.mark.parametrize(
    "bad,msg",
    [
        ("{not json", ":2: invalid JSON"),
        (json.dumps({k: v for k, v in ROW.items() if k != "id"}), ":2: missing field 'id'"),
        (json.dumps({k: v for k, v in ROW.items() if k != "source"}), ":2 (id 'a-1'): missing field 'source'"),
        (
            json.dumps({k: v for k, v in ROW.items() if k != "instruction"}),
            ":2 (id 'a-1'): missing field 'instruction'",
        ),
        (json.dumps({k: v for k, v in ROW.items() if k != "output"}), ":2 (id 'a-1'): missing field 'output'"),
        (json.dumps({**ROW, "source": ""}), ":2 (id 'a-1'): empty 'source'"),
        (json.dumps({**ROW, "id": 5}), ":2: field 'id' must be a string"),
        (json.dumps({**ROW, "id": "a-0"}), ":2 (id 'a-0'): duplicate id 'a-0' (first at line 1)"),
        ("[1, 2]", ":2: expected a JSON object"),
    ],
)
def test_malformed_jsonl_names_file_and_line(tmp_path, bad, msg):
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps(rows(1)[0]) + "\n" + bad + "\n")
    with pytest.raises(SbnbError) as e:
        D.read_examples(f)
    assert str(e.value).startswith(f"{f}{msg}") and "\n" not in str(e.value)


def test_cli_errors_exit_2(tmp_path, capsys):
    from sbnb.cli import main

    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps(ROW) + "\n" + json.dumps({**ROW, "source": ""}) + "\n")
    assert main(["data", "show", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{f}:2" in err and "empty 'source'" in err
    assert main(["data", "show", str(tmp_path / "missing.jsonl")]) == 2
    assert main(["data", "generate", "--preset", "smoke", "--out", str(tmp_path / "c"), 'train_sizes={"nope": 3}']) == 2
    assert main(["data", "show", str(D.write_examples(rows(), tmp_path / "ok.jsonl"))]) == 0


# --- hub formats ----------------------------------------------------------------------------------------------------


def test_mathinstruct_local_file_and_offline_hub(tmp_path, monkeypatch):
    raw = [
        {"source": "data/CoT/gsm_rft.json", "instruction": "Q1", "output": "2+3=5\nThe answer is 5."},
        {"source": "data/PoT/mathqa.json", "instruction": "Q2", "output": "print(3)"},
        {"source": "data/CoT/aqua_rat.json", "instruction": "Q3", "output": "so\nThe answer is (C)"},
    ]
    (tmp_path / "mi.json").write_text(json.dumps(raw))
    (tmp_path / "mi.jsonl").write_text("".join(json.dumps(r) + "\n" for r in raw))
    for p in ("mi.json", "mi.jsonl"):
        got = D.load_mathinstruct(tmp_path / p)
        assert [(r["id"], r["source"], r["answer"]) for r in got] == [
            ("mathinstruct-0", "data/CoT/gsm_rft.json", "5"),
            ("mathinstruct-1", "data/PoT/mathqa.json", ""),
            ("mathinstruct-2", "data/CoT/aqua_rat.json", "(C)"),
        ]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SbnbError, match="path="):
        D.load_mathinstruct()


# --- prompts, tokenizer, labels --------------------------------------------------------------------------------------


def test_prompts():
    from sbnb.benchmarks import format_prompt

    ex = {**ROW, "instruction": "What is 2+3?"}
    assert format_prompt(ex) == (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nWhat is 2+3?\n\n### Response:\n"
    )
    assert format_prompt({**ex, "input": "ctx"}).endswith("### Input:\nctx\n\n### Response:\n")
    assert format_prompt(ex, "compact") == "What is 2+3?" and D.format_response(ex) == "2"
    with pytest.raises(SbnbError):
        format_prompt(ex, "nope")


@pytest.fixture(scope="module")
def sample_dir():
    return project_root() / "data" / "sample"


def test_sample_tokenizer_loads_with_autotokenizer(sample_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(sample_dir / "tokenizer"))
    assert (tok.pad_token, tok.eos_token, tok.pad_token_id) == ("<pad>", "<eos>", 0)
    s = "legs 2 cow 3 spider=23\nThe answer is -7."
    assert tok.convert_ids_to_tokens(tok(s)["input_ids"]) == list(s) and tok.decode(tok(s)["input_ids"]) == s


@pytest.mark.parametrize("style", ["compact", "alpaca"])
def test_label_mask(sample_dir, style):
    tok = D.load_corpus_tokenizer(sample_dir)
    ex = D.read_examples(sample_dir / "train.jsonl")[0]
    f = D.tokenize_example(ex, tok, max_length=512, style=style, pad_to=200)
    from sbnb.benchmarks import format_prompt

    n_prompt = len(tok(format_prompt(ex, style))["input_ids"])
    assert (
        f["labels"][:n_prompt] == [-100] * n_prompt
        and f["input_ids"][:n_prompt] == tok(format_prompt(ex, style))["input_ids"]
    )
    kept = [i for i, l in zip(f["input_ids"], f["labels"]) if l != -100]
    assert tok.decode(kept) == ex["output"] + "<eos>"
    assert [l for l, i in zip(f["labels"], f["input_ids"]) if l != -100] == kept
    n = sum(f["attention_mask"])
    assert (
        len(f["input_ids"]) == 200
        and set(f["labels"][n:]) == {-100}
        and set(f["input_ids"][n:]) == {0}
        and f["truncated"] == 0
    )


def test_truncation_count(sample_dir):
    tok = D.load_corpus_tokenizer(sample_dir)
    ex = {**ROW, "instruction": "12345=", "output": "abcdef"}
    f = D.tokenize_example(ex, tok, max_length=9, style="compact")
    assert (len(f["input_ids"]), f["truncated"], f["labels"][6:]) == (9, 4, tok("abc")["input_ids"])
    feats, n = D.tokenize_examples([ex, {**ex, "id": "b"}], tok, max_length=9, style="compact")
    assert n == 8 and feats[1]["id"] == "b"


def test_bpe_tokenizer(tmp_path):
    D.train_tokenizer(["the answer is 12. so the total is 7."] * 30, tmp_path / "t", vocab_size=130)
    t2 = D.load_corpus_tokenizer(tmp_path / "t")
    ids = t2("the answer is 9.")["input_ids"]
    assert t2.decode(ids) == "the answer is 9." and len(ids) < 16


def test_cli_data_without_subcommand():
    from sbnb.cli import main

    assert main(["data"]) == 2


def test_show_empty_file_and_digit_reversal_note(tmp_path, capsys):
    from sbnb.cli import main

    (tmp_path / "e.jsonl").write_text("")
    assert main(["data", "show", str(tmp_path / "e.jsonl")]) == 2 and "no examples" in capsys.readouterr().err
    assert main(["data", "show", str(project_root() / "data" / "sample" / "train.jsonl")]) == 0
    assert "least-significant digit first" in capsys.readouterr().out
