r"""A small multilayer perceptron with softmax cross-entropy and hand-derived backprop."""

from __future__ import annotations

import numbers

import numpy as np

from .._validate import check_choice, check_nonneg
from ._data import ClassifierMixin, check_features, check_idx, check_x, encode_labels, softmax_ce
from .base import Problem, make_layout
from .logistic import softmax_segment_bound

ACTIVATIONS = ("relu", "tanh")
#: ``max |tanh''| / 2 = 2 / (3 sqrt 3)``: Taylor's remainder ``|tanh(p + q) - tanh(p) - tanh'(p) q| <= TANH_C q^2``.
TANH_C = 2.0 / (3.0 * np.sqrt(3.0))


def _act(name, z):
    return np.maximum(z, 0.0) if name == "relu" else np.tanh(z)


def _act_grad(name, z, a):
    # relu'(0) is taken as 0 (a subgradient); tanh' = 1 - tanh^2 reuses the forward value.
    return (z > 0).astype(np.float64) if name == "relu" else 1.0 - a * a


class MLP(ClassifierMixin, Problem):
    r"""Fully connected network, mean softmax cross-entropy plus ``l2/2 sum_l ||W_l||_F^2``.

    With hidden sizes ``(h_1, ..., h_n)`` (one or two in the experiments; any
    number works), ``a_0 = x``, ``a_l = act(W_l a_{l-1} + b_l)`` for
    ``l <= n`` and logits ``z = W_{n+1} a_n + b_{n+1}``. The flat vector holds
    ``W1 (h_1, d), b1, W2 (h_2, h_1), b2, ..., W{n+1} (k, h_n), b{n+1}``.
    Every ``W`` is quantized with one scale per output row (``axis=0``) at
    granularity "block"; the last one only if ``quantize_last``; biases stay
    float.

    **Gradient** (backprop, by the chain rule; checked by finite differences
    in the tests). For a batch ``B`` of ``n_B`` samples,
    ``delta_{n+1} = (softmax(z) - onehot(y)) / n_B`` (rows = samples) and, going
    down, ``grad W_l = delta_l^T a_{l-1} + l2 W_l``, ``grad b_l = sum_rows
    delta_l``, ``delta_{l-1} = (delta_l W_l) * act'(pre_{l-1})``.
    ``relu'(0)`` is taken as 0, so at a kink the result is one element of the
    Clarke subdifferential; finite-difference tests use tanh (smooth) and
    relu at random points, a.s. away from kinks.

    ``L`` is None (unknown: relu is not smooth, and no useful global bound
    exists for tanh networks); ``f_lower = 0`` (every term is >= 0).

    Parameters
    ----------
    X : (m, d) array of finite floats
    y : (m,) integer labels
    hidden : int or tuple of positive ints, default (32,)
    activation : "relu" (default) or "tanh"
    l2 : float >= 0, weight decay on the W's (not the biases)
    seed : int, used by :meth:`init` when it is called without a generator
    classes : labels or None (``np.unique(y)``)
    quantize_last : bool, whether the output layer's W is quantized
    X_test, y_test : optional held-out data for :meth:`test_accuracy`

    Raises
    ------
    ValueError
        On shape mismatch of ``X`` and ``y``, non-finite data, an empty
        ``hidden`` or a size <= 0, an unknown activation, or ``l2 < 0``.
    """

    name = "mlp"

    def __init__(
        self,
        X,
        y,
        hidden=(32,),
        activation: str = "relu",
        l2: float = 0.0,
        seed: int = 0,
        classes=None,
        quantize_last: bool = True,
        *,
        X_test=None,
        y_test=None,
    ):
        self.X = check_features(X)
        self.m, self.d = self.X.shape
        self.codes, self.classes = encode_labels(y, self.m, classes)
        self.k = len(self.classes)
        self.hidden = _check_hidden(hidden)
        self.activation = check_choice(activation, ACTIVATIONS, "activation")
        self.l2 = check_nonneg(l2, "l2")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        self.seed = int(seed)
        self.quantize_last = bool(quantize_last)
        sizes = (self.d,) + self.hidden + (self.k,)
        n_layers = len(sizes) - 1
        specs = []
        for i in range(n_layers):
            quant = self.quantize_last or i < n_layers - 1
            specs.append((f"W{i + 1}", (sizes[i + 1], sizes[i]), quant, 0))
            specs.append((f"b{i + 1}", (sizes[i + 1],), False))
        self.layout = make_layout(specs)
        self.L = None
        self.f_lower = 0.0
        self.n_samples = self.m
        self._set_test(X_test, y_test)

    def unpack(self, x):
        """``[(W1, b1), (W2, b2), ...]`` as views of ``x``."""
        x = check_x(x, self.dim)
        v = [b.view(x) for b in self.layout]
        return list(zip(v[0::2], v[1::2], strict=True))

    def _forward(self, x, X):
        """Pre-activations and activations of every layer; the last pre-activation is the logits."""
        params = self.unpack(x)
        acts, pres = [X], []
        for i, (W, b) in enumerate(params):
            z = acts[-1] @ W.T + b
            pres.append(z)
            if i < len(params) - 1:
                acts.append(_act(self.activation, z))
        return params, pres, acts

    def logits(self, x, X=None):
        return self._forward(x, self.X if X is None else X)[1][-1]

    def _batch(self, idx):
        idx = check_idx(idx, self.m)
        if idx is None:
            return self.X, self.codes
        return self.X[idx], self.codes[idx]

    def _reg(self, params):
        return 0.5 * self.l2 * sum(float(np.sum(W * W)) for W, _ in params)

    def f(self, x, idx=None) -> float:
        X, codes = self._batch(idx)
        params, pres, _ = self._forward(x, X)
        ce, _ = softmax_ce(pres[-1], codes)
        return ce + self._reg(params)

    def grad(self, x, idx=None):
        X, codes = self._batch(idx)
        params, pres, acts = self._forward(x, X)
        _, delta = softmax_ce(pres[-1], codes)
        grads = [None] * len(params)
        for i in range(len(params) - 1, -1, -1):
            W, _ = params[i]
            grads[i] = ((delta.T @ acts[i] + self.l2 * W).ravel(), delta.sum(axis=0))
            if i > 0:
                delta = (delta @ W) * _act_grad(self.activation, pres[i - 1], acts[i])
        return np.concatenate([g for pair in grads for g in pair])

    def segment_curvature(self, x, v) -> float:
        r"""An upper bound on ``2 (f(x + v) - f(x) - <grad(x), v>)`` (THEORY.md, Lemma II.3(f)), any depth.

        ``grad`` is :meth:`grad` (``relu'(0) = 0``). The change of every activation along the segment is split,
        per sample and unit, as ``Delta a = d + k + r``: ``d`` the first-order change (forward mode, the linear
        map whose transpose backprop applies, so ``<grad, v> = mean_i <p_i - e_{y_i}, d_z>`` plus the
        regulariser's term), ``k`` a known second-order part and ``r`` a remainder known only to lie in a box
        ``[r_lo, r_hi]``. Through a layer ``(W, b) -> (W + V, b + c)`` with ``W' = W + V`` the pre-activation
        change is exactly ``V a + c + W d`` (first order) ``+ V d + W' k`` (known) ``+ W' r`` (the box, by
        interval arithmetic). The activation adds its own remainder ``act(P + DP) - act(P) - J DP``, which
        lies in ``[0, (M - |P|)_+]`` for relu (convex, ``J`` a subgradient; nonzero only if the unit changes
        piece) and in ``[-c M^2, c M^2]`` for tanh (Taylor, ``c = 2/(3 sqrt 3)``), ``M`` the largest
        ``|DP|`` the box allows; ``J = act' in [0, 1]`` carries ``d``, ``k`` and the box to the next layer.
        With the logit change ``Delta = d_z + k_z + W' r``, the cross-entropy remainder of a sample is exactly

        .. math:: R_{\rm softmax}(z, \Delta) + \langle p - e_y, k_z + W' r\rangle ,

        bounded by :func:`~brelax.problems.logistic.softmax_segment_bound` with the box of centred logit
        changes that ``r`` allows, plus the largest value of the linear term over the box; the regulariser
        adds ``l2 sum ||V_W||^2`` exactly. With one hidden layer ``d = J Q``, ``k = 0`` and the box is
        ``[0, (|Q| - |P|)_+]`` (relu), ``Q`` the change of the first pre-activation. Computed from the forward
        pass at ``x`` and the direction, without evaluating ``f`` at ``x + v``. It may be negative (the
        linear term has either sign).

        Parameters
        ----------
        x, v : arrays of shape ``(dim,)``

        Returns
        -------
        float

        Raises
        ------
        ValueError
            If ``x`` or ``v`` has the wrong shape.
        """
        params = self.unpack(x)
        dirs = self.unpack(check_x(v, self.dim, "v"))
        X, y = self.X, self.codes
        a, d, k, lo, hi = X, np.zeros_like(X), np.zeros_like(X), np.zeros_like(X), np.zeros_like(X)
        for (W, b), (V, c) in zip(params[:-1], dirs[:-1], strict=True):
            Wn = W + V
            P = a @ W.T + b
            dP = a @ V.T + c + d @ W.T
            kP = d @ V.T + k @ Wn.T
            pos, neg = np.maximum(Wn, 0.0), np.minimum(Wn, 0.0)
            rlo, rhi = lo @ pos.T + hi @ neg.T, hi @ pos.T + lo @ neg.T  # W' r over the box
            M = np.maximum(np.abs(dP + kP + rlo), np.abs(dP + kP + rhi))  # the largest |Delta P| in the box
            if self.activation == "relu":
                qlo, qhi = np.zeros_like(M), np.maximum(M - np.abs(P), 0.0)
            else:
                qhi = TANH_C * M * M
                qlo = -qhi
            a = _act(self.activation, P)
            J = _act_grad(self.activation, P, a)  # in [0, 1]: it keeps the order of the box ends
            d, k, lo, hi = J * dP, J * kP, J * rlo + qlo, J * rhi + qhi
        (W, b), (V, c) = params[-1], dirs[-1]
        Wn = W + V
        Z = a @ W.T + b
        dz = a @ V.T + c + d @ W.T
        kz = d @ V.T + k @ Wn.T
        Zs = Z - Z.max(axis=1, keepdims=True)
        p = np.exp(Zs)
        p /= p.sum(axis=1, keepdims=True)
        # the centred logit change moves by C_j . r, C_j = W'_j - sum_l p_l W'_l, as r ranges over the box
        C = Wn[None, :, :] - (p @ Wn)[:, None, :]  # (m, k, units)
        b_lo = np.minimum(C * lo[:, None, :], C * hi[:, None, :]).sum(axis=2)
        b_hi = np.maximum(C * lo[:, None, :], C * hi[:, None, :]).sum(axis=2)
        soft = softmax_segment_bound(Z, dz + kz, b_lo, b_hi) / 2
        rows = np.arange(self.m)
        py = p.copy()
        py[rows, y] -= 1.0  # p - e_y
        g = py @ Wn  # the linear term <p - e_y, W' r> is largest at an end of each interval
        lin = np.sum(py * kz, axis=1) + np.maximum(g * lo, g * hi).sum(axis=1)
        reg = self.l2 * sum(float(np.sum(Vw * Vw)) for Vw, _ in dirs)
        return float(2.0 * np.mean(soft + lin) + reg)

    def init(self, rng=None) -> np.ndarray:
        """He-normal (relu) or Glorot-normal (tanh) hidden weights, Glorot-normal output, zero biases.

        ``rng`` is a ``np.random.Generator``; None uses ``default_rng(seed)``.
        The draws run over the layers in layout order, so a seed fixes the
        point bit for bit.
        """
        rng = np.random.default_rng(self.seed) if rng is None else rng
        x = np.zeros(self.dim)
        weights = self.layout[0::2]
        for i, blk in enumerate(weights):
            fan_out, fan_in = blk.shape
            last = i == len(weights) - 1
            var = 2.0 / fan_in if (self.activation == "relu" and not last) else 2.0 / (fan_in + fan_out)
            x[blk.start : blk.stop] = rng.standard_normal(blk.size) * np.sqrt(var)
        return x

    def describe(self) -> dict:
        return {
            **super().describe(),
            "m": self.m,
            "d": self.d,
            "k": self.k,
            "hidden": list(self.hidden),
            "activation": self.activation,
            "l2": self.l2,
            "quantize_last": self.quantize_last,
        }


def _check_hidden(hidden) -> tuple:
    if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        hidden = tuple(hidden)
    except TypeError:
        raise TypeError(f"hidden must be an int or a tuple of ints, got {hidden!r}") from None
    if not hidden:
        raise ValueError("hidden must list at least one layer size, got ()")
    for h in hidden:
        if isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1:
            raise ValueError(f"hidden sizes must be positive ints, got {hidden!r}")
    return tuple(int(h) for h in hidden)
