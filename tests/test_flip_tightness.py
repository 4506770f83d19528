"""Issue 17: the segment flip cost Ehat_seg_t (THEORY.md, Lemma II.3(f)) is a true bound, and it is tight.

The segment bound must hold for every start and direction, large steps included (brute force against
an extended-precision remainder); on digits runs its median tightness must stay below bounds fixed
before the runs below were looked at; a bound made too small must make flip_descent fail.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import brelax
from brelax import problems as P
from brelax.problems.logistic import Logistic, psi, softmax_segment_bound
from brelax.problems.mlp import MLP
from brelax.trajectory import STEP_FIELDS, Trajectory
from theory import FlipDescent, descent_terms
from theory.context import Context

LD = np.longdouble


def exact_remainder(Z, Delta):
    """``lse(z + Delta) - lse(z) - <softmax(z), Delta>`` per row, in extended precision where the platform has it."""
    Z, Delta = Z.astype(LD), Delta.astype(LD)

    def lse(A):
        m = A.max(axis=1, keepdims=True)
        return (m + np.log(np.exp(A - m).sum(axis=1, keepdims=True)))[:, 0]

    p = np.exp(Z - Z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return lse(Z + Delta) - lse(Z) - (p * Delta).sum(axis=1)


def ref_tol(Z, Delta):
    # the reference's own rounding: a few ulps (of the longdouble) of the logits it subtracts
    return 32 * float(np.finfo(LD).eps) * (1 + np.abs(Z).max(axis=1) + np.abs(Delta).max(axis=1))


@st.composite
def logits_and_step(draw):
    n = draw(st.integers(1, 4))
    k = draw(st.integers(2, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    zs = draw(st.sampled_from([0.0, 0.1, 1.0, 5.0, 20.0, 60.0]))
    ds = draw(st.sampled_from([1e-6, 1e-3, 0.1, 1.0, 5.0, 30.0, 300.0]))
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, k)) * zs
    D = rng.standard_normal((n, k)) * ds
    if draw(st.booleans()):  # sparse changes: one class moves (a flip that touches one logit)
        D[:, 1:] = 0.0
    return Z, D


@given(logits_and_step())
def test_softmax_segment_bound_majorises_the_remainder_for_any_step(zd):
    Z, D = zd
    R = exact_remainder(Z, D)
    bnd = softmax_segment_bound(Z, D) / 2
    assert np.all(bnd + ref_tol(Z, D) >= R), (R, bnd)


@given(logits_and_step())
def test_softmax_segment_bound_is_below_the_plain_psi_form(zd):
    """The capped bound is at most ``2 psi(a) Var_p(Delta)`` (plus its rounding allowance), as documented."""
    Z, D = zd
    p = np.exp(Z - Z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    mean = (p * D).sum(axis=1)
    var = (p * (D - mean[:, None]) ** 2).sum(axis=1)
    a = np.maximum(D.max(axis=1) - mean, 0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        plain = 2 * psi(a) * var
    # its allowance, once more for the rounding of e^b - 1 - b itself (absolute error ~ eps |b|)
    slack = 2 * 8 * Z.shape[1] * np.finfo(np.float64).eps * np.abs(D).max(axis=1) * (1 + a)
    ok = ~np.isfinite(plain) | (softmax_segment_bound(Z, D) <= (plain + slack) * (1 + 1e-12) + 1e-300)
    assert np.all(ok)


@given(logits_and_step(), st.integers(0, 2**32 - 1))
def test_the_box_version_majorises_every_centred_change_in_the_box(zd, seed):
    """With an uncertainty box the bound holds for any change whose centred part lies in the box."""
    Z, D = zd
    rng = np.random.default_rng(seed)
    lo, hi = -np.abs(rng.standard_normal(D.shape)), np.abs(rng.standard_normal(D.shape))
    bnd = softmax_segment_bound(Z, D, lo, hi) / 2
    p = np.exp(Z - Z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    for _ in range(5):
        w = lo + rng.random(D.shape) * (hi - lo)
        w -= (p * w).sum(axis=1, keepdims=True)  # a centred perturbation: its centred part is itself
        inside = np.all((w >= lo) & (w <= hi), axis=1)
        R = exact_remainder(Z, D + w)
        assert np.all(~inside | (bnd + ref_tol(Z, D + w) >= R))


def _classification_data(rng, m, d, k):
    X = rng.standard_normal((m, d))
    y = np.concatenate([np.arange(k), rng.integers(0, k, m - k)])
    return X, y


@given(st.integers(0, 2**32 - 1), st.sampled_from([0.01, 0.3, 1.0, 4.0]), st.sampled_from([0.0, 0.1]))
def test_logistic_segment_curvature_majorises_f_along_the_segment(seed, vscale, l2):
    rng = np.random.default_rng(seed)
    X, y = _classification_data(rng, 25, 4, 3)
    prob = Logistic(X, y, l2=l2)
    x = rng.standard_normal(prob.dim) * rng.choice([0.3, 3.0])
    v = rng.standard_normal(prob.dim) * vscale
    R = prob.f(x + v) - prob.f(x) - prob.grad(x) @ v
    tol = 1e-12 * (abs(prob.f(x + v)) + abs(prob.f(x)) + abs(prob.grad(x) @ v) + 1)
    assert prob.segment_curvature(x, v) / 2 + tol >= R


@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(["relu", "tanh"]),
    st.sampled_from([1e-3, 0.1, 1.0, 5.0]),
    st.booleans(),
    st.integers(1, 3),
)
def test_mlp_segment_curvature_majorises_f_along_the_segment(seed, act, vscale, sparse, depth):
    """One to three hidden layers, relu or tanh, large steps and sparse (flip-like) directions included."""
    rng = np.random.default_rng(seed)
    X, y = _classification_data(rng, 20, 5, 3)
    hidden = tuple(int(h) for h in rng.integers(1, 8, size=depth))
    prob = MLP(X, y, hidden=hidden, activation=act, l2=float(rng.choice([0.0, 0.1])))
    x = rng.standard_normal(prob.dim) * rng.choice([0.3, 1.0, 3.0])
    v = rng.standard_normal(prob.dim) * vscale
    if sparse:
        v[rng.random(prob.dim) < 0.8] = 0.0
    R = prob.f(x + v) - prob.f(x) - prob.grad(x) @ v
    tol = 1e-10 * (abs(prob.f(x + v)) + abs(prob.f(x)) + abs(prob.grad(x) @ v)) + 1e-12
    assert prob.segment_curvature(x, v) / 2 + tol >= R


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_deep_mlp_segment_bound_over_many_random_segments(act):
    """Two and three hidden layers, 200 fixed random segments: the interval propagation of the hidden
    remainders (and the known second-order part carried from layer to layer) must keep the bound valid."""
    rng = np.random.default_rng(5)
    for _ in range(200):
        X, y = _classification_data(rng, 20, 5, int(rng.integers(2, 5)))
        hidden = tuple(int(h) for h in rng.integers(1, 7, size=int(rng.integers(2, 4))))
        prob = MLP(X, y, hidden=hidden, activation=act, l2=float(rng.choice([0.0, 0.1])))
        x = rng.standard_normal(prob.dim) * rng.choice([0.3, 1.0, 2.0])
        v = rng.standard_normal(prob.dim) * rng.choice([1e-3, 0.1, 1.0, 3.0])
        if rng.random() < 0.3:
            v[rng.random(prob.dim) < 0.7] = 0.0
        R = prob.f(x + v) - prob.f(x) - prob.grad(x) @ v
        tol = 1e-10 * (abs(prob.f(x + v)) + abs(prob.f(x)) + abs(prob.grad(x) @ v)) + 1e-12
        assert prob.segment_curvature(x, v) / 2 + tol >= R, (hidden, R)


def test_relu_mlp_segment_bound_is_exact_to_second_order_for_a_small_step():
    """Relu, two hidden layers: once no unit changes piece the box is empty and the bound tends to the remainder.

    (For tanh the Taylor box is itself of second order, so there the ratio stays above 1.)"""
    rng = np.random.default_rng(3)
    X, y = _classification_data(rng, 30, 5, 3)
    prob = MLP(X, y, hidden=(6, 4), activation="relu")
    x, u = rng.standard_normal(prob.dim), rng.standard_normal(prob.dim)
    ratios = []
    for eps in (1e-1, 1e-3):
        v = eps * u
        R = prob.f(x + v) - prob.f(x) - prob.grad(x) @ v
        ratios.append(prob.segment_curvature(x, v) / 2 / R)
    assert ratios[0] > 1.5 and 1 <= ratios[1] < 1.001


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((2, 2))])
def test_segment_curvature_rejects_a_direction_of_the_wrong_shape(bad):
    rng = np.random.default_rng(0)
    X, y = _classification_data(rng, 20, 5, 3)
    for prob in (Logistic(X, y), MLP(X, y, hidden=(4,))):
        with pytest.raises(ValueError, match="v must have shape"):
            prob.segment_curvature(prob.init(), bad)


def _digits_run(prob, method, lr, steps, **kw):
    return brelax.optimize(prob, method, qset="binary", steps=steps, lr=lr, seed=0, **kw)


@pytest.fixture(scope="module")
def digits_logistic_run():
    # seed 1: the seed-0 runs were used while building the bound; this one was not looked at before
    prob = P.digits_logistic(seed=1)
    return prob, _digits_run(prob, "binaryrelax", 1.0 / prob.L, 200)


def test_the_driver_records_the_segment_bound_on_flip_steps_only(digits_logistic_run):
    _, traj = digits_logistic_run
    assert "curv_gap_seg" in STEP_FIELDS
    seg = traj.curv_gap_seg
    flips = traj.flips > 0
    assert flips.sum() > 20 and np.all(np.isfinite(seg))
    assert np.all(seg[~flips] == 0.0) and np.all(seg[flips] >= 0.0)


def test_segment_flip_cost_holds_on_every_step_and_is_tight_on_digits_logistic(digits_logistic_run):
    """A priori regression bound 10 on the median Ehat_seg/E (chosen before this run was looked at: twice
    the largest median, 5.1, seen on the seed-0 runs; the global majorant's medians were 60-280)."""
    _, traj = digits_logistic_run
    r = FlipDescent().check(traj)
    d = r.details
    assert r.status != "violated" and d["excess_over_segment_bound_failing"] == 0
    assert d["flip_steps_positive_excess"] > 20
    assert d["tightness_Ehat_seg_median"] <= 10.0
    assert d["tightness_Ehat_seg_median"] < d["tightness_Ehat_median"] / 10
    assert d["tightness_Ebest_median"] <= d["tightness_Ehat_seg_median"]
    tm = descent_terms(Context(traj), traj.meta["L"])
    fl = traj.flips > 0
    assert np.all(tm["Ebest"][fl] <= tm["Ehat_seg"][fl]) and np.all(tm["Ebest"][fl] <= tm["Ehat"][fl])


def test_segment_flip_cost_holds_and_is_recorded_on_the_digits_mlp():
    """A priori regression bound 25 on the median (seed 0 gave 9.4 and 11.2 before this run was looked at).

    L of the MLP is unknown; the segment bound does not use it (a rough L is passed for the other forms)."""
    prob = P.digits_mlp(hidden=(32,), seed=1)
    traj = _digits_run(prob, "binaryrelax", 0.5, 150)
    r = FlipDescent().check(traj, L=4.0)
    d = r.details
    assert d["excess_over_segment_bound_failing"] == 0
    assert d["flip_steps_positive_excess"] > 10
    assert d["tightness_Ehat_seg_median"] <= 25.0


def test_a_segment_bound_halved_makes_flip_descent_fail(digits_logistic_run):
    """Seeded defect: the recorded segment curvature times 0.5 (a too-small majorant) must be a violation."""
    _, traj = digits_logistic_run
    arrays = dict(traj.arrays)
    arrays["curv_gap_seg"] = 0.5 * arrays["curv_gap_seg"]
    bad = Trajectory(arrays, traj.x, traj.y, traj.meta, traj.layers)
    r = FlipDescent().check(bad)
    assert r.status == "violated" and r.details["excess_over_segment_bound_failing"] > 0


class _HalvedSegment(Logistic):
    def segment_curvature(self, x, v):
        return 0.5 * super().segment_curvature(x, v)


def test_a_problem_with_a_too_small_segment_curvature_is_caught():
    """The same defect in the problem itself (not in the record) is caught on the run it produces."""
    base = P.digits_logistic(seed=1)
    prob = _HalvedSegment(base.X, base.classes[base.codes], classes=base.classes)
    traj = _digits_run(prob, "binaryconnect", 1.0 / prob.L, 60)
    r = FlipDescent().check(traj)
    assert r.status == "violated" and r.details["excess_over_segment_bound_failing"] > 0


def test_without_a_segment_bound_the_field_is_nan_and_no_tightness_is_claimed(tmp_path):
    prob = P.least_squares(30, 50, "binary", noise=0.1, seed=0)
    traj = _digits_run(prob, "binaryrelax", 1.0 / prob.L, 100)
    assert np.all(np.isnan(traj.curv_gap_seg))
    d = FlipDescent().check(traj).details
    assert d["tightness_Ehat_seg_median"] is None and d["sum_Ehat_seg"] is None
    assert d["tightness_Ehat_median"] == pytest.approx(1.0, abs=1e-6)
    # the field survives a save/load round trip; a file from before it existed loads it as NaN
    traj.save(tmp_path / "t.npz")
    assert np.array_equal(Trajectory.load(tmp_path / "t.npz").curv_gap_seg, traj.curv_gap_seg, equal_nan=True)
    gd = _digits_run(P.digits_logistic(seed=1), "gd", 0.1, 5)
    assert np.all(np.isnan(gd.curv_gap_seg))


def test_the_tanh_taylor_constant_is_the_best_one():
    """``|tanh(p + q) - tanh(p) - tanh'(p) q| <= TANH_C q^2`` everywhere, with equality in the limit q -> 0 at
    the inflection of tanh'' (so a smaller constant would be false)."""
    from brelax.problems.mlp import TANH_C

    p = np.linspace(-4, 4, 2001)[:, None]
    q = np.concatenate([-np.logspace(-4, 1, 60), np.logspace(-4, 1, 60)])[None, :]
    rem = np.abs(np.tanh(p + q) - np.tanh(p) - (1 - np.tanh(p) ** 2) * q)
    assert np.all(rem <= TANH_C * q * q * (1 + 1e-9) + 1e-15)
    p0, q0 = -np.arctanh(1 / np.sqrt(3)), 1e-4  # tanh'' is largest here: 4 / (3 sqrt 3)
    r0 = np.tanh(p0 + q0) - np.tanh(p0) - (1 - np.tanh(p0) ** 2) * q0
    assert r0 / q0**2 == pytest.approx(TANH_C, rel=1e-3)


def test_softmax_segment_bound_rejects_mismatched_shapes():
    Z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="Delta"):
        softmax_segment_bound(Z, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="b_hi"):
        softmax_segment_bound(Z, Z, b_lo=Z)
    with pytest.raises(ValueError, match="b_lo"):
        softmax_segment_bound(Z, Z, b_lo=np.zeros(3), b_hi=Z)
