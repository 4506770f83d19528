"""Evidence for Theorem 2: the continuation bound over whole BinaryRelax runs (mu increasing, then 1).

``kappa`` (the largest ``mu_(t+1) delta_t``) and ``R`` (the largest ``||r_t||``) are
measured on the calibration run (same problem and spec, another seed) and tested as
assumptions on the run checked.
"""

from __future__ import annotations

from theory import Theorem2

from .common import calibrated
from .suite import CONTINUATION_SPECS

RESULTS = ("theorem2",)


def run(suite, projectors=None):
    return calibrated(Theorem2(), suite, suite.runs(CONTINUATION_SPECS), ("kappa", "R"))
