"""Tests of sbnb.corpus: generation (determinism, splits, sizes), answers and forms, augmentation, the cache and `sbnb data generate`."""

import json, math, re
import pytest
from sbnb.core import SbnbError, project_root
from sbnb import corpus as C
from sbnb import data as D

ROW = {"id": "a-1", "source": "a", "instruction": "1+1=", "output": "2", "answer": "2"}


@pytest.fixture(scope="module")
def sample_dir():
    return project_root() / "data" / "sample"


# --- the embedded corpus ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    return C.generate_corpus(C.CorpusConfig.from_preset("smoke"), tmp_path_factory.mktemp("smoke"))


def test_generation_is_deterministic(smoke, tmp_path):
    again = C.generate_corpus(C.CorpusConfig.from_preset("smoke"), tmp_path / "again")
    for f in ("train.jsonl", "test.jsonl", "ood.jsonl", "tokenizer/tokenizer.json", "corpus.json"):
        assert (smoke / f).read_bytes() == (again / f).read_bytes(), f
    other = C.generate_corpus(C.CorpusConfig.from_preset("smoke").replace(seed=7), tmp_path / "other")
    assert (other / "train.jsonl").read_bytes() != (smoke / "train.jsonl").read_bytes()


def test_committed_sample_is_the_smoke_preset(smoke, sample_dir):
    "data/sample is `sbnb data generate --preset smoke --out data/sample`: regenerate it if a generator changes."
    for f in ("train.jsonl", "test.jsonl", "ood.jsonl", "tokenizer/tokenizer.json"):
        assert (sample_dir / f).read_bytes() == (smoke / f).read_bytes(), f


def test_corpus_splits_and_sources(smoke):
    cfg = C.CorpusConfig.from_preset("smoke")
    sp = {s: D.read_examples(smoke / f"{s}.jsonl") for s in ("train", "test", "ood")}
    srcs = {r["source"] for r in sp["train"]}
    assert len(srcs) >= 6
    from collections import Counter

    assert dict(Counter(r["source"] for r in sp["train"])) == {s: n for s, n in cfg.sizes().items() if n}
    assert set(Counter(r["source"] for r in sp["test"]).values()) == {cfg.n_test}
    assert set(Counter(r["source"] for r in sp["ood"]).values()) == {cfg.n_ood}
    for s in srcs:  # no test or OOD prompt occurs in training
        tr = {r["instruction"] for r in sp["train"] if r["source"] == s}
        assert not tr & {r["instruction"] for r in sp["test"] + sp["ood"] if r["source"] == s}
    ids = [r["id"] for v in sp.values() for r in v]
    assert len(ids) == len(set(ids))


def _check_answer(r) -> bool:
    "Recompute the answer of a compact corpus example from its prompt."
    s, c, a = r["source"], r["compact"], r["answer"]
    if s in ("chain", "addsub", "mul"):
        return int(eval(c[:-1])) == int(a)  # digits and + - * only
    if s == "gcd":
        return math.gcd(*map(int, c[4:-1].split())) == int(a)
    if s == "max":
        return max(map(int, c[4:-1].split())) == int(a)
    if s == "frac":
        n, d = map(int, c[:-1].split("/"))
        an, ad = map(int, a.split("/"))
        return n * ad == d * an and math.gcd(an, ad) == 1
    if s == "lineq":
        lhs, rhs = c.split("=")
        x = int(a)
        return eval(lhs.replace("x", f"*{x}")) == int(rhs)
    if s == "legs":
        from reasoning_gym.arithmetic.leg_counting import ANIMALS

        toks = c[5:-1].split()
        legs = {k.replace(" ", ""): v for k, v in dict(ANIMALS).items()}
        return sum(int(n) * legs[an] for n, an in zip(toks[::2], toks[1::2])) == int(a)
    return True


def test_corpus_answers_and_forms(smoke):
    rs = D.read_examples(smoke / "train.jsonl") + D.read_examples(smoke / "ood.jsonl")
    assert all(_check_answer(r) for r in rs)
    for r in rs:
        assert r["instruction"] == r["compact"] and r["solution"].endswith(f"The answer is {r['answer']}.")
        assert C.decode_answer(r["output"], r) == r["answer"]
        assert r["answer_reversed"] == bool(re.fullmatch(r"-?\d+", r["answer"]))
        assert C.regenerate(r) == r
    assert any(r["output"] != r["answer"] for r in rs)  # some multi-digit answers are reversed


def test_corpus_config_fields(tmp_path):
    cfg = C.CorpusConfig(
        train_sizes={"addsub": 20, "gcd": 10, "frac": 10}, n_test=5, n_ood=5, reverse_digits=False, form="full"
    )
    out = C.generate_corpus(cfg, tmp_path / "c")
    rs = D.read_examples(out / "train.jsonl")
    assert all(_check_answer(r) for r in rs)
    assert len(rs) == 40 and all(r["output"] == r["solution"] and r["instruction"] == r["question"] for r in rs)
    assert not any(r["answer_reversed"] for r in rs)
    with pytest.raises(SbnbError, match="did you mean"):
        C.CorpusConfig().override(["sead=1"])
    with pytest.raises(SbnbError, match="allow_repeats=true"):
        C.generate_corpus(C.CorpusConfig(train_sizes={"legs": 1200}, allow_repeats=False), tmp_path / "x")
    with pytest.raises(SbnbError, match="distinct test problems"):
        C.generate_corpus(C.CorpusConfig(train_sizes={"legs": 5}, n_test=1100), tmp_path / "y")


def test_sizes_beyond_a_source_repeat_training_problems_only(tmp_path):
    out = C.generate_corpus(C.CorpusConfig(train_sizes={"legs": 1200}, n_test=50, n_ood=5), tmp_path / "c")
    tr, te = D.read_examples(out / "train.jsonl"), D.read_examples(out / "test.jsonl")
    distinct = {r["instruction"] for r in tr}
    assert len(tr) == 1200 and len(distinct) < 1050 and not distinct & {r["instruction"] for r in te}
    assert json.loads((out / "corpus.json").read_text())["counts"]["legs"]["train_distinct"] == len(distinct)


def test_augmentation(smoke):
    rs = D.read_examples(smoke / "train.jsonl")
    for r in [next(x for x in rs if x["source"] == s) for s in dict.fromkeys(x["source"] for x in rs)]:
        a, b = C.augment_example(r, 1), C.augment_example(r, 2)
        assert a == C.augment_example(r, 1)  # deterministic
        assert len({r["id"], a["id"], b["id"]}) == 3 and a["augmented_from"] == r["id"]
        assert (a["source"], a["generator"], a["gen_params"], a["answer_reversed"]) == (
            r["source"],
            r["generator"],
            r["gen_params"],
            r["answer_reversed"],
        )
        assert a["compact"] != r["compact"] and _check_answer(a) and C.decode_answer(a["output"], a) == a["answer"]
        assert D.validate_example(a) is a
    with pytest.raises(SbnbError, match="cannot augment"):
        C.augment_example(ROW, 1)


def test_cli_generate(tmp_path, smoke):
    from sbnb.cli import main

    assert main(["data", "generate", "--preset", "smoke", "--out", str(tmp_path / "c"), "--seed", "0"]) == 0
    assert (tmp_path / "c" / "train.jsonl").read_bytes() == (smoke / "train.jsonl").read_bytes()


def test_default_corpus_size_and_speed(tmp_path):
    import time

    t = time.time()
    out = C.generate_corpus(C.CorpusConfig(), tmp_path / "d")
    counts = json.loads((out / "corpus.json").read_text())["counts"]
    assert sum(c["train"] for c in counts.values()) == 11400 and len(counts) == 7
    assert time.time() - t < 30


def test_optional_gsm_source_holds_out_templates(tmp_path):
    out = C.generate_corpus(C.CorpusConfig(train_sizes={"gsm": 6}, n_test=2, n_ood=3), tmp_path / "g")
    tr, ood = D.read_examples(out / "train.jsonl"), D.read_examples(out / "ood.jsonl")
    tmpl = lambda r: json.loads(r["gen_params"])["template"]
    assert all(tmpl(r) % 5 != 4 for r in tr) and all(tmpl(r) % 5 == 4 for r in ood)
    assert all(r["solution"].endswith(f"The answer is {r['answer']}.") and C.regenerate(r) == r for r in tr)
    a = C.augment_example(tr[0], 1)
    assert tmpl(a) == tmpl(tr[0]) and a["instruction"] != tr[0]["instruction"]


def test_ensure_corpus_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("SBNB_CACHE", str(tmp_path))
    cfg = C.CorpusConfig.from_preset("smoke")
    p1 = C.ensure_corpus(cfg)
    mtime = (p1 / "train.jsonl").stat().st_mtime_ns
    assert (
        p1.parent.parent == tmp_path and C.ensure_corpus(cfg) == p1 and (p1 / "train.jsonl").stat().st_mtime_ns == mtime
    )
    assert C.ensure_corpus(cfg.replace(seed=3)) != p1


def test_the_shipped_base_was_pretrained_on_nothing_held_out_or_fine_tuned():
    "tiny-char-base's recipe regenerates its pretraining rows: no key or prompt of any default split among them."
    from sbnb.core import read_json
    from sbnb.models import models_dir

    recipe = read_json(models_dir() / "tiny-char-base" / "recipe.json")
    cfg = recipe["config"]
    splits = C.balanced_corpus(C.BalancedConfig.from_dict(cfg["balanced"]))
    rows = C.pretraining_rows(cfg["n_rows"], splits, seed=cfg["seed"])
    assert len(rows) == recipe["n_pretraining_rows"] == cfg["n_rows"]
    keys, prompts = {r["key"] for r in rows}, {r["instruction"] for r in rows}
    for name, split in splits.items():
        assert not keys & {r["key"] for r in split}, name
        assert not prompts & {r["instruction"] for r in split}, name


def test_balanced_sources_are_equal_half_hard_and_length_blind():
    sp = C.balanced_corpus(C.BalancedConfig.from_preset("smoke"))
    from collections import Counter

    by = Counter((r["source"], r["difficulty"]) for r in sp["train"])
    assert len({n for (s, d), n in by.items()}) == 1  # equal sizes, half easy, half hard
    for s in C.BalancedConfig().sources:
        assert len({len(r["output"]) for r in sp["train"] + sp["test"] if r["source"] == s}) == 1
    assert not {r["key"] for r in sp["train"]} & {r["key"] for r in sp["test"] + sp["ood"]}
