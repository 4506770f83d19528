"""The convergence theory of BinaryRelax as executable checks.

**This is the brelax project's reconstruction** (``theory/THEORY.md``), made
without the full text of Yin, Zhang, Lyu, Osher, Qi and Xin (2018), whose
abstract says convergence is proved "under an approximate orthogonality
condition". No constant here is quoted from the paper; every constant is a
parameter of :meth:`bound`.

Each result is an object with ``name``, ``statement``, ``assumptions`` (named
predicates), ``bound(**constants)`` and ``check(evidence, **kw) -> Result``.
Projection and prox results take a projector (default: the exact one);
trajectory results take a :class:`brelax.Trajectory` (or any object with its
fields).
"""

from .lemmas import AOCFraction, FactC, LemmaA, LemmaB
from .projection import ConeOrthogonality, ProjectionOptimality
from .prox import MoreauEnvelope, ProxDistance, ProxLemma
from .result import STATUSES, Assumption, Result, summarize
from .theorems import Corollary3, Theorem1Descent, Theorem1Rate, Theorem1Sum, Theorem2

#: Every result, by name, in the order of THEORY.md.
RESULTS = {cls.name: cls for cls in (
    ProjectionOptimality, ConeOrthogonality, ProxLemma, MoreauEnvelope, ProxDistance, LemmaA, LemmaB, AOCFraction,
    FactC, Theorem1Descent, Theorem1Sum, Theorem1Rate, Theorem2, Corollary3)}

#: The results that take a trajectory (the others take a projector).
TRAJECTORY_RESULTS = ("prox_distance", "lemma_a", "lemma_b", "aoc", "fact_c", "theorem1_descent", "theorem1_sum",
                      "theorem1_rate", "theorem2", "corollary3")

__all__ = ["RESULTS", "TRAJECTORY_RESULTS", "Result", "Assumption", "STATUSES", "summarize",
           "ProjectionOptimality", "ConeOrthogonality", "ProxLemma", "MoreauEnvelope", "ProxDistance", "LemmaA", "LemmaB",
           "AOCFraction", "FactC", "Theorem1Descent", "Theorem1Sum", "Theorem1Rate", "Theorem2", "Corollary3"]
