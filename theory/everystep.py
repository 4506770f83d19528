r"""Results that hold on every step, flips included (THEORY.md, part II: this project's results).

Notation (one step ``t -> t + 1``): ``g = g_t`` the step size, ``G_t`` the gradient the
step used (a minibatch gradient in SGD runs), ``xi_t = G_t - grad f(x_t)`` its noise,
``P_t = P(y_t)``, ``r_t = y_t - P_t``, ``D_t = x_{t+1} - x_t``, ``mu' = mu_{t+1}``,
``Dmu = mu_{t+1} - mu_t``, ``k_t`` the flips. Trajectory fields read (float64, NaN where
not defined): point ``f, mu, lr, r_norm, grad_norm2, scale_max, dist_x``; step
``step_norm2, aoc, flips, sgrad_norm2, noise_norm2, sg_dot_D, sg_dot_r, f_stable,
stable_g_dot_D, stable_norm2, pattern_gap``; meta ``method, qset, batch_size, levels,
row_min, n_quantized, L, f_lower``.

* :class:`ProjectionMonotonicity` (Theorem II.2, lazy methods, no L): on every step
  ``<G_t, D_t + Dmu r_t> <= -(1 - mu') g ||G_t||^2``; with mu fixed, ``mu delta_t <= 1``.
* :class:`ProxStepDescent` (Theorem II.6, PGD and ProxQuant, no L for (i)).
* :class:`FlipDescent` (Theorem II.4, lazy methods, L): every-step descent with the
  a-priori flip cost ``Ebar_t`` (:func:`flip_cost_bound`), whole-run sum.
* :class:`StationarityRate` and :class:`PLRate` (Theorems II.7 and II.8).
* :class:`AOCFlipBound` (Proposition II.9): AOC cannot cover late flips.
"""

from __future__ import annotations

import math

import numpy as np

from . import assumptions as A
from .base import TheoryResult
from .context import PROX_METHODS
from .result import Assumption, intervals

#: Relative rounding tolerance of the per-step inequalities.
RTOL = 1e-9
#: Absolute rounding floor, relative to ``||G_t|| * ||x_t||`` (the size of the rounding error of ``<G_t, D_t>``).
ATOL_DOT = 1e-11
#: Absolute rounding floor of inequalities between values of f, relative to ``max_t |f(x_t)|``.
F_ATOL = 1e-13


def field(traj, name, length=None):
    """``traj.<name>`` as float64, or None when the trajectory does not record it.

    Raises
    ------
    ValueError
        The field exists with a length other than ``length``.
    """
    v = getattr(traj, name, None)
    if v is None:
        return None
    a = np.asarray(v, dtype=np.float64)
    if length is not None and a.shape != (length,):
        raise ValueError(f"trajectory field {name!r} must have length {length}, got shape {a.shape}")
    return a


def _nan(T):
    return np.full(T, np.nan)


def set_info(meta) -> dict:
    """The quantization set as the flip-cost bound needs it: levels, free scale, binary-type.

    Reads the set named ``meta["qset"]`` (its levels, 0 included), else ``meta["levels"]``.
    The recorded ``meta["levels"]`` holds the *positive* levels only, so it cannot tell
    ternary ``{0, +-1}`` from binary ``{+-1}``: it is used only when the set's name is not
    recognised. Returns ``{"levels", "l_max", "binary", "free_scale", "row_min",
    "n_quantized", "known"}``.
    """
    levels, free = meta.get("levels"), None
    name = str(meta.get("qset", ""))
    try:
        from brelax import get_set

        Q = get_set(name)
        free = Q.scale is None
        levels = list(Q.levels)
    except (ValueError, TypeError, ImportError):
        pass
    if free is None:
        free = "@" not in name and bool(name)
    known = levels is not None and len(levels) > 0
    lv = [float(v) for v in levels] if known else []
    return {
        "levels": lv,
        "l_max": max(lv) if known else math.nan,
        "binary": known and len(lv) == 1 and lv[0] > 0,
        "free_scale": bool(free),
        "row_min": meta.get("row_min"),
        "n_quantized": meta.get("n_quantized"),
        "known": known,
    }


def pattern_gap_bound(flips, scale_t, scale_n, gnorm, lr, r_norm_n, info) -> np.ndarray:
    r"""A-priori bound ``B_t >= ||P(y_{t+1}) - P^s_{t+1}||`` (THEORY.md, Lemma II.3).

    General free-scale set, per scale row with ``k_b`` code changes:
    ``B_t^2 = 4 k (a' Delta)^2 + 4 sqrt(k) a' Delta d'`` with ``a' = scale_max_{t+1}``,
    ``Delta = 2 l_max``, ``d' = ||r_{t+1}||``. Binary ``{+-l}``: also
    ``B_t = 2 sqrt(k) (l a_t + 2 g ||G_t|| / sqrt(n_min))`` (``a_t = scale_max_t``,
    ``n_min = row_min``); the smaller one is used. ``B_t = 0`` when ``k_t = 0``.

    Parameters
    ----------
    flips, scale_t, scale_n, gnorm, lr, r_norm_n : arrays of length T
        ``k_t``, ``scale_max_t``, ``scale_max_{t+1}``, ``||G_t||``, ``g_t``, ``||r_{t+1}||``.
    info : dict from :func:`set_info`

    Returns
    -------
    ndarray, length T (NaN where an input is missing).
    """
    k = np.asarray(flips, dtype=np.float64)
    e = 2.0 * info["l_max"] * scale_n
    general = 2.0 * np.sqrt(k * e * e + np.sqrt(k) * e * r_norm_n)
    out = general
    if info["binary"] and info["row_min"]:
        binary = 2.0 * np.sqrt(k) * (info["l_max"] * scale_t + 2.0 * lr * gnorm / math.sqrt(float(info["row_min"])))
        out = np.where(np.isfinite(binary), np.fmin(general, binary), general)
    return np.where(k == 0, 0.0, out)


def flip_cost_bound(B, mu_n, G, gnorm, lr, dmu, r_norm, L) -> np.ndarray:
    r"""``Ebar_t = mu' (||grad f(x_t)|| + L (g ||G_t|| + |Dmu| ||r_t||)) B_t + (L/2) mu'^2 B_t^2`` (Lemma II.3)."""
    return mu_n * (G + L * (lr * gnorm + np.abs(dmu) * r_norm)) * B + 0.5 * L * mu_n * mu_n * B * B


def working_eps(meta) -> float:
    """Machine epsilon of the arithmetic the run's vectors were computed in.

    ``meta["dtype"]`` when recorded; a ``brelax train`` run (torch) is float32; otherwise float64
    (:func:`brelax.optimize`). Tolerances of the per-step inequalities scale with it.
    """
    dt = meta.get("dtype")
    if dt is not None:
        try:
            return float(np.finfo(np.dtype(str(dt).replace("torch.", ""))).eps)
        except TypeError:
            pass
    return float(np.finfo(np.float32 if meta.get("source") == "brelax train" else np.float64).eps)


def _tols(ctx, rtol, atol):
    """``rtol`` and ``atol`` widened to at least 1000 and 100 working epsilons (float32 runs)."""
    e = working_eps(ctx.meta)
    return max(rtol, 1000 * e), max(atol, 100 * e)


def _f_floor(ctx) -> float:
    """Absolute rounding floor for inequalities between values of f: ``F_ATOL * max_t |f(x_t)|``.

    f is evaluated in floating point with an absolute error of order
    ``eps * ||Ax - b|| * (||A|| ||x|| + ||b||)`` (least squares): near a zero minimum it is
    not small relative to f itself.
    """
    fin = np.abs(ctx.f[np.isfinite(ctx.f)])
    return F_ATOL * float(fin.max()) if fin.size else 0.0


def _x_scale(ctx, info, T):
    """A bound on ``max(||x_t||, ||x_{t+1}||)``: ``x_norm`` when recorded, else from the scales and ``r_t``."""
    xn = field(ctx.traj, "x_norm", T + 1)
    if xn is not None:
        return np.fmax(xn[:-1], xn[1:])
    sm = field(ctx.traj, "scale_max", T + 1)
    nq = info.get("n_quantized")
    r = ctx.r_norm if ctx.r_norm is not None else np.zeros(T + 1)
    if sm is None or not nq:
        return np.full(T, np.nan)
    p = np.nan_to_num(sm) * info["l_max"] * math.sqrt(float(nq))
    y = p + np.nan_to_num(r)
    return np.fmax(y[:-1], y[1:])


class _PerStep(TheoryResult):
    """A result whose claim is one inequality per step: ``lhs_t <= rhs_t`` on every eligible step."""

    def per_step(
        self, ctx, eligible, gap, tol, scale, details, extra_assumptions=(), measured=None, bound=None, tolerance=None
    ):
        """Assemble the Result.

        ``gap_t = lhs_t - rhs_t`` must be ``<= tol_t`` on every eligible step; ``scale_t > 0``
        normalises it. Unless ``measured``/``bound`` are given, measured is
        ``max_t (gap_t - tol_t)/scale_t`` and the bound 0; otherwise ``tolerance`` (default: the sum
        of ``tol_t`` over the eligible steps) applies to them. ``covered``: eligible steps that held.
        """
        gap = np.asarray(gap, dtype=np.float64)
        ok_t = eligible & np.isfinite(gap) & np.isfinite(tol)
        held = ok_t & (gap <= tol)
        fail = ok_t & ~held
        norm = np.where(ok_t, (gap - tol) / np.where(scale > 0, scale, 1.0), np.nan)
        n_ok = int(ok_t.sum())
        details = dict(details)
        details.update(
            eligible_steps=n_ok,
            failing_steps=int(fail.sum()),
            first_failing_t=int(np.flatnonzero(fail)[0]) + ctx.t0 if fail.any() else None,
            max_normalised_gap=float(np.nanmax(norm)) if n_ok else None,
        )
        some = Assumption(
            "at least one step where the per-step hypotheses hold", lambda c: (n_ok > 0, f"{n_ok} of {len(gap)} steps")
        )
        if measured is None:
            measured, bound, tolerance = (float(np.nanmax(norm)) if n_ok else None), 0.0, 0.0
        elif tolerance is None:
            tolerance = float(np.sum(tol[ok_t])) if n_ok else 0.0
        res = self.finish(
            ctx,
            measured,
            bound,
            tolerance=tolerance,
            details=details,
            extra_assumptions=[some, *extra_assumptions],
            covered=intervals(held, ctx.t0),
        )
        if res.status == "holds" and fail.any():
            res.status, res.holds, res.covered = "violated", False, []
        return res


def _method_in(methods, what):
    return Assumption(
        f"method is one of {', '.join(methods)}", lambda c: (c.method in methods, f"method={c.method!r} ({what})")
    )


def _fields_present(traj, names, T):
    missing = [n for n in names if field(traj, n) is None]
    return Assumption(
        "diagnostic fields recorded",
        lambda c: (not missing, "missing: " + ", ".join(missing) if missing else "all present"),
    )


class ProjectionMonotonicity(_PerStep):
    r"""Monotonicity of any exact projection, and what it gives lazy methods on every step.

    For every closed Q, ``phi(y) = max_{z in Q} <y, z> - ||z||^2/2`` is convex and every
    nearest point ``P(y)`` is a subgradient, so ``<P(y') - P(y), y' - y> >= 0``
    (THEORY.md, Theorem II.1). For ``x_t = y_t - mu_t r_t``, ``y_{t+1} = y_t - g G_t``
    (any ``G_t``: full or minibatch gradient), ``0 <= mu'`` (Theorem II.2):

    ``<G_t, D_t> + Dmu <G_t, r_t> <= -(1 - mu') g ||G_t||^2`` on every step, and with
    ``mu_t = mu_{t+1} = mu``: ``mu delta_t <= 1`` (on resolved steps). The step identity it rests on,
    ``g <G_t, D_t> = -||D_t||^2 + mu' <r_t - r_{t+1}, D_t> - Dmu <r_t, D_t>`` (Theorem II.2(a) dotted
    with ``D_t``), is checked on every step too: it fails when the step size, mu or gradient the
    step used is not the recorded one (a 1% error in the learning rate is caught).

    Measured: ``max_t (gap_t - tol_t)/scale_t`` with ``gap_t`` the left side minus the
    right side; bound 0. No constant: nothing is estimated.
    """

    name = "projection_monotonicity"
    statement = (
        "<P(y') - P(y), y' - y> >= 0  =>  <G_t, D_t + (mu_{t+1}-mu_t) r_t> <= -(1-mu_{t+1}) g ||G_t||^2 "
        "every step; mu fixed: mu delta_t <= 1"
    )
    assumptions = [A.LAZY_ANY_DIRECTION]

    def bound(self, lr=None, mu_next=None, sgrad_norm2=None, **_) -> float:
        """``-(1 - mu') g ||G_t||^2``."""
        return -(1.0 - mu_next) * lr * sgrad_norm2

    def check(self, trajectory, rtol=RTOL, atol=ATOL_DOT, delta_tol=1e-6, **kw):
        """Parameters: ``rtol`` (relative to the terms), ``atol`` (times ``||G_t|| ||x_t||``),
        ``delta_tol`` on ``mu delta_t - 1``. Reads ``sg_dot_D``, ``sg_dot_r``, ``sgrad_norm2``."""
        ctx = self.context(trajectory, **kw)
        T = ctx.T
        rtol, atol = _tols(ctx, rtol, atol)
        sgD, sgr, sg2 = (field(trajectory, n, T) for n in ("sg_dot_D", "sg_dot_r", "sgrad_norm2"))
        have = _fields_present(trajectory, ("sg_dot_D", "sg_dot_r", "sgrad_norm2"), T)
        if sgD is None or sgr is None or sg2 is None:
            sgD = sgr = sg2 = _nan(T)
        info = set_info(ctx.meta)
        g, mt, mn = ctx.lr[:-1], ctx.mu[:-1], ctx.mu[1:]
        dmu = mn - mt
        rhs = -(1.0 - mn) * g * sg2
        gap = sgD + dmu * sgr - rhs
        terms = np.abs(sgD) + np.abs(dmu * sgr) + np.abs(rhs)
        xs = _x_scale(ctx, info, T)
        floor = atol * np.sqrt(np.maximum(sg2, 0.0)) * np.nan_to_num(xs, nan=0.0)
        tol = rtol * terms + floor
        eligible = (mn >= 0) & (g > 0)
        # mu delta_t <= 1 on resolved fixed-mu steps (identity (b) + monotonicity)
        fixed = (mt == mn) & ctx.resolved
        md = mn * ctx.delta
        delta_fail = fixed & (md > 1.0 + delta_tol)
        gap = np.where(delta_fail, np.fmax(gap, tol + np.abs(terms) + 1.0), gap)
        # (a) dotted with D_t, the identity of section 7 with G_t: g<G, D> = -||D||^2 + mu'<r - r', D> - Dmu <r, D>
        inner, cross = ctx.inner, ctx.cross if ctx.cross is not None else _nan(T)
        ident = g * sgD + ctx.step_norm2 - mn * inner + dmu * cross
        iterms = np.abs(g * sgD) + ctx.step_norm2 + np.abs(mn * inner) + np.abs(dmu * cross)
        itol = rtol * iterms + atol * np.sqrt(np.maximum(ctx.step_norm2, 0.0)) * np.nan_to_num(xs, nan=0.0)
        ident_fail = eligible & np.isfinite(ident) & (np.abs(ident) > itol)
        gap = np.where(ident_fail, np.fmax(gap, tol + np.abs(terms) + 1.0), gap)
        mono = -g * (sgD + dmu * sgr) - (1.0 - mn) * g * g * sg2  # = mu' <P'-P, y'-y> >= 0
        det = {
            "max_mu_delta_fixed_mu": float(np.nanmax(md[fixed])) if fixed.any() else None,
            "mu_delta_over_1_steps": int(delta_fail.sum()),
            "fixed_mu_resolved_steps": int(fixed.sum()),
            "identity_failing_steps": int(ident_fail.sum()),
            "max_identity_error": float(np.nanmax(np.abs(ident) / np.where(iterms > 0, iterms, 1.0)))
            if np.isfinite(ident).any()
            else None,
            "min_monotonicity_term": float(np.nanmin(mono)) if np.isfinite(mono).any() else None,
            "x_scale_source": "x_norm" if field(trajectory, "x_norm") is not None else "scales and r_norm",
        }
        return self.per_step(ctx, eligible, gap, tol, np.where(terms > 0, terms, 1.0), det, extra_assumptions=[have])


class ProxStepDescent(_PerStep):
    r"""PGD and ProxQuant (l2): one step decreases the prox objective (THEORY.md, Theorem II.6).

    ``x_{t+1}`` minimises ``u -> 1/2 ||u - z_t||^2 + (lam'/2) d_Q(u)^2`` with
    ``z_t = x_t - g G_t``, ``lam' = mu'/(1 - mu')``; comparing with ``u = x_t``:

    (i) ``mu' < 1``: ``(1 - mu') (g <G_t, D_t> + ||D_t||^2/2) <= (mu'/2) (d_t^2 - d_{t+1}^2)``;
        ``mu' = 1`` (PGD): ``g <G_t, D_t> + ||D_t||^2/2 <= d_t g ||G_t|| + d_t^2/2``
        (comparing with ``u = P(x_t)``; ``d_t = d_Q(x_t) = 0`` for PGD), any ``G_t``, no L;
    (ii) full gradient, L known: ``f(x_{t+1}) <= f(x_t) + <grad f, D_t> + L/2 ||D_t||^2``
         with (i) inserted.

    ``d_t`` is the field ``dist_x``.
    """

    name = "prox_step_descent"
    statement = (
        "x' = argmin 1/2||u - (x - g G)||^2 + lam'/2 d_Q(u)^2  =>  g<G, D> + ||D||^2/2 <= lam'/2 (d_Q(x)^2 "
        "- d_Q(x')^2) every step; L known: f(x') <= f(x) - (1/(2g) - L/2)||D||^2 + lam'/(2g)(d^2 - d'^2)"
    )
    assumptions = []

    def bound(self, **_) -> float:
        return 0.0

    def check(self, trajectory, L=None, rtol=RTOL, atol=ATOL_DOT, **kw):
        """Parameters: ``L`` (default the problem's; (ii) is checked only when it is known and the
        gradient is full), tolerances. Reads ``sg_dot_D``, ``sgrad_norm2``, ``step_norm2``, ``dist_x``."""
        ctx = self.context(trajectory, L=L, **kw)
        T = ctx.T
        rtol, atol = _tols(ctx, rtol, atol)
        sgD, sg2 = field(trajectory, "sg_dot_D", T), field(trajectory, "sgrad_norm2", T)
        dx = field(trajectory, "dist_x", T + 1)
        have = _fields_present(trajectory, ("sg_dot_D", "sgrad_norm2", "dist_x"), T)
        if sgD is None or sg2 is None or dx is None:
            sgD, sg2, dx = _nan(T), _nan(T), np.full(T + 1, np.nan)
        g, mn, nd = ctx.lr[:-1], ctx.mu[1:], ctx.step_norm2
        d0, d1 = dx[:-1], dx[1:]
        gn = np.sqrt(np.maximum(sg2, 0.0))
        one = mn >= 1.0
        lhs1 = np.where(one, g * sgD + nd / 2, (1 - mn) * (g * sgD + nd / 2))
        rhs1 = np.where(one, d0 * g * gn + d0 * d0 / 2, mn / 2 * (d0 * d0 - d1 * d1))
        terms = np.abs(g * sgD) + nd / 2 + np.abs(rhs1) + np.where(one, 0.0, mn / 2 * (d0 * d0 + d1 * d1))
        info = set_info(ctx.meta)
        xs = _x_scale(ctx, info, T)
        tol = rtol * terms + atol * g * gn * np.nan_to_num(xs, nan=0.0)
        gap = lhs1 - rhs1
        eligible = (mn >= 0) & (mn <= 1) & (g > 0)
        det = {"L": ctx.L}
        use_L = ctx.L is not None and ctx.L_source in ("given", "problem") and ctx.deterministic
        if use_L:
            # (ii): f' - f <= <grad f, D> + L/2 ||D||^2 and g <grad f, D> <= rhs1/(1-mu') - ||D||^2/2
            L_ = ctx.L
            with np.errstate(divide="ignore", invalid="ignore"):
                lin = np.where(
                    one,
                    (d0 * g * gn + d0 * d0 / 2 - nd / 2) / g,
                    (mn / (1 - mn) * (d0 * d0 - d1 * d1) / 2 - nd / 2) / g,
                )
            rhs2 = ctx.f[:-1] + lin + L_ / 2 * nd
            gap2 = ctx.f[1:] - rhs2
            tol2 = 1e-10 * np.maximum(
                np.maximum(np.abs(ctx.f[:-1]), np.abs(ctx.f[1:])), np.abs(lin) + L_ * nd
            ) + _f_floor(ctx)
            fail2 = eligible & np.isfinite(gap2) & (gap2 > tol2)
            det.update(
                descent_checked=True,
                descent_failing_steps=int(fail2.sum()),
                max_descent_gap=float(np.nanmax(gap2)) if np.isfinite(gap2).any() else None,
            )
            gap = np.where(fail2, np.fmax(gap, tol + terms + 1.0), gap)
        else:
            det.update(descent_checked=False)
        plain = Assumption(
            "plain gradient step z = x - g G (no momentum, no weight decay)",
            lambda c: (
                c.meta.get("plain_sgd", True) is not False,
                f"momentum={c.meta.get('momentum')}, weight_decay={c.meta.get('weight_decay')}",
            ),
        )
        return self.per_step(
            ctx,
            eligible,
            gap,
            tol,
            np.where(terms > 0, terms, 1.0),
            det,
            extra_assumptions=[_method_in(PROX_METHODS, "x' = prox(x - g G)"), have, plain],
        )


def descent_terms(ctx, L, info=None) -> dict:
    r"""The per-step terms of Theorem II.4 (arrays of length T), for checks and figures.

    ``c_t = g (1 - mu') (1 - g L (1 - mu')/2)``, ``K_t`` (continuation), ``N_t`` (noise),
    ``B_t`` (:func:`pattern_gap_bound`), ``Ebar_t`` (:func:`flip_cost_bound`), the
    measured excess ``E_t = f(x_{t+1}) - f(x^s_{t+1})`` (NaN without ``f_stable``), and
    ``rhs_t = f(x_t) - c_t ||G_t||^2 + K_t + N_t + Ebar_t``.
    """
    tr, T = ctx.traj, ctx.T
    info = set_info(ctx.meta) if info is None else info
    g, mt, mn = ctx.lr[:-1], ctx.mu[:-1], ctx.mu[1:]
    dmu = mn - mt
    sg2 = field(tr, "sgrad_norm2", T)
    G2 = field(tr, "grad_norm2", T + 1)
    nz = field(tr, "noise_norm2", T)
    sgr = field(tr, "sg_dot_r", T)
    smax = field(tr, "scale_max", T + 1)
    sg2 = _nan(T) if sg2 is None else sg2
    G2 = np.full(T + 1, np.nan) if G2 is None else G2
    sgr = _nan(T) if sgr is None else sgr
    smax = np.full(T + 1, np.nan) if smax is None else smax
    if nz is None:
        nz = np.zeros(T) if ctx.deterministic else _nan(T)
    if ctx.deterministic:
        nz = np.where(np.isnan(nz), 0.0, nz)
    r = ctx.r_norm if ctx.r_norm is not None else np.full(T + 1, np.nan)
    gn, G, xi = np.sqrt(np.maximum(sg2, 0)), np.sqrt(np.maximum(G2[:-1], 0)), np.sqrt(np.maximum(nz, 0))
    c = g * (1 - mn) * (1 - g * L * (1 - mn) / 2)
    K = -dmu * sgr + L * np.abs(dmu) * g * gn * r[:-1] + 0.5 * L * dmu * dmu * r[:-1] ** 2
    N = xi * (g * gn + np.abs(dmu) * r[:-1])
    B = pattern_gap_bound(ctx.flips, smax[:-1], smax[1:], gn, g, r[1:], info)
    Eb = flip_cost_bound(B, mn, G, gn, g, dmu, r[:-1], L)
    fs = field(tr, "f_stable", T)
    E = ctx.f[1:] - fs if fs is not None else _nan(T)
    rhs = ctx.f[:-1] - c * sg2 + K + N + Eb
    return {
        "c": c,
        "K": K,
        "N": N,
        "B": B,
        "Ebar": Eb,
        "E": E,
        "rhs": rhs,
        "sgrad_norm2": sg2,
        "grad_norm2": G2[:-1],
        "dmu": dmu,
    }


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


class StationarityRate(TheoryResult):
    r"""``min_{t0 <= t < t1} ||grad f(x_t)||^2 <= (f(x_t0) - f_* + C) / (c (t1 - t0))`` (THEORY.md, Theorem II.7).

    Full gradients, ``mu_{t+1} <= mu_bar < 1`` and ``g_t L (2 - mu_{t+1}) <= 2`` on the window;
    ``c = min_t g_t (1 - mu_bar)(1 - g_t L/2)``, ``C = sum_t (K_t + Ebar_t)`` (a priori, Theorem II.4).
    Checked at every prefix ``t0 < s <= t1``; measured: ``max_s lhs_s / rhs_s``, bound 1. The
    measured log-log slope of ``min_{t<s} ||grad f||^2`` against s is reported beside the
    bound's (-1 while ``C`` is flat).
    """

    name = "stationarity_rate"
    statement = "mu <= mu_bar < 1, gL(2-mu) <= 2  =>  min_{t<T} ||grad f(x_t)||^2 <= (f_0 - f_* + C_T)/(c T)"
    assumptions = [A.LAZY, A.DETERMINISTIC, A.L_KNOWN, A.F_LOWER, A.NONEMPTY]

    def bound(self, f_t0=None, f_lower=None, C=0.0, c=None, steps=None, **_) -> float:
        """``(f_t0 - f_* + C)/(c steps)``."""
        return (f_t0 - f_lower + C) / (c * steps) if c and c > 0 and steps else math.inf

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
        rhs = (ctx.f[ctx.t0] - fl + C) / (c * s) if c > 0 else np.full(s.shape, np.inf)
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
        return self.finish(ctx, measured, 1.0, tolerance=rtol, extra_assumptions=[mu_ok, gl, fin, nonempty])


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
    nonzero eigenvalue of ``A^T A`` and ``f_*`` the unconstrained minimum. With Theorem II.4:
    ``e_{t+1} <= (1 - 2 m c_t) e_t + K_t + Ebar_t`` on every step (``e_t = f(x_t) - f_*``),
    and unrolled ``e_T <= prod_t (1 - 2 m c_t) e_0 + sum_t prod_{s>t} (1 - 2 m c_s)(K_t + Ebar_t)``.
    Measured: ``e_T``; bound: the unrolled right side. ``m_pl`` is an argument
    (:func:`pl_constant` computes it from ``A``).
    """

    name = "pl_rate"
    statement = "least squares, PL(m): f(x_{t+1}) - f_* <= (1 - 2 m c_t)(f(x_t) - f_*) + K_t + Ebar_t every step"
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
        rho = 1 - 2 * m * tm["c"]
        eta = tm["K"] + tm["Ebar"]
        step_ok = (mn >= 0) & (mn <= 1) & (g > 0) & ((mn == 0) | (g * Lv * (2 - mn) <= 2)) & (rho >= 0)
        gap = e[1:] - (rho * e[:-1] + eta)
        sizes = np.abs(ctx.f[1:]) + np.abs(ctx.f[:-1]) + np.abs(eta)
        tol = rtol * sizes + _f_floor(ctx)
        lsq = Assumption(
            "least-squares problem (PL with m = smallest nonzero eigenvalue of A^T A)",
            lambda c: (
                c.problem_name.startswith(("lsq", "least_squares")) or bool(c.meta.get("pl")),
                f"problem={c.problem_name!r}",
            ),
        )
        mg = Assumption("m_PL given (not estimated on the run)", lambda _: (m_pl is not None and m > 0, f"m_pl={m_pl}"))
        b = self.bound(e[0], rho, eta) if T > 0 and np.all(step_ok) else None
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
            measured=float(e[-1]),
            bound=b,
            tolerance=float(np.sum(tol)) + rtol * (abs(b) if b is not None else 0.0),
        )


class AOCFlipBound(_PerStep):
    r"""AOC cannot cover late flips (THEORY.md, Proposition II.9), binary sets, lazy methods.

    With ``mu_t = mu_{t+1} = mu``, a step that changes ``k >= 1`` signs and has
    ``c_t = (1 - g L/2 - mu delta_t)/g > 0`` satisfies
    ``||G_t|| > (L/2) mu l (a_t + a_{t+1}) sqrt(k) >= mu L l a_min sqrt(k)``
    (``a`` the smallest scale, ``G_t`` the gradient the step used; any L > 0).
    Measured per step: ``||G_t|| - (L/2) mu l (a_t + a_{t+1}) sqrt(k)`` must be positive.
    ``details`` carries the statistic the old "AOC fraction" reported: the fraction of flip
    steps with ``c_t > 0``, and how many flip steps had a gradient below the threshold
    (on those, ``c_t <= 0`` is forced whatever the step size).
    """

    name = "aoc_flip_bound"
    statement = "binary, mu fixed, k flips, c_t > 0  =>  ||G_t|| > mu L l a_min sqrt(k)"
    assumptions = [A.LAZY]
    relation = "<="

    def bound(self, mu=None, L=None, level=1.0, a_min=None, k=1, **_) -> float:
        """The threshold ``mu L l a_min sqrt(k)``."""
        return mu * L * level * a_min * math.sqrt(k)

    def check(self, trajectory, L=None, rtol=1e-9, **kw):
        """Parameters: ``L`` (the one ``c_t`` is computed with; default the problem's)."""
        ctx = self.context(trajectory, L=L, **kw)
        T = ctx.T
        info = set_info(ctx.meta)
        sg2 = field(trajectory, "sgrad_norm2", T)
        if sg2 is None:
            G2 = field(trajectory, "grad_norm2", T + 1)
            sg2 = G2[:-1] if G2 is not None and ctx.deterministic else _nan(T)
        Lv = ctx.L if ctx.L is not None else math.nan
        smin = ctx.scale_min if ctx.scale_min is not None else np.full(T + 1, np.nan)
        g, mt, mn = ctx.lr[:-1], ctx.mu[:-1], ctx.mu[1:]
        k = ctx.flips.astype(np.float64)
        thr = 0.5 * Lv * mn * info["l_max"] * (smin[:-1] + smin[1:]) * np.sqrt(k)
        ct = (1 - g * Lv / 2 - mn * ctx.delta) / g
        flip_fixed = (mt == mn) & (k > 0) & ctx.resolved & (mn > 0)
        eligible = flip_fixed & (ct > 0)
        gn = np.sqrt(np.maximum(sg2, 0))
        gap = thr - gn  # claim: gn > thr
        tol = rtol * thr
        below = flip_fixed & (gn <= thr)
        det = {
            "flip_steps_fixed_mu": int(flip_fixed.sum()),
            "fraction_of_flip_steps_with_c_positive": float(np.mean(ct[flip_fixed] > 0)) if flip_fixed.any() else None,
            "flip_steps_with_gradient_below_threshold": int(below.sum()),
            "fraction_below_threshold": float(below.sum() / flip_fixed.sum()) if flip_fixed.any() else None,
        }
        binary = Assumption(
            "binary-type set {+-l} (one positive level)", lambda c: (info["binary"], f"levels={info['levels']}")
        )
        lk = Assumption("L given", lambda c: (c.L is not None, f"L={c.L}"))
        return self.per_step(ctx, eligible, gap, tol, np.where(thr > 0, thr, 1.0), det, extra_assumptions=[binary, lk])


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
        return self.finish(ctx, measured, b, tolerance=1e-9 * (abs(b) if b else 1.0), extra_assumptions=extra)
