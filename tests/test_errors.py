"""Every bad input raises a ValueError or TypeError whose message names the argument."""

from __future__ import annotations

import numpy as np
import pytest

import brelax
from brelax import heuristics

W = np.arange(12, dtype=np.float64).reshape(3, 4) - 5.5
Q = brelax.ternary()

# Every public function that takes an array, with the same granularity arguments.
CALLS = {
    "project": lambda w, **kw: Q.project(w, **kw),
    "distance": lambda w, **kw: Q.distance(w, **kw),
    "quantize": lambda w, **kw: Q.quantize(w, **kw),
    "contains": lambda w, **kw: Q.contains(w, **kw),
    "fixed_scale_project": lambda w, **kw: brelax.binary(scale=1.0).project(w, **kw),
    "sweep_project": lambda w, **kw: brelax.levels([0, 1, 3, 7]).project(w, **kw),
    "prox": lambda w, **kw: brelax.prox(w, Q, 1.0, **kw),
    "moreau_envelope": lambda w, **kw: brelax.moreau_envelope(w, Q, 1.0, **kw),
    "twn": lambda w, **kw: heuristics.twn(w, **kw),
    "lloyd": lambda w, **kw: heuristics.lloyd(w, "uniform:3", **kw),
    "greedy_residual": lambda w, **kw: heuristics.greedy_residual(w, 2, **kw),
    "ternary_divide_by_n": lambda w, **kw: heuristics.ternary_divide_by_n(w, **kw),
}
call_ids = pytest.mark.parametrize("call", list(CALLS.values()), ids=list(CALLS))

pytestmark = pytest.mark.filterwarnings("error")


@call_ids
@pytest.mark.parametrize(
    "w, exc, match",
    [
        (np.array([1.0, np.nan]), ValueError, r"^w contains NaN or inf"),
        (np.array([[1.0], [np.inf]]), ValueError, r"^w contains NaN or inf"),
        (np.array([-np.inf], dtype=np.float32), ValueError, r"^w contains NaN or inf"),
        (np.zeros((0,)), ValueError, r"^w is empty \(shape \(0,\)\)"),
        (np.zeros((3, 0)), ValueError, r"^w is empty \(shape \(3, 0\)\)"),
        (np.array([1, 2, 3]), TypeError, r"^w must have a real floating dtype.*int64"),
        (np.array([True, False]), TypeError, r"^w must have a real floating dtype.*bool"),
        (np.array([1 + 1j]), TypeError, r"^w must have a real floating dtype.*complex"),
        ([1.0, 2.0], TypeError, r"^w must be a NumPy array or a torch tensor, got list"),
        (3.0, TypeError, r"^w must be a NumPy array or a torch tensor, got float"),
        ("abc", TypeError, r"^w must be a NumPy array or a torch tensor, got str"),
    ],
    ids=["nan", "inf", "-inf32", "empty", "empty2d", "int", "bool", "complex", "list", "float", "str"],
)
def test_bad_array(call, w, exc, match):
    with pytest.raises(exc, match=match):
        call(w)


@call_ids
@pytest.mark.parametrize(
    "kw, exc, match",
    [
        ({"axis": 2}, ValueError, r"^axis=2 is out of range for an array with 2 dimension"),
        ({"axis": -3}, ValueError, r"^axis=-3 is out of range"),
        ({"axis": 0.5}, TypeError, r"^axis must be an int or None, got 0.5"),
        ({"axis": "0"}, TypeError, r"^axis must be an int or None, got '0'"),
        ({"axis": True}, TypeError, r"^axis must be an int or None, got True"),
        ({"group_size": 5}, ValueError, r"^group_size=5 does not divide the array size 12"),
        ({"group_size": 0}, ValueError, r"^group_size must be positive, got 0"),
        ({"group_size": -4}, ValueError, r"^group_size must be positive, got -4"),
        ({"group_size": 4.0}, TypeError, r"^group_size must be a positive int or None, got 4.0"),
        ({"axis": 0, "group_size": 4}, ValueError, r"axis and group_size"),
    ],
    ids=[
        "axis2",
        "axis-3",
        "axis-float",
        "axis-str",
        "axis-bool",
        "gs-divide",
        "gs-zero",
        "gs-neg",
        "gs-float",
        "both",
    ],
)
def test_bad_granularity(call, kw, exc, match):
    with pytest.raises(exc, match=match):
        call(W, **kw)


@pytest.mark.parametrize(
    "values, exc, match",
    [
        ([-1.0, 2.0], ValueError, r"^levels must be finite and non-negative, got \[-1.0, 2.0\]"),
        ([1.0, float("nan")], ValueError, r"^levels must be finite and non-negative"),
        ([1.0, float("inf")], ValueError, r"^levels must be finite and non-negative"),
        ([1.0, 3.0, 1.0], ValueError, r"^levels must not repeat, got \[1.0, 3.0, 1.0\]"),
        ([0.0], ValueError, r"^levels needs at least one positive level, got \[0.0\]"),
        ([], ValueError, r"^levels is empty"),
        (["a"], TypeError, r"^levels must be a sequence of numbers"),
        (None, TypeError, r"^levels must be a sequence of numbers"),
    ],
)
def test_bad_levels(values, exc, match):
    with pytest.raises(exc, match=match):
        brelax.levels(values)


@pytest.mark.parametrize(
    "bits, exc, match",
    [
        (1, ValueError, r"^bits must be in 2..16.*got 1"),
        (0, ValueError, r"^bits must be in 2..16.*got 0"),
        (17, ValueError, r"^bits must be in 2..16.*got 17"),
        (2.5, TypeError, r"^bits must be an int, got 2.5"),
        (True, TypeError, r"^bits must be an int, got True"),
    ],
)
def test_bad_bits(bits, exc, match):
    with pytest.raises(exc, match=match):
        brelax.uniform(bits=bits)


@pytest.mark.parametrize(
    "make",
    [brelax.binary, brelax.ternary, lambda scale: brelax.uniform(3, scale), lambda scale: brelax.levels([1, 3], scale)],
    ids=["binary", "ternary", "uniform", "levels"],
)
@pytest.mark.parametrize(
    "scale, exc, match",
    [
        (0.0, ValueError, r"^scale must be a finite number > 0, got 0.0"),
        (-1.0, ValueError, r"^scale must be a finite number > 0, got -1.0"),
        (float("nan"), ValueError, r"^scale must be a finite number > 0, got nan"),
        (float("inf"), ValueError, r"^scale must be a finite number > 0, got inf"),
        ("1", TypeError, r"^scale must be a real number, got '1'"),
    ],
)
def test_bad_scale(make, scale, exc, match):
    with pytest.raises(exc, match=match):
        make(scale=scale)


@pytest.mark.parametrize("fn", [brelax.prox, brelax.moreau_envelope], ids=["prox", "moreau_envelope"])
@pytest.mark.parametrize(
    "lam, exc, match",
    [
        (-0.1, ValueError, r"^lam must be a finite number >= 0, got -0.1"),
        (float("nan"), ValueError, r"^lam must be a finite number >= 0, got nan"),
        (float("inf"), ValueError, r"^lam must be a finite number >= 0, got inf"),
        ("1", TypeError, r"^lam must be a real number, got '1'"),
        (None, TypeError, r"^lam must be a real number, got None"),
    ],
)
def test_bad_lam(fn, lam, exc, match):
    with pytest.raises(exc, match=match):
        fn(W, Q, lam)


@pytest.mark.parametrize(
    "spec, exc, match",
    [
        ("foo", ValueError, r"^unknown set 'foo'; valid: binary, ternary, uniform:BITS"),
        ("binary:3", ValueError, r"^unknown set 'binary:3'"),
        ("uniform", ValueError, r"^unknown set 'uniform'"),
        ("levels", ValueError, r"^unknown set 'levels'"),
        ("uniform:1", ValueError, r"^bad set 'uniform:1': bits must be in 2..16"),
        ("uniform:x", ValueError, r"^bad set 'uniform:x'"),
        ("levels:1,1", ValueError, r"^bad set 'levels:1,1': levels must not repeat"),
        ("levels:-1,2", ValueError, r"^bad set 'levels:-1,2': levels must be finite and non-negative"),
        ("levels:a,b", ValueError, r"^bad set 'levels:a,b'"),
        ("binary@0", ValueError, r"^bad set 'binary@0': scale must be a finite number > 0"),
        ("binary@abc", ValueError, r"^bad set 'binary@abc': the scale after '@' must be a number, got 'abc'"),
        (3, TypeError, r"^qset must be a QuantSet or a name, got int"),
        (None, TypeError, r"^qset must be a QuantSet or a name, got NoneType"),
    ],
)
def test_bad_set_name(spec, exc, match):
    with pytest.raises(exc, match=match):
        brelax.get_set(spec)


def test_lloyd_rejects_an_unknown_set():
    with pytest.raises(ValueError, match=r"^unknown set 'quaternary'"):
        heuristics.lloyd(W, "quaternary")


def test_good_inputs_next_to_the_bad_ones_pass():
    """The checks are not over-eager: the valid neighbours of each bad input work."""
    assert Q.project(W, axis=1).shape == W.shape
    assert Q.project(W, axis=-2).shape == W.shape
    assert Q.project(W, axis=np.int64(0)).shape == W.shape
    assert Q.project(W, group_size=np.int32(6)).shape == W.shape
    assert Q.project(np.array([np.finfo(np.float64).max / 4, 1.0])).shape == (2,)
    assert brelax.prox(W, Q, 0.0).shape == W.shape
    assert brelax.levels([0, 3, 1]).levels == (0.0, 1.0, 3.0)
    assert brelax.uniform(2) == brelax.ternary()
    assert brelax.get_set("uniform3") == brelax.uniform(3)
    assert brelax.get_set(" ternary@0.5 ") == brelax.ternary(scale=0.5)
