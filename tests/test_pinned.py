"""Numbers pinned: a short deterministic run of the default's model and data (the smoke preset, one seed, every arm kind,
both budgets) whose per-step training losses and accuracies are stored in tests/pinned/smoke.json. Any change of
numerics fails this test (the run is the session fixture `smoke_run` of conftest.py); the commit that changes them
must say why, rerun the committed results it touches, and regenerate the file with `SBNB_PIN_UPDATE=1 pytest tests/test_pinned.py`."""

import json, os
from pathlib import Path
from sbnb.core import read_json, read_jsonl

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


def test_the_numbers_are_pinned(smoke_run):
    got = json.loads(json.dumps(numbers(smoke_run)))
    if os.environ.get("SBNB_PIN_UPDATE"):
        PINNED.write_text(json.dumps(got, indent=1) + "\n")
    want = json.loads(PINNED.read_text())
    assert set(got) == set(want)
    for run in want:  # exact: a reordering of floating-point work shows here first
        assert got[run] == want[run], run
