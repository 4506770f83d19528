"""Evidence for Corollary 3: sign flips after t0 against (f(x_t0) - f_*)/(k c a_min^2)."""

from __future__ import annotations

from theory import Corollary3

from .common import with_earliest
from .suite import BC, BR_FIXED, CONTINUATION_SPECS

RESULTS = ("corollary3",)


def run(suite, projectors=None):
    return with_earliest(Corollary3(), suite.runs(CONTINUATION_SPECS[:3] + (BR_FIXED, BC)))
