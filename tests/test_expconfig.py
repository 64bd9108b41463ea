"""sbnb.expconfig: older (flat) run records read through the aliases, presets round-trip, every alias names a field."""

import json
from pathlib import Path
import pytest
from sbnb.expconfig import ExperimentConfig, proxy_spec

ROOT = Path(__file__).resolve().parents[1]
FLAT_RECORDS = [
    "default",
    "full",
    "llm-cpu-round1",
    "round2",
    "default-3a259e2",
]  # made before the settings were nested


@pytest.mark.parametrize("name", FLAT_RECORDS)
def test_an_older_flat_record_reads_back_every_value(name):
    old = json.loads((ROOT / "results" / name / "run.json").read_text())["config"]
    flat = json.loads(json.dumps(ExperimentConfig.from_dict(old).flat()))

    def kept(new, rec, where):  # a sub-config: the record's fields are kept (newer fields take their defaults)
        for k, v in rec.items():
            if isinstance(v, dict):
                kept(new[k], v, f"{where}{k}.")
            else:
                assert new[k] == v, where + k

    kept(flat, old, "")


@pytest.mark.parametrize("preset", list(ExperimentConfig.PRESETS))
def test_presets_round_trip_through_their_record(preset):
    cfg = ExperimentConfig.from_preset(preset)
    assert ExperimentConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert ExperimentConfig.from_dict(cfg.to_dict()).flat() == cfg.flat()


def test_every_alias_names_a_nested_field_and_sets_it():
    cfg = ExperimentConfig()
    for alias, path in ExperimentConfig.ALIASES.items():
        assert cfg.get(alias) == cfg.get(path), alias
    assert ExperimentConfig().override(["epochs=2", "steps=0"]).train.epochs == 2.0
    assert ExperimentConfig().override(["proxy_record_every=50"]).proxy.record_every == 50


def test_a_proxy_reads_adamw_at_the_targets_rate_whatever_the_arm():
    spec = proxy_spec(ExperimentConfig().override(["sam_rho=0.3", "muon_lr=0.02", "lr=3e-4"]))
    assert (spec.train.optim.name, spec.train.optim.lr, spec.train.optim.rho, spec.train.optim.muon_lr) == (
        "adamw",
        3e-4,
        0.05,
        None,
    )
