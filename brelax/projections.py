r"""Exact Euclidean projections onto free-scale quantization cones.

All kernels work on a batch of scale groups: ``a`` is a ``(G, n)`` float64
array of magnitudes ``|y|`` (one row per group, each row has its own scale).
They return the level index of every entry (``0..K`` into the non-negative
levels ``l_0 < ... < l_K``) and the scale of every row. Signs are applied by
the caller (``sign(0) = +1``), because the projection of ``y`` is
``sign(y) * P(|y|)`` for a symmetric level set.

The problem solved per row is

.. math::

    \min_{a \ge 0,\ q \in \{l_0,\dots,l_K\}^n} \| |y| - a q \|^2 .

For a fixed pattern ``q`` the best scale is ``a = <|y|, q> / ||q||^2`` and the
squared distance is ``||y||^2 - <|y|, q>^2 / ||q||^2``, so the problem is
``max_q <|y|, q>^2 / ||q||^2`` over the patterns that can be optimal.

**Tie rule** (deterministic, the same in every kernel and backend):

* an entry exactly at a midpoint ``|y_i| / a = (l_j + l_{j+1}) / 2`` goes to
  the larger level ``l_{j+1}``;
* among patterns with equal objective the one reached first in the sweep,
  i.e. the one with the largest threshold (fewest entries promoted), wins;
* the zero row maps to scale 0 with every entry at level ``l_0``.

Everything here is written once against the array API and runs unchanged on
NumPy arrays and torch tensors (CPU or CUDA).
"""

from __future__ import annotations

import math


def _level_array(xp, levels, like):
    return xp.asarray(levels, dtype=xp.float64, device=_device(like))


def _device(x):
    import array_api_compat

    return array_api_compat.device(x)


def single_level(xp, a, levels):
    r"""Closed form for one level ``l_0 > 0`` (binary: ``L = {±l_0}``).

    Every entry sits at ``l_0``, so the pattern is fixed and the only unknown
    is the scale: ``a = <|y|, 1> l_0 / (n l_0^2) = ||y||_1 / (n l_0)``.
    Exact by the fixed-pattern formula above. Cost O(n).
    """
    n = a.shape[1]
    scale = xp.sum(a, axis=1) / (n * float(levels[0]))
    idx = xp.zeros(a.shape, dtype=xp.int64, device=_device(a))
    return idx, scale


def ternary_sort(xp, a, levels):
    r"""Exact projection for ``L = {0, ±l_1}``, sort based.

    Why it is exact: at a scale ``a`` the best pattern keeps the entries with
    ``|y_i| >= a l_1 / 2``, so every candidate pattern keeps the ``t`` largest
    magnitudes for some ``t``. With ``S_t`` the sum of the ``t`` largest, the
    objective is ``S_t^2 / (t l_1^2)``; take ``t* = argmax_t S_t^2 / t`` and
    ``a = S_t* / (t* l_1)``. Only ``t`` at which the sorted magnitude strictly
    drops are candidates (tie rule). That loses nothing: at a threshold equal
    to a tied magnitude, keeping or dropping the whole tied block are both
    nearest-level patterns at that scale, so one of them is at least as good
    as any split of the block (the argument of :func:`level_sweep`, K = 1).

    Cost O(n log n) for the sort, O(n) memory.
    """
    G, n = a.shape
    dev = _device(a)
    l1 = float(levels[1])
    s = xp.sort(a, axis=1, descending=True)
    S = xp.cumulative_sum(s, axis=1)
    t = xp.arange(1, n + 1, dtype=xp.float64, device=dev)
    obj = S * S / t
    drop = xp.concat([s[:, :-1] != s[:, 1:], xp.ones((G, 1), dtype=xp.bool, device=dev)], axis=1)
    obj = xp.where(drop, obj, -1.0)
    tstar = xp.argmax(obj, axis=1)
    thr = xp.take_along_axis(s, tstar[:, None], axis=1)
    best = xp.take_along_axis(S, tstar[:, None], axis=1)[:, 0]
    # The zero row: nothing beats keeping no entry, scale 0.
    thr = xp.where(best[:, None] > 0, thr, math.inf)
    idx = xp.astype(a >= thr, xp.int64)
    kept = xp.sum(xp.astype(idx, xp.float64), axis=1)
    scale = xp.where(kept > 0, best / (xp.where(kept > 0, kept, 1.0) * l1), 0.0)
    return idx, scale


def level_sweep(xp, a, levels):
    r"""Exact projection for any level set ``0 <= l_0 < ... < l_K``, by a breakpoint sweep.

    For a fixed scale ``a`` the best level for entry ``i`` is the level
    nearest to ``|y_i| / a``; it moves from ``l_j`` up to ``l_{j+1}`` exactly
    when ``a`` falls below the breakpoint ``|y_i| / m_j`` with
    ``m_j = (l_j + l_{j+1}) / 2``. Sorting all ``nK`` breakpoints in
    decreasing order and applying the moves one by one visits every pattern
    that is nearest-level for some ``a``, updating ``<|y|, q>`` and
    ``||q||^2`` by ``|y_i| (l_{j+1} - l_j)`` and ``l_{j+1}^2 - l_j^2``.

    Why it is exact: an optimal ``(a*, q*)`` has ``q*`` nearest-level at
    ``a*`` (else re-rounding lowers the distance), and the distance at the best
    scale of a pattern is a function of the pattern alone, so the best visited
    pattern is optimal. Only the states after all breakpoints of equal value
    are candidates: at a tied breakpoint both neighbouring patterns are
    nearest-level at that ``a`` (the tied entries are equidistant), so one of
    them is at least as good, and this keeps the pattern a function of a
    single threshold, which makes the tie rule well defined.

    Cost O(nK log(nK)) time, O(nK) memory.
    """
    G, n = a.shape
    dev = _device(a)
    lv = _level_array(xp, levels, a)
    K = lv.shape[0] - 1
    mids = (lv[:-1] + lv[1:]) / 2
    dl = lv[1:] - lv[:-1]
    dn = lv[1:] * lv[1:] - lv[:-1] * lv[:-1]
    keys3 = a[:, :, None] / mids
    keys = xp.reshape(keys3, (G, n * K))
    order = xp.argsort(keys, axis=1, descending=True, stable=True)
    ks = xp.take_along_axis(keys, order, axis=1)
    inc_s = xp.take_along_axis(xp.reshape(a[:, :, None] * dl, (G, n * K)), order, axis=1)
    inc_n = xp.reshape(xp.take(dn, xp.reshape(order % K, (-1,))), (G, n * K))
    l0 = float(levels[0])
    s0 = l0 * xp.sum(a, axis=1)
    n0 = n * l0 * l0
    S = s0[:, None] + xp.cumulative_sum(inc_s, axis=1)
    N = n0 + xp.cumulative_sum(inc_n, axis=1)
    obj = xp.where(N > 0, S * S / N, 0.0)
    last = xp.concat([ks[:, :-1] != ks[:, 1:], xp.ones((G, 1), dtype=xp.bool, device=dev)], axis=1)
    obj = xp.where(last, obj, -1.0)
    obj0 = s0 * s0 / n0 if n0 > 0 else xp.zeros((G,), dtype=xp.float64, device=dev)
    kstar = xp.argmax(xp.concat([obj0[:, None], obj], axis=1), axis=1)
    picked = xp.take_along_axis(ks, xp.clip(kstar - 1, 0, None)[:, None], axis=1)
    thr = xp.where(kstar[:, None] > 0, picked, math.inf)
    idx = xp.sum(xp.astype(keys3 >= thr[:, :, None], xp.int64), axis=2)
    return idx, optimal_scale(xp, a, idx, lv)


def nearest_level(xp, u, levels):
    r"""Index of the level nearest to ``u >= 0``; a midpoint goes up.

    With a fixed scale ``a`` the set is a product of finite sets, so the
    projection separates over entries and this is exact. Cost O(n log K)
    time (a binary search among the midpoints), O(n) memory.
    """
    lv = _level_array(xp, levels, u)
    mids = (lv[:-1] + lv[1:]) / 2
    if mids.shape[0] == 0:
        return xp.zeros(u.shape, dtype=xp.int64, device=_device(u))
    # #{j : u >= m_j} = the insertion point of u after equal midpoints: O(n log K) time, O(n) memory.
    flat = xp.reshape(xp.astype(u, xp.float64), (-1,))
    return xp.reshape(xp.astype(xp.searchsorted(mids, flat, side="right"), xp.int64), u.shape)


def optimal_scale(xp, a, idx, lv):
    """Best scale ``<|y|, q> / ||q||^2`` per row for a fixed pattern (0 if ``q = 0``)."""
    q = xp.take(lv, xp.reshape(idx, (-1,)))
    q = xp.reshape(q, idx.shape)
    num = xp.sum(a * q, axis=1)
    den = xp.sum(q * q, axis=1)
    return xp.where(den > 0, num / xp.where(den > 0, den, 1.0), 0.0)


#: Peak bytes of :func:`level_sweep` per key (n K keys per row), measured with tracemalloc (235 bytes per
#: entry for K = 3): the basis of the up-front estimate of :func:`level_sweep_bounded`.
SWEEP_BYTES_PER_KEY = 80
#: The reference sweep refuses a row whose estimated peak exceeds this (1 GiB).
MAX_SWEEP_BYTES = 1 << 30
#: Rows are swept in blocks of at most this many keys, so that many short rows stay in bounded memory.
SWEEP_BLOCK_KEYS = 1 << 16


def level_sweep_bounded(xp, a, levels):
    """:func:`level_sweep` on blocks of rows of at most ``SWEEP_BLOCK_KEYS`` keys, refusing what cannot fit.

    The same result as :func:`level_sweep` (rows are independent). Its memory
    is ``O(nK)`` per row; a row whose estimate ``SWEEP_BYTES_PER_KEY * n * K``
    exceeds ``MAX_SWEEP_BYTES`` is refused up front, before any allocation.

    Raises
    ------
    ValueError
        Naming the estimated bytes, when one row of ``n K`` keys would exceed
        ``MAX_SWEEP_BYTES`` (on NumPy and on CPU tensors the fast kernels of
        :mod:`brelax.fast_levels` run instead, in ``O(n)`` memory whatever K).
    """
    G, n = a.shape
    K = len(levels) - 1
    need = SWEEP_BYTES_PER_KEY * n * K
    if need > MAX_SWEEP_BYTES:
        raise ValueError(
            f"w: the exact projection of a scale group of {n} entries onto {K + 1} levels by the reference sweep "
            f"needs about {need / 2**30:.1f} GiB (over the {MAX_SWEEP_BYTES / 2**30:.0f} GiB limit); use smaller "
            f"groups (axis= or group_size=), fewer levels, or a NumPy array / CPU tensor (bounded memory)"
        )
    step = max(1, SWEEP_BLOCK_KEYS // max(n * K, 1))
    if step >= G:
        return level_sweep(xp, a, levels)
    parts = [level_sweep(xp, a[r0 : r0 + step, :], levels) for r0 in range(0, G, step)]
    return xp.concat([p[0] for p in parts], axis=0), xp.concat([p[1] for p in parts], axis=0)


def exact_kernel(levels):
    """The exact (reference) kernel for a free-scale set with these non-negative levels.

    Looked up in :data:`brelax.kernels.TABLE`: :func:`single_level`,
    :func:`ternary_sort` or :func:`level_sweep_bounded`.
    """
    from .kernels import kernel

    return kernel(levels, "reference")
