"""Every call of the public API works on torch tensors: same values as NumPy,
identical codes, the input's dtype, torch tensors out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _exhaustive import NAMED_SETS, vectors
from hypothesis import given, settings

import brelax
from brelax import heuristics

pytestmark = pytest.mark.filterwarnings("error")

DTYPES = {"float64": (np.float64, torch.float64, 1e-12), "float32": (np.float32, torch.float32, 1e-6)}
GRANULARITY = [{}, {"axis": 0}, {"axis": -1}, {"group_size": 4}]
GRAN_IDS = ["tensor", "axis0", "axis-1", "group4"]


def weights(dtype, shape=(8, 12), seed=0):
    np_dtype, _torch_dtype, _ = DTYPES[dtype]
    w = (np.random.default_rng(seed).standard_normal(shape) * 3).astype(np_dtype)
    return w, torch.from_numpy(w.copy())


def assert_same(t, n, dtype, rtol=None):
    """``t`` is a torch tensor of the torch dtype matching ``n``, with the same values."""
    assert isinstance(t, torch.Tensor)
    assert t.dtype == torch.from_numpy(np.zeros(1, dtype=n.dtype)).dtype
    assert tuple(t.shape) == n.shape
    rtol = DTYPES[dtype][2] if rtol is None else rtol
    np.testing.assert_allclose(t.numpy(), n, rtol=rtol, atol=rtol * float(np.abs(n).max() or 1.0))


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("kw", GRANULARITY, ids=GRAN_IDS)
@pytest.mark.parametrize("spec", list(NAMED_SETS))
def test_project_quantize_distance_on_torch(spec, kw, dtype):
    Q = brelax.get_set(spec)
    w, t = weights(dtype)
    rtol = DTYPES[dtype][2]
    # project
    pn, pt = Q.project(w, **kw), Q.project(t, **kw)
    assert_same(pt, pn, dtype)
    # quantize: identical codes, scales within rtol, dequantize equals project
    qn, qt = Q.quantize(w, **kw), Q.quantize(t, **kw)
    assert isinstance(qt.codes, torch.Tensor) and qt.codes.dtype == torch.int8
    np.testing.assert_array_equal(qt.codes.numpy(), qn.codes)
    assert isinstance(qt.scales, torch.Tensor) and qt.scales.dtype == torch.float64
    np.testing.assert_allclose(qt.scales.numpy(), qn.scales, rtol=rtol)
    assert qt.table == qn.table
    deq = qt.dequantize()
    assert isinstance(deq, torch.Tensor) and deq.dtype == t.dtype
    assert torch.equal(deq, pt)
    assert qt.level_counts() == qn.level_counts()
    # distance and contains
    dn, dt = Q.distance(w, **kw), Q.distance(t, **kw)
    assert isinstance(dt, float) and dt == pytest.approx(dn, rel=rtol)
    assert Q.contains(pt, **kw) and Q.contains(pn, **kw)
    assert Q.contains(t, **kw) == Q.contains(w, **kw)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("spec", ["binary", "ternary", "uniform:3", "levels:1,3", "levels:0,1,3,7", "binary@1"])
def test_prox_relax_and_moreau_envelope_on_torch(spec, dtype):
    Q = brelax.get_set(spec)
    w, t = weights(dtype, seed=1)
    for lam in (0.0, 0.5, 7.0):
        for kw in GRANULARITY:
            assert_same(brelax.prox(t, Q, lam, **kw), brelax.prox(w, Q, lam, **kw), dtype)
        me_t, me_n = brelax.moreau_envelope(t, Q, lam), brelax.moreau_envelope(w, Q, lam)
        assert isinstance(me_t, float) and me_t == pytest.approx(me_n, rel=DTYPES[dtype][2])
    mu = 0.25
    assert_same(brelax.relax(t, Q.project(t), mu), brelax.relax(w, Q.project(w), mu), dtype)


HEURISTIC_CALLS = {
    "twn": heuristics.twn,
    "ternary_divide_by_n": heuristics.ternary_divide_by_n,
    "lloyd-ternary": lambda w, **kw: heuristics.lloyd(w, "ternary", **kw),
    "lloyd-uniform3": lambda w, **kw: heuristics.lloyd(w, brelax.uniform(3), **kw),
    "lloyd-levels13": lambda w, **kw: heuristics.lloyd(w, "levels:1,3", **kw),
    "greedy_residual": lambda w, **kw: heuristics.greedy_residual(w, 2, **kw),
}


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("name", list(HEURISTIC_CALLS))
def test_heuristics_on_torch(name, dtype):
    fn = HEURISTIC_CALLS[name]
    w, t = weights(dtype, seed=2)
    for kw in GRANULARITY:
        assert_same(fn(t, **kw), fn(w, **kw), dtype)


@pytest.mark.parametrize("spec", list(NAMED_SETS))
def test_float16_and_non_contiguous_tensors(spec):
    Q = brelax.get_set(spec)
    w = (np.random.default_rng(3).standard_normal((6, 10)) * 2).astype(np.float16)
    t = torch.from_numpy(w.copy())
    p16 = Q.project(t, axis=0)
    assert p16.dtype == torch.float16
    np.testing.assert_array_equal(p16.numpy(), Q.project(w, axis=0))
    # A transposed (non-contiguous) view gives the projection of the transposed array.
    t64 = torch.from_numpy(w.astype(np.float64)).T
    assert not t64.is_contiguous()
    np.testing.assert_array_equal(Q.project(t64, axis=1).numpy(), Q.project(w.astype(np.float64).T, axis=1))
    np.testing.assert_array_equal(
        Q.quantize(t64, group_size=5).codes.numpy(),
        Q.quantize(np.ascontiguousarray(w.astype(np.float64).T), group_size=5).codes,
    )


@pytest.mark.parametrize("spec", ["binary", "ternary", "uniform:3", "levels:1,3", "levels:0,1,3,7", "uniform:3@0.25"])
@settings(max_examples=60)  # small torch calls are slow; the deterministic tests above cover the API
@given(y=vectors(12))
def test_torch_matches_numpy_on_generated_inputs(spec, y):
    """Ties and zeros included: the tie rule is the same on both backends."""
    Q = brelax.get_set(spec)
    qn, qt = Q.quantize(y), Q.quantize(torch.from_numpy(y.copy()))
    np.testing.assert_array_equal(qt.codes.numpy(), qn.codes)
    np.testing.assert_allclose(qt.scales.numpy(), qn.scales, rtol=1e-12)


@pytest.mark.parametrize(
    "t, exc, match",
    [
        (torch.tensor([1.0, float("nan")]), ValueError, r"^w contains NaN or inf"),
        (torch.tensor([float("inf")], dtype=torch.float16), ValueError, r"^w contains NaN or inf"),
        (torch.tensor([1, 2]), TypeError, r"^w must have a real floating dtype"),
        (torch.zeros(0), ValueError, r"^w is empty"),
    ],
)
def test_bad_tensors_raise(t, exc, match):
    for call in (
        brelax.ternary().project,
        brelax.ternary().quantize,
        lambda x: brelax.prox(x, brelax.binary(), 1.0),
        heuristics.twn,
    ):
        with pytest.raises(exc, match=match):
            call(t)
    with pytest.raises(ValueError, match=r"^axis=1 is out of range"):
        brelax.ternary().project(torch.ones(3), axis=1)
    with pytest.raises(ValueError, match=r"^group_size=2 does not divide"):
        brelax.ternary().project(torch.ones(3), group_size=2)


@pytest.mark.parametrize("spec", ["binary", "ternary", "uniform:3", "levels:1,3"])
@settings(max_examples=60)
@given(y=vectors(40))
def test_torch_float32_matches_numpy_float32(spec, y):
    """NumPy float32 takes the fast path, torch float32 the reference kernels: same codes, scales to 1e-6."""
    Q = brelax.get_set(spec)
    y32 = y.astype(np.float32)
    qn, qt = Q.quantize(y32), Q.quantize(torch.from_numpy(y32.copy()))
    assert qt.codes.dtype == torch.int8 and qn.codes.dtype == np.int8
    np.testing.assert_array_equal(qt.codes.numpy(), qn.codes)
    np.testing.assert_allclose(qt.scales.numpy(), qn.scales, rtol=1e-6)
    p = Q.project(torch.from_numpy(y32.copy()))
    assert p.dtype == torch.float32
