r"""Theorem II.2 (THEORY.md): monotonicity of exact projections on every lazy step."""

from __future__ import annotations

import numpy as np

from . import assumptions as A
from .flipcost import set_info
from .numerics import ATOL_DOT, RTOL, _nan, _tols, _x_scale, field
from .perstep import _fields_present, _PerStep


class ProjectionMonotonicity(_PerStep):
    r"""Monotonicity of any exact projection, and what it gives lazy methods on every step.

    For every closed Q, ``phi(y) = max_{z in Q} <y, z> - ||z||^2/2`` is convex and every
    nearest point ``P(y)`` is a subgradient, so ``<P(y') - P(y), y' - y> >= 0``
    (THEORY.md, Theorem II.1). For ``x_t = y_t - mu_t r_t``, ``y_{t+1} = y_t - g G_t``
    (any ``G_t``: full or minibatch gradient), ``0 <= mu'`` (Theorem II.2):

    ``<G_t, D_t> + Dmu <G_t, r_t> <= -(1 - mu') g ||G_t||^2`` on every step, and with
    ``mu_t = mu_{t+1} = mu``: ``mu delta_t <= 1`` (on resolved steps). The step identity it rests on,
    ``g <G_t, D_t> = -||D_t||^2 + mu' <r_t - r_{t+1}, D_t> - Dmu <r_t, D_t>`` (Theorem II.2(a) dotted
    with ``D_t``), is checked on every step too: it fails when the step size, mu or gradient the
    step used is not the recorded one (a 1% error in the learning rate is caught).

    Measured: ``max_t (gap_t - tol_t)/scale_t`` with ``gap_t`` the left side minus the
    right side; bound 0. No constant: nothing is estimated.
    """

    name = "projection_monotonicity"
    label = "Theorem II.2"
    kind = "conformance"
    statement = (
        "<P(y') - P(y), y' - y> >= 0  =>  <G_t, D_t + (mu_{t+1}-mu_t) r_t> <= -(1-mu_{t+1}) g ||G_t||^2 "
        "every step; mu fixed: mu delta_t <= 1"
    )
    assumptions = [A.LAZY_ANY_DIRECTION]

    def bound(self, lr=None, mu_next=None, sgrad_norm2=None, **_) -> float:
        """``-(1 - mu') g ||G_t||^2``."""
        return -(1.0 - mu_next) * lr * sgrad_norm2

    def check(self, trajectory, rtol=RTOL, atol=ATOL_DOT, delta_tol=1e-6, **kw):
        """Parameters: ``rtol`` (relative to the terms), ``atol`` (times ``||G_t|| ||x_t||``),
        ``delta_tol`` on ``mu delta_t - 1``. Reads ``sg_dot_D``, ``sg_dot_r``, ``sgrad_norm2``."""
        ctx = self.context(trajectory, **kw)
        T = ctx.T
        rtol, atol = _tols(ctx, rtol, atol)
        sgD, sgr, sg2 = (field(trajectory, n, T) for n in ("sg_dot_D", "sg_dot_r", "sgrad_norm2"))
        have = _fields_present(trajectory, ("sg_dot_D", "sg_dot_r", "sgrad_norm2"), T)
        if sgD is None or sgr is None or sg2 is None:
            sgD = sgr = sg2 = _nan(T)
        info = set_info(ctx.meta)
        g, mt, mn = ctx.lr[:-1], ctx.mu[:-1], ctx.mu[1:]
        dmu = mn - mt
        rhs = self.bound(lr=g, mu_next=mn, sgrad_norm2=sg2)
        gap = sgD + dmu * sgr - rhs
        terms = np.abs(sgD) + np.abs(dmu * sgr) + np.abs(rhs)
        xs = _x_scale(ctx, info, T)
        floor = atol * np.sqrt(np.maximum(sg2, 0.0)) * np.nan_to_num(xs, nan=0.0)
        tol = rtol * terms + floor
        eligible = (mn >= 0) & (g > 0)
        # mu delta_t <= 1 on resolved fixed-mu steps (identity (b) + monotonicity)
        fixed = (mt == mn) & ctx.resolved
        md = mn * ctx.delta
        delta_fail = fixed & (md > 1.0 + delta_tol)
        gap = np.where(delta_fail, np.fmax(gap, tol + np.abs(terms) + 1.0), gap)
        # (a) dotted with D_t, the identity of section 7 with G_t: g<G, D> = -||D||^2 + mu'<r - r', D> - Dmu <r, D>
        inner, cross = ctx.inner, ctx.cross if ctx.cross is not None else _nan(T)
        ident = g * sgD + ctx.step_norm2 - mn * inner + dmu * cross
        iterms = np.abs(g * sgD) + ctx.step_norm2 + np.abs(mn * inner) + np.abs(dmu * cross)
        itol = rtol * iterms + atol * np.sqrt(np.maximum(ctx.step_norm2, 0.0)) * np.nan_to_num(xs, nan=0.0)
        ident_fail = eligible & np.isfinite(ident) & (np.abs(ident) > itol)
        gap = np.where(ident_fail, np.fmax(gap, tol + np.abs(terms) + 1.0), gap)
        mono = -g * (sgD + dmu * sgr) - (1.0 - mn) * g * g * sg2  # = mu' <P'-P, y'-y> >= 0
        det = {
            "max_mu_delta_fixed_mu": float(np.nanmax(md[fixed])) if fixed.any() else None,
            "mu_delta_over_1_steps": int(delta_fail.sum()),
            "fixed_mu_resolved_steps": int(fixed.sum()),
            "identity_failing_steps": int(ident_fail.sum()),
            "max_identity_error": float(np.nanmax(np.abs(ident) / np.where(iterms > 0, iterms, 1.0)))
            if np.isfinite(ident).any()
            else None,
            "min_monotonicity_term": float(np.nanmin(mono)) if np.isfinite(mono).any() else None,
            "x_scale_source": "x_norm" if field(trajectory, "x_norm") is not None else "scales and r_norm",
        }
        return self.per_step(ctx, eligible, gap, tol, np.where(terms > 0, terms, 1.0), det, extra_assumptions=[have])
