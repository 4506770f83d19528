"""The problem protocol, and the block layout that maps a flat parameter vector to tensors.

A problem works on one flat float64 vector ``x``. Its ``layout`` says which
slices are tensors, their shapes, whether they are quantized, and at what
granularity. A :class:`Projector` projects every quantized block onto the
set (per tensor, or per slice along ``axis``) and leaves float blocks as
they are; the step rules only ever see ``project(x)``.

Protocol (duck-typed; :class:`Problem` is a convenient base):

``dim``            length of ``x``
``layout``         tuple of :class:`Block`
``f(x, idx=None)``     objective (mean over the samples ``idx``, or all)
``grad(x, idx=None)``  its gradient
``L``              exact smoothness constant, or None when unknown
``f_lower``        a valid lower bound on ``f``, or None
``n_samples``      number of samples a minibatch is drawn from (None: not stochastic)
``x_star``         a planted solution, or None
``init(rng)``      a default starting point
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validate import check_choice


@dataclass(frozen=True)
class Block:
    """One tensor inside the flat vector: ``x[start:start + size].reshape(shape)``."""

    name: str
    shape: tuple
    start: int
    quantize: bool = True
    axis: int | None = None  # None: one scale per tensor; 0: one per output channel

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def stop(self) -> int:
        return self.start + self.size

    def view(self, x):
        return x[self.start : self.stop].reshape(self.shape)


def make_layout(specs) -> tuple:
    """``specs``: iterable of ``(name, shape, quantize[, axis])``; returns contiguous Blocks."""
    out, start = [], 0
    for spec in specs:
        name, shape, quant = spec[:3]
        axis = spec[3] if len(spec) > 3 else None
        b = Block(name, tuple(int(s) for s in shape), start, bool(quant), axis)
        out.append(b)
        start = b.stop
    return tuple(out)


def layer_slices(layout, quantized_only: bool = False) -> dict:
    """``{block name: slice of the flat vector}`` in layout order, for per-layer diagnostics.

    With ``quantized_only`` the float blocks (biases) are left out.
    """
    return {b.name: slice(b.start, b.stop) for b in layout if b.quantize or not quantized_only}


class Projector:
    """``P`` on the flat vector: the exact projection of each quantized block, identity elsewhere.

    Parameters
    ----------
    layout : tuple of Block
    qset : QuantSet
    granularity : "tensor", "channel" or "block"
        "tensor": one scale per quantized block; "channel": one per index along
        axis 0 of each block with ndim >= 2; "block": the axis each Block names.
    """

    def __init__(self, layout, qset, granularity: str = "block"):
        check_choice(granularity, ("tensor", "channel", "block"), "granularity")
        self.layout = tuple(layout)
        self.qset = qset
        self.granularity = granularity
        self._memo = []  # [(copy of a recent input, its solution)], the two most recent

    def axis_of(self, b: Block):
        if self.granularity == "tensor":
            return None
        if self.granularity == "channel":
            return 0 if len(b.shape) >= 2 else None
        return b.axis

    def solve(self, x):
        """``(P(x), codes, smallest scale, scales)`` from one quantization of each block.

        ``scales`` is a list with the scales of each quantized block (layout order).

        The driver asks for the projection, the codes and the scales of the same
        vector; the two last inputs are remembered (by value: a copy is compared, so an
        array changed in place is never served a stale answer), and each block is
        quantized once. Treat the returned arrays as read-only.
        """
        for ref, result in self._memo:
            if ref.shape == x.shape and np.array_equal(ref, x):
                return result
        out = x.copy()
        parts, smin, scales = [], float("inf"), []
        for b in self.layout:
            if b.quantize:
                qt = self.qset.quantize(b.view(x), axis=self.axis_of(b))
                out[b.start : b.stop] = qt.dequantize().reshape(-1)
                parts.append(np.asarray(qt.codes, dtype=np.int32).reshape(-1))
                scales.append(np.asarray(qt.scales, dtype=np.float64))
                smin = min(smin, float(np.min(scales[-1])))
        codes = np.concatenate(parts) if parts else np.zeros(0, np.int32)
        result = (out, codes, smin if parts else float("nan"), scales)
        self._memo = [(x.copy(), result)] + self._memo[:1]
        return result

    def __call__(self, x):
        return self.solve(x)[0]

    def codes(self, x):
        """Integer codes of every quantized entry, concatenated over blocks (int32)."""
        return self.solve(x)[1]

    def scale_min(self, x) -> float:
        """The smallest scale of ``P(x)`` over all quantized groups (NaN without quantized blocks)."""
        return self.solve(x)[2]

    def scales(self, x) -> list:
        """The scales of ``P(x)``, one array per quantized block (layout order)."""
        return self.solve(x)[3]

    def quantized_mask(self):
        m = np.zeros(self.layout[-1].stop if self.layout else 0, dtype=bool)
        for b in self.layout:
            if b.quantize:
                m[b.start : b.stop] = True
        return m


class Problem:
    """Base class: subclasses set ``dim``, ``layout`` and implement ``f`` and ``grad``."""

    name = "problem"
    L: float | None = None
    f_lower: float | None = None
    n_samples: int | None = None
    x_star = None
    layout: tuple = ()

    @property
    def dim(self) -> int:
        return self.layout[-1].stop

    def f(self, x, idx=None) -> float:  # pragma: no cover - interface
        raise NotImplementedError

    def grad(self, x, idx=None):  # pragma: no cover - interface
        raise NotImplementedError

    def init(self, rng) -> np.ndarray:
        return rng.standard_normal(self.dim)

    def describe(self) -> dict:
        return {"name": self.name, "dim": self.dim, "L": self.L, "f_lower": self.f_lower}
