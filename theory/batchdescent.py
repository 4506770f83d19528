r"""Theorem II.4 on the step's own minibatch (THEORY.md, section II.8): a guarantee for SGD steps.

On a step that records ``f_B(x_t)``, ``f_B(x_{t+1})`` on the batch ``B`` the step used and the secant
of ``grad f_B``, Theorem II.4 applies with ``f := f_B``: the gradient the step used *is*
``grad f_B(x_t)`` (plain SGD), so ``N_t = 0``. The smoothness constant of step t is
``L_t = MARGIN * max`` of the secants recorded *before* t (a predictable estimate: it never reads the
step it is used on), after a burn-in of the first :data:`BURN_IN` of the recorded steps, and
``secant_t <= L_t`` is checked as a hypothesis on the step.
"""

from __future__ import annotations

import math

import numpy as np

from . import assumptions as A
from .flipcost import descent_terms, flip_cost_bound, recorded_flip_cost_L, set_info
from .numerics import _tols, field, working_eps
from .perstep import StepHypothesis, _describe_gL, _hi, _PerStep
from .result import Assumption

#: The fraction of the recorded steps, from the first, on which ``L_B`` is first estimated (never checked there).
BURN_IN = 0.2
#: ``L_t`` is this times the largest earlier secant, so curvature may grow by a quarter between records before
#: the hypothesis ``secant_t <= L_t`` fails. A design constant of the check, the same for every run (chosen on
#: the embedded minibatch runs and one digits run while this check was written, never per run): a larger one
#: makes ``g L_t < 2`` fail at the step sizes people use, a smaller one fails every new largest secant.
MARGIN = 1.25


def same_batch_records(trajectory, T, L=None, burn_in=BURN_IN, ctx=None):
    """The same-batch records of a run and the predictable ``L_B`` of every step (this module's docstring).

    With ``ctx`` of a full-gradient run that has no same-batch records, the batch is the whole data:
    ``f_B = f`` and the secant is ``L_local``. Returns ``(bf, bfn, sec, L_B, burn, checked, info)``:
    ``f_B(x_t)``, ``f_B(x_{t+1})``, the secant, ``L_B`` (given, or :data:`MARGIN` times the largest secant
    recorded before the step), the burn-in mask (empty when ``L`` is given: nothing to estimate), the
    recorded steps after it, and ``{"recorded", "burn_in_steps", "source"}``.
    """
    if not 0.0 < float(burn_in) < 1.0:
        raise ValueError(f"burn_in must lie in (0, 1), got {burn_in!r}")
    nan = np.full(T, np.nan)
    bf, bfn, sec = (field(trajectory, n, T) for n in ("batch_f", "batch_f_next", "batch_L_local"))
    bf, bfn, sec = (nan if v is None else v for v in (bf, bfn, sec))
    if ctx is not None and ctx.deterministic and not np.isfinite(bf).any():
        loc = field(trajectory, "L_local", T)
        bf, bfn, sec = ctx.f[:-1], ctx.f[1:], nan if loc is None else loc
    rec = np.isfinite(bf) & np.isfinite(bfn)
    idx = np.flatnonzero(rec)
    # the burn-in exists to estimate L_B: with L given there is nothing to estimate
    nb = math.ceil(float(burn_in) * idx.size) if idx.size and L is None else 0
    burn = np.zeros(T, dtype=bool)
    burn[idx[:nb]] = True
    checked = rec & ~burn
    if L is not None:
        L_B, src = np.full(T, float(L)), "given"
    else:
        seen = np.where(rec & np.isfinite(sec), sec, -np.inf)
        before = np.concatenate([[-np.inf], np.maximum.accumulate(seen)[:-1]]) if T else seen
        L_B = np.where(np.isfinite(before), MARGIN * before, np.nan)
        src = f"{MARGIN:g} x the largest secant recorded before the step (burn-in: {nb} recorded steps)"
    return bf, bfn, sec, L_B, burn, checked, {"recorded": int(idx.size), "burn_in_steps": int(nb), "source": src}


def same_batch_hypotheses(burn, burn_in, checked, sec, L_B, valid, held, estimated, step_size, extra=()):
    """The per-step hypotheses every same-batch check shares, around its own ``step_size`` (and ``extra``).

    Returns ``(hypotheses, eligible, secant_ok)``: the burn-in, ``step_size``, ``secant <= L_B``, ``extra``
    and, with an estimated ``L_B``, "the inequality held" (a failed inequality names the estimate, never a
    violation: ``eligible`` is then the valid steps where it held; else every valid step).
    """
    sec_ok = np.isfinite(L_B) & ~(sec > L_B * (1 + 1e-9))
    hyps = [
        StepHypothesis(
            "checked after the burn-in (L_B estimated there)",
            ~burn,
            lambda fail: f"burn-in of {burn_in:g} of the recorded steps, fixed in advance",
        ),
        step_size,
        StepHypothesis(
            "secant of grad f_B <= L_B on the step",
            ~checked | sec_ok,
            lambda fail: f"secant up to {_hi(sec, fail)} > L_B up to {_hi(L_B, fail)}",
        ),
        *extra,
    ]
    if not estimated:
        return hyps, valid, sec_ok
    hyps.append(
        StepHypothesis(
            "the inequality with the estimated L_B held",
            ~valid | held,
            lambda fail: f"L_B (up to {_hi(L_B, fail)}) estimated: too small on these steps",
        )
    )
    return hyps, valid & held, sec_ok


def same_batch_details(ctx, rinfo, L_B, checked, guarantee, held) -> dict:
    """Record ``L_B`` and the burn-in in ``ctx.consts``; the details every same-batch check reports."""
    ctx.consts.update(
        L_B_max=float(np.nanmax(L_B[checked])) if np.isfinite(L_B[checked]).any() else None,
        L_B_source=rinfo["source"],
        recorded_steps=rinfo["recorded"],
        burn_in_steps=rinfo["burn_in_steps"],
    )
    return {
        "checked_after_burn_in": int(checked.sum()),
        "guarantee_fraction_after_burn_in": float((guarantee & held).sum() / checked.sum()) if checked.any() else None,
    }


class BatchDescent(_PerStep):
    r"""Every-step descent on the step's own batch (Theorem II.4 with ``f = f_B``), lazy methods, plain SGD.

    ``f_B(x_{t+1}) <= f_B(x_t) - S_t + K_t + min(Ebar_t, Ehat_t)`` with the terms of Theorem II.4 for
    ``G_t = grad f_B(x_t)`` (``N_t = 0``), ``L = L_B``. ``Ehat_t = mu' (<G_t, e_t> + L_B <D^s_t, e_t>) +
    (L_B/2) mu'^2 ||e_t||^2``. ``L_B`` at step t is :data:`MARGIN` times the largest secant
    ``||grad f_B(x_{s+1}) - grad f_B(x_s)|| / ||D_s||`` recorded at an earlier step ``s < t`` (or given);
    the first :data:`BURN_IN` of the recorded steps only estimate it. A guarantee on a later recorded
    step where ``g L_B < 2`` and the step's own secant is at most ``L_B``; certified
    where the right side is at most ``f_B(x_t)``. With an estimated ``L_B`` a failed inequality is
    reported as the estimate failing (a hypothesis), never as a violation: a secant measured at the
    two ends of a step does not bound the curvature between them.
    """

    name = "batch_descent"
    #: L_B is estimated inside the check, predictably, from the secants before each step: verify passes no L.
    own_L_estimate = True
    label = "Theorem II.4"
    kind = "guarantee"
    statement = (
        "same batch B: f_B(x_{t+1}) <= f_B(x_t) - S_t + K_t + min(Ebar_t, Ehat_t) with L_B from a burn-in; "
        "a guarantee where g L_B < 2 and the secant <= L_B"
    )
    assumptions = [A.LAZY]

    def bound(self, f_t=None, S=None, K=0.0, E=0.0, **_):
        """The right side ``f_B(x_t) - S_t + K_t + E_t`` of one step."""
        return f_t - S + K + E

    def check(self, trajectory, L=None, burn_in=BURN_IN, rtol=1e-10, **kw):
        """Parameters: ``L`` (a known ``L_B``; default: estimated on the burn-in), ``burn_in`` in (0, 1)."""
        ctx = self.context(trajectory, **kw)
        T = ctx.T
        if working_eps(ctx.meta) > np.finfo(np.float64).eps:
            rtol = _tols(ctx, rtol, 0.0)[0]
        nan = np.full(T, np.nan)
        bf, bfn, sec, L_B, burn, checked, rinfo = same_batch_records(trajectory, T, L, burn_in)
        n_rec = rinfo["recorded"]
        info = set_info(ctx.meta)
        tm = descent_terms(ctx, L_B, info)
        g, mn = ctx.lr[:-1], ctx.mu[1:]
        sg2 = tm["sgrad_norm2"]
        gn = np.sqrt(np.maximum(sg2, 0.0))
        r = ctx.r_norm if ctx.r_norm is not None else np.full(T + 1, np.nan)
        Eb = flip_cost_bound(tm["B"], mn, gn, gn, g, tm["dmu"], r[:-1], L_B)
        gsd, sdg, pg = (field(trajectory, n, T) for n in ("gap_sg_dot", "stable_dot_gap", "pattern_gap"))
        gsd, sdg, pg = (nan if v is None else v for v in (gsd, sdg, pg))
        E = np.fmin(Eb, recorded_flip_cost_L(mn, ctx.flips, gsd, sdg, pg, L_B))
        rhs = self.bound(bf, tm["S"], tm["K"], E)
        gap = bfn - rhs
        sizes = np.abs(bf) + np.abs(bfn) + np.abs(tm["S"]) + np.abs(tm["K"]) + np.abs(E)
        tol = rtol * sizes + 64 * working_eps(ctx.meta) * (np.abs(bf) + np.abs(bfn))
        gL = g * L_B
        mu_ok = (mn >= 0) & (mn <= 1) & (g > 0)
        valid = checked & mu_ok & np.isfinite(tm["S"]) & np.isfinite(gap)
        held = gap <= tol
        step_size = StepHypothesis("step size g*L_B < 2", ~checked | (gL < 2), lambda fail: _describe_gL(gL, fail))
        hyps, eligible, sec_ok = same_batch_hypotheses(
            burn, burn_in, checked, sec, L_B, valid, held, L is None, step_size
        )
        guarantee = eligible & (gL < 2) & sec_ok
        det = same_batch_details(ctx, rinfo, L_B, checked, guarantee, held)
        plain = Assumption(
            "G_t = grad f_B(x_t) (plain SGD: no momentum, no weight decay)",
            lambda c: (
                c.meta.get("plain_sgd", True) is not False and c.meta.get("direction") != "anchor step",
                f"momentum={c.meta.get('momentum')}, weight_decay={c.meta.get('weight_decay')}: "
                "heavy-ball SGD steps are heavy_ball's (Theorem II.12); no result covers Adam",
            ),
            # out of this result's scope when heavy_ball covers the run (torch SGD); for another base
            # optimizer (Adam) no result does, and the steps' no-guarantee line must say so
            scope=ctx.meta.get("base_optimizer", "SGD") == "SGD",
        )
        recorded = Assumption(
            "same-batch records (f_B(x_t), f_B(x_(t+1)), secant)",
            lambda c: (bool(n_rec), f"{n_rec} recorded steps"),
            scope=True,
        )
        return self.per_step(
            ctx,
            eligible,
            gap,
            tol,
            np.where(sizes > 0, sizes, 1.0),
            det,
            extra_assumptions=[recorded, plain],
            guarantee=guarantee,
            certified=rhs <= bf + tol,
            hypotheses=hyps,
        )
