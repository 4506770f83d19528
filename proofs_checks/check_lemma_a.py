"""Evidence for ``lemma_a``: the iterate identity along every lazy run, grad f(x_t) recomputed."""

from __future__ import annotations

from theory import LemmaA

from .suite import LAZY_SPECS, label

RESULTS = ("lemma_a",)


def run(suite, projectors=None):
    return [label(LemmaA().check(traj, problem=prob), p, s) for prob, traj, p, s in suite.runs(LAZY_SPECS)]
