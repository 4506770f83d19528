"""The reference driver: step rules, exact semantics, the identities the diagnostics rest on."""

import math

import numpy as np
import pytest

import brelax
from brelax import steps
from brelax.problems import LeastSquares, least_squares


def tiny_problem():
    A = np.array([[1.0, 0.5], [0.0, 2.0], [1.0, -1.0]])
    b = np.array([1.0, -2.0, 0.5])
    return LeastSquares(A, b)


def P_binary(v):
    return np.abs(v).mean() * np.where(v < 0, -1.0, 1.0)


@pytest.mark.parametrize("method", list(steps.METHODS))
def test_two_steps_by_hand(method):
    prob = tiny_problem()
    y0 = np.array([0.3, -0.8])
    lr, lam0, rho = 0.1, 1.0, 2.0
    mu = [lam0 * rho**t / (1 + lam0 * rho**t) for t in range(4)]
    if method in ("binaryconnect", "pgd"):
        mu = [1.0] * 4
    if method == "gd":
        mu = [0.0] * 4
    g = prob.grad
    xs = []
    if method in ("binaryrelax", "binaryconnect"):
        ys = [y0]
        for t in range(3):
            xs.append(ys[t] - mu[t] * (ys[t] - P_binary(ys[t])))
            ys.append(ys[t] - lr * g(xs[t]))
        final = P_binary(ys[2])
    elif method == "pgd":
        x = P_binary(y0)
        for _ in range(3):
            xs.append(x)
            x = P_binary(x - lr * g(x))
        final = xs[-1]
    elif method == "proxquant":
        x = y0 - mu[0] * (y0 - P_binary(y0))
        for t in range(3):
            xs.append(x)
            z = x - lr * g(x)
            x = z - mu[t + 1] * (z - P_binary(z))
        final = P_binary(xs[-1])
    else:
        x = y0
        for _ in range(3):
            xs.append(x)
            x = x - lr * g(x)
        final = P_binary(xs[-1])
    traj = brelax.optimize(prob, method=method, qset="binary", steps=2, lr=lr, lam0=lam0, rho=rho, y0=y0)
    np.testing.assert_allclose(traj.f, [prob.f(x) for x in xs[:3]], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(traj.x, final, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(
        traj.step_norm2, [np.sum((xs[1] - xs[0]) ** 2), np.sum((xs[2] - xs[1]) ** 2)], rtol=1e-12
    )


def test_phase2_at_zero_is_binaryconnect():
    prob = least_squares(40, 20, "ternary", noise=0.1, seed=3)
    a = brelax.optimize(prob, "binaryrelax", "ternary", steps=60, lr=0.2, phase2_start=0, seed=1)
    b = brelax.optimize(prob, "binaryconnect", "ternary", steps=60, lr=0.2, seed=1)
    for k in ("f", "f_quant", "step_norm2", "flips", "mu"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    np.testing.assert_array_equal(a.x, b.x)


def test_lam_zero_is_gd_on_y():
    prob = least_squares(40, 20, "binary", noise=0.1, seed=4)
    a = brelax.optimize(prob, "binaryrelax", "binary", steps=50, lr=0.3, lam0=0.0, rho=1.0, seed=2)
    b = brelax.optimize(prob, "gd", "binary", steps=50, lr=0.3, seed=2)
    np.testing.assert_array_equal(a.f, b.f)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.x, b.x)


def run_with_iterates(
    method="binaryrelax", qset="binary", rho=1.0, lam0=1.0, steps=150, seed=0, noise=0.2, phase2_start=None
):
    prob = least_squares(60, 30, qset, noise=noise, seed=seed)
    lr = 0.9 / prob.L
    traj = brelax.optimize(
        prob, method, qset, steps=steps, lr=lr, lam0=lam0, rho=rho, phase2_start=phase2_start, seed=seed, record_every=1
    )
    return prob, lr, traj


@pytest.mark.parametrize("qset", ["binary", "ternary", "uniform:3"])
def test_lemma_a_iterate_identity(qset):
    prob, lr, traj = run_with_iterates(qset=qset, rho=1.0, lam0=2.0)
    mu = 2.0 / 3.0
    x, p = traj.iterates["x"], traj.iterates["p"]
    for t in range(traj.steps):
        lhs = x[t + 1] - x[t]
        rhs = -(1 - mu) * lr * prob.grad(x[t]) + mu * (p[t + 1] - p[t])
        assert np.max(np.abs(lhs - rhs)) <= 1e-12 * max(1.0, np.max(np.abs(x[t])))


def test_fact_c_pattern_stable_steps_have_nonpositive_delta():
    n_stable, flip_max = 0, -np.inf
    for seed in range(4):
        _, _, traj = run_with_iterates(rho=1.0, lam0=1.0, seed=seed, steps=200)
        stable = (traj.flips == 0) & np.isfinite(traj.aoc)
        n_stable += stable.sum()
        assert np.all(traj.aoc[stable] <= 1e-9)
        flip_max = max(flip_max, np.nanmax(traj.aoc[traj.flips > 0]))
    assert n_stable > 300
    # The condition is stressed on flipping steps: some have delta_t > 0.
    assert flip_max > 0


def test_same_seed_same_trajectory_minibatch():
    prob = least_squares(80, 20, "ternary", noise=0.1, seed=0)
    a = brelax.optimize(prob, "binaryrelax", "ternary", steps=80, lr=0.05, batch_size=16, seed=7)
    b = brelax.optimize(prob, "binaryrelax", "ternary", steps=80, lr=0.05, batch_size=16, seed=7)
    c = brelax.optimize(prob, "binaryrelax", "ternary", steps=80, lr=0.05, batch_size=16, seed=8)
    for k in a.arrays:
        np.testing.assert_array_equal(a.arrays[k], b.arrays[k])
    assert not np.array_equal(a.f, c.f)
    assert a.meta["stochastic"] and np.all(a.noise_norm2 > 0)  # minibatch gradients differ from the full one


def test_save_load_round_trip(tmp_path):
    prob = least_squares(30, 10, "binary", seed=1)
    traj = brelax.optimize(prob, "binaryrelax", "binary", steps=20, lr=0.2, seed=1)
    path = tmp_path / "t.npz"
    traj.save(path)
    back = brelax.Trajectory.load(path)
    assert back.meta == traj.meta
    for k in traj.arrays:
        np.testing.assert_array_equal(back.arrays[k], traj.arrays[k])
    np.testing.assert_array_equal(back.x, traj.x)
    assert not list(tmp_path.glob(".traj-*"))  # the temp file was renamed away


def test_final_point_in_set_and_recovery():
    prob = least_squares(100, 40, "binary", noise=0.0, seed=0)
    traj = brelax.optimize(prob, "binaryrelax", "binary", steps=400, lr=1 / prob.L, rho=1.02, phase2_start=300, seed=0)
    assert brelax.binary().contains(traj.x)
    assert traj.meta["recovered"] is True
    assert traj.f[-1] <= 1e-12


def test_mu_schedule_semantics():
    prob = least_squares(20, 10, "binary", seed=0)
    traj = brelax.optimize(prob, "binaryrelax", "binary", steps=30, lr=0.1, lam0=0.5, rho=1.1, phase2_start=20)
    t = np.arange(31)
    lam = 0.5 * 1.1**t
    expect = np.where(t >= 20, 1.0, lam / (1 + lam))
    np.testing.assert_allclose(traj.mu, expect, rtol=1e-15)
    bc = brelax.optimize(prob, "binaryconnect", "binary", steps=5, lr=0.1)
    assert np.all(bc.mu == 1.0)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(method="adam"), "valid: gd, binaryconnect"),
        (dict(qset="quaternary"), "valid: binary"),
        (dict(lr=0.0), "lr"),
        (dict(lr=-1.0), "lr"),
        (dict(rho=0.9), "rho"),
        (dict(lam0=-1.0), "lam0"),
        (dict(y0=np.zeros(3)), r"y0 must have shape \(10,\)"),
        (dict(steps=0), "steps"),
        (dict(batch_size=0), "batch_size"),
    ],
)
def test_bad_input(kw, match):
    prob = least_squares(20, 10, "binary", seed=0)
    args = dict(method="binaryrelax", qset="binary", steps=5, lr=0.1)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        brelax.optimize(prob, **args)


def test_non_finite_stops_with_trajectory():
    prob = least_squares(20, 10, "binary", seed=0)
    with pytest.raises(brelax.NonFiniteError, match="non-finite") as err:
        brelax.optimize(prob, "gd", "binary", steps=2000, lr=1e3, seed=0)
    traj = err.value.trajectory
    assert 0 < traj.steps < 2000
    assert np.all(np.isfinite(traj.f))
    assert len(traj.f) == traj.steps + 1


def test_per_layer_diagnostics_add_up():
    from brelax.problems import digits_mlp

    prob = digits_mlp(hidden=(8,), seed=0)
    traj = brelax.optimize(
        prob, "binaryrelax", "binary", steps=15, lr=0.5, rho=1.1, seed=0, granularity="channel", record_every=1
    )
    quant = [b for b in prob.layout if b.quantize]
    assert set(traj.layers) == {b.name for b in quant}
    np.testing.assert_array_equal(sum(traj.layers[b.name]["flips"] for b in quant), traj.flips)
    D = np.diff(traj.iterates["x"], axis=0)
    for b in quant:
        np.testing.assert_allclose(
            traj.layers[b.name]["step_norm2"], np.sum(D[:, b.start : b.stop] ** 2, axis=1), rtol=1e-12
        )
    np.testing.assert_allclose(traj.step_norm2, np.sum(D**2, axis=1), rtol=1e-12)
    # Biases stay float: the quantized blocks alone do not carry the whole step.
    assert np.all(sum(traj.layers[b.name]["step_norm2"] for b in quant) < traj.step_norm2)


def test_lr_schedule_recorded():
    prob = least_squares(20, 10, "binary", seed=0)
    sched = brelax.schedules.multistep(0.2, [5, 8], gamma=0.5)
    traj = brelax.optimize(prob, "binaryrelax", "binary", steps=10, lr=sched)
    np.testing.assert_allclose(traj.lr[:10], [sched(t) for t in range(10)])
    assert math.isclose(traj.lr[9], 0.05)


def test_projector_memo_never_serves_a_stale_answer():
    from brelax.problems import Projector, make_layout

    layout = make_layout([("W", (3, 4), True, 0), ("b", (3,), False)])
    P = Projector(layout, brelax.ternary())
    x = np.random.default_rng(0).standard_normal(15)
    first = P(x).copy()
    x[:12] *= -1.0  # changed in place: the same object, a different vector
    again = P(x)
    np.testing.assert_array_equal(again[:12], -first[:12])
    np.testing.assert_array_equal(again[12:], x[12:])  # float block untouched
    np.testing.assert_array_equal(
        P.codes(x),
        np.asarray(brelax.ternary().quantize(x[:12].reshape(3, 4), axis=0).codes, dtype=np.int32).reshape(-1),
    )
    assert P.scale_min(x) == pytest.approx(
        float(np.min(brelax.ternary().quantize(x[:12].reshape(3, 4), axis=0).scales))
    )
