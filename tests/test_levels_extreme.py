"""Levels of extreme magnitude: the free-scale set does not depend on their scale, so they are rescaled exactly.

``levels([1e160, 3e160])`` used to project to all zeros (its squares overflow) and
``levels([1e-160, 3e-160])`` was off by 1e-5 relative; ``levels([1, 1e154])``, whose
levels no float64 projection can resolve together, is refused on one line.
"""

import math
import warnings

import numpy as np
import pytest
from _exhaustive import brute_sq_distance, max_n, tol

import brelax

EXTREME = (
    [1e160, 3e160],
    [1e-160, 3e-160],
    [0, 1e-160, 3e-160],
    [1e300, 1.7e308],
    [0, 2.0**-80, 2.0**-78 * 3],
    [1.0, 2.0**52],
)


def _same_set_levels(values):
    """The levels divided by their largest one, in exact rational arithmetic rounded once: the same set."""
    top = max(values)
    return [v / top for v in values]


@pytest.mark.parametrize("values", EXTREME, ids=str)
def test_extreme_levels_project_exactly_without_warnings(values):
    Q = brelax.levels(values)
    if abs(math.frexp(max(values))[1] - 1) > 64:
        assert 1 <= max(Q.levels) < 2  # rescaled into [1, 2) by a power of two
    ratios = [a / max(Q.levels) for a in Q.levels]
    assert ratios == pytest.approx(_same_set_levels(values), rel=1e-15)
    assert brelax.get_set(Q.name) == Q
    reference = _same_set_levels(values)
    n = min(max_n(reference), 6)
    rng = np.random.default_rng(len(values))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / underflow RuntimeWarning
        for trial in range(60):
            y = rng.standard_normal(n) * 10.0 ** rng.uniform(-100, 100)
            if trial % 3 == 0:
                y[: n // 2] *= 10.0 ** rng.uniform(-12, 0)
            d2 = Q.distance(y) ** 2
            assert abs(d2 - brute_sq_distance(y, reference)) <= tol(y), (values, y)
            p = Q.project(y)
            assert np.all(np.isfinite(p)) and (np.any(p != 0) or not np.any(y))


def test_levels_too_far_apart_are_refused():
    for values in ([1, 1e154], [0, 1, 2.0**53], [1e-300, 1]):
        with pytest.raises(ValueError, match=r"levels span a ratio of .* at most 2\^52"):
            brelax.levels(values)
    with pytest.raises(ValueError, match="ratio"):
        brelax.get_set("levels:1,1e154")


def test_fixed_scale_levels_must_not_overflow():
    with pytest.raises(ValueError, match="over- or underflows"):
        brelax.levels([1e160, 3e160], scale=1e160)
    Q = brelax.levels([1e160, 3e160], scale=1e-160)
    assert Q.levels == (1e160, 3e160)  # a fixed scale keeps the levels as given
    assert Q.project(np.array([0.9, 2.6, -5.0])).tolist() == [1.0, 3.0, -3.0]


def test_ordinary_levels_are_not_rescaled():
    assert brelax.levels([1, 3]).levels == (1.0, 3.0)
    assert brelax.levels([0, 2.0**64]).levels == (0.0, 2.0**64)
    assert brelax.levels([0, 2.0**65]).levels == (0.0, 1.0)
    assert 1 <= brelax.levels([3e-160]).levels[0] < 2
