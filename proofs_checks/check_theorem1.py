"""Evidence for Theorem 1: descent, the sum bound and the O(1/T) rate on the a-priori window of fixed mu.

BinaryRelax with continuation is checked on Phase II (``mu = 1``); fixed-mu
BinaryRelax, BinaryConnect and GD on the whole run. The AOC constant ``d`` is
estimated on the calibration run (same problem and spec, another seed) and
then tested as an assumption on the run checked: nothing is fitted on the
checked steps, so the bound can fail.
"""

from __future__ import annotations

from theory import Theorem1Descent, Theorem1Rate, Theorem1Sum

from .common import calibrated
from .suite import BC, BR_FIXED, CONTINUATION_SPECS, GD

RESULTS = ("theorem1_descent", "theorem1_sum", "theorem1_rate")


def run(suite, projectors=None):
    runs = suite.runs(CONTINUATION_SPECS + (BR_FIXED, BC, GD))
    out = []
    for cls in (Theorem1Descent, Theorem1Sum, Theorem1Rate):
        out += calibrated(cls(), suite, runs, {"d": "d"})
    return out
