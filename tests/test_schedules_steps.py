"""Schedules are pure functions of t; step rules run unchanged on NumPy and torch."""

import math

import numpy as np
import pytest
import torch

import brelax
from brelax import schedules, steps


def test_geometric_lam_per_step_and_per_epoch():
    lam = schedules.geometric_lam(1.0, 1.04)
    assert lam(0) == 1.0 and math.isclose(lam(10), 1.04**10)
    per_epoch = schedules.geometric_lam(1.0, 1.04, every=50)
    assert per_epoch(49) == 1.0 and math.isclose(per_epoch(50), 1.04) and math.isclose(per_epoch(120), 1.04**2)


def test_mu_of_lam_and_phase2():
    mu = schedules.phase2(schedules.mu_of_lam(schedules.geometric_lam(1.0, 2.0)), 5)
    assert [mu(t) for t in range(3)] == [0.5, 2 / 3, 0.8]
    assert mu(5) == 1.0 and mu(100) == 1.0
    huge = schedules.mu_of_lam(schedules.geometric_lam(1.0, 10.0))
    assert huge(400) == 1.0  # lam overflows to inf: mu is exactly 1, not NaN


def test_linear_mu_ramp():
    mu = schedules.linear_mu(10)
    assert mu(0) == 0.0 and mu(5) == 0.5 and mu(10) == 1.0 and mu(99) == 1.0


def test_lr_schedules():
    ms = schedules.multistep(0.1, [80, 140], gamma=0.1, every=10)
    assert ms(799) == 0.1 and math.isclose(ms(800), 0.01) and math.isclose(ms(1400), 0.001)
    cos = schedules.cosine(1.0, 100, lr_min=0.1)
    assert cos(0) == 1.0 and math.isclose(cos(50), 0.55) and math.isclose(cos(100), 0.1) and cos(500) == cos(100)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: schedules.geometric_lam(1.0, 0.5), "rho"),
        (lambda: schedules.geometric_lam(-1.0, 1.5), "lam0"),
        (lambda: schedules.linear_mu(0), "ramp_steps"),
        (lambda: schedules.linear_mu(5, end=2.0), "end"),
        (lambda: schedules.phase2(lambda t: 0.0, -1), "phase2_start"),
        (lambda: schedules.constant(0.0), "lr"),
        (lambda: schedules.cosine(0.1, 0), "total"),
    ],
)
def test_schedule_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("method", list(steps.METHODS))
@pytest.mark.parametrize("qset", ["binary", "ternary", "levels:1,3"])
def test_step_rules_same_on_numpy_and_torch(method, qset):
    Q = brelax.get_set(qset)
    rng = np.random.default_rng(0)
    y0 = rng.standard_normal((4, 6))
    grads = [rng.standard_normal((4, 6)) for _ in range(3)]
    m = steps.METHODS[method]

    def run(to):
        proj = lambda v: Q.project(v, axis=0)  # noqa: E731 -- per channel, as in a conv layer
        s = m.init(to(y0), 0.5, proj)
        for k, g in enumerate(grads):
            s = m.update(s, to(g), 0.1, 0.5 + 0.1 * k, proj)
        return s

    a = run(lambda v: v)
    b = run(torch.from_numpy)
    for u, v in zip(a, b, strict=True):
        assert isinstance(v, torch.Tensor) and v.dtype == torch.float64
        np.testing.assert_allclose(v.numpy(), u, rtol=1e-12, atol=1e-14)


def test_get_method_lists_valid_names():
    with pytest.raises(ValueError, match="valid: gd, binaryconnect, pgd, proxquant, binaryrelax"):
        steps.get_method("sgd")
