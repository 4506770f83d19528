"""Evidence for ``heavy_ball``: Theorem II.12 on the runs with a heavy-ball momentum buffer and weight decay.

``optimize(momentum=0.9, weight_decay=1e-3)`` is torch's SGD recursion (pinned to ``QuantOptimizer`` by a
test): full-batch runs check the inequality on f with the problem's L (a failure is a violation); the
minibatch run checks it on each step's own batch with ``L_B`` estimated on the first 20% of the steps.
``brelax train`` runs (``--check-every K``) are checked the same way by ``brelax verify RUN``.
"""

from __future__ import annotations

from theory import HeavyBall

from .common import over_runs
from .suite import HEAVY_BALL_SPECS

RESULTS = ("heavy_ball",)


def run(suite, projectors=None):
    return over_runs(HeavyBall(), suite.runs(HEAVY_BALL_SPECS))
