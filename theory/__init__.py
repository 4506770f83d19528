"""The convergence theory of BinaryRelax as executable checks.

**This is the brelax project's reconstruction and extension** (``theory/THEORY.md``), made
without the full text of Yin, Zhang, Lyu, Osher, Qi and Xin (2018), whose abstract says
convergence is proved "under an approximate orthogonality condition". Part II of THEORY.md
(every-step results, rates, SGD) is this project's own. No constant is quoted from the
paper; every constant is an argument.

API (for proofs_checks/ and figures/)
-------------------------------------
Every result is a class with ``name``, ``label`` (its THEORY.md label), ``kind``
(``conformance``, ``guarantee`` or ``projector``), ``statement``, ``assumptions``,
``check(evidence, **constants) -> Result`` and, where the check compares with one formula,
``bound`` (:mod:`theory.result`). A Result has ``measured``, ``bound``, ``status`` (one of
:data:`STATUSES`), ``assumptions``, ``details``, ``covered`` (half-open step intervals
``[[start, stop), ...]`` where the result applied and held: guarantee steps for a guarantee,
conforming steps for a conformance result) and, for guarantees, ``certified``. Trajectory
results read the fields of :class:`brelax.Trajectory` (NaN where not recorded); a missing
field is an assumption not met ("diagnostic fields recorded"), never a pass.

Every-step results (one module each: :mod:`theory.monotonicity`, :mod:`theory.proxstep`,
:mod:`theory.flipdescent`, :mod:`theory.rates`, :mod:`theory.aocflip`, :mod:`theory.sgd`):

* ``ProjectionMonotonicity`` (lazy: binaryrelax, binaryconnect, gd; any gradient; no constant):
  reads mu, lr, sg_dot_D, sg_dot_r, sgrad_norm2, aoc, inner, cross, step_norm2, r_norm, scale_max, meta
  levels/n_quantized; also checks the step identity (catches a learning rate 1% off).
* ``ProxStepDescent`` (pgd, proxquant; any gradient; ``L`` optional for the f-descent part):
  reads mu, lr, sg_dot_D, sgrad_norm2, step_norm2, dist_x, f.
* ``FlipDescent`` (lazy; any gradient; needs ``L`` = the problem's or given; pass ``L_source="estimate: ..."``
  with an estimated L and it reports "L known" as not met instead of risking a false violation): reads f, mu, lr,
  grad_norm2, sgrad_norm2, noise_norm2, sg_dot_r, r_norm, flips, scale_max, meta levels/row_min;
  and, when recorded, f_stable, stable_g_dot_D, stable_norm2, pattern_gap (measured forms).
  ``descent_terms(Context(traj), L)`` gives the per-step arrays (c, K, N, B, Ebar, E) for figures.
* ``PLRate`` (least squares, full gradient): constants ``m_pl`` (:func:`pl_constant` of the
  problem's A; required) and ``L``; per-step PL recursion plus the unrolled bound.
* ``AOCFlipBound`` (binary, lazy, fixed mu; constant ``L``): Proposition II.9 (replaces the
  old AOC fraction; the fraction is in ``details``). ``AOCFraction`` is an alias.

``EpochBound`` (Theorem II.10 summed over each epoch: the full loss at epoch ends against the
expectation bound, verdict by its high-probability form; ``steps_per_epoch`` or the step log's
``epoch`` column, ``sigma^2`` from the earlier epochs' noise records; ``covered``: the steps of the
guarantee epochs). Whole-run results (``covered`` empty): ``SGDHighProbability`` (Theorem II.11: constants ``Xi``,
``Gamma`` from a calibration run -- ``estimate_constants`` gives ``noise_max``; ``delta``; needs
``meta["sampling"] == "with_replacement"``, so reshuffled runs report it as not met),
``StationarityRate`` (``mu_bar``, window ``t0, t1``;
log-log slopes in details), ``Theorem1`` (needs ``d``; descent, sum and rate in one row; its
per-step descent fills ``covered``; ``Theorem1Descent/Sum/Rate`` are aliases), ``Theorem2`` (needs ``kappa`` or
``d``, and ``R``), ``Corollary3``. Constants that must be estimated come from
:func:`theory.theorems.estimate_constants` on a *calibration* trajectory (another seed or a
burn-in window), never on the checked steps; a missing constant fails the assumption
"constant given", it is not fitted. Problem-free results (projector/prox checks) take a
projector. :func:`theory.resolution.resolved` is the one definition of a resolved step;
:func:`theory.lemmas.lemma_b_slack` computes Lemma B's slack.
"""

from .aocflip import AOCFlipBound
from .batchdescent import BatchDescent
from .epochbound import EpochBound
from .flipcost import descent_terms
from .flipdescent import FlipDescent
from .heavyball import HeavyBall
from .lemmas import FactC, LemmaA, LemmaB, lemma_b_slack
from .monotonicity import ProjectionMonotonicity
from .projection import ConeOrthogonality, ProjectionOptimality
from .prox import MoreauEnvelope, ProxDistance, ProxLemma
from .proxstep import ProxStepDescent
from .rates import PLRate, StationarityRate, pl_constant
from .result import KINDS, STATUSES, Assumption, Result, covered_steps, intervals, summarize
from .sgd import SGDHighProbability
from .theorems import Corollary3, Theorem1, Theorem1Descent, Theorem1Rate, Theorem1Sum, Theorem2, estimate_constants

#: The old "AOC fraction" was a statistic that could not fail; its place is taken by a claim.
AOCFraction = AOCFlipBound

#: Every result, by name, in the order of THEORY.md.
RESULTS = {
    cls.name: cls
    for cls in (
        ProjectionOptimality,
        ConeOrthogonality,
        ProxLemma,
        MoreauEnvelope,
        ProxDistance,
        LemmaA,
        LemmaB,
        FactC,
        Theorem1,
        Theorem2,
        Corollary3,
        ProjectionMonotonicity,
        ProxStepDescent,
        FlipDescent,
        BatchDescent,
        HeavyBall,
        StationarityRate,
        PLRate,
        AOCFlipBound,
        SGDHighProbability,
        EpochBound,
    )
}

#: The results that take a trajectory (the others take a projector), from each result's ``kind``.
TRAJECTORY_RESULTS = tuple(n for n, c in RESULTS.items() if c.kind != "projector")

#: The trajectory results with a per-step inequality (the ones that fill ``covered`` step by step).
EVERY_STEP_RESULTS = tuple(n for n, c in RESULTS.items() if c.stepwise)

#: Results by class: "conformance", "guarantee", "projector".
RESULTS_BY_KIND = {k: tuple(n for n, c in RESULTS.items() if c.kind == k) for k in KINDS}


#: THEORY.md results that have no check of their own, and the check that exercises them (or why none can).
#: With the labels of :data:`RESULTS`, every result of THEORY.md Parts I and II is here (a test enforces it).
WIRED_ELSEWHERE = {
    "Proposition 2.1": "projection_optimality (Q closed, P exists: every projection is compared with enumeration)",
    "Lemma 3.1": "projection_optimality (the signs of the exact projection)",
    "Lemma 3.2": "projection_optimality (the best scale of a pattern)",
    "Proposition 9.2": "fact_c (pattern-stable steps are the steps Proposition 9.1 is checked on)",
    "Theorem II.1": "projection_monotonicity (Theorem II.2 is Theorem II.1 along the run)",
    "Lemma II.3": "flip_descent (pattern_gap <= B_t, E_t <= Ebar_t and E_t <= Ehat_t on every step)",
    "Corollary II.5": "flip_descent (the whole-run sum is its measured/bound)",
}


def proof_of(label: str) -> str:
    """``"coq"`` when THEORY.md's result ``label`` is machine-checked in ``theory/coq/``, else ``"hand"``."""
    try:
        from .proofs import PROOFS
    except ImportError:  # the Coq index is not there: nothing is claimed as machine-checked
        return "hand"
    p = PROOFS.get(label)
    return "coq" if p is not None and p.kind == "coq" else "hand"


__all__ = [
    "EVERY_STEP_RESULTS",
    "KINDS",
    "RESULTS",
    "RESULTS_BY_KIND",
    "STATUSES",
    "TRAJECTORY_RESULTS",
    "WIRED_ELSEWHERE",
    "AOCFlipBound",
    "AOCFraction",
    "Assumption",
    "BatchDescent",
    "ConeOrthogonality",
    "Corollary3",
    "EpochBound",
    "FactC",
    "FlipDescent",
    "LemmaA",
    "LemmaB",
    "MoreauEnvelope",
    "PLRate",
    "ProjectionMonotonicity",
    "ProjectionOptimality",
    "ProxDistance",
    "ProxLemma",
    "ProxStepDescent",
    "Result",
    "SGDHighProbability",
    "StationarityRate",
    "Theorem1",
    "Theorem1Descent",
    "Theorem1Rate",
    "Theorem1Sum",
    "Theorem2",
    "covered_steps",
    "descent_terms",
    "estimate_constants",
    "intervals",
    "lemma_b_slack",
    "pl_constant",
    "proof_of",
    "summarize",
]
