"""Finite input gives finite output on every fast path, up to the largest floats (issue 19, item 2).

The row sums of the binary scale are float64 (brelax.fast.l1_row_sums): a
float32 row cannot overflow them, a float64 row can ([1e308, 1e308]) and is
summed again after a power-of-two rescale. These tests break if the sums are
taken in the input's dtype, or in float64 without the rescale.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import brelax
from brelax import fast, fast_torch, kernels

SPECS = ["binary", "ternary", "uniform:3", "levels:1,3"]


def test_two_largest_float64_project_to_themselves():
    w = np.array([1e308, 1e308])
    got = brelax.binary().project(w)
    assert np.array_equal(got, w)  # the mean of two equal entries is that entry
    q = brelax.binary().quantize(w)
    assert np.array_equal(q.dequantize(), got) and np.isfinite(q.scales).all()
    t = torch.tensor([[1e308, -1e308], [1.0, 3.0]], dtype=torch.float64)
    assert torch.equal(
        brelax.binary().project(t, axis=0), torch.tensor([[1e308, -1e308], [2.0, 2.0]], dtype=torch.float64)
    )


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@settings(max_examples=25)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 3000),
    frac=st.floats(0.5, 1.0),
)
def test_rows_near_the_largest_float_stay_finite(spec, dtype, backend, seed, n, frac):
    """Rows of magnitude up to the largest float (3.4e38 float32, 1.8e308 float64): finite values and scales.

    Binary and ternary values are means of magnitudes, at most the largest one. With more levels (smallest
    positive level 1, gaps at most 2) the scale is at most the largest magnitude and a value at most twice it,
    so those rows stay below half the largest float: the exact projection itself is representable.
    """
    Q = brelax.get_set(spec)
    bound = 1.0 if kernels.set_kind(Q.levels) in ("binary", "ternary") else 2.0
    big = float(np.finfo(dtype).max) * frac / bound
    rng = np.random.default_rng(seed)
    w = (rng.uniform(0.5, 1.0, (3, n)) * rng.choice([-1.0, 1.0], (3, n)) * big).astype(dtype)
    assert np.isfinite(w).all()
    x = torch.from_numpy(w) if backend == "torch" else w
    with np.errstate(all="raise"):
        p = Q.project(x, axis=0)
        q = Q.quantize(x, axis=0)
    p = p.numpy() if backend == "torch" else p
    scales = np.asarray(q.scales)
    assert np.isfinite(p).all() and np.isfinite(scales).all() and (scales > 0).all()
    top = np.abs(w).max(axis=1).astype(np.float64)
    assert (np.abs(p).max(axis=1) / bound <= top * (1 + 1e-6)).all()


@settings(max_examples=50)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 500), e=st.integers(-1000, 1023))
def test_l1_row_sums_are_the_float64_sums_or_their_rescaled_form(seed, n, e):
    """``l1_scales`` is the float64 mean where it is finite, and finite (within rounding of the mean) where not."""
    v = np.ldexp(np.random.default_rng(seed).uniform(0.5, 1.0, (2, n)), e)
    got = fast.l1_scales(v, 1.0)
    with np.errstate(over="ignore"):
        plain = np.add.reduce(v, axis=1, dtype=np.float64) / n
    assert np.isfinite(got).all()
    ok = np.isfinite(plain)
    assert np.array_equal(got[ok], plain[ok])  # bitwise the plain float64 sums when they do not overflow
    mean = np.exp2(e) * np.mean(np.ldexp(v, -e), axis=1)
    np.testing.assert_allclose(got, mean, rtol=1e-12)
    t = fast_torch._l1_scales(torch.from_numpy(v), 1.0)  # the path off the CPU
    np.testing.assert_allclose(t.numpy(), mean, rtol=1e-12)
    assert torch.isfinite(t).all()


def test_float32_rows_near_3e38_binary_on_the_device_path():
    """The non-CPU torch binary path (run here on CPU by calling it directly): float64 sums, no overflow."""
    g = torch.full((2, 4096), 3.0e38, dtype=torch.float32)
    g[1] *= -1
    sc = fast_torch._l1_scales(g.abs(), 1.0)
    assert torch.isfinite(sc).all() and torch.allclose(sc, torch.full((2,), 3.0e38, dtype=torch.float64), rtol=1e-7)


def test_non_finite_input_is_still_refused():
    w = np.array([[1e308, np.inf]])
    assert fast.l1_row_sums(np.abs(w)) is None
    with pytest.raises(ValueError, match="NaN or inf"):
        brelax.binary().project(w)
