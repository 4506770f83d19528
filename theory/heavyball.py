r"""Theorem II.12 (THEORY.md, section II.8): heavy-ball momentum and weight decay on a lazy method.

torch's SGD with momentum ``beta`` (dampening 0, no Nesterov) and weight decay ``lambda`` moves the
anchor by ``a_t = y_{t+1} - y_t = -g_t m_t``, ``m_t = beta m_{t-1} + G_t + lambda y_t``, with ``G_t`` the
gradient at ``x_t``. On a step whose batch records ``f_B(x_t)`` and ``f_B(x_{t+1})`` (``--check-every``),
with ``f := f_B`` and the predictable ``L_B`` of :func:`theory.batchdescent.same_batch_records`, the
Lyapunov function ``V = f + beta/(2g) <a, W a>`` descends where ``kappa_t > 0`` (see :class:`HeavyBall`).
"""

from __future__ import annotations

import numpy as np

from . import assumptions as A
from .batchdescent import BURN_IN, same_batch_details, same_batch_hypotheses, same_batch_records
from .flipcost import descent_terms, flip_cost_bound, recorded_flip_cost_L, set_info
from .numerics import _nan, _tols, field, working_eps
from .perstep import StepHypothesis, _hi, _PerStep
from .result import Assumption

#: The anchor-step fields Theorem II.12 reads (:data:`brelax.diagnostics.MOMENTUM_SUMS`).
FIELDS = ("ystep_norm2", "ystep_old2", "ystep_new2", "p_dot_ystep", "r_dot_ystep", "raw_norm2", "raw_dot_r")


def kappa(g, g_prev, beta, L):
    r"""The Lyapunov descent coefficient ``kappa_t = 1/g_t - beta/(2 g_{t-1}) - beta/(2 g_t) - L/2`` (Theorem II.12).

    ``g_prev`` NaN (the first step, ``m_{-1} = 0``) drops the ``g_{t-1}`` term. ``kappa_t > 0`` iff
    ``g_t L < 2 - beta (1 + g_t/g_{t-1})``; with a constant step ``g L < 2 (1 - beta)``.

    Examples
    --------
    >>> float(kappa(0.1, 0.1, 0.9, 1.0))  # 10 - 4.5 - 4.5 - 0.5
    0.5
    """
    g = np.asarray(g, dtype=np.float64)
    return 1.0 / g - _previous_weight(g_prev, beta) - beta / (2 * g) - L / 2


def _previous_weight(g_prev, beta):
    """``beta / (2 g_{t-1})``, 0 where ``g_{t-1}`` is NaN (the first step: ``m_{-1} = 0``)."""
    g_prev = np.asarray(g_prev, dtype=np.float64)
    ok = np.isfinite(g_prev) & (g_prev > 0)
    return np.where(ok, beta / (2 * np.where(ok, g_prev, 1.0)), 0.0)


class HeavyBall(_PerStep):
    r"""Heavy-ball descent of a Lyapunov function on the step's own batch (THEORY.md, Theorem II.12).

    With ``W_t = (1 - mu') I + mu' M_t`` (``M_t`` the projector onto the lines of ``P(y_t)``'s rows),
    ``omega_t = <a_t, W_t a_t>``, ``omega'_t = <a_{t-1}, W_t a_{t-1}>``, ``Dmu = mu' - mu_t``, on every
    recorded step

    ``f_B(x_{t+1}) + beta/(2 g_t) omega_t <= f_B(x_t) + beta/(2 g_{t-1}) omega'_t - kappa_t omega_t
    + (L/2)(||D^s_t||^2 - omega_t) - Dmu <G_t, r_t> - lambda <y_t, W_t a_t> + min(Ebar_t, Ehat_t)``

    with ``kappa_t`` of :func:`kappa`, ``Ehat_t = mu' (<G_t, e_t> + L <D^s_t, e_t>) + (L/2) mu'^2 ||e_t||^2``
    and ``Ebar_t`` of Lemma II.3(d) with ``||a_t||`` for ``g ||G_t||``. A *guarantee* where ``kappa_t > 0``
    (with ``L = L_B``), the secant is at most ``L_B`` and no row of ``y_{t+1}`` turned against its old
    pattern (the ray comparison is then the line one); *certified* where the right side is at most
    ``V_t = f_B(x_t) + beta/(2 g_{t-1}) omega'_t``: the Lyapunov function did not go up. With an
    estimated ``L_B`` a failed inequality names the estimate, never a violation (as
    :class:`theory.batchdescent.BatchDescent`); with ``L`` given, a failure is a violation.
    """

    name = "heavy_ball"
    #: L_B is estimated inside the check, predictably, from the secants before each step: verify passes no L.
    own_L_estimate = True
    label = "Theorem II.12"
    kind = "guarantee"
    statement = (
        "momentum beta, weight decay lambda, same batch B: V_B(t+1) <= V_B(t) - kappa_t omega_t + costs, "
        "V = f_B + beta/(2g) <a, W a>; a guarantee where kappa_t > 0 (g L_B < 2 - beta (1 + g_t/g_(t-1)))"
    )
    assumptions = [A.LAZY_ANY_DIRECTION]

    def bound(self, f_t=None, lyap_prev=0.0, kappa_omega=0.0, costs=0.0, **_):
        """The right side ``V_t - kappa_t omega_t + costs_t`` of one step, with ``V_t`` = ``f_t + lyap_prev``."""
        return f_t + lyap_prev - kappa_omega + costs

    def check(self, trajectory, L=None, burn_in=BURN_IN, rtol=1e-10, **kw):
        """Parameters: ``L`` (a known ``L_B``; default: estimated on the burn-in), ``burn_in`` in (0, 1)."""
        ctx = self.context(trajectory, **kw)
        T, meta = ctx.T, ctx.meta
        if working_eps(meta) > np.finfo(np.float64).eps:
            rtol = _tols(ctx, rtol, 0.0)[0]
        if ctx.deterministic and L is None and ctx.L is not None and ctx.L_source in ("given", "problem"):
            L = ctx.L  # full gradients: f_B = f, whose L the problem knows
        bf, bfn, sec, L_B, burn, checked, rinfo = same_batch_records(trajectory, T, L, burn_in, ctx)
        beta, lam = float(meta.get("momentum") or 0.0), float(meta.get("weight_decay") or 0.0)
        fld = {n: field(trajectory, n, T) for n in (*FIELDS, "raw_dot_gap", "stable_clamped")}
        have = all(fld[n] is not None and np.isfinite(fld[n]).any() for n in FIELDS)
        a2, old2, new2, pda, rda, G2, Gr = (_nan(T) if fld[n] is None else fld[n] for n in FIELDS)
        Ge = _nan(T) if fld["raw_dot_gap"] is None else fld["raw_dot_gap"]
        clamped = np.zeros(T) if fld["stable_clamped"] is None else fld["stable_clamped"]
        g, mt, mn = ctx.lr[:-1], ctx.mu[:-1], ctx.mu[1:]
        dmu = mn - mt
        g_prev = np.concatenate([[np.nan], g[:-1]])
        omega = (1 - mn) * a2 + mn * old2
        omega_prev = np.concatenate([[0.0], (1 - mn[1:]) * a2[:-1] + mn[1:] * new2[:-1]])
        lyap_prev = _previous_weight(g_prev, beta) * omega_prev
        kap = kappa(g, g_prev, beta, L_B)
        sn2 = field(trajectory, "stable_norm2", T)
        sn2 = _nan(T) if sn2 is None else sn2
        dn2 = field(trajectory, "step_norm2", T)
        if dn2 is not None:  # mu' = 0 (gd): x = y, the pattern-stable step is the step itself
            sn2 = np.where(np.isnan(sn2) & (mn == 0), dn2, sn2)
        sdg, pg = (field(trajectory, n, T) for n in ("stable_dot_gap", "pattern_gap"))
        sdg, pg = (_nan(T) if v is None else v for v in (sdg, pg))
        Eh = recorded_flip_cost_L(mn, ctx.flips, Ge, sdg, pg, L_B)  # with the raw gradient G_t
        info = set_info(meta)
        tm = descent_terms(ctx, L_B, info)
        r = ctx.r_norm if ctx.r_norm is not None else np.full(T + 1, np.nan)
        gn = np.sqrt(np.maximum(tm["sgrad_norm2"], 0.0))  # g ||m_t|| = ||a_t||: the y-step of Lemma II.3
        Eb = flip_cost_bound(tm["B"], mn, np.sqrt(np.maximum(G2, 0.0)), gn, g, dmu, r[:-1], L_B)
        E = np.fmin(Eb, Eh)
        costs = 0.5 * L_B * (sn2 - omega) - dmu * Gr - lam * (pda + (1 - mn) * rda) + E
        rhs = self.bound(bf, lyap_prev, kap * omega, costs)
        lhs = bfn + beta / (2 * g) * omega
        gap = lhs - rhs
        sizes = np.abs(bf) + np.abs(bfn) + np.abs(lyap_prev) + np.abs(kap * omega) + np.abs(costs)
        tol = rtol * sizes + 64 * working_eps(meta) * (np.abs(bf) + np.abs(bfn))
        mu_ok = (mn >= 0) & (mn <= 1) & (g > 0)
        valid = checked & mu_ok & np.isfinite(gap)
        if (
            T and int(meta.get("first_step", 0) or 0) > 0
        ):  # the record starts mid-run: a_(t-1) of its first step unknown
            valid[0] = False
        line = clamped == 0
        held = gap <= tol
        step_size = StepHypothesis(
            "kappa_t > 0: g L_B < 2 - beta (1 + g_t/g_(t-1))",
            ~checked | (kap > 0),
            lambda fail: (
                f"beta = {beta:g}, g*L_B up to {_hi(g * L_B, fail)}, kappa down to "
                f"{float(np.nanmin(kap[fail])) if fail.any() else float('nan'):.3g}"
            ),
        )
        turned = StepHypothesis(
            "no row turned against its old pattern (ray = line comparison)",
            ~checked | line,
            lambda fail: f"{int(np.nansum(clamped[fail]))} rows with <y_(t+1), P(y_t)> < 0",
        )
        estimated = L is None
        hyps, eligible, sec_ok = same_batch_hypotheses(
            burn, burn_in, checked, sec, L_B, valid, held, estimated, step_size, (turned,)
        )
        if not estimated:  # the recorded pattern-stable fields are the ray's: the inequality needs the line
            eligible = eligible & line
        guarantee = eligible & (kap > 0) & sec_ok & line
        det = same_batch_details(ctx, rinfo, L_B, checked, guarantee, held)
        det["kappa_positive_after_burn_in"] = int((checked & (kap > 0)).sum())
        ctx.consts.update(momentum=beta, weight_decay=lam)
        sgd = Assumption(
            "torch SGD recursion m = beta m + G + lambda y, y -= g m (dampening 0, no Nesterov), not plain SGD",
            lambda c: (
                c.meta.get("direction") == "anchor step"
                and c.meta.get("base_optimizer", "SGD") == "SGD"
                and not c.meta.get("nesterov", False)
                and float(c.meta.get("dampening", 0.0) or 0.0) == 0.0,
                f"base={c.meta.get('base_optimizer')}, direction={c.meta.get('direction')}, "
                f"nesterov={c.meta.get('nesterov')}, dampening={c.meta.get('dampening')} (plain SGD: batch_descent)",
            ),
            scope=True,
        )
        recorded = Assumption(
            "same-batch records and the anchor-step sums",
            lambda c: (bool(rinfo["recorded"]) and have, f"{rinfo['recorded']} recorded steps, sums present: {have}"),
            scope=True,
        )
        return self.per_step(
            ctx,
            eligible,
            gap,
            tol,
            np.where(sizes > 0, sizes, 1.0),
            det,
            extra_assumptions=[recorded, sgd],
            guarantee=guarantee,
            certified=rhs <= bf + lyap_prev + tol,
            hypotheses=hyps,
        )
