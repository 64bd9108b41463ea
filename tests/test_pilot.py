"""sbnb.pilot through the command: every rate at B and 2B, B doubled until AdamW meets the rule."""

from sbnb.cli import main
from sbnb.core import read_json


def test_pilot_applies_the_b_to_2b_rule_on_every_source(tmp_path):
    "`sbnb experiment --pilot`: every rate at B and 2B, B doubled until AdamW meets the rule (or the doublings run out), picks recorded."
    argv = [
        "experiment",
        "--preset",
        "smoke",
        "--pilot",
        "--out",
        str(tmp_path),
        "--pilot-lrs",
        "adamw:1e-3,3e-3",
        "--pilot-lrs",
        "muon:1e-3,3e-3",
        "pilot_doublings=1",
        "balanced.n_pretrain=0",
        "power_mde_pp=2",  # the main run's replicate rule, which the pilot's one-seed runs must set aside
        "power_recheck=true",
        "design_first=2",
    ]
    assert main(argv) == 0
    p = read_json(tmp_path / "smoke" / "pilot.json")
    assert p["rule"].startswith("B is the smallest budget") and p["base_steps"] in (24, 48)
    adamw = [r for r in p["runs"] if r["optimizer"] == "adamw"]
    assert {r["steps"] for r in adamw} <= {24, 48} and all(
        {"test_pp", "test_2b_pp", "gain_2b_by_source_pp", "meets"} <= set(r) for r in adamw
    )
    for r in p["runs"]:  # the rule, recomputed from the recorded gains
        assert r["meets"] == (r["gain_2b_pp"] < 2 and all(g < 2 for g in r["gain_2b_by_source_pp"].values()))
        assert set(r["gain_2b_by_source_pp"]) == {"add", "sub", "mul", "div"}
    B = p["base_steps"]
    met = [r for r in adamw if r["steps"] == 24 and r["meets"]]
    assert (B == 24) == bool(met)  # B doubles only when no AdamW rate met the rule at the smaller budget
    assert {r["optimizer"] for r in p["runs"] if r["steps"] == B and r["picked"]} == {"adamw", "muon"}
    assert p["on_edge"] == {o: p["picked"][o] in (1e-3, 3e-3) for o in ("adamw", "muon")}
    md = (tmp_path / "smoke" / "pilot.md").read_text()
    assert "meets the rule" in md and f"B = {B} steps" in md
