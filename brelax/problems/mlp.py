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
        r"""An upper bound on ``2 (f(x + v) - f(x) - <grad(x), v>)`` for one hidden layer (THEORY.md, Lemma II.3(f)).

        ``grad`` is :meth:`grad` (``relu'(0) = 0``). Per sample, with the hidden pre-activation ``P = W_1 x_i + b_1``,
        its change ``Q = V_1 x_i + c_1``, ``J = act'(P)``, ``h = act(P)``, the output weights ``W_2' = W_2 + V_2``,
        the logit derivative ``d = V_2 h + W_2 (J Q) + c_2`` and ``Delta_0 = d + V_2 (J Q)`` (the logit change if
        no unit left its linear regime), the hidden remainder ``rho = act(P + Q) - h - J Q`` lies in a box:
        ``[0, (|Q| - |P|)_+]`` for relu (convex; a unit moves off its linear piece only if ``|Q| > |P|``) and
        ``[-c Q^2, c Q^2]`` for tanh (``c = 2/(3 sqrt 3)``, Taylor). The logit change is
        ``Delta = Delta_0 + W_2' rho``, and the cross-entropy remainder of the sample is exactly

        .. math:: R_{\rm softmax}(z, \Delta) + \langle p - e_y, V_2 (J Q) + W_2' \rho\rangle ,

        bounded by :func:`~brelax.problems.logistic.softmax_segment_bound` with the box of centred logit
        changes that ``rho`` allows, plus the largest value of the linear term over the box; the regulariser
        adds ``l2 sum ||V_W||^2`` exactly. Computed from the forward pass at ``x`` and the direction, without
        evaluating ``f`` at ``x + v``. It may be negative (the linear term has either sign). NaN for more
        than one hidden layer (no rigorous bound is implemented there).

        Parameters
        ----------
        x, v : arrays of shape ``(dim,)``

        Returns
        -------
        float (NaN with two or more hidden layers)

        Raises
        ------
        ValueError
            If ``x`` or ``v`` has the wrong shape.
        """
        params = self.unpack(x)
        dirs = self.unpack(check_x(v, self.dim, "v"))
        if len(params) != 2:
            return float("nan")
        (W1, b1), (W2, b2) = params
        (V1, c1), (V2, c2) = dirs
        X, y = self.X, self.codes
        P = X @ W1.T + b1
        Q = X @ V1.T + c1
        h = _act(self.activation, P)
        JQ = _act_grad(self.activation, P, h) * Q
        Z = h @ W2.T + b2
        d = h @ V2.T + JQ @ W2.T + c2
        VJQ = JQ @ V2.T
        if self.activation == "relu":
            lo, hi = np.zeros_like(Q), np.maximum(np.abs(Q) - np.abs(P), 0.0)
        else:
            hi = TANH_C * Q * Q
            lo = -hi
        Zs = Z - Z.max(axis=1, keepdims=True)
        p = np.exp(Zs)
        p /= p.sum(axis=1, keepdims=True)
        W2n = W2 + V2
        # the centred logit change moves by c_j . rho, c_j = W2'_j - sum_l p_l W2'_l, as rho ranges over the box
        C = W2n[None, :, :] - (p @ W2n)[:, None, :]  # (m, k, h)
        b_lo = np.minimum(C * lo[:, None, :], C * hi[:, None, :]).sum(axis=2)
        b_hi = np.maximum(C * lo[:, None, :], C * hi[:, None, :]).sum(axis=2)
        soft = softmax_segment_bound(Z, d + VJQ, b_lo, b_hi) / 2
        rows = np.arange(self.m)
        py = p.copy()
        py[rows, y] -= 1.0  # p - e_y
        g = py @ W2n  # (m, h): the linear term <p - e_y, W2' rho> is largest at an end of each interval
        lin = np.sum(py * VJQ, axis=1) + np.maximum(g * lo, g * hi).sum(axis=1)
        reg = self.l2 * (float(np.sum(V1 * V1)) + float(np.sum(V2 * V2)))
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
