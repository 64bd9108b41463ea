"""sbnb.optim: SAM and f-SAM steps against the updates written by hand, the Muon/AdamW split, state round trips."""

import io
import pytest
import torch
from torch import nn
from sbnb.optim import (
    SAM,
    FriendlySAM,
    MuonAdamW,
    OptimConfig,
    OPTIMIZERS,
    build_optimizer,
    check_param_groups,
    muon_param_groups,
    split_muon_params,
)
from sbnb.core import SbnbError

A = torch.tensor([4.0, 1.0, 0.25])
W0 = torch.tensor([1.0, -2.0, 3.0])


def quad(w, c=1.0):
    return c * 0.5 * (A * w * w).sum()


@pytest.mark.parametrize(
    "base,kw", [(torch.optim.SGD, dict(lr=0.05)), (torch.optim.AdamW, dict(lr=0.05, weight_decay=0.01, eps=1e-8))]
)
def test_sam_step_equals_hand_written_update(base, kw):
    w = nn.Parameter(W0.clone())
    opt = SAM([w], base, rho=0.1, **kw)
    quad(w).backward()
    opt.first_step(zero_grad=True)
    quad(w).backward()
    opt.second_step(zero_grad=True)
    g = A * W0
    g2 = A * (W0 + 0.1 * g / g.norm())  # gradient at the perturbed point
    lr = kw["lr"]
    want = (
        W0 - lr * g2
        if base is torch.optim.SGD
        else W0 * (1 - lr * kw["weight_decay"]) - lr * g2 / (g2.abs() + kw["eps"])
    )
    torch.testing.assert_close(w.detach(), want, rtol=0, atol=1e-6)


def test_sam_trainer_path_restores_before_base_step():
    w = nn.Parameter(W0.clone())
    opt = SAM([w], torch.optim.SGD, rho=0.1, lr=0.05)
    quad(w).backward()
    opt.first_step(zero_grad=True)
    assert not torch.equal(w.detach(), W0)
    quad(w).backward()
    opt.restore()
    torch.testing.assert_close(w.detach(), W0)
    opt.step()  # no closure: the base step with the gradient from the perturbed point
    g = A * W0
    torch.testing.assert_close(w.detach(), W0 - 0.05 * A * (W0 + 0.1 * g / g.norm()), rtol=0, atol=1e-6)


def test_fsam_two_steps_by_hand():
    rho, lr, sigma, lmbda = 0.1, 0.05, 1.0, 0.9
    w = nn.Parameter(W0.clone())
    opt = FriendlySAM([w], torch.optim.SGD, rho=rho, sigma=sigma, lmbda=lmbda, lr=lr)
    for c in (1.0, 0.5):
        quad(w, c).backward()
        opt.first_step(zero_grad=True)
        quad(w, c).backward()
        opt.second_step(zero_grad=True)
    ref, m = W0.clone(), None
    for c in (1.0, 0.5):
        g = c * A * ref
        if m is None:
            d, m = g, g.clone()
        else:
            d, m = g - sigma * m, lmbda * m + (1 - lmbda) * g
        ref = ref - lr * c * A * (ref + rho * d / d.norm())
    torch.testing.assert_close(w.detach(), ref, rtol=0, atol=1e-6)


def _tiny_hf(arch):
    import transformers

    cfgs = {
        "llama": transformers.LlamaConfig,
        "qwen3": transformers.Qwen3Config,
        "phi": transformers.PhiConfig,
        "gemma3_text": transformers.Gemma3TextConfig,
    }
    c = cfgs[arch](
        vocab_size=50,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1 if arch != "phi" else 2,
        head_dim=8,
        max_position_embeddings=64,
    )
    return transformers.AutoModelForCausalLM.from_config(c)


@pytest.mark.parametrize("arch", ["llama", "qwen3", "phi", "gemma3_text"])
def test_muon_split_covers_every_parameter_once(arch):
    m = _tiny_hf(arch)
    muon, adamw = split_muon_params(m)
    groups = muon_param_groups(m, lr=1e-3)
    check_param_groups(m, groups)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len({id(p) for p in m.parameters()})
    assert all(p.ndim == 2 for _, p in muon)
    names = [n for n, _ in muon]
    assert not any("embed" in n or "lm_head" in n or "norm" in n for n in names)
    assert any("embed_tokens" in n for n, _ in adamw)
    assert all(p.ndim == 1 for n, p in adamw if "embed" not in n and "lm_head" not in n)  # norms and biases only
    with pytest.raises(ValueError, match="missing"):
        check_param_groups(m, groups[:1])
    with pytest.raises(ValueError, match="several groups"):
        check_param_groups(m, groups + groups[:1])


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_round_trip_through_torch_save(name):
    torch.manual_seed(0)
    m = _tiny_hf("llama")
    x = torch.randint(0, 50, (2, 8))
    opt = build_optimizer(m, OptimConfig(name=name, lr=1e-3))
    for _ in range(2):
        m(input_ids=x, labels=x).loss.backward()
        if isinstance(opt, SAM):
            opt.first_step(zero_grad=True)
            m(input_ids=x, labels=x).loss.backward()
            opt.restore()
        opt.step()
        opt.zero_grad()
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    opt2 = build_optimizer(m, OptimConfig(name=name, lr=5.0))
    opt2.load_state_dict(torch.load(buf, weights_only=True))
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
    if isinstance(opt2, SAM):
        assert opt2.param_groups is opt2.base_optimizer.param_groups
    if name == "fsam":
        assert len(opt2.state) == len(opt.state) > 0


def test_unknown_names_list_valid_ones():
    with pytest.raises(SbnbError, match="valid: adamw, muon, sam, fsam, muon\\+sam"):
        OptimConfig(name="lion")
    with pytest.raises(SbnbError, match="adamw, muon, sgd"):
        OptimConfig(name="sam", base="rmsprop")


def test_muon_adamw_rejects_groups_without_flag():
    with pytest.raises(ValueError, match="use_muon"):
        MuonAdamW([nn.Parameter(torch.zeros(2, 2))])
