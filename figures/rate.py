r"""Figure 3: the O(1/T) rate of Theorem 1 **[R]**, measured against its constant.

For fixed mu and step g, Theorem 1 (MATH.md section 5, this project's
reconstruction) says: if AOC(d) holds for every ``t >= t0`` and
``c = (1 - g L/2 - mu d)/g > 0``, then

    (T - t0) min_{t0 <= t < T} ||D_t||^2  <=  sum_{t0 <= t < T} ||D_t||^2  <=  (f(x_t0) - f_lower)/c.

The figure draws both left-hand sides against ``T - t0`` (log-log) and the
constant as a dashed line of the same colour. ``d`` is the measured
``sup_{t >= t0} delta_t`` (so AOC(d) holds by construction) and ``t0`` is the
first step from which that ``d`` gives ``c > 0``; ``L = ||A||_2^2`` and
``f_lower`` (the unconstrained least-squares minimum) are exact. Steps whose
``||D_t||`` is below 1e-8 of the run's largest step have converged to machine
precision; their delta_t is round-off and is not used for ``d``.

The constant comes from :class:`theory.Theorem1Rate` when the ``theory``
package is importable, and is cross-checked against the formula above (they
must agree to 1e-12); otherwise the formula alone is used and the data says so.

Instance: planted least squares with m/n = 1.5 (noiseless), lr = 1/L, fixed
mu (no Phase II): GD (mu = 0), BinaryRelax at lam = 0.3, 1, 3, and BC (mu = 1).

Data: ``rate.json`` (per run: params, t0, d, c, bound, and the two curves).
"""

from __future__ import annotations

import math

import numpy as np

from . import _lsq
from .aoc import resolved
from .style import figure_maker, legend_below, new_figure, script_main

NAME = "rate"
PROBLEM = {"m": 60}  # overrides of _lsq.PROBLEM: overdetermined, so the fixed-mu runs settle early

RUNS = {
    "GD (mu = 0)": ("gd", {}),
    "BR lam = 0.3 (mu = 0.23)": ("binaryrelax", {"lam0": 0.3, "rho": 1.0, "phase2_start": None}),
    "BR lam = 1 (mu = 0.5)": ("binaryrelax", {"lam0": 1.0, "rho": 1.0, "phase2_start": None}),
    "BR lam = 3 (mu = 0.75)": ("binaryrelax", {"lam0": 3.0, "rho": 1.0, "phase2_start": None}),
    "BC (mu = 1)": ("binaryconnect", {}),
}
COLORS = ["#7f7f7f", "#ff7f0e", "#d62728", "#8c564b", "#1f77b4"]


def theorem1_constant(L, f_lower, lr, mu, d, f_t0) -> tuple:
    """``((f(x_t0) - f_lower)/c, source)`` with ``c = (1 - lr L/2 - mu d)/lr``; inf when ``c <= 0``.

    Uses :class:`theory.Theorem1Rate` when importable and checks it against the formula.

    Raises
    ------
    RuntimeError
        If the theory package and the formula disagree (one of them is wrong).
    """
    c = (1.0 - lr * L / 2.0 - mu * d) / lr
    mine = (f_t0 - f_lower) / c if c > 0 else math.inf
    try:
        from theory import Theorem1Rate
    except ImportError:
        return mine, "formula of MATH.md section 5 (theory package not importable)"
    theirs = float(Theorem1Rate().bound(L=L, f_lower=f_lower, lr=lr, delta=d, mu=mu, f_t0=f_t0))
    if not (theirs == mine or abs(theirs - mine) <= 1e-12 * max(abs(mine), 1.0)):
        raise RuntimeError(f"theory.Theorem1Rate.bound = {theirs!r} but the formula gives {mine!r}")
    return theirs, "theory.Theorem1Rate.bound (cross-checked with the formula)"


def first_valid_t0(aoc, step_norm2, mu, lr, L) -> tuple:
    """The first ``t0`` with ``c > 0`` for ``d = sup_{t >= t0} delta_t`` (resolved steps); ``(t0, d)``.

    Returns ``(None, None)`` when no ``t0`` works.
    """
    a = np.where(resolved(step_norm2), np.asarray(aoc, dtype=float), np.nan)
    T = len(a)
    # suffix sup, NaN-aware: sup over an empty (or all-NaN) tail is -inf, meaning no constraint
    tail = np.where(np.isfinite(a), a, -np.inf)
    sup = np.maximum.accumulate(tail[::-1])[::-1]
    for t0 in range(T):
        d = float(sup[t0]) if math.isfinite(sup[t0]) else 0.0
        if (1.0 - lr * L / 2.0 - mu * d) / lr > 0:
            return t0, d
    return None, None


def compute(quick: bool = False, seed: int = 0) -> dict:
    problem = _lsq.make_problem(seed, **PROBLEM)
    y0 = _lsq.start_point(problem, seed)
    data = {"seed": seed, "quick": quick, "problem": dict(_lsq.PROBLEM, **PROBLEM), "L": problem.L,
            "f_lower": problem.f_lower, "runs": {}}
    for label, (method, overrides) in RUNS.items():
        params = _lsq.run_params(problem, method, quick, **overrides)
        traj = _lsq.run(problem, y0, params)
        mu, lr = float(traj.mu[0]), float(params["lr"])
        t0, d = first_valid_t0(traj.aoc, traj.step_norm2, mu, lr, problem.L)
        entry = {"problem": dict(PROBLEM), "optimize": params, "mu": mu, "t0": t0, "d": d}
        if t0 is not None:
            bound, source = theorem1_constant(problem.L, problem.f_lower, lr, mu, d, float(traj.f[t0]))
            d2 = np.asarray(traj.step_norm2[t0:], dtype=float)
            k = np.arange(1, len(d2) + 1)
            entry.update(c=(1.0 - lr * problem.L / 2.0 - mu * d) / lr, bound=bound, bound_source=source,
                         f_t0=float(traj.f[t0]), T_minus_t0=k.tolist(),
                         rate=(k * np.minimum.accumulate(d2)).tolist(), partial_sum=np.cumsum(d2).tolist())
            entry["ratio_max"] = float(max(np.max(entry["rate"]), entry["partial_sum"][-1]) / bound)
        data["runs"][label] = entry
    return data


def plot(data: dict):
    fig, ax = new_figure(figsize=(6.4, 4.8))
    lows = []
    for color, (label, run) in zip(COLORS, data["runs"].items()):
        if run["t0"] is None:
            ax.plot([], [], color=color, label=f"{label}: no t0 with c > 0")
            continue
        k = np.asarray(run["T_minus_t0"])
        ax.plot(k, run["rate"], color=color, label=f"{label}, t0 = {run['t0']}, d = {run['d']:.2f}")
        ax.plot(k, run["partial_sum"], color=color, ls=":", lw=1.1)
        ax.axhline(run["bound"], color=color, ls="--", lw=1.0)
        lows.append(run["bound"])
    ax.set_xscale("log")
    ax.set_yscale("log")
    if lows:
        ax.set_ylim(min(lows) * 1e-4, max(lows) * 3)
    ax.plot([], [], color="k", label=r"$(T-t_0)\,\min_{t_0\leq t<T}\|D_t\|^2$")
    ax.plot([], [], color="k", ls=":", label=r"$\sum_{t_0\leq t<T}\|D_t\|^2$")
    ax.plot([], [], color="k", ls="--", label=r"Theorem 1: $(f(x_{t_0})-f_{\rm lower})/c$")
    ax.set_xlabel(r"$T - t_0$ (steps)")
    ax.set_ylabel(r"squared step length")
    legend_below(fig, ax, ncol=2, fontsize=7.5)
    p = data["problem"]
    ax.set_title(f"Theorem 1 rate [R], fixed mu: least squares m={p['m']}, n={p['n']}, lr=1/L", fontsize=10)
    return fig


make = figure_maker(compute, plot, NAME)


def main(argv=None) -> int:
    return script_main(make, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
