"""Tests of sbnb.data: schema and file round trips, error cases, hub-format mappers, real benchmark gold answers,
prompts and label masks, the local tokenizer, corpus generation (determinism, splits), augmentation and the CLI."""
import json, math, re
from pathlib import Path
import pytest
from sbnb.core import SbnbError, benchmarks_dir, project_root
from sbnb import data as D

ROW = {"id": "a-1", "source": "a", "instruction": "1+1=", "output": "2", "answer": "2",
       "meta": {"k": [1, 2, {"x": None}]}, "note": "verbatim \u00e9"}

def rows(n=4):
    return [{**ROW, "id": f"a-{i}", "source": "ab"[i % 2], "meta": {"i": i, "tags": ["x", "y"]}} for i in range(n)]

# --- schema and files ---------------------------------------------------------------------------------------------

def test_jsonl_round_trip_keeps_extra_fields(tmp_path):
    rs = rows() + [{**ROW, "id": "odd", "nested": {"a": None}, "nothing": None}]
    D.write_examples(rs, tmp_path/"x.jsonl")
    assert D.read_examples(tmp_path/"x.jsonl") == rs

def test_json_list_file(tmp_path):
    (tmp_path/"x.json").write_text(json.dumps(rows(), indent=2))
    assert D.read_examples(tmp_path/"x.json") == rows()

def test_parquet_and_dataset_round_trip(tmp_path):
    rs = rows()
    assert D.read_examples(D.write_examples(rs, tmp_path/"x.parquet")) == rs
    ds = D.to_dataset(rs)
    assert len(ds) == 4 and set(ds.column_names) >= {"id", "source", "instruction", "output", "answer", "meta"}
    assert D.from_dataset(ds) == rs

@pytest.mark.parametrize("bad,msg", [
    ("{not json", ":2: invalid JSON"),
    (json.dumps({k: v for k, v in ROW.items() if k != "id"}), ":2: missing field 'id'"),
    (json.dumps({k: v for k, v in ROW.items() if k != "source"}), ":2 (id 'a-1'): missing field 'source'"),
    (json.dumps({k: v for k, v in ROW.items() if k != "instruction"}), ":2 (id 'a-1'): missing field 'instruction'"),
    (json.dumps({k: v for k, v in ROW.items() if k != "output"}), ":2 (id 'a-1'): missing field 'output'"),
    (json.dumps({**ROW, "source": ""}), ":2 (id 'a-1'): empty 'source'"),
    (json.dumps({**ROW, "id": 5}), ":2: field 'id' must be a string"),
    (json.dumps({**ROW, "id": "a-0"}), ":2: duplicate id 'a-0' (first at line 1)"),
    ("[1, 2]", ":2: expected a JSON object"),
])
def test_malformed_jsonl_names_file_and_line(tmp_path, bad, msg):
    f = tmp_path/"bad.jsonl"
    f.write_text(json.dumps(rows(1)[0]) + "\n" + bad + "\n")
    with pytest.raises(SbnbError) as e: D.read_examples(f)
    assert str(e.value).startswith(f"{f}{msg}") and "\n" not in str(e.value)

def test_cli_errors_exit_2(tmp_path, capsys):
    from sbnb.cli import main
    f = tmp_path/"bad.jsonl"
    f.write_text(json.dumps(ROW) + "\n" + json.dumps({**ROW, "source": ""}) + "\n")
    assert main(["data", "show", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{f}:2" in err and "empty 'source'" in err
    assert main(["data", "show", str(tmp_path/"missing.jsonl")]) == 2
    assert main(["data", "generate", "--preset", "smoke", "--out", str(tmp_path/"c"), "train_sizes={\"nope\": 3}"]) == 2
    assert main(["data", "show", str(D.write_examples(rows(), tmp_path/"ok.jsonl"))]) == 0

# --- hub formats ----------------------------------------------------------------------------------------------------

def test_mathinstruct_local_file_and_offline_hub(tmp_path, monkeypatch):
    raw = [{"source": "data/CoT/gsm_rft.json", "instruction": "Q1", "output": "2+3=5\nThe answer is 5."},
           {"source": "data/PoT/mathqa.json", "instruction": "Q2", "output": "print(3)"},
           {"source": "data/CoT/aqua_rat.json", "instruction": "Q3", "output": "so\nThe answer is (C)"}]
    (tmp_path/"mi.json").write_text(json.dumps(raw))
    (tmp_path/"mi.jsonl").write_text("".join(json.dumps(r) + "\n" for r in raw))
    for p in ("mi.json", "mi.jsonl"):
        got = D.load_mathinstruct(tmp_path/p)
        assert [(r["id"], r["source"], r["answer"]) for r in got] == [
            ("mathinstruct-0", "data/CoT/gsm_rft.json", "5"), ("mathinstruct-1", "data/PoT/mathqa.json", ""),
            ("mathinstruct-2", "data/CoT/aqua_rat.json", "(C)")]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SbnbError, match="path="): D.load_mathinstruct()
    with pytest.raises(SbnbError, match="HF_HUB_OFFLINE"): D.read_benchmark("gsm8k", hub=True)

def test_map_gsm8k():
    r = D.map_gsm8k({"question": " Tom has 1,200 ... ", "answer": "a <<2*600=1200>>1,200\n#### 1,200"}, 3)
    assert (r["id"], r["source"], r["instruction"], r["answer"]) == ("gsm8k-3", "gsm8k", "Tom has 1,200 ...", "1200")
    assert r["output"].endswith("#### 1,200")
    assert D.map_gsm8k({"question": "q", "answer": "x\n#### 5.50"})["answer"] == "5.5"
    with pytest.raises(SbnbError): D.map_gsm8k({"question": "q", "answer": "no final answer"})

def test_map_math():
    row = {"problem": "What is $\\frac{1}{2}+\\frac{1}{4}$?", "level": "Level 2", "type": "Prealgebra",
           "solution": "First $\\boxed{1}$ is wrong; we get $\\boxed{\\frac{3}{4}}$."}
    r = D.map_math(row, "prealgebra/12")
    assert (r["id"], r["answer"], r["level"], r["type"]) == ("math-prealgebra/12", "\\frac{3}{4}", "Level 2", "Prealgebra")
    m500 = {"question": "Evaluate $\\log_264$.", "solution": "$\\boxed{6}$.", "answer": "6", "subject": "Algebra",
            "level": 2, "unique_id": "test/algebra/1255.json"}
    assert (D.map_math(m500)["id"], D.map_math(m500)["answer"]) == ("math-algebra/1255", "6")
    assert D.last_boxed("x \\fbox{a{b}c} y") == "a{b}c" and D.last_boxed("none") is None

def test_map_numglue_svamp_deepmind_simuleq():
    assert [D.map_numglue({"question": "q", "answer": a, "type": "Type_3"})["answer"] for a in (1536, "B", "4.17")] == ["1536", "B", "4.17"]
    s = D.map_svamp({"ID": "chal-9", "Body": "Each pack costs 76 dollars. ", "Question": "How much?",
                     "Equation": "( 76.0 - 25.0 )", "Answer": 51.0, "Type": "Subtraction"})
    assert (s["id"], s["instruction"], s["answer"]) == ("svamp-chal-9", "Each pack costs 76 dollars. How much?", "51")
    assert D.map_svamp({"ID": "x", "Body": "b", "Question": "q", "Equation": "e", "Answer": 2.5})["answer"] == "2.5"
    assert D.map_deepmind({"question": "What is 451 to the power of 1/10?", "answer": "2"}, 0)["answer"] == "2"
    assert D.map_deepmind({"question": "b'Let x = 3. What is x?\\n'", "answer": "b'3\\n'"})["instruction"] == "Let x = 3. What is x?"
    r = D.map_simuleq({"question": "novelists and poets ... How many novelists?", "answer": "15"}, 0)
    assert (r["id"], r["source"], r["answer"]) == ("simuleq-0", "simuleq", "15")

bench = pytest.mark.skipif(not benchmarks_dir().exists(), reason="shared/benchmarks not present")

@bench
def test_gold_answers_from_real_files():
    b = benchmarks_dir()
    gs = D.read_benchmark("gsm8k")
    assert len(gs) == 1319 and [r["answer"] for r in gs[:3]] == ["18", "3", "70000"]
    sv = D.read_benchmark("svamp")
    assert len(sv) == 1000 and (sv[0]["id"], sv[0]["answer"]) == ("svamp-chal-1", "51")
    ng = D.read_benchmark("numglue")
    assert len(ng) == 1042 and [r["answer"] for r in ng[:3]] == ["1536", "12421", "B"]
    dm = D.read_benchmark("deepmind")
    assert [r["answer"] for r in dm[:2]] == ["2", "[3]"]
    assert [r["answer"] for r in D.read_benchmark("deepmind", b/"deepmind/test.jsonl")] == [r["answer"] for r in dm]
    assert D.read_benchmark("simuleq")[0]["answer"] == "15"
    m = D.read_benchmark("math")
    assert len(m) == 5000 and (m[0]["id"], m[0]["answer"]) == ("math-algebra/1", "2")
    m500 = [json.loads(l) for l in (b/"math500/test.jsonl").read_text().splitlines()[:20]]
    byid = {r["id"]: r for r in m}
    for r in m500:  # the last \boxed{} of the full MATH file agrees with MATH-500's own `answer`
        assert byid[D.map_math(r)["id"]]["answer"].replace(" ", "") == r["answer"].replace(" ", "")

# --- prompts, tokenizer, labels --------------------------------------------------------------------------------------

def test_prompts():
    ex = {**ROW, "instruction": "What is 2+3?"}
    assert D.format_prompt(ex) == ("Below is an instruction that describes a task. Write a response that appropriately "
                                   "completes the request.\n\n### Instruction:\nWhat is 2+3?\n\n### Response:\n")
    assert D.format_prompt({**ex, "input": "ctx"}).endswith("### Input:\nctx\n\n### Response:\n")
    assert D.format_prompt(ex, "compact") == "What is 2+3?" and D.format_response(ex) == "2"
    with pytest.raises(SbnbError): D.format_prompt(ex, "nope")

@pytest.fixture(scope="module")
def sample_dir():
    return project_root()/"data"/"sample"

def test_sample_tokenizer_loads_with_autotokenizer(sample_dir):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(sample_dir/"tokenizer"))
    assert (tok.pad_token, tok.eos_token, tok.pad_token_id) == ("<pad>", "<eos>", 0)
    s = "legs 2 cow 3 spider=23\nThe answer is -7."
    assert tok.convert_ids_to_tokens(tok(s)["input_ids"]) == list(s) and tok.decode(tok(s)["input_ids"]) == s

@pytest.mark.parametrize("style", ["compact", "alpaca"])
def test_label_mask(sample_dir, style):
    tok = D.load_corpus_tokenizer(sample_dir)
    ex = D.read_examples(sample_dir/"train.jsonl")[0]
    f = D.tokenize_example(ex, tok, max_length=512, style=style, pad_to=200)
    n_prompt = len(tok(D.format_prompt(ex, style))["input_ids"])
    assert f["labels"][:n_prompt] == [-100] * n_prompt and f["input_ids"][:n_prompt] == tok(D.format_prompt(ex, style))["input_ids"]
    kept = [i for i, l in zip(f["input_ids"], f["labels"]) if l != -100]
    assert tok.decode(kept) == ex["output"] + "<eos>"
    assert [l for l, i in zip(f["labels"], f["input_ids"]) if l != -100] == kept
    n = sum(f["attention_mask"])
    assert len(f["input_ids"]) == 200 and set(f["labels"][n:]) == {-100} and set(f["input_ids"][n:]) == {0} and f["truncated"] == 0

def test_truncation_count(sample_dir):
    tok = D.load_corpus_tokenizer(sample_dir)
    ex = {**ROW, "instruction": "12345=", "output": "abcdef"}
    f = D.tokenize_example(ex, tok, max_length=9, style="compact")
    assert (len(f["input_ids"]), f["truncated"], f["labels"][6:]) == (9, 4, tok("abc")["input_ids"])
    feats, n = D.tokenize_examples([ex, {**ex, "id": "b"}], tok, max_length=9, style="compact")
    assert n == 8 and feats[1]["id"] == "b"

def test_bpe_tokenizer(tmp_path):
    tok = D.train_tokenizer(["the answer is 12. so the total is 7."] * 30, tmp_path/"t", vocab_size=130)
    t2 = D.load_corpus_tokenizer(tmp_path/"t")
    ids = t2("the answer is 9.")["input_ids"]
    assert t2.decode(ids) == "the answer is 9." and len(ids) < 16

# --- the embedded corpus ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    return D.generate_corpus(D.CorpusConfig.preset("smoke"), tmp_path_factory.mktemp("smoke"))

def test_generation_is_deterministic(smoke, tmp_path):
    again = D.generate_corpus(D.CorpusConfig.preset("smoke"), tmp_path/"again")
    for f in ("train.jsonl", "test.jsonl", "ood.jsonl", "tokenizer/tokenizer.json", "corpus.json"):
        assert (smoke/f).read_bytes() == (again/f).read_bytes(), f
    other = D.generate_corpus(D.CorpusConfig.preset("smoke").replace(seed=7), tmp_path/"other")
    assert (other/"train.jsonl").read_bytes() != (smoke/"train.jsonl").read_bytes()

def test_committed_sample_is_the_smoke_preset(smoke, sample_dir):
    "data/sample is `sbnb data generate --preset smoke --out data/sample`: regenerate it if a generator changes."
    for f in ("train.jsonl", "test.jsonl", "ood.jsonl", "tokenizer/tokenizer.json"):
        assert (sample_dir/f).read_bytes() == (smoke/f).read_bytes(), f

def test_corpus_splits_and_sources(smoke):
    cfg = D.CorpusConfig.preset("smoke")
    sp = {s: D.read_examples(smoke/f"{s}.jsonl") for s in ("train", "test", "ood")}
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
    if s in ("chain", "addsub", "mul"): return int(eval(c[:-1])) == int(a)  # digits and + - * only
    if s == "gcd": return math.gcd(*map(int, c[4:-1].split())) == int(a)
    if s == "max": return max(map(int, c[4:-1].split())) == int(a)
    if s == "frac":
        n, d = map(int, c[:-1].split("/")); an, ad = map(int, a.split("/"))
        return n * ad == d * an and math.gcd(an, ad) == 1
    if s == "lineq":
        lhs, rhs = c.split("=")
        x = int(a); return eval(lhs.replace(f"x", f"*{x}")) == int(rhs)
    if s == "legs":
        from reasoning_gym.arithmetic.leg_counting import ANIMALS
        toks = c[5:-1].split()
        legs = {k.replace(" ", ""): v for k, v in dict(ANIMALS).items()}
        return sum(int(n) * legs[an] for n, an in zip(toks[::2], toks[1::2])) == int(a)
    return True

def test_corpus_answers_and_forms(smoke):
    rs = D.read_examples(smoke/"train.jsonl") + D.read_examples(smoke/"ood.jsonl")
    assert all(_check_answer(r) for r in rs)
    for r in rs:
        assert r["instruction"] == r["compact"] and r["solution"].endswith(f"The answer is {r['answer']}.")
        assert D.decode_answer(r["output"], r) == r["answer"]
        assert r["answer_reversed"] == bool(re.fullmatch(r"-?\d+", r["answer"]))
        assert D.regenerate(r) == r
    assert any(r["output"] != r["answer"] for r in rs)  # some multi-digit answers are reversed

def test_corpus_config_fields(tmp_path):
    cfg = D.CorpusConfig(train_sizes={"addsub": 20, "gcd": 10, "frac": 10}, n_test=5, n_ood=5, reverse_digits=False, form="full")
    out = D.generate_corpus(cfg, tmp_path/"c")
    rs = D.read_examples(out/"train.jsonl")
    assert all(_check_answer(r) for r in rs)
    assert len(rs) == 40 and all(r["output"] == r["solution"] and r["instruction"] == r["question"] for r in rs)
    assert not any(r["answer_reversed"] for r in rs)
    with pytest.raises(SbnbError, match="did you mean"): D.CorpusConfig().override(["sead=1"])
    with pytest.raises(SbnbError, match="allow_repeats=true"):
        D.generate_corpus(D.CorpusConfig(train_sizes={"legs": 1200}, allow_repeats=False), tmp_path/"x")
    with pytest.raises(SbnbError, match="distinct test problems"): D.generate_corpus(D.CorpusConfig(train_sizes={"legs": 5}, n_test=1100), tmp_path/"y")

def test_sizes_beyond_a_source_repeat_training_problems_only(tmp_path):
    out = D.generate_corpus(D.CorpusConfig(train_sizes={"legs": 1200}, n_test=50, n_ood=5), tmp_path/"c")
    tr, te = D.read_examples(out/"train.jsonl"), D.read_examples(out/"test.jsonl")
    distinct = {r["instruction"] for r in tr}
    assert len(tr) == 1200 and len(distinct) < 1050 and not distinct & {r["instruction"] for r in te}
    assert json.loads((out/"corpus.json").read_text())["counts"]["legs"]["train_distinct"] == len(distinct)

def test_augmentation(smoke):
    rs = D.read_examples(smoke/"train.jsonl")
    for r in [next(x for x in rs if x["source"] == s) for s in dict.fromkeys(x["source"] for x in rs)]:
        a, b = D.augment_example(r, 1), D.augment_example(r, 2)
        assert a == D.augment_example(r, 1)  # deterministic
        assert len({r["id"], a["id"], b["id"]}) == 3 and a["augmented_from"] == r["id"]
        assert (a["source"], a["generator"], a["gen_params"], a["answer_reversed"]) == (r["source"], r["generator"], r["gen_params"], r["answer_reversed"])
        assert a["compact"] != r["compact"] and _check_answer(a) and D.decode_answer(a["output"], a) == a["answer"]
        assert D.validate_example(a) is a
    with pytest.raises(SbnbError, match="cannot augment"): D.augment_example(ROW, 1)

def test_cli_generate(tmp_path, smoke):
    from sbnb.cli import main
    assert main(["data", "generate", "--preset", "smoke", "--out", str(tmp_path/"c"), "--seed", "0"]) == 0
    assert (tmp_path/"c"/"train.jsonl").read_bytes() == (smoke/"train.jsonl").read_bytes()

def test_default_corpus_size_and_speed(tmp_path):
    import time
    t = time.time()
    out = D.generate_corpus(D.CorpusConfig(), tmp_path/"d")
    counts = json.loads((out/"corpus.json").read_text())["counts"]
    assert sum(c["train"] for c in counts.values()) == 11400 and len(counts) == 7
    assert time.time() - t < 30

def test_optional_gsm_source_holds_out_templates(tmp_path):
    out = D.generate_corpus(D.CorpusConfig(train_sizes={"gsm": 6}, n_test=2, n_ood=3), tmp_path/"g")
    tr, ood = D.read_examples(out/"train.jsonl"), D.read_examples(out/"ood.jsonl")
    tmpl = lambda r: json.loads(r["gen_params"])["template"]
    assert all(tmpl(r) % 5 != 4 for r in tr) and all(tmpl(r) % 5 == 4 for r in ood)
    assert all(r["solution"].endswith(f"The answer is {r['answer']}.") and D.regenerate(r) == r for r in tr)
    a = D.augment_example(tr[0], 1)
    assert tmpl(a) == tmpl(tr[0]) and a["instruction"] != tr[0]["instruction"]

def test_ensure_corpus_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("SBNB_CACHE", str(tmp_path))
    cfg = D.CorpusConfig.preset("smoke")
    p1 = D.ensure_corpus(cfg)
    mtime = (p1/"train.jsonl").stat().st_mtime_ns
    assert p1.parent.parent == tmp_path and D.ensure_corpus(cfg) == p1 and (p1/"train.jsonl").stat().st_mtime_ns == mtime
    assert D.ensure_corpus(cfg.replace(seed=3)) != p1

def test_cli_data_without_subcommand():
    from sbnb.cli import main
    assert main(["data"]) == 2
