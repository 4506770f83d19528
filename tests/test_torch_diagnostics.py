"""The NumPy driver and QuantOptimizer (plain SGD) record the same diagnostics on the same run."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import brelax
from brelax import diagnostics as dg
from brelax.torch import QuantOptimizer

from test_diagnostics import TwoLayerLsq

pytestmark = pytest.mark.usefixtures("torch_one_thread")

#: What a torch run cannot know: the full gradient (and f at the pattern-stable point).
TORCH_NAN = {"g_dot_D", "noise_norm2", "stable_g_dot_D", "grad_norm2"}


def _torch_run(prob, y0, method, steps, lr, epoch_every=None, **kw):
    A, b = torch.tensor(prob.A), torch.tensor(prob.b)
    ws = [nn.Parameter(torch.tensor(blk.view(y0).copy())) for blk in prob.layout]
    groups = [{"params": [("W1", ws[0])], "qset": "ternary", "axis": 0},
              {"params": [("W2", ws[1])], "qset": "ternary", "axis": None},
              {"params": [("b", ws[2])], "qset": None}]
    opt = QuantOptimizer(torch.optim.SGD(groups, lr=lr), method=method, diagnostics=True, **kw)
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
    _, rows = _torch_run(prob, y0, method, steps, 0.2, epoch_every,
                           schedule="epoch" if epoch_every else "step", **kw)
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
            np.testing.assert_allclose([r["layers"][name][k] for r in rows], traj.layers[name][k], **close,
                                       err_msg=f"{name}.{k}")
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
            np.testing.assert_allclose([r["layers"][name][k] for r in rows[1:]], traj.layers[name][k], **close,
                                       err_msg=f"{name}.{k}")
        checked += np.isfinite(want).sum()
    assert checked > 100
    if method in ("binaryrelax", "binaryconnect"):
        assert np.all(np.isfinite(traj.pattern_gap)) and np.any(traj.pattern_gap > 0)
    # with the full batch, the step's gradient is the full one: the torch sums equal the NumPy full-gradient ones
    np.testing.assert_allclose([r["total"]["sg_dot_D"] for r in rows[1:]], traj.g_dot_D, **close)
    assert math.isnan(rows[0]["total"]["grad_norm2"])
