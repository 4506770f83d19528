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
        return x[self.start:self.stop].reshape(self.shape)


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

    def axis_of(self, b: Block):
        if self.granularity == "tensor":
            return None
        if self.granularity == "channel":
            return 0 if len(b.shape) >= 2 else None
        return b.axis

    def __call__(self, x):
        if len(self.layout) == 1 and self.layout[0].quantize and self.axis_of(self.layout[0]) is None:
            return self.qset.project(x)
        out = x.copy()
        for b in self.layout:
            if b.quantize:
                out[b.start:b.stop] = self.qset.project(b.view(x), axis=self.axis_of(b)).reshape(-1)
        return out

    def codes(self, x):
        """Integer codes of every quantized entry, concatenated over blocks (int16)."""
        parts = [
            np.asarray(self.qset.quantize(b.view(x), axis=self.axis_of(b)).codes, dtype=np.int16).reshape(-1)
            for b in self.layout if b.quantize
        ]
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)

    def quantized_mask(self):
        m = np.zeros(self.layout[-1].stop if self.layout else 0, dtype=bool)
        for b in self.layout:
            if b.quantize:
                m[b.start:b.stop] = True
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
