"""The embedded default problems and runs that every check draws its evidence from.

Problems: planted least squares (``brelax.problems.least_squares``, n = 50,
m/n in {0.6, 1, 2}, noise in {0, 0.1}), multinomial logistic regression and a
one-hidden-layer ReLU MLP on scikit-learn's digits. Runs: BinaryRelax with
continuation and Phase II, BinaryRelax with ``lam`` fixed, BinaryConnect, GD,
PGD and ProxQuant, plus minibatch runs of BinaryRelax and BinaryConnect (one
drawn with replacement), and BinaryRelax under a MultiStep and a cosine learning-rate
schedule (:data:`LR_SCHEDULES`: a step rule that applies ``g_t`` one step late is
invisible at a constant step size). Every run is made once (cached) with ``record_every=1``
so Lemma A can read the iterates. ``quick`` keeps a subset.

Step sizes are ``1/L`` where ``L`` is known (so ``1 - gL/2 = 1/2``; one
variant uses ``1/(2L)``) and 0.5 for the MLP. Everything is deterministic
given ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import brelax
from brelax import problems as P
from brelax import schedules

#: The learning-rate schedules a RunSpec can name (``RunSpec.lr_schedule``): ``(g, steps) -> (t -> g_t)`` from
#: the run's base step ``g`` (the problem's times ``lr_scale``). Both only shrink ``g``, so ``g_t L <= g L``.
LR_SCHEDULES = {
    # MultiStep: g, then g/10 from half the steps on, g/100 from three quarters on
    "multistep": lambda g, steps: schedules.multistep(g, (steps // 2, (3 * steps) // 4), gamma=0.1),
    # cosine from g down to g/20 at the last step (not to 0: every step moves)
    "cosine": lambda g, steps: schedules.cosine(g, steps, lr_min=g / 20),
}


@dataclass(frozen=True)
class RunSpec:
    """One way of running a method; ``label`` is what the report shows."""

    label: str
    method: str
    lam0: float = 1.0
    rho: float = 1.02
    phase2: float | None = 0.8  # fraction of the steps, or None: never
    batch_size: int | None = None
    qset: str | None = None  # None: the problem's own set
    lr_scale: float = 1.0  # multiplies the problem's step size
    sampling: str | None = None  # minibatch sampling (None: the driver's default, per-epoch reshuffling)
    lr_schedule: str | None = None  # a name in LR_SCHEDULES (None: the constant step)
    momentum: float = 0.0  # torch's SGD heavy-ball momentum on the anchor (0: plain gradient steps)
    weight_decay: float = 0.0

    def __post_init__(self):
        if self.lr_schedule is not None and self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {sorted(LR_SCHEDULES)} or None, got {self.lr_schedule!r}")

    def lr(self, base: float, steps: int):
        """The step of this run: ``base * lr_scale``, or the schedule ``lr_schedule`` names built from it."""
        g = base * self.lr_scale
        return g if self.lr_schedule is None else LR_SCHEDULES[self.lr_schedule](g, steps)

    def kwargs(self, steps):
        p2 = None if self.phase2 is None else round(self.phase2 * steps)
        kw = dict(method=self.method, lam0=self.lam0, rho=self.rho, phase2_start=p2, batch_size=self.batch_size)
        if self.sampling is not None:
            kw["sampling"] = self.sampling
        if self.momentum or self.weight_decay:
            kw.update(momentum=self.momentum, weight_decay=self.weight_decay)
        return kw


BR = RunSpec("binaryrelax", "binaryrelax")
BR_RELAX_FIRST = RunSpec("binaryrelax(lam0=0.05)", "binaryrelax", lam0=0.05, rho=1.03)
BR_FIXED = RunSpec("binaryrelax(fixed mu=1/2)", "binaryrelax", lam0=1.0, rho=1.0, phase2=None)
BC = RunSpec("binaryconnect", "binaryconnect", phase2=None)
GD = RunSpec("gd", "gd", phase2=None)
#: Step 1/(2L): Theorem II.6 (ii)'s descent coefficient 1/(2g) - L/2 is positive only for g L < 1.
PGD = RunSpec("pgd(g=1/(2L))", "pgd", phase2=None, lr_scale=0.5)
PROX = RunSpec("proxquant(g=1/(2L))", "proxquant", lr_scale=0.5)
BR_SGD = RunSpec("binaryrelax(batch 64)", "binaryrelax", batch_size=64)
BC_SGD = RunSpec("binaryconnect(batch 64)", "binaryconnect", phase2=None, batch_size=64)
#: Fixed mu = 1/2, minibatches drawn with replacement: the setting of the high-probability SGD result.
BR_SGD_WR = RunSpec(
    "binaryrelax(mu=1/2, batch 64 with replacement)",
    "binaryrelax",
    lam0=1.0,
    rho=1.0,
    phase2=None,
    batch_size=64,
    sampling="with_replacement",
)
BR_HALF_LR = RunSpec("binaryrelax(g=1/(2L))", "binaryrelax", lr_scale=0.5)
#: The step size varies: g_t from a MultiStep and a cosine schedule (:data:`LR_SCHEDULES`).
BR_MULTISTEP = RunSpec("binaryrelax(lr MultiStep x0.1 at T/2, 3T/4)", "binaryrelax", lr_schedule="multistep")
BR_COSINE = RunSpec("binaryrelax(lr cosine to g/20)", "binaryrelax", lr_schedule="cosine")
#: Heavy ball ("hb", Theorem II.12): momentum 0.9 and weight decay 1e-3, inside kappa > 0 (g L = 0.15 < 2 (1 - 0.9));
#: the minibatch one at g L = 0.08, since the batch objective's curvature exceeds L (about 1.8 L on the lsq problem).
BR_HB = RunSpec("binaryrelax(hb 0.9)", "binaryrelax", lr_scale=0.15, momentum=0.9, weight_decay=1e-3)
BR_HB_SGD = RunSpec(
    "binaryrelax(hb 0.9, batch 64)",
    "binaryrelax",
    lr_scale=0.08,
    momentum=0.9,
    weight_decay=1e-3,
    batch_size=64,
)
#: The runs with a momentum buffer (heavy_ball's evidence).
HEAVY_BALL_SPECS = (BR_HB, BR_HB_SGD)

#: The lazy methods (gradient at x applied to y): the ones Lemmas A-B and the theorems are about.
LAZY_SPECS = (BR, BR_RELAX_FIRST, BR_HALF_LR, BR_FIXED, BC, GD, BR_SGD, BC_SGD, BR_SGD_WR, BR_MULTISTEP, BR_COSINE)
#: The runs whose step size follows a schedule.
SCHEDULE_SPECS = (BR_MULTISTEP, BR_COSINE)
#: The BinaryRelax variants with continuation (mu increasing, then Phase II).
CONTINUATION_SPECS = (BR, BR_RELAX_FIRST, BR_HALF_LR, BR_SGD)


@dataclass
class ProblemSpec:
    key: str
    build: object  # () -> problem
    qset: str
    steps: int
    lr: float | None  # None: 1/L
    specs: tuple
    kind: str = "lsq"
    _problem: object = field(default=None, repr=False)

    def problem(self):
        if self._problem is None:
            self._problem = self.build()
        return self._problem

    def step_size(self):
        return self.lr if self.lr is not None else 1.0 / self.problem().L


def default_problems(quick: bool, seed: int) -> list:
    """The problems and which runs each gets."""
    every = (BR, BR_RELAX_FIRST, BR_HALF_LR, BR_FIXED, BC, GD, PGD, PROX, BR_SGD, BC_SGD, BR_SGD_WR) + SCHEDULE_SPECS
    every += HEAVY_BALL_SPECS
    core = (BR, BR_FIXED, BC) if quick else (BR, BR_RELAX_FIRST, BR_HALF_LR, BR_FIXED, BC)
    out = []
    lsq = [(100, 0.0), (50, 0.1)] if quick else [(100, 0.0), (50, 0.0), (30, 0.0), (100, 0.1), (50, 0.1), (30, 0.1)]
    for i, (m, noise) in enumerate(lsq):
        specs = every if i == 0 else core
        out.append(
            ProblemSpec(
                f"lsq(m={m},n=50,noise={noise:g})",
                _lsq(m, 50, "binary", noise, seed),
                "binary",
                250 if quick else 400,
                None,
                specs,
            )
        )
    if not quick:
        out.append(
            ProblemSpec("lsq-ternary(m=100,n=50)", _lsq(100, 50, "ternary", 0.0, seed), "ternary", 400, None, (BR, BC))
        )
    steps = 80 if quick else 200
    logistic = (BR,) if quick else (BR, BR_FIXED, BC, GD, BR_SGD, BC_SGD, BR_SGD_WR, BR_HB) + SCHEDULE_SPECS
    out.append(
        ProblemSpec(
            f"digits_logistic(seed={seed})",
            lambda: P.digits_logistic(seed=seed),
            "binary",
            steps,
            None,
            logistic,
            kind="logistic",
        )
    )
    out.append(
        ProblemSpec(
            f"digits_mlp(32,relu,seed={seed})",
            lambda: P.digits_mlp(hidden=(32,), seed=seed),
            "binary",
            60 if quick else 150,
            0.5,
            (BR,) if quick else (BR, BC),
            kind="mlp",
        )
    )
    return out


def _lsq(m, n, qset, noise, seed):
    return lambda: P.least_squares(m, n, qset, noise=noise, seed=seed)


class Suite:
    """Problems plus a cache of their runs.

    Parameters
    ----------
    quick : bool
    seed : int
    problems : list of ProblemSpec or None (the defaults)
    optimize : callable, default :func:`brelax.optimize` (tests inject broken drivers here)
    """

    #: The calibration run of a spec uses the run's seed plus this (same problem, another start and sampler).
    CALIBRATION_OFFSET = 1000

    def __init__(self, quick: bool = False, seed: int = 0, problems=None, optimize=None):
        self.quick, self.seed = bool(quick), int(seed)
        self.problems = list(default_problems(self.quick, self.seed) if problems is None else problems)
        self.optimize = brelax.optimize if optimize is None else optimize
        self._runs = {}

    def all_runs(self):
        """Every (problem spec, run spec) pair of the suite."""
        return [(p, s) for p in self.problems for s in p.specs]

    def run(self, pspec: ProblemSpec, spec: RunSpec, calibration: bool = False):
        """The trajectory of ``spec`` on ``pspec`` (made once).

        With ``calibration=True``: the same run from another seed (another starting point and, for
        minibatch runs, another sampler) on the same problem. Constants that a bound needs and the
        theory does not give (d, kappa, R, a local L, sigma^2) are estimated on it, never on the
        run they are checked on.
        """
        seed = self.seed + (self.CALIBRATION_OFFSET if calibration else 0)
        key = (pspec.key, spec, seed)
        if key not in self._runs:
            prob = pspec.problem()
            kw = spec.kwargs(pspec.steps)
            self._runs[key] = self.optimize(
                prob,
                qset=spec.qset or pspec.qset,
                steps=pspec.steps,
                lr=spec.lr(pspec.step_size(), pspec.steps),
                seed=seed,
                record_every=1,
                **kw,
            )
        return self._runs[key]

    def calibration(self, pspec: ProblemSpec, spec: RunSpec):
        """The calibration run of ``spec`` on ``pspec`` (see :meth:`run`)."""
        return self.run(pspec, spec, calibration=True)

    def made(self) -> list:
        """``{"key", "problem", "method", "steps"}`` of every checked (non-calibration) run made so far."""
        out = []
        for p, s in self.all_runs():
            traj = self._runs.get((p.key, s, self.seed))
            if traj is not None:
                out.append({"key": run_key(p, s), "problem": p.key, "method": s.label, "steps": len(traj.step_norm2)})
        return out

    def runs(self, specs=None, kinds=None):
        """``[(problem, trajectory, pspec, spec)]`` for the runs whose spec is in ``specs``."""
        out = []
        for p, s in self.all_runs():
            if (specs is None or s in specs) and (kinds is None or p.kind in kinds):
                out.append((p.problem(), self.run(p, s), p, s))
        return out


def run_key(pspec, spec) -> str:
    """The name of one trajectory of the suite (what coverage is counted per)."""
    return f"{pspec.key} | {spec.label}"


def label(result, pspec, spec, window=None):
    """Put the suite's names on a Result (the problem's key, the run's label, the window, ``details["run"]``)."""
    result.problem = pspec.key
    result.method = spec.label if window is None else f"{spec.label}, {window}"
    result.details["run"] = run_key(pspec, spec)
    return result
