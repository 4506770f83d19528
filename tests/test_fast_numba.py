"""The two backends of the fast ternary kernel, compiled (numba) and pure NumPy, give the same bits.

brelax.kernels picks the backend in one place: numba when installed (``brelax[fast]``, which ``all`` and so
CI install), else pure NumPy; ``BRELAX_KERNELS=numpy`` or ``kernels.use("numpy")`` forces the pure path.
The pure path is pinned to the reference kernels by tests/test_fast.py; here every compiled loop is pinned
to it bit for bit (thresholds, scales, values with their sign bits), and the fallback without numba is
run by hiding numba from the import system.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fast import KINDS, LEVEL_SETS, cases, magnitudes

import brelax
from brelax import fast, fast_levels, kernels, projections

pytestmark = pytest.mark.filterwarnings("error")
NUMBA = "numba" in kernels.available()


def signed(kind, G, n, seed, dtype):
    a = magnitudes(kind, G, n, seed)
    s = np.random.default_rng(seed + 1).choice([-1.0, 1.0], a.shape)
    g = (s * a).astype(dtype)
    if g.size > 2:
        g.reshape(-1)[[0, -1]] = [-0.0, 0.0]  # sign(0) = +1, also for -0.0
    return g


def both(fn):
    """``fn()`` under the pure NumPy backend and under numba."""
    with kernels.use("numpy"):
        pure = fn()
    with kernels.use("numba"):
        jit = fn()
    return pure, jit


def bits_equal(x, y) -> bool:
    x, y = np.asarray(x), np.asarray(y)
    return x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


def test_numba_is_installed_where_ci_runs():
    """`all` installs the `fast` extra, so the compiled path is what CI tests against the pure one."""
    assert NUMBA, "numba missing: pip install -e '.[all]' (the `fast` extra) so that both backends are tested"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=60)
@given(
    kind=st.sampled_from(KINDS),
    G=st.integers(1, 5),
    n=st.one_of(st.integers(1, 12), st.integers(13, 4000)),
    seed=st.integers(0, 2**31),
)
def test_compiled_ternary_is_bitwise_the_pure_path(dtype, kind, G, n, seed):
    g = signed(kind, G, n, seed, dtype)
    (t0, s0), (t1, s1) = both(lambda: fast.signed_threshold(g, 0.75))
    assert bits_equal(t0, t1) and bits_equal(s0, s1)
    (v0, sc0, _), (v1, sc1, _) = both(lambda: fast.ternary_values(g, 0.75))
    assert bits_equal(v0, v1) and bits_equal(sc0, sc1)  # -0.0 against +0.0 would differ here
    # ... and both are the reference projection's values, dequantized from its codes and scales.
    ref = brelax.levels([0.0, 0.75]).quantize(g.astype(np.float64), axis=0)
    np.testing.assert_allclose(sc0, ref.scales, rtol=1e-12)


@pytest.mark.parametrize("levels", LEVEL_SETS)
@settings(max_examples=40)
@given(a=cases(max_n=1500))
def test_compiled_level_sweep_is_bitwise_the_pure_path(levels, a):
    """brelax.fast_levels.sweep_rows: the merged runs of keys swept in compiled code, or in NumPy arrays."""
    (i0, s0), (i1, s1) = both(lambda: fast_levels.sweep_rows(a, levels))
    assert bits_equal(i0, i1) and bits_equal(s0, s1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_rows_blocked_histogram_is_bitwise(dtype):
    """Rows longer than one histogram block (2^16 entries): block sums added in block order, on both paths."""
    g = signed("student", 2, 3 * 2**16 + 123, 4, dtype)
    (t0, s0), (t1, s1) = both(lambda: fast.signed_threshold(g, 1.0))
    assert bits_equal(t0, t1) and bits_equal(s0, s1)
    (v0, *_), (v1, *_) = both(lambda: brelax.ternary().project(g))
    assert bits_equal(v0, v1)


@pytest.mark.parametrize("backend", kernels.BACKENDS)
@pytest.mark.parametrize("kw", [{}, {"axis": 0}, {"axis": 1}, {"group_size": 12}])
def test_project_is_quantize_dequantize_on_every_backend(backend, kw):
    w = np.random.default_rng(1).standard_t(3, (24, 36)).astype(np.float32)
    w[0, 0], w[3, 3] = -0.0, 0.0
    with kernels.use(backend):
        got = brelax.ternary().project(w, **kw)
        ref = brelax.ternary().quantize(w, **kw).dequantize()
        t = brelax.ternary().project(torch.from_numpy(w), **kw)
    assert bits_equal(got, ref) and bits_equal(t.numpy(), got)


@pytest.mark.parametrize("backend", kernels.BACKENDS)
def test_non_finite_input_is_refused_on_every_backend(backend):
    for bad in (np.nan, np.inf):
        w = np.ones((3, 5), dtype=np.float32)
        w[1, 2] = bad
        with kernels.use(backend):
            assert fast.ternary_values(w, 1.0) is None
            with pytest.raises(ValueError, match="NaN or inf"):
                brelax.ternary().project(w, axis=0)
            with pytest.raises(ValueError, match="NaN or inf"):
                brelax.ternary().project(torch.from_numpy(w), axis=0)


def test_without_numba_the_pure_path_runs(monkeypatch):
    """numba absent (hidden from importlib): the package imports and projects with the pure NumPy passes."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "numba" else real(name, *a))
    monkeypatch.setattr(kernels, "_jit", None)
    monkeypatch.setattr(kernels, "_available", None)
    monkeypatch.delenv(kernels.ENV, raising=False)
    assert kernels.available() == ("numpy",) and kernels.backend() == "numpy" and kernels.compiled() is None
    with pytest.raises(ValueError, match="not installed"), kernels.use("numba"):
        pass
    monkeypatch.setenv(kernels.ENV, "numba")
    with pytest.raises(ValueError, match="not installed"):
        kernels.backend()
    monkeypatch.delenv(kernels.ENV)
    w = np.random.default_rng(2).standard_normal((8, 100)).astype(np.float32)
    got = brelax.ternary().project(w, axis=0)
    ref = brelax.ternary().quantize(w.astype(np.float64), axis=0).dequantize().astype(np.float32)
    np.testing.assert_array_equal(got, ref)


def test_a_numba_that_fails_to_import_falls_back_with_a_warning(monkeypatch):
    import sys

    monkeypatch.setattr(kernels, "_jit", None)
    monkeypatch.setattr(kernels, "_available", ("numba", "numpy"))
    monkeypatch.delenv(kernels.ENV, raising=False)
    monkeypatch.setitem(sys.modules, "brelax.fast_numba", None)  # importing it raises ImportError
    with pytest.warns(UserWarning, match="pure NumPy kernels run instead"):
        assert kernels.compiled() is None
    assert kernels.available() == ("numpy",) and kernels.backend() == "numpy"
    w = np.random.default_rng(5).standard_normal((4, 50)).astype(np.float32)
    np.testing.assert_array_equal(
        brelax.ternary().project(w, axis=0), brelax.ternary().quantize(w, axis=0).dequantize()
    )
    monkeypatch.setattr(kernels, "_available", ("numba", "numpy"))
    monkeypatch.setenv(kernels.ENV, "numba")
    with pytest.raises(ImportError):
        kernels.compiled()


def test_backend_from_the_environment(monkeypatch):
    monkeypatch.setenv(kernels.ENV, "numpy")
    assert kernels.backend() == "numpy" and kernels.compiled() is None
    monkeypatch.setenv(kernels.ENV, "fortran")
    with pytest.raises(ValueError, match="BRELAX_KERNELS='fortran'"):
        kernels.backend()
    with pytest.raises(ValueError, match="backend must be one of"), kernels.use("fortran"):
        pass


def test_one_table_picks_every_kernel():
    assert kernels.set_kind((1.0,)) == "binary"
    assert kernels.set_kind((0.0, 1.0)) == "ternary"
    assert kernels.set_kind((1.0, 3.0)) == kernels.set_kind((0.0, 1.0, 2.0)) == "levels"
    assert projections.exact_kernel((1.0,)) is projections.single_level
    assert projections.exact_kernel((0.0, 2.0)) is projections.ternary_sort
    assert projections.exact_kernel((0.0, 1.0, 2.0)) is projections.level_sweep_bounded
    assert kernels.kernel((0.0, 1.0), "numpy_values") is fast.ternary_values
    assert kernels.kernel((1.0,), "numpy_values") is fast.binary_values
    assert kernels.kernel((1.0, 3.0), "numpy_values") is None
    assert set(kernels.TABLE) == {"binary", "ternary", "levels"}
