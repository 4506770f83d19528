"""The projections are exact: brute force over all of L^n (F4), and the facts F1-F3 of THEORY.md (sections 3-4).

Also the documented tie rule, the edge cases (zero vector, single element,
all-equal magnitudes, n = 10^7) and dtype handling.
"""

from __future__ import annotations

import numpy as np
import pytest
from _exhaustive import NAMED_SETS, brute_sq_distance, max_n, tol, vectors
from array_api_compat import numpy as xnp
from hypothesis import given
from hypothesis import strategies as st

import brelax
from brelax import projections

FREE_SETS = [s for s in NAMED_SETS if "@" not in s]
FACT_N = 16

# Overflow, underflow or invalid values inside a projection are bugs, not noise.
pytestmark = pytest.mark.filterwarnings("error")


def sq(v) -> float:
    return float(np.sum(np.asarray(v, dtype=np.float64) ** 2))


def assert_optimal(Q, y):
    """d(y, P(y))^2 equals the brute-force minimum, and P(y) lies in Q."""
    p = Q.project(y)
    assert p.shape == y.shape and p.dtype == y.dtype
    d2 = sq(y - p)
    ref = brute_sq_distance(y, Q.levels, Q.scale)
    # With a fixed scale the distance is not bounded by ||y||, hence the + ref.
    assert abs(d2 - ref) <= tol(y) + 1e-9 * ref, (Q.name, y, d2, ref)
    # P(y) is a point of Q: its own distance to Q, by enumeration, is zero.
    assert brute_sq_distance(p, Q.levels, Q.scale) <= tol(p), (Q.name, y, p)
    assert abs(Q.distance(y) ** 2 - d2) <= tol(y) + 1e-12 * ref


# ---------------------------------------------------------------- F4: brute force


@pytest.mark.parametrize("spec", list(NAMED_SETS))
@given(data=st.data())
def test_named_set_is_optimal_vs_brute_force(spec, data):
    y = data.draw(vectors(NAMED_SETS[spec]), label="y")
    assert_optimal(brelax.get_set(spec), y)


LEVEL = st.one_of(
    st.just(0.0), st.integers(1, 9).map(float), st.floats(0.01, 10.0, allow_nan=False, allow_subnormal=False)
)
LEVEL_SETS = st.lists(LEVEL, min_size=1, max_size=3, unique=True).filter(lambda v: max(v) > 0)


@given(values=LEVEL_SETS, data=st.data())
def test_random_free_level_set_is_optimal_vs_brute_force(values, data):
    Q = brelax.levels(values)
    y = data.draw(vectors(max_n(Q.levels)), label="y")
    assert_optimal(Q, y)


@given(values=LEVEL_SETS, scale=st.floats(0.05, 20.0), data=st.data())
def test_random_fixed_level_set_is_optimal_vs_brute_force(values, scale, data):
    Q = brelax.levels(values, scale=scale)
    y = data.draw(vectors(max_n(Q.levels)), label="y")
    assert_optimal(Q, y)


@given(values=LEVEL_SETS, data=st.data())
def test_sweep_and_sort_kernels_agree_with_brute_force_on_batches(values, data):
    """The (G, n) kernels directly: every row of a batch is its own exact problem."""
    lv = tuple(sorted(values))
    n = max_n(lv, budget=20_000)
    a = np.abs(np.stack(data.draw(st.lists(vectors(n, min_size=n), min_size=1, max_size=3), label="rows")))
    idx, scale = projections.exact_kernel(lv)(xnp, a, lv)
    assert idx.shape == a.shape and scale.shape == (a.shape[0],) and np.all(scale >= 0)
    for row, i, s in zip(a, idx, scale, strict=True):
        d2 = sq(row - s * np.asarray(lv)[i])
        ref = brute_sq_distance(row, lv)
        assert abs(d2 - ref) <= tol(row) + 1e-9 * ref


# ---------------------------------------------------------------- F1-F3
# One test per set draws y once and checks every fact, so that each set gets
# the profile's full example count without paying hypothesis' overhead five times.


def check_f1(Q, y, p):
    """Cone orthogonality <y - P, P> = 0 and ||y||^2 = ||P||^2 + d^2 (free scale only)."""
    assert abs(float(np.dot(y - p, p))) <= 1e-9 * sq(y) + 1e-300
    assert abs(sq(y) - (sq(p) + Q.distance(y) ** 2)) <= 1e-9 * sq(y) + 1e-300


def check_f2(Q, y, p, k, c, perm):
    """Equivariance: positive scaling (free scale), negation, permutation."""
    atol = 1e-12 * float(np.abs(y).max())
    if Q.scale is None:
        # A power of two scales every float operation exactly, so P is scaled bit for bit.
        np.testing.assert_array_equal(Q.project(2.0**k * y), 2.0**k * p)
        # Any c > 0: the distance scales (the pattern may move between tied optima).
        assert Q.distance(c * y) == pytest.approx(c * Q.distance(y), rel=1e-9, abs=1e-9 * c * np.sqrt(sq(y)))
    pm = Q.project(-y)
    nz = y != 0
    np.testing.assert_array_equal(pm[nz], -p[nz])
    # sign(0) = +1: a zero entry projects the same way whatever the sign of the zero.
    np.testing.assert_array_equal(pm[~nz], p[~nz])
    np.testing.assert_allclose(Q.project(y[perm]), p[perm], rtol=1e-12, atol=atol)


def check_f3(Q, y, p):
    """Idempotence P(P(y)) = P(y)."""
    np.testing.assert_allclose(Q.project(p), p, rtol=1e-12, atol=1e-12 * float(np.abs(y).max()))
    assert Q.contains(p)


@pytest.mark.parametrize("spec", list(NAMED_SETS))
@given(data=st.data(), k=st.integers(-6, 6), c=st.floats(0.01, 100.0))
def test_facts_f1_f2_f3(spec, data, k, c):
    Q = brelax.get_set(spec)
    y = data.draw(vectors(FACT_N), label="y")
    perm = np.array(data.draw(st.permutations(range(y.shape[0])), label="perm"))
    p = Q.project(y)
    if Q.scale is None:
        check_f1(Q, y, p)
    check_f2(Q, y, p, k, c, perm)
    check_f3(Q, y, p)


@pytest.mark.parametrize("spec", FREE_SETS)
@pytest.mark.parametrize("k", [-1000, -600, 600, 1000])
def test_f2_scaling_at_the_ends_of_the_float64_range(spec, k):
    """Squares of such entries over- or underflow; the projection must not care."""
    Q = brelax.get_set(spec)
    rng = np.random.default_rng(abs(k))
    for y in (rng.standard_normal(40), np.array([3.0, 1.0, 1.0, 1.0, -0.5, 0.0]), np.array([1.0, 2.0])):
        c = 2.0**k
        np.testing.assert_array_equal(Q.project(c * y), c * Q.project(y))
        assert Q.distance(c * y) == pytest.approx(c * Q.distance(y), rel=1e-12)


def test_f1_fails_for_a_point_that_is_not_the_projection():
    """The F1 check has teeth: a wrongly scaled point of the cone violates it."""
    y = np.array([3.0, -1.0, 0.5, 2.0])
    p = brelax.ternary().project(y)
    with pytest.raises(AssertionError):
        check_f1(brelax.ternary(), y, 1.1 * p)


# ---------------------------------------------------------------- ties and edges


@pytest.mark.parametrize(
    "spec, y, expected",
    [
        ("ternary@1", [0.5, -0.5, 0.4999999, 1.5], [1, -1, 0, 1]),
        ("uniform:3@1", [0.5, 1.5, 2.5, -2.5, -1.5, 3.7], [1, 2, 3, -3, -2, 3]),
        ("levels:1,3@1", [2.0, -2.0, 1.9999, 0.0], [3, -3, 1, 1]),
        ("levels:0,1,3,7@2", [1.0, 4.0, 10.0, -10.0], [2, 6, 14, -14]),
    ],
)
def test_fixed_scale_midpoint_goes_to_the_larger_level(spec, y, expected):
    np.testing.assert_array_equal(brelax.get_set(spec).project(np.array(y)), np.array(expected, dtype=float))


def test_tied_patterns_keep_the_fewest_promoted_entries():
    # [3,1,1,1]: keeping 1 entry (9) ties keeping all 4 (6^2/4 = 9); the rule keeps the first.
    y = np.array([3.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(brelax.ternary().project(y), [3.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(brelax.ternary().project(-y[::-1]), [0.0, 0.0, 0.0, -3.0])
    # The generic sweep on {0, 1} applies the same rule.
    idx, scale = projections.level_sweep(xnp, y[None, :], (0.0, 1.0))
    np.testing.assert_array_equal(idx[0], [1, 0, 0, 0])
    assert scale[0] == 3.0
    # levels {1, 3}, y = [1, 1]: all at 1 (obj 2) ties all at 3 (6^2/18 = 2); the first, l_0, wins.
    qt = brelax.levels([1, 3]).quantize(np.array([1.0, 1.0]))
    assert [qt.table[c] for c in qt.codes] == [1.0, 1.0] and qt.scales[0] == 1.0


@pytest.mark.parametrize("spec", list(NAMED_SETS))
def test_zero_vector_goes_to_scale_zero_at_level_l0(spec):
    Q = brelax.get_set(spec)
    y = np.zeros(5)
    qt = Q.quantize(y)
    # Every entry at +l_0 (sign(0) = +1), and scale 0 unless the scale is fixed.
    assert [qt.table[c] for c in qt.codes] == [Q.levels[0]] * 5
    assert qt.scales[0] == (0.0 if Q.scale is None else Q.scale)
    np.testing.assert_array_equal(qt.dequantize(), np.full(5, Q.levels[0] * (Q.scale or 0.0)))
    expected = 0.0 if Q.levels[0] == 0 or Q.scale is None else Q.levels[0] * Q.scale * np.sqrt(5)
    assert Q.distance(y) == pytest.approx(expected, rel=1e-15, abs=0.0)


def test_sign_of_zero_is_plus_one():
    np.testing.assert_array_equal(brelax.binary().project(np.array([0.0, 2.0, -1.0])), [1.0, 1.0, -1.0])
    np.testing.assert_array_equal(brelax.binary(scale=0.5).project(np.array([-0.0, 0.0])), [0.5, 0.5])
    # levels {1, 3}: the zero entry takes +l_0 (a = 1.2, q = [1, -3]).
    np.testing.assert_allclose(brelax.levels([1, 3]).project(np.array([0.0, -4.0])), [1.2, -3.6], rtol=1e-15)
    np.testing.assert_allclose(brelax.levels([1, 3]).project(np.array([-0.0, 4.0])), [1.2, 3.6], rtol=1e-15)


@pytest.mark.parametrize("spec", FREE_SETS)
@pytest.mark.parametrize("c", [1.0, 0.1, 3.7e5])
def test_all_equal_magnitudes_are_in_the_set(spec, c):
    y = c * np.array([1.0, -1.0, 1.0, 1.0, -1.0, -1.0, 1.0])
    Q = brelax.get_set(spec)
    np.testing.assert_allclose(Q.project(y), y, rtol=1e-14)
    assert Q.distance(y) <= 1e-14 * c


@pytest.mark.parametrize("spec", FREE_SETS)
@pytest.mark.parametrize("x", [-2.5, 0.3, 7.0, 0.0])
def test_single_element_free_scale_is_itself(spec, x):
    np.testing.assert_allclose(brelax.get_set(spec).project(np.array([x])), [x], rtol=1e-15)


def test_single_element_fixed_scale_is_nearest_level():
    Q = brelax.uniform(3, scale=0.5)
    assert Q.project(np.array([0.8])).tolist() == [1.0]
    assert Q.project(np.array([[-9.0]])).tolist() == [[-1.5]]
    assert Q.project(np.array(0.3)).shape == ()


@pytest.mark.parametrize("spec", list(NAMED_SETS))
def test_deterministic_bit_for_bit(spec):
    Q = brelax.get_set(spec)
    w = np.random.default_rng(7).standard_normal((16, 12))
    first = Q.quantize(w, axis=0)
    for _ in range(2):
        again = Q.quantize(w, axis=0)
        np.testing.assert_array_equal(again.codes, first.codes)
        np.testing.assert_array_equal(again.scales, first.scales)


def test_ten_million_entries_ternary_and_binary():
    w = np.random.default_rng(0).standard_normal(10**7, dtype=np.float32)
    w64 = w.astype(np.float64)
    for Q in (brelax.ternary(), brelax.binary()):
        p = Q.project(w)
        assert p.shape == w.shape and p.dtype == np.float32
        p64 = p.astype(np.float64)
        r = w64 - p64
        # F1 up to the float32 rounding of P(w).
        assert abs(float(r @ p64)) <= 1e-6 * float(w64 @ w64)
        assert abs(float(w64 @ w64) - float(p64 @ p64) - float(r @ r)) <= 1e-6 * float(w64 @ w64)


# ---------------------------------------------------------------- dtypes and names


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("spec", list(NAMED_SETS))
def test_dtype_preserved_and_equal_to_float64_cast_down(spec, dtype):
    Q = brelax.get_set(spec)
    w = (np.random.default_rng(3).standard_normal((6, 20)) * 4).astype(dtype)
    for kw in ({}, {"axis": 1}, {"group_size": 8}):
        p = Q.project(w, **kw)
        assert p.dtype == dtype and p.shape == w.shape
        # The computation runs in float64 on the exactly widened input.
        np.testing.assert_array_equal(p, Q.project(w.astype(np.float64), **kw).astype(dtype))
        assert isinstance(Q.distance(w, **kw), float)


@given(values=LEVEL_SETS, scale=st.one_of(st.none(), st.floats(0.05, 20.0)))
def test_name_parses_back_to_an_equal_set(values, scale):
    Q = brelax.levels(values, scale=scale)
    assert brelax.get_set(Q.name) == Q
    for spec in NAMED_SETS:
        assert brelax.get_set(brelax.get_set(spec).name) == brelax.get_set(spec)
