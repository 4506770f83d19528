"""The fast kernels of brelax.fast agree with the reference kernels of brelax.projections.

Same minimum distance on every input (to 1e-12 of ||y||^2), and the same
pattern whenever no other candidate pattern's objective is within rounding of
the best one (a near tie, where both kernels are optimal and may pick
differently). The candidate objectives for that check are enumerated here
directly from the definition, independently of both kernels.
"""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import numpy as xnp
from hypothesis import given, settings
from hypothesis import strategies as st

import brelax
from brelax import fast, fast_levels, projections

# Overflow, underflow or invalid values inside a kernel are bugs, not noise.
pytestmark = pytest.mark.filterwarnings("error")

TERNARY = [(0.0, 1.0), (0.0, 0.75)]
LEVEL_SETS = [
    (0.0, 1.0, 2.0, 3.0),
    (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0),
    (1.0, 3.0),
    (0.0, 1.0, 3.0, 7.0),
    (0.0, 1.0, 2.0),
    (0.5, 1.0, 4.0),
]
KINDS = (
    "gauss",
    "student",
    "exponential",
    "small_ints",
    "few_values",
    "sparse",
    "float32",
    "wide_range",
    "two_clusters",
    "outlier",
    "constant",
    "zeros",
)


def magnitudes(kind: str, G: int, n: int, seed: int) -> np.ndarray:
    """A (G, n) float64 array of magnitudes of the given kind (ties, heavy tails, zeros, ...)."""
    rng = np.random.default_rng(seed)
    shape = (G, n)
    if kind == "gauss":
        a = rng.standard_normal(shape)
    elif kind == "student":
        a = rng.standard_t(rng.uniform(0.8, 3.0), shape)
    elif kind == "exponential":
        a = rng.exponential(size=shape) ** rng.uniform(0.5, 3.0)
    elif kind == "small_ints":
        a = rng.integers(0, 5, shape).astype(np.float64)
    elif kind == "few_values":
        a = rng.choice(rng.uniform(0.1, 2.0, 3), shape)
    elif kind == "sparse":
        a = rng.standard_normal(shape) * (rng.random(shape) < 0.1)
    elif kind == "float32":
        a = rng.standard_normal(shape).astype(np.float32).astype(np.float64)
    elif kind == "wide_range":
        a = rng.uniform(1, 2, shape) * 2.0 ** rng.integers(-60, 60, shape)
    elif kind == "two_clusters":
        # Two clusters whose "keep the top one" and "keep both" objectives nearly tie.
        k = rng.integers(1, n + 1, size=(G, 1))
        top = np.arange(n)[None, :] < k
        x = 1.0 + 1e-7 * rng.standard_normal(shape)
        y = (np.sqrt(k * (k + (n - k))) - k) / np.maximum(n - k, 1) * (1.0 + 1e-7 * rng.standard_normal(shape))
        a = rng.permuted(np.where(top, x, y), axis=1)
    elif kind == "outlier":
        a = rng.standard_normal(shape)
        a[:, rng.integers(0, n)] = 10.0 ** rng.uniform(0, 6)
    elif kind == "constant":
        a = np.full(shape, rng.uniform(0.1, 10.0))
    else:
        a = np.zeros(shape)
        a[rng.random(G) < 0.5] = rng.standard_normal(n)
    return np.abs(a)


@st.composite
def cases(draw, max_n=3000):
    kind = draw(st.sampled_from(KINDS), label="kind")
    G = draw(st.integers(1, 4), label="G")
    n = draw(st.one_of(st.integers(1, 12), st.integers(13, max_n)), label="n")
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    return magnitudes(kind, G, n, seed)


def sq_distance(a, idx, scale, levels) -> np.ndarray:
    """Per row ``||a - scale * L[idx]||^2`` in float64."""
    q = np.asarray(levels, dtype=np.float64)[idx]
    return np.sum((a - scale[:, None] * q) ** 2, axis=1)


def candidate_objectives(row, levels):
    """Objective ``S^2/N`` of every sweep candidate of one row, best threshold first, and the thresholds.

    The candidates are ``v = +inf`` and every distinct key ``v = row_i / m_j``;
    the state at ``v`` puts entry ``i`` at level ``#{j : row_i / m_j >= v}``,
    so ``S(v) = l_0 sum(row) + sum_j (l_{j+1} - l_j) sum{row_i : row_i / m_j >= v}``
    and ``N(v) = n l_0^2 + sum_j (l_{j+1}^2 - l_j^2) #{i : row_i / m_j >= v}``.
    """
    lv = np.asarray(levels, dtype=np.float64)
    mids = (lv[:-1] + lv[1:]) / 2
    keys = np.sort(row[None, :] / mids[:, None], axis=1)  # ascending per level
    vs = np.concatenate(([np.inf], np.unique(keys)[::-1]))
    order = np.argsort(row / mids[0], kind="stable")  # keys of every level sort like row
    tail = np.concatenate((np.cumsum(row[order][::-1])[::-1], [0.0]))  # tail[p] = sum of the top n - p
    S = np.full(vs.shape, lv[0] * row.sum())
    N = np.full(vs.shape, row.size * lv[0] ** 2)
    for j in range(mids.size):
        p = np.searchsorted(keys[j], vs, side="left")  # the keys >= v are keys[j][p:]
        S += (lv[j + 1] - lv[j]) * tail[p]
        N += (lv[j + 1] ** 2 - lv[j] ** 2) * (row.size - p)
    return np.where(N > 0, S * S / np.where(N > 0, N, 1.0), 0.0), vs


def near_tie(row, levels, rel=1e-9) -> bool:
    """Whether another candidate pattern's objective is within ``rel`` of the best one."""
    obj, _ = candidate_objectives(row, levels)
    return int(np.sum(obj >= obj.max() * (1 - rel))) > 1


def assert_same_projection(a, ref, got, levels):
    (i_ref, s_ref), (i_got, s_got) = ref, got
    assert i_got.shape == a.shape and i_got.dtype == np.int64
    assert s_got.shape == (a.shape[0],) and s_got.dtype == np.float64
    assert np.all(s_got >= 0)
    d_ref = sq_distance(a, i_ref, s_ref, levels)
    d_got = sq_distance(a, i_got, s_got, levels)
    norm2 = np.sum(a * a, axis=1)
    assert np.all(np.abs(d_got - d_ref) <= 1e-12 * norm2 + 1e-300), (d_ref, d_got)
    for g in range(a.shape[0]):
        if not np.array_equal(i_got[g], i_ref[g]):
            assert near_tie(a[g], levels), (a[g], i_ref[g], i_got[g])


# ------------------------------------------------------------------ ternary


@pytest.mark.parametrize("levels", TERNARY)
@given(a=cases())
def test_ternary_hist_matches_sort_reference(levels, a):
    ref = projections.ternary_sort(xnp, a, levels)
    assert_same_projection(a, ref, fast.ternary_hist(xnp, a, levels), levels)


@given(a=cases())
def test_ternary_hist_on_float32_magnitudes(a):
    a32 = a.astype(np.float32)
    ref = projections.ternary_sort(xnp, a32.astype(np.float64), (0.0, 1.0))
    got = fast.ternary_hist(xnp, a32, (0.0, 1.0))
    assert_same_projection(a32.astype(np.float64), ref, got, (0.0, 1.0))


@pytest.mark.parametrize("n", [1, 2, 3, 257])
def test_ternary_hist_tiny_and_degenerate_rows(n):
    a = np.stack([np.zeros(n), np.ones(n), np.arange(n, dtype=np.float64), np.full(n, 5e-100)])
    idx, scale = fast.ternary_hist(xnp, a, (0.0, 1.0))
    assert np.all(idx[0] == 0) and scale[0] == 0.0  # the zero row: scale 0, nothing kept
    assert np.all(idx[1] == 1) and scale[1] == 1.0  # all equal: keep everything at scale 1
    assert_same_projection(a, projections.ternary_sort(xnp, a, (0.0, 1.0)), (idx, scale), (0.0, 1.0))


def test_ternary_hist_per_channel_equals_row_by_row():
    a = magnitudes("student", 64, 300, seed=3)
    idx, scale = fast.ternary_hist(xnp, a, (0.0, 1.0))
    for g in (0, 17, 63):
        i1, s1 = fast.ternary_hist(xnp, a[g : g + 1], (0.0, 1.0))
        assert np.array_equal(idx[g], i1[0]) and scale[g] == s1[0]


def test_ternary_hist_large_gaussian_same_pattern():
    a = magnitudes("gauss", 1, 200_000, seed=5)
    ref = projections.ternary_sort(xnp, a, (0.0, 1.0))
    got = fast.ternary_hist(xnp, a, (0.0, 1.0))
    assert np.array_equal(ref[0], got[0])
    assert abs(ref[1][0] - got[1][0]) <= 1e-12 * ref[1][0]


# --------------------------------------------------------------- level sets


@pytest.mark.parametrize("levels", LEVEL_SETS)
@given(a=cases(max_n=1500))
def test_level_refine_matches_sweep_reference(levels, a):
    ref = projections.level_sweep(xnp, a, levels)
    assert_same_projection(a, ref, fast.level_refine(xnp, a, levels), levels)


@pytest.mark.parametrize("levels", LEVEL_SETS[:3])
@given(a=cases(max_n=400))
def test_level_refine_on_float32_magnitudes(levels, a):
    a32 = a.astype(np.float32)
    ref = projections.level_sweep(xnp, a32.astype(np.float64), levels)
    got = fast.level_refine(xnp, a32, levels)
    assert_same_projection(a32.astype(np.float64), ref, got, levels)


@pytest.mark.parametrize("levels", LEVEL_SETS)
@given(a=cases(max_n=1500), block=st.sampled_from([1, 100, 1 << 18]))
def test_sweep_rows_matches_sweep_reference(levels, a, block):
    """The all-rows sweep (sorted runs merged, blocks of rows) against the reference, blocks of any size."""
    ref = projections.level_sweep(xnp, a, levels)
    got = fast_levels.sweep_rows(a, levels, block_keys=block)
    assert_same_projection(a, ref, got, levels)
    same = np.all(got[0] == ref[0], axis=1)
    # same pattern: the same scale <|y|, q> / ||q||^2, summed in another order (S / N of the sweep)
    np.testing.assert_allclose(got[1][same], ref[1][same], rtol=1e-12)


def test_level_kernel_routes_by_row_length(monkeypatch):
    calls = []
    monkeypatch.setattr(fast_levels, "level_refine", lambda xp, a, lv: calls.append(a.shape) or (None, None))
    lv = (0.0, 1.0, 2.0, 3.0)
    long_rows = magnitudes("gauss", 2, fast_levels.MIN_KEYS_PER_ROW // 3 + 1, seed=1)
    fast_levels.level_kernel(xnp, long_rows, lv)
    assert calls == [long_rows.shape]
    wide = magnitudes("gauss", 1, fast_levels.MIN_KEYS_PER_ROW // (fast_levels.MAX_STEPS + 1) + 1, seed=1)
    fast_levels.level_kernel(xnp, wide, tuple(range(fast_levels.MAX_STEPS + 2)))  # many levels: pruned too
    assert calls == [long_rows.shape, wide.shape]
    short = magnitudes("gauss", 5, 100, seed=1).astype(np.float32)
    idx, scale = fast_levels.level_kernel(xnp, short, lv)  # the all-rows sweep (sweep_rows), on float64
    ref = projections.level_sweep(xnp, short.astype(np.float64), lv)
    assert np.array_equal(idx, ref[0])
    np.testing.assert_allclose(scale, ref[1], rtol=1e-12)


WIDE_SETS = [tuple(float(v) for v in range(64)), (0.0, 0.5) + tuple(float(v) for v in range(1, 40)) + (100.0,)]


@pytest.mark.parametrize("levels", WIDE_SETS)
@settings(max_examples=40)
@given(a=cases(max_n=300))
def test_many_levels_value_space_search_matches_sweep_reference(levels, a):
    """More than MAX_STEPS steps: the value-space search (_best_key_wide), memory independent of K."""
    assert len(levels) - 1 > fast_levels.MAX_STEPS
    ref = projections.level_sweep(xnp, a, levels)
    assert_same_projection(a, ref, fast.level_refine(xnp, a, levels), levels)


def test_many_levels_memory_does_not_grow_with_levels():
    """uniform(8) and uniform(12) on 10^5 entries: the same bounded peak (the reference needed 9+ GB at 10^6)."""
    import tracemalloc

    a = magnitudes("gauss", 1, 100_000, seed=4)
    peaks = []
    for bits in (4, 8, 11):
        lv = tuple(float(v) for v in range(2 ** (bits - 1)))
        tracemalloc.start()
        fast_levels.level_kernel(xnp, a, lv)
        peaks.append(tracemalloc.get_traced_memory()[1] / a.size)
        tracemalloc.stop()
    assert max(peaks) <= 64, peaks


def test_level_refine_ternary_levels_agree_with_ternary_kernels():
    a = magnitudes("exponential", 3, 500, seed=11)
    i1, s1 = fast.level_refine(xnp, a, (0.0, 1.0))
    i2, s2 = fast.ternary_hist(xnp, a, (0.0, 1.0))
    assert np.array_equal(i1, i2) and np.allclose(s1, s2, rtol=1e-13, atol=0)


def test_level_refine_zero_row_and_single_entry():
    a = np.array([[0.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 3.0, 2.0]])
    idx, scale = fast.level_refine(xnp, a, (0.0, 1.0, 2.0, 3.0))
    assert np.all(idx[0] == 0) and scale[0] == 0.0
    one = fast.level_refine(xnp, np.array([[4.0]]), (1.0, 3.0))
    assert one[0].shape == (1, 1) and sq_distance(np.array([[4.0]]), *one, (1.0, 3.0))[0] == 0.0
    assert_same_projection(a, projections.level_sweep(xnp, a, (0.0, 1.0, 2.0, 3.0)), (idx, scale), (0.0, 1.0, 2.0, 3.0))


def test_candidate_enumeration_is_the_sweep():
    # The helper that decides near ties must itself find the reference optimum.
    a = magnitudes("gauss", 1, 40, seed=2)
    for levels in LEVEL_SETS:
        obj, vs = candidate_objectives(a[0], levels)
        idx, scale = projections.level_sweep(xnp, a, levels)
        mids = (np.asarray(levels)[:-1] + np.asarray(levels)[1:]) / 2
        state = (a[0][:, None] / mids[None, :] >= vs[int(np.argmax(obj))]).sum(axis=1)
        assert np.array_equal(state, idx[0])
        assert np.isclose(obj.max(), np.sum(a * a) - sq_distance(a, idx, scale, levels)[0], rtol=1e-12)


# ------------------------------------------------ the NumPy fast path of QuantSet


@pytest.mark.parametrize("spec", ["ternary", "uniform:3", "levels:1,3", "levels:0,1,3,7"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(a=cases(max_n=300), sign_seed=st.integers(0, 2**32 - 1))
def test_signed_codes_and_lookup_match_quantset(spec, dtype, a, sign_seed):
    Q = brelax.get_set(spec)
    signs = np.random.default_rng(sign_seed).choice([-1.0, 1.0], a.shape)
    g = (signs * a).astype(dtype)  # zeros keep a random sign: -0.0 must code as non-negative
    qt = Q.quantize(g, axis=0)  # the reference path: one scale per row
    codes, scales = fast.signed_codes(g, Q.levels)
    assert codes.dtype == qt.codes.dtype and codes.shape == g.shape
    g64 = g.astype(np.float64)
    table = np.asarray(Q.table)
    d_fast = np.sum((g64 - scales[:, None] * table[codes]) ** 2, axis=1)
    d_ref = np.sum((g64 - qt.scales[:, None] * table[qt.codes]) ** 2, axis=1)
    assert np.all(np.abs(d_fast - d_ref) <= 1e-12 * np.sum(g64 * g64, axis=1) + 1e-300)
    for r in range(g.shape[0]):
        if np.array_equal(codes[r], qt.codes[r]):
            assert np.isclose(scales[r], qt.scales[r], rtol=1e-12, atol=0)
        else:
            assert near_tie(np.abs(g64[r]), Q.levels), (spec, g[r], codes[r], qt.codes[r])
    # lookup is exactly dequantize, for any codes and scales.
    assert np.array_equal(fast.lookup(qt.codes, qt.scales, Q.table, g.dtype), qt.dequantize())
    assert fast.lookup(qt.codes, qt.scales, Q.table, g.dtype).dtype == g.dtype


def test_lookup_single_group_and_bad_input():
    codes = np.array([[0, 1, 2, 1]], dtype=np.int8)
    out = fast.lookup(codes, np.array([0.5]), (-1.0, 0.0, 1.0), np.float32)
    assert out.dtype == np.float32 and np.array_equal(out, [[-0.5, 0.0, 0.5, 0.0]])
    with pytest.raises(ValueError, match="g must be"):
        fast.signed_codes(np.ones(4), (0.0, 1.0))


# ----------------------------------------------------------------- dispatch


def test_fast_kernel_dispatch():
    assert fast.fast_kernel(xnp, (0.0, 1.0)) is fast.ternary_hist
    assert fast.fast_kernel(np, (0.0, 1.0)) is fast.ternary_hist
    assert fast.fast_kernel(xnp, (0.0, 1.0, 2.0, 3.0)) is fast.level_kernel
    assert fast.fast_kernel(xnp, (1.0, 3.0)) is fast.level_kernel
    assert fast.fast_kernel(xnp, (1.0,)) is None  # the closed form is already O(n)


def test_fast_kernel_is_numpy_only():
    import torch
    from array_api_compat import array_namespace

    assert fast.fast_kernel(array_namespace(torch.zeros(2)), (0.0, 1.0)) is None


def test_bad_shape_names_the_argument():
    with pytest.raises(ValueError, match="a must be a"):
        fast.ternary_hist(xnp, np.ones(3), (0.0, 1.0))
    with pytest.raises(ValueError, match="a must be a"):
        fast.level_refine(xnp, np.ones((2, 2, 2)), (0.0, 1.0, 2.0))


@pytest.mark.parametrize("spec", ["ternary", "uniform:3", "levels:1,3", "levels:0,1,3,7", "binary", "ternary@0.5"])
@pytest.mark.parametrize("kw", [{}, {"axis": 0}, {"axis": 1}, {"group_size": 24}])
def test_float32_fast_path_in_project_equals_the_float64_path(spec, kw):
    """QuantSet.quantize takes a NumPy float32 shortcut; it must give the float64 path's codes."""
    Q = brelax.get_set(spec)
    w = np.random.default_rng(7).standard_t(3, (6, 40)).astype(np.float32)
    fast_q = Q.quantize(w, **kw)
    ref_q = Q.quantize(w.astype(np.float64), **kw)
    assert np.array_equal(fast_q.codes, ref_q.codes)
    np.testing.assert_allclose(fast_q.scales, ref_q.scales, rtol=1e-12)
    got = Q.project(w, **kw)
    assert got.dtype == np.float32 and got.shape == w.shape
    np.testing.assert_allclose(got, ref_q.dequantize().astype(np.float32), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", [{}, {"axis": 0}, {"axis": 1}, {"group_size": 12}])
def test_numpy_binary_project_is_bitwise_quantize_dequantize(dtype, kw):
    """Q.project takes brelax.fast.binary_values for NumPy binary: quantize().dequantize(), bit for bit."""
    w = np.random.default_rng(3).standard_t(3, (24, 36)).astype(dtype)
    w[0, 0], w[5, 7], w[9] = -0.0, 0.0, 0.0  # sign(0) = +1, also for -0.0 and an all-zero row
    Q = brelax.levels([1.5])
    got = Q.project(w, **kw)
    ref = Q.quantize(w, **kw).dequantize()
    assert got.dtype == dtype and got.shape == w.shape
    assert np.array_equal(got, ref) and np.array_equal(np.signbit(got), np.signbit(ref))  # bitwise, -0.0 too
    assert got[0, 0] > 0 and got[5, 7] > 0 and not np.signbit(got[9]).any()
    g = w.reshape(w.shape[0], -1)
    values, scales = fast.binary_values(g, 1.5, chunk=50)  # one row at a time gives the same numbers
    again = Q.quantize(g, axis=0).dequantize()
    assert np.array_equal(values, again) and np.array_equal(np.signbit(values), np.signbit(again))
    np.testing.assert_array_equal(scales, Q.quantize(g, axis=0).scales)


def test_numpy_binary_project_still_refuses_non_finite_input():
    for bad in (np.nan, np.inf, -np.inf):
        w = np.ones((3, 4), dtype=np.float32)
        w[1, 2] = bad
        with pytest.raises(ValueError, match="NaN or inf"):
            brelax.binary().project(w, axis=0)
