"""Evidence for the rates: ``stationarity_rate`` (fixed-mu and Phase I windows) and ``pl_rate`` (least squares).

Windows are fixed by the schedule: from step 0 to the switch to mu = 1 (the whole run where mu
never reaches 1). ``m_PL`` is a property of the problem (the smallest nonzero eigenvalue of
A^T A), computed from A, not from a run.
"""

from __future__ import annotations

from theory import PLRate, StationarityRate, pl_constant

from .common import over_runs
from .suite import BR, BR_FIXED, BR_HALF_LR, BR_RELAX_FIRST, GD, LAZY_SPECS, label

RESULTS = ("stationarity_rate", "pl_rate")


def run(suite, projectors=None):
    out = over_runs(StationarityRate(), suite.runs((BR, BR_RELAX_FIRST, BR_HALF_LR, BR_FIXED, GD)))
    for prob, traj, pspec, spec in suite.runs(LAZY_SPECS, kinds=("lsq",)):
        r = PLRate().check(traj, m_pl=pl_constant(prob.A))
        r.details["window"] = "whole run"
        r.details["m_pl_source"] = "smallest nonzero eigenvalue of A^T A (the problem's, not fitted)"
        out.append(label(r, pspec, spec))
    return out
