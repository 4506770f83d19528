"""Coverage: on how many steps of each trajectory some result of the theory holds.

A step ``t`` of a trajectory is *covered* when at least one trajectory result
checked on that trajectory has status ``"holds"`` and lists ``t`` in its
``Result.covered`` (half-open step intervals ``[[start, stop), ...]`` on which
the result's assumptions held and its per-step inequality held with a finite
bound). Problem-free results (projection optimality, the prox lemma, ...)
have no trajectory and never count.

Which trajectory a Result belongs to is recorded in ``details["run"]`` by
:func:`proofs_checks.suite.label` (the embedded runs) and by
:func:`proofs_checks.run_file.verify_run` (a saved run: its path).
"""

from __future__ import annotations

import numpy as np

from theory import TRAJECTORY_RESULTS


def intervals_of(result) -> list:
    """``Result.covered`` as a list of ``(start, stop)`` int pairs (empty when the result has none)."""
    cov = getattr(result, "covered", None) or []
    out = []
    for iv in cov:
        a, b = int(iv[0]), int(iv[1])
        if b > a:
            out.append((a, b))
    return out


def covered_mask(results, steps: int) -> np.ndarray:
    """Boolean mask of length ``steps``: the steps covered by some "holds" trajectory result of ``results``."""
    mask = np.zeros(int(steps), dtype=bool)
    for r in results:
        if r.status != "holds" or r.name not in TRAJECTORY_RESULTS:
            continue
        for a, b in intervals_of(r):
            mask[max(a, 0) : min(b, steps)] = True
    return mask


def coverage(results, runs) -> list:
    """One coverage entry per trajectory.

    Parameters
    ----------
    results : list of theory.Result
        Every result of the verify run; those of one trajectory carry its key in ``details["run"]``.
    runs : list of dict
        ``{"key", "problem", "method", "steps"}`` per trajectory checked, in report order.

    Returns
    -------
    list of dict
        ``{"problem", "method", "steps", "covered_steps", "fraction", "by"}``; ``by`` maps a result
        name to the steps it alone would cover.
    """
    by_run = {}
    for r in results:
        by_run.setdefault(r.details.get("run"), []).append(r)
    out = []
    for run in runs:
        rs = by_run.get(run["key"], [])
        steps = int(run["steps"])
        mask = covered_mask(rs, steps)
        by = {}
        for r in rs:
            m = covered_mask([r], steps)
            if m.any():
                by[r.name] = int(max(by.get(r.name, 0), m.sum()))
        out.append(
            {
                "problem": run["problem"],
                "method": run["method"],
                "steps": steps,
                "covered_steps": int(mask.sum()),
                "fraction": float(mask.mean()) if steps else 1.0,
                "by": by,
            }
        )
    return out


def table(cov, goal: float = 0.95) -> str:
    """One line per trajectory: covered/steps, the fraction, and a mark below ``goal``."""
    lines = [
        f"{'problem':28s} {'method':26s} {'covered':>11s} {'fraction':>8s}  results holding on most steps",
        "-" * 110,
    ]
    for c in cov:
        mark = "" if c["fraction"] >= goal else f"  < {goal:g}"
        by = ", ".join(k for k, _ in sorted(c.get("by", {}).items(), key=lambda kv: (-kv[1], kv[0]))[:3])
        lines.append(
            f"{c['problem'][:28]:28s} {c['method'][:26]:26s} "
            f"{c['covered_steps']:5d}/{c['steps']:<5d} {c['fraction']:8.3f}{mark}  {by}"
        )
    return "\n".join(lines)


def short(cov, goal: float = 0.95) -> str:
    """``"k of n runs >= goal, lowest 0.xx (problem, method)"``."""
    if not cov:
        return "no trajectories checked"
    ok = sum(c["fraction"] >= goal for c in cov)
    low = min(cov, key=lambda c: c["fraction"])
    return (
        f"{ok} of {len(cov)} runs have coverage >= {goal:g}; lowest {low['fraction']:.3f} "
        f"({low['problem']}, {low['method']})"
    )
