"""Least squares ``f(x) = 1/2 ||A x - b||^2``, and planted instances with a solution in ``Q``."""

from __future__ import annotations

import numpy as np

from .._validate import check_nonneg
from ._data import check_idx
from .base import Problem, make_layout


class LeastSquares(Problem):
    r"""``f(x) = 1/2 ||A x - b||^2`` (a sum, not a mean, so that ``L = ||A||_2^2`` exactly).

    With ``idx`` (a minibatch of rows) the objective and gradient are rescaled
    by ``m / |idx|``, so they are unbiased estimates of the full ones.

    Attributes
    ----------
    L : float
        ``||A||_2^2 = sigma_max(A)^2``, the exact Lipschitz constant of the gradient.
    f_lower : float
        The unconstrained least-squares minimum, a valid lower bound on ``f`` over ``Q``.
    """

    name = "lsq"

    def __init__(self, A, b, x_star=None, axis=None):
        A = np.asarray(A, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if A.ndim != 2:
            raise ValueError(f"A must be a 2-D matrix, got shape {A.shape}")
        if b.shape != (A.shape[0],):
            raise ValueError(f"b must have shape ({A.shape[0]},) to match A {A.shape}, got {b.shape}")
        if not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
            raise ValueError("A and b must be finite")
        self.A, self.b = A, b
        self.m, n = A.shape
        self.layout = make_layout([("x", (n,), True, axis)])
        self.L = float(np.linalg.norm(A, 2) ** 2)
        sol, *_ = np.linalg.lstsq(A, b, rcond=None)
        self.f_lower = float(0.5 * np.sum((A @ sol - b) ** 2))
        self.x_star = None if x_star is None else np.asarray(x_star, dtype=np.float64)
        self.n_samples = self.m

    def _rows(self, idx):
        idx = check_idx(idx, self.m)
        if idx is None:
            return self.A, self.b, 1.0
        return self.A[idx], self.b[idx], self.m / len(idx)

    def f(self, x, idx=None) -> float:
        A, b, w = self._rows(idx)
        r = A @ x - b
        return float(0.5 * w * (r @ r))

    def grad(self, x, idx=None):
        A, b, w = self._rows(idx)
        return w * (A.T @ (A @ x - b))

    def curvature(self, v, w) -> float:
        r"""``<v, H w>`` with ``H = A^T A``, the Hessian: ``f(x + D) = f(x) + <grad f(x), D> + <D, H D>/2`` exactly.

        The a-priori curvature the recorded flip cost of THEORY.md Lemma II.3(e) uses; ``H <= L I``.
        """
        return float((self.A @ np.asarray(v, dtype=np.float64)) @ (self.A @ np.asarray(w, dtype=np.float64)))

    def init(self, rng):
        return rng.standard_normal(self.dim) / np.sqrt(self.dim)


def least_squares(
    m: int, n: int, qset="binary", noise: float = 0.0, seed: int = 0, cond=None, normalize: bool = True
) -> LeastSquares:
    """A planted instance: ``b = A x_star + noise * e`` with ``x_star`` in ``Q``.

    ``x_star = q`` with ``q`` drawn uniformly from the signed levels (each entry
    independently; at least one non-zero), scale 1. ``A`` is Gaussian with
    entries ``N(0, 1/m)`` (so ``L`` is about ``(1 + sqrt(n/m))^2``), or, with
    ``cond`` given, has singular values spaced geometrically from 1 to
    ``1/cond``.

    Parameters
    ----------
    m, n : int > 0
    qset : QuantSet or name
    noise : float >= 0, standard deviation of the noise on ``b``
    seed : int
    cond : float >= 1 or None
    """
    from ..sets import get_set

    Q = get_set(qset)
    for v, nm in ((m, "m"), (n, "n")):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{nm} must be a positive int, got {v!r}")
    noise = check_nonneg(noise, "noise")
    rng = np.random.default_rng(seed)
    table = np.asarray(Q.table)
    nonzero = table[table != 0]
    q = rng.choice(table, size=n)
    if not np.any(q):
        q[0] = rng.choice(nonzero)
    x_star = q * (Q.scale or 1.0)
    A = rng.standard_normal((m, n)) / (np.sqrt(m) if normalize else 1.0)
    if cond is not None:
        cond = float(cond)
        if not cond >= 1:
            raise ValueError(f"cond must be >= 1, got {cond}")
        U, _, Vt = np.linalg.svd(A, full_matrices=False)
        s = np.geomspace(1.0, 1.0 / cond, len(_))
        A = (U * s) @ Vt
    b = A @ x_star + noise * rng.standard_normal(m)
    prob = LeastSquares(A, b, x_star=x_star)
    prob.name = f"lsq(m={m},n={n},noise={noise:g})"
    return prob
