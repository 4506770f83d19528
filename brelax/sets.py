r"""Quantization sets and their exact Euclidean projections.

A set is given by non-negative levels ``0 <= l_0 < ... < l_K`` with at least
one positive level. With a free scale it is the closed cone

.. math::  Q_L = \{ a q : a \ge 0,\ q \in \{\pm l_0, \dots, \pm l_K\}^n \},

with one scale per tensor, per slice along an axis, or per group of
consecutive entries; with ``scale=a`` given it is the finite set
``{a q : q in L^n}``. The projection separates over the scale groups, and
within a group it is computed exactly by the kernels of
:mod:`brelax.projections` (see their docstrings for the proofs).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import fast, kernels, projections
from ._validate import check_axis, check_float_array, check_group_size, check_positive, namespace


@dataclass(frozen=True)
class QuantizedTensor:
    """Integer codes and scales of a projected array.

    ``dequantize()`` returns exactly what :meth:`QuantSet.project` returned:
    ``scales[g] * table[codes]`` in the input's dtype, in the input's layout.

    Attributes
    ----------
    codes : array of int8 (int16 above 127 signed levels, int32 above 32767), shape of the input
        Index into ``table`` of every entry.
    scales : float64 array, shape ``(G,)``
        One scale per group (``G = 1`` per tensor, ``shape[axis]`` per axis,
        ``size / group_size`` per group).
    table : tuple of float
        The signed levels ``-l_K, ..., -l_0, [0,] l_0, ..., l_K`` in increasing order.
    """

    # Arrays of the input's namespace (NumPy or torch, through the array API): typed Any.
    codes: Any
    scales: Any
    table: tuple[float, ...]
    shape: tuple[int, ...]
    axis: int | None
    group_size: int | None
    dtype: Any

    def dequantize(self):
        xp = namespace(self.codes, "codes")
        if isinstance(self.codes, np.ndarray):  # one table lookup per group, no float64 temporaries
            g = to_groups(xp, self.codes, self.axis, self.group_size)
            return from_groups(xp, fast.lookup(g, self.scales, self.table, self.dtype), self.shape, self.axis)
        tab = xp.asarray(self.table, dtype=xp.float64, device=projections._device(self.codes))
        vals = xp.take(tab, xp.reshape(xp.astype(self.codes, xp.int64), (-1,)))
        g = to_groups(xp, xp.reshape(vals, self.shape), self.axis, self.group_size)
        return xp.astype(from_groups(xp, g * self.scales[:, None], self.shape, self.axis), self.dtype)

    def level_counts(self) -> dict:
        """How many entries sit at each signed level: ``{level: count}``."""
        xp = namespace(self.codes, "codes")
        flat = xp.reshape(xp.astype(self.codes, xp.int64), (-1,))
        return {lev: int(xp.sum(xp.astype(flat == k, xp.int64))) for k, lev in enumerate(self.table)}


def _is_torch(w) -> bool:
    """Whether ``w`` is a torch tensor (without importing torch)."""
    return type(w).__module__.startswith("torch") and hasattr(w, "device")


class _FastQuantized(QuantizedTensor):
    """A :class:`QuantizedTensor` from :mod:`brelax.fast_torch`: the values are already formed.

    ``dequantize()`` returns them (the first call hands over that tensor; later
    calls form them again from the codes, the same numbers). ``codes`` may be
    a zero-argument callable, evaluated on first access (it reads the input,
    which must not have been modified in place since; see
    :func:`brelax.fast_torch.quantize`).
    """

    def __init__(self, codes, scales, table, shape, axis, group_size, dtype, values):
        super().__init__(codes, scales, table, shape, axis, group_size, dtype)
        self.__dict__["_values"] = values

    @property
    def codes(self):
        c = self.__dict__["_codes"]
        if callable(c):
            c = c()
            self.__dict__["_codes"] = c
        return c

    @codes.setter
    def codes(self, value):
        self.__dict__["_codes"] = value

    def dequantize(self):
        v = self.__dict__.pop("_values", None)
        return v if v is not None else super().dequantize()


def check_granularity(w, axis, group_size, finite: bool = True):
    """Validate ``w`` (finite unless ``finite=False``) and its granularity; ``(xp, shape, axis, group_size)``."""
    xp = check_float_array(w, "w", finite=finite)
    shape = tuple(int(s) for s in w.shape)
    axis = check_axis(axis, len(shape))
    group_size = check_group_size(group_size, math.prod(shape))
    if axis is not None and group_size is not None:
        raise ValueError("give at most one of axis and group_size, not both")
    return xp, shape, axis, group_size


def to_groups(xp, w, axis, group_size):
    """Reshape ``w`` to ``(G, n)``, one row per scale group."""
    if axis is not None:
        perm = (axis,) + tuple(i for i in range(w.ndim) if i != axis)
        return xp.reshape(xp.permute_dims(w, perm), (w.shape[axis], -1))
    if group_size is not None:
        return xp.reshape(w, (-1, group_size))
    return xp.reshape(w, (1, -1))


def from_groups(xp, g, shape, axis):
    """Inverse of :func:`to_groups`."""
    if axis is None:
        return xp.reshape(g, shape)
    moved = (shape[axis],) + tuple(s for i, s in enumerate(shape) if i != axis)
    inv = list(range(1, len(shape)))
    inv.insert(axis, 0)
    return xp.permute_dims(xp.reshape(g, moved), tuple(inv))


@dataclass(frozen=True)
class QuantSet:
    """A symmetric quantization set, free-scale or with a fixed scale.

    Use the constructors :func:`binary`, :func:`ternary`, :func:`uniform` and
    :func:`levels` rather than this class directly.

    Parameters
    ----------
    levels : tuple of float
        The non-negative levels, strictly increasing, at least one positive.
    scale : float or None
        None for a free scale per group; a positive float fixes it.
    name : str
        A spec string that :func:`get_set` parses back into an equal set.
    """

    levels: tuple
    scale: float | None = None
    name: str = field(default="", compare=False)

    @property
    def table(self) -> tuple:
        pos = tuple(l for l in self.levels if l > 0)
        zero = (0.0,) if self.levels[0] == 0 else ()
        return tuple(-l for l in reversed(pos)) + zero + pos

    @property
    def has_zero(self) -> bool:
        return self.levels[0] == 0

    def _solve(self, w, axis, group_size):
        xp, shape, axis, group_size = check_granularity(w, axis, group_size)
        g = xp.astype(to_groups(xp, w, axis, group_size), xp.float64)
        a = xp.abs(g)
        if self.scale is None:
            # P(cy) = c P(y): rows far from magnitude 1 are rescaled by a power of
            # two (exact), else S^2 in the kernels over/underflows for |w| beyond
            # ~1e154 or below ~1e-154 and picks a wrong pattern. Other rows: unit = 1.
            unit = _unit(xp, xp.max(a, axis=1))
            # NumPy fast path (brelax.fast, pinned to the reference by tests/test_fast.py).
            kernel = fast.fast_kernel(xp, self.levels) or kernels.kernel(self.levels, "reference")
            idx, scales = kernel(xp, a * unit[:, None], self.levels)
            scales = scales / unit
        else:
            idx = projections.nearest_level(xp, a / self.scale, self.levels)
            scales = xp.full((g.shape[0],), self.scale, dtype=xp.float64, device=projections._device(g))
        return xp, g, idx, scales, shape, axis, group_size

    def quantize(self, w, axis=None, group_size=None) -> QuantizedTensor:
        """Integer codes and scales of the exact projection of ``w``.

        Parameters
        ----------
        w : NumPy array or torch tensor of float16/32/64
        axis : int or None
            One scale per index along this axis (per output channel for ``axis=0``).
        group_size : int or None
            One scale per run of ``group_size`` consecutive entries of ``w.ravel()``.

        Raises
        ------
        TypeError
            ``w`` is not a floating array, or ``axis``/``group_size`` is not an int.
        ValueError
            ``w`` is empty or non-finite, ``axis`` is out of range, ``group_size``
            does not divide ``w.size``, or both are given.
        """
        if self.scale is None and _is_torch(w):
            # torch fast path (brelax.fast_torch, pinned to the reference by tests/test_fast_torch.py).
            from . import fast_torch

            # Binary and ternary read finiteness off their row sums / maxima (None: validate below and raise);
            # the level-set kernels sort, so their input is validated first.
            kind = kernels.set_kind(self.levels)
            xp, shape, axis, group_size = check_granularity(w, axis, group_size, finite=kind == "levels")
            got = fast_torch.quantize(to_groups(xp, w, axis, group_size), self.levels)
            if got is not None:
                values, scales, codes = got
                codes = (
                    (lambda c=codes: from_groups(xp, c(), shape, axis))
                    if callable(codes)
                    else from_groups(xp, codes, shape, axis)
                )
                return _FastQuantized(
                    codes, scales, self.table, shape, axis, group_size, w.dtype, from_groups(xp, values, shape, axis)
                )
        if self.scale is None and kernels.set_kind(self.levels) == "binary" and isinstance(w, np.ndarray):
            # NumPy binary: codes are the signs, the scale a row mean (no float64 copy of w).
            xp, shape, axis, group_size = check_granularity(w, axis, group_size)
            g = to_groups(xp, w, axis, group_size)
            # |g| in a C-ordered buffer: the row sums (summation order included) of brelax.fast.binary_values,
            # so that project() is bitwise quantize().dequantize().
            a = np.abs(g, out=np.empty(g.shape, dtype=g.dtype))
            scales = fast.l1_scales(a, self.levels[0])
            codes = from_groups(xp, np.greater_equal(g, 0).view(np.int8), shape, axis)
            return QuantizedTensor(codes, scales, self.table, shape, axis, group_size, w.dtype)
        if self.scale is None and len(self.levels) > 1 and isinstance(w, np.ndarray) and w.dtype == np.float32:
            # float32 needs no float64 copy (its S^2 cannot over/underflow float64 sums) and the
            # codes come straight from the fast kernels' thresholds (brelax.fast.signed_codes).
            xp, shape, axis, group_size = check_granularity(w, axis, group_size)
            codes, scales = fast.signed_codes(to_groups(xp, w, axis, group_size), self.levels)
            codes = from_groups(xp, codes, shape, axis)
            return QuantizedTensor(codes, scales, self.table, shape, axis, group_size, w.dtype)
        xp, g, idx, scales, shape, axis, group_size = self._solve(w, axis, group_size)
        K = len(self.levels) - 1
        neg = g < 0
        if self.has_zero:
            codes = K + xp.where(neg, -idx, idx)
        else:
            codes = xp.where(neg, K - idx, K + 1 + idx)
        # The largest code is len(table) - 1; uniform(16) has 65535 signed levels.
        nt = len(self.table)
        ctype = xp.int8 if nt <= 127 else (xp.int16 if nt <= 32767 else xp.int32)
        codes = xp.astype(from_groups(xp, codes, shape, axis), ctype)
        return QuantizedTensor(codes, scales, self.table, shape, axis, group_size, w.dtype)

    def project(self, w, axis=None, group_size=None):
        r"""The exact Euclidean projection :math:`P(w) \in \arg\min_{z \in Q} \|w - z\|`.

        Same shape, dtype and backend as ``w``; computed in float64. Parameters
        and errors as in :meth:`quantize`.
        """
        values = kernels.kernel(self.levels, "numpy_values") if self.scale is None else None
        if values is not None and isinstance(w, np.ndarray) and w.dtype in (np.float32, np.float64):
            # NumPy binary and ternary: the values straight from w into one buffer, no codes
            # (brelax.fast.binary_values / ternary_values); finiteness is read off the row sums or maxima,
            # and anything else (None) goes through quantize, which validates.
            xp, shape, axis, group_size = check_granularity(w, axis, group_size, finite=False)
            got = values(to_groups(xp, w, axis, group_size), self.levels[-1])
            if got is not None:
                return from_groups(xp, got[0], shape, axis)
        return self.quantize(w, axis, group_size).dequantize()

    def distance(self, w, axis=None, group_size=None) -> float:
        """``dist(w, Q) = ||w - P(w)||``, summed over all groups, in float64."""
        xp = namespace(w, "w")
        p = self.project(w, axis, group_size)
        return _norm(xp, xp.astype(w, xp.float64) - xp.astype(p, xp.float64))

    def contains(self, w, axis=None, group_size=None, rtol: float = 1e-6) -> bool:
        """Whether ``w`` lies in the set, up to ``rtol`` relative to ``||w||``."""
        d = self.distance(w, axis, group_size)  # validates w first
        xp = namespace(w, "w")
        return d <= rtol * max(_norm(xp, xp.astype(w, xp.float64)), 1e-300)

    def __str__(self) -> str:
        return self.name


def _unit(xp, top):
    """Per row, ``2^-e`` with ``e = floor(log2 top)`` where ``top`` is beyond 2^±400, else 1."""
    safe = xp.where(top > 0, top, 1.0)
    e = xp.floor(xp.log2(safe))
    e = xp.where(xp.abs(e) > 400, xp.clip(e, -1020.0, 1020.0), 0.0)
    return xp.pow(xp.full_like(e, 2.0), -e)


def _norm(xp, d) -> float:
    """``||d||`` (d is float64), rescaled only where the squares would over- or underflow."""
    m = float(xp.max(xp.abs(d)))
    if m == 0.0:
        return 0.0
    if 1e-140 < m < 1e140:
        return math.sqrt(float(xp.sum(d * d)))
    return m * math.sqrt(float(xp.sum((d / m) ** 2)))


def _fmt(x: float) -> str:
    # Short form when it parses back exactly, so that get_set(Q.name) == Q.
    short = f"{x:g}"
    return short if float(short) == x else repr(x)


def _make(levels, scale, name):
    if scale is not None:
        scale = check_positive(scale, "scale")
        name = f"{name}@{_fmt(scale)}"
    return QuantSet(tuple(float(l) for l in levels), scale, name)


def binary(scale=None) -> QuantSet:
    """``{±a}^n``: exact projection ``a = ||y||_1 / n``, ``q = sign(y)``, O(n).

    The set of BinaryConnect :cite:`courbariaux2015binaryconnect` and of BinaryRelax's binary
    weights :cite:`yin2018binaryrelax`; ``scale=a`` fixes the scale (``{-a, +a}^n``).

    Examples
    --------
    >>> import numpy as np, brelax
    >>> brelax.binary().project(np.array([0.9, -0.2, 0.05, -1.3]))  # a = mean |y| = 0.6125
    array([ 0.6125, -0.6125,  0.6125, -0.6125])
    >>> brelax.binary(scale=1.0).project(np.array([0.9, -0.2]))
    array([ 1., -1.])
    """
    return _make((1.0,), scale, "binary")


def ternary(scale=None) -> QuantSet:
    """``{0, ±a}^n``: exact sort-based projection, O(n log n).

    Exact, unlike the threshold heuristic of Ternary Weight Networks :cite:`li2016ternary`
    (:func:`brelax.heuristics.twn`): the support and the scale are chosen together.

    Examples
    --------
    >>> import numpy as np, brelax
    >>> w = np.array([0.9, -0.2, 0.05, -1.3])
    >>> brelax.ternary().project(w)  # keep the two largest |w|, scale their mean 1.1
    array([ 1.1,  0. ,  0. , -1.1])
    >>> qt = brelax.ternary().quantize(w)  # codes index the levels (-1, 0, +1)
    >>> qt.codes, qt.scales
    (array([2, 1, 1, 0], dtype=int8), array([1.1]))
    """
    return _make((0.0, 1.0), scale, "ternary")


def uniform(bits: int, scale=None) -> QuantSet:
    """``{0, ±1, ..., ±(2^(bits-1) - 1)}`` times a scale; ``bits=2`` is ternary.

    Exact projection by the breakpoint sweep, O(nK log(nK)) with ``K = 2^(bits-1) - 1``.
    """
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise TypeError(f"bits must be an int, got {bits!r}")
    if not 2 <= bits <= 16:
        raise ValueError(f"bits must be in 2..16 (bits=1 has no positive level; use binary()), got {bits}")
    return _make(range(2 ** (bits - 1)), scale, f"uniform:{bits}")


#: Largest ratio of the largest to the smallest positive level: beyond 2^52 (1/eps of float64) the
#: smaller levels are below the rounding of the larger ones and no float64 projection can tell them apart.
MAX_LEVEL_RATIO = 2.0**52
#: Free-scale levels whose largest lies outside [2^-64, 2^64] are rescaled (see :func:`levels`).
_LEVEL_RANGE = 64


def levels(values, scale=None) -> QuantSet:
    r"""Any finite symmetric level set ``{±l_j}``, e.g. ``levels([1, 3])`` or ``levels([0, 1, 3, 7])``.

    With a free scale the set does not depend on the scale of its levels,
    :math:`Q_{cL} = Q_L` for every :math:`c > 0`, so levels whose largest lies
    outside :math:`[2^{-64}, 2^{64}]` (e.g. ``[1e160, 3e160]``, whose squares
    overflow) are multiplied by the power of two :math:`2^{-e}`,
    :math:`e = \lfloor \log_2 l_K \rfloor`, that brings the largest into
    :math:`[1, 2)`: exact in floating point, the same set, and ``Q.name`` keeps
    the levels as given (``get_set(Q.name) == Q``).

    Raises
    ------
    ValueError
        If a level is negative or non-finite, levels repeat, none is positive, the
        largest is more than ``MAX_LEVEL_RATIO`` (2^52) times the smallest positive one,
        or a fixed ``scale`` times a level over- or underflows.
    """
    try:
        vals = [float(v) for v in values]
    except (TypeError, ValueError):
        raise TypeError(f"levels must be a sequence of numbers, got {values!r}") from None
    if not vals:
        raise ValueError("levels is empty; give at least one positive level")
    if any(not math.isfinite(v) or v < 0 for v in vals):
        raise ValueError(f"levels must be finite and non-negative, got {vals}")
    if len(set(vals)) != len(vals):
        raise ValueError(f"levels must not repeat, got {vals}")
    if max(vals) <= 0:
        raise ValueError(f"levels needs at least one positive level, got {vals}")
    vals.sort()
    name = "levels:" + ",".join(_fmt(v) for v in vals)
    pos = [v for v in vals if v > 0]
    if pos[-1] / pos[0] > MAX_LEVEL_RATIO:
        raise ValueError(
            f"levels span a ratio of {pos[-1] / pos[0]:.3g} between the largest and the smallest "
            f"positive level; at most 2^52 ({MAX_LEVEL_RATIO:.3g}) is supported (float64 cannot "
            f"resolve a projection onto both), got {vals}"
        )
    if scale is None:
        e = math.frexp(pos[-1])[1] - 1  # pos[-1] = m 2^e with m in [1, 2)
        if abs(e) > _LEVEL_RANGE:
            vals = [math.ldexp(v, -e) for v in vals]
    elif not (math.isfinite(check_positive(scale, "scale") * pos[-1]) and scale * pos[0] >= sys.float_info.min):
        raise ValueError(f"scale {scale!r} times the levels {vals} over- or underflows float64")
    return _make(vals, scale, name)


SET_NAMES = ("binary", "ternary", "uniform:BITS", "levels:L0,L1,...")


def get_set(spec) -> QuantSet:
    """Parse a set name: ``binary``, ``ternary``, ``uniform:3`` (or ``uniform3``),
    ``levels:0,1,3,7``, each optionally with ``@SCALE`` for a fixed scale.

    A :class:`QuantSet` is returned unchanged. Raises ValueError listing the valid names.
    """
    if isinstance(spec, QuantSet):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"qset must be a QuantSet or a name, got {type(spec).__name__}")
    body, _, sc = spec.strip().partition("@")
    try:
        scale = float(sc) if sc else None
    except ValueError:
        raise ValueError(f"bad set {spec!r}: the scale after '@' must be a number, got {sc!r}") from None
    kind, _, arg = body.partition(":")
    if kind.startswith("uniform") and not arg:
        kind, arg = "uniform", kind[len("uniform") :]
    try:
        if kind == "binary" and not arg:
            return binary(scale)
        if kind == "ternary" and not arg:
            return ternary(scale)
        if kind == "uniform" and arg:
            return uniform(int(arg), scale)
        if kind == "levels" and arg:
            return levels([float(v) for v in arg.split(",")], scale)
    except ValueError as e:
        raise ValueError(f"bad set {spec!r}: {e}") from None
    raise ValueError(f"unknown set {spec!r}; valid: {', '.join(SET_NAMES)} (optionally @SCALE)")
