r"""Figure 2: the AOC ratio delta_t along BinaryRelax runs, for several lam schedules.

``delta_t = <r_t - r_{t+1}, D_t> / ||D_t||^2`` (THEORY.md section 8 **[R]**), with
``r_t = y_t - P(y_t)`` and ``D_t = x_{t+1} - x_t``. (a) delta_t on a symlog
axis; the steps where the quantization pattern changes (sign flips) are the
filled markers. Fact C: with mu fixed, delta_t <= 0 on every pattern-stable
step. (b) ``mu_{t+1} delta_t``, the coefficient of Lemma B's AOC term, against
Theorem 1's threshold ``1 - lr L / 2``: Theorem 1 (fixed mu) needs
``mu delta < 1 - lr L/2`` on every step after t0. Where mu grows, the extra
cross term of Lemma B (Theorem 2) carries the change of mu, so panel (b) is
the fixed-mu condition only. Unresolved steps (the one definition of the theory,
:func:`theory.resolution.resolved`: ``||D_t||`` below ``RESOLUTION`` times the run's
largest ``||D_s||`` or ``||r_s||``, where delta_t is round-off) are not drawn.

Schedules: lam fixed (rho = 1) at two values, geometric lam (lam0 = 0.1,
rho = 1.03 per step) and a linear ramp of mu from 0 to 1
(:func:`brelax.schedules.linear_mu`); every run switches to Phase II (mu = 1)
at the same step. Same instance and start as figure 1.

Data: ``aoc.json`` (params of every run, and ``aoc``, ``flips``, ``mu`` per run).
"""

from __future__ import annotations

import numpy as np

from brelax.schedules import linear_mu
from theory.resolution import resolved as _resolved

from . import _lsq
from .style import CYCLE, figure_maker, legend_below, new_figure, script_main, symlog_y

NAME = "aoc"


def resolved(step_norm2, r_norm=None) -> np.ndarray:
    """Where delta_t is a meaningful number: :func:`theory.resolution.resolved` (one definition for all)."""
    return _resolved(step_norm2, r_norm)


def schedules(quick: bool) -> dict:
    """label -> (optimize overrides, linear-mu ramp length or None)."""
    _, p2 = _lsq.steps_for(quick)
    return {
        "lam = 0.3 fixed": ({"lam0": 0.3, "rho": 1.0}, None),
        "lam = 3 fixed": ({"lam0": 3.0, "rho": 1.0}, None),
        "lam0 = 0.1, rho = 1.03": ({"lam0": 0.1, "rho": 1.03}, None),
        "linear mu ramp 0 -> 1": ({}, p2),
    }


def mu_schedule_of(entry: dict):
    """The ``mu_schedule`` a saved run used (None: the geometric lam schedule of its params)."""
    ramp = entry.get("linear_mu_ramp")
    return None if ramp is None else linear_mu(ramp)


def compute(quick: bool = False, seed: int = 0) -> dict:
    problem = _lsq.make_problem(seed)
    y0 = _lsq.start_point(problem, seed)
    threshold = 1.0 - _lsq.run_params(problem, "binaryrelax", quick)["lr"] * problem.L / 2.0
    data = {"seed": seed, "quick": quick, "problem": dict(_lsq.PROBLEM), "L": problem.L, "runs": {}}
    for label, (overrides, ramp) in schedules(quick).items():
        params = _lsq.run_params(problem, "binaryrelax", quick, **overrides)
        entry = {"problem": {}, "optimize": params, "linear_mu_ramp": ramp}
        traj = _lsq.run(problem, y0, params, mu_schedule_of(entry))
        entry.update(_lsq.series(traj, ("aoc", "flips", "mu", "step_norm2", "r_norm")))
        entry["recovered"] = traj.meta["recovered"]
        aoc, flips = traj.aoc, traj.flips
        stable = (flips == 0) & np.isfinite(aoc) & resolved(traj.step_norm2, traj.r_norm)
        fixed_mu = np.asarray(traj.mu[1:]) == np.asarray(traj.mu[:-1])
        entry["summary"] = {
            "flip_steps": int(np.count_nonzero(flips)),
            "max_delta_flip_steps": _nanmax(aoc[flips > 0]),
            "max_delta_stable_fixed_mu": _nanmax(aoc[stable & fixed_mu]),
            "steps_mu_delta_above_threshold": int(np.nansum(traj.mu[1:] * aoc > threshold)),
        }
        data["runs"][label] = entry
    data["threshold"] = threshold
    data["phase2_start"] = params["phase2_start"]
    return data


def _nanmax(a):
    a = np.asarray(a, dtype=float)
    a = a[np.isfinite(a)]
    return float(a.max()) if a.size else None


def plot(data: dict):
    fig, (ax_d, ax_m) = new_figure(2, 1, figsize=(6.4, 6.0), sharex=True)
    for color, (label, run) in zip(CYCLE, data["runs"].items(), strict=False):
        aoc = np.where(resolved(run["step_norm2"], run["r_norm"]), np.asarray(run["aoc"], dtype=float), np.nan)
        flips = np.asarray(run["flips"])
        mu_next = np.asarray(run["mu"], dtype=float)[1:]
        t = np.arange(len(aoc))
        flip = flips > 0
        ax_d.plot(t, aoc, color=color, lw=0.9, alpha=0.85)
        ax_d.plot(t[flip], aoc[flip], "o", ms=3, color=color)
        ax_m.plot(t, mu_next * aoc, color=color, lw=0.9, alpha=0.85, label=label)
        ax_m.plot(t[flip], (mu_next * aoc)[flip], "o", ms=3, color=color)
    for ax in (ax_d, ax_m):
        symlog_y(ax, 1e-2, every=1)
        ax.axvline(data["phase2_start"], color="k", ls=":", lw=1)
        ax.axhline(0.0, color="k", lw=0.5)
    ax_m.axhline(data["threshold"], color="k", ls="--", lw=1.2, label=f"threshold 1 - lr L/2 = {data['threshold']:.2f}")
    ax_d.text(data["phase2_start"], 0.03, " Phase II (mu = 1)", transform=ax_d.get_xaxis_transform(), fontsize=7.5)
    ax_d.set_ylabel(r"AOC ratio $\delta_t$ (symlog)")
    ax_m.set_ylabel(r"$\mu_{t+1}\,\delta_t$ (symlog)")
    ax_m.set_xlabel("step t")
    ax_d.set_title(r"(a) $\delta_t=\langle r_t-r_{t+1},D_t\rangle/\|D_t\|^2$; dots: steps that flip signs")
    ax_m.set_title("(b) Theorem 1's condition (fixed mu): below the dashed line")
    ax_m.plot([], [], "o", ms=3, color="k", label="step with sign flips")
    legend_below(fig, ax_m, ncol=3, fontsize=7.5)
    fig.suptitle("AOC along BinaryRelax on planted least squares (binary, lr = 1/L) [R]", fontsize=10)
    return fig


make = figure_maker(compute, plot, NAME)


def main(argv=None) -> int:
    return script_main(make, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
