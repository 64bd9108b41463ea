"""sbnb.analysis: the paired statistics beyond the notebook's cases: pairing by seed, the verdict rule's symmetry, the
minimum detectable effect's monotonicity, and a registered arm judged against its baseline."""

import math
import numpy as np
import pytest
from sbnb.analysis import compare, tost, mde_paired, verdict, comparison_list, COMPARISONS


def _run(arm, seed, test):
    return {"arm": arm, "budget": "steps", "seed": seed, "final": {"test": test}}


def test_compare_pairs_by_seed_and_ignores_unpaired_runs():
    a = [_run("adamw+up", s, 0.5 + 0.01 * s) for s in range(5)]
    b = [_run("adamw", s, 0.5) for s in range(4)]  # seed 4 has no baseline
    c = compare(a + b, "adamw+up", "adamw", "steps")
    assert c["seeds"] == 4 and c["mean_pp"] == pytest.approx(1.5) and c["positive_seeds"] == 3


@pytest.mark.parametrize("seed", range(5))
def test_tost_and_verdict_are_symmetric_in_the_sign(seed):
    d = np.random.default_rng(seed).normal(0.2, 0.5, size=8)
    assert tost(d, 1.0)[0] == tost(-d, 1.0)[0] and tost(d, 1.0)[1] == pytest.approx(tost(-d, 1.0)[1])
    m, h = d.mean(), 2.365 * d.std(ddof=1) / math.sqrt(8)
    v, w = verdict([m - h, m + h], tost(d, 1.0)[0]), verdict([-m - h, -m + h], tost(-d, 1.0)[0])
    mirror = {"a > b": "a < b", "a < b": "a > b"}
    assert w == mirror.get(v, v)


def test_mde_falls_with_replicates_and_rises_with_spread():
    assert mde_paired(1.0, 4) > mde_paired(1.0, 8) > mde_paired(1.0, 32)
    assert mde_paired(2.0, 8) == pytest.approx(2 * mde_paired(1.0, 8))
    assert math.isnan(mde_paired(1.0, 1)) and math.isnan(mde_paired(0.0, 5))


def test_an_arm_outside_the_list_is_compared_with_its_baseline():
    from sbnb.arms import ARMS, Upsample, register_arm

    register_arm(Upsample("muon+up2", "muon", "muon", "test arm"))
    try:
        runs = [_run(a, s, 0.5) for a in ("muon", "muon+up2", "adamw") for s in range(2)]
        assert comparison_list(runs) == COMPARISONS + [("muon+up2", "muon", "steps")]
    finally:
        del ARMS["muon+up2"]
