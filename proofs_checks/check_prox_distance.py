"""Evidence for ``prox_distance``: d_Q(x_t) = (1 - mu_t) d_Q(y_t) along every run of every method."""

from __future__ import annotations

from theory import ProxDistance

from .common import over_runs

RESULTS = ("prox_distance",)


def run(suite, projectors=None):
    return over_runs(ProxDistance(), suite.runs())
