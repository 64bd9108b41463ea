"""sbnb.evaluate: answer extraction and equivalence, generation with a tiny model, benchmark loading, `sbnb eval`."""

import os, threading, time
import pytest

from sbnb.core import SbnbError, project_root, read_json, read_jsonl, write_jsonl
from sbnb.answers import last_boxed
from sbnb.evaluate import (
    BENCHMARKS,
    answers_match,
    evaluate,
    extract_answer,
    generate,
    load_benchmark,
    score_rows,
    summarize,
    tiny_model_and_tokenizer,
    wilson_ci,
    format_prompt,
    predict_answer,
)
from sbnb.cli import main

SAMPLE = project_root() / "data" / "sample"
needs_bench = pytest.mark.skipif(
    not os.environ.get("SBNB_BENCHMARKS"),
    reason="real benchmark files: set SBNB_BENCHMARKS to a folder in the readers' layout",
)


# ---------------------------------------------------------------- extraction
@pytest.mark.parametrize(
    "text,want",
    [
        ("Natalia sold 24 clips.\n#### 72", "72"),
        ("#### 1,234", "1234"),
        ("#### -5", "-5"),
        ("#### $18.00", "18"),
        (r"So $x = \boxed{5}$.", "5"),
        (r"$\boxed{\frac{1}{2}}$", "1/2"),
        (r"$\boxed{\dfrac{3}{4}}$", "3/4"),
        (r"\boxed{1} then \boxed{\sqrt{2}}", r"\sqrt{2}"),
        (r"$\boxed{\{1,2\}}$", r"\{1,2\}"),
        (r"$\boxed{10\%}$", "10"),
        (r"$\boxed{\text{(C)}}$", "C"),
        (r"$\boxed{5\text{ cm}}$", "5"),
        (r"$\boxed{1,\!000}$", "1000"),
        ("The answer is 42.", "42"),
        ("The answer is $1,234.56.", "1234.56"),
        ("The answer is -7.", "-7"),
        ("The answer is (B).", "B"),
        ("The answer is 25%.", "25"),
        ("The answer is 18 apples because 3+15=18.", "18"),
        ("The answer is $\\frac{2}{3}$.", "2/3"),
        ("The answer is x^2+1", "x^2+1"),
        ("The answer is $\\$18.90$.", "18.9"),
        ("Answer: 12", "12"),
        ("The answer is \u221212.", "-12"),
        ("She has 3 and buys 4, so 7 in total.", "7"),
        ("10-4=6", "6"),
        ("It costs $3.50.", "3.5"),
        ("ratio 3/4", "3/4"),
        ("", None),
        (None, None),
        ("I don't know.", None),
        ("The answer is unclear.", None),
    ],
)
def test_extract_answer(text, want):
    assert extract_answer(text) == want


def test_last_boxed_nested_and_unclosed():
    assert last_boxed(r"\boxed{a} \boxed{\frac{1}{\sqrt{2}}}") == r"\frac{1}{\sqrt{2}}"
    assert last_boxed(r"\boxed{open") is None and last_boxed("none") is None


# ---------------------------------------------------------------- equivalence
@pytest.mark.parametrize(
    "pred,gold,want",
    [
        ("0.5", "1/2", True),
        (r"\frac{1}{2}", "0.5", True),
        ("1,000", "1000", True),
        ("18", "18.00", True),
        ("0.333333", "1/3", True),
        ("0.33", "1/3", False),
        ("4.1667", "4.17", True),
        ("4.2", "4.17", False),
        ("10001", "10000", False),
        ("B", "B", True),
        ("(B)", "B", True),
        ("C", "B", False),
        ("true", "True", True),
        (None, "5", False),
        ("5", None, False),
        ("", "5", False),
        (r"2\sqrt{3}", r"\sqrt{12}", True),
        ("x^2+2x+1", "(x+1)^2", True),
        (r"[2,5]", "[2, 5)", False),
        (r"\left( 3, \frac{\pi}{2} \right)", r"(3, \frac{\pi}{2})", True),
    ],
)
def test_answers_match(pred, gold, want):
    assert answers_match(pred, gold) is want


def test_answers_match_is_bounded_in_time_and_works_in_threads():
    t = time.time()
    assert answers_match("x" * 5000, "y") is False  # too long: never parsed
    assert answers_match("2^{2^{2^{2^{2^{10}}}}}", "3") is False  # math_verify times out, counts as no match
    assert time.time() - t < 20
    out = []
    th = threading.Thread(target=lambda: out.append(answers_match(r"\sqrt{2}/2", r"\frac{\sqrt{2}}{2}")))
    th.start()
    th.join(30)
    assert out == [True]


def test_wilson_ci():
    lo, hi = wilson_ci(50, 100)
    assert abs(lo - 0.4038) < 1e-4 and abs(hi - 0.5962) < 1e-4
    assert wilson_ci(0, 10)[0] == 0.0 and wilson_ci(10, 10)[1] == 1.0 and wilson_ci(0, 0) == (0.0, 1.0)


# ---------------------------------------------------------------- real gold solutions
@needs_bench
def test_gold_solutions_give_back_gold_answers():
    for name, n in [("gsm8k", 1319), ("math500", 500)]:
        rows = load_benchmark(name)
        assert len(rows) == n
        ok = sum(answers_match(extract_answer(r["output"]), r["answer"]) for r in rows)
        assert ok / n >= 0.995, (name, ok, n)


@needs_bench
def test_all_benchmarks_load_with_string_answers():
    counts = dict(
        gsm8k=1319,
        math=5000,
        math500=500,
        numglue=1042,
        svamp=1000,
        deepmind=1000,
        simuleq=514,
        aqua=254,
        sat=220,
        mmlu_math=974,
        theoremqa=800,
    )
    for name, n in counts.items():
        rows = load_benchmark(name)
        assert len(rows) == n and len({r["id"] for r in rows}) == n
        assert all(isinstance(r["answer"], str) and r["answer"] and r["source"] == name for r in rows)
    assert load_benchmark("aqua")[0]["instruction"].count("(E)") == 1
    assert load_benchmark("mmlu_math")[0]["answer"] in "ABCD"


def test_load_benchmark_from_file_folder_and_root(tmp_path):
    raw = [{"question": "What is 1,000 + 1?", "answer": "1000+1=<<1000+1=1001>>1001\n#### 1,001"}]
    write_jsonl(tmp_path / "gsm8k" / "test.jsonl", raw)
    for p in (tmp_path / "gsm8k" / "test.jsonl", tmp_path / "gsm8k", tmp_path):
        rows = load_benchmark("gsm8k", p)
        assert rows == [
            {
                "id": "gsm8k/0",
                "source": "gsm8k",
                "instruction": "What is 1,000 + 1?",
                "output": raw[0]["answer"],
                "answer": "1001",
            }
        ]
    with pytest.raises(SbnbError, match="its file is not under"):
        load_benchmark("svamp", tmp_path)


def test_hub_fallback_fails_fast_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("SBNB_BENCHMARKS", str(tmp_path))  # no local copies
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    t = time.time()
    with pytest.raises(SbnbError, match="--data-dir") as e:
        load_benchmark("gsm8k")
    assert f"no local copy in {tmp_path}" in str(e.value) and "sbnb benchmarks fetch gsm8k" in str(e.value)
    with pytest.raises(
        SbnbError, match="sbnb benchmarks fetch simuleq"
    ) as e:  # not on the hub in this version: fetch it
        load_benchmark("simuleq")
    assert str(tmp_path / "simuleq" / "simuleq.json") in str(e.value)
    assert time.time() - t < 5


def test_unknown_benchmark():
    with pytest.raises(SbnbError, match="valid names: gsm8k"):
        load_benchmark("gsm9k")


# ---------------------------------------------------------------- generation with a tiny model
PROMPTS = [
    format_prompt({"instruction": q})
    for q in ["What is 2 + 3 ?", "Tom has 4 apples and eats 1 . How many left ?", "Add 10 and 20 ."]
]


@pytest.fixture(scope="module")
def tiny():
    import torch

    torch.set_num_threads(1)
    return tiny_model_and_tokenizer(PROMPTS + ["The answer is 5 ."])


def test_generate_batched_equals_single_and_stops(tiny):
    model, tok = tiny
    batched = generate(model, tok, PROMPTS, max_new_tokens=10, batch_size=2, stop=None)
    single = [generate(model, tok, [p], max_new_tokens=10, batch_size=1, stop=None)[0] for p in PROMPTS]
    assert batched == single  # left padding does not change greedy outputs
    assert len(set(batched)) > 1 and all(batched)
    assert tok.padding_side == "right"  # restored
    w = batched[0][5:8]
    cut = generate(model, tok, PROMPTS[:1], max_new_tokens=10, stop=[w])
    assert cut == [batched[0][: batched[0].find(w)]]
    with pytest.raises(SbnbError):
        generate(model, tok, PROMPTS, batch_size=0)


@pytest.mark.gpu
def test_generate_on_gpu_matches_cpu(tiny):
    import copy

    model, tok = tiny
    cpu = generate(model, tok, PROMPTS, max_new_tokens=8, stop=None)
    gpu = generate(copy.deepcopy(model), tok, PROMPTS, max_new_tokens=8, stop=None, device="cuda")
    assert gpu == cpu


def test_evaluate_writes_records_and_summary(tiny, tmp_path):
    model, tok = tiny
    rows = [
        dict(id=f"t/{i}", source="t", instruction=f"What is {i} + {i} ?", output="", answer=str(2 * i))
        for i in range(4)
    ]
    s = evaluate(model, tok, {"toy": rows}, tmp_path, batch_size=3, max_new_tokens=6)
    recs = read_jsonl(tmp_path / "toy.jsonl")
    assert [r["id"] for r in recs] == [r["id"] for r in rows]
    assert set(recs[0]) == {"id", "prompt", "output", "pred", "gold", "correct"}
    assert s["benchmarks"]["toy"]["correct"] == sum(r["correct"] for r in recs)
    assert read_json(tmp_path / "summary.json")["benchmarks"]["toy"]["n"] == 4
    assert "| toy | 4 |" in (tmp_path / "summary.md").read_text()
    assert read_json(tmp_path / "run.json")["status"] == "ok"


def test_scoring_is_exact_on_known_outputs():
    rows = [dict(id="a", answer="72"), dict(id="b", answer="1/2"), dict(id="c", answer="B")]
    recs = score_rows(rows, ["... #### 72", r"so $\boxed{0.5}$", "The answer is (C)."])
    assert [r["correct"] for r in recs] == [True, True, False]
    assert summarize(recs)["correct"] == 2


# ---------------------------------------------------------------- the command
def _corpus_dir(tmp_path):
    "The committed corpus sample if present, else a small corpus-like folder."
    if (SAMPLE / "test.jsonl").exists() and (SAMPLE / "ood.jsonl").exists():
        return SAMPLE
    d = tmp_path / "corpus"
    rows = [
        dict(id=f"c/{i}", source="chain", instruction=f"{i}+{i}=", output=str(2 * i), answer=str(2 * i))
        for i in range(6)
    ]
    write_jsonl(d / "test.jsonl", rows)
    write_jsonl(d / "ood.jsonl", rows[:3])
    return d


def test_compact_corpus_reference_outputs_score_perfectly(tmp_path):
    d = _corpus_dir(tmp_path)
    rows = load_benchmark("corpus-test", d)
    assert summarize(score_rows(rows, [r["output"] for r in rows]))["accuracy"] == 1.0
    if any(r.get("answer_reversed") for r in rows):  # compact outputs are digit-reversed: decoded, not read as is
        r = next(
            r
            for r in rows
            if r.get("answer_reversed") and len(r["answer"].lstrip("-")) > 1 and r["answer"] != r["output"]
        )
        assert predict_answer(r["output"], r) == r["answer"] and extract_answer(r["output"]) != r["answer"]


def test_cli_eval_on_corpus(tiny, tmp_path, capsys):
    model, tok = tiny
    mdir = tmp_path / "model"
    model.save_pretrained(mdir)
    tok.save_pretrained(mdir)
    d = _corpus_dir(tmp_path)
    out = tmp_path / "ev"
    rc = main(
        [
            "eval",
            "--model",
            str(mdir),
            "--benchmarks",
            "corpus-test,corpus-ood",
            "--out",
            str(out),
            "--limit",
            "5",
            "--batch-size",
            "4",
            "--data-dir",
            str(d),
            "--max-new-tokens",
            "6",
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    s = read_json(out / "summary.json")
    assert list(s["benchmarks"]) == ["corpus-test", "corpus-ood"]
    assert all(b["n"] == 5 for b in s["benchmarks"].values())
    assert len(read_jsonl(out / "corpus-test.jsonl")) == 5
    assert "| corpus-test | 5 |" in capsys.readouterr().out


def test_cli_eval_reads_the_benchmark_folder(tiny, tmp_path, capsys, monkeypatch, sample_benchmarks):
    "No benchmark folder: exit 2 naming the folder looked in and `sbnb benchmarks fetch`; $SBNB_BENCHMARKS at one: it evaluates."
    model, tok = tiny
    mdir = tmp_path / "model"
    model.save_pretrained(mdir)
    tok.save_pretrained(mdir)
    monkeypatch.delenv("SBNB_BENCHMARKS", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # a new user: nothing fetched yet
    capsys.readouterr()
    rc = main(["eval", "--model", str(mdir), "--benchmarks", "gsm8k", "--out", str(tmp_path / "ev0")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and not (tmp_path / "ev0").exists()
    assert (
        str(tmp_path / "home" / ".cache" / "sbnb" / "benchmarks") in err[0]
        and "`sbnb benchmarks fetch gsm8k`" in err[0]
    )
    monkeypatch.setenv("SBNB_BENCHMARKS", str(sample_benchmarks))
    rc = main(
        [
            "eval",
            "--model",
            str(mdir),
            "--benchmarks",
            "gsm8k,svamp",
            "--out",
            str(tmp_path / "ev"),
            "--limit",
            "3",
            "--max-new-tokens",
            "4",
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    assert {n: b["n"] for n, b in read_json(tmp_path / "ev" / "summary.json")["benchmarks"].items()} == {
        "gsm8k": 3,
        "svamp": 3,
    }
    m = read_json(tmp_path / "ev" / "run.json")["model"]  # the run record names the model as resolved, and its size
    assert (m["kind"], m["parameters"]) == ("folder", sum(p.numel() for p in model.parameters()))
    assert not os.path.isabs(m["folder"]) and (tmp_path / "ev" / m["folder"]).resolve() == mdir.resolve()  # portable


@pytest.mark.parametrize(
    "argv,msg",
    [
        (["--benchmarks", "gsm9k"], "valid names: gsm8k"),
        (["--benchmarks", "corpus-test", "--limit", "0"], "--limit"),
        (["--benchmarks", "corpus-test", "--batch-size", "0"], "--batch-size"),
        (["--benchmarks", "gsm8k", "--data-dir", "/nonexistent/dir"], "no such folder"),
    ],
)
def test_cli_errors(tmp_path, capsys, argv, msg):
    rc = main(["eval", "--model", str(tmp_path), "--out", str(tmp_path / "o"), *argv])
    assert rc == 2
    assert msg in capsys.readouterr().err


def test_cli_missing_model(tmp_path, capsys):
    d = _corpus_dir(tmp_path)
    rc = main(
        [
            "eval",
            "--model",
            str(tmp_path / "nope"),
            "--benchmarks",
            "corpus-test",
            "--data-dir",
            str(d),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 2 and "no such folder" in capsys.readouterr().err


def test_benchmark_names_listed():
    assert {"gsm8k", "math", "math500", "numglue", "svamp", "deepmind", "simuleq", "corpus-test", "corpus-ood"} <= set(
        BENCHMARKS
    )


def test_load_model_picks_newest_checkpoint_and_training_prompt_style(tiny, tmp_path, capsys):
    from sbnb.core import write_json
    from sbnb.evaluate import load_eval_model, load_model, training_prompt_style

    model, tok = tiny
    for step in (2, 10):
        model.save_pretrained(tmp_path / f"checkpoint-{step}")
        tok.save_pretrained(tmp_path / f"checkpoint-{step}")
    write_json(tmp_path / "train_config.json", {"model": "x", "prompt_style": "zeroshot"})
    m, t = load_eval_model(tmp_path, "cpu")
    assert "checkpoint-10" in capsys.readouterr().err
    with pytest.warns(
        DeprecationWarning, match="load_eval_model"
    ):  # the old name: a deprecated alias of the pair's loader
        assert load_model(tmp_path, "cpu")[0].config.hidden_size == 32
    assert m.config.hidden_size == 32 and t.pad_token == "<pad>"
    assert (
        training_prompt_style(tmp_path) == "zeroshot" and training_prompt_style(tmp_path / "checkpoint-2") == "zeroshot"
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(SbnbError, match="no config.json"):
        load_model(tmp_path / "empty", "cpu")
