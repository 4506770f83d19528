r"""Theorem II.11 (THEORY.md): the high-probability whole-run bound for minibatch runs."""

from __future__ import annotations

import math

import numpy as np

from . import assumptions as A
from .base import TheoryResult
from .flipcost import descent_terms
from .numerics import field
from .result import Assumption


class SGDHighProbability(TheoryResult):
    r"""Minibatch runs with fixed mu: the high-probability whole-run bound (THEORY.md, Theorem II.11).

    With with-replacement sampling, ``||xi_t|| <= Xi`` and ``||grad f(x_t)|| <= Gamma``, ``g L <= 1``:
    with probability at least ``1 - delta``,
    ``sum_t c ||grad f(x_t)||^2 <= f(x_t0) - f_* + sum_t Ebar_t + (L/2) g^2 sum_t ||xi_t||^2
    + g (1 - gL) Gamma Xi sqrt(2 T log(1/delta))``, ``c = g (1 - gL/2)(1 - mu)``.
    ``Xi`` and ``Gamma`` are arguments (estimated on a calibration run); that the run stays within
    them is checked as an assumption. A violation has probability at most ``delta`` if the code is
    right. Sampling must be recorded as ``meta["sampling"] == "with_replacement"``: per-epoch
    reshuffling is not covered by this result (Theorem II.4 covers those steps pathwise).
    """

    name = "sgd_high_probability"
    label = "Theorem II.11"
    kind = "guarantee"
    statement = (
        "with-replacement minibatches, mu fixed, ||xi|| <= Xi, ||grad f|| <= Gamma, gL <= 1  =>  w.p. "
        "1 - delta sum c ||grad f||^2 <= f_0 - f_* + sum Ebar + L g^2/2 sum ||xi||^2 "
        "+ g(1-gL) Gamma Xi sqrt(2T log 1/delta)"
    )
    assumptions = [A.LAZY, A.L_KNOWN, A.F_LOWER, A.NONEMPTY, A.MU_CONSTANT, A.LR_CONSTANT]
    t0_rule = "constant"

    def bound(
        self,
        f_t0=None,
        f_lower=None,
        sum_Ebar=0.0,
        sum_noise2=0.0,
        L=None,
        lr=None,
        Gamma=None,
        Xi=None,
        T=None,
        delta=None,
        **_,
    ) -> float:
        """The right side of Theorem II.11."""
        mart = lr * (1 - lr * L) * Gamma * Xi * math.sqrt(2 * T * math.log(1 / delta))
        return f_t0 - f_lower + sum_Ebar + 0.5 * L * lr * lr * sum_noise2 + mart

    def check(self, trajectory, Xi=None, Gamma=None, delta=1e-3, L=None, t0=None, **kw):
        """Parameters: ``Xi``, ``Gamma`` (required; from a calibration run), ``delta`` in (0, 1), ``L``,
        ``t0`` (default: the last stretch of constant mu and g)."""
        if not 0 < float(delta) < 1:
            raise ValueError(f"delta must lie in (0, 1), got {delta!r}")
        ctx = self.context(trajectory, L=L, t0=t0, **kw)
        T = ctx.T
        w = ctx.window(ctx.t0)
        Lv = ctx.L if ctx.L is not None else math.nan
        g = float(ctx.lr[ctx.t0]) if ctx.t0 < T else math.nan
        mu = float(ctx.mu[ctx.t0])
        tm = descent_terms(ctx, Lv)
        G2 = tm["grad_norm2"][w]
        nz = field(trajectory, "noise_norm2", T)
        nz = np.full(T, np.nan) if nz is None else nz
        c = g * (1 - g * Lv / 2) * (1 - mu)
        n = T - ctx.t0
        measured = float(np.sum(c * G2)) if n else None
        b = None
        if Xi is not None and Gamma is not None and ctx.f_lower is not None and n:
            b = self.bound(
                float(ctx.f[ctx.t0]),
                ctx.f_lower,
                float(np.sum(tm["Ebar"][w])),
                float(np.sum(nz[w])),
                Lv,
                g,
                float(Gamma),
                float(Xi),
                n,
                float(delta),
            )
        xi_max = float(np.sqrt(np.nanmax(nz[w]))) if n and np.isfinite(nz[w]).any() else math.nan
        G_max = float(np.sqrt(np.nanmax(G2))) if n and np.isfinite(G2).any() else math.nan
        samp = str(ctx.meta.get("sampling", "per-epoch reshuffling" if ctx.meta.get("batch_size") else "full batch"))
        extra = [
            Assumption("with-replacement sampling", lambda _: (samp == "with_replacement", f"sampling: {samp}")),
            Assumption(
                "constants Xi and Gamma given (from a calibration run)",
                lambda _: (Xi is not None and Gamma is not None, f"Xi={Xi}, Gamma={Gamma}"),
            ),
            Assumption(
                "||xi_t|| <= Xi and ||grad f(x_t)|| <= Gamma on the window",
                lambda _: (
                    Xi is not None and Gamma is not None and xi_max <= float(Xi) and G_max <= float(Gamma),
                    f"max ||xi|| = {xi_max:.6g}, max ||grad f|| = {G_max:.6g}",
                ),
            ),
            Assumption("g L <= 1 and mu < 1", lambda _: (g * Lv <= 1 and mu < 1, f"g L = {g * Lv:.6g}, mu = {mu:.6g}")),
            Assumption(
                "noise and gradient norms recorded",
                lambda _: (bool(n) and bool(np.all(np.isfinite(nz[w])) and np.all(np.isfinite(G2))), ""),
            ),
        ]
        ctx.consts.update(c=c, delta=float(delta), Xi=Xi, Gamma=Gamma, max_noise=xi_max, max_grad=G_max, sampling=samp)
        return self.finish(
            ctx,
            measured,
            b,
            tolerance=1e-9 * (abs(b) if b else 1.0),
            extra_assumptions=extra,
            covered=[[ctx.t0, T]] if ctx.t0 < T else None,  # a whole-window bound: its steps
        )
