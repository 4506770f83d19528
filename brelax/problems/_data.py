"""Shared checks and softmax cross-entropy for the classification problems (Logistic, MLP).

Everything is float64 NumPy. The checks raise ``ValueError``/``TypeError``
naming the argument, so bad data never becomes a silent NaN later on.
"""

from __future__ import annotations

import numpy as np


def check_features(X, name: str = "X") -> np.ndarray:
    """A finite, non-empty 2-D float64 copy of ``X`` (samples in rows)."""
    X = np.asarray(X)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise TypeError(f"{name} must be a numeric array, got dtype {X.dtype}")
    X = np.array(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples x features), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape})")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or inf")
    return X


def encode_labels(y, m: int, classes=None, name: str = "y"):
    """Map labels to ``0..k-1``.

    Parameters
    ----------
    y : 1-D array of length ``m``; integer labels, or floats with integral values
    classes : sequence or None
        The class labels in output order; None: ``np.unique(y)``. At least two.

    Returns
    -------
    codes : int64 array (m,), classes : 1-D array (k,)
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != m:
        raise ValueError(f"{name} must have shape ({m},) to match the {m} rows of X, got shape {y.shape}")
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{name} contains NaN or inf")
        if not np.all(y == np.round(y)):
            raise ValueError(f"{name} must hold integer class labels, got non-integral values")
        y = y.astype(np.int64)
    if classes is None:
        classes = np.unique(y)
    else:
        classes = np.asarray(classes)
        if classes.ndim != 1 or len(np.unique(classes)) != len(classes):
            raise ValueError(f"classes must be a 1-D sequence of distinct labels, got {classes!r}")
        if np.issubdtype(classes.dtype, np.floating):
            if not np.all(np.isfinite(classes)) or not np.all(classes == np.round(classes)):
                raise ValueError(f"classes must be integer labels, got {classes!r}")
            classes = classes.astype(np.int64)
        elif not np.issubdtype(classes.dtype, np.integer):
            raise TypeError(f"classes must be integer labels, got dtype {classes.dtype}")
    if len(classes) < 2:
        raise ValueError(f"need at least 2 classes, got {len(classes)}: {classes!r}")
    order = np.argsort(classes, kind="stable")
    pos = np.searchsorted(classes[order], y)
    pos = np.clip(pos, 0, len(classes) - 1)
    codes = order[pos]
    bad = classes[codes] != y
    if np.any(bad):
        raise ValueError(f"{name} holds labels not in classes {classes.tolist()}: {np.unique(y[bad]).tolist()[:10]}")
    return codes.astype(np.int64), classes


def check_idx(idx, n: int):
    """``None`` (all samples) or a non-empty 1-D integer index array into ``range(n)``."""
    if idx is None:
        return None
    idx = np.asarray(idx)
    if idx.dtype == bool or not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"idx must be an integer index array or None, got dtype {idx.dtype}")
    if idx.ndim != 1 or idx.shape[0] == 0:
        raise ValueError(f"idx must be a non-empty 1-D index array, got shape {idx.shape}")
    if idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"idx must lie in [0, {n}), got values in [{idx.min()}, {idx.max()}]")
    return idx


def check_x(x, dim: int, name: str = "x") -> np.ndarray:
    """The flat parameter vector as float64, shape ``(dim,)``."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (dim,):
        raise ValueError(f"{name} must have shape ({dim},), got {x.shape}")
    return x


def softmax_ce(Z, codes):
    r"""Mean cross-entropy of logits ``Z`` (n, k) against ``codes``, and its gradient in ``Z``.

    ``ce = (1/n) sum_i [logsumexp(Z_i) - Z_{i, y_i}]``, computed with the row
    maximum subtracted so that it never overflows; ``dZ = (softmax(Z) - Y) / n``.
    """
    n = Z.shape[0]
    Zs = Z - Z.max(axis=1, keepdims=True)
    E = np.exp(Zs)
    s = E.sum(axis=1)
    rows = np.arange(n)
    ce = float(np.mean(np.log(s) - Zs[rows, codes]))
    dZ = E / s[:, None]
    dZ[rows, codes] -= 1.0
    dZ /= n
    return ce, dZ


class ClassifierMixin:
    """``predict``, ``accuracy`` and ``test_accuracy`` for problems with ``logits(x, X)``.

    Subclasses set ``X``, ``codes``, ``classes`` and optionally ``X_test``, ``y_test``.
    """

    X_test = None
    y_test = None

    def _set_test(self, X_test, y_test):
        if (X_test is None) != (y_test is None):
            raise ValueError("give both X_test and y_test, or neither")
        if X_test is None:
            return
        X_test = check_features(X_test, "X_test")
        if X_test.shape[1] != self.X.shape[1]:
            raise ValueError(f"X_test must have {self.X.shape[1]} features like X, got shape {X_test.shape}")
        self._test_codes, _ = encode_labels(y_test, X_test.shape[0], self.classes, "y_test")
        self.X_test, self.y_test = X_test, np.asarray(y_test)

    def predict(self, x, X=None):
        """The predicted class labels (from ``classes``) of the rows of ``X`` (default: training X)."""
        X = self.X if X is None else check_features(X)
        return self.classes[np.argmax(self.logits(x, X), axis=1)]

    def accuracy(self, x, X=None, y=None) -> float:
        """Fraction of rows of ``X`` whose predicted label equals ``y`` (default: the training data)."""
        if (X is None) != (y is None):
            raise ValueError("give both X and y, or neither")
        if X is None:
            X, codes = self.X, self.codes
        else:
            X = check_features(X)
            codes, _ = encode_labels(y, X.shape[0], self.classes)
        return float(np.mean(np.argmax(self.logits(x, X), axis=1) == codes))

    def test_accuracy(self, x) -> float:
        """Accuracy on the held-out data given as ``X_test``, ``y_test``."""
        if self.X_test is None:
            raise ValueError(f"{self.name} has no test data; pass X_test and y_test")
        return float(np.mean(np.argmax(self.logits(x, self.X_test), axis=1) == self._test_codes))
