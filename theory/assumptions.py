"""The assumptions of section 5 as named predicates on a :class:`~theory.context.Context`.

Each predicate reads ``ctx.t0`` (the resolved window start) and
``ctx.consts`` (the constants the check computed: ``c``, ``d``, ``R``, ...)
and returns ``(ok, detail)``. A check lists the ones its proof uses; a
failing one turns its status into ``"assumption-not-met"``.
"""

from __future__ import annotations

import math

import numpy as np

from .context import LAZY_METHODS
from .result import Assumption


def _f_recorded(ctx):
    n = int(np.sum(np.isfinite(ctx.f)))
    return n > 1, f"{n} of {len(ctx.f)} values of the objective recorded"


def _lazy(ctx):
    # A torch run with momentum or weight decay (meta "plain_sgd": false) steps y along another
    # direction than the recorded gradient: not the iteration the lemmas are about.
    plain = ctx.meta.get("plain_sgd", True) is not False
    ok = ctx.method in LAZY_METHODS and plain
    extra = (
        ""
        if plain
        else (
            f"; momentum={ctx.meta.get('momentum')}, weight_decay={ctx.meta.get('weight_decay')}: "
            "y_(t+1) - y_t is not -g times the recorded gradient"
        )
    )
    return ok, (
        f"method={ctx.method!r} (the lemmas need x_t = y_t - mu_t r_t and y_(t+1) = y_t - g grad f(x_t): "
        f"{', '.join(LAZY_METHODS)}){extra}"
    )


def _lazy_any_direction(ctx):
    # Theorem II.2 holds for any G_t with y_(t+1) = y_t - g G_t: plain SGD's gradient, or the anchor step
    # (y_t - y_(t+1))/g that a torch run with momentum or weight decay records (meta "direction").
    plain = ctx.meta.get("plain_sgd", True) is not False or ctx.meta.get("direction") == "anchor step"
    ok = ctx.method in LAZY_METHODS and plain
    extra = (
        ""
        if plain
        else (
            f"; momentum={ctx.meta.get('momentum')}, weight_decay={ctx.meta.get('weight_decay')} "
            "and the recorded G_t is not the anchor step"
        )
    )
    return ok, (
        f"method={ctx.method!r} (needs x_t = y_t - mu_t r_t and y_(t+1) = y_t - g G_t for the recorded G_t: "
        f"{', '.join(LAZY_METHODS)}){extra}"
    )


def _deterministic(ctx):
    bs = ctx.meta.get("batch_size")
    return bs is None, "full gradients" if bs is None else f"stochastic gradients (batch_size={bs}): not covered"


def _L_known(ctx):
    ok = ctx.L is not None and ctx.L_source in ("given", "problem")
    return ok, f"L={ctx.L} ({ctx.L_source})"


def _f_lower(ctx):
    if ctx.f_lower is None:
        return False, "no lower bound f_* known"
    fmin = float(np.nanmin(ctx.f[ctx.t0 :]))
    tol = 1e-10 * ctx.f_scale()
    return fmin >= ctx.f_lower - tol, f"f_*={ctx.f_lower:.6g}, min_(t>=t0) f(x_t)={fmin:.6g}"


def _nonempty(ctx):
    n = ctx.T - ctx.t0
    return n >= 1, f"{n} step(s) in the window t0={ctx.t0}..T={ctx.T}"


def _lr_constant(ctx):
    g = ctx.lr[ctx.t0 : ctx.T]
    ok = g.size == 0 or bool(np.all(g == g[0]))
    return ok, f"lr on the window in [{g.min() if g.size else 'n/a'}, {g.max() if g.size else 'n/a'}]"


def _mu_constant(ctx):
    m = ctx.mu[ctx.t0 : ctx.T + 1]
    ok = bool(np.all(m == m[0]))
    return ok, f"mu_t for t0={ctx.t0}..T in [{m.min():.6g}, {m.max():.6g}]"


def _mu_monotone(ctx):
    m = ctx.mu[ctx.t0 : ctx.T + 1]
    ok = bool(np.all(np.diff(m) >= 0) and m.min() >= 0 and m.max() <= 1)
    return ok, f"mu non-decreasing in [0, 1] on the window: min {m.min():.6g}, max {m.max():.6g}"


def _aoc(ctx):
    d = ctx.consts["d"]
    sup = ctx.sup_delta(ctx.t0)
    tol = 1e-9 * max(1.0, abs(d))
    return sup <= d + tol, f"sup_(t>=t0) delta_t = {sup:.6g} vs d = {d:.6g} ({ctx.consts['d_source']})"


def _weighted_aoc(ctx):
    kappa = ctx.consts["kappa"]
    km = ctx.consts["kappa_measured"]
    return km <= kappa + 1e-9 * max(1.0, abs(kappa)), (
        f"sup_(t>=t0) mu_(t+1) delta_t = {km:.6g} vs kappa = {kappa:.6g} ({ctx.consts['kappa_source']})"
    )


def _c_positive(ctx):
    c = ctx.consts.get("c")
    ok = c is not None and math.isfinite(c) and c > 0
    return ok, f"c = {c:.6g}" if c is not None else "c not computable (L unknown)"


def _c_eps_positive(ctx):
    c = ctx.consts.get("c_eps")
    ok = c is not None and math.isfinite(c) and c > 0
    return ok, (
        f"c_eps = {c:.6g} (kappa = sup mu_(t+1) d = {ctx.consts.get('kappa', float('nan')):.6g}, "
        f"eps = {ctx.consts.get('eps', float('nan')):.6g})"
    ) if c is not None else "c_eps not computable"


def _R_bound(ctx):
    R, Rm = ctx.consts["R"], ctx.consts["R_measured"]
    return Rm <= R * (1 + 1e-12), f"max_(t0<=t<T) ||r_t|| = {Rm:.6g} <= R = {R:.6g}"


def _a_min(ctx):
    a = ctx.consts.get("a_min")
    ok = a is not None and math.isfinite(a) and a > 0
    return ok, f"a_min = min_(t>=t0) min-scale of P(y_t) = {a}"


def _flip_set(ctx):
    k = ctx.consts.get("flip_const")
    return k is not None and k > 0, ctx.consts.get("flip_const_detail", "")


F_RECORDED = Assumption(
    "the objective f(x_t) recorded (a torch run logs minibatch losses only)", _f_recorded, scope=True
)
LAZY = Assumption("lazy method (gradient at x applied to y)", _lazy)
LAZY_ANY_DIRECTION = Assumption("lazy method, y_(t+1) = y_t - g G_t with the recorded G_t", _lazy_any_direction)
DETERMINISTIC = Assumption("deterministic gradients", _deterministic, scope=True)
L_KNOWN = Assumption("L known (exact smoothness constant)", _L_known)
F_LOWER = Assumption("f_* known and f(x_t) >= f_*", _f_lower)
NONEMPTY = Assumption("at least one step with t >= t0", _nonempty)
LR_CONSTANT = Assumption("constant step size g on t >= t0", _lr_constant)
MU_CONSTANT = Assumption("mu fixed on t >= t0", _mu_constant)
MU_MONOTONE = Assumption("mu_t non-decreasing, 0 <= mu_t <= 1", _mu_monotone)
AOC = Assumption("AOC(d) on every step t >= t0", _aoc)
WEIGHTED_AOC = Assumption("mu_(t+1) delta_t <= kappa on every step t >= t0", _weighted_aoc)
C_POSITIVE = Assumption("c = (1 - gL/2 - mu d)/g > 0", _c_positive)
C_EPS_POSITIVE = Assumption("c_eps = (1 - gL/2 - kappa - eps)/g > 0", _c_eps_positive)
R_BOUND = Assumption("||r_t|| <= R on t >= t0", _R_bound)
A_MIN = Assumption("a_t >= a_min > 0 on t >= t0", _a_min)
FLIP_SET = Assumption("a flip moves x by a known amount (binary; ternary with mu = 1)", _flip_set)
