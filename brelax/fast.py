r"""Fast exact kernels for NumPy: the same projections as :mod:`brelax.projections`, faster.

Both kernels have the signature of the reference kernels,
``kernel(xp, a, levels) -> (idx, scale)`` with ``a`` a ``(G, n)`` array of
magnitudes (float64, or float32: sums are always accumulated in float64) and
return the same minimum distance as the reference on every input.

* :func:`ternary_hist` -- ``L = {0, l_1}``, linear time in practice: a
  histogram of ``a`` by the bits of its floats gives bounds on the objective
  ``S_t^2 / t`` over every bin; only the bins that can still hold the optimum
  are sorted. Vectorised over the rows.
* :func:`level_refine` (in :mod:`brelax.fast_levels`) -- any other level set:
  one sort of ``|y|`` and the breakpoint sweep of :func:`level_sweep`
  evaluated only where interval bounds say the optimum can be, instead of a
  sort of all ``nK`` breakpoints. One row at a time.

**Tie rule.** The candidates and their order are those of the reference
(a pattern is a threshold; among equal objectives the largest threshold wins).
The objectives are the same numbers summed in a different order, so they
agree to a few ulps; on exact ties (integer-valued data, where every sum is
exact) the pattern is the reference's. Only when two different patterns have
objectives within rounding of each other can the two pick differently, and
then both are optimal to rounding.

Use :func:`fast_kernel` to get the kernel for a level set, or None where the
reference should run (another namespace than NumPy, or the closed-form binary).

**Range.** As for the reference kernels, the squares of the row sums must not
overflow or underflow float64: :class:`~brelax.sets.QuantSet` rescales rows
beyond ``2^±400`` before calling a kernel. float32 magnitudes never need it
(``S^2 <= (n 2^128)^2`` and ``>= 2^-298``).

:func:`signed_codes` and :func:`lookup` are the NumPy fast path of
``QuantSet.quantize`` / ``dequantize``: signed codes straight from the
thresholds in the input's dtype, and a per-group table lookup.
"""

from __future__ import annotations

import math

import numpy as np

from .fast_levels import _U, level_kernel, level_refine, level_theta, level_thresholds, levels_from_thresholds
from .fast_levels import magnitudes as _magnitudes

__all__ = [
    "binary_values",
    "fast_kernel",
    "l1_row_sums",
    "l1_scales",
    "level_kernel",
    "level_refine",
    "level_thresholds",
    "lookup",
    "signed_codes",
    "signed_threshold",
    "ternary_hist",
    "ternary_threshold",
    "ternary_values",
]


def fast_kernel(xp, levels):
    """The fast exact kernel for these non-negative levels, or None where the reference should run.

    Parameters
    ----------
    xp : array namespace
        Only NumPy (``array_api_compat.numpy`` or ``numpy``) has fast kernels.
    levels : sequence of float
        The non-negative levels ``l_0 < ... < l_K`` of the set.

    Returns
    -------
    callable or None
        :func:`ternary_hist` for ``{0, l_1}``, :func:`level_kernel` (the
        pruned sweep on long rows, the reference sweep on short ones) for every
        other set with two or more levels, None for one level (the closed
        form is already O(n)) or a non-NumPy namespace.
    """
    import array_api_compat

    from .kernels import kernel

    if not (xp is np or array_api_compat.is_numpy_namespace(xp)):
        return None
    return kernel(levels, "numpy")


def _bin_bits(n: int, R: int) -> int:
    """Bins per octave ``2^m``: fine enough that few entries survive the bounds, few
    enough that a block's bin counts (about ``_CHUNK / 16``) stay small next to its entries."""
    per_row = min(n, _CHUNK) / 16.0
    return int(min(11, max(2, math.floor(math.log2(max(per_row / R, 1.0))))))


def ternary_hist(xp, a, levels):
    r"""Exact projection for ``L = {0, l_1}`` by histogram bounds, O(n) passes plus a small sort.

    The problem per row is ``max_t S_t^2 / t`` over the candidates ``t`` of
    :func:`~brelax.projections.ternary_sort` (``S_t`` the sum of the ``t``
    largest magnitudes, ``t`` a strict drop of the sorted magnitudes).

    **Bins.** Non-negative floats order like their bit patterns, so
    ``b(v) = (bits(max(v, f)) - bits(f)) >> sh`` is a non-decreasing bin index
    whose bins are value intervals ``[e_b, e_{b+1})`` of relative width
    ``2^-m`` (``f = max 2^-R`` is a floor, bin 0 is ``[0, e_1)``). One pass
    gives each bin its count ``n_b`` and exact float64 sum ``Σ_b``, and
    cumulative sums give ``C_b, A_b``: the count and sum of all bins above b.
    (R and m only set the speed: ``f`` about half the lower bound ``tau_lo``
    below, about ``min(n, 2^16) / 16`` bins per row.)

    **Bounds.** A candidate whose threshold (smallest kept value) lies in bin
    ``b`` keeps all bins above ``b`` and the top ``k`` entries of bin ``b``,
    ``1 <= k <= n_b``; their sum ``T_k`` obeys ``T_k <= k hi_b`` and
    ``T_k <= Σ_b - (n_b - k) lo_b`` (the others are ``>= lo_b``), with
    ``hi_b = min(e_{b+1}, max)``. The first bound is tighter for
    ``k <= k_0 = (Σ_b - n_b lo_b) / (hi_b - lo_b)``. Each piece
    ``g(k) = (P + k h)^2 / (C + k)`` (``P, h >= 0``) has derivative of the
    sign of ``(2hC - P) + hk``, increasing in k, so its maximum over an
    interval of real ``k`` is at an endpoint. Hence every candidate in bin
    ``b`` has objective at most

    .. math::  U_b = \max(g_1(1),\ g_1(k_0),\ (A_b + Σ_b)^2 / (C_b + n_b)),
               \quad g_1(k) = (A_b + k\,hi_b)^2 / (C_b + k).

    The last term is itself a candidate: keeping all bins ``>= b`` is a strict
    drop, since lower bins hold strictly smaller values. So
    ``L = max_b (A_b + Σ_b)^2 / (C_b + n_b)`` is attained, and **a bin with
    ``U_b < L`` cannot hold the optimal threshold**. Bins with
    ``hi_b < tau_lo = max(mean / 2, max / (2 sqrt n))`` cannot either: at the
    optimum ``a* = S/t``, every kept entry is ``>= a*/2`` (dropping one below
    ``a*/2`` would lower the distance), and the objective ``a*^2 t*`` is at
    least that of two candidates, keeping everything (``S_n^2 / n``, so
    ``a* >= S_n / sqrt(n t*) >= mean``) and keeping the maxima alone
    (``>= max^2``, so ``a* >= max / sqrt n``).

    **Exact step.** The entries of the hull of the surviving bins are sorted
    and every candidate in it is evaluated exactly (offsets ``A, C`` of the
    bins above the hull), which finds ``t*``: all candidates outside the hull
    are in discarded bins. The comparison keeps a margin
    ``δ = 8 (n + B + 16) 2^-53`` above the rounding error of the float64
    sums, so rounding can only keep a bin, never drop the optimal one.

    Cost: a handful of elementwise passes and two ``bincount`` passes, plus
    a sort of the surviving entries (a few thousand for n = 10^7 Gaussian
    data). Worst case (all entries in one bin, e.g. all equal) the sort is
    of everything: O(n log n), never wrong.
    """
    a = _magnitudes(a)
    thr, scale = ternary_threshold(a, levels)
    # Thresholds are values of a's dtype: compare in it (no float64 promotion of a).
    return (a >= thr.astype(a.dtype)[:, None]).astype(np.int64), scale


def ternary_threshold(a, levels):
    """Per row the smallest kept magnitude (inf: nothing kept) and the scale of :func:`ternary_hist`.

    Entry ``i`` of row ``g`` is kept (level ``l_1``) iff ``a[g, i] >= thr[g]``.
    ``a``: ``(G, n)`` finite magnitudes. The pure NumPy passes; see
    :func:`signed_threshold` for the same numbers from signed values.
    """
    a = _magnitudes(a)
    got = _threshold(a, float(levels[1]), None)
    if got is None:
        raise ValueError("a: the magnitudes hold NaN or inf")
    return got


def signed_threshold(g, l1: float):
    """:func:`ternary_threshold` of ``|g|`` from the signed ``(G, n)`` float32/float64 ``g``, or None.

    With the compiled loops (:func:`brelax.kernels.compiled`) no magnitude
    buffer is formed; without, ``|g|`` is taken once. The same numbers either
    way, bit for bit. None where ``g`` holds NaN or inf, or a float64 row
    lies beyond ``2^±400`` (its squared sums would leave float64:
    :class:`~brelax.sets.QuantSet` rescales such rows on its reference path).
    """
    from . import kernels

    jit = kernels.compiled()
    if jit is None:
        return _threshold(np.abs(g), float(l1), None, check_range=True)
    return _threshold(np.ascontiguousarray(g), float(l1), jit, check_range=True)


def _threshold(x, l1: float, jit, check_range: bool = False):
    """The thresholds and scales of :func:`ternary_hist`: from magnitudes ``x`` (``jit`` None, NumPy passes),
    or from signed values ``x`` with the compiled loops ``jit`` (:mod:`brelax.fast_numba`). None where a row
    is not finite (or, with ``check_range``, a float64 row beyond ``2^±400``)."""
    G, n = x.shape
    ity, mant = (np.int32, 23) if x.dtype == np.float32 else (np.int64, 52)
    if jit is not None:  # max |x| = max(max x, -min x): two SIMD reductions, no |x| buffer (+ 0.0: no -0.0)
        rowmax = np.maximum(x.max(axis=1), -x.min(axis=1)).astype(np.float64) + 0.0
    else:
        rowmax = x.max(axis=1).astype(np.float64)
    if not np.isfinite(rowmax).all():
        return None
    if check_range and x.dtype == np.float64 and np.any((rowmax > 2.0**400) | ((rowmax < 2.0**-400) & (rowmax > 0))):
        return None
    # tau* >= tau_lo (proof above); the mean of a strided sample is enough to choose the bin range.
    # (A contiguous copy of the sample in both paths: the same float64 sum, summed in the same order.)
    step = max(1, n // 512)
    sample = np.abs(x[:, ::step]) if jit is not None else np.ascontiguousarray(x[:, ::step])
    rough = sample.sum(axis=1, dtype=np.float64) / sample.shape[1]
    tau_est = np.maximum(rough / 2, rowmax / (2 * math.sqrt(n)))
    ratio = float(np.max(rowmax / np.where(tau_est > 0, tau_est, rowmax + 1)))
    R = int(min(max(2, math.ceil(math.log2(max(ratio, 1.0))) + 1), mant + 8))
    m = _bin_bits(n, R)
    sh = mant - m
    B = (R << m) + 1
    maxbits = rowmax.astype(x.dtype).view(ity).astype(np.int64)
    floorbits = np.maximum(maxbits - (R << mant), 1)
    if jit is not None:
        mask = np.iinfo(ity).max  # clears the sign bit: the bits of |x|
        c, sm = jit.histogram(x, x.view(ity), floorbits, sh, B, _CHUNK, ity(mask))
        cnt = c.astype(np.float64)
    else:
        cnt, sm = _histogram(x, floorbits.astype(ity).view(x.dtype), floorbits, maxbits, ity, sh, B)
    rows = np.arange(G)

    # Bin b holds [lo_b, hi_b): bit patterns floorbits + b 2^sh (inf past the largest float).
    infbits = int(np.array(np.inf, dtype=x.dtype).view(ity))
    if jit is not None:
        edges = jit.edges(floorbits, sh, B, mant, 127 if x.dtype == np.float32 else 1023, infbits)
    else:
        ebits = np.minimum(floorbits[:, None] + (np.arange(B + 1, dtype=np.int64) << sh), infbits)
        edges = ebits.astype(ity).view(x.dtype).astype(np.float64)
    delta = 8.0 * (n + B + 16) * _U
    if jit is not None:  # the same bounds and hull in one compiled pass over the (rows, bins) tables
        tau_lo = np.maximum(sm.sum(axis=1) / (2 * n), rowmax / (2 * math.sqrt(n))) * (1.0 - delta)
        _, vlo, vhi, base_s, base_t, per = jit.bounds(cnt, sm, edges, rowmax, tau_lo, delta)
        rv = jit.hull(x, vlo.astype(x.dtype), vhi.astype(x.dtype), per)
    else:
        keep, b0, C, A = _surviving_bins(cnt, sm, edges, rowmax, n, delta)
        live = keep.any(axis=1)
        blo = b0 + np.argmax(keep, axis=1)
        bhi = B - 1 - np.argmax(keep[:, ::-1], axis=1)
        vlo = np.where(blo > 0, edges[rows, blo], -1.0)
        vhi = np.where((bhi < B - 1) & live, edges[rows, np.minimum(bhi + 1, B)], math.inf)
        vlo = np.where(live, vlo, math.inf)
        base_s = A[rows, bhi - b0]
        base_t = C[rows, bhi - b0]
        rv = _hull_entries(x, vlo.astype(x.dtype), vhi.astype(x.dtype))
    thr, best, tstar = _best_in_hull(G, x.dtype, rv, base_s, base_t)
    return thr, np.where(tstar > 0, best / (np.maximum(tstar, 1.0) * l1), 0.0)


def ternary_values(g, l1: float, out=None, chunk: int = 1 << 16):
    r"""Exact projection of each row of ``g`` onto ``{0, ±a l_1}^n``: values, scales and thresholds, or None.

    Values ``copysign(dtype(a l_1), y)`` where ``|y| >= thr``, ``+0.0`` elsewhere:
    ``dtype(a * table[code])`` of the reference dequantization, bit for bit.
    One output buffer and no separate validation pass (a NaN or inf shows in
    the row maxima, and gives None: the caller validates and raises).

    With the compiled loops (:mod:`brelax.fast_numba`): five reads of ``g``
    (row maximum and minimum, histogram, hull, values) and one write. Without: ``|g|`` into
    the output buffer, the NumPy passes of :func:`ternary_threshold` on it,
    then the values written on the float bits of that buffer by row chunks of
    about ``chunk`` entries (``(bits(|g|) ^ bits(g)) | bits(a l_1)`` is
    ``copysign``, then zeroed where ``|g| < thr``). Both give the same bits.

    Parameters
    ----------
    g : (G, n) float32 or float64 NumPy array
    l1 : float
        The positive level.
    out : (G, n) C-contiguous array of ``g.dtype``, optional
        The output buffer (fresh by default); it must not overlap ``g``.
    chunk : int
        Entries per chunk of the NumPy value pass (at least one row).

    Returns
    -------
    (values, scales, thr) or None
        ``scales``: ``(G,)`` float64; ``thr``: ``(G,)`` float64, the smallest
        kept magnitude of each row (inf: none). None as in :func:`signed_threshold`.

    Examples
    --------
    >>> import numpy as np
    >>> ternary_values(np.array([[3.0, -2.9, 0.1, 0.0]]), 1.0)[0]
    array([[ 2.95, -2.95,  0.  ,  0.  ]])
    """
    from . import kernels

    G, n = g.shape
    values = np.empty((G, n), dtype=g.dtype) if out is None else out
    jit = kernels.compiled()
    if jit is not None:
        g = np.ascontiguousarray(g)
        got = _threshold(g, float(l1), jit, check_range=True)
        if got is None:
            return None
        thr, scales = got
        jit.values(g, thr.astype(g.dtype), (scales * float(l1)).astype(g.dtype), values)
        return values, scales, thr
    np.abs(g, out=values)
    got = _threshold(values, float(l1), None, check_range=True)
    if got is None:
        return None
    thr, scales = got
    uint = np.uint32 if g.dtype == np.float32 else np.uint64
    g_bits, v_bits = g.view(uint) if g.flags.c_contiguous else np.ascontiguousarray(g).view(uint), values.view(uint)
    t = thr.astype(g.dtype)
    sv = (scales * float(l1)).astype(g.dtype).view(uint)
    step = max(1, chunk // max(n, 1))
    mbuf = np.empty((min(step, G), n), dtype=bool)
    for r0 in range(0, G, step):
        r1 = min(G, r0 + step)
        m = mbuf[: r1 - r0]
        np.greater_equal(values[r0:r1], t[r0:r1, None], out=m)
        bits = v_bits[r0:r1]
        np.bitwise_xor(bits, g_bits[r0:r1], out=bits)
        np.bitwise_or(bits, sv[r0:r1, None], out=bits)
        np.multiply(bits, m, out=bits)
    return values, scales, thr


_CHUNK = 1 << 16  # entries per block: the int64 bin indices of a block stay in cache


def _blocks(G, n):
    """``(r0, r1, c0, c1)`` blocks of about ``_CHUNK`` entries covering a ``(G, n)`` array."""
    if n >= _CHUNK:
        for r in range(G):
            for c0 in range(0, n, _CHUNK):
                yield r, r + 1, c0, min(n, c0 + _CHUNK)
    else:
        step = max(1, _CHUNK // n)
        for r0 in range(0, G, step):
            yield r0, min(G, r0 + step), 0, n


def _histogram(a, floor, floorbits, maxbits, ity, sh, B):
    """Per row, count and float64 sum of the entries in each bin ``(bits(max(v, floor)) - floorbits) >> sh``.

    Done block by block: the index array never leaves the cache, which
    halves the time of one whole-array pass with fresh temporaries.
    """
    G, n = a.shape
    cnt = np.zeros((G, B), dtype=np.int64)
    sm = np.zeros((G, B))
    tbuf = np.empty(min(G * n, _CHUNK), dtype=a.dtype)
    ibuf = np.empty(tbuf.size, dtype=np.int64)
    # The block's row offset folds into the subtraction, (bits - floorbits + ((r - r0) B << sh)) >> sh
    # = bin + (r - r0) B, done in int32 when it fits (bits - floorbits <= maxbits - floorbits).
    span = int(np.max(maxbits - floorbits)) if G else 0
    per_block = min(G, max(1, _CHUNK // n))
    small = ity is np.int32 and span + ((per_block * B) << sh) < 2**31
    jbuf = np.empty(tbuf.size if small else 0, dtype=np.int32)  # used only when small
    for r0, r1, c0, c1 in _blocks(G, n):
        x = a[r0:r1, c0:c1]
        t = tbuf[: x.size].reshape(x.shape)
        idx = ibuf[: x.size].reshape(x.shape)
        rows = np.arange(r1 - r0, dtype=np.int64) * B
        np.maximum(x, floor[r0:r1, None], out=t)
        if small:
            j = jbuf[: x.size].reshape(x.shape)
            np.subtract(t.view(np.int32), (floorbits[r0:r1] - (rows << sh)).astype(np.int32)[:, None], out=j)
            np.right_shift(j, sh, out=j)
            idx[...] = j
        else:
            np.subtract(t.view(ity), floorbits[r0:r1, None], out=idx)
            np.right_shift(idx, sh, out=idx)
            if r1 - r0 > 1:
                idx += rows[:, None]
        flat = idx.reshape(-1)
        size = (r1 - r0) * B
        c = np.bincount(flat, minlength=size).reshape(r1 - r0, B)
        w = np.bincount(flat, weights=x.reshape(-1), minlength=size).reshape(r1 - r0, B)
        if c1 - c0 == n:  # whole rows: this block is their only one
            cnt[r0:r1], sm[r0:r1] = c, w
        else:
            cnt[r0:r1] += c
            sm[r0:r1] += w
    return cnt.astype(np.float64), sm


def _hull_entries(a, vlo, vhi):
    """Row index and value of every entry with ``vlo[row] <= a < vhi[row]``, in row order."""
    G, n = a.shape
    size = min(G * n, _CHUNK)
    mbuf, tbuf = np.empty(size, dtype=bool), np.empty(size, dtype=bool)
    # float32 magnitudes with vlo > 0: one unsigned test on the bit patterns, bits - lo < hi - lo
    # (non-negative floats order like their patterns; -0.0 falls outside as a huge difference).
    bits = a.dtype == np.float32 and bool(np.all(vlo > 0))
    if bits:
        lo = vlo.astype(np.float32).view(np.uint32)
        span = np.where(vhi > vlo, vhi.astype(np.float32).view(np.uint32) - lo, 0).astype(np.uint32)
        ubuf = np.empty(size, dtype=np.uint32)
    rows, vals = [], []
    for r0, r1, c0, c1 in _blocks(G, n):
        x = a[r0:r1, c0:c1]
        m = mbuf[: x.size].reshape(x.shape)
        if bits:
            u = ubuf[: x.size].reshape(x.shape)
            np.subtract(x.view(np.uint32), lo[r0:r1, None], out=u)
            np.less(u, span[r0:r1, None], out=m)
        else:
            np.greater_equal(x, vlo[r0:r1, None], out=m)
            m &= np.less(x, vhi[r0:r1, None], out=tbuf[: x.size].reshape(x.shape))
        nz = np.flatnonzero(m)
        if nz.size:
            rows.append(r0 + nz // (c1 - c0))
            vals.append(x.reshape(-1)[nz])
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=a.dtype)
    return np.concatenate(rows), np.concatenate(vals)


def _surviving_bins(cnt, sm, edges, rowmax, n, delta):
    """The bins that may hold the optimal threshold (the bounds of :func:`ternary_hist`).

    ``cnt``, ``sm``: ``(G, B)``; ``edges``: ``(G, B + 1)``. Every bin below
    ``b0`` is under ``tau_lo`` in every row; returns ``keep`` for the bins
    ``b0, b0 + 1, ...``, ``b0``, and the count and sum above each of them.
    """
    tau_lo = np.maximum(sm.sum(axis=1) / (2 * n), rowmax / (2 * math.sqrt(n))) * (1.0 - delta)
    b0 = int(np.min(np.sum(edges[:, 1:] < tau_lo[:, None], axis=1)))
    c, s = cnt[:, b0:], sm[:, b0:]
    C, A = _above(c), _above(s)
    lo = edges[:, b0:-1].copy()
    if b0 == 0:
        lo[:, 0] = 0.0  # bin 0 also holds the entries below the floor
    hi = np.minimum(edges[:, b0 + 1 :], rowmax[:, None])
    full = A + s
    full *= full
    full /= np.maximum(C + c, 1.0)
    L = full.max(axis=1)
    width = hi - lo
    flat = width <= 0  # all entries of the bin equal: only k = n_b
    width[flat] = 1.0
    k0 = s - c * lo
    k0 /= width
    k0[flat] = c[flat]
    np.minimum(k0, np.maximum(c, 1.0), out=k0)
    np.maximum(k0, 1.0, out=k0)
    U = A + hi
    U *= U
    U /= C + 1.0
    g = k0 * hi
    g += A
    g *= g
    g /= C + k0
    np.maximum(U, g, out=U)
    np.maximum(U, full, out=U)
    keep = (L * (1.0 - delta))[:, None] <= U
    keep &= c > 0
    keep &= hi >= tau_lo[:, None]
    keep &= (rowmax > 0)[:, None]
    return keep, b0, C, A


def _above(x):
    """``out[:, b] = sum_{c > b} x[:, c]`` (exclusive suffix sums along the rows)."""
    out = np.zeros_like(x)
    out[:, :-1] = np.cumsum(x[:, :0:-1], axis=1)[:, ::-1]
    return out


def _best_in_hull(G, dtype, rows_vals, base_s, base_t):
    """Evaluate every candidate whose threshold is one of the hull entries ``rows_vals`` of its row; the best.

    ``rows_vals``: the row index and magnitude of every entry in ``[vlo, vhi)`` of
    its row (any order within a row). Returns per row the threshold (inf if none
    is better than keeping nothing), the kept sum and the kept count.
    """
    rows, vals = rows_vals
    per_row = np.bincount(rows, minlength=G)
    width = max(int(per_row.max()) if G else 0, 1)
    start = np.cumsum(per_row) - per_row
    P = np.full((G, width), -1, dtype=dtype)  # padding -1 sorts after every magnitude
    P.reshape(-1)[rows * width + (np.arange(rows.size) - start[rows])] = vals
    M = np.empty((G, width + 1))
    M[:, :width] = np.sort(P, axis=1)[:, ::-1]
    M[:, width] = -1.0
    cs = base_s[:, None] + np.cumsum(np.maximum(M[:, :width], 0.0), axis=1)
    tt = base_t[:, None] + np.arange(1, width + 1, dtype=np.float64)
    drop = (M[:, :width] > M[:, 1:]) & (np.arange(width) < per_row[:, None])
    obj = np.where(drop, cs * cs / tt, -1.0)
    j = np.argmax(obj, axis=1)
    r = np.arange(G)
    ok = (per_row > 0) & (cs[r, j] > 0)
    thr = np.where(ok, M[r, j], math.inf)
    return thr, np.where(ok, cs[r, j], 0.0), np.where(ok, tt[r, j], 0.0)


# ------------------------------------------------- the NumPy fast path of QuantSet


def signed_codes(g, levels):
    """Codes into the signed table and scales of the exact projection of the grouped ``g``, in one go.

    The same codes as :meth:`brelax.sets.QuantSet.quantize` computes from a
    kernel's level indices (``K + sign * idx`` with a zero level,
    ``K - idx`` / ``K + 1 + idx`` for negative / non-negative entries without
    one, ``K = len(levels) - 1``, ``sign(0) = +1``), without the float64 copy
    of ``g`` or an int64 index array.

    Parameters
    ----------
    g : (G, n) float32 or float64 NumPy array, finite
        The signed values, one row per scale group.
    levels : sequence of float
        The non-negative levels (at least two) of a free-scale set.

    Returns
    -------
    codes : (G, n) int8 (int16 above 127 signed levels, int32 above 32767)
    scales : (G,) float64
    """
    g = np.asarray(g)
    if g.ndim != 2 or g.dtype not in (np.float32, np.float64):
        raise ValueError(f"g must be a (G, n) float32/float64 array, got {g.dtype} of shape {g.shape}")
    K = len(levels) - 1
    has_zero = levels[0] == 0
    n_table = 2 * K + (1 if has_zero else 2)
    ctype = np.int8 if n_table <= 127 else (np.int16 if n_table <= 32767 else np.int32)
    if K == 1 and has_zero:
        got = signed_threshold(g, levels[1])
        if got is None:
            raise ValueError("g: NaN or inf, or a float64 row beyond 2^+-400 (rescale it first)")
        thr, scales = got
        t = thr.astype(g.dtype)[:, None]  # > 0: the smallest kept magnitude, or inf
        codes = np.greater_equal(g, t).view(np.int8)  # 1 where kept and positive
        codes += 1
        codes -= np.less_equal(g, -t).view(np.int8)
        return codes, scales
    a = np.abs(g)
    theta, scales = level_theta(a, levels)
    idx = levels_from_thresholds(a, theta, ctype)  # the codes' dtype: no int64 index array
    neg = g < 0
    if has_zero:
        codes = np.where(neg, K - idx, K + idx)
    else:
        codes = np.where(neg, K - idx, K + 1 + idx)
    return codes.astype(ctype, copy=False), scales


def l1_row_sums(v):
    r"""Per row ``sum_i v[g, i]`` of the magnitudes ``v`` (``(G, n)``, C-ordered), in float64; None if not finite.

    The accumulator is float64 (``np.add.reduce(v, axis=1, dtype=float64)``:
    every float32 entry converted exactly, pairwise summation). A float32 row
    cannot overflow it (``n 2^128 < 2^1024`` for any ``n < 2^895``). A float64
    row can (``[1e308, 1e308]``): then the row is summed again as
    ``2^-k v`` with ``2^k >= n`` -- a power of two, exact except where an entry
    falls below the normal range, and then by less than ``2^-1022`` each, far
    under the rounding of a sum of order ``2^1023 / n`` -- and the sum is
    returned as ``(S 2^-k, k)`` through :func:`l1_scales`. Rows holding NaN or
    inf give None (the caller validates and raises).

    Returns
    -------
    (sums, k) or None
        ``sums``: ``(G,)`` float64, the row sums times ``2^-k``; ``k``: ``(G,)``
        int, 0 where the plain sum is finite.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN are answered just below
        sums = np.add.reduce(v, axis=1, dtype=np.float64)
    k = np.zeros(sums.shape, dtype=np.int64)
    bad = ~np.isfinite(sums)
    if bad.any():
        rows = np.flatnonzero(bad)
        if not np.isfinite(v[rows].max(axis=1)).all():
            return None
        k[rows] = max(1, math.ceil(math.log2(v.shape[1])))
        sums[rows] = np.add.reduce(np.ldexp(v[rows], -k[rows][:, None]), axis=1, dtype=np.float64)
    return sums, k


def l1_scales(v, l0: float):
    """The scales ``||y||_1 / (n l_0)`` of the binary projection from the magnitudes ``v`` (None if not finite).

    ``(S 2^-k) / (n l_0) 2^k`` with :func:`l1_row_sums`: finite for finite
    input (the mean of the magnitudes is at most their maximum).
    """
    got = l1_row_sums(v)
    if got is None:
        return None
    sums, k = got
    return np.ldexp(sums / (v.shape[1] * float(l0)), k)


def binary_values(g, l0: float, chunk: int = 1 << 19, out=None):
    r"""Exact projection of each row of ``g`` onto ``{±a l_0}^n``: values and scales, or None.

    The binary set has one pattern (every entry at ``l_0``), so the best scale
    is ``a = ||y||_1 / (n l_0)`` and the projection is ``sign(y) a l_0`` with
    ``sign(0) = +1`` -- :func:`brelax.projections.single_level` in closed form.
    The values are ``copysign(dtype(a l_0), y)`` (formed on the bits), which is
    ``dtype(a * table[code])`` of the reference dequantization; ``-0.0`` (where
    ``copysign`` gives ``-a l_0``) is set to ``+a l_0`` where the input holds a
    zero. No codes are formed. The output buffer holds ``|y|`` first and then
    the values: ``abs`` into it, the float64 row sums (:func:`l1_scales`, the
    same sums ``QuantSet.quantize`` takes, so the values are bitwise
    ``quantize(w).dequantize()``), then the sign on the bits. Rows are taken
    ``chunk`` entries at a time, so that every pass after ``abs`` (the sums,
    a ``min`` that spots zeros, two integer passes for the sign) reads the
    chunk from cache. Finite input gives finite values, ``[1e308, 1e308]``
    included (see :func:`l1_row_sums`).

    Parameters
    ----------
    g : (G, n) float32 or float64 NumPy array, not validated for finiteness
    l0 : float
        The positive level.
    chunk : int
        About how many entries to take at a time (at least one row).
    out : (G, n) C-contiguous array of ``g.dtype``, optional
        The output buffer (a fresh one by default); it must not overlap ``g``.

    Returns
    -------
    (values, scales) or None
        ``values``: ``(G, n)`` C-contiguous array of ``g.dtype``; ``scales``:
        ``(G,)`` float64. None where ``g`` holds NaN or inf: the caller then
        validates and takes the reference path.

    Examples
    --------
    >>> import numpy as np
    >>> binary_values(np.array([[1e308, -1e308]]), 1.0)[0]
    array([[ 1.e+308, -1.e+308]])
    """
    G, n = g.shape
    values = np.empty((G, n), dtype=g.dtype) if out is None else out
    scales = np.empty(G, dtype=np.float64)
    uint = np.uint32 if g.dtype == np.float32 else np.uint64
    g_bits, v_bits = g.view(uint), values.view(uint)
    step = max(1, chunk // n)
    has_zero = False
    for r0 in range(0, G, step):
        r1 = min(G, r0 + step)
        v = values[r0:r1]
        np.abs(g[r0:r1], out=v)
        sc = l1_scales(v, l0)
        if sc is None:
            return None
        scales[r0:r1] = sc
        has_zero = has_zero or bool(v.min() == 0)
        sv = (sc * float(l0)).astype(g.dtype)[:, None]
        # copysign(sv, g) in two integer passes (NumPy's copysign is slower): |g| ^ g is g's sign bit alone,
        # and sv >= 0 has no sign bit of its own.
        bits = v_bits[r0:r1]
        np.bitwise_xor(bits, g_bits[r0:r1], out=bits)
        np.bitwise_or(bits, sv.view(uint), out=bits)
    if has_zero:  # some entry is +-0: it must map to +a l_0
        sv = (scales * float(l0)).astype(g.dtype)[:, None]
        np.copyto(values, np.broadcast_to(sv, (G, n)), where=(g == 0))
    return values, scales


def lookup(codes, scales, table, dtype):
    """``dtype(scales[g] * table[codes[g, i]])`` for grouped ``(G, n)`` codes: what ``dequantize`` returns.

    Each row looks its codes up in its own table of ``len(table)`` values,
    computed in float64 and rounded once to ``dtype``: the same numbers as
    ``astype(scales[:, None] * take(table, codes), dtype)``.
    """
    codes = np.asarray(codes)
    scales = np.asarray(scales, dtype=np.float64)
    if len(table) == 3 and table[1] == 0 and table[0] == -table[2]:
        # {-t, 0, t}: dtype(s * table[c]) = (c - 1) * dtype(s t) exactly, one pass instead of a gather.
        out = codes.astype(dtype)
        out -= 1
        out *= (scales * table[2]).astype(dtype)[:, None]
        return out
    with np.errstate(over="ignore"):  # a level no entry uses may overflow dtype near its largest float: unread
        lut = (scales[:, None] * np.asarray(table, dtype=np.float64)[None, :]).astype(dtype)
    if codes.shape[0] == 1:
        return lut[0][codes]
    flat = codes.astype(np.intp) + (np.arange(codes.shape[0], dtype=np.intp) * lut.shape[1])[:, None]
    return lut.reshape(-1)[flat]
