"""Evidence for ``lemma_b``: the exact one-step inequality with the problem's L (an estimate for the MLP)."""

from __future__ import annotations

from theory import LemmaB

from .common import over_runs
from .suite import LAZY_SPECS

RESULTS = ("lemma_b",)


def run(suite, projectors=None):
    return over_runs(LemmaB(), suite.runs(LAZY_SPECS))
