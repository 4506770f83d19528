"""Real data that ships with scikit-learn (no download): digits and diabetes.

Only ``load_digits`` and ``load_diabetes`` are used; they read files inside
the scikit-learn package. The ``fetch_*`` loaders download and are never
called. scikit-learn is an optional dependency (``brelax[digits]``); it is
imported only when one of these functions runs.
"""

from __future__ import annotations

import numbers

import numpy as np

from .least_squares import LeastSquares
from .logistic import Logistic
from .mlp import MLP


def _sklearn_datasets():
    try:
        from sklearn import datasets
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("the digits/diabetes problems need scikit-learn: pip install 'brelax[digits]'") from None
    return datasets


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    return int(seed)


def stratified_split(y, test_fraction: float, seed: int):
    """Indices ``(train, test)`` with every class split in the same proportion.

    For each class ``c`` (in sorted order) its ``n_c`` indices are permuted by
    ``np.random.default_rng(seed)`` and the first ``round(test_fraction * n_c)``
    (at least 1, at most ``n_c - 1`` when ``n_c >= 2``) go to the test set.
    Both index arrays are returned sorted, so the row order is the original one.
    """
    tf = (
        float(test_fraction)
        if isinstance(test_fraction, numbers.Real) and not isinstance(test_fraction, bool)
        else None
    )
    if tf is None or not 0.0 < tf < 1.0:
        raise ValueError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
    rng = np.random.default_rng(_check_seed(seed))
    y = np.asarray(y)
    train, test = [], []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        perm = rng.permutation(members)
        n_test = int(np.floor(tf * len(members) + 0.5))
        if len(members) >= 2:
            n_test = min(max(n_test, 1), len(members) - 1)
        test.append(perm[:n_test])
        train.append(perm[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _standardize(X_fit, *Xs):
    """z-score every column with the mean and std of ``X_fit``; constant columns are only centred."""
    mean = X_fit.mean(axis=0)
    std = X_fit.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # constant pixels in digits: centring alone keeps them finite
    return [(X - mean) / std for X in (X_fit,) + Xs]


def digits(split: bool = True, seed: int = 0, test_fraction: float = 0.25, standardize: bool = True):
    """scikit-learn's 8x8 digits (1797 samples, 64 features with values 0..16, 10 classes).

    Parameters
    ----------
    split : bool
        True: a deterministic stratified train/test split (:func:`stratified_split`).
        False: all samples, returned as ``(X, y)``.
    seed : int >= 0, the split's seed
    test_fraction : float in (0, 1)
    standardize : bool
        z-score the features with the training set's mean and std (a
        constant column is only centred).

    Returns
    -------
    (X_train, y_train, X_test, y_test), or (X, y) with ``split=False``;
    float64 features and int64 labels.
    """
    data = _sklearn_datasets().load_digits()
    X, y = np.asarray(data.data, dtype=np.float64), np.asarray(data.target, dtype=np.int64)
    if not split:
        _check_seed(seed)
        return (_standardize(X)[0] if standardize else X), y
    tr, te = stratified_split(y, test_fraction, seed)
    X_tr, X_te = X[tr], X[te]
    if standardize:
        X_tr, X_te = _standardize(X_tr, X_te)
    return X_tr, y[tr], X_te, y[te]


def digits_logistic(seed: int = 0, test_fraction: float = 0.25, l2: float = 0.0, standardize: bool = True) -> Logistic:
    """:class:`Logistic` on the digits training split, carrying the test split for ``test_accuracy``."""
    X_tr, y_tr, X_te, y_te = digits(True, seed, test_fraction, standardize)
    prob = Logistic(X_tr, y_tr, l2=l2, classes=np.arange(10), X_test=X_te, y_test=y_te)
    prob.name = f"digits_logistic(seed={seed})"
    return prob


def digits_mlp(
    hidden=(32,),
    activation: str = "relu",
    l2: float = 0.0,
    seed: int = 0,
    test_fraction: float = 0.25,
    standardize: bool = True,
    quantize_last: bool = True,
) -> MLP:
    """:class:`MLP` on the digits training split, with the test split; ``seed`` fixes the split and ``init()``."""
    X_tr, y_tr, X_te, y_te = digits(True, seed, test_fraction, standardize)
    prob = MLP(
        X_tr,
        y_tr,
        hidden=hidden,
        activation=activation,
        l2=l2,
        seed=seed,
        classes=np.arange(10),
        quantize_last=quantize_last,
        X_test=X_te,
        y_test=y_te,
    )
    prob.name = f"digits_mlp(hidden={list(prob.hidden)},{activation},seed={seed})"
    return prob


def diabetes_least_squares(seed: int = 0, standardize: bool = True) -> LeastSquares:
    """Least squares on scikit-learn's diabetes regression data (442 samples, 10 features).

    With ``standardize`` (default) the features and the target are z-scored
    and both divided by ``sqrt(m)``, so ``f(x) = 1/(2m) sum_i (x_i^T x - y_i)^2``
    is half the mean squared error on standardised data and ``L`` is the
    largest eigenvalue of the feature correlation matrix (about 4). Without
    it, the raw features (age in years, sex as 1/2, ...) and the raw target
    are used unscaled. The rows are permuted by ``default_rng(seed)``, so the
    row order carries no structure for minibatches. ``x_star`` is None: there
    is no planted solution; ``f_lower`` is the unconstrained minimum.
    """
    data = _sklearn_datasets().load_diabetes(scaled=False)
    X, y = np.asarray(data.data, dtype=np.float64), np.asarray(data.target, dtype=np.float64)
    perm = np.random.default_rng(_check_seed(seed)).permutation(len(y))
    X, y = X[perm], y[perm]
    if standardize:
        m = len(y)
        X = _standardize(X)[0] / np.sqrt(m)
        y = (y - y.mean()) / y.std() / np.sqrt(m)
    prob = LeastSquares(X, y)
    prob.name = f"diabetes_lsq(seed={seed},standardize={bool(standardize)})"
    return prob
