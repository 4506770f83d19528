"""Evidence for ``aoc``: how often AOC holds with c_t > 0, and delta_t on stable and flipping steps by mu."""

from __future__ import annotations

from theory import AOCFraction

from .common import over_runs
from .suite import BC, BR_FIXED, CONTINUATION_SPECS

RESULTS = ("aoc",)


def run(suite, projectors=None):
    return over_runs(AOCFraction(), suite.runs(CONTINUATION_SPECS + (BR_FIXED, BC)), window=False)
