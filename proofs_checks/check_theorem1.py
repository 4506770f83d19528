"""Evidence for Theorem 1: descent, the sum bound and the O(1/T) rate on windows of fixed mu.

BinaryRelax with continuation is checked on Phase II (``mu = 1``); fixed-mu
BinaryRelax, BinaryConnect and GD on the whole run. Where ``c <= 0`` on the
default window (a flip with ``mu delta_t >= 1 - gL/2``), the earliest window
on which the theorem applies is reported as well.
"""

from __future__ import annotations

from theory import Theorem1Descent, Theorem1Rate, Theorem1Sum

from .common import with_earliest
from .suite import BC, BR_FIXED, CONTINUATION_SPECS, GD

RESULTS = ("theorem1_descent", "theorem1_sum", "theorem1_rate")


def run(suite, projectors=None):
    runs = suite.runs(CONTINUATION_SPECS + (BR_FIXED, BC, GD))
    out = []
    for cls in (Theorem1Descent, Theorem1Sum, Theorem1Rate):
        out += with_earliest(cls(), runs)
    return out
