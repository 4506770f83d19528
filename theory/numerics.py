r"""Numerical helpers shared by the every-step checks: trajectory fields, working precision, tolerances."""

from __future__ import annotations

import math

import numpy as np

RTOL = 1e-9
#: Absolute rounding floor, relative to ``||G_t|| * ||x_t||`` (the size of the rounding error of ``<G_t, D_t>``).
ATOL_DOT = 1e-11
#: Absolute rounding floor of inequalities between values of f, relative to ``max_t |f(x_t)|``.
F_ATOL = 1e-13


def field(traj, name, length=None):
    """``traj.<name>`` as float64, or None when the trajectory does not record it.

    Raises
    ------
    ValueError
        The field exists with a length other than ``length``.
    """
    v = getattr(traj, name, None)
    if v is None:
        return None
    a = np.asarray(v, dtype=np.float64)
    if length is not None and a.shape != (length,):
        raise ValueError(f"trajectory field {name!r} must have length {length}, got shape {a.shape}")
    return a


def _nan(T):
    return np.full(T, np.nan)


def set_info(meta) -> dict:
    """The quantization set as the flip-cost bound needs it: levels, free scale, binary-type.

    Reads the set named ``meta["qset"]`` (its levels, 0 included), else ``meta["levels"]``.
    The recorded ``meta["levels"]`` holds the *positive* levels only, so it cannot tell
    ternary ``{0, +-1}`` from binary ``{+-1}``: it is used only when the set's name is not
    recognised. Returns ``{"levels", "l_max", "binary", "free_scale", "row_min",
    "n_quantized", "known"}``.
    """
    levels, free = meta.get("levels"), None
    name = str(meta.get("qset", ""))
    try:
        from brelax import get_set

        Q = get_set(name)
        free = Q.scale is None
        levels = list(Q.levels)
    except (ValueError, TypeError, ImportError):
        pass
    if free is None:
        free = "@" not in name and bool(name)
    known = levels is not None and len(levels) > 0
    lv = [float(v) for v in levels] if known else []
    return {
        "levels": lv,
        "l_max": max(lv) if known else math.nan,
        "binary": known and len(lv) == 1 and lv[0] > 0,
        "free_scale": bool(free),
        "row_min": meta.get("row_min"),
        "n_quantized": meta.get("n_quantized"),
        "known": known,
    }


def working_eps(meta) -> float:
    """Machine epsilon of the arithmetic the run's vectors were computed in.

    ``meta["dtype"]`` when recorded; a ``brelax train`` run (torch) is float32; otherwise float64
    (:func:`brelax.optimize`). Tolerances of the per-step inequalities scale with it.
    """
    dt = meta.get("dtype")
    if dt is not None:
        try:
            return float(np.finfo(np.dtype(str(dt).replace("torch.", ""))).eps)
        except TypeError:
            pass
    return float(np.finfo(np.float32 if meta.get("source") == "brelax train" else np.float64).eps)


def _tols(ctx, rtol, atol):
    """``rtol`` and ``atol`` widened to at least 1000 and 100 working epsilons (float32 runs)."""
    e = working_eps(ctx.meta)
    return max(rtol, 1000 * e), max(atol, 100 * e)


def _f_floor(ctx) -> float:
    """Absolute rounding floor for inequalities between values of f: ``F_ATOL * max_t |f(x_t)|``.

    f is evaluated in floating point with an absolute error of order
    ``eps * ||Ax - b|| * (||A|| ||x|| + ||b||)`` (least squares): near a zero minimum it is
    not small relative to f itself.
    """
    fin = np.abs(ctx.f[np.isfinite(ctx.f)])
    return F_ATOL * float(fin.max()) if fin.size else 0.0


def _x_scale(ctx, info, T):
    """A bound on ``max(||x_t||, ||x_{t+1}||)``: ``x_norm`` when recorded, else from the scales and ``r_t``."""
    xn = field(ctx.traj, "x_norm", T + 1)
    if xn is not None:
        return np.fmax(xn[:-1], xn[1:])
    sm = field(ctx.traj, "scale_max", T + 1)
    nq = info.get("n_quantized")
    r = ctx.r_norm if ctx.r_norm is not None else np.zeros(T + 1)
    if sm is None or not nq:
        return np.full(T, np.nan)
    p = np.nan_to_num(sm) * info["l_max"] * math.sqrt(float(nq))
    y = p + np.nan_to_num(r)
    return np.fmax(y[:-1], y[1:])
