"""Evidence for Theorem 1 (one claim: per-step descent, hence the sum and the O(1/T) rate) on the fixed-mu window.

The window is fixed by the schedule: Phase II (``mu = 1``) for BinaryRelax with
continuation, the whole run for fixed-mu BinaryRelax, BinaryConnect and GD. The AOC
constant ``d`` is measured on the calibration run (same problem and spec, another
seed) on the same window, then tested as an assumption on the run checked: nothing is
fitted on the checked steps, so the bound can fail.
"""

from __future__ import annotations

from theory import Theorem1

from .common import calibrated
from .suite import BC, BR_FIXED, CONTINUATION_SPECS, GD

RESULTS = ("theorem1",)


def run(suite, projectors=None):
    return calibrated(Theorem1(), suite, suite.runs(CONTINUATION_SPECS + (BR_FIXED, BC, GD)), ("d",))
