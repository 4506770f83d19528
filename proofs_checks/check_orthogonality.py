"""Evidence for ``cone_orthogonality`` (F1): free-scale sets, one scale per tensor and per group of 16."""

from __future__ import annotations

from theory import ConeOrthogonality

RESULTS = ("cone_orthogonality",)
SETS = ("binary", "ternary", "uniform:3", "uniform:4", "levels:1,3", "levels:0,1,3,7")


def run(suite, projectors=None):
    projectors = projectors or {}
    sets = SETS[:3] if suite.quick else SETS
    out = []
    for q in sets:
        for gs in (None, 16):
            proj = projectors.get(q)
            r = ConeOrthogonality().check(
                projector=proj,
                qset=q,
                n=64,
                trials=10 if suite.quick else 30,
                seed=suite.seed,
                group_size=gs,
                label=("exact (brelax)" if proj is None else None),
            )
            r.method += ", per tensor" if gs is None else f", groups of {gs}"
            out.append(r)
    return out
