r"""Theorems 1 and 2 and Corollary 3 (THEORY.md sections 10-12).

Every constant is a parameter. ``d`` (Theorem 1), ``kappa`` or ``d`` and ``R`` (Theorem 2)
have no default: a check without them reports the assumption "constant ... given" as
not met. :func:`estimate_constants` measures them on a *calibration* trajectory (another
seed, or a burn-in window), which the caller must keep disjoint from the checked steps.
``L`` and ``f_*`` default to the problem's; ``eps`` to the minimiser of Theorem 2's bound.
"""

from __future__ import annotations

import math

import numpy as np

from . import assumptions as A
from .base import TheoryResult
from .context import smoothness_c
from .result import Assumption, intervals, make_result


def _given(name, value, source):
    return Assumption(
        f"constant {name} given (estimated on a calibration run, not on the checked steps)",
        lambda c: (value is not None, f"{name}={value!r} ({source})"),
    )


class Theorem1(TheoryResult):
    r"""Theorem 1 (fixed mu and g on ``t0 <= t < T``, AOC(d), ``c = (1 - gL/2 - mu d)/g > 0``), one claim:

    (i) ``f(x_{t+1}) <= f(x_t) - c ||D_t||^2`` on every step of the window (the per-step
    inequality; the steps where it held are ``covered``), hence (ii)
    ``sum_t ||D_t||^2 <= (f(x_t0) - f_*)/c`` (``measured``/``bound``) and (iii)
    ``(T - t0) min_t ||D_t||^2 <= (f(x_t0) - f_*)/c`` (in ``details``). ``d`` is an argument:
    without it the assumption "constant d given" fails; it is never fitted on the window
    (:func:`estimate_constants` measures it on a calibration trajectory).
    """

    name = "theorem1"
    stepwise = True
    label = "Theorem 1"
    kind = "guarantee"
    statement = (
        "AOC(d), c = (1 - gL/2 - mu d)/g > 0, mu and g fixed  =>  f(x_{t+1}) <= f(x_t) - c ||D_t||^2, "
        "sum_{t>=t0} ||D_t||^2 <= (f(x_t0) - f_*)/c, (T - t0) min ||D_t||^2 <= (f(x_t0) - f_*)/c"
    )
    t0_rule = "constant"
    assumptions = [
        A.LAZY,
        A.DETERMINISTIC,
        A.L_KNOWN,
        A.F_LOWER,
        A.NONEMPTY,
        A.LR_CONSTANT,
        A.MU_CONSTANT,
        A.AOC,
        A.C_POSITIVE,
    ]

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
        d = None if ctx.d_given is None else float(ctx.d_given)
        ctx.consts.update(
            g=g,
            mu=mu,
            d=d if d is not None else math.nan,
            d_source="given" if d is not None else "not given",
            d_measured=ctx.sup_delta(t0),
            unresolved_steps=ctx.unresolved(t0),
        )
        if ctx.L is not None and d is not None:
            ctx.consts["c"] = self.c(ctx.L, g, mu, d)
        return ctx

    def check(self, trajectory, d=None, tol=1e-10, rtol=1e-9, **kw):
        """Parameters: ``d`` (the AOC constant; required), ``L``, ``f_lower``, ``t0`` (default:
        the last stretch of constant mu and g), ``tol`` (per-step, relative to the size of f),
        ``rtol`` (sum). Returns a Result with ``covered`` = window steps where (i) held."""
        ctx = self.prepare(trajectory, d=d, **kw)
        w, scale = ctx.window(ctx.t0), ctx.f_scale()
        c = ctx.consts.get("c")
        held = np.zeros(ctx.T - ctx.t0, dtype=bool)
        fails = 0
        if c is not None and ctx.t0 < ctx.T:
            gap = ctx.f[ctx.t0 + 1 :] - ctx.f[ctx.t0 : -1] + c * ctx.step_norm2[w]
            scale = max(scale, float(np.max(np.abs(c * ctx.step_norm2[w]))))
            held = gap <= tol * scale
            fails = int(np.sum(~held))
            ctx.consts.update(descent_fails=fails, max_descent_gap=float(gap.max()))
        measured = float(np.sum(ctx.step_norm2[w]))
        b = None
        if c is not None and ctx.f_lower is not None:
            b = self.bound(ctx.L, ctx.f_lower, ctx.consts["g"], ctx.consts["d"], ctx.consts["mu"], float(ctx.f[ctx.t0]))
        if ctx.t0 < ctx.T:
            ctx.consts["rate_measured"] = float((ctx.T - ctx.t0) * np.min(ctx.step_norm2[w]))
        res = self.finish(
            ctx,
            measured,
            b,
            tolerance=rtol * (abs(b) if b and math.isfinite(b) else 1.0),
            extra_assumptions=[_given("d", d, "AOC constant")],
            covered=intervals(held, ctx.t0) if b is not None and math.isfinite(b) else None,
            # c > 0, so the right side f(x_t) - c ||D_t||^2 is at most f(x_t): every covered step is certified
            certified=intervals(held, ctx.t0) if b is not None and math.isfinite(b) else None,
        )
        if res.status == "holds" and fails:
            res.status, res.holds, res.covered = "violated", False, []
        return res

    def sum_bound(self, ctx):
        k = ctx.consts
        if ctx.L is None or ctx.f_lower is None or k.get("c") is None:
            return None
        return self.bound(ctx.L, ctx.f_lower, k["g"], k["d"], k["mu"], float(ctx.f[ctx.t0]))


#: The three former rows of Theorem 1 are one claim now; the old names stay importable.
Theorem1Descent = Theorem1Sum = Theorem1Rate = _Theorem1 = Theorem1


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
    (``<= d`` when ``d >= 0``; the original brief's form needs ``d >= 0``). ``kappa`` (or ``d``,
    giving ``kappa = sup_t mu_{t+1} d`` and checking AOC(d)) and ``R`` are arguments, estimated
    on a calibration trajectory (:func:`estimate_constants`); without them the assumptions
    "constant ... given" fail. ``eps`` defaults to the minimiser of the bound (the inequality
    holds for every ``eps > 0``, so its infimum is a valid bound).
    """

    name = "theorem2"
    label = "Theorem 2"
    kind = "guarantee"
    statement = (
        "mu_t non-decreasing, mu_{t+1} delta_t <= kappa, ||r_t|| <= R, c_eps > 0  =>  sum ||D_t||^2 <= "
        "[f(x_t0) - f_* + R^2/(4 eps g) sum (mu_{t+1}-mu_t)^2]/c_eps"
    )
    assumptions = [
        A.LAZY,
        A.DETERMINISTIC,
        A.L_KNOWN,
        A.F_LOWER,
        A.NONEMPTY,
        A.LR_CONSTANT,
        A.MU_MONOTONE,
        A.WEIGHTED_AOC,
        A.R_BOUND,
        A.C_EPS_POSITIVE,
    ]

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
        mu_n = ctx.mu[t0 + 1 : ctx.T + 1]
        weighted = mu_n * ctx.delta[ctx.window(t0)]
        weighted = weighted[np.isfinite(weighted)]
        k_meas = float(weighted.max()) if weighted.size else 0.0
        kappa_given = kappa is not None or ctx.d_given is not None
        if kappa is not None:
            kappa, ksrc = float(kappa), "given"
        elif ctx.d_given is not None:
            kappa, ksrc = (float(np.max(mu_n * d)) if mu_n.size else max(d, 0.0)), "sup_t mu_(t+1) d"
        else:
            kappa, ksrc = math.nan, "not given"
        dmu = np.diff(ctx.mu[t0 : ctx.T + 1])
        S2 = float(np.sum(dmu * dmu))
        Rm = float(np.max(ctx.r_norm[t0 : ctx.T])) if ctx.r_norm is not None and t0 < ctx.T else math.nan
        R_given = R is not None
        R = math.nan if R is None else float(R)
        k.update(
            g=g,
            d=d,
            d_source=src,
            unresolved_steps=ctx.unresolved(t0),
            kappa=kappa,
            kappa_source=ksrc,
            kappa_measured=k_meas,
            sum_dmu2=S2,
            R=R,
            R_measured=Rm,
        )
        b = None
        if ctx.L is not None and ctx.f_lower is not None and math.isfinite(R) and math.isfinite(kappa):
            a = 1.0 - g * ctx.L / 2.0 - kappa
            F = float(ctx.f[t0]) - ctx.f_lower
            young = R * R * S2 / (4.0 * g)
            e = best_eps(F, young, a) if eps is None else float(eps)
            k.update(eps=e, c_eps=(a - e) / g, young_term=young / e if young > 0 and e > 0 else 0.0)
            b = self.bound(ctx.L, ctx.f_lower, g, R, e, float(ctx.f[t0]), S2, kappa=kappa)
        measured = float(np.sum(ctx.step_norm2[ctx.window(t0)]))
        extra = [A.AOC] if ctx.d_given is not None else []
        extra += [_given("kappa (or d)", kappa if kappa_given else None, ksrc), _given("R", R if R_given else None, "")]
        return self.finish(
            ctx,
            measured,
            b,
            tolerance=rtol * (abs(b) if b and math.isfinite(b) else 1.0),
            extra_assumptions=extra,
            covered=[[t0, ctx.T]] if t0 < ctx.T else None,  # a whole-window sum bound: its steps
        )


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
    label = "Corollary 3"
    kind = "guarantee"
    statement = (
        "binary {+-l}, a_t >= a_min > 0, mu_t >= mu_lo, Theorem 1 (or 2)  =>  flips after t0 <= "
        "S/(4 mu_lo^2 l^2 a_min^2), S = (f(x_t0) - f_*)/c (Theorem 1) or Theorem 2's bound"
    )
    t0_rule = "constant"
    assumptions = [A.A_MIN, A.FLIP_SET]

    def bound(self, sum_bound, a_min, k=4.0, **_) -> float:
        return sum_bound / (k * a_min * a_min) if k > 0 and a_min > 0 else math.inf

    def check(self, trajectory, **kw):
        ctx = self.context(trajectory, **{k: v for k, v in kw.items() if k not in ("R", "eps", "kappa")})
        t0 = ctx.t0
        m = ctx.mu[t0 : ctx.T + 1]
        via = Theorem1() if np.all(m == m[0]) else Theorem2()
        sub = via.check(trajectory, **{**kw, "t0": t0})
        k, kdet = flip_constant(ctx.qset, float(m.min()), float(m.max()))
        a_min = float(np.nanmin(ctx.scale_min[t0 : ctx.T + 1])) if ctx.scale_min is not None else None
        ctx.consts.update(via=via.name, sum_bound=sub.bound, a_min=a_min, flip_const=k, flip_const_detail=kdet)
        measured = float(np.sum(ctx.flips[ctx.window(t0)]))
        b = None
        if sub.bound is not None and k is not None and a_min is not None and a_min > 0:
            b = self.bound(sub.bound, a_min, k)
        own = self.finish(ctx, measured, b)
        merged = {f"{via.name}: {n}": v for n, v in sub.assumptions.items() if n != "bound computable"}
        merged.update(own.assumptions)
        det = {**sub.details, **own.details}
        return make_result(
            self.name, self.statement, merged, measured, b, problem=own.problem, method=own.method, details=det
        )


def estimate_constants(trajectory, t0=None, t1=None) -> dict:
    r"""Constants measured on a *calibration* trajectory, to be passed to checks on another one.

    Parameters
    ----------
    trajectory : trajectory-like
        A calibration run (same problem and settings, another seed) or a burn-in window of the
        run, disjoint from the steps the constants will be checked on.
    t0, t1 : int or None
        The steps ``t0 <= t < t1`` to measure on (default: the whole trajectory).

    Returns
    -------
    dict
        ``d`` = ``sup delta_t`` (resolved steps), ``kappa`` = ``sup mu_{t+1} delta_t``,
        ``R`` = ``max ||r_t||``, ``L`` = ``max L_local`` (an *estimate*: a lower bound on the
        smoothness constant along the run; ``L_source`` says so), ``sigma2`` = the mean of
        ``noise_norm2`` (the minibatch variance, NaN for full gradients; for torch step logs half
        the mean of ``noise_pair_norm2``, whose expectation is ``2 sigma^2``) and ``noise_max`` the
        largest square root of those samples, plus ``t0``, ``t1``.

    Raises
    ------
    ValueError
        The window is empty or outside the trajectory.
    """
    from .context import Context
    from .numerics import field

    ctx = Context(trajectory)
    t0 = 0 if t0 is None else int(t0)
    t1 = ctx.T if t1 is None else int(t1)
    if not 0 <= t0 < t1 <= ctx.T:
        raise ValueError(f"calibration window must satisfy 0 <= t0 < t1 <= {ctx.T}, got t0={t0}, t1={t1}")
    w = slice(t0, t1)
    dl = ctx.delta[w]
    md = ctx.mu[t0 + 1 : t1 + 1] * dl
    fin = np.isfinite(dl)
    r = ctx.r_norm[t0 : t1 + 1] if ctx.r_norm is not None else np.array([math.nan])
    Ll = ctx.L_local[w] if ctx.L_local is not None else np.array([math.nan])
    L_src = "estimate: max L_local on a calibration trajectory"
    sec = field(trajectory, "batch_L_local", ctx.T)
    if not np.isfinite(Ll).any() and sec is not None and np.isfinite(sec[w]).any():
        # a torch run knows no full-gradient secant; its same-batch secants (--check-every) are the local ones
        Ll, L_src = sec[w], "estimate: max same-batch secant of grad f_B (batch_L_local) on a calibration window"
    nz = field(trajectory, "noise_norm2", ctx.T)
    nz = nz[w] if nz is not None else np.array([math.nan])
    nzf = nz[np.isfinite(nz)]
    pair = field(trajectory, "noise_pair_norm2", ctx.T)
    if not nzf.size and pair is not None:  # torch: ||G - G'||^2 of two independent batches, mean 2 sigma^2
        nzf = pair[w][np.isfinite(pair[w])] / 2.0
    return {
        "d": float(dl[fin].max()) if fin.any() else 0.0,
        "kappa": float(md[np.isfinite(md)].max()) if np.isfinite(md).any() else 0.0,
        "R": float(np.nanmax(r)) if np.isfinite(r).any() else math.nan,
        "L": float(np.nanmax(Ll)) if np.isfinite(Ll).any() else math.nan,
        "L_source": L_src,
        "sigma2": float(nzf.mean()) if nzf.size and ctx.meta.get("batch_size") is not None else math.nan,
        "noise_max": float(np.sqrt(nzf.max())) if nzf.size and ctx.meta.get("batch_size") is not None else math.nan,
        "t0": t0,
        "t1": t1,
    }
