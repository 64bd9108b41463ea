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
    assert torch.allclose(
        f[:, -1, -1], th.predict(th.effective_gamma(v, A)[None], m[None], b["xq"][None])[0], atol=1e-10
    )


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
    assert torch.allclose(
        th.gamma_star(LAM, N),
        torch.linalg.inv((1 + 1 / N) * torch.diag(lam) + lam.sum() / N * torch.eye(4, dtype=torch.float64)),
    )


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
    pr[0, 2:, 0] = 1
    pr[0, 4:, 1] = 1
    pr[0, 6:, 2] = 1
    pr[0, 8:, 3] = 1
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
    assert (
        main(
            [
                "simulate",
                "--optimizer",
                "sam",
                "--rho",
                "0.003",
                "--steps",
                "200",
                "--seeds",
                "3",
                "--no-progress",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    r = json.loads(out.read_text())
    assert r["lambdas"] == LAM and r["context_len"] == 16 and r["config"]["optimizer"] == "sam"
    assert {"ratio_steps", "spread_steps"} <= set(r["sb"]) and r["run"]["config"]["rho"] == 0.003
    s = r["seeds"][0]
    assert len(s["half_learn_step"]) == 4 and np.array(s["effective_gamma"]).shape == (4, 4)
    assert len(s["progress"]) == len(s["loss"]) == len(r["log_steps"]) and len(s["progress"][0]) == 4
    assert isinstance(s["test_error"], float)


@pytest.mark.parametrize(
    "bad",
    [["--spectrum", "4,0,1"], ["--rho", "-0.5"], ["--steps", "0"], ["--optimizer", "adam"], ["--upsample", "some"]],
)
def test_cli_rejects_bad_input(bad, tmp_path, capsys):
    assert main(["simulate", *bad, "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sbnb: error:")
    assert not (tmp_path / "r.json").exists()


# --- one standard for every lever; upsampling variants; first contact ---------------------------------------------


def test_hard_progress_at_easy_progress():
    t = torch.arange(1001, dtype=torch.float64)
    lin = torch.stack([t / 100, t / 100, t / 400, t / 400], -1).clamp(max=1)[None]
    assert th.hard_at_easy(lin, LAM, 0.5).item() == pytest.approx(0.125)
    assert th.hard_at_easy(lin, LAM, 0.9).item() == pytest.approx(0.225)
    sb = th.sb_measures(lin, torch.linspace(10, 2.2507, 1001, dtype=torch.float64)[None], LAM, N)
    assert sb["hard_at_easy_50"][0] == pytest.approx(0.125) and sb["hard_at_easy_90"][0] == pytest.approx(0.225)


def test_paired_difference_and_compare_runs():
    assert th.paired_difference([1.0, 2.0, 3.0], [1.5, 2.4, 3.6])["verdict"] == "lower"
    assert th.paired_difference([1.0, 2.0, 3.0], [0.0, 3.0, 3.0])["verdict"] == "not distinguishable from noise"
    gd = th.simulate(th.SimConfig(seeds=3, steps=400, budgets=(100, 200)))
    sam = th.simulate(th.SimConfig(seeds=3, steps=400, budgets=(100, 200), optimizer="sam", rho=0.003))
    c = th.compare_runs(sam, gd)
    assert {
        "ratio_steps",
        "ratio_losstime",
        "hard_at_easy_50",
        "hard_at_easy_90",
        "test_error@100",
        "test_error@200",
        "test_error@400",
    } <= set(c)
    d = [a["test_error_at"]["100"] - b["test_error_at"]["100"] for a, b in zip(sam["seeds"], gd["seeds"])]
    assert c["test_error@100"]["diff"] == pytest.approx(np.mean(d)) and c["test_error@100"]["n"] == 3
    assert all(
        v["verdict"] in ("less SB", "more SB", "better", "worse", "equal", "not distinguishable from noise")
        for v in c.values()
    )
    cc = th.curve_comparison(sam, gd)
    assert len(cc["diff"]) == len(gd["log_steps"])


def test_importance_weighting_is_gd_on_the_pool_with_full_batches():
    kw = dict(seeds=2, steps=200, pool=128, log_every=20)
    gd = th.simulate(th.SimConfig(**kw))
    imp = th.simulate(th.SimConfig(upsample="oracle", factor=3, upsample_weighting="importance", **kw))
    assert np.allclose([s["loss"] for s in imp["seeds"]], [s["loss"] for s in gd["seeds"]], atol=1e-9)


def test_upsample_until_switches_to_the_original_distribution():
    kw = dict(seeds=2, steps=300, pool=128, log_every=20, upsample="oracle")
    gd = th.simulate(th.SimConfig(seeds=2, steps=300, pool=128, log_every=20))
    plain, sched = th.simulate(th.SimConfig(**kw)), th.simulate(th.SimConfig(upsample_until=100, **kw))
    L = lambda r: np.array([s["loss"] for s in r["seeds"]])
    assert np.allclose(L(sched)[:, :6], L(plain)[:, :6]) and not np.allclose(
        L(sched)[:, -1], L(plain)[:, -1]
    )  # same for 100 steps
    fp = lambda r: [s["fixed_point_test_error"] for s in r["seeds"]]
    assert np.allclose(fp(sched), fp(gd)) and not np.allclose(fp(plain), fp(gd))
    assert sched["upsampled_steps"] == 100 and plain["upsampled_steps"] == 300
    p = th.Pool(torch.zeros(1, 4, 2), torch.zeros(1, 4, 2), torch.zeros(1, 4), torch.tensor([[1.0, 2, 1, 2]]), until=5)
    assert [p.phase(t) for t in (0, 4, 5)] == ["up", "up", "orig"]


def test_pool_moments_match_per_prompt_loss():
    g = torch.Generator().manual_seed(3)
    pool, _ = th.make_pool(2, 500, LAM, N, generator=g)
    w = th.Pool(pool.m, pool.xq, pool.yq, torch.where(torch.rand(2, 500, generator=g) < 0.5, 3.0, 1.0))
    G = 0.3 * torch.randn(2, 4, 4, generator=g, dtype=torch.float64)
    loss, grad = w.loss_grad(G)
    l2, g2 = th._sq_loss_grad(G, w.m, w.xq, w.yq, w.weights)
    assert torch.allclose(loss, l2) and torch.allclose(grad, g2)
    assert w.loss_grad(th.pool_optimum(w))[1].abs().max() < 1e-9


def test_query_only_reweighting_keeps_gamma_star():
    lq = th.upsampled_query_cov(LAM, 0.8, [1, 1, 3, 3])
    assert th.population_grad(th.gamma_star(LAM, N), LAM, N, query=lq).abs().max() < 1e-12


def test_results_keep_old_keys_and_add_the_new_measures(tmp_path):
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "simulate",
                "--upsample",
                "oracle",
                "--pool",
                "64",
                "--steps",
                "150",
                "--seeds",
                "2",
                "--upsample-until",
                "50",
                "--no-progress",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    r = json.loads(out.read_text())
    assert {
        "config",
        "lambdas",
        "context_len",
        "gamma_star",
        "loss_star",
        "log_steps",
        "sb",
        "test_error",
        "train_seconds",
        "seeds",
        "run",
        "selection_method",
        "selected_fraction",
        "selected_hard_fraction",
    } <= set(r)
    assert {
        "ratio_steps",
        "ratio_losstime",
        "spread_steps",
        "spread_losstime",
        "hard_at_easy_50",
        "hard_at_easy_90",
        "stalled_seeds",
    } <= set(r["sb"])
    assert set(r["test_error_at"]) == {"100", "150"} and r["fixed_point"]["test_error"]["n"] == 2
    s = r["seeds"][0]
    assert {
        "half_learn_step",
        "effective_gamma",
        "loss",
        "progress",
        "test_error",
        "gamma_rel_error",
        "stalled",
        "hard_at_easy_50",
        "hard_at_easy_90",
        "test_error_at",
        "fixed_point_test_error",
    } <= set(s)
    assert (
        r["config"]["upsample_until"] == 50
        and r["config"]["upsample_weighting"] == "none"
        and r["upsampled_steps"] == 50
    )


def test_cli_flag_defaults_come_from_simconfig(capsys):
    from sbnb.cli import build_parser

    sim = build_parser()._subparsers._group_actions[0].choices["simulate"]
    d = th.SimConfig()
    for flag, (key, _) in th._FLAGS.items():
        default = sim.get_default(key)
        want = getattr(d, key)
        assert default == (",".join(f"{x:g}" for x in want) if isinstance(want, tuple) else want), flag
    assert {"--upsample-until", "--upsample-weighting", "--upsample-from"} <= set(th._FLAGS)


def test_summary_line_has_every_measure(tmp_path, capsys):
    assert main(["simulate", "--steps", "200", "--seeds", "2", "--no-progress", "--out", str(tmp_path / "r.json")]) == 0
    line = capsys.readouterr().out.strip()
    assert len(line.splitlines()) == 1
    for part in (
        "SB ratio (steps)",
        "loss-time ratio",
        "hard progress at easy 0.5",
        "at easy 0.9",
        "test error @100",
        "@200",
        "optimum",
    ):
        assert part in line, part


def test_diverged_run_is_an_error_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["simulate", "--lr", "50", "--no-progress", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "diverged at step" in err[0] and "smaller learning rate" in err[0]
    assert not out.exists()
    with pytest.raises(SbnbError, match="diverged at step"):
        th.simulate(th.SimConfig(lr=50, steps=100, seeds=2))


def test_simulate_help_ends_with_runnable_examples(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    text = capsys.readouterr().out
    tail = text[text.index("examples") :]
    cmds = [l.split("#")[0].strip() for l in tail.splitlines() if l.strip().startswith("sbnb simulate")]
    assert 1 <= len(cmds) <= 3
    from sbnb.cli import build_parser

    for c in cmds:  # every example parses
        build_parser().parse_args(c.split()[1:])
    assert text.count("(default: 2000)") == 1 and "default: never switch" in " ".join(text.split())


@pytest.mark.parametrize("name", ["10_theory", "11_theory_sb"])
def test_notebook_summary_is_one_line(name):
    from pathlib import Path

    nb = json.loads((Path(__file__).resolve().parents[1] / "nbs" / f"{name}.ipynb").read_text())
    md = "".join(next(c for c in nb["cells"] if c["cell_type"] == "markdown")["source"])
    quote = [l for l in md.splitlines() if l.startswith(">")]
    assert len(quote) == 1 and quote[0].rstrip().endswith("."), quote


def test_display_math_is_on_its_own_lines():
    from pathlib import Path

    nb = json.loads((Path(__file__).resolve().parents[1] / "nbs" / "10_theory.ipynb").read_text())
    for c in nb["cells"]:
        if c["cell_type"] != "markdown":
            continue
        lines = "".join(c["source"]).splitlines()
        for i, l in enumerate(lines):
            if "$$" in l:
                assert l.strip() == "$$", f"display math not on its own line: {l[:80]}"
        opens = [i for i, l in enumerate(lines) if l.strip() == "$$"][::2]
        for i in opens:  # a blank line before each block, and after its closing $$
            close = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "$$")
            assert (i == 0 or lines[i - 1].strip() == "") and (
                close == len(lines) - 1 or lines[close + 1].strip() == ""
            ), lines[i - 1 : close + 2]
