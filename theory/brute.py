r"""Brute-force distance to a quantization set, independent of :mod:`brelax.projections`.

Free scale: ``d_Q(y)^2 = min(||y||^2, min_{q in L^n, q != 0} ||y||^2 - max(0, <y, q>)^2 / ||q||^2)``
(for a fixed pattern ``q`` the best ``a >= 0`` is ``max(0, <y, q>)/||q||^2``).
Fixed scale ``a``: ``min_q ||y - a q||^2``. Every signed pattern of ``L^n`` is
enumerated, so this is exact and costs ``|L|^n``: keep ``|L|^n`` below ~2e5.
"""

from __future__ import annotations

import itertools

import numpy as np

MAX_PATTERNS = 300_000


def patterns(table, n: int) -> np.ndarray:
    """All ``|table|^n`` vectors with entries in ``table``, as a ``(|table|^n, n)`` array."""
    table = np.asarray(table, dtype=np.float64)
    count = len(table) ** n
    if count > MAX_PATTERNS:
        raise ValueError(f"brute force over {len(table)}^{n} = {count} patterns is too large; use a smaller n")
    idx = np.array(list(itertools.product(range(len(table)), repeat=n)), dtype=np.int64).reshape(-1, n)
    return table[idx]


def largest_n(table_size: int, n_max: int = 8, max_patterns: int = MAX_PATTERNS) -> int:
    """The largest ``n <= n_max`` with ``table_size^n <= max_patterns``."""
    n = 1
    while n < n_max and table_size ** (n + 1) <= max_patterns:
        n += 1
    return n


def distance2(Y, table, scale=None, pats=None) -> np.ndarray:
    """Squared distance of every row of ``Y`` (shape ``(k, n)``) to the set, by enumeration."""
    Y = np.atleast_2d(np.asarray(Y, dtype=np.float64))
    Qp = patterns(table, Y.shape[1]) if pats is None else pats
    if scale is not None:
        diff = Y[:, None, :] - scale * Qp[None, :, :]
        return np.min(np.sum(diff * diff, axis=2), axis=1)
    yy = np.sum(Y * Y, axis=1)
    qq = np.sum(Qp * Qp, axis=1)
    nz = qq > 0
    ip = np.maximum(Y @ Qp[nz].T, 0.0)
    best = np.max(ip * ip / qq[nz][None, :], axis=1) if nz.any() else np.zeros(len(Y))
    return np.maximum(yy - best, 0.0)


def distance2_of_set(Y, qset, pats=None) -> np.ndarray:
    """:func:`distance2` for a :class:`brelax.QuantSet`."""
    return distance2(Y, qset.table, qset.scale, pats)


def project(y, table, pats=None, scale=None):
    """A nearest point of ``y`` in the set, by enumeration: ``(P(y), q)`` with ``P(y) = a q``.

    Independent of :mod:`brelax.projections` (used to test it and the diagnostics built on it).
    Free scale: ``q`` maximises ``max(<y, q>, 0)^2 / ||q||^2`` over every nonzero pattern and
    ``a = max(<y, q>, 0)/||q||^2`` (``q`` the first maximiser in enumeration order; ``P = 0``
    and ``q = 0`` when no pattern correlates positively). Fixed scale: ``q`` minimises
    ``||y - scale q||`` and ``a = scale``.

    Parameters
    ----------
    y : 1-D array of length n
    table : the signed levels
    pats : optional precomputed :func:`patterns` ``(table, n)``
    scale : float or None (free scale)

    Returns
    -------
    (ndarray, ndarray)
    """
    y = np.asarray(y, dtype=np.float64)
    Qp = patterns(table, y.shape[0]) if pats is None else pats
    if scale is not None:
        k = int(np.argmin(np.sum((y[None, :] - scale * Qp) ** 2, axis=1)))
        return scale * Qp[k], Qp[k].copy()
    qq = np.sum(Qp * Qp, axis=1)
    ip = np.where(qq > 0, np.maximum(Qp @ y, 0.0), 0.0)
    val = np.where(qq > 0, ip * ip / np.where(qq > 0, qq, 1.0), 0.0)
    k = int(np.argmax(val))
    if val[k] <= 0:
        return np.zeros_like(y), np.zeros_like(y)
    return ip[k] / qq[k] * Qp[k], Qp[k].copy()


def reference_project(y, levels, scale=None) -> np.ndarray:
    """A nearest point of ``y`` in ``{a q : a >= 0, q in {+-levels}^n}`` (or with the scale fixed), any n.

    Written from THEORY.md Lemmas 3.1-3.3 alone, independent of :mod:`brelax.projections`
    and :mod:`brelax.fast`: the optimal pattern is a nearest-level pattern ``N(a)`` of some
    scale ``a > 0``; ``N(a)`` is constant between consecutive breakpoints ``|y_i| / m_j``
    (``m_j`` the midpoints of the levels), so evaluating it at every breakpoint, between
    consecutive ones and above the largest one enumerates every ``N(a)``. Cost
    ``O((nK)^2)``: for checks, not for training.

    Parameters
    ----------
    y : 1-D array
    levels : the positive levels ``0 <= l_0 < ... < l_K`` (a 0 level is allowed)
    scale : float or None (free scale)

    Returns
    -------
    ndarray, the projection (``sigma(0) = +1``; ties to the larger level).
    """
    y = np.asarray(y, dtype=np.float64)
    lv = np.sort(np.asarray(levels, dtype=np.float64))
    u, sgn = np.abs(y), np.where(y >= 0, 1.0, -1.0)
    mids = (lv[:-1] + lv[1:]) / 2
    if scale is not None:
        return sgn * scale * lv[np.searchsorted(mids, u / scale, side="right")]
    if not np.any(u > 0):
        return sgn * 0.0
    bp = np.unique((u[:, None] / mids[None, :]).ravel()) if mids.size else np.array([1.0])
    bp = bp[bp > 0]
    cand = np.concatenate([bp, (bp[:-1] + bp[1:]) / 2, [2 * bp.max() if bp.size else 1.0]])
    M = lv[np.searchsorted(mids, u[None, :] / cand[:, None], side="right")]  # (candidates, n)
    ip, mm = M @ u, np.sum(M * M, axis=1)
    phi = np.where(mm > 0, ip * ip / np.where(mm > 0, mm, 1.0), 0.0)
    k = int(np.argmax(phi))
    if phi[k] <= 0:
        return sgn * 0.0
    return sgn * (ip[k] / mm[k]) * M[k]


def reference_distance(y, levels, scale=None) -> float:
    """``||y - reference_project(y)||``."""
    y = np.asarray(y, dtype=np.float64)
    return float(np.linalg.norm(y - reference_project(y, levels, scale)))


def project_rows(X, table, pats=None, scale=None) -> np.ndarray:
    """:func:`project` of every row of ``X`` (shape ``(k, n)``), vectorised; returns the projections."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    Qp = patterns(table, X.shape[1]) if pats is None else pats
    if scale is not None:
        d = np.sum(X * X, axis=1)[:, None] - 2 * scale * X @ Qp.T + scale * scale * np.sum(Qp * Qp, axis=1)[None]
        return scale * Qp[np.argmin(d, axis=1)]
    qq = np.sum(Qp * Qp, axis=1)
    ip = np.where(qq[None] > 0, np.maximum(X @ Qp.T, 0.0), 0.0)
    val = ip * ip / np.where(qq > 0, qq, 1.0)[None]
    k = np.argmax(val, axis=1)
    rows = np.arange(len(X))
    coef = np.where(val[rows, k] > 0, ip[rows, k] / np.where(qq[k] > 0, qq[k], 1.0), 0.0)
    return coef[:, None] * Qp[k]
