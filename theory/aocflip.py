r"""Proposition II.9 (THEORY.md): the AOC cannot cover late flips."""

from __future__ import annotations

import math

import numpy as np

from . import assumptions as A
from .flipcost import set_info
from .numerics import _nan, field
from .perstep import _PerStep
from .result import Assumption


class AOCFlipBound(_PerStep):
    r"""AOC cannot cover late flips (THEORY.md, Proposition II.9), binary sets, lazy methods.

    With ``mu_t = mu_{t+1} = mu``, a step that changes ``k >= 1`` signs and has
    ``c_t = (1 - g L/2 - mu delta_t)/g > 0`` satisfies
    ``||G_t|| > (L/2) mu l (a_t + a_{t+1}) sqrt(k) >= mu L l a_min sqrt(k)``
    (``a`` the smallest scale, ``G_t`` the gradient the step used; any L > 0).
    Measured per step: ``||G_t|| - (L/2) mu l (a_t + a_{t+1}) sqrt(k)`` must be positive.
    ``details`` carries the statistic the old "AOC fraction" reported: the fraction of flip
    steps with ``c_t > 0``, and how many flip steps had a gradient below the threshold
    (on those, ``c_t <= 0`` is forced whatever the step size).
    """

    name = "aoc_flip_bound"
    label = "Proposition II.9"
    kind = "conformance"
    statement = "binary, mu fixed, k flips, c_t > 0  =>  ||G_t|| > mu L l a_min sqrt(k)"
    assumptions = [A.LAZY]
    relation = "<="

    def bound(self, mu=None, L=None, level=1.0, a_t=None, a_next=None, k=1, **_):
        """The threshold ``(L/2) mu l (a_t + a_{t+1}) sqrt(k)`` (arrays broadcast)."""
        return 0.5 * L * mu * level * (a_t + a_next) * np.sqrt(k)

    def check(self, trajectory, L=None, rtol=1e-9, **kw):
        """Parameters: ``L`` (the one ``c_t`` is computed with; default the problem's)."""
        ctx = self.context(trajectory, L=L, **kw)
        T = ctx.T
        info = set_info(ctx.meta)
        sg2 = field(trajectory, "sgrad_norm2", T)
        if sg2 is None:
            G2 = field(trajectory, "grad_norm2", T + 1)
            sg2 = G2[:-1] if G2 is not None and ctx.deterministic else _nan(T)
        Lv = ctx.L if ctx.L is not None else math.nan
        smin = ctx.scale_min if ctx.scale_min is not None else np.full(T + 1, np.nan)
        g, mt, mn = ctx.lr[:-1], ctx.mu[:-1], ctx.mu[1:]
        k = ctx.flips.astype(np.float64)
        thr = self.bound(mn, Lv, info["l_max"], smin[:-1], smin[1:], k)
        ct = (1 - g * Lv / 2 - mn * ctx.delta) / g
        flip_fixed = (mt == mn) & (k > 0) & ctx.resolved & (mn > 0)
        eligible = flip_fixed & (ct > 0)
        gn = np.sqrt(np.maximum(sg2, 0))
        gap = thr - gn  # claim: gn > thr
        tol = rtol * thr
        below = flip_fixed & (gn <= thr)
        det = {
            "flip_steps_fixed_mu": int(flip_fixed.sum()),
            "fraction_of_flip_steps_with_c_positive": float(np.mean(ct[flip_fixed] > 0)) if flip_fixed.any() else None,
            "flip_steps_with_gradient_below_threshold": int(below.sum()),
            "fraction_below_threshold": float(below.sum() / flip_fixed.sum()) if flip_fixed.any() else None,
        }
        binary = Assumption(
            "binary-type set {+-l} (one positive level)", lambda c: (info["binary"], f"levels={info['levels']}")
        )
        lk = Assumption("L given", lambda c: (c.L is not None, f"L={c.L}"))
        return self.per_step(ctx, eligible, gap, tol, np.where(thr > 0, thr, 1.0), det, extra_assumptions=[binary, lk])
