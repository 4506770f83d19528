"""The heuristics are baselines, never better than the exact projection, and the
optimality tests have teeth: they catch each heuristic on inputs found here."""

from __future__ import annotations

import numpy as np
import pytest
from _exhaustive import brute_sq_distance, tol, vectors
from hypothesis import find, given, settings
from hypothesis.errors import NoSuchExample

import brelax
from brelax import heuristics

pytestmark = pytest.mark.filterwarnings("error")

T = brelax.ternary()


def sqdist(y, z) -> float:
    return float(np.sum((np.asarray(y, np.float64) - np.asarray(z, np.float64)) ** 2))


def strictly_worse(Q, heuristic, rel=1e-6):
    """A predicate: the heuristic's squared error exceeds the brute-force optimum by ``rel``."""

    def worse(y):
        return sqdist(y, heuristic(y)) > brute_sq_distance(y, Q.levels) * (1 + rel) + tol(y)

    return worse


def find_counterexample(Q, heuristic, max_size):
    return find(vectors(max_size), strictly_worse(Q, heuristic), settings=settings(max_examples=2000, database=None))


def assert_gap(Q, heuristic, y):
    """On ``y`` the exact projection attains the brute-force optimum and the heuristic does not."""
    best = brute_sq_distance(y, Q.levels)
    exact, heur = Q.distance(y) ** 2, sqdist(y, heuristic(y))
    assert abs(exact - best) <= tol(y) + 1e-9 * best
    assert heur > exact * (1 + 1e-6) + tol(y), (y, heur, exact)
    # The heuristic's output is a point of the same set, so the comparison is like for like.
    assert brute_sq_distance(heuristic(y), Q.levels) <= tol(y)
    return heur - exact


def test_hypothesis_finds_an_input_where_twn_is_strictly_worse():
    y = find_counterexample(T, heuristics.twn, 8)
    gap = assert_gap(T, heuristics.twn, y)
    assert gap > 1e-3 * float(y @ y)
    # The same search against the exact projection finds nothing: it is optimal.
    with pytest.raises(NoSuchExample):
        find(vectors(8), strictly_worse(T, T.project), settings=settings(max_examples=300, database=None))


def test_twn_is_strictly_worse_on_a_known_input():
    # Found by hypothesis (the test above). TWN keeps |y| > 0.7 * 4/3, i.e. [1, 3] at
    # a = 2 (error 2); the exact projection keeps only 3 (error 1).
    y = np.array([0.0, 1.0, 3.0])
    assert assert_gap(T, heuristics.twn, y) == pytest.approx(1.0)
    y = np.array([3.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    assert_gap(T, heuristics.twn, y)


@pytest.mark.parametrize("spec", ["uniform:3", "levels:1,3"])
def test_hypothesis_finds_an_input_where_lloyd_is_strictly_worse(spec):
    Q = brelax.get_set(spec)
    lloyd = lambda w: heuristics.lloyd(w, Q)  # noqa: E731
    y = find_counterexample(Q, lloyd, 6)
    assert_gap(Q, lloyd, y)


@pytest.mark.parametrize(
    "spec, y",
    [
        # uniform(3): [6, 3] is in the set (a = 3, q = [2, 1]); Lloyd from a = 6/3 = 2 stops at q = [3, 2].
        ("uniform:3", [6.0, 3.0]),
        ("levels:1,3", [6.0, 0.0, 10.0]),
    ],
)
def test_lloyd_is_strictly_worse_on_known_inputs(spec, y):
    Q = brelax.get_set(spec)
    assert_gap(Q, lambda w: heuristics.lloyd(w, Q), np.array(y))


def test_ternary_divide_by_n_on_gaussian_data():
    """Relative squared error ~0.337 for the authors' divide-by-n variant, ~0.19 for the exact projection."""
    w = np.random.default_rng(0).standard_normal(10**5)
    ww = float(w @ w)
    exact = T.distance(w) ** 2 / ww
    divided = sqdist(w, heuristics.ternary_divide_by_n(w)) / ww
    twn = sqdist(w, heuristics.twn(w)) / ww
    assert exact == pytest.approx(0.19, abs=0.005)
    assert divided == pytest.approx(0.337, abs=0.005)
    assert exact < twn < divided
    # Its support is TWN's (>= threshold), its scale the kept sum over n.
    p = heuristics.ternary_divide_by_n(w)
    keep = np.abs(w) >= 0.7 * np.abs(w).mean()
    np.testing.assert_array_equal(p != 0, keep)
    np.testing.assert_allclose(np.abs(p[keep]), np.sum(np.abs(w) * keep) / w.size, rtol=1e-12)


# ---------------------------------------------------------------- never better than exact

SAME_SET = [
    ("ternary", heuristics.twn),
    ("ternary", heuristics.ternary_divide_by_n),
    ("ternary", lambda w, **kw: heuristics.lloyd(w, "ternary", **kw)),
    ("binary", lambda w, **kw: heuristics.lloyd(w, "binary", **kw)),
    ("uniform:3", lambda w, **kw: heuristics.lloyd(w, "uniform:3", **kw)),
    ("levels:1,3", lambda w, **kw: heuristics.lloyd(w, "levels:1,3", **kw)),
    ("levels:0,1,3,7", lambda w, **kw: heuristics.lloyd(w, "levels:0,1,3,7", **kw)),
    ("binary", lambda w, **kw: heuristics.greedy_residual(w, 1, **kw)),
]
SAME_IDS = [
    "twn",
    "divide_by_n",
    "lloyd-ternary",
    "lloyd-binary",
    "lloyd-uniform3",
    "lloyd-1,3",
    "lloyd-0,1,3,7",
    "greedy1-binary",
]


@pytest.mark.parametrize("spec, heuristic", SAME_SET, ids=SAME_IDS)
@given(y=vectors(24))
def test_heuristic_is_in_the_set_and_never_beats_exact(spec, heuristic, y):
    Q = brelax.get_set(spec)
    h = heuristic(y)
    assert h.shape == y.shape and h.dtype == y.dtype
    assert Q.contains(h, rtol=1e-9)
    assert sqdist(y, h) >= Q.distance(y) ** 2 - tol(y)


def test_exact_where_the_heuristics_are_exact():
    w = np.random.default_rng(2).standard_normal((8, 16))
    B = brelax.binary()
    # Binary: one greedy term and Lloyd (a single pattern) are the closed form.
    for kw in ({}, {"axis": 0}, {"group_size": 4}):
        np.testing.assert_allclose(heuristics.greedy_residual(w, 1, **kw), B.project(w, **kw), rtol=1e-12)
        np.testing.assert_allclose(heuristics.lloyd(w, B, **kw), B.project(w, **kw), rtol=1e-12)


def test_greedy_residual_is_onto_a_larger_set():
    w = np.random.default_rng(3).standard_normal(1000)
    g2 = heuristics.greedy_residual(w, 2)
    # 4 magnitudes a1 +- a2 at most: not a point of the binary set, and closer than its projection.
    assert len(np.unique(np.abs(g2))) <= 2 and len(np.unique(g2)) <= 4
    assert not brelax.binary().contains(g2)
    assert sqdist(w, g2) < brelax.binary().distance(w) ** 2


@pytest.mark.parametrize("name", sorted(heuristics.HEURISTICS))
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_heuristics_keep_shape_dtype_and_granularity(name, dtype):
    fn = heuristics.HEURISTICS[name]
    w = np.random.default_rng(4).standard_normal((6, 10)).astype(dtype)
    for kw in ({}, {"axis": 1}, {"group_size": 5}):
        h = fn(w, **kw)
        assert h.shape == w.shape and h.dtype == dtype
    # Per axis is the whole-tensor rule applied row by row.
    h = fn(w, axis=0)
    for i in range(w.shape[0]):
        np.testing.assert_allclose(h[i], fn(w[i]), rtol=1e-3 if dtype == np.float16 else 1e-6)


def test_lloyd_rejects_bad_iters_and_fixed_scale():
    import numpy as np
    import pytest

    import brelax
    from brelax.heuristics import lloyd

    w = np.linspace(-1, 1, 10)
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="iters"):
            lloyd(w, "ternary", iters=bad)
    with pytest.raises(ValueError, match="free-scale"):
        lloyd(w, brelax.ternary(scale=1.0))
