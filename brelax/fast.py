r"""Fast exact kernels for NumPy: the same projections as :mod:`brelax.projections`, faster.

Both kernels have the signature of the reference kernels,
``kernel(xp, a, levels) -> (idx, scale)`` with ``a`` a ``(G, n)`` array of
magnitudes (float64, or float32: sums are always accumulated in float64) and
return the same minimum distance as the reference on every input.

* :func:`ternary_hist` -- ``L = {0, l_1}``, linear time in practice: a
  histogram of ``a`` by the bits of its floats gives bounds on the objective
  ``S_t^2 / t`` over every bin; only the bins that can still hold the optimum
  are sorted. Vectorised over the rows.
* :func:`level_refine` -- any level set with ``K >= 2`` steps (or no zero):
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
"""

from __future__ import annotations

import math

import numpy as np

_U = 2.0**-53  # unit roundoff of float64


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
        :func:`ternary_hist` for ``{0, l_1}``, :func:`level_refine` for every
        other set with two or more levels, None for one level (the closed
        form is already O(n)) or a non-NumPy namespace.
    """
    import array_api_compat

    if not (xp is np or array_api_compat.is_numpy_namespace(xp)):
        return None
    if len(levels) == 1:
        return None
    if len(levels) == 2 and levels[0] == 0:
        return ternary_hist
    return level_refine


def _magnitudes(a):
    """``a`` as a 2-D float32 or float64 NumPy array (other floats go to float64)."""
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"a must be a (G, n) array of magnitudes, got shape {a.shape}")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    return a


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
    ``hi_b < max / (2 sqrt n)`` cannot either: at the optimum ``a* = S/t``,
    every kept entry is ``>= a*/2`` (dropping one below ``a*/2`` would lower
    the distance), and ``a*^2 t* >= max^2`` (keeping the maxima alone is a
    candidate), so ``a* >= max / sqrt n``.

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
    G, n = a.shape
    l1 = float(levels[1])
    ity, mant = (np.int32, 23) if a.dtype == np.float32 else (np.int64, 52)
    rowmax = a.max(axis=1).astype(np.float64)
    # tau* >= tau_lo (proof above); a rough mean is enough to choose the bin range.
    rough = a.sum(axis=1, dtype=a.dtype).astype(np.float64) / n
    tau_est = np.maximum(rough / 2, rowmax / (2 * math.sqrt(n)))
    ratio = float(np.max(rowmax / np.where(tau_est > 0, tau_est, rowmax + 1)))
    R = int(min(max(2, math.ceil(math.log2(max(ratio, 1.0))) + 2), mant + 8))
    m = _bin_bits(n, R)
    sh = mant - m
    B = (R << m) + 1
    maxbits = rowmax.astype(a.dtype).view(ity).astype(np.int64)
    floorbits = np.maximum(maxbits - (R << mant), 1)
    cnt, sm = _histogram(a, floorbits.astype(ity).view(a.dtype), floorbits, ity, sh, B)
    rows = np.arange(G)

    # Bin b holds [lo_b, hi_b): bit patterns floorbits + b 2^sh (inf past the largest float).
    infbits = int(np.array(np.inf, dtype=a.dtype).view(ity))
    ebits = np.minimum(floorbits[:, None] + (np.arange(B + 1, dtype=np.int64) << sh), infbits)
    edges = ebits.astype(ity).view(a.dtype).astype(np.float64)
    lo = edges[:, :-1].copy()
    lo[:, 0] = 0.0
    hi = np.minimum(edges[:, 1:], rowmax[:, None])
    C = _above(cnt)
    A = _above(sm)
    n_full = C + cnt
    full = np.where(cnt > 0, (A + sm) ** 2 / np.maximum(n_full, 1.0), 0.0)
    L = full.max(axis=1)
    width = hi - lo
    k0 = (sm - cnt * lo) / np.where(width > 0, width, 1.0)
    k0 = np.clip(np.where(width > 0, k0, cnt), 1.0, np.maximum(cnt, 1.0))
    U = np.maximum((A + hi) ** 2 / (C + 1.0), (A + k0 * hi) ** 2 / (C + k0))
    delta = 8.0 * (n + B + 16) * _U
    total = A[:, 0] + sm[:, 0]
    tau_lo = np.maximum(total / (2 * n), rowmax / (2 * math.sqrt(n))) * (1.0 - delta)
    keep = (cnt > 0) & (np.maximum(U, full) >= (L * (1.0 - delta))[:, None])
    keep &= (hi >= tau_lo[:, None]) & (rowmax > 0)[:, None]

    live = keep.any(axis=1)
    blo = np.argmax(keep, axis=1)
    bhi = B - 1 - np.argmax(keep[:, ::-1], axis=1)
    vlo = np.where(blo > 0, edges[rows, blo], -1.0)
    vhi = np.where((bhi < B - 1) & live, edges[rows, np.minimum(bhi + 1, B)], math.inf)
    vlo = np.where(live, vlo, math.inf)
    base_s = A[rows, bhi]
    base_t = C[rows, bhi]
    thr, best, tstar = _best_in_hull(a, vlo, vhi, base_s, base_t)
    # Thresholds and edges are values of a's dtype: compare in it (no float64 promotion of a).
    idx = (a >= thr.astype(a.dtype)[:, None]).astype(np.int64)
    scale = np.where(tstar > 0, best / (np.maximum(tstar, 1.0) * l1), 0.0)
    return idx, scale


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


def _histogram(a, floor, floorbits, ity, sh, B):
    """Per row, count and float64 sum of the entries in each bin ``(bits(max(v, floor)) - floorbits) >> sh``.

    Done block by block: the index array never leaves the cache, which
    halves the time of one whole-array pass with fresh temporaries.
    """
    G, n = a.shape
    cnt = np.zeros((G, B), dtype=np.int64)
    sm = np.zeros((G, B))
    tbuf = np.empty(min(G * n, _CHUNK + n), dtype=a.dtype)
    ibuf = np.empty(tbuf.size, dtype=np.int64)
    for r0, r1, c0, c1 in _blocks(G, n):
        x = a[r0:r1, c0:c1]
        t = tbuf[: x.size].reshape(x.shape)
        idx = ibuf[: x.size].reshape(x.shape)
        np.maximum(x, floor[r0:r1, None], out=t)
        np.subtract(t.view(ity), floorbits[r0:r1, None], out=idx)
        np.right_shift(idx, sh, out=idx)
        if r1 - r0 > 1:
            idx += (np.arange(r1 - r0, dtype=np.int64) * B)[:, None]
        flat = idx.reshape(-1)
        size = (r1 - r0) * B
        cnt[r0:r1] += np.bincount(flat, minlength=size).reshape(r1 - r0, B)
        sm[r0:r1] += np.bincount(flat, weights=x.reshape(-1), minlength=size).reshape(r1 - r0, B)
    return cnt.astype(np.float64), sm


def _hull_entries(a, vlo, vhi):
    """Row index and float64 value of every entry with ``vlo[row] <= a < vhi[row]``, in row order."""
    G, n = a.shape
    mbuf = np.empty(min(G * n, _CHUNK + n), dtype=bool)
    tbuf = np.empty_like(mbuf)
    rows, vals = [], []
    for r0, r1, c0, c1 in _blocks(G, n):
        x = a[r0:r1, c0:c1]
        m = mbuf[: x.size].reshape(x.shape)
        np.greater_equal(x, vlo[r0:r1, None], out=m)
        m &= np.less(x, vhi[r0:r1, None], out=tbuf[: x.size].reshape(x.shape))
        nz = np.flatnonzero(m)
        if nz.size:
            rows.append(r0 + nz // (c1 - c0))
            vals.append(x.reshape(-1)[nz])
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return np.concatenate(rows), np.concatenate(vals).astype(np.float64)


def _above(x):
    """``out[:, b] = sum_{c > b} x[:, c]`` (exclusive suffix sums along the rows)."""
    out = np.zeros_like(x)
    out[:, :-1] = np.cumsum(x[:, :0:-1], axis=1)[:, ::-1]
    return out


def _best_in_hull(a, vlo, vhi, base_s, base_t):
    """Evaluate every candidate with threshold in ``[vlo, vhi)`` of each row; return the best.

    Returns per row the threshold (inf if none is better than keeping
    nothing), the kept sum and the kept count.
    """
    G, n = a.shape
    rows, vals = _hull_entries(a, vlo.astype(a.dtype), vhi.astype(a.dtype))
    per_row = np.bincount(rows, minlength=G)
    width = max(int(per_row.max()) if G else 0, 1)
    start = np.cumsum(per_row) - per_row
    M = np.full((G, width + 1), -1.0)
    M.reshape(-1)[rows * (width + 1) + (np.arange(rows.size) - start[rows])] = vals
    M[:, :width] = -np.sort(-M[:, :width], axis=1)
    cs = base_s[:, None] + np.cumsum(np.maximum(M[:, :width], 0.0), axis=1)
    tt = base_t[:, None] + np.arange(1, width + 1, dtype=np.float64)
    drop = (M[:, :width] > M[:, 1:]) & (np.arange(width) < per_row[:, None])
    obj = np.where(drop, cs * cs / tt, -1.0)
    j = np.argmax(obj, axis=1)
    r = np.arange(G)
    ok = (per_row > 0) & (cs[r, j] > 0)
    thr = np.where(ok, M[r, j], math.inf)
    return thr, np.where(ok, cs[r, j], 0.0), np.where(ok, tt[r, j], 0.0)


def level_refine(xp, a, levels):
    r"""Exact projection for any level set, by the breakpoint sweep evaluated only where it can win.

    With ``s`` the sorted magnitudes and the keys ``k_{ij} = fl(s_i / m_j)``
    of :func:`~brelax.projections.level_sweep` (``m_j`` the midpoints), the
    sweep visits, for every key value ``v``, the state
    ``c_j(v) = #{i : k_{ij} >= v}`` (entries at level ``> l_j``), whose
    objective is ``f(v) = S(v)^2 / N(v)`` with

    .. math::  S(v) = l_0 D_n + \sum_j (l_{j+1} - l_j) D_{c_j(v)}, \qquad
               N(v) = n l_0^2 + \sum_j (l_{j+1}^2 - l_j^2) c_j(v),

    ``D_c`` the sum of the ``c`` largest magnitudes. Each ``c_j(v)`` is one
    binary search (``fl(s / m_j)`` is non-decreasing in ``s``, so the keys of
    level ``j`` are sorted with ``s``), so ``f`` costs ``O(K log n)`` at any
    key, without sorting the ``nK`` keys.

    **Pruning.** ``c_j(v)`` is non-increasing in ``v`` and ``S``, ``N`` are
    non-decreasing in every ``c_j``, so every key ``v`` strictly between two
    evaluated keys ``lo < v < hi`` has ``f(v) <= S(lo)^2 / N(hi)`` (and
    ``N(hi) > 0`` because ``hi`` is a key of some level). Start from every
    ``r``-th key of each level, evaluate ``f`` there, drop the intervals whose
    bound is below the best evaluated value ``L`` (an attained objective), and
    refine the others with a 16 times smaller stride, down to every key.
    Every key is then either evaluated or inside a dropped interval, whose keys
    all have ``f < L``, so the best evaluated key is the sweep's optimum. As
    in the sweep, the tie rule is the largest key among equal objectives, and
    ``v = +inf`` (all entries at ``l_0``) is a candidate. A relative margin
    ``δ = 8 (n + K + 16) 2^-53`` keeps rounding from dropping the optimum.

    The pattern is ``q_i = #{j : |y_i| >= θ_j}`` with ``θ_j`` the smallest
    magnitude whose key of level ``j`` is ``>= v*``: the reference's
    ``#{j : fl(|y_i| / m_j) >= v*}``, by the same monotonicity.

    Cost: one sort per row, ``O(nK)`` memory-free passes for the pattern, and
    ``O(K log n)`` per evaluated key; a few thousand keys are evaluated in
    practice. Rows are done one at a time.
    """
    a = _magnitudes(a)
    G, n = a.shape
    lv = np.asarray(levels, dtype=np.float64)
    mids = (lv[:-1] + lv[1:]) / 2
    steps = (lv[1:] - lv[:-1], lv[1:] ** 2 - lv[:-1] ** 2)
    srt = np.sort(a, axis=1)
    idx = np.empty((G, n), dtype=np.int64)
    scale = np.zeros(G)
    for g in range(G):
        s = srt[g].astype(np.float64)
        D = np.concatenate(([0.0], np.cumsum(s[::-1])))
        c, S, N = _best_key(s, D, lv, mids, steps)
        theta = np.where(c > 0, s[np.minimum(n - c, n - 1)], math.inf)
        idx[g] = np.searchsorted(theta, a[g], side="right")
        scale[g] = S / N if N > 0 else 0.0
    return idx, scale


def _count_ge(s, m, v):
    """``#{i : fl(s_i / m) >= v}`` for each query ``v`` (``s`` ascending), exactly."""
    n = s.size
    p = np.searchsorted(s, v * m, side="left")
    # The float product can miss by a block of equal values or two; move p to the exact boundary.
    while True:
        down = (p > 0) & (s[np.maximum(p - 1, 0)] / m >= v)
        up = (p < n) & (s[np.minimum(p, n - 1)] / m < v)
        if not (down.any() or up.any()):
            return n - p
        p = np.where(down, np.searchsorted(s, s[np.maximum(p - 1, 0)], side="left"), p)
        p = np.where(up, np.searchsorted(s, s[np.minimum(p, n - 1)], side="right"), p)


def _evaluate(s, D, lv, mids, steps, v):
    """States ``c`` (K, len(v)), and ``S``, ``N``, ``f`` at the keys ``v``."""
    n = s.size
    c = np.stack([_count_ge(s, m, v) for m in mids])
    S = lv[0] * D[n] + steps[0] @ D[c]
    N = n * lv[0] ** 2 + steps[1] @ c
    f = np.where(N > 0, S * S / np.where(N > 0, N, 1.0), 0.0)
    return c, S, N, f


def _best_key(s, D, lv, mids, steps):
    """The state ``c`` (K,) of the best key of the sweep, with its ``S`` and ``N``."""
    n, K = s.size, mids.size
    delta = 8.0 * (n + K + 16) * _U
    S0 = lv[0] * D[n]
    N0 = n * lv[0] ** 2
    seen_v = [np.array([math.inf])]
    seen = [(np.zeros((K, 1), dtype=np.int64), np.array([S0]), np.array([float(N0)]))]
    best = S0 * S0 / N0 if N0 > 0 else 0.0
    # One interval per level-0 gap; start from the whole key range of every level.
    stride = max(1, -(-n // 256))
    p = np.zeros((K, 1), dtype=np.int64)  # key index ranges [p, q) per level and interval
    q = np.full((K, 1), n, dtype=np.int64)
    hi_v = np.array([math.inf])
    lo_v = np.array([-math.inf])
    while hi_v.size:
        ids, vals = [], []
        for j in range(K):
            length = q[j] - p[j]
            k = -(-length // stride)
            tot = int(k.sum())
            first = np.repeat(q[j] - 1, k)
            rank = np.arange(tot) - np.repeat(np.cumsum(k) - k, k)
            take = np.maximum(first - rank * stride, np.repeat(p[j], k))
            # Every r-th key from the top, and the lowest key of the range, of each interval.
            has = np.flatnonzero(length > 0)
            ids += [np.repeat(np.arange(hi_v.size), k), has]
            vals += [s[take] / mids[j], s[p[j][has]] / mids[j]]
        ids = np.concatenate(ids + [np.arange(hi_v.size)] * 2)
        vals = np.concatenate(vals + [hi_v, lo_v])
        order = np.lexsort((-vals, ids))
        ids, vals = ids[order], vals[order]
        fresh = np.ones(ids.size, dtype=bool)
        fresh[1:] = (ids[1:] != ids[:-1]) | (vals[1:] != vals[:-1])
        ids, vals = ids[fresh], vals[fresh]
        finite = np.isfinite(vals)
        c, S, N, f = _evaluate(s, D, lv, mids, steps, np.where(finite, vals, 0.0))
        seen_v.append(vals[finite])
        seen.append((c[:, finite], S[finite], N[finite]))
        best = max(best, float(f[finite].max(initial=0.0)))
        if stride == 1:
            break
        # Sub-intervals between consecutive points of the same parent interval.
        same = ids[1:] == ids[:-1]
        a_hi, a_lo = np.flatnonzero(same), np.flatnonzero(same) + 1
        ok = finite[a_hi] & finite[a_lo]
        a_hi, a_lo = a_hi[ok], a_lo[ok]
        ub = _interval_bound(vals[a_hi], S[a_hi], N[a_hi], vals[a_lo], S[a_lo], N[a_lo])
        # Keys strictly inside (lo, hi): indices [n - #{key > lo}, n - #{key >= hi}) per level.
        gt_lo = np.stack([_count_ge(s, m, np.nextafter(vals[a_lo], math.inf)) for m in mids])
        inside = (gt_lo - c[:, a_hi]).sum(axis=0)
        live = (ub >= best * (1.0 - delta)) & (inside > 0)
        hi_v, lo_v = vals[a_hi][live], vals[a_lo][live]
        p, q = n - gt_lo[:, live], n - c[:, a_hi][:, live]
        stride = max(1, stride // 16)
    v = np.concatenate(seen_v)
    c = np.concatenate([x[0] for x in seen], axis=1)
    S = np.concatenate([x[1] for x in seen])
    N = np.concatenate([x[2] for x in seen])
    f = np.where(N > 0, S * S / np.where(N > 0, N, 1.0), 0.0)
    order = np.argsort(-v, kind="stable")
    k = order[np.argmax(f[order])]
    return c[:, k], S[k], N[k]


def _interval_bound(hi, S_hi, N_hi, lo, S_lo, N_lo):
    r"""Upper bound on ``f`` at the keys strictly between ``lo < hi`` (see :func:`level_refine`).

    Going from the state at ``hi`` to a state at ``v`` in between moves
    entries of magnitude ``x`` with key ``x / m_j`` in ``(lo, hi)`` up one
    level, each adding ``x (l_{j+1} - l_j)`` to ``S`` and ``l_{j+1}^2 - l_j^2``
    to ``N``: a ratio ``x / (2 m_j)`` in ``(lo/2, hi/2)``. So at ``N = N(v)``,
    ``S(v) <= U(N) = min(S_hi + hi/2 (N - N_hi), S_lo - lo/2 (N_lo - N))``.
    Each piece is ``P + cN``, and ``max(P + cN, 0)^2 / N`` has at most one
    minimum and no interior maximum on an interval of ``N > 0``, so the bound
    is the larger of its values at ``N_hi``, ``N_lo`` (``f(hi)``, ``f(lo)``)
    and the crossing point of the two lines.
    """
    Nx = (S_lo - S_hi + (hi * N_hi - lo * N_lo) / 2) / np.maximum((hi - lo) / 2, 1e-300)
    Nx = np.clip(Nx, N_hi, N_lo)
    Ux = np.maximum(np.minimum(S_hi + hi / 2 * (Nx - N_hi), S_lo - lo / 2 * (N_lo - Nx)), 0.0)
    both = np.maximum(S_hi * S_hi / N_hi, S_lo * S_lo / N_lo)
    return np.maximum(both, Ux * Ux / np.maximum(Nx, 1e-300))
