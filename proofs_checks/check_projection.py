"""Evidence for ``projection_optimality``: the exact projection of every kind of set against enumeration."""

from __future__ import annotations

from theory import ProjectionOptimality

RESULTS = ("projection_optimality",)
SETS = ("binary", "ternary", "uniform:3", "levels:1,3", "levels:0,1,3,7", "binary@1", "ternary@0.5")


def run(suite, projectors=None):
    """One Result per set; ``projectors`` maps a set name to a replacement projector (tests)."""
    projectors = projectors or {}
    sets = SETS[:4] if suite.quick else SETS
    trials = 12 if suite.quick else 40
    out = []
    for q in sets:
        proj = projectors.get(q)
        out.append(
            ProjectionOptimality().check(
                projector=proj, qset=q, trials=trials, seed=suite.seed, label="exact (brelax)" if proj is None else None
            )
        )
    return out
