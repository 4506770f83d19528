r"""Theorems II.7 and II.8 (THEORY.md): the stationarity rate and the PL linear rate."""

from __future__ import annotations

import math

import numpy as np

from . import assumptions as A
from .base import TheoryResult
from .flipcost import descent_terms
from .numerics import f_floor, field
from .perstep import StepHypothesis, _hi, _lo, _PerStep
from .result import Assumption


class StationarityRate(TheoryResult):
    r"""``min_{t0 <= t < t1} ||grad f(x_t)||^2 <= (f(x_t0) - f_* + C) / (c (t1 - t0))`` (THEORY.md, Theorem II.7).

    Full gradients, ``mu_{t+1} <= mu_bar < 1`` and ``g_t L (2 - mu_{t+1}) <= 2`` on the window;
    ``c = min_t g_t (1 - mu_bar)(1 - g_t L/2)``, ``C = sum_t (K_t + Ebar_t)`` (a priori, Theorem II.4).
    Checked at every prefix ``t0 < s <= t1``; measured: ``max_s lhs_s / rhs_s``, bound 1. The
    measured log-log slope of ``min_{t<s} ||grad f||^2`` against s is reported beside the
    bound's (-1 while ``C`` is flat).
    """

    name = "stationarity_rate"
    label = "Theorem II.7"
    kind = "guarantee"
    statement = "mu <= mu_bar < 1, gL(2-mu) <= 2  =>  min_{t<T} ||grad f(x_t)||^2 <= (f_0 - f_* + C_T)/(c T)"
    assumptions = [A.LAZY, A.DETERMINISTIC, A.L_KNOWN, A.F_LOWER, A.NONEMPTY]

    def bound(self, f_t0=None, f_lower=None, C=0.0, c=None, steps=None, **_):
        """``(f_t0 - f_* + C_s)/(c s)`` (arrays ``C``, ``steps`` broadcast); inf unless ``c > 0``."""
        C, steps = np.asarray(C, dtype=np.float64), np.asarray(steps, dtype=np.float64)
        if c is None or not c > 0:
            return np.full(np.broadcast(C, steps).shape, np.inf)
        return (f_t0 - f_lower + C) / (c * steps)

    @staticmethod
    def default_t1(mu) -> int:
        """The first step t with ``mu_{t+1} >= 1`` (the schedule's switch to Phase II), else T."""
        hit = np.flatnonzero(np.asarray(mu)[1:] >= 1.0)
        return int(hit[0]) if hit.size else len(mu) - 1

    def check(self, trajectory, L=None, mu_bar=None, t0=0, t1=None, rtol=1e-9, **kw):
        """Parameters: ``mu_bar`` (default: the largest ``mu_{t+1}`` the schedule reaches on the
        window), window ``[t0, t1)`` (default t1: the switch to mu = 1)."""
        ctx = self.context(trajectory, L=L, t0=t0, **kw)
        T = ctx.T
        t1 = self.default_t1(ctx.mu) if t1 is None else int(t1)
        if not ctx.t0 <= t1 <= T:
            raise ValueError(f"t1 must lie in t0..T = {ctx.t0}..{T}, got {t1}")
        Lv = ctx.L if ctx.L is not None else math.nan
        tm = descent_terms(ctx, Lv)
        w = slice(ctx.t0, t1)
        mn, g = ctx.mu[1:][w], ctx.lr[:-1][w]
        mb = float(mn.max()) if mn.size else 0.0
        mu_bar = mb if mu_bar is None else float(mu_bar)
        c = float(np.min(g * (1 - mu_bar) * (1 - g * Lv / 2))) if mn.size else math.nan
        G2 = field(trajectory, "grad_norm2", T + 1)
        G2 = np.full(T + 1, np.nan) if G2 is None else G2
        lhs = np.minimum.accumulate(G2[w]) if mn.size else np.zeros(0)
        C = np.cumsum(tm["K"][w] + tm["Ebar"][w])
        s = np.arange(1, t1 - ctx.t0 + 1)
        fl = ctx.f_lower if ctx.f_lower is not None else math.nan
        rhs = self.bound(ctx.f[ctx.t0], fl, C, c, s)
        ratio = lhs / np.where(rhs > 0, rhs, np.nan)
        measured = float(np.nanmax(ratio)) if ratio.size and np.isfinite(ratio).any() else None
        slope = _loglog_slope(s, lhs)
        mu_ok = Assumption(
            "mu_(t+1) <= mu_bar < 1 on the window",
            lambda _: (mb <= mu_bar < 1, f"max mu_(t+1) = {mb:.6g}, mu_bar = {mu_bar:.6g}"),
        )
        gl_ok = bool(np.all((g * Lv * (2 - mn) <= 2) | ((mn == 0) & (g * Lv <= 2)))) if mn.size else False
        gl = Assumption(
            "g L (2 - mu_(t+1)) <= 2 (g L <= 2 where mu = 0) on the window", lambda _: (gl_ok, f"L = {Lv:.6g}")
        )
        fin = Assumption("grad_norm2 recorded", lambda _: (bool(np.all(np.isfinite(G2[w]))), "full gradient norms"))
        nonempty = Assumption("window non-empty", lambda _: (t1 > ctx.t0, f"[{ctx.t0}, {t1})"))
        ctx.consts.update(
            t1=t1,
            mu_bar=mu_bar,
            c=c,
            C_T=float(C[-1]) if C.size else 0.0,
            final_bound=float(rhs[-1]) if rhs.size else None,
            final_min_grad_norm2=float(lhs[-1]) if lhs.size else None,
            loglog_slope_measured=slope,
            loglog_slope_bound=-1.0,
        )
        return self.finish(
            ctx,
            measured,
            1.0,
            tolerance=rtol,
            extra_assumptions=[mu_ok, gl, fin, nonempty],
            covered=[[ctx.t0, t1]] if t1 > ctx.t0 else None,  # a rate over the window: its steps
        )


def _loglog_slope(s, v):
    """Least-squares slope of ``log v`` against ``log s`` over the last 90% of the window (None if undefined)."""
    s, v = np.asarray(s, float), np.asarray(v, float)
    if s.size < 4:
        return None
    sel = (s >= max(1.0, s[-1] / 10)) & np.isfinite(v) & (v > 0)
    if sel.sum() < 3:
        return None
    return float(np.polyfit(np.log(s[sel]), np.log(v[sel]), 1)[0])


def pl_constant(A) -> float:
    """``m_PL``: the smallest nonzero eigenvalue of ``A^T A`` (a property of the problem, not of a run).

    Raises
    ------
    ValueError
        ``A`` is not a 2-D finite matrix or is zero.
    """
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or not np.all(np.isfinite(A)):
        raise ValueError(f"A must be a finite 2-D matrix, got shape {A.shape}")
    s = np.linalg.svd(A, compute_uv=False)
    tol = s.max() * max(A.shape) * np.finfo(float).eps if s.size else 0.0
    nz = s[s > tol]
    if nz.size == 0:
        raise ValueError("A is zero: no PL constant")
    return float(nz.min() ** 2)


class PLRate(_PerStep):
    r"""Linear rate under the PL inequality (THEORY.md, Theorem II.8), least squares.

    For ``f = 1/2 ||Ax - b||^2``, ``||grad f||^2 >= 2 m (f - f_*)`` with ``m`` the smallest
    nonzero eigenvalue of ``A^T A`` and ``f_*`` the unconstrained minimum. With Theorem II.4, on
    every step where its c-form is valid **and** ``c_t >= 0`` (``g L (1 - mu') <= 2``; without it
    the substitution of the PL inequality into ``-c_t ||grad f||^2`` goes the wrong way: gd with
    ``g L = 3`` on ``f = (x_1^2 + 0.01 x_2^2)/2`` breaks the rate):
    ``e_{t+1} <= (1 - 2 m c_t) e_t + K_t + Ebest_t`` (``e_t = f(x_t) - f_*``, ``Ebest_t`` the smaller
    flip cost), and unrolled, where every factor is non-negative,
    ``e_T <= prod_t (1 - 2 m c_t) e_0 + sum_t prod_{s>t} (1 - 2 m c_s)(K_t + Ebest_t)``.
    A guarantee on the steps with ``c_t > 0``; certified where the right side is at most ``e_t``.
    Measured: ``e_T``; bound: the unrolled right side. ``m_pl`` is an argument
    (:func:`pl_constant` computes it from ``A``).
    """

    name = "pl_rate"
    label = "Theorem II.8"
    kind = "guarantee"
    statement = (
        "least squares, PL(m), c_t >= 0: f(x_{t+1}) - f_* <= (1 - 2 m c_t)(f(x_t) - f_*) + K_t + Ebest_t "
        "every step; a guarantee where c_t > 0"
    )
    assumptions = [A.LAZY, A.DETERMINISTIC, A.L_KNOWN, A.F_LOWER]

    def bound(self, e0=None, rho=None, eta=None, **_) -> float:
        """Unrolled ``e_T`` bound from ``e_0``, the per-step factors ``rho_t`` and additive terms ``eta_t``."""
        b = float(e0)
        for r_, n_ in zip(rho, eta, strict=True):
            b = r_ * b + n_
        return b

    def check(self, trajectory, m_pl=None, L=None, rtol=1e-10, **kw):
        """Parameters: ``m_pl`` (required: None makes the assumption "m_PL given" fail), ``L``."""
        ctx = self.context(trajectory, L=L, **kw)
        T = ctx.T
        Lv = ctx.L if ctx.L is not None else math.nan
        m = math.nan if m_pl is None else float(m_pl)
        tm = descent_terms(ctx, Lv)
        fl = ctx.f_lower if ctx.f_lower is not None else math.nan
        e = ctx.f - fl
        g, mn = ctx.lr[:-1], ctx.mu[1:]
        c = tm["c"]
        rho = 1 - 2 * m * c
        eta = tm["K"] + tm["Ebest"]
        c_form = (mn >= 0) & (mn <= 1) & (g > 0) & ((mn == 0) | (g * Lv * (2 - mn) <= 2))
        step_ok = c_form & (c >= 0) & np.isfinite(eta)
        gap = e[1:] - (rho * e[:-1] + eta)
        sizes = np.abs(ctx.f[1:]) + np.abs(ctx.f[:-1]) + np.abs(eta) + np.abs(2 * m * c * e[:-1])
        tol = rtol * sizes + f_floor(ctx)
        hyps = [
            StepHypothesis(
                "c_t > 0 (g L (1 - mu_(t+1)) < 2 and mu_(t+1) < 1)",
                c_form & (c > 0),
                lambda fail: f"c_t in [{_lo(c, fail)}, {_hi(c, fail)}] (g*L up to {_hi(g * Lv, fail)})",
            )
        ]
        lsq = Assumption(
            "least-squares problem (PL with m = smallest nonzero eigenvalue of A^T A)",
            lambda c: (
                c.problem_name.startswith(("lsq", "least_squares")) or bool(c.meta.get("pl")),
                f"problem={c.problem_name!r}",
            ),
            scope=True,
        )
        mg = Assumption("m_PL given (not estimated on the run)", lambda _: (m_pl is not None and m > 0, f"m_pl={m_pl}"))
        b = self.bound(e[0], rho, eta) if T > 0 and np.all(step_ok & (rho >= 0)) else None
        rate = float(np.exp(np.mean(np.log(np.clip(rho, 1e-300, None))))) if T else None
        det = {
            "m_pl": m_pl,
            "geometric_mean_factor_bound": rate,
            "e_T": float(e[-1]),
            "e_0": float(e[0]),
            "sum_eta": float(np.nansum(eta)),
        }
        return self.per_step(
            ctx,
            step_ok,
            gap,
            tol,
            np.where(sizes > 0, sizes, 1.0),
            det,
            extra_assumptions=[lsq, mg],
            # the unrolled bound needs every step (and rho_t >= 0); without it the per-step claims stand alone
            measured=float(e[-1]) if b is not None else None,
            bound=b,
            tolerance=float(np.sum(tol)) + rtol * abs(b) if b is not None else None,
            guarantee=step_ok & (c > 0),
            certified=rho * e[:-1] + eta <= e[:-1] + tol,
            hypotheses=hyps,
        )
