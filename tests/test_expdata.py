"""sbnb.expdata: no arm of any preset trains on a held-out prompt (repeats, random picks, augmented variants)."""

import json
import pytest
from sbnb.arms import ARMS
from sbnb.expconfig import ExperimentConfig
from sbnb.expdata import experiment_data, check_no_leak


@pytest.mark.parametrize("preset", list(ExperimentConfig.PRESETS))
def test_no_arm_of_any_preset_trains_on_a_held_out_prompt(preset, tmp_path, monkeypatch, sample_benchmarks):
    """Every arm's training rows (repeats, random picks, augmented variants: each seed's draw) avoid every held-out prompt.
    The paper's MathInstruct comes from a generated MathInstruct-shaped file, its benchmarks from the shipped sample."""
    from sbnb.select import select

    cfg = ExperimentConfig.from_preset(preset)
    if cfg.dataset.kind == "mathinstruct":
        from sbnb.data import mathinstruct_like

        (tmp_path / "mi.json").write_text(json.dumps(mathinstruct_like(300)))
        monkeypatch.setenv("SBNB_BENCHMARKS", str(sample_benchmarks))
        cfg = cfg.replace(data_path=str(tmp_path / "mi.json"))
    if cfg.dataset.kind == "llm":
        import os

        if not os.environ.get("SBNB_BENCHMARKS"):
            pytest.skip("real benchmark files (GSM8K train): set SBNB_BENCHMARKS")
        cfg = cfg.replace(gsm8k_train=200)  # the tokenizer-length filter needs no model here
    data = experiment_data(cfg, tmp_path)
    rows = data["train"]
    traj = [
        {"id": r["id"], "source": r["source"], "losses": [3.0 - k * (0.1 + (i % 7) * 0.04) for k in range(8)]}
        for i, r in enumerate(rows)  # 8 points: every preset's recipe finds the points it reads
    ]
    sel = select(traj, cfg.upsample)
    held = data["held_out"]
    assert held and not {r["instruction"] for r in rows} & held
    for arm in cfg.arms:
        for seed in range(min(cfg.seeds, 3)):
            r, _ = ARMS[arm].training_data(rows, sel, seed=seed, augment=data["augment"])
            check_no_leak(r, held, f"{preset} {arm} seed {seed}")
            if ARMS[arm].materializes:
                keys = {x["key"] for s in ("test", "ood") for x in data[s] if "key" in x}
                assert not {x.get("key") for x in r[len(rows) :]} & keys
