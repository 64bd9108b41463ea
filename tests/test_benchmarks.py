"""Tests of sbnb.benchmarks: one reader for every benchmark with one id format, gold answers from the real files,
refusing another benchmark's file, last_boxed, and the prompt templates."""
import json
import pytest
from sbnb.core import SbnbError, benchmarks_dir, write_jsonl
from sbnb import benchmarks as B

bench = pytest.mark.skipif(not benchmarks_dir().exists(), reason="shared/benchmarks not present")

@bench
def test_gold_answers_from_real_files():
    b = benchmarks_dir()
    gs = B.load_benchmark("gsm8k")
    assert len(gs) == 1319 and [r["answer"] for r in gs[:3]] == ["18", "3", "70000"] and gs[0]["id"] == "gsm8k/0"
    sv = B.load_benchmark("svamp")
    assert len(sv) == 1000 and (sv[0]["id"], sv[0]["answer"]) == ("svamp/chal-1", "51")
    ng = B.load_benchmark("numglue")
    assert len(ng) == 1042 and [r["answer"] for r in ng[:3]] == ["1536", "12421", "B"]
    dm = B.load_benchmark("deepmind")
    assert [r["answer"] for r in dm[:2]] == ["2", "[3]"]
    assert [r["answer"] for r in B.load_benchmark("deepmind", b/"deepmind"/"test.jsonl")] == [r["answer"] for r in dm]
    assert B.load_benchmark("simuleq")[0]["answer"] == "15"
    m = B.load_benchmark("math")
    assert len(m) == 5000 and (m[0]["id"], m[0]["answer"]) == ("math/algebra/1", "2")
    byid = {r["id"].removeprefix("math/"): r for r in m}
    for r in B.load_benchmark("math500")[:50]:  # the last \boxed{} of the full MATH file agrees with MATH-500's `answer`
        assert byid[r["id"].removeprefix("math500/")]["answer"].replace(" ", "") == r["answer"].replace(" ", "")
    tr = B.load_benchmark("gsm8k-train")
    assert len(tr) == 7473 and tr[0]["id"] == "gsm8k-train/0" and tr[0]["source"] == "gsm8k-train"
    assert not {r["instruction"] for r in tr} & {r["instruction"] for r in gs}  # the published splits are disjoint

def test_a_named_benchmark_is_read_from_its_own_file_or_refused(tmp_path):
    row = {"id": "q1", "source": "s", "instruction": "1+1=", "output": "2", "answer": "2"}
    write_jsonl(tmp_path/"test.jsonl", [row])  # a corpus split, not GSM8K
    assert B.load_benchmark("corpus-test", tmp_path)[0]["id"] == "q1"
    for name in ("gsm8k", "math500", "math"):
        with pytest.raises(SbnbError) as e: B.load_benchmark(name, tmp_path)
        assert f"{name}: its file is not under {tmp_path}" in str(e.value) and "looked for" in str(e.value)
    (tmp_path/"gsm8k").mkdir()
    write_jsonl(tmp_path/"gsm8k"/"test.jsonl", [{"question": "2+2?", "answer": "2+2=4\n#### 4"}])
    for where in (tmp_path, tmp_path/"gsm8k", tmp_path/"gsm8k"/"test.jsonl"):  # root, own folder, the file itself
        assert B.load_benchmark("gsm8k", where)[0] | {"output": ""} == {"id": "gsm8k/0", "source": "gsm8k", "instruction": "2+2?",
                                                                        "output": "", "answer": "4"}

def test_unknown_names_and_last_boxed():
    with pytest.raises(SbnbError, match="valid names: gsm8k"): B.check_benchmarks("gsm9k")
    assert B.last_boxed("x \\fbox{a{b}c} y") == "a{b}c" and B.last_boxed("none") is None
    assert B.last_boxed("so \\boxed{1} and \\boxed{\\frac{3}{4}}.") == "\\frac{3}{4}" and B.last_boxed("\\boxed 5.") == "5"

def test_prompt_templates_are_shared():
    from sbnb import data as D, evaluate as E
    ex = {"instruction": "What is 2+3?"}
    assert E.format_prompt is B.format_prompt and E.ALPACA == B.ALPACA_PROMPT
    assert D.tokenize_example.__globals__["format_prompt"] is B.format_prompt
    assert B.format_prompt(ex).endswith("### Instruction:\nWhat is 2+3?\n\n### Response:\n")
