"""The prox of (lam/2) d_Q^2 minimises its objective (enumeration and scipy), the
Moreau-envelope identity, and P(prox(y)) = P(y)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
from _exhaustive import brute_prox_min, brute_sq_distance, candidates, tol, vectors
from hypothesis import given, settings
from hypothesis import strategies as st

import brelax

FREE = ["binary", "ternary", "uniform:3", "levels:1,3", "levels:0,1,3,7"]
LAMS = st.one_of(st.floats(0.0, 1e3, allow_nan=False, allow_subnormal=False), st.sampled_from([0.0, 0.5, 1.0, 4.0]))


def objective(x, y, levels, lam) -> float:
    """``1/2||x - y||^2 + lam/2 d_Q(x)^2`` with d_Q by enumeration."""
    return 0.5 * float(np.sum((x - y) ** 2)) + 0.5 * lam * brute_sq_distance(x, levels)


def objective_and_grad(x, y, levels, lam):
    """The objective and its gradient ``(x - y) + lam (x - z*)`` (z* a nearest point, by enumeration).

    d_Q^2 is a minimum of smooth quadratics, so this is its gradient wherever the
    nearest point is unique (almost everywhere).
    """
    Z = candidates(x, levels)
    d2 = np.sum((x[None, :] - Z) ** 2, axis=1)
    z = Z[int(np.argmin(d2))]
    return 0.5 * float(np.sum((x - y) ** 2)) + 0.5 * lam * float(d2.min()), (x - y) + lam * (x - z)


@pytest.mark.parametrize("spec", FREE)
@given(y=vectors(4), lam=LAMS)
def test_prox_attains_the_enumerated_minimum_and_the_moreau_identity(spec, y, lam):
    Q = brelax.get_set(spec)
    x = brelax.prox(y, Q, lam)
    best = brute_prox_min(y, Q.levels, lam)
    scale = tol(y) * (1.0 + lam)
    # The prox attains the global minimum found by enumerating every pattern.
    assert objective(x, y, Q.levels, lam) <= best + scale
    # Moreau envelope: that minimum is lam / (2 (1 + lam)) d_Q(y)^2.
    identity = lam / (2.0 * (1.0 + lam)) * brute_sq_distance(y, Q.levels)
    assert best == pytest.approx(identity, rel=1e-9, abs=scale)
    assert brelax.moreau_envelope(y, Q, lam) == pytest.approx(identity, rel=1e-9, abs=scale)


@pytest.mark.parametrize("spec", FREE)
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("lam", [0.3, 2.0, 25.0])
def test_prox_beats_scipy_from_many_starts(spec, seed, lam):
    rng = np.random.default_rng(seed)
    Q = brelax.get_set(spec)
    y = rng.standard_normal(3) * 2.0
    x = brelax.prox(y, Q, lam)
    f_prox = objective(x, y, Q.levels, lam)
    # Starts: y, its projection, and random points around y (never the prox itself).
    starts = [y, Q.project(y)] + [y + rng.standard_normal(3) * s for s in (0.1, 0.5, 1.0, 2.0) for _ in range(4)]
    found = []
    for x0 in starts:
        res = scipy.optimize.minimize(objective_and_grad, x0, args=(y, Q.levels, lam), jac=True, method="BFGS")
        found.append(objective(res.x, y, Q.levels, lam))
    assert min(found) >= f_prox - 1e-12 * (1 + f_prox)
    # scipy does reach the prox's value from some start, so the comparison is not vacuous.
    assert min(found) == pytest.approx(f_prox, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("spec", FREE + ["levels:1,3@2"])
@given(y=vectors(16), lam=LAMS)
def test_prox_is_the_convex_combination_and_keeps_the_projection(spec, y, lam):
    Q = brelax.get_set(spec)
    p = Q.project(y)
    x = brelax.prox(y, Q, lam)
    mu = lam / (1.0 + lam)
    atol = 1e-12 * float(np.abs(y).max())
    np.testing.assert_allclose(x, (y + lam * p) / (1.0 + lam), rtol=1e-12, atol=atol)
    np.testing.assert_array_equal(x, brelax.relax(y, p, mu))
    # P(prox(y)) = P(y), and prox(y) is (1 - mu) of the way from P(y) to y.
    np.testing.assert_allclose(Q.project(x), p, rtol=1e-9, atol=1e-9 * float(np.abs(y).max()))
    assert Q.distance(x) == pytest.approx((1.0 - mu) * Q.distance(y), rel=1e-9, abs=1e-9 * np.sqrt(float(y @ y)))


def test_prox_endpoints_and_dtype():
    y = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    Q = brelax.ternary()
    np.testing.assert_array_equal(brelax.prox(y, Q, 0.0), y)
    np.testing.assert_allclose(brelax.prox(y, Q, 1e12), Q.project(y), rtol=1e-6, atol=1e-6)
    for dtype in (np.float16, np.float32, np.float64):
        assert brelax.prox(y.astype(dtype), Q, 3.0).dtype == dtype
    # Granularity is passed through to the projection.
    np.testing.assert_allclose(brelax.prox(y, Q, 1.0, axis=0), (y + Q.project(y, axis=0)) / 2, rtol=1e-6)
    np.testing.assert_allclose(brelax.prox(y, Q, 1.0, group_size=4), (y + Q.project(y, group_size=4)) / 2, rtol=1e-6)
    # A large lam must not overflow float16 (the convex-combination form).
    y16 = np.array([60000.0, -30000.0], dtype=np.float16)
    assert np.all(np.isfinite(brelax.prox(y16, Q, 1e30)))


@settings(max_examples=50)
@given(y=vectors(3, min_size=3), lam=st.sampled_from([0.5, 3.0]))
def test_no_perturbation_of_the_prox_does_better(y, lam):
    """A local check at the prox, in 26 directions and 3 radii, for the ternary set."""
    Q = brelax.ternary()
    x = brelax.prox(y, Q, lam)
    f = objective(x, y, Q.levels, lam)
    grid = np.array(np.meshgrid(*[[-1.0, 0.0, 1.0]] * 3)).reshape(3, -1).T
    for r in (1e-3, 1e-1, 1.0):
        for dvec in grid:
            assert objective(x + r * dvec, y, Q.levels, lam) >= f - tol(y) * (1 + lam)
