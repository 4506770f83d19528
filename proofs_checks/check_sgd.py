"""Evidence for ``sgd_high_probability``: minibatch runs, the whole-run bound with probability 1 - delta.

``Xi`` (the largest minibatch noise) and ``Gamma`` (the largest full-gradient norm) are
measured on the calibration run (same problem and spec, another seed, hence another
sampler) on the same fixed-mu window and tested as assumptions on the run checked. The
result needs with-replacement sampling: the run drawn that way is checked, and the runs that
reshuffle per epoch report it as the assumption not met (the pathwise every-step results
cover those steps).
"""

from __future__ import annotations

from theory.sgd import SGDHighProbability

from .common import calibrated
from .suite import BC_SGD, BR_SGD, BR_SGD_WR

RESULTS = ("sgd_high_probability",)


def run(suite, projectors=None):
    return calibrated(SGDHighProbability(), suite, suite.runs((BR_SGD, BC_SGD, BR_SGD_WR)), ("Xi", "Gamma"))
