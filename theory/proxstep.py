r"""Theorem II.6 (THEORY.md): PGD and ProxQuant steps decrease the prox objective."""

from __future__ import annotations

import math

import numpy as np

from .context import PROX_METHODS
from .flipcost import set_info
from .numerics import ATOL_DOT, RTOL, _nan, _tols, _x_scale, f_floor, field
from .perstep import StepHypothesis, _fields_present, _hi, _method_in, _PerStep
from .result import Assumption


class ProxStepDescent(_PerStep):
    r"""PGD and ProxQuant (l2): one step decreases the prox objective (THEORY.md, Theorem II.6).

    ``x_{t+1}`` minimises ``u -> 1/2 ||u - z_t||^2 + (lam'/2) d_Q(u)^2`` with
    ``z_t = x_t - g G_t``, ``lam' = mu'/(1 - mu')``; comparing with ``u = x_t``:

    (i) ``mu' < 1``: ``(1 - mu') (g <G_t, D_t> + ||D_t||^2/2) <= (mu'/2) (d_t^2 - d_{t+1}^2)``;
        ``mu' = 1`` (PGD): ``g <G_t, D_t> + ||D_t||^2/2 <= d_t g ||G_t|| + d_t^2/2``
        (comparing with ``u = P(x_t)``; ``d_t = d_Q(x_t) = 0`` for PGD), any ``G_t``, no L;
    (ii) full gradient, L known: ``f(x_{t+1}) <= f(x_t) + <grad f, D_t> + L/2 ||D_t||^2``
         with (i) inserted.

    ``d_t`` is the field ``dist_x``.
    """

    name = "prox_step_descent"
    label = "Theorem II.6"
    kind = "guarantee"
    statement = (
        "x' = argmin 1/2||u - (x - g G)||^2 + lam'/2 d_Q(u)^2  =>  g<G, D> + ||D||^2/2 <= lam'/2 (d_Q(x)^2 "
        "- d_Q(x')^2) every step; L known: f(x') <= f(x) - (1/(2g) - L/2)||D||^2 + lam'/(2g)(d^2 - d'^2)"
    )
    assumptions = []

    def check(self, trajectory, L=None, rtol=RTOL, atol=ATOL_DOT, **kw):
        """Parameters: ``L`` (default the problem's; (ii) is checked only when it is known and the
        gradient is full), tolerances. Reads ``sg_dot_D``, ``sgrad_norm2``, ``step_norm2``, ``dist_x``."""
        ctx = self.context(trajectory, L=L, **kw)
        T = ctx.T
        rtol, atol = _tols(ctx, rtol, atol)
        sgD, sg2 = field(trajectory, "sg_dot_D", T), field(trajectory, "sgrad_norm2", T)
        dx = field(trajectory, "dist_x", T + 1)
        have = _fields_present(trajectory, ("sg_dot_D", "sgrad_norm2", "dist_x"), T)
        if sgD is None or sg2 is None or dx is None:
            sgD, sg2, dx = _nan(T), _nan(T), np.full(T + 1, np.nan)
        g, mn, nd = ctx.lr[:-1], ctx.mu[1:], ctx.step_norm2
        d0, d1 = dx[:-1], dx[1:]
        gn = np.sqrt(np.maximum(sg2, 0.0))
        one = mn >= 1.0
        lhs1 = np.where(one, g * sgD + nd / 2, (1 - mn) * (g * sgD + nd / 2))
        rhs1 = np.where(one, d0 * g * gn + d0 * d0 / 2, mn / 2 * (d0 * d0 - d1 * d1))
        terms = np.abs(g * sgD) + nd / 2 + np.abs(rhs1) + np.where(one, 0.0, mn / 2 * (d0 * d0 + d1 * d1))
        info = set_info(ctx.meta)
        xs = _x_scale(ctx, info, T)
        tol = rtol * terms + atol * g * gn * np.nan_to_num(xs, nan=0.0)
        gap = lhs1 - rhs1
        eligible = (mn >= 0) & (mn <= 1) & (g > 0)
        det = {"L": ctx.L}
        use_L = ctx.L is not None and ctx.L_source in ("given", "problem") and ctx.deterministic
        conforming = eligible & np.isfinite(gap) & (gap <= tol)  # (i): no L, any G_t
        guarantee = np.zeros(T, dtype=bool)
        certified = np.zeros(T, dtype=bool)
        gL = g * (ctx.L if ctx.L is not None else math.nan)
        if use_L:
            # (ii): f' - f <= <grad f, D> + L/2 ||D||^2 and g <grad f, D> <= rhs1/(1-mu') - ||D||^2/2
            L_ = ctx.L
            with np.errstate(divide="ignore", invalid="ignore"):
                lin = np.where(
                    one,
                    (d0 * g * gn + d0 * d0 / 2 - nd / 2) / g,
                    (mn / (1 - mn) * (d0 * d0 - d1 * d1) / 2 - nd / 2) / g,
                )
            rhs2 = ctx.f[:-1] + lin + L_ / 2 * nd
            gap2 = ctx.f[1:] - rhs2
            tol2 = 1e-10 * np.maximum(
                np.maximum(np.abs(ctx.f[:-1]), np.abs(ctx.f[1:])), np.abs(lin) + L_ * nd
            ) + f_floor(ctx, info)
            fail2 = eligible & np.isfinite(gap2) & (gap2 > tol2)
            # a descent guarantee needs the coefficient 1/(2g) - L/2 of ||D_t||^2 positive: g L < 1
            guarantee = eligible & np.isfinite(gap2) & ~fail2 & (gL < 1)
            certified = rhs2 <= ctx.f[:-1] + tol2
            det.update(
                descent_checked=True,
                descent_failing_steps=int(fail2.sum()),
                max_descent_gap=float(np.nanmax(gap2)) if np.isfinite(gap2).any() else None,
            )
            gap = np.where(fail2, np.fmax(gap, tol + terms + 1.0), gap)
        else:
            det.update(descent_checked=False)
        hyps = [
            StepHypothesis(
                "L known and full gradient (for the f-descent (ii))",
                np.full(T, use_L),
                lambda fail: f"L {ctx.L_source}, {'full' if ctx.deterministic else 'minibatch'} gradients",
            ),
            StepHypothesis(
                "step size g*L < 1 (positive coefficient 1/(2g) - L/2)", gL < 1, lambda fail: _describe(gL, fail)
            ),
        ]
        plain = Assumption(
            "plain gradient step z = x - g G (no momentum, no weight decay)",
            lambda c: (
                c.meta.get("plain_sgd", True) is not False,
                f"momentum={c.meta.get('momentum')}, weight_decay={c.meta.get('weight_decay')}",
            ),
        )
        return self.per_step(
            ctx,
            eligible,
            gap,
            tol,
            np.where(terms > 0, terms, 1.0),
            det,
            extra_assumptions=[_method_in(PROX_METHODS, "x' = prox(x - g G)"), have, plain],
            guarantee=guarantee,
            certified=certified,
            hypotheses=hyps,
            conforming=conforming,
        )


def _describe(gL, fail) -> str:
    return f"step size g*L up to {_hi(gL, fail)} >= 1"
