"""brelax.diagnostics through the NumPy driver: every recorded field against a direct computation."""

import math

import numpy as np
import pytest

import brelax
from brelax import diagnostics, schedules
from brelax.problems import Problem, make_layout
from brelax.problems.base import Projector
from brelax.trajectory import LAYER_FIELDS, POINT_FIELDS, STEP_FIELDS


class TwoLayerLsq(Problem):
    """f(x) = 1/(2m) ||A x - b||^2 over a layout of two quantized matrices (per-row scales) and a float bias."""

    name = "two_layer_lsq"

    def __init__(self, seed=0, m=30):
        rng = np.random.default_rng(seed)
        self.layout = make_layout([("W1", (3, 4), True, 0), ("W2", (2, 5), True, None), ("b", (3,), False)])
        self.A = rng.standard_normal((m, self.dim))
        self.b = rng.standard_normal(m)
        self.n_samples = m

    def f(self, x, idx=None):
        A, b = (self.A, self.b) if idx is None else (self.A[idx], self.b[idx])
        r = A @ x - b
        return float(0.5 * (r @ r) / len(b))

    def grad(self, x, idx=None):
        A, b = (self.A, self.b) if idx is None else (self.A[idx], self.b[idx])
        return A.T @ (A @ x - b) / len(b)


def _run(method="binaryrelax", qset="ternary", steps=12, **kw):
    prob = TwoLayerLsq()
    kw = {"lr": 0.2, "lam0": 0.5, "rho": 1.3, "phase2_start": 9, "seed": 1, **kw}
    return prob, brelax.optimize(prob, method, qset, steps=steps, record_every=1, **kw)


@pytest.mark.parametrize("method", ["binaryrelax", "proxquant", "gd", "pgd"])
@pytest.mark.parametrize("batch_size", [None, 8])
def test_every_field_matches_a_direct_computation(method, batch_size):
    prob, traj = _run(method, batch_size=batch_size)
    P = Projector(prob.layout, brelax.ternary())
    x, y, p = (traj.iterates[k] for k in ("x", "y", "p"))
    T = traj.steps
    G = np.array([prob.grad(v) for v in x])
    r = y - p
    D = x[1:] - x[:-1]
    # g_t, the gradient the step used, from the anchor update
    lr = traj.lr[:-1, None]
    if method in ("binaryrelax", "binaryconnect"):
        g = (y[:-1] - y[1:]) / lr
    else:  # the anchor of the non-lazy methods is x_t - lr g_t
        g = (x[:-1] - y[1:]) / lr
    tol = dict(rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(traj.step_norm2, np.sum(D * D, 1), **tol)
    np.testing.assert_allclose(traj.inner, np.sum((r[:-1] - r[1:]) * D, 1), **tol)
    np.testing.assert_allclose(traj.cross, np.sum(r[:-1] * D, 1), **tol)
    np.testing.assert_allclose(traj.dist_y, np.linalg.norm(r, axis=1), **tol)
    np.testing.assert_allclose(traj.dist_x, [np.linalg.norm(v - P(v)) for v in x], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(traj.grad_norm2, np.sum(G * G, 1), **tol)
    np.testing.assert_allclose(traj.g_dot_D, np.sum(G[:-1] * D, 1), **tol)
    np.testing.assert_allclose(traj.sgrad_norm2, np.sum(g * g, 1), rtol=1e-7)
    np.testing.assert_allclose(traj.sg_dot_D, np.sum(g * D, 1), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(traj.sg_dot_r, np.sum(g * r[:-1], 1), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(traj.noise_norm2, np.sum((g - G[:-1]) ** 2, 1), rtol=1e-6, atol=1e-10)
    if batch_size is None:
        assert np.all(traj.noise_norm2 == 0) and np.array_equal(traj.sg_dot_D, traj.g_dot_D)
        assert not traj.meta["stochastic"]
    scales = [P.scales(v) for v in y]
    np.testing.assert_array_equal(traj.scale_min, [min(s.min() for s in sc) for sc in scales])
    np.testing.assert_array_equal(traj.scale_max, [max(s.max() for s in sc) for sc in scales])
    # per layer: the same sums on the block's slice; the float bias has no layer entry but is in the totals
    assert set(traj.layers) == {"W1", "W2"}
    tot = np.zeros(T)
    for b in prob.layout[:2]:
        sl = slice(b.start, b.stop)
        lay = traj.layers[b.name]
        np.testing.assert_allclose(lay["step_norm2"], np.sum(D[:, sl] ** 2, 1), **tol)
        np.testing.assert_allclose(lay["sg_dot_D"], np.sum(g[:, sl] * D[:, sl], 1), rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(lay["dist_y"], np.linalg.norm(r[:, sl], axis=1), **tol)
        tot += lay["step_norm2"]
    assert np.all(tot <= traj.step_norm2 * (1 + 1e-12))
    assert traj.meta["row_min"] == 4 and traj.meta["n_quantized"] == 22 and traj.meta["levels"] == [1.0]
    assert len(traj.layers["W1"]["dist_x"]) == T + 1 and len(traj.layers["W1"]["aoc"]) == T


def test_pattern_stable_comparison_equals_the_step_when_no_code_flips():
    """With the pattern kept, P^s = P(y_{t+1}) (the ternary scale is optimal for its pattern)."""
    prob, traj = _run("binaryrelax", steps=40, lr=0.02)
    stable = traj.flips == 0
    assert stable.sum() >= 5 and (~stable).sum() >= 1
    np.testing.assert_allclose(traj.pattern_gap[stable], 0.0, atol=1e-12)
    np.testing.assert_allclose(traj.f_stable[stable], traj.f[1:][stable], rtol=1e-12)
    np.testing.assert_allclose(traj.stable_norm2[stable], traj.step_norm2[stable], rtol=1e-9)
    np.testing.assert_allclose(traj.stable_g_dot_D[stable], traj.g_dot_D[stable], rtol=1e-9, atol=1e-14)
    assert np.all(traj.pattern_gap[~stable] > 1e-6)
    # f_stable is f at x^s = y' - mu' (y' - P^s) with P^s per row along the old pattern's ray
    y, p = traj.iterates["y"], traj.iterates["p"]
    t = int(np.nonzero(~stable)[0][0])
    ps = y[t + 1].copy()
    for b in prob.layout[:2]:
        ps[b.start : b.stop] = diagnostics.stable_projection(b.view(y[t + 1]), b.view(p[t]), b.axis).reshape(-1)
        rows = b.view(p[t]).reshape(b.shape[0], -1) if b.axis == 0 else b.view(p[t]).reshape(1, -1)
        yr = b.view(y[t + 1]).reshape(rows.shape)
        c = np.maximum(np.sum(yr * rows, 1), 0) / np.sum(rows * rows, 1)
        np.testing.assert_allclose(ps[b.start : b.stop], (c[:, None] * rows).reshape(-1), rtol=1e-13)
    xs = brelax.relax(y[t + 1], ps, traj.mu[t + 1])
    assert traj.f_stable[t] == pytest.approx(prob.f(xs), rel=1e-13)


def test_stable_fields_are_nan_for_the_non_lazy_methods():
    _, traj = _run("proxquant")
    for k in ("f_stable", "stable_norm2", "stable_g_dot_D", "pattern_gap"):
        assert np.all(np.isnan(traj.arrays[k])), k


def test_stable_projection_zero_row_and_negative_correlation():
    y = np.array([[1.0, -2.0], [3.0, 4.0], [-1.0, -1.0]])
    p = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    ps = diagnostics.stable_projection(y, p, axis=0)
    np.testing.assert_array_equal(ps, [[0.0, 0.0], [3.5, 3.5], [0.0, 0.0]])
    assert np.array_equal(diagnostics.stable_projection(y, p, axis=None), 5 / 4 * p)


def test_old_files_without_the_new_fields_load_with_nan(tmp_path):
    _, traj = _run(steps=5)
    path = tmp_path / "old.npz"
    traj.save(path)
    with np.load(path) as z:
        keep = {k: z[k] for k in z.files if not (k.endswith("pattern_gap") or k.endswith("grad_norm2"))}
    keep["a__lemma_b_slack"] = np.zeros(5)  # a field of the old format
    np.savez(path, **keep)
    back = brelax.Trajectory.load(path)
    assert back.pattern_gap.shape == (5,) and np.all(np.isnan(back.pattern_gap))
    assert back.grad_norm2.shape == (6,) and np.all(np.isnan(back.grad_norm2))
    assert np.all(np.isnan(back.layers["W1"]["pattern_gap"]))
    np.testing.assert_array_equal(back.aoc, traj.aoc)
    assert set(POINT_FIELDS + STEP_FIELDS) <= set(back.arrays)
    assert set(LAYER_FIELDS) == set(back.layers["W2"])


def test_relax_schedule_is_the_composed_schedule_and_validates():
    old = schedules.phase2(schedules.mu_of_lam(schedules.geometric_lam(0.5, 1.1, 3)), 20)
    new = schedules.RelaxSchedule("binaryrelax", 0.5, 1.1, every=3, phase2_start=20)
    assert [new(t) for t in range(30)] == [old(t) for t in range(30)]
    assert new.mu(4, k=7) == pytest.approx(0.5 * 1.1**7 / (1 + 0.5 * 1.1**7), rel=1e-15)
    assert new.lam(10**6) == math.inf and new.mu(5, k=10**6) == 1.0
    assert schedules.RelaxSchedule("gd").mu(3) == 0.0 and schedules.RelaxSchedule("pgd").mu(3) == 1.0
    ramp = schedules.RelaxSchedule("proxquant", mu_ramp=schedules.linear_mu(4), phase2_start=6)
    assert [ramp(t) for t in range(7)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    for kw, exc, match in [
        ({"method": "float"}, ValueError, "method"),
        ({"rho": 0.9}, ValueError, "rho"),
        ({"lam0": -1.0}, ValueError, "lam0"),
        ({"every": 0}, ValueError, "every"),
        ({"phase2_start": -2}, ValueError, "phase2_start"),
        ({"mu_ramp": 3}, TypeError, "mu_ramp"),
    ]:
        with pytest.raises(exc, match=match):
            schedules.RelaxSchedule(**kw)


def test_brelax_run_prints_measured_numbers_and_no_verdict(tmp_path, capsys):
    from brelax.cli import main as brelax_main

    out = tmp_path / "t.npz"
    assert brelax_main(["run", "lsq", "--steps", "40", "--m", "30", "--n", "10", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "holds" not in text and "VIOLATED" not in text and "Lemma" not in text
    assert f"brelax verify {out}" in text and "||D_t||^2" in text
    assert brelax.Trajectory.load(out).steps == 40
