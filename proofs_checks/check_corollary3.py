"""Evidence for Corollary 3: sign flips after t0 against S/(4 mu_lo^2 l^2 a_min^2).

The constants of the theorem it rests on (``d``; ``kappa`` and ``R``) are measured on the
calibration run (same problem and spec, another seed) on the same window.
"""

from __future__ import annotations

from theory import Corollary3

from .common import calibrated
from .suite import BC, BR_FIXED, CONTINUATION_SPECS

RESULTS = ("corollary3",)


def run(suite, projectors=None):
    return calibrated(Corollary3(), suite, suite.runs(CONTINUATION_SPECS[:3] + (BR_FIXED, BC)), ("d", "kappa", "R"))
