"""Evidence for ``prox_lemma``: the prox of (lam/2) d_Q^2 for nonconvex Q, against brute force."""

from __future__ import annotations

from theory import ProxLemma

RESULTS = ("prox_lemma",)


def run(suite, projectors=None):
    projectors = projectors or {}
    sets = ("binary", "ternary") if suite.quick else ("binary", "ternary", "levels:1,3", "uniform:3")
    lams = (1.0,) if suite.quick else (0.1, 1.0, 10.0)
    return [
        ProxLemma().check(
            projector=projectors.get(q),
            qset=q,
            lam=lam,
            trials=6 if suite.quick else 16,
            seed=suite.seed,
            label="exact (brelax)" if q not in projectors else None,
        )
        for q in sets
        for lam in lams
    ]
