r"""Figure 3: the stationarity rate **[R]** (this project's Theorem II.7), measured against its bound.

For lazy methods with full gradients, ``mu_{t+1} <= mu_bar < 1`` and
``g L (2 - mu_{t+1}) <= 2`` on the window, THEORY.md (Theorem II.7, this project's
result, flips included) gives for every prefix ``s``

    min_{t < s} ||grad f(x_t)||^2  <=  (f(x_0) - f_* + C_s) / (c s),

with ``c = min_t g (1 - mu_bar)(1 - g L/2)`` and ``C_s`` the a-priori continuation and
flip costs summed over the first ``s`` steps. The figure draws the measured left side
(solid) and the bound (dashed, same colour) against ``s`` on log-log axes, with the
least-squares log-log slope of each over the last decade of ``s`` in the legend. Every
bound value is :class:`theory.StationarityRate`'s ``final_bound`` for the prefix window
``[0, s)``; nothing is fitted to the run (``L`` and ``f_*`` are the problem's).

Instance: planted least squares with m/n = 1.5 (noiseless), lr = 1/L: GD (mu = 0),
BinaryRelax at fixed lam = 0.3, 1, 3, and BinaryRelax with continuation (window: Phase I,
up to the switch to mu = 1). BinaryConnect (mu = 1) is outside the theorem (mu_bar < 1).

Data: ``rate.json`` (per run: params, the s grid, both curves, slopes, the check's status).
"""

from __future__ import annotations

import numpy as np

from theory import StationarityRate

from . import _lsq
from .style import figure_maker, legend_below, new_figure, script_main

NAME = "rate"
PROBLEM = {"m": 60}  # overrides of _lsq.PROBLEM: overdetermined, so the runs settle early

RUNS = {
    "GD (mu = 0)": ("gd", {}),
    "BR lam = 0.3 (mu = 0.23)": ("binaryrelax", {"lam0": 0.3, "rho": 1.0, "phase2_start": None}),
    "BR lam = 1 (mu = 0.5)": ("binaryrelax", {"lam0": 1.0, "rho": 1.0, "phase2_start": None}),
    "BR lam = 3 (mu = 0.75)": ("binaryrelax", {"lam0": 3.0, "rho": 1.0, "phase2_start": None}),
    "BR continuation, Phase I": ("binaryrelax", {}),
}
COLORS = ["#7f7f7f", "#ff7f0e", "#d62728", "#8c564b", "#1f77b4"]
#: Points of the s grid (log-spaced) at which the bound is evaluated.
GRID = 40


def s_grid(t1: int, points: int = GRID) -> list:
    """Distinct integers 1..t1, log-spaced, always including t1."""
    if t1 < 1:
        return []
    g = np.unique(np.round(np.geomspace(1, t1, points)).astype(int))
    return [int(v) for v in g]


def loglog_slope(s, v):
    """Least-squares slope of log v against log s over the last decade of s (None if fewer than 3 points)."""
    s, v = np.asarray(s, dtype=float), np.asarray(v, dtype=float)
    if s.size == 0:
        return None
    sel = (s >= s[-1] / 10) & np.isfinite(v) & (v > 0)
    if sel.sum() < 3:
        return None
    return float(np.polyfit(np.log(s[sel]), np.log(v[sel]), 1)[0])


def curves(traj) -> dict:
    """The measured ``min_{t<s} ||grad f(x_t)||^2`` and the theorem's bound at every s of the grid."""
    result = StationarityRate().check(traj)
    t1 = int(result.details["t1"])
    grid = s_grid(t1)
    G2 = np.asarray(traj.grad_norm2, dtype=float)
    running_min = np.minimum.accumulate(G2[:t1]) if t1 else np.zeros(0)
    measured = [float(running_min[s - 1]) for s in grid]
    bound = [float(StationarityRate().check(traj, t1=s).details["final_bound"]) for s in grid]
    return {
        "status": result.status,
        "t1": t1,
        "c": result.details["c"],
        "C_T": result.details["C_T"],
        "mu_bar": result.details["mu_bar"],
        "s": grid,
        "min_grad_norm2": measured,
        "bound": bound,
        "slope_measured": loglog_slope(grid, measured),
        "slope_bound": loglog_slope(grid, bound),
        "max_ratio": result.measured,
    }


def compute(quick: bool = False, seed: int = 0) -> dict:
    problem = _lsq.make_problem(seed, **PROBLEM)
    y0 = _lsq.start_point(problem, seed)
    data = {
        "seed": seed,
        "quick": quick,
        "problem": dict(_lsq.PROBLEM, **PROBLEM),
        "L": problem.L,
        "f_lower": problem.f_lower,
        "runs": {},
    }
    for label, (method, overrides) in RUNS.items():
        params = _lsq.run_params(problem, method, quick, **overrides)
        traj = _lsq.run(problem, y0, params)
        data["runs"][label] = {"problem": dict(PROBLEM), "optimize": params, **curves(traj)}
    return data


def plot(data: dict):
    fig, ax = new_figure(figsize=(6.4, 4.8))
    for color, (label, run) in zip(COLORS, data["runs"].items(), strict=False):
        sm, sb = run["slope_measured"], run["slope_bound"]
        mark = "" if run["status"] == "holds" else f" [{run['status']}]"
        ax.plot(
            run["s"],
            run["min_grad_norm2"],
            color=color,
            label=f"{label}: slope {sm:.2f} (bound {sb:.2f}){mark}"
            if sm is not None and sb is not None
            else f"{label}{mark}",
        )
        ax.plot(run["s"], run["bound"], color=color, ls="--", lw=1.0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.plot([], [], color="k", label=r"measured $\min_{t<s}\|\nabla f(x_t)\|^2$")
    ax.plot([], [], color="k", ls="--", label=r"bound $(f(x_0)-f_*+C_s)/(c\,s)$ [R]")
    ax.set_xlabel("s (steps)")
    ax.set_ylabel(r"$\min_{t<s}\|\nabla f(x_t)\|^2$")
    legend_below(fig, ax, ncol=2, fontsize=7)
    p = data["problem"]
    every = all(r["status"] == "holds" for r in data["runs"].values())
    ax.set_title(
        f"Stationarity rate, this project's Theorem II.7 [R]{' (holds on every run)' if every else ''}\n"
        f"least squares m={p['m']}, n={p['n']}, lr=1/L; slopes fitted over the last decade",
        fontsize=9,
    )
    return fig


make = figure_maker(compute, plot, NAME)


def main(argv=None) -> int:
    return script_main(make, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
