"""Argument checks shared by the public functions.

Every check raises a ValueError or TypeError that names the argument, so a
bad input never turns into a NaN or a crash deep inside numpy or torch.
"""

from __future__ import annotations

import math
import numbers

import array_api_compat


def namespace(w, name: str = "w"):
    """Return the array-API namespace of ``w`` or raise a TypeError naming ``name``."""
    try:
        return array_api_compat.array_namespace(w)
    except TypeError:
        raise TypeError(f"{name} must be a NumPy array or a torch tensor, got {type(w).__name__}") from None


def check_float_array(w, name: str = "w", finite: bool = True):
    """Check that ``w`` is a non-empty real floating array; return its namespace.

    Raises
    ------
    TypeError
        If ``w`` is not an array or its dtype is not real floating.
    ValueError
        If ``w`` is empty, or (with ``finite=True``) holds NaN or inf.
    """
    xp = namespace(w, name)
    if not xp.isdtype(w.dtype, "real floating"):
        raise TypeError(f"{name} must have a real floating dtype (float16/32/64), got {w.dtype}")
    if _size(w) == 0:
        raise ValueError(f"{name} is empty (shape {tuple(w.shape)}); a projection needs at least one entry")
    # max and min propagate NaN and expose +-inf: two reductions, no boolean temporary.
    if finite and not (bool(xp.isfinite(xp.max(w))) and bool(xp.isfinite(xp.min(w)))):
        raise ValueError(f"{name} contains NaN or inf; refusing to project a non-finite array")
    return xp


def _size(w) -> int:
    n = 1
    for s in w.shape:
        n *= int(s)
    return n


def check_axis(axis, ndim: int, name: str = "axis") -> int | None:
    """Normalise ``axis`` to a non-negative int, or None."""
    if axis is None:
        return None
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{name} must be an int or None, got {axis!r}")
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for an array with {ndim} dimension(s)")
    return axis % ndim


def check_group_size(group_size, size: int, name: str = "group_size") -> int | None:
    if group_size is None:
        return None
    if isinstance(group_size, bool) or not isinstance(group_size, numbers.Integral):
        raise TypeError(f"{name} must be a positive int or None, got {group_size!r}")
    group_size = int(group_size)
    if group_size <= 0:
        raise ValueError(f"{name} must be positive, got {group_size}")
    if size % group_size:
        raise ValueError(f"{name}={group_size} does not divide the array size {size}")
    return group_size


def check_nonneg(value, name: str, allow_inf: bool = False) -> float:
    """A real number >= 0 (finite unless ``allow_inf``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if math.isnan(value) or value < 0 or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def check_positive(value, name: str) -> float:
    """A finite real number > 0; one message for every bad value (0, negative, NaN, inf)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def check_choice(value, choices, name: str) -> str:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(map(str, choices))}")
    return value
