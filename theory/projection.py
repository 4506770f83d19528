r"""Projection optimality (THEORY.md section 3) and cone orthogonality F1 (section 4), as checks.

Both take a *projector* (default: the set's exact ``Q.project``) so that a
heuristic passed in its place, e.g. TWN for the ternary set, is caught.
The evidence is a fixed battery of inputs (Gaussian, heavy-tailed, with tied
magnitudes, with zeros, near the set, rescaled) drawn from ``seed``.
"""

from __future__ import annotations

import numpy as np

from . import brute
from .base import TheoryResult
from .result import Assumption, evaluate, make_result


def test_inputs(n: int, trials: int, seed: int) -> np.ndarray:
    """``(k, n)`` inputs that stress a projection: generic, heavy tails, ties, zeros, near-Q, scales."""
    rng = np.random.default_rng(seed)
    rows = [rng.standard_normal(n) for _ in range(trials)]
    rows += [rng.standard_cauchy(n) for _ in range(max(trials // 4, 1))]
    rows += [rng.laplace(size=n) * np.exp(rng.uniform(-6, 6)) for _ in range(max(trials // 4, 1))]
    tie = rng.standard_normal(n)
    tie[: n // 2] = np.sign(tie[: n // 2] + 1e-300) * abs(tie[0])  # tied magnitudes
    rows.append(tie)
    z = rng.standard_normal(n)
    z[::3] = 0.0
    rows.append(z)
    rows.append(np.ones(n))
    rows.append(rng.choice([-2.0, -1.0, 0.0, 1.0, 2.0], size=n) + 1e-3 * rng.standard_normal(n))
    rows.append(np.zeros(n))
    return np.asarray(rows, dtype=np.float64)


def _get(qset):
    from brelax import get_set

    return get_set(qset)


class ProjectionOptimality(TheoryResult):
    r"""``||y - P(y)|| = min_{z in Q} ||y - z||`` and ``P(y) in Q``, against enumeration of ``L^n``.

    Measured: ``max_y (||y - P(y)||^2 - d_Q(y)^2) / ||y||^2``; bound 0. An output
    outside Q, or closer than the enumeration allows, is also a violation.
    """

    name = "projection_optimality"
    label = "Lemma 3.3"
    kind = "projector"
    statement = "P(y) in argmin_{z in Q} ||y - z|| (exact projection; brute force over L^n, n <= 8)"

    def check(self, projector=None, qset="ternary", n=None, trials=40, seed=0, tol=1e-10, label=None):
        Q = _get(qset)
        proj = Q.project if projector is None else projector
        n = brute.largest_n(len(Q.table)) if n is None else int(n)
        Y = test_inputs(n, trials, seed)
        pats = brute.patterns(Q.table, n)
        d_opt = brute.distance2_of_set(Y, Q, pats)
        Pm = np.asarray([np.asarray(proj(y), dtype=np.float64) for y in Y])
        d_got = np.sum((Y - Pm) ** 2, axis=1)
        norm = np.maximum(np.sum(Y * Y, axis=1), 1e-300)
        gap = (d_got - d_opt) / norm
        pn = np.maximum(np.sum(Pm * Pm, axis=1), 1e-300)
        infeas = brute.distance2_of_set(Pm, Q, pats) / pn
        n_infeas = int(np.sum(infeas > 1e-12))
        measured = float(gap.max())
        det = {
            "n": n,
            "inputs": len(Y),
            "patterns": len(pats),
            "worst_input": int(np.argmax(gap)),
            "mean_rel_excess": float(gap.mean()),
            "infeasible_outputs": n_infeas,
            "below_brute_force": int(np.sum(gap < -tol)),
            "set": Q.name,
        }
        feasible = Assumption("outputs lie in Q (else violated)", lambda c: (True, f"{n_infeas} outside Q"))
        res = make_result(
            self.name,
            self.statement,
            evaluate([feasible], None),
            measured,
            0.0,
            tolerance=tol,
            problem=f"random inputs n={n}, set {Q.name}",
            method=label or getattr(proj, "__name__", "projector"),
            details=det,
        )
        if res.status == "holds" and (n_infeas or det["below_brute_force"]):
            res.status, res.holds = "violated", False
        return res


class ConeOrthogonality(TheoryResult):
    r"""F1: ``<y - P(y), P(y)> = 0`` and ``||y||^2 = ||P(y)||^2 + d_Q(y)^2`` on a free-scale cone.

    Measured: ``max_y |<y - P(y), P(y)>| / ||y||^2``; bound 0. Per-group scales
    (``axis``/``group_size``) are checked too: F1 holds group by group.
    """

    name = "cone_orthogonality"
    label = "Proposition 4.1"
    kind = "projector"
    statement = "<y - P(y), P(y)> = 0, hence ||y||^2 = ||P(y)||^2 + d(y)^2 (free-scale cones)"

    def check(self, projector=None, qset="ternary", n=64, trials=40, seed=0, tol=1e-12, group_size=None, label=None):
        Q = _get(qset)
        proj = (lambda y: Q.project(y, group_size=group_size)) if projector is None else projector
        Y = test_inputs(int(n), trials, seed)
        Pm = np.asarray([np.asarray(proj(y), dtype=np.float64) for y in Y])
        yy = np.sum(Y * Y, axis=1)
        norm = np.maximum(yy, 1e-300)
        R = Y - Pm
        gs = n if group_size is None else int(group_size)
        ip = np.abs(np.sum((R * Pm).reshape(len(Y), -1, gs), axis=2)).max(axis=1) / norm
        pyth = np.abs(yy - np.sum(Pm * Pm, axis=1) - np.sum(R * R, axis=1)) / norm
        cone = Assumption(
            "free-scale cone (c Q = Q for c >= 0)",
            lambda c: (Q.scale is None, f"set {Q.name}" + ("" if Q.scale is None else ": fixed scale, not a cone")),
        )
        det = {
            "n": int(n),
            "inputs": len(Y),
            "group_size": group_size,
            "max_pythagoras_rel_err": float(pyth.max()),
            "set": Q.name,
        }
        return make_result(
            self.name,
            self.statement,
            evaluate([cone], None),
            float(max(ip.max(), pyth.max())),
            0.0,
            tolerance=tol,
            problem=f"random inputs n={n}, set {Q.name}",
            method=label or getattr(proj, "__name__", "projector"),
            details=det,
        )
