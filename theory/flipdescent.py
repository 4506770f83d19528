r"""Theorem II.4 (THEORY.md): every-step descent with an explicit flip cost."""

from __future__ import annotations

import math

import numpy as np

from . import assumptions as A
from .flipcost import descent_terms, set_info
from .numerics import _tols, _x_scale, f_floor, field, working_eps
from .perstep import StepHypothesis, _describe_gL, _fields_present, _hi, _lo, _PerStep
from .result import Assumption


class FlipDescent(_PerStep):
    r"""Every-step descent with an explicit flip cost (THEORY.md, Theorem II.4), lazy methods.

    On every step with ``0 <= mu' <= 1`` (L-smooth f, any gradient ``G_t``):

    ``f(x_{t+1}) <= f(x_t) - S_t + K_t + N_t + Ebest_t``, ``Ebest_t = min(Ebar_t, Ehat_t, Ehat_seg_t)``, where
    the decrease ``S_t`` is the larger of ``c_t ||G_t||^2``, ``c_t = g (1 - mu')(1 - g L (1 - mu')/2)`` (valid
    where ``mu' = 0`` or ``g L (2 - mu') <= 2``) and ``(1/g - L/2) ||u_t||^2``, ``u_t = D^s_t + Dmu r_t``
    (valid where ``g L <= 2``); ``K_t = -Dmu <G_t, r_t> + L |Dmu| g ||G_t|| ||r_t|| + (L/2) Dmu^2 ||r_t||^2``
    (continuation), ``N_t = ||xi_t|| (g ||G_t|| + |Dmu| ||r_t||)`` (noise; 0 for full gradients), the
    a-priori flip cost ``Ebar_t`` (Lemma II.3(d)), the recorded one ``Ehat_t`` (Lemma II.3(e)) and, where the
    problem records its segment bound ``curv_gap_seg``, ``Ehat_seg_t = mu' <grad f(x^s_{t+1}), e_t> +
    curv_gap_seg_t / 2`` (Lemma II.3(f); NaN, so left out of the min, elsewhere); all are 0 when no code
    changes.

    The inequality is checked on every step where it is valid (a failure there is a violation), but it
    is a *guarantee* only where the descent coefficient is positive: ``g L < 2``. With ``g L > 2`` the
    inequality allows f to grow (``c_t < 0`` for gd) and the step gets no guarantee; the failing
    hypothesis is named with its steps. *Certified* steps: guarantee steps whose right side is at most
    ``f(x_t)`` (plus rounding): f provably did not go up.

    Where the pattern-stable fields are recorded it also checks, per step, the measured forms: the
    descent lemma at ``x^s_{t+1}``, ``pattern_gap_t <= B_t``, ``E_t <= Ehat_t`` (and the L form) and
    ``E_t <= Ehat_seg_t`` where recorded; where the problem has a quadratic majorant ``H``, also
    ``f(x_{t+1}) <= f(x_t) + <grad f(x_t), D_t> + <D_t, H D_t>/2`` on the actual step, an equality for least
    squares (a gradient that is biased in the step *and* in the record is caught there on every step).

    Measured: ``sum_t S_t`` over the valid steps; bound: ``sum_t (f(x_t) - f(x_{t+1}) + K_t + N_t +
    Ebest_t)`` over the same steps. ``details`` has the flip-cost tightness: the median over flip steps
    with a positive measured excess ``E_t`` of ``Ehat_t / E_t``, ``Ebar_t / E_t``, ``Ehat_seg_t / E_t`` (over
    the steps where it is recorded; None without) and ``Ebest_t / E_t``.
    """

    name = "flip_descent"
    label = "Theorem II.4"
    kind = "guarantee"
    statement = (
        "f(x_{t+1}) <= f(x_t) - S_t + K_t + N_t + min(Ebar_t, Ehat_t, Ehat_seg_t) every step; a guarantee where "
        "g L < 2 (Ebar_t a priori from flips and scales, Ehat_t from the recorded flip, Ehat_seg_t from the "
        "problem's segment bound where recorded)"
    )
    assumptions = [A.F_RECORDED, A.LAZY, A.L_KNOWN]

    def bound(self, f_t=None, S=None, K=0.0, N=0.0, E=0.0, **_) -> float:
        """The right side ``f(x_t) - S_t + K_t + N_t + E_t`` of one step."""
        return f_t - S + K + N + E

    def check(self, trajectory, L=None, rtol=1e-10, **kw):
        """Parameters: ``L`` (default the problem's; an estimate fails "L known"), ``rtol``
        relative to the size of f and of the terms. Returns a Result; ``details`` carries the
        sums of ``E_t`` (measured), ``Ebar_t``, ``Ehat_t`` and ``Ehat_seg_t``, and their tightness."""
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
        gL = g * Lv
        rhs = self.bound(ctx.f[:-1], tm["S"], tm["K"], tm["N"], tm["Ebest"])
        mu_ok = (mn >= 0) & (mn <= 1) & (g > 0)
        valid = mu_ok & np.isfinite(tm["S"]) & np.isfinite(Lv)
        gap = ctx.f[1:] - rhs
        sizes = np.abs(ctx.f[:-1]) + np.abs(ctx.f[1:]) + np.abs(tm["S"]) + np.abs(tm["K"]) + tm["N"]
        sizes = sizes + np.abs(tm["Ebest"])
        floor = f_floor(ctx, info)
        tol = rtol * sizes + floor
        # measured forms (where the pattern-stable fields are recorded)
        fs, sgd, sn2, pg = (
            field(trajectory, n, T) for n in ("f_stable", "stable_g_dot_D", "stable_norm2", "pattern_gap")
        )
        det = {
            "L": ctx.L,
            "set": info,
            "sum_E_measured": None,
            "sum_Ebar": float(np.nansum(tm["Ebar"][valid])),
            "sum_Ehat": float(np.nansum(tm["Ehat"][valid])),
            "sum_Ehat_seg": float(np.nansum(tm["Ehat_seg"][valid])) if np.isfinite(tm["Ehat_seg"]).any() else None,
            "Ehat_curvature": "problem's quadratic majorant H" if tm["Ehat_curvature"] == "H" else "L I",
        }
        bad = np.zeros(T, dtype=bool)
        if fs is not None and sgd is not None and sn2 is not None and pg is not None:
            G = np.sqrt(np.maximum(tm["grad_norm2"], 0))
            st = np.isfinite(fs) & np.isfinite(pg)
            lemma = fs - (ctx.f[:-1] + sgd + Lv / 2 * sn2)
            tol_l = rtol * (np.abs(fs) + np.abs(ctx.f[:-1]) + np.abs(sgd) + Lv * sn2) + floor
            e_meas = ctx.f[1:] - fs
            e_bnd = mn * (G + Lv * np.sqrt(np.maximum(sn2, 0))) * pg + 0.5 * Lv * mn * mn * pg * pg
            Ehs = tm["Ehat_seg"]
            tol_e = rtol * (np.abs(ctx.f[1:]) + np.abs(fs) + e_bnd + np.abs(tm["Ehat"])) + floor
            # the rounding of Ehat_seg scales with its two terms (they may cancel), not with their sum
            gs_f, seg_f = field(trajectory, "gap_gs_dot", T), field(trajectory, "curv_gap_seg", T)
            seg_size = np.zeros(T) if gs_f is None or seg_f is None else np.abs(mn * gs_f) + 0.5 * np.abs(seg_f)
            tol_e = tol_e + rtol * np.where(np.isfinite(Ehs) & np.isfinite(seg_size), seg_size, 0.0)
            gap_b = pg - tm["B"]
            tol_b = 1e-9 * np.fmax(tm["B"], pg) + 1e-12 * np.nan_to_num(_x_scale(ctx, info, T), nan=0.0)
            f1 = st & valid & (lemma > tol_l)
            f2 = st & valid & ((e_meas > e_bnd + tol_e) | (e_meas > tm["Ehat"] + tol_e))
            f3 = st & valid & (gap_b > tol_b)
            # the segment form (Lemma II.3(f)) where the problem records it; NaN steps are not claimed
            f5 = st & valid & np.isfinite(Ehs) & (e_meas > Ehs + tol_e)
            bad = f1 | f2 | f3 | f5
            pos = st & valid & (ctx.flips > 0) & (e_meas > tol_e)
            pos_seg = pos & np.isfinite(Ehs)
            det.update(
                stable_fields=True,
                descent_lemma_at_stable_failing=int(f1.sum()),
                excess_over_measured_bound_failing=int(f2.sum()),
                pattern_gap_over_B_failing=int(f3.sum()),
                sum_E_measured=float(np.nansum(e_meas[st & valid])),
                max_pattern_gap_over_B=float(np.nanmax(pg[st & (tm["B"] > 0)] / tm["B"][st & (tm["B"] > 0)]))
                if np.any(st & (tm["B"] > 0))
                else None,
                flip_steps_positive_excess=int(pos.sum()),
                tightness_Ehat_median=float(np.median(tm["Ehat"][pos] / e_meas[pos])) if pos.any() else None,
                tightness_Ebar_median=float(np.median(tm["Ebar"][pos] / e_meas[pos])) if pos.any() else None,
                excess_over_segment_bound_failing=int(f5.sum()),
                tightness_Ehat_seg_median=float(np.median(Ehs[pos_seg] / e_meas[pos_seg])) if pos_seg.any() else None,
                tightness_Ebest_median=float(np.median(tm["Ebest"][pos] / e_meas[pos])) if pos.any() else None,
            )
        else:
            det.update(stable_fields=False)
        # the majorant on the actual step (an equality for least squares): f' <= f + <grad f, D> + <D, H D>/2
        gD, cD = field(trajectory, "g_dot_D", T), field(trajectory, "curv_step", T)
        if gD is not None and cD is not None and np.isfinite(cD).any():
            maj = ctx.f[1:] - (ctx.f[:-1] + gD + 0.5 * cD)
            tol_m = rtol * (np.abs(ctx.f[1:]) + np.abs(ctx.f[:-1]) + np.abs(gD) + np.abs(cD)) + floor
            f4 = valid & np.isfinite(maj) & (maj > tol_m)
            bad = bad | f4
            det["majorant_on_step_failing"] = int(f4.sum())
        gap = np.where(bad, np.fmax(gap, tol + sizes + 1.0), gap)
        elig = valid & np.isfinite(gap)
        meas = float(np.sum(tm["S"][elig])) if elig.any() else None
        bnd = float(np.sum((ctx.f[:-1] - ctx.f[1:] + tm["K"] + tm["N"] + tm["Ebest"])[elig])) if elig.any() else None
        if elig.all() and ctx.f_lower is not None and T > 0:
            det["whole_run_bound"] = float(ctx.f[0] - ctx.f_lower + np.sum(tm["K"] + tm["N"] + tm["Ebest"]))
        step = StepHypothesis(
            "step size g*L < 2 (positive descent coefficient)", gL < 2, lambda fail: _describe_gL(gL, fail)
        )
        mu_h = StepHypothesis(
            "0 <= mu_(t+1) <= 1", mu_ok, lambda fail: f"mu_(t+1) in [{_lo(mn, fail)}, {_hi(mn, fail)}]"
        )
        det.update(
            sum_K=float(np.nansum(tm["K"][elig])),
            sum_N=float(np.nansum(tm["N"][elig])),
            flip_steps=int(np.sum(ctx.flips > 0)),
            gL_condition_failing=int(np.sum(valid & ~(gL < 2))),
        )
        return self.per_step(
            ctx,
            valid,
            gap,
            tol,
            np.where(sizes > 0, sizes, 1.0),
            det,
            extra_assumptions=[have, free],
            measured=meas,
            bound=bnd,
            guarantee=valid & (gL < 2),
            certified=rhs <= ctx.f[:-1] + tol,
            hypotheses=[mu_h, step],
        )
