"""Heuristic quantizers, kept as baselines. **None of them is exact.**

They are what much of the literature and several libraries use. brelax never
uses them by default; they exist so that benchmarks and figures can show how
far each is from the exact projection of :mod:`brelax.sets`.
Every function takes the same granularity arguments as ``QuantSet.project``
and returns an array of the input's shape, dtype and backend.
"""

from __future__ import annotations

from . import projections
from .sets import check_granularity, from_groups, get_set, to_groups


def _prepare(w, axis, group_size):
    """The same argument checks and grouping as ``QuantSet.project``."""
    xp, shape, axis, group_size = check_granularity(w, axis, group_size)
    g = xp.astype(to_groups(xp, w, axis, group_size), xp.float64)
    return xp, g, shape, axis


def _finish(xp, values, shape, axis, dtype):
    return xp.astype(from_groups(xp, values, shape, axis), dtype)


def twn(w, axis=None, group_size=None, factor: float = 0.7):
    r"""Ternary Weight Networks threshold (Li, Zhang, Liu 2016; :cite:`li2016ternary`). Not exact.

    Keeps ``|w_i| > factor * mean|w|`` with the sign of ``w_i`` and scale the
    mean of the kept magnitudes. The threshold ``0.7 mean|w|`` approximates the
    optimum only for roughly Gaussian weights.
    """
    xp, g, shape, axis = _prepare(w, axis, group_size)
    a = xp.abs(g)
    thr = factor * xp.mean(a, axis=1, keepdims=True)
    keep = xp.astype(a > thr, xp.float64)
    cnt = xp.sum(keep, axis=1, keepdims=True)
    scale = xp.sum(a * keep, axis=1, keepdims=True) / xp.where(cnt > 0, cnt, 1.0)
    return _finish(xp, _signed(xp, g) * keep * scale, shape, axis, w.dtype)


def ternary_divide_by_n(w, axis=None, group_size=None, factor: float = 0.7):
    r"""The ternary variant in the authors' code: the TWN support, the kept sum divided by n. Not exact.

    Keeps ``|w_i| >= factor * mean|w|`` (note ``>=``) with the sign of ``w_i``,
    and uses the scale ``sum of kept |w_i| / n`` (the mean of ``|w| * keep``
    over *all* entries) instead of dividing by the number kept, which shrinks
    every kept weight. On standard Gaussian data its relative squared error
    ``d^2 / ||w||^2`` is about 0.337, against about 0.19 for the exact projection.
    (The authors' code also caps the threshold at 100, which only matters when
    ``mean|w| > 143``; that cap is left out so the baseline stays scale-equivariant.)
    """
    xp, g, shape, axis = _prepare(w, axis, group_size)
    a = xp.abs(g)
    thr = factor * xp.mean(a, axis=1, keepdims=True)
    keep = xp.astype(a >= thr, xp.float64)
    scale = xp.sum(a * keep, axis=1, keepdims=True) / g.shape[1]
    return _finish(xp, _signed(xp, g) * keep * scale, shape, axis, w.dtype)


def lloyd(w, qset="ternary", axis=None, group_size=None, iters: int = 30):
    r"""Alternating minimisation (Lloyd's algorithm with a tied codebook). A local optimum only.

    Starts from ``a = max|w| / l_K`` and alternates ``q = nearest level of |w|/a``
    and ``a = <|w|, q> / ||q||^2`` for at most ``iters`` rounds or until the
    pattern stops changing. Each round lowers the distance, but the fixed point
    depends on the start and is not the global minimum in general.
    """
    Q = get_set(qset)
    if Q.scale is not None:
        raise ValueError(f"lloyd needs a free-scale set, got {Q.name}")
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iters must be an int >= 1, got {iters!r}")
    xp, g, shape, axis = _prepare(w, axis, group_size)
    a = xp.abs(g)
    lv = xp.asarray(Q.levels, dtype=xp.float64, device=projections._device(a))
    scale = xp.max(a, axis=1) / Q.levels[-1]
    idx = None
    for _ in range(int(iters)):
        safe = xp.where(scale > 0, scale, 1.0)
        new = projections.nearest_level(xp, a / safe[:, None], Q.levels)
        scale = projections.optimal_scale(xp, a, new, lv)
        if idx is not None and bool(xp.all(new == idx)):
            break
        idx = new
    q = xp.reshape(xp.take(lv, xp.reshape(idx, (-1,))), idx.shape)
    return _finish(xp, _signed(xp, g) * q * scale[:, None], shape, axis, w.dtype)


def greedy_residual(w, terms: int = 2, axis=None, group_size=None):
    r"""Greedy residual binarisation (as in Guo et al. 2017, "Network Sketching"). Not exact.

    ``w ~ sum_k a_k b_k`` with ``b_k = sign(r_k)``, ``a_k = mean|r_k|`` and
    ``r_{k+1} = r_k - a_k b_k``. With ``terms = 1`` it is the exact binary
    projection; with more terms its points lie in a set of ``2^terms`` levels
    whose spacing is not fixed, so it is a peer heuristic, not a projection
    onto a fixed ``Q_L``.
    """
    xp, g, shape, axis = _prepare(w, axis, group_size)
    r = g
    out = xp.zeros_like(g)
    for _ in range(int(terms)):
        b = _signed(xp, r)
        a = xp.mean(xp.abs(r), axis=1, keepdims=True)
        out = out + a * b
        r = g - out
    return _finish(xp, out, shape, axis, w.dtype)


def _signed(xp, g):
    return xp.where(g < 0, -1.0, 1.0)


HEURISTICS = {
    "twn": twn,
    "lloyd": lloyd,
    "greedy": greedy_residual,
    "ternary_divide_by_n": ternary_divide_by_n,
}
