"""The whole ``Q.project`` path: as wired today, with the fast kernels wired in, and the proposed fast path.

Two changes to :mod:`brelax.sets` are proposed (see the bench report); this
module reproduces each, so the bench can measure them before they land:

* :func:`kernel_wiring` -- ``QuantSet`` calls ``fast.fast_kernel(xp, levels)``
  when it is not None, the reference kernel otherwise (the same two lines);
* :func:`proposed_project` -- for NumPy float32 input with a free scale, the
  codes come from :func:`brelax.fast.signed_codes` (no float64 copy, no int64
  indices) and ``dequantize`` is :func:`brelax.fast.lookup`.

Once the changes are in ``brelax.sets``, ``kernel_wiring`` changes nothing
and ``proposed_project`` equals ``Q.project``.
"""

from __future__ import annotations

import contextlib

import numpy as np

from brelax import fast, projections
from brelax._validate import check_axis, check_float_array, check_group_size
from brelax.sets import from_groups, to_groups


@contextlib.contextmanager
def kernel_wiring():
    """Within the block, ``projections.exact_kernel`` prefers the fast kernel for NumPy arrays."""
    reference = projections.exact_kernel

    def wired(levels):
        def kernel(xp, a, lv):
            return (fast.fast_kernel(xp, lv) or reference(lv))(xp, a, lv)

        return kernel

    projections.exact_kernel = wired
    try:
        yield
    finally:
        projections.exact_kernel = reference


def proposed_project(Q, w, axis=None, group_size=None):
    """``Q.project(w)`` by the proposed NumPy float32 fast path (same checks, same result)."""
    if Q.scale is not None or len(Q.levels) < 2 or not isinstance(w, np.ndarray) or w.dtype != np.float32:
        return Q.project(w, axis, group_size)
    xp = check_float_array(w, "w")
    shape = tuple(int(s) for s in w.shape)
    axis = check_axis(axis, len(shape))
    group_size = check_group_size(group_size, w.size)
    codes, scales = fast.signed_codes(to_groups(xp, w, axis, group_size), Q.levels)
    # dequantize(): the grouped codes (a view of the stored ones) looked up per group.
    return from_groups(xp, fast.lookup(codes, scales, Q.table, w.dtype), shape, axis)
