"""Tests of sbnb.benchmarks: one reader for every benchmark with one id format, gold answers from the real files,
refusing another benchmark's file, last_boxed, the prompt templates, and `sbnb benchmarks fetch / list`."""

import os
import pytest
from sbnb.cli import main
from sbnb.core import SbnbError, benchmarks_dir, read_json, write_jsonl
from sbnb import benchmarks as B

bench = pytest.mark.skipif(
    not os.environ.get("SBNB_BENCHMARKS"),
    reason="real benchmark files: set SBNB_BENCHMARKS to a folder in the readers' layout",
)


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
    assert [r["answer"] for r in B.load_benchmark("deepmind", b / "deepmind" / "test.jsonl")] == [
        r["answer"] for r in dm
    ]
    assert B.load_benchmark("simuleq")[0]["answer"] == "15"
    m = B.load_benchmark("math")
    assert len(m) == 5000 and (m[0]["id"], m[0]["answer"]) == ("math/algebra/1", "2")
    byid = {r["id"].removeprefix("math/"): r for r in m}
    for r in B.load_benchmark("math500")[
        :50
    ]:  # the last \boxed{} of the full MATH file agrees with MATH-500's `answer`
        assert byid[r["id"].removeprefix("math500/")]["answer"].replace(" ", "") == r["answer"].replace(" ", "")
    tr = B.load_benchmark("gsm8k-train")
    assert len(tr) == 7473 and tr[0]["id"] == "gsm8k-train/0" and tr[0]["source"] == "gsm8k-train"
    assert not {r["instruction"] for r in tr} & {r["instruction"] for r in gs}  # the published splits are disjoint


def test_a_named_benchmark_is_read_from_its_own_file_or_refused(tmp_path):
    row = {"id": "q1", "source": "s", "instruction": "1+1=", "output": "2", "answer": "2"}
    write_jsonl(tmp_path / "test.jsonl", [row])  # a corpus split, not GSM8K
    assert B.load_benchmark("corpus-test", tmp_path)[0]["id"] == "q1"
    for name in ("gsm8k", "math500", "math"):
        with pytest.raises(SbnbError) as e:
            B.load_benchmark(name, tmp_path)
        assert f"{name}: its file is not under {tmp_path}" in str(e.value) and "looked for" in str(e.value)
    (tmp_path / "gsm8k").mkdir()
    write_jsonl(tmp_path / "gsm8k" / "test.jsonl", [{"question": "2+2?", "answer": "2+2=4\n#### 4"}])
    for where in (tmp_path, tmp_path / "gsm8k", tmp_path / "gsm8k" / "test.jsonl"):  # root, own folder, the file itself
        assert B.load_benchmark("gsm8k", where)[0] | {"output": ""} == {
            "id": "gsm8k/0",
            "source": "gsm8k",
            "instruction": "2+2?",
            "output": "",
            "answer": "4",
        }


def test_unknown_names_and_last_boxed():
    with pytest.raises(SbnbError, match="valid names: gsm8k"):
        B.check_benchmarks("gsm9k")
    assert B.last_boxed("x \\fbox{a{b}c} y") == "a{b}c" and B.last_boxed("none") is None
    assert (
        B.last_boxed("so \\boxed{1} and \\boxed{\\frac{3}{4}}.") == "\\frac{3}{4}" and B.last_boxed("\\boxed 5.") == "5"
    )


def test_prompt_templates_are_shared():
    from sbnb import data as D, evaluate as E

    ex = {"instruction": "What is 2+3?"}
    assert E.format_prompt is B.format_prompt and E.ALPACA == B.ALPACA_PROMPT
    assert D.tokenize_example.__globals__["format_prompt"] is B.format_prompt
    assert B.format_prompt(ex).endswith("### Instruction:\nWhat is 2+3?\n\n### Response:\n")


# ---------------------------------------------------------------- sbnb benchmarks fetch / list
def _cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_fetch_from_a_folder_then_list(sample_benchmarks, tmp_path, capsys):
    dest = tmp_path / "bench"
    rc, out, err = _cli(capsys, "benchmarks", "fetch", "--from", sample_benchmarks, "--data-dir", dest)
    assert rc == 0 and f"{len(B.FETCHABLE)} benchmark(s) written to {dest}" in out
    man = read_json(dest / "manifest.json")["benchmarks"]
    assert set(man) == set(B.FETCHABLE)
    for name, e in man.items():
        assert {"name", "file", "rows", "sha256", "source", "license"} <= set(e) and e["source"] == str(
            sample_benchmarks.resolve()
        )
        assert e["sha256"] == B.file_sha256(dest / e["file"]) == B.file_sha256(sample_benchmarks / e["file"])
    rc, out, err = _cli(capsys, "benchmarks", "list", "--data-dir", dest)
    assert rc == 0 and "missing" not in out
    for name, e in man.items():
        line = next(l for l in out.splitlines() if l.startswith(name + " "))
        assert f" {e['rows']} " in line and e["sha256"] in line and " ok " in line
    # a corrupted file is named (exit 2) by list and refused by every reader, never silently used
    p = dest / "gsm8k" / "test.jsonl"
    p.write_text(p.read_text().replace("The answer is", "The answer was", 1))
    rc, out, err = _cli(capsys, "benchmarks", "list", "--data-dir", dest)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and f"{p}: does not match its SHA-256" in err
    rc, out, err = _cli(
        capsys, "eval", "--model", "tiny-llama", "--benchmarks", "gsm8k", "--data-dir", dest, "--out", tmp_path / "ev"
    )
    assert (
        rc == 2
        and len(err.strip().splitlines()) == 1
        and f"{p}: SHA-256" in err
        and "sbnb benchmarks fetch gsm8k" in err
    )
    assert not (tmp_path / "ev").exists()
    rc, out, err = _cli(
        capsys, "benchmarks", "fetch", "gsm8k", "--from", sample_benchmarks, "--data-dir", dest
    )  # repaired
    assert rc == 0 and _cli(capsys, "benchmarks", "list", "--data-dir", dest)[0] == 0


def test_fetch_offline_without_from_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rc, out, err = _cli(capsys, "benchmarks", "fetch", "--data-dir", tmp_path)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--from DIR" in err
    assert list(tmp_path.iterdir()) == []
    rc, out, err = _cli(capsys, "benchmarks", "fetch", "gsm9k", "--from", tmp_path)
    assert rc == 2 and "valid names" in err
    rc, out, err = _cli(capsys, "benchmarks", "fetch", "--from", tmp_path / "nope", "--data-dir", tmp_path / "b")
    assert rc == 2 and f"--from {tmp_path / 'nope'}: no such folder" in err


def test_default_folder_is_the_users_cache(tmp_path, monkeypatch, capsys):
    "No --data-dir and no $SBNB_BENCHMARKS: ~/.cache/sbnb/benchmarks, or $XDG_CACHE_HOME/sbnb/benchmarks."
    monkeypatch.delenv("SBNB_BENCHMARKS", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert benchmarks_dir() == tmp_path / ".cache" / "sbnb" / "benchmarks"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert benchmarks_dir() == tmp_path / "xdg" / "sbnb" / "benchmarks"
    rc, out, err = _cli(capsys, "benchmarks", "list")
    assert (
        rc == 0
        and f"benchmark folder: {tmp_path / 'xdg' / 'sbnb' / 'benchmarks'}" in out
        and "`sbnb benchmarks fetch`" in out
    )
    with pytest.raises(SbnbError) as e:
        B.load_benchmark("numglue")
    assert str(tmp_path / "xdg" / "sbnb" / "benchmarks") in str(e.value) and "sbnb benchmarks fetch numglue" in str(
        e.value
    )


@bench
def test_real_benchmarks_copy_and_check(tmp_path, capsys):
    "`sbnb benchmarks fetch --from $SBNB_BENCHMARKS` then `list`: every benchmark with its published rows and its SHA-256."
    rows = dict(
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
        **{"gsm8k-train": 7473},
    )
    rc, out, err = _cli(capsys, "benchmarks", "fetch", "--from", benchmarks_dir(), "--data-dir", tmp_path)
    assert rc == 0
    rc, out, err = _cli(capsys, "benchmarks", "list", "--data-dir", tmp_path)
    assert rc == 0 and "missing" not in out
    man = read_json(tmp_path / "manifest.json")["benchmarks"]
    assert {n: e["rows"] for n, e in man.items()} == rows
    for n, s in B.SOURCES.items():  # the files pinned for a network fetch are the ones CI reads, byte for byte
        if s.sha256:
            assert man[n]["sha256"] == s.sha256, n
