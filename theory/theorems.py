r"""Theorems 1 and 2 and Corollary 3 (THEORY.md sections 10-12).

Every constant is a parameter. By default ``d`` is the measured
``sup_{t >= t0} delta_t`` (so AOC(d) holds by construction and the content of
the check is whether ``c > 0`` and the bound then holds), ``R`` the measured
``max ||r_t||``, ``eps`` the value minimising Theorem 2's bound, and ``L``,
``f_*`` the problem's. Pass any of them to test a claimed constant instead.
"""

from __future__ import annotations

import math

import numpy as np

from . import assumptions as A
from .base import TheoryResult
from .context import smoothness_c
from .result import make_result


class _Theorem1(TheoryResult):
    """Shared constants of Theorem 1: fixed mu and g on ``t0 <= t < T``."""

    t0_rule = "constant"
    assumptions = [A.LAZY, A.DETERMINISTIC, A.L_KNOWN, A.F_LOWER, A.NONEMPTY, A.LR_CONSTANT,
                   A.MU_CONSTANT, A.AOC, A.C_POSITIVE]

    @staticmethod
    def c(L, lr, mu, delta) -> float:
        """``c = (1 - g L/2 - mu d)/g``."""
        return smoothness_c(lr, L, mu, delta)

    def bound(self, L, f_lower, lr, delta, mu, f_t0, **_) -> float:
        """``(f(x_t0) - f_*)/c``, or inf when ``c <= 0``."""
        c = self.c(L, lr, mu, delta)
        return (f_t0 - f_lower) / c if c > 0 else math.inf

    def prepare(self, trajectory, **kw):
        ctx = self.context(trajectory, **kw)
        t0 = ctx.t0
        g = float(ctx.lr[min(t0, max(ctx.T - 1, 0))])
        mu = float(ctx.mu[t0])
        d, src = ctx.d_for(t0)
        ctx.consts.update(g=g, mu=mu, d=d, d_source=src, unresolved_steps=ctx.unresolved(t0))
        if ctx.L is not None:
            ctx.consts["c"] = self.c(ctx.L, g, mu, d)
        return ctx

    def sum_bound(self, ctx):
        k = ctx.consts
        if ctx.L is None or ctx.f_lower is None:
            return None
        return self.bound(ctx.L, ctx.f_lower, k["g"], k["d"], k["mu"], float(ctx.f[ctx.t0]))


class Theorem1Descent(_Theorem1):
    r"""``f(x_{t+1}) <= f(x_t) - c ||D_t||^2`` for every ``t >= t0``.

    Measured: ``max_t f(x_{t+1}) - f(x_t) + c ||D_t||^2``; bound 0.
    """

    name = "theorem1_descent"
    statement = "AOC(d), c = (1 - gL/2 - mu d)/g > 0, mu fixed  =>  f(x_{t+1}) <= f(x_t) - c ||D_t||^2"

    def check(self, trajectory, tol=1e-10, **kw):
        ctx = self.prepare(trajectory, **kw)
        w, measured, scale = ctx.window(ctx.t0), None, ctx.f_scale()
        c = ctx.consts.get("c")
        if c is not None and ctx.T > ctx.t0:
            gap = ctx.f[ctx.t0 + 1:] - ctx.f[ctx.t0:-1] + c * ctx.step_norm2[w]
            measured = float(gap.max())
            scale = max(scale, float(np.max(np.abs(c * ctx.step_norm2[w]))))
            ctx.consts["descent_fails"] = int(np.sum(gap > tol * scale))
        return self.finish(ctx, measured, 0.0, tolerance=tol * scale)


class Theorem1Sum(_Theorem1):
    r"""``sum_{t0 <= t < T} ||D_t||^2 <= (f(x_t0) - f_*)/c``."""

    name = "theorem1_sum"
    statement = "AOC(d), c > 0, mu fixed  =>  sum_{t>=t0} ||D_t||^2 <= (f(x_t0) - f_*)/c"

    def check(self, trajectory, rtol=1e-9, **kw):
        ctx = self.prepare(trajectory, **kw)
        measured = float(np.sum(ctx.step_norm2[ctx.window(ctx.t0)]))
        b = self.sum_bound(ctx)
        return self.finish(ctx, measured, b, tolerance=rtol * (abs(b) if b and math.isfinite(b) else 1.0))


class Theorem1Rate(_Theorem1):
    r"""``(T - t0) min_{t0 <= t < T} ||D_t||^2 <= (f(x_t0) - f_*)/c``: the O(1/T) rate."""

    name = "theorem1_rate"
    statement = "AOC(d), c > 0, mu fixed  =>  (T - t0) min_{t0<=t<T} ||D_t||^2 <= (f(x_t0) - f_*)/c"

    def check(self, trajectory, rtol=1e-9, **kw):
        ctx = self.prepare(trajectory, **kw)
        w = ctx.window(ctx.t0)
        measured = float((ctx.T - ctx.t0) * np.min(ctx.step_norm2[w])) if ctx.T > ctx.t0 else None
        b = self.sum_bound(ctx)
        return self.finish(ctx, measured, b, tolerance=rtol * (abs(b) if b and math.isfinite(b) else 1.0))


def best_eps(F, A_coef, a) -> float:
    r"""The ``eps`` in ``(0, a)`` minimising ``(F + A/eps)/(a - eps)``: the root of ``F e^2 + 2 A e - A a = 0``.

    ``A = 0`` gives 0 (the Young term vanishes, the limit ``eps -> 0`` is valid);
    ``F = 0`` gives ``a/2``; ``a <= 0`` (no eps makes ``c_eps`` positive) gives 0.
    """
    if A_coef <= 0:
        return 0.0
    if a <= 0:
        return 0.0
    if F <= 0:
        return a / 2.0
    return (-A_coef + math.sqrt(A_coef * A_coef + F * A_coef * a)) / F


class Theorem2(TheoryResult):
    r"""Continuation: mu non-decreasing in [0, 1], ``mu_{t+1} delta_t <= kappa``, ``||r_t|| <= R``:

    ``sum_{t>=t0} ||D_t||^2 <= [f(x_t0) - f_* + R^2/(4 eps g) sum_t (mu_{t+1} - mu_t)^2] / c_eps``,
    ``c_eps = (1 - gL/2 - kappa - eps)/g``. AOC(d) gives ``kappa = sup_t mu_{t+1} d``
    (``<= d`` when ``d >= 0``: MATH.md's form, which needs ``d >= 0``). By default
    ``kappa`` is the measured ``sup_{t>=t0} mu_{t+1} delta_t``, the smallest valid
    one; with ``d`` given it is ``sup_t mu_{t+1} d`` and AOC(d) is checked.
    """

    name = "theorem2"
    statement = ("mu_t non-decreasing, mu_{t+1} delta_t <= kappa, ||r_t|| <= R, c_eps > 0  =>  sum ||D_t||^2 <= "
                 "[f(x_t0) - f_* + R^2/(4 eps g) sum (mu_{t+1}-mu_t)^2]/c_eps")
    assumptions = [A.LAZY, A.DETERMINISTIC, A.L_KNOWN, A.F_LOWER, A.NONEMPTY, A.LR_CONSTANT,
                   A.MU_MONOTONE, A.WEIGHTED_AOC, A.R_BOUND, A.C_EPS_POSITIVE]

    def bound(self, L, f_lower, lr, R, eps, f_t0, sum_dmu2, kappa=None, delta=None, **_) -> float:
        """The right side; ``kappa`` defaults to ``max(delta, 0)`` (valid for any mu in [0, 1])."""
        kappa = max(delta, 0.0) if kappa is None else kappa
        c_eps = (1.0 - lr * L / 2.0 - kappa - eps) / lr
        if c_eps <= 0:
            return math.inf
        young = R * R * sum_dmu2 / (4.0 * lr)
        if young > 0 and eps <= 0:
            return math.inf
        return (f_t0 - f_lower + (young / eps if young > 0 else 0.0)) / c_eps

    def check(self, trajectory, R=None, eps=None, kappa=None, rtol=1e-9, **kw):
        ctx = self.context(trajectory, **kw)
        t0, k = ctx.t0, ctx.consts
        g = float(ctx.lr[min(t0, max(ctx.T - 1, 0))])
        d, src = ctx.d_for(t0)
        mu_n = ctx.mu[t0 + 1:ctx.T + 1]
        weighted = mu_n * ctx.delta[ctx.window(t0)]
        weighted = weighted[np.isfinite(weighted)]
        k_meas = float(weighted.max()) if weighted.size else 0.0
        if kappa is not None:
            kappa, ksrc = float(kappa), "given"
        elif ctx.d_given is not None:
            kappa, ksrc = (float(np.max(mu_n * d)) if mu_n.size else max(d, 0.0)), "sup_t mu_(t+1) d"
        else:
            kappa, ksrc = k_meas, "measured sup_t mu_(t+1) delta_t"
        dmu = np.diff(ctx.mu[t0:ctx.T + 1])
        S2 = float(np.sum(dmu * dmu))
        Rm = float(np.max(ctx.r_norm[t0:ctx.T])) if ctx.r_norm is not None and ctx.T > t0 else math.nan
        R = Rm if R is None else float(R)
        k.update(g=g, d=d, d_source=src, unresolved_steps=ctx.unresolved(t0), kappa=kappa, kappa_source=ksrc,
                 kappa_measured=k_meas, sum_dmu2=S2, R=R, R_measured=Rm)
        b = None
        if ctx.L is not None and ctx.f_lower is not None and math.isfinite(R):
            a = 1.0 - g * ctx.L / 2.0 - kappa
            F = float(ctx.f[t0]) - ctx.f_lower
            young = R * R * S2 / (4.0 * g)
            e = best_eps(F, young, a) if eps is None else float(eps)
            k.update(eps=e, c_eps=(a - e) / g, young_term=young / e if young > 0 and e > 0 else 0.0)
            b = self.bound(ctx.L, ctx.f_lower, g, R, e, float(ctx.f[t0]), S2, kappa=kappa)
        measured = float(np.sum(ctx.step_norm2[ctx.window(t0)]))
        extra = [A.AOC] if ctx.d_given is not None else []
        return self.finish(ctx, measured, b, tolerance=rtol * (abs(b) if b and math.isfinite(b) else 1.0),
                           extra_assumptions=extra)


def flip_constant(qset_name, mu_lo, mu_hi):
    r"""``k`` with ``||D_t||^2 >= k a_min^2 * flips_t`` (THEORY.md, Corollary 3), or None.

    Binary ``{±l}``: a flip moves ``x_i`` by ``>= 2 mu l a_min`` (any mu, lazy
    methods), so ``k = 4 mu_lo^2 l^2``. Ternary ``{0, ±l}`` with mu = 1: a level
    change moves ``x_i`` by ``>= l a_min``, ``k = l^2``. Otherwise None.
    """
    try:
        from brelax import get_set

        levels = get_set(qset_name).levels
    except (ValueError, TypeError, ImportError):
        return None, f"set {qset_name!r} not recognised"
    if len(levels) == 1:
        return 4.0 * mu_lo * mu_lo * levels[0] ** 2, f"binary-type {qset_name}: k = 4 mu_lo^2 l^2, mu_lo = {mu_lo:g}"
    if len(levels) == 2 and levels[0] == 0 and mu_lo == 1.0 and mu_hi == 1.0:
        return levels[1] ** 2, f"ternary-type {qset_name} with mu = 1: k = l^2"
    return None, f"set {qset_name!r} with mu in [{mu_lo:g}, {mu_hi:g}]: no lower bound on the move of a flip"


class Corollary3(TheoryResult):
    r"""Finitely many flips: ``sum_{t>=t0} flips_t <= S / (k a_min^2)``.

    ``S`` is Theorem 1's bound ``(f(x_t0) - f_*)/c`` when mu is fixed on the
    window, Theorem 2's otherwise; ``k`` from :func:`flip_constant` (4 for
    binary in Phase II). The theorem used lends its assumptions.
    """

    name = "corollary3"
    statement = "binary, a_t >= a_min > 0, Theorem 1 (or 2)  =>  flips after t0 <= (f(x_t0) - f_*)/(4 c a_min^2)"
    t0_rule = "constant"
    assumptions = [A.A_MIN, A.FLIP_SET]

    def bound(self, sum_bound, a_min, k=4.0, **_) -> float:
        return sum_bound / (k * a_min * a_min) if k > 0 and a_min > 0 else math.inf

    def check(self, trajectory, **kw):
        ctx = self.context(trajectory, **{k: v for k, v in kw.items() if k not in ("R", "eps")})
        t0 = ctx.t0
        m = ctx.mu[t0:ctx.T + 1]
        via = Theorem1Sum() if np.all(m == m[0]) else Theorem2()
        sub = via.check(trajectory, **{**kw, "t0": t0})
        k, kdet = flip_constant(ctx.qset, float(m.min()), float(m.max()))
        a_min = float(np.nanmin(ctx.scale_min[t0:ctx.T + 1])) if ctx.scale_min is not None else None
        ctx.consts.update(via=via.name, sum_bound=sub.bound, a_min=a_min, flip_const=k, flip_const_detail=kdet)
        measured = float(np.sum(ctx.flips[ctx.window(t0)]))
        b = None
        if sub.bound is not None and k is not None and a_min is not None and a_min > 0:
            b = self.bound(sub.bound, a_min, k)
        own = self.finish(ctx, measured, b)
        merged = {f"{via.name}: {n}": v for n, v in sub.assumptions.items() if n != "bound computable"}
        merged.update(own.assumptions)
        det = {**sub.details, **own.details}
        return make_result(self.name, self.statement, merged, measured, b, problem=own.problem,
                           method=own.method, details=det)
