"""Evidence for ``prox_distance``: d_Q(x_t) = (1 - mu_t) d_Q(y_t) along every run of every method.

``d_Q`` comes from the theory's independent reference projection, per scale block of the
problem's layout (so the problem is passed: one scale per row on the digits models).
"""

from __future__ import annotations

from theory import ProxDistance

from .suite import label

RESULTS = ("prox_distance",)


def run(suite, projectors=None):
    out = []
    for prob, traj, pspec, spec in suite.runs():
        r = label(ProxDistance().check(traj, problem=prob), pspec, spec)
        r.details["window"] = "recorded iterates of the whole run"
        out.append(r)
    return out
