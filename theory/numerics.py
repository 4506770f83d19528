r"""Numerical helpers shared by the every-step checks: trajectory fields, working precision, tolerances."""

from __future__ import annotations

import math

import numpy as np

#: Relative rounding tolerance of the per-step inequalities.
RTOL = 1e-9
#: Absolute rounding floor, relative to ``||G_t|| * ||x_t||`` (the size of the rounding error of ``<G_t, D_t>``).
ATOL_DOT = 1e-11


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


def f_floor(ctx, info=None) -> np.ndarray:
    """Per-step absolute rounding floor for an inequality between values of f at ``x_t`` and ``x_{t+1}``.

    Local to the step, with ``eps`` the working precision, ``X = max(||x_t||, ||x_{t+1}||)``,
    ``F = max(|f(x_t)|, |f(x_{t+1})|)`` and ``L`` the smoothness constant used:
    ``64 eps (2F + ||grad f(x_t)|| X + sqrt(L F) X) + 64 eps^2 L X^2``. The last two terms are the
    rounding error of evaluating f near a zero minimum (least squares: the residual ``Ax - b`` is
    computed with an error of about ``eps ||A|| ||x||``, and ``||A||^2 = L``), where f itself is no
    scale. A run that diverges does not widen the tolerance of its early steps (a floor relative
    to ``max_t |f(x_t)|`` did: at f = 1e140 it hid every step).
    """
    from .flipcost import set_info

    T = ctx.T
    info = set_info(ctx.meta) if info is None else info
    e = 64.0 * working_eps(ctx.meta)
    g2 = field(ctx.traj, "grad_norm2", T + 1)
    if g2 is None or not np.isfinite(g2[:-1]).any():
        s2 = field(ctx.traj, "sgrad_norm2", T)
        gn = np.sqrt(np.maximum(np.nan_to_num(s2), 0.0)) if s2 is not None else np.zeros(T)
    else:
        gn = np.sqrt(np.maximum(np.nan_to_num(g2[:-1]), 0.0))
    xs = np.nan_to_num(_x_scale(ctx, info, T), nan=0.0)
    fa = np.nan_to_num(np.abs(ctx.f), nan=0.0, posinf=0.0)
    F = np.fmax(fa[:-1], fa[1:])
    L = ctx.L if ctx.L is not None and math.isfinite(ctx.L) else 0.0
    return e * (2 * F + gn * xs + np.sqrt(L * F) * xs) + e * working_eps(ctx.meta) * L * xs * xs


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
