"""sbnb.upsample: planted selection, determinism, upsampling modes, controls, errors and the `sbnb upsample` command."""

import json, random
from collections import Counter
from pathlib import Path
import numpy as np
import pytest
from sbnb.core import SbnbError, read_jsonl, write_jsonl
from sbnb.profile import read_rows, write_rows
from sbnb.select import (
    PAPER_RECIPE,
    UpsampleConfig,
    select,
)
from sbnb.upsample import upsample, upsample_report, RepeatSampler, repeat_indices, write_report, copy_id
from sbnb.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _data(traj):
    data = [
        {"id": r["id"], "source": r["source"], "instruction": f"q {r['id']}", "nested": {"a": [1, {"b": 2}]}}
        for r in traj
    ]
    random.Random(5).shuffle(data)  # a different order from the trajectories
    return data


def test_materialize(planted):
    traj, _ = planted
    sel = select(traj, UpsampleConfig())
    data = _data(traj)
    for factor in (1, 2, 3):
        out = upsample(data, sel.configured(factor=factor))
        cnt = Counter(r.get("copy_of") or r["id"] for r in out)
        assert all(cnt[i] == (factor if i in sel else 1) for i in cnt)
        assert set(cnt) == {r["id"] for r in data}  # nothing dropped, nothing new
        assert out[: len(data)] == data
        assert len({r["id"] for r in out}) == len(out)  # every id once: a valid table
        by_id = {r["id"]: r for r in data}
        for r in out[
            len(data) :
        ]:  # a copy: a new id naming its copy number, its original in copy_of, the rest unchanged
            assert r["id"] in {copy_id(r["copy_of"], c) for c in range(1, factor)}
            assert {k: v for k, v in r.items() if k not in ("id", "copy_of")} == {
                k: v for k, v in by_id[r["copy_of"]].items() if k != "id"
            }
    out[-1]["nested"]["a"].append(9)
    assert all(r["nested"]["a"] == [1, {"b": 2}] for r in data)  # copies are independent of the input


def test_weights_and_sampler(planted):
    traj, _ = planted
    sel = select(traj, UpsampleConfig())
    data = _data(traj)
    w = upsample(data, sel.configured(factor=3, mode="weights"))
    assert w == [3 if r["id"] in sel else 1 for r in data]
    s = RepeatSampler(w, seed=2)
    assert len(s) == sum(w) and Counter(s) == Counter(repeat_indices(w))
    assert list(s) == list(RepeatSampler(w, seed=2))
    s.set_epoch(1)
    assert list(s) != list(RepeatSampler(w, seed=2))
    with pytest.raises(SbnbError):
        RepeatSampler([1, 0])


def test_augment_with_given_function(planted):
    traj, _ = planted
    sel = select(traj, UpsampleConfig())
    data = _data(traj)

    def aug(ex, seed):
        if ex["source"] == "tiny":
            return None
        return {**ex, "id": f"{ex['id']}~{seed}", "instruction": ex["instruction"] + "!"}

    sa = sel.configured(factor=3, mode="augment")
    out, st = upsample_report(data, sa, augment=aug)
    assert len(out) == len(data) + 2 * len(sel)
    assert st["fallback_copies"] == 2 * sum(1 for r in data if r["source"] == "tiny" and r["id"] in sel)
    new = [r for r in out[len(data) :] if r["source"] != "tiny"]
    assert len({r["id"] for r in new}) == len(new)  # distinct seeds for each copy
    assert out == upsample(data, sa, augment=aug)


def test_augment_with_the_corpus_augmenter_on_the_sample_corpus():
    from sbnb.corpus import augment_example

    train = ROOT / "data" / "sample" / "train.jsonl"
    if not train.exists():
        pytest.skip("no data/sample/train.jsonl")
    data = read_jsonl(train)
    rng = np.random.default_rng(0)
    traj = [{"id": r["id"], "source": r["source"], "losses": [3.0, float(rng.uniform(0.2, 2.5))]} for r in data]
    sel = select(traj, UpsampleConfig())
    out, st = upsample_report(data, sel.configured(mode="augment"), augment_example)
    assert len(out) == len(data) + len(sel) and st["fallback_copies"] == 0
    extra = out[len(data) :]
    by_id = {r["id"]: r for r in data}
    assert all(e["augmented_from"] in sel and e["source"] == by_id[e["augmented_from"]]["source"] for e in extra)
    assert len({e["id"] for e in extra} | set(by_id)) == len(out)  # fresh variants get fresh ids
    assert {r["id"] for r in data} <= {r["id"] for r in out}


def _err(fn, *words):
    with pytest.raises(SbnbError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_errors(planted):
    traj, _ = planted
    sel = select(traj, UpsampleConfig())
    data = _data(traj)
    first = traj[0]["id"]
    _err(lambda: upsample([r for r in data if r["id"] != first], sel), f"trajectory id {first} is not in the data")
    _err(lambda: upsample(data + [{"id": "zz", "source": "arith"}], sel), "data id zz has no trajectory")
    _err(
        lambda: upsample([dict(r, source="other") if r["id"] == first else r for r in data], sel),
        f"(id '{first}'): source 'other'",
    )
    bad = [dict(r) for r in traj]
    bad[5] = dict(bad[5], losses=[1.0, float("nan")] + bad[5]["losses"][2:])
    _err(lambda: select(bad, UpsampleConfig()), f"trajectories:6 (id '{bad[5]['id']}'): NaN or infinite")
    assert "NaN or infinite losses read as the authors'" in select(bad).sources[bad[5]["source"]].reason
    bad[5] = dict(bad[5], losses=[1.0, float("inf")] + bad[5]["losses"][2:])
    _err(lambda: select(bad, UpsampleConfig()), f"(id '{bad[5]['id']}'): NaN or infinite")
    bad[5] = dict(bad[5], losses=[1.0, 2.0])
    _err(lambda: select(bad), f"(id '{bad[5]['id']}'): 2 checkpoints, but the first row has 6")
    _err(lambda: select(traj + [traj[3]]), f"(id '{traj[3]['id']}'): duplicate id")
    _err(
        lambda: select(
            [{"id": "a", "source": "s", "losses": [1.0, 0.5]}, {"id": "b", "source": "t", "losses": [1.0, 0.5]}],
            UpsampleConfig(),
        ),
        "source 's' (first id a) has 1 examples, fewer than k=2",
    )
    _err(lambda: select(traj, UpsampleConfig(k=200)), "fewer than k=200")
    _err(lambda: UpsampleConfig(factor=0), "factor must be at least 1")
    _err(lambda: sel.configured(factor=0), "factor must be at least 1")
    _err(lambda: sel.configured(mode="copy"), "'copy' is not one of")
    _err(lambda: upsample(data, sel.configured(mode="augment")), "needs an augment(example, seed) function")
    _err(lambda: select([{"id": "a", "source": "s", "losses": [1.0]}]), "(id 'a'): 1 checkpoint(s)")
    _err(lambda: select([{"id": "a", "source": "s"}]), "trajectories:1 (id 'a'): missing field 'losses'")


def test_report(planted, tmp_path):
    traj, _ = planted
    sel = select(traj, UpsampleConfig())
    write_report(sel, tmp_path / "rep", {"rows_in": 1})
    d = json.loads((tmp_path / "rep" / "selection.json").read_text())
    assert d["sources"]["arith"]["cluster_sizes"] and d["sources"]["arith"]["reason"].startswith("k-means")
    assert "small source" in d["sources"]["tiny"]["reason"]
    assert (tmp_path / "rep" / "selected_ids.txt").read_text().split() == sel.ids
    assert (tmp_path / "rep" / "curves.png").stat().st_size > 1000
    assert "| arith |" in (tmp_path / "rep" / "summary.md").read_text()


def test_cli(planted, tmp_path):
    traj, _ = planted
    data = [{"id": r["id"], "source": r["source"], "x": i} for i, r in enumerate(traj)]  # only id + source + anything
    write_rows(data, tmp_path / "data.parquet")
    write_jsonl(tmp_path / "traj.jsonl", traj)
    args = ["upsample", "--data", str(tmp_path / "data.parquet"), "--trajectories", str(tmp_path / "traj.jsonl")]
    assert (
        main(
            args
            + [
                "--out",
                str(tmp_path / "up.parquet"),
                "--factor",
                "3",
                "--features",
                "ratio",
                "--first",
                "4",
                "--seed",
                "2",
                "--report",
                str(tmp_path / "rep"),
            ]
        )
        == 0
    )
    out = read_rows(tmp_path / "up.parquet")
    sel = select(traj, UpsampleConfig(features="ratio", first=4, seed=2))  # --features alone: recipe custom
    assert Counter(r.get("copy_of") or r["id"] for r in out) == Counter(
        {r["id"]: 3 if r["id"] in sel else 1 for r in data}
    )
    assert len({r["id"] for r in out}) == len(out)
    meta = json.loads((tmp_path / "up.parquet.meta.json").read_text())
    assert meta["config"]["factor"] == 3 and meta["stats"]["rows_out"] == len(out) and "git" in meta
    assert (tmp_path / "rep" / "curves.png").exists()


@pytest.mark.parametrize("case", ["missing_traj", "no_traj_for_row", "nan", "ckpt_count", "k_too_big", "factor"])
def test_cli_errors_exit_2(planted, tmp_path, case, capsys):
    traj, _ = planted
    traj = [dict(r) for r in traj]
    data = [{"id": r["id"], "source": r["source"]} for r in traj]
    extra = []
    if case == "missing_traj":
        data = data[1:]
    if case == "no_traj_for_row":
        data.append({"id": "lonely", "source": "arith"})
    if case == "nan":  # refused by sbnb's recipes (the paper's reads NaN as 0, as the authors' code does)
        traj[2]["losses"] = [float("nan")] * 6
        extra = ["--recipe", "logfrac"]
    if case == "ckpt_count":
        traj[2]["losses"] = traj[2]["losses"][:3]
    if case == "k_too_big":
        extra = ["--k", "1000"]
    if case == "factor":
        extra = ["--factor", "0"]
    (tmp_path / "traj.jsonl").write_text("".join(json.dumps(r) + "\n" for r in traj))  # json.dumps writes NaN
    write_jsonl(tmp_path / "data.jsonl", data)
    rc = main(
        [
            "upsample",
            "--data",
            str(tmp_path / "data.jsonl"),
            "--trajectories",
            str(tmp_path / "traj.jsonl"),
            "--out",
            str(tmp_path / "up.jsonl"),
            *extra,
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("sbnb: error:") and err.count("\n") == 1
    assert not (tmp_path / "up.jsonl").exists()
    want = {
        "missing_traj": traj[0]["id"],
        "no_traj_for_row": "lonely",
        "nan": traj[2]["id"],
        "ckpt_count": traj[2]["id"],
        "k_too_big": "k=1000",
        "factor": "factor",
    }[case]
    assert want in err


def test_select_defaults_to_the_papers_recipe(planted):
    traj, _ = planted
    sel = select(traj)
    assert sel.config == PAPER_RECIPE == UpsampleConfig(recipe="authors") and select(traj, None).ids == sel.ids
    assert UpsampleConfig().recipe == "custom"  # a record without a recipe field keeps meaning what it meant
    assert UpsampleConfig.from_dict({"factor": 2, "features": "logfrac"}).recipe == "custom"
    lines = sel.summary().splitlines()
    assert lines[0].startswith("recipe authors: features ratio, rule ratio, k-means faiss")
    assert "small source (12 < mean source size 78.4): selected whole" in sel.summary()
    assert (
        lines[-1]
        == "2 of 5 sources selected whole by the small-source rule: 32 of 152 picks; the rest are slow clusters"
    )


def test_a_dataset_in_a_dataset_out(planted):
    from datasets import Dataset
    from sbnb.data import to_dataset

    traj, _ = planted
    sel = select(Dataset.from_list(traj))  # trajectories as a Dataset too
    assert sel.ids == select(traj).ids
    data = [{"id": r["id"], "source": r["source"], "instruction": f"q {r['id']}", "output": "a"} for r in _data(traj)]
    ds = Dataset.from_list(data)
    up = upsample(ds, sel)
    assert isinstance(up, Dataset) and up.column_names == ds.column_names + ["copy_of"]
    rows = upsample(data, sel)
    assert [{k: v for k, v in r.items() if v is not None} for r in up] == rows  # what the rows route gives
    assert to_dataset(rows).num_rows == len(rows)  # an upsampled table is a valid examples table
    same = ds.select(repeat_indices(sel.repeat_counts(ds["id"])))  # no copies: the same distribution
    assert Counter(same["id"]) == Counter(r["copy_of"] or r["id"] for r in up)
    assert upsample(ds, sel.configured(mode="weights")) == sel.repeat_counts(ds["id"])
    three = upsample(ds, sel.configured(factor=3))
    assert len(three) == len(ds) + 2 * len(sel) and len(set(three["id"])) == len(three)
    with pytest.raises(SbnbError, match="no column 'source'"):
        upsample(ds.remove_columns("source"), sel)


def test_a_copy_of_a_copy_names_the_first_original(planted):
    traj, _ = planted
    by, sel = {t["id"]: t for t in traj}, select(traj)
    rows = upsample(_data(traj), sel)
    again = upsample(rows, select([dict(by[r.get("copy_of") or r["id"]], id=r["id"]) for r in rows]))
    assert len({r["id"] for r in again}) == len(again)  # the next free copy number: ~copy2 where ~copy1 is taken
    assert {r["copy_of"] for r in again[len(rows) :]} <= set(by) and copy_id(sel.ids[0], 2) in {r["id"] for r in again}


def test_cli_recipe_default_and_flags(planted, tmp_path, capsys):
    traj, _ = planted
    write_jsonl(tmp_path / "data.jsonl", [{"id": r["id"], "source": r["source"]} for r in traj])
    write_jsonl(tmp_path / "traj.jsonl", traj)
    args = ["upsample", "--data", str(tmp_path / "data.jsonl"), "--trajectories", str(tmp_path / "traj.jsonl")]
    assert main(args + ["--out", str(tmp_path / "a.jsonl"), "--report", str(tmp_path / "rep")]) == 0
    assert json.loads((tmp_path / "a.jsonl.meta.json").read_text())["config"]["recipe"] == "authors"
    out = capsys.readouterr().out
    assert out.startswith("recipe authors") and "2 of 5 sources selected whole" in out and "copy_of" in out
    summary = (tmp_path / "rep" / "summary.md").read_text()
    assert "recipe authors" in summary and "32 of 152 picks" in summary
    assert main(args + ["--out", str(tmp_path / "b.jsonl"), "--rule", "auc"]) == 0
    assert json.loads((tmp_path / "b.jsonl.meta.json").read_text())["config"]["recipe"] == "custom"
    capsys.readouterr()
    assert main(args + ["--out", str(tmp_path / "c.jsonl"), "--recipe", "authors", "--features", "logfrac"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--features logfrac: --recipe authors sets features=ratio" in err


def test_coupled_order_is_the_baselines_with_the_extras_inserted():
    "order=coupled: removing an arm's inserted appearances gives the baseline's sequence; method and control insert alike."
    from sbnb.upsample import CoupledSampler

    n, length = 50, 230
    base, _ = CoupledSampler([1] * n, seed=4, insert_seed=11, length=length).sequence()
    up_counts = [2 if i % 5 == 0 else 1 for i in range(n)]  # 10 rows repeated
    ctl_counts = [2 if i % 5 == 1 else 1 for i in range(n)]  # a control: as many repeats, other rows
    up_idx, up_ins = CoupledSampler(up_counts, seed=4, insert_seed=11, length=length).sequence()
    ctl_idx, ctl_ins = CoupledSampler(ctl_counts, seed=4, insert_seed=11, length=length).sequence()
    for idx, ins, counts in ((up_idx, up_ins, up_counts), (ctl_idx, ctl_ins, ctl_counts)):
        kept = [i for i, m in zip(idx, ins) if not m]
        assert kept == base[: len(kept)]
        assert all(counts[i] == 2 for i, m in zip(idx, ins) if m)  # only the repeated rows are inserted
        assert sorted(idx[: n + 10]) == sorted(
            i for i, c in enumerate(counts) for _ in range(c)
        )  # epoch 0: each row c times
    assert up_ins == ctl_ins  # the same positions
    assert (
        CoupledSampler(up_counts, seed=5, insert_seed=11, length=length).sequence()[0] != up_idx
    )  # another replicate: another order
