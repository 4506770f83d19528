"""Evidence for Theorem 2: the continuation bound over whole BinaryRelax runs (mu increasing, then 1)."""

from __future__ import annotations

from theory import Theorem2

from .common import with_earliest
from .suite import CONTINUATION_SPECS

RESULTS = ("theorem2",)


def run(suite, projectors=None):
    return with_earliest(Theorem2(), suite.runs(CONTINUATION_SPECS))
