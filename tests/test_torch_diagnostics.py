"""The NumPy driver and QuantOptimizer (plain SGD) record the same diagnostics on the same run."""

import math

import numpy as np
import pytest
import torch
from test_diagnostics import TwoLayerLsq
from torch import nn

import brelax
from brelax import diagnostics as dg
from brelax.torch import QuantOptimizer

pytestmark = pytest.mark.usefixtures("torch_one_thread")

#: What a torch run cannot know: the full gradient (and f at the pattern-stable point).
TORCH_NAN = {"g_dot_D", "noise_norm2", "stable_g_dot_D", "grad_norm2", "gap_g_dot"}  # need the full gradient


def _torch_run(prob, y0, method, steps, lr, epoch_every=None, sgd=None, **kw):
    A, b = torch.tensor(prob.A), torch.tensor(prob.b)
    ws = [nn.Parameter(torch.tensor(blk.view(y0).copy())) for blk in prob.layout]
    groups = [
        {"params": [("W1", ws[0])], "qset": "ternary", "axis": 0},
        {"params": [("W2", ws[1])], "qset": "ternary", "axis": None},
        {"params": [("b", ws[2])], "qset": None},
    ]
    opt = QuantOptimizer(torch.optim.SGD(groups, lr=lr, **(sgd or {})), method=method, diagnostics=True, **kw)
    rows = [opt.first_diagnostics]
    for t in range(steps):
        opt.zero_grad()
        x = torch.cat([w.reshape(-1) for w in ws])
        r = A @ x - b
        (0.5 * (r @ r) / len(b)).backward()
        opt.step()
        if epoch_every and (t + 1) % epoch_every == 0:
            opt.epoch_end()
        rows.append(opt.last_diagnostics)
    return opt, rows


@pytest.mark.parametrize("method", ["binaryrelax", "binaryconnect", "proxquant", "pgd", "gd"])
@pytest.mark.parametrize("epoch_every", [None, 4])
def test_numpy_driver_and_quant_optimizer_record_the_same_diagnostics(method, epoch_every):
    prob = TwoLayerLsq(seed=3)
    y0 = np.random.default_rng(4).standard_normal(prob.dim)
    kw = dict(lam0=0.5, rho=1.3, phase2_start=10)
    steps = 14
    traj = brelax.optimize(prob, method, "ternary", steps=steps, lr=0.2, y0=y0, lam_every=epoch_every or 1, **kw)
    _, rows = _torch_run(prob, y0, method, steps, 0.2, epoch_every, schedule="epoch" if epoch_every else "step", **kw)
    assert [r["step"] for r in rows] == [None, *range(steps)]
    close = dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose([r["mu"] for r in rows], traj.mu, rtol=0, atol=0)
    for k in dg.POINT_OUT:
        got = np.array([r["total"][k] for r in rows])
        if k in TORCH_NAN:
            assert np.all(np.isnan(got))
            continue
        np.testing.assert_allclose(got, traj.arrays[k], **close, err_msg=k)
        for name in ("W1", "W2"):
            np.testing.assert_allclose(
                [r["layers"][name][k] for r in rows], traj.layers[name][k], **close, err_msg=f"{name}.{k}"
            )
    checked = 0
    for k in dg.STEP_OUT:
        got = np.array([r["total"][k] for r in rows[1:]])
        want = traj.arrays[k]
        if k in TORCH_NAN:
            assert np.all(np.isnan(got))
            continue
        assert np.array_equal(np.isnan(got), np.isnan(want)), k
        np.testing.assert_allclose(got, want, **close, err_msg=k)
        for name in ("W1", "W2"):
            np.testing.assert_allclose(
                [r["layers"][name][k] for r in rows[1:]], traj.layers[name][k], **close, err_msg=f"{name}.{k}"
            )
        checked += np.isfinite(want).sum()
    assert checked > 100
    if method in ("binaryrelax", "binaryconnect"):
        assert np.all(np.isfinite(traj.pattern_gap)) and np.any(traj.pattern_gap > 0)
    # with the full batch, the step's gradient is the full one: the torch sums equal the NumPy full-gradient ones
    np.testing.assert_allclose([r["total"]["sg_dot_D"] for r in rows[1:]], traj.g_dot_D, **close)
    assert math.isnan(rows[0]["total"]["grad_norm2"])


@pytest.mark.parametrize("method", ["binaryrelax", "binaryconnect", "gd"])
def test_numpy_heavy_ball_and_torch_sgd_momentum_record_the_same_run(method):
    """optimize(momentum=, weight_decay=) is torch's SGD recursion: same iterates, diagnostics, anchor-step sums."""
    prob = TwoLayerLsq(seed=3)
    y0 = np.random.default_rng(4).standard_normal(prob.dim)
    kw = dict(lam0=0.5, rho=1.3, phase2_start=10)
    sgd = dict(momentum=0.9, weight_decay=0.01)
    steps = 14
    traj = brelax.optimize(prob, method, "ternary", steps=steps, lr=0.05, y0=y0, **sgd, **kw)
    _, rows = _torch_run(prob, y0, method, steps, 0.05, None, sgd=sgd, schedule="step", **kw)
    assert traj.meta["direction"] == "anchor step" and traj.meta["momentum"] == 0.9
    close = dict(rtol=1e-11, atol=1e-12)
    for k in dg.STEP_OUT + dg.MOMENTUM_SUMS:
        if k in TORCH_NAN:
            continue
        got, want = np.array([r["total"][k] for r in rows[1:]]), traj.arrays[k]
        assert np.array_equal(np.isnan(got), np.isnan(want)), k
        np.testing.assert_allclose(got, want, **close, err_msg=k)
    assert np.all(np.isfinite(traj.ystep_old2)) and np.any(traj.ystep_new2 != traj.ystep_old2)


def test_momentum_and_weight_decay_are_checked():
    prob = TwoLayerLsq(seed=3)
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match="momentum"):
            brelax.optimize(prob, "binaryrelax", "ternary", steps=2, momentum=bad)
    with pytest.raises(ValueError, match="weight_decay"):
        brelax.optimize(prob, "binaryrelax", "ternary", steps=2, weight_decay=-1.0)


@pytest.mark.parametrize("base", ["momentum", "weight_decay", "adam"])
def test_any_other_base_optimizer_records_the_anchor_step_as_g(base):
    """Momentum, weight decay or Adam move y along (y_t - y_{t+1})/lr, not the gradient: that is g_t then.

    With that g_t the step identity g <g, D> = -||D||^2 + mu' <r - r', D> - dmu <r, D> holds
    exactly, as Theorem II.2 needs; with the raw gradient it would not (the test below it).
    """
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(6, 5, dtype=torch.float64))
    make = {
        "momentum": lambda: torch.optim.SGD([w], lr=0.1, momentum=0.9),
        "weight_decay": lambda: torch.optim.SGD([w], lr=0.1, weight_decay=0.05),
        "adam": lambda: torch.optim.Adam([w], lr=0.05),
    }[base]
    opt = QuantOptimizer(
        make(), method="binaryrelax", qset="binary", lam0=0.5, rho=1.5, schedule="step", diagnostics=True
    )
    assert opt.direction == "anchor step"
    target = torch.randn(6, 5, dtype=torch.float64)
    for _ in range(6):  # build up momentum / Adam state first
        opt.zero_grad()
        ((w - target) ** 2).sum().backward()
        opt.step()
    y_prev = opt.state[w]["latent"].detach().clone()
    opt.zero_grad()
    ((w - target) ** 2).sum().backward()
    g_raw = w.grad.detach().clone()
    mu_t = opt.mu
    opt.step()
    d, mu_n = opt.last_diagnostics["total"], opt.last_diagnostics["mu"]
    lr = 0.05 if base == "adam" else 0.1
    u = (y_prev - opt.state[w]["latent"]) / lr
    assert d["sgrad_norm2"] == pytest.approx(float((u * u).sum()), rel=1e-12)
    ident = lr * d["sg_dot_D"] + d["step_norm2"] - mu_n * d["inner"] + (mu_n - mu_t) * d["cross"]
    assert abs(ident) <= 1e-10 * (abs(lr * d["sg_dot_D"]) + d["step_norm2"])
    assert not torch.allclose(u, g_raw)  # the raw gradient is a different direction here


def test_plain_sgd_records_the_gradient_itself():
    w = nn.Parameter(torch.randn(4, 3, dtype=torch.float64))
    opt = QuantOptimizer(torch.optim.SGD([w], lr=0.1), method="binaryrelax", diagnostics=True)
    assert opt.direction == "gradient"
    (w**2).sum().backward()
    g = w.grad.detach().clone()
    opt.step()
    assert opt.last_diagnostics["total"]["sgrad_norm2"] == float((g * g).sum())
