"""Brute-force references and shared strategies for the projection tests.

Nothing here calls brelax's kernels: the references enumerate every pattern
``q`` in ``L^n`` (signed levels), so they are independent of the algorithms
they check.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


def signed_table(levels) -> tuple:
    """The signed levels ``{±l_j}`` in increasing order."""
    return tuple(sorted({float(l) for l in levels} | {-float(l) for l in levels}))


@functools.lru_cache(maxsize=64)
def patterns(table: tuple, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every vector of ``table^n``, one per row, shape ``(|table|^n, n)``, and its squared norms."""
    P = np.array(list(itertools.product(table, repeat=n)), dtype=np.float64).reshape(-1, n)
    P.setflags(write=False)
    den = np.einsum("ij,ij->i", P, P)
    den.setflags(write=False)
    return P, den


def max_n(levels, budget: int = 120_000, cap: int = 8) -> int:
    """The largest n <= cap with at most ``budget`` patterns."""
    k = len(signed_table(levels))
    n = 1
    while n < cap and k ** (n + 1) <= budget:
        n += 1
    return n


def candidates(y: np.ndarray, levels, scale=None) -> np.ndarray:
    """The best point of ``Q`` for every pattern: rows ``a_q q``.

    With a free scale ``a_q = max(0, <y, q> / ||q||^2)`` (0 if ``q = 0``),
    the minimiser of ``||y - a q||`` over ``a >= 0``; with a fixed scale ``a_q = scale``.
    """
    P, den = patterns(signed_table(levels), y.shape[0])
    if scale is not None:
        return scale * P
    num = P @ y
    a = np.where(den > 0, np.maximum(num, 0.0) / np.where(den > 0, den, 1.0), 0.0)
    return a[:, None] * P


def brute_sq_distance(y: np.ndarray, levels, scale=None) -> float:
    """``min_{z in Q} ||y - z||^2`` by enumeration (y is 1-D float64).

    Per pattern, ``||y - a q||^2 = ||y||^2 - 2 a <y, q> + a^2 ||q||^2``; at the
    clipped optimal scale this is ``||y||^2 - max(0, <y, q>)^2 / ||q||^2``. The
    cancellation costs about 1e-16 ||y||^2, far below the tests' tolerance.
    """
    P, den = patterns(signed_table(levels), y.shape[0])
    num = P @ y
    yy = float(y @ y)
    if scale is not None:
        return float(max(np.min(yy - 2.0 * scale * num + scale * scale * den), 0.0))
    gain = np.where(den > 0, np.maximum(num, 0.0) ** 2 / np.where(den > 0, den, 1.0), 0.0)
    return max(yy - float(np.max(gain)), 0.0)


def brute_sq_distances(X: np.ndarray, levels) -> np.ndarray:
    """``d_Q(x)^2`` for every row of ``X`` (free scale), for scipy objectives."""
    return np.array([brute_sq_distance(x, levels) for x in X])


def brute_prox_min(y: np.ndarray, levels, lam: float) -> float:
    r"""``min_x 1/2||x - y||^2 + lam/2 d_Q(x)^2`` by enumeration over patterns.

    ``d_Q(x)^2 = min_{q, a >= 0} ||x - a q||^2``, so the objective is the minimum
    over ``q`` of ``min_{x, a >= 0} 1/2||x - y||^2 + lam/2 ||x - a q||^2``.
    For fixed ``(a, q)`` the best ``x = (y + lam a q) / (1 + lam)`` gives
    ``lam/(2(1+lam)) ||y - a q||^2``, so the best ``a`` is the clipped
    projection scale of ``y`` onto the ray of ``q``. Each inner problem is
    solved exactly; the outer minimum is over all of ``L^n``.
    """
    Z = candidates(y, levels)
    X = (y[None, :] + lam * Z) / (1.0 + lam)
    vals = 0.5 * np.sum((X - y) ** 2, axis=1) + 0.5 * lam * np.sum((X - Z) ** 2, axis=1)
    return float(np.min(vals))


# Entries: general floats plus small integers, so that ties (equal magnitudes,
# exact midpoints, zeros) are common rather than of measure zero. Magnitudes
# below 1e-8 become 0 so that squares and power-of-two rescalings never
# underflow (an underflow would make an exact identity inexact).
ENTRIES = st.one_of(
    st.floats(-100.0, 100.0, allow_nan=False, allow_infinity=False).map(lambda x: x if abs(x) >= 1e-8 else 0.0),
    st.integers(-4, 4).map(float),
)


def vectors(max_size: int, min_size: int = 1):
    """1-D float64 arrays of length ``min_size..max_size``."""
    return hnp.arrays(np.float64, st.integers(min_size, max_size), elements=ENTRIES)


def tol(y) -> float:
    """Absolute tolerance on a squared distance: 1e-10 of ``||y||^2`` (plus a floor)."""
    return 1e-10 * float(np.sum(np.asarray(y, dtype=np.float64) ** 2)) + 1e-300


# The sets of THEORY.md section 2, with the largest n that keeps |L|^n small.
NAMED_SETS = {
    "binary": 8,
    "ternary": 8,
    "uniform:3": 6,
    "levels:1,3": 8,
    "levels:0,1,3,7": 6,
    "binary@1": 8,
    "ternary@0.5": 8,
    "uniform:3@0.25": 6,
    "levels:1,3@2": 8,
    "levels:0,1,3,7@1.5": 6,
}
