"""Evidence for ``moreau_envelope``: ``brelax.moreau_envelope`` against the brute-force value."""

from __future__ import annotations

from theory import MoreauEnvelope

RESULTS = ("moreau_envelope",)


def run(suite, projectors=None):
    sets = ("binary", "ternary") if suite.quick else ("binary", "ternary", "uniform:3", "levels:1,3")
    return [MoreauEnvelope().check(qset=q, trials=6 if suite.quick else 16, seed=suite.seed) for q in sets]
