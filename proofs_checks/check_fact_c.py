"""Evidence for ``fact_c``: delta_t <= 0 on every pattern-stable fixed-mu step (minibatch runs too)."""

from __future__ import annotations

from theory import FactC

from .common import over_runs
from .suite import LAZY_SPECS

RESULTS = ("fact_c",)


def run(suite, projectors=None):
    return over_runs(FactC(), suite.runs(LAZY_SPECS))
