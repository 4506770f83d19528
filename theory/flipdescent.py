r"""Theorem II.4 (THEORY.md): every-step descent with an explicit flip cost."""

from __future__ import annotations

import math

import numpy as np

from . import assumptions as A
from .flipcost import descent_terms, set_info
from .numerics import _f_floor, _tols, _x_scale, field, working_eps
from .perstep import _fields_present, _PerStep
from .result import Assumption


class FlipDescent(_PerStep):
    r"""Every-step descent with an explicit flip cost (THEORY.md, Theorem II.4), lazy methods.

    On every step with ``0 <= mu' <= 1`` and ``mu' = 0`` or ``g L (2 - mu') <= 2``:

    ``f(x_{t+1}) <= f(x_t) - c_t ||G_t||^2 + K_t + N_t + Ebar_t``, with
    ``c_t = g (1 - mu')(1 - g L (1 - mu')/2)``,
    ``K_t = -Dmu <G_t, r_t> + L |Dmu| g ||G_t|| ||r_t|| + (L/2) Dmu^2 ||r_t||^2`` (continuation),
    ``N_t = ||xi_t|| (g ||G_t|| + |Dmu| ||r_t||)`` (noise; 0 for full gradients) and the a-priori
    flip cost ``Ebar_t`` (0 when no code changes). Where the pattern-stable fields are
    recorded it also checks, per step, the measured forms: the descent lemma at
    ``x^s_{t+1}``, ``pattern_gap_t <= B_t`` and ``E_t <= mu' (||grad f(x_t)|| + L ||D^s_t||)
    pattern_gap_t + (L/2) mu'^2 pattern_gap_t^2``.

    Measured: ``sum_t c_t ||G_t||^2`` over the eligible steps; bound:
    ``sum_t (f(x_t) - f(x_{t+1}) + K_t + N_t + Ebar_t)`` over the same steps (when every
    step is eligible this is ``<= f(x_0) - f_* + sum (K + N + Ebar)``, reported as
    ``whole_run_bound``). Status: violated if a per-step inequality fails.
    """

    name = "flip_descent"
    statement = (
        "f(x_{t+1}) <= f(x_t) - g(1-mu')(1-gL(1-mu')/2)||G_t||^2 + K_t + N_t + Ebar_t every step "
        "(Ebar_t: a-priori flip cost from flips, scales, ||G_t||)"
    )
    assumptions = [A.LAZY, A.L_KNOWN]

    def bound(self, **_) -> float:
        return 0.0

    def check(self, trajectory, L=None, rtol=1e-10, **kw):
        """Parameters: ``L`` (default the problem's; an estimate fails "L known"), ``rtol``
        relative to the size of f and of the terms. Returns a Result; ``details`` carries the
        sums of ``E_t`` (measured) and ``Ebar_t`` (a priori)."""
        ctx = self.context(trajectory, L=L, **kw)
        T = ctx.T
        rtol = _tols(ctx, rtol, 0.0)[0] if working_eps(ctx.meta) > np.finfo(np.float64).eps else rtol
        info = set_info(ctx.meta)
        have = _fields_present(trajectory, ("sgrad_norm2", "grad_norm2", "sg_dot_r", "scale_max"), T)
        free = Assumption(
            "free-scale set (Q a union of rays), levels known",
            lambda c: (info["free_scale"] and info["known"], f"qset={c.qset!r}, levels={info['levels']}"),
        )
        Lv = ctx.L if ctx.L is not None else math.nan
        tm = descent_terms(ctx, Lv, info)
        g, mn = ctx.lr[:-1], ctx.mu[1:]
        step_ok = (mn >= 0) & (mn <= 1) & (g > 0) & ((mn == 0) | (g * Lv * (2 - mn) <= 2)) & np.isfinite(Lv)
        gap = ctx.f[1:] - tm["rhs"]
        sizes = (
            np.abs(ctx.f[:-1])
            + np.abs(ctx.f[1:])
            + np.abs(tm["c"] * tm["sgrad_norm2"])
            + np.abs(tm["K"])
            + tm["N"]
            + tm["Ebar"]
        )
        tol = rtol * sizes + _f_floor(ctx)
        # measured forms (where the pattern-stable fields are recorded)
        fs, sgd, sn2, pg = (
            field(trajectory, n, T) for n in ("f_stable", "stable_g_dot_D", "stable_norm2", "pattern_gap")
        )
        det = {"L": ctx.L, "set": info, "sum_E_measured": None, "sum_Ebar": float(np.nansum(tm["Ebar"][step_ok]))}
        bad = np.zeros(T, dtype=bool)
        if fs is not None and sgd is not None and sn2 is not None and pg is not None:
            G = np.sqrt(np.maximum(tm["grad_norm2"], 0))
            st = np.isfinite(fs) & np.isfinite(pg)
            lemma = fs - (ctx.f[:-1] + sgd + Lv / 2 * sn2)
            tol_l = rtol * (np.abs(fs) + np.abs(ctx.f[:-1]) + np.abs(sgd) + Lv * sn2) + _f_floor(ctx)
            e_meas = ctx.f[1:] - fs
            e_bnd = mn * (G + Lv * np.sqrt(np.maximum(sn2, 0))) * pg + 0.5 * Lv * mn * mn * pg * pg
            tol_e = rtol * (np.abs(ctx.f[1:]) + np.abs(fs) + e_bnd) + _f_floor(ctx)
            gap_b = pg - tm["B"]
            tol_b = 1e-9 * np.fmax(tm["B"], pg) + 1e-12 * np.nan_to_num(_x_scale(ctx, info, T), nan=0.0)
            f1 = st & step_ok & (lemma > tol_l)
            f2 = st & step_ok & (e_meas > e_bnd + tol_e)
            f3 = st & step_ok & (gap_b > tol_b)
            bad = f1 | f2 | f3
            det.update(
                stable_fields=True,
                descent_lemma_at_stable_failing=int(f1.sum()),
                excess_over_measured_bound_failing=int(f2.sum()),
                pattern_gap_over_B_failing=int(f3.sum()),
                sum_E_measured=float(np.nansum(e_meas[st & step_ok])),
                max_pattern_gap_over_B=float(np.nanmax(pg[st & (tm["B"] > 0)] / tm["B"][st & (tm["B"] > 0)]))
                if np.any(st & (tm["B"] > 0))
                else None,
            )
        else:
            det.update(stable_fields=False)
        gap = np.where(bad, np.fmax(gap, tol + sizes + 1.0), gap)
        elig = step_ok & np.isfinite(gap)
        meas = float(np.sum((tm["c"] * tm["sgrad_norm2"])[elig])) if elig.any() else None
        bnd = float(np.sum((ctx.f[:-1] - ctx.f[1:] + tm["K"] + tm["N"] + tm["Ebar"])[elig])) if elig.any() else None
        if elig.all() and ctx.f_lower is not None and T > 0:
            det["whole_run_bound"] = float(ctx.f[0] - ctx.f_lower + np.sum(tm["K"] + tm["N"] + tm["Ebar"]))
        det.update(
            sum_K=float(np.nansum(tm["K"][elig])),
            sum_N=float(np.nansum(tm["N"][elig])),
            flip_steps=int(np.sum(ctx.flips > 0)),
            gL_condition_failing=int(np.sum(~step_ok)),
        )
        return self.per_step(
            ctx,
            step_ok,
            gap,
            tol,
            np.where(sizes > 0, sizes, 1.0),
            det,
            extra_assumptions=[have, free],
            measured=meas,
            bound=bnd,
        )
