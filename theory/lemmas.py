r"""Lemma A, Lemma B and Fact C (THEORY.md sections 6-9); the AOC proposition is in :mod:`theory.aocflip`.

Notation: ``P_t = P(y_t)``, ``r_t = y_t - P_t``, ``x_t = y_t - mu_t r_t``,
``D_t = x_{t+1} - x_t``, ``y_{t+1} = y_t - g_t grad f(x_t)``,
``delta_t = <r_t - r_{t+1}, D_t> / ||D_t||^2``.
"""

from __future__ import annotations

import math

import numpy as np

from . import assumptions as A
from .base import TheoryResult
from .context import smoothness_c
from .result import Assumption


def _iterates_ok(ctx):
    it = getattr(ctx.traj, "iterates", None) or {}
    if not it or "x" not in it:
        return False, "no iterates recorded (run optimize(..., record_every=1))"
    t = np.asarray(it["t"])
    pairs = int(np.sum(np.diff(t) == 1))
    return pairs >= 1, f"{len(t)} iterates recorded, {pairs} consecutive pair(s)"


def _problem_given(ctx):
    ok = ctx.problem is not None and hasattr(ctx.problem, "grad")
    return ok, "problem given (to evaluate grad f(x_t) independently)" if ok else "no problem given"


ITERATES = Assumption("consecutive iterates recorded", _iterates_ok)
PROBLEM = Assumption("problem available", _problem_given)


class LemmaA(TheoryResult):
    r"""``D_t = -(1 - mu_{t+1}) g grad f(x_t) + mu_{t+1} (P_{t+1} - P_t) + (mu_t - mu_{t+1}) r_t``.

    With ``mu`` fixed the last term vanishes.
    ``grad f(x_t)`` is recomputed from the problem, not taken from the run, so a
    step rule that applies the gradient at the wrong point is caught.
    Measured: ``max_t ||D_t - rhs_t|| / s_t`` with ``s_t = max(||x_t||, ||x_{t+1}||, g ||grad f(x_t)||)``.
    """

    name = "lemma_a"
    label = "Lemma A"
    kind = "conformance"
    statement = "D_t = -(1-mu) g grad f(x_t) + mu (P_{t+1} - P_t) (fixed mu; general mu adds (mu_t - mu_{t+1}) r_t)"
    # With minibatches the identity holds with the sampled gradient, which the run does not
    # record; the check recomputes the full one, so it needs deterministic gradients.
    assumptions = [A.LAZY, A.DETERMINISTIC, ITERATES, PROBLEM]

    def check(self, trajectory, problem=None, tol=1e-12, **kw):
        """Parameters: ``trajectory`` with ``iterates`` (``optimize(record_every=1)``), ``problem``
        (its ``grad``), ``tol`` on the relative error. Returns a Result (see :meth:`TheoryResult.check`)."""
        ctx = self.context(trajectory, problem=problem, **kw)
        it = getattr(trajectory, "iterates", None) or {}
        errs, fixed = [], []
        if it and "x" in it and problem is not None:
            t = np.asarray(it["t"])
            X, Y, Pp = (np.asarray(it[k], dtype=np.float64) for k in ("x", "y", "p"))
            for k in np.flatnonzero(np.diff(t) == 1):
                s = int(t[k])
                g, mu_t, mu_n = ctx.lr[s], ctx.mu[s], ctx.mu[s + 1]
                grad = np.asarray(problem.grad(X[k]), dtype=np.float64)
                D = X[k + 1] - X[k]
                rhs = -(1 - mu_n) * g * grad + mu_n * (Pp[k + 1] - Pp[k]) + (mu_t - mu_n) * (Y[k] - Pp[k])
                scale = max(np.linalg.norm(X[k]), np.linalg.norm(X[k + 1]), g * np.linalg.norm(grad), 1e-300)
                errs.append(float(np.linalg.norm(D - rhs) / scale))
                fixed.append(mu_t == mu_n)
        errs, fixed = np.asarray(errs), np.asarray(fixed, dtype=bool)
        measured = float(errs.max()) if errs.size else None
        det = {
            "pairs": int(errs.size),
            "max_err_fixed_mu": float(errs[fixed].max()) if fixed.any() else None,
            "max_err_varying_mu": float(errs[~fixed].max()) if (~fixed).any() else None,
            "steps_over_tol": int(np.sum(errs > tol)),
        }
        return self.finish(ctx, measured, 0.0, tolerance=tol, details=det)


class LemmaB(TheoryResult):
    r"""The one-step inequality, exact from L-smoothness (THEORY.md, Lemma B).

    ``slack_t = f(x_t) - (1 - gL/2)||D_t||^2/g + mu_{t+1}<r_t - r_{t+1}, D_t>/g
    - (mu_{t+1} - mu_t)<r_t, D_t>/g - f(x_{t+1}) >= 0``, recomputed here from the
    recorded scalars with the ``L`` given (default: the problem's).
    Measured: ``min_t slack_t``; bound 0; it must not fall below ``-tol * scale``.
    """

    name = "lemma_b"
    label = "Lemma B"
    kind = "conformance"
    statement = (
        "f(x_{t+1}) <= f(x_t) - (1-gL/2)/g ||D_t||^2 + mu_{t+1}/g <r_t - r_{t+1}, D_t> - (mu_{t+1}-mu_t)/g <r_t, D_t>"
    )
    assumptions = [A.LAZY, A.DETERMINISTIC, A.L_KNOWN, A.NONEMPTY]
    relation = ">="

    @staticmethod
    def slack(f, mu, lr, step_norm2, inner, cross, L):
        """The per-step slack array (length T)."""
        g, mt, mn = lr[:-1], mu[:-1], mu[1:]
        return f[:-1] - (1.0 - g * L / 2.0) * step_norm2 / g + mn * inner / g - (mn - mt) * cross / g - f[1:]

    def check(self, trajectory, L=None, tol=1e-10, **kw):
        """Parameters: ``L`` (default the problem's; an estimate fails "L known"), ``tol``
        relative to the scale of f and of the step terms. Raises ValueError without ``cross``."""
        ctx = self.context(trajectory, L=L, **kw)
        if ctx.cross is None:
            raise ValueError("Lemma B needs the trajectory field 'cross' (<r_t, D_t>)")
        det, measured = {}, None
        if ctx.L is not None and ctx.T > 0:
            s = self.slack(ctx.f, ctx.mu, ctx.lr, ctx.step_norm2, ctx.inner, ctx.cross, ctx.L)
            measured = float(np.min(s))
            terms = np.abs(ctx.step_norm2 / ctx.lr[:-1]) + np.abs(ctx.mu[1:] * ctx.inner / ctx.lr[:-1])
            scale = max(ctx.f_scale(), float(terms.max()))
            det.update(
                argmin_t=int(np.argmin(s)),
                negative_steps=int(np.sum(s < -tol * scale)),
                median_slack=float(np.median(s)),
                scale=scale,
            )
        else:
            scale = 1.0
        return self.finish(ctx, measured, 0.0, tolerance=tol * scale, details=det)


def lemma_b_slack(trajectory, L) -> np.ndarray:
    r"""Lemma B's per-step slack (right side minus left side, length T) with the smoothness constant ``L``.

    ``slack_t = f(x_t) - (1 - gL/2)||D_t||^2/g + mu_{t+1}<r_t - r_{t+1}, D_t>/g
    - (mu_{t+1} - mu_t)<r_t, D_t>/g - f(x_{t+1})``; it is ``>= 0`` on every step of a lazy
    full-gradient run when ``L`` bounds the curvature (THEORY.md, section 7). Reads ``f``,
    ``mu``, ``lr``, ``step_norm2``, ``inner``, ``cross``.

    Raises
    ------
    ValueError
        A field is missing or ``L`` is not a positive number.
    """
    L = float(L)
    if not L > 0:
        raise ValueError(f"L must be a positive number, got {L!r}")
    arrs = []
    for k in ("f", "mu", "lr", "step_norm2", "inner", "cross"):
        v = getattr(trajectory, k, None)
        if v is None:
            raise ValueError(f"trajectory has no field {k!r}")
        arrs.append(np.asarray(v, dtype=np.float64))
    return LemmaB.slack(*arrs, L)


def _max(v):
    return float(v.max()) if v.size else None


class FactC(TheoryResult):
    r"""On a pattern-stable step with fixed mu, ``-1/(1-mu) <= delta_t <= 0``.

    Pattern-stable: no code changed from ``y_t`` to ``y_{t+1}`` (``flips_t = 0``).
    Then ``P_{t+1} - P_t = Pi (y_{t+1} - y_t)`` for one orthogonal projector Pi and
    ``<r_t - r_{t+1}, D_t> = -g^2 (1 - mu) ||(I - Pi) grad||^2`` (THEORY.md, section 9);
    it holds for stochastic gradients too. Measured: the largest ``delta_t`` over
    those steps; bound 0.
    """

    name = "fact_c"
    label = "Proposition 9.1"
    kind = "conformance"
    statement = "pattern unchanged and mu fixed  =>  delta_t <= 0 (and >= -1/(1-mu))"
    assumptions = [A.LAZY]

    def check(self, trajectory, tol=1e-6, t0=None, **kw):
        """Parameters: ``tol`` on delta_t (rounding, see THEORY.md section 13), ``t0`` (default 0)."""
        ctx = self.context(trajectory, t0=t0, **kw)
        w = ctx.window(ctx.t0)
        a, fl = ctx.delta[w], ctx.flips[w]
        mu_t, mu_n = ctx.mu[ctx.t0 : ctx.T], ctx.mu[ctx.t0 + 1 : ctx.T + 1]
        sel = np.isfinite(a) & (fl == 0) & (mu_t == mu_n)
        n_sel = int(sel.sum())
        measured = float(a[sel].max()) if n_sel else None
        lower = np.where(mu_n < 1, -1.0 / np.maximum(1.0 - mu_n, 1e-300), -math.inf)
        low_viol = int(np.sum(sel & (a < lower - tol)))
        some = Assumption(
            "at least one pattern-stable fixed-mu step",
            lambda c: (n_sel > 0, f"{n_sel} such step(s) of {ctx.T - ctx.t0}"),
        )
        det = {
            "stable_fixed_mu_steps": n_sel,
            "lower_bound_violations": low_viol,
            "unresolved_steps": ctx.unresolved(ctx.t0),
            "min_delta_stable": float(a[sel].min()) if n_sel else None,
            "max_delta_flip": _max(a[np.isfinite(a) & (fl > 0)]),
        }
        res = self.finish(ctx, measured, 0.0, tolerance=tol, details=det, extra_assumptions=[some])
        if res.status == "holds" and low_viol:
            res.status, res.holds = "violated", False
        return res


def per_step_c(ctx, t0):
    """``c_t = (1 - g_t L/2 - mu_{t+1} delta_t)/g_t`` on the window (NaN where D_t = 0)."""
    return smoothness_c(ctx.lr[t0 : ctx.T], ctx.L, ctx.mu[t0 + 1 : ctx.T + 1], ctx.delta[t0:])
