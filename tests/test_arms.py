"""sbnb.arms: the controls draw afresh per seed."""

from sbnb.arms import ARMS


def test_random_control_differs_per_seed():
    from sbnb.select import select, planted_trajectories, UpsampleConfig

    traj, slow = planted_trajectories({"a": 60, "b": 60}, seed=0)
    rows = [{"id": r["id"], "source": r["source"], "instruction": r["id"], "output": "x"} for r in traj]
    sel = select(traj, UpsampleConfig(recipe="logfrac"))  # the paper's recipe would keep these sources (< 78) whole
    c0, c1 = (ARMS["adamw+random"].training_data(rows, sel, seed=s)[1] for s in (0, 1))
    assert c0 != c1 and sum(c0) == sum(c1) == len(rows) + len(sel)
