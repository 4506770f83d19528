r"""Fast exact projection onto any level set (NumPy): the breakpoint sweep, evaluated only where it can win.

Split from :mod:`brelax.fast` to keep files short; use it through
:func:`brelax.fast.fast_kernel`. Same minimum distance and tie rule as
:func:`brelax.projections.level_sweep` (see :mod:`brelax.fast`).
"""

from __future__ import annotations

import math

import numpy as np

_U = 2.0**-53  # unit roundoff of float64


def magnitudes(a):
    """``a`` as a 2-D float32 or float64 NumPy array (other floats go to float64)."""
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"a must be a (G, n) array of magnitudes, got shape {a.shape}")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    return a


#: Below this many keys per row (n K) the per-row work of :func:`level_refine` costs more
#: than the reference sweep, which is vectorised over rows.
MIN_KEYS_PER_ROW = 16384
#: Above this many steps K, :func:`level_refine` searches in value space (:func:`_best_key_wide`),
#: whose memory does not grow with K, instead of starting from 256 keys of every level (whose
#: K x 256K evaluated states took 77 and 156 bytes per entry at K = 15 and 31, n = 10^5).
MAX_STEPS = 8


#: Rows of :func:`sweep_rows` are taken in blocks of at most this many keys (n K per row): about 100 bytes per
#: key of temporaries, so a block stays near 25 MB whatever the number of rows.
SWEEP_ROWS_KEYS = 1 << 18


def level_kernel(xp, a, levels):
    """Exact kernel for a level set: :func:`level_refine` on long rows, :func:`sweep_rows` otherwise.

    Both are exact with the same tie rule; the choice is only about speed
    (``n K >= MIN_KEYS_PER_ROW``). :func:`sweep_rows` runs on float64
    magnitudes, as the reference does, all rows of a block at once, so that
    its ``O(nK)`` memory stays bounded; :func:`level_refine` needs ``O(n)``
    whatever K, one row at a time.
    """
    a = magnitudes(a)
    n = a.shape[1]
    K = len(levels) - 1
    if n * K >= MIN_KEYS_PER_ROW:
        return level_refine(xp, a, levels)
    return sweep_rows(a, levels)


def sweep_rows(a, levels, block_keys: int = SWEEP_ROWS_KEYS):
    """:func:`sweep_theta`, then the level of every entry (``(G, n)`` int64) and the scales."""
    a = magnitudes(a)
    theta, scale = sweep_theta(a, levels, block_keys)
    return levels_from_thresholds(a, theta), scale


def sweep_theta(a, levels, block_keys: int = SWEEP_ROWS_KEYS):
    r"""The breakpoint sweep of :func:`~brelax.projections.level_sweep` on many rows at once: thresholds, scales.

    The same candidates, objective and tie rule as the reference (the keys
    ``k_ij = fl(|y_i| / m_j)`` in decreasing order, the state after each run of
    equal keys, the largest key among equal objectives), computed differently:

    * each row is sorted once (in its own dtype, then widened exactly to
      float64), so the keys of each level form a decreasing run;
    * the objective of the state after every key ``>= v`` is
      ``S^2 / N`` with ``S = l_0 D_n + sum_j (l_{j+1} - l_j) D_{c_j}``,
      ``N = n l_0^2 + sum_j (l_{j+1}^2 - l_j^2) c_j`` (``c_j`` the keys of level
      ``j`` that are ``>= v``, ``D_c`` the sum of the ``c`` largest magnitudes);
    * without numba: every key, all rows of a block of about ``block_keys``
      keys at once (a stable run-merging sort of the ``K`` runs, no Python
      loop over rows); with numba (:func:`brelax.fast_numba.sweep_pruned`):
      only a grid of keys and the keys inside the gaps whose interval bound
      (:func:`_interval_bound`) can still beat the best grid key. The same
      formula at the same keys: the same objective values, bit for bit.

    The pattern is the reference's except between candidates whose objectives
    tie to rounding (both optimal). The level of entry ``i`` is
    ``#{j : fl(|y_i| / m_j) >= v*} = #{j : |y_i| >= theta_j}``, ``theta_j`` the
    smallest magnitude whose key of level ``j`` is ``>= v*`` (``fl(x / m)`` is
    non-decreasing in ``x``), and the scale is ``S / N`` of the best state.

    Parameters
    ----------
    a : (G, n) array of magnitudes
    levels : sequence of float
        The non-negative levels ``l_0 < ... < l_K``, ``K >= 1``.

    Returns
    -------
    theta : (G, K) float64
        Per row the thresholds (inf: no entry reaches level ``j + 1``).
    scale : (G,) float64
    """
    a = magnitudes(a)
    G, n = a.shape
    lv = np.asarray(levels, dtype=np.float64)
    K = lv.size - 1
    mids = (lv[:-1] + lv[1:]) / 2
    dl = lv[1:] - lv[:-1]
    dn = lv[1:] * lv[1:] - lv[:-1] * lv[:-1]
    l0 = float(lv[0])
    n0 = n * l0 * l0
    theta_all = np.empty((G, K))
    scale = np.empty(G)
    from . import kernels

    jit = kernels.compiled() if K <= MAX_STEPS else None  # its merge costs K per key
    step = max(1, block_keys // max(n * K, 1)) if jit is None else G
    delta = 8.0 * (n + K + 16) * _U
    for r0 in range(0, G, step):
        blk = a[r0 : r0 + step]  # in its own dtype: sorted, then widened (exactly) to float64
        g = blk.shape[0]
        s = np.sort(blk, axis=1)[:, ::-1].astype(np.float64, order="C")  # decreasing magnitudes
        D = np.zeros((g, n + 1))  # D[:, c]: the sum of the c largest, added in decreasing order
        np.cumsum(s, axis=1, out=D[:, 1:])
        S0 = l0 * D[:, n]
        obj0 = S0 * S0 / n0 if n0 > 0 else np.zeros(g)
        if jit is not None:
            _, c, S, N = jit.sweep_pruned(s, D, mids, l0, dl, dn, obj0, delta, max(1, n // 32))
        else:
            _, c, S, N = _sweep_sorted(s, D, mids, l0, dl, dn, obj0)
        # The level of an entry is #{j : fl(|y_i| / m_j) >= v*} = #{j : |y_i| >= theta_j}, theta_j the smallest of
        # the c_j magnitudes whose key of level j is >= v* (fl(x / m) is non-decreasing in x).
        theta_all[r0 : r0 + g] = np.where(c > 0, np.take_along_axis(s, np.maximum(c - 1, 0), axis=1), math.inf)
        scale[r0 : r0 + g] = np.where(N > 0, S / np.where(N > 0, N, 1.0), 0.0)  # <|y|, q> / ||q||^2
    return theta_all, scale


def levels_from_thresholds(a, theta, dtype=np.int64):
    """``q[g, i] = #{j : a[g, i] >= theta[g, j]}``, compared in ``a``'s dtype (the thresholds are its values).

    ``theta`` is non-decreasing along each row. Up to ``MAX_STEPS`` thresholds: one comparison pass each;
    more: a binary search per entry (``O(n log K)``), one row at a time.
    """
    t = theta.astype(a.dtype)  # each a magnitude of a, or inf: exact in its dtype
    q = np.zeros(a.shape, dtype=dtype)
    if t.shape[1] <= MAX_STEPS:
        for j in range(t.shape[1]):
            q += a >= t[:, j, None]
        return q
    for g in range(a.shape[0]):
        q[g] = np.searchsorted(t[g], a[g], side="right")
    return q


def level_theta(a, levels):
    """Per row the thresholds ``theta`` (``(G, K)``) and the scale of :func:`level_kernel`'s projection.

    Entry ``i`` of row ``g`` is at level ``#{j : a[g, i] >= theta[g, j]}``
    (:func:`levels_from_thresholds`); the same routing as :func:`level_kernel`.
    """
    a = magnitudes(a)
    if a.shape[1] * (len(levels) - 1) >= MIN_KEYS_PER_ROW:
        return level_thresholds(a, levels)
    return sweep_theta(a, levels)


def _sweep_sorted(s, D, mids, l0, dl, dn, obj0):
    """Per row the best state of the sweep from the decreasing magnitudes ``s`` (see :func:`sweep_rows`):
    its key (inf: every entry at ``l_0``), counts ``c`` (``(g, K)``), ``S`` and ``N``.

    At the state after every key ``>= v``, with ``c_j`` the keys of level ``j`` consumed (entries above
    ``l_j``) and ``D_c`` the sum of the ``c`` largest, ``S = l_0 D_n + sum_j (l_{j+1} - l_j) D_{c_j}`` and
    ``N = n l_0^2 + sum_j (l_{j+1}^2 - l_j^2) c_j``, summed left to right. The compiled form
    (:func:`brelax.fast_numba.sweep_pruned`) evaluates the same formula at the keys its interval bounds
    cannot rule out: the same objective values, bit for bit, and the same best key.
    """
    g, n = s.shape
    K = mids.size
    keys = (s[:, None, :] / mids[None, :, None]).reshape(g, K * n)  # K decreasing runs per row
    order = np.argsort(-keys, axis=1, kind="stable")
    ks = np.take_along_axis(keys, order, axis=1)
    lev = order // n
    S = np.broadcast_to((l0 * D[:, n])[:, None], ks.shape)
    N = np.full(ks.shape, float(n * l0 * l0))
    for j in range(K):
        cj = np.cumsum(lev == j, axis=1)
        S = S + dl[j] * np.take_along_axis(D, cj, axis=1)
        N = N + dn[j] * cj
    with np.errstate(divide="ignore", invalid="ignore"):
        obj = np.where(N > 0, S * S / N, 0.0)
    last = np.ones(ks.shape, dtype=bool)
    last[:, :-1] = ks[:, :-1] != ks[:, 1:]
    obj[~last] = -1.0
    kstar = np.argmax(np.concatenate([obj0[:, None], obj], axis=1), axis=1)
    rows = np.arange(g)
    t = np.maximum(kstar - 1, 0)
    got = kstar > 0
    c = np.stack([np.where(got, np.cumsum(lev == j, axis=1)[rows, t], 0) for j in range(K)], axis=1)
    S0, N0 = l0 * D[:, n], float(n * l0 * l0)
    return np.where(got, ks[rows, t], math.inf), c, np.where(got, S[rows, t], S0), np.where(got, N[rows, t], N0)


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
    a = magnitudes(a)
    theta, scale = level_thresholds(a, levels)
    return levels_from_thresholds(a, theta), scale


def level_thresholds(a, levels):
    """Per row the thresholds ``θ_j`` (``(G, K)``, float64, inf where no entry passes) and the scale.

    Entry ``i`` of row ``g`` is at level ``#{j : a[g, i] >= θ[g, j]}`` of the
    exact projection (see :func:`level_refine`). ``a``: ``(G, n)`` magnitudes.
    """
    a = magnitudes(a)
    G, n = a.shape
    lv = np.asarray(levels, dtype=np.float64)
    mids = (lv[:-1] + lv[1:]) / 2
    steps = (lv[1:] - lv[:-1], lv[1:] ** 2 - lv[:-1] ** 2)
    srt = np.sort(a, axis=1)
    theta = np.full((G, mids.size), math.inf)
    scale = np.zeros(G)
    for g in range(G):
        s = srt[g].astype(np.float64)
        D = np.concatenate(([0.0], np.cumsum(s[::-1])))
        c, S, N = (_best_key if mids.size <= MAX_STEPS else _best_key_wide)(s, D, lv, mids, steps)
        theta[g] = np.where(c > 0, s[np.minimum(n - c, n - 1)], math.inf)
        scale[g] = S / N if N > 0 else 0.0
    return theta, scale


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
        id_parts: list[np.ndarray] = []
        val_parts: list[np.ndarray] = []
        for j in range(K):
            length = q[j] - p[j]
            k = -(-length // stride)
            tot = int(k.sum())
            first = np.repeat(q[j] - 1, k)
            rank = np.arange(tot) - np.repeat(np.cumsum(k) - k, k)
            take = np.maximum(first - rank * stride, np.repeat(p[j], k))
            # Every r-th key from the top, and the lowest key of the range, of each interval.
            has = np.flatnonzero(length > 0)
            id_parts += [np.repeat(np.arange(hi_v.size), k), has]
            val_parts += [s[take] / mids[j], s[p[j][has]] / mids[j]]
        ids = np.concatenate(id_parts + [np.arange(hi_v.size)] * 2)
        vals = np.concatenate(val_parts + [hi_v, lo_v])
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


# ------------------------------------------------------- many levels: bounded memory, any K

#: Keys a surviving interval may hold before it is swept exactly rather than subdivided (at most; see
#: :func:`_sweep_keys`).
SWEEP_KEYS = 1 << 15
#: Entries of one (levels x values) evaluation block: bounds the memory of :func:`_evaluate_at`.
EVAL_BLOCK = 1 << 16


def _count_ge_levels(s, mids, v):
    """``c[j, k] = #{i : fl(s_i / mids[j]) >= v[k]}`` for every level and value, exactly (s ascending)."""
    m = mids[:, None]
    vv = np.broadcast_to(v[None, :], (mids.size, v.size))
    return _count_ge(s, m, vv)


def _sweep_keys(n):
    """Keys swept at once: ``n / 16`` within ``[2^10, SWEEP_KEYS]``."""
    return int(min(SWEEP_KEYS, max(1 << 10, n // 16)))


def _eval_block(n):
    """Counts per evaluation block: ``n / 8`` within ``[2^12, EVAL_BLOCK]`` (a few bytes per entry)."""
    return int(min(EVAL_BLOCK, max(1 << 12, n // 8)))


def _blocked(fn, mids, v, n):
    """``fn(v_block)`` for blocks of ``_eval_block(n) // K`` values, concatenated (memory independent of K)."""
    step = max(1, _eval_block(n) // mids.size)
    parts = [fn(v[k0 : k0 + step]) for k0 in range(0, v.size, step)]
    return np.concatenate(parts) if parts else np.zeros(0)


def _levels_at(s, mids, v):
    """``q[k, i] = #{j : fl(s_i / m_j) >= v[k]}`` (the level of entry ``i`` at ``v[k]``), exactly.

    ``fl(s_i / m_j)`` is non-increasing in ``j``, so a binary search among the
    midpoints for ``s_i / v`` lands within a step or two of the boundary; the
    loop moves it there. ``O(n log K)`` per value: cheaper than the ``O(K log n)``
    of :func:`_count_ge_levels` when ``n < K``.
    """
    K = mids.size
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # s / v -> inf lands at K
        guess = np.where(v[:, None] > 0, s[None, :] / v[:, None], math.inf)
    q = np.searchsorted(mids, guess, side="right")
    while True:
        up = (q < K) & (s[None, :] / mids[np.minimum(q, K - 1)] >= v[:, None])
        down = (q > 0) & (s[None, :] / mids[np.maximum(q - 1, 0)] < v[:, None])
        if not (up.any() or down.any()):
            return q
        q = q + up - down


def _evaluate_at(s, D, lv, mids, steps, v):
    """``S``, ``N``, ``f`` at the values ``v`` (any floats; the state at ``v`` is that of the smallest key >= v).

    Done in blocks of ``EVAL_BLOCK // K`` values, so memory does not grow with K.
    """
    n, K = s.size, mids.size
    S, N, C = np.empty(v.size), np.empty(v.size), np.empty(v.size, dtype=np.int64)
    if n < K:  # per entry: O(n log K) per value
        step = max(64, _eval_block(n) // n)
        for k0 in range(0, v.size, step):
            q = _levels_at(s, mids, v[k0 : k0 + step])
            S[k0 : k0 + step] = (s[None, :] * lv[q]).sum(axis=1)
            N[k0 : k0 + step] = (lv[q] ** 2).sum(axis=1)
            C[k0 : k0 + step] = q.sum(axis=1)
        return S, N, C
    step = max(1, _eval_block(n) // K)
    for k0 in range(0, v.size, step):
        c = _count_ge_levels(s, mids, v[k0 : k0 + step])
        S[k0 : k0 + step] = lv[0] * D[n] + steps[0] @ D[c]
        N[k0 : k0 + step] = n * lv[0] ** 2 + steps[1] @ c
        C[k0 : k0 + step] = c.sum(axis=0)
    return S, N, C


def _best_key_wide(s, D, lv, mids, steps):
    r"""The sweep's optimum for any number of levels, in memory independent of K (see :func:`level_refine`).

    The same candidates, objective and tie rule as :func:`_best_key`, searched
    in value space instead of key by key: evaluate ``f`` on a grid of values
    (the state at a value ``v`` is that of the smallest key ``>= v``, an
    attained candidate, so the best evaluated ``f`` is a valid lower bound
    ``L``), bound every gap between consecutive grid values with
    :func:`_interval_bound` (which holds for any two values with known states,
    keys or not), drop the gaps whose bound is below ``L``, and refine the
    others: a gap holding at most ``SWEEP_KEYS`` keys is swept exactly (its
    keys enumerated from the index ranges ``[n - c_j(lo^+), n - c_j(hi))``,
    sorted, and the objective accumulated from the state at ``hi``), a larger
    one is cut at 16 evenly spaced values and at the largest key below its top
    (so that every round removes at least one block of equal keys: the search
    ends). Every key is then evaluated, swept or in a dropped gap, so the best
    candidate found is the sweep's optimum.

    Memory: ``s``, ``D`` and blocks of ``EVAL_BLOCK`` counts and ``SWEEP_KEYS``
    keys, whatever K. Time: ``O(K log n)`` per evaluated value.
    """
    n, K = s.size, mids.size
    delta = 8.0 * (n + K + 16) * _U
    S0, N0 = lv[0] * D[n], float(n * lv[0] ** 2)
    top = [S0 * S0 / N0 if N0 > 0 else 0.0, math.inf]  # the best candidate: objective, then value (tie rule)

    def offer(v, S, N):
        """Keep the best of the candidates ``v`` (largest ``v`` among equal objectives); return max f."""
        f = np.where(N > 0, S * S / np.where(N > 0, N, 1.0), 0.0)
        cand = np.flatnonzero(f == f.max())
        k = cand[np.argmax(v[cand])]  # the largest value among equal objectives
        if f[k] > top[0] or (f[k] == top[0] and v[k] > top[1]):
            top[0], top[1] = float(f[k]), float(v[k])
        return top[0]

    pos = s[s > 0]
    if pos.size == 0:  # the zero row: every state has S = 0
        return np.zeros(K, dtype=np.int64), S0, N0
    vmax = float(s[-1] / mids[0])  # the largest key
    vmin = float(pos[0] / mids[-1])  # the smallest positive key
    geo = np.minimum(vmin * (vmax / vmin) ** np.linspace(0.0, 1.0, 257), vmax)
    grid = np.unique(np.concatenate(([vmax], geo, [0.0])))[::-1]
    S, N, C = _evaluate_at(s, D, lv, mids, steps, grid)
    best = offer(grid, S, N)
    his, los = grid[:-1], grid[1:]
    Shi, Nhi, Chi, Slo, Nlo, Clo = S[:-1], N[:-1], C[:-1], S[1:], N[1:], C[1:]
    stuck = np.zeros(his.size, dtype=bool)
    while his.size:
        # Keys in (lo, hi) number at most C(lo) - C(hi) (the keys equal to lo are counted too).
        inside = Clo - Chi
        ub = _interval_bound(his, Shi, Nhi, los, Slo, Nlo)
        live = (ub >= best * (1.0 - delta)) & (inside > 0)
        his, los, Shi, Nhi, Chi, Slo, Nlo, Clo, inside, stuck = (
            x[live] for x in (his, los, Shi, Nhi, Chi, Slo, Nlo, Clo, inside, stuck)
        )
        small = (inside <= _sweep_keys(n)) | stuck
        for k in np.flatnonzero(small):
            v, Sv, Nv = _sweep_gap(s, lv, mids, steps, his[k], los[k], Shi[k], Nhi[k])
            if v.size:
                best = offer(v, Sv, Nv)
        big = np.flatnonzero(~small)
        if not big.size:
            break

        # Cut each big gap at 16 values and at the largest key below its top.
        def largest_below(h):  # per value, the largest key < h (over all levels)
            below = n - _count_ge_levels(s, mids, h) - 1
            return np.where(below >= 0, s[np.maximum(below, 0)] / mids[:, None], -math.inf).max(axis=0)

        def largest_below_entries(h):  # the same, per entry: its next key below h is at level q_i(h)
            q = _levels_at(s, mids, h)
            return np.where(q < K, s[None, :] / mids[np.minimum(q, K - 1)], -math.inf).max(axis=1)

        if n < K:
            kv = np.concatenate(
                [
                    largest_below_entries(his[big][k0 : k0 + max(64, _eval_block(n) // n)])
                    for k0 in range(0, big.size, max(64, _eval_block(n) // n))
                ]
            )
        else:
            kv = _blocked(largest_below, mids, his[big], n)
        cuts = los[big][:, None] + (his[big] - los[big])[:, None] * np.linspace(0.0, 1.0, 18)[None, 1:-1]
        pts = np.concatenate([his[big][:, None], kv[:, None], cuts, los[big][:, None]], axis=1)
        lo_b, hi_b = los[big][:, None], his[big][:, None]
        ok = (pts >= lo_b) & (pts <= hi_b)
        ids = np.broadcast_to(np.arange(big.size)[:, None], pts.shape)[ok]
        vals = pts[ok]
        order = np.lexsort((-vals, ids))  # by gap, values descending
        ids, vals = ids[order], vals[order]
        fresh = np.ones(ids.size, dtype=bool)
        fresh[1:] = (ids[1:] != ids[:-1]) | (vals[1:] != vals[:-1])
        ids, vals = ids[fresh], vals[fresh]
        Sp, Np, Cp = _evaluate_at(s, D, lv, mids, steps, vals)
        best = offer(vals, Sp, Np)
        same = ids[1:] == ids[:-1]  # consecutive points of one gap bound a new gap
        h, l = np.flatnonzero(same), np.flatnonzero(same) + 1
        # A gap that no cut splits (all its keys at one value next to lo) is swept next round.
        stuck = np.bincount(ids, minlength=big.size)[ids[h]] == 2
        his, los, Shi, Nhi, Chi, Slo, Nlo, Clo = vals[h], vals[l], Sp[h], Np[h], Cp[h], Sp[l], Np[l], Cp[l]
    if not math.isfinite(top[1]):
        return np.zeros(K, dtype=np.int64), S0, N0
    c = _count_ge_levels(s, mids, np.array([top[1]]))[:, 0]
    return c, lv[0] * D[n] + steps[0] @ D[c], float(n * lv[0] ** 2 + steps[1] @ c)


def _sweep_gap(s, lv, mids, steps, hi, lo, S_hi, N_hi):
    """Every candidate key strictly inside ``(lo, hi)``: values (descending) and their ``S``, ``N``."""
    n = s.size
    c_hi = _count_ge_levels(s, mids, np.array([hi]))[:, 0]
    c_lo = _count_ge_levels(s, mids, np.array([np.nextafter(lo, math.inf)]))[:, 0]
    start, stop = n - c_lo, n - c_hi  # the keys of level j inside the gap: s[start_j:stop_j] / m_j
    cnt = np.maximum(stop - start, 0)
    j = np.repeat(np.arange(mids.size), cnt)
    i = np.repeat(start, cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    keys = s[i] / mids[j]
    order = np.argsort(-keys, kind="stable")
    keys, i, j = keys[order], i[order], j[order]
    S = S_hi + np.cumsum(s[i] * steps[0][j])
    N = N_hi + np.cumsum(steps[1][j])
    last = np.ones(keys.size, dtype=bool)
    last[:-1] = keys[:-1] != keys[1:]
    return keys[last], S[last], N[last]
