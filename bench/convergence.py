"""Convergence per cost on planted least squares: steps and time to the planted objective.

HOOK on code others own: :func:`brelax.optimize` and
:func:`brelax.problems.least_squares`. When they do not import, the section
reports ``not available: <error>``.

The instance is ``b = A x* + 0.1 e`` with ``x*`` in the binary set, ``n``
unknowns and ``m = 2n`` rows. A method reaches the target at the first step
``t`` with ``f(P(y_t)) <= 1.01 f(x*)`` (its quantized point; for PGD that is
``x_t``). Every method runs the same number of steps with the driver's
defaults; plain gradient descent (float) is the per-step cost baseline, and
the time to target is a ratio to BinaryRelax's.
"""

from __future__ import annotations

import time

import numpy as np

from .timing import row, section, unavailable

TITLE = "Convergence per cost: planted least squares, m/n = 2"
METHODS = (("BR", "binaryrelax"), ("BC", "binaryconnect"), ("PGD", "pgd"), ("ProxQuant", "proxquant"))


def convergence(cfg, rng) -> dict:
    try:
        from brelax import optimize
        from brelax.problems import least_squares
    except ImportError as err:
        return unavailable(TITLE, err)
    n = cfg.lsq_n
    problem = least_squares(2 * n, n, "binary", noise=0.1, seed=0)
    target = 1.01 * problem.f(problem.x_star)

    def run(method):
        t0 = time.perf_counter()
        traj = optimize(problem, method=method, qset="binary", steps=cfg.lsq_steps, seed=0)
        return traj, time.perf_counter() - t0

    _, t_gd = run("gd")
    rows, notes, reached = [], [], {}
    for label, method in METHODS:
        traj, seconds = run(method)
        hit = np.flatnonzero(np.asarray(traj.f_quant) <= target)
        per_step = seconds / cfg.lsq_steps
        rows.append(
            row(
                f"{label}: time per step / gradient descent's",
                per_step / (t_gd / cfg.lsq_steps),
                "x",
                "plain GD step (same driver)",
            )
        )
        if hit.size:
            steps = int(hit[0])
            reached[label] = steps * per_step
            rows.append(row(f"{label}: steps to f(P(y)) within 1% of f(x*)", steps, "steps", None))
        else:
            notes.append(
                f"{label}: did not reach 1% of f(x*) in {cfg.lsq_steps} steps "
                f"(best f(P(y))/f(x*) = {float(np.min(traj.f_quant)) / (target / 1.01):.3f})."
            )
    if "BR" in reached:
        for label, sec in reached.items():
            if label != "BR" and reached["BR"] > 0:
                rows.append(row(f"{label}: time to target / BR's", sec / reached["BR"], "x", "BR time to target"))
    notes.insert(
        0, f"n = {n}, m = {2 * n}, noise 0.1, {cfg.lsq_steps} steps, driver defaults (lr 0.1, lam0 1, rho 1.02)."
    )
    return section(TITLE, rows, notes)
