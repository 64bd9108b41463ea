"""Numbers pinned: a short deterministic run of the default's model and data (the smoke preset, one seed, every arm kind,
both budgets) whose per-step training losses and accuracies are stored in tests/pinned/smoke.json. Any change of
numerics fails this test (the run is the session fixture `smoke_run` of conftest.py); the commit that changes them
must say why, rerun the committed results it touches, and regenerate the file with `SBNB_PIN_UPDATE=1 pytest tests/test_pinned.py`
(which also removes the other kinds' files below: their numbers are then stale).

The same code gives other last digits on another kind of CPU (torch's kernels differ by vendor and instruction set):
`smoke.json` is the reference, and `smoke-<cpu kind>.json` (`sbnb.record.cpu_kind`: vendor and instruction set) holds
what a machine of another kind computes with the same code (`SBNB_PIN_ADD=1 pytest tests/test_pinned.py` writes
the one of the machine it runs on). A run must equal one of them exactly, and its own kind's file where there is one; on a kind of CPU with no file, the accuracies
must equal the reference's and the losses agree to 1e-4, relative (between the two kinds pinned here SAM's losses
drift apart by up to 3.5e-5), with a warning that names the machine."""

import json, math, os, warnings
from pathlib import Path
from sbnb.core import read_json, read_jsonl
from sbnb.record import cpu_kind

PINNED = Path(__file__).parent / "pinned" / "smoke.json"


def numbers(root: Path) -> dict:
    "Per run: the training loss at every logged step, the mean training loss, and every evaluation's accuracies."
    out = {}
    for r in read_jsonl(root / "runs.jsonl"):
        name = f"{r['arm']}__{r['budget']}__s{r['seed']}".replace("+", "_")
        state = read_json(next(root.glob(f"cache/*/runs/{name}/trainer/trainer_state.json")))
        out[f"{r['arm']} ({r['budget']})"] = {
            "losses": [(h["step"], h["loss"]) for h in state["log_history"] if "loss" in h],
            "train_loss": r["cost"]["train_loss"],
            "final": {k: r["final"][k] for k in ("test", "ood", "test_by_source")},
            "evals": [{s: e[s]["mean"] for s in e if s != "step"} | {"step": e["step"]} for e in r["evals"]],
        }
    return out


def close(got: dict, want: dict, rel: float = 1e-4) -> list[str]:
    "The runs where `got` differs from `want` beyond `rel` in a loss, or at all in an accuracy."
    bad = []
    for run, w in want.items():
        g = got.get(run)
        same_acc = g is not None and g["final"] == w["final"] and g["evals"] == w["evals"]
        steps = g is not None and [s for s, _ in g["losses"]] == [s for s, _ in w["losses"]]
        losses = (
            steps
            and all(math.isclose(a, b, rel_tol=rel) for (_, a), (_, b) in zip(g["losses"], w["losses"]))
            and math.isclose(g["train_loss"], w["train_loss"], rel_tol=rel)
        )
        if not (same_acc and losses):
            bad.append(run)
    return bad


def test_the_numbers_are_pinned(smoke_run):
    got = json.loads(json.dumps(numbers(smoke_run)))
    here = PINNED.with_name(f"smoke-{cpu_kind()}.json")
    # new numerics: this machine's become the reference, and the other kinds' files go stale
    if os.environ.get("SBNB_PIN_UPDATE"):
        PINNED.write_text(json.dumps(got, indent=1) + "\n")
        for p in PINNED.parent.glob("smoke-*.json"):
            p.unlink()
    # the same numerics on another kind of CPU
    if os.environ.get("SBNB_PIN_ADD") and json.loads(PINNED.read_text()) != got:
        here.write_text(json.dumps(got, indent=1) + "\n")
    want = json.loads(PINNED.read_text())
    assert set(got) == set(want)
    kinds = {p: json.loads(p.read_text()) for p in sorted(PINNED.parent.glob("smoke-*.json"))}
    if any(got == v for v in [want, *kinds.values()]):  # exact: a reordering of floating-point work shows here first
        return
    if here in kinds:  # this kind of CPU has its own file, and the run left it
        for run in want:
            assert got[run] == kinds[here][run], run
    bad = close(got, want)
    assert not bad, f"numbers moved beyond this CPU's last digits ({cpu_kind()}): {bad}"
    warnings.warn(
        f"no pinned numbers for this kind of CPU ({cpu_kind()}): checked to 1e-4 (losses) and exactly (accuracies)"
    )


def test_close_tells_a_last_digit_from_a_change():
    want = {
        "a": {
            "losses": [(1, 2.0), (2, 1.0)],
            "train_loss": 1.5,
            "final": {"test": 0.5},
            "evals": [{"test": 0.5, "step": 2}],
        }
    }
    digits = json.loads(json.dumps(want))
    digits["a"]["losses"][0][1] = 2.0 * (1 + 1e-7)
    assert close(digits, want) == []
    moved = json.loads(json.dumps(want))
    moved["a"]["losses"][1][1] = 1.001
    assert close(moved, want) == ["a"]
    acc = json.loads(json.dumps(want))
    acc["a"]["final"]["test"] = 0.51
    assert close(acc, want) == ["a"]
