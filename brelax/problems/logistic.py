r"""Multinomial (softmax) logistic regression with an exact smoothness constant."""

from __future__ import annotations

import numpy as np

from .._validate import check_nonneg
from ._data import ClassifierMixin, check_features, check_idx, check_x, encode_labels, softmax_ce
from .base import Problem, make_layout


def psi(a):
    r"""``psi(a) = (e^a - 1 - a) / a^2 = int_0^1 (1 - s) e^{s a} ds`` elementwise (``psi(0) = 1/2``), never below it.

    Near 0 the closed form cancels, so for ``a < 1e-2`` the series ``sum_n a^n / (n + 2)!`` is used with its
    tail after ``a^3`` bounded by ``1.02 a^4 / 720`` (``e^a < 1.02`` there): an upper bound, as the majorant
    needs. Overflows to ``inf`` for ``a > ~709``.
    """
    a = np.asarray(a, dtype=np.float64)
    small = a < 1e-2
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        closed = (np.expm1(a) - a) / (a * a)
    series = 0.5 + a / 6 + a * a / 24 + a**3 / 120 + 1.02 * a**4 / 720
    return np.where(small, series, closed)


def softmax_segment_bound(Z, Delta, b_lo=None, b_hi=None, iters: int = 40):
    r"""Per row ``i``: an upper bound on ``2 R_i``, ``R_i = lse(z_i + Delta_i) - lse(z_i) - <p_i, Delta_i>``.

    THEORY.md, Lemma II.3(f). With ``p = softmax(z)``, ``b = Delta - <p, Delta>`` and ``a = max_j b_j``,
    ``R <= int_0^1 min(a, g(s)) ds`` where ``g(s) = sum_j p_j b_j (e^{s b_j} - 1)`` bounds the growth of the
    slope ``<softmax(z + s Delta), Delta> - <p, Delta>`` (the curvature ``Var_{p(s)}(Delta)`` is at most
    ``sum_j p_j e^{s b_j} b_j^2``) and ``a`` caps it (the slope never exceeds ``max_j Delta_j``). For every
    ``sigma`` in [0, 1] the integral is at most

    .. math:: G(\sigma) + a (1 - \sigma),\qquad G(\sigma) = \sum_j p_j \big(e^{\sigma b_j} - 1 - \sigma b_j\big),

    so *any* ``sigma`` gives a valid bound; bisection on ``g(sigma) = a`` (``G`` is convex) finds the
    smallest. It is at most ``2 psi(a) Var_p(Delta)`` (:func:`psi`), the plain segment bound.

    With ``b_lo``, ``b_hi`` the centred change is only known to lie in the box ``b + [b_lo, b_hi]`` (entrywise):
    each term of ``G`` is convex in ``b_j``, so its largest value is at an end of the interval, and ``a`` is at
    most ``max_j (b_j + b_hi_j)``; the bound holds for every centred change in the box.

    Parameters
    ----------
    Z, Delta : (n, k) arrays: the logits at the start of the segment and their change along it.
    b_lo, b_hi : optional (n, k) arrays, ``b_lo <= 0 <= b_hi``: an uncertainty box around ``b`` (default none).
    iters : int, bisection steps (only the bound's quality depends on it, not its validity).

    Returns
    -------
    (n,) array >= 0 (``inf`` only if every candidate overflows), with a rounding allowance of
    ``8 k eps max_j |Delta_j| (1 + a)`` (the error of the computed ``<p, Delta>``, propagated).

    Raises
    ------
    ValueError
        If ``Z`` is not 2-D, ``Delta`` has another shape, or only one of ``b_lo``, ``b_hi`` is given or
        either has another shape.
    """
    Z, Delta = np.asarray(Z, dtype=np.float64), np.asarray(Delta, dtype=np.float64)
    if Z.ndim != 2 or Delta.shape != Z.shape:
        raise ValueError(f"Z and Delta must be 2-D arrays of one shape, got Z {Z.shape} and Delta {Delta.shape}")
    for name, box in (("b_lo", b_lo), ("b_hi", b_hi)):
        if (box is None) != (b_lo is None and b_hi is None) or (box is not None and np.shape(box) != Z.shape):
            raise ValueError(f"{name} must be None together with the other end, or of shape {Z.shape}")
    Zs = Z - Z.max(axis=1, keepdims=True)
    P = np.exp(Zs)
    P /= P.sum(axis=1, keepdims=True)
    B = Delta - np.sum(P * Delta, axis=1, keepdims=True)
    ends = (B,) if b_lo is None else (B + b_lo, B + b_hi)
    a = np.maximum(ends[-1].max(axis=1), 0.0)
    live = P > 0  # an underflowed weight contributes nothing (and must not make 0 * inf = nan)

    def parts(s, r):
        """Per row: G(s) and its slope, taking in each term the end of the box with the larger value."""
        val = slope = None
        with np.errstate(over="ignore", invalid="ignore"):
            for E in ends:
                sb = s[:, None] * E[r]
                em = np.expm1(sb)
                v, d = em - sb, E[r] * em
                if val is None:
                    val, slope = v, d
                else:
                    take = v > val
                    val, slope = np.where(take, v, val), np.where(take, d, slope)
            w = np.where(live[r], P[r], 0.0)
            return np.sum(np.where(live[r], w * val, 0.0), axis=1), np.sum(np.where(live[r], w * slope, 0.0), axis=1)

    def bound(s, r=slice(None)):
        return parts(s, r)[0] + a[r] * (1.0 - s)

    ones = np.ones(len(a))
    out = np.fmin(bound(ones), a)  # sigma = 1 (uncapped) and sigma = 0 (the Lipschitz cap a)
    # the best sigma solves g(sigma) = a; bisect only the rows where the cap binds before sigma = 1
    r = np.flatnonzero(parts(ones, slice(None))[1] > a)
    if r.size:
        lo, hi = np.zeros(r.size), np.ones(r.size)
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            up = parts(mid, r)[1] > a[r]
            hi, lo = np.where(up, mid, hi), np.where(up, lo, mid)
        out[r] = np.fmin(out[r], np.fmin(bound(lo, r), bound(hi, r)))
    # rounding allowance: <p, Delta> (hence b and a) is computed with an error of about k eps max|Delta|
    size = np.abs(Delta).max(axis=1) + max(float(np.abs(E - B).max(initial=0.0)) for E in ends)
    slack = 4.0 * Z.shape[1] * np.finfo(np.float64).eps * size * (1.0 + a)
    return 2.0 * (np.maximum(out, 0.0) + slack)


class Logistic(ClassifierMixin, Problem):
    r"""Softmax regression: mean cross-entropy plus ``l2/2 ||W||_F^2``.

    .. math::  f(W, b) = \frac1m \sum_{i=1}^m \Big[\log\sum_{j=1}^k e^{z_{ij}} - z_{i y_i}\Big]
               + \frac{\ell_2}{2}\|W\|_F^2,\qquad z_i = W x_i + b .

    ``x`` is the flat vector ``[W.ravel(), b]`` with layout
    ``W`` (k, d), quantized, one scale per class row (``axis=0``) at
    granularity "block"; ``b`` (k,), float. With ``idx`` the mean runs over
    those samples only (the regulariser is not rescaled), so ``idx = all``
    gives the full objective back.

    **Smoothness constant.** ``L = ||[X, 1]||_2^2 / (2m) + l2``.

    *Proof that grad f is L-Lipschitz.* Write ``Theta = [W, b]`` (k x (d+1))
    and ``u_i = [x_i, 1]`` so ``z_i = Theta u_i``. The Hessian of
    ``lse(z) = log sum_j e^{z_j}`` is ``H(p) = diag(p) - p p^T`` with
    ``p = softmax(z)``, and for every ``v`` in R^k,
    ``v^T H v = Var_{j~p}(v_j) <= E_p[(v_j - c)^2]`` for any ``c``. With
    ``c = (v_max + v_min)/2`` every ``|v_j - c| <= (v_max - v_min)/2``, so
    ``v^T H v <= (v_max - v_min)^2 / 4 <= (v_max^2 + v_min^2)/2 <= ||v||^2/2``,
    the last step because ``v_max`` and ``v_min`` can be read off two
    different entries (k >= 2). Hence for a direction ``Delta`` (k x (d+1)),

    .. math:: \Delta^T \nabla^2 f\, \Delta
        = \frac1m\sum_i (\Delta u_i)^T H_i (\Delta u_i) + \ell_2\|\Delta_W\|^2
        \le \frac1{2m}\|\Delta U^T\|_F^2 + \ell_2\|\Delta\|^2
        \le \Big(\frac{\|U\|_2^2}{2m} + \ell_2\Big)\|\Delta\|_F^2 ,

    and ``0 <= nabla^2 f`` (a sum of PSD terms). For a C^2 function with
    ``0 <= nabla^2 f <= L I`` everywhere, ``grad f(x1) - grad f(x2) =
    int_0^1 nabla^2 f(x2 + s(x1 - x2)) (x1 - x2) ds`` has norm at most
    ``L ||x1 - x2||``. QED.

    *It is the best constant when* ``l2 = 0``: take ``Delta = a v^T`` with
    ``v`` the top right singular vector of ``U``, ``a = (e_1 - e_2)/sqrt 2``,
    and ``Theta`` whose rows 1, 2 are 0 and whose other rows have bias
    ``-M``. As ``M -> inf`` every ``p_i -> (1/2, 1/2, 0, ...)``, where
    ``a^T H a -> 1/2``, so ``Delta^T nabla^2 f Delta -> ||U v||^2/(2m) =
    L ||Delta||^2``. For ``k = 2`` this already happens at ``Theta = 0``
    (the tests check it). With ``l2 > 0`` it is an upper bound, tight when the
    top singular vector of ``U`` has no bias component.

    ``f_lower = 0``: cross-entropy and the regulariser are both >= 0.

    Parameters
    ----------
    X : (m, d) array of finite floats
    y : (m,) integer labels
    l2 : float >= 0
    classes : sequence of labels or None (``np.unique(y)``); at least two
    X_test, y_test : optional held-out data for :meth:`test_accuracy`

    Raises
    ------
    ValueError
        On shape mismatch of ``X`` and ``y``, non-finite data, fewer than two
        classes, labels outside ``classes``, or ``l2 < 0``.
    """

    name = "logistic"

    def __init__(self, X, y, l2: float = 0.0, classes=None, *, X_test=None, y_test=None):
        self.X = check_features(X)
        self.m, self.d = self.X.shape
        self.codes, self.classes = encode_labels(y, self.m, classes)
        self.k = len(self.classes)
        self.l2 = check_nonneg(l2, "l2")
        self.layout = make_layout([("W", (self.k, self.d), True, 0), ("b", (self.k,), False)])
        U = np.hstack([self.X, np.ones((self.m, 1))])
        self.L = float(np.linalg.norm(U, 2) ** 2 / (2 * self.m) + self.l2)
        self.f_lower = 0.0
        self.n_samples = self.m
        self._set_test(X_test, y_test)

    def unpack(self, x):
        """``(W, b)`` views of the flat vector ``x``."""
        x = check_x(x, self.dim)
        Wb, bb = self.layout
        return Wb.view(x), bb.view(x)

    def logits(self, x, X=None):
        W, b = self.unpack(x)
        return (self.X if X is None else X) @ W.T + b

    def _batch(self, idx):
        idx = check_idx(idx, self.m)
        if idx is None:
            return self.X, self.codes
        return self.X[idx], self.codes[idx]

    def f(self, x, idx=None) -> float:
        X, codes = self._batch(idx)
        W, _ = self.unpack(x)
        ce, _ = softmax_ce(self.logits(x, X), codes)
        return ce + 0.5 * self.l2 * float(np.sum(W * W))

    def grad(self, x, idx=None):
        X, codes = self._batch(idx)
        W, _ = self.unpack(x)
        _, dZ = softmax_ce(self.logits(x, X), codes)
        gW = dZ.T @ X + self.l2 * W
        return np.concatenate([gW.ravel(), dZ.sum(axis=0)])

    def curvature(self, v, w) -> float:
        r"""``<v, H w>`` for the quadratic majorant ``H = (1/(2m)) sum_i (I_k kron u_i u_i^T) + l2 (I on W)``.

        With ``u_i = [x_i, 1]``: the Hessian of the mean softmax cross-entropy is
        ``(1/m) sum_i S_i kron u_i u_i^T`` with ``S_i = diag(p_i) - p_i p_i^T <= I/2`` (Böhning, 1992), so
        ``f(x + D) <= f(x) + <grad f(x), D> + <D, H D>/2`` for every x and D, and ``H <= L I``. It is the
        a-priori curvature of the recorded flip cost (THEORY.md, Lemma II.3(e)).
        """
        U = np.hstack([self.X, np.ones((self.m, 1))])

        def mat(z):
            Wz, bz = self.unpack(np.asarray(z, dtype=np.float64))
            return np.hstack([Wz, bz[:, None]]), Wz

        V, Wv = mat(v)
        Z, Wz = mat(w)
        return float(np.sum((U @ V.T) * (U @ Z.T)) / (2 * self.m) + self.l2 * np.sum(Wv * Wz))

    def segment_curvature(self, x, v) -> float:
        r"""An upper bound on ``2 (f(x + v) - f(x) - <grad f(x), v>)`` from the logits at ``x`` and the direction ``v``.

        With ``p_i = softmax(z_i(x))`` and the logit change ``delta_i = V u_i`` (``V = [W_v, b_v]``,
        ``u_i = [x_i, 1]``), the cross-entropy part of the remainder is ``(1/m) sum_i R_i`` with
        ``R_i = lse(z_i + delta_i) - lse(z_i) - <p_i, delta_i>`` (the label term is linear), each bounded by
        :func:`softmax_segment_bound` (THEORY.md, Lemma II.3(f)); the regulariser adds ``l2 ||W_v||^2``
        exactly. The bound is at most

        .. math:: \frac1m \sum_i 2\psi(a_i)\,\mathrm{Var}_{p_i}(\delta_i) + \ell_2\|W_v\|_F^2,\qquad
            a_i = \max_j \delta_{ij} - \langle p_i, \delta_i\rangle,\quad
            \psi(a) = \frac{e^a - 1 - a}{a^2}\ (\psi(0) = \tfrac12),

        the per-sample local curvature ``Var_{p_i}(delta_i)`` (Hessian along ``v`` at ``x``) times the factor
        ``2 psi(a_i) >= 1`` by which it can grow along the segment, which tends to 1 as ``v -> 0``: for small
        steps it is tight where :meth:`curvature` (Böhning's global ``S_i <= I/2``) is not. No value of ``f``
        at ``x + v`` enters.

        Parameters
        ----------
        x, v : arrays of shape ``(dim,)``

        Returns
        -------
        float >= 0

        Raises
        ------
        ValueError
            If ``x`` or ``v`` has the wrong shape.
        """
        Z = self.logits(x)
        Wv, bv = self.unpack(check_x(v, self.dim, "v"))
        return float(np.mean(softmax_segment_bound(Z, self.X @ Wv.T + bv)) + self.l2 * np.sum(Wv * Wv))

    def init(self, rng=None) -> np.ndarray:
        """``W ~ N(0, 1/d)`` entrywise, ``b = 0``: logits of order 1 on standardised data.

        ``rng`` is a ``np.random.Generator``; None uses ``default_rng(0)``.
        """
        rng = np.random.default_rng(0) if rng is None else rng
        x = np.zeros(self.dim)
        Wb = self.layout[0]
        x[Wb.start : Wb.stop] = rng.standard_normal(Wb.size) / np.sqrt(self.d)
        return x

    def describe(self) -> dict:
        return {**super().describe(), "m": self.m, "d": self.d, "k": self.k, "l2": self.l2}
