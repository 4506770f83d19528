"""Evidence for ``flip_descent``: every-step descent with the a-priori flip cost, whole runs, all lazy methods.

The bound uses the problem's exact L (least squares, logistic regression). Where L is
unknown (the MLP) a local estimate from the calibration run (same problem and spec,
another seed) is used and the row is labelled ``[L estimate]``; it is never estimated
on the run it is checked on.
"""

from __future__ import annotations

from theory import FlipDescent

from .common import over_runs, with_L_estimate
from .suite import LAZY_SPECS

RESULTS = ("flip_descent",)


def run(suite, projectors=None):
    runs = suite.runs(LAZY_SPECS)
    known = [r for r in runs if getattr(r[0], "L", None) is not None]
    unknown = [r for r in runs if getattr(r[0], "L", None) is None]
    return over_runs(FlipDescent(), known) + with_L_estimate(FlipDescent(), suite, unknown)
