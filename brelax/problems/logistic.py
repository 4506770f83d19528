r"""Multinomial (softmax) logistic regression with an exact smoothness constant."""

from __future__ import annotations

import numpy as np

from .._validate import check_nonneg
from ._data import ClassifierMixin, check_features, check_idx, check_x, encode_labels, softmax_ce
from .base import Problem, make_layout


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
