"""Tests of sbnb.theory: the closed forms, the batched GD/SAM loop, the SB measures, upsampling and `sbnb simulate`."""
import json, math
import numpy as np
import pytest
import torch
from sbnb.core import SbnbError
from sbnb.cli import main
from sbnb import theory as th

LAM, N = [4.0, 4.0, 1.0, 1.0], 16

def test_forward_matches_gamma_form():
    g = torch.Generator().manual_seed(0)
    v, A = torch.randn(3, generator=g, dtype=torch.float64), torch.randn(3, 4, 4, generator=g, dtype=torch.float64)
    b = th.sample_prompts((64,), LAM, N, generator=g)
    f = th.mhlsa_forward(th.prompt_matrix(b["x"], b["y"], b["xq"]), *th.head_matrices(v, A))
    m = (b["y"].unsqueeze(-1) * b["x"]).mean(-2)
    assert torch.allclose(f[:, -1, -1], th.predict(th.effective_gamma(v, A)[None], m[None], b["xq"][None])[0], atol=1e-10)

@pytest.mark.parametrize("noise", [0.0, 0.7])
def test_monte_carlo_equals_closed_form(noise):
    g = torch.Generator().manual_seed(1)
    G = 0.3 * torch.randn(4, 4, generator=g, dtype=torch.float64)
    mc, se = th.mc_loss(G, LAM, N, noise, n=200_000, generator=g)
    assert abs(mc - th.population_loss(G, LAM, N, noise).item()) < 4 * se

def test_gamma_star_is_the_minimum():
    for noise in (0.0, 0.5):
        gs = th.gamma_star(LAM, N, noise)
        assert th.population_grad(gs, LAM, N, noise).abs().max() < 1e-12
        # Zhang, Frei & Bartlett (2023): ((1 + 1/N) Λ + tr(Λ)/N I)^-1 without noise
    lam = torch.tensor(LAM, dtype=torch.float64)
    assert torch.allclose(th.gamma_star(LAM, N), torch.linalg.inv((1 + 1 / N) * torch.diag(lam) + lam.sum() / N * torch.eye(4, dtype=torch.float64)))

def test_head_grads_match_autograd():
    g = torch.Generator().manual_seed(2)
    v = torch.randn(2, 3, dtype=torch.float64, generator=g, requires_grad=True)
    A = torch.randn(2, 3, 4, 4, dtype=torch.float64, generator=g, requires_grad=True)
    th.population_loss(th.effective_gamma(v, A), LAM, N).sum().backward()
    gv, gA = th.head_grads(v.detach(), A.detach(), th.population_grad(th.effective_gamma(v, A).detach(), LAM, N))
    assert torch.allclose(gv, v.grad) and torch.allclose(gA, A.grad)

@pytest.mark.parametrize("opt", ["gd", "sam"])
def test_batched_seeds_equal_single_runs(opt):
    v, A = th.init_heads(4, 2, 4, 1e-2, generator=torch.Generator().manual_seed(0))
    full = th.train_heads(v, A, th.Population(LAM, N), 150, 0.01, opt, rho=0.003)
    one = th.train_heads(v[2:3], A[2:3], th.Population(LAM, N), 150, 0.01, opt, rho=0.003)
    assert torch.allclose(full["progress"][2], one["progress"][0], atol=1e-12)

def test_default_gd_reaches_gamma_star_within_2_percent():
    res = th.simulate(th.SimConfig(seeds=4), curves=False)
    assert all(s["gamma_rel_error"] < 0.02 for s in res["seeds"]), [s["gamma_rel_error"] for s in res["seeds"]]
    hl = np.array([s["half_learn_step"] for s in res["seeds"]], dtype=float)
    assert (hl[:, 2:] > hl[:, :2]).all()  # GD learns the easy (λ=4) directions first

def test_half_learn_and_sb_measures():
    pr = torch.zeros(1, 11, 4, dtype=torch.float64)
    pr[0, 2:, 0] = 1; pr[0, 4:, 1] = 1; pr[0, 6:, 2] = 1; pr[0, 8:, 3] = 1
    assert th.half_learn_steps(pr)[0].tolist() == [2.0, 4.0, 6.0, 8.0]
    sb = th.sb_measures(pr, torch.linspace(10, 2.2507, 11, dtype=torch.float64)[None], LAM, N)
    assert math.isclose(sb["ratio_steps"][0], 7 / 3)
    pr[0, :, 3] = 0
    assert th.sb_measures(pr, torch.ones(1, 11, dtype=torch.float64), LAM, N)["ratio_steps"] == [None]

def test_sam_stalls_for_large_rho():
    res = th.simulate(th.SimConfig(optimizer="sam", rho=0.1, steps=300, seeds=2), curves=False)
    assert res["sb"]["stalled_seeds"] == 2
    assert res["test_error"]["mean"] > 0.99 * sum(LAM)  # still at the origin's loss tr(Λ)

def test_select_late_learned_uses_the_shared_core():
    rng = np.random.default_rng(0)
    slow = np.arange(60) % 3 == 0
    k = np.arange(5)
    traj = np.where(slow[:, None], np.exp(-0.05 * k), np.exp(-0.9 * k)) * rng.uniform(0.5, 2, (60, 1))
    w, how = th.select_late_learned(traj, factor=2)
    assert ((w > 1) == slow).all() and how == "sbnb.select"

def test_pool_upsampling_runs_and_oracle_selects_hard():
    res = th.simulate(th.SimConfig(upsample="oracle", pool=64, steps=50, seeds=2), curves=False)
    assert res["selected_hard_fraction"] == [1.0, 1.0]
    res = th.simulate(th.SimConfig(upsample="profiled", pool=64, steps=50, profile_steps=40, seeds=2), curves=False)
    assert res["selection_method"] == "sbnb.select" and 0 < res["selected_fraction"][0] < 1

def test_cli_writes_the_named_keys(tmp_path):
    out = tmp_path / "results.json"
    assert main(["simulate", "--optimizer", "sam", "--rho", "0.003", "--steps", "200", "--seeds", "3", "--no-progress", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["lambdas"] == LAM and r["context_len"] == 16 and r["config"]["optimizer"] == "sam"
    assert {"ratio_steps", "spread_steps"} <= set(r["sb"]) and r["run"]["config"]["rho"] == 0.003
    s = r["seeds"][0]
    assert len(s["half_learn_step"]) == 4 and np.array(s["effective_gamma"]).shape == (4, 4)
    assert len(s["progress"]) == len(s["loss"]) == len(r["log_steps"]) and len(s["progress"][0]) == 4
    assert isinstance(s["test_error"], float)

@pytest.mark.parametrize("bad", [["--spectrum", "4,0,1"], ["--rho", "-0.5"], ["--steps", "0"], ["--optimizer", "adam"],
                                 ["--upsample", "some"]])
def test_cli_rejects_bad_input(bad, tmp_path, capsys):
    assert main(["simulate", *bad, "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sbnb: error:")
    assert not (tmp_path / "r.json").exists()
