r"""
Adding a theorem check
======================

Every result of :doc:`../theory` is a class in ``theory/`` with a ``name``, a one-line
``statement``, its hypotheses as ``assumptions``, a ``bound`` and ``check(trajectory) -> Result``
(:class:`theory.base.TheoryResult`, :class:`theory.result.Result`). This tutorial writes a small
new one and runs it on real runs, including one with a seeded defect that it must catch.

The statement: **in Phase II the point the gradient is taken at is quantized**. With
:math:`x_t = y_t - \mu_t (y_t - P(y_t))` and :math:`\mu_t = 1`, :math:`x_t = P(y_t) \in Q`, so
:math:`d_Q(x_t) = 0` (Proposition 5.2 of the theory gives :math:`d_Q(x_t) = (1 - \mu_t)\,d_Q(y_t)`
for every :math:`\mu_t`). It is a *conformance* result: it checks the record against the
algorithm and says nothing about convergence. Its hypothesis: the run has a step with
:math:`\mu_t = 1`.
"""

# %%
# The result as code
# ------------------
# ``assumptions`` are :class:`theory.result.Assumption` objects: a name and a predicate of the
# :class:`theory.context.Context` (the run's fields as arrays) returning ``(ok, detail)``. ``finish``
# evaluates them and assembles the :class:`~theory.result.Result`; when one fails the status is
# ``"assumption-not-met"`` and the theory claims nothing.
import numpy as np

import brelax
from theory.base import TheoryResult
from theory.result import Assumption


def _has_phase2(ctx):
    n = int(np.sum(ctx.mu == 1.0))
    return n > 0, f"{n} step(s) with mu = 1"


class PhaseTwoQuantized(TheoryResult):
    name = "phase2_quantized"
    label = "Proposition 5.2, mu = 1"
    kind = "conformance"
    statement = "mu_t = 1  =>  x_t = P(y_t), so d_Q(x_t) = 0"
    assumptions = [Assumption("some step with mu = 1", _has_phase2)]
    relation = "<="

    def bound(self, **constants) -> float:
        return 0.0

    def check(self, trajectory, tol=1e-9, **kw):
        ctx = self.context(trajectory, **kw)
        dist_x = np.asarray(trajectory.dist_x, dtype=float)
        scale = max(1.0, float(np.nanmax(np.abs(trajectory.dist_y))))
        phase2 = np.flatnonzero(ctx.mu == 1.0)
        measured = float(np.max(dist_x[phase2])) if phase2.size else float("nan")
        return self.finish(ctx, measured, self.bound(), tolerance=tol * scale, details={"phase2_steps": phase2.size})


# %%
# Run it
# ------
# On a BinaryRelax run with a Phase II, on one without (the hypothesis fails, and the row says
# which), and on BinaryConnect (:math:`\mu = 1` on every step).
check = PhaseTwoQuantized()
prob = brelax.problems.least_squares(m=60, n=30, qset="ternary", seed=1)
common = dict(qset=brelax.ternary(), steps=120, lr=1 / prob.L, lam0=1.0, rho=1.05, seed=0)
runs = {
    "binaryrelax, Phase II from 90": brelax.optimize(prob, method="binaryrelax", phase2_start=90, **common),
    "binaryrelax, no Phase II": brelax.optimize(prob, method="binaryrelax", phase2_start=None, **common),
    "binaryconnect": brelax.optimize(prob, method="binaryconnect", **common),
}
for label, traj in runs.items():
    r = check.check(traj)
    failed = [f"{name}: {a['detail']}" for name, a in r.assumptions.items() if not a["ok"]]
    print(f"{label:32s} {r.status:20s} measured {r.measured:.2e}  bound {r.bound}  {failed or ''}")
    assert r.status in ("holds", "assumption-not-met")

# %%
# Can it fail?
# ------------
# A check that cannot fail is no evidence. Seed a defect: a record in which the Phase II points are
# not quite quantized (as a step rule that mixed in a little of y would give). The record now
# disagrees with the algorithm, and the result must say *violated*.
defective = runs["binaryrelax, Phase II from 90"]
broken = type("Broken", (), {})()
for field in ("f", "mu", "lr", "step_norm2", "aoc", "inner", "flips", "dist_y", "meta"):
    setattr(broken, field, getattr(defective, field))
mu = np.asarray(defective.mu)
broken.dist_x = np.where(mu == 1.0, 0.01 * np.asarray(defective.dist_y) + 1e-3, defective.dist_x)
r = check.check(broken)
print(f"seeded defect: {r.status}, measured {r.measured:.2e}")
assert r.status == "violated"

# %%
# Into the project
# ----------------
# To make it part of ``brelax verify`` (``CONTRIBUTING.md``, "How to add a theorem"):
#
# 1. state and prove it in ``theory/THEORY.md``;
# 2. put the class in a module of ``theory/`` and add it to ``theory.RESULTS``;
# 3. build its evidence in ``proofs_checks/check_<name>.py`` and list the module in
#    ``proofs_checks/cli.py`` (``MODULES``);
# 4. test it: it holds where it must, and a seeded defect makes it *violated*
#    (``tests/test_theory*.py``, ``tests/test_verify.py``).
