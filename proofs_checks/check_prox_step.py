"""Evidence for ``prox_step_descent``: PGD and ProxQuant, every step of the whole run.

Part (i) needs no constant; part (ii) uses the problem's exact L where it is known and
the gradient is full (it is skipped, and says so, otherwise).
"""

from __future__ import annotations

from theory import ProxStepDescent

from .common import over_runs
from .suite import PGD, PROX

RESULTS = ("prox_step_descent",)


def run(suite, projectors=None):
    return over_runs(ProxStepDescent(), suite.runs((PGD, PROX)))
