"""brelax.problems: gradients vs finite differences, minibatches, the sampler, L, data, projector."""

import json

import numpy as np
import pytest

import brelax
from brelax.problems import (
    MLP,
    LeastSquares,
    Logistic,
    MinibatchSampler,
    Projector,
    diabetes_least_squares,
    digits,
    digits_logistic,
    digits_mlp,
    layer_slices,
    least_squares,
    stratified_split,
)


def _toy(m=30, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, d))
    y = np.arange(m) % k  # every class present
    return X, rng.permutation(y)


def _fd_grad(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def _rel_err(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


# ---------------------------------------------------------------- gradients vs finite differences


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_logistic_grad_matches_finite_differences(l2):
    X, y = _toy()
    p = Logistic(X, y, l2=l2)
    x = np.random.default_rng(1).standard_normal(p.dim)
    assert _rel_err(p.grad(x), _fd_grad(p.f, x)) < 1e-6
    idx = np.array([3, 0, 17, 5])
    assert _rel_err(p.grad(x, idx), _fd_grad(lambda z: p.f(z, idx), x)) < 1e-6


@pytest.mark.parametrize("hidden", [(5,), (4, 3)])
@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_mlp_tanh_grad_matches_finite_differences(hidden, l2):
    X, y = _toy()
    p = MLP(X, y, hidden=hidden, activation="tanh", l2=l2)
    x = p.init(np.random.default_rng(2)) + 0.1 * np.random.default_rng(3).standard_normal(p.dim)
    assert _rel_err(p.grad(x), _fd_grad(p.f, x)) < 1e-6
    idx = np.array([1, 2, 29])
    assert _rel_err(p.grad(x, idx), _fd_grad(lambda z: p.f(z, idx), x)) < 1e-6


@pytest.mark.parametrize("hidden", [(6,), (5, 4)])
def test_mlp_relu_grad_matches_finite_differences_away_from_kinks(hidden):
    X, y = _toy()
    p = MLP(X, y, hidden=hidden, activation="relu", l2=0.01)
    x = p.init(np.random.default_rng(4))
    rng = np.random.default_rng(5)
    for b in p.layout[1::2]:  # non-zero biases: a generic point (an all-zero relu input gives z = 0 exactly)
        x[b.start : b.stop] = rng.uniform(0.05, 0.2, b.size)
    h = 1e-6
    # precondition: no pre-activation within reach of the step, so relu is smooth along every FD step
    _, pres, _ = p._forward(x, p.X)
    assert min(np.abs(z).min() for z in pres[:-1]) > 1e3 * h
    assert _rel_err(p.grad(x), _fd_grad(p.f, x, h)) < 1e-6


def test_mlp_forward_matches_a_direct_formula():
    X, y = _toy(m=7)
    p = MLP(X, y, hidden=(3,), activation="tanh")
    x = p.init(np.random.default_rng(0))
    (W1, b1), (W2, b2) = p.unpack(x)
    Z = np.tanh(X @ W1.T + b1) @ W2.T + b2
    P = np.exp(Z) / np.exp(Z).sum(1, keepdims=True)
    assert p.f(x) == pytest.approx(-np.mean(np.log(P[np.arange(7), y])), rel=1e-12)


# ---------------------------------------------------------------- minibatches and the sampler


def _problems():
    X, y = _toy(m=24)
    return [least_squares(24, 6, seed=1), Logistic(X, y, l2=0.1), MLP(X, y, hidden=(4, 3), activation="tanh")]


@pytest.mark.parametrize("k", range(3))
def test_minibatch_of_all_samples_is_the_full_batch(k):
    p = _problems()[k]
    x = np.random.default_rng(0).standard_normal(p.dim)
    every = np.random.default_rng(1).permutation(p.n_samples)
    np.testing.assert_allclose(p.grad(x, every), p.grad(x), rtol=1e-12, atol=1e-14)
    assert p.f(x, every) == pytest.approx(p.f(x), rel=1e-12)


@pytest.mark.parametrize("k", range(1, 3))
def test_minibatch_is_the_mean_over_the_batch(k):
    # the batch objective equals the same problem built on those rows only
    p = _problems()[k]
    x = np.random.default_rng(0).standard_normal(p.dim)
    idx = np.array([0, 5, 6, 11, 20])
    sub = type(p)(
        p.X[idx],
        p.classes[p.codes[idx]],
        classes=p.classes,
        l2=p.l2,
        **({"hidden": p.hidden, "activation": p.activation} if isinstance(p, MLP) else {}),
    )
    assert p.f(x, idx) == pytest.approx(sub.f(x), rel=1e-12)
    np.testing.assert_allclose(p.grad(x, idx), sub.grad(x), rtol=1e-12, atol=1e-14)
    # an epoch of batches, weighted by their sizes, averages to the full gradient
    s = MinibatchSampler(p.n_samples, 7, seed=3)
    acc = sum(len(b) * (p.grad(x, b) - p.l2 * _weights_mask(p) * x) for b in (s.next() for _ in range(4)))
    np.testing.assert_allclose(acc / p.n_samples + p.l2 * _weights_mask(p) * x, p.grad(x), rtol=1e-10, atol=1e-13)


def _weights_mask(p):
    return np.concatenate([np.full(b.size, float(b.name.startswith("W"))) for b in p.layout])


def test_least_squares_minibatch_is_rescaled_sum():
    p = least_squares(20, 5, seed=2)
    x = np.ones(5)
    idx = np.array([1, 4, 9, 10])
    r = p.A[idx] @ x - p.b[idx]
    assert p.f(x, idx) == pytest.approx(0.5 * 20 / 4 * r @ r, rel=1e-12)


def test_sampler_covers_each_sample_once_per_epoch_and_is_deterministic():
    s = MinibatchSampler(10, 3, seed=7)
    assert s.batches_per_epoch == 4
    for epoch in range(3):
        batches = [s.next() for _ in range(4)]
        assert [len(b) for b in batches] == [3, 3, 3, 1]
        assert s.epoch == epoch and s.batch_in_epoch == 3
        assert sorted(np.concatenate(batches).tolist()) == list(range(10))
        assert all(b.dtype == np.int64 for b in batches)
    first = MinibatchSampler(10, 3, seed=7).next()
    seq1 = np.concatenate([b for b, _ in zip(MinibatchSampler(10, 3, seed=7), range(9), strict=False)])
    seq2 = np.concatenate([b for b, _ in zip(MinibatchSampler(10, 3, seed=7), range(9), strict=False)])
    seq3 = np.concatenate([b for b, _ in zip(MinibatchSampler(10, 3, seed=8), range(9), strict=False)])
    np.testing.assert_array_equal(seq1, seq2)
    np.testing.assert_array_equal(first, seq1[:3])
    assert not np.array_equal(seq1, seq3)
    # successive epochs are different permutations
    assert not np.array_equal(seq1[:10], seq1[10:20])


def test_sampler_drop_last():
    s = MinibatchSampler(10, 4, seed=0, drop_last=True)
    assert s.batches_per_epoch == 2
    assert [len(s.next()) for _ in range(6)] == [4] * 6 and s.epoch == 2


@pytest.mark.parametrize(
    "bs, err", [(0, ValueError), (11, ValueError), (-1, ValueError), (2.5, TypeError), (True, TypeError)]
)
def test_sampler_bad_batch_size(bs, err):
    with pytest.raises(err, match="batch_size"):
        MinibatchSampler(10, bs, seed=0)


# ---------------------------------------------------------------- smoothness constants and bounds


def _max_lipschitz_ratio(p, pairs, scale, seed):
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(pairs):
        x1 = scale * rng.standard_normal(p.dim)
        x2 = x1 + scale * rng.standard_normal(p.dim) * rng.uniform(1e-3, 1)
        worst = max(worst, np.linalg.norm(p.grad(x1) - p.grad(x2)) / (p.L * np.linalg.norm(x1 - x2)))
    return worst


def test_logistic_L_is_a_lipschitz_bound_on_random_pairs():
    X, y = _toy(m=40, d=5, k=4)
    for l2 in (0.0, 0.5):
        p = Logistic(X, y, l2=l2)
        U = np.hstack([X, np.ones((40, 1))])
        assert pytest.approx(np.linalg.eigvalsh(U.T @ U).max() / 80 + l2, rel=1e-12) == p.L
        for scale in (0.05, 1.0, 5.0):
            assert _max_lipschitz_ratio(p, 40, scale, seed=int(10 * scale)) <= 1 + 1e-12
    q = digits_logistic(l2=1e-3)
    assert _max_lipschitz_ratio(q, 5, 0.1, seed=0) <= 1 + 1e-12


def test_logistic_L_is_attained_for_two_classes():
    # at Theta = 0 with k = 2 the Hessian reaches L along (e1 - e2) v^T (v: top singular vector of [X, 1])
    X, y = _toy(m=40, d=5, k=2)
    p = Logistic(X, y)
    v = np.linalg.svd(np.hstack([X, np.ones((40, 1))]))[2][0]
    D = np.outer([1.0, -1.0], v) / np.sqrt(2)
    direction = np.concatenate([D[:, :5].ravel(), D[:, 5]])
    eps = 1e-3
    g1, g2 = p.grad(eps * direction), p.grad(-eps * direction)
    ratio = np.linalg.norm(g1 - g2) / (p.L * 2 * eps)
    assert 0.99 < ratio <= 1 + 1e-12


def test_planted_least_squares_solution_is_in_Q_and_optimal():
    for spec in ("binary", "ternary", "uniform:3", "levels:1,3"):
        p = least_squares(30, 12, qset=spec, noise=0.0, seed=3)
        Q = brelax.get_set(spec)
        assert Q.contains(p.x_star)
        assert np.any(p.x_star != 0)
        assert p.f(p.x_star) == pytest.approx(0.0, abs=1e-24)
        assert p.f_lower == pytest.approx(0.0, abs=1e-20)


def test_least_squares_L_is_top_eigenvalue_and_f_lower_is_a_lower_bound():
    rng = np.random.default_rng(0)
    for cond in (None, 10.0):
        p = least_squares(15, 8, noise=0.3, seed=4, cond=cond)
        assert pytest.approx(np.linalg.eigvalsh(p.A.T @ p.A).max(), rel=1e-12) == p.L
        assert p.f_lower > 0
        assert all(p.f_lower <= p.f(rng.standard_normal(8) * s) for s in (0.01, 1, 10) for _ in range(20))
        sol = np.linalg.lstsq(p.A, p.b, rcond=None)[0]
        assert p.f(sol) == pytest.approx(p.f_lower, rel=1e-10)
        assert np.linalg.norm(p.grad(sol)) < 1e-10


def test_f_lower_zero_is_valid_for_classifiers():
    for p in _problems()[1:]:
        x = 20 * np.random.default_rng(0).standard_normal(p.dim)
        assert p.f_lower == 0.0 and p.f(x) >= 0.0 and np.isfinite(p.f(x))


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("cls", [Logistic, MLP])
def test_bad_data_raises(cls):
    X, y = _toy()
    with pytest.raises(ValueError, match=r"y must have shape \(30,\)"):
        cls(X, y[:-1])
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        cls(bad, y)
    with pytest.raises(ValueError, match="y contains NaN"):
        cls(X, np.where(np.arange(30) == 0, np.nan, y.astype(float)))
    with pytest.raises(ValueError, match="2-D"):
        cls(X[:, 0], y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        cls(X, np.zeros(30, int))
    with pytest.raises(ValueError, match="not in classes"):
        cls(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="l2"):
        cls(X, y, l2=-1.0)
    with pytest.raises(ValueError, match="X_test"):
        cls(X, y, X_test=X)
    p = cls(X, y)
    x = np.zeros(p.dim)
    with pytest.raises(ValueError, match="idx"):
        p.grad(x, np.array([0, 30]))
    with pytest.raises(TypeError, match="idx"):
        p.f(x, np.ones(30, bool))
    with pytest.raises(ValueError, match=r"x must have shape"):
        p.f(np.zeros(p.dim + 1))
    with pytest.raises(ValueError, match="no test data"):
        p.test_accuracy(x)


@pytest.mark.parametrize("hidden", [(0,), (4, -1), (), 0, (3.5,)])
def test_mlp_bad_hidden_raises(hidden):
    X, y = _toy()
    with pytest.raises(ValueError, match="hidden"):
        MLP(X, y, hidden=hidden)


def test_mlp_bad_activation_and_lsq_bad_idx():
    X, y = _toy()
    with pytest.raises(ValueError, match=r"activation.*relu, tanh"):
        MLP(X, y, activation="sigmoid")
    with pytest.raises(ValueError, match="idx"):
        least_squares(10, 3).f(np.zeros(3), np.array([], dtype=int))


# ---------------------------------------------------------------- labels, accuracy, data


def test_labels_are_mapped_and_predicted_back():
    X, y = _toy(m=30, k=3)
    labels = np.array([3, 7, 9])[y]
    p = Logistic(X, labels)
    assert p.classes.tolist() == [3, 7, 9] and p.k == 3
    x = p.init(np.random.default_rng(0))
    for _ in range(300):
        x -= p.grad(x) / p.L
    assert set(p.predict(x).tolist()) <= {3, 7, 9}
    assert p.accuracy(x) == pytest.approx(np.mean(p.predict(x) == labels))
    assert p.accuracy(x) > 0.5  # GD with step 1/L made progress from chance (1/3)
    assert p.accuracy(x, X[:10], labels[:10]) == pytest.approx(np.mean(p.predict(x, X[:10]) == labels[:10]))


def test_digits_split_is_deterministic_and_stratified():
    a = digits(seed=0)
    b = digits(seed=0)
    c = digits(seed=1)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[1], c[1])
    X_tr, y_tr, X_te, y_te = a
    assert X_tr.shape[0] + X_te.shape[0] == 1797 and X_tr.shape[1] == 64 and X_tr.dtype == np.float64
    _, y_all = digits(split=False, standardize=False)
    for cl in range(10):
        n_c = np.sum(y_all == cl)
        assert abs(np.sum(y_te == cl) - 0.25 * n_c) <= 0.5
        assert np.sum(y_tr == cl) + np.sum(y_te == cl) == n_c
    np.testing.assert_allclose(X_tr.mean(0), 0, atol=1e-12)
    assert np.all(np.isclose(X_tr.std(0), 1) | np.isclose(X_tr.std(0), 0))
    tr, te = stratified_split(y_all, 0.25, seed=0)
    assert np.intersect1d(tr, te).size == 0 and tr.size + te.size == 1797
    with pytest.raises(ValueError, match="test_fraction"):
        digits(test_fraction=1.0)


def test_digits_problems_carry_test_data():
    p = digits_mlp(hidden=(8,), seed=0)
    q = digits_logistic(seed=0)
    x = p.init()
    np.testing.assert_array_equal(x, p.init(np.random.default_rng(0)))
    np.testing.assert_array_equal(q.init(), q.init(np.random.default_rng(0)))
    assert q.init().any() and not q.init()[q.layout[1].start :].any()  # random W, zero b
    assert p.test_accuracy(x) == pytest.approx(p.accuracy(x, p.X_test, p.y_test))
    assert p.n_samples == q.n_samples == p.X.shape[0] and q.X_test.shape[0] == 1797 - p.n_samples
    assert q.layout[0].shape == (10, 64) and q.layout[0].axis == 0 and not q.layout[1].quantize
    json.dumps(p.describe()), json.dumps(q.describe())


def test_diabetes_least_squares():
    p = diabetes_least_squares(seed=0)
    assert p.A.shape == (442, 10) and p.x_star is None
    np.testing.assert_allclose((p.A**2).sum(0), 1.0, rtol=1e-12)  # z-scored columns / sqrt(m)
    assert pytest.approx(np.linalg.eigvalsh(p.A.T @ p.A).max(), rel=1e-12) == p.L
    assert 0 < p.f_lower < 0.5  # half the unexplained variance fraction
    q = diabetes_least_squares(seed=0)
    np.testing.assert_array_equal(p.A, q.A)
    assert p.f_lower == pytest.approx(diabetes_least_squares(seed=1).f_lower, rel=1e-10)


# ---------------------------------------------------------------- projector on multi-tensor layouts


@pytest.mark.parametrize("granularity, axis", [("tensor", None), ("channel", 0), ("block", 0)])
@pytest.mark.parametrize("spec", ["binary", "ternary", "uniform:3"])
def test_projector_projects_each_weight_and_keeps_biases(granularity, axis, spec):
    X, y = _toy()
    p = MLP(X, y, hidden=(5, 4))
    Q = brelax.get_set(spec)
    P = Projector(p.layout, Q, granularity)
    x = np.random.default_rng(0).standard_normal(p.dim)
    z = P(x)
    for b in p.layout:
        if b.quantize:
            np.testing.assert_array_equal(b.view(z), Q.project(b.view(x), axis=axis))
            assert Q.contains(b.view(z), axis=axis)
        else:
            np.testing.assert_array_equal(b.view(z), b.view(x))
    if axis == 0:  # per-channel scales really differ from one scale per tensor
        W1 = p.layout[0]
        assert not Q.contains(W1.view(z))
    np.testing.assert_allclose(P(z), z, rtol=1e-14, atol=1e-15)  # idempotent up to rounding
    assert P.quantized_mask().sum() == 5 * 4 + 4 * 5 + 3 * 4


def test_quantize_last_false_and_layer_slices():
    X, y = _toy()
    p = MLP(X, y, hidden=(5,), quantize_last=False)
    assert [b.name for b in p.layout] == ["W1", "b1", "W2", "b2"]
    assert [b.quantize for b in p.layout] == [True, False, False, False]
    x = np.random.default_rng(0).standard_normal(p.dim)
    z = Projector(p.layout, brelax.binary())(x)
    sl = layer_slices(p.layout)
    assert list(sl) == ["W1", "b1", "W2", "b2"] and sl["W2"] == slice(25, 40)
    np.testing.assert_array_equal(z[sl["W2"]], x[sl["W2"]])
    assert list(layer_slices(p.layout, quantized_only=True)) == ["W1"]
    assert isinstance(LeastSquares(np.eye(2), np.ones(2)).layout[0].name, str)


def test_with_replacement_sampler_draws_iid_indices_and_is_seeded():
    s = MinibatchSampler(10, 10, seed=5, replacement=True)
    batches = [s.next() for _ in range(30)]
    assert all(b.dtype == np.int64 and b.shape == (10,) and b.min() >= 0 and b.max() < 10 for b in batches)
    # a permutation never repeats an index within an epoch; 30 i.i.d. batches of 10 from 10 always do
    assert any(len(np.unique(b)) < 10 for b in batches)
    again = MinibatchSampler(10, 10, seed=5, replacement=True)
    assert all(np.array_equal(b, again.next()) for b in batches)
    assert s.epoch == 29  # one batch of 10 per notional epoch of 10 samples
    # over many draws every index is about equally frequent (unbiased batch gradients)
    counts = np.bincount(np.concatenate([s.next() for _ in range(2000)]), minlength=10)
    assert counts.min() > 0.9 * 2000 and counts.max() < 1.1 * 2000
    with pytest.raises(TypeError, match="replacement"):
        MinibatchSampler(10, 3, replacement=1)


def test_optimize_records_how_minibatches_were_sampled():
    p = least_squares(40, 10, "binary", seed=0)
    kw = dict(steps=5, lr=0.1, batch_size=8, seed=0)
    assert brelax.optimize(p, "binaryrelax", **kw).meta["sampling"] == "shuffled epochs (without replacement)"
    t = brelax.optimize(p, "binaryrelax", sampling="with_replacement", **kw)
    assert t.meta["sampling"] == "with_replacement"
    assert brelax.optimize(p, "binaryrelax", steps=3, lr=0.1).meta["sampling"] is None
    with pytest.raises(ValueError, match="sampling"):
        brelax.optimize(p, "binaryrelax", sampling="bootstrap", **kw)
