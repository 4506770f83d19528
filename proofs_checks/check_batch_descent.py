"""Evidence for ``batch_descent``: Theorem II.4 on each step's own minibatch, for the minibatch runs.

The NumPy driver records ``f_B(x_t)``, ``f_B(x_{t+1})`` and the secant of ``grad f_B`` on every
minibatch step; ``L_B`` is estimated on the first 20% of those steps (fixed in advance, inside the
check) and tested as a hypothesis on the rest. ``brelax train --check-every K`` records the same on
every K-th step of a torch run (checked by ``brelax verify RUN``).
"""

from __future__ import annotations

from theory import BatchDescent

from .common import over_runs
from .suite import BC_SGD, BR_SGD, BR_SGD_WR

RESULTS = ("batch_descent",)


def run(suite, projectors=None):
    return over_runs(BatchDescent(), suite.runs((BR_SGD, BC_SGD, BR_SGD_WR)))
