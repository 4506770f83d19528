"""Evidence for ``aoc_flip_bound``: AOC cannot cover late flips (binary sets, lazy methods, mu fixed).

On a fixed-mu step that flips k signs, ``c_t > 0`` forces ``||G_t|| > mu L l a_min sqrt(k)``.
The details carry the statistic the old "AOC fraction" row reported (the fraction of flip
steps with ``c_t > 0``). L is the problem's; for the MLP a calibration-run estimate.
"""

from __future__ import annotations

from theory import AOCFlipBound

from .common import over_runs, with_L_estimate
from .suite import BC, BR_FIXED, CONTINUATION_SPECS

RESULTS = ("aoc_flip_bound",)


def run(suite, projectors=None):
    runs = suite.runs(CONTINUATION_SPECS + (BR_FIXED, BC))
    known = [r for r in runs if getattr(r[0], "L", None) is not None]
    unknown = [r for r in runs if getattr(r[0], "L", None) is None]
    return over_runs(AOCFlipBound(), known) + with_L_estimate(AOCFlipBound(), suite, unknown)
