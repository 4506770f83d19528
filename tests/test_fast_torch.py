"""The torch fast path (brelax.fast_torch) agrees with the reference kernels, on every device present.

Same codes as the reference (the torch reference path of ``QuantSet.quantize``,
reached by turning the fast path off), or, where they differ, the same
minimum distance and a near tie between the two patterns (decided from the
candidate objectives enumerated in tests/test_fast.py). Values are exactly
``dtype(scale * table[code])`` of the returned codes and scales.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fast import cases, magnitudes, near_tie

import brelax
from brelax import fast_torch, projections

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SPECS = ["binary", "ternary", "uniform:3", "levels:1,3", "levels:0,1,3,7"]


def reference(Q, w, **kw):
    """``Q.quantize`` with the torch fast path turned off: the array-API reference kernels."""
    orig = fast_torch.quantize
    fast_torch.quantize = lambda g, levels: None
    try:
        return Q.quantize(w, **kw)
    finally:
        fast_torch.quantize = orig


def check_against_reference(Q, w, **kw):
    got = Q.quantize(w, **kw)
    ref = reference(Q, w, **kw)
    values = got.dequantize()
    assert values.dtype == w.dtype and values.shape == w.shape and values.device == w.device
    assert got.codes.dtype == ref.codes.dtype and got.codes.shape == ref.codes.shape
    assert got.scales.dtype == torch.float64 and got.scales.device == w.device
    # Values are exactly dtype(scale * table[code]) of the returned codes and scales.
    again = brelax.sets.QuantizedTensor(
        got.codes, got.scales, got.table, got.shape, got.axis, got.group_size, got.dtype
    )
    assert torch.equal(values, again.dequantize())
    w64 = w.double().cpu()
    d_got = float(((w64 - values.double().cpu()) ** 2).sum())
    d_ref = float(((w64 - ref.dequantize().double().cpu()) ** 2).sum())
    tol = 1e-6 if w.dtype == torch.float64 else 1e-5  # float32/16 values round at 2^-24 / 2^-11 relative
    assert abs(d_got - d_ref) <= tol * float((w64 * w64).sum()) + 1e-300, (d_got, d_ref)
    if torch.equal(got.codes.cpu(), ref.codes.cpu()):
        torch.testing.assert_close(got.scales.cpu(), ref.scales.cpu(), rtol=1e-6, atol=0)
        return
    # Different codes: only where two patterns tie (to rounding) in some scale group.
    gg = brelax.sets.to_groups(brelax.sets.namespace(w64, "w"), w64, got.axis, got.group_size).numpy()
    cg = brelax.sets.to_groups(brelax.sets.namespace(w64, "w"), got.codes.cpu(), got.axis, got.group_size)
    cr = brelax.sets.to_groups(brelax.sets.namespace(w64, "w"), ref.codes.cpu(), got.axis, got.group_size)
    for r in range(gg.shape[0]):
        if not torch.equal(cg[r], cr[r]):
            assert near_tie(np.abs(gg[r]), Q.levels, rel=1e-6), (Q.name, r)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@settings(max_examples=15)
@given(a=cases(max_n=600), sign_seed=st.integers(0, 2**32 - 1))
def test_fast_path_matches_reference_per_row(device, spec, dtype, a, sign_seed, torch_one_thread):
    Q = brelax.get_set(spec)
    signs = np.random.default_rng(sign_seed).choice([-1.0, 1.0], a.shape)
    w = torch.tensor(signs * a, dtype=dtype, device=device)
    if Q.levels[0] == 0 and len(Q.levels) > 2 and device != "cpu":
        assert fast_torch.quantize(w, Q.levels) is None  # the reference runs there
    check_against_reference(Q, w, axis=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("kw", [{}, {"axis": 1}, {"group_size": 24}])
def test_fast_path_every_granularity(device, spec, kw, torch_one_thread):
    Q = brelax.get_set(spec)
    w = torch.tensor(np.random.default_rng(3).standard_t(3, (6, 4, 10)), dtype=torch.float32, device=device)
    w[0, 0, 0], w[1, 1, 1] = -0.0, 0.0  # sign(0) = +1, also for -0.0
    check_against_reference(Q, w, **kw)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("spec", ["binary", "ternary", "uniform:3"])
def test_fast_path_half_precision(device, dtype, spec, torch_one_thread):
    Q = brelax.get_set(spec)
    w = torch.tensor(np.random.default_rng(5).standard_normal((8, 64)), dtype=dtype, device=device)
    check_against_reference(Q, w, axis=0)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_ternary_kernel_matches_sort_reference(device, torch_one_thread):
    """The device-agnostic ternary kernel (the CUDA path), run here on every device, on hard rows."""
    from array_api_compat import array_namespace

    for kind in ("gauss", "small_ints", "few_values", "two_clusters", "constant", "zeros", "wide_range", "outlier"):
        for dtype in (torch.float32, torch.float64):
            a = torch.tensor(magnitudes(kind, 5, 700, seed=11), dtype=dtype, device=device)
            thr, scale = fast_torch.ternary_threshold(a, 1.0)
            idx = (a >= thr.to(dtype)[:, None]).to(torch.int64)
            a64 = a.double()
            ri, rs = projections.ternary_sort(array_namespace(a64), a64, (0.0, 1.0))
            d_got = ((a64 - scale[:, None] * idx) ** 2).sum(1)
            d_ref = ((a64 - rs[:, None] * ri) ** 2).sum(1)
            assert torch.all((d_got - d_ref).abs() <= 1e-12 * (a64 * a64).sum(1) + 1e-300), (kind, dtype)
            for r in range(a.shape[0]):
                if not torch.equal(idx[r], ri[r]):
                    assert near_tie(a64[r].cpu().numpy(), (0.0, 1.0)), (kind, dtype, r)


def test_torch_ternary_kernel_large_row_same_pattern(torch_one_thread):
    a = torch.tensor(magnitudes("gauss", 2, 100_000, seed=5), dtype=torch.float32)
    thr, scale = fast_torch.ternary_threshold(a, 1.0)
    from brelax import fast

    t_np, s_np = fast.ternary_threshold(a.numpy(), (0.0, 1.0))
    assert torch.equal(thr, torch.from_numpy(t_np))
    torch.testing.assert_close(scale, torch.from_numpy(s_np), rtol=1e-12, atol=0)


def test_codes_are_lazy_and_guarded(torch_one_thread):
    Q = brelax.ternary()
    w = torch.randn(4, 50)
    qt = Q.quantize(w, axis=0)
    expected = reference(Q, w, axis=0).codes
    w.add_(1.0)  # modified in place before the codes were read
    with pytest.raises(RuntimeError, match="modified in place"):
        _ = qt.codes
    qt = Q.quantize(w, axis=0)
    c = qt.codes  # read first: then the input may change
    w.add_(1.0)
    assert torch.equal(qt.codes, c) and not torch.equal(c, expected)


def test_dequantize_twice_gives_the_same_values(torch_one_thread):
    w = torch.randn(3, 40)
    for spec in SPECS:
        qt = brelax.get_set(spec).quantize(w, axis=0)
        first = qt.dequantize().clone()
        assert torch.equal(qt.dequantize(), first)


def test_fast_path_keeps_autograd_out(torch_one_thread):
    w = torch.randn(4, 30, requires_grad=True)
    p = brelax.binary().project(w, axis=0)
    assert not p.requires_grad and torch.equal(p, reference(brelax.binary(), w.detach(), axis=0).dequantize())


def test_numpy_binary_fast_path_matches_float64_path():
    w = np.random.default_rng(2).standard_t(3, (16, 33)).astype(np.float32)
    w[0, 0] = -0.0
    for kw in ({}, {"axis": 0}, {"axis": 1}, {"group_size": 11}):
        got = brelax.binary().quantize(w, **kw)
        ref = brelax.binary().quantize(w.astype(np.float64), **kw)
        assert np.array_equal(got.codes, ref.codes) and got.codes.dtype == np.int8
        np.testing.assert_allclose(got.scales, ref.scales, rtol=1e-12)
        np.testing.assert_array_equal(got.dequantize(), ref.dequantize().astype(np.float32))
