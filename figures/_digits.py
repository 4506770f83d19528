"""The digits MLP runs shared by figures 8 (weight histograms) and 9 (accuracy and flips).

One MLP on scikit-learn's 8x8 digits (:func:`brelax.problems.digits_mlp`,
one hidden layer of 32 relu units, both weight matrices quantized with one
scale per output row, biases float), trained full-batch from one starting
point by every method. The step size is 0.5, times 0.2 at 60% and again at
85% of the run (MultiStep); BinaryRelax uses lam0 = 1, rho = 1.02 per step and
Phase II for the last quarter. Runs are cached per process, so ``brelax
figures`` trains each one once for both figures.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

import brelax
from brelax import schedules
from brelax.problems import digits_mlp

HIDDEN = (32,)
LR = {"lr0": 0.5, "milestones": (0.6, 0.85), "gamma": 0.2}
RUNS = {
    "float (GD)": ("gd", "binary"),
    "BC binary": ("binaryconnect", "binary"),
    "BR binary": ("binaryrelax", "binary"),
    "BC ternary": ("binaryconnect", "ternary"),
    "BR ternary": ("binaryrelax", "ternary"),
}
COLORS = {
    "float (GD)": "#7f7f7f",
    "BC binary": "#1f77b4",
    "BR binary": "#d62728",
    "BC ternary": "#17becf",
    "BR ternary": "#ff7f0e",
}


def steps_for(quick: bool) -> tuple[int, int]:
    """``(steps, record_every)``: about 40 recorded iterates per run (20 in quick mode)."""
    return (60, 3) if quick else (400, 10)


def lr_schedule(steps: int):
    return schedules.multistep(LR["lr0"], [int(m * steps) for m in LR["milestones"]], LR["gamma"])


@lru_cache(maxsize=4)
def problem(seed: int):
    return digits_mlp(hidden=HIDDEN, seed=seed)


def params(method: str, qset: str, quick: bool) -> dict:
    """The keywords of :func:`brelax.optimize` (the lr schedule is described by :data:`LR`)."""
    steps, every = steps_for(quick)
    return dict(
        method=method,
        qset=qset,
        steps=steps,
        lam0=1.0,
        rho=1.02,
        phase2_start=int(0.75 * steps) if method == "binaryrelax" else None,
        record_every=every,
    )


@lru_cache(maxsize=8)
def run(method: str, qset: str, quick: bool, seed: int):
    """One cached training run from ``problem(seed).init(default_rng(seed + 1))``."""
    prob = problem(seed)
    y0 = prob.init(np.random.default_rng(seed + 1))
    kw = params(method, qset, quick)
    return brelax.optimize(prob, y0=y0, lr=lr_schedule(kw["steps"]), seed=seed, **kw)


def evaluated_point(traj, i: int):
    """The point whose accuracy is reported at recorded iterate ``i``: x_t for float, P(y_t) otherwise."""
    return traj.iterates["x"][i] if traj.meta["method"] == "gd" else traj.iterates["p"][i]


def test_accuracy_curve(traj, seed: int) -> tuple[list, list]:
    prob = problem(seed)
    t = [int(v) for v in traj.iterates["t"]]
    return t, [float(prob.test_accuracy(evaluated_point(traj, i))) for i in range(len(t))]
