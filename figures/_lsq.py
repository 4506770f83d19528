"""The planted least-squares runs shared by the trajectory figures (objective, aoc, rate, lemma_b).

One place fixes the instance and the hyper-parameters, so the four figures
show the same runs and their JSON files say exactly how to redo them:
``params`` holds the problem's arguments, the starting point's seed and every
keyword of :func:`brelax.optimize`; :func:`rerun` replays one of them.
"""

from __future__ import annotations

import numpy as np

import brelax
from brelax.problems import least_squares

#: The instance: b = A x_star + noise e with x_star in {±1}^n, A Gaussian (m/n = 0.8, noiseless: f_lower = 0).
PROBLEM = {"m": 32, "n": 40, "qset": "binary", "noise": 0.0}


def steps_for(quick: bool) -> tuple[int, int]:
    """``(steps, phase2_start)``: Phase II (mu = 1) for the last third of the run."""
    return (90, 60) if quick else (300, 200)


def make_problem(seed: int, **overrides):
    kw = dict(PROBLEM, **overrides)
    return least_squares(kw["m"], kw["n"], kw["qset"], kw["noise"], seed=seed)


def start_point(problem, seed: int) -> np.ndarray:
    """The common y0 of every method: ``problem.init`` on ``default_rng(seed + 1)``."""
    return problem.init(np.random.default_rng(seed + 1))


def run_params(problem, method: str, quick: bool, **overrides) -> dict:
    """The keywords of :func:`brelax.optimize` for ``method`` (JSON-friendly; lr = 1/L by default)."""
    steps, p2 = steps_for(quick)
    kw = dict(
        method=method,
        qset=PROBLEM["qset"],
        steps=steps,
        lr=1.0 / problem.L,
        lam0=0.1,
        rho=1.03,
        phase2_start=p2 if method == "binaryrelax" else None,
    )
    kw.update(overrides)
    return kw


def run(problem, y0, params: dict, mu_schedule=None):
    """``brelax.optimize`` with ``params`` (a :func:`run_params` dict) from ``y0``."""
    return brelax.optimize(problem, y0=y0, mu_schedule=mu_schedule, **params)


def rerun(entry: dict, seed: int, mu_schedule=None):
    """Replay a run from the ``{"problem": ..., "optimize": ...}`` record a figure saved."""
    problem = make_problem(seed, **entry["problem"])
    return run(problem, start_point(problem, seed), entry["optimize"], mu_schedule)


def series(traj, fields) -> dict:
    """The chosen trajectory arrays as lists (NaN stays NaN; the JSON writer turns it into null)."""
    return {k: np.asarray(getattr(traj, k), dtype=float).tolist() for k in fields}
